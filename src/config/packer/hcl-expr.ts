/**
 * HCL2 expressions and string templates, as Packer evaluates them in templates: literals,
 * `var.*`/`local.*`/`path.*`/`source.*`/`build.*` references, operators, conditionals, `for`
 * expressions over lists, and the documented functions in {@link HCL_FUNCTIONS}. The parser
 * (`@cdktn/hcl2json`) hands us every expression as its source text (`"${var.x}-y"`); this module
 * evaluates that text. Anything it does not know is refused by name, never guessed.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, dirname, resolve as resolvePath } from 'node:path';
import { formatGoTime } from '../templates.js';
import { DAYS, MONTHS } from '../template/go-time.js';

/** A failure to evaluate, with the expression and what to do. */
export class HclEvalError extends Error {
  override readonly name = 'HclEvalError';
}

/** What names resolve to while evaluating. */
export interface HclScope {
  readonly var?: Readonly<Record<string, unknown>>;
  readonly local?: Readonly<Record<string, unknown>>;
  readonly path?: Readonly<Record<string, unknown>>;
  readonly source?: Readonly<Record<string, unknown>>;
  readonly build?: Readonly<Record<string, unknown>>;
  /** `env()` is allowed only in variable defaults, as in Packer. */
  readonly env?: NodeJS.ProcessEnv;
  /** The build's start time (`timestamp()`). */
  readonly now: Date;
  /** Relative paths in `file()` and `abspath()` resolve here (Packer: the working directory). */
  readonly cwd: string;
  /** Locals evaluated on demand, so that their order in the file does not matter. */
  readonly resolveLocal?: (name: string) => unknown;
}

// --- Lexer -------------------------------------------------------------------------------------

type Tok =
  | { readonly t: 'num'; readonly v: number }
  | { readonly t: 'str'; readonly v: string }
  | { readonly t: 'id'; readonly v: string }
  | { readonly t: 'op'; readonly v: string }
  | { readonly t: 'end' };

const OPS = [
  '&&',
  '||',
  '==',
  '!=',
  '<=',
  '>=',
  '=>',
  '...',
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
  ',',
  '.',
  ':',
  '?',
  '=',
  '!',
  '<',
  '>',
  '+',
  '-',
  '*',
  '/',
  '%',
];

/** Finds the `}` closing an interpolation that starts at `from`, skipping nested strings and braces. */
function closingBrace(text: string, from: number): number {
  let depth = 0;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    } else if (c === '{') depth++;
    else if (c === '}') {
      if (depth === 0) return i;
      depth--;
    }
  }
  throw new HclEvalError(`unterminated "\${" in ${JSON.stringify(text)}; close it with "}"`);
}

function lex(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (/[0-9]/.test(c)) {
      const m = /^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(src.slice(i))!;
      out.push({ t: 'num', v: Number(m[0]) });
      i += m[0].length;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(src.slice(i))!;
      out.push({ t: 'id', v: m[0] });
      i += m[0].length;
      continue;
    }
    if (c === '"') {
      // A quoted template inside an expression: keep its raw text, evaluated as a template later.
      let j = i + 1;
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\\') j += 2;
        else if (src.startsWith('${', j)) j = closingBrace(src, j + 2) + 1;
        else j++;
      }
      if (j >= src.length) throw new HclEvalError(`unterminated string in ${JSON.stringify(src)}`);
      out.push({ t: 'str', v: src.slice(i + 1, j) });
      i = j + 1;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw new HclEvalError(`unexpected character ${JSON.stringify(c)} in ${JSON.stringify(src)}`);
    out.push({ t: 'op', v: op });
    i += op.length;
  }
  out.push({ t: 'end' });
  return out;
}

/** Decodes the escapes of a quoted HCL string's literal part. */
function unescape(s: string): string {
  return s.replace(/\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)/g, (_, e: string) => {
    switch (e[0]) {
      case 'n':
        return '\n';
      case 't':
        return '\t';
      case 'r':
        return '\r';
      case 'u':
      case 'U':
        return String.fromCodePoint(parseInt(e.slice(1), 16));
      default:
        return e;
    }
  });
}

// --- Parser (to a closure tree) ----------------------------------------------------------------

type Node = (scope: HclScope, locals: ReadonlyMap<string, unknown>) => unknown;

class Parser {
  private pos = 0;
  private readonly toks: Tok[];
  private readonly src: string;
  constructor(toks: Tok[], src: string) {
    this.toks = toks;
    this.src = src;
  }

  parse(): Node {
    const node = this.expr();
    if (this.peek().t !== 'end') this.fail(`unexpected ${this.show(this.peek())}`);
    return node;
  }

  private peek(): Tok {
    return this.toks[this.pos]!;
  }
  private next(): Tok {
    return this.toks[this.pos++]!;
  }
  private isOp(v: string): boolean {
    const t = this.peek();
    return t.t === 'op' && t.v === v;
  }
  private eat(v: string): boolean {
    if (!this.isOp(v)) return false;
    this.pos++;
    return true;
  }
  private expect(v: string): void {
    if (!this.eat(v)) this.fail(`expected "${v}", found ${this.show(this.peek())}`);
  }
  private show(t: Tok): string {
    return t.t === 'end' ? 'the end' : JSON.stringify(String(t.v));
  }
  private fail(why: string): never {
    throw new HclEvalError(`${why} in expression ${JSON.stringify(this.src)}`);
  }

  private expr(): Node {
    const cond = this.binary(0);
    if (!this.eat('?')) return cond;
    const yes = this.expr();
    this.expect(':');
    const no = this.expr();
    return (s, l) => (truthy(cond(s, l), this.src) ? yes(s, l) : no(s, l));
  }

  private static readonly LEVELS: readonly (readonly string[])[] = [
    ['||'],
    ['&&'],
    ['==', '!='],
    ['<', '>', '<=', '>='],
    ['+', '-'],
    ['*', '/', '%'],
  ];

  private binary(level: number): Node {
    if (level >= Parser.LEVELS.length) return this.unary();
    let left = this.binary(level + 1);
    for (;;) {
      const t = this.peek();
      if (t.t !== 'op' || !Parser.LEVELS[level]!.includes(t.v)) return left;
      this.pos++;
      const right = this.binary(level + 1);
      const l0 = left;
      left = (s, l) => binaryOp(t.v, l0(s, l), right(s, l), this.src);
    }
  }

  private unary(): Node {
    if (this.eat('!')) {
      const v = this.unary();
      return (s, l) => !truthy(v(s, l), this.src);
    }
    if (this.eat('-')) {
      const v = this.unary();
      return (s, l) => -toNumber(v(s, l), this.src);
    }
    return this.postfix(this.primary());
  }

  private postfix(base: Node): Node {
    let node = base;
    for (;;) {
      if (this.eat('.')) {
        const t = this.next();
        if (t.t === 'op' && t.v === '*') this.fail('splat expressions (".*") are not supported; use a for expression');
        if (t.t !== 'id' && t.t !== 'num') this.fail(`expected an attribute name after ".", found ${this.show(t)}`);
        const key = String(t.v);
        const prev = node;
        node = (s, l) => index(prev(s, l), key, this.src);
      } else if (this.eat('[')) {
        if (this.isOp('*')) this.fail('splat expressions ("[*]") are not supported; use a for expression');
        const key = this.expr();
        this.expect(']');
        const prev = node;
        node = (s, l) => index(prev(s, l), key(s, l), this.src);
      } else return node;
    }
  }

  private primary(): Node {
    const t = this.next();
    if (t.t === 'num') return () => t.v;
    if (t.t === 'str') {
      const tpl = compileTemplate(t.v, true);
      return (s, l) => tpl(s, l);
    }
    if (t.t === 'op' && t.v === '(') {
      const e = this.expr();
      this.expect(')');
      return e;
    }
    if (t.t === 'op' && t.v === '[') return this.tuple();
    if (t.t === 'op' && t.v === '{') return this.object();
    if (t.t === 'id') {
      if (t.v === 'true') return () => true;
      if (t.v === 'false') return () => false;
      if (t.v === 'null') return () => null;
      if (this.isOp('(')) return this.call(t.v);
      return this.reference(t.v);
    }
    return this.fail(`unexpected ${this.show(t)}`);
  }

  private reference(root: string): Node {
    return (s, l) => {
      if (l.has(root)) return l.get(root);
      if (root === 'local') {
        return new Proxy(
          {},
          {
            get: (_, name) => {
              if (typeof name !== 'string') return undefined;
              if (s.resolveLocal) return s.resolveLocal(name);
              if (s.local && Object.hasOwn(s.local, name)) return s.local[name];
              throw new HclEvalError(`local.${name} is not declared; add it to a locals block`);
            },
          },
        );
      }
      if (root === 'var' || root === 'path' || root === 'source' || root === 'build') {
        const value = s[root];
        if (value === undefined)
          throw new HclEvalError(
            `${root}.* is not available here${root === 'var' ? ' (a variable default must be a literal)' : ''}; ${root === 'build' ? 'build.* can be used only in provisioners and post-processors' : 'use a literal value'}`,
          );
        return value;
      }
      throw new HclEvalError(
        `unknown name ${JSON.stringify(root)} in ${JSON.stringify(this.src)}; use var.*, local.*, path.root, source.name, or build.*`,
      );
    };
  }

  private call(name: string): Node {
    this.expect('(');
    const args: Node[] = [];
    let expand = false;
    while (!this.isOp(')')) {
      args.push(this.expr());
      if (this.eat('...')) expand = true;
      if (!this.eat(',')) break;
    }
    this.expect(')');
    if (name === 'can' || name === 'try') {
      // Evaluated lazily: their point is to catch the errors of their arguments.
      return (s, l) => {
        if (name === 'can') {
          try {
            args[0]?.(s, l);
            return true;
          } catch {
            return false;
          }
        }
        for (const a of args) {
          try {
            return a(s, l);
          } catch {
            /* the next one */
          }
        }
        throw new HclEvalError('try(): no argument could be evaluated');
      };
    }
    const fn = HCL_FUNCTIONS[name];
    if (!fn) {
      const why = REFUSED_FUNCTIONS[name];
      this.fail(
        why
          ? `function ${name}() is not supported: ${why}`
          : `function ${name}() is unknown or not supported; supported: ${Object.keys(HCL_FUNCTIONS).sort().join(', ')}`,
      );
    }
    return (s, l) => {
      let values = args.map((a) => a(s, l));
      if (expand) {
        const last = values.at(-1);
        if (!Array.isArray(last)) throw new HclEvalError(`${name}(...): the expanded argument must be a list`);
        values = [...values.slice(0, -1), ...(last as unknown[])];
      }
      try {
        return fn(values, s);
      } catch (error) {
        if (error instanceof HclEvalError) throw error;
        throw new HclEvalError(`${name}(): ${(error as Error).message}`);
      }
    };
  }

  private tuple(): Node {
    if (this.peek().t === 'id' && (this.peek() as { v: string }).v === 'for') return this.forList();
    const items: Node[] = [];
    while (!this.isOp(']')) {
      items.push(this.expr());
      if (!this.eat(',')) break;
    }
    this.expect(']');
    return (s, l) => items.map((i) => i(s, l));
  }

  private forList(): Node {
    this.next(); // for
    const a = this.next();
    let keyName: string | undefined;
    let valName = a.t === 'id' ? a.v : this.fail('expected a name after "for"');
    if (this.eat(',')) {
      keyName = valName;
      const b = this.next();
      valName = b.t === 'id' ? b.v : this.fail('expected a second name in the for expression');
    }
    const inTok = this.next();
    if (inTok.t !== 'id' || inTok.v !== 'in') this.fail('expected "in" in the for expression');
    const coll = this.expr();
    this.expect(':');
    const body = this.expr();
    let cond: Node | undefined;
    if (this.peek().t === 'id' && (this.peek() as { v: string }).v === 'if') {
      this.next();
      cond = this.expr();
    }
    this.expect(']');
    return (s, l) => {
      const c = coll(s, l);
      const entries: [unknown, unknown][] = Array.isArray(c)
        ? c.map((v, i) => [i, v])
        : isRecord(c)
          ? Object.entries(c)
          : this.fail('a for expression needs a list or a map');
      const out: unknown[] = [];
      for (const [k, v] of entries) {
        const inner = new Map(l);
        inner.set(valName, v);
        if (keyName) inner.set(keyName, k);
        if (cond && !truthy(cond(s, inner), this.src)) continue;
        out.push(body(s, inner));
      }
      return out;
    };
  }

  private object(): Node {
    if (this.peek().t === 'id' && (this.peek() as { v: string }).v === 'for')
      this.fail(
        'object for expressions ("{for k, v in ...}") are not supported; build the map with a literal or merge()',
      );
    const items: [Node, Node][] = [];
    while (!this.isOp('}')) {
      const k = this.peek();
      let key: Node;
      if (k.t === 'id' && (this.toks[this.pos + 1] as Tok).t === 'op') {
        const after = this.toks[this.pos + 1] as { v: string };
        if (after.v === '=' || after.v === ':') {
          this.pos++;
          key = () => k.v;
        } else key = this.expr();
      } else key = this.expr();
      if (!this.eat('=')) this.expect(':');
      items.push([key, this.expr()]);
      if (!this.eat(',')) continue;
    }
    this.expect('}');
    return (s, l) => Object.fromEntries(items.map(([k, v]) => [toStringValue(k(s, l), this.src), v(s, l)]));
  }
}

// --- Templates ---------------------------------------------------------------------------------

/**
 * Compiles an HCL string template (the text between the quotes): `${expr}` interpolations,
 * `$${`/`%%{` escapes. A string that is exactly one interpolation yields the expression's value
 * unconverted (a list stays a list), as in HCL.
 */
function compileTemplate(text: string, quoted: boolean): Node {
  const parts: (string | Node)[] = [];
  let lit = '';
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i) || text.startsWith('%%{', i)) {
      lit += text.slice(i + 1, i + 3);
      i += 3;
    } else if (text.startsWith('${', i)) {
      const end = closingBrace(text, i + 2);
      let inner = text.slice(i + 2, end);
      if (inner.startsWith('~') || inner.endsWith('~'))
        throw new HclEvalError(`strip markers ("\${~", "~}") are not supported in ${JSON.stringify(text)}`);
      inner = inner.trim();
      if (lit) parts.push(quoted ? unescape(lit) : lit);
      lit = '';
      parts.push(new Parser(lex(inner), inner).parse());
      i = end + 1;
    } else if (text.startsWith('%{', i)) {
      throw new HclEvalError(
        `template directives ("%{ if }", "%{ for }") are not supported in ${JSON.stringify(text)}; use a conditional expression or a for expression inside "\${ }"`,
      );
    } else lit += text[i++];
  }
  if (lit) parts.push(quoted ? unescape(lit) : lit);
  if (parts.length === 1 && typeof parts[0] !== 'string') return parts[0]!;
  return (s, l) =>
    parts
      .map((p) => {
        if (typeof p === 'string') return p;
        const v = p(s, l);
        return toStringValue(v, text);
      })
      .join('');
}

const NO_LOCALS: ReadonlyMap<string, unknown> = new Map();

/**
 * Evaluates a value as decoded by the HCL parser: strings are templates, lists and maps are
 * evaluated element by element.
 */
export function evaluateHcl(value: unknown, scope: HclScope): unknown {
  if (typeof value === 'string') return compileTemplate(value, false)(scope, NO_LOCALS);
  if (Array.isArray(value)) return value.map((v) => evaluateHcl(v, scope));
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, evaluateHcl(v, scope)]));
  return value;
}

/** Parses and evaluates one expression (a `-var` value for a typed variable, a type constraint). */
export function evaluateExpression(source: string, scope: HclScope): unknown {
  return new Parser(lex(source), source).parse()(scope, NO_LOCALS);
}

/** True when the value is a string that contains an interpolation (not a literal). */
export function hasInterpolation(value: unknown): boolean {
  return typeof value === 'string' && /(?<![$%])[$%]\{/.test(value.replace(/\$\$\{|%%\{/g, ''));
}

// --- Values ------------------------------------------------------------------------------------

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (isRecord(v)) return 'a map';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function toStringValue(v: unknown, src: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new HclEvalError(`cannot use ${describe(v)} as a string in ${JSON.stringify(src)}`);
}

function toNumber(v: unknown, src: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  throw new HclEvalError(`a number is required, got ${describe(v)} in ${JSON.stringify(src)}`);
}

function truthy(v: unknown, src: string): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new HclEvalError(`a bool is required, got ${describe(v)} in ${JSON.stringify(src)}`);
}

function equal(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function binaryOp(op: string, a: unknown, b: unknown, src: string): unknown {
  switch (op) {
    case '||':
      return truthy(a, src) || truthy(b, src);
    case '&&':
      return truthy(a, src) && truthy(b, src);
    case '==':
      return equal(a, b);
    case '!=':
      return !equal(a, b);
  }
  const x = toNumber(a, src);
  const y = toNumber(b, src);
  switch (op) {
    case '<':
      return x < y;
    case '>':
      return x > y;
    case '<=':
      return x <= y;
    case '>=':
      return x >= y;
    case '+':
      return x + y;
    case '-':
      return x - y;
    case '*':
      return x * y;
    case '/':
      return x / y;
    default:
      return x % y;
  }
}

function index(coll: unknown, key: unknown, src: string): unknown {
  if (Array.isArray(coll)) {
    const i = toNumber(key, src);
    if (!Number.isInteger(i) || i < 0 || i >= coll.length)
      throw new HclEvalError(`index ${i} is out of range (the list has ${coll.length}) in ${JSON.stringify(src)}`);
    return coll[i] as unknown;
  }
  if (isRecord(coll) || typeof coll === 'object') {
    const k = toStringValue(key, src);
    const record = coll as Record<string, unknown>;
    const value = record[k];
    if (value === undefined && !(k in record))
      throw new HclEvalError(`${JSON.stringify(src)} has no attribute or key ${JSON.stringify(k)}`);
    return value;
  }
  throw new HclEvalError(`cannot take ${JSON.stringify(key)} of ${describe(coll)} in ${JSON.stringify(src)}`);
}

// --- Functions ---------------------------------------------------------------------------------

type HclFn = (args: unknown[], scope: HclScope) => unknown;

function str(args: unknown[], i: number): string {
  return toStringValue(args[i], `argument ${i + 1}`);
}
function num(args: unknown[], i: number): number {
  return toNumber(args[i], `argument ${i + 1}`);
}
function list(args: unknown[], i: number): unknown[] {
  const v = args[i];
  if (!Array.isArray(v)) throw new HclEvalError(`argument ${i + 1} must be a list, got ${describe(v)}`);
  return v;
}
function map(args: unknown[], i: number): Record<string, unknown> {
  const v = args[i];
  if (!isRecord(v)) throw new HclEvalError(`argument ${i + 1} must be a map, got ${describe(v)}`);
  return v;
}

/** Go's `%s`/`%d`/`%v`/`%q`/`%%` verbs, as Packer's format() (cty's) understands them. */
function format(spec: string, args: unknown[]): string {
  let n = 0;
  return spec.replace(/%([-+ 0#]*\d*(?:\.\d+)?)([sdvqf%])/g, (_, flags: string, verb: string) => {
    if (verb === '%') return '%';
    if (n >= args.length) throw new HclEvalError(`format(${JSON.stringify(spec)}): not enough arguments`);
    const v = args[n++];
    let text: string;
    if (verb === 'd') text = String(Math.trunc(toNumber(v, spec)));
    else if (verb === 'f') {
      const p = /\.(\d+)/.exec(flags);
      text = toNumber(v, spec).toFixed(p ? Number(p[1]) : 6);
    } else if (verb === 'q') text = JSON.stringify(toStringValue(v, spec));
    else text = typeof v === 'string' ? v : JSON.stringify(v);
    // Width, zero padding and left alignment, as Go's fmt.
    const width = Number(/^[-+ 0#]*(\d*)/.exec(flags)?.[1] || 0);
    if (flags.includes('-')) return text.padEnd(width);
    return flags.startsWith('0') && (verb === 'd' || verb === 'f') ? text.padStart(width, '0') : text.padStart(width);
  });
}

/** Terraform/Packer `formatdate` spec letters, UTC. */
function formatDate(spec: string, time: string): string {
  const d = new Date(time);
  if (Number.isNaN(d.getTime())) throw new HclEvalError(`formatdate: ${JSON.stringify(time)} is not an RFC 3339 time`);
  const pad = (v: number, w = 2) => String(v).padStart(w, '0');
  const table: [string, () => string][] = [
    ['YYYY', () => String(d.getUTCFullYear())],
    ['YY', () => pad(d.getUTCFullYear() % 100)],
    ['MMMM', () => MONTHS[d.getUTCMonth()]!],
    ['MMM', () => MONTHS[d.getUTCMonth()]!.slice(0, 3)],
    ['MM', () => pad(d.getUTCMonth() + 1)],
    ['M', () => String(d.getUTCMonth() + 1)],
    ['DD', () => pad(d.getUTCDate())],
    ['D', () => String(d.getUTCDate())],
    ['EEEE', () => DAYS[d.getUTCDay()]!],
    ['EEE', () => DAYS[d.getUTCDay()]!.slice(0, 3)],
    ['hh', () => pad(d.getUTCHours())],
    ['h', () => String(d.getUTCHours())],
    ['mm', () => pad(d.getUTCMinutes())],
    ['m', () => String(d.getUTCMinutes())],
    ['ss', () => pad(d.getUTCSeconds())],
    ['s', () => String(d.getUTCSeconds())],
    ['ZZZZZ', () => '+00:00'],
    ['ZZZZ', () => '+0000'],
    ['ZZZ', () => 'UTC'],
    ['Z', () => 'Z'],
  ];
  let out = '';
  for (let i = 0; i < spec.length;) {
    if (spec[i] === "'") {
      const end = spec.indexOf("'", i + 1);
      if (end < 0) throw new HclEvalError(`formatdate: unterminated quote in ${JSON.stringify(spec)}`);
      out += end === i + 1 ? "'" : spec.slice(i + 1, end);
      i = end + 1;
      continue;
    }
    const hit = table.find(([k]) => spec.startsWith(k, i));
    if (hit) {
      out += hit[1]();
      i += hit[0].length;
    } else if (/[A-Za-z]/.test(spec[i]!)) {
      throw new HclEvalError(
        `formatdate: unsupported letter ${JSON.stringify(spec[i])} in ${JSON.stringify(spec)}; quote literal text with '...'`,
      );
    } else out += spec[i++];
  }
  return out;
}

/**
 * The HCL2 functions Packer documents that make sense for a builder's fields, variables and
 * provisioners. `env` works only in variable defaults (Packer's rule).
 */
export const HCL_FUNCTIONS: Readonly<Record<string, HclFn>> = {
  upper: (a) => str(a, 0).toUpperCase(),
  lower: (a) => str(a, 0).toLowerCase(),
  title: (a) => str(a, 0).replace(/\b\w/g, (c) => c.toUpperCase()),
  trimspace: (a) => str(a, 0).trim(),
  trim: (a) => {
    const cut = new Set(str(a, 1));
    let s = str(a, 0);
    while (s && cut.has(s[0]!)) s = s.slice(1);
    while (s && cut.has(s.at(-1)!)) s = s.slice(0, -1);
    return s;
  },
  trimprefix: (a) => (str(a, 0).startsWith(str(a, 1)) ? str(a, 0).slice(str(a, 1).length) : str(a, 0)),
  trimsuffix: (a) =>
    str(a, 1) !== '' && str(a, 0).endsWith(str(a, 1)) ? str(a, 0).slice(0, -str(a, 1).length) : str(a, 0),
  chomp: (a) => str(a, 0).replace(/(\r?\n)+$/, ''),
  format: (a) => format(str(a, 0), a.slice(1)),
  join: (a) =>
    list(a, 1)
      .map((v, i) => toStringValue(v, `element ${i}`))
      .join(str(a, 0)),
  split: (a) => str(a, 1).split(str(a, 0)),
  replace: (a) => {
    const pattern = str(a, 1);
    const m = /^\/(.*)\/$/.exec(pattern);
    return m ? str(a, 0).replace(new RegExp(m[1]!, 'g'), str(a, 2)) : str(a, 0).split(pattern).join(str(a, 2));
  },
  regex_replace: (a) => str(a, 0).replace(new RegExp(str(a, 1), 'g'), str(a, 2)),
  regex: (a) => {
    const m = new RegExp(str(a, 0)).exec(str(a, 1));
    if (!m) throw new HclEvalError(`regex(): ${JSON.stringify(str(a, 0))} does not match ${JSON.stringify(str(a, 1))}`);
    if (m.groups) return { ...m.groups };
    return m.length > 1 ? m.slice(1) : m[0];
  },
  substr: (a) => {
    const s = [...str(a, 0)];
    const off = num(a, 1) < 0 ? s.length + num(a, 1) : num(a, 1);
    const len = num(a, 2) < 0 ? s.length - off : num(a, 2);
    return s.slice(off, off + len).join('');
  },
  length: (a) => {
    const v = a[0];
    if (typeof v === 'string') return [...v].length;
    if (Array.isArray(v)) return v.length;
    if (isRecord(v)) return Object.keys(v).length;
    throw new HclEvalError(`length() needs a string, list or map, got ${describe(v)}`);
  },
  concat: (a) => a.flatMap((_, i) => list(a, i)),
  contains: (a) => list(a, 0).some((v) => equal(v, a[1])),
  coalesce: (a) => {
    const hit = a.find((v) => v !== null && v !== '');
    if (hit === undefined) throw new HclEvalError('coalesce(): every argument is null or ""');
    return hit;
  },
  compact: (a) => list(a, 0).filter((v) => v !== null && v !== ''),
  distinct: (a) => list(a, 0).filter((v, i, all) => all.findIndex((w) => equal(v, w)) === i),
  flatten: (a) => {
    const flat = (v: unknown[]): unknown[] => v.flatMap((x) => (Array.isArray(x) ? flat(x) : [x]));
    return flat(list(a, 0));
  },
  element: (a) => {
    const l = list(a, 0);
    if (l.length === 0) throw new HclEvalError('element(): the list is empty');
    return l[num(a, 1) % l.length];
  },
  index: (a) => {
    const i = list(a, 0).findIndex((v) => equal(v, a[1]));
    if (i < 0) throw new HclEvalError(`index(): ${JSON.stringify(a[1])} is not in the list`);
    return i;
  },
  keys: (a) => Object.keys(map(a, 0)).sort(),
  values: (a) =>
    Object.entries(map(a, 0))
      .sort(([x], [y]) => (x < y ? -1 : 1))
      .map(([, v]) => v),
  lookup: (a) => {
    const m = map(a, 0);
    const k = str(a, 1);
    if (Object.hasOwn(m, k)) return m[k];
    if (a.length > 2) return a[2];
    throw new HclEvalError(`lookup(): no key ${JSON.stringify(k)} and no default`);
  },
  merge: (a) => Object.assign({}, ...a.map((_, i) => map(a, i))) as Record<string, unknown>,
  zipmap: (a) => Object.fromEntries(list(a, 0).map((k, i) => [toStringValue(k, 'key'), list(a, 1)[i]])),
  tostring: (a) => (a[0] === null ? null : toStringValue(a[0], 'tostring')),
  tonumber: (a) => (a[0] === null ? null : toNumber(a[0], 'tonumber')),
  tobool: (a) => (a[0] === null ? null : truthy(a[0], 'tobool')),
  tolist: (a) => list(a, 0),
  toset: (a) => list(a, 0).filter((v, i, all) => all.findIndex((w) => equal(v, w)) === i),
  tomap: (a) => map(a, 0),
  abs: (a) => Math.abs(num(a, 0)),
  ceil: (a) => Math.ceil(num(a, 0)),
  floor: (a) => Math.floor(num(a, 0)),
  max: (a) => Math.max(...a.map((_, i) => num(a, i))),
  min: (a) => Math.min(...a.map((_, i) => num(a, i))),
  timestamp: (_, s) => s.now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
  formatdate: (a) => formatDate(str(a, 0), str(a, 1)),
  timeadd: (a) => {
    const m = /^(-?\d+(?:\.\d+)?)(h|m|s|ms)$/.exec(str(a, 1));
    if (!m) throw new HclEvalError(`timeadd(): ${JSON.stringify(str(a, 1))} is not a duration like "1h" or "30m"`);
    const unit = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 }[m[2] as 'h'];
    return new Date(new Date(str(a, 0)).getTime() + Number(m[1]) * unit).toISOString().replace(/\.\d{3}Z$/, 'Z');
  },
  legacy_isotime: (a, s) => formatGoTime(s.now, a.length > 0 ? str(a, 0) : '2006-01-02T15:04:05Z07:00'),
  uuidv4: () => randomUUID(),
  env: (a, s) => {
    if (!s.env)
      throw new HclEvalError(
        'env() can be used only in a variable default (Packer rule); declare a variable with default = env("NAME")',
      );
    return s.env[str(a, 0)] ?? '';
  },
  file: (a, s) => readFileSync(resolvePath(s.cwd, str(a, 0)), 'utf8'),
  fileexists: (a, s) => {
    try {
      readFileSync(resolvePath(s.cwd, str(a, 0)));
      return true;
    } catch {
      return false;
    }
  },
  abspath: (a, s) => resolvePath(s.cwd, str(a, 0)),
  basename: (a) => basename(str(a, 0)),
  dirname: (a) => dirname(str(a, 0)),
  pathexpand: (a) => str(a, 0).replace(/^~(?=\/|$)/, process.env['HOME'] ?? '~'),
  sensitive: (a) => a[0],
  startswith: (a) => str(a, 0).startsWith(str(a, 1)),
  endswith: (a) => str(a, 0).endsWith(str(a, 1)),
  strcontains: (a) => str(a, 0).includes(str(a, 1)),
  base64encode: (a) => Buffer.from(str(a, 0)).toString('base64'),
  base64decode: (a) => Buffer.from(str(a, 0), 'base64').toString('utf8'),
  jsonencode: (a) => JSON.stringify(a[0]),
  jsondecode: (a) => JSON.parse(str(a, 0)) as unknown,
};

/** Functions Packer has that are refused, each with the reason. */
export const REFUSED_FUNCTIONS: Readonly<Record<string, string>> = {
  vault: 'it reads secrets from Vault at run time; pass the value with -var or a var file',
  consul_key: 'it reads Consul at run time; pass the value with -var or a var file',
  aws_secretsmanager: 'it reads AWS Secrets Manager at run time; pass the value with -var or a var file',
  aws_secretsmanager_raw: 'it reads AWS Secrets Manager at run time; pass the value with -var or a var file',
  templatefile: 'it renders a file as a template; read it with file() and build the text with format()',
  bcrypt: 'it is random per run and meant for passwords; compute the hash outside the template',
  legacy_strftime: 'use legacy_isotime() or formatdate()',
};
