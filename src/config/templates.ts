/**
 * Packer's template syntax (`{{ .Device }}`, `{{ timestamp | clean_resource_name }}`), parsed into
 * an AST and rendered through eta.
 *
 * Why the AST: eta compiles templates to JavaScript, so user text must never become eta code. The
 * parser accepts only a small grammar (literal text; actions made of variables, string and integer
 * literals, whitelisted functions and pipes); the compiled eta source contains nothing but calls
 * `it.a(n)` / `it.l(n)` into that whitelist, and literal text is kept out of eta's code tags.
 */
import { randomUUID } from 'node:crypto';
import { Eta } from 'eta/core';
import { ConfigError } from '../errors.js';
import { didYouMean } from './suggest.js';
import type { CompiledTemplate, Template, TemplateClock, TemplateData } from './types.js';

type DataName = keyof TemplateData;

/**
 * Every data name a template can refer to.
 * @internal
 */
export const TEMPLATE_DATA_NAMES: readonly DataName[] = [
  'BuildRegion',
  'SourceAMI',
  'SourceAMIName',
  'SourceAMICreationDate',
  'SourceAMIOwner',
  'SourceAMIOwnerName',
  'SourceAMITags',
  'Device',
  'MountPath',
  'Command',
];

/**
 * The names each template option may use (Packer's "build template data" per option; `amiName`
 * gets build data too, which Packer cannot offer because it renders the name before the source
 * lookup).
 * @internal
 */
export const TEMPLATE_SCOPES = {
  buildData: [
    'BuildRegion',
    'SourceAMI',
    'SourceAMIName',
    'SourceAMICreationDate',
    'SourceAMIOwner',
    'SourceAMIOwnerName',
    'SourceAMITags',
  ],
  mountPath: ['Device'],
  preMountCommands: ['Device'],
  postMountCommands: ['Device', 'MountPath'],
  commandWrapper: ['Command'],
} as const satisfies Record<string, readonly DataName[]>;

// --- AST ------------------------------------------------------------------------------------

type Value = string | number | Readonly<Record<string, string>>;

interface TextNode {
  readonly kind: 'text';
  value: string;
}

interface ActionNode {
  readonly kind: 'action';
  /** Evaluates the action's pipeline. */
  readonly run: (data: TemplateData, clock: TemplateClock) => string;
  /** True when the pipeline starts with `.Command` (inserted verbatim where unquoted). */
  readonly isCommand: boolean;
}

type Node = TextNode | ActionNode;

/** A syntax problem at a character offset of the template. @internal */
class TemplateSyntaxError extends Error {
  readonly position: number;
  constructor(message: string, position: number) {
    super(message);
    this.position = position;
  }
}

type Token =
  | { readonly type: 'field'; readonly names: readonly string[]; readonly pos: number }
  | { readonly type: 'ident'; readonly name: string; readonly pos: number }
  | { readonly type: 'string'; readonly value: string; readonly pos: number }
  | { readonly type: 'number'; readonly value: number; readonly pos: number }
  | { readonly type: 'pipe'; readonly pos: number };

// --- Functions ------------------------------------------------------------------------------

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
const str = (v: Value | undefined): string => {
  if (v === undefined) return '';
  if (typeof v !== 'object') return String(v);
  const pairs = Object.keys(v)
    .sort()
    .map((k) => `${k}:${v[k]}`);
  return `map[${pairs.join(' ')}]`;
};

const FUNCTIONS: Readonly<Record<string, FunctionSpec>> = {
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
const REFUSED: Readonly<Record<string, string>> = {
  user: 'user variables must be resolved before the config is built: pass them to fromPackerConfig(json, { variables }) or write the value in',
  env: 'env is only allowed in Packer variables, not in builder options; read process.env in your script and put the value in the config (or use a function template)',
  consul_key: 'secret and key-value lookups are not supported in templates; fetch the value in your script',
  vault: 'secret and key-value lookups are not supported in templates; fetch the value in your script',
  aws_secretsmanager: 'secret and key-value lookups are not supported in templates; fetch the value in your script',
  aws_secretsmanager_raw: 'secret and key-value lookups are not supported in templates; fetch the value in your script',
  strftime: 'use isotime with a Go layout instead, e.g. {{ isotime "2006-01-02" }}',
};

const KEYWORDS = new Set([
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

// --- Go time layouts ------------------------------------------------------------------------

const RFC3339 = '2006-01-02T15:04:05Z07:00';
const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const pad = (n: number, width: number, fill = '0'): string => String(n).padStart(width, fill);

/**
 * Formats a time in UTC with a Go reference-time layout (`2006-01-02T15:04:05Z07:00`), as
 * Packer's `isotime` does. Supports every std token of Go's `time` package; text that is not a
 * token is copied.
 * @internal
 */
export function formatGoTime(date: Date, layout: string): string {
  const y = date.getUTCFullYear();
  const mo = date.getUTCMonth();
  const d = date.getUTCDate();
  const h = date.getUTCHours();
  const mi = date.getUTCMinutes();
  const s = date.getUTCSeconds();
  const ms = date.getUTCMilliseconds();
  const yday = Math.floor((Date.UTC(y, mo, d) - Date.UTC(y, 0, 1)) / 86_400_000) + 1;
  const h12 = h % 12 === 0 ? 12 : h % 12;
  // Longest tokens first where one is a prefix of another.
  const tokens: readonly [string, () => string][] = [
    ['January', () => MONTHS[mo]!],
    ['Jan', () => MONTHS[mo]!.slice(0, 3)],
    ['Monday', () => DAYS[date.getUTCDay()]!],
    ['Mon', () => DAYS[date.getUTCDay()]!.slice(0, 3)],
    ['MST', () => 'UTC'],
    ['2006', () => pad(y, 4)],
    ['002', () => pad(yday, 3)],
    ['__2', () => pad(yday, 3, ' ')],
    ['_2006', () => `_${pad(y, 4)}`],
    ['_2', () => pad(d, 2, ' ')],
    ['01', () => pad(mo + 1, 2)],
    ['02', () => pad(d, 2)],
    ['03', () => pad(h12, 2)],
    ['04', () => pad(mi, 2)],
    ['05', () => pad(s, 2)],
    ['06', () => pad(y % 100, 2)],
    ['15', () => pad(h, 2)],
    ['1', () => String(mo + 1)],
    ['2', () => String(d)],
    ['3', () => String(h12)],
    ['4', () => String(mi)],
    ['5', () => String(s)],
    ['PM', () => (h >= 12 ? 'PM' : 'AM')],
    ['pm', () => (h >= 12 ? 'pm' : 'am')],
    ['Z07:00:00', () => 'Z'],
    ['Z070000', () => 'Z'],
    ['Z07:00', () => 'Z'],
    ['Z0700', () => 'Z'],
    ['Z07', () => 'Z'],
    ['-07:00:00', () => '+00:00:00'],
    ['-070000', () => '+000000'],
    ['-07:00', () => '+00:00'],
    ['-0700', () => '+0000'],
    ['-07', () => '+00'],
  ];
  let out = '';
  let i = 0;
  outer: while (i < layout.length) {
    const c = layout[i]!;
    // Fractional seconds: "." or "," then a run of 0s or 9s not followed by a digit.
    if ((c === '.' || c === ',') && (layout[i + 1] === '0' || layout[i + 1] === '9')) {
      const digit = layout[i + 1]!;
      let j = i + 1;
      while (layout[j] === digit) j++;
      if (!/[0-9]/.test(layout[j] ?? '')) {
        const width = j - i - 1;
        const frac = (pad(ms, 3) + '000000').slice(0, Math.min(width, 9)).padEnd(width, '0');
        if (digit === '0') out += c + frac;
        else {
          const trimmed = frac.replace(/0+$/, '');
          if (trimmed) out += c + trimmed;
        }
        i = j;
        continue;
      }
    }
    for (const [token, value] of tokens) {
      if (!layout.startsWith(token, i)) continue;
      out += value();
      i += token.length;
      continue outer;
    }
    out += c;
    i++;
  }
  return out;
}

// --- Lexer and parser -----------------------------------------------------------------------

const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r';
const isIdentStart = (c: string | undefined): boolean => c !== undefined && /[A-Za-z_]/.test(c);
const isIdentChar = (c: string | undefined): boolean => c !== undefined && /[A-Za-z0-9_]/.test(c);

const GO_ESCAPES: Readonly<Record<string, string>> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
  '"': '"',
  "'": "'",
};

/** Reads a Go double-quoted string starting at `start` (the quote). */
function readQuoted(src: string, start: number): { value: string; end: number } {
  let value = '';
  let i = start + 1;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '"') return { value, end: i + 1 };
    if (c === '\n') break;
    if (c !== '\\') {
      value += c;
      i++;
      continue;
    }
    const e = src[i + 1];
    if (e !== undefined && Object.hasOwn(GO_ESCAPES, e)) {
      value += GO_ESCAPES[e];
      i += 2;
      continue;
    }
    const hex = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
    if (hex > 0) {
      const digits = src.slice(i + 2, i + 2 + hex);
      if (!new RegExp(`^[0-9a-fA-F]{${hex}}$`).test(digits))
        throw new TemplateSyntaxError(`invalid \\${e} escape in string`, i);
      const code = parseInt(digits, 16);
      if (e === 'x') value += Buffer.from([code]).toString('latin1');
      else if (code > 0x10ffff)
        throw new TemplateSyntaxError(`escape \\${e}${digits} is not a valid Unicode code point`, i);
      else value += String.fromCodePoint(code);
      i += 2 + hex;
      continue;
    }
    if (e !== undefined && /[0-7]/.test(e)) {
      const digits = src.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(digits))
        throw new TemplateSyntaxError('invalid octal escape in string (needs three digits)', i);
      value += String.fromCharCode(parseInt(digits, 8));
      i += 4;
      continue;
    }
    throw new TemplateSyntaxError(`unknown escape sequence \\${e ?? ''} in string`, i);
  }
  throw new TemplateSyntaxError('unterminated string', start);
}

/** Lexes one action's body from `start` up to and including its `}}`. */
function lexAction(
  src: string,
  start: number,
  actionStart: number,
): { tokens: Token[]; end: number; trimRight: boolean } {
  const tokens: Token[] = [];
  let i = start;
  for (;;) {
    let sawSpace = false;
    while (isSpace(src[i])) {
      i++;
      sawSpace = true;
    }
    if (i >= src.length) throw new TemplateSyntaxError('unclosed action: "{{" without "}}"', actionStart);
    if (src.startsWith('}}', i)) return { tokens, end: i + 2, trimRight: false };
    if (sawSpace && src.startsWith('-}}', i)) return { tokens, end: i + 3, trimRight: true };
    const c = src[i]!;
    if (c === '|') {
      tokens.push({ type: 'pipe', pos: i });
      i++;
    } else if (c === '.') {
      if (!isIdentChar(src[i + 1]))
        throw new TemplateSyntaxError('a bare "." is not supported; name a variable, e.g. .Device', i);
      const names: string[] = [];
      const pos = i;
      while (src[i] === '.' && isIdentChar(src[i + 1])) {
        let j = i + 1;
        while (isIdentChar(src[j])) j++;
        names.push(src.slice(i + 1, j));
        i = j;
      }
      tokens.push({ type: 'field', names, pos });
    } else if (c === '"') {
      const { value, end } = readQuoted(src, i);
      tokens.push({ type: 'string', value, pos: i });
      i = end;
    } else if (c === '`') {
      const end = src.indexOf('`', i + 1);
      if (end === -1) throw new TemplateSyntaxError('unterminated raw string', i);
      tokens.push({ type: 'string', value: src.slice(i + 1, end), pos: i });
      i = end + 1;
    } else if (/[0-9]/.test(c) || ((c === '-' || c === '+') && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^[-+]?[0-9]+/.exec(src.slice(i))!;
      if (/[0-9A-Za-z_.]/.test(src[i + m[0].length] ?? ''))
        throw new TemplateSyntaxError('only decimal integers are supported as numbers', i);
      tokens.push({ type: 'number', value: Number(m[0]), pos: i });
      i += m[0].length;
    } else if (isIdentStart(c)) {
      let j = i;
      while (isIdentChar(src[j])) j++;
      tokens.push({ type: 'ident', name: src.slice(i, j), pos: i });
      i = j;
    } else if (c === '$') {
      throw new TemplateSyntaxError('template variables ($x) are not supported', i);
    } else if (c === '(' || c === ')') {
      throw new TemplateSyntaxError(
        'parentheses are not supported; use a pipe, e.g. {{ .SourceAMIName | clean_resource_name }}',
        i,
      );
    } else if (c === '{') {
      throw new TemplateSyntaxError('unexpected "{" inside an action (nested "{{"?)', i);
    } else {
      throw new TemplateSyntaxError(`unexpected character ${JSON.stringify(c)} inside an action`, i);
    }
  }
}

interface ScopeInfo {
  readonly allowed: ReadonlySet<DataName>;
  readonly path: string;
}

type Arg = (data: TemplateData) => Value;

function describeAllowed(scope: ScopeInfo): string {
  return scope.allowed.size === 0 ? 'none' : [...scope.allowed].map((n) => `.${n}`).join(', ');
}

/** Resolves a field token to an accessor, checking it against the option's allowed names. */
function fieldAccessor(token: Extract<Token, { type: 'field' }>, scope: ScopeInfo, asMap: boolean): Arg {
  const [name, key, ...rest] = token.names as [string, ...string[]];
  const known = (TEMPLATE_DATA_NAMES as readonly string[]).includes(name);
  if (!known) {
    const hint = didYouMean(name, [...scope.allowed]);
    throw new TemplateSyntaxError(
      `unknown variable .${name}${hint ? `; did you mean .${hint}?` : ''} (available here: ${describeAllowed(scope)})`,
      token.pos,
    );
  }
  const dataName = name as DataName;
  if (!scope.allowed.has(dataName)) {
    throw new TemplateSyntaxError(
      `.${name} is not available in ${scope.path} (available here: ${describeAllowed(scope)})`,
      token.pos,
    );
  }
  if (dataName === 'SourceAMITags') {
    if (rest.length > 0)
      throw new TemplateSyntaxError('.SourceAMITags has one level of keys: .SourceAMITags.key', token.pos);
    if (key === undefined) {
      if (!asMap)
        throw new TemplateSyntaxError(
          '.SourceAMITags is a map; read one tag with .SourceAMITags.key or index .SourceAMITags "key"',
          token.pos,
        );
      return (data) => {
        const tags = Object.hasOwn(data, 'SourceAMITags') ? data.SourceAMITags : undefined;
        return tags && typeof tags === 'object' ? tags : {};
      };
    }
    return (data) => {
      const tags = Object.hasOwn(data, 'SourceAMITags') ? data.SourceAMITags : undefined;
      if (!tags || typeof tags !== 'object' || !Object.hasOwn(tags, key)) return '';
      const value = tags[key];
      return typeof value === 'string' ? value : '';
    };
  }
  if (key !== undefined) throw new TemplateSyntaxError(`.${name} is a string and has no field .${key}`, token.pos);
  if (asMap) throw new TemplateSyntaxError(`index needs a map (.SourceAMITags), not .${name}`, token.pos);
  return (data) => {
    const value = Object.hasOwn(data, dataName) ? data[dataName] : undefined;
    return typeof value === 'string' ? value : '';
  };
}

/** Parses one pipeline (the tokens of an action) into an evaluator. */
function parsePipeline(tokens: readonly Token[], scope: ScopeInfo, actionStart: number): ActionNode {
  if (tokens.length === 0) throw new TemplateSyntaxError('empty action "{{ }}"', actionStart);
  const commands: Token[][] = [[]];
  for (const t of tokens) {
    if (t.type === 'pipe') {
      if (commands[commands.length - 1]!.length === 0)
        throw new TemplateSyntaxError('missing command before "|"', t.pos);
      commands.push([]);
    } else commands[commands.length - 1]!.push(t);
  }
  if (commands[commands.length - 1]!.length === 0)
    throw new TemplateSyntaxError('missing command after "|"', tokens[tokens.length - 1]!.pos);

  const stages: ((data: TemplateData, clock: TemplateClock, piped: Value | undefined) => Value)[] = [];
  commands.forEach((command, stage) => {
    const [head, ...args] = command as [Token, ...Token[]];
    const piped = stage > 0;
    if (head.type !== 'ident') {
      if (piped)
        throw new TemplateSyntaxError(
          `stage ${stage + 1} of the pipeline must be a function, e.g. | clean_resource_name`,
          head.pos,
        );
      if (args.length > 0)
        throw new TemplateSyntaxError(
          'a value takes no arguments; to transform it, pipe it into a function',
          args[0]!.pos,
        );
      if (head.type === 'field') {
        const get = fieldAccessor(head, scope, false);
        stages.push((data) => get(data));
      } else if (head.type === 'string' || head.type === 'number') {
        const value = String(head.value);
        stages.push(() => value);
      }
      return;
    }
    const name = head.name;
    if (KEYWORDS.has(name))
      throw new TemplateSyntaxError(`"${name}": control structures and keywords are not supported`, head.pos);
    if (Object.hasOwn(REFUSED, name))
      throw new TemplateSyntaxError(`function ${name} is not supported: ${REFUSED[name]}`, head.pos);
    if (!Object.hasOwn(FUNCTIONS, name)) {
      const hint = didYouMean(name, Object.keys(FUNCTIONS));
      throw new TemplateSyntaxError(
        `unknown function ${JSON.stringify(name)}${hint ? `; did you mean ${hint}?` : ''} (available: ${Object.keys(FUNCTIONS).join(', ')})`,
        head.pos,
      );
    }
    const spec = FUNCTIONS[name]!;
    const required = spec.params.filter((p) => !p.endsWith('?')).length;
    const given = args.length + (piped ? 1 : 0);
    if (given < required || given > spec.params.length) {
      const want = required === spec.params.length ? `${required}` : `${required} to ${spec.params.length}`;
      throw new TemplateSyntaxError(
        `${name} takes ${want} argument${spec.params.length === 1 ? '' : 's'}, got ${given}${piped ? ' (counting the piped value)' : ''}`,
        head.pos,
      );
    }
    const getters: Arg[] = args.map((arg, n) => {
      const param = spec.params[n]!;
      if (arg.type === 'pipe') throw new TemplateSyntaxError('unexpected "|"', arg.pos);
      if (arg.type === 'ident') {
        throw new TemplateSyntaxError(
          `a function cannot be an argument; use a pipe, e.g. {{ ${arg.name} | ${name} }}`,
          arg.pos,
        );
      }
      if (param === 'map') {
        if (arg.type !== 'field')
          throw new TemplateSyntaxError(`${name} needs a map (.SourceAMITags) as argument ${n + 1}`, arg.pos);
        return fieldAccessor(arg, scope, true);
      }
      if (param === 'int') {
        if (arg.type !== 'number')
          throw new TemplateSyntaxError(`${name} needs an integer as argument ${n + 1}`, arg.pos);
        const value = arg.value;
        return () => value;
      }
      if (arg.type === 'number')
        throw new TemplateSyntaxError(`${name} needs a string as argument ${n + 1}; quote it`, arg.pos);
      if (arg.type === 'field') return fieldAccessor(arg, scope, false);
      const value = arg.value;
      return () => value;
    });
    if (piped) {
      const lastParam = spec.params[given - 1];
      if (lastParam === 'int' || lastParam === 'map')
        throw new TemplateSyntaxError(`${name} cannot take the piped text as its last argument`, head.pos);
    }
    stages.push((data, clock, input) => {
      const values = getters.map((g) => g(data));
      if (piped) values.push(input ?? '');
      return spec.call(values, clock);
    });
  });
  const first = commands[0]![0]!;
  return {
    kind: 'action',
    isCommand: first.type === 'field' && first.names[0] === 'Command' && commands.length === 1,
    run: (data, clock) => {
      let value: Value | undefined;
      for (const stage of stages) value = stage(data, clock, value);
      return str(value);
    },
  };
}

/** Parses a template into text and action nodes. Throws TemplateSyntaxError. */
function parse(src: string, scope: ScopeInfo): Node[] {
  const nodes: Node[] = [];
  const pushText = (value: string): void => {
    if (value === '') return;
    const last = nodes[nodes.length - 1];
    if (last?.kind === 'text') last.value += value;
    else nodes.push({ kind: 'text', value });
  };
  const trimLastText = (): void => {
    const last = nodes[nodes.length - 1];
    if (last?.kind !== 'text') return;
    last.value = last.value.replace(/[ \t\r\n]+$/, '');
    if (last.value === '') nodes.pop();
  };
  let i = 0;
  let trimNext = false;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    const close = src.indexOf('}}', i);
    // Go treats a stray "}}" as text; it is almost always a typo ("{.Device}}"), so it is an error here.
    if (close !== -1 && (open === -1 || close < open)) {
      throw new TemplateSyntaxError('"}}" without a matching "{{" (write {{ "}}" }} for literal braces)', close);
    }
    let text = src.slice(i, open === -1 ? src.length : open);
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, '');
    trimNext = false;
    pushText(text);
    if (open === -1) break;
    let j = open + 2;
    if (src[j] === '-' && isSpace(src[j + 1])) {
      trimLastText();
      j += 2;
    }
    // A comment must start right after the delimiter (and its trim marker), as in Go.
    if (src.startsWith('/*', j)) {
      const commentEnd = src.indexOf('*/', j + 2);
      if (commentEnd === -1) throw new TemplateSyntaxError('unclosed comment', j);
      const k = commentEnd + 2;
      if (src.startsWith('}}', k)) i = k + 2;
      else if (src.startsWith(' -}}', k)) {
        i = k + 4;
        trimNext = true;
      } else throw new TemplateSyntaxError('a comment must end the action: "*/}}"', k);
      continue;
    }
    const { tokens, end, trimRight } = lexAction(src, j, open);
    nodes.push(parsePipeline(tokens, scope, open));
    i = end;
    trimNext = trimRight;
  }
  return nodes;
}

// --- Shell quoting --------------------------------------------------------------------------

const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Quotes a value for a POSIX shell: single quotes, with each `'` written as `'\''`. Values made
 * only of safe characters (`A-Za-z0-9_@%+=:,./-`) are returned as they are; the empty string is `''`.
 *
 * @example
 * ```ts
 * import { defineConfig, shellQuote } from 'ami-chroot';
 *
 * shellQuote("it's $HOME"); // => 'it'\''s $HOME'
 * shellQuote('/dev/nvme1n1'); // => /dev/nvme1n1 (only safe characters: left bare)
 *
 * // A function template in a shell-command option gets raw values: it quotes them itself.
 * export default defineConfig({
 *   sourceAmi: 'ami-0123456789abcdef0',
 *   amiName: 'web {{timestamp}}',
 *   postMountCommands: [(data) => `cp ./motd ${shellQuote(`${data.MountPath}/etc/motd`)}`],
 * });
 * ```
 * @public
 */
export function shellQuote(value: string): string {
  if (SHELL_SAFE.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

type ShellContext = 'bare' | 'single' | 'double';

/** The shell quoting context at each action, scanning the literal text around them. */
function shellContexts(nodes: readonly Node[]): ShellContext[] {
  const contexts: ShellContext[] = [];
  let state: ShellContext = 'bare';
  for (const node of nodes) {
    if (node.kind === 'action') {
      contexts.push(state);
      continue;
    }
    const text = node.value;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (state === 'bare') {
        if (c === '\\') i++;
        else if (c === "'") state = 'single';
        else if (c === '"') state = 'double';
      } else if (state === 'single') {
        if (c === "'") state = 'bare';
      } else if (c === '\\') i++;
      else if (c === '"') state = 'bare';
    }
  }
  return contexts;
}

function escapeFor(context: ShellContext, value: string, verbatim: boolean): string {
  if (context === 'single') return value.replaceAll("'", `'\\''`);
  if (context === 'double') return value.replace(/[\\"$`]/g, '\\$&');
  return verbatim ? value : shellQuote(value);
}

// --- eta ------------------------------------------------------------------------------------

// Non-default tags: the default "<%" would be the first thing an injection attempt tries.
const ETA_OPEN = '{%';
const eta = new Eta({
  tags: [ETA_OPEN, '%}'],
  autoEscape: false,
  autoFilter: false,
  autoTrim: false,
  useWith: false,
  varName: 'it',
  rmWhitespace: false,
  cache: false,
  debug: false,
  functionHeader: '',
  plugins: [],
});
const etaCache = new Map<string, (this: unknown, data: object) => string>();

interface EtaData {
  /** Output of action n. */
  readonly a: (n: number) => string;
  /** Literal text n (text that could not be inlined). */
  readonly l: (n: number) => string;
}

/**
 * Compiles nodes to an eta template whose only code is `it.a(n)` and `it.l(n)`. Text is inlined
 * unless it contains the opening tag or a carriage return (eta rewrites line endings); such text
 * is fetched by index instead, so it can never open a tag. The parsed eta AST is checked against
 * what was meant before the source is compiled.
 */
function compileEta(nodes: readonly Node[]): {
  fn: (this: unknown, data: object) => string;
  literals: string[];
  actions: ActionNode[];
} {
  let source = '';
  const literals: string[] = [];
  const actions: ActionNode[] = [];
  const expectedTags: string[] = [];
  for (const node of nodes) {
    if (node.kind === 'action') {
      const tag = `it.a(${actions.length})`;
      actions.push(node);
      expectedTags.push(tag);
      source += `${ETA_OPEN}~ ${tag} %}`;
    } else if (node.value.includes(ETA_OPEN) || node.value.includes('\r')) {
      const tag = `it.l(${literals.length})`;
      literals.push(node.value);
      expectedTags.push(tag);
      source += `${ETA_OPEN}~ ${tag} %}`;
    } else {
      source += node.value;
    }
  }
  let fn = etaCache.get(source);
  if (!fn) {
    const tags = eta.parse(source).filter((item) => typeof item !== 'string');
    const ok =
      tags.length === expectedTags.length && tags.every((t, n) => t.t === 'r' && t.val.trim() === expectedTags[n]);
    if (!ok) throw new Error('internal error: the compiled template does not have the expected shape');
    fn = eta.compile(source) as (this: unknown, data: object) => string;
    if (etaCache.size >= 1000) etaCache.clear();
    etaCache.set(source, fn);
  }
  return { fn, literals, actions };
}

// --- Public API -----------------------------------------------------------------------------

/**
 * Options of {@link compileTemplate}.
 * @internal
 */
export interface CompileTemplateOptions {
  /** Option path for error messages, e.g. `tags.Name`. */
  readonly path: string;
  /** The data names the option may use. */
  readonly allowed: readonly DataName[];
  /** `shell`: every substituted value is escaped for where it stands in the shell command. */
  readonly quote?: 'shell';
  /** Checks the rendered value; returns what is wrong (and the fix), or undefined. */
  readonly check?: (value: string) => string | undefined;
}

/** The message of a template syntax problem, naming the position and the template. */
function syntaxMessage(error: TemplateSyntaxError, source: string): string {
  return `${error.message} at position ${error.position + 1} of template ${JSON.stringify(source)}`;
}

/**
 * Checks a template string's syntax for an option; returns the problem's message, or undefined.
 * @internal
 */
export function templateProblem(
  source: string,
  options: Pick<CompileTemplateOptions, 'path' | 'allowed'>,
): string | undefined {
  try {
    parse(source, { allowed: new Set(options.allowed), path: options.path });
    return undefined;
  } catch (error) {
    if (error instanceof TemplateSyntaxError) return syntaxMessage(error, source);
    throw error;
  }
}

/**
 * True when a template string has no actions (its text is its value).
 * @internal
 */
export function isLiteralTemplate(source: string): boolean {
  return !source.includes('{{') && !source.includes('}}');
}

function renderError(path: string, value: unknown, message: string, cause?: unknown): ConfigError {
  return new ConfigError([{ path, value, message }], cause === undefined ? {} : { cause });
}

/**
 * Compiles a template option: parses it (a {@link ConfigError} names the option, the template and
 * the position of any problem) and returns a renderer. Function templates are wrapped.
 * @internal
 */
export function compileTemplate(template: Template, options: CompileTemplateOptions): CompiledTemplate {
  const { path, check } = options;
  const allowed = [...options.allowed];
  const finish = (value: string): string => {
    const problem = check?.(value);
    if (problem !== undefined) throw renderError(path, value, problem);
    return value;
  };
  if (typeof template === 'function') {
    return {
      path,
      source: undefined,
      allowed,
      render(data, _clock) {
        let value: unknown;
        try {
          value = template(
            Object.freeze({
              ...data,
              ...(data.SourceAMITags ? { SourceAMITags: Object.freeze({ ...data.SourceAMITags }) } : {}),
            }),
          );
        } catch (error) {
          throw renderError(
            path,
            undefined,
            `the template function threw: ${error instanceof Error ? error.message : String(error)}`,
            error,
          );
        }
        if (typeof value !== 'string')
          throw renderError(path, value, `the template function must return a string, got ${typeof value}`);
        return finish(value);
      },
    };
  }
  if (typeof template !== 'string')
    throw renderError(path, template, `expected a template string or a function, got ${typeof template}`);
  let nodes: Node[];
  try {
    nodes = parse(template, { allowed: new Set(allowed), path });
  } catch (error) {
    if (error instanceof TemplateSyntaxError) throw renderError(path, template, syntaxMessage(error, template));
    throw error;
  }
  const contexts = options.quote === 'shell' ? shellContexts(nodes) : undefined;
  const { fn, literals, actions } = compileEta(nodes);
  return {
    path,
    source: template,
    allowed,
    render(data, clock) {
      const it: EtaData = {
        a: (n) => {
          const action = actions[n]!;
          const value = action.run(data, clock);
          return contexts ? escapeFor(contexts[n]!, value, action.isCommand) : value;
        },
        l: (n) => literals[n]!,
      };
      return finish(fn.call(eta, it));
    },
  };
}

/**
 * Options of {@link renderTemplate}.
 * @public
 */
export interface RenderTemplateOptions {
  /** Option path used in error messages. @defaultValue `template` */
  readonly path?: string;
  /** Data names the template may use. @defaultValue all of {@link TemplateData} */
  readonly allowed?: readonly (keyof TemplateData)[];
  /** `shell`: escape substituted values for a POSIX shell command; literal text stays as written. */
  readonly quote?: 'shell';
}

/**
 * Renders a template (string, function, or an already compiled one from a {@link ResolvedConfig}).
 *
 * @example
 * ```ts
 * import { createTemplateClock, renderTemplate } from 'ami-chroot';
 *
 * const clock = createTemplateClock(new Date('2026-01-01T00:00:00Z'));
 * renderTemplate('{{ .SourceAMIName | clean_resource_name }}-{{timestamp}}', { SourceAMIName: 'debian:12' }, clock);
 * // => 'debian-12-1767225600'
 * renderTemplate('mkfs.ext4 {{.Device}}', { Device: '/dev/my disk' }, clock, { quote: 'shell' });
 * // => "mkfs.ext4 '/dev/my disk'"
 * ```
 * @throws {@link ConfigError} when the template is invalid, or its function fails.
 * @public
 */
export function renderTemplate(
  template: Template | CompiledTemplate,
  data: TemplateData,
  clock: TemplateClock,
  options: RenderTemplateOptions = {},
): string {
  if (typeof template === 'object' && template !== null && typeof template.render === 'function')
    return template.render(data, clock);
  return compileTemplate(template as Template, {
    path: options.path ?? 'template',
    allowed: options.allowed ?? TEMPLATE_DATA_NAMES,
    ...(options.quote ? { quote: options.quote } : {}),
  }).render(data, clock);
}

/**
 * A clock for one build: `{{timestamp}}` and `{{isotime}}` use `now` for every render, `{{uuid}}`
 * draws a fresh random UUID.
 *
 * @example
 * ```ts
 * import { createTemplateClock, renderTemplate } from 'ami-chroot';
 *
 * // One clock per build: every {{timestamp}} and {{isotime}} of the build renders the same instant.
 * const clock = createTemplateClock(new Date('2026-01-01T00:00:00Z'));
 * renderTemplate('web {{timestamp}}', {}, clock); // => 'web 1767225600'
 * renderTemplate('web {{ isotime "2006-01-02" }}', {}, clock); // => 'web 2026-01-01'
 * renderTemplate('{{uuid}}', {}, clock); // a fresh random UUID on every render
 * ```
 * @param now - the build's start time @defaultValue the current time
 * @public
 */
export function createTemplateClock(now: Date = new Date()): TemplateClock {
  const frozen = new Date(now.getTime());
  return Object.freeze({ now: frozen, uuid: () => randomUUID() });
}
