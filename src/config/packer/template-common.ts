/**
 * What the HCL2 and the legacy JSON loaders share: locating a problem at `file:line`, build
 * selection (`-only`/`-except`), the supported steps, and failing with every problem at once.
 */
import { ConfigError } from '../../errors.js';
import type { ConfigIssue } from '../../errors.js';
import { isRecord } from './hcl-expr.js';
import type { Located } from './variables.js';
import type { LoadPackerTemplateOptions } from './types.js';

/** Provisioners this library runs. */
export const SUPPORTED_PROVISIONERS = ['shell', 'file', 'shell-local'] as const;
/** Post-processors this library runs. */
export const SUPPORTED_POST_PROCESSORS = ['manifest'] as const;

/** One source file: its text (for line numbers) and its path. */
export interface SourceFile {
  readonly path: string;
  readonly text: string;
}

export function lineAt(text: string, offset: number): number {
  return text.slice(0, Math.max(0, offset)).split('\n').length;
}

/** `file:line` of the first match of `pattern` at or after `from`, else the file alone. */
export function locate(file: SourceFile, pattern: RegExp, from = 0): { where: string; offset: number } {
  const re = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
  re.lastIndex = from;
  const m = re.exec(file.text);
  return m
    ? { where: `${file.path}:${lineAt(file.text, m.index)}`, offset: m.index }
    : { where: file.path, offset: from };
}

export function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function bodies(v: unknown): Record<string, unknown>[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter(isRecord);
}

/** A template value as text (legacy templates are untyped). */
export function scalar(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
}

function glob(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map(escapeRe).join('.*')}$`);
}

export function selected(names: readonly string[], options: LoadPackerTemplateOptions): boolean {
  const hit = (patterns: readonly string[]) => patterns.some((p) => names.some((n) => glob(p).test(n)));
  if (options.only && options.only.length > 0 && !hit(options.only)) return false;
  if (options.except && options.except.length > 0 && hit(options.except)) return false;
  return true;
}

/** A provisioner's own `only`/`except` (source names, with or without `source.`). */
export function stepApplies(body: Readonly<Record<string, unknown>>, names: readonly string[]): boolean {
  const norm = (v: unknown) => (Array.isArray(v) ? v.map((x) => String(x).replace(/^source\./, '')) : []);
  const only = norm(body.only);
  const except = norm(body.except);
  if (only.length > 0 && !only.some((o) => names.includes(o))) return false;
  return !except.some((e) => names.includes(e));
}

export function fail(problems: readonly Located[], cause?: unknown): never {
  const seen = new Set<string>();
  const issues: ConfigIssue[] = problems
    .filter((p) => !seen.has(`${p.location}\n${p.message}`) && (seen.add(`${p.location}\n${p.message}`), true))
    .map((p) => ({ path: p.location, message: p.message }));
  throw new ConfigError(issues, cause === undefined ? {} : { cause });
}

/** Rewrites fromPackerConfig's issues so each names the file and line of the option. */
export function relocate(error: unknown, file: SourceFile, blockOffset: number, label: string): Located[] {
  if (!(error instanceof ConfigError)) throw error;
  return error.issues.map((i) => {
    const key = i.path.split('.').find((seg) => /^[a-z_]+$/.test(seg) && seg !== 'builders');
    const at = key
      ? locate(file, new RegExp(`^\\s*"?${escapeRe(key)}"?\\s*[=:{]`, 'm'), blockOffset)
      : { where: `${file.path}:${lineAt(file.text, blockOffset)}` };
    return {
      location: at.where,
      message: `${label}${i.path ? `.${i.path.replace(/^builders\.\d+\.?/, '')}` : ''}: ${i.message}`,
    };
  });
}

export function checkStep(
  kind: 'provisioner' | 'post-processor',
  type: string,
  where: string,
  options: LoadPackerTemplateOptions,
  problems: Located[],
  warnings: string[],
): boolean {
  const supported: readonly string[] = kind === 'provisioner' ? SUPPORTED_PROVISIONERS : SUPPORTED_POST_PROCESSORS;
  if (supported.includes(type)) return true;
  const message = `${kind} "${type}" is not supported (supported: ${supported.join(', ')}); remove it, or pass --ignore-unsupported to skip it`;
  if (options.ignoreUnsupported) warnings.push(`${where}: ${message.replace(/; remove it.*$/, '')}; skipped`);
  else problems.push({ location: where, message });
  return false;
}
