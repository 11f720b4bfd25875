/**
 * Where the host layer keeps its state by default: recovery journals and live-build records, and
 * device reservations. One home, imported by every layer that offers these as options.
 */

/**
 * Default directory of recovery journals.
 *
 * @example
 * ```ts
 * import { DEFAULT_STATE_DIR, recoverHost } from 'ami-chroot/host';
 *
 * // Running builds keep their recovery journals here (/run: emptied at boot, like the mounts they list).
 * console.log(DEFAULT_STATE_DIR); // /run/ami-chroot
 * const report = await recoverHost({ stateDir: DEFAULT_STATE_DIR });
 * for (const build of report.running) console.log(`build ${build.pid} (${build.label}) is still running`);
 * ```
 * @public
 */
export const DEFAULT_STATE_DIR = '/run/ami-chroot';

/**
 * Default directory of the allocation lock and reservations.
 *
 * @example
 * ```ts
 * import { DEFAULT_LOCK_DIR, allocateDevice, recoverHost } from 'ami-chroot/host';
 *
 * // Builds on one host coordinate through this directory; a test harness can use its own.
 * console.log(DEFAULT_LOCK_DIR); // /var/lock/ami-chroot
 * const lease = await allocateDevice({ lockDir: DEFAULT_LOCK_DIR });
 * await lease.release();
 * const report = await recoverHost({ lockDir: DEFAULT_LOCK_DIR }); // frees reservations of dead builds
 * console.log(report.removedReservations);
 * ```
 * @public
 */
export const DEFAULT_LOCK_DIR = '/var/lock/ami-chroot';

/**
 * Default directory of the source snapshot cache of builds `via: 'ebs-direct'` (`/var/cache`:
 * kept across reboots, so a later build from the same source downloads nothing).
 * @internal
 */
export const DEFAULT_CACHE_DIR = '/var/cache/ami-chroot';
