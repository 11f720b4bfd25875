/**
 * A build worker process for bench/parallel (several builds per process, several processes)
 * and bench/footprint (peak RSS of one build in a fresh process).
 *
 *   node --import tsx bench/parallel/worker.ts '<WorkerInput JSON>'
 *
 * Protocol, one JSON object per line on stdout: `{"ready":true}` once everything is imported and
 * set up; then it waits for a line `go` on stdin (so process start-up is not timed), runs its
 * builds concurrently and prints `{"records":[...],"failures":[...],"maxRssKiB":n}` (a build
 * that throws is a failure, reported, not a crash), or `{"error":"..."}` and exits 1 when the
 * worker itself breaks. In `idle` mode it prints the RSS without building (what the imports alone cost).
 * SIGTERM/SIGINT abort the builds, which clean up after themselves.
 */
import { createInterface } from 'node:readline';
import type { TransitionTimes } from '../lib/ec2-sim.js';
import { failureOf, runBuild, type BuildFailure, type BuildRecord, type RigParams } from '../lib/moto-build.js';

/**
 * What the parent sends.
 * @internal
 */
export interface WorkerInput {
  readonly mode: 'builds' | 'idle';
  readonly params: RigParams;
  readonly builds: readonly { readonly label: string; readonly transitions: TransitionTimes }[];
}

/**
 * What the worker answers.
 * @internal
 */
export interface WorkerOutput {
  readonly records?: readonly BuildRecord[];
  /** Builds that threw (the library cleaned up after them): label and error. */
  readonly failures?: readonly BuildFailure[];
  /** process.resourceUsage().maxRSS: peak resident set of this process, KiB. */
  readonly maxRssKiB?: number;
  readonly error?: string;
}

const say = (message: object): void => void process.stdout.write(`${JSON.stringify(message)}\n`);

async function main(): Promise<number> {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error('usage: worker.ts <WorkerInput JSON>');
  const input = JSON.parse(raw) as WorkerInput;
  const controller = new AbortController();
  for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => controller.abort(new Error(`worker got ${s}`)));

  const lines = createInterface({ input: process.stdin });
  const go = new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => line.trim() === 'go' && resolve());
    lines.on('close', () => reject(new Error('stdin closed before "go"')));
  });
  say({ ready: true });
  await go;
  lines.close();
  if (input.mode === 'idle') {
    say({ maxRssKiB: process.resourceUsage().maxRSS } satisfies WorkerOutput);
    return 0;
  }
  const settled = await Promise.allSettled(
    input.builds.map((b) => runBuild(input.params, b.label, b.transitions, controller.signal)),
  );
  const records = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failures = settled.flatMap((s, i) =>
    s.status === 'rejected' ? [failureOf(input.builds[i]!.label, s.reason)] : [],
  );
  say({ records, failures, maxRssKiB: process.resourceUsage().maxRSS } satisfies WorkerOutput);
  return 0;
}

process.exitCode = await main().catch((error: unknown) => {
  say({ error: error instanceof Error ? error.message : String(error) });
  return 1;
});
