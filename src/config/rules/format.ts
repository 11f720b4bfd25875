/**
 * How validation messages show values: short, printable, secrets never shown.
 */
import type * as v from 'valibot';
import { safeJson, scrubActive } from '../redact.js';

/** Options whose values are secrets: never shown in messages, redacted in issues. */
export const SECRET_OPTIONS = new Set(['accessKey', 'secretKey', 'token', 'mfaCode']);

/** A short, printable rendering of a bad value. @internal */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'an invalid Date' : `Date ${value.toISOString()}`;
  let text: string | undefined;
  try {
    text = safeJson(value);
  } catch {
    // Circular, or holds a bigint.
  }
  text ??= typeof value === 'symbol' ? value.toString() : 'an object that cannot be shown';
  text = scrubActive(text);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/** A valibot message: "must be X, got <value>; <fix>". */
export const bad =
  (expected: string, fix?: string) =>
  (issue: v.BaseIssue<unknown>): string =>
    `must be ${expected}, got ${show(issue.input)}${fix ? `; ${fix}` : ''}`;

/** The same for secrets: the value is never part of the message. */
export const badSecret =
  (expected: string) =>
  (issue: v.BaseIssue<unknown>): string =>
    `must be ${expected}, got a ${issue.input === null ? 'null' : typeof issue.input} (value not shown)`;
