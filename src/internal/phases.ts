import { AmiChrootError } from '../errors.js';
import type { Phase } from '../errors.js';
import type { Ctx } from './ctx.js';
import { throwIfAborted } from './abort.js';

/**
 * Runs the phases of a build: emits phase-start/phase-end events, records each phase's duration
 * (a phase run twice, like `unmount` early and at cleanup, adds up), checks the signal before each
 * phase, and stamps the phase on errors that do not carry one yet.
 * @internal
 */
export class PhaseTracker {
  readonly timings: Partial<Record<Phase, number>> = {};
  readonly #ctx: Ctx;
  #current: Phase | undefined;

  constructor(ctx: Ctx) {
    this.#ctx = ctx;
  }

  /** The phase running now (for errors raised outside `run`, e.g. an abort). */
  get current(): Phase | undefined {
    return this.#current;
  }

  /**
   * Runs one phase. `checkAbort: false` is for cleanup, which must run after an abort.
   */
  async run<T>(phase: Phase, fn: () => Promise<T> | T, options: { readonly checkAbort?: boolean } = {}): Promise<T> {
    if (options.checkAbort !== false) throwIfAborted(this.#ctx.signal);
    const previous = this.#current;
    this.#current = phase;
    const start = performance.now();
    this.#ctx.emit({ type: 'phase-start', phase });
    this.#ctx.logger.debug(`Phase ${phase}: started`, { phase });
    let ok = false;
    try {
      const value = await fn();
      ok = true;
      return value;
    } catch (error) {
      stampPhase(error, phase);
      throw error;
    } finally {
      const durationMs = performance.now() - start;
      this.timings[phase] = (this.timings[phase] ?? 0) + durationMs;
      this.#ctx.emit({ type: 'phase-end', phase, durationMs, ok });
      const fields = { phase, durationMs: Math.round(durationMs), ok };
      this.#ctx.logger.info(`Phase ${phase}: ${ok ? 'finished' : 'failed'} in ${fields.durationMs} ms`, fields);
      this.#current = previous;
    }
  }
}

/**
 * Sets `phase` on a library error that has none (primitives used alone do not know the build's
 * phase names). Never overwrites a phase that is already there.
 * @internal
 */
export function stampPhase(error: unknown, phase: Phase): void {
  if (error instanceof AmiChrootError && error.phase === undefined) {
    Object.defineProperty(error, 'phase', { value: phase, enumerable: true, configurable: true, writable: false });
  } else if (error instanceof Error && !(error instanceof AmiChrootError) && !('phase' in error)) {
    // Plain errors (the user's provision code, Node's fs) and abort reasons get the phase too, so
    // every build failure names where it happened.
    try {
      Object.defineProperty(error, 'phase', { value: phase, enumerable: false, configurable: true });
    } catch {
      // Frozen error objects: nothing to do.
    }
  }
}
