/**
 * Picking the source AMI with a filter and most_recent (Packer `source_ami_filter`), then using
 * what was picked in the name and tags.
 *
 * Packer:
 *   "source_ami_filter": {
 *     "filters": { "virtualization-type": "hvm", "name": "debian-12-amd64-*", "root-device-type": "ebs" },
 *     "owners": ["136693071363"], "most_recent": true }
 *
 * `--dry-run` only shows which image the filter selects (resolveSourceAmi, a read-only call).
 *
 *   sudo npx tsx examples/source-ami-filter.ts [--dry-run]
 */
import { defineConfig, buildAmi } from '../src/index.js';
import type { SourceAmiFilter } from '../src/index.js';
import { createAwsClients, resolveSourceAmi } from '../src/aws/index.js';

const sourceAmiFilter: SourceAmiFilter = {
  filters: { 'virtualization-type': 'hvm', name: 'debian-12-amd64-*', 'root-device-type': 'ebs' },
  // Required: only images of accounts you trust can match (136693071363 publishes Debian).
  owners: ['136693071363'],
  // Several images match a daily family: take the newest instead of failing.
  mostRecent: true,
};

const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => controller.abort());

if (process.argv.includes('--dry-run')) {
  const clients = createAwsClients({ region: process.env['AWS_REGION'] ?? 'us-east-1' });
  try {
    const source = await resolveSourceAmi({ sourceAmiFilter }, { ec2: clients.ec2, signal: controller.signal });
    console.log(`The filter selects ${source.imageId} (${source.name}), created ${source.creationDate}.`);
  } finally {
    clients.destroy();
  }
} else {
  const config = defineConfig({
    sourceAmiFilter,
    // Build data in the name: `clean_resource_name` turns any text into valid AMI name characters.
    amiName: 'web {{ .SourceAMIName | clean_resource_name }} {{ isotime "2006-01-02" }} {{timestamp}}',
    tags: { Base: '{{ .SourceAMIName }}', BaseId: '{{ .SourceAMI }}', Created: '{{ isotime }}' },
  });
  const result = await buildAmi(
    config,
    async (chroot) => {
      await chroot.sh('apt-get update && apt-get install -y --no-install-recommends nginx');
    },
    { signal: controller.signal, logger: { info: console.info, warn: console.warn, error: console.error } },
  );
  console.log(`Built ${result.name} from ${result.sourceImage?.name}: ${JSON.stringify(result.images)}`);
}
