/**
 * Choosing a free attachment name (`/dev/sdf` … `/dev/sdp`) that no other build on this host,
 * and no existing attachment in EC2, is using.
 *
 * Scheme. Packer holds one global flock from the choice until the attachment is confirmed, so
 * parallel builds queue behind each other's CreateVolume and attach waits. Here:
 *
 * 1. An in-process mutex (async-mutex) and a cross-process lock (proper-lockfile, a directory
 *    `<lockDir>/allocate.lock` whose mtime its holder refreshes) are held only while choosing:
 *    milliseconds. A holder that died stops refreshing; after `lockStaleMs` (default 5 s) the
 *    next process takes the lock over.
 * 2. The chosen name is *reserved*: `<lockDir>/sdX.reservation` is created (O_EXCL) while the
 *    global lock is held. It records the owner's pid and process start time. A reservation
 *    counts only while that exact process is alive, so a SIGKILLed owner blocks nobody, and a
 *    reused pid is not mistaken for it.
 * 3. The lease's `release()` deletes the reservation, as soon as the attachment is confirmed
 *    (from then on EC2 and /dev show the name as taken).
 *
 * A letter is taken when `/dev/sdX`, `/dev/xvdX`, `/dev/sdX1` or `/dev/xvdX1` exists, when EC2
 * lists it (either spelling, passed in `exclude`), or when a live process reserved it.
 * Reservations work between processes of one pid namespace sharing `lockDir`.
 */
import { constants } from 'node:fs';
import { access, mkdir, open, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Mutex } from 'async-mutex';
import lockfile from 'proper-lockfile';
import { DeviceError, LockError } from '../errors.js';
import type { OperationOptions } from '../types.js';
import { sleep as delay } from '../internal/abort.js';
import { toCtx } from '../internal/ctx.js';
import type { Ctx } from '../internal/ctx.js';
import { idempotent } from '../internal/once.js';
import { isAlive, selfIdentity } from './processes.js';
import { DEFAULT_LOCK_DIR } from './defaults.js';

/** The attachment letters EC2 recommends for EBS data volumes on Linux. */
const LETTERS = ['f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p'] as const;

/**
 * A reserved attachment name. Release it once the attachment is confirmed.
 * @public
 */
export interface DeviceLease {
  /** The attachment name to pass to AttachVolume, always in the `/dev/sdX` spelling. */
  readonly attachmentName: string;
  /** Drops the reservation. Idempotent. */
  release(): Promise<void>;
  /** Same as {@link DeviceLease.release}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Input of {@link allocateDevice}.
 * @public
 */
export interface AllocateDeviceInput {
  /**
   * Packer's `device_path`: use this name instead of searching. It is still checked (not in
   * /dev, not in `exclude`, not reserved) and reserved.
   */
  readonly devicePath?: string | undefined;
  /**
   * Names that are taken in EC2's view: the instance's current block device mappings, and
   * names EC2 refused ("already in use"). Any spelling: `/dev/sdf`, `xvdf`, `sdf1`.
   * @defaultValue []
   */
  readonly exclude?: readonly string[] | undefined;
  /** Where device nodes are looked for. @defaultValue `/dev` */
  readonly devRoot?: string | undefined;
  /** Directory of the allocation lock and reservation files. @defaultValue `/var/lock/ami-chroot` */
  readonly lockDir?: string | undefined;
  /** A lock not refreshed for this long belongs to a dead process and is taken over. @defaultValue 5000 (minimum 2000) */
  readonly lockStaleMs?: number | undefined;
  /** Give up waiting for the allocation lock after this long. @defaultValue 60000 */
  readonly lockTimeoutMs?: number | undefined;
}

/** The letter of an attachment name in any spelling, or undefined if it is not `sd`/`xvd` + letter. */
function letterOf(name: string): string | undefined {
  const m = /^(?:\/dev\/)?(?:sd|xvd)([a-z]+)\d*$/.exec(name.trim());
  return m?.[1];
}

/** Serializes allocations within this process (proper-lockfile refuses a second in-process holder). */
const mutex = new Mutex();

interface Reservation {
  readonly pid: number;
  readonly startTime: number;
  readonly createdAt: string;
}

function reservationPath(lockDir: string, letter: string): string {
  return join(lockDir, `sd${letter}.reservation`);
}

/**
 * The live owner of a reservation, or undefined (removing it) when its owner is dead.
 * @internal
 */
export async function liveReservation(path: string): Promise<Reservation | undefined> {
  let data: Reservation;
  try {
    data = JSON.parse(await readFile(path, 'utf8')) as Reservation;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    // Unparseable: a writer died mid-write (the file is written right after creation). Stale.
    await unlink(path).catch(() => {});
    return undefined;
  }
  if (await isAlive({ pid: data.pid, startTime: data.startTime })) return data;
  await unlink(path).catch(() => {});
  return undefined;
}

/**
 * Removes reservations whose owner is dead. Returns the removed paths.
 * @internal
 */
export async function removeDeadReservations(lockDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(lockDir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names.filter((n) => n.endsWith('.reservation'))) {
    const path = join(lockDir, name);
    let existed = true;
    try {
      await access(path);
    } catch {
      existed = false;
    }
    if (existed && !(await liveReservation(path))) removed.push(path);
  }
  return removed;
}

async function nodeExists(path: string): Promise<boolean> {
  try {
    await access(path, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

async function whyTaken(
  letter: string,
  devRoot: string,
  excluded: ReadonlySet<string>,
  lockDir: string,
): Promise<string | undefined> {
  if (excluded.has(letter)) return `EC2 lists /dev/sd${letter} or /dev/xvd${letter}`;
  for (const name of [`sd${letter}`, `xvd${letter}`, `sd${letter}1`, `xvd${letter}1`]) {
    if (await nodeExists(join(devRoot, name))) return `${devRoot}/${name} exists`;
  }
  const owner = await liveReservation(reservationPath(lockDir, letter));
  if (owner) return `reserved by pid ${owner.pid}`;
  return undefined;
}

async function withAllocationLock<T>(
  lockDir: string,
  staleMs: number,
  timeoutMs: number,
  ctx: Ctx,
  fn: () => Promise<T>,
): Promise<T> {
  return mutex.runExclusive(async () => {
    await mkdir(lockDir, { recursive: true, mode: 0o755 });
    const lockPath = join(lockDir, 'allocate.lock');
    const deadline = Date.now() + timeoutMs;
    let compromised: Error | undefined;
    let release: (() => Promise<void>) | undefined;
    let pauseMs = 5;
    while (!release) {
      ctx.signal?.throwIfAborted();
      try {
        release = await lockfile.lock(join(lockDir, 'allocate'), {
          lockfilePath: lockPath,
          realpath: false,
          stale: staleMs,
          retries: 0,
          // The default throws from a timer, crashing the process; a lost lock only matters
          // until the reservation file is written, so note it and check below.
          onCompromised: (error) => {
            compromised = error;
          },
        });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') {
          throw new LockError(
            `Could not take the device allocation lock ${lockPath}: ${(error as Error).message}`,
            lockPath,
            { cause: error },
          );
        }
        if (Date.now() >= deadline) {
          throw new LockError(
            `Timed out after ${Math.round(timeoutMs / 1000)} s waiting for the device allocation lock ${lockPath}. ` +
              'Another process holds it and keeps it fresh; if none is running, remove the directory.',
            lockPath,
          );
        }
        // Jittered: eight builds started together must not retry in lockstep.
        await delay(pauseMs + Math.random() * pauseMs, ctx.signal);
        pauseMs = Math.min(pauseMs * 2, 100);
      }
    }
    try {
      const result = await fn();
      if (compromised)
        throw new LockError(`Lost the device allocation lock ${lockPath}: ${compromised.message}`, lockPath);
      return result;
    } finally {
      await release().catch(() => {});
    }
  });
}

/**
 * Picks a free attachment name in `/dev/sd[f-p]` and reserves it against other builds on this
 * host until the lease is released. See the module comment for the locking scheme.
 *
 * @example
 * ```ts
 * import { attachVolume, createAwsClients } from 'ami-chroot/aws';
 * import { allocateDevice } from 'ami-chroot/host';
 *
 * const { ec2 } = createAwsClients({ region: 'eu-west-1' });
 * // Skip the names EC2 lists for this instance (any spelling); /dev and other builds are checked too.
 * await using lease = await allocateDevice({ exclude: ['/dev/sdf', 'xvdg'] });
 * console.log(lease.attachmentName); // e.g. '/dev/sdh', reserved until released
 * const attached = await attachVolume(
 *   { volumeId: 'vol-0123456789abcdef0', instanceId: 'i-0123456789abcdef0', attachmentName: lease.attachmentName },
 *   { ec2 },
 * );
 * await lease.release(); // as soon as EC2 says "attached"; the disposer is then a no-op
 * console.log(attached.hostDevice);
 * ```
 * @throws {@link DeviceError} when no name is free or `devicePath` is in use;
 *   {@link LockError} when the allocation lock cannot be taken.
 * @public
 */
export async function allocateDevice(
  input: AllocateDeviceInput = {},
  options: OperationOptions = {},
): Promise<DeviceLease> {
  const ctx = toCtx(options);
  const devRoot = input.devRoot ?? '/dev';
  const lockDir = input.lockDir ?? DEFAULT_LOCK_DIR;
  const staleMs = Math.max(2000, input.lockStaleMs ?? 5000);
  const lockTimeoutMs = input.lockTimeoutMs ?? 60_000;
  const excluded = new Set((input.exclude ?? []).map(letterOf).filter((l): l is string => l !== undefined));
  const owner = await selfIdentity();

  let requested: string | undefined;
  if (input.devicePath !== undefined) {
    requested = letterOf(input.devicePath);
    if (requested === undefined) {
      throw new DeviceError(
        `devicePath "${input.devicePath}" is not an attachment name like /dev/sdf or /dev/xvdf. ` +
          'Give the name to attach the volume as; the host node (NVMe) is found by volume id.',
        { resources: { attachmentName: input.devicePath } },
      );
    }
  }

  const letter = await withAllocationLock(lockDir, staleMs, lockTimeoutMs, ctx, async () => {
    const candidates = requested !== undefined ? [requested] : LETTERS;
    const reasons: string[] = [];
    for (const l of candidates) {
      const why = await whyTaken(l, devRoot, excluded, lockDir);
      if (why) {
        reasons.push(`sd${l}: ${why}`);
        continue;
      }
      const path = reservationPath(lockDir, l);
      const reservation: Reservation = {
        pid: owner.pid,
        startTime: owner.startTime,
        createdAt: new Date().toISOString(),
      };
      const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
      try {
        await handle.writeFile(JSON.stringify(reservation));
      } finally {
        await handle.close();
      }
      return l;
    }
    if (requested !== undefined) {
      throw new DeviceError(
        `Device /dev/sd${requested} (devicePath "${input.devicePath}") is in use: ${reasons.join('; ')}. ` +
          'Choose another devicePath, or leave it unset to pick a free one.',
        { resources: { attachmentName: `/dev/sd${requested}` } },
      );
    }
    throw new DeviceError(
      `No free attachment name in /dev/sd[f-p]: ${reasons.join('; ')}. ` +
        'Detach volumes left by earlier builds (and run recoverHost() for dead local builds), or wait for running builds to finish.',
    );
  });

  const device = `/dev/sd${letter}`;
  const path = reservationPath(lockDir, letter);
  ctx.logger.debug(`Reserved attachment name ${device} (${path}).`);
  ctx.emit({ type: 'resource', action: 'created', kind: 'device-lease', id: device });
  const release = idempotent(async () => {
    // Only remove our own reservation (a stale-takeover may have handed it to someone else).
    try {
      const data = JSON.parse(await readFile(path, 'utf8')) as Reservation;
      if (data.pid === owner.pid && data.startTime === owner.startTime) await unlink(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    ctx.emit({ type: 'resource', action: 'removed', kind: 'device-lease', id: device });
  });
  return { attachmentName: device, release, [Symbol.asyncDispose]: release };
}
