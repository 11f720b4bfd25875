/**
 * Secrets in configs are redacted by value: any string under a credential-like key (in any
 * naming style, at any depth) or that looks like a credential is collected before validation,
 * and no issue value or message may contain one. Known option names alone are not enough: a
 * secret under a misspelt key or in a config of the wrong shape is still a secret.
 */
import type { ConfigIssue } from '../errors.js';

/** Keys whose string values are credentials: secret_key, secretAccessKey, sessionToken, password, ... */
const SECRET_KEY = /secret|token|passw|pwd|credential|private.?key|access.?key|session|mfa|api.?key|auth.?code/i;
/** AWS access key ids, 40-character secret keys, long base64 blobs (session tokens), PEM keys. */
const SECRET_VALUES = [
  /\b(?:AKIA|ASIA|AIDA|AROA|ANPA|ANVA|AGPA)[A-Z0-9]{16}\b/,
  /^(?=.*[a-z])(?=.*[A-Z])(?=.*[0-9])[A-Za-z0-9/+]{40}$/,
  /^[A-Za-z0-9/+=]{100,}$/,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
];
const REDACTED = '[redacted]';

/** True when a key names a credential. @internal */
export const isSecretKey = (key: string): boolean => SECRET_KEY.test(key);
/** True when a string looks like a credential whatever its key. @internal */
export const looksSecret = (value: string): boolean => SECRET_VALUES.some((re) => re.test(value));

/**
 * Every secret string in `input`: strings under credential-like keys (and everything below them)
 * and strings that look like credentials. @internal
 */
export function collectSecrets(input: unknown): Set<string> {
  const secrets = new Set<string>();
  const seen = new WeakSet<object>();
  const walk = (value: unknown, underSecret: boolean, depth: number): void => {
    if (typeof value === 'string') {
      if (value !== '' && (underSecret || looksSecret(value))) secrets.add(value);
      return;
    }
    if (typeof value !== 'object' || value === null || seen.has(value) || depth > 32) return;
    seen.add(value);
    if (Array.isArray(value)) {
      for (const item of value) walk(item, underSecret, depth + 1);
      return;
    }
    for (const key of Object.keys(value))
      walk((value as Record<string, unknown>)[key], underSecret || isSecretKey(key), depth + 1);
  };
  walk(input, false, 0);
  return secrets;
}

/** `text` with every secret (and its JSON-escaped form) replaced. @internal */
export function scrub(text: string, secrets: ReadonlySet<string>): string {
  let out = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    out = out.replaceAll(secret, REDACTED);
    const escaped = JSON.stringify(secret).slice(1, -1);
    if (escaped !== secret) out = out.replaceAll(escaped, REDACTED);
  }
  return out;
}

/** A copy of `value` with secrets (by key or by value) replaced. @internal */
export function redactValue(value: unknown, secrets: ReadonlySet<string>, key = ''): unknown {
  if (typeof value === 'string')
    return secrets.has(value) || looksSecret(value) || (key !== '' && isSecretKey(key))
      ? REDACTED
      : scrub(value, secrets);
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((item) => redactValue(item, secrets, key));
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  return Object.fromEntries(
    Object.keys(value).map((k) => [k, redactValue((value as Record<string, unknown>)[k], secrets, k)]),
  );
}

/** Issues with no secret in their values or messages. @internal */
export function redactIssues(issues: readonly ConfigIssue[], secrets: ReadonlySet<string>): ConfigIssue[] {
  return issues.map((issue) => {
    const last = issue.path.split('.').pop() ?? '';
    const value = issue.value === undefined ? undefined : redactValue(issue.value, secrets, last);
    const message = scrub(issue.message, secrets);
    return value === undefined && !('value' in issue)
      ? { path: issue.path, message }
      : { path: issue.path, value, message };
  });
}

let active: ReadonlySet<string> = new Set();

/**
 * Runs `fn` with `secrets` known to {@link showSafely}, so values shown (and shortened) in
 * messages are scrubbed before they are cut. @internal
 */
export function withSecrets<T>(secrets: ReadonlySet<string>, fn: () => T): T {
  const previous = active;
  active = secrets;
  try {
    return fn();
  } finally {
    active = previous;
  }
}

/** JSON text of a value with credential-like keys, secret-looking and known secret strings redacted. @internal */
export function safeJson(value: unknown): string | undefined {
  return JSON.stringify(value, (key, item: unknown) =>
    typeof item === 'string' && (active.has(item) || looksSecret(item) || (key !== '' && isSecretKey(key)))
      ? REDACTED
      : item,
  );
}

/** Scrubs known secrets out of text about to be shortened. @internal */
export const scrubActive = (text: string): string => scrub(text, active);
