import { describe, expect, it } from 'vitest';
import { EventClock } from '../../../fixtures/event-clock.js';
import { pollUntil } from '../../../src/aws/poll.js';
import { DEFAULT_WAIT_POLICIES } from '../../../src/aws/poll-policy.js';
import { DescribeBatch, sharedBatch } from '../../../src/aws/shared-poller.js';
import type { BatchFetch } from '../../../src/aws/shared-poller.js';
import { toCtx } from '../../../src/internal/ctx.js';
import { ec2Error } from './fixtures.js';

const quiet = toCtx({ logger: { warn: () => {}, error: () => {} } });

/** Resources that become ready at given times, and a fetch that records every call's ids. */
function fakeEc2(clock: EventClock, readyAt: Record<string, number>) {
  const calls: string[][] = [];
  const fetch: BatchFetch<{ id: string; state: string }> = async (ids) => {
    calls.push([...ids]);
    await Promise.resolve();
    const missing = ids.filter((id) => !(id in readyAt));
    if (missing.length > 0)
      throw ec2Error('InvalidVolume.NotFound', `The volume '${missing.join(',')}' does not exist.`);
    return new Map(ids.map((id) => [id, { id, state: clock.now() >= readyAt[id]! ? 'available' : 'creating' }]));
  };
  return { calls, fetch };
}

function waitFor(
  clock: EventClock,
  batch: DescribeBatch<{ id: string; state: string }>,
  fetch: BatchFetch<{ id: string; state: string }>,
  id: string,
  signal?: AbortSignal,
) {
  return pollUntil({
    read: (delayMs, slackMs, s) => batch.request(id, { delayMs, slackMs, fetch, signal: s }),
    evaluate: (v) =>
      v?.state === 'available'
        ? { done: true, value: clock.now(), state: v.state }
        : { done: false, state: v?.state ?? 'none' },
    waitingFor: `volume ${id} to be available`,
    id,
    kind: 'volumeAvailable',
    policy: DEFAULT_WAIT_POLICIES.volumeAvailable,
    ctx: signal ? { ...quiet, signal } : quiet,
    clock,
    random: () => 0.5,
  });
}

describe('shared poller', () => {
  it('eight concurrent waits share their Describe calls and each still sees its resource soon', async () => {
    const ready: Record<string, number> = {};
    for (let i = 0; i < 8; i++) ready[`vol-${i}`] = 3_000 + i * 1_300;

    // Alone: each wait with its own batch (as separate processes would be).
    let aloneCalls = 0;
    for (const id of Object.keys(ready)) {
      const clock = new EventClock();
      const ec2 = fakeEc2(clock, { [id]: ready[id]! });
      await clock.run(waitFor(clock, new DescribeBatch(clock), ec2.fetch, id));
      aloneCalls += ec2.calls.length;
    }

    const clock = new EventClock();
    const ec2 = fakeEc2(clock, ready);
    const batch = new DescribeBatch<{ id: string; state: string }>(clock);
    const seen = await clock.run(Promise.all(Object.keys(ready).map((id) => waitFor(clock, batch, ec2.fetch, id))));

    expect(ec2.calls.length).toBeLessThan(aloneCalls / 3);
    expect(batch.calls).toBe(ec2.calls.length);
    // The first call covers all eight; later ones every wait still open.
    expect(ec2.calls[0]).toHaveLength(8);
    Object.values(ready).forEach((at, i) => {
      const lag = seen[i]!.value - at;
      expect(lag).toBeGreaterThanOrEqual(0);
      expect(lag).toBeLessThanOrEqual(DEFAULT_WAIT_POLICIES.volumeAvailable.minDelayMs * 1.1);
    });
  });

  it('an id EC2 does not know fails only its own wait: the batch asks for each id alone', async () => {
    const clock = new EventClock();
    const ec2 = fakeEc2(clock, { 'vol-a': 2_000 });
    const batch = new DescribeBatch<{ id: string; state: string }>(clock);
    const known = waitFor(clock, batch, ec2.fetch, 'vol-a');
    const request = batch.request('vol-gone', { delayMs: 0, slackMs: 0, fetch: ec2.fetch });
    const unknown = request.then(
      () => 'resolved',
      (e: unknown) => (e as { name?: string }).name,
    );
    const [a, b] = await clock.run(Promise.all([known, unknown]));
    expect(a.value).toBeGreaterThanOrEqual(2_000);
    expect(b).toBe('InvalidVolume.NotFound');
    expect(ec2.calls[0]).toEqual(['vol-a', 'vol-gone']);
    expect(ec2.calls.slice(1, 3).sort()).toEqual([['vol-a'], ['vol-gone']]);
  });

  it('an aborted wait leaves at once with its reason; the others go on', async () => {
    const clock = new EventClock();
    const ec2 = fakeEc2(clock, { 'vol-a': 10_000, 'vol-b': 10_000 });
    const batch = new DescribeBatch<{ id: string; state: string }>(clock);
    const controller = new AbortController();
    const a = waitFor(clock, batch, ec2.fetch, 'vol-a', controller.signal).then(
      () => 'done',
      (e: unknown) => e,
    );
    const b = waitFor(clock, batch, ec2.fetch, 'vol-b');
    void clock.sleep(4_000).then(() => controller.abort(new Error('stop a')));
    const [outA, outB] = await clock.run(Promise.all([a, b]));
    expect((outA as Error).message).toBe('stop a');
    expect(outB.value).toBeGreaterThanOrEqual(10_000);
    // After the abort, calls cover vol-b alone.
    expect(ec2.calls.at(-1)).toEqual(['vol-b']);
  });

  it('batches are per client, region, kind and clock', () => {
    const clock = new EventClock();
    const client = {};
    const batch = sharedBatch(client, 'us-east-1', 'volumes', clock);
    expect(sharedBatch(client, 'us-east-1', 'volumes', clock)).toBe(batch);
    expect(sharedBatch(client, 'eu-west-1', 'volumes', clock)).not.toBe(batch);
    expect(sharedBatch(client, 'us-east-1', 'images', clock)).not.toBe(batch);
    expect(sharedBatch({}, 'us-east-1', 'volumes', clock)).not.toBe(batch);
    expect(sharedBatch(client, 'us-east-1', 'volumes', new EventClock())).not.toBe(batch);
  });
});
