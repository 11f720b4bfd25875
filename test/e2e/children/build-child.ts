/**
 * A build script as a user would write it, for the recovery tests: runs buildAmi against moto
 * with the volume mapped to a loop device, prints `PROVISIONING` once inside provision, then
 * waits there. `WIRE_SIGINT=1` wires SIGINT/SIGTERM to the build's AbortSignal (the README's two
 * lines); without it, the parent kills the process with SIGKILL.
 */
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildAmi } from '../../../src/pipeline/build-ami.js';
import { attachLoop } from '../../../src/host/loop.js';

interface ChildInput {
  endpoint: string;
  instanceId: string;
  availabilityZone: string;
  dir: string;
  baseImage: string;
  sourceAmi: string;
  amiName: string;
}

const input = JSON.parse(process.env['CHILD_INPUT'] ?? '{}') as ChildInput;
const stateDir = join(input.dir, 'state');

const controller = new AbortController();
// On EC2 the detach makes the block device disappear; here the stand-in loop device is ours to detach.
const loops: { detach(): Promise<void> }[] = [];
if (process.env['WIRE_SIGINT'] === '1') {
  process.once('SIGINT', () => controller.abort(new Error('interrupted (SIGINT)')));
  process.once('SIGTERM', () => controller.abort(new Error('terminated (SIGTERM)')));
}

try {
  await buildAmi(
    {
      region: 'us-east-1',
      sourceAmi: input.sourceAmi,
      amiName: input.amiName,
      amiRegions: ['eu-west-1'],
      customEndpointEc2: input.endpoint,
      accessKey: 'testing',
      secretKey: 'testing',
      mountPath: `${input.dir}/mnt/{{.Device}}`,
      lockDir: join(input.dir, 'lock'),
    },
    async (chroot) => {
      await chroot.sh('echo started > /root/started; sleep 600 >/dev/null 2>&1 &');
      process.stdout.write('PROVISIONING\n');
      await chroot.sh('sleep 600');
    },
    {
      signal: controller.signal,
      hostIdentity: { instanceId: input.instanceId, availabilityZone: input.availabilityZone, region: 'us-east-1' },
      stateDir,
      devRoot: join(input.dir, 'dev'),
      logger: { warn: () => {}, error: () => {} },
      // moto attached the volume; here it is a loop device over a copy of the test image,
      // journaled so recoverHost can detach it after a SIGKILL.
      resolveDevice: async ({ volumeId }) => {
        const file = join(input.dir, `${volumeId}.img`);
        await copyFile(input.baseImage, file);
        const loop = await attachLoop({ file, stateDir });
        loops.push(loop);
        return loop.device;
      },
    },
  );
  process.stdout.write('BUILT\n');
} catch (error) {
  process.stdout.write(`FAILED ${(error as Error).message}\n`);
  process.exitCode = 130;
} finally {
  for (const loop of loops) await loop.detach().catch(() => {});
}
