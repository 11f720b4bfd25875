/**
 * The context every internal function receives: signal, whole logger and a safe emitter, built
 * once from a primitive's public options.
 *
 * @packageDocumentation
 */
import type { Logger, ProgressEvent, ProgressListener } from '../types.js';
import { assertArgs, operationOptions } from './args.js';
import { normalizeLogger, safeEmitter } from './logger.js';

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
