/**
 * Concurrent builds in one process (issue 14 item 2): N builds' waits run at once through the
 * library's real `pollUntil` and its shared Describe batches (one per kind of resource and
 * region, as `shared-reads.ts` keys them), on a discrete-event virtual clock. Reported: Describe
 * calls per build and lag per build, next to Packer's calls on the same timelines (Packer
 * processes share nothing).
 */
import { EventClock } from '../../fixtures/event-clock.js';
import { pollUntil } from '../../src/aws/poll.js';
import { DEFAULT_WAIT_POLICIES } from '../../src/aws/poll-policy.js';
import { DescribeBatch } from '../../src/aws/shared-poller.js';
import type { BatchFetch } from '../../src/aws/shared-poller.js';
import { toCtx } from '../../src/internal/ctx.js';
import { createRng } from '../lib/prng.js';
import type { Rng } from '../lib/prng.js';
import { packerStrategy } from './policies.js';
import { BUILD_WAITS, doneState, sampleTimeline } from './timelines.js';
import type { SimKind, SimState, Timeline } from './timelines.js';

/** Which shared batch a wait reads through: the copy is read in its destination region. */
const BATCH_OF: Readonly<Record<SimKind, string>> = {
  volumeAvailable: 'volumes',
  volumeAttached: 'volumes',
  volumeDetached: 'volumes',
  snapshotCompleted: 'snapshots',
  imageAvailable: 'images',
  copyAvailable: 'copy-region',
};

/**
 * Results for one number of concurrent builds.
 * @internal
 */
export interface ConcurrentResult {
  readonly concurrency: number;
  readonly builds: number;
  /** Describe calls per build, ours (shared batches; +1 image read per copy). */
  readonly callsPerBuild: number;
  /** Packer's calls per build on the same timelines (+1 DescribeImages per copy). */
  readonly packerCallsPerBuild: number;
  /** Mean sum of the waits' lags per build, seconds. */
  readonly lagPerBuildS: number;
  /** Mean lag of waits under a minute, seconds. */
  readonly shortWaitLagS: number;
}

const quiet = toCtx({ logger: { warn: () => {}, error: () => {} } });

interface Live {
  readonly timeline: Timeline;
  readonly startedAt: number;
}

async function runGroup(
  n: number,
  rng: Rng,
): Promise<{ calls: number; lagMs: number[]; shortLagMs: number[]; timelines: Timeline[][] }> {
  const clock = new EventClock();
  const live = new Map<string, Live>();
  const batches = new Map<string, DescribeBatch<SimState>>();
  const fetch: BatchFetch<SimState> = async (ids) => {
    await Promise.resolve();
    return new Map(
      ids.map((id) => {
        const w = live.get(id)!;
        return [id, w.timeline.at(clock.now() - w.startedAt)];
      }),
    );
  };
  const batchOf = (kind: SimKind): DescribeBatch<SimState> => {
    const key = BATCH_OF[kind];
    let batch = batches.get(key);
    if (!batch) {
      batch = new DescribeBatch<SimState>(clock);
      batches.set(key, batch);
    }
    return batch;
  };
  const timelines = Array.from({ length: n }, () => BUILD_WAITS.map((kind) => sampleTimeline(kind, rng)));
  const lagMs: number[] = [];
  const shortLagMs: number[] = [];
  const build = async (b: number): Promise<void> => {
    // Builds started together by one script drift apart by their host work (mounts, provisioning).
    await clock.sleep(rng.uniform(0, 5_000));
    for (const [w, kind] of BUILD_WAITS.entries()) {
      if (kind === 'volumeDetached') await clock.sleep(rng.uniform(5_000, 120_000)); // provisioning
      const timeline = timelines[b]![w]!;
      const id = `b${b}-${kind}`;
      const startedAt = clock.now();
      live.set(id, { timeline, startedAt });
      const batch = batchOf(kind);
      const done = doneState(kind);
      await pollUntil({
        read: (delayMs, slackMs) => batch.request(id, { delayMs, slackMs, fetch }),
        evaluate: (r: SimState | undefined) =>
          r?.state === done
            ? { done: true, value: true, state: r.state }
            : r?.progress === undefined
              ? { done: false, state: r?.state ?? 'none' }
              : { done: false, state: r.state, progress: r.progress },
        waitingFor: `${kind} (simulated)`,
        id,
        kind,
        policy: DEFAULT_WAIT_POLICIES[kind],
        ctx: quiet,
        clock,
        random: () => rng.next(),
      });
      const lag = clock.now() - startedAt - timeline.doneAtMs;
      lagMs.push(lag);
      if (timeline.doneAtMs < 60_000) shortLagMs.push(lag);
      live.delete(id);
    }
  };
  await clock.run(Promise.all(Array.from({ length: n }, (_, b) => build(b))));
  let calls = n; // the copied image read once its snapshots are completed, per build
  for (const batch of batches.values()) calls += batch.calls;
  return { calls, lagMs, shortLagMs, timelines };
}

/**
 * Runs `totalBuilds` builds in groups of `concurrency` (each group in one simulated process).
 * @internal
 */
export async function runConcurrentBuilds(
  concurrency: number,
  totalBuilds: number,
  seed: number,
): Promise<ConcurrentResult> {
  const rng = createRng(seed, `concurrent/${concurrency}`);
  const packer = packerStrategy();
  let calls = 0;
  let packerCalls = 0;
  let builds = 0;
  const lags: number[] = [];
  const shortLags: number[] = [];
  while (builds < totalBuilds) {
    const group = await runGroup(concurrency, rng);
    calls += group.calls;
    lags.push(...group.lagMs);
    shortLags.push(...group.shortLagMs);
    for (const waits of group.timelines) {
      packerCalls += packer.extraCallsPerBuild ?? 0;
      for (const timeline of waits) packerCalls += (await packer.wait(timeline, rng)).calls;
    }
    builds += concurrency;
  }
  const sum = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0);
  return {
    concurrency,
    builds,
    callsPerBuild: calls / builds,
    packerCallsPerBuild: packerCalls / builds,
    lagPerBuildS: sum(lags) / 1000 / builds,
    shortWaitLagS: sum(shortLags) / 1000 / Math.max(1, shortLags.length),
  };
}
