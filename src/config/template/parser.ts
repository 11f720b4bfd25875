/**
 * Lexer and parser of Packer's template syntax: a small grammar (text; actions made of variables,
 * string and integer literals, whitelisted functions and pipes), every other construct refused
 * with a reason and its position.
 */
import type { TemplateClock, TemplateData } from '../types.js';
import { didYouMean } from '../suggest.js';
import { type ActionNode, type Node, type Token, TemplateSyntaxError, type Value } from './ast.js';
import { FUNCTIONS, KEYWORDS, REFUSED, str } from './functions.js';
import { type DataName, TEMPLATE_DATA_NAMES } from './names.js';

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

/** What an option's template may refer to. */
export interface ScopeInfo {
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

/** One stage of a pipeline: a value, or a function of the data, the clock and the piped value. */
type Stage = (data: TemplateData, clock: TemplateClock, piped: Value | undefined) => Value;

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
  const stages = commands.map((command, stage) => {
    const [head, ...args] = command as [Token, ...Token[]];
    return head.type === 'ident' ? functionStage(head, args, stage > 0, scope) : valueStage(head, args, stage, scope);
  });
  const first = commands[0]![0]!;
  return {
    kind: 'action',
    position: actionStart,
    isCommand: first.type === 'field' && first.names[0] === 'Command' && commands.length === 1,
    run: (data, clock) => {
      let value: Value | undefined;
      for (const stage of stages) value = stage(data, clock, value);
      return str(value);
    },
  };
}

/** A field, string or number standing first in a pipeline. */
function valueStage(head: Token, args: readonly Token[], stage: number, scope: ScopeInfo): Stage {
  if (stage > 0)
    throw new TemplateSyntaxError(
      `stage ${stage + 1} of the pipeline must be a function, e.g. | clean_resource_name`,
      head.pos,
    );
  if (args.length > 0)
    throw new TemplateSyntaxError('a value takes no arguments; to transform it, pipe it into a function', args[0]!.pos);
  if (head.type === 'field') {
    const get = fieldAccessor(head, scope, false);
    return (data) => get(data);
  }
  const value = head.type === 'string' || head.type === 'number' ? String(head.value) : '';
  return () => value;
}

/** A supported function with its arguments checked against its parameters. */
function functionStage(
  head: Extract<Token, { type: 'ident' }>,
  args: readonly Token[],
  piped: boolean,
  scope: ScopeInfo,
): Stage {
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
  const getters = args.map((arg, n) => argument(arg, spec.params[n]!, n, name, scope));
  if (piped) {
    const lastParam = spec.params[given - 1];
    if (lastParam === 'int' || lastParam === 'map')
      throw new TemplateSyntaxError(`${name} cannot take the piped text as its last argument`, head.pos);
  }
  return (data, clock, input) => {
    const values = getters.map((g) => g(data));
    if (piped) values.push(input ?? '');
    return spec.call(values, clock);
  };
}

/** One argument of function `name`, checked against its parameter kind. */
function argument(arg: Token, param: string, n: number, name: string, scope: ScopeInfo): Arg {
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
    if (arg.type !== 'number') throw new TemplateSyntaxError(`${name} needs an integer as argument ${n + 1}`, arg.pos);
    const value = arg.value;
    return () => value;
  }
  if (arg.type === 'number')
    throw new TemplateSyntaxError(`${name} needs a string as argument ${n + 1}; quote it`, arg.pos);
  if (arg.type === 'field') return fieldAccessor(arg, scope, false);
  const value = arg.value;
  return () => value;
}

/** Parses a template into text and action nodes. Throws the first TemplateSyntaxError. */
export function parse(src: string, scope: ScopeInfo): Node[] {
  const { nodes, problems } = parseAll(src, scope);
  if (problems.length > 0) throw problems[0]!;
  return nodes;
}

/**
 * Parses a template, collecting every syntax problem: after a bad action, parsing goes on after its
 * `}}`, so one run reports all of them.
 */
export function parseAll(src: string, scope: ScopeInfo): { nodes: Node[]; problems: TemplateSyntaxError[] } {
  const nodes: Node[] = [];
  const problems: TemplateSyntaxError[] = [];
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
      problems.push(
        new TemplateSyntaxError('"}}" without a matching "{{" (write {{ "}}" }} for literal braces)', close),
      );
      pushText(src.slice(i, close));
      i = close + 2;
      continue;
    }
    let text = src.slice(i, open === -1 ? src.length : open);
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, '');
    trimNext = false;
    pushText(text);
    if (open === -1) break;
    try {
      ({ end: i, trimRight: trimNext } = parseAction(src, open, scope, nodes, trimLastText));
    } catch (error) {
      if (!(error instanceof TemplateSyntaxError)) throw error;
      problems.push(error);
      // Go on after this action's "}}" (or stop when there is none).
      const next = src.indexOf('}}', Math.max(error.position, open + 2));
      i = next === -1 ? src.length : next + 2;
    }
  }
  return { nodes, problems };
}

/** Parses the action (or comment) opening at `open`; returns where the text after it starts. */
function parseAction(
  src: string,
  open: number,
  scope: ScopeInfo,
  nodes: Node[],
  trimLastText: () => void,
): { end: number; trimRight: boolean } {
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
    if (src.startsWith('}}', k)) return { end: k + 2, trimRight: false };
    if (src.startsWith(' -}}', k)) return { end: k + 4, trimRight: true };
    throw new TemplateSyntaxError('a comment must end the action: "*/}}"', k);
  }
  const { tokens, end, trimRight } = lexAction(src, j, open);
  nodes.push(parsePipeline(tokens, scope, open));
  return { end, trimRight };
}
