/**
 * The valibot schema of {@link BuildConfig}: field rules on each option, cross-field rules as raw
 * checks on the whole object, all collected (never first-error-only) into {@link ConfigIssue}s that
 * name the option path, the bad value and the fix.
 */
import * as v from 'valibot';
import type { ConfigIssue } from '../errors.js';
import type { WaitKind } from '../types.js';
import { didYouMean } from './suggest.js';
import { TEMPLATE_SCOPES, isLiteralTemplate, templateProblem } from './templates.js';
import type { TemplateData, VolumeType } from './types.js';
import { DEFAULT_CHROOT_MOUNTS } from '../chroot/defaults.js';

// --- Formatting -----------------------------------------------------------------------------

/** Options whose values are secrets: never shown in messages, redacted in issues. */
const SECRET_OPTIONS = new Set(['accessKey', 'secretKey', 'token', 'mfaCode']);

/** A short, printable rendering of a bad value. @internal */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'an invalid Date' : `Date ${value.toISOString()}`;
  let text: string;
  try {
    text = JSON.stringify(value) ?? (typeof value === 'symbol' ? value.toString() : typeof value);
  } catch {
    text = 'an object that cannot be shown (circular?)';
  }
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/** A valibot message: "must be X, got <value>; <fix>". */
const bad =
  (expected: string, fix?: string) =>
  (issue: v.BaseIssue<unknown>): string =>
    `must be ${expected}, got ${show(issue.input)}${fix ? `; ${fix}` : ''}`;

/** The same for secrets: the value is never part of the message. */
const badSecret =
  (expected: string) =>
  (issue: v.BaseIssue<unknown>): string =>
    `must be ${expected}, got a ${issue.input === null ? 'null' : typeof issue.input} (value not shown)`;

// --- Patterns -------------------------------------------------------------------------------

/** AWS region names: `us-east-1`, `us-gov-west-1`, `cn-northwest-1`, `eusc-de-east-1`. @internal */
export const REGION_PATTERN = /^[a-z]{2,4}(-[a-z]+)+-\d{1,2}$/;
const KEY_ID = '(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})';
const ALIAS = 'alias/[a-zA-Z0-9:/_-]+';
/**
 * KMS key references EC2 accepts: key id, multi-Region key id (`mrk-`), `alias/name`, or the ARN
 * of a key or alias in any partition (aws, aws-us-gov, aws-cn, aws-iso*).
 */
const KMS_KEY_PATTERN = new RegExp(
  `^(?:${KEY_ID}|${ALIAS}|arn:aws(?:-[a-z]+)*:kms:[a-z]{2,4}(?:-[a-z]+)+-\\d{1,2}:\\d{12}:(?:key/${KEY_ID}|${ALIAS}))$`,
);
/** The AWS-managed EBS key: as good as "the default key" when sharing. */
const DEFAULT_EBS_ALIASES = new Set(['alias/aws/ebs']);
const AMI_ID = /^ami-[0-9a-f]{8,17}$/;
const SNAPSHOT_ID = /^snap-[0-9a-f]{8,17}$/;
const ACCOUNT_ID = /^\d{12}$/;
const ORG_ARN = /^arn:aws(?:-[a-z]+)*:organizations::\d{12}:organization\/o-[a-z0-9]{10,32}$/;
const OU_ARN = /^arn:aws(?:-[a-z]+)*:organizations::\d{12}:ou\/o-[a-z0-9]{10,32}\/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const DEVICE_PATH = /^\/dev\/(?:sd|xvd)[f-p]$/;
const BUILD_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const AMI_NAME_CHARS = /^[A-Za-z0-9()[\] ./\-'@_]*$/;

/**
 * What is wrong with a rendered AMI name (and the fix), or undefined when it is valid: 3–128
 * characters of `A-Za-z0-9()[] ./-'@_`, as EC2 and Packer require.
 * @internal
 */
export function amiNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 128) {
    return `must be 3 to 128 characters long, got ${name.length} (${show(name)}); shorten or lengthen it`;
  }
  if (!AMI_NAME_CHARS.test(name)) {
    const badChars = [...new Set(name.replace(/[A-Za-z0-9()[\] ./\-'@_]/g, ''))].join('');
    return `may only contain letters, digits and ()[] ./-'@_, got ${show(name)} (bad: ${show(badChars)}); pipe dynamic parts through clean_resource_name, e.g. {{ .SourceAMIName | clean_resource_name }}`;
  }
  return undefined;
}

// --- Volume limits --------------------------------------------------------------------------

/**
 * EBS limits per volume type, from the EC2 API reference (EbsBlockDevice / CreateVolume, as shipped
 * in @aws-sdk/client-ec2 3.11xx): sizes in GiB; IOPS range and maximum IOPS per GiB.
 */
const VOLUME_LIMITS: Readonly<
  Record<VolumeType, { size: [number, number]; iops?: [number, number]; iopsPerGiB?: number; boot: boolean }>
> = {
  standard: { size: [1, 1024], boot: true },
  gp2: { size: [1, 16_384], boot: true },
  gp3: { size: [1, 65_536], iops: [3000, 80_000], iopsPerGiB: 500, boot: true },
  io1: { size: [4, 16_384], iops: [100, 64_000], iopsPerGiB: 50, boot: true },
  io2: { size: [4, 65_536], iops: [100, 256_000], iopsPerGiB: 1000, boot: true },
  st1: { size: [125, 16_384], boot: false },
  sc1: { size: [125, 16_384], boot: false },
};
const VOLUME_TYPES = Object.keys(VOLUME_LIMITS) as VolumeType[];
const THROUGHPUT: [number, number] = [125, 2000];
// CreateVolume VolumeInitializationRate, MiB/s (EC2 API reference).
const VOLUME_INITIALIZATION_RATE: [number, number] = [100, 300];

// --- Leaf schemas ---------------------------------------------------------------------------

const isString = (x: unknown): x is string => typeof x === 'string';
const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x);

const leaf = <T>(test: (x: unknown) => boolean, expected: string, fix?: string) =>
  v.custom<T>(test, bad(expected, fix));
const bool = leaf<boolean>((x) => typeof x === 'boolean', 'true or false');
const nonEmpty = leaf<string>((x) => isString(x) && x.trim() !== '', 'a non-empty string');
const secret = v.custom<string>((x) => isString(x) && x !== '', badSecret('a non-empty string'));
const intIn = (min: number, max: number, fix?: string) =>
  leaf<number>((x) => isInt(x) && x >= min && x <= max, `an integer from ${min} to ${max}`, fix);
const positiveInt = leaf<number>((x) => isInt(x) && x > 0, 'a positive integer');
const oneOf = <T extends string>(values: readonly T[], fix?: string) =>
  leaf<T>(
    (x) => isString(x) && (values as readonly string[]).includes(x),
    `one of ${values.map((s) => JSON.stringify(s)).join(', ')}`,
    fix,
  );
const pattern = (re: RegExp, expected: string, fix?: string) =>
  leaf<string>((x) => isString(x) && re.test(x), expected, fix);
const absolutePath = leaf<string>(
  (x) => isString(x) && x.startsWith('/') && !x.includes('\0'),
  'an absolute path (starting with "/")',
);
const kmsKey = pattern(
  KMS_KEY_PATTERN,
  'a KMS key id, mrk- id, alias/name or key/alias ARN',
  'e.g. "alias/my-key" or "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"',
);
const kmsKeyOrEmpty = leaf<string>(
  (x) => x === '' || (isString(x) && KMS_KEY_PATTERN.test(x)),
  'a KMS key id, alias or ARN, or "" for the region\'s default key',
);
const list = <T extends v.GenericSchema>(item: T) => v.array(item, bad('an array'));
const isPlainObject = (x: unknown): boolean =>
  typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Date);
/** A record; valibot's own would take an array as an object with keys "0", "1", ... */
const recordOf = <K extends v.GenericSchema<string, string>, V extends v.GenericSchema>(
  key: K,
  value: V,
  what: string,
) => v.pipe(v.custom<Record<string, unknown>>(isPlainObject, bad(what)), v.record(key, value, bad(what)));

/** Valibot path items for a dotted path (cross-field issues name options, not schema positions). */
function pathItems(
  input: Record<string, unknown>,
  keys: readonly string[],
  value: unknown,
): [v.ObjectPathItem, ...v.ObjectPathItem[]] {
  const items = keys.map((key): v.ObjectPathItem => ({ type: 'object', origin: 'value', input, key, value }));
  return items as [v.ObjectPathItem, ...v.ObjectPathItem[]];
}

/** The object a raw check sees, when it is one. */
const objectValue = (x: unknown): Record<string, unknown> | undefined =>
  x && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>) : undefined;

/** Reports keys the object does not know, with a suggestion. */
function knownKeys<T>(keys: readonly string[]) {
  return v.rawCheck<T>(({ dataset, addIssue }) => {
    const value = objectValue(dataset.value);
    if (!value) return;
    for (const key of Object.keys(value)) {
      if (keys.includes(key)) continue;
      const suggestion = didYouMean(key, keys);
      const packer = key.includes('_') ? "; Packer's snake_case names are for fromPackerConfig()" : '';
      addIssue({
        message: `is not an option${suggestion ? `; did you mean \`${suggestion}\`?` : ''}${packer} (remove it${suggestion ? ' or rename it' : ''})`,
        input: value[key],
        path: pathItems(value, [key], value[key]),
      });
    }
  });
}

/** Makes every entry optional: "required" is a cross-field rule with its own message. */
function optionalAll<E extends v.ObjectEntries>(entries: E): { [K in keyof E]: v.OptionalSchema<E[K], undefined> } {
  return Object.fromEntries(Object.entries(entries).map(([k, s]) => [k, v.optional(s)])) as {
    [K in keyof E]: v.OptionalSchema<E[K], undefined>;
  };
}

/** An object schema with optional entries that reports unknown keys. */
function shape<E extends v.ObjectEntries>(entries: E, what: string) {
  return v.pipe(
    v.custom<Record<string, unknown>>(isPlainObject, bad(what)),
    v.looseObject(optionalAll(entries), bad(what)),
    knownKeys(Object.keys(entries)),
  );
}

/** A template option: a string in Packer's syntax checked against the names the option allows, or a function. */
function template(
  option: string,
  allowed: readonly (keyof TemplateData)[],
  literalCheck?: (text: string) => string | undefined,
) {
  return v.pipe(
    v.custom<string | ((data: TemplateData) => string)>(
      (x) => (isString(x) && x !== '') || typeof x === 'function',
      bad('a non-empty template string or a function'),
    ),
    v.rawCheck<string | ((data: TemplateData) => string)>(({ dataset, addIssue }) => {
      if (!dataset.typed || !isString(dataset.value)) return;
      const problem = templateProblem(dataset.value, { path: option, allowed });
      if (problem) addIssue({ message: problem, input: dataset.value });
      else if (literalCheck && isLiteralTemplate(dataset.value)) {
        const literal = literalCheck(dataset.value);
        if (literal) addIssue({ message: literal, input: dataset.value });
      }
    }),
  );
}

const tagKey = leaf<string>(
  (x) => isString(x) && x.length >= 1 && x.length <= 128 && !x.toLowerCase().startsWith('aws:'),
  'a tag key of 1 to 128 characters not starting with "aws:"',
);
const tagMap = (option: string) =>
  recordOf(
    tagKey,
    template(option, TEMPLATE_SCOPES.buildData, (text) =>
      text.length > 256 ? `must be at most 256 characters, got ${text.length}; shorten the tag value` : undefined,
    ),
    'an object of tag names to values',
  );

const chrootMount = leaf<unknown>(
  (x) => {
    const parts = Array.isArray(x)
      ? x
      : x && typeof x === 'object'
        ? [
            (x as Record<string, unknown>).fsType,
            (x as Record<string, unknown>).source,
            (x as Record<string, unknown>).target,
          ]
        : [];
    if (
      !Array.isArray(x) &&
      x &&
      typeof x === 'object' &&
      Object.keys(x).some((k) => !['fsType', 'source', 'target'].includes(k))
    )
      return false;
    return parts.length === 3 && parts.every((p) => isString(p) && p !== '') && (parts[2] as string).startsWith('/');
  },
  'three elements [fsType, source, target] (or { fsType, source, target }) with an absolute target',
  'e.g. ["bind", "/dev", "/dev"]',
);

const filterValue = leaf<string | readonly string[]>(
  (x) => isString(x) || (Array.isArray(x) && x.length > 0 && x.every(isString)),
  'a string or a non-empty array of strings',
);

const WAIT_KINDS: readonly WaitKind[] = [
  'volumeAvailable',
  'volumeAttached',
  'volumeDetached',
  'volumeDeleted',
  'snapshotCompleted',
  'imageAvailable',
  'copyAvailable',
];
const waitPolicy = shape(
  {
    timeoutMs: positiveInt,
    minDelayMs: positiveInt,
    maxDelayMs: positiveInt,
    firstDelayMs: intIn(0, Number.MAX_SAFE_INTEGER, 'milliseconds; 0 polls again at the normal pace'),
  },
  'an object { timeoutMs, minDelayMs, maxDelayMs, firstDelayMs }',
);

const blockDeviceMapping = shape(
  {
    deviceName: nonEmpty,
    deleteOnTermination: bool,
    encrypted: bool,
    kmsKeyId: kmsKey,
    iops: positiveInt,
    throughput: intIn(THROUGHPUT[0], THROUGHPUT[1], 'throughput is in MiB/s (gp3 only)'),
    noDevice: bool,
    snapshotId: pattern(SNAPSHOT_ID, 'a snapshot id like "snap-0123456789abcdef0"'),
    virtualName: pattern(/^ephemeral\d+$/, 'an instance store name like "ephemeral0"'),
    volumeSize: intIn(1, 65_536, 'sizes are in GiB'),
    volumeType: oneOf(VOLUME_TYPES),
  },
  'an object describing one block device',
);

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
      (isString(x) && RFC3339.test(x) && !Number.isNaN(Date.parse(x))),
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
  copyFiles: list(absolutePath),
  commandWrapper: template('commandWrapper', TEMPLATE_SCOPES.commandWrapper),
  devicePath: pattern(DEVICE_PATH, 'a device path from /dev/sdf to /dev/sdp (or /dev/xvdf to /dev/xvdp)'),
  nvmeDevicePath: pattern(/^\/dev\/\S+$/, 'a path under /dev, e.g. "/dev/nvme1n1p"'),
  mountPath: template('mountPath', TEMPLATE_SCOPES.mountPath),
  mountPartition: leaf<string | number>(
    (x) => (isString(x) && /^\d+$/.test(x)) || (isInt(x) && x >= 0),
    'a partition number like "1" ("0" for the whole device)',
  ),
  mountOptions: list(pattern(/^\S+$/, 'a mount option without spaces, e.g. "nouuid"')),
  preMountCommands: list(template('preMountCommands', TEMPLATE_SCOPES.preMountCommands)),
  postMountCommands: list(template('postMountCommands', TEMPLATE_SCOPES.postMountCommands)),

  polling: shape(
    {
      delayMs: positiveInt,
      maxAttempts: positiveInt,
      waits: shape(Object.fromEntries(WAIT_KINDS.map((k) => [k, waitPolicy])), 'an object of wait kinds to policies'),
    },
    'an object { delayMs, maxAttempts, waits }',
  ),
  keepOnError: bool,
  serviceGuard: bool,
  lockDir: absolutePath,
  buildId: pattern(
    BUILD_ID,
    '1 to 64 characters of letters, digits, ".", "_" and "-" (starting with a letter or digit)',
  ),
} satisfies v.ObjectEntries;

// --- Cross-field rules ----------------------------------------------------------------------

type Loose = Readonly<Record<string, unknown>>;
type Add = (path: string, value: unknown, message: string) => void;

const has = (c: Loose, key: string): boolean => c[key] !== undefined;
const nonEmptyList = (x: unknown): x is readonly unknown[] => Array.isArray(x) && x.length > 0;
const asRecord = (x: unknown): Loose => (x && typeof x === 'object' && !Array.isArray(x) ? (x as Loose) : {});
const asList = (x: unknown): readonly unknown[] => (Array.isArray(x) ? x : []);
const isTrue = (x: unknown): boolean => x === true;

/** Reads a chroot mount in either form; undefined when malformed (the field rule reports it). @internal */
export function chrootMountSpec(x: unknown): { fsType: string; source: string; target: string } | undefined {
  const parts = Array.isArray(x)
    ? x
    : x && typeof x === 'object'
      ? [(x as Loose).fsType, (x as Loose).source, (x as Loose).target]
      : [];
  if (parts.length !== 3 || !parts.every(isString)) return undefined;
  return { fsType: parts[0] as string, source: parts[1] as string, target: parts[2] as string };
}

/** IOPS / throughput / size rules for one volume; `at(field)` gives the issue path of a field. */
function volumeRules(
  add: Add,
  at: (field: 'iops' | 'throughput' | 'size' | 'type') => string,
  vol: { type: unknown; iops: unknown; throughput: unknown; size: unknown; typeKnown: boolean; requireIops: boolean },
): void {
  const type = isString(vol.type) && Object.hasOwn(VOLUME_LIMITS, vol.type) ? (vol.type as VolumeType) : undefined;
  const limits = type ? VOLUME_LIMITS[type] : undefined;
  const size = isInt(vol.size) ? vol.size : undefined;
  if (isInt(vol.iops)) {
    if (!type) {
      if (vol.typeKnown)
        add(
          at('iops'),
          vol.iops,
          'IOPS need a volume type that takes them; set the volume type to "gp3", "io1" or "io2"',
        );
    } else if (!limits?.iops) {
      add(at('iops'), vol.iops, `${type} volumes do not take IOPS; use "gp3", "io1" or "io2", or remove the IOPS`);
    } else {
      const [min, max] = limits.iops;
      if (vol.iops < min || vol.iops > max)
        add(at('iops'), vol.iops, `${type} IOPS must be from ${min} to ${max}, got ${vol.iops}`);
      else if (size !== undefined && limits.iopsPerGiB && vol.iops > size * limits.iopsPerGiB) {
        add(
          at('iops'),
          vol.iops,
          `${type} allows at most ${limits.iopsPerGiB} IOPS per GiB: ${vol.iops} IOPS needs at least ${Math.ceil(vol.iops / limits.iopsPerGiB)} GiB, the size is ${size}; raise the size or lower the IOPS`,
        );
      }
    }
  } else if (vol.requireIops && (type === 'io1' || type === 'io2')) {
    add(at('iops'), vol.iops, `${type} volumes need IOPS; set them (from ${limits!.iops![0]} to ${limits!.iops![1]})`);
  }
  if (vol.throughput !== undefined && type !== 'gp3' && (type !== undefined || vol.typeKnown)) {
    add(
      at('throughput'),
      vol.throughput,
      `throughput applies to gp3 volumes only, the type is ${type ?? 'unset'}; set the volume type to "gp3" or remove the throughput`,
    );
  }
  if (size !== undefined && limits && (size < limits.size[0] || size > limits.size[1])) {
    add(at('size'), size, `${type} volumes must be from ${limits.size[0]} to ${limits.size[1]} GiB, got ${size}`);
  }
}

/**
 * Every rule that looks at more than one option. Defensive about types: a field of the wrong type
 * has its own issue already and counts as set for "required" rules.
 */
function crossFieldRules(c: Loose, add: Add): void {
  // Access
  if (has(c, 'accessKey') !== has(c, 'secretKey')) {
    const missing = has(c, 'accessKey') ? 'secretKey' : 'accessKey';
    add(
      missing,
      undefined,
      `accessKey and secretKey must both be set or both unset; set ${missing} too, or remove ${missing === 'secretKey' ? 'accessKey' : 'secretKey'} to use the default credential chain`,
    );
  }
  if (has(c, 'token') && !has(c, 'accessKey')) {
    add('token', undefined, 'a session token only works with accessKey and secretKey; set them too, or remove token');
  }
  if (!isTrue(c.skipRegionValidation)) {
    const fix = 'use a region name like "us-east-1" (or set skipRegionValidation for EC2-compatible clouds)';
    if (isString(c.region) && !REGION_PATTERN.test(c.region))
      add('region', c.region, `must be an AWS region name, got ${show(c.region)}; ${fix}`);
    asList(c.amiRegions).forEach((r, i) => {
      if (isString(r) && !REGION_PATTERN.test(r))
        add(`amiRegions.${i}`, r, `must be an AWS region name, got ${show(r)}; ${fix}`);
    });
    for (const r of Object.keys(asRecord(c.regionKmsKeyIds))) {
      if (!REGION_PATTERN.test(r))
        add(`regionKmsKeyIds.${r}`, r, `the key must be an AWS region name, got ${show(r)}; ${fix}`);
    }
  }

  // Source
  const scratch = isTrue(c.fromScratch);
  if (!has(c, 'amiName')) add('amiName', undefined, 'is required: set a unique name, e.g. "my-image {{timestamp}}"');
  if (!scratch && !has(c, 'sourceAmi') && !has(c, 'sourceAmiFilter')) {
    add(
      'sourceAmi',
      undefined,
      'is required: set sourceAmi or sourceAmiFilter (or fromScratch: true to start from an empty volume)',
    );
  }
  if (has(c, 'sourceAmiFilter')) {
    const owners = asRecord(c.sourceAmiFilter).owners;
    if (owners === undefined || (Array.isArray(owners) && owners.length === 0)) {
      add(
        'sourceAmiFilter.owners',
        owners,
        'is required with sourceAmiFilter, so only images of trusted accounts can match; set e.g. ["self"], ["amazon"] or an account id',
      );
    }
  }

  // From scratch
  if (scratch) {
    const requireScratch = (key: string, example: string): void => {
      const value = c[key];
      if (value === undefined || (Array.isArray(value) && value.length === 0))
        add(key, value, `is required with fromScratch; set it, e.g. ${example}`);
    };
    requireScratch('rootVolumeSize', 'rootVolumeSize: 8');
    requireScratch('preMountCommands', 'commands that partition and format {{.Device}}');
    requireScratch('amiVirtualizationType', 'amiVirtualizationType: "hvm"');
    requireScratch('rootDeviceName', 'rootDeviceName: "xvda"');
    requireScratch('amiBlockDeviceMappings', '[{ deviceName: "xvda", deleteOnTermination: true, volumeType: "gp3" }]');
    if (c.rootVolumeType === 'io1')
      add('rootVolumeType', 'io1', 'io1 cannot be used when building from scratch; use "gp3" or "io2"');
    if (has(c, 'rootVolumeInitializationRate'))
      add(
        'rootVolumeInitializationRate',
        c.rootVolumeInitializationRate,
        'cannot be used with fromScratch: a blank volume has no snapshot to initialize from; remove it',
      );
  } else {
    const mappings = nonEmptyList(c.amiBlockDeviceMappings);
    if (mappings && !has(c, 'rootDeviceName')) {
      add(
        'rootDeviceName',
        undefined,
        'is required with amiBlockDeviceMappings: name the mapping that receives the new snapshot, e.g. "/dev/xvda"',
      );
    }
    if (has(c, 'rootDeviceName') && !mappings) {
      add(
        'amiBlockDeviceMappings',
        c.amiBlockDeviceMappings,
        'is required with rootDeviceName (it only applies to custom mappings); add the mappings or remove rootDeviceName',
      );
    }
    if (mappings && has(c, 'rootDeviceName') && !has(c, 'rootVolumeSize')) {
      add(
        'rootVolumeSize',
        undefined,
        "is required with amiBlockDeviceMappings (they replace the source's, size included); set the root size in GiB",
      );
    }
  }

  // Block device mappings
  const rootName = isString(c.rootDeviceName) ? c.rootDeviceName : undefined;
  const mappings = asList(c.amiBlockDeviceMappings);
  const seen = new Map<string, number>();
  mappings.forEach((raw, i) => {
    const m = asRecord(raw);
    const p = `amiBlockDeviceMappings.${i}`;
    if (!has(m, 'deviceName'))
      add(`${p}.deviceName`, undefined, 'is required: the device name exposed to the instance, e.g. "/dev/sdb"');
    if (isString(m.deviceName)) {
      const first = seen.get(m.deviceName);
      if (first !== undefined)
        add(
          `${p}.deviceName`,
          m.deviceName,
          `duplicates amiBlockDeviceMappings.${first}; each device may be mapped once`,
        );
      else seen.set(m.deviceName, i);
    }
    const isRoot = rootName !== undefined && m.deviceName === rootName;
    const ebsFields = [
      'volumeSize',
      'volumeType',
      'iops',
      'throughput',
      'snapshotId',
      'encrypted',
      'kmsKeyId',
      'deleteOnTermination',
    ].filter((f) => has(m, f));
    if (isTrue(m.noDevice) && (ebsFields.length > 0 || has(m, 'virtualName'))) {
      add(
        `${p}.noDevice`,
        true,
        `suppresses the device, so ${[...ebsFields, ...(has(m, 'virtualName') ? ['virtualName'] : [])].join(', ')} cannot be set with it; remove them or noDevice`,
      );
    }
    if (has(m, 'virtualName') && ebsFields.length > 0) {
      add(
        `${p}.virtualName`,
        m.virtualName,
        `names an instance store volume, which has no ${ebsFields.join(', ')}; remove them or virtualName`,
      );
    }
    if (!isTrue(m.noDevice) && !has(m, 'virtualName') && !has(m, 'snapshotId') && !has(m, 'volumeSize') && !isRoot) {
      add(`${p}.volumeSize`, undefined, 'is required unless snapshotId is set; set the size in GiB');
    }
    if (has(m, 'kmsKeyId') && m.encrypted !== true)
      add(`${p}.kmsKeyId`, m.kmsKeyId, 'needs encrypted: true; set it, or remove kmsKeyId');
    if (isRoot && (m.volumeType === 'st1' || m.volumeType === 'sc1'))
      add(
        `${p}.volumeType`,
        m.volumeType,
        `the root device cannot be ${m.volumeType}; use "gp3", "gp2", "io1" or "io2"`,
      );
    volumeRules(add, (f) => `${p}.${f === 'size' ? 'volumeSize' : f === 'type' ? 'volumeType' : f}`, {
      type: m.volumeType,
      iops: m.iops,
      throughput: m.throughput,
      size: isRoot && m.volumeSize === undefined ? undefined : m.volumeSize,
      typeKnown: true,
      requireIops: true,
    });
  });
  if (rootName !== undefined && mappings.length > 0 && !seen.has(rootName)) {
    add(
      'rootDeviceName',
      rootName,
      `must equal the deviceName of one of amiBlockDeviceMappings (exactly), got ${show(rootName)}; mapped: ${[...seen.keys()].map((k) => show(k)).join(', ') || 'none'}`,
    );
  }

  // Root volume
  const rootType = c.rootVolumeType ?? (scratch ? 'gp2' : undefined);
  volumeRules(
    add,
    (f) =>
      f === 'size'
        ? 'rootVolumeSize'
        : f === 'type'
          ? 'rootVolumeType'
          : f === 'iops'
            ? 'rootVolumeIops'
            : 'rootVolumeThroughput',
    {
      type: rootType,
      iops: c.rootVolumeIops,
      throughput: c.rootVolumeThroughput,
      size: c.rootVolumeSize,
      typeKnown: rootType !== undefined,
      // io1 from scratch has its own issue above.
      requireIops: scratch && rootType !== 'io1',
    },
  );
  if (has(c, 'rootVolumeKmsKeyId') && c.rootVolumeEncryptBoot !== true) {
    add(
      'rootVolumeKmsKeyId',
      c.rootVolumeKmsKeyId,
      'needs rootVolumeEncryptBoot: true (EC2 rejects a key for an unencrypted volume); set it, or remove rootVolumeKmsKeyId',
    );
  }

  // Encryption and sharing
  const regionKeys = asRecord(c.regionKmsKeyIds);
  const regionKeyNames = Object.keys(regionKeys);
  const amiRegions = asList(c.amiRegions).filter(isString);
  const encrypt = isTrue(c.encryptBoot);
  if (has(c, 'kmsKeyId') && !encrypt)
    add('kmsKeyId', c.kmsKeyId, 'needs encryptBoot: true; set it, or remove kmsKeyId');
  if (!encrypt && regionKeyNames.some((r) => regionKeys[r] !== '')) {
    add('regionKmsKeyIds', regionKeys, 'needs encryptBoot: true when any key is set; set it, or remove the keys');
  }
  if (regionKeyNames.length > 0) {
    asList(c.amiRegions).forEach((r, i) => {
      if (isString(r) && !Object.hasOwn(regionKeys, r))
        add(
          `amiRegions.${i}`,
          r,
          `has no entry in regionKmsKeyIds; add ${JSON.stringify(r)} (use "" for the region's default key) or remove the region`,
        );
    });
    for (const r of regionKeyNames) {
      if (!amiRegions.includes(r))
        add(
          `regionKmsKeyIds.${r}`,
          regionKeys[r],
          `region ${JSON.stringify(r)} is not in amiRegions; add it there or remove this key`,
        );
    }
  }
  const isDefaultKey = (k: unknown): boolean => !isString(k) || k === '' || DEFAULT_EBS_ALIASES.has(k);
  const sharedAmi = nonEmptyList(c.amiUsers) || nonEmptyList(c.amiOrgArns) || nonEmptyList(c.amiOuArns);
  if (sharedAmi && encrypt && isDefaultKey(c.kmsKeyId)) {
    add(
      'kmsKeyId',
      c.kmsKeyId,
      'cannot share an AMI encrypted with the default KMS key (other accounts cannot use it); set kmsKeyId to a customer managed key shared with them, or stop sharing',
    );
  }
  if (sharedAmi) {
    for (const r of regionKeyNames) {
      if (isDefaultKey(regionKeys[r]))
        add(
          `regionKmsKeyIds.${r}`,
          regionKeys[r],
          `cannot share an AMI encrypted with the default KMS key in ${r}; set a customer managed key`,
        );
    }
    if (
      isTrue(c.rootVolumeEncryptBoot) &&
      isDefaultKey(c.rootVolumeKmsKeyId) &&
      !(encrypt && !isDefaultKey(c.kmsKeyId))
    ) {
      add(
        'rootVolumeKmsKeyId',
        c.rootVolumeKmsKeyId,
        'cannot share an AMI whose volume is encrypted with the default KMS key; set rootVolumeKmsKeyId to a customer managed key shared with the accounts',
      );
    }
  }
  if (nonEmptyList(c.snapshotUsers)) {
    if (encrypt && isDefaultKey(c.kmsKeyId) && regionKeyNames.length === 0) {
      add(
        'snapshotUsers',
        c.snapshotUsers,
        'cannot share snapshots encrypted with the default KMS key (see https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ebs-modifying-snapshot-permissions.html); set kmsKeyId to a customer managed key',
      );
    }
    for (const r of regionKeyNames) {
      if (isDefaultKey(regionKeys[r]))
        add(
          `regionKmsKeyIds.${r}`,
          regionKeys[r],
          `cannot share snapshots encrypted with the default KMS key in ${r}; set a customer managed key`,
        );
    }
  }
  if (isTrue(c.skipSaveBuildRegion) && amiRegions.length === 0) {
    add(
      'skipSaveBuildRegion',
      true,
      'with no amiRegions no AMI would be kept anywhere; add amiRegions or remove skipSaveBuildRegion',
    );
  }

  // Platform features
  for (const key of ['enaSupport', 'sriovSupport'] as const) {
    if (isTrue(c[key]) && c.amiVirtualizationType === 'paravirtual') {
      add(
        key,
        true,
        'enhanced networking needs HVM, but amiVirtualizationType is "paravirtual"; set it to "hvm" or remove this option',
      );
    }
  }
  if (has(c, 'uefiData')) {
    if (c.bootMode === 'legacy-bios')
      add(
        'uefiData',
        c.uefiData,
        'cannot be used with bootMode "legacy-bios"; set bootMode to "uefi" or remove uefiData',
      );
    else if (!has(c, 'bootMode') && (c.amiArchitecture ?? 'x86_64') !== 'arm64') {
      add('bootMode', undefined, 'must be set to "uefi" (or "uefi-preferred") to use uefiData on this architecture');
    }
  }
  if (has(c, 'tpmSupport') && c.bootMode === 'legacy-bios') {
    add(
      'tpmSupport',
      c.tpmSupport,
      'NitroTPM needs UEFI boot, but bootMode is "legacy-bios"; set bootMode to "uefi" or remove tpmSupport',
    );
  }

  // Chroot
  const mounts = [
    ...(Array.isArray(c.chrootMounts)
      ? c.chrootMounts.map((m, i) => [chrootMountSpec(m), `chrootMounts.${i}`] as const)
      : DEFAULT_CHROOT_MOUNTS.map((m) => [m, 'default'] as const)),
    ...asList(c.extraChrootMounts).map((m, i) => [chrootMountSpec(m), `extraChrootMounts.${i}`] as const),
  ];
  const targets = new Map<string, string>();
  for (const [spec, path] of mounts) {
    if (!spec) continue;
    const previous = targets.get(spec.target);
    if (previous !== undefined && path !== 'default') {
      add(
        path,
        spec.target,
        `mounts ${spec.target} again (already mounted by ${previous === 'default' ? 'the default chroot mounts' : previous}); to change a default, replace the list with chrootMounts`,
      );
    } else targets.set(spec.target, path);
  }
  if (isString(c.commandWrapper) && !/\{\{-?\s*\.Command\b/.test(c.commandWrapper)) {
    add(
      'commandWrapper',
      c.commandWrapper,
      'must contain {{.Command}}, or no command would run; e.g. "sudo {{.Command}}"',
    );
  }
  if (isString(c.mountPath) && !c.mountPath.startsWith('/')) {
    add('mountPath', c.mountPath, 'must be an absolute path (start with "/"), e.g. "/mnt/ami-chroot/{{.Device}}"');
  }

  // Polling
  const waits = asRecord(asRecord(c.polling).waits);
  for (const [kind, raw] of Object.entries(waits)) {
    const w = asRecord(raw);
    if (isInt(w.minDelayMs) && isInt(w.maxDelayMs) && w.minDelayMs > w.maxDelayMs) {
      add(
        `polling.waits.${kind}.minDelayMs`,
        w.minDelayMs,
        `must not exceed maxDelayMs (${w.maxDelayMs}); lower it or raise maxDelayMs`,
      );
    }
  }
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
  const result = v.safeParse(buildConfigSchema, input, { abortEarly: false, abortPipeEarly: false });
  if (result.success) return [];
  return result.issues.map((issue) => {
    const path = (issue.path ?? []).map((item) => String(item.key)).join('.');
    return { path, value: redact(path, issue.input), message: issue.message };
  });
}
