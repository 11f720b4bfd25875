/**
 * Argument checks at the public boundary: a JavaScript caller (or a cast) can pass anything, and
 * the answer must be a ConfigError naming the argument and the fix, never a TypeError from inside.
 */
import { ConfigError } from '../errors.js';
import type { ConfigIssue } from '../errors.js';

/** What is wrong with a value (and how to fix it), or undefined when it is fine. @internal */
export type Check = (value: unknown) => string | undefined;

/** The longest delay a Node timer holds; longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const describe = (value: unknown): string =>
  value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;

/** Accepts undefined, else applies `check`. @internal */
export const optional =
  (check: Check): Check =>
  (value) =>
    value === undefined ? undefined : check(value);

/** A string. @internal */
export const isString: Check = (v) => (typeof v === 'string' ? undefined : `must be a string, got ${describe(v)}`);

/** A non-empty string without NUL. @internal */
export const isText: Check = (v) =>
  typeof v !== 'string'
    ? `must be a string, got ${describe(v)}`
    : v === ''
      ? 'must not be empty'
      : v.includes('\0')
        ? 'must not contain a NUL character'
        : undefined;

/** An absolute path without NUL. @internal */
export const isAbsolutePath: Check = (v) =>
  isText(v) ?? ((v as string).startsWith('/') ? undefined : 'must be an absolute path (start with "/")');

/** A boolean. @internal */
export const isBoolean: Check = (v) =>
  typeof v === 'boolean' ? undefined : `must be true or false, got ${describe(v)}`;

/** An AbortSignal. @internal */
export const isSignal: Check = (v) =>
  v instanceof AbortSignal ? undefined : `must be an AbortSignal, got ${describe(v)}`;

/** A function. @internal */
export const isFunction: Check = (v) =>
  typeof v === 'function' ? undefined : `must be a function, got ${describe(v)}`;

/** A whole number of milliseconds a timer can hold. @internal */
export const isDuration: Check = (v) =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_TIMER_MS
    ? undefined
    : `must be a whole number of milliseconds from 0 to ${MAX_TIMER_MS}, got ${typeof v === 'number' ? String(v) : describe(v)}`;

/** An array of strings. @internal */
export const isStringArray: Check = (v) =>
  Array.isArray(v) && v.every((x) => typeof x === 'string')
    ? undefined
    : `must be an array of strings, got ${describe(v)}`;

/** A string or bytes. @internal */
export const isData: Check = (v) =>
  typeof v === 'string' || v instanceof Uint8Array ? undefined : `must be a string or a Uint8Array, got ${describe(v)}`;

/** A plain object (not null, not an array). @internal */
export const isObject: Check = (v) =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? undefined : `must be an object, got ${describe(v)}`;

/** Either check passing. @internal */
export const either =
  (a: Check, b: Check): Check =>
  (value) => {
    const first = a(value);
    return first === undefined || b(value) === undefined ? undefined : first;
  };

/** One argument to check: its name as the caller sees it, its value, the check. @internal */
export type ArgCheck = readonly [name: string, value: unknown, check: Check];

/**
 * Checks an object argument and the fields given in `shape` (absent fields pass unless listed in
 * `required`); when the object itself is bad its fields are not looked at.
 * @internal
 */
export function fields(
  name: string,
  value: unknown,
  shape: Readonly<Record<string, Check>>,
  required: readonly string[] = [],
): ArgCheck[] {
  if (isObject(value) !== undefined) return [[name, value, isObject]];
  const record = value as Record<string, unknown>;
  return Object.entries(shape).map(([key, check]): ArgCheck => {
    const own = Object.hasOwn(record, key) ? record[key] : undefined;
    return [`${name}.${key}`, own, required.includes(key) ? check : optional(check)];
  });
}

/**
 * Throws one ConfigError listing every failed check, each under `fn: name` (`name` alone
 * without `fn`).
 * @internal
 */
export function assertArgs(fn: string, checks: readonly ArgCheck[]): void {
  const issues: ConfigIssue[] = [];
  for (const [name, value, check] of checks) {
    const problem = check(value);
    if (problem !== undefined) issues.push({ path: fn ? `${fn}: ${name}` : name, value, message: problem });
  }
  if (issues.length > 0) throw new ConfigError(issues);
}

/** The checks for {@link OperationOptions} every primitive takes. @internal */
export function operationOptions(value: unknown, name = 'options'): ArgCheck[] {
  return fields(name, value, {
    signal: isSignal,
    logger: isObject,
    onProgress: isFunction,
  });
}
