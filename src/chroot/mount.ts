/**
 * mountChroot: the root filesystem of the work volume, the chroot mounts, the copied-in files and
 * the service guard, each undo on one CleanupStack unwound by an idempotent `unmount()`.
 */
import { lstat, readdir, readFile, realpath, rmdir } from 'node:fs/promises';
import { basename, isAbsolute, resolve } from 'node:path';
import { attachCleanupErrors, MountError, UnmountError } from '../errors.js';
import type { ChrootMount } from '../config/types.js';
import type { OperationOptions } from '../types.js';
import { cleanupSignal } from '../internal/abort.js';
import {
  assertArgs,
  either,
  fields,
  isAbsolutePath,
  isBoolean,
  isDuration,
  isFunction,
  isStringArray,
  isText,
} from '../internal/args.js';
import { CleanupStack } from '../internal/cleanup-stack.js';
import { toCtx } from '../internal/ctx.js';
import { idempotent } from '../internal/once.js';
import { phaseRunnerOf } from '../internal/sub-phases.js';
import type { CommandWrapper } from '../host/exec.js';
import { DEFAULT_STATE_DIR } from '../host/defaults.js';
import { Journal } from '../host/journal.js';
import type { JournalEntry } from '../host/journal.js';
import { mountOne, readMountInfo, unmountTreeCtx, waitDeviceReleased } from '../host/mounts.js';
import type { HostCtx } from '../host/mounts.js';
import { stopHolders } from '../host/processes.js';
import { waitForPartition } from '../host/resolve-device.js';
import { CHROOT_MOUNT_OPTIONS, specOf } from './chroot-mounts.js';
import { placeFile } from './file-swap.js';
import { commandsOf, runCommands } from './mount-commands.js';
import type { MountCommands } from './mount-commands.js';
import { mkdirs } from './mount-dir.js';
import { resolveInRoot } from './paths.js';
import { rootMountOptions } from './root-options.js';
import { installServiceGuard } from './service-guard.js';
import type { ServiceGuard } from './service-guard.js';
import { DEFAULT_CHROOT_MOUNTS, DEFAULT_COPY_FILES, DEFAULT_MOUNT_PATH } from './defaults.js';

export type { MountCommands, MountTemplateData } from './mount-commands.js';

/**
 * Input of {@link mountChroot}.
 * @public
 */
export interface MountChrootInput {
  /** The host block device of the work volume, the whole disk (`/dev/nvme1n1`, `/dev/xvdf`, `/dev/loop0`). */
  readonly device: string;
  /**
   * Where to mount it; `{{.Device}}` becomes the device's base name (Packer's `mount_path`).
   * @defaultValue `/mnt/ami-chroot/{{.Device}}`
   */
  readonly mountPath?: string | undefined;
  /** Partition to mount; `'0'` mounts the whole device. @defaultValue '1' */
  readonly mountPartition?: string | undefined;
  /**
   * Options for the root mount, each passed as `-o`. An XFS root gets `nouuid` added (unless an
   * entry sets it): XFS refuses a second filesystem with a UUID already mounted, and the volume is
   * a copy of the source's root, which this host or a parallel build may have mounted.
   * @defaultValue [] (plus `nouuid` for XFS)
   */
  readonly mountOptions?: readonly string[] | undefined;
  /** Run before mounting (`{{.Device}}`); from-scratch builds partition and format here. @defaultValue [] */
  readonly preMountCommands?: MountCommands | undefined;
  /** Run after the root mount, before the chroot mounts (`{{.Device}}`, `{{.MountPath}}`). @defaultValue [] */
  readonly postMountCommands?: MountCommands | undefined;
  /**
   * The chroot mounts, as Packer triples (`['proc', 'proc', '/proc']`) or objects; replaces the
   * defaults (spread {@link DEFAULT_CHROOT_MOUNTS} to add to them); `[]` mounts none.
   * @defaultValue {@link DEFAULT_CHROOT_MOUNTS}
   */
  readonly chrootMounts?: readonly ChrootMount[] | undefined;
  /**
   * Host files copied into the chroot at the same path. The image's own file is set aside and
   * put back at unmount. From-scratch builds pass `[]`.
   * @defaultValue ['/etc/resolv.conf']
   */
  readonly copyFiles?: readonly string[] | undefined;
  /** Block services from starting inside the chroot (policy-rc.d, SYSTEMD_OFFLINE). @defaultValue true */
  readonly serviceGuard?: boolean | undefined;
  /** Packer's command_wrapper, applied to every host command (mount, umount, pre/post commands, chroot). */
  readonly commandWrapper?: CommandWrapper | undefined;
  /** Directory of the recovery journal; `false` writes none. @defaultValue `/run/ami-chroot` */
  readonly stateDir?: string | false | undefined;
  /** How long processes left inside get between SIGTERM and SIGKILL at unmount. @defaultValue 3000 */
  readonly killGraceMs?: number | undefined;
  /** How long to wait for the partition node to appear. @defaultValue 30000 */
  readonly partitionTimeoutMs?: number | undefined;
}

/**
 * Options of {@link MountedChroot.unmount}.
 * @public
 */
export interface UnmountOptions {
  /** Bounds the unmount. Never pass an already-aborted build signal. @defaultValue a fresh 2-minute limit */
  readonly signal?: AbortSignal;
}

/**
 * A mounted chroot.
 * @public
 */
export interface MountedChroot {
  /** The mount path (the chroot's `/` on the host). */
  readonly root: string;
  /** The whole-disk device that was given. */
  readonly device: string;
  /** The block device mounted at `root` (the partition, or the disk for `mountPartition: '0'`). */
  readonly mountedDevice: string;
  /** Every mount point made, root first. */
  readonly mounts: readonly string[];
  /** Environment that commands inside the chroot should get (the service guard's). */
  readonly env: Readonly<Record<string, string>>;
  /** Packer's command_wrapper, for commands run inside. */
  readonly commandWrapper: CommandWrapper | undefined;
  /**
   * Stops processes left inside, removes the service guard, puts copied-over files back,
   * unmounts everything under `root` (stray mounts included), verifies, and removes the mount
   * directory. Idempotent; after a failure it can be called again.
   * @throws {@link UnmountError} naming what is still mounted and who holds it.
   */
  unmount(options?: UnmountOptions): Promise<void>;
  /** Same as {@link MountedChroot.unmount}. */
  [Symbol.asyncDispose](): Promise<void>;
}

const isCommands = either(isFunction, isStringArray);

/** Typed errors for a JavaScript caller's bad input, before anything is touched. */
function checkMountInput(input: unknown): void {
  assertArgs(
    'mountChroot',
    fields(
      'input',
      input,
      {
        device: isAbsolutePath,
        mountPath: isAbsolutePath,
        mountPartition: isText,
        mountOptions: isStringArray,
        preMountCommands: isCommands,
        postMountCommands: isCommands,
        chrootMounts: (v) => (Array.isArray(v) ? undefined : 'must be an array of chroot mounts'),
        copyFiles: isStringArray,
        serviceGuard: isBoolean,
        commandWrapper: isFunction,
        stateDir: (v) => (v === false ? undefined : isAbsolutePath(v)),
        killGraceMs: isDuration,
        partitionTimeoutMs: isDuration,
      },
      ['device'],
    ),
  );
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * Mounts the work volume and prepares it as a chroot, as Packer's amazon-chroot does between
 * attaching the volume and provisioning: pre-mount commands, the root mount, post-mount
 * commands, the chroot mounts, the copied files, and the service guard. If any step fails,
 * everything done so far is undone before the error is thrown.
 *
 * @example
 * ```ts
 * import { createChroot, mountChroot } from 'ami-chroot/host';
 *
 * await using mounted = await mountChroot({ device: '/dev/nvme1n1', copyFiles: ['/etc/resolv.conf', '/etc/hosts'] });
 * console.log(mounted.root, mounted.mountedDevice); // /mnt/ami-chroot/nvme1n1 /dev/nvme1n1p1
 * await createChroot(mounted).sh('apt-get update && apt-get install -y nginx');
 * await mounted.unmount(); // before the snapshot; the disposer is then a no-op
 * ```
 * @throws {@link MountError}, {@link CommandError} (pre/post-mount commands, mount),
 *   {@link DeviceError} (partition never appeared), {@link PathEscapeError}.
 * @public
 */
export async function mountChroot(input: MountChrootInput, options: OperationOptions = {}): Promise<MountedChroot> {
  checkMountInput(input);
  const ctx: HostCtx = { ...toCtx(options), commandWrapper: input.commandWrapper };
  const phase = phaseRunnerOf(options, ctx);
  const device = input.device;
  const partition = input.mountPartition ?? '1';
  const mountPathTemplate = input.mountPath ?? DEFAULT_MOUNT_PATH;
  const requestedPath = resolve(mountPathTemplate.replace(/\{\{\s*\.Device\s*\}\}/g, basename(device)));
  if (!isAbsolute(requestedPath) || requestedPath === '/') {
    throw new MountError(
      `mountPath "${mountPathTemplate}" resolves to "${requestedPath}"; give a dedicated directory.`,
      {
        resources: { device },
      },
    );
  }
  const chrootMounts = (input.chrootMounts ?? DEFAULT_CHROOT_MOUNTS).map(specOf);
  const copyFiles = input.copyFiles ?? DEFAULT_COPY_FILES;
  const stateDir = input.stateDir ?? DEFAULT_STATE_DIR;
  const killGraceMs = input.killGraceMs ?? 3000;

  const journal = stateDir === false ? undefined : await Journal.create(stateDir, `mount ${basename(requestedPath)}`);
  const state = {
    root: requestedPath,
    createdDirs: [] as string[],
    mounts: [] as string[],
    journalMounts: [] as JournalEntry[],
    guard: undefined as ServiceGuard | undefined,
    mountedDevice: device,
  };

  // Every undo is registered the moment its resource exists; unmount() unwinds them (last
  // first). One try each: the unmount retries on its own, and a failed step stays pending, so
  // calling unmount() again retries exactly what is left.
  // Its steps report as resource events below, not as the caller's own cleanup steps.
  const stack = new CleanupStack({ ...ctx, emit: () => {} }, 120_000, 1);
  let teardownSignal: AbortSignal | undefined;

  const undoMount = async (stepSignal: AbortSignal): Promise<void> => {
    const signal = teardownSignal ?? stepSignal;
    // Nothing of ours is mounted (we failed before the root mount): never touch what is there.
    if (state.mounts.length > 0) {
      await unmountTreeCtx(state.root, { ...ctx, signal }, { killGraceMs });
      for (const m of [...state.mounts].reverse())
        ctx.emit({ type: 'resource', action: 'removed', kind: 'mount', id: m });
      for (const entry of [...state.journalMounts].reverse()) await journal?.remove(entry);
      state.mounts = [];
      state.journalMounts = [];
      if (!(await waitDeviceReleased(state.mountedDevice, 5000, signal).catch(() => false))) {
        throw new UnmountError(
          `${state.mountedDevice} is unmounted from ${state.root} but still in use (mounted in another mount namespace, or held open). ` +
            'Do not detach or snapshot the volume until it is released.',
          [],
          [],
          { resources: { device: state.mountedDevice, mountPath: state.root } },
        );
      }
    }
    for (const dir of [...state.createdDirs].reverse()) {
      try {
        await rmdir(dir);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // A shared parent (/mnt/ami-chroot) may hold another build's mount path.
        if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EBUSY') throw error;
      }
    }
    state.createdDirs = [];
  };

  const teardown = async (signal: AbortSignal): Promise<void> => {
    teardownSignal = signal;
    const errors: Error[] = [];
    // Daemons left running inside (chrooted there) could rewrite the files we restore: stop
    // them first. Other holders (a host shell's cwd) only block the unmount, which finds them.
    if (state.mounts.length > 0) {
      try {
        await stopHolders(state.root, { ...ctx, signal }, { graceMs: killGraceMs, scope: 'roots' });
      } catch (error) {
        errors.push(toError(error));
      }
    }
    // The stack names each failure after its step; the step's own typed error is the cause.
    for (const e of await stack.unwind('success')) errors.push(e.cause instanceof Error ? e.cause : e);
    if (errors.length > 0) {
      const [first, ...rest] = errors;
      throw attachCleanupErrors(first, rest);
    }
    await journal?.close();
  };

  const unmount = idempotent(async (opts: UnmountOptions = {}) => {
    await teardown(opts.signal ?? cleanupSignal(120_000));
  });

  try {
    ctx.signal?.throwIfAborted();
    await phase('pre-mount', () =>
      runCommands(commandsOf(input.preMountCommands, { Device: device, MountPath: '' }), 'pre-mount', ctx),
    );

    state.mountedDevice = await waitForPartition(device, partition, {
      signal: ctx.signal,
      timeoutMs: input.partitionTimeoutMs ?? 30_000,
    });

    // The mount directory: refuse one that is in use, so a leftover is never mounted over.
    state.createdDirs.push(...(await mkdirs(requestedPath)));
    stack.defer(`unmount ${requestedPath}`, undoMount);
    for (const d of state.createdDirs) await journal?.add({ type: 'dir', path: d });
    state.root = await realpath(requestedPath);
    const table = await readMountInfo();
    if (table.some((m) => m.mountPoint === state.root)) {
      throw new MountError(
        `${state.root} is already a mount point (a build that was killed? run recoverHost()). Choose another mountPath or unmount it.`,
        { resources: { device, mountPath: state.root } },
      );
    }
    if ((await readdir(state.root)).length > 0) {
      throw new MountError(
        `${state.root} is not empty; mount paths must be empty directories. Choose another mountPath.`,
        {
          resources: { device, mountPath: state.root },
        },
      );
    }

    const options = await rootMountOptions(state.mountedDevice, input.mountOptions ?? [], ctx);
    const rootEntry: JournalEntry = { type: 'mount', target: state.root };
    await journal?.add(rootEntry);
    state.journalMounts.push(rootEntry);
    state.mounts.push(state.root);
    try {
      await mountOne({ source: state.mountedDevice, target: state.root, options }, ctx, 'mount');
    } catch (error) {
      throw new MountError(`Could not mount ${state.mountedDevice} at ${state.root}: ${toError(error).message}`, {
        resources: { device: state.mountedDevice, mountPath: state.root },
        cause: error,
      });
    }
    // Recovery unmounts only this very mount: record its id and device.
    const made = (await readMountInfo()).filter((m) => m.mountPoint === state.root).at(-1);
    if (made && journal) {
      const identified: JournalEntry = { ...rootEntry, id: made.id, majorMinor: made.majorMinor };
      await journal.replace(rootEntry, identified);
      state.journalMounts[0] = identified;
    }
    ctx.emit({ type: 'resource', action: 'created', kind: 'mount', id: state.root });

    await phase('post-mount', () =>
      runCommands(commandsOf(input.postMountCommands, { Device: device, MountPath: state.root }), 'post-mount', ctx),
    );
    await phase('chroot-mounts', () => mountChrootMounts());
    await phase('copy-files', () => placeCopyFiles());
    if (input.serviceGuard ?? true) await phase('service-guard', () => placeServiceGuard());
  } catch (error) {
    try {
      await unmount();
    } catch (cleanupError) {
      throw attachCleanupErrors(error, [toError(cleanupError)]);
    }
    throw error;
  }

  async function mountChrootMounts(): Promise<void> {
    for (const { fsType, source, target } of chrootMounts) {
      ctx.signal?.throwIfAborted();
      // Resolved inside the image: a /dev or /proc that is a symlink must not send the mount to the host.
      const dir = await resolveInRoot(state.root, target, { mkdirs: true });
      const entry: JournalEntry = { type: 'mount', target: dir };
      await journal?.add(entry);
      state.journalMounts.push(entry);
      state.mounts.push(dir);
      try {
        await mountOne({ fsType, source, target: dir, options: CHROOT_MOUNT_OPTIONS[fsType] }, ctx, 'chroot-mounts');
      } catch (error) {
        throw new MountError(`Could not mount ${fsType} ${source} at ${dir}: ${toError(error).message}`, {
          phase: 'chroot-mounts',
          resources: { mountPath: state.root },
          cause: error,
        });
      }
      ctx.emit({ type: 'resource', action: 'created', kind: 'mount', id: dir });
    }
  }

  async function placeCopyFiles(): Promise<void> {
    for (const file of copyFiles) {
      let data: Buffer;
      let mode: number;
      try {
        data = await readFile(file);
        mode = (await lstat(await realpath(file))).mode & 0o7777;
      } catch (error) {
        throw new MountError(`Could not read ${file} to copy into the chroot (copyFiles): ${toError(error).message}`, {
          phase: 'copy-files',
          cause: error,
        });
      }
      const placed = await placeFile(state.root, file, data, mode, journal, 'copy-files');
      stack.defer(`put back the image's ${file}`, async () => {
        try {
          await placed.restore();
        } catch (error) {
          throw new MountError(`Could not put the image's own ${placed.hostPath} back: ${toError(error).message}`, {
            phase: 'copy-files',
            cause: error,
          });
        }
        ctx.emit({ type: 'resource', action: 'removed', kind: 'file', id: placed.hostPath });
      });
      ctx.emit({ type: 'resource', action: 'created', kind: 'file', id: placed.hostPath });
    }
  }

  async function placeServiceGuard(): Promise<void> {
    const guard = await installServiceGuard(state.root, journal, ctx);
    state.guard = guard;
    stack.defer('remove the service guard', async () => {
      try {
        await guard.remove();
      } catch (error) {
        throw new MountError(`Could not remove the service guard from ${state.root}: ${toError(error).message}`, {
          phase: 'service-guard',
          cause: error,
        });
      }
      ctx.emit({ type: 'resource', action: 'removed', kind: 'service-guard', id: state.root });
    });
    ctx.emit({ type: 'resource', action: 'created', kind: 'service-guard', id: state.root });
    ctx.logger.debug(`Service guard in ${state.root}: ${state.guard.installed.join(', ')}`);
  }

  ctx.logger.info(`Mounted ${state.mountedDevice} at ${state.root} with ${state.mounts.length - 1} chroot mount(s).`);
  const env = state.guard?.env ?? {};
  return {
    root: state.root,
    device,
    mountedDevice: state.mountedDevice,
    mounts: [...state.mounts],
    env,
    commandWrapper: input.commandWrapper,
    unmount,
    [Symbol.asyncDispose]: () => unmount(),
  };
}
