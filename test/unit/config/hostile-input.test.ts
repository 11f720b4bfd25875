import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import type { ConfigIssue } from '../../../src/errors.js';
import { fromPackerConfig } from '../../../src/config/packer.js';
import { resolveConfig } from '../../../src/config/resolve.js';
import type { BuildConfig } from '../../../src/config/types.js';

// Issue 11 items 8, 9, 12 and issue 13 item 6: hostile or odd values get ConfigErrors that name
// the option, found at validation (before any side effect), all at once.

const BASE = { amiName: 'test {{timestamp}}', sourceAmi: 'ami-0123456789abcdef0' };

function issues(run: () => unknown): readonly ConfigIssue[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  return [];
}
const resolveIssues = (patch: Record<string, unknown>): readonly ConfigIssue[] =>
  issues(() => resolveConfig({ ...BASE, ...patch }, {}));
const packerIssues = (patch: Record<string, unknown>): readonly ConfigIssue[] =>
  issues(() => fromPackerConfig({ ami_name: 'test {{timestamp}}', source_ami: 'ami-0123456789abcdef0', ...patch }));
/** An object with an own key, however the key is spelt (JSON.parse makes "__proto__" an own key). */
const own = (key: string, value: unknown): Record<string, unknown> =>
  JSON.parse(`{${JSON.stringify(key)}: ${JSON.stringify(value)}}`) as Record<string, unknown>;

describe('reserved key names (issue 11 item 8)', () => {
  const RESERVED = ['constructor', 'prototype', '__proto__'];
  describe.each(RESERVED)('%s', (key) => {
    it('at the top level of resolveConfig', () => {
      const config = { ...BASE, ...own(key, 'x') };
      expect(issues(() => resolveConfig(config as unknown as BuildConfig, {})).map((i) => i.path)).toContain(key);
    });
    it('as a tag name', () => {
      expect(resolveIssues({ tags: own(key, 'v') }).map((i) => i.path)).toContain(`tags.${key}`);
    });
    it('as a regionKmsKeyIds region', () => {
      const found = resolveIssues({
        encryptBoot: true,
        amiRegions: ['eu-west-1'],
        regionKmsKeyIds: { 'eu-west-1': '', ...own(key, '') },
      });
      expect(found.map((i) => i.path)).toContain(`regionKmsKeyIds.${key}`);
    });
    it('as a polling wait', () => {
      expect(resolveIssues({ polling: { waits: own(key, { timeoutMs: 1000 }) } }).map((i) => i.path)).toContain(
        `polling.waits.${key}`,
      );
    });
    it('as a source filter name', () => {
      const found = resolveIssues({
        sourceAmi: undefined,
        sourceAmiFilter: { owners: ['self'], filters: own(key, 'x') },
      });
      expect(found.map((i) => i.path)).toContain(`sourceAmiFilter.filters.${key}`);
    });
    it('at the top level of fromPackerConfig', () => {
      expect(packerIssues(own(key, 'x')).map((i) => i.path)).toContain(key);
    });
    it('as a Packer tag, filter name, region key and polling key', () => {
      expect(packerIssues({ tags: own(key, 'v') }).map((i) => i.path)).toContain(`tags.${key}`);
      expect(
        packerIssues({ source_ami: undefined, source_ami_filter: { owners: ['self'], filters: own(key, 'x') } }).map(
          (i) => i.path,
        ),
      ).toContain(`source_ami_filter.filters.${key}`);
      expect(
        packerIssues({
          encrypt_boot: true,
          ami_regions: ['eu-west-1'],
          region_kms_key_ids: { 'eu-west-1': '', ...own(key, '') },
        }).map((i) => i.path),
      ).toContain(`region_kms_key_ids.${key}`);
      expect(packerIssues({ aws_polling: own(key, 1) }).map((i) => i.path)).toContain(`aws_polling.${key}`);
    });
  });
});

describe('paths are checked at validation (issue 11 item 9)', () => {
  it.each([
    ['mountPath /', { mountPath: '/' }, 'mountPath'],
    ['mountPath /proc', { mountPath: '/proc' }, 'mountPath'],
    ['mountPath under /proc', { mountPath: '/proc/self/{{.Device}}' }, 'mountPath'],
    ['mountPath with ..', { mountPath: '/mnt/../etc/{{.Device}}' }, 'mountPath'],
    ['mountPath with NUL', { mountPath: '/mnt/\0{{.Device}}' }, 'mountPath'],
    ['mountPath that is only /', { mountPath: '//' }, 'mountPath'],
    ['nvmeDevicePath outside /dev', { nvmeDevicePath: '/dev/../etc/passwd' }, 'nvmeDevicePath'],
    ['copyFiles of /', { copyFiles: ['/'] }, 'copyFiles.0'],
    ['copyFiles with ..', { copyFiles: ['/etc/../../etc/shadow'] }, 'copyFiles.0'],
    ['chroot mount target /', { chrootMounts: [['bind', '/dev', '/']] }, 'chrootMounts.0'],
    ['chroot mount target with ..', { chrootMounts: [['bind', '/dev', '/dev/../../etc']] }, 'chrootMounts.0'],
    [
      'duplicate chroot mount targets',
      {
        chrootMounts: [
          ['proc', 'proc', '/proc'],
          ['proc', 'proc', '/proc/'],
        ],
      },
      'chrootMounts.1',
    ],
    ['lockDir with ..', { lockDir: '/tmp/../etc' }, 'lockDir'],
  ])('%s', (_, patch, path) => {
    expect(resolveIssues(patch).map((i) => i.path)).toContain(path);
  });
});

describe('numbers and dates (issue 11 item 12)', () => {
  it.each([
    ['mountPartition in exponent notation', { mountPartition: 1e21 }, 'mountPartition'],
    ['mountPartition as an exponent string', { mountPartition: '1e3' }, 'mountPartition'],
    ['an impossible date', { deprecateAt: '2030-02-30T00:00:00Z' }, 'deprecateAt'],
    ['an impossible hour', { deprecateAt: '2030-01-01T24:30:00Z' }, 'deprecateAt'],
    ['polling delay above a timer', { polling: { delayMs: 2 ** 31 } }, 'polling.delayMs'],
    [
      'wait timeout above a timer',
      { polling: { waits: { snapshotCompleted: { timeoutMs: 2 ** 31 } } } },
      'polling.waits.snapshotCompleted.timeoutMs',
    ],
    [
      'wait delay above a timer',
      { polling: { waits: { imageAvailable: { maxDelayMs: 1e12 } } } },
      'polling.waits.imageAvailable.maxDelayMs',
    ],
    [
      'first delay above a timer',
      { polling: { waits: { imageAvailable: { firstDelayMs: 2 ** 40 } } } },
      'polling.waits.imageAvailable.firstDelayMs',
    ],
  ])('%s', (_, patch, path) => {
    expect(resolveIssues(patch).map((i) => i.path)).toContain(path);
  });
  it('Packer partition numbers in exponent notation are refused', () => {
    expect(packerIssues({ mount_partition: 1e21 }).map((i) => i.path)).toContain('mount_partition');
  });
  it('a real leap day is accepted', () => {
    // The next leap year at least a year ahead: deprecateAt must be within EC2's 10 years.
    let year = new Date().getUTCFullYear() + 1;
    while (new Date(Date.UTC(year, 1, 29)).getUTCMonth() !== 1) year++;
    expect(resolveIssues({ deprecateAt: `${year}-02-29T00:00:00Z` })).toEqual([]);
  });
});

describe('every problem at once (issue 13 item 6)', () => {
  it('resolveConfig reports value errors next to unknown keys', () => {
    const paths = resolveIssues({ amiNmae: 'x', rootVolumeSize: -1 }).map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['amiNmae', 'rootVolumeSize']));
  });
  it('fromPackerConfig reports value errors next to unknown keys', () => {
    const paths = packerIssues({ ami_nmae: 'x', root_volume_size: -1 }).map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['ami_nmae', 'root_volume_size']));
  });
  it('every problem of one template string is reported', () => {
    const found = resolveIssues({ amiName: '{{ .Nope }} {{ nope }} {{ timestamp' }).filter((i) => i.path === 'amiName');
    expect(found.length).toBe(3);
  });
  it('a misplaced key suggests the closest key of its own section', () => {
    const message = resolveIssues({ polling: { waits: { snapshotCompleted: { timeOutMs: 1 } } } }).find(
      (i) => i.path === 'polling.waits.snapshotCompleted.timeOutMs',
    )?.message;
    expect(message).toMatch(/did you mean `timeoutMs`/);
    const mapping = resolveIssues({
      amiBlockDeviceMappings: [{ deviceName: '/dev/sdb', volumeSize: 1, volume_type: 'gp3' }],
    }).find((i) => i.path === 'amiBlockDeviceMappings.0.volume_type')?.message;
    expect(mapping).toMatch(/did you mean `volumeType`/);
    // A top-level option written inside a section names where it belongs.
    const misplaced = resolveIssues({ sourceAmiFilter: { owners: ['self'], amiName: 'x' }, sourceAmi: undefined }).find(
      (i) => i.path === 'sourceAmiFilter.amiName',
    )?.message;
    expect(misplaced).toMatch(/top level/);
  });
  it('empty tag values are valid', () => {
    expect(resolveIssues({ tags: { Empty: '' }, snapshotTags: { Empty: '' }, rootVolumeTags: { Empty: '' } })).toEqual(
      [],
    );
    expect(packerIssues({ tags: { Empty: '' } })).toEqual([]);
  });
});
