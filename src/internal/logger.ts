/**
 * A partial user logger made whole, the adapter for loggers that take their fields first (pino,
 * bunyan), and a progress listener that cannot throw into a build.
 *
 * @packageDocumentation
 */
import type { LogFields, Logger, ProgressEvent, ProgressListener } from '../types.js';

const noop = (): void => {};
const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/**
 * A logger whose methods take the fields first and the message second, as pino and bunyan do.
 * @public
 */
export type ObjectFirstLogger = {
  readonly [L in keyof Logger]?: (fields: LogFields, message: string) => void;
};

/**
 * Adapts a logger that takes `(fields, message)`, such as pino or bunyan, to {@link Logger}, so
 * the {@link LogFields} of each line (phase, resource ids, durations) become its own fields.
 *
 * @example
 * ```ts
 * import { buildAmi, objectFirstLogger } from 'ami-chroot';
 * import type { BuildConfig, ObjectFirstLogger } from 'ami-chroot';
 *
 * declare const config: BuildConfig;
 * declare const log: ObjectFirstLogger; // pino(), or bunyan.createLogger({ name: 'images' })
 * await buildAmi(config, async (chroot) => void (await chroot.sh('apt-get update')), {
 *   logger: objectFirstLogger(log),
 * });
 * // {"level":30,"phase":"snapshot","snapshotId":"snap-0…","region":"eu-west-1","msg":"Snapshot snap-0… is completed"}
 * ```
 * @param target - the logger; a method it lacks stays missing (warn and error then go to `console`)
 * @public
 */
export function objectFirstLogger(target: ObjectFirstLogger): Partial<Logger> {
  const logger: { -readonly [L in keyof Logger]?: Logger[L] } = {};
  for (const level of LEVELS) {
    // Called as a method of the target: pino's methods need their `this`.
    if (target[level]) logger[level] = (message, fields) => target[level]!(fields ?? {}, message);
  }
  return logger;
}

/**
 * Fills in a partial logger. Methods are called on the caller's object so `this` keeps working
 * for pino-style loggers; debug/info default to silence, warn/error to console.
 * @internal
 */
export function normalizeLogger(logger: Partial<Logger> | undefined): Logger {
  const l = logger ?? {};
  return {
    debug: l.debug ? (m, f) => call(l, 'debug', m, f) : noop,
    info: l.info ? (m, f) => call(l, 'info', m, f) : noop,
    warn: l.warn ? (m, f) => call(l, 'warn', m, f) : (m, f) => call(console, 'warn', m, f),
    error: l.error ? (m, f) => call(l, 'error', m, f) : (m, f) => call(console, 'error', m, f),
  };
}

// Fields only when there are some: `console.info(m)` must not print a stray `undefined`.
function call(target: Partial<Logger>, level: keyof Logger, message: string, fields: LogFields | undefined): void {
  if (fields === undefined) target[level]!(message);
  else target[level]!(message, fields);
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
