/**
 * The plan of {@link buildImage}: its input validated (shape, files, the chroot options by the
 * config layer's rules) and resolved, every problem in one ConfigError, before any side effect.
 */
import type { Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { statOrUndefined } from '../internal/fs.js';
import type { ConfigIssue } from '../errors.js';
import { resolveConfig } from '../config/resolve.js';
import { validateBuildConfig } from '../config/schema.js';
import { didYouMean } from '../config/suggest.js';
import type { BuildConfig, ResolvedConfig, Template } from '../config/types.js';
import { DEFAULT_MOUNT_PATH } from '../chroot/defaults.js';
import type { BuildImageInput, ScratchImage } from './build-image.js';

const MiB = 1024 * 1024;
/** 16 TiB: the largest EBS volume, and far more than a loop-backed file should ever need. */
const MAX_SIZE_MIB = 16 * 1024 * 1024;
/** Suffix of the work file; it is renamed to the output only once the image is complete. @internal */
export const PARTIAL_SUFFIX = '.partial';

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

/** Everything validated and resolved, before any side effect. @internal */
export interface ImagePlan {
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

/** Records one problem: the option's path, its value, what is wrong and the fix. */
type Add = (path: string, value: unknown, message: string) => void;

/**
 * Validates the input (shape, the chroot options by the config layer's rules, and the files) and
 * collects every problem into one {@link ConfigError}. Reads the file system, changes nothing.
 * @internal
 */
export async function planImage(input: BuildImageInput): Promise<ImagePlan> {
  if (!isObject(input))
    throw new ConfigError([
      {
        path: '',
        value: input,
        message: 'must be a BuildImageInput object { sourceImage | fromScratch, output, ... }',
      },
    ]);
  const issues: ConfigIssue[] = [];
  const add: Add = (path, value, message) => {
    issues.push({ path, value, message });
  };
  checkKeys(input, add);
  const { source, sourceStats } = await checkSource(input, add);
  const { scratchBytes, scratchCommands } = checkScratch(input.fromScratch, add);
  const growBytes = checkGrowth(input, sourceStats, source, add);
  const overwrite = input.overwrite === true;
  if (input.overwrite !== undefined && typeof input.overwrite !== 'boolean')
    add('overwrite', input.overwrite, 'must be true or false');
  const output = await checkOutput(input, sourceStats, overwrite, add);
  const synthetic = chrootConfig(input, scratchCommands, issues);
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

/** Unknown options, with a suggestion, or the note that an option only means something to buildAmi. */
function checkKeys(input: BuildImageInput, add: Add): void {
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
}

/** Exactly one of sourceImage and fromScratch; the source a non-empty regular file. */
async function checkSource(
  input: BuildImageInput,
  add: Add,
): Promise<{ source: string | undefined; sourceStats: Stats | undefined }> {
  const hasSource = input.sourceImage !== undefined;
  if (hasSource === (input.fromScratch !== undefined)) {
    add(
      hasSource ? 'fromScratch' : 'sourceImage',
      hasSource ? input.fromScratch : undefined,
      hasSource
        ? 'cannot be used with sourceImage; set one of them'
        : 'is required: set sourceImage (a raw disk image file) or fromScratch: { sizeMiB, preMountCommands }',
    );
  }
  if (!hasSource) return { source: undefined, sourceStats: undefined };
  if (typeof input.sourceImage !== 'string' || input.sourceImage === '') {
    add('sourceImage', input.sourceImage, 'must be the path of a raw disk image file');
    return { source: undefined, sourceStats: undefined };
  }
  const source = resolve(input.sourceImage);
  const sourceStats = await statOrUndefined(source);
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
  return { source, sourceStats };
}

/** fromScratch's size and the commands that partition and format the empty image. */
function checkScratch(
  scratch: ScratchImage | undefined,
  add: Add,
): { scratchBytes: number | undefined; scratchCommands: readonly Template[] } {
  let scratchBytes: number | undefined;
  let scratchCommands: readonly Template[] = [];
  if (scratch === undefined) return { scratchBytes, scratchCommands };
  if (!isObject(scratch)) {
    add('fromScratch', scratch, 'must be an object { sizeMiB, preMountCommands }');
    return { scratchBytes, scratchCommands };
  }
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
  return { scratchBytes, scratchCommands };
}

/** growToMiB: a size the image only grows to, never with fromScratch. */
function checkGrowth(
  input: BuildImageInput,
  sourceStats: Stats | undefined,
  source: string | undefined,
  add: Add,
): number | undefined {
  if (input.growToMiB === undefined) return undefined;
  if (!isPositiveInt(input.growToMiB) || input.growToMiB > MAX_SIZE_MIB) {
    add('growToMiB', input.growToMiB, `must be an integer from 1 to ${MAX_SIZE_MIB} (MiB)`);
    return undefined;
  }
  if (input.fromScratch !== undefined) {
    add('growToMiB', input.growToMiB, 'does not apply to fromScratch; set fromScratch.sizeMiB instead');
    return undefined;
  }
  const growBytes = input.growToMiB * MiB;
  if (sourceStats?.isFile() && growBytes < sourceStats.size) {
    add(
      'growToMiB',
      input.growToMiB,
      `would shrink the image (${input.growToMiB} MiB < ${Math.ceil(sourceStats.size / MiB)} MiB, the size of ${source}); images only grow, remove growToMiB or raise it`,
    );
  }
  return growBytes;
}

/** The output: absent (unless overwrite), in an existing directory, not the source, no leftover. */
async function checkOutput(
  input: BuildImageInput,
  sourceStats: Stats | undefined,
  overwrite: boolean,
  add: Add,
): Promise<string> {
  if (typeof input.output !== 'string' || input.output === '') {
    add('output', input.output, 'is required: the path of the raw image file to write, e.g. "build/web.raw"');
    return '';
  }
  const output = resolve(input.output);
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
    add('output', input.output, `already exists (${output}); choose another path, remove it, or pass overwrite: true`);
  }
  const partial = await statOrUndefined(output + PARTIAL_SUFFIX);
  if (partial && !overwrite) {
    add(
      'output',
      input.output,
      `has a leftover ${output + PARTIAL_SUFFIX} (a build that was killed, or one running now); run recoverHost() if a build was killed, then remove it, or pass overwrite: true`,
    );
  }
  return output;
}

/**
 * The chroot options as a BuildConfig, checked by the config layer: same rules, same messages,
 * same templates. Issues go to `issues` under the option the user wrote.
 */
function chrootConfig(
  input: BuildImageInput,
  scratchCommands: readonly Template[],
  issues: ConfigIssue[],
): BuildConfig {
  const chroot: Record<string, unknown> = {};
  for (const key of CHROOT_KEYS) if (input[key] !== undefined) chroot[key] = input[key];
  chroot.mountPath ??= DEFAULT_MOUNT_PATH;
  if (input.fromScratch !== undefined && input.copyFiles === undefined) chroot.copyFiles = [];
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
  return synthetic;
}
