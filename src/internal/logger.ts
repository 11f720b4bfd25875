/**
 * A partial user logger made whole, and a progress listener that cannot throw into a build.
 *
 * @packageDocumentation
 */
import type { Logger, ProgressEvent, ProgressListener } from '../types.js';

const noop = (): void => {};

/**
 * Fills in a partial logger. Methods are called on the caller's object so `this` keeps working
 * for pino-style loggers; debug/info default to silence, warn/error to console.
 * @internal
 */
export function normalizeLogger(logger: Partial<Logger> | undefined): Logger {
  const l = logger ?? {};
  return {
    debug: l.debug ? (m, ...r) => l.debug!(m, ...r) : noop,
    info: l.info ? (m, ...r) => l.info!(m, ...r) : noop,
    warn: l.warn ? (m, ...r) => l.warn!(m, ...r) : (m, ...r) => console.warn(m, ...r),
    error: l.error ? (m, ...r) => l.error!(m, ...r) : (m, ...r) => console.error(m, ...r),
  };
}

/**
 * Wraps a progress listener so a throwing listener can never break a build.
 * @internal
 */
export function safeEmitter(listener: ProgressListener | undefined, logger: Logger): (event: ProgressEvent) => void {
  if (!listener) return noop;
  return (event) => {
    try {
      listener(event);
    } catch (error) {
      logger.warn(`onProgress listener threw on a ${event.type} event; ignored: ${String(error)}`);
    }
  };
}
