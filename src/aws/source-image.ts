/**
 * Finding the source AMI: by id, by filter (owners, aliases, most recent), or both.
 *
 * @packageDocumentation
 */
import { ec2Sdk } from './sdk.js';
import type { SourceAmiFilter } from '../config/types.js';
import type { BlockDeviceMapping, DescribeImagesRequest, EC2Client, Filter, Image } from '@aws-sdk/client-ec2';
import { ConfigError, SourceImageError } from '../errors.js';
import { toCtx } from '../internal/ctx.js';
import type { Ctx } from '../internal/ctx.js';
import { hasAwsCode } from './aws-errors.js';
import { defined } from '../internal/defined.js';
import { pages, send } from './call.js';
import { ec2For, sameDevice } from './common.js';
import type { AwsOperationOptions } from './common.js';

/**
 * Input of {@link resolveSourceAmi}: an id, a filter, or both (the id must then satisfy the filter).
 * @public
 */
export interface ResolveSourceAmiInput {
  /** The AMI id (Packer `source_ami`). */
  readonly sourceAmi?: string;
  /** The filter (Packer `source_ami_filter`). */
  readonly sourceAmiFilter?: SourceAmiFilter;
  /** Region to look in. @defaultValue the EC2 client's region */
  readonly region?: string;
}

/**
 * Everything later steps need from the source AMI.
 * @public
 */
export interface SourceImage {
  /** AMI id. */
  readonly imageId: string;
  /** Region it was found in. */
  readonly region: string;
  /** AMI name. */
  readonly name: string;
  /** Description, if any. */
  readonly description: string | undefined;
  /** Owner account id. */
  readonly ownerId: string;
  /** Owner alias (`amazon`, ...), if any. */
  readonly ownerAlias: string | undefined;
  /** Creation date, ISO 8601. */
  readonly creationDate: string;
  /** Architecture: `x86_64`, `arm64`, ... */
  readonly architecture: string;
  /** `hvm` or `paravirtual`. */
  readonly virtualizationType: string;
  /** Root device name, e.g. `/dev/xvda`. */
  readonly rootDeviceName: string;
  /** The root device's mapping (an EBS mapping). */
  readonly rootMapping: BlockDeviceMapping;
  /** Root snapshot id. */
  readonly rootSnapshotId: string;
  /** Root volume size in GiB. */
  readonly rootVolumeSize: number;
  /** Root volume type (`gp3`, `gp2`, `io1`, ...). */
  readonly rootVolumeType: string;
  /** Root volume IOPS, when set. */
  readonly rootIops: number | undefined;
  /** Root volume throughput in MiB/s, when set (gp3). */
  readonly rootThroughput: number | undefined;
  /** Whether the root snapshot is encrypted. */
  readonly rootEncrypted: boolean;
  /** KMS key of the root snapshot, when encrypted with one. */
  readonly rootKmsKeyId: string | undefined;
  /** ENA support. */
  readonly enaSupport: boolean;
  /** SR-IOV support (`simple`), if any. */
  readonly sriovNetSupport: string | undefined;
  /** Boot mode (`legacy-bios`, `uefi`, `uefi-preferred`), if set. */
  readonly bootMode: string | undefined;
  /** NitroTPM support (`v2.0`), if set. */
  readonly tpmSupport: string | undefined;
  /** IMDS support (`v2.0`), if set. */
  readonly imdsSupport: string | undefined;
  /** UEFI variable store (base64) of a UEFI image, when EC2 let us read it. */
  readonly uefiData: string | undefined;
  /** Kernel id (paravirtual images). */
  readonly kernelId: string | undefined;
  /** RAM disk id (paravirtual images). */
  readonly ramdiskId: string | undefined;
  /** Every block device mapping of the image. */
  readonly blockDeviceMappings: readonly BlockDeviceMapping[];
  /** Tags of the image. */
  readonly tags: Readonly<Record<string, string>>;
  /** The raw DescribeImages entry. */
  readonly image: Image;
}

function toFilters(filters: SourceAmiFilter['filters']): Filter[] {
  return Object.entries(filters ?? {}).map(([Name, value]) => ({
    Name,
    Values: typeof value === 'string' ? [value] : [...value],
  }));
}

function describeQuery(input: ResolveSourceAmiInput): string {
  const parts: string[] = [];
  if (input.sourceAmi) parts.push(`id ${input.sourceAmi}`);
  const f = input.sourceAmiFilter;
  if (f?.filters && Object.keys(f.filters).length > 0) {
    parts.push(
      `filters ${toFilters(f.filters)
        .map((x) => `${x.Name}=${(x.Values ?? []).join('|')}`)
        .join(', ')}`,
    );
  }
  if (f?.owners?.length) parts.push(`owners ${f.owners.join(', ')}`);
  return parts.join('; ');
}

async function describeAll(ec2: EC2Client, request: DescribeImagesRequest, ctx: Ctx, region: string): Promise<Image[]> {
  const { paginateDescribeImages } = await ec2Sdk();
  const images: Image[] = [];
  // MaxResults cannot go with ImageIds; such a request has one page.
  const pageSize = request.ImageIds?.length ? undefined : 1000;
  for await (const page of pages(paginateDescribeImages, ec2, { ...request }, ctx, {
    phase: 'source',
    region,
    ...defined({ pageSize }),
  }))
    images.push(...(page.Images ?? []));
  return images;
}

function tagsOf(image: Image): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const t of image.Tags ?? []) if (t.Key !== undefined) tags[t.Key] = t.Value ?? '';
  return tags;
}

/**
 * Builds a {@link SourceImage} from a DescribeImages entry, refusing images a chroot build cannot use.
 * @internal
 */
export function toSourceImage(image: Image, region: string): SourceImage {
  const id = image.ImageId ?? '(unknown id)';
  if (image.RootDeviceType !== 'ebs') {
    throw new SourceImageError(
      `The root device of source AMI ${id} (${image.Name ?? 'unnamed'}) is ${image.RootDeviceType ?? 'unknown'}, not EBS: a chroot build copies the root EBS snapshot, so pick an EBS-backed image (filter root-device-type=ebs).`,
      { resources: { imageId: id, region } },
    );
  }
  const mappings = image.BlockDeviceMappings ?? [];
  const rootMapping = mappings.find((m) => sameDevice(m.DeviceName, image.RootDeviceName) && m.Ebs);
  const ebs = rootMapping?.Ebs;
  if (!rootMapping || !ebs?.SnapshotId || !image.RootDeviceName) {
    throw new SourceImageError(
      `Source AMI ${id} has no EBS mapping with a snapshot for its root device ${image.RootDeviceName ?? '(none)'}: it cannot be copied. Pick another image.`,
      { resources: { imageId: id, region } },
    );
  }
  return {
    imageId: id,
    region,
    name: image.Name ?? '',
    description: image.Description,
    ownerId: image.OwnerId ?? '',
    ownerAlias: image.ImageOwnerAlias,
    creationDate: image.CreationDate ?? '',
    architecture: image.Architecture ?? 'x86_64',
    virtualizationType: image.VirtualizationType ?? 'hvm',
    rootDeviceName: image.RootDeviceName,
    rootMapping,
    rootSnapshotId: ebs.SnapshotId,
    rootVolumeSize: ebs.VolumeSize ?? 8,
    rootVolumeType: ebs.VolumeType ?? 'standard',
    rootIops: ebs.Iops,
    rootThroughput: ebs.Throughput,
    rootEncrypted: ebs.Encrypted ?? false,
    rootKmsKeyId: ebs.KmsKeyId,
    enaSupport: image.EnaSupport ?? false,
    sriovNetSupport: image.SriovNetSupport,
    bootMode: image.BootMode,
    tpmSupport: image.TpmSupport,
    imdsSupport: image.ImdsSupport,
    uefiData: undefined,
    kernelId: image.KernelId,
    ramdiskId: image.RamdiskId,
    blockDeviceMappings: mappings,
    tags: tagsOf(image),
    image,
  };
}

// The UEFI variable store is not in DescribeImages; without it a re-registered UEFI image would
// lose its Secure Boot variables. Not every account may read it for images it does not own.
async function readUefiData(ec2: object, imageId: string, ctx: Ctx, region: string): Promise<string | undefined> {
  const { DescribeImageAttributeCommand } = await ec2Sdk();
  try {
    const out = await send(ec2, new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: 'uefiData' }), ctx, {
      phase: 'source',
      region,
      resources: { imageId },
    });
    return out.UefiData?.Value || undefined;
  } catch (error) {
    if (ctx.signal?.aborted) throw error;
    ctx.logger.warn(
      `Could not read the UEFI data of source AMI ${imageId} (${error instanceof Error ? error.message.split('\n')[0] : String(error)}); ` +
        'the new image is registered without it unless uefiData is set.',
    );
    return undefined;
  }
}

/**
 * Finds the one source AMI a build starts from.
 *
 * @remarks
 * By id, by `sourceAmiFilter` (filters, owners including `self` and aliases, `mostRecent`), or
 * both, in which case the id must satisfy the filter. Exactly one image must result: none, or
 * several without `mostRecent`, is an error that lists what matched. Instance-store images are
 * refused. For a UEFI image, its UEFI variable store is read too (DescribeImageAttribute), so the
 * new image can keep it; if EC2 refuses, a warning says so and the build goes on.
 *
 * @example
 * ```ts
 * import { createAwsClients, resolveSourceAmi } from 'ami-chroot/aws';
 *
 * const { ec2 } = createAwsClients({ region: 'eu-west-1' });
 * const source = await resolveSourceAmi(
 *   { sourceAmiFilter: { filters: { name: 'debian-12-amd64-*', 'root-device-type': 'ebs' }, owners: ['136693071363'], mostRecent: true } },
 *   { ec2 },
 * );
 * console.log(source.imageId, source.name); // ami-0… debian-12-amd64-20251201-…
 * console.log(source.rootSnapshotId, source.rootVolumeSize, source.architecture); // snap-0… 8 x86_64
 * ```
 * @throws {@link SourceImageError} no match, ambiguous match, not EBS-backed, no root snapshot
 * @throws {@link ConfigError} neither an id nor a filter
 * @throws {@link AwsError} DescribeImages failed
 * @public
 */
export async function resolveSourceAmi(
  input: ResolveSourceAmiInput,
  options: AwsOperationOptions,
): Promise<SourceImage> {
  const ctx = toCtx(options);
  const filter = input.sourceAmiFilter;
  if (!input.sourceAmi && !filter) {
    throw new ConfigError([{ path: 'sourceAmi', message: 'set sourceAmi or sourceAmiFilter (or fromScratch)' }]);
  }
  const { client, region } = await ec2For(options.ec2, input.region);
  // With a filter, the id becomes one more filter (image-id) rather than ImageIds: EC2 applies both
  // either way, but some EC2-compatible endpoints (moto) ignore filters and owners next to ImageIds.
  const filters = [
    ...toFilters(filter?.filters),
    ...(input.sourceAmi && filter ? [{ Name: 'image-id', Values: [input.sourceAmi] }] : []),
  ];
  const request: DescribeImagesRequest = {
    ...(input.sourceAmi && !filter ? { ImageIds: [input.sourceAmi] } : {}),
    ...(filters.length > 0 ? { Filters: filters } : {}),
    ...(filter?.owners?.length ? { Owners: [...filter.owners] } : {}),
    ...(filter?.includeDeprecated ? { IncludeDeprecated: true } : {}),
  };
  const query = describeQuery(input);
  if (filter && !filter.owners?.length) {
    ctx.logger.warn(
      'sourceAmiFilter has no owners: an image published by anyone can match. Set owners (an account id, self, or an alias such as amazon).',
    );
  }
  ctx.logger.debug(`Looking up the source AMI in ${region}: ${query}`);

  let images: Image[];
  try {
    images = await describeAll(client, request, ctx, region);
  } catch (error) {
    if (
      input.sourceAmi &&
      hasAwsCode(error, 'InvalidAMIID.NotFound', 'InvalidAMIID.Malformed', 'InvalidAMIID.Unavailable')
    ) {
      throw new SourceImageError(
        `Source AMI ${input.sourceAmi} was not found in ${region}: check the id, the region, and that the image is shared with this account.`,
        { cause: error, resources: { imageId: input.sourceAmi, region } },
      );
    }
    throw error;
  }

  if (images.length === 0) {
    if (input.sourceAmi && filter) {
      // Say whether the id exists at all, or only fails the filter.
      const alone = await describeAll(client, { ImageIds: [input.sourceAmi] }, ctx, region).catch(() => []);
      if (alone.length > 0) {
        throw new SourceImageError(
          `Source AMI ${input.sourceAmi} exists in ${region} but does not satisfy sourceAmiFilter (${query}). Fix the filter or the id.`,
          { resources: { imageId: input.sourceAmi, region } },
        );
      }
    }
    throw new SourceImageError(`No AMI in ${region} matched ${query}. Check the filters, the owners and the region.`, {
      resources: { region },
    });
  }

  let chosen: Image;
  if (images.length > 1) {
    const newestFirst = [...images].sort((a, b) => (b.CreationDate ?? '').localeCompare(a.CreationDate ?? ''));
    if (!filter?.mostRecent) {
      const listed = newestFirst
        .slice(0, 10)
        .map((i) => `  - ${i.ImageId} ${i.Name ?? ''} (${i.CreationDate ?? '?'}, owner ${i.OwnerId ?? '?'})`);
      throw new SourceImageError(
        `${images.length} AMIs in ${region} matched ${query}; exactly one is needed. Narrow the filter or set mostRecent:\n${listed.join('\n')}` +
          (images.length > 10 ? `\n  ... and ${images.length - 10} more` : ''),
        { resources: { region } },
      );
    }
    chosen = newestFirst[0]!;
  } else {
    chosen = images[0]!;
  }
  let source = toSourceImage(chosen, region);
  if (source.bootMode === 'uefi' || source.bootMode === 'uefi-preferred') {
    source = { ...source, uefiData: await readUefiData(client, source.imageId, ctx, region) };
  }
  ctx.logger.info(`Source AMI: ${source.imageId} (${source.name}), root snapshot ${source.rootSnapshotId}`);
  return source;
}
