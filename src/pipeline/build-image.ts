/**
 * `buildImage`: the chroot pipeline of {@link buildAmi} on a local raw disk image instead of an
 * EBS volume. The source image is copied (sparse) to `<output>.partial`, attached to a loop
 * device, mounted with the chroot mounts, provisioned, unmounted and detached; only then does the
 * file take its final name, so a failed or aborted build never leaves a half-built image there.
 *
 * @packageDocumentation
 */
import { constants } from 'node:fs';
import { link, open, rename, rm, stat, truncate, unlink } from 'node:fs/promises';
import { basename } from 'node:path';
import { ConfigError, DeviceError } from '../errors.js';
import type { Phase } from '../errors.js';
import type { OperationOptions } from '../types.js';
import { CleanupStack } from '../internal/cleanup-stack.js';
import type { Undo } from '../internal/cleanup-stack.js';
import { statOrUndefined } from '../internal/fs.js';
import { createTemplateClock } from '../config/templates.js';
import type { ChrootMount, TemplateClock, Template } from '../config/types.js';
import { run as runCommand } from '../host/exec.js';
import { DEFAULT_STATE_DIR } from '../host/defaults.js';
import { Journal } from '../host/journal.js';
import { attachLoop, loopDevicesOf } from '../host/loop.js';
import type { LoopDevice } from '../host/loop.js';
import type { Chroot } from '../chroot/chroot.js';
import type { BuildHooks, PackerBuildData } from './build-ami.js';
import { planImage } from './image-plan.js';
import type { ImagePlan } from './image-plan.js';
import { mountStep } from './mount-config.js';
import { checkPlatform, failRun, runProvision, startRun } from './run.js';
import type { Run } from './run.js';

/**
 * Start from an empty disk instead of a source image: a sparse file of `sizeMiB` that
 * `preMountCommands` partition and format (Packer's `from_scratch`).
 * @public
 */
export interface ScratchImage {
  /** Size of the new disk in MiB (a sparse file: only written blocks take space). */
  readonly sizeMiB: number;
  /**
   * Shell commands that partition and format the disk, run before the root mount and before the
   * input's own `preMountCommands`. `{{.Device}}` is the loop device (shell-quoted). Loop devices
   * name partitions with a `p` (`{{.Device}}p1`), and the kernel only learns about a new
   * partition table of a loop device through `partx -u {{.Device}}`.
   *
   * @example
   * ```ts
   * [
   *   "printf 'label: dos\\nstart=2048, type=83\\n' | sfdisk --quiet {{.Device}}",
   *   'partx -u {{.Device}}',
   *   'mkfs.ext4 -q -L root {{.Device}}p1',
   * ]
   * ```
   */
  readonly preMountCommands: readonly Template[];
}

/**
 * What {@link buildImage} builds and how it mounts it. The chroot options are the ones of
 * {@link BuildConfig} that make sense for a local disk, validated by the same rules, with the
 * same messages.
 * @public
 */
export interface BuildImageInput {
  /** The raw disk image to start from; it is copied, never modified. Set this or `fromScratch`. */
  readonly sourceImage?: string;
  /** Start from an empty disk instead. Set this or `sourceImage`. */
  readonly fromScratch?: ScratchImage;
  /**
   * Where the finished raw image goes. The build writes `<output>.partial` and renames it at the
   * very end, so nothing appears under this name unless the whole build succeeded.
   */
  readonly output: string;
  /** Replace an existing `output` (and a stale `<output>.partial` no loop device uses). @defaultValue false */
  readonly overwrite?: boolean;
  /**
   * Grow the disk to this many MiB before attaching it (the file grows sparse; the partition and
   * filesystem do not: grow them in `preMountCommands`/`postMountCommands`, e.g. with `growpart`
   * and `resize2fs`). Must not be smaller than the source image.
   * @defaultValue the source image's size
   */
  readonly growToMiB?: number;
  /**
   * Where the root partition is mounted (Packer `mount_path`); `{{.Device}}` is the loop device's
   * base name (`loop3`).
   * @defaultValue `/mnt/ami-chroot/{{.Device}}`
   */
  readonly mountPath?: Template;
  /** Partition holding `/`; `"0"` mounts the whole disk (Packer `mount_partition`). @defaultValue `"1"` */
  readonly mountPartition?: string | number;
  /** Options of the root mount, each passed as `-o` (Packer `mount_options`); an XFS root gets `nouuid` added, since its UUID is a copy's that may be mounted already. @defaultValue [] (plus `nouuid` for XFS) */
  readonly mountOptions?: readonly string[];
  /** Shell commands run before the root mount (`{{.Device}}`) (Packer `pre_mount_commands`). @defaultValue [] */
  readonly preMountCommands?: readonly Template[];
  /** Shell commands run after the root mount (`{{.Device}}`, `{{.MountPath}}`) (Packer `post_mount_commands`). @defaultValue [] */
  readonly postMountCommands?: readonly Template[];
  /** Filesystems mounted into the chroot; replaces the defaults, `[]` mounts none (Packer `chroot_mounts`). @defaultValue proc, sysfs, /dev bind, devpts, binfmt_misc */
  readonly chrootMounts?: readonly ChrootMount[];
  /** Filesystems mounted after `chrootMounts`. @defaultValue [] */
  readonly extraChrootMounts?: readonly ChrootMount[];
  /** Host files copied in for provisioning; the image's own are put back before unmounting (Packer `copy_files`). @defaultValue `['/etc/resolv.conf']`; `[]` with `fromScratch` */
  readonly copyFiles?: readonly string[];
  /** Wraps every host shell command, e.g. `sudo {{.Command}}` (Packer `command_wrapper`). @defaultValue `{{.Command}}` */
  readonly commandWrapper?: Template;
  /** Keep services from starting inside the chroot (policy-rc.d, SYSTEMD_OFFLINE). @defaultValue true */
  readonly serviceGuard?: boolean;
}

/**
 * What the provision callback of {@link buildImage} receives besides the chroot.
 * @public
 */
export interface BuildImageInfo {
  /** The loop device holding the image, the whole disk (e.g. `/dev/loop3`). */
  readonly hostDevice: string;
  /** Where the root partition is mounted (the chroot's `/`). */
  readonly mountPath: string;
  /** The source image, or undefined for `fromScratch`. */
  readonly sourceImage: string | undefined;
  /** The file being built (`<output>.partial`). */
  readonly workFile: string;
  /** Where the image goes once the build succeeds. */
  readonly output: string;
  /** Packer's build data that exists without EC2 (`build.Device`, `build.MountPath`). */
  readonly packer: Pick<PackerBuildData, 'Device' | 'MountPath'>;
}

/**
 * The provisioning of a local image: runs with the image mounted; throwing fails the build.
 * @public
 */
export type ImageProvisionFn = (chroot: Chroot, info: BuildImageInfo) => Promise<void> | void;

/**
 * Options of {@link buildImage}.
 * @public
 */
export interface BuildImageOptions extends OperationOptions {
  /** Directory of the recovery journals (see `recoverHost`); `false` writes none. @defaultValue `/run/ami-chroot` */
  readonly stateDir?: string | false;
  /** Time limit of each cleanup step. @defaultValue 2 minutes */
  readonly cleanupStepTimeoutMs?: number;
  /** Hooks around phases, as in {@link buildAmi}. */
  readonly hooks?: BuildHooks;
}

/**
 * The outcome of a successful {@link buildImage}.
 * @public
 */
export interface BuildImageResult {
  /** The finished raw image (absolute path). */
  readonly output: string;
  /** Its apparent size in bytes (the disk size). */
  readonly sizeBytes: number;
  /** The bytes it occupies on disk (less than `sizeBytes` while it stays sparse). */
  readonly allocatedBytes: number;
  /**
   * Time spent in each phase, in ms. The phases map onto buildAmi's: `volume` makes the work
   * copy, `attach`/`detach` the loop device, `register` gives the file its final name.
   */
  readonly timings: Readonly<Partial<Record<Phase, number>>>;
  /** Whole build, in ms. */
  readonly durationMs: number;
  /** Cleanup failures after a successful build. */
  readonly cleanupErrors: readonly Error[];
}

/**
 * Gives the finished work file its final name. Without `overwrite`, a hard link refuses to replace
 * a file that appeared during the build (atomically); file systems without hard links fall back
 * to a check and a rename.
 */
async function publish(workFile: string, output: string, overwrite: boolean): Promise<void> {
  if (overwrite) {
    await rename(workFile, output);
    return;
  }
  const appeared = (): ConfigError =>
    new ConfigError(
      [
        {
          path: 'output',
          value: output,
          message: `appeared while the image was built; it was left alone and the build discarded: remove it or pass overwrite: true`,
        },
      ],
      {
        phase: 'register',
      },
    );
  try {
    await link(workFile, output);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw appeared();
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw error;
    if (await statOrUndefined(output)) throw appeared();
    await rename(workFile, output);
    return;
  }
  await unlink(workFile);
}

/** What every phase of one buildImage run shares. */
interface ImageRun {
  readonly plan: ImagePlan;
  readonly run: Run;
  readonly stack: CleanupStack;
  readonly clock: TemplateClock;
  readonly stateDir: string | false;
  /** Records the work file until it is published or removed, so recoverHost removes it if we die. */
  workJournal?: Journal | undefined;
}

/**
 * The `volume` phase: claims `<output>.partial` (O_EXCL, so two builds of one output cannot share
 * it), registers its removal, then fills it: a sparse copy of the source, or an empty disk.
 */
function createWorkFile(b: ImageRun): Promise<void> {
  const { plan: p, run } = b;
  return run.step('volume', async () => {
    if (p.overwrite) await removeStaleWorkFile(p.workFile, run.operation);
    b.workJournal = b.stateDir === false ? undefined : await Journal.create(b.stateDir, `image ${basename(p.output)}`);
    await b.workJournal?.add({ type: 'work-file', path: p.workFile });
    const mode = p.sourceStats ? p.sourceStats.mode & 0o666 : 0o644;
    try {
      await (await open(p.workFile, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode)).close();
    } catch (error) {
      await b.workJournal?.close();
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const message = `${p.workFile} was created by someone else meanwhile (another build of the same output?); wait for it, or choose another output`;
      throw new ConfigError([{ path: 'output', value: p.output, message }], { phase: 'volume' });
    }
    run.ctx.emit({ type: 'resource', action: 'created', kind: 'image-file', id: p.workFile });
    b.stack.defer(
      `remove ${p.workFile}`,
      async (s) => {
        // Removing a file a loop device still uses would hide that device from recoverHost().
        const users = await loopDevicesOf(p.workFile, { signal: s }).catch(() => []);
        if (users.length > 0)
          throw new DeviceError(
            `${p.workFile} is still attached to ${users.join(', ')}; left in place for recoverHost().`,
            { resources: { device: users[0]! } },
          );
        await rm(p.workFile, { force: true });
        await b.workJournal?.close();
        run.ctx.emit({ type: 'resource', action: 'removed', kind: 'image-file', id: p.workFile });
      },
      { onlyOnFailure: true },
    );
    if (p.source) {
      run.ctx.logger.info(`Copying ${p.source} to ${p.workFile} (sparse)`);
      await runCommand('cp', ['--sparse=always', '--', p.source, p.workFile], { ...run.operation, phase: 'volume' });
    } else {
      await truncate(p.workFile, p.scratchBytes);
    }
    if (p.growBytes !== undefined && p.growBytes > (await stat(p.workFile)).size)
      await truncate(p.workFile, p.growBytes);
  });
}

/** A leftover work file is ours to replace (overwrite), unless a loop device still uses it. */
async function removeStaleWorkFile(workFile: string, operation: OperationOptions): Promise<void> {
  const users = await loopDevicesOf(workFile, operation).catch(() => []);
  if (users.length > 0) {
    throw new DeviceError(
      `${workFile} is attached to ${users.join(', ')} (a build running now, or a killed one: run recoverHost()); not replacing it.`,
      { phase: 'volume', resources: { device: users[0]! } },
    );
  }
  await rm(workFile, { force: true });
}

/** The `attach` phase: a loop device with its partitions; its detach registered inside the phase. */
async function attachWorkFile(b: ImageRun): Promise<{ loop: LoopDevice; detach: Undo }> {
  let detach: Undo | undefined;
  const loop = await b.run.step('attach', async () => {
    const attached = await attachLoop({ file: b.plan.workFile, partscan: true, stateDir: b.stateDir }, b.run.operation);
    detach = b.stack.defer(`detach ${attached.device}`, (s) => attached.detach({ signal: s }));
    return attached;
  });
  return { loop, detach: detach! };
}

/** Mounts the loop device, runs `provision`, unmounts (files put back) and detaches. */
async function mountAndProvision(
  b: ImageRun,
  attached: { loop: LoopDevice; detach: Undo },
  provision: ImageProvisionFn,
): Promise<void> {
  const { plan: p, run } = b;
  const device = attached.loop.device;
  const { mounted, unmount } = await mountStep(run, p.config, device, b);
  const info: BuildImageInfo = {
    hostDevice: device,
    mountPath: mounted.root,
    sourceImage: p.source,
    workFile: p.workFile,
    output: p.output,
    packer: { Device: device, MountPath: mounted.root },
  };
  await runProvision(run, mounted, provision, info, { device });
  await run.step('unmount', () => unmount.run());
  await run.step('detach', () => attached.detach.run());
}

/** The `register` phase: the work file takes the output's name. */
function publishImage(b: ImageRun): Promise<void> {
  const { plan: p, run } = b;
  return run.step('register', async () => {
    await publish(p.workFile, p.output, p.overwrite);
    await b.workJournal?.close();
    run.ctx.emit({ type: 'resource', action: 'removed', kind: 'image-file', id: p.workFile });
    run.ctx.emit({ type: 'resource', action: 'created', kind: 'image-file', id: p.output });
    // Only a failing `after` hook can fail the build now; its image must not stay behind either.
    b.stack.defer(
      `remove ${p.output}`,
      async () => {
        await rm(p.output, { force: true });
        run.ctx.emit({ type: 'resource', action: 'removed', kind: 'image-file', id: p.output });
      },
      { onlyOnFailure: true },
    );
  });
}

/** Unwinds the success path's undos and reports the image. */
async function finish(b: ImageRun, started: number): Promise<BuildImageResult> {
  const { plan: p, run } = b;
  const cleanupErrors = await b.stack.unwind('success');
  for (const e of cleanupErrors) run.ctx.logger.error(`After a successful build: ${e.message}`);
  const st = await stat(p.output);
  run.ctx.logger.info(`Built ${p.output}: ${st.size} bytes, ${st.blocks * 512} allocated`);
  return {
    output: p.output,
    sizeBytes: st.size,
    allocatedBytes: st.blocks * 512,
    timings: { ...run.phases.timings },
    durationMs: performance.now() - started,
    cleanupErrors,
  };
}

/**
 * Builds a raw disk image locally with the same chroot pipeline as {@link buildAmi}: rehearse
 * provisioning before spending AWS time, or produce raw images for other uses.
 *
 * @remarks
 * Phases: `validate` (input, platform, files; before any side effect); `volume` (copy the source
 * image sparsely with `cp --sparse=always` to `<output>.partial`, or create an empty sparse disk,
 * then grow it to `growToMiB`); `attach` (a loop device with its partitions); `mount`
 * (pre-mount commands, root mount, post-mount commands, chroot mounts, copied files, service
 * guard); `provision`; `unmount` (processes left inside are stopped, copied files put back);
 * `detach`; `register` (the work file is renamed to `output`). On failure or abort everything is
 * undone in reverse order, the work file included, and the original error is thrown with
 * `cleanupErrors`; the source image is never written to. Progress events, hooks, the signal and
 * errors behave as in buildAmi. Needs Linux and root.
 *
 * @example
 * ```ts
 * import { buildImage } from 'ami-chroot';
 *
 * const result = await buildImage(
 *   { sourceImage: 'debian-12.raw', output: 'web.raw' },
 *   async (chroot) => {
 *     await chroot.sh('apt-get update && apt-get install -y nginx');
 *   },
 *   { signal: AbortSignal.timeout(30 * 60_000) },
 * );
 * console.log(result.output, result.sizeBytes, result.allocatedBytes); // /srv/images/web.raw 2147483648 913309696
 * ```
 * @param input - the source (or an empty disk), the output, and the chroot options
 * @param provision - the provisioning callback
 * @param options - signal, logger, onProgress, hooks, state directory
 * @throws {@link ConfigError} before any side effect (every problem at once, the output that
 *   exists included); otherwise the first error, with its phase.
 * @public
 */
export async function buildImage(
  input: BuildImageInput,
  provision: ImageProvisionFn,
  options: BuildImageOptions = {},
): Promise<BuildImageResult> {
  const started = performance.now();
  const run = startRun(options);
  const plan = await run.step('validate', async () => {
    const planned = await planImage(input);
    checkPlatform('buildImage', 'loop devices');
    return planned;
  });
  const b: ImageRun = {
    plan,
    run,
    stack: new CleanupStack(run.ctx, options.cleanupStepTimeoutMs ?? 2 * 60_000),
    clock: createTemplateClock(),
    stateDir: options.stateDir ?? DEFAULT_STATE_DIR,
  };
  try {
    await createWorkFile(b);
    const attached = await attachWorkFile(b);
    await mountAndProvision(b, attached, provision);
    await publishImage(b);
    return await finish(b, started);
  } catch (error) {
    throw await failRun(run, b.stack, error);
  } finally {
    run.end();
  }
}
