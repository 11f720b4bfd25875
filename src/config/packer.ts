/**
 * Imports a Packer `amazon-chroot` builder block (JSON, snake_case) as a {@link BuildConfig}.
 * Packer's Go-template strings are kept as they are: they are this library's template syntax.
 */
import { ConfigError } from '../errors.js';
import type { ConfigIssue } from '../errors.js';
import { collectSecrets, redactIssues, withSecrets } from './redact.js';
import { withoutReservedKeys } from './reserved.js';
import { validateBuildConfig } from './schema.js';
import { didYouMean } from './suggest.js';
import type { BuildConfig } from './types.js';
import {
  DEREGISTRATION_KEYS,
  FILTER_KEYS,
  IGNORED,
  MAPPING_KEYS,
  OPTIONS,
  POLLING_KEYS,
  UNSUPPORTED,
} from './packer/options.js';
import { CONVERTERS, convertTagBlocks, goStringLiteral, isObject, issue, typeName } from './packer/values.js';
import type { ConvertCtx } from './packer/values.js';

/**
 * Options of {@link fromPackerConfig}.
 * @public
 */
export interface FromPackerConfigOptions {
  /**
   * Values for Packer's `user` template function (`{{user "name"}}` with backquotes). They win over the defaults in a whole template's `variables`
   * block and are inserted as literal text.
   */
  readonly variables?: Readonly<Record<string, string>>;
  /** Which builder to take when a whole template has several `amazon-chroot` builders: its `name`. */
  readonly builderName?: string;
  /** The environment for Packer's `env` template function in a template's variable defaults. @defaultValue `process.env` */
  readonly env?: NodeJS.ProcessEnv;
}

// --- Template selection and variables --------------------------------------------------------

const ENV_ACTION = /\{\{\s*env\s+(`[^`]*`|"(?:[^"\\]|\\.)*")\s*\}\}/g;

/** Picks the amazon-chroot builder out of a whole template, and its variables. */
function selectBuilder(
  json: Record<string, unknown>,
  options: FromPackerConfigOptions,
): { builder: Record<string, unknown>; defaults: Record<string, unknown>; path: string } {
  if (!('builders' in json)) return { builder: json, defaults: {}, path: '' };
  const builders = json.builders;
  if (!Array.isArray(builders))
    throw new ConfigError([
      { path: 'builders', value: builders, message: `must be a list of builders, got ${typeName(builders)}` },
    ]);
  const candidates = (builders as unknown[])
    .map((b, i) => [b, i] as const)
    .filter(
      ([b]) =>
        isObject(b) &&
        b.type === 'amazon-chroot' &&
        (options.builderName === undefined || b.name === options.builderName),
    );
  if (candidates.length !== 1) {
    const names = builders
      .filter((b) => isObject(b) && b.type === 'amazon-chroot')
      .map((b) => (b as Record<string, unknown>).name ?? '(unnamed)');
    const message =
      candidates.length === 0
        ? options.builderName === undefined
          ? 'has no "amazon-chroot" builder; pass the builder block itself, or a template that has one'
          : `has no "amazon-chroot" builder named ${JSON.stringify(options.builderName)} (found: ${names.map((n) => JSON.stringify(n)).join(', ') || 'none'})`
        : `has ${candidates.length} "amazon-chroot" builders (${names.map((n) => JSON.stringify(n)).join(', ')}); choose one with the builderName option`;
    throw new ConfigError([{ path: 'builders', value: names, message }]);
  }
  const [builder, index] = candidates[0]!;
  const defaults = isObject(json.variables) ? json.variables : {};
  return { builder: builder as Record<string, unknown>, defaults, path: `builders.${index}` };
}

function buildVariables(
  defaults: Record<string, unknown>,
  options: FromPackerConfigOptions,
): Map<string, { value: string; literal: boolean }> {
  const env = options.env ?? process.env;
  const variables = new Map<string, { value: string; literal: boolean }>();
  for (const [name, raw] of Object.entries(defaults)) {
    if (raw === null || raw === undefined) continue; // a required variable without a default
    // Packer allows env only in variable defaults.
    const value = (typeof raw === 'string' ? raw : JSON.stringify(raw)).replace(ENV_ACTION, (_, literal: string) => {
      const name = goStringLiteral(literal);
      return name !== undefined && Object.hasOwn(env, name) ? (env[name] ?? '') : '';
    });
    variables.set(name, { value, literal: false });
  }
  for (const [name, value] of Object.entries(options.variables ?? {})) variables.set(name, { value, literal: true });
  return variables;
}

// --- Issue translation ------------------------------------------------------------------------

const TO_PACKER: ReadonlyMap<string, string> = new Map(
  Object.entries(OPTIONS)
    .filter(([, m]) => m.kind !== 'tagBlocks')
    .map(([snake, m]) => [m.to as string, snake]),
);
const NESTED_TO_PACKER: Readonly<Record<string, ReadonlyMap<string, string>>> = {
  sourceAmiFilter: new Map(
    Object.entries(FILTER_KEYS)
      .filter(([k]) => k !== 'filter')
      .map(([s, c]) => [c, s]),
  ),
  amiBlockDeviceMappings: new Map(Object.entries(MAPPING_KEYS).map(([s, m]) => [m.to, s])),
  polling: new Map(Object.entries(POLLING_KEYS).map(([s, c]) => [c, s])),
  deregistrationProtection: new Map(Object.entries(DEREGISTRATION_KEYS).map(([s, c]) => [c, s])),
};
// Longest first, so "rootVolumeKmsKeyId" is replaced before "kmsKeyId".
const RENAMES = [...TO_PACKER.entries(), ...Object.values(NESTED_TO_PACKER).flatMap((m) => [...m.entries()])]
  .filter(([camel, snake]) => camel !== snake)
  .sort(([a], [b]) => b.length - a.length);

/** Rewrites an issue about the converted BuildConfig in the Packer names the user wrote. */
function toPackerIssue(i: ConfigIssue, prefix: string): ConfigIssue {
  const [head = '', ...rest] = i.path.split('.');
  const nested = NESTED_TO_PACKER[head];
  const tail = rest.map((segment) => nested?.get(segment) ?? segment);
  const path = [prefix, TO_PACKER.get(head) ?? head, ...tail].filter((s) => s !== '').join('.');
  let message = i.message;
  for (const [camel, snake] of RENAMES) message = message.replace(new RegExp(`\\b${camel}\\b`, 'g'), snake);
  return i.value === undefined ? { path, message } : { path, value: i.value, message };
}

// --- Entry point ------------------------------------------------------------------------------

/**
 * Imports a Packer `amazon-chroot` builder block, exactly as Packer users write it (snake_case
 * JSON), as a {@link BuildConfig}.
 *
 * @remarks
 * Accepts the builder object (with or without `"type": "amazon-chroot"`), a JSON string of it, or
 * a whole JSON template (the `amazon-chroot` builder is picked, its `variables` are the defaults of
 * the `user` template function). Values are decoded weakly, as Packer does (`"true"`, `"15"`); `""` means unset;
 * `tag`/`snapshot_tag`/`root_volume_tag` blocks merge into the maps (blocks win); source filter
 * values are split as CSV lines; `chroot_mounts: []` means Packer's defaults; `aws_polling` becomes
 * `polling` (seconds to milliseconds). Template strings are kept: they are this library's syntax.
 * The result is validated, and problems name the Packer options.
 *
 * @example
 * ```ts
 * import { readFile } from 'node:fs/promises';
 * import { buildAmi, fromPackerConfig } from 'ami-chroot';
 *
 * // A whole Packer JSON template, or just its amazon-chroot builder block.
 * const config = fromPackerConfig(await readFile('template.json', 'utf8'), { variables: { region: 'us-east-2' } });
 * const result = await buildAmi(config, async (chroot) => {
 *   await chroot.sh('apt-get update && apt-get install -y nginx'); // the template's shell provisioner
 * });
 * console.log(result.images); // { 'us-east-2': 'ami-0…' }
 * ```
 * @param json - the builder block, its JSON text, or a whole template
 * @param options - user variables and builder selection
 * @throws {@link ConfigError} listing every problem: unknown keys (with a "did you mean"),
 * unsupported options (with the alternative), unresolved user variables, invalid values.
 * @public
 */
export function fromPackerConfig(json: unknown, options: FromPackerConfigOptions = {}): BuildConfig {
  const optionIssues = checkOptions(options);
  let parsed: unknown = json;
  if (typeof json === 'string') {
    try {
      parsed = JSON.parse(json) as unknown;
    } catch {
      // convert() reports it.
    }
  }
  const secrets = collectSecrets([parsed, optionIssues.length === 0 ? options.variables : undefined]);
  try {
    if (optionIssues.length > 0) throw new ConfigError(optionIssues);
    return withSecrets(secrets, () => convert(json, options));
  } catch (error) {
    // Rebuilt without a cause: a JSON syntax error's message quotes the text, secrets included.
    if (error instanceof ConfigError) throw new ConfigError(redactIssues(error.issues, secrets));
    throw error;
  }
}

/** Checks fromPackerConfig's options: user variables must be strings. */
function checkOptions(options: unknown): ConfigIssue[] {
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    return [
      { path: 'options', message: `must be an object { variables, builderName, env }, got ${typeName(options)}` },
    ];
  const { variables, builderName, env } = options as Record<string, unknown>;
  const issues: ConfigIssue[] = [];
  if (variables !== undefined) {
    if (!isObject(variables))
      issues.push({
        path: 'options.variables',
        message: `must be an object of names to strings, got ${typeName(variables)}`,
      });
    else
      for (const [name, value] of Object.entries(variables))
        if (typeof value !== 'string')
          issues.push({
            path: `options.variables.${name}`,
            message: `must be a string, got ${typeName(value)}; Packer variables are strings (write String(value))`,
          });
  }
  if (builderName !== undefined && typeof builderName !== 'string')
    issues.push({ path: 'options.builderName', message: `must be a string, got ${typeName(builderName)}` });
  if (env !== undefined && !isObject(env))
    issues.push({ path: 'options.env', message: `must be an object like process.env, got ${typeName(env)}` });
  return issues;
}

function convert(json: unknown, options: FromPackerConfigOptions): BuildConfig {
  let input = json;
  if (typeof input === 'string') {
    try {
      input = JSON.parse(input) as unknown;
    } catch (error) {
      throw new ConfigError([
        {
          path: '',
          // Only the position: the parser's message quotes the text, which may hold secrets.
          message: `is not valid JSON (${/at position \d+(?: \(line \d+ column \d+\))?/.exec((error as Error).message)?.[0] ?? 'syntax error'}); pass the builder block as an object or JSON text`,
        },
      ]);
    }
  }
  if (!isObject(input))
    throw new ConfigError([
      { path: '', value: input, message: `must be a Packer amazon-chroot builder object, got ${typeName(input)}` },
    ]);
  const { builder: raw, defaults, path: prefix } = selectBuilder(input, options);
  const at = (key: string): string => (prefix ? `${prefix}.${key}` : key);
  const { value: clean, issues: reserved } = withoutReservedKeys(raw, (path) => at(path.join('.')));
  const builder = clean as Record<string, unknown>;
  const ctx: ConvertCtx = { issues: reserved, variables: buildVariables(defaults, options) };

  if (builder.type !== undefined && builder.type !== 'amazon-chroot') {
    throw new ConfigError([
      {
        path: at('type'),
        value: builder.type,
        message: `must be "amazon-chroot", got ${JSON.stringify(builder.type)}; ami-chroot imports only amazon-chroot builders`,
      },
    ]);
  }

  const out: Record<string, unknown> = {};
  const blockTags: Record<string, Record<string, string>> = {};
  for (const [key, value] of Object.entries(builder)) {
    const path = at(key);
    if (Object.hasOwn(IGNORED, key)) continue;
    if (Object.hasOwn(UNSUPPORTED, key)) {
      issue(ctx, path, value, UNSUPPORTED[key]!);
      continue;
    }
    if (!Object.hasOwn(OPTIONS, key)) {
      // didYouMean ignores case and "_", so a camelCase name finds its Packer name too.
      const suggestion = didYouMean(key, Object.keys(OPTIONS));
      issue(
        ctx,
        path,
        value,
        `is not an amazon-chroot option${suggestion ? `; did you mean \`${suggestion}\`?` : ''} (remove it${suggestion ? ' or rename it' : ''})`,
      );
      continue;
    }
    const { to, kind } = OPTIONS[key]!;
    if (kind === 'tagBlocks') {
      const tags = convertTagBlocks(value, path, ctx);
      if (tags) blockTags[to] = { ...blockTags[to], ...tags };
      continue;
    }
    const converted = CONVERTERS[kind](value, path, ctx);
    if (converted !== undefined) out[to] = converted;
  }
  // Repeatable tag blocks merge into the maps; a block wins over the map, as in Packer.
  for (const [to, tags] of Object.entries(blockTags))
    out[to] = { ...(out[to] as Record<string, string> | undefined), ...tags };

  // Value problems are reported next to conversion problems, except for options that failed to convert.
  const converted = ctx.issues.map((i) => i.path);
  const problems = validateBuildConfig(out)
    .map((p) => toPackerIssue(p, prefix))
    .filter((p) => !converted.some((c) => p.path === c || p.path.startsWith(`${c}.`) || c.startsWith(`${p.path}.`)));
  const all = [...ctx.issues, ...problems];
  if (all.length > 0) throw new ConfigError(all);
  return out as unknown as BuildConfig;
}
