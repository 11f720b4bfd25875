/**
 * Removal of an image and its snapshots in one region (a failed build's undo, force_deregister,
 * the orphan sweep), tolerant of both being gone and of EC2's late snapshot release.
 *
 * @packageDocumentation
 */
import { ec2Sdk } from './sdk.js';
import type { EC2Client } from '@aws-sdk/client-ec2';
import pRetry from 'p-retry';
import type { Ctx } from '../internal/ctx.js';
import { NOT_FOUND_CODES, hasAwsCode } from './aws-errors.js';
import { send } from './call.js';
import { unprotectImage } from './image-settings.js';

/**
 * Deregisters an image and deletes the given snapshots (its own), tolerating both being gone.
 *
 * @remarks
 * The snapshots go with DeregisterImage's `DeleteAssociatedSnapshots`: EC2 answers
 * `InvalidSnapshot.InUse` to a DeleteSnapshot for a while after the image is gone, so deleting
 * them separately right after would fail. One EC2 could not delete that way is deleted again,
 * retrying InUse for a bounded time. `onSnapshotError` turns a snapshot that still cannot be
 * deleted into a report instead of an error (the image is gone either way). `ownSnapshots` says
 * every snapshot of the image is ours (a copy this build made): they go with the image even when
 * their ids are not known, e.g. a copy still pending or not yet describable.
 * @internal
 */
export async function removeImage(
  ec2: EC2Client,
  imageId: string,
  snapshotIds: readonly string[],
  ctx: Ctx,
  region: string,
  options: {
    readonly unprotect?: boolean;
    readonly ownSnapshots?: boolean;
    readonly onSnapshotError?: (snapshotId: string, error: unknown) => void;
  } = {},
): Promise<void> {
  const { DeregisterImageCommand } = await ec2Sdk();
  const meta = { phase: 'cleanup' as const, region, resources: { imageId } };
  if (options.unprotect) await unprotectImage(ec2, imageId, ctx, region);
  const deleted = new Set<string>();
  try {
    const out = await send(
      ec2,
      new DeregisterImageCommand({
        ImageId: imageId,
        ...(snapshotIds.length > 0 || options.ownSnapshots ? { DeleteAssociatedSnapshots: true } : {}),
      }),
      ctx,
      meta,
    );
    for (const result of out.DeleteSnapshotResults ?? []) {
      if (result.SnapshotId && result.ReturnCode === 'success') {
        deleted.add(result.SnapshotId);
        if (!snapshotIds.includes(result.SnapshotId))
          ctx.emit({ type: 'resource', action: 'removed', kind: 'snapshot', id: result.SnapshotId, region });
      }
    }
    ctx.logger.info(`Deregistered ${imageId} in ${region}`);
  } catch (error) {
    if (!hasAwsCode(error, NOT_FOUND_CODES.image, 'InvalidAMIID.Unavailable')) throw error;
  }
  ctx.emit({ type: 'resource', action: 'removed', kind: 'image', id: imageId, region });
  for (const snapshotId of snapshotIds) {
    if (deleted.has(snapshotId)) {
      ctx.emit({ type: 'resource', action: 'removed', kind: 'snapshot', id: snapshotId, region });
      continue;
    }
    try {
      await deleteSnapshot(ec2, snapshotId, ctx, region);
    } catch (error) {
      if (!options.onSnapshotError) throw error;
      options.onSnapshotError(snapshotId, error);
    }
  }
}

/** How long DeleteSnapshot keeps retrying `InvalidSnapshot.InUse` (EC2 releases a deregistered image's snapshots late). */
export const SNAPSHOT_IN_USE_RETRY_MS = 120_000;

/**
 * Deletes a snapshot, tolerating one that is already gone and retrying `InvalidSnapshot.InUse`
 * with backoff for at most {@link SNAPSHOT_IN_USE_RETRY_MS}.
 * @internal
 */
export async function deleteSnapshot(ec2: EC2Client, snapshotId: string, ctx: Ctx, region: string): Promise<void> {
  const { DeleteSnapshotCommand } = await ec2Sdk();
  try {
    await pRetry(
      () =>
        send(ec2, new DeleteSnapshotCommand({ SnapshotId: snapshotId }), ctx, {
          phase: 'cleanup',
          region,
          resources: { snapshotId },
        }),
      {
        retries: 30,
        minTimeout: 500,
        maxTimeout: 10_000,
        randomize: true,
        maxRetryTime: SNAPSHOT_IN_USE_RETRY_MS,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        shouldRetry: ({ error }) => hasAwsCode(error, 'InvalidSnapshot.InUse'),
        onFailedAttempt: ({ error, attemptNumber }) =>
          ctx.logger.debug(`DeleteSnapshot ${snapshotId} attempt ${attemptNumber}: ${error.message.split('\n')[0]}`),
      },
    );
    ctx.logger.info(`Deleted snapshot ${snapshotId} in ${region}`);
  } catch (error) {
    if (!hasAwsCode(error, NOT_FOUND_CODES.snapshot)) throw error;
  }
  ctx.emit({ type: 'resource', action: 'removed', kind: 'snapshot', id: snapshotId, region });
}
