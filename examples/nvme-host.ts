/**
 * Building on a Nitro (NVMe) host: nothing to configure.
 *
 * Packer needed `"nvme_device_path": "/dev/nvme1n1p"` and `"device_path": "/dev/sdf"` on c5/m5
 * hosts, because the volume attached as /dev/sdf shows up as /dev/nvme1n1 (and the number is not
 * guaranteed). ami-chroot finds the block device by the volume id instead: the NVMe controller's
 * serial (`vol0123…`) or the udev link /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol…, and
 * the Xen names (/dev/sdf, /dev/xvdf) on older hosts. The device letter is chosen under a lock
 * from both /dev and EC2's view of the instance, so parallel builds on one host do not collide.
 *
 * For an exotic host where neither works, two overrides remain:
 * - `NVME_DEVICE_PATH=/dev/nvme1n1p`: Packer's option, as is (a trailing `p` gets the partition number);
 * - a `resolveDevice` function in the options, which maps (volumeId, attachment name) to a device.
 *
 *   sudo SOURCE_AMI=ami-0123456789abcdef0 npx tsx examples/nvme-host.ts
 */
import { buildAmi } from '../src/index.js';
import type { BuildConfig, DeviceResolver } from '../src/index.js';
import { resolveBlockDevice } from '../src/host/index.js';

const nvmeDevicePath = process.env['NVME_DEVICE_PATH'];
const config: BuildConfig = {
  sourceAmiFilter: { filters: { name: 'al2023-ami-2023.*-x86_64' }, owners: ['amazon'], mostRecent: true },
  amiName: 'nvme-host {{timestamp}}',
  // Nitro hosts need ENA; the source's attributes are kept anyway, this states it.
  enaSupport: true,
  ...(nvmeDevicePath ? { nvmeDevicePath } : {}),
};

// What the library does by default, spelled out: a resolver is only needed to do something else,
// e.g. to log, or to look the device up in a way of your own.
const resolveDevice: DeviceResolver = async ({ volumeId, attachmentName, signal }) => {
  const hostDevice = await resolveBlockDevice({ volumeId, attachmentName }, signal ? { signal } : {});
  console.log(`${volumeId} is attached as ${attachmentName} and appears here as ${hostDevice}`);
  return hostDevice;
};

const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => controller.abort());

const result = await buildAmi(
  config,
  async (chroot, build) => {
    await chroot.writeFile('/etc/motd', `Built on ${build.hostDevice} (attached as ${build.attachmentName}).\n`);
  },
  {
    signal: controller.signal,
    resolveDevice,
    logger: { info: console.info, warn: console.warn, error: console.error },
  },
);
console.log(`Attached as ${result.attachmentName}, built on ${result.hostDevice}: ${JSON.stringify(result.images)}`);
