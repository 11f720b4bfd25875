/**
 * From the detached work volume to a registered, shared, tagged AMI: snapshot, (force) deregister
 * older images of the same name, register, optionally re-encrypt by copy, apply permissions.
 * A failure after any resource exists removes what this call created (unless `keepOnError`).
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import { ec2Sdk } from './sdk.js';
import type {
  ArchitectureValues,
  BlockDeviceMapping,
  BootModeValues,
  EC2Client,
  EbsBlockDevice,
  Image,
  ImdsSupportValues,
  RegisterImageRequest,
  TpmSupportValues,
} from '@aws-sdk/client-ec2';
import { ConfigError } from '../errors.js';
import { cleanupSignal, throwIfAborted } from '../internal/abort.js';
import { toCtx } from '../internal/ctx.js';
import type { Ctx } from '../internal/ctx.js';
import { idempotent } from '../internal/once.js';
import { phaseRunnerOf } from '../internal/sub-phases.js';
import type { PhaseRunner } from '../internal/sub-phases.js';
import { send } from './call.js';
import { ec2For, ec2InRegion, policyFor, pollBits, tagList, tagSpecs, sameDevice, undoAfterFailure } from './common.js';
import type { AwsOperationOptions } from './common.js';
import { copyImageRequest } from './copy-request.js';
import {
  deprecateImage,
  describeImage,
  grantPermissions,
  grantsPermissions,
  protectImages,
  snapshotIdsOf,
} from './image-settings.js';
import { removeImage, deleteSnapshot } from './image-removal.js';
import type { ImageSharing } from './image-settings.js';
import type {
  Architecture as ArchitectureSetting,
  BootMode as BootModeSetting,
  ImdsSupport,
  TpmSupport,
  VirtualizationType,
  VolumeType as VolumeTypeSetting,
} from '../config/types.js';
import { pollUntil, realClock } from './poll.js';
import { imageReads, snapshotReads } from './shared-reads.js';
import { messageOf } from '../internal/to-error.js';

/**
 * What a registration inherits from the source image (a {@link SourceImage} fits).
 * @public
 */
export interface RegisterSource {
  /** Root device name, e.g. `/dev/xvda`. */
  readonly rootDeviceName: string;
  /** Every block device mapping of the source. */
  readonly blockDeviceMappings: readonly BlockDeviceMapping[];
  /** Architecture. */
  readonly architecture: string;
  /** `hvm` or `paravirtual`. */
  readonly virtualizationType: string;
  /** ENA support. */
  readonly enaSupport?: boolean | undefined;
  /** SR-IOV (`simple`). */
  readonly sriovNetSupport?: string | undefined;
  /** Boot mode. */
  readonly bootMode?: string | undefined;
  /** NitroTPM. */
  readonly tpmSupport?: string | undefined;
  /** IMDS support. */
  readonly imdsSupport?: string | undefined;
  /** UEFI variable store, base64. */
  readonly uefiData?: string | undefined;
  /** Kernel id (paravirtual). */
  readonly kernelId?: string | undefined;
  /** RAM disk id (paravirtual). */
  readonly ramdiskId?: string | undefined;
}

/**
 * How the image is registered. Unset attributes are inherited from the source (Packer drops
 * ENA, SR-IOV, boot mode, TPM and IMDS support unless set again; this does not).
 * @public
 */
export interface RegisterOptions {
  /** AMI name (`amiName`). */
  readonly name: string;
  /** Description, already rendered (`amiDescription`). */
  readonly description?: string;
  /** The source image; omit for fromScratch (then `rootDeviceName` and `blockDeviceMappings` are required). */
  readonly source?: RegisterSource;
  /** Root device name (`rootDeviceName`). @defaultValue the source's */
  readonly rootDeviceName?: string;
  /** Replaces the source's mappings entirely (`amiBlockDeviceMappings`); the root entry gets the new snapshot. */
  readonly blockDeviceMappings?: readonly BlockDeviceMapping[];
  /** Root size in GiB (`rootVolumeSize`); grows the root mapping. */
  readonly rootVolumeSize?: number;
  /** Root volume type of the AMI's mapping (`rootVolumeType`). @defaultValue the mapping's */
  readonly rootVolumeType?: VolumeTypeSetting;
  /** Root IOPS of the AMI's mapping. */
  readonly rootVolumeIops?: number;
  /** Root throughput of the AMI's mapping. */
  readonly rootVolumeThroughput?: number;
  /** Architecture (`amiArchitecture`). @defaultValue the source's; `x86_64` without one */
  readonly architecture?: ArchitectureSetting;
  /** `hvm` or `paravirtual` (`amiVirtualizationType`). @defaultValue the source's; `hvm` without one */
  readonly virtualizationType?: VirtualizationType;
  /** ENA (`enaSupport`). @defaultValue the source's */
  readonly enaSupport?: boolean;
  /** SR-IOV `simple` (`sriovSupport`). @defaultValue the source's */
  readonly sriovSupport?: boolean;
  /** Boot mode (`bootMode`). @defaultValue the source's */
  readonly bootMode?: BootModeSetting;
  /** UEFI variable store, base64 (`uefiData`). @defaultValue the source's */
  readonly uefiData?: string;
  /** NitroTPM `v2.0` (`tpmSupport`). @defaultValue the source's */
  readonly tpmSupport?: TpmSupport;
  /** IMDS support `v2.0` (`imdsSupport`); `''` is unset. @defaultValue the source's */
  readonly imdsSupport?: ImdsSupport;
}

/**
 * How {@link snapshotAndRegister} and {@link registerImage} register, share and tag an image.
 * @public
 */
export interface ImageRegistrationInput extends RegisterOptions, ImageSharing {
  /** Region. @defaultValue the EC2 client's */
  readonly region?: string;
  /** Tags for the image and its snapshots, already rendered (`tags`). */
  readonly tags?: Readonly<Record<string, string>>;
  /** Snapshot tags, already rendered; they win over `tags` on snapshots (`snapshotTags`). */
  readonly snapshotTags?: Readonly<Record<string, string>>;
  /** Build id; adds the `ami-chroot:build-id` and `ami-chroot:created-by` tags. */
  readonly buildId?: string;
  /** Deregister images of the same name (owned by this account) first (`forceDeregister`). */
  readonly forceDeregister?: boolean;
  /** Also delete their snapshots (`forceDeleteSnapshot`). */
  readonly forceDeleteSnapshot?: boolean;
  /** Regions whose same-name images `forceDeregister` also removes (`amiRegions`). */
  readonly amiRegions?: readonly string[];
  /** Re-encrypt by copying (`encryptBoot`): the registered image becomes an intermediary, replaced by an encrypted copy. */
  readonly encryptBoot?: boolean;
  /** KMS key of that copy (`kmsKeyId`). @defaultValue the account's default EBS key */
  readonly kmsKeyId?: string;
  /** Time-based snapshot copy for that copy: minutes it must complete in (`snapshotCopyDurationMinutes`). */
  readonly snapshotCopyDurationMinutes?: number;
}

/**
 * Input of {@link snapshotAndRegister}.
 * @public
 */
export interface SnapshotAndRegisterInput extends ImageRegistrationInput {
  /** The detached work volume. */
  readonly volumeId: string;
  /** Snapshot description. @defaultValue `ami-chroot: <name>` */
  readonly snapshotDescription?: string;
}

/**
 * Input of {@link registerImage}.
 * @public
 */
export interface RegisterImageInput extends ImageRegistrationInput {
  /** The completed root snapshot (e.g. from `uploadSnapshot` of `ami-chroot/aws`). */
  readonly snapshotId: string;
  /**
   * The call owns the snapshot: it deletes it when registration fails, and after an
   * `encryptBoot` copy replaces the image registered on it.
   * @defaultValue false
   */
  readonly ownsSnapshot?: boolean;
}

/**
 * A registered image. `deregister()` deregisters it and deletes its snapshots (the undo after a
 * later failure); it is idempotent. Disposing it does the same: use `await using` only for images
 * you mean to throw away.
 * @public
 */
export interface RegisteredImage extends AsyncDisposable {
  /** AMI id. */
  readonly imageId: string;
  /** Region. */
  readonly region: string;
  /** The snapshots this call created that the image uses. */
  readonly snapshotIds: readonly string[];
  /** AMI name. */
  readonly name: string;
  /** Deregisters the image and deletes its snapshots. Never uses the creating call's signal. */
  deregister(options?: { readonly signal?: AbortSignal }): Promise<void>;
}

// AWS rejects Encrypted (and a KMS key) next to a SnapshotId in RegisterImage: the snapshot decides.
function cleanEbs(ebs: EbsBlockDevice): EbsBlockDevice {
  const copy: EbsBlockDevice = {};
  if (ebs.DeleteOnTermination !== undefined) copy.DeleteOnTermination = ebs.DeleteOnTermination;
  if (ebs.Iops !== undefined) copy.Iops = ebs.Iops;
  if (ebs.SnapshotId !== undefined) copy.SnapshotId = ebs.SnapshotId;
  if (ebs.VolumeSize !== undefined) copy.VolumeSize = ebs.VolumeSize;
  if (ebs.VolumeType !== undefined) copy.VolumeType = ebs.VolumeType;
  if (ebs.Throughput !== undefined) copy.Throughput = ebs.Throughput;
  if (ebs.SnapshotId === undefined) {
    if (ebs.Encrypted !== undefined) copy.Encrypted = ebs.Encrypted;
    if (ebs.KmsKeyId !== undefined) copy.KmsKeyId = ebs.KmsKeyId;
  }
  return copy;
}

function cleanMapping(m: BlockDeviceMapping): BlockDeviceMapping {
  return {
    ...(m.DeviceName === undefined ? {} : { DeviceName: m.DeviceName }),
    ...(m.VirtualName === undefined ? {} : { VirtualName: m.VirtualName }),
    ...(m.NoDevice === undefined ? {} : { NoDevice: m.NoDevice }),
    ...(m.Ebs === undefined ? {} : { Ebs: cleanEbs(m.Ebs) }),
  };
}

function rootEbs(
  base: EbsBlockDevice | undefined,
  options: RegisterOptions,
  snapshotId: string,
  grow: boolean,
): EbsBlockDevice {
  const baseSize = base?.VolumeSize;
  const size =
    options.rootVolumeSize === undefined
      ? baseSize
      : grow && baseSize !== undefined
        ? Math.max(baseSize, options.rootVolumeSize)
        : options.rootVolumeSize;
  const type = options.rootVolumeType ?? base?.VolumeType ?? 'gp2';
  const sameType = type === base?.VolumeType;
  const iops = options.rootVolumeIops ?? (sameType ? base?.Iops : undefined);
  const throughput = options.rootVolumeThroughput ?? (sameType ? base?.Throughput : undefined);
  return {
    SnapshotId: snapshotId,
    DeleteOnTermination: base?.DeleteOnTermination ?? true,
    VolumeType: type,
    ...(size === undefined ? {} : { VolumeSize: size }),
    ...(iops === undefined ? {} : { Iops: iops }),
    ...(throughput === undefined ? {} : { Throughput: throughput }),
  };
}

/**
 * The RegisterImage request for a new root snapshot.
 * @internal
 */
export function registerImageRequest(
  options: RegisterOptions,
  snapshotId: string,
  name: string,
  tags: ReturnType<typeof tagList>,
): RegisterImageRequest {
  const { source } = options;
  const rootDeviceName = options.rootDeviceName ?? source?.rootDeviceName;
  const issues: { path: string; message: string }[] = [];
  if (!rootDeviceName)
    issues.push({ path: 'rootDeviceName', message: 'required without a source image (fromScratch)' });
  if (!source && !options.blockDeviceMappings?.length)
    issues.push({ path: 'amiBlockDeviceMappings', message: 'required without a source image (fromScratch)' });
  if (issues.length > 0 || !rootDeviceName) throw new ConfigError(issues);

  let mappings: BlockDeviceMapping[];
  if (options.blockDeviceMappings?.length) {
    mappings = options.blockDeviceMappings.map(cleanMapping);
    const root = mappings.findIndex((m) => sameDevice(m.DeviceName, rootDeviceName));
    if (root >= 0) {
      const m = mappings[root]!;
      mappings[root] = {
        ...m,
        DeviceName: m.DeviceName ?? rootDeviceName,
        Ebs: rootEbs(m.Ebs, options, snapshotId, false),
      };
    } else {
      mappings.unshift({ DeviceName: rootDeviceName, Ebs: rootEbs(undefined, options, snapshotId, false) });
    }
  } else {
    mappings = source!.blockDeviceMappings.map(cleanMapping);
    const root = mappings.findIndex((m) => sameDevice(m.DeviceName, rootDeviceName) && m.Ebs);
    const m = root >= 0 ? mappings[root]! : { DeviceName: rootDeviceName };
    const entry = { ...m, Ebs: rootEbs(m.Ebs, options, snapshotId, true) };
    if (root >= 0) mappings[root] = entry;
    else mappings.unshift(entry);
  }

  const virtualizationType = options.virtualizationType ?? source?.virtualizationType ?? 'hvm';
  const sriov =
    options.sriovSupport === undefined ? source?.sriovNetSupport : options.sriovSupport ? 'simple' : undefined;
  const ena = options.enaSupport ?? source?.enaSupport;
  const bootMode = options.bootMode ?? source?.bootMode;
  const tpm = options.tpmSupport ?? source?.tpmSupport;
  const imds = options.imdsSupport ?? source?.imdsSupport;
  const uefiData = options.uefiData ?? source?.uefiData;
  const specs = tagSpecs({ type: 'image', tags });
  return {
    Name: name,
    ...(options.description ? { Description: options.description } : {}),
    Architecture: (options.architecture ?? source?.architecture ?? 'x86_64') as ArchitectureValues,
    VirtualizationType: virtualizationType,
    RootDeviceName: rootDeviceName,
    BlockDeviceMappings: mappings,
    // Kernel and RAM disk only mean something for paravirtual images.
    ...(virtualizationType !== 'hvm' && source?.kernelId ? { KernelId: source.kernelId } : {}),
    ...(virtualizationType !== 'hvm' && source?.ramdiskId ? { RamdiskId: source.ramdiskId } : {}),
    ...(ena === undefined ? {} : { EnaSupport: ena }),
    ...(sriov === undefined ? {} : { SriovNetSupport: sriov }),
    ...(bootMode === undefined ? {} : { BootMode: bootMode as BootModeValues }),
    ...(uefiData === undefined ? {} : { UefiData: uefiData }),
    ...(tpm === undefined ? {} : { TpmSupport: tpm as TpmSupportValues }),
    ...(imds === undefined ? {} : { ImdsSupport: imds as ImdsSupportValues }),
    ...(specs ? { TagSpecifications: specs } : {}),
  };
}

/**
 * Waits until an image is available and returns it.
 * @internal
 */
export async function waitImageAvailable(
  ec2: EC2Client,
  imageId: string,
  kind: 'imageAvailable' | 'copyAvailable',
  ctx: Ctx,
  region: string,
  options: Pick<AwsOperationOptions, 'polling' | 'clock'>,
  createdAt: number,
): Promise<Image> {
  const result = await pollUntil({
    read: imageReads({
      ec2,
      region,
      ctx,
      phase: kind === 'copyAvailable' ? 'copy' : 'register',
      clock: options.clock,
    })(imageId),
    evaluate: (image) => {
      const state = image?.State ?? 'not-visible-yet';
      if (image && state === 'available') return { done: true, value: image, state };
      if (state === 'failed' || state === 'invalid' || state === 'deregistered' || state === 'error') {
        return {
          failed: true,
          state,
          message: `${image?.StateReason?.Message ?? 'EC2 gave no reason.'} Check the snapshot, the KMS key (permissions, region) and the image quotas.`,
        };
      }
      return { done: false, state };
    },
    waitingFor: `${kind === 'copyAvailable' ? 'image copy' : 'image'} ${imageId} to be available in ${region}`,
    id: imageId,
    kind,
    policy: policyFor(kind, options, ctx),
    ctx,
    region,
    phase: kind === 'copyAvailable' ? 'copy' : 'register',
    resources: { imageId, region },
    createdAt,
    ...pollBits(options),
  });
  return result.value;
}

function now(options: Pick<AwsOperationOptions, 'clock'>): number {
  return (options.clock ?? realClock).now();
}

/**
 * Finds and deregisters every image of this name owned by the account, in each region (Packer
 * `force_deregister`), deleting their snapshots too when asked (`force_delete_snapshot`).
 *
 * @example
 * ```ts
 * import { createAwsClients, deregisterImagesByName } from 'ami-chroot/aws';
 *
 * const clients = createAwsClients({ region: 'us-east-1' });
 * // Free the name in every region before registering it again (Packer's force_deregister + force_delete_snapshot).
 * const removed = await deregisterImagesByName(
 *   { name: 'web-base', regions: ['us-east-1', 'eu-west-1'], deleteSnapshots: true },
 *   { ec2: clients.ec2 },
 * );
 * for (const image of removed) console.log(image.region, image.imageId, image.snapshotIds); // eu-west-1 ami-0… [ 'snap-0…' ]
 * ```
 * @returns what was removed, per region
 * @public
 */
export async function deregisterImagesByName(
  input: { readonly name: string; readonly regions: readonly string[]; readonly deleteSnapshots?: boolean },
  options: OperationOptionsWithEc2,
): Promise<
  {
    /** The region of the image. */
    region: string;
    /** The image deregistered. */
    imageId: string;
    /** Its snapshots deleted (empty unless `deleteSnapshots`). */
    snapshotIds: string[];
  }[]
> {
  const { DescribeImagesCommand } = await ec2Sdk();
  const ctx = toCtx(options);
  const first = input.regions[0];
  if (first === undefined) return [];
  const ec2Of = ec2InRegion(options.ec2, typeof options.ec2 === 'function' ? first : await options.ec2.config.region());
  const removed: { region: string; imageId: string; snapshotIds: string[] }[] = [];
  for (const region of [...new Set(input.regions)]) {
    const ec2 = ec2Of(region);
    const out = await send(
      ec2,
      new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: [input.name] }] }),
      ctx,
      { phase: 'deregister', region },
    );
    for (const image of out.Images ?? []) {
      if (!image.ImageId || image.Name !== input.name) continue;
      const snapshotIds = input.deleteSnapshots ? snapshotIdsOf(image) : [];
      ctx.logger.info(`forceDeregister: removing ${image.ImageId} (${input.name}) in ${region}`);
      // Once the image is gone, a snapshot that cannot be deleted must not stop the new image.
      await removeImage(ec2, image.ImageId, snapshotIds, ctx, region, {
        onSnapshotError: (snapshotId, error) =>
          ctx.logger.warn(
            `forceDeleteSnapshot: ${image.ImageId} is deregistered but its snapshot ${snapshotId} in ${region} could not be deleted (${messageOf(error)}); delete it by hand`,
          ),
      });
      removed.push({ region, imageId: image.ImageId, snapshotIds });
    }
  }
  return removed;
}

/**
 * Options of the AWS primitives that read or remove but create nothing
 * ({@link deregisterImagesByName}, {@link findTaggedResources}).
 * @public
 */
export type OperationOptionsWithEc2 = Pick<AwsOperationOptions, 'ec2' | 'signal' | 'logger' | 'onProgress'>;

/**
 * Waits until a snapshot is completed, with percent progress.
 * @internal
 */
export async function waitSnapshotCompleted(
  ec2: EC2Client,
  snapshotId: string,
  ctx: Ctx,
  region: string,
  options: AwsOperationOptions,
  createdAt: number,
): Promise<void> {
  await pollUntil({
    read: snapshotReads({ ec2, region, ctx, phase: 'snapshot', clock: options.clock })(snapshotId),
    evaluate: (snapshot) => {
      const state = snapshot?.State ?? 'not-visible-yet';
      if (state === 'completed') return { done: true, value: undefined, state };
      if (state === 'error') {
        return {
          failed: true,
          state,
          message: `${snapshot?.StateMessage ?? 'EC2 gave no reason.'} Check the volume and the KMS key permissions.`,
        };
      }
      const percent = Number.parseInt(snapshot?.Progress ?? '', 10);
      return Number.isFinite(percent)
        ? { done: false, state, progress: Math.max(0, Math.min(100, percent)) }
        : { done: false, state };
    },
    waitingFor: `snapshot ${snapshotId} to be completed`,
    id: snapshotId,
    kind: 'snapshotCompleted',
    policy: policyFor('snapshotCompleted', options, ctx),
    ctx,
    region,
    phase: 'snapshot',
    resources: { snapshotId, region },
    createdAt,
    ...pollBits(options),
  });
}

/** Where a registration's undo steps go (run last first if a later step fails). */
type UndoList = { name: string; run: (signal: AbortSignal) => Promise<void> }[];

/** What every step of one registration shares. */
interface Registration {
  readonly ec2: EC2Client;
  readonly region: string;
  readonly input: ImageRegistrationInput;
  readonly undo: UndoList;
  readonly ctx: Ctx;
  readonly options: AwsOperationOptions;
  /** Runs each step as a phase: the build's hooked, timed steps, or the call's own. */
  readonly phase: PhaseRunner;
}

function cleanCtx(ctx: Ctx, signal: AbortSignal): Ctx {
  return { ...ctx, signal };
}

/**
 * Registers an image on a completed snapshot, then encrypts, shares and protects it, each step a
 * phase. Undo steps are pushed onto `undo` as resources appear. `dropSnapshot` deletes the
 * snapshot when this call owns it (an encrypted copy replaces it); the final image's
 * `deregister()` deletes it either way.
 */
async function registerSnapshot(
  r: Registration,
  snapshotId: string,
  dropSnapshot: ((signal: AbortSignal) => Promise<void>) | undefined,
): Promise<RegisteredImage> {
  const { ec2, region, input, ctx, options, phase } = r;
  // Same-name images go (only now, so a failed snapshot leaves the old image in place).
  if (input.forceDeregister) {
    await phase('deregister', () =>
      deregisterImagesByName(
        {
          name: input.name,
          regions: [region, ...(input.amiRegions ?? [])],
          deleteSnapshots: input.forceDeleteSnapshot ?? false,
        },
        { ...options, ec2: typeof options.ec2 === 'function' ? options.ec2 : ec2InRegion(options.ec2, region) },
      ),
    );
  }
  const registered = await phase('register', () => registerStep(r, snapshotId, dropSnapshot));
  let imageId = registered.imageId;
  let snapshotIds = [snapshotId];
  if (input.encryptBoot) {
    ({ imageId, snapshotIds } = await phase('encrypt', () => encryptStep(r, imageId, dropSnapshot, registered.drop)));
  }
  await shareStep(r, imageId, snapshotIds);

  const finalId = imageId;
  const protectedImage = input.deregistrationProtection?.enabled ?? false;
  const remove = idempotent((signal: AbortSignal) =>
    removeImage(ec2, finalId, snapshotIds, cleanCtx(ctx, signal), region, { unprotect: protectedImage }),
  );
  const handle: RegisteredImage = {
    imageId: finalId,
    region,
    snapshotIds,
    name: input.name,
    deregister: (opts = {}) => remove(opts.signal ?? cleanupSignal(options.cleanupTimeoutMs ?? 600_000)),
    [Symbol.asyncDispose]: () => handle.deregister(),
  };
  ctx.logger.info(`Registered ${finalId} (${input.name}) in ${region}`, {
    phase: 'register',
    imageId: finalId,
    region,
  });
  return handle;
}

/** RegisterImage and its wait (the `register` phase); under `encryptBoot` the image is an intermediary. */
async function registerStep(
  r: Registration,
  snapshotId: string,
  dropSnapshot: ((signal: AbortSignal) => Promise<void>) | undefined,
): Promise<{ imageId: string; drop: (signal: AbortSignal) => Promise<void> }> {
  const { RegisterImageCommand } = await ec2Sdk();
  const { ec2, region, input, ctx, options } = r;
  const name = input.encryptBoot ? `ami-chroot-intermediary-${randomSuffix()}` : input.name;
  const request = registerImageRequest(input, snapshotId, name, tagList(input.tags, input.buildId));
  ctx.logger.info(`Registering ${name} from ${snapshotId}`, { phase: 'register', snapshotId, region });
  const registered = await send(ec2, new RegisterImageCommand(request), ctx, {
    phase: 'register',
    region,
    resources: { snapshotId },
  });
  const imageId = registered.ImageId;
  if (!imageId) throw new Error('RegisterImage returned no ImageId');
  ctx.emit({ type: 'resource', action: 'created', kind: 'image', id: imageId, region });
  // The image's undo deregisters it; the snapshot's undo (pushed earlier, run later) deletes the snapshot.
  const drop = idempotent((signal: AbortSignal) =>
    // DeleteAssociatedSnapshots with the image, when the snapshot is ours to delete.
    removeImage(ec2, imageId, dropSnapshot ? [snapshotId] : [], cleanCtx(ctx, signal), region),
  );
  r.undo.push({ name: `deregister image ${imageId}`, run: drop });
  await waitImageAvailable(ec2, imageId, 'imageAvailable', ctx, region, options, now(options));
  ctx.logger.info(`Image ${imageId} is available`, { phase: 'register', imageId, region });
  return { imageId, drop };
}

/** `encryptBoot` (the `encrypt` phase): an encrypted copy replaces the intermediary image. */
async function encryptStep(
  r: Registration,
  intermediaryId: string,
  dropSnapshot: ((signal: AbortSignal) => Promise<void>) | undefined,
  dropIntermediary: (signal: AbortSignal) => Promise<void>,
): Promise<{ imageId: string; snapshotIds: string[] }> {
  const { CopyImageCommand } = await ec2Sdk();
  const { ec2, region, input, ctx, options } = r;
  ctx.logger.info(`Copying ${intermediaryId} to an encrypted image ${input.name}`, {
    phase: 'encrypt',
    imageId: intermediaryId,
    region,
  });
  const copy = await send(
    ec2,
    // In its own region the copy takes input.kmsKeyId as it is (no regionKmsKeyIds here).
    new CopyImageCommand(
      copyImageRequest(
        { ...input, regionKmsKeyIds: {}, sourceImageId: intermediaryId, sourceRegion: region, encryptBoot: true },
        region,
      ),
    ),
    ctx,
    { phase: 'encrypt', region, resources: { imageId: intermediaryId } },
  );
  const copyId = copy.ImageId;
  if (!copyId) throw new Error('CopyImage returned no ImageId');
  ctx.emit({ type: 'resource', action: 'created', kind: 'image', id: copyId, region });
  // Filled in once the copy is available; until then the undo asks EC2.
  const known: { snapshots?: string[] } = {};
  const dropCopy = idempotent(async (signal: AbortSignal) => {
    const c = cleanCtx(ctx, signal);
    const snaps =
      known.snapshots ?? snapshotIdsOf(await describeImage(ec2, copyId, c, region, signal).catch(() => undefined));
    // The encrypted copy's snapshots are ours even while it is pending or not yet describable.
    await removeImage(ec2, copyId, snaps, c, region, { ownSnapshots: true });
  });
  r.undo.push({ name: `deregister encrypted copy ${copyId}`, run: dropCopy });
  const copied = await waitImageAvailable(ec2, copyId, 'copyAvailable', ctx, region, options, now(options));
  known.snapshots = snapshotIdsOf(copied);
  // The intermediary has served its purpose.
  const signal = cleanupSignal(options.cleanupTimeoutMs ?? 600_000);
  await dropIntermediary(signal);
  await dropSnapshot?.(signal);
  return { imageId: copyId, snapshotIds: known.snapshots };
}

/** Sharing (`permissions`), deprecation (`deprecate`), then protection (`permissions` again: it comes last). */
async function shareStep(r: Registration, imageId: string, snapshotIds: readonly string[]): Promise<void> {
  const { ec2, region, input, ctx, phase } = r;
  if (grantsPermissions(input))
    await phase('permissions', () => grantPermissions(ec2, imageId, snapshotIds, input, ctx, region));
  const { deprecateAt, deregistrationProtection: protection } = input;
  if (deprecateAt !== undefined) await phase('deprecate', () => deprecateImage(ec2, imageId, deprecateAt, ctx, region));
  if (protection?.enabled)
    await phase('permissions', () => protectImages(() => ec2, { [region]: imageId }, protection, ctx));
}

function randomSuffix(): string {
  return randomBytes(5).toString('hex');
}

/**
 * Snapshots the detached work volume and registers the AMI, then shares and protects it.
 *
 * @remarks
 * Order: CreateSnapshot (tagged on create) and wait with percent progress; `forceDeregister` in
 * the build region and every `amiRegions` (after the new snapshot exists, as in Packer);
 * RegisterImage (tagged on create) and wait; with `encryptBoot`, an encrypted CopyImage replaces
 * the registered image, which is removed with its snapshot; then launch permissions, product
 * codes, snapshot permissions, deprecation, deregistration protection. If any step fails, the
 * image(s) and snapshot(s) this call created are removed before the error is thrown (unless
 * `keepOnError`). Each step that runs is reported as a phase (`phase-start`/`phase-end` of
 * `snapshot`, `deregister`, `register`, `encrypt`, `permissions`, `deprecate`).
 *
 * @example
 * ```ts
 * import { createAwsClients, snapshotAndRegister } from 'ami-chroot/aws';
 * import type { AttachedVolume, SourceImage } from 'ami-chroot/aws';
 *
 * declare const source: SourceImage;
 * declare const attached: AttachedVolume;
 *
 * const { ec2 } = createAwsClients({ region: 'eu-west-1' });
 * await attached.detach(); // the snapshot must see an unmounted, detached volume
 * const image = await snapshotAndRegister(
 *   { volumeId: attached.volumeId, name: 'web 2026-01-01', source, amiUsers: ['123456789012'], tags: { Team: 'platform' } },
 *   { ec2 },
 * );
 * console.log(image.imageId, image.snapshotIds); // ami-0… [ 'snap-0…' ]
 * ```
 * @throws {@link ConfigError} fromScratch without a root device or mappings
 * @throws {@link WaitFailedError} the snapshot or image failed
 * @throws {@link WaitTimeoutError} a wait ran out of time
 * @throws {@link AwsError} an EC2 call failed
 * @public
 */
export async function snapshotAndRegister(
  input: SnapshotAndRegisterInput,
  options: AwsOperationOptions,
): Promise<RegisteredImage> {
  const ctx = toCtx(options);
  const { client: ec2, region } = await ec2For(options.ec2, input.region);
  throwIfAborted(ctx.signal);
  // Validate the registration before creating anything.
  const intermediaryName = input.encryptBoot ? `ami-chroot-intermediary-${randomSuffix()}` : input.name;
  const imageTags = tagList(input.tags, input.buildId);
  const snapshotTags = tagList({ ...input.tags, ...input.snapshotTags }, input.buildId);
  registerImageRequest(input, 'snap-validate', intermediaryName, imageTags);

  const r: Registration = { ec2, region, input, undo: [], ctx, options, phase: phaseRunnerOf(options, ctx) };
  try {
    const snapshot = await r.phase('snapshot', () => snapshotStep(r, input, snapshotTags));
    return await registerSnapshot(r, snapshot.snapshotId, snapshot.drop);
  } catch (error) {
    throw await undoAfterFailure(error, r.undo, ctx, options);
  }
}

/** CreateSnapshot and its wait (the `snapshot` phase). */
async function snapshotStep(
  r: Registration,
  input: SnapshotAndRegisterInput,
  snapshotTags: ReturnType<typeof tagList>,
): Promise<{ snapshotId: string; drop: (signal: AbortSignal) => Promise<void> }> {
  const { CreateSnapshotCommand } = await ec2Sdk();
  const { ec2, region, ctx, options } = r;
  const snapSpecs = tagSpecs({ type: 'snapshot', tags: snapshotTags });
  ctx.logger.info(`Creating a snapshot of ${input.volumeId}`, { phase: 'snapshot', volumeId: input.volumeId, region });
  const snap = await send(
    ec2,
    new CreateSnapshotCommand({
      VolumeId: input.volumeId,
      Description: input.snapshotDescription ?? `ami-chroot: ${input.name}`,
      ...(snapSpecs ? { TagSpecifications: snapSpecs } : {}),
    }),
    ctx,
    { phase: 'snapshot', region, resources: { volumeId: input.volumeId } },
  );
  const snapshotId = snap.SnapshotId;
  if (!snapshotId) throw new Error('CreateSnapshot returned no SnapshotId');
  const snapshotCreatedAt = now(options);
  ctx.emit({ type: 'resource', action: 'created', kind: 'snapshot', id: snapshotId, region });
  const dropSnapshot = idempotent((signal: AbortSignal) =>
    deleteSnapshot(ec2, snapshotId, cleanCtx(ctx, signal), region),
  );
  r.undo.push({ name: `delete snapshot ${snapshotId}`, run: dropSnapshot });
  await waitSnapshotCompleted(ec2, snapshotId, ctx, region, options, snapshotCreatedAt);
  ctx.logger.info(`Snapshot ${snapshotId} is completed`, { phase: 'snapshot', snapshotId, region });
  return { snapshotId, drop: dropSnapshot };
}

/**
 * Registers an AMI on a completed root snapshot, with everything {@link snapshotAndRegister}
 * applies after its own snapshot: `forceDeregister`, mappings and attributes inherited from the
 * source, `encryptBoot`, sharing, tags, deprecation and deregistration protection.
 *
 * @remarks
 * The instance-less build's registration: the snapshot comes from {@link uploadSnapshot}. If a
 * step fails, the images this call created are removed (and the snapshot too when `ownsSnapshot`),
 * unless `keepOnError`.
 *
 * @example
 * ```ts
 * import { createAwsClients, registerImage } from 'ami-chroot/aws';
 * import type { SourceImage } from 'ami-chroot';
 *
 * declare const source: SourceImage;
 *
 * const { ec2 } = createAwsClients({ region: 'eu-west-1' });
 * const image = await registerImage(
 *   { snapshotId: 'snap-0123456789abcdef0', name: 'web 2026-01-01', source, tags: { Team: 'platform' } },
 *   { ec2 },
 * );
 * console.log(image.imageId, image.snapshotIds); // ami-0… [ 'snap-0123456789abcdef0' ]
 * ```
 * @throws {@link ConfigError} fromScratch without a root device or mappings; a malformed snapshot id
 * @throws {@link WaitFailedError} the image failed
 * @throws {@link WaitTimeoutError} a wait ran out of time
 * @throws {@link AwsError} an EC2 call failed
 * @public
 */
export async function registerImage(input: RegisterImageInput, options: AwsOperationOptions): Promise<RegisteredImage> {
  const ctx = toCtx(options);
  if (typeof input.snapshotId !== 'string' || !/^snap-[0-9a-f]+$/.test(input.snapshotId)) {
    throw new ConfigError([
      { path: 'snapshotId', value: input.snapshotId, message: 'must be a snapshot id such as snap-0123456789abcdef0' },
    ]);
  }
  const { client: ec2, region } = await ec2For(options.ec2, input.region);
  throwIfAborted(ctx.signal);
  const r: Registration = { ec2, region, input, undo: [], ctx, options, phase: phaseRunnerOf(options, ctx) };
  const { snapshotId } = input;
  const dropSnapshot = input.ownsSnapshot
    ? idempotent((signal: AbortSignal) => deleteSnapshot(ec2, snapshotId, cleanCtx(ctx, signal), region))
    : undefined;
  if (dropSnapshot) r.undo.push({ name: `delete snapshot ${snapshotId}`, run: dropSnapshot });
  try {
    // Inside the try: an owned snapshot goes even when the registration is refused outright.
    registerImageRequest(input, snapshotId, input.name, tagList(input.tags, input.buildId));
    return await registerSnapshot(r, snapshotId, dropSnapshot);
  } catch (error) {
    throw await undoAfterFailure(error, r.undo, ctx, options);
  }
}
