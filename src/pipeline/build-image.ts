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
import type { Stats } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { AmiChrootError, ConfigError, DeviceError, ProvisionError, attachCleanupErrors } from '../errors.js';
import type { ConfigIssue, Phase } from '../errors.js';
import type { OperationOptions } from '../types.js';
import { CleanupStack } from '../internal/cleanup-stack.js';
import type { Undo } from '../internal/cleanup-stack.js';
import { resolveConfig } from '../config/resolve.js';
import { validateBuildConfig } from '../config/schema.js';
import { didYouMean } from '../config/suggest.js';
import { createTemplateClock } from '../config/templates.js';
import type { BuildConfig, ChrootMount, ResolvedConfig, Template } from '../config/types.js';
import { run } from '../host/exec.js';
import { DEFAULT_STATE_DIR, Journal } from '../host/journal.js';
import { attachLoop, loopDevicesOf } from '../host/loop.js';
import { createChroot } from '../chroot/chroot.js';
import type { Chroot } from '../chroot/chroot.js';
import type { BuildHooks } from './build-ami.js';
import { stampPhase } from './phases.js';
import { checkPlatform, defined, hookedSteps, mountWithConfig, startRun } from './common.js';

const MiB = 1024 * 1024;
/** 16 TiB: the largest EBS volume, and far more than a loop-backed file should ever need. */
const MAX_SIZE_MIB = 16 * 1024 * 1024;
/** The local default: the same as {@link mountChroot}'s (buildAmi keeps Packer's for imported builds). */
const DEFAULT_LOCAL_MOUNT_PATH = '/mnt/ami-chroot/{{.Device}}';
/** Suffix of the work file; it is renamed to the output only once the image is complete. @internal */
export const PARTIAL_SUFFIX = '.partial';

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
  /** Options of the root mount, each passed as `-o` (Packer `mount_options`). @defaultValue [] */
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
export interface ImageBuildInfo {
  /** The loop device holding the image, the whole disk (e.g. `/dev/loop3`). */
  readonly Device: string;
  /** Where the root partition is mounted (the chroot's `/`). */
  readonly MountPath: string;
  /** The source image, or undefined for `fromScratch`. */
  readonly sourceImage: string | undefined;
  /** The file being built (`<output>.partial`). */
  readonly workFile: string;
  /** Where the image goes once the build succeeds. */
  readonly output: string;
}

/**
 * The provisioning of a local image: runs with the image mounted; throwing fails the build.
 * @public
 */
export type ImageProvisionFn = (chroot: Chroot, info: ImageBuildInfo) => Promise<void> | void;

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
export interface ImageBuildResult {
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

/** The input keys buildImage knows (unknown ones are reported, with a suggestion). */
const INPUT_KEYS = [
  'sourceImage',
  'fromScratch',
  'output',
  'overwrite',
  'growToMiB',
  'mountPath',
  'mountPartition',
  'mountOptions',
  'preMountCommands',
  'postMountCommands',
  'chrootMounts',
  'extraChrootMounts',
  'copyFiles',
  'commandWrapper',
  'serviceGuard',
] as const satisfies readonly (keyof BuildImageInput)[];

/** The chroot options shared with BuildConfig: validated by the config layer's own rules. */
const CHROOT_KEYS = [
  'mountPath',
  'mountPartition',
  'mountOptions',
  'postMountCommands',
  'chrootMounts',
  'extraChrootMounts',
  'copyFiles',
  'commandWrapper',
  'serviceGuard',
] as const satisfies readonly (keyof BuildImageInput & keyof BuildConfig)[];

/** Everything validated and resolved, before any side effect. */
interface Plan {
  readonly source: string | undefined;
  readonly sourceStats: Stats | undefined;
  readonly scratchBytes: number | undefined;
  readonly growBytes: number | undefined;
  readonly output: string;
  readonly workFile: string;
  readonly overwrite: boolean;
  readonly config: ResolvedConfig;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isPositiveInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x > 0;

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Validates the input (shape, the chroot options by the config layer's rules, and the files) and
 * collects every problem into one {@link ConfigError}. Reads the file system, changes nothing.
 */
async function plan(input: BuildImageInput): Promise<Plan> {
  if (!isObject(input))
    throw new ConfigError([
      {
        path: '',
        value: input,
        message: 'must be a BuildImageInput object { sourceImage | fromScratch, output, ... }',
      },
    ]);
  const issues: ConfigIssue[] = [];
  const add = (path: string, value: unknown, message: string): void => {
    issues.push({ path, value, message });
  };

  for (const key of Object.keys(input)) {
    if ((INPUT_KEYS as readonly string[]).includes(key)) continue;
    const suggestion = didYouMean(key, INPUT_KEYS);
    const awsOnly =
      !suggestion &&
      validateBuildConfig({ [key]: undefined, amiName: 'x-local', sourceAmi: 'ami-00000000' }).length === 0;
    add(
      key,
      input[key as keyof BuildImageInput],
      suggestion
        ? `is not an option of buildImage; did you mean \`${suggestion}\`?`
        : awsOnly
          ? 'is a buildAmi option with no meaning for a local image; remove it'
          : 'is not an option of buildImage; remove it',
    );
  }

  // Source: exactly one of sourceImage and fromScratch.
  const scratch = input.fromScratch;
  const hasSource = input.sourceImage !== undefined;
  if (hasSource === (scratch !== undefined)) {
    add(
      hasSource ? 'fromScratch' : 'sourceImage',
      hasSource ? scratch : undefined,
      hasSource
        ? 'cannot be used with sourceImage; set one of them'
        : 'is required: set sourceImage (a raw disk image file) or fromScratch: { sizeMiB, preMountCommands }',
    );
  }
  let source: string | undefined;
  let sourceStats: Stats | undefined;
  if (hasSource) {
    if (typeof input.sourceImage !== 'string' || input.sourceImage === '') {
      add('sourceImage', input.sourceImage, 'must be the path of a raw disk image file');
    } else {
      source = resolve(input.sourceImage);
      sourceStats = await statOrUndefined(source);
      if (!sourceStats)
        add('sourceImage', input.sourceImage, `does not exist (${source}); give the path of a raw disk image file`);
      else if (!sourceStats.isFile())
        add(
          'sourceImage',
          input.sourceImage,
          `is not a regular file (${source}); give a raw disk image file (to build on a block device, use withChroot)`,
        );
      else if (sourceStats.size === 0)
        add('sourceImage', input.sourceImage, `is empty (${source}); give a raw disk image, or use fromScratch`);
    }
  }
  let scratchBytes: number | undefined;
  let scratchCommands: readonly Template[] = [];
  if (scratch !== undefined) {
    if (!isObject(scratch)) add('fromScratch', scratch, 'must be an object { sizeMiB, preMountCommands }');
    else {
      if (!isPositiveInt(scratch.sizeMiB) || scratch.sizeMiB > MAX_SIZE_MIB) {
        add('fromScratch.sizeMiB', scratch.sizeMiB, `must be an integer from 1 to ${MAX_SIZE_MIB} (MiB), e.g. 1024`);
      } else scratchBytes = scratch.sizeMiB * MiB;
      if (!Array.isArray(scratch.preMountCommands) || scratch.preMountCommands.length === 0) {
        add(
          'fromScratch.preMountCommands',
          scratch.preMountCommands,
          'is required: commands that partition and format {{.Device}}, e.g. sfdisk {{.Device}}, partx -u {{.Device}}, mkfs.ext4 {{.Device}}p1',
        );
      } else scratchCommands = scratch.preMountCommands;
      for (const key of Object.keys(scratch)) {
        if (key !== 'sizeMiB' && key !== 'preMountCommands')
          add(
            `fromScratch.${key}`,
            scratch[key as keyof ScratchImage],
            'is not an option of fromScratch ({ sizeMiB, preMountCommands }); remove it',
          );
      }
    }
  }

  let growBytes: number | undefined;
  if (input.growToMiB !== undefined) {
    if (!isPositiveInt(input.growToMiB) || input.growToMiB > MAX_SIZE_MIB)
      add('growToMiB', input.growToMiB, `must be an integer from 1 to ${MAX_SIZE_MIB} (MiB)`);
    else if (scratch !== undefined)
      add('growToMiB', input.growToMiB, 'does not apply to fromScratch; set fromScratch.sizeMiB instead');
    else {
      growBytes = input.growToMiB * MiB;
      if (sourceStats?.isFile() && growBytes < sourceStats.size) {
        add(
          'growToMiB',
          input.growToMiB,
          `would shrink the image (${input.growToMiB} MiB < ${Math.ceil(sourceStats.size / MiB)} MiB, the size of ${source}); images only grow, remove growToMiB or raise it`,
        );
      }
    }
  }

  // Output: absent (unless overwrite), in an existing directory, not the source.
  const overwrite = input.overwrite === true;
  if (input.overwrite !== undefined && typeof input.overwrite !== 'boolean')
    add('overwrite', input.overwrite, 'must be true or false');
  let output = '';
  if (typeof input.output !== 'string' || input.output === '') {
    add('output', input.output, 'is required: the path of the raw image file to write, e.g. "build/web.raw"');
  } else {
    output = resolve(input.output);
    const dir = await statOrUndefined(dirname(output));
    if (!dir?.isDirectory())
      add('output', input.output, `must be in an existing directory; create ${dirname(output)} first`);
    const existing = await statOrUndefined(output);
    if (existing?.isDirectory()) add('output', input.output, `is a directory (${output}); give a file path`);
    else if (existing && sourceStats && existing.dev === sourceStats.dev && existing.ino === sourceStats.ino) {
      add(
        'output',
        input.output,
        `is the source image itself (${output}); buildImage never modifies its source: choose another output`,
      );
    } else if (existing && !overwrite) {
      add(
        'output',
        input.output,
        `already exists (${output}); choose another path, remove it, or pass overwrite: true`,
      );
    }
    const partial = await statOrUndefined(output + PARTIAL_SUFFIX);
    if (partial && !overwrite) {
      add(
        'output',
        input.output,
        `has a leftover ${output + PARTIAL_SUFFIX} (a build that was killed, or one running now); run recoverHost() if a build was killed, then remove it, or pass overwrite: true`,
      );
    }
  }

  // The chroot options go through the config layer: same rules, same messages, same templates.
  const chroot: Record<string, unknown> = {};
  for (const key of CHROOT_KEYS) if (input[key] !== undefined) chroot[key] = input[key];
  chroot.mountPath ??= DEFAULT_LOCAL_MOUNT_PATH;
  if (scratch !== undefined && input.copyFiles === undefined) chroot.copyFiles = [];
  const general = input.preMountCommands;
  const allPreMount = [...scratchCommands, ...(Array.isArray(general) ? (general as readonly Template[]) : [])];
  if (general !== undefined && !Array.isArray(general)) chroot.preMountCommands = general;
  else if (allPreMount.length > 0) chroot.preMountCommands = allPreMount;
  const synthetic = { amiName: 'local-image', sourceAmi: 'ami-00000000', ...chroot } as unknown as BuildConfig;
  for (const issue of validateBuildConfig(synthetic)) {
    // Scratch commands come first in the combined list; give issues their own option's path.
    const m = /^preMountCommands\.(\d+)(.*)$/.exec(issue.path);
    if (m && Array.isArray(general)) {
      const i = Number(m[1]);
      const path =
        i < scratchCommands.length
          ? `fromScratch.preMountCommands.${i}${m[2]}`
          : `preMountCommands.${i - scratchCommands.length}${m[2]}`;
      issues.push({ ...issue, path });
    } else issues.push(issue);
  }

  if (issues.length > 0) throw new ConfigError(issues);
  return {
    source,
    sourceStats,
    scratchBytes,
    growBytes,
    output,
    workFile: output + PARTIAL_SUFFIX,
    overwrite,
    config: resolveConfig(synthetic, {}),
  };
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
): Promise<ImageBuildResult> {
  const started = performance.now();
  const { ctx, signal, phases, end } = startRun(options);
  const { logger } = ctx;
  const operation = { signal, ...defined({ logger: options.logger, onProgress: options.onProgress }) };
  const stateDir = options.stateDir ?? DEFAULT_STATE_DIR;

  const p = await phases.run('validate', async () => {
    const planned = await plan(input);
    checkPlatform('buildImage', 'loop devices');
    return planned;
  });
  const cfg = p.config;
  const stack = new CleanupStack(ctx, options.cleanupStepTimeoutMs ?? 2 * 60_000);
  const clock = createTemplateClock();

  const step = hookedSteps(phases, options.hooks, signal);

  let workJournal: Journal | undefined;
  try {
    await step('volume', async () => {
      if (p.overwrite) {
        // A leftover work file is ours to replace, unless a loop device still uses it.
        const users = await loopDevicesOf(p.workFile, operation).catch(() => []);
        if (users.length > 0) {
          throw new DeviceError(
            `${p.workFile} is attached to ${users.join(', ')} (a build running now, or a killed one: run recoverHost()); not replacing it.`,
            {
              phase: 'volume',
              resources: { device: users[0]! },
            },
          );
        }
        await rm(p.workFile, { force: true });
      }
      // recoverHost removes the work file if this process dies before it is published or removed.
      workJournal = stateDir === false ? undefined : await Journal.create(stateDir, `image ${basename(p.output)}`);
      await workJournal?.add({ type: 'work-file', path: p.workFile });
      // O_EXCL claims the work file, so two builds of one output cannot share it.
      const mode = p.sourceStats ? p.sourceStats.mode & 0o666 : 0o644;
      try {
        await (await open(p.workFile, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode)).close();
      } catch (error) {
        await workJournal?.close();
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        throw new ConfigError(
          [
            {
              path: 'output',
              value: p.output,
              message: `${p.workFile} was created by someone else meanwhile (another build of the same output?); wait for it, or choose another output`,
            },
          ],
          {
            phase: 'volume',
          },
        );
      }
      ctx.emit({ type: 'resource', action: 'created', kind: 'image-file', id: p.workFile });
      stack.defer(
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
          await workJournal?.close();
          ctx.emit({ type: 'resource', action: 'removed', kind: 'image-file', id: p.workFile });
        },
        { onlyOnFailure: true },
      );
      if (p.source) {
        logger.info(`Copying ${p.source} to ${p.workFile} (sparse)`);
        await run('cp', ['--sparse=always', '--', p.source, p.workFile], { ...operation, phase: 'volume' });
      } else {
        await truncate(p.workFile, p.scratchBytes);
      }
      if (p.growBytes !== undefined && p.growBytes > (await stat(p.workFile)).size)
        await truncate(p.workFile, p.growBytes);
    });

    // Each undo is registered inside its phase, the moment the resource exists: a failing
    // `after` hook must not leave it unowned.
    let detachUndo: Undo | undefined;
    const loop = await step('attach', async () => {
      const attached = await attachLoop(p.workFile, { partscan: true, stateDir }, operation);
      detachUndo = stack.defer(`detach ${attached.device}`, (s) => attached.detach({ signal: s }));
      return attached;
    });

    let unmountUndo: Undo | undefined;
    const mounted = await step('mount', async () => {
      const m = await mountWithConfig(cfg, loop.device, { clock, stack, stateDir, operation });
      unmountUndo = m.unmount;
      return m.mounted;
    });

    const info: ImageBuildInfo = {
      Device: loop.device,
      MountPath: mounted.root,
      sourceImage: p.source,
      workFile: p.workFile,
      output: p.output,
    };
    await step('provision', async () => {
      const chroot = createChroot(
        { root: mounted.root, env: mounted.env, commandWrapper: mounted.commandWrapper },
        operation,
      );
      try {
        await provision(chroot, info);
      } catch (error) {
        if (signal.aborted || error instanceof AmiChrootError) throw error;
        throw new ProvisionError(
          `The provision callback failed: ${error instanceof Error ? error.message : String(error)}`,
          {
            cause: error,
            resources: { mountPath: mounted.root, device: loop.device },
          },
        );
      }
    });

    await step('unmount', () => unmountUndo!.run());
    await step('detach', () => detachUndo!.run());
    await step('register', async () => {
      await publish(p.workFile, p.output, p.overwrite);
      await workJournal?.close();
      ctx.emit({ type: 'resource', action: 'removed', kind: 'image-file', id: p.workFile });
      ctx.emit({ type: 'resource', action: 'created', kind: 'image-file', id: p.output });
      // Only a failing `after` hook can fail the build now; its image must not stay behind either.
      stack.defer(
        `remove ${p.output}`,
        async () => {
          await rm(p.output, { force: true });
          ctx.emit({ type: 'resource', action: 'removed', kind: 'image-file', id: p.output });
        },
        { onlyOnFailure: true },
      );
    });

    const cleanupErrors = await stack.unwind('success');
    for (const e of cleanupErrors) logger.error(`After a successful build: ${e.message}`);
    const st = await stat(p.output);
    logger.info(`Built ${p.output}: ${st.size} bytes, ${st.blocks * 512} allocated`);
    return {
      output: p.output,
      sizeBytes: st.size,
      allocatedBytes: st.blocks * 512,
      timings: { ...phases.timings },
      durationMs: performance.now() - started,
      cleanupErrors,
    };
  } catch (error) {
    const phase = phases.current;
    if (phase) stampPhase(error, phase);
    // Cleanup runs even (above all) after an abort; each undo has its own time limit.
    const cleanupErrors = await phases.run('cleanup', () => stack.unwind('failure'), { checkAbort: false });
    throw attachCleanupErrors(error, cleanupErrors);
  } finally {
    end();
  }
}
