/**
 * withChroot: mount, run the caller's function inside, always unmount.
 */
import { attachCleanupErrors } from '../errors.js';
import type { OperationOptions } from '../types.js';
import { createChroot } from './chroot.js';
import type { Chroot } from './chroot.js';
import { mountChroot } from './mount.js';
import type { MountChrootInput } from './mount.js';
import { toError } from '../internal/to-error.js';

/**
 * Mounts a chroot (see {@link mountChroot}), calls `fn` with a {@link Chroot} handle, and always
 * unmounts, on success, failure and abort. The unmount uses its own time limit, never the
 * caller's (possibly aborted) signal.
 *
 * @example
 * ```ts
 * import { withChroot } from 'ami-chroot/host';
 *
 * const version = await withChroot({ device: '/dev/nvme1n1' }, async (chroot) => {
 *   await chroot.sh('apt-get update && apt-get install -y nginx');
 *   await chroot.writeFile('/etc/motd', 'Baked by ami-chroot\n');
 *   return (await chroot.exec('nginx', ['-v'])).stderr.trim();
 * });
 * console.log(version); // 'nginx version: nginx/1.22.1', and everything is unmounted again
 * ```
 * @returns what `fn` returned.
 * @throws what `fn` threw, unchanged, with an unmount failure attached in `cleanupErrors`; or the
 *   {@link UnmountError} when `fn` succeeded but the unmount did not.
 *
 * @public
 */
export async function withChroot<T>(
  input: MountChrootInput,
  fn: (chroot: Chroot) => Promise<T> | T,
  options: OperationOptions = {},
): Promise<T> {
  const mounted = await mountChroot(input, options);
  let result: T;
  try {
    result = await fn(createChroot(mounted, options));
  } catch (error) {
    try {
      await mounted.unmount();
    } catch (unmountError) {
      throw attachCleanupErrors(error, [toError(unmountError)]);
    }
    throw error;
  }
  await mounted.unmount();
  return result;
}
