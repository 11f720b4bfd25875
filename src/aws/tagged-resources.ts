/**
 * Finding what ami-chroot created, by its build-id tag, so a sweeper can remove what a killed
 * process left behind.
 *
 * @packageDocumentation
 */
import { ec2Sdk } from './sdk.js';
import type { Filter, Tag } from '@aws-sdk/client-ec2';
import { toCtx } from '../internal/ctx.js';
import { pages } from './call.js';
import { BUILD_ID_TAG, ec2For } from './common.js';
import type { OperationOptionsWithEc2 } from './images.js';

/**
 * A volume, snapshot or image carrying the build-id tag.
 * @public
 */
export interface TaggedResource {
  /** What it is. */
  readonly kind: 'volume' | 'snapshot' | 'image';
  /** Its id. */
  readonly id: string;
  /** Its region. */
  readonly region: string;
  /** The build that created it. */
  readonly buildId: string;
  /** When it was created, if EC2 says. */
  readonly createdAt: Date | undefined;
  /** Its state (`available`, `in-use`, `completed`, ...). */
  readonly state: string | undefined;
  /** Instances it is attached to (volumes). */
  readonly attachedTo: readonly string[];
}

/**
 * Input of {@link findTaggedResources}.
 * @public
 */
export interface FindTaggedResourcesInput {
  /** Only this build's resources. @defaultValue every build's */
  readonly buildId?: string;
  /** Only resources created before this time. */
  readonly olderThan?: Date;
  /** Region. @defaultValue the EC2 client's */
  readonly region?: string;
}

function buildIdOf(tags: readonly Tag[] | undefined): string {
  return tags?.find((t) => t.Key === BUILD_ID_TAG)?.Value ?? '';
}

/**
 * Lists the volumes, snapshots and images (owned by this account) that carry the
 * `ami-chroot:build-id` tag, in one region.
 *
 * @example
 * ```ts
 * import { createAwsClients, findTaggedResources } from 'ami-chroot/aws';
 *
 * const clients = createAwsClients({ region: 'eu-west-1' });
 * const dayAgo = new Date(Date.now() - 24 * 3_600_000);
 * for (const r of await findTaggedResources({ olderThan: dayAgo, region: 'eu-west-1' }, { ec2: clients.ec2 })) {
 *   console.log(r.kind, r.id, r.region, r.buildId, r.state, r.attachedTo); // volume vol-0… eu-west-1 0b1c… available []
 * }
 * ```
 * @public
 */
export async function findTaggedResources(
  input: FindTaggedResourcesInput,
  options: OperationOptionsWithEc2,
): Promise<TaggedResource[]> {
  const { paginateDescribeImages, paginateDescribeSnapshots, paginateDescribeVolumes } = await ec2Sdk();
  const ctx = toCtx(options);
  const { client: ec2, region } = await ec2For(options.ec2, input.region);
  const filters: Filter[] =
    input.buildId === undefined
      ? [{ Name: 'tag-key', Values: [BUILD_ID_TAG] }]
      : [{ Name: `tag:${BUILD_ID_TAG}`, Values: [input.buildId] }];
  const found: TaggedResource[] = [];
  const meta = { phase: 'recovery' as const, region };

  for await (const out of pages(paginateDescribeVolumes, ec2, { Filters: filters }, ctx, { ...meta, pageSize: 500 })) {
    for (const v of out.Volumes ?? []) {
      if (!v.VolumeId) continue;
      found.push({
        kind: 'volume',
        id: v.VolumeId,
        region,
        buildId: buildIdOf(v.Tags),
        createdAt: v.CreateTime,
        state: v.State,
        attachedTo: (v.Attachments ?? []).map((a) => a.InstanceId ?? '').filter(Boolean),
      });
    }
  }
  const snapshots = { OwnerIds: ['self'], Filters: filters };
  for await (const out of pages(paginateDescribeSnapshots, ec2, snapshots, ctx, { ...meta, pageSize: 1000 })) {
    for (const s of out.Snapshots ?? []) {
      if (!s.SnapshotId) continue;
      found.push({
        kind: 'snapshot',
        id: s.SnapshotId,
        region,
        buildId: buildIdOf(s.Tags),
        createdAt: s.StartTime,
        state: s.State,
        attachedTo: [],
      });
    }
  }
  const images = { Owners: ['self'], Filters: filters };
  for await (const out of pages(paginateDescribeImages, ec2, images, ctx, { ...meta, pageSize: 1000 })) {
    for (const i of out.Images ?? []) {
      if (!i.ImageId) continue;
      found.push({
        kind: 'image',
        id: i.ImageId,
        region,
        buildId: buildIdOf(i.Tags),
        createdAt: i.CreationDate ? new Date(i.CreationDate) : undefined,
        state: i.State,
        attachedTo: [],
      });
    }
  }

  const limit = input.olderThan?.getTime();
  return limit === undefined ? found : found.filter((r) => r.createdAt !== undefined && r.createdAt.getTime() < limit);
}
