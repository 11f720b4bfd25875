/**
 * One instance-less build, as each job of a CI matrix, Kubernetes Job or AWS Batch array runs it:
 * no EC2 host, only AWS credentials (from the environment), loop devices and disk for the cache.
 *
 *   sudo AWS_REGION=eu-west-1 npx tsx examples/scale-out/build-one.ts <source-ami> <name> [cache-dir]
 *
 * Each job is independent: it resolves its source, keeps its own cache (or a cache restored by
 * the engine), tags everything with its own build id, and prints one JSON line with the result.
 * The config is the one an instance build takes; `via: 'ebs-direct'` is the only difference.
 */
import { buildAmi } from '../../src/index.js';

const [sourceAmi, name, cacheDir = '/var/cache/ami-chroot'] = process.argv.slice(2);
if (!sourceAmi || !name) {
  console.error('usage: build-one.ts <source-ami> <name> [cache-dir]');
  process.exit(2);
}

const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => controller.abort());

const result = await buildAmi(
  {
    via: 'ebs-direct',
    cacheDir,
    sourceAmi,
    amiName: `${name} {{timestamp}}`,
    tags: { Name: name, Job: process.env['JOB_NAME'] ?? 'local', Source: '{{ .SourceAMI }}' },
  },
  async (chroot) => {
    await chroot.writeFile('/etc/motd', `${name}: built without an instance\n`);
  },
  { signal: controller.signal, logger: console },
);
console.log(JSON.stringify({ images: result.images, ebsDirect: result.ebsDirect, durationMs: result.durationMs }));
