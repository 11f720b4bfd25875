/**
 * recoverHost: cleans up after build processes that were killed (SIGKILL, OOM, a lost SSH
 * session) using the journals they left behind.
 */
import { assertArgs, fields, isAbsolutePath, isDuration } from '../internal/args.js';
import { lstat, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CleanupError, UnmountError } from '../errors.js';
import type { OperationOptions } from '../types.js';
import { toCtx } from '../internal/ctx.js';
import { DEFAULT_LOCK_DIR, DEFAULT_STATE_DIR } from './defaults.js';
import { removeDeadReservations } from './devices.js';
import { restorePlaced } from '../chroot/file-swap.js';
import { checkJournal } from './journal-check.js';
import type { RecoveryPlan } from './journal-check.js';
import { assertPrivateDir, readJournals, removeEmptyDir, removeJournalTemps } from './journal.js';
import { detachLoopDevice, loopDevicesOf, loopDevicesOfInode } from './loop.js';
import { readMountInfo, unmountTreeCtx } from './mounts.js';
import type { HostCtx } from './mounts.js';
import { isAlive, stopHolders } from './processes.js';
import { toError } from '../internal/to-error.js';

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
  /** Unfinished work files (`<output>.partial` of buildImage) removed. */
  readonly removedWorkFiles: readonly string[];
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
  /**
   * Journals not obeyed: owned by another user, writable by others, a symlink, or asking for
   * something outside the build's own mount root. They are left in place, untouched.
   */
  readonly refused: readonly {
    /** The journal file. */
    readonly journal: string;
    /** Why it was not obeyed. */
    readonly reason: string;
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
  readonly plan: RecoveryPlan;
  readonly restoredFiles: string[];
  readonly unmounted: string[];
  readonly detachedLoops: string[];
  readonly removedDirs: string[];
  readonly removedWorkFiles: string[];
  /** The build's root mount is still mounted, and it is the very mount the build made. */
  rootMounted: boolean;
  error?: Error;
}

/** Runs one recovery step for every dead build that has not failed yet. */
async function step(builds: readonly DeadBuild[], fn: (b: DeadBuild) => Promise<void>): Promise<void> {
  for (const b of builds) {
    if (b.error) continue;
    try {
      await fn(b);
    } catch (error) {
      b.error = toError(error);
    }
  }
}

/**
 * Is the build's root mount still there, and is it the mount the build made? Compared by mount
 * id and device from mountinfo, never by path: a path may since carry someone else's mount.
 */
async function verifyRoot(b: DeadBuild): Promise<void> {
  const root = b.plan.root;
  if (root === undefined) return;
  const here = (await readMountInfo()).filter((m) => m.mountPoint === root.target);
  if (here.length === 0) return;
  const top = here[here.length - 1]!;
  if (root.id === undefined || top.id !== root.id || top.majorMinor !== root.majorMinor) {
    throw new UnmountError(
      `${root.target} is mounted (mount id ${top.id}, device ${top.majorMinor}), but not by this build ` +
        `(${root.id === undefined ? 'it recorded no mount yet' : `it recorded mount id ${root.id}, device ${root.majorMinor}`}); ` +
        'leaving it and its users alone. Unmount it yourself if it is a leftover, then run recoverHost() again.',
      [root.target],
      [],
      { phase: 'recovery', resources: { mountPath: root.target } },
    );
  }
  b.rootMounted = true;
}

/**
 * Undoes what dead builds did, step by step across all of them (one build's loop device may
 * hold another's mount): files back, mounts down, loop devices detached, directories removed.
 */
async function recoverDead(builds: readonly DeadBuild[], ctx: HostCtx, killGraceMs: number): Promise<void> {
  await step(builds, async (b) => {
    await verifyRoot(b);
    const root = b.plan.root?.target;
    if (!b.rootMounted || root === undefined) return;
    // Daemons the build left inside could rewrite the files about to be restored.
    await stopHolders(root, ctx, { graceMs: killGraceMs, scope: 'roots' });
    // Put the image's files back while its filesystem is still mounted (newest first).
    for (const entry of [...b.plan.files].reverse()) {
      await restorePlaced(entry);
      b.restoredFiles.push(`${entry.root}${entry.path}`);
    }
  });
  await step(builds, async (b) => {
    // Unmounting the root takes everything below with it.
    const root = b.plan.root?.target;
    if (b.rootMounted && root !== undefined)
      b.unmounted.push(...(await unmountTreeCtx(root, ctx, { killGraceMs })).unmounted);
  });
  await step(builds, async (b) => {
    for (const { file, ino, dev } of b.plan.loops) {
      const devices =
        ino !== undefined && dev !== undefined
          ? await loopDevicesOfInode(ino, dev, { logger: ctx.logger })
          : await loopDevicesOf(file, { logger: ctx.logger });
      for (const device of devices) {
        await detachLoopDevice(device, { logger: ctx.logger });
        b.detachedLoops.push(device);
      }
    }
  });
  await step(builds, async (b) => {
    for (const file of b.plan.workFiles) {
      const users = await loopDevicesOf(file, { logger: ctx.logger });
      if (users.length > 0) throw new Error(`${file} is still used by ${users.join(', ')}; not removing it.`);
      const st = await lstat(file).catch(() => undefined);
      if (st?.isFile()) {
        await unlink(file);
        b.removedWorkFiles.push(file);
      }
    }
  });
  await step(builds, async (b) => {
    for (const dir of b.plan.dirs) if (await removeEmptyDir(dir)) b.removedDirs.push(dir);
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
 * Journals are obeyed only when this user owns them and no one else can write them or their
 * directory, and only for the build's own mount (same mount id and device as recorded) and paths
 * inside it; other journals are left alone and listed in `refused`.
 *
 * @throws {@link CleanupError} (phase `recovery`) listing what could not be cleaned; the
 *   journals concerned are kept so a later call can retry.
 * @throws {@link ConfigError} when `stateDir` is not owned by this user or is writable by others.
 * @public
 */
export async function recoverHost(
  input: RecoverHostInput = {},
  options: OperationOptions = {},
): Promise<RecoveryReport> {
  assertArgs(
    'recoverHost',
    fields('input', input, { stateDir: isAbsolutePath, lockDir: isAbsolutePath, killGraceMs: isDuration }),
  );
  const ctx: HostCtx = toCtx(options);
  const stateDir = input.stateDir ?? DEFAULT_STATE_DIR;
  const lockDir = input.lockDir ?? DEFAULT_LOCK_DIR;
  const killGraceMs = input.killGraceMs ?? 3000;
  const recovered: RecoveredBuild[] = [];
  const running: { journal: string; pid: number; label: string }[] = [];
  const errors: Error[] = [];

  const refused: { journal: string; reason: string }[] = [];
  const refuse = (journal: string, reason: string): void => {
    ctx.logger.warn(`recoverHost: not obeying ${journal}: ${reason}. Inspect it, then remove it.`);
    refused.push({ journal, reason });
  };

  // Journals are obeyed as root: only from a directory no one else can write to.
  const stateDirExists = await assertPrivateDir(stateDir, 'stateDir').then(
    () => true,
    (error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    },
  );
  if (stateDirExists) await removeJournalTemps(stateDir);
  const dead: DeadBuild[] = [];
  for (const { path, data } of stateDirExists ? await readJournals(stateDir, refuse) : []) {
    ctx.signal?.throwIfAborted();
    if (await isAlive({ pid: data.pid, startTime: data.startTime })) {
      running.push({ journal: path, pid: data.pid, label: data.label });
      continue;
    }
    const plan = checkJournal(data);
    if (typeof plan === 'string') {
      refuse(path, plan);
    } else {
      dead.push({
        path,
        label: data.label,
        pid: data.pid,
        plan,
        rootMounted: false,
        restoredFiles: [],
        unmounted: [],
        detachedLoops: [],
        removedDirs: [],
        removedWorkFiles: [],
      });
    }
  }
  await recoverDead(dead, ctx, killGraceMs);
  for (const b of dead) {
    if (b.error) {
      errors.push(new Error(`${b.path} (dead build ${b.pid}, ${b.label}): ${b.error.message}`, { cause: b.error }));
    } else {
      const { path, label, pid, restoredFiles, unmounted, detachedLoops, removedDirs, removedWorkFiles } = b;
      recovered.push({
        journal: path,
        label,
        pid,
        restoredFiles,
        unmounted,
        detachedLoops,
        removedDirs,
        removedWorkFiles,
      });
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
  return { recovered, running, refused, removedReservations, removedStaleLock };
}
