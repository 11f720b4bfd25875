import { describe, expect, it } from 'vitest';
import { WaitFailedError, WaitTimeoutError, ConfigError } from '../../../src/errors.js';
import { pollUntil, type PollClock, type PollVerdict } from '../../../src/aws/poll.js';
import {
  DEFAULT_WAIT_POLICIES,
  ETA_STRETCH_CAP,
  delayGrowth,
  resolveWaitPolicy,
  scheduleDelay,
  type ResolvedWaitPolicy,
} from '../../../src/aws/poll-policy.js';
import { toCtx } from '../../../src/internal/ctx.js';
import type { ProgressEvent } from '../../../src/types.js';

/** A virtual clock: sleeping advances time instantly, and every sleep is recorded. */
function virtualClock(): PollClock & { sleeps: number[] } {
  let t = 0;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => t,
    sleep: async (ms, signal) => {
      if (signal?.aborted) throw signal.reason;
      sleeps.push(ms);
      t += ms;
    },
  };
}

/** An EC2-like error as the SDK throws it. */
function awsError(code: string, status = 400): Error {
  return Object.assign(new Error(`${code} happened`), { name: code, $metadata: { httpStatusCode: status } });
}

interface Fake {
  state: string;
  progress?: number;
}

/** A resource whose state is a function of (virtual) time. */
function resource(clock: PollClock, at: (t: number) => Fake | Error) {
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    describe: async (): Promise<Fake> => {
      calls++;
      const r = at(clock.now());
      if (r instanceof Error) throw r;
      return r;
    },
  };
}

const evaluate = (r: Fake): PollVerdict<string> =>
  r.state === 'available' || r.state === 'completed'
    ? { done: true, value: r.state, state: r.state }
    : r.state === 'error'
      ? { failed: true, state: r.state, message: 'EC2 says the volume is broken.' }
      : r.progress === undefined
        ? { done: false, state: r.state }
        : { done: false, state: r.state, progress: r.progress };

function collector() {
  const events: ProgressEvent[] = [];
  const warnings: string[] = [];
  const ctx = toCtx({ onProgress: (e) => events.push(e), logger: { warn: (m: string) => warnings.push(m) } });
  return { events, warnings, ctx };
}

const volumePolicy = DEFAULT_WAIT_POLICIES.volumeAvailable;

describe('pollUntil', () => {
  it('returns after one Describe call when the resource is already in the target state', async () => {
    const clock = virtualClock();
    const r = resource(clock, () => ({ state: 'available' }));
    const { ctx } = collector();
    const result = await pollUntil({
      describe: r.describe,
      evaluate,
      waitingFor: 'volume vol-1 to be available',
      id: 'vol-1',
      kind: 'volumeAvailable',
      policy: volumePolicy,
      ctx,
      clock,
    });
    expect(result).toEqual({ value: 'available', polls: 1, elapsedMs: 0 });
    expect(clock.sleeps).toEqual([]);
  });

  it('polls again no later than a verdict asks, and otherwise on the schedule', async () => {
    const clock = virtualClock();
    let reads = 0;
    const { ctx } = collector();
    await pollUntil({
      describe: async () => ++reads,
      // The 2nd reading is due in 300 ms (a confirmation window ending); the 3rd asks for nothing.
      evaluate: (n): PollVerdict<number> =>
        n === 1
          ? { done: false, state: 'unconfirmed', readAgainInMs: 300 }
          : n === 2
            ? { done: false, state: 'x' }
            : { done: true, value: n },
      waitingFor: 'volume vol-1 to be detached',
      id: 'vol-1',
      kind: 'volumeDetached',
      policy: volumePolicy,
      ctx,
      clock,
      random: () => 0.5,
    });
    expect(clock.sleeps).toEqual([300, volumePolicy.minDelayMs]);
  });

  it('detects a short transition within about a second, polling no faster than the min delay', async () => {
    const clock = virtualClock();
    const readyAt = 5_300;
    const r = resource(clock, (t) => ({ state: t >= readyAt ? 'available' : 'creating' }));
    const { ctx } = collector();
    const result = await pollUntil({
      describe: r.describe,
      evaluate,
      waitingFor: 'volume vol-1 to be available',
      id: 'vol-1',
      kind: 'volumeAvailable',
      policy: volumePolicy,
      ctx,
      clock,
      random: () => 0.5,
    });
    expect(result.elapsedMs - readyAt).toBeLessThanOrEqual(volumePolicy.minDelayMs);
    expect(result.polls).toBe(r.calls);
    expect(Math.min(...clock.sleeps)).toBeGreaterThanOrEqual(volumePolicy.minDelayMs * 0.9);
  });

  it('spends far fewer calls than one per second on a long wait, with a lag of a few percent', async () => {
    const clock = virtualClock();
    const readyAt = 40 * 60_000;
    const r = resource(clock, (t) => ({ state: t >= readyAt ? 'available' : 'pending' }));
    const { ctx } = collector();
    const policy = DEFAULT_WAIT_POLICIES.imageAvailable;
    const result = await pollUntil({
      describe: r.describe,
      evaluate,
      waitingFor: 'image ami-1 to be available',
      id: 'ami-1',
      kind: 'imageAvailable',
      policy,
      ctx,
      clock,
    });
    expect(result.polls).toBeLessThan(readyAt / 1000 / 10);
    expect(result.elapsedMs - readyAt).toBeLessThanOrEqual(policy.maxDelayMs * 1.1);
    expect(Math.max(...clock.sleeps)).toBeLessThanOrEqual(policy.maxDelayMs * 1.1);
  });

  it('stretches the delay while snapshot progress moves steadily, yet still sees the end quickly', async () => {
    const clock = virtualClock();
    const doneAt = 60 * 60_000;
    const r = resource(clock, (t) =>
      t >= doneAt ? { state: 'completed' } : { state: 'pending', progress: Math.floor((t / doneAt) * 100) },
    );
    const { ctx } = collector();
    const policy = DEFAULT_WAIT_POLICIES.snapshotCompleted;
    const result = await pollUntil({
      describe: r.describe,
      evaluate,
      waitingFor: 'snapshot snap-1 to be completed',
      id: 'snap-1',
      kind: 'snapshotCompleted',
      policy,
      ctx,
      clock,
      random: () => 0.5,
    });
    const withoutProgress = virtualClock();
    const r2 = resource(withoutProgress, (t) => (t >= doneAt ? { state: 'completed' } : { state: 'pending' }));
    const plain = await pollUntil({
      describe: r2.describe,
      evaluate,
      waitingFor: 'snapshot snap-2 to be completed',
      id: 'snap-2',
      kind: 'snapshotCompleted',
      policy,
      ctx: collector().ctx,
      clock: withoutProgress,
      random: () => 0.5,
    });
    expect(result.polls).toBeLessThan(plain.polls);
    expect(result.elapsedMs - doneAt).toBeLessThanOrEqual(0.02 * doneAt);
  });

  it('does not stretch the delay for a snapshot that sits at 0% and then jumps to completed', async () => {
    const clock = virtualClock();
    const jumpAt = 3 * 60_000;
    const r = resource(clock, (t) => (t >= jumpAt ? { state: 'completed' } : { state: 'pending', progress: 0 }));
    const { ctx } = collector();
    const policy = DEFAULT_WAIT_POLICIES.snapshotCompleted;
    const result = await pollUntil({
      describe: r.describe,
      evaluate,
      waitingFor: 'snapshot snap-1 to be completed',
      id: 'snap-1',
      kind: 'snapshotCompleted',
      policy,
      ctx,
      clock,
      random: () => 0.5,
    });
    // The base schedule: the delay at the jump is k x elapsed (7.2 s), far below the 120 s max.
    expect(result.elapsedMs - jumpAt).toBeLessThanOrEqual(0.04 * jumpAt * 1.1);
  });

  it('emits wait events on every change of state, and snapshot-progress events with the percentage', async () => {
    const clock = virtualClock();
    const script: Fake[] = [
      { state: 'pending', progress: 0 },
      { state: 'pending', progress: 0 },
      { state: 'pending', progress: 40 },
      { state: 'completed' },
    ];
    let i = 0;
    const { ctx, events } = collector();
    await pollUntil({
      describe: async () => script[Math.min(i++, script.length - 1)]!,
      evaluate,
      waitingFor: 'snapshot snap-1 to be completed',
      id: 'snap-1',
      kind: 'snapshotCompleted',
      policy: DEFAULT_WAIT_POLICIES.snapshotCompleted,
      ctx,
      clock,
      region: 'eu-west-1',
    });
    expect(events.filter((e) => e.type === 'wait').map((e) => (e.type === 'wait' ? [e.state, e.polls] : null))).toEqual(
      [
        ['pending (0%)', 1],
        ['pending (40%)', 3],
        ['completed', 4],
      ],
    );
    expect(events.filter((e) => e.type === 'snapshot-progress')).toEqual([
      { type: 'snapshot-progress', snapshotId: 'snap-1', region: 'eu-west-1', percent: 0 },
      { type: 'snapshot-progress', snapshotId: 'snap-1', region: 'eu-west-1', percent: 40 },
      { type: 'snapshot-progress', snapshotId: 'snap-1', region: 'eu-west-1', percent: 100 },
    ]);
  });

  it('fails fast with WaitFailedError when the resource reaches a failure state', async () => {
    const clock = virtualClock();
    const r = resource(clock, (t) => ({ state: t >= 2_000 ? 'error' : 'creating' }));
    const error = await pollUntil({
      describe: r.describe,
      evaluate,
      waitingFor: 'volume vol-1 to be available',
      id: 'vol-1',
      kind: 'volumeAvailable',
      policy: volumePolicy,
      ctx: collector().ctx,
      clock,
      phase: 'volume',
      resources: { volumeId: 'vol-1' },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WaitFailedError);
    expect((error as WaitFailedError).state).toBe('error');
    expect((error as WaitFailedError).message).toContain('volume vol-1 to be available');
    expect((error as WaitFailedError).resources).toEqual({ volumeId: 'vol-1' });
    expect((error as WaitFailedError).phase).toBe('volume');
  });

  it('times out with an error naming the wait, the limit and the last state, polling once at the deadline', async () => {
    const clock = virtualClock();
    const r = resource(clock, () => ({ state: 'attaching' }));
    const policy: ResolvedWaitPolicy = { timeoutMs: 30_000, minDelayMs: 1_000, maxDelayMs: 5_000, firstDelayMs: 0 };
    const error = await pollUntil({
      describe: r.describe,
      evaluate,
      waitingFor: 'volume vol-1 to be attached to i-1',
      id: 'vol-1',
      kind: 'volumeAttached',
      policy,
      ctx: collector().ctx,
      clock,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WaitTimeoutError);
    const e = error as WaitTimeoutError;
    expect(e.waitedFor).toBe('volume vol-1 to be attached to i-1');
    expect(e.timeoutMs).toBe(30_000);
    expect(e.lastState).toBe('attaching');
    expect(e.message).toContain('30 s waiting for volume vol-1 to be attached to i-1 (last state: attaching)');
    expect(clock.now()).toBe(30_000);
  });

  it('treats InvalidVolume.NotFound right after creation as eventual consistency', async () => {
    const clock = virtualClock();
    const r = resource(clock, (t) => (t < 3_000 ? awsError('InvalidVolume.NotFound') : { state: 'available' }));
    const result = await pollUntil({
      describe: r.describe,
      evaluate,
      waitingFor: 'volume vol-1 to be available',
      id: 'vol-1',
      kind: 'volumeAvailable',
      policy: volumePolicy,
      ctx: collector().ctx,
      clock,
    });
    expect(result.value).toBe('available');
    expect(result.polls).toBeGreaterThan(1);
  });

  it('stops tolerating NotFound once the grace period after creation is over', async () => {
    const clock = virtualClock();
    const r = resource(clock, () => awsError('InvalidSnapshot.NotFound'));
    const error = await pollUntil({
      describe: r.describe,
      evaluate,
      waitingFor: 'snapshot snap-1 to be completed',
      id: 'snap-1',
      kind: 'snapshotCompleted',
      policy: DEFAULT_WAIT_POLICIES.snapshotCompleted,
      ctx: collector().ctx,
      clock,
      consistencyGraceMs: 10_000,
    }).catch((e: unknown) => e);
    expect((error as Error).name).toBe('InvalidSnapshot.NotFound');
    expect(clock.now()).toBeGreaterThanOrEqual(10_000);
    expect(clock.now()).toBeLessThan(20_000);
  });

  it('does not treat another resource kind’s NotFound as eventual consistency', async () => {
    const clock = virtualClock();
    const r = resource(clock, () => awsError('InvalidAMIID.NotFound'));
    await expect(
      pollUntil({
        describe: r.describe,
        evaluate,
        waitingFor: 'volume vol-1 to be available',
        id: 'vol-1',
        kind: 'volumeAvailable',
        policy: volumePolicy,
        ctx: collector().ctx,
        clock,
      }),
    ).rejects.toMatchObject({ name: 'InvalidAMIID.NotFound' });
    expect(r.calls).toBe(1);
  });

  it.each([
    ['RequestLimitExceeded', 400],
    ['Throttling', 400],
    ['ThrottlingException', 400],
    ['ServiceUnavailable', 503],
    ['InternalError', 503],
  ])('backs off on %s (HTTP %i) instead of failing', async (code, status) => {
    const clock = virtualClock();
    let n = 0;
    const { ctx, warnings } = collector();
    const result = await pollUntil({
      describe: async () => {
        n++;
        if (n <= 3) throw awsError(code, status);
        return { state: 'available' };
      },
      evaluate,
      waitingFor: 'volume vol-1 to be available',
      id: 'vol-1',
      kind: 'volumeAvailable',
      policy: volumePolicy,
      ctx,
      clock,
      random: () => 0.999,
    });
    expect(result.polls).toBe(4);
    // Exponential: each backoff at least as long as the one before.
    expect(clock.sleeps).toHaveLength(3);
    expect(clock.sleeps[1]!).toBeGreaterThan(clock.sleeps[0]!);
    expect(clock.sleeps[2]!).toBeGreaterThan(clock.sleeps[1]!);
    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toContain('throttling');
  });

  it('fails fast on any other error (an SDK waiter would spin on a 403 until its deadline)', async () => {
    const clock = virtualClock();
    const r = resource(clock, () => awsError('UnauthorizedOperation', 403));
    await expect(
      pollUntil({
        describe: r.describe,
        evaluate,
        waitingFor: 'volume vol-1 to be available',
        id: 'vol-1',
        kind: 'volumeAvailable',
        policy: volumePolicy,
        ctx: collector().ctx,
        clock,
      }),
    ).rejects.toMatchObject({ name: 'UnauthorizedOperation' });
    expect(r.calls).toBe(1);
  });

  it('rejects with the caller’s reason when aborted between polls (real clock)', async () => {
    const controller = new AbortController();
    const reason = new Error('user pressed ctrl-c');
    let calls = 0;
    const promise = pollUntil({
      describe: async () => {
        calls++;
        setTimeout(() => controller.abort(reason), 5);
        return { state: 'creating' };
      },
      evaluate,
      waitingFor: 'volume vol-1 to be available',
      id: 'vol-1',
      kind: 'volumeAvailable',
      policy: { timeoutMs: 600_000, minDelayMs: 60_000, maxDelayMs: 60_000, firstDelayMs: 0 },
      ctx: toCtx({ signal: controller.signal }),
    });
    await expect(promise).rejects.toBe(reason);
    expect(calls).toBe(1);
  });

  it('rejects with the caller’s reason when aborted during a Describe call, whatever the SDK threw', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    const promise = pollUntil({
      describe: async (signal) => {
        controller.abort(reason);
        expect(signal).toBe(controller.signal);
        throw Object.assign(new Error('Request aborted'), { name: 'AbortError' });
      },
      evaluate,
      waitingFor: 'image ami-1 to be available',
      id: 'ami-1',
      kind: 'imageAvailable',
      policy: DEFAULT_WAIT_POLICIES.imageAvailable,
      ctx: toCtx({ signal: controller.signal }),
    });
    await expect(promise).rejects.toBe(reason);
  });

  it('rejects at once when the signal is already aborted, without calling EC2', async () => {
    const reason = new Error('already');
    let calls = 0;
    await expect(
      pollUntil({
        describe: async () => {
          calls++;
          return { state: 'available' };
        },
        evaluate,
        waitingFor: 'x',
        id: 'x',
        kind: 'volumeAvailable',
        policy: volumePolicy,
        ctx: toCtx({ signal: AbortSignal.abort(reason) }),
      }),
    ).rejects.toBe(reason);
    expect(calls).toBe(0);
  });

  it('does not let an early progress estimate stretch a delay past 0.3 x the time waited', async () => {
    const clock = virtualClock();
    // 1 % every 4 s reads as "about 400 s left"; then EBS finishes the rest at 40 s.
    const doneAt = 40_000;
    const r = resource(clock, (t) =>
      t >= doneAt ? { state: 'completed' } : { state: 'pending', progress: Math.floor(t / 4_000) },
    );
    const policy = DEFAULT_WAIT_POLICIES.snapshotCompleted;
    const result = await pollUntil({
      describe: r.describe,
      evaluate,
      waitingFor: 'snapshot snap-1 to be completed',
      id: 'snap-1',
      kind: 'snapshotCompleted',
      policy,
      ctx: collector().ctx,
      clock,
      random: () => 0.5,
    });
    // Half the estimate would be a 120 s delay (the max); the cap keeps every delay to 0.3 x elapsed.
    const stretched = clock.sleeps.filter(
      (ms, i) => ms > policy.minDelayMs && ms > 0.3 * clock.sleeps.slice(0, i).reduce((a, b) => a + b, 0) + 1,
    );
    expect(stretched).toEqual([]);
    expect(result.elapsedMs - doneAt).toBeLessThanOrEqual(ETA_STRETCH_CAP * doneAt);
  });

  it('sees a 3 s copy within a second: no hold-off by default, short first delays', async () => {
    const clock = virtualClock();
    const r = resource(clock, (t) => ({ state: t >= 3_000 ? 'available' : 'pending' }));
    expect(DEFAULT_WAIT_POLICIES.copyAvailable.firstDelayMs).toBe(0);
    const result = await pollUntil({
      describe: r.describe,
      evaluate,
      waitingFor: 'image copy ami-2 to be available in eu-west-1',
      id: 'ami-2',
      kind: 'copyAvailable',
      policy: DEFAULT_WAIT_POLICIES.copyAvailable,
      ctx: collector().ctx,
      clock,
      random: () => 0.5,
    });
    expect(result.elapsedMs - 3_000).toBeLessThanOrEqual(1_000);
    expect(result.polls).toBe(r.calls);
  });

  it('polls a region copy at once, then not again before firstDelayMs, then on the copy schedule', async () => {
    const clock = virtualClock();
    const readyAt = 10 * 60_000;
    const r = resource(clock, (t) => ({ state: t >= readyAt ? 'available' : 'pending' }));
    const policy: ResolvedWaitPolicy = { ...DEFAULT_WAIT_POLICIES.copyAvailable, firstDelayMs: 60_000 };
    const result = await pollUntil({
      describe: r.describe,
      evaluate,
      waitingFor: 'image copy ami-2 to be available in eu-west-1',
      id: 'ami-2',
      kind: 'copyAvailable',
      policy,
      ctx: collector().ctx,
      clock,
      random: () => 0.5,
    });
    expect(clock.sleeps[0]).toBe(60_000);
    // From there the delay grows by the copy's own factor (0.045 x elapsed, min 1.6 s).
    expect(delayGrowth('copyAvailable')).toBe(0.045);
    expect(clock.sleeps[1]).toBeCloseTo(0.045 * 60_000);
    expect(result.elapsedMs - readyAt).toBeLessThanOrEqual(0.045 * readyAt * 1.1);
    expect(result.polls).toBe(r.calls);
  });

  it('finds a copy that is already available with its first poll, without waiting', async () => {
    const clock = virtualClock();
    const r = resource(clock, () => ({ state: 'available' }));
    const result = await pollUntil({
      describe: r.describe,
      evaluate,
      waitingFor: 'image copy ami-2 to be available',
      id: 'ami-2',
      kind: 'copyAvailable',
      policy: DEFAULT_WAIT_POLICIES.copyAvailable,
      ctx: collector().ctx,
      clock,
    });
    expect(result).toEqual({ value: 'available', polls: 1, elapsedMs: 0 });
    expect(clock.sleeps).toEqual([]);
  });

  it('holds off after the first poll even when it was throttled or not visible yet', async () => {
    const clock = virtualClock();
    const r = resource(clock, (t) => (t === 0 ? awsError('InvalidAMIID.NotFound') : { state: 'available' }));
    const policy: ResolvedWaitPolicy = { ...DEFAULT_WAIT_POLICIES.copyAvailable, firstDelayMs: 45_000 };
    const result = await pollUntil({
      describe: r.describe,
      evaluate,
      waitingFor: 'image copy ami-2 to be available',
      id: 'ami-2',
      kind: 'copyAvailable',
      policy,
      ctx: collector().ctx,
      clock,
    });
    expect(clock.sleeps).toEqual([45_000]);
    expect(result.polls).toBe(2);
  });

  it('never holds off past the deadline: a budget shorter than firstDelayMs polls at its end and times out', async () => {
    const clock = virtualClock();
    const r = resource(clock, () => ({ state: 'pending' }));
    const policy = resolveWaitPolicy(
      'copyAvailable',
      { waits: { copyAvailable: { timeoutMs: 30_000, firstDelayMs: 60_000 } } },
      {},
    );
    expect(policy.firstDelayMs).toBe(30_000);
    const error = await pollUntil({
      describe: r.describe,
      evaluate,
      waitingFor: 'image copy ami-2 to be available',
      id: 'ami-2',
      kind: 'copyAvailable',
      policy,
      ctx: collector().ctx,
      clock,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WaitTimeoutError);
    expect(clock.sleeps).toEqual([30_000]);
    expect(r.calls).toBe(2);
  });
});

describe('scheduleDelay', () => {
  const policy: ResolvedWaitPolicy = { timeoutMs: 3_600_000, minDelayMs: 2_000, maxDelayMs: 30_000, firstDelayMs: 0 };
  it('is the min delay early, k x elapsed later, and the max delay eventually', () => {
    expect(scheduleDelay({ elapsedMs: 1_000, policy })).toBe(2_000);
    expect(scheduleDelay({ elapsedMs: 300_000, policy })).toBeCloseTo(12_000);
    expect(scheduleDelay({ elapsedMs: 3_000_000, policy })).toBe(30_000);
  });
  it('allows half the estimated remaining time when progress moves, capped by the max delay', () => {
    expect(scheduleDelay({ elapsedMs: 100_000, policy, etaMs: 20_000 })).toBe(10_000);
    expect(scheduleDelay({ elapsedMs: 200_000, policy, etaMs: 600_000 })).toBe(30_000);
  });
  it('stretches no further than 0.3 x the time waited, and never below the base delay', () => {
    // 10 min left by the estimate after 20 s: half of it would be the max delay (30 s); 0.3 x 20 s = 6 s.
    expect(scheduleDelay({ elapsedMs: 20_000, policy, etaMs: 600_000 })).toBe(6_000);
    expect(scheduleDelay({ elapsedMs: 1_000, policy, etaMs: 600_000 })).toBe(2_000);
    expect(ETA_STRETCH_CAP).toBe(0.3);
  });
  it('polls at the estimated completion when it is closer than the base delay, never below the min delay', () => {
    expect(scheduleDelay({ elapsedMs: 300_000, policy, etaMs: 8_000 })).toBe(8_000);
    expect(scheduleDelay({ elapsedMs: 300_000, policy, etaMs: 500 })).toBe(2_000);
    expect(scheduleDelay({ elapsedMs: 300_000, policy, etaMs: 20_000 })).toBeCloseTo(12_000);
  });
  it('keeps a fixed Packer-style delay fixed', () => {
    const fixed = { timeoutMs: 600_000, minDelayMs: 5_000, maxDelayMs: 5_000, firstDelayMs: 0 };
    expect(scheduleDelay({ elapsedMs: 500_000, policy: fixed, etaMs: 1_000_000 })).toBe(5_000);
  });
});

describe('resolveWaitPolicy', () => {
  it('returns the defaults with no overrides', () => {
    expect(resolveWaitPolicy('snapshotCompleted', undefined, {})).toEqual(DEFAULT_WAIT_POLICIES.snapshotCompleted);
    expect(DEFAULT_WAIT_POLICIES.snapshotCompleted.timeoutMs).toBe(2 * 3_600_000);
    expect(DEFAULT_WAIT_POLICIES.volumeAttached.timeoutMs).toBe(300_000);
  });

  it('honours AWS_POLL_DELAY_SECONDS and AWS_MAX_ATTEMPTS: fixed delay, timeout = delay x attempts', () => {
    expect(
      resolveWaitPolicy('imageAvailable', undefined, { AWS_POLL_DELAY_SECONDS: '10', AWS_MAX_ATTEMPTS: '200' }),
    ).toEqual({
      timeoutMs: 2_000_000,
      minDelayMs: 10_000,
      maxDelayMs: 10_000,
      firstDelayMs: 0,
    });
  });

  it('lets the config win over the environment, field by field', () => {
    const env = { AWS_POLL_DELAY_SECONDS: '10', AWS_MAX_ATTEMPTS: '200' };
    expect(resolveWaitPolicy('volumeAvailable', { delayMs: 3_000 }, env)).toEqual({
      timeoutMs: 600_000,
      minDelayMs: 3_000,
      maxDelayMs: 3_000,
      firstDelayMs: 0,
    });
    expect(resolveWaitPolicy('volumeAvailable', { delayMs: 3_000, maxAttempts: 10 }, env)).toEqual({
      timeoutMs: 30_000,
      minDelayMs: 3_000,
      maxDelayMs: 3_000,
      firstDelayMs: 0,
    });
  });

  it('turns attempts alone into a budget with Packer’s delay for that wait, keeping adaptive polling', () => {
    expect(resolveWaitPolicy('volumeAttached', { maxAttempts: 100 }, {})).toEqual({
      ...DEFAULT_WAIT_POLICIES.volumeAttached,
      timeoutMs: 500_000,
    });
    expect(resolveWaitPolicy('snapshotCompleted', undefined, { AWS_MAX_ATTEMPTS: '600' })).toEqual({
      ...DEFAULT_WAIT_POLICIES.snapshotCompleted,
      timeoutMs: 9_000_000,
    });
  });

  it('never shortens a budget because only a delay was given (Packer’s 40-attempt pitfall)', () => {
    expect(resolveWaitPolicy('snapshotCompleted', { delayMs: 5_000 }, {}).timeoutMs).toBe(
      DEFAULT_WAIT_POLICIES.snapshotCompleted.timeoutMs,
    );
  });

  it('honours the deprecated AWS_TIMEOUT_SECONDS only when no attempts are given', () => {
    expect(resolveWaitPolicy('imageAvailable', undefined, { AWS_TIMEOUT_SECONDS: '7200' }).timeoutMs).toBe(7_200_000);
    expect(
      resolveWaitPolicy('imageAvailable', undefined, { AWS_TIMEOUT_SECONDS: '7200', AWS_MAX_ATTEMPTS: '10' }).timeoutMs,
    ).toBe(150_000);
  });

  it('lets per-wait settings win over everything', () => {
    const policy = resolveWaitPolicy(
      'copyAvailable',
      { delayMs: 5_000, waits: { copyAvailable: { timeoutMs: 10_800_000, maxDelayMs: 20_000, firstDelayMs: 60_000 } } },
      { AWS_MAX_ATTEMPTS: '3' },
    );
    expect(policy).toEqual({ timeoutMs: 10_800_000, minDelayMs: 5_000, maxDelayMs: 20_000, firstDelayMs: 60_000 });
    expect(resolveWaitPolicy('volumeAttached', { waits: { volumeAttached: { minDelayMs: 8_000 } } }, {})).toEqual({
      timeoutMs: 300_000,
      minDelayMs: 8_000,
      maxDelayMs: 8_000,
      firstDelayMs: 0,
    });
  });

  it('ignores malformed environment values with a warning', () => {
    const warnings: string[] = [];
    const policy = resolveWaitPolicy(
      'volumeAvailable',
      undefined,
      { AWS_POLL_DELAY_SECONDS: '2.5', AWS_MAX_ATTEMPTS: 'lots' },
      { warn: (m) => warnings.push(m) },
    );
    expect(policy).toEqual(DEFAULT_WAIT_POLICIES.volumeAvailable);
    expect(warnings).toEqual([
      'Ignoring AWS_POLL_DELAY_SECONDS="2.5": expected a positive whole number.',
      'Ignoring AWS_MAX_ATTEMPTS="lots": expected a positive whole number.',
    ]);
  });

  it('rejects non-positive config values and inverted delays with a ConfigError naming the option', () => {
    expect(() => resolveWaitPolicy('volumeAvailable', { delayMs: 0 }, {})).toThrow(ConfigError);
    expect(() => resolveWaitPolicy('volumeAvailable', { delayMs: 0 }, {})).toThrow('polling.delayMs');
    expect(() =>
      resolveWaitPolicy(
        'volumeAvailable',
        { waits: { volumeAvailable: { minDelayMs: 5_000, maxDelayMs: 1_000 } } },
        {},
      ),
    ).toThrow('polling.waits.volumeAvailable.maxDelayMs');
    expect(() => resolveWaitPolicy('copyAvailable', { waits: { copyAvailable: { firstDelayMs: -1 } } }, {})).toThrow(
      'polling.waits.copyAvailable.firstDelayMs',
    );
  });

  it('holds no wait off by default; polling.waits sets a hold-off for any wait', () => {
    expect(resolveWaitPolicy('copyAvailable', undefined, {}).firstDelayMs).toBe(0);
    expect(resolveWaitPolicy('snapshotCompleted', undefined, {}).firstDelayMs).toBe(0);
    expect(
      resolveWaitPolicy('copyAvailable', { waits: { copyAvailable: { firstDelayMs: 60_000 } } }, {}).firstDelayMs,
    ).toBe(60_000);
    expect(
      resolveWaitPolicy('snapshotCompleted', { waits: { snapshotCompleted: { firstDelayMs: 20_000 } } }, {})
        .firstDelayMs,
    ).toBe(20_000);
    // A Packer-style fixed delay changes the pace, not the hold-off; the environment neither.
    expect(
      resolveWaitPolicy(
        'copyAvailable',
        { delayMs: 5_000, waits: { copyAvailable: { firstDelayMs: 60_000 } } },
        { AWS_POLL_DELAY_SECONDS: '2' },
      ),
    ).toEqual({ timeoutMs: 7_200_000, minDelayMs: 5_000, maxDelayMs: 5_000, firstDelayMs: 60_000 });
  });

  it('clamps the hold-off to the timeout', () => {
    expect(
      resolveWaitPolicy(
        'copyAvailable',
        { delayMs: 5_000, maxAttempts: 4, waits: { copyAvailable: { firstDelayMs: 60_000 } } },
        {},
      ),
    ).toMatchObject({
      timeoutMs: 20_000,
      firstDelayMs: 20_000,
    });
  });
});
