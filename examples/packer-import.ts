/**
 * Importing a Packer amazon-chroot builder (JSON) unchanged: `fromPackerConfig` maps every
 * option to BuildConfig, resolves `{{user `...`}}` variables, and reports problems in Packer's
 * own option names, all at once, with a "did you mean" for typos.
 *
 *   npx tsx examples/packer-import.ts [template.json]
 *
 * Needs nothing: no root, no AWS. Without an argument it imports the NVMe example of Packer's
 * documentation, then shows what a broken builder block gets back.
 */
import { readFile } from 'node:fs/promises';
import { inspect } from 'node:util';
import { ConfigError, fromPackerConfig, resolveConfig } from '../src/config/index.js';

// Packer's "Using Instances with NVMe block devices" example, a whole template.
const NVME_EXAMPLE = {
  variables: { region: 'us-east-2' },
  builders: [
    {
      type: 'amazon-chroot',
      region: '{{user `region`}}',
      source_ami_filter: {
        filters: { 'virtualization-type': 'hvm', name: 'amzn-ami-hvm-*', 'root-device-type': 'ebs' },
        owners: ['137112412989'],
        most_recent: true,
      },
      ena_support: true,
      ami_name: 'amazon-chroot-test-{{timestamp}}',
      nvme_device_path: '/dev/nvme1n1p',
      device_path: '/dev/sdf',
      tags: { Name: '{{ .SourceAMIName }}' },
      chroot_mounts: [
        ['proc', 'proc', '/proc'],
        ['bind', '/dev', '/dev'],
      ],
    },
  ],
  provisioners: [{ type: 'shell', inline: ['echo Test > /tmp/test.txt'] }],
};

// Builder blocks with the mistakes people make: names and types first (a typo, a string where
// a number goes), then values that are wrong together.
const BROKEN_NAMES = {
  type: 'amazon-chroot',
  source_ami: 'ami-e81d5881',
  ami_nmae: 'typo {{timestamp}}',
  root_volume_size: 'big',
};
const BROKEN_VALUES = {
  type: 'amazon-chroot',
  source_ami: 'ami-e81d5881',
  ami_name: 'web {{timestamp}}',
  ami_regions: ['eu-west-1'],
  region_kms_key_ids: { 'us-west-2': 'alias/x' },
  kms_key_id: 'alias/x',
  secret_key: 'never printed',
};

const template = process.argv[2] ? (JSON.parse(await readFile(process.argv[2], 'utf8')) as unknown) : NVME_EXAMPLE;

// 1. Import. Template strings stay as they are: they are this library's syntax too.
const config = fromPackerConfig(template, { variables: { region: process.env['AWS_REGION'] ?? 'us-east-2' } });
console.log('BuildConfig:');
console.log(inspect(config, { depth: 5, colors: process.stdout.isTTY, breakLength: 100 }));

// 2. Resolve: every default filled in, the templates compiled (this is what buildAmi runs on).
const resolved = resolveConfig(config, {});
console.log(
  `\nResolved: region ${resolved.region}, mount path ${resolved.mountPath.source}, ` +
    `chroot mounts ${resolved.chrootMounts.map((m) => m.target).join(' ')}, copy files ${resolved.copyFiles.join(' ')}`,
);
for (const warning of resolved.warnings) console.log(`  warning: ${warning}`);

// 3. Broken blocks: one ConfigError listing every problem, in Packer's names (secrets redacted).
if (!process.argv[2]) {
  for (const broken of [BROKEN_NAMES, BROKEN_VALUES]) {
    try {
      fromPackerConfig(broken);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      console.log(`\nA broken builder block: ${error.issues.length} problems, all at once:`);
      for (const issue of error.issues) console.log(`  ${issue.path}: ${issue.message}`);
    }
  }
}
