/**
 * `buildAmiDirect`: an AMI built without an EC2 instance. The source's root snapshot comes from the
 * local cache (EBS direct reads), the same chroot pipeline as {@link buildImage} provisions a copy
 * of it on a loop device, the blocks that differ from the source are uploaded on top of the source
 * snapshot (EBS direct writes), and the AMI is registered on the result. No IMDS, no device
 * letters, no attach limits: any Linux machine with loop devices and AWS credentials will do.
 *
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import { open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import type { OperationOptions } from '../types.js';
import { toCtx } from '../internal/logger.js';
import type { Ec2Provider } from '../aws/common.js';
import { EBS_BLOCK_SIZE, isZeroBlock } from '../aws/ebs/blocks.js';
import type { EbsProvider } from '../aws/ebs/blocks.js';
import { cacheSnapshot } from '../aws/ebs/cache.js';
import type { CachedSnapshot } from '../aws/ebs/cache.js';
import { uploadSnapshot } from '../aws/ebs/upload.js';
import { registerImage, registerImageRequest } from '../aws/images.js';
import { tagList } from '../aws/common.js';
import type { RegisterImageInput } from '../aws/images.js';
import type { PollingConfig } from '../types.js';
import type { BuildHooks } from './build-ami.js';
import { buildImage } from './build-image.js';
import type { BuildImageInput, ImageProvisionFn, ScratchImage } from './build-image.js';

const GiB = 1024 ** 3;

/**
 * What {@link buildAmiDirect} builds.
 * @public
 */
export interface BuildAmiDirectInput {
  /** The source AMI's root snapshot (e.g. `SourceImage.rootSnapshotId` of `resolveSourceAmi` (`ami-chroot/aws`)). Set this or `fromScratch`. */
  readonly sourceSnapshotId?: string;
  /** Start from an empty disk (every non-zero block is uploaded). Set this or `sourceSnapshotId`. */
  readonly fromScratch?: ScratchImage;
  /** The source cache directory (see {@link cacheSnapshot}). */
  readonly cacheDir: string;
  /** Where the working copy goes (removed when the build ends). @defaultValue the OS temp dir */
  readonly workDir?: string;
  /** The chroot options of {@link buildImage} (mount path, chroot mounts, copy files, commands...). */
  readonly chroot?: Omit<BuildImageInput, 'sourceImage' | 'fromScratch' | 'output' | 'overwrite'>;
  /** The registration: name, source attributes, mappings, sharing, tags (as {@link registerImage}). */
  readonly image: Omit<RegisterImageInput, 'snapshotId' | 'ownsSnapshot' | 'buildId'>;
  /** Build id tagged on every resource. @defaultValue a random UUID */
  readonly buildId?: string;
  /** EBS direct requests in flight at most (downloads and uploads). @defaultValue 32 */
  readonly concurrency?: number;
}

/**
 * Options of {@link buildAmiDirect}.
 * @public
 */
export interface BuildAmiDirectOptions extends OperationOptions {
  /** The EBS client (build region), or a client per region. */
  readonly ebs: EbsProvider;
  /** The EC2 client (build region), or a client per region. */
  readonly ec2: Ec2Provider;
  /** Wait overrides. */
  readonly polling?: PollingConfig;
  /** Directory of the recovery journals of the loop device and mounts; `false` writes none. @defaultValue `/run/ami-chroot` */
  readonly stateDir?: string | false;
  /** Hooks around the chroot phases, as in {@link buildImage}. */
  readonly hooks?: BuildHooks;
}

/**
 * The outcome of {@link buildAmiDirect}.
 * @public
 */
export interface DirectBuildResult {
  /** The build id tagged on the snapshot and image. */
  readonly buildId: string;
  /** The new AMI. */
  readonly imageId: string;
  /** Its root snapshot (child of the source snapshot). */
  readonly snapshotId: string;
  /** The region. */
  readonly region: string;
  /** How the source came: `hit` (0 blocks downloaded), `delta` or `full`; undefined from scratch. */
  readonly cache:
    | {
        /** `hit`, `delta` or `full` (see {@link CachedSnapshot.source}). */
        readonly source: CachedSnapshot['source'];
        /** Blocks downloaded for the source. */
        readonly blocksDownloaded: number;
      }
    | undefined;
  /** Blocks found different from the source. */
  readonly changedBlocks: number;
  /** Blocks uploaded (PutSnapshotBlock). */
  readonly blocksWritten: number;
  /** Bytes uploaded. */
  readonly bytesWritten: number;
  /** Whole build, in ms. */
  readonly durationMs: number;
}

/**
 * The blocks of `work` that differ from the cached source: a byte comparison, skipping the source
 * read where the source block is a hole (its checksum is absent) and the work block is zeros.
 * @internal
 */
export async function changedBlocks(work: string, source: CachedSnapshot | undefined): Promise<number[]> {
  const size = (await stat(work)).size;
  const count = Math.ceil(size / EBS_BLOCK_SIZE);
  const w = await open(work, 'r');
  const s = source ? await open(source.file, 'r') : undefined;
  const a = Buffer.alloc(EBS_BLOCK_SIZE);
  const b = Buffer.alloc(EBS_BLOCK_SIZE);
  const changed: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      a.fill(0);
      await w.read(a, 0, EBS_BLOCK_SIZE, i * EBS_BLOCK_SIZE);
      if (!s || !source?.checksums.has(i)) {
        if (!isZeroBlock(a)) changed.push(i);
        continue;
      }
      b.fill(0);
      await s.read(b, 0, EBS_BLOCK_SIZE, i * EBS_BLOCK_SIZE);
      if (!a.equals(b)) changed.push(i);
    }
  } finally {
    await w.close();
    await s?.close();
  }
  return changed;
}

/**
 * Builds an AMI without an EC2 instance, through the EBS direct APIs.
 *
 * @remarks
 * 1. The source root snapshot is made local by {@link cacheSnapshot} (nothing downloaded when it is
 *    cached; only changed blocks for a newer snapshot of a cached lineage).
 * 2. {@link buildImage} copies it (sparse) to a working file in `workDir`, attaches it to a loop
 *    device and runs `provision` in the chroot, with the same mounts, copy files, service guard,
 *    hooks and cleanup as every build.
 * 3. The working file is compared with the source block by block; {@link uploadSnapshot} writes the
 *    blocks that differ into a new snapshot whose parent is the source snapshot (from scratch:
 *    every non-zero block, no parent).
 * 4. {@link registerImage} registers the AMI on it; a failure there deletes the snapshot.
 *
 * The working file is removed whatever happens; the cache entry stays for the next build.
 *
 * @example
 * ```ts
 * import { buildAmiDirect } from 'ami-chroot';
 * import { createAwsClients, createEbsClient, resolveSourceAmi } from 'ami-chroot/aws';
 *
 * const clients = createAwsClients({ region: 'eu-west-1' });
 * const ebs = createEbsClient({ region: 'eu-west-1' });
 * const source = await resolveSourceAmi({ sourceAmi: 'ami-0123456789abcdef0' }, { ec2: clients.ec2 });
 * const result = await buildAmiDirect(
 *   { sourceSnapshotId: source.rootSnapshotId, cacheDir: '/var/cache/ami-chroot', image: { name: 'web {{timestamp}}', source } },
 *   async (chroot) => {
 *     await chroot.sh('apt-get update && apt-get install -y nginx');
 *   },
 *   { ebs, ec2: clients.ec2 },
 * );
 * console.log(result.imageId, result.blocksWritten, result.cache?.blocksDownloaded);
 * ```
 * @throws {@link ConfigError} bad input, before any side effect
 * @throws {@link ProvisionError} provisioning failed (nothing left behind)
 * @throws {@link AwsError} an EBS or EC2 call failed
 * @public
 */
export async function buildAmiDirect(
  input: BuildAmiDirectInput,
  provision: ImageProvisionFn,
  options: BuildAmiDirectOptions,
): Promise<DirectBuildResult> {
  const started = performance.now();
  const ctx = toCtx(options);
  if ((input.sourceSnapshotId === undefined) === (input.fromScratch === undefined)) {
    throw new ConfigError([
      {
        path: 'sourceSnapshotId',
        value: input.sourceSnapshotId,
        message: 'set exactly one of sourceSnapshotId and fromScratch',
      },
    ]);
  }
  const buildId = input.buildId ?? randomUUID();
  // The registration is checked now, before anything is downloaded, built or uploaded.
  registerImageRequest(input.image, 'snap-validate', input.image.name, tagList(input.image.tags, buildId));
  const common = {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  };
  const cached = input.sourceSnapshotId
    ? await cacheSnapshot(
        {
          snapshotId: input.sourceSnapshotId,
          cacheDir: input.cacheDir,
          ...(input.image.region ? { region: input.image.region } : {}),
          ...(input.concurrency ? { concurrency: input.concurrency } : {}),
        },
        { ...common, ebs: options.ebs },
      )
    : undefined;
  const work = join(resolve(input.workDir ?? tmpdir()), `ami-chroot-direct-${buildId}.raw`);
  try {
    await buildImage(
      {
        ...input.chroot,
        ...(cached ? { sourceImage: cached.file } : { fromScratch: input.fromScratch! }),
        output: work,
      },
      provision,
      {
        ...common,
        ...(options.stateDir === undefined ? {} : { stateDir: options.stateDir }),
        ...(options.hooks ? { hooks: options.hooks } : {}),
      },
    );
    const changed = await changedBlocks(work, cached);
    ctx.logger.info(`${changed.length} block(s) differ from ${cached ? cached.snapshotId : 'an empty disk'}`);
    const workGiB = Math.ceil((await stat(work)).size / GiB);
    const uploaded = await uploadSnapshot(
      {
        file: work,
        changedBlocks: changed,
        volumeSizeGiB: Math.max(workGiB, cached?.volumeSizeGiB ?? 1),
        ...(cached ? { parentSnapshotId: cached.snapshotId } : {}),
        ...(input.image.region ? { region: input.image.region } : {}),
        tags: { ...input.image.tags, ...input.image.snapshotTags },
        description: `ami-chroot: ${input.image.name}`,
        buildId,
        ...(input.concurrency ? { concurrency: input.concurrency } : {}),
      },
      { ...common, ebs: options.ebs, ec2: options.ec2, ...(options.polling ? { polling: options.polling } : {}) },
    );
    const image = await registerImage(
      { ...input.image, snapshotId: uploaded.snapshotId, ownsSnapshot: true, buildId },
      { ...common, ec2: options.ec2, ...(options.polling ? { polling: options.polling } : {}) },
    );
    return {
      buildId,
      imageId: image.imageId,
      snapshotId: uploaded.snapshotId,
      region: image.region,
      cache: cached ? { source: cached.source, blocksDownloaded: cached.blocksDownloaded } : undefined,
      changedBlocks: changed.length,
      blocksWritten: uploaded.blocksWritten,
      bytesWritten: uploaded.bytesWritten,
      durationMs: performance.now() - started,
    };
  } finally {
    await rm(work, { force: true });
  }
}
