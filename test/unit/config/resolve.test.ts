import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { copyTargetRegions, defineConfig, resolveConfig } from '../../../src/config/resolve.js';
import { createTemplateClock } from '../../../src/config/templates.js';
import type { BuildConfig, ResolvedConfig } from '../../../src/config/types.js';

const BASE: BuildConfig = { amiName: 'test-ami {{timestamp}}', sourceAmi: 'ami-0123456789abcdef0' };
const SCRATCH: BuildConfig = {
  amiName: 'scratch',
  fromScratch: true,
  amiVirtualizationType: 'hvm',
  rootVolumeSize: 8,
  rootDeviceName: 'xvda',
  preMountCommands: ['mkfs.ext4 {{.Device}}'],
  amiBlockDeviceMappings: [{ deviceName: 'xvda' }],
};
const clock = createTemplateClock(new Date(Date.UTC(2024, 0, 2, 3, 4, 5)));

describe('defaults', () => {
  const resolved = resolveConfig(BASE, {});

  it.each([
    ['region', undefined],
    ['credentials', undefined],
    ['insecureSkipTlsVerify', false],
    ['maxRetries', 10],
    ['decodeAuthorizationMessages', false],
    ['skipRegionValidation', false],
    ['fromScratch', false],
    ['sourceAmiFilter', undefined],
    ['amiVirtualizationType', undefined],
    ['amiArchitecture', 'x86_64'],
    ['amiUsers', []],
    ['amiGroups', []],
    ['amiOrgArns', []],
    ['amiOuArns', []],
    ['amiProductCodes', []],
    ['amiRegions', []],
    ['regionKmsKeyIds', {}],
    ['encryptBoot', undefined],
    ['kmsKeyId', undefined],
    ['skipSaveBuildRegion', false],
    ['forceDeregister', false],
    ['forceDeleteSnapshot', false],
    ['enaSupport', undefined],
    ['sriovSupport', false],
    ['bootMode', undefined],
    ['tpmSupport', undefined],
    ['imdsSupport', undefined],
    ['deprecateAt', undefined],
    ['deregistrationProtection', { enabled: false, withCooldown: false }],
    ['snapshotCopyDurationMinutes', undefined],
    ['tags', {}],
    ['snapshotTags', {}],
    ['snapshotUsers', []],
    ['snapshotGroups', []],
    ['amiBlockDeviceMappings', undefined],
    ['rootVolumeSize', undefined],
    ['rootVolumeType', undefined],
    ['rootVolumeTags', {}],
    ['rootVolumeEncryptBoot', undefined],
    ['copyFiles', ['/etc/resolv.conf']],
    ['devicePath', undefined],
    ['nvmeDevicePath', undefined],
    ['mountPartition', undefined],
    ['mountOptions', []],
    ['preMountCommands', []],
    ['postMountCommands', []],
    ['polling', {}],
    ['keepOnError', false],
    ['serviceGuard', true],
    ['lockDir', '/var/lock/ami-chroot'],
    ['warnings', []],
  ] as const)('%s defaults to %j', (key, expected) => {
    expect(resolved[key as keyof ResolvedConfig]).toEqual(expected);
  });

  it("mounts Packer's five default chroot mounts, in order", () => {
    expect(resolved.chrootMounts).toEqual([
      { fsType: 'proc', source: 'proc', target: '/proc' },
      { fsType: 'sysfs', source: 'sysfs', target: '/sys' },
      { fsType: 'bind', source: '/dev', target: '/dev' },
      { fsType: 'devpts', source: 'devpts', target: '/dev/pts' },
      { fsType: 'binfmt_misc', source: 'binfmt_misc', target: '/proc/sys/fs/binfmt_misc' },
    ]);
  });

  it('wraps commands with {{.Command}} and mounts under /mnt/packer-amazon-chroot-volumes/<device>', () => {
    expect(resolved.commandWrapper.source).toBe('{{.Command}}');
    expect(resolved.commandWrapper.render({ Command: 'mount -o ro /dev/sdf1 /mnt' }, clock)).toBe(
      'mount -o ro /dev/sdf1 /mnt',
    );
    expect(resolved.mountPath.render({ Device: 'xvdf' }, clock)).toBe('/mnt/packer-amazon-chroot-volumes/xvdf');
  });

  it('generates a fresh build id per resolution', () => {
    const other = resolveConfig(BASE, {});
    expect(resolved.buildId).toMatch(/^[0-9a-f-]{36}$/);
    expect(other.buildId).not.toBe(resolved.buildId);
  });

  it('from scratch copies no files and uses gp2', () => {
    const scratch = resolveConfig(SCRATCH, {});
    expect(scratch.copyFiles).toEqual([]);
    expect(scratch.rootVolumeType).toBe('gp2');
    expect(scratch.sourceAmi).toBeUndefined();
  });

  it('freezes the result', () => {
    expect(Object.isFrozen(resolved)).toBe(true);
    expect(Object.isFrozen(resolved.chrootMounts)).toBe(true);
    expect(Object.isFrozen(resolved.amiUsers)).toBe(true);
  });
});

describe('explicit values', () => {
  it('keeps tri-state booleans as given', () => {
    const r = resolveConfig({ ...BASE, encryptBoot: false, enaSupport: false, rootVolumeEncryptBoot: false }, {});
    expect([r.encryptBoot, r.enaSupport, r.rootVolumeEncryptBoot]).toEqual([false, false, false]);
  });

  it('normalizes the source filter: every value a list', () => {
    const r = resolveConfig(
      {
        amiName: 'abc',
        sourceAmiFilter: { filters: { name: 'debian-*', 'image-id': ['ami-1', 'ami-2'] }, owners: ['amazon'] },
      },
      {},
    );
    expect(r.sourceAmiFilter).toEqual({
      filters: { name: ['debian-*'], 'image-id': ['ami-1', 'ami-2'] },
      owners: ['amazon'],
      mostRecent: false,
      includeDeprecated: false,
    });
  });

  it('replaces the chroot mounts with chrootMounts (even with none) and appends extraChrootMounts', () => {
    expect(resolveConfig({ ...BASE, chrootMounts: [] }, {}).chrootMounts).toEqual([]);
    const r = resolveConfig(
      {
        ...BASE,
        chrootMounts: [['proc', 'proc', '/proc']],
        extraChrootMounts: [{ fsType: 'tmpfs', source: 'tmpfs', target: '/run' }],
      },
      {},
    );
    expect(r.chrootMounts).toEqual([
      { fsType: 'proc', source: 'proc', target: '/proc' },
      { fsType: 'tmpfs', source: 'tmpfs', target: '/run' },
    ]);
    expect(
      resolveConfig({ ...BASE, extraChrootMounts: [['tmpfs', 'tmpfs', '/dev/shm']] }, {}).chrootMounts.map(
        (m) => m.target,
      ),
    ).toEqual(['/proc', '/sys', '/dev', '/dev/pts', '/proc/sys/fs/binfmt_misc', '/dev/shm']);
  });

  it('forces deregistration protection on with a cooldown', () => {
    expect(
      resolveConfig({ ...BASE, deregistrationProtection: { withCooldown: true } }, {}).deregistrationProtection,
    ).toEqual({ enabled: true, withCooldown: true });
  });

  it('turns a numeric partition into a string, "" imds into unset, and deprecateAt into a Date', () => {
    const r = resolveConfig(
      {
        ...BASE,
        mountPartition: 0,
        imdsSupport: '',
        deprecateAt: `${new Date().getUTCFullYear() + 2}-01-02T03:04:05+01:00`,
      },
      {},
    );
    expect(r.mountPartition).toBe('0');
    expect(r.imdsSupport).toBeUndefined();
    expect(r.deprecateAt?.toISOString()).toBe(`${new Date().getUTCFullYear() + 2}-01-02T02:04:05.000Z`);
  });

  it('compiles every template option, with shell quoting for commands', () => {
    const r = resolveConfig(
      {
        ...BASE,
        amiName: '{{ .SourceAMIName | clean_resource_name }}-{{timestamp}}',
        amiDescription: 'from {{.SourceAMI}}',
        tags: { Name: '{{.SourceAMITags.Name}}' },
        snapshotTags: { Region: '{{.BuildRegion}}' },
        rootVolumeTags: { Built: '{{isotime "2006-01-02"}}' },
        commandWrapper: 'sudo {{.Command}}',
        mountPath: '/mnt/x/{{.Device}}',
        preMountCommands: ['wipefs {{.Device}}'],
        postMountCommands: ['ls {{.MountPath}}'],
      },
      {},
    );
    const data = {
      SourceAMIName: 'debian:12',
      SourceAMI: 'ami-1',
      SourceAMITags: { Name: 'base' },
      BuildRegion: 'us-east-1',
    };
    expect(r.amiName.render(data, clock)).toBe('debian-12-1704164645');
    expect(r.amiDescription?.render(data, clock)).toBe('from ami-1');
    expect(r.tags.Name?.render(data, clock)).toBe('base');
    expect(r.snapshotTags.Region?.render(data, clock)).toBe('us-east-1');
    expect(r.rootVolumeTags.Built?.render(data, clock)).toBe('2024-01-02');
    expect(r.commandWrapper.render({ Command: 'umount /mnt' }, clock)).toBe('sudo umount /mnt');
    expect(r.mountPath.render({ Device: 'xvdf' }, clock)).toBe('/mnt/x/xvdf');
    expect(r.preMountCommands[0]?.render({ Device: '/dev/sdf' }, clock)).toBe('wipefs /dev/sdf');
    expect(r.postMountCommands[0]?.render({ MountPath: "/mnt/it's" }, clock)).toBe(`ls '/mnt/it'\\''s'`);
  });

  it('checks names and paths that only exist after rendering', () => {
    const r = resolveConfig({ ...BASE, amiName: '{{.SourceAMIName}}', mountPath: (d) => `mnt/${d.Device}` }, {});
    expect(() => r.amiName.render({ SourceAMIName: 'debian:12' }, clock)).toThrow(/clean_resource_name/);
    expect(() => r.mountPath.render({ Device: 'xvdf' }, clock)).toThrow(ConfigError);
  });

  it('defineConfig returns its argument, typed', () => {
    const config = defineConfig({ ...BASE });
    expect(resolveConfig(config, {}).sourceAmi).toBe(BASE.sourceAmi);
  });
});

describe('regions', () => {
  it('takes the region from the config, else AWS_REGION, else AWS_DEFAULT_REGION', () => {
    expect(resolveConfig({ ...BASE, region: 'eu-west-1' }, { AWS_REGION: 'us-east-1' }).region).toBe('eu-west-1');
    expect(resolveConfig(BASE, { AWS_REGION: 'us-east-1', AWS_DEFAULT_REGION: 'us-west-2' }).region).toBe('us-east-1');
    expect(resolveConfig(BASE, { AWS_DEFAULT_REGION: 'us-west-2' }).region).toBe('us-west-2');
  });

  it('deduplicates amiRegions and drops the build region, with warnings', () => {
    const r = resolveConfig(
      { ...BASE, region: 'us-east-1', amiRegions: ['eu-west-1', 'us-east-1', 'eu-west-1', 'ap-south-1'] },
      {},
    );
    expect(r.amiRegions).toEqual(['eu-west-1', 'ap-south-1']);
    expect(r.warnings).toEqual([
      'amiRegions lists the build region us-east-1; the AMI is built there, so it is not copied there.',
      'amiRegions lists eu-west-1 more than once; it is copied once.',
    ]);
  });

  it('lets the build drop the build region once it is known from the host', () => {
    const r = resolveConfig({ ...BASE, amiRegions: ['eu-west-1', 'us-east-1'] }, {});
    expect(r.amiRegions).toEqual(['eu-west-1', 'us-east-1']);
    expect(copyTargetRegions(r, 'us-east-1')).toEqual(['eu-west-1']);
  });
});

describe('polling from the environment', () => {
  it.each([
    [{}, undefined, {}],
    [{ AWS_POLL_DELAY_SECONDS: '5' }, undefined, { delayMs: 5000 }],
    [{ AWS_MAX_ATTEMPTS: '60' }, undefined, { maxAttempts: 60 }],
    [{ AWS_POLL_DELAY_SECONDS: '5', AWS_MAX_ATTEMPTS: '60' }, undefined, { delayMs: 5000, maxAttempts: 60 }],
    [{ AWS_POLL_DELAY_SECONDS: '5', AWS_MAX_ATTEMPTS: '60' }, { delayMs: 1000 }, { delayMs: 1000, maxAttempts: 60 }],
    [
      { AWS_POLL_DELAY_SECONDS: '5', AWS_MAX_ATTEMPTS: '60' },
      { delayMs: 1000, maxAttempts: 3 },
      { delayMs: 1000, maxAttempts: 3 },
    ],
    [{ AWS_TIMEOUT_SECONDS: '60' }, undefined, { delayMs: 2000, maxAttempts: 30 }],
    [{ AWS_TIMEOUT_SECONDS: '60', AWS_POLL_DELAY_SECONDS: '7' }, undefined, { delayMs: 7000, maxAttempts: 9 }],
  ] as const)('env %j with config %j gives %j', (env, polling, expected) => {
    const r = resolveConfig({ ...BASE, ...(polling ? { polling } : {}) }, env);
    expect(r.polling).toEqual(expected);
  });

  it('keeps per-wait policies from the config', () => {
    const waits = { snapshotCompleted: { timeoutMs: 3_600_000 } };
    expect(resolveConfig({ ...BASE, polling: { waits } }, { AWS_MAX_ATTEMPTS: '9' }).polling).toEqual({
      maxAttempts: 9,
      waits,
    });
  });

  it.each([
    ['AWS_POLL_DELAY_SECONDS', 'soon'],
    ['AWS_MAX_ATTEMPTS', '2.5'],
    ['AWS_MAX_ATTEMPTS', '0'],
    ['AWS_TIMEOUT_SECONDS', '-3'],
  ])('ignores %s=%s with a warning, as Packer does', (name, value) => {
    const r = resolveConfig(BASE, { [name]: value });
    expect(r.polling).toEqual({});
    expect(r.warnings).toEqual([`${name}=${JSON.stringify(value)} is not a positive integer and was ignored.`]);
  });

  it('ignores AWS_TIMEOUT_SECONDS when attempts are set, and says so', () => {
    const r = resolveConfig(BASE, { AWS_TIMEOUT_SECONDS: '60', AWS_MAX_ATTEMPTS: '4' });
    expect(r.polling).toEqual({ maxAttempts: 4 });
    expect(r.warnings[0]).toContain('AWS_TIMEOUT_SECONDS is ignored');
  });

  it('reads process.env when no environment is passed', () => {
    const before = process.env.AWS_MAX_ATTEMPTS;
    process.env.AWS_MAX_ATTEMPTS = '17';
    try {
      expect(resolveConfig(BASE).polling.maxAttempts).toBe(17);
    } finally {
      if (before === undefined) delete process.env.AWS_MAX_ATTEMPTS;
      else process.env.AWS_MAX_ATTEMPTS = before;
    }
  });
});

describe('warnings for valid but suspicious configs', () => {
  it.each([
    [{ ...SCRATCH, sourceAmi: 'ami-0123456789abcdef0' }, 'ignored with fromScratch'],
    [
      {
        ...BASE,
        amiBlockDeviceMappings: [{ deviceName: '/dev/xvda' }],
        rootDeviceName: '/dev/xvda',
        rootVolumeSize: 9,
      },
      'replace the source image',
    ],
    [{ ...BASE, forceDeleteSnapshot: true }, 'does nothing without forceDeregister'],
    [{ ...BASE, skipMetadataApiCheck: true }, 'ignored, as in Packer'],
    [{ ...BASE, nvmeDevicePath: '/dev/nvme1n1p1' }, 'already names a partition'],
  ] as const)('%#: %s', (config, text) => {
    const r = resolveConfig(config, {});
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toContain(text);
  });

  it('does not warn about the whole-device idiom', () => {
    expect(resolveConfig({ ...BASE, nvmeDevicePath: '/dev/nvme1n1p1', mountPartition: '0' }, {}).warnings).toEqual([]);
  });
});

describe('secrets', () => {
  const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
  const r = resolveConfig(
    { ...BASE, accessKey: 'AKIAIOSFODNN7EXAMPLE', secretKey: secret, token: 'SESSIONTOKEN', mfaCode: '918273' },
    {},
  );

  it('hands the SDK usable credentials', () => {
    expect(r.credentials).toMatchObject({
      accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
      secretAccessKey: secret,
      sessionToken: 'SESSIONTOKEN',
    });
    expect({ ...r.credentials }.secretAccessKey).toBe(secret);
    expect(r.mfaCode).toBe('918273');
  });

  it('never prints or serializes them', () => {
    for (const text of [
      JSON.stringify(r),
      inspect(r, { depth: 5 }),
      JSON.stringify(r.credentials),
      inspect(r.credentials),
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- the default stringification is what is tested
      String(r.credentials),
    ]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain('SESSIONTOKEN');
      expect(text).not.toContain('918273');
    }
    expect(JSON.stringify(r)).toContain('AKIAIOSFODNN7EXAMPLE');
  });
});
