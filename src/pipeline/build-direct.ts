/**
 * `buildAmi` with `via: 'ebs-direct'`: the same config, no EC2 instance. The source's root
 * snapshot comes from the local cache (EBS direct reads), a sparse copy of it is provisioned on a
 * loop device through the chroot pipeline every build uses (mount-config), the blocks that differ
 * from the source are uploaded on top of the source snapshot (EBS direct writes), and the
 * registration, region copies, sharing, tags and cleanup are the attach path's own phases
 * (ami-phases). No IMDS, no device letters, no attach limits.
 *
 * @packageDocumentation
 */
import { constants } from 'node:fs';
import { mkdir, open, realpath, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ConfigError } from '../errors.js';
import type { ConfigIssue } from '../errors.js';
import type { Undo } from '../internal/cleanup-stack.js';
import type { Logger } from '../types.js';
import type { BuildConfig, ResolvedConfig } from '../config/types.js';
import { regionFromConfigOrEnv } from '../aws/clients.js';
import { createEbsClient } from '../aws/ebs/blocks.js';
import type { EbsProvider } from '../aws/ebs/blocks.js';
import { cacheSnapshot } from '../aws/ebs/cache.js';
import { changedBlocks } from '../aws/ebs/changes.js';
import type { CachedSnapshot } from '../aws/ebs/cache.js';
import { uploadSnapshot } from '../aws/ebs/upload.js';
import type { UploadedSnapshot } from '../aws/ebs/upload.js';
import { run as runCommand } from '../host/exec.js';
import { Journal } from '../host/journal.js';
import { attachLoop } from '../host/loop.js';
import type { LoopDevice } from '../host/loop.js';
import { copyImage, finishBuild, prepareBuild, registerRoot } from './ami-phases.js';
import type { AmiRun, PreparedBuild } from './ami-phases.js';
import type { BuildAmiOptions, BuildInfo, BuildResult, ProvisionFn } from './build-ami.js';
import { mountStep } from './mount-config.js';
import { awsAccessOf } from './requests.js';
import { runProvision } from './run.js';

const GiB = 1024 ** 3;

/**
 * What the EBS direct transfer of a `via: 'ebs-direct'` build did.
 * @public
 */
export interface DirectTransfer {
  /** How the source came: `hit` (0 blocks downloaded), `delta` or `full`; undefined from scratch. */
  readonly cache:
    | {
        /** `hit`, `delta` or `full` (see `CachedSnapshot.source` of `ami-chroot/aws`). */
        readonly source: 'hit' | 'delta' | 'full';
        /** Blocks downloaded for the source. */
        readonly blocksDownloaded: number;
      }
    | undefined;
  /** The root snapshot written (a child of the source's root snapshot). */
  readonly snapshotId: string;
  /** 512 KiB blocks whose content differs from the source (from scratch: that are not zeros). */
  readonly changedBlocks: number;
  /** Blocks uploaded (PutSnapshotBlock). */
  readonly blocksWritten: number;
  /** Bytes uploaded. */
  readonly bytesWritten: number;
}

/**
 * Config options and buildAmi options that only mean something for a volume attached to an
 * instance; each is refused by name with `via: 'ebs-direct'` (a silently ignored option would
 * build something else than the config says).
 */
const INSTANCE_ONLY_CONFIG: Readonly<Partial<Record<keyof BuildConfig, string>>> = {
  devicePath: 'there is no device to attach: the working copy is a loop device',
  nvmeDevicePath: 'there is no NVMe device to attach: the working copy is a loop device',
  lockDir: 'no device letter is reserved: loop devices are allocated by the kernel',
  skipMetadataApiCheck: 'no instance metadata is read',
  rootVolumeTags: 'no work volume is created; tag the snapshot with snapshotTags',
  rootVolumeInitializationRate: 'no work volume is created from the snapshot',
  rootVolumeEncryptBoot:
    'no work volume is created: the new snapshot is encrypted as the source snapshot is; encrypt the AMI with encryptBoot and kmsKeyId',
  rootVolumeKmsKeyId:
    'no work volume is created: the new snapshot is encrypted as the source snapshot is; encrypt the AMI with encryptBoot and kmsKeyId',
};
const INSTANCE_ONLY_OPTIONS: Readonly<Partial<Record<keyof BuildAmiOptions, string>>> = {
  hostIdentity: 'no instance is involved; set the region in the config or AWS_REGION',
  imdsEndpoint: 'no instance metadata is read',
  resolveDevice: 'no volume is attached: the working copy is a loop device',
  devRoot: 'no device letter is allocated',
  sysRoot: 'no NVMe device is resolved',
};

/** The build region without an instance to ask: the config's, else the environment's. @internal */
export function directRegion(cfg: Pick<ResolvedConfig, 'region'>, env: BuildAmiOptions['env']): string | undefined {
  return cfg.region ?? regionFromConfigOrEnv(undefined, env ?? process.env);
}

/**
 * `customEndpointEc2` moves the EC2 calls only: the EBS direct APIs are another service with their
 * own endpoint (`ebs.<region>.amazonaws.com`), so a build with an EC2 endpoint and nothing saying
 * where EBS is would read and write snapshots in AWS itself while registering images elsewhere.
 * Where EBS is: `options.ebs` (a client from `createEbsClient(access, endpoint)`), or the SDK's own
 * `AWS_ENDPOINT_URL_EBS` / `AWS_ENDPOINT_URL` (read by the EBS client the build makes).
 * @internal
 */
export function ebsEndpointIssue(
  cfg: Pick<ResolvedConfig, 'customEndpointEc2'>,
  options: Pick<BuildAmiOptions, 'ebs'>,
  env: Readonly<Record<string, string | undefined>> = process.env,
): ConfigIssue | undefined {
  if (cfg.customEndpointEc2 === undefined || options.ebs !== undefined) return undefined;
  if (env['AWS_ENDPOINT_URL_EBS'] || env['AWS_ENDPOINT_URL']) return undefined;
  return {
    path: 'customEndpointEc2',
    value: cfg.customEndpointEc2,
    message:
      "moves the EC2 calls only; with via: 'ebs-direct' the EBS direct APIs need their endpoint too: " +
      'set AWS_ENDPOINT_URL_EBS (the same URL for an emulator that serves both), or pass options.ebs ' +
      '(createEbsClient(access, endpoint) from ami-chroot/aws)',
  };
}

/**
 * Refuses, before any side effect, what `via: 'ebs-direct'` cannot honour: options of an attached
 * volume, a missing region (there is no IMDS to ask), an EC2 endpoint without an EBS one. Every
 * problem in one ConfigError.
 * @internal
 */
export function checkDirectConfig(config: BuildConfig, cfg: ResolvedConfig, options: BuildAmiOptions): void {
  const issues: ConfigIssue[] = [];
  const why = (reason: string): string => `has no meaning with via: 'ebs-direct' (${reason}); remove it`;
  for (const [key, reason] of Object.entries(INSTANCE_ONLY_CONFIG))
    if (config[key as keyof BuildConfig] !== undefined)
      issues.push({ path: key, value: config[key as keyof BuildConfig], message: why(reason) });
  for (const [key, reason] of Object.entries(INSTANCE_ONLY_OPTIONS))
    if (options[key as keyof BuildAmiOptions] !== undefined)
      issues.push({
        path: `options.${key}`,
        value: key === 'resolveDevice' ? '[function]' : options[key as keyof BuildAmiOptions],
        message: why(reason),
      });
  const ebsEndpoint = ebsEndpointIssue(cfg, options);
  if (ebsEndpoint) issues.push(ebsEndpoint);
  if (directRegion(cfg, options.env) === undefined)
    issues.push({
      path: 'region',
      value: undefined,
      message: "is required with via: 'ebs-direct' (there is no instance to ask): set region or AWS_REGION",
    });
  if (issues.length > 0) throw new ConfigError(issues);
}

/**
 * The root mount options of the working copy: the config's, plus `noatime` unless the config
 * chose an atime policy. Every file the provision reads would otherwise get its access time
 * written (relatime does so once a day, and a source image's files are older than that): inode
 * table blocks all over the disk change, and each costs a 512 KiB upload.
 * @internal
 */
export function directMountOptions(options: readonly string[]): readonly string[] {
  const chosen = options.some((o) =>
    o.split(',').some((x) => /^(no)?(atime|relatime|strictatime|diratime|lazytime)$/.test(x)),
  );
  return chosen ? options : [...options, 'noatime'];
}

/**
 * Files smaller than this many file system blocks are allocated from ext4's shared per-CPU pools
 * (`mb_stream_req`; the kernel's default is 16, i.e. 64 KiB with 4 KiB blocks). 256 MiB in 4 KiB
 * blocks: every file a provision typically writes.
 */
const PACKED_STREAM_BLOCKS = 65_536;

/**
 * Packs the working copy's new files together: ext4 gives a file above `mb_stream_req` blocks its
 * own preallocation window, rounded up to a power of two, and the unused rest of each window is a
 * gap. A 512 KiB block that holds a new file's tail and a gap is uploaded whole; with every file
 * allocated from the shared pools, files are laid end to end and fill the blocks they touch (the
 * benchmark: 1.25x of the data written to 1.15x). A sysfs knob of this mount only: nothing is
 * written into the image, and other file systems (no `/sys/fs/ext4/<device>`) are left alone.
 * @internal
 */
export async function packExt4Allocations(
  mountedDevice: string,
  logger: Pick<Logger, 'debug' | 'warn'>,
  sysfs = '/sys/fs/ext4',
): Promise<boolean> {
  const knob = join(sysfs, basename(await realpath(mountedDevice).catch(() => mountedDevice)), 'mb_stream_req');
  try {
    await writeFile(knob, String(PACKED_STREAM_BLOCKS));
  } catch (error) {
    // Not ext4 (no such knob): nothing to do. Anything else costs upload size only.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      logger.warn(`Could not set ${knob} (${(error as Error).message}); the upload may be larger`);
    return false;
  }
  logger.debug(`${knob} = ${PACKED_STREAM_BLOCKS}: new files packed end to end`);
  return true;
}

/** The EBS client of the build region: the caller's, or one made from the config's access options. */
function ebsOf(b: AmiRun, region: string): EbsProvider {
  if (b.options.ebs) return b.options.ebs;
  const client = createEbsClient({ ...awsAccessOf(b.cfg, region), region });
  b.finally.push(() => client.destroy());
  return client;
}

/** The `download` phase: the source's root snapshot in the cache (nothing from scratch). */
function cacheSource(b: AmiRun, p: PreparedBuild, ebs: EbsProvider): Promise<CachedSnapshot | undefined> {
  const source = p.source;
  if (!source) return Promise.resolve(undefined);
  const concurrency = b.options.ebsConcurrency;
  return b.run.step('download', () =>
    cacheSnapshot(
      {
        snapshotId: source.rootSnapshotId,
        cacheDir: b.cfg.cacheDir,
        region: p.region,
        ...(concurrency ? { concurrency } : {}),
      },
      { ...b.run.operation, ebs },
    ),
  );
}

/**
 * The `volume` phase: the working copy in `cacheDir/work` (a sparse, reflinked where the file
 * system can, copy of the cached source, or an empty disk from scratch), grown to `rootVolumeSize`.
 * Its removal is registered (and journaled for recoverHost) before it exists.
 */
function createWorkFile(b: AmiRun, cached: CachedSnapshot | undefined): Promise<{ file: string; remove: Undo }> {
  const { cfg, run } = b;
  return run.step('volume', async () => {
    const dir = join(cfg.cacheDir, 'work');
    const file = join(dir, `${cfg.buildId}.raw`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // Journaled before it exists, so recoverHost() removes it if this process dies.
    const journal = await Journal.create(b.stateDir, `ebs-direct ${cfg.buildId}`);
    try {
      await journal.add({ type: 'work-file', path: file });
      // O_EXCL: a build id used twice at once must not share (or remove) one working copy.
      await (await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)).close();
    } catch (error) {
      await journal.close();
      throw error;
    }
    const remove = b.stack.defer(
      `remove ${file}`,
      async () => {
        await rm(file, { force: true });
        await journal.close();
        run.ctx.emit({ type: 'resource', action: 'removed', kind: 'image-file', id: file });
      },
      { resource: { kind: 'image-file', id: file } },
    );
    run.ctx.emit({ type: 'resource', action: 'created', kind: 'image-file', id: file });
    if (cached) {
      await runCommand('cp', ['--sparse=always', '--reflink=auto', '--', cached.file, file], {
        ...run.operation,
        phase: 'volume',
      });
    }
    const size = Math.max(cached ? cached.volumeSizeGiB : 0, cfg.rootVolumeSize ?? 0) * GiB;
    if (size > (await stat(file)).size) await truncate(file, size);
    return { file, remove };
  });
}

/** `attach` to `detach`: the loop device, the chroot pipeline and `provision`, then early cleanup. */
async function provisionWorkFile(
  b: AmiRun,
  p: PreparedBuild,
  file: string,
  provision: ProvisionFn,
): Promise<LoopDevice> {
  const { cfg, run } = b;
  let detach: Undo | undefined;
  const loop = await run.step('attach', async () => {
    const attached = await attachLoop({ file, partscan: true, stateDir: b.stateDir }, run.operation);
    detach = b.stack.defer(`detach ${attached.device}`, (s) => attached.detach({ signal: s }), {
      resource: { kind: 'loop-device', id: attached.device },
    });
    return attached;
  });
  const chroot = { ...cfg, mountOptions: directMountOptions(cfg.mountOptions) };
  // As on the attach path: the AMI's type decides whether the root is partition 1 or the whole disk.
  const virtualizationType = cfg.amiVirtualizationType ?? p.source?.virtualizationType;
  const { mounted, unmount } = await mountStep(run, chroot, loop.device, { ...b, virtualizationType });
  await packExt4Allocations(mounted.mountedDevice, run.ctx.logger);
  const info: BuildInfo = {
    buildId: cfg.buildId,
    region: p.region,
    hostDevice: loop.device,
    mountPath: mounted.root,
    attachmentName: '',
    volumeId: '',
    instanceId: '',
    sourceImage: p.source,
    packer: { ...p.data, Device: loop.device, MountPath: mounted.root },
  };
  await runProvision(run, mounted, provision, info, { device: loop.device });
  await run.step('unmount', () => unmount.run());
  await run.step('detach', () => detach!.run());
  return loop;
}

/**
 * The `upload` phase: the blocks that differ from the source, written as a child of the source
 * snapshot (from scratch: every non-zero block, no parent). The snapshot's delete is registered
 * for a later failure; the registration takes it over.
 */
function uploadChanges(
  b: AmiRun,
  p: PreparedBuild,
  ebs: EbsProvider,
  file: string,
  cached: CachedSnapshot | undefined,
): Promise<{ uploaded: UploadedSnapshot; changed: number }> {
  const { cfg, run } = b;
  return run.step('upload', async () => {
    const scan = await changedBlocks(file, cached, run.ctx);
    const changed = scan.changed;
    run.ctx.logger.info(
      `${changed.length} block(s) differ from ${cached ? cached.snapshotId : 'an empty disk'} (${scan.examined} of ${scan.total} read)`,
    );
    const concurrency = b.options.ebsConcurrency;
    const uploaded = await uploadSnapshot(
      {
        file,
        changedBlocks: changed,
        volumeSizeGiB: Math.ceil((await stat(file)).size / GiB),
        ...(cached ? { parentSnapshotId: cached.snapshotId } : {}),
        region: p.region,
        tags: { ...p.request.tags, ...p.request.snapshotTags },
        description: `ami-chroot: ${p.request.name}`,
        buildId: cfg.buildId,
        ...(concurrency ? { concurrency } : {}),
      },
      { ...run.operation, ebs, ec2: p.clients.ec2, polling: cfg.polling },
    );
    b.stack.defer(`delete snapshot ${uploaded.snapshotId}`, (s) => uploaded.delete({ signal: s }), {
      onlyOnFailure: true,
      resource: { kind: 'snapshot', id: uploaded.snapshotId, region: p.region },
    });
    return { uploaded, changed: changed.length };
  });
}

/**
 * The `via: 'ebs-direct'` build, called by buildAmi once the config is validated (with
 * {@link checkDirectConfig}): prepare (source, name, region checks), download, work copy,
 * provision, upload, then the attach path's own register, copy and finish phases.
 * @internal
 */
export async function buildDirect(b: AmiRun, provision: ProvisionFn, started: number): Promise<BuildResult> {
  // checkDirectConfig made sure there is one.
  const region = directRegion(b.cfg, b.options.env)!;
  const p = await prepareBuild(b, region, undefined);
  const ebs = ebsOf(b, region);
  const cached = await cacheSource(b, p, ebs);
  const work = await createWorkFile(b, cached);
  const loop = await provisionWorkFile(b, p, work.file, provision);
  const { uploaded, changed } = await uploadChanges(b, p, ebs, work.file, cached);
  // The working copy is as large as the disk's data: free it now, not after the region copies.
  await work.remove.run();
  const image = await registerRoot(b, p, { snapshotId: uploaded.snapshotId });
  const copies = await copyImage(b, p, image);
  const ebsDirect: DirectTransfer = {
    cache: cached ? { source: cached.source, blocksDownloaded: cached.blocksDownloaded } : undefined,
    snapshotId: uploaded.snapshotId,
    changedBlocks: changed,
    blocksWritten: uploaded.blocksWritten,
    bytesWritten: uploaded.bytesWritten,
  };
  return finishBuild(b, p, { attachmentName: '', hostDevice: loop.device, image, copies, ebsDirect }, started);
}
