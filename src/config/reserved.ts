/**
 * `__proto__`, `constructor` and `prototype` as keys of user objects. Valibot drops them silently
 * and plain objects would treat them as their prototype, so they are found on the raw input,
 * reported, and removed from the copy that is validated.
 */
import type { ConfigIssue } from '../errors.js';

const RESERVED = new Set(['__proto__', 'constructor', 'prototype']);

const isPlain = (x: unknown): x is Record<string, unknown> => {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const proto = Object.getPrototypeOf(x) as unknown;
  return proto === Object.prototype || proto === null;
};

/**
 * Every reserved key in `input` (at any depth of plain objects and arrays) as an issue, and a copy
 * of `input` without them. `at` names a path (e.g. in Packer's names).
 * @internal
 */
export function withoutReservedKeys(
  input: unknown,
  at: (path: readonly string[]) => string = (path) => path.join('.'),
): { value: unknown; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const seen = new WeakSet<object>();
  const copy = (value: unknown, path: readonly string[]): unknown => {
    if (Array.isArray(value)) {
      if (seen.has(value)) return value;
      seen.add(value);
      return value.map((item, i) => copy(item, [...path, String(i)]));
    }
    if (!isPlain(value) || seen.has(value)) return value;
    seen.add(value);
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      if (RESERVED.has(key)) {
        issues.push({
          path: at([...path, key]),
          message: `"${key}" is a reserved name and cannot be a key here (nor anywhere in the config); remove or rename it`,
        });
        continue;
      }
      out[key] = copy(value[key], [...path, key]);
    }
    return out;
  };
  return { value: copy(input, []), issues };
}
