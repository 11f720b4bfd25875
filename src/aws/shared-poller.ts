/**
 * One poller per process: concurrent waits on resources of one kind (volumes, snapshots, images)
 * through one EC2 client share their Describe calls.
 *
 * A wait does not sleep and then describe its own id; it asks its batch for a fresh reading of
 * its id within a window, `[delay - slack, delay]` from now. The batch makes one call when the
 * earliest window closes and covers every id whose window is open by then: a wait whose poll
 * was due a little later gets its reading early (a smaller lag, no extra call) and schedules its
 * next poll from there. So eight builds polling every two seconds make one DescribeVolumes every
 * two seconds or so between them, not eight.
 *
 * Batches are keyed by client, region and kind and live as long as their client (a WeakMap), so
 * clients made per build and injected ones both work. Their timers run on the poll clock, so the
 * polling benchmark can replay many concurrent waits in virtual time.
 *
 * @packageDocumentation
 */
import { awsErrorCode, isThrottlingError } from './aws-errors.js';
import type { PollClock } from './poll.js';

/**
 * One Describe call for many ids: every item found, by id. Ids missing from the result are
 * reported as `undefined` to their waits.
 * @internal
 */
export type BatchFetch<R> = (
  ids: readonly string[],
  signal: AbortSignal | undefined,
) => Promise<ReadonlyMap<string, R>>;

/**
 * Most ids in one Describe call; EC2 accepts more, but a smaller request fails and retries cheaper.
 * @internal
 */
export const MAX_IDS_PER_CALL = 100;

/**
 * Share of a wait's delay by which its poll may be brought forward to join a call made for
 * another wait. Half: two waits polling at the same pace fall into step after one call.
 * @internal
 */
export const BATCH_SLACK = 0.75;

interface Request<R> {
  readonly id: string;
  readonly earliest: number;
  readonly latest: number;
  readonly fetch: BatchFetch<R>;
  readonly signal: AbortSignal | undefined;
  readonly resolve: (value: R | undefined) => void;
  readonly reject: (error: unknown) => void;
  readonly detach: () => void;
}

/**
 * The waits on one kind of resource through one client and region.
 * @internal
 */
export class DescribeBatch<R> {
  readonly #clock: PollClock;
  readonly #pending = new Set<Request<R>>();
  // The timer armed for the earliest `latest`; replaced when an earlier one arrives.
  #timer: { at: number; cancel: AbortController } | undefined;
  #calls = 0;
  #firing = false;

  constructor(clock: PollClock) {
    this.#clock = clock;
  }

  /** Describe calls this batch made (for tests and benchmarks). */
  get calls(): number {
    return this.#calls;
  }

  /**
   * A reading of `id` taken between `delayMs - slackMs` and `delayMs` from now.
   * @param fetch - the call to make if this request opens the batch (its context names the call)
   * @throws the signal's reason on abort; the call's error, for every request it covered
   */
  request(
    id: string,
    options: {
      readonly delayMs: number;
      readonly slackMs: number;
      readonly fetch: BatchFetch<R>;
      readonly signal?: AbortSignal | undefined;
    },
  ): Promise<R | undefined> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const now = this.#clock.now();
    const latest = now + Math.max(0, options.delayMs);
    const earliest = latest - Math.max(0, Math.min(options.slackMs, options.delayMs));
    return new Promise<R | undefined>((resolve, reject) => {
      const onAbort = (): void => {
        this.#pending.delete(request);
        reject(signal?.reason);
        this.#arm();
      };
      const request: Request<R> = {
        id,
        earliest,
        latest,
        fetch: options.fetch,
        signal,
        resolve,
        reject,
        detach: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.add(request);
      this.#arm();
    });
  }

  // Keeps one timer armed for the earliest deadline among the pending requests.
  #arm(): void {
    let next: number | undefined;
    for (const r of this.#pending) next = next === undefined ? r.latest : Math.min(next, r.latest);
    if (this.#timer && (next === undefined || this.#timer.at > next)) {
      this.#timer.cancel.abort();
      this.#timer = undefined;
    }
    if (next === undefined || this.#timer) return;
    if (next <= this.#clock.now()) {
      // Due now (a first poll): a microtask, so requests made in the same turn join the call.
      if (!this.#firing) {
        this.#firing = true;
        queueMicrotask(() => {
          this.#firing = false;
          this.#fire();
        });
      }
      return;
    }
    const cancel = new AbortController();
    const timer = { at: next, cancel };
    this.#timer = timer;
    this.#clock.sleep(next - this.#clock.now(), cancel.signal).then(
      () => {
        if (this.#timer === timer) this.#timer = undefined;
        this.#fire();
      },
      () => {
        // Cancelled: a new timer was armed in its place.
      },
    );
  }

  #fire(): void {
    const now = this.#clock.now();
    const due = [...this.#pending].filter((r) => r.earliest <= now);
    for (const r of due) this.#pending.delete(r);
    this.#arm();
    for (let i = 0; i < due.length; i += MAX_IDS_PER_CALL) {
      void this.#serve(due.slice(i, i + MAX_IDS_PER_CALL));
    }
  }

  async #serve(requests: readonly Request<R>[]): Promise<void> {
    const ids = [...new Set(requests.map((r) => r.id))];
    const first = requests[0];
    if (!first) return;
    const signal = allAborted(requests.map((r) => r.signal));
    try {
      this.#calls++;
      const found = await first.fetch(ids, signal);
      for (const r of requests) settle(r, () => r.resolve(found.get(r.id)));
    } catch (error) {
      // One unknown id fails the whole call (Invalid*.NotFound); ask for each id alone, so every
      // wait gets its own answer. Throttling and other errors concern every id alike.
      if (ids.length > 1 && !isThrottlingError(error) && awsErrorCode(error)?.endsWith('.NotFound')) {
        await Promise.all(ids.map((id) => this.#serve(requests.filter((r) => r.id === id))));
        return;
      }
      for (const r of requests) settle(r, () => r.reject(error));
    }
  }
}

function settle<R>(request: Request<R>, fn: () => void): void {
  request.detach();
  // An aborted request was already rejected with its signal's reason.
  if (!request.signal?.aborted) fn();
}

// The call is cancelled only when every wait it serves is gone.
function allAborted(signals: readonly (AbortSignal | undefined)[]): AbortSignal | undefined {
  if (signals.some((s) => s === undefined)) return undefined;
  const list = signals as readonly AbortSignal[];
  if (list.length === 1) return list[0];
  const controller = new AbortController();
  const check = (): void => {
    if (list.every((s) => s.aborted)) controller.abort(list[0]?.reason);
  };
  for (const s of list) s.addEventListener('abort', check, { once: true });
  check();
  return controller.signal;
}

const batches = new WeakMap<object, Map<string, DescribeBatch<unknown>>>();
const clockIds = new WeakMap<PollClock, number>();
let nextClockId = 0;

/**
 * The process-wide batch for a client, region and kind of resource, on a clock.
 * @internal
 */
export function sharedBatch<R>(client: object, region: string, kind: string, clock: PollClock): DescribeBatch<R> {
  let clockId = clockIds.get(clock);
  if (clockId === undefined) {
    clockId = nextClockId++;
    clockIds.set(clock, clockId);
  }
  let byKey = batches.get(client);
  if (!byKey) {
    byKey = new Map();
    batches.set(client, byKey);
  }
  const key = `${region}\u0000${kind}\u0000${clockId}`;
  let batch = byKey.get(key) as DescribeBatch<R> | undefined;
  if (!batch) {
    batch = new DescribeBatch<R>(clock);
    byKey.set(key, batch as DescribeBatch<unknown>);
  }
  return batch;
}
