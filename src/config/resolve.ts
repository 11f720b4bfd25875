/**
 * From a user's {@link BuildConfig} to a {@link ResolvedConfig}: validate everything (one
 * ConfigError with every problem), fill in Packer's defaults and ours, read the polling
 * environment variables, compile the templates.
 */
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { ConfigError } from '../errors.js';
import type { PollingConfig } from '../types.js';
import { mountPointProblem } from './rules/paths.js';
import { amiNameProblem, chrootMountSpec, validateBuildConfig } from './schema.js';
import { TEMPLATE_SCOPES, compileTemplate } from './templates.js';
import type {
  BuildConfig,
  ChrootMountSpec,
  CompiledTemplate,
  ResolvedConfig,
  StaticCredentials,
  Template,
} from './types.js';
import { DEFAULT_CACHE_DIR, DEFAULT_LOCK_DIR } from '../host/defaults.js';
import { DEFAULT_CHROOT_MOUNTS, DEFAULT_COPY_FILES } from '../chroot/defaults.js';

/** Packer's mount path default; kept so imported builds behave the same. */
const DEFAULT_MOUNT_PATH = '/mnt/packer-amazon-chroot-volumes/{{.Device}}';
/** Packer's AWS_TIMEOUT_SECONDS fallback delay when only a timeout is given. */
const TIMEOUT_ONLY_DELAY_SECONDS = 2;

/**
 * Identity helper for typed config files: `export default defineConfig({ ... })`.
 *
 * @example
 * ```ts
 * // ami.config.ts: typed, checked by the compiler; load it and pass it to buildAmi.
 * import { defineConfig } from 'ami-chroot';
 *
 * export default defineConfig({
 *   sourceAmiFilter: { filters: { name: 'debian-12-amd64-*' }, owners: ['136693071363'], mostRecent: true },
 *   amiName: 'web {{ isotime "2006-01-02" }} {{timestamp}}',
 *   amiRegions: ['eu-west-1'],
 *   tags: { Source: '{{ .SourceAMIName }}' },
 * });
 * ```
 * @param config - the build configuration
 * @returns the same object
 * @public
 */
export function defineConfig(config: BuildConfig): BuildConfig {
  return config;
}

/**
 * Checks a rendered AMI name: 3–128 characters of `A-Za-z0-9()[] ./-'@_`.
 *
 * @example
 * ```ts
 * import { ConfigError, validateAmiName } from 'ami-chroot';
 *
 * validateAmiName('web 2026-01-01 (nginx)'); // fine: returns nothing
 * try {
 *   validateAmiName('web: nginx');
 * } catch (error) {
 *   if (!(error instanceof ConfigError)) throw error;
 *   console.error(error.issues[0]?.message);
 *   // may only contain letters, digits and ()[] ./-'@_, got "web: nginx" (bad: ":"); pipe dynamic parts through clean_resource_name, …
 * }
 * ```
 * @param name - the rendered name
 * @throws {@link ConfigError} naming the value and recommending `clean_resource_name`.
 * @public
 */
export function validateAmiName(name: string): void {
  const problem = typeof name === 'string' ? amiNameProblem(name) : `must be a string, got ${typeof name}`;
  if (problem !== undefined) throw new ConfigError([{ path: 'amiName', value: name, message: problem }]);
}

/** Static credentials whose secret parts never print. */
function staticCredentials(
  accessKeyId: string,
  secretAccessKey: string,
  sessionToken: string | undefined,
): StaticCredentials {
  const shown = {
    accessKeyId,
    secretAccessKey: '[redacted]',
    ...(sessionToken === undefined ? {} : { sessionToken: '[redacted]' }),
  };
  const credentials = { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }) };
  Object.defineProperties(credentials, {
    toJSON: { value: () => shown },
    [inspect.custom]: { value: () => shown },
  });
  return Object.freeze(credentials);
}

/** Reads one positive integer from the environment; anything else is ignored with a warning (as Packer). */
function envInt(env: NodeJS.ProcessEnv, name: string, warnings: string[]): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^\s*\d+\s*$/.test(raw) || Number(raw) <= 0) {
    warnings.push(`${name}=${JSON.stringify(raw)} is not a positive integer and was ignored.`);
    return undefined;
  }
  return Number(raw);
}

/**
 * Polling from the config, else Packer's environment variables: AWS_POLL_DELAY_SECONDS (fixed
 * delay), AWS_MAX_ATTEMPTS (attempts), and the deprecated AWS_TIMEOUT_SECONDS (attempts =
 * timeout / delay, the delay 2 s unless set). Values that are not positive integers are ignored with
 * a warning, as Packer does, because the environment is shared by everything the process runs.
 */
function resolvePolling(config: PollingConfig | undefined, env: NodeJS.ProcessEnv, warnings: string[]): PollingConfig {
  const envDelaySeconds = envInt(env, 'AWS_POLL_DELAY_SECONDS', warnings);
  const envAttempts = envInt(env, 'AWS_MAX_ATTEMPTS', warnings);
  const envTimeoutSeconds = envInt(env, 'AWS_TIMEOUT_SECONDS', warnings);
  let delayMs = config?.delayMs ?? (envDelaySeconds === undefined ? undefined : envDelaySeconds * 1000);
  let maxAttempts = config?.maxAttempts ?? envAttempts;
  if (envTimeoutSeconds !== undefined) {
    if (maxAttempts !== undefined) {
      warnings.push(
        'AWS_TIMEOUT_SECONDS is ignored because the maximum attempts are set (and it is deprecated: use AWS_MAX_ATTEMPTS).',
      );
    } else {
      delayMs ??= TIMEOUT_ONLY_DELAY_SECONDS * 1000;
      maxAttempts = Math.max(1, Math.ceil((envTimeoutSeconds * 1000) / delayMs));
      warnings.push(
        'AWS_TIMEOUT_SECONDS is deprecated; use AWS_MAX_ATTEMPTS and AWS_POLL_DELAY_SECONDS (or polling in the config).',
      );
    }
  }
  return Object.freeze({
    ...(delayMs === undefined ? {} : { delayMs }),
    ...(maxAttempts === undefined ? {} : { maxAttempts }),
    ...(config?.waits === undefined ? {} : { waits: config.waits }),
  });
}

const freezeList = <T>(list: readonly T[] | undefined): readonly T[] => Object.freeze([...(list ?? [])]);

function compileTags(
  option: string,
  tags: Readonly<Record<string, Template>> | undefined,
): Readonly<Record<string, CompiledTemplate>> {
  const out: Record<string, CompiledTemplate> = {};
  for (const [key, value] of Object.entries(tags ?? {})) {
    out[key] = compileTemplate(value, {
      path: `${option}.${key}`,
      allowed: TEMPLATE_SCOPES.buildData,
      check: (text) =>
        text.length > 256
          ? `must be at most 256 characters after rendering, got ${text.length}; shorten the tag value`
          : undefined,
    });
  }
  return Object.freeze(out);
}

/**
 * The regions to copy to once the build region is known: `amiRegions` without it.
 * @internal
 */
export function copyTargetRegions(config: Pick<ResolvedConfig, 'amiRegions'>, buildRegion: string): readonly string[] {
  return config.amiRegions.filter((r) => r !== buildRegion);
}

/**
 * Validates a build configuration and fills in every default.
 *
 * @remarks
 * Runs before any side effect. Defaults are Packer's (packer-chroot §5.1) plus ours: polling from
 * the config, else AWS_POLL_DELAY_SECONDS / AWS_MAX_ATTEMPTS (config wins; non-integers are ignored
 * with a warning, as in Packer); the region from the config, else AWS_REGION / AWS_DEFAULT_REGION
 * (else the build host's, found later); `amiRegions` deduplicated with the build region dropped.
 * Things that are valid but suspicious land in `warnings`.
 *
 * @example
 * ```ts
 * import { resolveConfig } from 'ami-chroot';
 *
 * const resolved = resolveConfig({
 *   sourceAmi: 'ami-0123456789abcdef0',
 *   amiName: 'web {{timestamp}}',
 *   region: 'us-east-1',
 *   amiRegions: ['us-east-1', 'eu-west-1'],
 * });
 * console.log(resolved.amiRegions, resolved.maxRetries); // [ 'eu-west-1' ] 10
 * console.log(resolved.warnings); // [ 'amiRegions lists the build region us-east-1; the AMI is built there, so it is not copied there.' ]
 * ```
 * @param input - the configuration
 * @param env - environment to read (AWS_REGION, AWS_DEFAULT_REGION, AWS_POLL_DELAY_SECONDS, AWS_MAX_ATTEMPTS, AWS_TIMEOUT_SECONDS) @defaultValue `process.env`
 * @returns the resolved, frozen configuration
 * @throws {@link ConfigError} listing every problem, each with the option path, the value and the fix.
 * @public
 */
export function resolveConfig(input: BuildConfig, env: NodeJS.ProcessEnv = process.env): ResolvedConfig {
  if (typeof env !== 'object' || env === null)
    throw new ConfigError([
      { path: 'env', message: `must be an object like process.env, got ${env === null ? 'null' : typeof env}` },
    ]);
  const issues = validateBuildConfig(input);
  if (issues.length > 0) throw new ConfigError(issues);
  const c = input;
  const scratch = c.fromScratch === true;
  const region = c.region ?? (env.AWS_REGION || undefined) ?? (env.AWS_DEFAULT_REGION || undefined);
  const warnings: string[] = [];
  const amiRegions = copyRegions(c, region, warnings);
  warnings.push(...configWarnings(c, scratch));
  const resolved: ResolvedConfig = {
    ...accessSettings(c, region),
    ...sourceSettings(c, scratch),
    ...imageSettings(c, amiRegions),
    ...volumeSettings(c, scratch),
    ...chrootSettings(c, scratch),
    polling: resolvePolling(c.polling, env, warnings),
    keepOnError: c.keepOnError ?? false,
    lockDir: c.lockDir ?? DEFAULT_LOCK_DIR,
    via: c.via ?? 'attach',
    cacheDir: c.cacheDir ?? DEFAULT_CACHE_DIR,
    buildId: c.buildId ?? randomUUID(),
    warnings: Object.freeze(warnings),
  };
  // Printing or serializing the config never shows the MFA code (credentials redact themselves).
  const printable = (): object => ({ ...resolved, mfaCode: resolved.mfaCode === undefined ? undefined : '[redacted]' });
  Object.defineProperties(resolved, { toJSON: { value: printable }, [inspect.custom]: { value: printable } });
  return Object.freeze(resolved);
}

/** The regions to copy to: each once, never the build region (each skip is a warning). */
function copyRegions(c: BuildConfig, region: string | undefined, warnings: string[]): string[] {
  const amiRegions: string[] = [];
  for (const r of c.amiRegions ?? []) {
    if (amiRegions.includes(r)) warnings.push(`amiRegions lists ${r} more than once; it is copied once.`);
    else if (r === region)
      warnings.push(`amiRegions lists the build region ${r}; the AMI is built there, so it is not copied there.`);
    else amiRegions.push(r);
  }
  return amiRegions;
}

/** Settings that are valid but probably not what was meant. */
function configWarnings(c: BuildConfig, scratch: boolean): string[] {
  const warnings: string[] = [];
  if (scratch && (c.sourceAmi !== undefined || c.sourceAmiFilter !== undefined)) {
    warnings.push('sourceAmi and sourceAmiFilter are ignored with fromScratch.');
  }
  if (!scratch && c.amiBlockDeviceMappings && c.amiBlockDeviceMappings.length > 0) {
    warnings.push("amiBlockDeviceMappings replace the source image's block device mappings completely.");
  }
  if (c.forceDeleteSnapshot === true && c.forceDeregister !== true) {
    warnings.push('forceDeleteSnapshot does nothing without forceDeregister.');
  }
  if (c.skipMetadataApiCheck === true)
    warnings.push('skipMetadataApiCheck is accepted for compatibility and ignored, as in Packer.');
  const mountPartition = c.mountPartition === undefined ? undefined : String(c.mountPartition);
  if (c.nvmeDevicePath !== undefined && /p\d+$/.test(c.nvmeDevicePath) && mountPartition !== '0') {
    warnings.push(
      `nvmeDevicePath ${c.nvmeDevicePath} already names a partition, and mountPartition ${mountPartition ?? '1'} is appended to it; end the path with "p" (e.g. /dev/nvme1n1p) or set mountPartition "0".`,
    );
  }
  return warnings;
}

/** Region, credentials and the AWS client's settings. */
function accessSettings(c: BuildConfig, region: string | undefined) {
  return {
    region,
    profile: c.profile,
    credentials:
      c.accessKey !== undefined && c.secretKey !== undefined
        ? staticCredentials(c.accessKey, c.secretKey, c.token)
        : undefined,
    mfaCode: c.mfaCode,
    customEndpointEc2: c.customEndpointEc2,
    insecureSkipTlsVerify: c.insecureSkipTlsVerify ?? false,
    maxRetries: c.maxRetries ?? 10,
    decodeAuthorizationMessages: c.decodeAuthorizationMessages ?? false,
    skipRegionValidation: c.skipRegionValidation ?? false,
  } satisfies Partial<ResolvedConfig>;
}

/** The source AMI, its filter frozen with its defaults; none from scratch. */
function sourceSettings(c: BuildConfig, scratch: boolean) {
  const filter = c.sourceAmiFilter;
  return {
    fromScratch: scratch,
    sourceAmi: scratch ? undefined : c.sourceAmi,
    sourceAmiFilter:
      scratch || filter === undefined
        ? undefined
        : Object.freeze({
            filters: Object.freeze(
              Object.fromEntries(
                Object.entries(filter.filters ?? {}).map(([k, val]) => [
                  k,
                  Object.freeze(typeof val === 'string' ? [val] : [...val]),
                ]),
              ),
            ),
            owners: freezeList(filter.owners),
            mostRecent: filter.mostRecent ?? false,
            includeDeprecated: filter.includeDeprecated ?? false,
          }),
  } satisfies Partial<ResolvedConfig>;
}

/** The image: its name and attributes, regions, encryption, sharing, lifecycle and tags. */
function imageSettings(c: BuildConfig, amiRegions: readonly string[]) {
  return {
    amiName: compileTemplate(c.amiName, { path: 'amiName', allowed: TEMPLATE_SCOPES.buildData, check: amiNameProblem }),
    amiDescription:
      c.amiDescription === undefined
        ? undefined
        : compileTemplate(c.amiDescription, {
            path: 'amiDescription',
            allowed: TEMPLATE_SCOPES.buildData,
            check: (text) =>
              text.length > 255
                ? `must be at most 255 characters after rendering, got ${text.length}; shorten it`
                : undefined,
          }),
    amiVirtualizationType: c.amiVirtualizationType,
    amiArchitecture: c.amiArchitecture ?? 'x86_64',
    amiUsers: freezeList(c.amiUsers),
    amiGroups: freezeList(c.amiGroups),
    amiOrgArns: freezeList(c.amiOrgArns),
    amiOuArns: freezeList(c.amiOuArns),
    amiProductCodes: freezeList(c.amiProductCodes),
    amiRegions: Object.freeze(amiRegions),
    regionKmsKeyIds: Object.freeze({ ...c.regionKmsKeyIds }),
    encryptBoot: c.encryptBoot,
    kmsKeyId: c.kmsKeyId,
    skipSaveBuildRegion: c.skipSaveBuildRegion ?? false,
    forceDeregister: c.forceDeregister ?? false,
    forceDeleteSnapshot: c.forceDeleteSnapshot ?? false,
    enaSupport: c.enaSupport,
    sriovSupport: c.sriovSupport ?? false,
    bootMode: c.bootMode,
    uefiData: c.uefiData,
    tpmSupport: c.tpmSupport,
    imdsSupport: c.imdsSupport === '' ? undefined : c.imdsSupport,
    deprecateAt:
      c.deprecateAt === undefined
        ? undefined
        : new Date(c.deprecateAt instanceof Date ? c.deprecateAt.getTime() : Date.parse(c.deprecateAt)),
    deregistrationProtection: Object.freeze({
      enabled: c.deregistrationProtection?.enabled === true || c.deregistrationProtection?.withCooldown === true,
      withCooldown: c.deregistrationProtection?.withCooldown ?? false,
    }),
    snapshotCopyDurationMinutes: c.snapshotCopyDurationMinutes,
    tags: compileTags('tags', c.tags),
    snapshotTags: compileTags('snapshotTags', c.snapshotTags),
    snapshotUsers: freezeList(c.snapshotUsers),
    snapshotGroups: freezeList(c.snapshotGroups),
    amiBlockDeviceMappings:
      c.amiBlockDeviceMappings === undefined
        ? undefined
        : Object.freeze(c.amiBlockDeviceMappings.map((m) => Object.freeze({ ...m }))),
  } satisfies Partial<ResolvedConfig>;
}

/** The work volume (and the image's root volume). */
function volumeSettings(c: BuildConfig, scratch: boolean) {
  return {
    rootVolumeSize: c.rootVolumeSize,
    rootVolumeType: c.rootVolumeType ?? (scratch ? 'gp2' : undefined),
    rootVolumeIops: c.rootVolumeIops,
    rootVolumeThroughput: c.rootVolumeThroughput,
    rootVolumeInitializationRate: c.rootVolumeInitializationRate,
    rootVolumeTags: compileTags('rootVolumeTags', c.rootVolumeTags),
    rootVolumeEncryptBoot: c.rootVolumeEncryptBoot,
    rootVolumeKmsKeyId: c.rootVolumeKmsKeyId,
    rootDeviceName: c.rootDeviceName,
  } satisfies Partial<ResolvedConfig>;
}

/** Devices, the mount, the chroot mounts and files, and the commands around them. */
function chrootSettings(c: BuildConfig, scratch: boolean) {
  const chrootMounts: ChrootMountSpec[] = [
    ...(c.chrootMounts ? c.chrootMounts.map((m) => chrootMountSpec(m)!) : DEFAULT_CHROOT_MOUNTS),
    ...(c.extraChrootMounts ?? []).map((m) => chrootMountSpec(m)!),
  ].map((m) => Object.freeze({ fsType: m.fsType, source: m.source, target: m.target }));
  const shell = (
    path: string,
    allowed: (typeof TEMPLATE_SCOPES)[keyof typeof TEMPLATE_SCOPES],
    t: Template,
  ): CompiledTemplate => compileTemplate(t, { path, allowed, quote: 'shell' });
  return {
    chrootMounts: Object.freeze(chrootMounts),
    copyFiles: freezeList(c.copyFiles ?? (scratch ? [] : DEFAULT_COPY_FILES)),
    commandWrapper: compileTemplate(c.commandWrapper ?? '{{.Command}}', {
      path: 'commandWrapper',
      allowed: TEMPLATE_SCOPES.commandWrapper,
      quote: 'shell',
      requireCommand: true,
    }),
    devicePath: c.devicePath,
    nvmeDevicePath: c.nvmeDevicePath,
    mountPath: compileTemplate(c.mountPath ?? DEFAULT_MOUNT_PATH, {
      path: 'mountPath',
      allowed: TEMPLATE_SCOPES.mountPath,
      check: (text) => {
        const problem = mountPointProblem(text, 'the rendered mount path');
        return problem && `${problem}, got ${JSON.stringify(text)}`;
      },
    }),
    // Unset: '1', or the whole device for paravirtual images (decided once the source is known).
    mountPartition: c.mountPartition === undefined ? undefined : String(c.mountPartition),
    mountOptions: freezeList(c.mountOptions),
    preMountCommands: Object.freeze(
      (c.preMountCommands ?? []).map((t, i) => shell(`preMountCommands.${i}`, TEMPLATE_SCOPES.preMountCommands, t)),
    ),
    postMountCommands: Object.freeze(
      (c.postMountCommands ?? []).map((t, i) => shell(`postMountCommands.${i}`, TEMPLATE_SCOPES.postMountCommands, t)),
    ),
    serviceGuard: c.serviceGuard ?? true,
  } satisfies Partial<ResolvedConfig>;
}
