/**
 * mountChroot: the root filesystem of the work volume, the chroot mounts, the copied-in files and
 * the service guard, each undo on one CleanupStack unwound by an idempotent `unmount()`.
 */
import { basename, isAbsolute, resolve } from 'node:path';
import { attachCleanupErrors, MountError } from '../errors.js';
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
import { toCtx } from '../internal/ctx.js';
import { idempotent } from '../internal/once.js';
import { toError } from '../internal/to-error.js';
import { phaseRunnerOf } from '../internal/sub-phases.js';
import type { CommandWrapper } from '../host/exec.js';
import { DEFAULT_STATE_DIR } from '../host/defaults.js';
import { Journal } from '../host/journal.js';
import type { HostCtx } from '../host/mounts.js';
import type { MountCommands } from './mount-commands.js';
import { DEFAULT_MOUNT_PATH } from './defaults.js';
import { MountSession } from './mount-session.js';

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
  const root = requestedRoot(input);
  const stateDir = input.stateDir ?? DEFAULT_STATE_DIR;
  const journal = stateDir === false ? undefined : await Journal.create(stateDir, `mount ${basename(root)}`);
  const session = new MountSession(input, ctx, root, journal);
  const unmount = idempotent((opts: UnmountOptions = {}) => session.teardown(opts.signal ?? cleanupSignal(120_000)));
  try {
    await session.mount(phaseRunnerOf(options, ctx));
  } catch (error) {
    try {
      await unmount();
    } catch (cleanupError) {
      throw attachCleanupErrors(error, [toError(cleanupError)]);
    }
    throw error;
  }
  return {
    root: session.root,
    device: input.device,
    mountedDevice: session.mountedDevice,
    mounts: [...session.mounts],
    env: session.env,
    commandWrapper: input.commandWrapper,
    unmount,
    [Symbol.asyncDispose]: () => unmount(),
  };
}

/** The mount path with `{{.Device}}` filled in; never `/` or a relative path. */
function requestedRoot(input: MountChrootInput): string {
  const template = input.mountPath ?? DEFAULT_MOUNT_PATH;
  const path = resolve(template.replace(/\{\{\s*\.Device\s*\}\}/g, basename(input.device)));
  if (isAbsolute(path) && path !== '/') return path;
  throw new MountError(`mountPath "${template}" resolves to "${path}"; give a dedicated directory.`, {
    resources: { device: input.device },
  });
}
