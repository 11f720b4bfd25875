/**
 * The CLI's test hook (AMI_CHROOT_CLI_TEST_HOOK): wires a child `ami-chroot` process to the test
 * EC2 and to loop devices, as test/helpers/e2e.ts does for buildAmi in-process. The parent test
 * passes its environment in AMI_CHROOT_CLI_TEST_ENV (JSON); each loop device the resolver makes is
 * appended to `<dir>/loops.jsonl` so that the parent, which owns them, can check the image content
 * and detach them.
 */
import { appendFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { motoEc2 } from '../../fixtures/moto.js';
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
  const clients = new Map<string, EC2Client>();
  return {
    options: {
      hostIdentity: { instanceId: env.instanceId, availabilityZone: env.availabilityZone, region: env.region },
      ec2: (region: string) => {
        let c = clients.get(region);
        if (!c) clients.set(region, (c = motoEc2(env.endpoint, region)));
        return c;
      },
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
