import type { ResourceKind } from '../types.js';
import type { Ctx } from './ctx.js';
import { cleanupSignal, sleep } from './abort.js';
import { toError } from './to-error.js';

/** One registered undo. @internal */
export interface Undo {
  /** Human description, e.g. `delete volume vol-1`. */
  readonly name: string;
  /** Drops the undo at a commit point (e.g. the snapshot delete once the image owns it). */
  cancel(): void;
  /** Runs the undo now, at most once (early cleanup); later runs are no-ops. */
  run(): Promise<void>;
}

/** The resource an undo removes, reported as `kept` when keepOnError leaves it. @internal */
export interface UndoResource {
  readonly kind: ResourceKind;
  readonly id: string;
  readonly region?: string;
}

/** Options of {@link CleanupStack.defer}. @internal */
export interface DeferOptions {
  /** Dropped on success (deregister the image, delete its snapshot). */
  readonly onlyOnFailure?: boolean;
  /** What the undo removes, for the `kept` event of keepOnError. */
  readonly resource?: UndoResource;
}

interface Entry {
  name: string;
  resource: UndoResource | undefined;
  fn: (signal: AbortSignal) => Promise<void>;
  state: 'pending' | 'running' | 'done' | 'cancelled';
  promise?: Promise<void>;
  onlyOnFailure: boolean;
}

/**
 * A last-in-first-out stack of undo steps. Each undo runs at most once, whether early (before the
 * snapshot) or at the end; the final run never uses the caller's signal but its own bounded time,
 * and collects failures instead of throwing, so cleanup can never mask the original error.
 * @internal
 */
export class CleanupStack {
  readonly #entries: Entry[] = [];
  readonly #ctx: Ctx;
  readonly #stepTimeoutMs: number;

  readonly #attempts: number;
  readonly #retryDelayMs: number;

  /**
   * @param stepTimeoutMs - time limit of one undo attempt
   * @param attempts - tries per undo in the final unwind: a transient failure (throttling that
   *   outlived the SDK, a busy device) must not leak a resource
   * @param retryDelayMs - first delay between tries, doubled each time
   */
  constructor(ctx: Ctx, stepTimeoutMs = 5 * 60_000, attempts = 3, retryDelayMs = 500) {
    this.#ctx = ctx;
    this.#stepTimeoutMs = stepTimeoutMs;
    this.#attempts = Math.max(1, attempts);
    this.#retryDelayMs = retryDelayMs;
  }

  /** Registers an undo. `onlyOnFailure` undos are dropped on success. */
  defer(name: string, fn: (signal: AbortSignal) => Promise<void>, options: DeferOptions = {}): Undo {
    const entry: Entry = {
      name,
      resource: options.resource,
      fn,
      state: 'pending',
      onlyOnFailure: options.onlyOnFailure ?? false,
    };
    this.#entries.push(entry);
    return {
      name,
      cancel: () => {
        if (entry.state === 'pending') entry.state = 'cancelled';
      },
      run: () => this.#runOne(entry, true),
    };
  }

  /** Names of the undos that have not run yet (for keepOnError reporting). */
  pending(): string[] {
    return this.#entries.filter((e) => e.state === 'pending').map((e) => e.name);
  }

  async #runOne(entry: Entry, rethrow: boolean): Promise<void> {
    if (entry.state === 'done' || entry.state === 'cancelled') return;
    if (entry.state === 'running') return entry.promise;
    entry.state = 'running';
    this.#ctx.emit({ type: 'cleanup', step: entry.name, status: 'start' });
    entry.promise = (async () => {
      try {
        await entry.fn(cleanupSignal(this.#stepTimeoutMs));
        entry.state = 'done';
        this.#ctx.emit({ type: 'cleanup', step: entry.name, status: 'done' });
      } catch (error) {
        // A failed undo may be retried by the final cleanup.
        entry.state = 'pending';
        this.#ctx.emit({
          type: 'cleanup',
          step: entry.name,
          status: 'failed',
          error: String((error as Error)?.message ?? error),
        });
        throw error;
      }
    })();
    if (rethrow) return entry.promise;
    return entry.promise.catch(() => {});
  }

  /**
   * Runs every pending undo, last registered first. Returns the failures; never throws.
   * @param outcome - `failure` also runs the onlyOnFailure undos; `success` drops them.
   */
  async unwind(outcome: 'success' | 'failure'): Promise<Error[]> {
    const errors: Error[] = [];
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      const entry = this.#entries[i]!;
      if (entry.state !== 'pending') continue;
      if (entry.onlyOnFailure && outcome === 'success') {
        entry.state = 'cancelled';
        continue;
      }
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#runOne(entry, true);
          break;
        } catch (error) {
          const e = toError(error);
          if (attempt < this.#attempts) {
            this.#ctx.logger.warn(
              `Cleanup step "${entry.name}" failed (try ${attempt} of ${this.#attempts}), retrying: ${e.message}`,
            );
            // Never the caller's signal: it may be the very abort that started this unwind.
            await sleep(this.#retryDelayMs * 2 ** (attempt - 1));
            continue;
          }
          this.#ctx.logger.error(`Cleanup step "${entry.name}" failed: ${e.message}`);
          errors.push(new Error(`${entry.name}: ${e.message}`, { cause: e }));
          break;
        }
      }
    }
    return errors;
  }

  /**
   * Marks every pending undo as kept (keepOnError), reports each as a skipped cleanup step and its
   * resource as `kept`, and returns their names.
   */
  keepAll(): string[] {
    const kept: string[] = [];
    for (const e of this.#entries) {
      if (e.state !== 'pending') continue;
      e.state = 'cancelled';
      kept.push(e.name);
      this.#ctx.emit({ type: 'cleanup', step: e.name, status: 'skipped' });
      if (e.resource) this.#ctx.emit({ type: 'resource', action: 'kept', ...e.resource });
    }
    return kept;
  }
}
