import { DescribeImagesCommand, DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import type { Image } from '@aws-sdk/client-ec2';
import { describe, expect, it, vi } from 'vitest';
import { waitCopyAvailable } from '../../../src/aws/copy-wait.js';
import { DEFAULT_WAIT_POLICIES, DELAY_JITTER } from '../../../src/aws/poll-policy.js';
import { WaitFailedError } from '../../../src/errors.js';
import { toCtx } from '../../../src/internal/ctx.js';
import type { ProgressEvent } from '../../../src/types.js';
import { mockedEc2, virtualClock } from './fixtures.js';

const pendingCopy: Image = {
  ImageId: 'ami-copy',
  State: 'pending',
  BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-copy' } }],
};

function setup() {
  const ec2 = mockedEc2('eu-west-1');
  const events: ProgressEvent[] = [];
  const ctx = toCtx({ logger: { warn: () => {}, error: () => {} }, onProgress: (e) => events.push(e) });
  const clock = virtualClock();
  return { ec2, events, ctx, clock };
}

describe('waitCopyAvailable', () => {
  it("follows the copy's snapshot progress, then reads the image as soon as the snapshot is completed", async () => {
    const { ec2, events, ctx, clock } = setup();
    const start = clock.now();
    ec2.mock
      .on(DescribeImagesCommand)
      .resolvesOnce({ Images: [pendingCopy] })
      .resolves({ Images: [{ ...pendingCopy, State: 'available' }] });
    // Linear progress over 200 s.
    ec2.mock.on(DescribeSnapshotsCommand).callsFake(() => {
      const pct = Math.floor(((clock.now() - start) / 200_000) * 100);
      return {
        Snapshots: [
          pct >= 100
            ? { SnapshotId: 'snap-copy', State: 'completed', Progress: '100%' }
            : { SnapshotId: 'snap-copy', State: 'pending', Progress: `${pct}%` },
        ],
      };
    });
    const image = await waitCopyAvailable(ec2.client, 'ami-copy', ctx, 'eu-west-1', { clock }, start);
    expect(image.State).toBe('available');
    const names = ec2.names();
    // One image read to learn the snapshot, snapshot reads only, then one image read.
    expect(names[0]).toBe('DescribeImages');
    expect(names.slice(1, -1).every((n) => n === 'DescribeSnapshots')).toBe(true);
    expect(names.at(-1)).toBe('DescribeImages');
    expect(names.filter((n) => n === 'DescribeImages')).toHaveLength(2);
    // Seen within the copy schedule's bound, and with fewer polls than the schedule alone makes.
    expect(clock.now() - start - 200_000).toBeLessThanOrEqual(0.045 * 200_000 * 1.1);
    const states = events.flatMap((e) => (e.type === 'wait' ? [e.state] : []));
    expect(states.some((s) => /^pending \(\d+%\)$/.test(s))).toBe(true);
  });

  // The image schedule starts at the shortest delay, jittered by DELAY_JITTER either way: a copy
  // that ends between two polls is seen at the next, whatever the jitter draws. Both extremes
  // are pinned; with the smallest delays the second poll lands just before the 3 s mark.
  it.each([0, 0.5, 0.999])(
    'polls the image alone when it names no snapshot, and sees a 3 s copy within one shortest delay (jitter draw %s)',
    async (draw) => {
      vi.spyOn(Math, 'random').mockReturnValue(draw);
      const { ec2, ctx, clock } = setup();
      const start = clock.now();
      ec2.mock.on(DescribeImagesCommand).callsFake(() => ({
        Images: [{ ImageId: 'ami-copy', State: clock.now() - start >= 3_000 ? 'available' : 'pending' }],
      }));
      await waitCopyAvailable(ec2.client, 'ami-copy', ctx, 'eu-west-1', { clock }, start);
      const shortest = DEFAULT_WAIT_POLICIES.copyAvailable.minDelayMs;
      expect(clock.now() - start - 3_000).toBeLessThanOrEqual(shortest * (1 + DELAY_JITTER));
      expect(ec2.names().every((n) => n === 'DescribeImages')).toBe(true);
      expect(ec2.names().length).toBeLessThanOrEqual(4);
    },
  );

  it("fails at once when the copy's snapshot goes to error (a KMS key the region cannot use)", async () => {
    const { ec2, ctx, clock } = setup();
    ec2.mock.on(DescribeImagesCommand).resolves({ Images: [pendingCopy] });
    ec2.mock.on(DescribeSnapshotsCommand).resolves({
      Snapshots: [{ SnapshotId: 'snap-copy', State: 'error', StateMessage: 'KMS key is disabled' }],
    });
    const error = await waitCopyAvailable(ec2.client, 'ami-copy', ctx, 'eu-west-1', { clock }, clock.now()).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(WaitFailedError);
    expect((error as Error).message).toContain('KMS key is disabled');
    expect(ec2.names()).toEqual(['DescribeImages', 'DescribeSnapshots']);
  });
});
