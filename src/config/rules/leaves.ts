/**
 * Field rules (valibot schemas) for single options and nested objects.
 */
import * as v from 'valibot';
import type { WaitKind } from '../../types.js';
import { didYouMean } from '../suggest.js';
import { TEMPLATE_SCOPES, isLiteralTemplate, templateProblems } from '../templates.js';
import type { TemplateData } from '../types.js';
import { bad, badSecret } from './format.js';
import { isInt, isString } from './helpers.js';
import { hostPathProblem, normalizeSlashes } from './paths.js';
import { KMS_KEY_PATTERN, SNAPSHOT_ID } from './patterns.js';
import { THROUGHPUT, VOLUME_TYPES } from './volumes.js';

export const leaf = <T>(test: (x: unknown) => boolean, expected: string, fix?: string) =>
  v.custom<T>(test, bad(expected, fix));
export const bool = leaf<boolean>((x) => typeof x === 'boolean', 'true or false');
export const nonEmpty = leaf<string>((x) => isString(x) && x.trim() !== '', 'a non-empty string');
export const secret = v.custom<string>((x) => isString(x) && x !== '', badSecret('a non-empty string'));
export const intIn = (min: number, max: number, fix?: string) =>
  leaf<number>((x) => isInt(x) && x >= min && x <= max, `an integer from ${min} to ${max}`, fix);
export const positiveInt = leaf<number>((x) => isInt(x) && x > 0, 'a positive integer');
/** The longest delay a Node timer holds (2^31-1 ms, about 24.8 days); longer ones fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;
/** Milliseconds for a timer: a whole number from `min` to {@link MAX_TIMER_MS}. */
export const timerMs = (min: number, fix?: string) =>
  leaf<number>(
    (x) => isInt(x) && x >= min && x <= MAX_TIMER_MS,
    `${min === 1 ? 'a positive integer' : `an integer from ${min}`} of milliseconds up to ${MAX_TIMER_MS} (what a timer can hold)`,
    fix,
  );
export const oneOf = <T extends string>(values: readonly T[], fix?: string) =>
  leaf<T>(
    (x) => isString(x) && (values as readonly string[]).includes(x),
    `one of ${values.map((s) => JSON.stringify(s)).join(', ')}`,
    fix,
  );
export const pattern = (re: RegExp, expected: string, fix?: string) =>
  leaf<string>((x) => isString(x) && re.test(x), expected, fix);
export const absolutePath = leaf<string>(
  (x) => isString(x) && hostPathProblem(x, 'it') === undefined,
  'an absolute path (starting with "/") without ".." segments or NUL',
);
/** A file to copy into the image: an absolute path, not the root. */
export const filePath = leaf<string>(
  (x) => isString(x) && hostPathProblem(x, 'it') === undefined && normalizeSlashes(x) !== '/',
  'an absolute path (not "/") to a file, without ".." segments or NUL',
);
export const kmsKey = pattern(
  KMS_KEY_PATTERN,
  'a KMS key id, mrk- id, alias/name or key/alias ARN',
  'e.g. "alias/my-key" or "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"',
);
export const kmsKeyOrEmpty = leaf<string>(
  (x) => x === '' || (isString(x) && KMS_KEY_PATTERN.test(x)),
  'a KMS key id, alias or ARN, or "" for the region\'s default key',
);
export const list = <T extends v.GenericSchema>(item: T) => v.array(item, bad('an array'));
export const isPlainObject = (x: unknown): boolean =>
  typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Date);
/** A record; valibot's own would take an array as an object with keys "0", "1", ... */
export const recordOf = <K extends v.GenericSchema<string, string>, V extends v.GenericSchema>(
  key: K,
  value: V,
  what: string,
) => v.pipe(v.custom<Record<string, unknown>>(isPlainObject, bad(what)), v.record(key, value, bad(what)));

/** Valibot path items for a dotted path (cross-field issues name options, not schema positions). */
export function pathItems(
  input: Record<string, unknown>,
  keys: readonly string[],
  value: unknown,
): [v.ObjectPathItem, ...v.ObjectPathItem[]] {
  const items = keys.map((key): v.ObjectPathItem => ({ type: 'object', origin: 'value', input, key, value }));
  return items as [v.ObjectPathItem, ...v.ObjectPathItem[]];
}

/** The object a raw check sees, when it is one. */
export const objectValue = (x: unknown): Record<string, unknown> | undefined =>
  x && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>) : undefined;

/** Reports keys the object does not know, with a suggestion. */
export function knownKeys<T>(keys: readonly string[]) {
  return v.rawCheck<T>(({ dataset, addIssue }) => {
    const value = objectValue(dataset.value);
    if (!value) return;
    for (const key of Object.keys(value)) {
      if (keys.includes(key)) continue;
      const suggestion = didYouMean(key, keys);
      const packer = key.includes('_') ? "; Packer's snake_case names are for fromPackerConfig()" : '';
      addIssue({
        message: `is not an option${suggestion ? `; did you mean \`${suggestion}\`?` : ''}${packer} (remove it${suggestion ? ' or rename it' : ''})`,
        input: value[key],
        path: pathItems(value, [key], value[key]),
      });
    }
  });
}

/** Makes every entry optional: "required" is a cross-field rule with its own message. */
export function optionalAll<E extends v.ObjectEntries>(
  entries: E,
): { [K in keyof E]: v.OptionalSchema<E[K], undefined> } {
  return Object.fromEntries(Object.entries(entries).map(([k, s]) => [k, v.optional(s)])) as {
    [K in keyof E]: v.OptionalSchema<E[K], undefined>;
  };
}

/** An object schema with optional entries that reports unknown keys. */
export function shape<E extends v.ObjectEntries>(entries: E, what: string) {
  return v.pipe(
    v.custom<Record<string, unknown>>(isPlainObject, bad(what)),
    v.looseObject(optionalAll(entries), bad(what)),
    knownKeys(Object.keys(entries)),
  );
}

/**
 * A template option: a string in Packer's syntax checked against the names the option allows, or a
 * function. `shell` options also get their quoting checked (`wrapper`: and that `{{.Command}}` runs).
 */
export function template(
  option: string,
  allowed: readonly (keyof TemplateData)[],
  literalCheck?: (text: string) => string | undefined,
  shell?: 'shell' | 'wrapper',
  allowEmpty = false,
) {
  return v.pipe(
    v.custom<string | ((data: TemplateData) => string)>(
      (x) => (isString(x) && (allowEmpty || x !== '')) || typeof x === 'function',
      bad(allowEmpty ? 'a template string or a function' : 'a non-empty template string or a function'),
    ),
    v.rawCheck<string | ((data: TemplateData) => string)>(({ dataset, addIssue }) => {
      if (!dataset.typed || !isString(dataset.value)) return;
      const problems = templateProblems(dataset.value, {
        path: option,
        allowed,
        ...(shell ? { quote: 'shell' as const, requireCommand: shell === 'wrapper' } : {}),
      });
      for (const message of problems) addIssue({ message, input: dataset.value });
      if (problems.length > 0) return;
      if (literalCheck && isLiteralTemplate(dataset.value)) {
        const literal = literalCheck(dataset.value);
        if (literal) addIssue({ message: literal, input: dataset.value });
      }
    }),
  );
}

export const tagKey = leaf<string>(
  (x) => isString(x) && x.length >= 1 && x.length <= 128 && !x.toLowerCase().startsWith('aws:'),
  'a tag key of 1 to 128 characters not starting with "aws:"',
);
export const tagMap = (option: string) =>
  recordOf(
    tagKey,
    template(
      option,
      TEMPLATE_SCOPES.buildData,
      (text) =>
        text.length > 256 ? `must be at most 256 characters, got ${text.length}; shorten the tag value` : undefined,
      undefined,
      true, // EC2 allows empty tag values
    ),
    'an object of tag names to values',
  );

export const chrootMount = leaf<unknown>(
  (x) => {
    const parts = Array.isArray(x)
      ? x
      : x && typeof x === 'object'
        ? [
            (x as Record<string, unknown>).fsType,
            (x as Record<string, unknown>).source,
            (x as Record<string, unknown>).target,
          ]
        : [];
    if (
      !Array.isArray(x) &&
      x &&
      typeof x === 'object' &&
      Object.keys(x).some((k) => !['fsType', 'source', 'target'].includes(k))
    )
      return false;
    return parts.length === 3 && parts.every((p) => isString(p) && p !== '') && (parts[2] as string).startsWith('/');
  },
  'three elements [fsType, source, target] (or { fsType, source, target }) with an absolute target',
  'e.g. ["bind", "/dev", "/dev"]',
);

export const filterValue = leaf<string | readonly string[]>(
  (x) => isString(x) || (Array.isArray(x) && x.length > 0 && x.every(isString)),
  'a string or a non-empty array of strings',
);

export const WAIT_KINDS: readonly WaitKind[] = [
  'volumeAvailable',
  'volumeAttached',
  'volumeDetached',
  'volumeDeleted',
  'snapshotCompleted',
  'imageAvailable',
  'copyAvailable',
];
export const waitPolicy = shape(
  {
    timeoutMs: timerMs(1),
    minDelayMs: timerMs(1),
    maxDelayMs: timerMs(1),
    firstDelayMs: timerMs(0, '0 polls again at the normal pace'),
  },
  'an object { timeoutMs, minDelayMs, maxDelayMs, firstDelayMs }',
);

export const blockDeviceMapping = shape(
  {
    deviceName: nonEmpty,
    deleteOnTermination: bool,
    encrypted: bool,
    kmsKeyId: kmsKey,
    iops: positiveInt,
    throughput: intIn(THROUGHPUT[0], THROUGHPUT[1], 'throughput is in MiB/s (gp3 only)'),
    noDevice: bool,
    snapshotId: pattern(SNAPSHOT_ID, 'a snapshot id like "snap-0123456789abcdef0"'),
    virtualName: pattern(/^ephemeral\d+$/, 'an instance store name like "ephemeral0"'),
    volumeSize: intIn(1, 65_536, 'sizes are in GiB'),
    volumeType: oneOf(VOLUME_TYPES),
  },
  'an object describing one block device',
);
