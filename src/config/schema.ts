/**
 * The valibot schema of {@link BuildConfig}: field rules on each option, cross-field rules as raw
 * checks on the whole object, all collected (never first-error-only) into {@link ConfigIssue}s that
 * name the option path, the bad value and the fix.
 */
import * as v from 'valibot';
import type { ConfigIssue } from '../errors.js';
import { collectSecrets, redactIssues, withSecrets } from './redact.js';
import { withoutReservedKeys } from './reserved.js';
import { didYouMean } from './suggest.js';
import { accessRules, scratchRules, sourceRules } from './rules/access.js';
import { chrootRules } from './rules/chroot.js';
import { SECRET_OPTIONS, bad, show } from './rules/format.js';
import type { Add, Loose } from './rules/helpers.js';
import { isInt, isString } from './rules/helpers.js';
import {
  bool,
  positiveInt,
  intIn,
  nonEmpty,
  secret,
  leaf,
  list,
  oneOf,
  pattern,
  recordOf,
  shape,
  template,
  tagMap,
  kmsKey,
  kmsKeyOrEmpty,
  absolutePath,
  filePath,
  timerMs,
  chrootMount,
  filterValue,
  waitPolicy,
  blockDeviceMapping,
  WAIT_KINDS,
  isPlainObject,
  optionalAll,
  knownKeys,
  objectValue,
  pathItems,
} from './rules/leaves.js';
import {
  ACCOUNT_ID,
  AMI_ID,
  BASE64,
  BUILD_ID,
  DEVICE_PATH,
  ORG_ARN,
  OU_ARN,
  RFC3339,
  amiNameProblem,
  isRealRfc3339,
} from './rules/patterns.js';
import { platformRules } from './rules/platform.js';
import { pollingRules } from './rules/polling.js';
import { sharingRules } from './rules/sharing.js';
import { deprecationRules } from './rules/deprecation.js';
import {
  THROUGHPUT,
  VOLUME_INITIALIZATION_RATE,
  VOLUME_LIMITS,
  mappingRules,
  rootVolumeRules,
} from './rules/volumes.js';
import type { VolumeType } from './types.js';
import { TEMPLATE_SCOPES } from './templates.js';

export { REGION_PATTERN, amiNameProblem } from './rules/patterns.js';
export { chrootMountSpec } from './rules/chroot.js';
export { show } from './rules/format.js';

/** Every option of BuildConfig with its field rule. */
const ENTRIES = {
  region: nonEmpty,
  profile: nonEmpty,
  accessKey: secret,
  secretKey: secret,
  token: secret,
  mfaCode: secret,
  customEndpointEc2: leaf<string>(
    (x) => {
      if (!isString(x)) return false;
      try {
        return ['http:', 'https:'].includes(new URL(x).protocol);
      } catch {
        return false;
      }
    },
    'an http(s) URL',
    'e.g. "https://ec2.us-east-1.amazonaws.com"',
  ),
  insecureSkipTlsVerify: bool,
  maxRetries: intIn(0, 100),
  decodeAuthorizationMessages: bool,
  skipMetadataApiCheck: bool,
  skipRegionValidation: bool,

  sourceAmi: pattern(AMI_ID, 'an AMI id like "ami-0123456789abcdef0"'),
  sourceAmiFilter: shape(
    {
      filters: recordOf(nonEmpty, filterValue, 'an object of DescribeImages filter names to values'),
      owners: list(nonEmpty),
      mostRecent: bool,
      includeDeprecated: bool,
    },
    'an object { filters, owners, mostRecent, includeDeprecated }',
  ),

  amiName: template('amiName', TEMPLATE_SCOPES.buildData, amiNameProblem),
  amiDescription: template('amiDescription', TEMPLATE_SCOPES.buildData, (text) =>
    text.length > 255 ? `must be at most 255 characters, got ${text.length}; shorten it` : undefined,
  ),
  amiVirtualizationType: oneOf(['hvm', 'paravirtual'] as const),
  amiArchitecture: oneOf(['x86_64', 'arm64', 'i386', 'x86_64_mac', 'arm64_mac'] as const),
  amiUsers: list(pattern(ACCOUNT_ID, 'a 12-digit AWS account id')),
  amiGroups: list(oneOf(['all'] as const, '"all" makes the AMI public; use amiUsers/amiOrgArns/amiOuArns for others')),
  amiOrgArns: list(
    pattern(ORG_ARN, 'an organization ARN like "arn:aws:organizations::111122223333:organization/o-exampleorgid"'),
  ),
  amiOuArns: list(
    pattern(
      OU_ARN,
      'an organizational unit ARN like "arn:aws:organizations::111122223333:ou/o-exampleorgid/ou-ab12-cdef3456"',
    ),
  ),
  amiProductCodes: list(nonEmpty),
  amiRegions: list(nonEmpty),
  regionKmsKeyIds: recordOf(nonEmpty, kmsKeyOrEmpty, 'an object of region names to KMS keys'),
  encryptBoot: bool,
  kmsKeyId: kmsKey,
  skipSaveBuildRegion: bool,
  forceDeregister: bool,
  forceDeleteSnapshot: bool,
  enaSupport: bool,
  sriovSupport: bool,
  bootMode: oneOf(['legacy-bios', 'uefi', 'uefi-preferred'] as const),
  uefiData: leaf<string>(
    (x) => isString(x) && x !== '' && BASE64.test(x),
    'base64 text (the UEFI variable store)',
    'e.g. the output of `python3 uefivars.py -o aws ...`',
  ),
  tpmSupport: oneOf(['v2.0'] as const),
  imdsSupport: oneOf(['v2.0', ''] as const),
  deprecateAt: leaf<string | Date>(
    (x) =>
      (x instanceof Date && !Number.isNaN(x.getTime())) ||
      (isString(x) && RFC3339.test(x) && isRealRfc3339(x) && !Number.isNaN(Date.parse(x))),
    'an RFC 3339 time like "2030-01-02T03:04:05Z" (YYYY-MM-DDTHH:MM:SSZ) or a valid Date',
  ),
  deregistrationProtection: shape({ enabled: bool, withCooldown: bool }, 'an object { enabled, withCooldown }'),
  snapshotCopyDurationMinutes: leaf<number>(
    (x) => isInt(x) && x >= 15 && x <= 2880 && x % 15 === 0,
    'a multiple of 15 from 15 to 2880 (minutes)',
    'time-based copies take 15-minute steps up to 48 hours',
  ),
  tags: tagMap('tags'),
  snapshotTags: tagMap('snapshotTags'),
  snapshotUsers: list(pattern(ACCOUNT_ID, 'a 12-digit AWS account id')),
  snapshotGroups: list(oneOf(['all'] as const, '"all" makes the snapshots public')),

  amiBlockDeviceMappings: list(blockDeviceMapping),

  rootVolumeSize: intIn(1, 65_536, 'sizes are in GiB'),
  rootVolumeType: leaf<VolumeType>(
    (x) => isString(x) && Object.hasOwn(VOLUME_LIMITS, x) && VOLUME_LIMITS[x as VolumeType].boot,
    'a bootable volume type: "standard", "gp2", "gp3", "io1" or "io2"',
    'st1 and sc1 cannot be boot volumes',
  ),
  rootVolumeIops: positiveInt,
  rootVolumeThroughput: intIn(THROUGHPUT[0], THROUGHPUT[1], 'throughput is in MiB/s (gp3 only)'),
  rootVolumeInitializationRate: intIn(
    VOLUME_INITIALIZATION_RATE[0],
    VOLUME_INITIALIZATION_RATE[1],
    'EC2 initializes volumes at 100-300 MiB/s; leave it unset for the default',
  ),
  rootVolumeTags: tagMap('rootVolumeTags'),
  rootVolumeEncryptBoot: bool,
  rootVolumeKmsKeyId: kmsKey,
  rootDeviceName: pattern(/^\S+$/, 'a device name like "xvda" or "/dev/xvda"'),
  fromScratch: bool,

  chrootMounts: list(chrootMount),
  extraChrootMounts: list(chrootMount),
  copyFiles: list(filePath),
  commandWrapper: template('commandWrapper', TEMPLATE_SCOPES.commandWrapper, undefined, 'wrapper'),
  devicePath: pattern(DEVICE_PATH, 'a device path from /dev/sdf to /dev/sdp (or /dev/xvdf to /dev/xvdp)'),
  nvmeDevicePath: leaf<string>(
    (x) => isString(x) && /^\/dev\/\S+$/.test(x) && !x.split('/').includes('..'),
    'a path under /dev without ".." segments, e.g. "/dev/nvme1n1p"',
  ),
  mountPath: template('mountPath', TEMPLATE_SCOPES.mountPath),
  mountPartition: leaf<string | number>(
    (x) => (isString(x) && /^\d{1,3}$/.test(x)) || (isInt(x) && x >= 0 && x <= 999),
    'a partition number from 0 to 999 written in digits, like "1" ("0" for the whole device)',
  ),
  mountOptions: list(pattern(/^\S+$/, 'a mount option without spaces, e.g. "nouuid"')),
  preMountCommands: list(template('preMountCommands', TEMPLATE_SCOPES.preMountCommands, undefined, 'shell')),
  postMountCommands: list(template('postMountCommands', TEMPLATE_SCOPES.postMountCommands, undefined, 'shell')),

  polling: shape(
    {
      delayMs: timerMs(1),
      maxAttempts: positiveInt,
      waits: shape(Object.fromEntries(WAIT_KINDS.map((k) => [k, waitPolicy])), 'an object of wait kinds to policies'),
    },
    'an object { delayMs, maxAttempts, waits }',
  ),
  keepOnError: bool,
  serviceGuard: bool,
  lockDir: absolutePath,
  via: oneOf(['attach', 'ebs-direct'] as const),
  cacheDir: absolutePath,
  buildId: pattern(
    BUILD_ID,
    '1 to 64 characters of letters, digits, ".", "_" and "-" (starting with a letter or digit)',
  ),
} satisfies v.ObjectEntries;

/** Every rule that looks at more than one option, by area. */
function crossFieldRules(c: Loose, add: Add): void {
  for (const rules of [
    accessRules,
    sourceRules,
    scratchRules,
    mappingRules,
    rootVolumeRules,
    sharingRules,
    deprecationRules,
    platformRules,
    chrootRules,
    pollingRules,
  ])
    rules(c, add);
}

/** The whole BuildConfig schema. @internal */
export const buildConfigSchema = v.pipe(
  v.custom<Record<string, unknown>>(isPlainObject, bad('a BuildConfig object')),
  v.looseObject(optionalAll(ENTRIES), bad('a BuildConfig object')),
  knownKeys(Object.keys(ENTRIES)),
  v.rawCheck(({ dataset, addIssue }) => {
    const value = objectValue(dataset.value);
    if (!value) return;
    crossFieldRules(value, (path, input, message) => {
      // Every message names the value it is about, unless it already does.
      const named =
        input === undefined || message.includes(show(input)) ? message : `${message} (value: ${show(input)})`;
      addIssue({ message: named, input, path: pathItems(value, path.split('.'), input) });
    });
  }),
);

const redact = (path: string, value: unknown): unknown =>
  SECRET_OPTIONS.has(path.split('.')[0]!) && value !== undefined ? '[redacted]' : value;

/**
 * Validates a BuildConfig and returns every problem (empty when valid).
 * @internal
 */
export function validateBuildConfig(input: unknown): ConfigIssue[] {
  const secrets = collectSecrets(input);
  return redactIssues(
    withSecrets(secrets, () => collectIssues(input)),
    secrets,
  );
}

function collectIssues(input: unknown): ConfigIssue[] {
  const { value, issues: reserved } = withoutReservedKeys(input);
  const result = v.safeParse(buildConfigSchema, value, { abortEarly: false, abortPipeEarly: false });
  if (result.success) return reserved;
  return [
    ...reserved,
    ...result.issues.map((issue) => {
      const path = (issue.path ?? []).map((item) => String(item.key)).join('.');
      return { path, value: redact(path, issue.input), message: withPlacement(path, issue.message) };
    }),
  ];
}

const TOP_LEVEL_KEYS = Object.keys(ENTRIES);

/** For an unknown key inside a section that is an option of the top level, says so. */
function withPlacement(path: string, message: string): string {
  const segments = path.split('.');
  const key = segments[segments.length - 1]!;
  if (segments.length < 2 || !message.startsWith('is not an option')) return message;
  const top = TOP_LEVEL_KEYS.find((k) => k === key) ?? (didYouMean(key, TOP_LEVEL_KEYS) === key ? key : undefined);
  return top === undefined
    ? message
    : `${message}; \`${top}\` is an option of the top level of the config: move it there`;
}
