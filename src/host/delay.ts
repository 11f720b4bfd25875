/**
 * A sleep that keeps the process alive. The shared `sleep` unrefs its timer; in a wait loop that
 * is the only pending work of a script (a build waiting for a lock or a device node), an unref'd
 * timer lets Node exit in the middle of the wait with status 0, as if everything had succeeded.
 */

/**
 * Resolves after `ms`, or rejects with `signal.reason` as soon as the signal aborts.
 * @internal
 */
export function delay(ms: number, signal?: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
