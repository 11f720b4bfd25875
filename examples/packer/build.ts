/**
 * A TypeScript build file for `ami-chroot build examples/packer/build.ts`: it exports the config
 * and the provision function instead of a template.
 */
import { defineConfig } from '../../src/index.js';
import type { ProvisionFn } from '../../src/index.js';

export const config = defineConfig({
  sourceAmi: process.env['SOURCE_AMI'] ?? 'ami-e81d5881',
  amiName: 'from-build-file-{{timestamp}}',
  ...(process.env['MOUNT_ROOT'] ? { mountPath: `${process.env['MOUNT_ROOT']}/{{.Device}}` } : {}),
});

export const provision: ProvisionFn = async (chroot, build) => {
  await chroot.writeFile('/etc/build-file', `provisioned from ${build.packer.SourceAMIName}\n`);
  await chroot.sh('echo "$(id -u)" > /etc/build-file-uid');
};
