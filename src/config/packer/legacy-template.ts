/**
 * Loads legacy JSON templates: `variables`, `builders` of type amazon-chroot, `provisioners` and
 * `post-processors`, with `{{user `x`}}` rendered as Packer does.
 */
import { readFile } from 'node:fs/promises';
import { fromPackerConfig } from '../packer.js';
import { HclEvalError, isRecord } from './hcl-expr.js';
import { checkStepSettings } from './provisioners.js';
import type { Located } from './variables.js';
import type { LoadPackerTemplateOptions, PackerBuild, PackerStep, PackerTemplate } from './types.js';
import {
  checkStep,
  escapeRe,
  fail,
  lineAt,
  locate,
  relocate,
  scalar,
  selected,
  stepApplies,
} from './template-common.js';
import type { SourceFile } from './template-common.js';

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

/** What a legacy template's builders and steps are rendered with. */
interface LegacyContext {
  readonly file: SourceFile;
  readonly resolved: Readonly<Record<string, string>>;
  readonly env: NodeJS.ProcessEnv;
  readonly options: LoadPackerTemplateOptions;
  readonly problems: Located[];
  readonly warnings: string[];
}

/** Loads a legacy JSON template already parsed. @internal */
export async function loadLegacy(
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
  const env = options.env ?? process.env;
  const resolved = await legacyVariables(file, json, options, env, problems);
  const sensitiveNames = Array.isArray(json['sensitive-variables']) ? json['sensitive-variables'].map(String) : [];
  if (problems.length > 0) fail(problems);

  const builders = Array.isArray(json.builders) ? json.builders : [];
  if (builders.length === 0) fail([{ location: path, message: 'has no "builders"; add an amazon-chroot builder' }]);
  const context: LegacyContext = { file, resolved, env, options, problems, warnings };
  const out = builders.flatMap((b: unknown, index) => legacyBuild(b, index, builders, json, context) ?? []);
  if (problems.length > 0) fail(problems);
  return {
    path,
    format: 'json',
    builds: out,
    warnings,
    sensitiveValues: sensitiveNames.map((n) => resolved[n] ?? '').filter((v) => v !== ''),
  };
}

/** The declared variables' values: -var and var files (declared names only), else the default. */
async function legacyVariables(
  file: SourceFile,
  json: Record<string, unknown>,
  options: LoadPackerTemplateOptions,
  env: NodeJS.ProcessEnv,
  problems: Located[],
): Promise<Record<string, string>> {
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
  return resolved;
}

/** One selected amazon-chroot builder with the provisioners and post-processors that apply to it. */
function legacyBuild(
  b: unknown,
  index: number,
  builders: readonly unknown[],
  json: Record<string, unknown>,
  context: LegacyContext,
): PackerBuild | undefined {
  const { file, resolved, env, options, problems } = context;
  if (!isRecord(b)) return undefined;
  const type = String(b.type);
  const name = typeof b.name === 'string' ? b.name : type;
  // The line of this builder: the n-th "type" of its type in the text.
  const offset =
    [...file.text.matchAll(/"type"\s*:\s*"([^"]*)"/g)].filter((m) => m[1] === type)[
      builders.filter((x: unknown, i) => i < index && isRecord(x) && x.type === type).length
    ]?.index ?? 0;
  if (!selected([name], options)) return undefined;
  if (type !== 'amazon-chroot') {
    problems.push({
      location: `${file.path}:${lineAt(file.text, offset)}`,
      message: `builder "${name}" of type "${type}" is not supported: ami-chroot builds only amazon-chroot; remove it, or exclude it with --except ${name}`,
    });
    return undefined;
  }
  let config;
  try {
    config = fromPackerConfig(b, { variables: resolved, env });
  } catch (error) {
    problems.push(...relocate(error, file, offset, `builders.${index}`));
  }
  const provisioners = Array.isArray(json.provisioners) ? (json.provisioners as unknown[]) : [];
  const posts = (Array.isArray(json['post-processors']) ? (json['post-processors'] as unknown[]) : []).flatMap(
    (p: unknown) => (Array.isArray(p) ? (p as unknown[]) : [p]),
  );
  const provisionSteps = provisioners.flatMap((p, i) => legacyStep(p, i, 'provisioner', name, context) ?? []);
  const postSteps = posts.flatMap((p, i) => legacyStep(p, i, 'post-processor', name, context) ?? []);
  return config
    ? { name, sourceName: name, config, provisioners: provisionSteps, postProcessors: postSteps }
    : undefined;
}

/**
 * A step that applies to builder `name`, with its `override` for it, rendered once now (so its
 * errors show before the build) and again with the build data when it runs.
 */
function legacyStep(
  p: unknown,
  i: number,
  kind: 'provisioner' | 'post-processor',
  name: string,
  { file, resolved, options, problems, warnings }: LegacyContext,
): PackerStep | undefined {
  if (!isRecord(p)) return undefined;
  const stepType = String(p.type);
  const at = locate(
    file,
    new RegExp(`"type"\\s*:\\s*"${escapeRe(stepType)}"`),
    file.text.indexOf(kind === 'provisioner' ? '"provisioners"' : '"post-processors"'),
  );
  const where = `${at.where} (${kind}s.${i})`;
  if (!stepApplies(p, [name])) return undefined;
  if (!checkStep(kind, stepType, where, options, problems, warnings)) return undefined;
  const { type: _t, override, ...rest } = p;
  const body = isRecord(override) && isRecord(override[name]) ? { ...rest, ...override[name] } : rest;
  try {
    const settings = renderLegacy(body, resolved, {}, { name }) as Record<string, unknown>;
    for (const message of checkStepSettings(stepType, settings))
      problems.push({ location: where, message: `${kind} "${stepType}": ${message}` });
  } catch (error) {
    problems.push({ location: where, message: (error as Error).message });
  }
  return {
    type: stepType,
    location: where,
    settings: (data) => renderLegacy(body, resolved, data, { name }) as Record<string, unknown>,
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
