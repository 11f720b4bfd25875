/**
 * Packer's weakly typed values (`"true"`, `"15"`, CSV filter values, tag blocks, `{{user}}`)
 * converted to BuildConfig values, each problem recorded with its Packer path.
 */
import type { ConfigIssue } from '../../errors.js';
import { didYouMean } from '../suggest.js';
import type { BuildConfig } from '../types.js';
import { DEREGISTRATION_KEYS, FILTER_KEYS, MAPPING_KEYS, POLLING_KEYS, SECRET_KEYS } from './options.js';
import type { Kind } from './options.js';

/** Where conversion problems go, and the `user` variables. @internal */
export interface ConvertCtx {
  readonly issues: ConfigIssue[];
  readonly variables: ReadonlyMap<string, { value: string; literal: boolean }>;
}

export const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);
export const typeName = (x: unknown): string =>
  x === null ? 'null' : Array.isArray(x) ? 'an array' : typeof x === 'object' ? 'an object' : `a ${typeof x}`;

export function issue(ctx: ConvertCtx, path: string, value: unknown, message: string): undefined {
  // The path may start with "builders.N." when a whole template was given.
  ctx.issues.push({
    path,
    value: path.split('.').some((segment) => SECRET_KEYS.has(segment)) ? '[redacted]' : value,
    message,
  });
  return undefined;
}

/** The text of a `raw` or "quoted" literal; undefined when its escapes are not valid. */
export function goStringLiteral(literal: string): string | undefined {
  if (literal.startsWith('`')) return literal.slice(1, -1);
  try {
    const value = JSON.parse(literal) as unknown;
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** A Go string literal for text that must stay literal inside a template action. */
const goLiteral = (text: string): string => JSON.stringify(text);

const USER_ACTION = /\{\{(-?)(\s*)user\s+(`[^`]*`|"(?:[^"\\]|\\.)*")(\s*(?:\|[^}]*?)?)(\s*)(-?)\}\}/g;

/**
 * Replaces `{{user \`name\`}}` with the variable's value. In a template option a value that could
 * be read as template syntax (or a piped/trimmed action) becomes a quoted literal action, so it
 * renders verbatim; elsewhere the value is the text.
 */
function substituteUser(text: string, path: string, ctx: ConvertCtx, template: boolean): string | undefined {
  let failed = false;
  const out = text.replace(
    USER_ACTION,
    (whole, trimL: string, _s1: string, nameLiteral: string, pipe: string, _s2: string, trimR: string) => {
      const name = goStringLiteral(nameLiteral);
      if (name === undefined) {
        failed = true;
        issue(
          ctx,
          path,
          text,
          `has a bad escape in the user variable name ${nameLiteral}; write the name without backslashes`,
        );
        return whole;
      }
      const variable = ctx.variables.get(name);
      if (variable === undefined) {
        failed = true;
        issue(
          ctx,
          path,
          text,
          `uses user variable \`${name}\`, which has no value; pass it: fromPackerConfig(json, { variables: { ${JSON.stringify(name)}: '...' } })`,
        );
        return whole;
      }
      const plain = pipe.trim() === '' && trimL === '' && trimR === '';
      const braces = variable.value.includes('{{') || variable.value.includes('}}');
      // A template default from the template's variables block stays template text (Packer renders it too).
      if (plain && (!braces || !variable.literal || !template)) return variable.value;
      if (!template) {
        failed = true;
        issue(
          ctx,
          path,
          text,
          'is not a template option here, so user variables can only stand alone in it; write the value in',
        );
        return whole;
      }
      return `{{${trimL} ${goLiteral(variable.value)}${pipe} ${trimR}}}`;
    },
  );
  return failed ? undefined : out;
}

/** Converts one string option: user variables substituted, "" meaning unset (as in Packer). */
function convertString(value: unknown, path: string, ctx: ConvertCtx, template: boolean): string | undefined {
  if (typeof value === 'number' || typeof value === 'boolean') value = String(value);
  if (typeof value !== 'string') return issue(ctx, path, value, `must be a string, got ${typeName(value)}`);
  const text = substituteUser(value, path, ctx, template);
  if (text === undefined) return undefined;
  if (!template && /\{\{/.test(text)) {
    return issue(
      ctx,
      path,
      text,
      'is not a template option here; write the value itself (user variables are substituted, other functions are not)',
    );
  }
  return text;
}

const GO_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const GO_FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** Packer decodes weakly: "true", "1" and 1 are booleans (Go's ParseBool); "" is unset. */
function convertBool(value: unknown, path: string, ctx: ConvertCtx): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 0 || value === 1) return value === 1;
  if (typeof value !== 'string') return issue(ctx, path, value, `must be true or false, got ${typeName(value)}`);
  const text = convertString(value, path, ctx, false);
  if (text === undefined || text === '') return undefined;
  if (GO_TRUE.has(text)) return true;
  if (GO_FALSE.has(text)) return false;
  return issue(ctx, path, value, `must be true or false, got ${JSON.stringify(text)}`);
}

function convertInt(value: unknown, path: string, ctx: ConvertCtx): number | undefined {
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return value;
    return issue(ctx, path, value, `must be a whole number, got ${value}`);
  }
  if (typeof value === 'string') {
    const text = convertString(value, path, ctx, false);
    if (text === undefined) return undefined;
    if (text === '') return undefined;
    if (/^-?\d+$/.test(text.trim())) return Number(text);
    return issue(ctx, path, value, `must be a whole number, got ${JSON.stringify(text)}`);
  }
  return issue(ctx, path, value, `must be a whole number, got ${typeName(value)}`);
}

function convertStrings(value: unknown, path: string, ctx: ConvertCtx, template: boolean): string[] | undefined {
  // Weak decoding turns one value into a list of one.
  const list = Array.isArray(value)
    ? value
    : typeof value === 'string' || typeof value === 'number'
      ? [value]
      : undefined;
  if (list === undefined) return issue(ctx, path, value, `must be a list of strings, got ${typeName(value)}`);
  const out: string[] = [];
  list.forEach((item, i) => {
    const text = convertString(item, `${path}.${i}`, ctx, template);
    if (text !== undefined) out.push(text);
  });
  return out;
}

function convertStringMap(
  value: unknown,
  path: string,
  ctx: ConvertCtx,
  template: boolean,
): Record<string, string> | undefined {
  if (!isObject(value)) return issue(ctx, path, value, `must be an object of names to strings, got ${typeName(value)}`);
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string' && typeof item !== 'number' && typeof item !== 'boolean') {
      issue(ctx, `${path}.${key}`, item, `must be a string, got ${typeName(item)}`);
      continue;
    }
    const text = substituteUser(String(item), `${path}.${key}`, ctx, template);
    if (text !== undefined) out[key] = text;
  }
  return out;
}

/** `tag { key = "k" value = "v" }` blocks, in their JSON form: a list of { key, value }. */
export function convertTagBlocks(value: unknown, path: string, ctx: ConvertCtx): Record<string, string> | undefined {
  const list = Array.isArray(value) ? value : [value];
  const out: Record<string, string> = {};
  list.forEach((block, i) => {
    const p = Array.isArray(value) ? `${path}.${i}` : path;
    if (
      !isObject(block) ||
      typeof block.key !== 'string' ||
      !('value' in block) ||
      Object.keys(block).some((k) => k !== 'key' && k !== 'value')
    ) {
      issue(ctx, p, block, 'must be a block { "key": "...", "value": "..." }');
      return;
    }
    const text = substituteUser(String(block.value), `${p}.value`, ctx, true);
    if (text !== undefined) out[block.key] = text;
  });
  return out;
}

/** Go's encoding/csv for one line: commas separate fields, a quoted field may contain commas and "". */
function parseCsvLine(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      while (i < line.length) {
        if (line[i] === '"' && line[i + 1] === '"') {
          field += '"';
          i += 2;
        } else if (line[i] === '"') {
          i++;
          break;
        } else field += line[i++];
      }
      while (i < line.length && line[i] !== ',') field += line[i++];
    } else {
      while (i < line.length && line[i] !== ',') field += line[i++];
    }
    fields.push(field);
    if (line[i] !== ',') return fields;
    i++;
  }
}

/** Reports unknown keys of a nested block with a suggestion. */
function unknownKey(ctx: ConvertCtx, path: string, key: string, value: unknown, known: readonly string[]): void {
  const suggestion = didYouMean(key, known);
  issue(
    ctx,
    path,
    value,
    `is not an option${suggestion ? `; did you mean \`${suggestion}\`?` : ''} (known: ${known.join(', ')})`,
  );
}

function convertFilter(value: unknown, path: string, ctx: ConvertCtx): BuildConfig['sourceAmiFilter'] | undefined {
  if (!isObject(value))
    return issue(ctx, path, value, `must be an object { filters, owners, most_recent }, got ${typeName(value)}`);
  const filters: Record<string, string[]> = {};
  const out: {
    filters?: Record<string, string[]>;
    owners?: string[];
    mostRecent?: boolean;
    includeDeprecated?: boolean;
  } = {};
  for (const [key, raw] of Object.entries(value)) {
    const p = `${path}.${key}`;
    if (key === 'filters') {
      if (!isObject(raw)) {
        issue(ctx, p, raw, `must be an object of DescribeImages filter names to values, got ${typeName(raw)}`);
        continue;
      }
      for (const [name, filterValue] of Object.entries(raw)) {
        if (Array.isArray(filterValue)) {
          const values = convertStrings(filterValue, `${p}.${name}`, ctx, false);
          if (values) filters[name] = [...(filters[name] ?? []), ...values];
        } else {
          const text = convertString(filterValue, `${p}.${name}`, ctx, false);
          // Packer reads each value as one CSV line, so "a,b" is two values.
          if (text !== undefined) filters[name] = [...(filters[name] ?? []), ...parseCsvLine(text)];
        }
      }
    } else if (key === 'filter') {
      // Packer 1.6's repeatable filter { name, value } blocks.
      const blocks = Array.isArray(raw) ? raw : [raw];
      blocks.forEach((block, i) => {
        if (!isObject(block) || typeof block.name !== 'string' || typeof block.value !== 'string') {
          issue(ctx, `${p}.${i}`, block, 'must be a block { "name": "...", "value": "..." }');
          return;
        }
        const text = convertString(block.value, `${p}.${i}.value`, ctx, false);
        if (text !== undefined) filters[block.name] = [...(filters[block.name] ?? []), text];
      });
    } else if (key === 'owners') {
      const owners = convertStrings(raw, p, ctx, false);
      if (owners) out.owners = owners;
    } else if (key === 'most_recent' || key === 'include_deprecated') {
      const flag = convertBool(raw, p, ctx);
      if (flag !== undefined) out[key === 'most_recent' ? 'mostRecent' : 'includeDeprecated'] = flag;
    } else
      unknownKey(
        ctx,
        p,
        key,
        raw,
        Object.keys(FILTER_KEYS).filter((k) => k !== 'filter'),
      );
  }
  if (Object.keys(filters).length > 0) out.filters = filters;
  return out;
}

function convertMappings(value: unknown, path: string, ctx: ConvertCtx): Record<string, unknown>[] | undefined {
  if (!Array.isArray(value))
    return issue(ctx, path, value, `must be a list of block device mappings, got ${typeName(value)}`);
  return value.map((raw, i) => {
    const p = `${path}.${i}`;
    const out: Record<string, unknown> = {};
    if (!isObject(raw)) {
      issue(ctx, p, raw, `must be an object describing one block device, got ${typeName(raw)}`);
      return out;
    }
    for (const [key, item] of Object.entries(raw)) {
      const spec = Object.hasOwn(MAPPING_KEYS, key) ? MAPPING_KEYS[key] : undefined;
      if (!spec) {
        unknownKey(ctx, `${p}.${key}`, key, item, Object.keys(MAPPING_KEYS));
        continue;
      }
      const at = `${p}.${key}`;
      const converted =
        spec.kind === 'bool'
          ? convertBool(item, at, ctx)
          : spec.kind === 'int'
            ? convertInt(item, at, ctx)
            : convertString(item, at, ctx, false);
      if (converted !== undefined && converted !== '') out[spec.to] = converted;
    }
    return out;
  });
}

function convertMounts(value: unknown, path: string, ctx: ConvertCtx): string[][] | undefined {
  if (!Array.isArray(value))
    return issue(ctx, path, value, `must be a list of [fstype, source, target] triples, got ${typeName(value)}`);
  return value.map((entry, i) => {
    if (!Array.isArray(entry)) {
      issue(ctx, `${path}.${i}`, entry, 'each chroot_mounts entry should be three elements: [fstype, source, target]');
      return [];
    }
    return entry.map((part, j) => convertString(part, `${path}.${i}.${j}`, ctx, false) ?? '');
  });
}

function convertNested(
  value: unknown,
  path: string,
  ctx: ConvertCtx,
  keys: Readonly<Record<string, string>>,
  what: string,
): Record<string, unknown> | undefined {
  if (!isObject(value)) return issue(ctx, path, value, `must be ${what}, got ${typeName(value)}`);
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(value)) {
    if (!Object.hasOwn(keys, key)) {
      unknownKey(ctx, `${path}.${key}`, key, raw, Object.keys(keys));
      continue;
    }
    const p = `${path}.${key}`;
    const converted = key === 'enabled' || key === 'with_cooldown' ? convertBool(raw, p, ctx) : convertInt(raw, p, ctx);
    if (typeof converted === 'number' && converted <= 0) {
      issue(ctx, p, raw, `must be a positive whole number, got ${converted}`);
      continue;
    }
    if (converted !== undefined) out[keys[key]!] = key === 'delay_seconds' ? (converted as number) * 1000 : converted;
  }
  return out;
}

/** How each kind of option converts (tag blocks merge separately). @internal */
export const CONVERTERS: Readonly<
  Record<Exclude<Kind, 'tagBlocks'>, (value: unknown, path: string, ctx: ConvertCtx) => unknown>
> = {
  string: (value, path, ctx) => emptyIsUnset(convertString(value, path, ctx, false)),
  template: (value, path, ctx) => emptyIsUnset(convertString(value, path, ctx, true)),
  bool: convertBool,
  int: convertInt,
  strings: (value, path, ctx) => convertStrings(value, path, ctx, false),
  templates: (value, path, ctx) => convertStrings(value, path, ctx, true),
  stringMap: (value, path, ctx) => convertStringMap(value, path, ctx, false),
  tagMap: (value, path, ctx) => convertStringMap(value, path, ctx, true),
  partition: (value, path, ctx) =>
    emptyIsUnset(
      typeof value === 'number' && Number.isInteger(value) ? String(value) : convertString(value, path, ctx, false),
    ),
  mounts: (value, path, ctx) => {
    const mounts = convertMounts(value, path, ctx);
    // In Packer an empty list means the defaults.
    return mounts && mounts.length > 0 ? mounts : undefined;
  },
  mappings: convertMappings,
  filter: convertFilter,
  polling: (value, path, ctx) =>
    convertNested(value, path, ctx, POLLING_KEYS, 'an object { delay_seconds, max_attempts }'),
  deregistration: (value, path, ctx) =>
    convertNested(value, path, ctx, DEREGISTRATION_KEYS, 'an object { enabled, with_cooldown }'),
};

function emptyIsUnset(text: string | undefined): string | undefined {
  return text === '' ? undefined : text;
}
