/**
 * Shell quoting of substituted values in shell-command template options.
 *
 * Why a scanner: a value is safe only if it is escaped for the quoting context it lands in, and
 * the context depends on the literal text before it. The scanner follows POSIX shell quoting
 * through the literal text (quotes, `$(...)` nesting, comments, here-documents) and gives each
 * action a context it can escape for; where it cannot prove one (backticks, arithmetic, `${...}`,
 * `$'...'`, comments, here-documents, right after `\` or `$`), it refuses the template.
 */
import { ConfigError } from '../../errors.js';
import { type Node, TemplateSyntaxError } from './ast.js';

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
  if (typeof value !== 'string')
    throw new ConfigError([
      { path: 'shellQuote(value)', message: `must be a string, got ${typeof value}; convert it with String() first` },
    ]);
  if (SHELL_SAFE.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** Where a substituted value stands in a shell command. */
export type ShellContext = 'bare' | 'single' | 'double';

/** An action's context, and whether a `{{.Command}}` there is run by the shell. */
export interface ShellSlot {
  readonly context: ShellContext;
  /** The action is a whole command word (or inside a `-c '...'` argument) that the shell executes. */
  readonly runs: boolean;
}

type FrameKind = 'bare' | 'single' | 'double' | 'ansi' | 'backtick' | 'arith' | 'param' | 'comment' | 'heredoc';

interface Frame {
  readonly kind: FrameKind;
  /** Open parentheses inside a `$(`, `$((`, `((` frame. */
  depth: number;
  /** True for the frame opened by `$(` (it closes at its `)`). */
  readonly subst: boolean;
  /** For a quoted word that follows a `-c` option: the text scanned inside it so far. */
  script?: string;
}

/** Why an action in each frame cannot be quoted safely. */
const REFUSED_IN: Readonly<Record<Exclude<FrameKind, 'bare' | 'single' | 'double'>, string>> = {
  ansi: "inside $'...' quoting, whose backslash escapes a value could use; use plain single quotes",
  backtick: 'inside backticks, whose nested quoting cannot be escaped reliably; use $(...)',
  arith: 'inside arithmetic $((...)), which evaluates its text; compute the value outside',
  param: 'inside ${...}, whose operators would act on the value; write "${var}" and the value apart',
  comment: 'inside a shell comment, where a line break in the value would start a command (and nothing there runs)',
  heredoc: 'inside a here-document, whose text is not quoted by the shell; write the value to a file another way',
};

/** Simple commands whose arguments are not run: a wrapper `echo {{.Command}}` runs nothing. */
const NON_RUNNING = new Set([
  'echo',
  'printf',
  ':',
  'true',
  'false',
  'test',
  '[',
  'exit',
  'return',
  'export',
  'readonly',
  'local',
  'declare',
  'typeset',
  'alias',
  'type',
  'hash',
  'read',
  'set',
  'unset',
  'shift',
]);
const OPERATOR = /[\s;&|()<>]/;

/**
 * The quoting context of every action of a shell-command template, in order. Throws a
 * {@link TemplateSyntaxError} at the first action whose context cannot be proven safe.
 */
export function shellContexts(nodes: readonly Node[]): ShellSlot[] {
  return new ShellScanner().run(nodes);
}

/** Follows POSIX quoting through a template's literal text, one action at a time. */
class ShellScanner {
  private readonly slots: ShellSlot[] = [];
  private readonly stack: Frame[] = [{ kind: 'bare', depth: 0, subst: false }];
  // Text of the current word in the innermost bare frame; `words` are the simple command's words so far.
  private word = '';
  private wordHasAction = false;
  private words: string[] = [];
  private previousWord = '';
  private afterBackslash = false;
  private afterDollar = false;
  private readonly heredocs: { delimiter: string; stripTabs: boolean }[] = [];
  private heredocLine = '';
  private lostTrack: string | undefined;
  private exited = false;

  run(nodes: readonly Node[]): ShellSlot[] {
    for (const node of nodes) {
      if (node.kind === 'text') {
        this.afterBackslash = false;
        this.afterDollar = false;
        this.scan(node.value);
        continue;
      }
      const frame = this.top();
      const refuse = (why: string): never => {
        throw new TemplateSyntaxError(`cannot quote this value for the shell: it stands ${why}`, node.position);
      };
      if (this.afterBackslash)
        refuse('right after a backslash, which would escape its first character; remove the "\\"');
      if (this.afterDollar) refuse('right after "$", which would make it part of an expansion; separate them');
      if (this.lostTrack !== undefined) refuse(`after ${this.lostTrack}, where the quoting cannot be followed`);
      if (frame.kind !== 'bare' && frame.kind !== 'single' && frame.kind !== 'double') refuse(REFUSED_IN[frame.kind]);
      const context = frame.kind as ShellContext;
      let runs = false;
      if (node.isCommand) {
        if (context === 'bare') {
          runs = this.word === '' && !this.wordHasAction && !this.exited && !NON_RUNNING.has(this.words[0] ?? '');
        } else {
          // Inside `sh -c '...'`: runs unless the script so far could comment it out or swallow it.
          const outer = this.stack[this.stack.length - 2];
          runs =
            frame.script !== undefined &&
            !/[#`]|<<|\$\(/.test(frame.script) &&
            outer?.kind === 'bare' &&
            !this.exited &&
            !NON_RUNNING.has(this.words[0] ?? '');
        }
      }
      if (context === 'bare') this.wordHasAction = true;
      else if (frame.script !== undefined) frame.script += '\0';
      this.slots.push({ context, runs });
    }
    return this.slots;
  }

  private top(): Frame {
    return this.stack[this.stack.length - 1]!;
  }

  private endWord(): void {
    if (this.word !== '' || this.wordHasAction) {
      this.words.push(this.word);
      this.previousWord = this.word;
      if (this.word === 'case' && this.stack.some((f) => f.subst))
        this.lostTrack = '"case" inside $(...) (its ")" patterns)';
      if (this.word === 'exit' && this.words.length === 1) this.exited = true;
    }
    this.word = '';
    this.wordHasAction = false;
  }

  private endCommand(): void {
    this.endWord();
    this.words = [];
  }

  private push(kind: FrameKind, subst = false): void {
    const frame: Frame = { kind, depth: 0, subst };
    // A quoted word right after `-c` is a script another shell runs.
    if ((kind === 'single' || kind === 'double') && this.word === '' && /^-[A-Za-z]*c$/.test(this.previousWord))
      frame.script = '';
    this.stack.push(frame);
  }

  private scanBare(text: string, i: number): number {
    const c = text[i]!;
    const next = text[i + 1];
    const frame = this.top();
    if (c === '\\') {
      if (next === undefined) this.afterBackslash = true;
      else if (next !== '\n') this.word += next;
      return i + 2;
    }
    if (c === '$') {
      if (next === undefined) this.afterDollar = true;
      else if (next === "'") this.push('ansi');
      else if (next === '"') this.push('double');
      else if (text.startsWith('((', i + 1)) {
        this.stack.push({ kind: 'arith', depth: 0, subst: false });
        return i + 3;
      } else if (next === '(') {
        this.stack.push({ kind: 'bare', depth: 0, subst: true });
        this.word = '';
        this.words = [];
        return i + 2;
      } else if (next === '{') this.push('param');
      else {
        this.word += c;
        return i + 1;
      }
      return i + 2;
    }
    if (c === "'") {
      this.push('single');
      return i + 1;
    }
    if (c === '"') {
      this.push('double');
      return i + 1;
    }
    if (c === '`') {
      this.push('backtick');
      return i + 1;
    }
    if (c === '#' && this.word === '' && !this.wordHasAction) {
      this.endWord();
      this.push('comment');
      return i + 1;
    }
    if (c === '(' && text[i + 1] === '(' && this.word === '' && !this.wordHasAction) {
      this.stack.push({ kind: 'arith', depth: 0, subst: false });
      return i + 2;
    }
    if (c === '<' && next === '<' && text[i + 2] !== '<') {
      this.endWord();
      return this.readHeredocStart(text, i + 2);
    }
    if (c === '(' && frame.subst) frame.depth++;
    if (c === ')' && frame.subst) {
      if (frame.depth === 0) {
        this.endCommand();
        this.stack.pop();
        return i + 1;
      }
      frame.depth--;
    }
    if (c === '\n') {
      this.endCommand();
      if (this.heredocs.length > 0) {
        this.stack.push({ kind: 'heredoc', depth: 0, subst: false });
        this.heredocLine = '';
      }
      return i + 1;
    }
    if (/[;&|()]/.test(c)) this.endCommand();
    else if (OPERATOR.test(c)) this.endWord();
    else this.word += c;
    return i + 1;
  }

  private readHeredocStart(text: string, from: number): number {
    let i = from;
    const stripTabs = text[i] === '-';
    if (stripTabs) i++;
    while (text[i] === ' ' || text[i] === '\t') i++;
    let delimiter = '';
    while (i < text.length && !OPERATOR.test(text[i]!)) {
      const c = text[i]!;
      if (c === "'" || c === '"') {
        const end = text.indexOf(c, i + 1);
        if (end === -1) break;
        delimiter += text.slice(i + 1, end);
        i = end + 1;
      } else if (c === '\\') {
        delimiter += text[i + 1] ?? '';
        i += 2;
      } else {
        delimiter += c;
        i++;
      }
    }
    if (i >= text.length) this.lostTrack = 'a here-document whose delimiter is not literal text';
    this.heredocs.push({ delimiter, stripTabs });
    return i;
  }

  private scan(text: string): void {
    let i = 0;
    while (i < text.length) {
      const frame = this.top();
      const c = text[i]!;
      if (frame.script !== undefined) frame.script += c;
      switch (frame.kind) {
        case 'bare':
          i = this.scanBare(text, i);
          continue;
        case 'single':
          if (c === "'") this.stack.pop();
          break;
        case 'double':
        case 'backtick':
          i = this.scanQuoted(text, i, frame);
          continue;
        case 'ansi':
          if (c === '\\') {
            i += 2;
            continue;
          }
          if (c === "'") this.stack.pop();
          break;
        case 'arith':
          if (c === '(') frame.depth++;
          else if (c === ')') {
            if (frame.depth > 0) frame.depth--;
            else if (text[i + 1] === ')') {
              this.stack.pop();
              i += 2;
              continue;
            }
          }
          break;
        case 'param':
          if (c === '}') this.stack.pop();
          break;
        case 'comment':
          if (c === '\n') {
            this.stack.pop();
            this.endCommand();
            if (this.heredocs.length > 0) {
              this.stack.push({ kind: 'heredoc', depth: 0, subst: false });
              this.heredocLine = '';
            }
          }
          break;
        case 'heredoc':
          if (c === '\n') {
            const current = this.heredocs[0]!;
            const line = current.stripTabs ? this.heredocLine.replace(/^\t+/, '') : this.heredocLine;
            if (line === current.delimiter) {
              this.heredocs.shift();
              if (this.heredocs.length === 0) this.stack.pop();
            }
            this.heredocLine = '';
          } else this.heredocLine += c;
          break;
      }
      i++;
    }
  }

  /** One step inside double quotes or backticks; returns where the next step starts. */
  private scanQuoted(text: string, i: number, frame: Frame): number {
    const c = text[i]!;
    if (c === '\\') {
      if (i + 1 >= text.length) this.afterBackslash = true;
      else if (frame.script !== undefined) frame.script += text[i + 1];
      return i + 2;
    }
    if ((frame.kind === 'double' && c === '"') || (frame.kind === 'backtick' && c === '`')) this.stack.pop();
    else if (frame.kind === 'double' && c === '`') this.push('backtick');
    else if (frame.kind === 'double' && c === '$') {
      if (i + 1 >= text.length) this.afterDollar = true;
      else if (text.startsWith('((', i + 1)) {
        this.stack.push({ kind: 'arith', depth: 0, subst: false });
        return i + 3;
      } else if (text[i + 1] === '(') {
        this.stack.push({ kind: 'bare', depth: 0, subst: true });
        this.word = '';
        this.words = [];
        return i + 2;
      } else if (text[i + 1] === '{') {
        this.push('param');
        return i + 2;
      }
    }
    return i + 1;
  }
}

/** Escapes a value for its context; `verbatim` leaves `{{.Command}}` unquoted where bare. */
export function escapeFor(context: ShellContext, value: string, verbatim: boolean): string {
  if (context === 'single') return value.replaceAll("'", `'\\''`);
  if (context === 'double') return value.replace(/[\\"$`]/g, '\\$&');
  return verbatim ? value : shellQuote(value);
}
