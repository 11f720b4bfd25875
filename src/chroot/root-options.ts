/**
 * The options of the root mount: the user's, plus `nouuid` for XFS.
 */
import { filesystemType } from '../host/mounts.js';
import type { HostCtx } from '../host/mounts.js';

/**
 * `options` with `nouuid` added when the filesystem is XFS and no option sets it yet. XFS refuses
 * to mount a filesystem whose UUID is already mounted ("Filesystem has duplicate UUID"): the
 * work volume is a copy of the source's root, so a host booted from the same image family, or a
 * second build from the same source, has it mounted already.
 * @internal
 */
export function withXfsNouuid(fsType: string | undefined, options: readonly string[]): readonly string[] {
  if (fsType !== 'xfs') return options;
  // Each entry is passed as its own -o and may hold several comma-separated options.
  if (options.some((o) => o.split(',').includes('nouuid'))) return options;
  return [...options, 'nouuid'];
}

/**
 * The options to mount `device` with as the chroot's root: {@link withXfsNouuid} of the
 * filesystem blkid finds there.
 * @internal
 */
export async function rootMountOptions(
  device: string,
  options: readonly string[],
  ctx: HostCtx,
): Promise<readonly string[]> {
  const fsType = await filesystemType(device, ctx, 'mount');
  const result = withXfsNouuid(fsType, options);
  if (result !== options) ctx.logger.debug(`${device} holds XFS: mounting it with nouuid (a copy shares its UUID).`);
  return result;
}
