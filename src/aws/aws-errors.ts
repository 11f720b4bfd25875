/**
 * Reading AWS error codes, whatever wrapped them. The SDK puts the code in `name` (and sometimes
 * `Code`/`code`); our {@link AwsError} keeps it in `awsCode`. Everything that decides "retry,
 * tolerate or fail" goes through here so the decision is the same for raw and wrapped errors.
 */
import { AwsError } from '../errors.js';

/** Error codes EC2 uses for throttling (RequestLimitExceeded is EC2's own). @internal */
export const THROTTLING_CODES: ReadonlySet<string> = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'SlowDown',
  'RequestThrottled',
  'RequestThrottledException',
  'ServiceUnavailable',
  'Unavailable',
]);

/** Codes EC2 returns for a resource it does not know (yet). @internal */
export const NOT_FOUND_CODES = {
  volume: 'InvalidVolume.NotFound',
  snapshot: 'InvalidSnapshot.NotFound',
  image: 'InvalidAMIID.NotFound',
  instance: 'InvalidInstanceID.NotFound',
} as const;

// SDK errors carry their code in one of these; `name` wins because it is what the SDK documents.
function ownCode(error: object): string | undefined {
  if (error instanceof AwsError) return error.awsCode;
  const e = error as { name?: unknown; Code?: unknown; code?: unknown; $metadata?: unknown };
  // A plain `Error` has name "Error", which is not an AWS code.
  const hasMetadata = typeof e.$metadata === 'object' && e.$metadata !== null;
  if (typeof e.Code === 'string') return e.Code;
  if (hasMetadata && typeof e.name === 'string' && e.name !== 'Error') return e.name;
  if (typeof e.code === 'string' && /^[A-Z][A-Za-z0-9.]+$/.test(e.code)) return e.code;
  return undefined;
}

/**
 * The AWS error code of `error` or of one of its causes (`InvalidVolume.NotFound`, ...).
 * @internal
 */
export function awsErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const code = ownCode(current);
    if (code !== undefined) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The HTTP status code of an SDK error (or its cause), when known. @internal */
export function httpStatusOf(error: unknown): number | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const status = (current as { $metadata?: { httpStatusCode?: unknown } }).$metadata?.httpStatusCode;
    if (typeof status === 'number') return status;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * True for throttling that outlived the SDK's own retries: a throttling code, or HTTP 429/503.
 * @internal
 */
export function isThrottlingError(error: unknown): boolean {
  const code = awsErrorCode(error);
  if (code !== undefined && THROTTLING_CODES.has(code)) return true;
  const status = httpStatusOf(error);
  return status === 429 || status === 503;
}

/** True when `error` carries one of `codes`. @internal */
export function hasAwsCode(error: unknown, ...codes: string[]): boolean {
  const code = awsErrorCode(error);
  return code !== undefined && codes.includes(code);
}

/** Properties of SDK errors that hold the raw HTTP exchange (signed headers, session token). */
const TRANSPORT_KEYS = ['$response', '$request', 'request', 'response', '$rawResponse'];

/**
 * Removes the raw HTTP request/response from an SDK error (and its causes) before it becomes the
 * cause of one of our errors, so the session token in signed headers is never kept, logged or
 * printed. Code, message, `$metadata` and `$fault` stay.
 * @internal
 */
export function withoutTransport<T>(error: T): T {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && typeof current === 'object' && current !== null; depth++) {
    for (const key of TRANSPORT_KEYS) {
      if (!Object.hasOwn(current, key)) continue;
      try {
        delete (current as Record<string, unknown>)[key];
      } catch {
        // A frozen error: shadowing is impossible, so leave it; nothing of ours holds it elsewhere.
      }
    }
    current = (current as { cause?: unknown }).cause;
  }
  return error;
}
