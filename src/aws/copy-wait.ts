/**
 * Waiting for a region copy without a blind wait: the copy's progress is its snapshots'.
 *
 * A copied image stays `pending` while EC2 copies its snapshots into the destination region, and
 * those snapshots report Progress there. So the wait reads the image once (which names its
 * snapshots), then reads the snapshots, whose progress schedules the polls as a snapshot wait's
 * does, and reads the image again as soon as they are completed. Without snapshot ids (an
 * endpoint that does not list them while pending), it polls the image on the copy's schedule,
 * which starts short: a copy done in seconds is seen within about a second.
 *
 * @packageDocumentation
 */
import type { EC2Client, Image, Snapshot } from '@aws-sdk/client-ec2';
import type { Ctx } from '../internal/ctx.js';
import { NOT_FOUND_CODES } from './aws-errors.js';
import { policyFor, pollBits } from './common.js';
import type { AwsOperationOptions } from './common.js';
import { pollUntil } from './poll.js';
import type { PollVerdict } from './poll.js';
import { snapshotIdsOf } from './image-settings.js';
import { imageReads, snapshotReads } from './shared-reads.js';
import type { Read } from './shared-reads.js';

/**
 * One reading of a copy: the image, and its snapshots once they are being tracked.
 * @internal
 */
export interface CopyReading {
  readonly image: Image | undefined;
  readonly snapshots?: readonly (Snapshot | undefined)[];
}

const FAILED_IMAGE_STATES = new Set(['failed', 'invalid', 'deregistered', 'error']);

/**
 * What a reading of a copy means.
 * @internal
 */
export function evaluateCopy(reading: CopyReading): PollVerdict<Image> {
  const { image, snapshots } = reading;
  const state = image?.State ?? 'not-visible-yet';
  if (image && state === 'available') return { done: true, value: image, state };
  if (FAILED_IMAGE_STATES.has(state)) {
    return {
      failed: true,
      state,
      message: `${image?.StateReason?.Message ?? 'EC2 gave no reason.'} Check the snapshot, the KMS key (permissions, region) and the image quotas.`,
    };
  }
  const broken = snapshots?.find((s) => s?.State === 'error');
  if (broken) {
    return {
      failed: true,
      state: `snapshot ${broken.SnapshotId ?? '?'} error`,
      message: `${broken.StateMessage ?? 'EC2 gave no reason.'} Check the KMS key of the destination region and its permissions.`,
    };
  }
  if (!snapshots || snapshots.length === 0) return { done: false, state };
  // The copy is as far as its slowest snapshot.
  const percents = snapshots.map((s) => (s?.State === 'completed' ? 100 : Number.parseInt(s?.Progress ?? '', 10)));
  if (percents.some((p) => !Number.isFinite(p))) return { done: false, state };
  return { done: false, state, progress: Math.max(0, Math.min(100, Math.min(...percents))) };
}

/**
 * Reads of a copy that switch from the image to its snapshots and back (see the module comment).
 * @internal
 */
export function copyReads(
  readImage: Read<Image | undefined>,
  snapshotRead: (id: string) => Read<Snapshot | undefined>,
) {
  let tracked: readonly string[] | undefined;
  let lastImage: Image | undefined;
  return async (delayMs: number, slackMs: number, signal: AbortSignal | undefined): Promise<CopyReading> => {
    if (tracked && tracked.length > 0) {
      const snapshots = await Promise.all(tracked.map((id) => snapshotRead(id)(delayMs, slackMs, signal)));
      if (!snapshots.every((s) => s?.State === 'completed')) return { image: lastImage, snapshots };
      // The image follows its snapshots within moments: look now, and from here on poll the image.
      tracked = [];
      lastImage = await readImage(0, 0, signal);
      return { image: lastImage, snapshots };
    }
    lastImage = await readImage(delayMs, slackMs, signal);
    if (tracked === undefined && lastImage?.State === 'pending') {
      const ids = snapshotIdsOf(lastImage);
      if (ids.length > 0) tracked = ids;
    }
    return { image: lastImage };
  };
}

/**
 * Waits until a region copy is available and returns its image.
 * @internal
 */
export async function waitCopyAvailable(
  ec2: EC2Client,
  imageId: string,
  ctx: Ctx,
  region: string,
  options: Pick<AwsOperationOptions, 'polling' | 'clock'>,
  createdAt: number,
): Promise<Image> {
  const scope = { ec2, region, ctx, phase: 'copy' as const, clock: options.clock };
  const result = await pollUntil({
    read: copyReads(imageReads(scope)(imageId), snapshotReads(scope)),
    evaluate: evaluateCopy,
    waitingFor: `image copy ${imageId} to be available in ${region}`,
    id: imageId,
    kind: 'copyAvailable',
    policy: policyFor('copyAvailable', options, ctx),
    ctx,
    region,
    phase: 'copy',
    resources: { imageId, region },
    // A copy's snapshots may be invisible for a moment too.
    notFoundCodes: [NOT_FOUND_CODES.image, NOT_FOUND_CODES.snapshot],
    createdAt,
    ...pollBits(options),
  });
  return result.value;
}
