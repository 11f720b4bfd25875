/**
 * Building from scratch (Packer `from_scratch`): an empty volume that the pre-mount commands
 * partition and format, custom block device mappings, and an OS installed by provisioning.
 *
 * Packer:
 *   "from_scratch": true, "ami_virtualization_type": "hvm", "root_volume_size": 15,
 *   "pre_mount_commands": ["parted {{.Device}} mklabel msdos mkpart primary 1M 100% set 1 boot on print",
 *                          "mkfs.ext4 {{.Device}}1"],
 *   "root_device_name": "xvda",
 *   "ami_block_device_mappings": [{ "device_name": "xvda", "delete_on_termination": true, "volume_type": "gp2" }]
 *
 * Two differences matter. `{{.Device}}` is the host block device, which on a Nitro host is
 * /dev/nvme1n1, whose first partition is /dev/nvme1n1p1, not /dev/nvme1n11: a function template
 * with `partitionPath` gets it right everywhere. And the root device name must be the full
 * `/dev/xvda` that EC2 reports.
 *
 * Needs debootstrap on the build host (apt-get install debootstrap). Installing a bootloader and
 * kernel is left out: add them in the provisioning for a bootable image.
 *
 *   sudo npx tsx examples/from-scratch.ts
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { defineConfig, shellQuote, buildAmi } from '../src/index.js';
import { partitionPath } from '../src/host/index.js';

const config = defineConfig({
  fromScratch: true,
  amiName: 'debian-from-scratch {{timestamp}}',
  amiVirtualizationType: 'hvm',
  amiArchitecture: 'x86_64',
  rootVolumeSize: 8,
  rootVolumeType: 'gp3',
  preMountCommands: [
    'parted --script {{.Device}} mklabel gpt mkpart root ext4 1MiB 100%',
    // The kernel must see the new table before the partition can be formatted.
    'partprobe {{.Device}} && udevadm settle',
    // A function template gets the raw device and quotes it itself.
    ({ Device }) => `mkfs.ext4 -q -L root ${shellQuote(partitionPath(Device ?? '', '1'))}`,
  ],
  // Nothing to bind into an empty file system before the OS is there.
  chrootMounts: [],
  rootDeviceName: '/dev/xvda',
  amiBlockDeviceMappings: [{ deviceName: '/dev/xvda', deleteOnTermination: true, volumeType: 'gp3' }],
});

const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => controller.abort());

const result = await buildAmi(
  config,
  async (chroot) => {
    // A host command that writes into the image: debootstrap runs on the host with the image's
    // root as its target, and stops with the build.
    await promisify(execFile)(
      'debootstrap',
      ['--variant=minbase', 'bookworm', chroot.root, 'http://deb.debian.org/debian'],
      {
        signal: chroot.signal,
      },
    );
    await chroot.writeFile('/etc/fstab', 'LABEL=root / ext4 defaults 0 1\n');
    await chroot.writeFile('/etc/hostname', 'scratch\n');
  },
  { signal: controller.signal, logger: { info: console.info, warn: console.warn, error: console.error } },
);
console.log(`${result.name}: ${JSON.stringify(result.images)}`);
