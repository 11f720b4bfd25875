/**
 * The CLI's test hook (AMI_CHROOT_CLI_TEST_HOOK): wires a child `ami-chroot` process to loop
 * devices and a host identity, as test/helpers/e2e.ts does for buildAmi in-process. The child
 * reaches the test EC2 as a user's would, through AWS_ENDPOINT_URL_EC2 and credentials in its
 * environment: the executable bundles its own AWS SDK, and a client made here would be another
 * copy's (its paginators refuse a client that is not an instance of their own EC2Client). The parent test
 * passes its environment in AMI_CHROOT_CLI_TEST_ENV (JSON); each loop device the resolver makes is
 * appended to `<dir>/loops.jsonl` so that the parent, which owns them, can check the image content
 * and detach them.
 */
import { appendFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { attachLoop } from '../../src/host/loop.js';
import type { BuildAmiOptions } from '../../src/pipeline/build-ami.js';
import type { BuildConfig } from '../../src/config/types.js';
import type { CleanupOrphansOptions } from '../../src/pipeline/cleanup-orphans.js';

/** What the parent test passes to the child. */
export interface CliTestEnv {
  readonly endpoint: string;
  readonly instanceId: string;
  readonly availabilityZone: string;
  readonly region: string;
  /** The busybox image each new volume starts as. */
  readonly baseImage: string;
  /** The test's temp dir: loop images, state, locks, devRoot. */
  readonly dir: string;
}

/** One loop device the resolver made. */
export interface CliLoop {
  readonly volumeId: string;
  readonly file: string;
  readonly device: string;
}

export default function hook(): {
  options: Partial<BuildAmiOptions & CleanupOrphansOptions>;
  config: Partial<BuildConfig>;
} {
  const env = JSON.parse(process.env['AMI_CHROOT_CLI_TEST_ENV'] ?? '{}') as CliTestEnv;
  return {
    options: {
      hostIdentity: { instanceId: env.instanceId, availabilityZone: env.availabilityZone, region: env.region },
      devRoot: join(env.dir, 'dev'),
      stateDir: join(env.dir, 'state'),
      lockDir: join(env.dir, 'lock'),
      resolveDevice: async ({ volumeId }) => {
        const file = join(env.dir, `${volumeId}.img`);
        await copyFile(env.baseImage, file);
        const loop = await attachLoop({ file, stateDir: false });
        const record: CliLoop = { volumeId, file, device: loop.device };
        await appendFile(join(env.dir, 'loops.jsonl'), `${JSON.stringify(record)}\n`);
        return loop.device;
      },
    },
    config: { lockDir: join(env.dir, 'lock') },
  };
}
