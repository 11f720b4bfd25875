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

type Kind =
  | 'string'
  | 'template'
  | 'bool'
  | 'int'
  | 'strings'
  | 'templates'
  | 'stringMap'
  | 'tagMap'
  | 'tagBlocks'
  | 'partition'
  | 'mounts'
  | 'mappings'
  | 'filter'
  | 'polling'
  | 'deregistration';

interface Mapped {
  readonly to: keyof BuildConfig;
  readonly kind: Kind;
}

/** Packer option → BuildConfig option. */
const OPTIONS: Readonly<Record<string, Mapped>> = {
  access_key: { to: 'accessKey', kind: 'string' },
  secret_key: { to: 'secretKey', kind: 'string' },
  token: { to: 'token', kind: 'string' },
  region: { to: 'region', kind: 'string' },
  profile: { to: 'profile', kind: 'string' },
  mfa_code: { to: 'mfaCode', kind: 'string' },
  custom_endpoint_ec2: { to: 'customEndpointEc2', kind: 'string' },
  insecure_skip_tls_verify: { to: 'insecureSkipTlsVerify', kind: 'bool' },
  max_retries: { to: 'maxRetries', kind: 'int' },
  decode_authorization_messages: { to: 'decodeAuthorizationMessages', kind: 'bool' },
  skip_metadata_api_check: { to: 'skipMetadataApiCheck', kind: 'bool' },
  skip_region_validation: { to: 'skipRegionValidation', kind: 'bool' },
  aws_polling: { to: 'polling', kind: 'polling' },

  source_ami: { to: 'sourceAmi', kind: 'string' },
  source_ami_filter: { to: 'sourceAmiFilter', kind: 'filter' },

  ami_name: { to: 'amiName', kind: 'template' },
  ami_description: { to: 'amiDescription', kind: 'template' },
  ami_virtualization_type: { to: 'amiVirtualizationType', kind: 'string' },
  ami_architecture: { to: 'amiArchitecture', kind: 'string' },
  ami_users: { to: 'amiUsers', kind: 'strings' },
  ami_groups: { to: 'amiGroups', kind: 'strings' },
  ami_org_arns: { to: 'amiOrgArns', kind: 'strings' },
  ami_ou_arns: { to: 'amiOuArns', kind: 'strings' },
  ami_product_codes: { to: 'amiProductCodes', kind: 'strings' },
  ami_regions: { to: 'amiRegions', kind: 'strings' },
  region_kms_key_ids: { to: 'regionKmsKeyIds', kind: 'stringMap' },
  encrypt_boot: { to: 'encryptBoot', kind: 'bool' },
  kms_key_id: { to: 'kmsKeyId', kind: 'string' },
  skip_save_build_region: { to: 'skipSaveBuildRegion', kind: 'bool' },
  force_deregister: { to: 'forceDeregister', kind: 'bool' },
  force_delete_snapshot: { to: 'forceDeleteSnapshot', kind: 'bool' },
  ena_support: { to: 'enaSupport', kind: 'bool' },
  sriov_support: { to: 'sriovSupport', kind: 'bool' },
  boot_mode: { to: 'bootMode', kind: 'string' },
  uefi_data: { to: 'uefiData', kind: 'string' },
  tpm_support: { to: 'tpmSupport', kind: 'string' },
  imds_support: { to: 'imdsSupport', kind: 'string' },
  deprecate_at: { to: 'deprecateAt', kind: 'string' },
  deregistration_protection: { to: 'deregistrationProtection', kind: 'deregistration' },
  snapshot_copy_duration_minutes: { to: 'snapshotCopyDurationMinutes', kind: 'int' },
  tags: { to: 'tags', kind: 'tagMap' },
  tag: { to: 'tags', kind: 'tagBlocks' },
  snapshot_tags: { to: 'snapshotTags', kind: 'tagMap' },
  snapshot_tag: { to: 'snapshotTags', kind: 'tagBlocks' },
  snapshot_users: { to: 'snapshotUsers', kind: 'strings' },
  snapshot_groups: { to: 'snapshotGroups', kind: 'strings' },

  ami_block_device_mappings: { to: 'amiBlockDeviceMappings', kind: 'mappings' },

  root_volume_size: { to: 'rootVolumeSize', kind: 'int' },
  root_volume_type: { to: 'rootVolumeType', kind: 'string' },
  root_volume_tags: { to: 'rootVolumeTags', kind: 'tagMap' },
  root_volume_tag: { to: 'rootVolumeTags', kind: 'tagBlocks' },
  root_volume_encrypt_boot: { to: 'rootVolumeEncryptBoot', kind: 'bool' },
  root_volume_kms_key_id: { to: 'rootVolumeKmsKeyId', kind: 'string' },
  root_device_name: { to: 'rootDeviceName', kind: 'string' },
  from_scratch: { to: 'fromScratch', kind: 'bool' },

  chroot_mounts: { to: 'chrootMounts', kind: 'mounts' },
  copy_files: { to: 'copyFiles', kind: 'strings' },
  command_wrapper: { to: 'commandWrapper', kind: 'template' },
  device_path: { to: 'devicePath', kind: 'string' },
  nvme_device_path: { to: 'nvmeDevicePath', kind: 'string' },
  mount_path: { to: 'mountPath', kind: 'template' },
  mount_partition: { to: 'mountPartition', kind: 'partition' },
  mount_options: { to: 'mountOptions', kind: 'strings' },
  pre_mount_commands: { to: 'preMountCommands', kind: 'templates' },
  post_mount_commands: { to: 'postMountCommands', kind: 'templates' },
};

/** Packer options that are accepted and have no effect here (with the reason, for the docs). */
const IGNORED: Readonly<Record<string, string>> = {
  type: 'the builder type',
  name: 'the builder name',
  skip_credential_validation: 'credentials are not checked up front here; the first AWS call does it',
};

/** Packer options this library cannot support, with what to do instead. */
const UNSUPPORTED: Readonly<Record<string, string>> = {
  vault_aws_engine:
    'Vault credentials are not supported; read them from Vault in your script and pass access_key/secret_key/token, or use a credential_process profile in ~/.aws/config',
  assume_role:
    'assume_role is not supported; configure a profile with role_arn (and source_profile) in ~/.aws/config and set profile, or assume the role in your script',
  shared_credentials_file:
    'shared_credentials_file is not supported; set AWS_SHARED_CREDENTIALS_FILE in the environment (and profile if needed)',
};

const MAPPING_KEYS: Readonly<Record<string, { to: string; kind: 'string' | 'bool' | 'int' }>> = {
  device_name: { to: 'deviceName', kind: 'string' },
  delete_on_termination: { to: 'deleteOnTermination', kind: 'bool' },
  encrypted: { to: 'encrypted', kind: 'bool' },
  kms_key_id: { to: 'kmsKeyId', kind: 'string' },
  iops: { to: 'iops', kind: 'int' },
  throughput: { to: 'throughput', kind: 'int' },
  no_device: { to: 'noDevice', kind: 'bool' },
  snapshot_id: { to: 'snapshotId', kind: 'string' },
  virtual_name: { to: 'virtualName', kind: 'string' },
  volume_size: { to: 'volumeSize', kind: 'int' },
  volume_type: { to: 'volumeType', kind: 'string' },
};
const FILTER_KEYS: Readonly<Record<string, string>> = {
  filters: 'filters',
  filter: 'filters',
  owners: 'owners',
  most_recent: 'mostRecent',
  include_deprecated: 'includeDeprecated',
};
const POLLING_KEYS: Readonly<Record<string, string>> = { delay_seconds: 'delayMs', max_attempts: 'maxAttempts' };
const DEREGISTRATION_KEYS: Readonly<Record<string, string>> = { enabled: 'enabled', with_cooldown: 'withCooldown' };
const SECRET_KEYS = new Set(['access_key', 'secret_key', 'token', 'mfa_code']);

// --- Conversion context ---------------------------------------------------------------------

interface Ctx {
  readonly issues: ConfigIssue[];
  readonly variables: ReadonlyMap<string, { value: string; literal: boolean }>;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const typeName = (x: unknown): string =>
  x === null ? 'null' : Array.isArray(x) ? 'an array' : typeof x === 'object' ? 'an object' : `a ${typeof x}`;

function issue(ctx: Ctx, path: string, value: unknown, message: string): undefined {
  // The path may start with "builders.N." when a whole template was given.
  ctx.issues.push({
    path,
    value: path.split('.').some((segment) => SECRET_KEYS.has(segment)) ? '[redacted]' : value,
    message,
  });
  return undefined;
}

/** The text of a `raw` or "quoted" literal; undefined when its escapes are not valid. */
function goStringLiteral(literal: string): string | undefined {
  if (literal.startsWith('`')) return literal.slice(1, -1);
  try {
    const value = JSON.parse(literal) as unknown;
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** A Go string literal for text that must stay literal inside a template action. */
const goLiteral = (text: string): string => JSON.stringify(text);

const USER_ACTION = /\{\{(-?)(\s*)user\s+(`[^`]*`|"(?:[^"\\]|\\.)*")(\s*(?:\|[^}]*?)?)(\s*)(-?)\}\}/g;

/**
 * Replaces `{{user \`name\`}}` with the variable's value. In a template option a value that could
 * be read as template syntax (or a piped/trimmed action) becomes a quoted literal action, so it
 * renders verbatim; elsewhere the value is the text.
 */
function substituteUser(text: string, path: string, ctx: Ctx, template: boolean): string | undefined {
  let failed = false;
  const out = text.replace(
    USER_ACTION,
    (whole, trimL: string, _s1: string, nameLiteral: string, pipe: string, _s2: string, trimR: string) => {
      const name = goStringLiteral(nameLiteral);
      if (name === undefined) {
        failed = true;
        issue(
          ctx,
          path,
          text,
          `has a bad escape in the user variable name ${nameLiteral}; write the name without backslashes`,
        );
        return whole;
      }
      const variable = ctx.variables.get(name);
      if (variable === undefined) {
        failed = true;
        issue(
          ctx,
          path,
          text,
          `uses user variable \`${name}\`, which has no value; pass it: fromPackerConfig(json, { variables: { ${JSON.stringify(name)}: '...' } })`,
        );
        return whole;
      }
      const plain = pipe.trim() === '' && trimL === '' && trimR === '';
      const braces = variable.value.includes('{{') || variable.value.includes('}}');
      // A template default from the template's variables block stays template text (Packer renders it too).
      if (plain && (!braces || !variable.literal || !template)) return variable.value;
      if (!template) {
        failed = true;
        issue(
          ctx,
          path,
          text,
          'is not a template option here, so user variables can only stand alone in it; write the value in',
        );
        return whole;
      }
      return `{{${trimL} ${goLiteral(variable.value)}${pipe} ${trimR}}}`;
    },
  );
  return failed ? undefined : out;
}

/** Converts one string option: user variables substituted, "" meaning unset (as in Packer). */
function convertString(value: unknown, path: string, ctx: Ctx, template: boolean): string | undefined {
  if (typeof value === 'number' || typeof value === 'boolean') value = String(value);
  if (typeof value !== 'string') return issue(ctx, path, value, `must be a string, got ${typeName(value)}`);
  const text = substituteUser(value, path, ctx, template);
  if (text === undefined) return undefined;
  if (!template && /\{\{/.test(text)) {
    return issue(
      ctx,
      path,
      text,
      'is not a template option here; write the value itself (user variables are substituted, other functions are not)',
    );
  }
  return text;
}

const GO_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const GO_FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** Packer decodes weakly: "true", "1" and 1 are booleans (Go's ParseBool); "" is unset. */
function convertBool(value: unknown, path: string, ctx: Ctx): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 0 || value === 1) return value === 1;
  if (typeof value !== 'string') return issue(ctx, path, value, `must be true or false, got ${typeName(value)}`);
  const text = convertString(value, path, ctx, false);
  if (text === undefined || text === '') return undefined;
  if (GO_TRUE.has(text)) return true;
  if (GO_FALSE.has(text)) return false;
  return issue(ctx, path, value, `must be true or false, got ${JSON.stringify(text)}`);
}

function convertInt(value: unknown, path: string, ctx: Ctx): number | undefined {
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return value;
    return issue(ctx, path, value, `must be a whole number, got ${value}`);
  }
  if (typeof value === 'string') {
    const text = convertString(value, path, ctx, false);
    if (text === undefined) return undefined;
    if (text === '') return undefined;
    if (/^-?\d+$/.test(text.trim())) return Number(text);
    return issue(ctx, path, value, `must be a whole number, got ${JSON.stringify(text)}`);
  }
  return issue(ctx, path, value, `must be a whole number, got ${typeName(value)}`);
}

function convertStrings(value: unknown, path: string, ctx: Ctx, template: boolean): string[] | undefined {
  // Weak decoding turns one value into a list of one.
  const list = Array.isArray(value)
    ? value
    : typeof value === 'string' || typeof value === 'number'
      ? [value]
      : undefined;
  if (list === undefined) return issue(ctx, path, value, `must be a list of strings, got ${typeName(value)}`);
  const out: string[] = [];
  list.forEach((item, i) => {
    const text = convertString(item, `${path}.${i}`, ctx, template);
    if (text !== undefined) out.push(text);
  });
  return out;
}

function convertStringMap(
  value: unknown,
  path: string,
  ctx: Ctx,
  template: boolean,
): Record<string, string> | undefined {
  if (!isObject(value)) return issue(ctx, path, value, `must be an object of names to strings, got ${typeName(value)}`);
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string' && typeof item !== 'number' && typeof item !== 'boolean') {
      issue(ctx, `${path}.${key}`, item, `must be a string, got ${typeName(item)}`);
      continue;
    }
    const text = substituteUser(String(item), `${path}.${key}`, ctx, template);
    if (text !== undefined) out[key] = text;
  }
  return out;
}

/** `tag { key = "k" value = "v" }` blocks, in their JSON form: a list of { key, value }. */
function convertTagBlocks(value: unknown, path: string, ctx: Ctx): Record<string, string> | undefined {
  const list = Array.isArray(value) ? value : [value];
  const out: Record<string, string> = {};
  list.forEach((block, i) => {
    const p = Array.isArray(value) ? `${path}.${i}` : path;
    if (
      !isObject(block) ||
      typeof block.key !== 'string' ||
      !('value' in block) ||
      Object.keys(block).some((k) => k !== 'key' && k !== 'value')
    ) {
      issue(ctx, p, block, 'must be a block { "key": "...", "value": "..." }');
      return;
    }
    const text = substituteUser(String(block.value), `${p}.value`, ctx, true);
    if (text !== undefined) out[block.key] = text;
  });
  return out;
}

/** Go's encoding/csv for one line: commas separate fields, a quoted field may contain commas and "". */
function parseCsvLine(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      while (i < line.length) {
        if (line[i] === '"' && line[i + 1] === '"') {
          field += '"';
          i += 2;
        } else if (line[i] === '"') {
          i++;
          break;
        } else field += line[i++];
      }
      while (i < line.length && line[i] !== ',') field += line[i++];
    } else {
      while (i < line.length && line[i] !== ',') field += line[i++];
    }
    fields.push(field);
    if (line[i] !== ',') return fields;
    i++;
  }
}

/** Reports unknown keys of a nested block with a suggestion. */
function unknownKey(ctx: Ctx, path: string, key: string, value: unknown, known: readonly string[]): void {
  const suggestion = didYouMean(key, known);
  issue(
    ctx,
    path,
    value,
    `is not an option${suggestion ? `; did you mean \`${suggestion}\`?` : ''} (known: ${known.join(', ')})`,
  );
}

function convertFilter(value: unknown, path: string, ctx: Ctx): BuildConfig['sourceAmiFilter'] | undefined {
  if (!isObject(value))
    return issue(ctx, path, value, `must be an object { filters, owners, most_recent }, got ${typeName(value)}`);
  const filters: Record<string, string[]> = {};
  const out: {
    filters?: Record<string, string[]>;
    owners?: string[];
    mostRecent?: boolean;
    includeDeprecated?: boolean;
  } = {};
  for (const [key, raw] of Object.entries(value)) {
    const p = `${path}.${key}`;
    if (key === 'filters') {
      if (!isObject(raw)) {
        issue(ctx, p, raw, `must be an object of DescribeImages filter names to values, got ${typeName(raw)}`);
        continue;
      }
      for (const [name, filterValue] of Object.entries(raw)) {
        if (Array.isArray(filterValue)) {
          const values = convertStrings(filterValue, `${p}.${name}`, ctx, false);
          if (values) filters[name] = [...(filters[name] ?? []), ...values];
        } else {
          const text = convertString(filterValue, `${p}.${name}`, ctx, false);
          // Packer reads each value as one CSV line, so "a,b" is two values.
          if (text !== undefined) filters[name] = [...(filters[name] ?? []), ...parseCsvLine(text)];
        }
      }
    } else if (key === 'filter') {
      // Packer 1.6's repeatable filter { name, value } blocks.
      const blocks = Array.isArray(raw) ? raw : [raw];
      blocks.forEach((block, i) => {
        if (!isObject(block) || typeof block.name !== 'string' || typeof block.value !== 'string') {
          issue(ctx, `${p}.${i}`, block, 'must be a block { "name": "...", "value": "..." }');
          return;
        }
        const text = convertString(block.value, `${p}.${i}.value`, ctx, false);
        if (text !== undefined) filters[block.name] = [...(filters[block.name] ?? []), text];
      });
    } else if (key === 'owners') {
      const owners = convertStrings(raw, p, ctx, false);
      if (owners) out.owners = owners;
    } else if (key === 'most_recent' || key === 'include_deprecated') {
      const flag = convertBool(raw, p, ctx);
      if (flag !== undefined) out[key === 'most_recent' ? 'mostRecent' : 'includeDeprecated'] = flag;
    } else
      unknownKey(
        ctx,
        p,
        key,
        raw,
        Object.keys(FILTER_KEYS).filter((k) => k !== 'filter'),
      );
  }
  if (Object.keys(filters).length > 0) out.filters = filters;
  return out;
}

function convertMappings(value: unknown, path: string, ctx: Ctx): Record<string, unknown>[] | undefined {
  if (!Array.isArray(value))
    return issue(ctx, path, value, `must be a list of block device mappings, got ${typeName(value)}`);
  return value.map((raw, i) => {
    const p = `${path}.${i}`;
    const out: Record<string, unknown> = {};
    if (!isObject(raw)) {
      issue(ctx, p, raw, `must be an object describing one block device, got ${typeName(raw)}`);
      return out;
    }
    for (const [key, item] of Object.entries(raw)) {
      const spec = Object.hasOwn(MAPPING_KEYS, key) ? MAPPING_KEYS[key] : undefined;
      if (!spec) {
        unknownKey(ctx, `${p}.${key}`, key, item, Object.keys(MAPPING_KEYS));
        continue;
      }
      const at = `${p}.${key}`;
      const converted =
        spec.kind === 'bool'
          ? convertBool(item, at, ctx)
          : spec.kind === 'int'
            ? convertInt(item, at, ctx)
            : convertString(item, at, ctx, false);
      if (converted !== undefined && converted !== '') out[spec.to] = converted;
    }
    return out;
  });
}

function convertMounts(value: unknown, path: string, ctx: Ctx): string[][] | undefined {
  if (!Array.isArray(value))
    return issue(ctx, path, value, `must be a list of [fstype, source, target] triples, got ${typeName(value)}`);
  return value.map((entry, i) => {
    if (!Array.isArray(entry)) {
      issue(ctx, `${path}.${i}`, entry, 'each chroot_mounts entry should be three elements: [fstype, source, target]');
      return [];
    }
    return entry.map((part, j) => convertString(part, `${path}.${i}.${j}`, ctx, false) ?? '');
  });
}

function convertNested(
  value: unknown,
  path: string,
  ctx: Ctx,
  keys: Readonly<Record<string, string>>,
  what: string,
): Record<string, unknown> | undefined {
  if (!isObject(value)) return issue(ctx, path, value, `must be ${what}, got ${typeName(value)}`);
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(value)) {
    if (!Object.hasOwn(keys, key)) {
      unknownKey(ctx, `${path}.${key}`, key, raw, Object.keys(keys));
      continue;
    }
    const p = `${path}.${key}`;
    const converted = key === 'enabled' || key === 'with_cooldown' ? convertBool(raw, p, ctx) : convertInt(raw, p, ctx);
    if (typeof converted === 'number' && converted <= 0) {
      issue(ctx, p, raw, `must be a positive whole number, got ${converted}`);
      continue;
    }
    if (converted !== undefined) out[keys[key]!] = key === 'delay_seconds' ? (converted as number) * 1000 : converted;
  }
  return out;
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
  const ctx: Ctx = { issues: reserved, variables: buildVariables(defaults, options) };

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
    let converted: unknown;
    switch (kind) {
      case 'string':
      case 'template': {
        const text = convertString(value, path, ctx, kind === 'template');
        converted = text === '' ? undefined : text;
        break;
      }
      case 'bool':
        converted = convertBool(value, path, ctx);
        break;
      case 'int':
        converted = convertInt(value, path, ctx);
        break;
      case 'strings':
      case 'templates':
        converted = convertStrings(value, path, ctx, kind === 'templates');
        break;
      case 'stringMap':
        converted = convertStringMap(value, path, ctx, false);
        break;
      case 'tagMap':
        converted = convertStringMap(value, path, ctx, true);
        break;
      case 'tagBlocks': {
        const tags = convertTagBlocks(value, path, ctx);
        if (tags) blockTags[to] = { ...blockTags[to], ...tags };
        continue;
      }
      case 'partition': {
        const text =
          typeof value === 'number' && Number.isInteger(value) ? String(value) : convertString(value, path, ctx, false);
        converted = text === '' ? undefined : text;
        break;
      }
      case 'mounts': {
        const mounts = convertMounts(value, path, ctx);
        // In Packer an empty list means the defaults.
        converted = mounts && mounts.length > 0 ? mounts : undefined;
        break;
      }
      case 'mappings':
        converted = convertMappings(value, path, ctx);
        break;
      case 'filter':
        converted = convertFilter(value, path, ctx);
        break;
      case 'polling':
        converted = convertNested(value, path, ctx, POLLING_KEYS, 'an object { delay_seconds, max_attempts }');
        break;
      case 'deregistration':
        converted = convertNested(value, path, ctx, DEREGISTRATION_KEYS, 'an object { enabled, with_cooldown }');
        break;
    }
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
