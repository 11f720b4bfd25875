/**
 * One instance-less build, as each job of a CI matrix, Kubernetes Job or AWS Batch array runs it:
 * no EC2 host, only AWS credentials (from the environment), loop devices and disk for the cache.
 *
 *   sudo AWS_REGION=eu-west-1 npx tsx examples/scale-out/build-one.ts <source-ami> <name> [cache-dir]
 *
 * Each job is independent: it resolves its source, keeps its own cache (or a cache restored by
 * the engine), tags everything with its own build id, and prints one JSON line with the result.
 */
import { buildAmiDirect } from '../../src/index.js';
import { createAwsClients, createEbsClient, resolveRegion, resolveSourceAmi } from '../../src/aws/index.js';

const [sourceAmi, name, cacheDir = '/var/cache/ami-chroot'] = process.argv.slice(2);
if (!sourceAmi || !name) {
  console.error('usage: build-one.ts <source-ami> <name> [cache-dir]');
  process.exit(2);
}

const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => controller.abort());

const region = await resolveRegion({});
const clients = createAwsClients({ region });
const ebs = createEbsClient({ region });
try {
  const source = await resolveSourceAmi({ sourceAmi }, { ec2: clients.ec2, signal: controller.signal });
  const result = await buildAmiDirect(
    {
      sourceSnapshotId: source.rootSnapshotId,
      cacheDir,
      image: { name, source, tags: { Name: name, Job: process.env['JOB_NAME'] ?? 'local' } },
    },
    async (chroot) => {
      await chroot.writeFile('/etc/motd', `${name}: built without an instance\n`);
    },
    { ebs, ec2: clients.ec2, signal: controller.signal, logger: console },
  );
  console.log(JSON.stringify(result));
} finally {
  ebs.destroy();
  clients.destroy();
}
