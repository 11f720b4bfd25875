import type { Logger, ProgressEvent, ProgressListener } from '../types.js';
import { assertArgs, operationOptions } from './args.js';

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

/**
 * The normalized context every internal function receives.
 * @internal
 */
export interface Ctx {
  readonly signal: AbortSignal | undefined;
  readonly logger: Logger;
  readonly emit: (event: ProgressEvent) => void;
}

/**
 * Builds the internal context from public options, checked first (a ConfigError, not a TypeError).
 * @internal
 */
export function toCtx(
  options: {
    signal?: AbortSignal | undefined;
    logger?: Partial<Logger> | undefined;
    onProgress?: ProgressListener | undefined;
  } = {},
): Ctx {
  assertArgs('', operationOptions(options));
  const logger = normalizeLogger(options.logger);
  return { signal: options.signal, logger, emit: safeEmitter(options.onProgress, logger) };
}
