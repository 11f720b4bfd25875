import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import type { ConfigIssue } from '../../../src/errors.js';
import { resolveConfig, validateAmiName } from '../../../src/config/resolve.js';
import type { BuildConfig } from '../../../src/config/types.js';

/** A minimal valid config every row starts from. */
const BASE: BuildConfig = { amiName: 'test-ami {{timestamp}}', sourceAmi: 'ami-0123456789abcdef0' };
const SCRATCH: Partial<BuildConfig> = {
  sourceAmi: undefined as never,
  fromScratch: true,
  amiVirtualizationType: 'hvm',
  rootVolumeSize: 8,
  rootDeviceName: 'xvda',
  preMountCommands: ['mkfs.ext4 {{.Device}}'],
  amiBlockDeviceMappings: [{ deviceName: 'xvda', deleteOnTermination: true, volumeType: 'gp3' }],
};
const KEY_ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const ACCOUNT = '123456789012';
/** deprecateAt must be within EC2's limits from now, so the rows compute their times. */
const YEAR = new Date().getUTCFullYear();
const inDays = (days: number): string => new Date(Date.now() + days * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');

function build(patch: Record<string, unknown>): BuildConfig {
  const config: Record<string, unknown> = { ...BASE, ...patch };
  for (const [k, v] of Object.entries(config)) if (v === undefined) delete config[k];
  return config as unknown as BuildConfig;
}

function issuesOf(config: unknown): readonly ConfigIssue[] {
  try {
    resolveConfig(config as BuildConfig, {});
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.issues;
  }
}

interface Invalid {
  /** Config patch on BASE. */
  readonly patch: Record<string, unknown>;
  /** Path of the expected issue. */
  readonly path: string;
  /** Things the message must say: the bad value and the fix. */
  readonly says: readonly string[];
}

interface Rule {
  readonly rule: string;
  readonly valid: readonly Record<string, unknown>[];
  readonly invalid: readonly Invalid[];
}

const RULES: readonly Rule[] = [
  // --- Access
  {
    rule: 'accessKey and secretKey both or none',
    valid: [
      {},
      { accessKey: 'AKIAEXAMPLE', secretKey: 'secret' },
      { accessKey: 'AKIAEXAMPLE', secretKey: 'secret', token: 'session' },
    ],
    invalid: [
      {
        patch: { accessKey: 'AKIAEXAMPLE' },
        path: 'secretKey',
        says: ['both be set or both unset', 'set secretKey too'],
      },
      { patch: { secretKey: 'secret' }, path: 'accessKey', says: ['both be set or both unset', 'set accessKey too'] },
      { patch: { token: 'session' }, path: 'token', says: ['only works with accessKey and secretKey'] },
    ],
  },
  {
    rule: 'region names',
    valid: [
      { region: 'us-east-1' },
      { region: 'us-gov-west-1' },
      { region: 'cn-northwest-1' },
      { region: 'RegionOne', skipRegionValidation: true },
    ],
    invalid: [
      { patch: { region: 'US-East-1' }, path: 'region', says: ['"US-East-1"', 'us-east-1', 'skipRegionValidation'] },
      { patch: { amiRegions: ['eu-west-1', 'mars'] }, path: 'amiRegions.1', says: ['"mars"', 'region name'] },
      { patch: { region: '' }, path: 'region', says: ['non-empty string', '""'] },
    ],
  },
  {
    rule: 'custom EC2 endpoint',
    valid: [{ customEndpointEc2: 'http://127.0.0.1:5000' }, { customEndpointEc2: 'https://ec2.example.com' }],
    invalid: [
      { patch: { customEndpointEc2: 'ftp://x' }, path: 'customEndpointEc2', says: ['"ftp://x"', 'http(s) URL'] },
      { patch: { customEndpointEc2: 'not a url' }, path: 'customEndpointEc2', says: ['"not a url"', 'https://'] },
    ],
  },
  {
    rule: 'retries and flags',
    valid: [
      { maxRetries: 0 },
      { maxRetries: 20, insecureSkipTlsVerify: true, decodeAuthorizationMessages: true, skipMetadataApiCheck: true },
    ],
    invalid: [
      { patch: { maxRetries: -1 }, path: 'maxRetries', says: ['-1', 'from 0 to 100'] },
      { patch: { maxRetries: 1.5 }, path: 'maxRetries', says: ['1.5', 'integer'] },
      { patch: { insecureSkipTlsVerify: 'yes' }, path: 'insecureSkipTlsVerify', says: ['"yes"', 'true or false'] },
    ],
  },
  // --- Source
  {
    rule: 'source AMI required unless fromScratch',
    valid: [
      {},
      { sourceAmi: undefined, sourceAmiFilter: { filters: { name: 'debian-12-*' }, owners: ['amazon'] } },
      SCRATCH,
    ],
    invalid: [{ patch: { sourceAmi: undefined }, path: 'sourceAmi', says: ['sourceAmiFilter', 'fromScratch'] }],
  },
  {
    rule: 'source AMI id format',
    valid: [{ sourceAmi: 'ami-e81d5881' }],
    invalid: [{ patch: { sourceAmi: 'ami-123' }, path: 'sourceAmi', says: ['"ami-123"', 'ami-0123456789abcdef0'] }],
  },
  {
    rule: 'source filter needs owners',
    valid: [
      {
        sourceAmiFilter: {
          filters: { name: ['a-*', 'b-*'] },
          owners: ['self'],
          mostRecent: true,
          includeDeprecated: false,
        },
      },
    ],
    invalid: [
      {
        patch: { sourceAmiFilter: { filters: { name: 'x' } } },
        path: 'sourceAmiFilter.owners',
        says: ['is required', '"self"'],
      },
      {
        patch: { sourceAmiFilter: { filters: { name: 'x' }, owners: [] } },
        path: 'sourceAmiFilter.owners',
        says: ['is required'],
      },
      {
        patch: { sourceAmiFilter: { filters: { name: [] }, owners: ['self'] } },
        path: 'sourceAmiFilter.filters.name',
        says: ['[]', 'non-empty array'],
      },
      {
        patch: { sourceAmiFilter: { owners: ['self'], most_recent: true } },
        path: 'sourceAmiFilter.most_recent',
        says: ['did you mean `mostRecent`?'],
      },
    ],
  },
  // --- AMI name and description
  {
    rule: 'amiName required, 3-128 allowed characters (literal names checked now)',
    valid: [
      { amiName: 'abc' },
      { amiName: "Az09()[] ./-'@_" },
      { amiName: 'a'.repeat(128) },
      { amiName: '{{ .SourceAMIName | clean_resource_name }}' },
      { amiName: () => 'computed' },
    ],
    invalid: [
      { patch: { amiName: undefined }, path: 'amiName', says: ['is required', '{{timestamp}}'] },
      { patch: { amiName: 'ab' }, path: 'amiName', says: ['"ab"', '3 to 128', 'got 2'] },
      { patch: { amiName: 'a'.repeat(129) }, path: 'amiName', says: ['got 129'] },
      { patch: { amiName: 'my ami!' }, path: 'amiName', says: ['"my ami!"', '"!"', 'clean_resource_name'] },
      { patch: { amiName: 'x {{ timestmp }}' }, path: 'amiName', says: ['did you mean timestamp?', 'position 6'] },
      { patch: { amiName: 42 }, path: 'amiName', says: ['42', 'template string or a function'] },
    ],
  },
  {
    rule: 'amiDescription template and length',
    valid: [{ amiDescription: 'from {{.SourceAMI}} in {{.BuildRegion}}' }, { amiDescription: 'd'.repeat(255) }],
    invalid: [
      { patch: { amiDescription: 'd'.repeat(256) }, path: 'amiDescription', says: ['got 256', 'shorten'] },
      { patch: { amiDescription: '{{.MountPath}}' }, path: 'amiDescription', says: ['.MountPath is not available'] },
    ],
  },
  {
    rule: 'virtualization type and architecture',
    valid: [
      { amiVirtualizationType: 'hvm' },
      { amiVirtualizationType: 'paravirtual' },
      { amiArchitecture: 'arm64' },
      { amiArchitecture: 'x86_64_mac' },
    ],
    invalid: [
      { patch: { amiVirtualizationType: 'HVM' }, path: 'amiVirtualizationType', says: ['"HVM"', '"hvm"'] },
      { patch: { amiArchitecture: 'amd64' }, path: 'amiArchitecture', says: ['"amd64"', '"x86_64"'] },
    ],
  },
  // --- Sharing lists
  {
    rule: 'launch and snapshot permissions',
    valid: [
      {
        amiUsers: [ACCOUNT],
        amiGroups: ['all'],
        amiOrgArns: ['arn:aws:organizations::111122223333:organization/o-exampleorgid'],
        amiOuArns: ['arn:aws:organizations::111122223333:ou/o-exampleorgid/ou-ab12-cdef3456'],
        snapshotUsers: [ACCOUNT],
        snapshotGroups: ['all'],
        amiProductCodes: ['abc123'],
      },
    ],
    invalid: [
      { patch: { amiUsers: ['1234'] }, path: 'amiUsers.0', says: ['"1234"', '12-digit'] },
      { patch: { amiGroups: ['everyone'] }, path: 'amiGroups.0', says: ['"everyone"', '"all"'] },
      { patch: { amiOrgArns: ['o-123'] }, path: 'amiOrgArns.0', says: ['"o-123"', 'organization ARN'] },
      { patch: { amiOuArns: ['ou-1'] }, path: 'amiOuArns.0', says: ['"ou-1"', 'organizational unit ARN'] },
      { patch: { snapshotUsers: [123456789012] }, path: 'snapshotUsers.0', says: ['123456789012', '12-digit'] },
      { patch: { snapshotGroups: ['x'] }, path: 'snapshotGroups.0', says: ['"x"', '"all"'] },
      { patch: { amiUsers: 'x' }, path: 'amiUsers', says: ['"x"', 'an array'] },
    ],
  },
  // --- KMS
  {
    rule: 'KMS key formats',
    valid: [
      { encryptBoot: true, kmsKeyId: '1234abcd-12ab-34cd-56ef-1234567890ab' },
      { encryptBoot: true, kmsKeyId: 'mrk-1234abcd12ab34cd56ef1234567890ab' },
      { encryptBoot: true, kmsKeyId: 'alias/my-key' },
      { encryptBoot: true, kmsKeyId: KEY_ARN },
      {
        encryptBoot: true,
        kmsKeyId: 'arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      },
      { encryptBoot: true, kmsKeyId: 'arn:aws-cn:kms:cn-north-1:111122223333:alias/my-key' },
      { rootVolumeEncryptBoot: true, rootVolumeKmsKeyId: 'alias/aws/ebs' },
    ],
    invalid: [
      { patch: { encryptBoot: true, kmsKeyId: 'my-key' }, path: 'kmsKeyId', says: ['"my-key"', 'alias/my-key'] },
      {
        patch: { encryptBoot: true, kmsKeyId: 'arn:aws:kms:us-east-1:1111:key/x' },
        path: 'kmsKeyId',
        says: ['arn:aws:kms:us-east-1:1111:key/x'],
      },
      {
        patch: { rootVolumeEncryptBoot: true, rootVolumeKmsKeyId: 'key' },
        path: 'rootVolumeKmsKeyId',
        says: ['"key"'],
      },
      {
        patch: { encryptBoot: true, amiRegions: ['eu-west-1'], regionKmsKeyIds: { 'eu-west-1': 'nope' } },
        path: 'regionKmsKeyIds.eu-west-1',
        says: ['"nope"', '"" for the region\'s default key'],
      },
    ],
  },
  {
    rule: 'KMS keys require encryptBoot',
    valid: [
      { encryptBoot: true, kmsKeyId: 'alias/k' },
      { amiRegions: ['eu-west-1'], regionKmsKeyIds: { 'eu-west-1': '' } },
    ],
    invalid: [
      { patch: { kmsKeyId: 'alias/k' }, path: 'kmsKeyId', says: ['encryptBoot: true'] },
      { patch: { encryptBoot: false, kmsKeyId: 'alias/k' }, path: 'kmsKeyId', says: ['encryptBoot: true'] },
      {
        patch: { amiRegions: ['eu-west-1'], regionKmsKeyIds: { 'eu-west-1': 'alias/k' } },
        path: 'regionKmsKeyIds',
        says: ['encryptBoot: true'],
      },
    ],
  },
  {
    rule: 'regionKmsKeyIds and amiRegions match',
    valid: [
      {
        encryptBoot: true,
        amiRegions: ['eu-west-1', 'us-west-2'],
        regionKmsKeyIds: { 'eu-west-1': 'alias/a', 'us-west-2': '' },
      },
    ],
    invalid: [
      {
        patch: {
          encryptBoot: true,
          amiRegions: ['eu-west-1', 'us-west-2'],
          regionKmsKeyIds: { 'eu-west-1': 'alias/a' },
        },
        path: 'amiRegions.1',
        says: ['"us-west-2"', 'regionKmsKeyIds'],
      },
      {
        patch: {
          encryptBoot: true,
          amiRegions: ['eu-west-1'],
          regionKmsKeyIds: { 'eu-west-1': 'alias/a', 'ap-south-1': 'alias/b' },
        },
        path: 'regionKmsKeyIds.ap-south-1',
        says: ['"ap-south-1"', 'not in amiRegions'],
      },
    ],
  },
  {
    rule: 'no sharing of images encrypted with a default key',
    valid: [
      { amiUsers: [ACCOUNT], encryptBoot: true, kmsKeyId: KEY_ARN },
      { amiUsers: [ACCOUNT] },
      {
        amiOrgArns: ['arn:aws:organizations::111122223333:organization/o-exampleorgid'],
        rootVolumeEncryptBoot: true,
        rootVolumeKmsKeyId: KEY_ARN,
      },
      { snapshotUsers: [ACCOUNT], encryptBoot: true, kmsKeyId: KEY_ARN },
    ],
    invalid: [
      {
        patch: { amiUsers: [ACCOUNT], encryptBoot: true },
        path: 'kmsKeyId',
        says: ['default KMS key', 'customer managed key'],
      },
      {
        patch: {
          amiOuArns: ['arn:aws:organizations::111122223333:ou/o-exampleorgid/ou-ab12-cdef3456'],
          encryptBoot: true,
          kmsKeyId: 'alias/aws/ebs',
        },
        path: 'kmsKeyId',
        says: ['default KMS key'],
      },
      {
        patch: {
          amiUsers: [ACCOUNT],
          encryptBoot: true,
          kmsKeyId: KEY_ARN,
          amiRegions: ['eu-west-1'],
          regionKmsKeyIds: { 'eu-west-1': '' },
        },
        path: 'regionKmsKeyIds.eu-west-1',
        says: ['default KMS key in eu-west-1'],
      },
      {
        patch: { amiUsers: [ACCOUNT], rootVolumeEncryptBoot: true },
        path: 'rootVolumeKmsKeyId',
        says: ['default KMS key', 'rootVolumeKmsKeyId'],
      },
      {
        patch: { snapshotUsers: [ACCOUNT], encryptBoot: true },
        path: 'snapshotUsers',
        says: ['default KMS key', 'ebs-modifying-snapshot-permissions'],
      },
      {
        patch: {
          snapshotUsers: [ACCOUNT],
          encryptBoot: true,
          kmsKeyId: KEY_ARN,
          amiRegions: ['eu-west-1'],
          regionKmsKeyIds: { 'eu-west-1': '' },
        },
        path: 'regionKmsKeyIds.eu-west-1',
        says: ['cannot share snapshots'],
      },
    ],
  },
  {
    rule: 'rootVolumeKmsKeyId requires rootVolumeEncryptBoot true',
    valid: [{ rootVolumeEncryptBoot: true, rootVolumeKmsKeyId: KEY_ARN }, { rootVolumeEncryptBoot: true }],
    invalid: [
      {
        patch: { rootVolumeKmsKeyId: KEY_ARN },
        path: 'rootVolumeKmsKeyId',
        says: [KEY_ARN, 'rootVolumeEncryptBoot: true'],
      },
      {
        patch: { rootVolumeEncryptBoot: false, rootVolumeKmsKeyId: KEY_ARN },
        path: 'rootVolumeKmsKeyId',
        says: ['rootVolumeEncryptBoot: true'],
      },
    ],
  },
  {
    rule: 'skipSaveBuildRegion needs a copy region',
    valid: [{ skipSaveBuildRegion: true, amiRegions: ['eu-west-1'] }],
    invalid: [
      {
        patch: { skipSaveBuildRegion: true },
        path: 'skipSaveBuildRegion',
        says: ['no AMI would be kept', 'add amiRegions'],
      },
    ],
  },
  // --- Platform features
  {
    rule: 'boot mode, UEFI data, TPM, IMDS',
    valid: [
      { bootMode: 'uefi', uefiData: 'QUJDRA==', tpmSupport: 'v2.0' },
      { bootMode: 'uefi-preferred' },
      { amiArchitecture: 'arm64', uefiData: 'QUJD' },
      { imdsSupport: 'v2.0' },
      { imdsSupport: '' },
    ],
    invalid: [
      { patch: { bootMode: 'bios' }, path: 'bootMode', says: ['"bios"', '"legacy-bios"'] },
      {
        patch: { bootMode: 'legacy-bios', uefiData: 'QUJD' },
        path: 'uefiData',
        says: ['legacy-bios', 'set bootMode to "uefi"'],
      },
      { patch: { uefiData: 'QUJD' }, path: 'bootMode', says: ['"uefi"', 'uefiData'] },
      { patch: { bootMode: 'uefi', uefiData: 'not base64!' }, path: 'uefiData', says: ['"not base64!"', 'base64'] },
      { patch: { tpmSupport: 'v1.2' }, path: 'tpmSupport', says: ['"v1.2"', '"v2.0"'] },
      {
        patch: { tpmSupport: 'v2.0', bootMode: 'legacy-bios' },
        path: 'tpmSupport',
        says: ['legacy-bios', 'set bootMode to "uefi"'],
      },
      { patch: { imdsSupport: 'v1' }, path: 'imdsSupport', says: ['"v1"', '"v2.0"'] },
    ],
  },
  {
    rule: 'enhanced networking needs HVM',
    valid: [
      { enaSupport: true },
      { enaSupport: true, sriovSupport: true, amiVirtualizationType: 'hvm' },
      { enaSupport: false, amiVirtualizationType: 'paravirtual' },
    ],
    invalid: [
      {
        patch: { enaSupport: true, amiVirtualizationType: 'paravirtual' },
        path: 'enaSupport',
        says: ['HVM', 'set it to "hvm"'],
      },
      { patch: { sriovSupport: true, amiVirtualizationType: 'paravirtual' }, path: 'sriovSupport', says: ['HVM'] },
    ],
  },
  {
    rule: 'deprecateAt is RFC 3339',
    valid: [
      { deprecateAt: `${YEAR + 2}-01-02T03:04:05Z` },
      { deprecateAt: `${YEAR + 2}-01-02T03:04:05.5+02:00` },
      { deprecateAt: new Date(`${YEAR + 2}-01-01T00:00:00Z`) },
    ],
    invalid: [
      { patch: { deprecateAt: '2099-01-02' }, path: 'deprecateAt', says: ['"2099-01-02"', 'YYYY-MM-DDTHH:MM:SSZ'] },
      { patch: { deprecateAt: '2099-13-45T03:04:05Z' }, path: 'deprecateAt', says: ['"2099-13-45T03:04:05Z"'] },
      { patch: { deprecateAt: new Date('nope') }, path: 'deprecateAt', says: ['an invalid Date'] },
    ],
  },
  {
    rule: "deprecateAt is in the future and within EnableImageDeprecation's limits",
    valid: [
      { deprecateAt: inDays(1) },
      { deprecateAt: inDays(365 * 10 - 3) },
      { deprecateAt: new Date(Date.now() + 3_600_000) },
      { deprecateAt: inDays(365 * 2 - 3), amiGroups: ['all'] },
    ],
    invalid: [
      {
        patch: { deprecateAt: '2001-01-01T00:00:00Z' },
        path: 'deprecateAt',
        says: ['2001-01-01T00:00:00.000Z', 'not in the future', 'set a later time'],
      },
      { patch: { deprecateAt: new Date(Date.now() - 60_000) }, path: 'deprecateAt', says: ['not in the future'] },
      {
        patch: { deprecateAt: inDays(365 * 10 + 5) },
        path: 'deprecateAt',
        says: ['more than 10 years ahead', '10 years from now', 'no later than'],
      },
      {
        patch: { deprecateAt: inDays(365 * 2 + 5), amiGroups: ['all'] },
        path: 'deprecateAt',
        says: ['more than 2 years ahead', 'a public AMI', 'no later than'],
      },
    ],
  },
  {
    rule: 'deregistration protection and time-based copies',
    valid: [
      { deregistrationProtection: { enabled: true, withCooldown: true } },
      { snapshotCopyDurationMinutes: 15 },
      { snapshotCopyDurationMinutes: 2880 },
    ],
    invalid: [
      {
        patch: { deregistrationProtection: { enabled: true, with_cooldown: true } },
        path: 'deregistrationProtection.with_cooldown',
        says: ['did you mean `withCooldown`?'],
      },
      {
        patch: { snapshotCopyDurationMinutes: 20 },
        path: 'snapshotCopyDurationMinutes',
        says: ['20', 'multiple of 15'],
      },
      { patch: { snapshotCopyDurationMinutes: 2895 }, path: 'snapshotCopyDurationMinutes', says: ['2895', '48 hours'] },
    ],
  },
  {
    rule: 'tags',
    valid: [
      {
        tags: { Name: '{{.SourceAMIName}}', Base: '{{ .SourceAMITags.os }}' },
        snapshotTags: { a: 'b' },
        rootVolumeTags: { Purpose: 'ami-chroot', Region: '{{.BuildRegion}}' },
      },
    ],
    invalid: [
      {
        patch: { tags: { 'aws:owner': 'x' } },
        path: 'tags.aws:owner',
        says: ['"aws:owner"', 'not starting with "aws:"'],
      },
      { patch: { snapshotTags: { k: 'v'.repeat(257) } }, path: 'snapshotTags.k', says: ['got 257', 'shorten'] },
      {
        patch: { rootVolumeTags: { k: '{{ .Device }}' } },
        path: 'rootVolumeTags.k',
        says: ['.Device is not available in rootVolumeTags'],
      },
      { patch: { tags: ['a'] }, path: 'tags', says: ['["a"]', 'object of tag names'] },
    ],
  },
  // --- From scratch
  {
    rule: 'fromScratch requirements',
    valid: [SCRATCH, { ...SCRATCH, rootVolumeType: 'gp3', rootVolumeIops: 4000 }],
    invalid: [
      {
        patch: { ...SCRATCH, rootVolumeSize: undefined },
        path: 'rootVolumeSize',
        says: ['required with fromScratch', 'rootVolumeSize: 8'],
      },
      {
        patch: { ...SCRATCH, preMountCommands: [] },
        path: 'preMountCommands',
        says: ['required with fromScratch', '{{.Device}}'],
      },
      {
        patch: { ...SCRATCH, amiVirtualizationType: undefined },
        path: 'amiVirtualizationType',
        says: ['required with fromScratch', '"hvm"'],
      },
      { patch: { ...SCRATCH, rootDeviceName: undefined }, path: 'rootDeviceName', says: ['required with fromScratch'] },
      {
        patch: { ...SCRATCH, amiBlockDeviceMappings: undefined },
        path: 'amiBlockDeviceMappings',
        says: ['required with fromScratch', 'deviceName'],
      },
      {
        patch: { ...SCRATCH, rootVolumeType: 'io1', rootVolumeIops: 400 },
        path: 'rootVolumeType',
        says: ['io1 cannot be used', '"gp3"'],
      },
      { patch: { ...SCRATCH, rootVolumeIops: 4000 }, path: 'rootVolumeIops', says: ['gp2 volumes do not take IOPS'] },
      { patch: { ...SCRATCH, rootVolumeType: 'io2' }, path: 'rootVolumeIops', says: ['io2 volumes need IOPS'] },
    ],
  },
  // --- Custom mappings on an existing image
  {
    rule: 'amiBlockDeviceMappings need rootDeviceName and rootVolumeSize',
    valid: [
      {
        amiBlockDeviceMappings: [{ deviceName: '/dev/xvda', volumeType: 'gp3' }],
        rootDeviceName: '/dev/xvda',
        rootVolumeSize: 10,
      },
    ],
    invalid: [
      {
        patch: { amiBlockDeviceMappings: [{ deviceName: '/dev/xvda' }], rootVolumeSize: 10 },
        path: 'rootDeviceName',
        says: ['required with amiBlockDeviceMappings'],
      },
      {
        patch: { rootDeviceName: '/dev/xvda' },
        path: 'amiBlockDeviceMappings',
        says: ['required with rootDeviceName'],
      },
      {
        patch: { amiBlockDeviceMappings: [{ deviceName: '/dev/xvda' }], rootDeviceName: '/dev/xvda' },
        path: 'rootVolumeSize',
        says: ['required with amiBlockDeviceMappings'],
      },
      {
        patch: { amiBlockDeviceMappings: [{ deviceName: '/dev/xvda' }], rootDeviceName: 'xvda', rootVolumeSize: 10 },
        path: 'rootDeviceName',
        says: ['"xvda"', 'mapped: "/dev/xvda"'],
      },
    ],
  },
  {
    rule: 'block device mapping fields',
    valid: [
      {
        ...SCRATCH,
        amiBlockDeviceMappings: [
          { deviceName: 'xvda', volumeType: 'gp3', iops: 3000, throughput: 125, deleteOnTermination: true },
          {
            deviceName: '/dev/sdb',
            volumeSize: 100,
            volumeType: 'io2',
            iops: 100_000,
            encrypted: true,
          },
          { deviceName: '/dev/sdc', snapshotId: 'snap-0123456789abcdef0' },
          { deviceName: '/dev/sdd', virtualName: 'ephemeral0' },
          { deviceName: '/dev/sde', noDevice: true },
          { deviceName: '/dev/sdf', volumeSize: 125, volumeType: 'st1' },
        ],
      },
    ],
    invalid: [
      ...(
        [
          [{ volumeSize: 10 }, 'deviceName', ['is required', '/dev/sdb']],
          [{ deviceName: '/dev/sdb' }, 'volumeSize', ['is required unless snapshotId']],
          [{ deviceName: '/dev/sdb', volumeSize: 10, iops: 3000 }, 'iops', ['"gp3", "io1" or "io2"']],
          [
            { deviceName: '/dev/sdb', volumeSize: 10, volumeType: 'gp2', iops: 3000 },
            'iops',
            ['gp2 volumes do not take IOPS'],
          ],
          [
            { deviceName: '/dev/sdb', volumeSize: 100, volumeType: 'io1', iops: 99 },
            'iops',
            ['from 100 to 64000', 'got 99'],
          ],
          [{ deviceName: '/dev/sdb', volumeSize: 2000, volumeType: 'io1', iops: 64_001 }, 'iops', ['got 64001']],
          [
            { deviceName: '/dev/sdb', volumeSize: 10, volumeType: 'io1', iops: 600 },
            'iops',
            ['at most 50 IOPS per GiB', 'at least 12 GiB'],
          ],
          [
            { deviceName: '/dev/sdb', volumeSize: 1000, volumeType: 'io2', iops: 256_001 },
            'iops',
            ['from 100 to 256000'],
          ],
          [{ deviceName: '/dev/sdb', volumeSize: 10, volumeType: 'io2', iops: 10_001 }, 'iops', ['1000 IOPS per GiB']],
          [{ deviceName: '/dev/sdb', volumeSize: 100, volumeType: 'gp3', iops: 2999 }, 'iops', ['from 3000 to 80000']],
          [{ deviceName: '/dev/sdb', volumeSize: 1000, volumeType: 'gp3', iops: 80_001 }, 'iops', ['got 80001']],
          [{ deviceName: '/dev/sdb', volumeSize: 10, volumeType: 'gp3', iops: 6000 }, 'iops', ['500 IOPS per GiB']],
          [{ deviceName: '/dev/sdb', volumeSize: 10, volumeType: 'io1' }, 'iops', ['io1 volumes need IOPS']],
          [
            { deviceName: '/dev/sdb', volumeSize: 10, volumeType: 'gp2', throughput: 200 },
            'throughput',
            ['gp3 volumes only', 'gp2'],
          ],
          [
            { deviceName: '/dev/sdb', volumeSize: 10, volumeType: 'gp3', throughput: 124 },
            'throughput',
            ['124', 'from 125 to 2000'],
          ],
          [{ deviceName: '/dev/sdb', volumeSize: 10, volumeType: 'gp3', throughput: 2001 }, 'throughput', ['2001']],
          // RegisterImage rejects a KMS key in a mapping, encrypted or not.
          ...[{}, { encrypted: true }].map(
            (extra) =>
              [
                { deviceName: '/dev/sdb', volumeSize: 10, kmsKeyId: KEY_ARN, ...extra },
                'kmsKeyId',
                [KEY_ARN, 'RegisterImage does not accept a KMS key', 'encryptBoot: true and the top-level kmsKeyId'],
              ] as const,
          ),
          [{ deviceName: '/dev/sdb', volumeSize: 10, volumeType: 'gp4' }, 'volumeType', ['"gp4"', '"gp3"']],
          [
            { deviceName: '/dev/sdb', volumeSize: 1025, volumeType: 'standard' },
            'volumeSize',
            ['from 1 to 1024 GiB', 'got 1025'],
          ],
          [{ deviceName: '/dev/sdb', volumeSize: 100, volumeType: 'st1' }, 'volumeSize', ['from 125 to 16384']],
          [{ deviceName: '/dev/sdb', volumeSize: 65_537 }, 'volumeSize', ['65537', 'from 1 to 65536']],
          [{ deviceName: '/dev/sdb', noDevice: true, volumeSize: 10 }, 'noDevice', ['volumeSize cannot be set']],
          [
            { deviceName: '/dev/sdb', virtualName: 'ephemeral0', volumeSize: 10 },
            'virtualName',
            ['instance store', 'volumeSize'],
          ],
          [{ deviceName: '/dev/sdb', virtualName: 'eph0' }, 'virtualName', ['"eph0"', 'ephemeral0']],
          [{ deviceName: '/dev/sdb', snapshotId: 'snap-1' }, 'snapshotId', ['"snap-1"']],
          [{ deviceName: '/dev/sdb', volumeSize: 10, size: 5 }, 'size', ['is not an option', 'remove it']],
        ] as const
      ).map(([mapping, field, says]) => ({
        patch: { ...SCRATCH, amiBlockDeviceMappings: [{ deviceName: 'xvda' }, mapping] },
        path: `amiBlockDeviceMappings.1.${field}`,
        says: says,
      })),
      {
        patch: { ...SCRATCH, amiBlockDeviceMappings: [{ deviceName: 'xvda' }, { deviceName: 'xvda', volumeSize: 1 }] },
        path: 'amiBlockDeviceMappings.1.deviceName',
        says: ['"xvda"', 'duplicates amiBlockDeviceMappings.0'],
      },
      {
        patch: { ...SCRATCH, amiBlockDeviceMappings: [{ deviceName: 'xvda', volumeType: 'sc1' }] },
        path: 'amiBlockDeviceMappings.0.volumeType',
        says: ['root device cannot be sc1'],
      },
    ],
  },
  // --- Root volume
  {
    rule: 'root volume size, type, IOPS and throughput',
    valid: [
      { rootVolumeSize: 1 },
      { rootVolumeSize: 65_536, rootVolumeType: 'gp3', rootVolumeIops: 16_000, rootVolumeThroughput: 1000 },
      { rootVolumeIops: 5000 },
      { rootVolumeType: 'io2', rootVolumeIops: 100, rootVolumeSize: 8 },
    ],
    invalid: [
      { patch: { rootVolumeSize: 0 }, path: 'rootVolumeSize', says: ['got 0', 'from 1 to 65536'] },
      { patch: { rootVolumeSize: 65_537 }, path: 'rootVolumeSize', says: ['65537'] },
      { patch: { rootVolumeSize: 8.5 }, path: 'rootVolumeSize', says: ['8.5', 'integer'] },
      {
        patch: { rootVolumeSize: 20_000, rootVolumeType: 'gp2' },
        path: 'rootVolumeSize',
        says: ['gp2 volumes must be from 1 to 16384 GiB', 'got 20000'],
      },
      { patch: { rootVolumeType: 'st1' }, path: 'rootVolumeType', says: ['"st1"', 'cannot be boot volumes'] },
      {
        patch: { rootVolumeType: 'gp2', rootVolumeIops: 3000 },
        path: 'rootVolumeIops',
        says: ['gp2 volumes do not take IOPS'],
      },
      {
        patch: { rootVolumeType: 'gp3', rootVolumeIops: 100_000 },
        path: 'rootVolumeIops',
        says: ['from 3000 to 80000'],
      },
      {
        patch: { rootVolumeType: 'io1', rootVolumeIops: 1000, rootVolumeSize: 8 },
        path: 'rootVolumeIops',
        says: ['50 IOPS per GiB', 'at least 20 GiB'],
      },
      {
        patch: { rootVolumeType: 'io1', rootVolumeThroughput: 500 },
        path: 'rootVolumeThroughput',
        says: ['gp3 volumes only'],
      },
      { patch: { rootVolumeThroughput: 3000 }, path: 'rootVolumeThroughput', says: ['3000', 'from 125 to 2000'] },
    ],
  },
  {
    rule: 'root volume initialization rate: 100-300 MiB/s, from a snapshot only',
    valid: [{ rootVolumeInitializationRate: 100 }, { rootVolumeInitializationRate: 300 }],
    invalid: [
      {
        patch: { rootVolumeInitializationRate: 99 },
        path: 'rootVolumeInitializationRate',
        says: ['99', 'from 100 to 300', 'leave it unset'],
      },
      { patch: { rootVolumeInitializationRate: 301 }, path: 'rootVolumeInitializationRate', says: ['301'] },
      { patch: { rootVolumeInitializationRate: 150.5 }, path: 'rootVolumeInitializationRate', says: ['150.5'] },
      {
        patch: { ...SCRATCH, rootVolumeInitializationRate: 200 },
        path: 'rootVolumeInitializationRate',
        says: ['fromScratch', 'no snapshot'],
      },
    ],
  },
  // --- Chroot
  {
    rule: 'chroot mounts are triples with absolute targets, not mounted twice',
    valid: [
      {
        chrootMounts: [
          ['proc', 'proc', '/proc'],
          ['bind', '/dev', '/dev'],
        ],
      },
      { chrootMounts: [{ fsType: 'tmpfs', source: 'tmpfs', target: '/run' }] },
      { extraChrootMounts: [['tmpfs', 'tmpfs', '/dev/shm']] },
      { chrootMounts: [], extraChrootMounts: [['proc', 'proc', '/proc']] },
    ],
    invalid: [
      {
        patch: { chrootMounts: [['proc', '/proc']] },
        path: 'chrootMounts.0',
        says: ['["proc","/proc"]', 'three elements'],
      },
      { patch: { chrootMounts: [['proc', 'proc', 'proc']] }, path: 'chrootMounts.0', says: ['absolute target'] },
      {
        patch: { chrootMounts: [{ fsType: 'proc', src: 'proc', target: '/proc' }] },
        path: 'chrootMounts.0',
        says: ['fsType, source, target'],
      },
      {
        patch: { extraChrootMounts: [['bind', '/dev', '/dev']] },
        path: 'extraChrootMounts.0',
        says: ['/dev again', 'default chroot mounts', 'replace the list with chrootMounts'],
      },
      {
        patch: {
          chrootMounts: [
            ['proc', 'proc', '/proc'],
            ['proc', 'proc', '/proc'],
          ],
        },
        path: 'chrootMounts.1',
        says: ['already mounted by chrootMounts.0'],
      },
    ],
  },
  {
    rule: 'copied files are absolute paths',
    valid: [{ copyFiles: [] }, { copyFiles: ['/etc/resolv.conf', '/etc/hosts'] }],
    invalid: [{ patch: { copyFiles: ['etc/hosts'] }, path: 'copyFiles.0', says: ['"etc/hosts"', 'absolute path'] }],
  },
  {
    rule: 'command wrapper runs the command',
    valid: [
      { commandWrapper: 'sudo {{.Command}}' },
      { commandWrapper: 'env LANG=C {{ .Command }}' },
      { commandWrapper: (d: { Command?: string }) => `nice ${d.Command}` },
    ],
    invalid: [
      { patch: { commandWrapper: 'sudo' }, path: 'commandWrapper', says: ['"sudo"', 'must contain {{.Command}}'] },
      { patch: { commandWrapper: 'sudo {{.Device}}' }, path: 'commandWrapper', says: ['available here: .Command'] },
    ],
  },
  {
    rule: 'device paths',
    valid: [{ devicePath: '/dev/sdf' }, { devicePath: '/dev/xvdp' }, { nvmeDevicePath: '/dev/nvme1n1p' }],
    invalid: [
      { patch: { devicePath: '/dev/sdz' }, path: 'devicePath', says: ['"/dev/sdz"', '/dev/sdf to /dev/sdp'] },
      { patch: { devicePath: 'sdf' }, path: 'devicePath', says: ['"sdf"'] },
      { patch: { nvmeDevicePath: 'nvme1n1' }, path: 'nvmeDevicePath', says: ['"nvme1n1"', '/dev/nvme1n1p'] },
    ],
  },
  {
    rule: 'mount path, partition and options',
    valid: [
      { mountPath: '/mnt/chroot/{{.Device}}' },
      { mountPartition: '0' },
      { mountPartition: 2 },
      { mountOptions: ['nouuid', 'noatime,ro'] },
    ],
    invalid: [
      { patch: { mountPath: 'mnt/{{.Device}}' }, path: 'mountPath', says: ['"mnt/{{.Device}}"', 'absolute path'] },
      { patch: { mountPath: '{{.Device}}' }, path: 'mountPath', says: ['absolute path'] },
      {
        patch: { mountPath: '/mnt/{{.MountPath}}' },
        path: 'mountPath',
        says: ['.MountPath is not available in mountPath'],
      },
      { patch: { mountPartition: 'one' }, path: 'mountPartition', says: ['"one"', '"0" for the whole device'] },
      { patch: { mountPartition: -1 }, path: 'mountPartition', says: ['-1'] },
      { patch: { mountOptions: ['no uuid'] }, path: 'mountOptions.0', says: ['"no uuid"', 'without spaces'] },
    ],
  },
  {
    rule: 'pre- and post-mount commands',
    valid: [
      {
        preMountCommands: ['parted {{.Device}} print'],
        postMountCommands: ['ls {{.MountPath}} {{.Device}}', (d: { MountPath?: string }) => `ls ${d.MountPath}`],
      },
    ],
    invalid: [
      {
        patch: { preMountCommands: ['ls {{.MountPath}}'] },
        path: 'preMountCommands.0',
        says: ['.MountPath is not available in preMountCommands'],
      },
      {
        patch: { postMountCommands: ['ls {{.Command}}'] },
        path: 'postMountCommands.0',
        says: ['.Command is not available'],
      },
      { patch: { postMountCommands: [''] }, path: 'postMountCommands.0', says: ['""', 'non-empty template'] },
    ],
  },
  // --- Ours
  {
    rule: 'polling numbers',
    valid: [
      {
        polling: {
          delayMs: 1000,
          maxAttempts: 5,
          waits: { snapshotCompleted: { timeoutMs: 60_000, minDelayMs: 500, maxDelayMs: 5000 } },
        },
      },
      { polling: { waits: { copyAvailable: { firstDelayMs: 0 } } } },
    ],
    invalid: [
      { patch: { polling: { delayMs: 0 } }, path: 'polling.delayMs', says: ['got 0', 'positive integer'] },
      { patch: { polling: { maxAttempts: 1.5 } }, path: 'polling.maxAttempts', says: ['1.5'] },
      {
        patch: { polling: { waits: { snapshotComplete: {} } } },
        path: 'polling.waits.snapshotComplete',
        says: ['did you mean `snapshotCompleted`?'],
      },
      {
        patch: { polling: { waits: { imageAvailable: { minDelayMs: 9000, maxDelayMs: 1000 } } } },
        path: 'polling.waits.imageAvailable.minDelayMs',
        says: ['9000', 'must not exceed maxDelayMs (1000)'],
      },
      {
        patch: { polling: { waits: { copyAvailable: { firstDelayMs: -1 } } } },
        path: 'polling.waits.copyAvailable.firstDelayMs',
        says: ['-1'],
      },
    ],
  },
  {
    rule: 'lock dir, build id, keepOnError, serviceGuard',
    valid: [{ lockDir: '/run/lock/x', buildId: 'build-2024.03_05', keepOnError: true, serviceGuard: false }],
    invalid: [
      { patch: { lockDir: 'lock' }, path: 'lockDir', says: ['"lock"', 'absolute path'] },
      { patch: { buildId: 'bad id!' }, path: 'buildId', says: ['"bad id!"', '1 to 64 characters'] },
      { patch: { keepOnError: 'no' }, path: 'keepOnError', says: ['"no"', 'true or false'] },
    ],
  },
  {
    rule: 'unknown options get a suggestion',
    valid: [],
    invalid: [
      { patch: { aminame: 'x' }, path: 'aminame', says: ['is not an option', 'did you mean `amiName`?'] },
      {
        patch: { ami_regions: ['eu-west-1'] },
        path: 'ami_regions',
        says: ['did you mean `amiRegions`?', 'fromPackerConfig'],
      },
      { patch: { rootVolumeSise: 8 }, path: 'rootVolumeSise', says: ['did you mean `rootVolumeSize`?'] },
      { patch: { frobnicate: true }, path: 'frobnicate', says: ['is not an option (remove it)'] },
    ],
  },
];

describe('validation rules', () => {
  for (const { rule, valid, invalid } of RULES) {
    describe(rule, () => {
      it.each(
        valid.map((patch) => [JSON.stringify(patch, (_, v) => (typeof v === 'function' ? '<fn>' : v)), patch] as const),
      )('accepts %s', (_, patch) => {
        expect(issuesOf(build(patch))).toEqual([]);
      });
      it.each(invalid.map((row) => [row.path, row] as const))('reports %s', (_, { patch, path, says }) => {
        const issues = issuesOf(build(patch));
        const match = issues.find((i) => i.path === path);
        expect(match, `no issue at ${path}; got ${JSON.stringify(issues.map((i) => i.path))}`).toBeDefined();
        for (const text of says) expect(match!.message).toContain(text);
      });
    });
  }
});

describe('validation as a whole', () => {
  it('reports every problem at once, in one ConfigError', () => {
    const error = (() => {
      try {
        resolveConfig(
          build({ amiName: 'x', sourceAmi: 'ami-1', rootVolumeSize: -5, devicePath: '/dev/sda', ami_users: [] }),
          {},
        );
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.code).toBe('ERR_CONFIG');
    expect(error.phase).toBe('validate');
    expect(error.issues.map((i) => i.path).sort()).toEqual([
      'amiName',
      'ami_users',
      'devicePath',
      'rootVolumeSize',
      'sourceAmi',
    ]);
    expect(error.message).toContain('5 problems');
    for (const issue of error.issues) expect(error.message).toContain(`${issue.path}: ${issue.message}`);
  });

  it('keeps the bad value on each issue', () => {
    const [issue] = issuesOf(build({ rootVolumeType: 'gp9' }));
    expect(issue).toMatchObject({ path: 'rootVolumeType', value: 'gp9' });
  });

  it('never shows secrets in issues or messages', () => {
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    const issues = issuesOf(build({ secretKey: secret, token: 12345, mfaCode: '' }));
    expect(issues.map((i) => i.path).sort()).toEqual(['accessKey', 'mfaCode', 'token', 'token']);
    for (const issue of issues) {
      expect(JSON.stringify(issue)).not.toContain(secret);
      expect(issue.message).not.toContain('12345');
      if (issue.value !== undefined) expect(issue.value).toBe('[redacted]');
    }
  });

  it('rejects something that is not a config object', () => {
    for (const input of [null, 'amiName', [BASE]]) {
      const issues = issuesOf(input);
      expect(issues[0]).toMatchObject({ path: '' });
      expect(issues[0]!.message).toContain('BuildConfig object');
    }
  });

  it('runs no rule twice for one mistake of type', () => {
    // A mistyped required value is reported as mistyped, not also as missing.
    const issues = issuesOf(build({ ...SCRATCH, rootVolumeSize: '8' }));
    expect(issues.filter((i) => i.path === 'rootVolumeSize')).toHaveLength(1);
  });
});

describe('validateAmiName', () => {
  it('accepts names EC2 accepts', () => {
    expect(() => validateAmiName("debian-12 (2024-03-05) [x] ./-'@_")).not.toThrow();
  });

  it.each([
    ['ab', '3 to 128'],
    ['a'.repeat(129), 'got 129'],
    ['debian:12', 'clean_resource_name'],
    ['naïve', '"ï"'],
  ])('rejects %j', (name, says) => {
    try {
      validateAmiName(name);
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const issue = (error as ConfigError).issues[0]!;
      expect(issue).toMatchObject({ path: 'amiName', value: name });
      expect(issue.message).toContain(says);
    }
  });
});
