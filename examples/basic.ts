/**
 * The basic example of Packer's amazon-chroot documentation, as a BuildConfig.
 *
 * Packer:
 *   { "type": "amazon-chroot", "access_key": "…", "secret_key": "…",
 *     "source_ami": "ami-e81d5881", "ami_name": "packer-amazon-chroot {{timestamp}}" }
 *
 * Here the keys are not needed: the AWS SDK's default chain finds the build host's instance role
 * (or AWS_PROFILE, or the environment). The provisioning is TypeScript instead of a provisioner.
 *
 * Run it on an EC2 Linux build host, as root, with a source AMI of your region:
 *   sudo SOURCE_AMI=ami-0123456789abcdef0 npx tsx examples/basic.ts
 */
import { defineConfig, buildAmi } from '../src/index.js';

const config = defineConfig({
  sourceAmi: process.env['SOURCE_AMI'] ?? 'ami-e81d5881',
  amiName: 'packer-amazon-chroot {{timestamp}}',
});

// Ctrl-C stops the build, which then removes everything it created.
const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => controller.abort());

const result = await buildAmi(
  config,
  async (chroot, build) => {
    // Runs inside the mounted image with its own /bin/sh; the host's shell never sees the script.
    await chroot.sh('echo "Built from $SOURCE on $(date -u)" > /etc/motd', {
      env: { SOURCE: build.packer.SourceAMIName },
    });
    await chroot.writeFile('/etc/ami-chroot-build', `${build.buildId}\n`);
  },
  {
    signal: controller.signal,
    logger: { info: console.info, warn: console.warn, error: console.error },
  },
);

console.log(
  `${result.name}: ${Object.entries(result.images)
    .map(([region, id]) => `${region} ${id}`)
    .join(', ')}`,
);
