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
import { ConfigError } from '../errors.js';
import type { CompiledTemplate, Template, TemplateClock, TemplateData } from './types.js';
import type { Node } from './template/ast.js';
import { TemplateSyntaxError } from './template/ast.js';
import { compileEta, eta, type EtaData } from './template/eta.js';
import { type DataName, TEMPLATE_DATA_NAMES } from './template/names.js';
import { parseAll } from './template/parser.js';
import { type ShellSlot, escapeFor, shellContexts } from './template/shell.js';
import { messageOf } from '../internal/to-error.js';

export { cleanResourceName } from './template/functions.js';
export { formatGoTime } from './template/go-time.js';
export { TEMPLATE_DATA_NAMES, TEMPLATE_SCOPES } from './template/names.js';
export { shellQuote } from './template/shell.js';

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
  /** With `shell`: the command wrapper's `{{.Command}}` must stand where the shell runs it. */
  readonly requireCommand?: boolean;
  /** Checks the rendered value; returns what is wrong (and the fix), or undefined. */
  readonly check?: (value: string) => string | undefined;
}

/** The message of a template syntax problem, naming the position and the template. */
function syntaxMessage(error: TemplateSyntaxError, source: string): string {
  return `${error.message} at position ${error.position + 1} of template ${JSON.stringify(source)}`;
}

/**
 * Parses a template for an option and, with `quote: 'shell'`, follows its shell quoting: every
 * problem found (not only the first), each a {@link TemplateSyntaxError}.
 */
function analyze(
  source: string,
  options: Pick<CompileTemplateOptions, 'path' | 'allowed' | 'quote' | 'requireCommand'>,
): { nodes: Node[]; slots: ShellSlot[] | undefined; problems: TemplateSyntaxError[] } {
  const { nodes, problems } = parseAll(source, { allowed: new Set(options.allowed), path: options.path });
  if (problems.length > 0 || options.quote !== 'shell') return { nodes, slots: undefined, problems };
  try {
    const slots = shellContexts(nodes);
    const first = nodes.find((node) => node.kind === 'action' && node.isCommand);
    if (options.requireCommand && first === undefined)
      throw new TemplateSyntaxError('must contain {{.Command}}, or no command would run; e.g. "sudo {{.Command}}"', 0);
    if (options.requireCommand && !slots.some((slot, n) => slot.runs && commandAt(nodes, n))) {
      throw new TemplateSyntaxError(
        'the wrapper never runs {{.Command}}: it must stand as a command of its own (e.g. "sudo {{.Command}}") or inside sh -c \'...\', not in a comment, a here-document, a quoted argument or after echo/exit',
        first?.kind === 'action' ? first.position : 0,
      );
    }
    return { nodes, slots, problems };
  } catch (error) {
    if (!(error instanceof TemplateSyntaxError)) throw error;
    return { nodes, slots: undefined, problems: [error] };
  }
}

/** True when the n-th action of `nodes` is `{{.Command}}`. */
function commandAt(nodes: readonly Node[], n: number): boolean {
  const action = nodes.filter((node) => node.kind === 'action')[n];
  return action?.kind === 'action' && action.isCommand;
}

/**
 * Checks a template string for an option; returns the message of every problem (empty when valid).
 * @internal
 */
export function templateProblems(
  source: string,
  options: Pick<CompileTemplateOptions, 'path' | 'allowed' | 'quote' | 'requireCommand'>,
): string[] {
  return analyze(source, options).problems.map((error) => syntaxMessage(error, source));
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
          throw renderError(path, undefined, `the template function threw: ${messageOf(error)}`, error);
        }
        if (typeof value !== 'string')
          throw renderError(path, value, `the template function must return a string, got ${typeof value}`);
        return finish(value);
      },
    };
  }
  if (typeof template !== 'string')
    throw renderError(path, template, `expected a template string or a function, got ${typeof template}`);
  const { nodes, slots, problems } = analyze(template, { ...options, allowed });
  if (problems.length > 0)
    throw new ConfigError(
      problems.map((error) => ({ path, value: template, message: syntaxMessage(error, template) })),
    );
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
          return slots ? escapeFor(slots[n]!.context, value, action.isCommand) : value;
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
  checkRenderArguments(template, data, clock, options);
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
  if (!(now instanceof Date) || Number.isNaN(now.getTime()))
    throw argumentError('now', now, 'must be a valid Date, e.g. new Date() or new Date("2026-01-01T00:00:00Z")');
  const frozen = new Date(now.getTime());
  return Object.freeze({ now: frozen, uuid: () => randomUUID() });
}

function argumentError(path: string, value: unknown, message: string): ConfigError {
  const shown = value instanceof Date ? 'an invalid Date' : value === null ? 'null' : typeof value;
  return new ConfigError([{ path, message: `${message}; got ${shown}` }]);
}

/** renderTemplate's arguments, checked before use so a mistake is a ConfigError naming it. */
function checkRenderArguments(template: unknown, data: unknown, clock: unknown, options: unknown): void {
  const compiled =
    typeof template === 'object' && template !== null && typeof (template as CompiledTemplate).render === 'function';
  if (!compiled && typeof template !== 'string' && typeof template !== 'function')
    throw argumentError('template', template, 'must be a template string, a function or a compiled template');
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw argumentError('data', data, 'must be an object of template data, e.g. { Device: "/dev/sdf" }');
  const c = clock as Partial<TemplateClock> | null;
  if (
    typeof c !== 'object' ||
    c === null ||
    !(c.now instanceof Date) ||
    Number.isNaN(c.now.getTime()) ||
    typeof c.uuid !== 'function'
  )
    throw argumentError('clock', clock, 'must be a clock from createTemplateClock()');
  if (typeof options !== 'object' || options === null)
    throw argumentError('options', options, 'must be an object { path, allowed, quote }');
  const { path, allowed, quote } = options as Record<string, unknown>;
  if (path !== undefined && typeof path !== 'string') throw argumentError('options.path', path, 'must be a string');
  if (quote !== undefined && quote !== 'shell') throw argumentError('options.quote', quote, 'must be "shell" or unset');
  if (
    allowed !== undefined &&
    (!Array.isArray(allowed) || !allowed.every((n) => (TEMPLATE_DATA_NAMES as readonly unknown[]).includes(n)))
  )
    throw argumentError('options.allowed', allowed, `must be a list of data names (${TEMPLATE_DATA_NAMES.join(', ')})`);
}
