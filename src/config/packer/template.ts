/**
 * Loads whole Packer templates: HCL2 (`.pkr.hcl`, a file or a directory of them), HCL2 JSON
 * (`.pkr.json`) and legacy JSON. The `amazon-chroot` blocks go through {@link fromPackerConfig}'s
 * mapping; provisioners and post-processors are kept, in template order, for
 * {@link runPackerProvisioners} and {@link writePackerManifest}.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError } from '../../errors.js';
import type { ConfigIssue } from '../../errors.js';
import { fromPackerConfig } from '../packer.js';
import { evaluateHcl, HclEvalError, isRecord } from './hcl-expr.js';
import type { HclScope } from './hcl-expr.js';
import { parseHcl } from './hcl-parse.js';
import { checkStepSettings } from './provisioners.js';
import { resolveVariables } from './variables.js';
import type { Located, VariableDecl } from './variables.js';
import type { LoadPackerTemplateOptions, PackerBuild, PackerStep, PackerTemplate } from './types.js';

/** Provisioners this library runs. */
export const SUPPORTED_PROVISIONERS = ['shell', 'file', 'shell-local'] as const;
/** Post-processors this library runs. */
export const SUPPORTED_POST_PROCESSORS = ['manifest'] as const;

/** One source file: its text (for line numbers) and its path. */
interface SourceFile {
  readonly path: string;
  readonly text: string;
}

function lineAt(text: string, offset: number): number {
  return text.slice(0, Math.max(0, offset)).split('\n').length;
}

/** `file:line` of the first match of `pattern` at or after `from`, else the file alone. */
function locate(file: SourceFile, pattern: RegExp, from = 0): { where: string; offset: number } {
  const re = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
  re.lastIndex = from;
  const m = re.exec(file.text);
  return m
    ? { where: `${file.path}:${lineAt(file.text, m.index)}`, offset: m.index }
    : { where: file.path, offset: from };
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function bodies(v: unknown): Record<string, unknown>[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter(isRecord);
}

/** A template value as text (legacy templates are untyped). */
function scalar(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
}

function glob(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map(escapeRe).join('.*')}$`);
}

function selected(names: readonly string[], options: LoadPackerTemplateOptions): boolean {
  const hit = (patterns: readonly string[]) => patterns.some((p) => names.some((n) => glob(p).test(n)));
  if (options.only && options.only.length > 0 && !hit(options.only)) return false;
  if (options.except && options.except.length > 0 && hit(options.except)) return false;
  return true;
}

/** A provisioner's own `only`/`except` (source names, with or without `source.`). */
function stepApplies(body: Readonly<Record<string, unknown>>, names: readonly string[]): boolean {
  const norm = (v: unknown) => (Array.isArray(v) ? v.map((x) => String(x).replace(/^source\./, '')) : []);
  const only = norm(body.only);
  const except = norm(body.except);
  if (only.length > 0 && !only.some((o) => names.includes(o))) return false;
  return !except.some((e) => names.includes(e));
}

function fail(problems: readonly Located[], cause?: unknown): never {
  const seen = new Set<string>();
  const issues: ConfigIssue[] = problems
    .filter((p) => !seen.has(`${p.location}\n${p.message}`) && (seen.add(`${p.location}\n${p.message}`), true))
    .map((p) => ({ path: p.location, message: p.message }));
  throw new ConfigError(issues, cause === undefined ? {} : { cause });
}

/** Rewrites fromPackerConfig's issues so each names the file and line of the option. */
function relocate(error: unknown, file: SourceFile, blockOffset: number, label: string): Located[] {
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

function checkStep(
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

// --- HCL2 ---------------------------------------------------------------------------------------

interface HclFile extends SourceFile {
  readonly doc: Record<string, unknown>;
}

/**
 * Block headers of one kind in source order, with offsets, so that blocks the parser groups by
 * type (`provisioner "shell"` ... `provisioner "file"`) get back their order and their lines.
 */
function headers(file: SourceFile, keyword: string): { type: string; offset: number }[] {
  const out: { type: string; offset: number }[] = [];
  const re = new RegExp(`^[ \\t]*${escapeRe(keyword)}[ \\t]+"([^"]+)"[ \\t]*\\{`, 'gm');
  for (let m = re.exec(file.text); m; m = re.exec(file.text)) out.push({ type: m[1]!, offset: m.index });
  return out;
}

/** The steps of one kind in a build block, in source order, each with its line. */
function orderedSteps(
  file: SourceFile,
  grouped: unknown,
  keyword: string,
  buildStart: number,
  buildEnd: number,
): { type: string; body: Record<string, unknown>; where: string }[] {
  // pkr.json may already give an ordered list of { type: body }.
  const entries: { type: string; body: Record<string, unknown> }[] = [];
  for (const group of bodies(grouped))
    for (const [type, list] of Object.entries(group)) for (const body of bodies(list)) entries.push({ type, body });
  const found = headers(file, keyword).filter((h) => h.offset >= buildStart && h.offset < buildEnd);
  const used = new Set<number>();
  const placed = entries.map((e) => {
    const h = found.find((x, i) => x.type === e.type && !used.has(i) && (used.add(i), true));
    return { ...e, offset: h?.offset ?? Number.MAX_SAFE_INTEGER };
  });
  placed.sort((a, b) => a.offset - b.offset);
  return placed.map((p) => ({
    type: p.type,
    body: p.body,
    where: p.offset === Number.MAX_SAFE_INTEGER ? file.path : `${file.path}:${lineAt(file.text, p.offset)}`,
  }));
}

async function readHclFiles(
  path: string,
): Promise<{ files: HclFile[]; autoVarFiles: string[]; format: 'hcl2' | 'hcl2-json' }> {
  const info = await stat(path);
  const names = info.isDirectory()
    ? (await readdir(path)).filter((n) => n.endsWith('.pkr.hcl') || n.endsWith('.pkr.json')).sort()
    : [basename(path)];
  const dir = info.isDirectory() ? path : dirname(path);
  const files: HclFile[] = [];
  for (const name of names) {
    const file = join(dir, name);
    const text = await readFile(file, 'utf8');
    let doc: unknown;
    try {
      doc = name.endsWith('.json') ? JSON.parse(text) : await parseHcl(file, text);
    } catch (error) {
      const msg = (error as Error).message.replace(/^parse config: \[(.*)\]$/s, '$1');
      // The parser says "file:line,col-range: summary; detail".
      const m = /^(.*?):(\d+),(\d+)(?:-[\d,]+)?: (.*)$/s.exec(msg);
      fail([
        m
          ? { location: `${m[1]}:${m[2]}:${m[3]}`, message: `${m[4]} (fix the HCL syntax there)` }
          : { location: file, message: `cannot parse: ${msg}` },
      ]);
    }
    if (!isRecord(doc)) fail([{ location: file, message: 'must be an object of blocks' }]);
    files.push({ path: file, text, doc });
  }
  if (files.length === 0) fail([{ location: path, message: 'has no *.pkr.hcl or *.pkr.json file' }]);
  const autoVarFiles = info.isDirectory()
    ? (await readdir(path))
        .filter((n) => n.endsWith('.auto.pkrvars.hcl') || n.endsWith('.auto.pkrvars.json'))
        .sort()
        .map((n) => join(path, n))
    : [];
  return { files, autoVarFiles, format: files.every((f) => f.path.endsWith('.json')) ? 'hcl2-json' : 'hcl2' };
}

const HCL_TOP_LEVEL = new Set(['variable', 'variables', 'locals', 'local', 'source', 'build', 'packer']);
const BLOCK_ATTRIBUTES = ['source_ami_filter', 'aws_polling', 'deregistration_protection'];

async function loadHcl(path: string, options: LoadPackerTemplateOptions): Promise<PackerTemplate> {
  const { files, autoVarFiles, format } = await readHclFiles(path);
  const problems: Located[] = [];
  const warnings: string[] = [];
  const root = resolve((await stat(path)).isDirectory() ? path : dirname(path));
  const base = { now: options.now ?? new Date(), cwd: process.cwd(), path: { root, cwd: process.cwd() } };

  const decls: VariableDecl[] = [];
  const localDefs = new Map<string, { expr: unknown; where: string }>();
  const sources = new Map<string, { body: Record<string, unknown>; file: HclFile; offset: number }>();
  const builds: { body: Record<string, unknown>; file: HclFile; start: number; end: number }[] = [];
  for (const file of files) {
    for (const key of Object.keys(file.doc)) {
      if (HCL_TOP_LEVEL.has(key)) continue;
      const at = locate(file, new RegExp(`^\\s*"?${escapeRe(key)}"?[\\s:{"]`, 'm'));
      problems.push({
        location: at.where,
        message:
          key === 'data'
            ? 'data sources are not supported; select the source AMI with source_ami_filter in the amazon-chroot source'
            : key === 'hcp_packer_registry'
              ? 'hcp_packer_registry is not supported; remove it'
              : `unknown top-level block "${key}"; ami-chroot reads variable, variables, locals, local, source, build and packer blocks`,
      });
    }
    for (const group of bodies(file.doc.variable))
      for (const [name, list] of Object.entries(group))
        for (const body of bodies(list))
          decls.push({
            name,
            body,
            location: locate(file, new RegExp(`^\\s*variable\\s+"${escapeRe(name)}"`, 'm')).where,
          });
    for (const group of bodies(file.doc.variables))
      for (const [name, value] of Object.entries(group))
        decls.push({
          name,
          body: { default: value },
          location: locate(file, new RegExp(`^\\s*"?${escapeRe(name)}"?\\s*[=:]`, 'm')).where,
        });
    for (const group of bodies(file.doc.locals))
      for (const [name, expr] of Object.entries(group))
        localDefs.set(name, { expr, where: locate(file, new RegExp(`^\\s*"?${escapeRe(name)}"?\\s*[=:]`, 'm')).where });
    for (const group of bodies(file.doc.local))
      for (const [name, list] of Object.entries(group))
        for (const body of bodies(list))
          localDefs.set(name, {
            expr: body.expression,
            where: locate(file, new RegExp(`^\\s*local\\s+"${escapeRe(name)}"`, 'm')).where,
          });
    for (const group of bodies(file.doc.source))
      for (const [type, named] of Object.entries(group))
        for (const [name, list] of Object.entries(isRecord(named) ? named : {}))
          for (const body of bodies(list)) {
            const at = locate(file, new RegExp(`^\\s*source\\s+"${escapeRe(type)}"\\s+"${escapeRe(name)}"`, 'm'));
            sources.set(`${type}.${name}`, { body, file, offset: at.offset });
          }
    const starts = [...file.text.matchAll(/^[ \t]*build[ \t]*\{/gm)].map((m) => m.index);
    bodies(file.doc.build).forEach((body, i) => {
      builds.push({ body, file, start: starts[i] ?? 0, end: starts[i + 1] ?? file.text.length });
    });
  }

  const { values, sensitive } = await resolveVariables(decls, autoVarFiles, options, base, problems, warnings);
  if (problems.length > 0) fail(problems);

  // Locals may refer to each other in any order; cycles are reported.
  const localValues = new Map<string, unknown>();
  const evaluating = new Set<string>();
  const scope: HclScope = {
    ...base,
    var: values,
    resolveLocal: (name) => {
      if (localValues.has(name)) return localValues.get(name);
      const def = localDefs.get(name);
      if (!def) throw new HclEvalError(`local.${name} is not declared; add it to a locals block`);
      if (evaluating.has(name))
        throw new HclEvalError(`local.${name} refers to itself through ${[...evaluating].join(' -> ')}`);
      evaluating.add(name);
      try {
        const v = evaluateHcl(def.expr, scope);
        localValues.set(name, v);
        return v;
      } finally {
        evaluating.delete(name);
      }
    },
  };
  for (const [name, def] of localDefs) {
    try {
      scope.resolveLocal!(name);
    } catch (error) {
      problems.push({ location: def.where, message: `local "${name}": ${(error as Error).message}` });
    }
  }
  if (problems.length > 0) fail(problems);

  const out: PackerBuild[] = [];
  if (builds.length === 0)
    problems.push({
      location: files[0]!.path,
      message: 'has no build block; add build { sources = ["source.amazon-chroot.NAME"] }',
    });
  for (const build of builds) {
    const buildName = typeof build.body.name === 'string' ? build.body.name : undefined;
    const refs: { ref: string; overrides: Record<string, unknown> }[] = [];
    for (const s of Array.isArray(build.body.sources) ? build.body.sources : [])
      refs.push({ ref: String(s), overrides: {} });
    for (const group of bodies(build.body.source))
      for (const [ref, list] of Object.entries(group)) for (const o of bodies(list)) refs.push({ ref, overrides: o });
    const provisioners = orderedSteps(build.file, build.body.provisioner, 'provisioner', build.start, build.end);
    const postProcessors = orderedSteps(
      build.file,
      [
        ...bodies(build.body['post-processor']),
        ...bodies(build.body['post-processors']).flatMap((c) => bodies(c['post-processor'])),
      ],
      'post-processor',
      build.start,
      build.end,
    );
    for (const key of Object.keys(build.body))
      if (
        !['name', 'description', 'sources', 'source', 'provisioner', 'post-processor', 'post-processors'].includes(key)
      )
        problems.push({
          location: locate(build.file, new RegExp(`^\\s*${escapeRe(key)}\\b`, 'm'), build.start).where,
          message: `build block: "${key}" is not supported${key === 'error-cleanup-provisioner' ? ' (the build cleans up by itself)' : ''}; remove it`,
        });
    for (const { ref, overrides } of refs) {
      const id = ref.replace(/^source\./, '');
      const [type = '', name = ''] = id.split('.');
      const src = sources.get(id);
      const where = `${build.file.path}:${lineAt(build.file.text, build.start)}`;
      if (type !== 'amazon-chroot') {
        if (selected([id, `${buildName ?? ''}.${id}`], options))
          problems.push({
            location: where,
            message: `source "${type}" (${ref}) is not supported: ami-chroot builds only amazon-chroot sources; remove it from the build, or exclude it with --except ${id}`,
          });
        continue;
      }
      if (!src) {
        problems.push({
          location: where,
          message: `${ref} is not defined; add source "amazon-chroot" "${name}" { ... }`,
        });
        continue;
      }
      const { name: rename, ...rest } = overrides;
      const sourceName = typeof rename === 'string' ? rename : name;
      const buildId = `amazon-chroot.${sourceName}`;
      const names = [buildId, ...(buildName ? [`${buildName}.${buildId}`] : [])];
      if (!selected(names, options)) continue;
      const label = `source.amazon-chroot.${name}`;
      let body: Record<string, unknown>;
      try {
        body = evaluateHcl(
          { ...src.body, ...rest },
          { ...scope, source: { name: sourceName, type: 'amazon-chroot' } },
        ) as Record<string, unknown>;
      } catch (error) {
        problems.push({
          location: locate(src.file, /x^/, src.offset).where,
          message: `${label}: ${(error as Error).message}`,
        });
        continue;
      }
      for (const key of BLOCK_ATTRIBUTES) {
        const v = body[key];
        if (Array.isArray(v) && v.length === 1 && isRecord(v[0])) body[key] = v[0];
      }
      let config;
      try {
        config = fromPackerConfig(body, options.env ? { env: options.env } : {});
      } catch (error) {
        problems.push(...relocate(error, src.file, src.offset, label));
      }
      const toStep = (
        s: { type: string; body: Record<string, unknown>; where: string },
        kind: 'provisioner' | 'post-processor',
      ): PackerStep | undefined => {
        if (!checkStep(kind, s.type, s.where, options, problems, warnings)) return undefined;
        const sourceScope = { name: sourceName, type: 'amazon-chroot' };
        // Evaluated once now with placeholders, so that errors show before the build starts.
        try {
          const placeholder = new Proxy({}, { get: (_, k) => `<build.${String(k)}>` });
          const settings = evaluateHcl(s.body, { ...scope, source: sourceScope, build: placeholder }) as Record<
            string,
            unknown
          >;
          for (const message of checkStepSettings(s.type, settings))
            problems.push({ location: s.where, message: `${kind} "${s.type}": ${message}` });
        } catch (error) {
          problems.push({ location: s.where, message: `${kind} "${s.type}": ${(error as Error).message}` });
        }
        return {
          type: s.type,
          location: s.where,
          settings: (data) =>
            evaluateHcl(s.body, { ...scope, source: sourceScope, build: data }) as Record<string, unknown>,
        };
      };
      const steps = provisioners
        .filter((p) => stepApplies(p.body, names))
        .flatMap((p) => toStep(p, 'provisioner') ?? []);
      const posts = postProcessors
        .filter((p) => stepApplies(p.body, names))
        .flatMap((p) => toStep(p, 'post-processor') ?? []);
      if (config)
        out.push({
          name: buildId,
          sourceName,
          ...(buildName ? { buildName } : {}),
          config,
          provisioners: steps,
          postProcessors: posts,
        });
    }
  }
  if (problems.length > 0) fail(problems);
  return { path, format, builds: out, warnings, sensitiveValues: sensitive };
}

// --- Legacy JSON ----------------------------------------------------------------------------------

/** `{{user `x`}}` in provisioner settings (the builder's are rendered by fromPackerConfig). */
function renderLegacy(
  value: unknown,
  vars: Readonly<Record<string, string>>,
  data: Readonly<Record<string, unknown>>,
  builder: { name: string },
): unknown {
  if (typeof value === 'string')
    return value.replace(
      /\{\{\s*(user|build)\s+(`[^`]*`|"[^"]*")\s*\}\}|\{\{\s*(build_name|build_type)\s*\}\}/g,
      (all, fn: string, arg: string, bare: string) => {
        if (bare === 'build_name') return builder.name;
        if (bare === 'build_type') return 'amazon-chroot';
        const name = arg.slice(1, -1);
        if (fn === 'user') {
          if (!Object.hasOwn(vars, name))
            throw new HclEvalError(
              `${all}: user variable "${name}" is not defined; add it to "variables" or pass -var ${name}=...`,
            );
          return vars[name]!;
        }
        return scalar(data[name]);
      },
    );
  if (Array.isArray(value)) return value.map((v) => renderLegacy(v, vars, data, builder));
  if (isRecord(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderLegacy(v, vars, data, builder)]));
  return value;
}

const LEGACY_TOP_LEVEL = new Set([
  'variables',
  'builders',
  'provisioners',
  'post-processors',
  'description',
  'min_packer_version',
  'sensitive-variables',
]);

async function loadLegacy(
  path: string,
  text: string,
  json: Record<string, unknown>,
  options: LoadPackerTemplateOptions,
): Promise<PackerTemplate> {
  const file: SourceFile = { path, text };
  const problems: Located[] = [];
  const warnings: string[] = [];
  for (const key of Object.keys(json))
    if (!LEGACY_TOP_LEVEL.has(key))
      problems.push({
        location: locate(file, new RegExp(`"${escapeRe(key)}"\\s*:`)).where,
        message: `unknown top-level key "${key}"; remove it`,
      });
  const declared = isRecord(json.variables) ? json.variables : {};
  const vars: Record<string, string> = {};
  for (const source of options.variables ?? []) {
    const entries =
      'file' in source
        ? Object.entries(await readJsonVarFile(source.file, problems))
        : [[source.name, source.value] as const];
    for (const [name, value] of entries) {
      if (!Object.hasOwn(declared, name)) {
        problems.push({
          location: 'file' in source ? source.file : `-var ${name}`,
          message: `variable "${name}" is not declared in "variables"; declare it or remove the value`,
        });
        continue;
      }
      vars[name] = String(value);
    }
  }
  const env = options.env ?? process.env;
  const resolved: Record<string, string> = {};
  for (const [name, def] of Object.entries(declared)) {
    if (Object.hasOwn(vars, name)) resolved[name] = vars[name]!;
    else if (def === null)
      problems.push({
        location: locate(file, new RegExp(`"${escapeRe(name)}"\\s*:`)).where,
        message: `variable "${name}" is required (null default); pass -var ${name}=... or a var file`,
      });
    else resolved[name] = scalar(def).replace(/\{\{\s*env\s+`([^`]*)`\s*\}\}/g, (_, n: string) => env[n] ?? '');
  }
  const sensitiveNames = Array.isArray(json['sensitive-variables']) ? json['sensitive-variables'].map(String) : [];
  if (problems.length > 0) fail(problems);

  const builders = Array.isArray(json.builders) ? json.builders : [];
  if (builders.length === 0) fail([{ location: path, message: 'has no "builders"; add an amazon-chroot builder' }]);
  const typeOffsets = [...text.matchAll(/"type"\s*:\s*"([^"]*)"/g)];
  const out: PackerBuild[] = [];
  const provisioners = Array.isArray(json.provisioners) ? json.provisioners : [];
  const posts: unknown[] = (
    Array.isArray(json['post-processors']) ? (json['post-processors'] as unknown[]) : []
  ).flatMap((p: unknown) => (Array.isArray(p) ? (p as unknown[]) : [p]));
  builders.forEach((b: unknown, index) => {
    if (!isRecord(b)) return;
    const type = String(b.type);
    const name = typeof b.name === 'string' ? b.name : type;
    const offset =
      typeOffsets.filter((m) => m[1] === type)[
        builders.filter((x: unknown, i) => i < index && isRecord(x) && x.type === type).length
      ]?.index ?? 0;
    const where = `${path}:${lineAt(text, offset)}`;
    if (!selected([name], options)) return;
    if (type !== 'amazon-chroot') {
      problems.push({
        location: where,
        message: `builder "${name}" of type "${type}" is not supported: ami-chroot builds only amazon-chroot; remove it, or exclude it with --except ${name}`,
      });
      return;
    }
    let config;
    try {
      config = fromPackerConfig(b, { variables: resolved, env });
    } catch (error) {
      problems.push(...relocate(error, file, offset, `builders.${index}`));
    }
    const steps = (list: unknown[], kind: 'provisioner' | 'post-processor'): PackerStep[] =>
      list.flatMap((p, i) => {
        if (!isRecord(p)) return [];
        const stepType = String(p.type);
        const at = locate(
          file,
          new RegExp(`"type"\\s*:\\s*"${escapeRe(stepType)}"`),
          text.indexOf(kind === 'provisioner' ? '"provisioners"' : '"post-processors"'),
        );
        const stepWhere = `${at.where} (${kind}s.${i})`;
        if (!stepApplies(p, [name])) return [];
        if (!checkStep(kind, stepType, stepWhere, options, problems, warnings)) return [];
        const { type: _t, override, ...rest } = p;
        const body = isRecord(override) && isRecord(override[name]) ? { ...rest, ...override[name] } : rest;
        try {
          const settings = renderLegacy(body, resolved, {}, { name }) as Record<string, unknown>;
          for (const message of checkStepSettings(stepType, settings))
            problems.push({ location: stepWhere, message: `${kind} "${stepType}": ${message}` });
        } catch (error) {
          problems.push({ location: stepWhere, message: (error as Error).message });
        }
        return [
          {
            type: stepType,
            location: stepWhere,
            settings: (data) => renderLegacy(body, resolved, data, { name }) as Record<string, unknown>,
          },
        ];
      });
    const provisionSteps = steps(provisioners, 'provisioner');
    const postSteps = steps(posts, 'post-processor');
    if (config) out.push({ name, sourceName: name, config, provisioners: provisionSteps, postProcessors: postSteps });
  });
  if (problems.length > 0) fail(problems);
  return {
    path,
    format: 'json',
    builds: out,
    warnings,
    sensitiveValues: sensitiveNames.map((n) => resolved[n] ?? '').filter((v) => v !== ''),
  };
}

async function readJsonVarFile(file: string, problems: Located[]): Promise<Record<string, unknown>> {
  try {
    const json = JSON.parse(await readFile(file, 'utf8')) as unknown;
    if (isRecord(json)) return json;
    problems.push({ location: file, message: 'a var file must be a JSON object of name: value' });
  } catch (error) {
    problems.push({ location: file, message: `cannot read the var file: ${(error as Error).message}` });
  }
  return {};
}

// --- Entry point ----------------------------------------------------------------------------------

/**
 * Loads a Packer template unchanged: HCL2 (`.pkr.hcl`, or a directory of `.pkr.hcl`/`.pkr.json`
 * files with its `*.auto.pkrvars.*`), HCL2 JSON (`.pkr.json`), or a legacy JSON template.
 *
 * @remarks
 * Variables take values from their default (where `env("X")` is allowed), `PKR_VAR_name`,
 * auto var files, then `options.variables` in order; types convert and validation blocks run.
 * `locals` may use variables, other locals and the supported functions (`HCL_FUNCTIONS`); Packer
 * functions that read remote systems (`vault`, `aws_secretsmanager`, ...) are refused by name.
 * Every `amazon-chroot` source or builder becomes a validated {@link BuildConfig}; other builder
 * types are an error naming them (unless `except`/`only` leaves them out). Provisioners `shell`,
 * `file` and `shell-local` and the post-processor `manifest` are kept in template order; others
 * are an error listing them, or a warning with `ignoreUnsupported`.
 *
 * @example
 * ```ts
 * import { buildAmi, loadPackerTemplate, runPackerProvisioners, writePackerManifest } from 'ami-chroot';
 *
 * const template = await loadPackerTemplate('ubuntu.pkr.hcl', { variables: [{ name: 'region', value: 'eu-west-1' }] });
 * for (const build of template.builds) {
 *   const result = await buildAmi(build.config, (chroot, info) => runPackerProvisioners(build, chroot, info.packer));
 *   await writePackerManifest(build, result);
 * }
 * ```
 * @param path - a template file or a directory of HCL2 files
 * @param options - variables, build selection, unsupported steps
 * @throws {@link ConfigError} whose issues name `file:line` and the fix, for every problem found
 * @public
 */
export async function loadPackerTemplate(
  path: string,
  options: LoadPackerTemplateOptions = {},
): Promise<PackerTemplate> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    fail(
      [
        {
          location: path,
          message: `cannot read the template (${(error as NodeJS.ErrnoException).code ?? 'error'}); check the path`,
        },
      ],
      error,
    );
  }
  if (info.isDirectory() || path.endsWith('.pkr.hcl') || path.endsWith('.pkr.json')) return loadHcl(path, options);
  const text = await readFile(path, 'utf8');
  if (!path.endsWith('.json'))
    fail([
      {
        location: path,
        message: 'unknown template kind; name it *.pkr.hcl (HCL2), *.pkr.json (HCL2 JSON) or *.json (legacy JSON)',
      },
    ]);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    const pos = /position (\d+)/.exec((error as Error).message);
    fail(
      [
        {
          location: pos ? `${path}:${lineAt(text, Number(pos[1]))}` : path,
          message: `is not valid JSON: ${(error as Error).message}`,
        },
      ],
      error,
    );
  }
  if (!isRecord(json)) fail([{ location: path, message: 'must be a JSON object' }]);
  // A JSON file with HCL2's blocks is HCL2 JSON whatever its name.
  if ('source' in json || 'build' in json) return loadHcl(path, options);
  return loadLegacy(path, text, json, options);
}
