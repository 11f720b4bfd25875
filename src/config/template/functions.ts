/**
 * The template functions (Packer's, minus those that would reach outside the build), the ones
 * refused with the alternative, and the Go keywords the grammar does not take.
 */
import type { TemplateClock } from '../types.js';
import { RFC3339, formatGoTime } from './go-time.js';
import type { Value } from './ast.js';

type Param = 'string' | 'int' | 'map' | 'string?';

interface FunctionSpec {
  readonly params: readonly Param[];
  readonly call: (args: readonly Value[], clock: TemplateClock) => string;
}

const ALLOWED_NAME_BYTES = new Set(Array.from("()[] ./-'@_", (c) => c.charCodeAt(0)));

/**
 * Packer's `clean_resource_name`: every byte that is not ASCII alphanumeric or one of
 * `()[] ./-'@_` becomes `-` (byte-wise, as Packer, so a multi-byte character becomes several).
 * @internal
 */
export function cleanResourceName(value: string): string {
  const bytes = Buffer.from(value, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    const alnum = (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122);
    if (!alnum && !ALLOWED_NAME_BYTES.has(b)) bytes[i] = 45;
  }
  return bytes.toString('latin1');
}

/** A value as Go's fmt prints it (`{{.SourceAMITags}}` shows as `map[k:v]`, as in Packer). */
export const str = (v: Value | undefined): string => {
  if (v === undefined) return '';
  if (typeof v !== 'object') return String(v);
  const pairs = Object.keys(v)
    .sort()
    .map((k) => `${k}:${v[k]}`);
  return `map[${pairs.join(' ')}]`;
};

/** The functions templates may call. */
export const FUNCTIONS: Readonly<Record<string, FunctionSpec>> = {
  timestamp: { params: [], call: (_, clock) => String(Math.floor(clock.now.getTime() / 1000)) },
  isotime: {
    params: ['string?'],
    call: (args, clock) => formatGoTime(clock.now, args.length > 0 ? str(args[0]) : RFC3339),
  },
  uuid: { params: [], call: (_, clock) => clock.uuid() },
  clean_resource_name: { params: ['string'], call: (args) => cleanResourceName(str(args[0])) },
  upper: { params: ['string'], call: (args) => str(args[0]).toUpperCase() },
  lower: { params: ['string'], call: (args) => str(args[0]).toLowerCase() },
  replace_all: {
    params: ['string', 'string', 'string'],
    call: (args) => str(args[2]).replaceAll(str(args[0]), str(args[1])),
  },
  replace: {
    params: ['string', 'string', 'int', 'string'],
    call: (args) => goReplace(str(args[3]), str(args[0]), str(args[1]), args[2] as number),
  },
  index: {
    params: ['map', 'string'],
    call: (args) => {
      const map = args[0] as Readonly<Record<string, string>>;
      const key = str(args[1]);
      return Object.hasOwn(map, key) && typeof map[key] === 'string' ? map[key] : '';
    },
  },
};

/** Go's strings.Replace: at most `n` replacements, all when n < 0. */
function goReplace(src: string, old: string, replacement: string, n: number): string {
  if (n < 0) return src.replaceAll(old, replacement);
  let out = src;
  let from = 0;
  for (let done = 0; done < n; done++) {
    const at = out.indexOf(old, from);
    if (at === -1 || (old === '' && at > out.length)) break;
    out = out.slice(0, at) + replacement + out.slice(at + old.length);
    from = at + replacement.length + (old === '' ? 1 : 0);
  }
  return out;
}

/** Functions Packer has that templates here refuse, with the reason and the alternative. */
export const REFUSED: Readonly<Record<string, string>> = {
  user: 'user variables must be resolved before the config is built: pass them to fromPackerConfig(json, { variables }) or write the value in',
  env: 'env is only allowed in Packer variables, not in builder options; read process.env in your script and put the value in the config (or use a function template)',
  consul_key: 'secret and key-value lookups are not supported in templates; fetch the value in your script',
  vault: 'secret and key-value lookups are not supported in templates; fetch the value in your script',
  aws_secretsmanager: 'secret and key-value lookups are not supported in templates; fetch the value in your script',
  aws_secretsmanager_raw: 'secret and key-value lookups are not supported in templates; fetch the value in your script',
  strftime: 'use isotime with a Go layout instead, e.g. {{ isotime "2006-01-02" }}',
};

/** Go template keywords: control structures are not part of the grammar. */
export const KEYWORDS = new Set([
  'if',
  'else',
  'end',
  'range',
  'with',
  'define',
  'template',
  'block',
  'break',
  'continue',
  'nil',
  'true',
  'false',
]);
