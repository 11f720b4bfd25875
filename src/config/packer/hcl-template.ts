/**
 * Loads HCL2 templates (`.pkr.hcl`, `.pkr.json`, or a directory of them): variables, locals,
 * sources and build blocks, each problem located at `file:line`.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fromPackerConfig } from '../packer.js';
import { evaluateHcl, HclEvalError, isRecord } from './hcl-expr.js';
import type { HclScope } from './hcl-expr.js';
import { parseHcl } from './hcl-parse.js';
import { checkStepSettings } from './provisioners.js';
import { resolveVariables } from './variables.js';
import type { Located, VariableDecl } from './variables.js';
import type { BuildConfig } from '../types.js';
import type { LoadPackerTemplateOptions, PackerBuild, PackerStep, PackerTemplate } from './types.js';
import {
  bodies,
  checkStep,
  escapeRe,
  fail,
  lineAt,
  locate,
  relocate,
  selected,
  stepApplies,
} from './template-common.js';
import type { SourceFile } from './template-common.js';

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

/** The blocks of every file, gathered before anything is evaluated. */
interface HclBlocks {
  readonly decls: VariableDecl[];
  readonly localDefs: Map<string, { expr: unknown; where: string }>;
  readonly sources: Map<string, { body: Record<string, unknown>; file: HclFile; offset: number }>;
  readonly builds: HclBuildBlock[];
}

interface HclBuildBlock {
  readonly body: Record<string, unknown>;
  readonly file: HclFile;
  readonly start: number;
  readonly end: number;
}

interface HclStepBlock {
  readonly type: string;
  readonly body: Record<string, unknown>;
  readonly where: string;
}

/** What a build block's steps are evaluated with. */
interface StepContext {
  readonly scope: HclScope;
  readonly options: LoadPackerTemplateOptions;
  readonly problems: Located[];
  readonly warnings: string[];
}

/** Loads an HCL2 template file or directory. @internal */
export async function loadHcl(path: string, options: LoadPackerTemplateOptions): Promise<PackerTemplate> {
  const { files, autoVarFiles, format } = await readHclFiles(path);
  const problems: Located[] = [];
  const warnings: string[] = [];
  const root = resolve((await stat(path)).isDirectory() ? path : dirname(path));
  const base = { now: options.now ?? new Date(), cwd: process.cwd(), path: { root, cwd: process.cwd() } };
  const blocks = collectBlocks(files, problems);
  const { values, sensitive } = await resolveVariables(blocks.decls, autoVarFiles, options, base, problems, warnings);
  if (problems.length > 0) fail(problems);
  const scope = localsScope({ ...base, var: values }, blocks.localDefs, problems);
  if (problems.length > 0) fail(problems);
  if (blocks.builds.length === 0)
    problems.push({
      location: files[0]!.path,
      message: 'has no build block; add build { sources = ["source.amazon-chroot.NAME"] }',
    });
  const context: StepContext = { scope, options, problems, warnings };
  const builds = blocks.builds.flatMap((build) => buildsOf(build, blocks.sources, context));
  if (problems.length > 0) fail(problems);
  return { path, format, builds, warnings, sensitiveValues: sensitive };
}

/** Variables, locals, sources and builds of every file; unknown top-level blocks are problems. */
function collectBlocks(files: readonly HclFile[], problems: Located[]): HclBlocks {
  const blocks: HclBlocks = { decls: [], localDefs: new Map(), sources: new Map(), builds: [] };
  const at = (file: HclFile, pattern: string): string => locate(file, new RegExp(pattern, 'm')).where;
  for (const file of files) {
    for (const key of Object.keys(file.doc)) {
      if (HCL_TOP_LEVEL.has(key)) continue;
      problems.push({
        location: at(file, `^\\s*"?${escapeRe(key)}"?[\\s:{"]`),
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
          blocks.decls.push({ name, body, location: at(file, `^\\s*variable\\s+"${escapeRe(name)}"`) });
    for (const group of bodies(file.doc.variables))
      for (const [name, value] of Object.entries(group))
        blocks.decls.push({
          name,
          body: { default: value },
          location: at(file, `^\\s*"?${escapeRe(name)}"?\\s*[=:]`),
        });
    for (const group of bodies(file.doc.locals))
      for (const [name, expr] of Object.entries(group))
        blocks.localDefs.set(name, { expr, where: at(file, `^\\s*"?${escapeRe(name)}"?\\s*[=:]`) });
    for (const group of bodies(file.doc.local))
      for (const [name, list] of Object.entries(group))
        for (const body of bodies(list))
          blocks.localDefs.set(name, { expr: body.expression, where: at(file, `^\\s*local\\s+"${escapeRe(name)}"`) });
    for (const group of bodies(file.doc.source))
      for (const [type, named] of Object.entries(group))
        for (const [name, list] of Object.entries(isRecord(named) ? named : {}))
          for (const body of bodies(list)) {
            const found = locate(file, new RegExp(`^\\s*source\\s+"${escapeRe(type)}"\\s+"${escapeRe(name)}"`, 'm'));
            blocks.sources.set(`${type}.${name}`, { body, file, offset: found.offset });
          }
    const starts = [...file.text.matchAll(/^[ \t]*build[ \t]*\{/gm)].map((m) => m.index);
    bodies(file.doc.build).forEach((body, i) => {
      blocks.builds.push({ body, file, start: starts[i] ?? 0, end: starts[i + 1] ?? file.text.length });
    });
  }
  return blocks;
}

/** A scope whose locals may refer to each other in any order; each evaluated once, cycles reported. */
function localsScope(
  scope: HclScope,
  localDefs: ReadonlyMap<string, { expr: unknown; where: string }>,
  problems: Located[],
): HclScope {
  const localValues = new Map<string, unknown>();
  const evaluating = new Set<string>();
  const withLocals: HclScope = {
    ...scope,
    resolveLocal: (name) => {
      if (localValues.has(name)) return localValues.get(name);
      const def = localDefs.get(name);
      if (!def) throw new HclEvalError(`local.${name} is not declared; add it to a locals block`);
      if (evaluating.has(name))
        throw new HclEvalError(`local.${name} refers to itself through ${[...evaluating].join(' -> ')}`);
      evaluating.add(name);
      try {
        const v = evaluateHcl(def.expr, withLocals);
        localValues.set(name, v);
        return v;
      } finally {
        evaluating.delete(name);
      }
    },
  };
  for (const [name, def] of localDefs) {
    try {
      withLocals.resolveLocal!(name);
    } catch (error) {
      problems.push({ location: def.where, message: `local "${name}": ${(error as Error).message}` });
    }
  }
  return withLocals;
}

const BUILD_KEYS = ['name', 'description', 'sources', 'source', 'provisioner', 'post-processor', 'post-processors'];

/** The selected amazon-chroot builds of one build block, with their provisioners and post-processors. */
function buildsOf(build: HclBuildBlock, sources: HclBlocks['sources'], context: StepContext): PackerBuild[] {
  const { options, problems } = context;
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
    if (!BUILD_KEYS.includes(key))
      problems.push({
        location: locate(build.file, new RegExp(`^\\s*${escapeRe(key)}\\b`, 'm'), build.start).where,
        message: `build block: "${key}" is not supported${key === 'error-cleanup-provisioner' ? ' (the build cleans up by itself)' : ''}; remove it`,
      });
  const out: PackerBuild[] = [];
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
    const { evaluated, config } = sourceConfig(src, rest, name, sourceName, context);
    if (!evaluated) continue;
    const stepContext = {
      ...context,
      scope: { ...context.scope, source: { name: sourceName, type: 'amazon-chroot' } },
    };
    const steps = (list: HclStepBlock[], kind: 'provisioner' | 'post-processor'): PackerStep[] =>
      list.filter((p) => stepApplies(p.body, names)).flatMap((p) => hclStep(p, kind, stepContext) ?? []);
    const built = {
      provisioners: steps(provisioners, 'provisioner'),
      postProcessors: steps(postProcessors, 'post-processor'),
    };
    if (config) out.push({ name: buildId, sourceName, ...(buildName ? { buildName } : {}), config, ...built });
  }
  return out;
}

/**
 * A source block with a build's overrides, evaluated and mapped to a BuildConfig, problems
 * located. A block that does not evaluate is skipped whole; one that does not map still has its
 * steps checked.
 */
function sourceConfig(
  src: { body: Record<string, unknown>; file: HclFile; offset: number },
  overrides: Record<string, unknown>,
  name: string,
  sourceName: string,
  { scope, options, problems }: StepContext,
): { evaluated: boolean; config?: BuildConfig } {
  const label = `source.amazon-chroot.${name}`;
  let body: Record<string, unknown>;
  try {
    body = evaluateHcl(
      { ...src.body, ...overrides },
      { ...scope, source: { name: sourceName, type: 'amazon-chroot' } },
    ) as Record<string, unknown>;
  } catch (error) {
    problems.push({
      location: locate(src.file, /x^/, src.offset).where,
      message: `${label}: ${(error as Error).message}`,
    });
    return { evaluated: false };
  }
  for (const key of BLOCK_ATTRIBUTES) {
    const v = body[key];
    if (Array.isArray(v) && v.length === 1 && isRecord(v[0])) body[key] = v[0];
  }
  try {
    return { evaluated: true, config: fromPackerConfig(body, options.env ? { env: options.env } : {}) };
  } catch (error) {
    problems.push(...relocate(error, src.file, src.offset, label));
    return { evaluated: true };
  }
}

/**
 * A supported step, evaluated once now with placeholders for the build data so its errors show
 * before the build starts, and again with the real data when it runs.
 */
function hclStep(
  s: HclStepBlock,
  kind: 'provisioner' | 'post-processor',
  { scope, options, problems, warnings }: StepContext,
): PackerStep | undefined {
  if (!checkStep(kind, s.type, s.where, options, problems, warnings)) return undefined;
  try {
    const placeholder = new Proxy({}, { get: (_, k) => `<build.${String(k)}>` });
    const settings = evaluateHcl(s.body, { ...scope, build: placeholder }) as Record<string, unknown>;
    for (const message of checkStepSettings(s.type, settings))
      problems.push({ location: s.where, message: `${kind} "${s.type}": ${message}` });
  } catch (error) {
    problems.push({ location: s.where, message: `${kind} "${s.type}": ${(error as Error).message}` });
  }
  return {
    type: s.type,
    location: s.where,
    settings: (data) => evaluateHcl(s.body, { ...scope, build: data }) as Record<string, unknown>,
  };
}
