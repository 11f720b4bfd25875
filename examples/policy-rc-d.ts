/**
 * The Debian policy-rc.d gotcha, now automatic.
 *
 * Packer's documentation: "your provisioning scripts must not leave any processes running or
 * packer will be unable to unmount the filesystem", and a shell provisioner that writes an
 * `exit 101` /usr/sbin/policy-rc.d before installing packages, and another that removes it after.
 *
 * ami-chroot does this itself (`serviceGuard`, on by default): while provisioning, an image with
 * /usr/sbin gets a policy-rc.d that forbids starting services (the image's own one, if any, is
 * set aside and put back), and every command gets SYSTEMD_OFFLINE=1 so systemctl only enables
 * units. Installing nginx below therefore starts nothing. If something starts anyway (a package
 * that ignores invoke-rc.d, a `&` in a script), the unmount finds the processes whose root is
 * the chroot and stops them (SIGTERM, then SIGKILL) before unmounting.
 *
 * `--no-service-guard` turns the guard off (serviceGuard: false), e.g. for an image that ships a
 * policy-rc.d of its own on purpose; stray services are then still stopped at unmount.
 *
 *   sudo SOURCE_AMI=ami-0123456789abcdef0 npx tsx examples/policy-rc-d.ts [--no-service-guard]
 */
import { defineConfig, buildAmi } from '../src/index.js';

const serviceGuard = !process.argv.includes('--no-service-guard');
const config = defineConfig({
  sourceAmiFilter: { filters: { name: 'debian-12-amd64-*' }, owners: ['136693071363'], mostRecent: true },
  amiName: 'nginx {{timestamp}}',
  serviceGuard,
});

const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => controller.abort());

const result = await buildAmi(
  config,
  async (chroot) => {
    if (serviceGuard) {
      // The guard is in place: invoke-rc.d asks it, it answers 101 ("action forbidden").
      const policy = await chroot.exec('/usr/sbin/policy-rc.d', [], { okExitCodes: [101] });
      console.log(`policy-rc.d answers ${policy.exitCode}: services stay down while provisioning`);
    }
    // nginx's postinst would start nginx on the build host, holding the mount busy.
    await chroot.sh('apt-get update && apt-get install -y --no-install-recommends nginx');
    // Enabling still works: systemctl edits the unit links without starting anything.
    await chroot.exec('systemctl', ['enable', 'nginx']);
  },
  { signal: controller.signal, logger: { info: console.info, warn: console.warn, error: console.error } },
);
console.log(`${result.name}: ${JSON.stringify(result.images)} (the image's own policy-rc.d, if any, is back)`);
