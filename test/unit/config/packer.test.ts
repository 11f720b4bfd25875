import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import type { ConfigIssue } from '../../../src/errors.js';
import { fromPackerConfig } from '../../../src/config/packer.js';
import type { FromPackerConfigOptions } from '../../../src/config/packer.js';
import { resolveConfig } from '../../../src/config/resolve.js';
import { createTemplateClock } from '../../../src/config/templates.js';

// The examples of the amazon-chroot reference, verbatim.
const BASIC_EXAMPLE = {
  type: 'amazon-chroot',
  access_key: 'YOUR KEY HERE',
  secret_key: 'YOUR SECRET KEY HERE',
  source_ami: 'ami-e81d5881',
  ami_name: 'packer-amazon-chroot {{timestamp}}',
};
const CHROOT_MOUNTS_EXAMPLE = {
  chroot_mounts: [
    ['proc', 'proc', '/proc'],
    ['bind', '/dev', '/dev'],
  ],
};
const SOURCE_AMI_FILTER_EXAMPLE = {
  source_ami_filter: {
    filters: {
      'virtualization-type': 'hvm',
      name: 'ubuntu/images/*ubuntu-xenial-16.04-amd64-server-*',
      'root-device-type': 'ebs',
    },
    owners: ['099720109477'],
    most_recent: true,
  },
};
const NVME_TEMPLATE = {
  variables: {
    region: 'us-east-2',
  },
  builders: [
    {
      type: 'amazon-chroot',
      region: '{{user `region`}}',
      source_ami_filter: {
        filters: {
          'virtualization-type': 'hvm',
          name: 'amzn-ami-hvm-*',
          'root-device-type': 'ebs',
        },
        owners: ['137112412989'],
        most_recent: true,
      },
      ena_support: true,
      ami_name: 'amazon-chroot-test-{{timestamp}}',
      nvme_device_path: '/dev/nvme1n1p',
      device_path: '/dev/sdf',
    },
  ],
  provisioners: [
    {
      type: 'shell',
      inline: ['echo Test > /tmp/test.txt'],
    },
  ],
};
const FROM_SCRATCH_EXAMPLE = {
  type: 'amazon-chroot',
  ami_name: 'packer-from-scratch {{timestamp}}',
  from_scratch: true,
  ami_virtualization_type: 'hvm',
  pre_mount_commands: [
    'parted {{.Device}} mklabel msdos mkpart primary 1M 100% set 1 boot on print',
    'mkfs.ext4 {{.Device}}1',
  ],
  root_volume_size: 15,
  root_device_name: 'xvda',
  ami_block_device_mappings: [
    {
      device_name: 'xvda',
      delete_on_termination: true,
      volume_type: 'gp2',
    },
  ],
};

/** Within EC2's deprecation limit (10 years from now). */
const DEPRECATE_AT = `${new Date().getUTCFullYear() + 2}-01-01T00:00:00Z`;

const clock = createTemplateClock(new Date(Date.UTC(2024, 0, 2, 3, 4, 5)));

function importIssues(json: unknown, options?: FromPackerConfigOptions): readonly ConfigIssue[] {
  try {
    fromPackerConfig(json, options);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('the reference examples import and resolve', () => {
  it('basic example', () => {
    const config = fromPackerConfig(BASIC_EXAMPLE);
    expect(config).toEqual({
      accessKey: 'YOUR KEY HERE',
      secretKey: 'YOUR SECRET KEY HERE',
      sourceAmi: 'ami-e81d5881',
      amiName: 'packer-amazon-chroot {{timestamp}}',
    });
    const resolved = resolveConfig(config, {});
    expect(resolved.amiName.render({}, clock)).toBe('packer-amazon-chroot 1704164645');
    expect(resolved.credentials?.accessKeyId).toBe('YOUR KEY HERE');
  });

  it('chroot mounts example (with the basic example around it)', () => {
    const config = fromPackerConfig({ ...BASIC_EXAMPLE, ...CHROOT_MOUNTS_EXAMPLE });
    expect(config.chrootMounts).toEqual(CHROOT_MOUNTS_EXAMPLE.chroot_mounts);
    expect(resolveConfig(config, {}).chrootMounts).toEqual([
      { fsType: 'proc', source: 'proc', target: '/proc' },
      { fsType: 'bind', source: '/dev', target: '/dev' },
    ]);
  });

  it('source AMI filter example (in place of source_ami)', () => {
    const { source_ami: _, ...rest } = BASIC_EXAMPLE;
    const config = fromPackerConfig({ ...rest, ...SOURCE_AMI_FILTER_EXAMPLE });
    expect(config.sourceAmiFilter).toEqual({
      filters: {
        'virtualization-type': ['hvm'],
        name: ['ubuntu/images/*ubuntu-xenial-16.04-amd64-server-*'],
        'root-device-type': ['ebs'],
      },
      owners: ['099720109477'],
      mostRecent: true,
    });
    expect(resolveConfig(config, {}).sourceAmiFilter?.mostRecent).toBe(true);
  });

  it('NVMe example: the whole template, with its user variable', () => {
    const config = fromPackerConfig(NVME_TEMPLATE);
    expect(config).toMatchObject({
      region: 'us-east-2',
      enaSupport: true,
      nvmeDevicePath: '/dev/nvme1n1p',
      devicePath: '/dev/sdf',
      amiName: 'amazon-chroot-test-{{timestamp}}',
    });
    const resolved = resolveConfig(config, {});
    expect(resolved.region).toBe('us-east-2');
    expect(resolved.warnings).toEqual([]);
  });

  it('NVMe example: the builder block alone, with the variable passed in', () => {
    const config = fromPackerConfig(NVME_TEMPLATE.builders[0], { variables: { region: 'eu-west-1' } });
    expect(resolveConfig(config, {}).region).toBe('eu-west-1');
  });

  it('from scratch example', () => {
    const config = fromPackerConfig(FROM_SCRATCH_EXAMPLE);
    expect(config).toMatchObject({
      fromScratch: true,
      amiVirtualizationType: 'hvm',
      rootVolumeSize: 15,
      rootDeviceName: 'xvda',
      amiBlockDeviceMappings: [{ deviceName: 'xvda', deleteOnTermination: true, volumeType: 'gp2' }],
    });
    const resolved = resolveConfig(config, {});
    expect(resolved.preMountCommands.map((c) => c.render({ Device: '/dev/sdf' }, clock))).toEqual([
      'parted /dev/sdf mklabel msdos mkpart primary 1M 100% set 1 boot on print',
      'mkfs.ext4 /dev/sdf1',
    ]);
  });

  it('accepts the builder as JSON text', () => {
    expect(fromPackerConfig(JSON.stringify(BASIC_EXAMPLE)).sourceAmi).toBe('ami-e81d5881');
  });
});

describe('every Packer option has a home', () => {
  it('maps all of them, nested blocks included', () => {
    const config = fromPackerConfig({
      type: 'amazon-chroot',
      name: 'base',
      region: 'us-east-1',
      profile: 'build',
      access_key: 'AKIAEXAMPLE',
      secret_key: 'secret',
      token: 'session',
      mfa_code: '123456',
      custom_endpoint_ec2: 'http://127.0.0.1:5000',
      insecure_skip_tls_verify: true,
      max_retries: 5,
      decode_authorization_messages: true,
      skip_metadata_api_check: false,
      skip_region_validation: false,
      skip_credential_validation: true,
      aws_polling: { delay_seconds: 5, max_attempts: 60 },
      source_ami: 'ami-0123456789abcdef0',
      source_ami_filter: { filters: { name: 'x-*' }, owners: ['self'], most_recent: true, include_deprecated: true },
      ami_name: 'name {{timestamp}}',
      ami_description: 'from {{.SourceAMI}}',
      ami_virtualization_type: 'hvm',
      ami_architecture: 'arm64',
      ami_users: ['123456789012'],
      ami_groups: ['all'],
      ami_org_arns: ['arn:aws:organizations::111122223333:organization/o-exampleorgid'],
      ami_ou_arns: ['arn:aws:organizations::111122223333:ou/o-exampleorgid/ou-ab12-cdef3456'],
      ami_product_codes: ['code'],
      ami_regions: ['eu-west-1'],
      region_kms_key_ids: { 'eu-west-1': 'alias/eu' },
      encrypt_boot: true,
      kms_key_id: 'alias/build',
      skip_save_build_region: false,
      force_deregister: true,
      force_delete_snapshot: true,
      ena_support: true,
      sriov_support: true,
      boot_mode: 'uefi',
      uefi_data: 'QUJD',
      tpm_support: 'v2.0',
      imds_support: 'v2.0',
      deprecate_at: DEPRECATE_AT,
      deregistration_protection: { enabled: true, with_cooldown: false },
      snapshot_copy_duration_minutes: 60,
      tags: { Name: '{{.SourceAMIName}}' },
      snapshot_tags: { Kind: 'snap' },
      snapshot_users: ['123456789012'],
      snapshot_groups: ['all'],
      ami_block_device_mappings: [
        {
          device_name: '/dev/xvda',
          delete_on_termination: true,
          encrypted: true,
          iops: 3000,
          throughput: 125,
          volume_type: 'gp3',
        },
        { device_name: '/dev/sdb', snapshot_id: 'snap-0123456789abcdef0' },
        { device_name: '/dev/sdc', virtual_name: 'ephemeral0' },
        { device_name: '/dev/sdd', no_device: true },
        { device_name: '/dev/sde', volume_size: 10 },
      ],
      root_volume_size: 20,
      root_volume_type: 'gp3',
      root_volume_tags: { Purpose: 'build' },
      root_volume_encrypt_boot: true,
      root_volume_kms_key_id: 'alias/root',
      root_device_name: '/dev/xvda',
      from_scratch: false,
      chroot_mounts: [['proc', 'proc', '/proc']],
      copy_files: ['/etc/hosts'],
      command_wrapper: 'sudo {{.Command}}',
      device_path: '/dev/sdg',
      nvme_device_path: '/dev/nvme2n1p',
      mount_path: '/mnt/x/{{.Device}}',
      mount_partition: '2',
      mount_options: ['nouuid'],
      pre_mount_commands: ['true {{.Device}}'],
      post_mount_commands: ['true {{.MountPath}}'],
    });
    expect(config).toEqual({
      region: 'us-east-1',
      profile: 'build',
      accessKey: 'AKIAEXAMPLE',
      secretKey: 'secret',
      token: 'session',
      mfaCode: '123456',
      customEndpointEc2: 'http://127.0.0.1:5000',
      insecureSkipTlsVerify: true,
      maxRetries: 5,
      decodeAuthorizationMessages: true,
      skipMetadataApiCheck: false,
      skipRegionValidation: false,
      polling: { delayMs: 5000, maxAttempts: 60 },
      sourceAmi: 'ami-0123456789abcdef0',
      sourceAmiFilter: { filters: { name: ['x-*'] }, owners: ['self'], mostRecent: true, includeDeprecated: true },
      amiName: 'name {{timestamp}}',
      amiDescription: 'from {{.SourceAMI}}',
      amiVirtualizationType: 'hvm',
      amiArchitecture: 'arm64',
      amiUsers: ['123456789012'],
      amiGroups: ['all'],
      amiOrgArns: ['arn:aws:organizations::111122223333:organization/o-exampleorgid'],
      amiOuArns: ['arn:aws:organizations::111122223333:ou/o-exampleorgid/ou-ab12-cdef3456'],
      amiProductCodes: ['code'],
      amiRegions: ['eu-west-1'],
      regionKmsKeyIds: { 'eu-west-1': 'alias/eu' },
      encryptBoot: true,
      kmsKeyId: 'alias/build',
      skipSaveBuildRegion: false,
      forceDeregister: true,
      forceDeleteSnapshot: true,
      enaSupport: true,
      sriovSupport: true,
      bootMode: 'uefi',
      uefiData: 'QUJD',
      tpmSupport: 'v2.0',
      imdsSupport: 'v2.0',
      deprecateAt: DEPRECATE_AT,
      deregistrationProtection: { enabled: true, withCooldown: false },
      snapshotCopyDurationMinutes: 60,
      tags: { Name: '{{.SourceAMIName}}' },
      snapshotTags: { Kind: 'snap' },
      snapshotUsers: ['123456789012'],
      snapshotGroups: ['all'],
      amiBlockDeviceMappings: [
        {
          deviceName: '/dev/xvda',
          deleteOnTermination: true,
          encrypted: true,
          iops: 3000,
          throughput: 125,
          volumeType: 'gp3',
        },
        { deviceName: '/dev/sdb', snapshotId: 'snap-0123456789abcdef0' },
        { deviceName: '/dev/sdc', virtualName: 'ephemeral0' },
        { deviceName: '/dev/sdd', noDevice: true },
        { deviceName: '/dev/sde', volumeSize: 10 },
      ],
      rootVolumeSize: 20,
      rootVolumeType: 'gp3',
      rootVolumeTags: { Purpose: 'build' },
      rootVolumeEncryptBoot: true,
      rootVolumeKmsKeyId: 'alias/root',
      rootDeviceName: '/dev/xvda',
      fromScratch: false,
      chrootMounts: [['proc', 'proc', '/proc']],
      copyFiles: ['/etc/hosts'],
      commandWrapper: 'sudo {{.Command}}',
      devicePath: '/dev/sdg',
      nvmeDevicePath: '/dev/nvme2n1p',
      mountPath: '/mnt/x/{{.Device}}',
      mountPartition: '2',
      mountOptions: ['nouuid'],
      preMountCommands: ['true {{.Device}}'],
      postMountCommands: ['true {{.MountPath}}'],
    });
    expect(() => resolveConfig(config, {})).not.toThrow();
  });
});

describe('Packer decoding', () => {
  const base = { ami_name: 'name-{{timestamp}}', source_ami: 'ami-0123456789abcdef0' };

  it('decodes weakly, as Packer: strings for booleans and numbers, one value for a list', () => {
    const config = fromPackerConfig({
      ...base,
      ena_support: 'true',
      force_deregister: '0',
      root_volume_size: '15',
      mount_partition: 0,
      ami_users: 123456789012,
      sriov_support: 1,
    });
    expect(config).toMatchObject({
      enaSupport: true,
      forceDeregister: false,
      rootVolumeSize: 15,
      mountPartition: '0',
      amiUsers: ['123456789012'],
      sriovSupport: true,
    });
  });

  it('treats "" as unset', () => {
    const config = fromPackerConfig({
      ...base,
      device_path: '',
      kms_key_id: '',
      imds_support: '',
      ami_description: '',
      encrypt_boot: '',
    });
    expect(config).toEqual({ amiName: base.ami_name, sourceAmi: base.source_ami });
  });

  it("keeps Packer's meaning of an empty chroot_mounts (the defaults) and of an empty copy_files (none)", () => {
    const config = fromPackerConfig({ ...base, chroot_mounts: [], copy_files: [] });
    const resolved = resolveConfig(config, {});
    expect(resolved.chrootMounts).toHaveLength(5);
    expect(resolved.copyFiles).toEqual([]);
  });

  it('merges tag blocks into the maps, the block winning', () => {
    const config = fromPackerConfig({
      ...base,
      tags: { a: 'map', b: 'map' },
      tag: [
        { key: 'b', value: 'block' },
        { key: 'c', value: 'block' },
      ],
      snapshot_tag: { key: 's', value: '1' },
      root_volume_tag: [{ key: 'r', value: '{{.BuildRegion}}' }],
    });
    expect(config.tags).toEqual({ a: 'map', b: 'block', c: 'block' });
    expect(config.snapshotTags).toEqual({ s: '1' });
    expect(config.rootVolumeTags).toEqual({ r: '{{.BuildRegion}}' });
  });

  it('reads each filter value as a CSV line, and Packer 1.6 filter blocks', () => {
    const config = fromPackerConfig({
      ...base,
      source_ami_filter: {
        owners: 'self',
        filters: { name: 'a-*,b-*', description: '"x, y",z', tag: ['p', 'q'] },
        filter: [{ name: 'architecture', value: 'arm64' }],
      },
    });
    expect(config.sourceAmiFilter).toEqual({
      owners: ['self'],
      filters: { name: ['a-*', 'b-*'], description: ['x, y', 'z'], tag: ['p', 'q'], architecture: ['arm64'] },
    });
  });

  it('converts aws_polling seconds to milliseconds', () => {
    expect(fromPackerConfig({ ...base, aws_polling: { delay_seconds: '3', max_attempts: 100 } }).polling).toEqual({
      delayMs: 3000,
      maxAttempts: 100,
    });
    expect(importIssues({ ...base, aws_polling: { delay_seconds: -2 } })).toEqual([
      { path: 'aws_polling.delay_seconds', value: -2, message: 'must be a positive whole number, got -2' },
    ]);
  });

  it('keeps Go-template strings as they are', () => {
    const config = fromPackerConfig({
      ...base,
      ami_name: '{{ isotime "2006-01-02" | clean_resource_name }} {{uuid}}',
      mount_path: '/mnt/{{.Device}}',
    });
    expect(config.amiName).toBe('{{ isotime "2006-01-02" | clean_resource_name }} {{uuid}}');
    expect(config.mountPath).toBe('/mnt/{{.Device}}');
  });
});

describe('user variables', () => {
  const base = { ami_name: 'name-{{timestamp}}', source_ami: 'ami-0123456789abcdef0' };

  it('substitutes {{user `x`}} and {{user "x"}} from the options', () => {
    const config = fromPackerConfig(
      {
        ...base,
        region: '{{user `region`}}',
        ami_description: 'for {{ user "team" }}',
        root_volume_size: '{{user `size`}}',
      },
      { variables: { region: 'eu-west-1', team: 'core', size: '12' } },
    );
    expect(config).toMatchObject({ region: 'eu-west-1', amiDescription: 'for core', rootVolumeSize: 12 });
  });

  it('lets option variables win over the template defaults', () => {
    expect(fromPackerConfig(NVME_TEMPLATE, { variables: { region: 'ap-south-1' } }).region).toBe('ap-south-1');
  });

  it('reads env only in the template variable defaults, from the given environment', () => {
    const template = { ...NVME_TEMPLATE, variables: { region: '{{env `BUILD_REGION`}}' } };
    expect(fromPackerConfig(template, { env: { BUILD_REGION: 'sa-east-1' } }).region).toBe('sa-east-1');
  });

  it('keeps a passed value literal in a template option, even when it looks like a template', () => {
    const config = fromPackerConfig(
      { ...base, ami_description: 'desc {{user `d`}}', tags: { T: '{{ user `d` | upper }}' } },
      { variables: { d: '{{timestamp}}' } },
    );
    const resolved = resolveConfig(config, {});
    expect(resolved.amiDescription?.render({}, clock)).toBe('desc {{timestamp}}');
    expect(resolved.tags.T?.render({}, clock)).toBe('{{TIMESTAMP}}');
  });

  it('renders a template default of a variable as Packer does', () => {
    const template = {
      variables: { suffix: '{{timestamp}}' },
      builders: [{ type: 'amazon-chroot', ...base, ami_name: 'x-{{user `suffix`}}' }],
    };
    expect(resolveConfig(fromPackerConfig(template), {}).amiName.render({}, clock)).toBe('x-1704164645');
  });

  it('reports a variable without a value, naming how to pass it', () => {
    const issues = importIssues({ ...base, region: '{{user `region`}}' });
    expect(issues).toEqual([
      {
        path: 'region',
        value: '{{user `region`}}',
        message: expect.stringContaining('fromPackerConfig(json, { variables: { "region": \'...\' } })'),
      },
    ]);
  });

  it('reports template functions in options that are not templates', () => {
    const [issue] = importIssues({ ...base, device_path: '/dev/sd{{timestamp}}' });
    expect(issue).toMatchObject({ path: 'device_path' });
    expect(issue!.message).toContain('not a template option');
  });
});

describe('import errors', () => {
  const base = { ami_name: 'name-{{timestamp}}', source_ami: 'ami-0123456789abcdef0' };

  it.each([
    ['ami_nme', 'ami_name'],
    ['amiName', 'ami_name'],
    ['source_ami_filters', 'source_ami_filter'],
    ['root_volume_tag_', 'root_volume_tag'],
    ['nvme_device', 'nvme_device_path'],
  ])('an unknown key %s gets "did you mean `%s`?"', (key, suggestion) => {
    const issues = importIssues({ ...base, [key]: 'x' });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ path: key, value: 'x' });
    expect(issues[0]!.message).toContain(`did you mean \`${suggestion}\`?`);
  });

  it('suggests in nested blocks too', () => {
    const issues = importIssues({
      ...base,
      source_ami_filter: { owners: ['self'], mostrecent: true },
      ami_block_device_mappings: [{ device_name: '/dev/sdb', volume_size: 1, volumesize: 2 }],
      aws_polling: { delay: 1 },
      deregistration_protection: { with_cool_down: true },
    });
    const unknown = issues.filter((i) => i.message.startsWith('is not an option'));
    expect(unknown.map((i) => [i.path, i.message.match(/did you mean `([a-z_]+)`/)?.[1]])).toEqual([
      ['source_ami_filter.mostrecent', 'most_recent'],
      ['ami_block_device_mappings.0.volumesize', 'volume_size'],
      ['aws_polling.delay', 'delay_seconds'],
      ['deregistration_protection.with_cool_down', 'with_cooldown'],
    ]);
    expect(unknown[2]!.message).toContain('known: delay_seconds, max_attempts');
  });

  it('rejects another builder type', () => {
    const [issue] = importIssues({ ...base, type: 'amazon-ebs' });
    expect(issue).toMatchObject({ path: 'type', value: 'amazon-ebs' });
    expect(issue!.message).toContain('"amazon-chroot"');
  });

  it.each([
    ['vault_aws_engine', { name: 'role' }, 'credential_process'],
    ['assume_role', { role_arn: 'arn:aws:iam::123456789012:role/x' }, 'role_arn'],
    ['shared_credentials_file', '/root/.aws/credentials', 'AWS_SHARED_CREDENTIALS_FILE'],
  ])('says what to do instead of %s', (key, value, alternative) => {
    const [issue] = importIssues({ ...base, [key]: value });
    expect(issue).toMatchObject({ path: key });
    expect(issue!.message).toContain('not supported');
    expect(issue!.message).toContain(alternative);
  });

  it('reports type mistakes with the Packer name and the value', () => {
    const issues = importIssues({
      ...base,
      encrypt_boot: 'yes',
      root_volume_size: 'big',
      ami_users: { a: 1 },
      tags: 'x',
      chroot_mounts: ['proc'],
    });
    expect(issues.map((i) => [i.path, i.value])).toEqual([
      ['encrypt_boot', 'yes'],
      ['root_volume_size', 'big'],
      ['ami_users', { a: 1 }],
      ['tags', 'x'],
      ['chroot_mounts.0', 'proc'],
    ]);
  });

  it('validates the result and names the Packer options in paths and messages', () => {
    const issues = importIssues({
      ...base,
      kms_key_id: 'alias/k',
      root_volume_kms_key_id: 'alias/r',
      ami_block_device_mappings: [{ device_name: '/dev/sdb', volume_type: 'gp2', iops: 300 }],
    });
    const byPath = Object.fromEntries(issues.map((i) => [i.path, i.message]));
    expect(Object.keys(byPath).sort()).toEqual([
      'ami_block_device_mappings.0.iops',
      'ami_block_device_mappings.0.volume_size',
      'kms_key_id',
      'root_device_name',
      'root_volume_kms_key_id',
    ]);
    expect(byPath.kms_key_id).toContain('needs encrypt_boot: true');
    expect(byPath.root_volume_kms_key_id).toContain('needs root_volume_encrypt_boot: true');
    expect(byPath.root_device_name).toContain('required with ami_block_device_mappings');
    expect(byPath.root_device_name).not.toMatch(/amiBlockDeviceMappings|rootDeviceName/);
    expect(byPath['ami_block_device_mappings.0.volume_size']).toContain('unless snapshot_id is set');
  });

  it('never shows secrets', () => {
    const issues = importIssues({ ...base, secret_key: { nested: 'TOPSECRET' }, access_key: 'AKIA' });
    expect(issues[0]).toMatchObject({ path: 'secret_key', value: '[redacted]' });
    expect(JSON.stringify(issues)).not.toContain('TOPSECRET');
    const inTemplate = importIssues({ builders: [{ type: 'amazon-chroot', ...base, token: ['TOPSECRET'] }] });
    expect(inTemplate[0]).toMatchObject({ path: 'builders.0.token', value: '[redacted]' });
    expect(JSON.stringify(inTemplate)).not.toContain('TOPSECRET');
  });

  it('rejects input that is not a builder', () => {
    expect(importIssues(42)[0]!.message).toContain('builder object');
    expect(importIssues('{not json')[0]!.message).toContain('not valid JSON');
  });

  it('picks the amazon-chroot builder of a template, by name when there are several', () => {
    const two = {
      builders: [
        { type: 'amazon-ebs' },
        { type: 'amazon-chroot', name: 'a', ...base },
        { type: 'amazon-chroot', name: 'b', ...base, ami_name: 'b-ami' },
      ],
    };
    expect(importIssues(two)[0]!.message).toContain('choose one with the builderName option');
    expect(fromPackerConfig(two, { builderName: 'b' }).amiName).toBe('b-ami');
    expect(importIssues(two, { builderName: 'c' })[0]!.message).toContain('named "c"');
    expect(importIssues({ builders: [{ type: 'docker' }] })[0]!.message).toContain('no "amazon-chroot" builder');
  });

  it('prefixes the builder position in a template', () => {
    const [issue] = importIssues({ builders: [{ type: 'amazon-chroot', ...base, ami_nme: 'x' }] });
    expect(issue!.path).toBe('builders.0.ami_nme');
  });
});
