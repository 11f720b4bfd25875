/**
 * Makes an async disposer idempotent: concurrent calls share one run, a success is remembered
 * (later calls are no-ops), a failure is not (the final cleanup may retry an early one).
 * @internal
 */
export function idempotent<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  let running: Promise<void> | undefined;
  let done = false;
  return (...args: A) => {
    if (done) return Promise.resolve();
    running ??= fn(...args).then(
      () => {
        done = true;
        running = undefined;
      },
      (error: unknown) => {
        running = undefined;
        throw error;
      },
    );
    return running;
  };
}
