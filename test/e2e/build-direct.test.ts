/**
 * buildAmiDirect end to end: the test EC2 (EBS direct APIs patched to behave as EC2's) plus real
 * loop devices, mounts and a busybox chroot. No instance, no device letters.
 */
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { EBSClient } from '@aws-sdk/client-ebs';
import { DescribeImagesCommand, DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxImage } from '../../fixtures/busybox-image.js';
import { ConfigError } from '../../src/errors.js';
import { createAwsClients } from '../../src/aws/clients.js';
import type { AwsClients } from '../../src/aws/clients.js';
import { BUILD_ID_TAG } from '../../src/aws/common.js';
import { createEbsClient } from '../../src/aws/ebs/blocks.js';
import { downloadSnapshot } from '../../src/aws/ebs/download.js';
import { uploadSnapshot } from '../../src/aws/ebs/upload.js';
import { run } from '../../src/host/exec.js';
import { buildAmiDirect } from '../../src/pipeline/build-direct.js';
import type { BuildAmiDirectInput } from '../../src/pipeline/build-direct.js';
import { installEc2Faults } from '../helpers/ec2-faults.js';
import { assertNoLeaks, makeTestDir, requireRoot } from '../helpers/loop.js';
import type { TestDir } from '../helpers/loop.js';
import { startMoto } from '../helpers/moto.js';
import type { MotoServer } from '../helpers/moto.js';

const quiet = { warn: () => {}, error: () => {} };
let dir: TestDir;
let moto: MotoServer;
let clients: AwsClients;
let ec2: EC2Client;
let ebs: EBSClient;
let sourceSnapshotId: string;
let sourceBlocks: number;
let unique = 0;

beforeAll(async () => {
  requireRoot();
  dir = await makeTestDir('ami-chroot-direct-');
  moto = await startMoto();
  const access = { region: 'us-east-1', accessKey: 'testing', secretKey: 'testing', maxRetries: 1 } as const;
  clients = createAwsClients({ ...access, customEndpointEc2: moto.endpoint });
  ec2 = clients.ec2();
  ebs = createEbsClient(access, moto.endpoint);
  // The source AMI's root snapshot: a busybox ext4 disk, uploaded as a user would.
  const image = join(dir.path, 'source.raw');
  await makeBusyboxImage(image, { sizeMiB: 64, partitioned: false, tmpDir: dir.path });
  const source = await uploadSnapshot({ file: image, buildId: 'source' }, { ebs, ec2 });
  sourceSnapshotId = source.snapshotId;
  sourceBlocks = source.blocksWritten;
}, 120_000);

afterAll(async () => {
  ebs?.destroy();
  clients?.destroy();
  await moto?.stop();
  await dir?.cleanup();
});

afterEach(async () => {
  await moto.resetKnobs();
});

function input(name: string, overrides: Partial<BuildAmiDirectInput> = {}): BuildAmiDirectInput {
  const n = ++unique;
  return {
    sourceSnapshotId,
    cacheDir: join(dir.path, 'cache'),
    workDir: join(dir.path, 'work'),
    buildId: `direct-${process.pid}-${n}`,
    chroot: { mountPath: join(dir.path, `mnt-${n}/{{.Device}}`), mountPartition: '0', copyFiles: [] },
    image: {
      name: `${name}-${n}`,
      rootDeviceName: '/dev/xvda',
      blockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: 1, VolumeType: 'gp3' } }],
    },
    ...overrides,
  };
}

const options = (): Parameters<typeof buildAmiDirect>[2] => ({
  ebs,
  ec2,
  logger: quiet,
  stateDir: join(dir.path, 'state'),
});

async function left(buildId: string): Promise<{ snapshots: number; images: number; work: string[] }> {
  const filter = [{ Name: `tag:${BUILD_ID_TAG}`, Values: [buildId] }];
  const snaps = await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'], Filters: filter }));
  const images = await ec2.send(new DescribeImagesCommand({ Owners: ['self'], Filters: filter }));
  const work = await readdir(join(dir.path, 'work')).catch(() => [] as string[]);
  return { snapshots: snaps.Snapshots?.length ?? 0, images: images.Images?.length ?? 0, work };
}

describe('buildAmiDirect', () => {
  it('builds from a cold cache, then from a warm one with 0 blocks downloaded; a one-file change uploads a handful of blocks', async () => {
    await mkdir(join(dir.path, 'work'), { recursive: true });
    const first = await buildAmiDirect(
      input('direct'),
      async (chroot) => {
        await chroot.writeFile('/etc/motd', 'built without an instance\n');
      },
      options(),
    );
    expect(first.cache).toEqual({ source: 'full', blocksDownloaded: sourceBlocks });
    expect(first.changedBlocks).toBeGreaterThan(0);
    expect(first.changedBlocks).toBeLessThanOrEqual(16);
    expect(first.blocksWritten).toBe(first.changedBlocks);
    const image = (await ec2.send(new DescribeImagesCommand({ ImageIds: [first.imageId] }))).Images?.[0];
    expect(image?.State).toBe('available');

    // The new snapshot, read back, is the source plus the file.
    const back = join(dir.path, 'back.raw');
    await downloadSnapshot({ snapshotId: first.snapshotId, file: back }, { ebs });
    const motd = await run('debugfs', ['-R', 'cat /etc/motd', back], { timeoutMs: 30_000 });
    expect(motd.stdout).toBe('built without an instance\n');
    expect((await left(first.buildId)).work).toEqual([]);

    await moto.resetCalls();
    const second = await buildAmiDirect(
      input('direct'),
      async (chroot) => {
        await chroot.writeFile('/etc/motd', 'second\n');
      },
      options(),
    );
    expect(second.cache).toEqual({ source: 'hit', blocksDownloaded: 0 });
    const gets = (await moto.calls()).filter((c) => /^GET \/snapshots\//.test(c.action));
    expect(gets).toEqual([]);
    expect(second.blocksWritten).toBeLessThanOrEqual(16);
    await assertNoLeaks(dir.path);
  });

  it.each([
    ['provisioning', {}, 'provision'],
    ['uploading', { ebs_fail_blocks: 1000 }, 'upload'],
    ['registering', {}, 'register'],
  ] as const)('a failure while %s leaves no snapshot, image or work file', async (_what, knobs, step) => {
    await moto.setKnobs(knobs);
    const faults = installEc2Faults(ec2);
    if (step === 'register') faults.fail('RegisterImage', { code: 'InvalidParameterValue', message: 'injected' });
    const spec = input('fails');
    try {
      const error = await buildAmiDirect(
        spec,
        async (chroot) => {
          await chroot.writeFile('/etc/motd', 'x\n');
          if (step === 'provision') throw new Error('provisioning failed');
        },
        options(),
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      if (step === 'register') expect((error as Error).message).toMatch(/RegisterImage failed/);
    } finally {
      faults.remove();
    }
    expect(await left(spec.buildId!)).toEqual({ snapshots: 0, images: 0, work: [] });
    await assertNoLeaks(dir.path);
  });

  it('refuses a registration it could never make before downloading or creating anything', async () => {
    const base = input('refused', { cacheDir: join(dir.path, 'cache-refused') });
    await moto.resetCalls();
    const error = await buildAmiDirect({ ...base, image: { name: base.image.name } }, () => {}, options()).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/rootDeviceName/);
    expect(await moto.calls()).toEqual([]);
    await expect(readdir(join(dir.path, 'cache-refused'))).rejects.toThrow(/ENOENT/);
  });
});
