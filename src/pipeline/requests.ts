/**
 * The pure mapping from a resolved build config to the inputs of the AWS primitives (volume,
 * register, copies, sharing): no I/O, so every rule here is unit-tested on its own.
 */
import type { BlockDeviceMapping as Ec2BlockDeviceMapping } from '@aws-sdk/client-ec2';
import type { AwsAccess } from '../aws/clients.js';
import type { CopyToRegionsInput } from '../aws/regions.js';
import type { SnapshotAndRegisterInput } from '../aws/images.js';
import type { ImageSharing } from '../aws/image-settings.js';
import type { SourceImage } from '../aws/source-image.js';
import type { CreateVolumeInput } from '../aws/volumes.js';
import type { CompiledTemplate, ResolvedConfig, TemplateClock, TemplateData } from '../config/types.js';
import { defined } from '../internal/defined.js';

/** Packer's build data of the region and source image. @internal */
export type SourceData = Required<
  Pick<
    TemplateData,
    | 'BuildRegion'
    | 'SourceAMI'
    | 'SourceAMIName'
    | 'SourceAMICreationDate'
    | 'SourceAMIOwner'
    | 'SourceAMIOwnerName'
    | 'SourceAMITags'
  >
>;

/** Packer's build data of the source image (empty strings from scratch). @internal */
export function sourceTemplateData(region: string, source: SourceImage | undefined): SourceData {
  return {
    BuildRegion: region,
    SourceAMI: source?.imageId ?? '',
    SourceAMIName: source?.name ?? '',
    SourceAMICreationDate: source?.creationDate ?? '',
    SourceAMIOwner: source?.ownerId ?? '',
    SourceAMIOwnerName: source?.ownerAlias ?? '',
    SourceAMITags: source?.tags ?? {},
  };
}

/** Renders a record of templates (tags) with the build data. @internal */
export function renderRecord(
  templates: Readonly<Record<string, CompiledTemplate>>,
  data: TemplateData,
  clock: TemplateClock,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, template] of Object.entries(templates)) out[key] = template.render(data, clock);
  return out;
}

/** The AWS access settings of a config (credentials, endpoint, retries) for `createAwsClients`. @internal */
export function awsAccessOf(cfg: ResolvedConfig, region: string): AwsAccess {
  return defined({
    region,
    profile: cfg.profile,
    accessKey: cfg.credentials?.accessKeyId,
    secretKey: cfg.credentials?.secretAccessKey,
    token: cfg.credentials?.sessionToken,
    mfaCode: cfg.mfaCode,
    customEndpointEc2: cfg.customEndpointEc2,
    insecureSkipTlsVerify: cfg.insecureSkipTlsVerify,
    maxRetries: cfg.maxRetries,
    decodeAuthorizationMessages: cfg.decodeAuthorizationMessages,
  });
}

/** The work volume: the source's root snapshot (or blank from scratch, gp2 unless told). @internal */
export function workVolumeInput(
  cfg: ResolvedConfig,
  at: {
    readonly availabilityZone: string;
    readonly region: string;
    readonly source: SourceImage | undefined;
    readonly tags: Readonly<Record<string, string>>;
  },
): CreateVolumeInput {
  return {
    availabilityZone: at.availabilityZone,
    ...defined({
      source: at.source,
      size: cfg.rootVolumeSize,
      volumeType: cfg.rootVolumeType ?? (cfg.fromScratch ? 'gp2' : undefined),
      iops: cfg.rootVolumeIops,
      throughput: cfg.rootVolumeThroughput,
      initializationRate: cfg.rootVolumeInitializationRate,
      encrypted: cfg.rootVolumeEncryptBoot,
      kmsKeyId: cfg.rootVolumeKmsKeyId,
    }),
    tags: at.tags,
    buildId: cfg.buildId,
    region: at.region,
  };
}

/** `amiBlockDeviceMappings` in EC2's shape: no-device and ephemeral entries keep only their own fields. @internal */
export function blockDeviceMappingsOf(
  mappings: ResolvedConfig['amiBlockDeviceMappings'],
): Ec2BlockDeviceMapping[] | undefined {
  if (!mappings) return undefined;
  return mappings.map((m) => {
    if (m.noDevice) return { DeviceName: m.deviceName, NoDevice: '' };
    if (m.virtualName) return { DeviceName: m.deviceName, VirtualName: m.virtualName };
    return {
      DeviceName: m.deviceName,
      Ebs: defined({
        DeleteOnTermination: m.deleteOnTermination,
        Encrypted: m.encrypted,
        KmsKeyId: m.kmsKeyId,
        Iops: m.iops,
        Throughput: m.throughput,
        SnapshotId: m.snapshotId,
        VolumeSize: m.volumeSize,
        VolumeType: m.volumeType,
      }),
    };
  });
}

/** Who may launch the image and use its snapshots, deprecation and deregistration protection. @internal */
export function sharingOf(cfg: ResolvedConfig): ImageSharing {
  return {
    amiUsers: cfg.amiUsers,
    amiGroups: cfg.amiGroups,
    amiOrgArns: cfg.amiOrgArns,
    amiOuArns: cfg.amiOuArns,
    productCodes: cfg.amiProductCodes,
    snapshotUsers: cfg.snapshotUsers,
    snapshotGroups: cfg.snapshotGroups,
    // Deregistration protection is not here: buildAmi applies it last, once every region succeeded.
    ...defined({ deprecateAt: cfg.deprecateAt }),
  };
}

/** What the build registers and shares, rendered once for the image and its copies. @internal */
export interface ImageRequestData {
  /** Build region. */
  readonly region: string;
  /** The AMI name (rendered). */
  readonly name: string;
  /** The description (rendered). */
  readonly description: string | undefined;
  /** Image tags (rendered). */
  readonly tags: Readonly<Record<string, string>>;
  /** Snapshot tags (rendered). */
  readonly snapshotTags: Readonly<Record<string, string>>;
  /** Target regions of the copies (the build region excluded). */
  readonly copyRegions: readonly string[];
}

/**
 * The register input. With `skipSaveBuildRegion` the build-region image is a temporary one: its
 * own name, no sharing, no encryption (the copies carry it) and no forced deregistration (done
 * before, for the real name).
 * @internal
 */
export function registerInput(
  cfg: ResolvedConfig,
  request: ImageRequestData,
  at: { readonly volumeId: string; readonly source: SourceImage | undefined; readonly registerName: string },
): SnapshotAndRegisterInput {
  const temporary = cfg.skipSaveBuildRegion;
  const rootMapping = cfg.amiBlockDeviceMappings?.find((m) => m.deviceName === cfg.rootDeviceName);
  return {
    volumeId: at.volumeId,
    region: request.region,
    name: at.registerName,
    ...defined({
      description: request.description,
      source: at.source,
      rootDeviceName: cfg.rootDeviceName,
      blockDeviceMappings: blockDeviceMappingsOf(cfg.amiBlockDeviceMappings),
      rootVolumeSize: cfg.rootVolumeSize,
      // A root entry in amiBlockDeviceMappings that names its own type is more specific than
      // rootVolumeType (which from scratch defaults to gp2 for the work volume).
      rootVolumeType: rootMapping?.volumeType === undefined ? cfg.rootVolumeType : undefined,
      rootVolumeIops: cfg.rootVolumeIops,
      rootVolumeThroughput: cfg.rootVolumeThroughput,
      architecture: cfg.fromScratch || !at.source ? cfg.amiArchitecture : undefined,
      virtualizationType: cfg.amiVirtualizationType,
      enaSupport: cfg.enaSupport,
      sriovSupport: cfg.sriovSupport || undefined,
      bootMode: cfg.bootMode,
      uefiData: cfg.uefiData,
      tpmSupport: cfg.tpmSupport,
      imdsSupport: cfg.imdsSupport,
      encryptBoot: temporary ? undefined : cfg.encryptBoot,
      kmsKeyId: cfg.regionKmsKeyIds[request.region] || cfg.kmsKeyId,
      snapshotCopyDurationMinutes: cfg.snapshotCopyDurationMinutes,
    }),
    tags: request.tags,
    snapshotTags: request.snapshotTags,
    buildId: cfg.buildId,
    forceDeregister: temporary ? false : cfg.forceDeregister,
    forceDeleteSnapshot: cfg.forceDeleteSnapshot,
    amiRegions: request.copyRegions,
    ...(temporary ? {} : sharingOf(cfg)),
  };
}

/** The region copies of the registered image: the real name, encryption, tags and sharing. @internal */
export function copyInput(cfg: ResolvedConfig, request: ImageRequestData, sourceImageId: string): CopyToRegionsInput {
  return {
    sourceImageId,
    sourceRegion: request.region,
    regions: request.copyRegions,
    name: request.name,
    ...defined({
      description: request.description,
      encryptBoot: cfg.encryptBoot,
      kmsKeyId: cfg.kmsKeyId,
      snapshotCopyDurationMinutes: cfg.snapshotCopyDurationMinutes,
    }),
    regionKmsKeyIds: cfg.regionKmsKeyIds,
    tags: request.tags,
    snapshotTags: request.snapshotTags,
    buildId: cfg.buildId,
    // Regions were validated before anything was created.
    skipRegionValidation: true,
    ...sharingOf(cfg),
  };
}
