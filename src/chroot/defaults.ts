/**
 * The chroot layer's defaults: the mount path, the chroot mounts and the copied files of
 * mountChroot and buildImage, imported by the config layer where Packer's defaults are the same.
 */
import type { ChrootMountSpec } from '../config/types.js';

/** Where mountChroot and buildImage mount the root (buildAmi keeps Packer's path). @internal */
export const DEFAULT_MOUNT_PATH = '/mnt/ami-chroot/{{.Device}}';

/** Host files copied in for provisioning unless told otherwise (none from scratch). @internal */
export const DEFAULT_COPY_FILES: readonly string[] = Object.freeze(['/etc/resolv.conf']);

/**
 * Packer's default chroot mounts, in mount order. To add to them rather than replace them:
 * `chrootMounts: [...DEFAULT_CHROOT_MOUNTS, ['tmpfs', 'tmpfs', '/run']]`.
 *
 * @example
 * ```ts
 * import { DEFAULT_CHROOT_MOUNTS, mountChroot } from 'ami-chroot/host';
 *
 * // Add a tmpfs /run to Packer's defaults (proc, sysfs, /dev, devpts, binfmt_misc) instead of replacing them.
 * await using chroot = await mountChroot({
 *   device: '/dev/nvme1n1',
 *   chrootMounts: [...DEFAULT_CHROOT_MOUNTS, ['tmpfs', 'tmpfs', '/run']],
 * });
 * console.log(chroot.mounts); // [ '/mnt/ami-chroot/nvme1n1', '/mnt/ami-chroot/nvme1n1/proc', …, '/mnt/ami-chroot/nvme1n1/run' ]
 * ```
 * @public
 */
export const DEFAULT_CHROOT_MOUNTS: readonly ChrootMountSpec[] = Object.freeze([
  { fsType: 'proc', source: 'proc', target: '/proc' },
  { fsType: 'sysfs', source: 'sysfs', target: '/sys' },
  { fsType: 'bind', source: '/dev', target: '/dev' },
  { fsType: 'devpts', source: 'devpts', target: '/dev/pts' },
  { fsType: 'binfmt_misc', source: 'binfmt_misc', target: '/proc/sys/fs/binfmt_misc' },
]);
