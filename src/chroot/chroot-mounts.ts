/**
 * The chroot mounts: the two spellings of a mount (triple or object), and the mount options each
 * filesystem type needs inside a chroot (the defaults live in defaults.ts).
 */
import type { ChrootMount, ChrootMountSpec } from '../config/types.js';

/**
 * One mount as an object, from either spelling.
 * @internal
 */
export function specOf(mount: ChrootMount): ChrootMountSpec {
  if (Array.isArray(mount)) {
    const [fsType, source, target] = mount as readonly [string, string, string];
    return { fsType, source, target };
  }
  return mount as ChrootMountSpec;
}

/**
 * Mount options per filesystem type for chroot mounts. devpts gets its own instance
 * (`newinstance`): the chroot's ptys are separate and the host's /dev/pts is never touched
 * (mounting devpts without it on old kernels re-mounted the host's instance with new options).
 * @internal
 */
export const CHROOT_MOUNT_OPTIONS: Readonly<Record<string, readonly string[]>> = {
  devpts: ['newinstance,ptmxmode=0666,mode=0620,gid=5'],
};
