/**
 * The Describe calls behind the waits, made through the process-wide batches of
 * `shared-poller.ts`: one DescribeVolumes, DescribeSnapshots or DescribeImages per client and
 * region covers every id waited on at that moment.
 *
 * @packageDocumentation
 */
import { ec2Sdk } from './sdk.js';
import type { EC2Client, Image, Snapshot, Volume } from '@aws-sdk/client-ec2';
import type { Phase } from '../errors.js';
import type { Ctx } from '../internal/ctx.js';
import { send } from './call.js';
import { realClock } from './poll.js';
import type { PollClock, PollOptions } from './poll.js';
import { sharedBatch } from './shared-poller.js';
import type { BatchFetch } from './shared-poller.js';

/**
 * Where a wait's readings come from.
 * @internal
 */
export interface ReadScope {
  readonly ec2: EC2Client;
  readonly region: string;
  /** Logger and events of the wait (the call made for a batch uses the first wait's). */
  readonly ctx: Ctx;
  /** Phase named by a failed call. */
  readonly phase: Phase;
  readonly clock?: PollClock | undefined;
}

/** The `read` option of `pollUntil`. @internal */
export type Read<T> = NonNullable<PollOptions<T, unknown>['read']>;

function byId<R>(items: readonly R[] | undefined, idOf: (item: R) => string | undefined): Map<string, R> {
  const map = new Map<string, R>();
  for (const item of items ?? []) {
    const id = idOf(item);
    if (id !== undefined) map.set(id, item);
  }
  return map;
}

function reader<R>(scope: ReadScope, kind: string, fetch: BatchFetch<R>): (id: string) => Read<R | undefined> {
  const batch = sharedBatch<R>(scope.ec2, scope.region, kind, scope.clock ?? realClock);
  return (id) => (delayMs, slackMs, signal) => batch.request(id, { delayMs, slackMs, fetch, signal });
}

// A call made for several waits names no single resource; one made for one wait names it.
function one<K extends string>(key: K, ids: readonly string[]): Partial<Record<K, string>> {
  return ids.length === 1 && ids[0] !== undefined ? ({ [key]: ids[0] } as Partial<Record<K, string>>) : {};
}

/**
 * Readings of volumes, shared by every wait on volumes of this client and region.
 * @internal
 */
export function volumeReads(scope: ReadScope): (volumeId: string) => Read<Volume | undefined> {
  return reader<Volume>(scope, 'volumes', async (ids, signal) => {
    const { DescribeVolumesCommand } = await ec2Sdk();
    const out = await send(scope.ec2, new DescribeVolumesCommand({ VolumeIds: [...ids] }), scope.ctx, {
      phase: scope.phase,
      region: scope.region,
      resources: one('volumeId', ids),
      signal,
    });
    return byId(out.Volumes, (v) => v.VolumeId);
  });
}

/**
 * Readings of snapshots, shared by every wait on snapshots of this client and region.
 * @internal
 */
export function snapshotReads(scope: ReadScope): (snapshotId: string) => Read<Snapshot | undefined> {
  return reader<Snapshot>(scope, 'snapshots', async (ids, signal) => {
    const { DescribeSnapshotsCommand } = await ec2Sdk();
    const out = await send(scope.ec2, new DescribeSnapshotsCommand({ SnapshotIds: [...ids] }), scope.ctx, {
      phase: scope.phase,
      region: scope.region,
      resources: one('snapshotId', ids),
      signal,
    });
    return byId(out.Snapshots, (s) => s.SnapshotId);
  });
}

/**
 * Readings of images, shared by every wait on images of this client and region.
 * @internal
 */
export function imageReads(scope: ReadScope): (imageId: string) => Read<Image | undefined> {
  return reader<Image>(scope, 'images', async (ids, signal) => {
    const { DescribeImagesCommand } = await ec2Sdk();
    const out = await send(scope.ec2, new DescribeImagesCommand({ ImageIds: [...ids] }), scope.ctx, {
      phase: scope.phase,
      region: scope.region,
      resources: one('imageId', ids),
      signal,
    });
    return byId(out.Images, (i) => i.ImageId);
  });
}
