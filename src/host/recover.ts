/**
 * recoverHost: cleans up after build processes that were killed (SIGKILL, OOM, a lost SSH
 * session) using the journals they left behind.
 */
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CleanupError } from '../errors.js';
import type { OperationOptions } from '../types.js';
import { toCtx } from '../internal/logger.js';
import { DEFAULT_LOCK_DIR, removeDeadReservations } from './devices.js';
import { restorePlaced } from '../chroot/file-swap.js';
import { DEFAULT_STATE_DIR, readJournals, removeEmptyDir, removeJournalTemps } from './journal.js';
import type { JournalEntry } from './journal.js';
import { detachLoopDevice, loopDevicesOf } from './loop.js';
import { readMountInfo, unmountTreeCtx } from './mounts.js';
import type { HostCtx } from './mounts.js';
import { isAlive, stopHolders } from './processes.js';

/**
 * Input of {@link recoverHost}.
 * @public
 */
export interface RecoverHostInput {
  /** Directory of the recovery journals. @defaultValue `/run/ami-chroot` */
  readonly stateDir?: string;
  /** Directory of the device allocation lock and reservations. @defaultValue `/var/lock/ami-chroot` */
  readonly lockDir?: string;
  /** Grace period between SIGTERM and SIGKILL for processes left inside a chroot. @defaultValue 3000 */
  readonly killGraceMs?: number;
}

/**
 * What recovery did for one dead build.
 * @public
 */
export interface RecoveredBuild {
  /** The journal file. */
  readonly journal: string;
  /** What the build was doing, e.g. `mount xvdf`. */
  readonly label: string;
  /** The dead build's pid. */
  readonly pid: number;
  /** Files of the image put back (copyFiles, service guard). */
  readonly restoredFiles: readonly string[];
  /** Mount points unmounted. */
  readonly unmounted: readonly string[];
  /** Loop devices detached. */
  readonly detachedLoops: readonly string[];
  /** Mount directories removed. */
  readonly removedDirs: readonly string[];
}

/**
 * What {@link recoverHost} did.
 * @public
 */
export interface RecoveryReport {
  /** Dead builds cleaned up. */
  readonly recovered: readonly RecoveredBuild[];
  /** Journals of builds that are still running (left alone). */
  readonly running: readonly {
    /** The journal file. */
    readonly journal: string;
    /** The running build's pid. */
    readonly pid: number;
    /** What the build is doing, e.g. `mount xvdf`. */
    readonly label: string;
  }[];
  /** Device reservations of dead processes removed. */
  readonly removedReservations: readonly string[];
  /** True when an abandoned allocation lock was removed. */
  readonly removedStaleLock: boolean;
}

interface DeadBuild {
  readonly path: string;
  readonly label: string;
  readonly pid: number;
  readonly entries: readonly JournalEntry[];
  readonly restoredFiles: string[];
  readonly unmounted: string[];
  readonly detachedLoops: string[];
  readonly removedDirs: string[];
  error?: Error;
}

/** The outermost mount points a build recorded. */
function mountRoots(b: DeadBuild): string[] {
  const targets = b.entries
    .filter((e): e is Extract<JournalEntry, { type: 'mount' }> => e.type === 'mount')
    .map((e) => e.target);
  return targets.filter((t) => !targets.some((o) => o !== t && t.startsWith(`${o}/`)));
}

/** Runs one recovery step for every dead build that has not failed yet. */
async function step(builds: readonly DeadBuild[], fn: (b: DeadBuild) => Promise<void>): Promise<void> {
  for (const b of builds) {
    if (b.error) continue;
    try {
      await fn(b);
    } catch (error) {
      b.error = error instanceof Error ? error : new Error(String(error));
    }
  }
}

/**
 * Undoes what dead builds did, step by step across all of them (one build's loop device may
 * hold another's mount): files back, mounts down, loop devices detached, directories removed.
 */
async function recoverDead(builds: readonly DeadBuild[], ctx: HostCtx, killGraceMs: number): Promise<void> {
  await step(builds, async (b) => {
    // Daemons the build left inside could rewrite the files about to be restored.
    for (const target of mountRoots(b)) await stopHolders(target, ctx, { graceMs: killGraceMs, scope: 'roots' });
    const mounted = new Set((await readMountInfo()).map((m) => m.mountPoint));
    // Put the image's files back while its filesystem is still mounted (newest first); when it
    // is not mounted the path would be inside the empty mount directory.
    for (const entry of [...b.entries].reverse()) {
      if (entry.type !== 'file' || !mounted.has(entry.root)) continue;
      await restorePlaced(entry);
      b.restoredFiles.push(`${entry.root}${entry.path}`);
    }
  });
  await step(builds, async (b) => {
    // Unmounting the outermost recorded mount points takes everything below with them.
    for (const target of mountRoots(b).reverse())
      b.unmounted.push(...(await unmountTreeCtx(target, ctx, { killGraceMs })).unmounted);
  });
  await step(builds, async (b) => {
    for (const entry of b.entries) {
      if (entry.type !== 'loop') continue;
      for (const device of await loopDevicesOf(entry.file, { logger: ctx.logger })) {
        await detachLoopDevice(device, { logger: ctx.logger });
        b.detachedLoops.push(device);
      }
    }
  });
  await step(builds, async (b) => {
    for (const entry of [...b.entries].reverse()) {
      if (entry.type === 'dir' && (await removeEmptyDir(entry.path))) b.removedDirs.push(entry.path);
    }
    await rm(b.path, { force: true });
    ctx.logger.info(
      `Recovered after dead build ${b.pid} (${b.label}): restored ${b.restoredFiles.length} file(s), unmounted ${b.unmounted.length}, ` +
        `detached ${b.detachedLoops.length} loop device(s), removed ${b.removedDirs.length} dir(s).`,
    );
  });
}

/**
 * Cleans up what killed build processes left on this host: for every journal in `stateDir`
 * whose owner is dead, puts the image's files back, stops processes left inside its chroot,
 * unmounts its mount tree, detaches its loop devices and removes its mount directories; then
 * removes device reservations of dead processes and an abandoned allocation lock. Journals of
 * running builds are left alone. Safe to run at any time, e.g. at the start of every build.
 *
 * @remarks
 * It cannot clean up AWS resources (volumes, snapshots); see `cleanupOrphans` for those.
 *
 * @example
 * ```ts
 * import { recoverHost } from 'ami-chroot/host';
 *
 * // At the start of a build script: safe at any time, running builds are left alone.
 * const report = await recoverHost();
 * for (const build of report.recovered) {
 *   console.log(`after dead build ${build.pid} (${build.label}):`, build.unmounted, build.detachedLoops, build.restoredFiles);
 * }
 * console.log(`${report.running.length} build(s) running; ${report.removedReservations.length} stale reservation(s) removed`);
 * ```
 * @throws {@link CleanupError} (phase `recovery`) listing what could not be cleaned; the
 *   journals concerned are kept so a later call can retry.
 * @public
 */
export async function recoverHost(
  input: RecoverHostInput = {},
  options: OperationOptions = {},
): Promise<RecoveryReport> {
  const ctx: HostCtx = toCtx(options);
  const stateDir = input.stateDir ?? DEFAULT_STATE_DIR;
  const lockDir = input.lockDir ?? DEFAULT_LOCK_DIR;
  const killGraceMs = input.killGraceMs ?? 3000;
  const recovered: RecoveredBuild[] = [];
  const running: { journal: string; pid: number; label: string }[] = [];
  const errors: Error[] = [];

  await removeJournalTemps(stateDir);
  const dead: DeadBuild[] = [];
  for (const { path, data } of await readJournals(stateDir)) {
    ctx.signal?.throwIfAborted();
    if (await isAlive({ pid: data.pid, startTime: data.startTime })) {
      running.push({ journal: path, pid: data.pid, label: data.label });
    } else {
      dead.push({
        path,
        label: data.label,
        pid: data.pid,
        entries: data.entries,
        restoredFiles: [],
        unmounted: [],
        detachedLoops: [],
        removedDirs: [],
      });
    }
  }
  await recoverDead(dead, ctx, killGraceMs);
  for (const b of dead) {
    if (b.error) {
      errors.push(new Error(`${b.path} (dead build ${b.pid}, ${b.label}): ${b.error.message}`, { cause: b.error }));
    } else {
      const { path, label, pid, restoredFiles, unmounted, detachedLoops, removedDirs } = b;
      recovered.push({ journal: path, label, pid, restoredFiles, unmounted, detachedLoops, removedDirs });
    }
  }

  const removedReservations = await removeDeadReservations(lockDir);
  // proper-lockfile's lock is a directory its holder touches every few seconds; one untouched
  // for a minute has no living holder.
  let removedStaleLock = false;
  const lockPath = join(lockDir, 'allocate.lock');
  try {
    const { mtimeMs } = await stat(lockPath);
    if (Date.now() - mtimeMs > 60_000) {
      await rm(lockPath, { recursive: true, force: true });
      removedStaleLock = true;
    }
  } catch {
    // No lock.
  }

  if (errors.length > 0) throw new CleanupError(errors, { phase: 'recovery' });
  return { recovered, running, removedReservations, removedStaleLock };
}
