/**
 * Abort and time helpers. Every wait in the library goes through these, so every wait is
 * abortable and no timer or listener outlives its operation.
 */

/** Throws the signal's reason if it is aborted (the caller's own reason, as execa does). @internal */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason;
}

/**
 * Sleeps `ms`, rejecting with `signal.reason` as soon as the signal aborts; the listener is always
 * removed. The timer stays ref'd on purpose: an awaited wait is the build's work, and an unref'd
 * one would let a script whose only pending work is a poll exit early with status 0.
 * @internal
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.max(0, ms),
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A signal that aborts when any of the given signals aborts (undefined ones are ignored).
 * @internal
 */
export function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const list = signals.filter((s): s is AbortSignal => s !== undefined);
  if (list.length === 0) return undefined;
  if (list.length === 1) return list[0];
  return AbortSignal.any(list);
}

/**
 * A fresh signal for cleanup: never the caller's (it may already be aborted), bounded by its own time.
 * @internal
 */
export function cleanupSignal(timeoutMs: number): AbortSignal {
  return AbortSignal.timeout(timeoutMs);
}

/**
 * Runs `fn` with a signal that also aborts after `timeoutMs`; the rejection on timeout is
 * `onTimeout()`'s error, so a timeout is never reported as the caller's abort.
 * @internal
 */
export async function withTimeout<T>(
  timeoutMs: number | undefined,
  signal: AbortSignal | undefined,
  fn: (signal: AbortSignal | undefined) => Promise<T>,
  onTimeout: () => Error,
): Promise<T> {
  if (timeoutMs === undefined || !Number.isFinite(timeoutMs)) return fn(signal);
  const timer = new AbortController();
  const handle = setTimeout(() => timer.abort(onTimeout()), timeoutMs);
  handle.unref?.();
  try {
    return await fn(anySignal(signal, timer.signal));
  } catch (error) {
    // First cause wins: if our timer fired and the caller did not abort, report the timeout.
    if (timer.signal.aborted && !signal?.aborted) throw timer.signal.reason;
    throw error;
  } finally {
    clearTimeout(handle);
  }
}
