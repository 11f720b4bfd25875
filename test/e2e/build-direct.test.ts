/**
 * buildAmi with `via: 'ebs-direct'` end to end: the test EC2 (EBS direct APIs patched to behave as
 * EC2's) plus real loop devices, mounts and a busybox chroot. The same BuildConfig as an instance
 * build; no instance, no device letters.
 */
import { readFile, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { EBSClient } from '@aws-sdk/client-ebs';
import {
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeSnapshotAttributeCommand,
  DescribeSnapshotsCommand,
} from '@aws-sdk/client-ec2';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import type { Phase } from '../../src/errors.js';
import { BUILD_ID_TAG } from '../../src/aws/common.js';
import { createEbsClient } from '../../src/aws/ebs/blocks.js';
import { downloadSnapshot } from '../../src/aws/ebs/download.js';
import { run } from '../../src/host/exec.js';
import { buildAmi } from '../../src/pipeline/build-ami.js';
import type { BuildAmiOptions } from '../../src/pipeline/build-ami.js';
import type { BuildConfig } from '../../src/config/types.js';
import { installEc2Faults } from '../helpers/ec2-faults.js';
import type { Ec2Faults } from '../helpers/ec2-faults.js';
import { makeEbsSource } from '../helpers/ebs-source.js';
import type { EbsSource } from '../helpers/ebs-source.js';
import { assertNoLeaks, makeTestDir, requireRoot } from '../helpers/loop.js';
import type { TestDir } from '../helpers/loop.js';
import { motoEc2, startMoto } from '../helpers/moto.js';
import type { MotoServer } from '../helpers/moto.js';

const REGION = 'us-east-1';
const COPY_REGION = 'eu-west-1';
const quiet = { warn: () => {}, error: () => {} };
let dir: TestDir;
let moto: MotoServer;
let ec2s: Map<string, { client: EC2Client; faults: Ec2Faults }>;
let ebs: EBSClient;
let source: EbsSource;
let unique = 0;

const ec2 = (region = REGION): EC2Client => {
  let e = ec2s.get(region);
  if (!e) {
    const client = motoEc2(moto.endpoint, region);
    e = { client, faults: installEc2Faults(client) };
    ec2s.set(region, e);
  }
  return e.client;
};
const faults = (region = REGION): Ec2Faults => (ec2(region), ec2s.get(region)!.faults);

beforeAll(async () => {
  requireRoot();
  dir = await makeTestDir('ami-chroot-direct-');
  moto = await startMoto();
  ec2s = new Map();
  ebs = createEbsClient({ region: REGION, accessKey: 'testing', secretKey: 'testing', maxRetries: 1 }, moto.endpoint);
  source = await makeEbsSource(dir.path, { ebs, ec2: motoEc2(moto.endpoint, REGION) });
}, 120_000);

afterAll(async () => {
  ebs?.destroy();
  for (const e of ec2s?.values() ?? []) e.client.destroy();
  await moto?.stop();
  await dir?.cleanup();
});

afterEach(async () => {
  await moto.resetKnobs();
  for (const e of ec2s.values()) {
    e.faults.remove();
    e.faults = installEc2Faults(e.client);
  }
});

/** A Packer-style config, as an instance build would take it, plus `via` and `cacheDir`. */
function config(extra: Partial<BuildConfig> = {}, omit: readonly (keyof BuildConfig)[] = []): BuildConfig {
  const n = ++unique;
  const cfg: Record<string, unknown> = {
    via: 'ebs-direct',
    region: REGION,
    sourceAmi: source.imageId,
    amiName: `direct-${process.pid}-${n}-{{timestamp}}`,
    cacheDir: join(dir.path, 'cache'),
    mountPath: join(dir.path, `mnt-${n}/{{.Device}}`),
    mountPartition: '0',
    copyFiles: [],
    buildId: `direct-${process.pid}-${n}`,
    ...extra,
  };
  for (const key of omit) delete cfg[key];
  return cfg as unknown as BuildConfig;
}

function options(extra: Partial<BuildAmiOptions> = {}): BuildAmiOptions {
  return { ec2: (region: string) => ec2(region), ebs, logger: quiet, stateDir: join(dir.path, 'state'), ...extra };
}

/** What a build left in both regions (by its build id tag) and in the cache's work directory. */
async function left(buildId: string): Promise<{ snapshots: number; images: number; work: string[] }> {
  const filter = [{ Name: `tag:${BUILD_ID_TAG}`, Values: [buildId] }];
  let snapshots = 0;
  let images = 0;
  for (const region of [REGION, COPY_REGION]) {
    const client = motoEc2(moto.endpoint, region);
    try {
      const s = await client.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'], Filters: filter }));
      const i = await client.send(new DescribeImagesCommand({ Owners: ['self'], Filters: filter }));
      snapshots += s.Snapshots?.length ?? 0;
      images += i.Images?.length ?? 0;
    } finally {
      client.destroy();
    }
  }
  const work = await readdir(join(dir.path, 'cache', 'work')).catch(() => [] as string[]);
  return { snapshots, images, work };
}

describe("buildAmi via: 'ebs-direct'", () => {
  it('builds from the config: the root snapshot read back is the provisioned image; copies, tags and sharing as an instance build', async () => {
    const expected = join(dir.path, 'expected.raw');
    const phases: Phase[] = [];
    let mountLine = '';
    let streamReq = '';
    let copied = '';
    const hostFile = join(dir.path, 'host-file.txt');
    await run('sh', ['-c', `echo from the host > '${hostFile}'`]);
    const cfg = config({
      tags: { Team: 'images', Source: '{{.SourceAMI}}' },
      snapshotTags: { Layer: 'root' },
      amiRegions: [COPY_REGION],
      amiUsers: ['111122223333'],
      snapshotUsers: ['111122223333'],
      deprecateAt: '2030-01-01T00:00:00Z',
      copyFiles: [hostFile],
      chrootMounts: [['proc', 'proc', '/proc']],
    });
    const result = await buildAmi(
      cfg,
      async (chroot, build) => {
        await chroot.writeFile('/etc/motd', 'built without an instance\n');
        copied = await chroot.readFile(hostFile, 'utf8');
        mountLine =
          (await readFile('/proc/self/mounts', 'utf8')).split('\n').find((l) => l.split(' ')[1] === build.mountPath) ??
          '';
        expect(build.hostDevice).toMatch(/^\/dev\/loop\d+$/);
        expect(build.instanceId).toBe('');
        // ext4 packs new files end to end (mountPartition '0': the loop device is the file system).
        streamReq = await readFile(`/sys/fs/ext4/${basename(build.hostDevice)}/mb_stream_req`, 'utf8');
      },
      options({
        hooks: {
          before: (phase) => void phases.push(phase),
          // The working copy as it will be uploaded: unmounted, detached.
          after: async (phase) => {
            if (phase === 'detach')
              await run('cp', ['--sparse=always', join(dir.path, 'cache', 'work', `${cfg.buildId!}.raw`), expected]);
          },
        },
      }),
    );
    expect(phases).toEqual([
      'validate',
      'source',
      'preflight',
      'download',
      'volume',
      'attach',
      'mount',
      'pre-mount',
      'post-mount',
      'chroot-mounts',
      'copy-files',
      'service-guard',
      'provision',
      'unmount',
      'detach',
      'upload',
      'register',
      'permissions',
      'deprecate',
      'copy',
    ]);
    expect(copied).toBe('from the host\n');
    expect(mountLine.split(' ')[3]).toMatch(/(^|,)noatime(,|$)/);
    expect(streamReq.trim()).toBe('65536');
    expect(Object.keys(result.images).sort()).toEqual([COPY_REGION, REGION]);
    expect(result.hostDevice).toMatch(/^\/dev\/loop\d+$/);
    expect(result.ebsDirect?.cache).toEqual({ source: 'full', blocksDownloaded: source.blocks });
    expect(result.ebsDirect?.blocksWritten).toBe(result.ebsDirect?.changedBlocks);
    expect(result.snapshots[REGION]).toEqual([result.ebsDirect?.snapshotId]);

    // Read back block by block, the new root snapshot is the provisioned image, byte for byte.
    const back = join(dir.path, 'back.raw');
    await downloadSnapshot({ snapshotId: result.ebsDirect!.snapshotId, file: back }, { ebs });
    await run('cmp', [expected, back]);
    const motd = await run('debugfs', ['-R', 'cat /etc/motd', back], { timeoutMs: 30_000 });
    expect(motd.stdout).toBe('built without an instance\n');
    // The copied host file was put back (the image had none).
    const gone = await run('debugfs', ['-R', `stat ${hostFile}`, back], { timeoutMs: 30_000 });
    expect(gone.stderr + gone.stdout).toMatch(/File not found/);

    // The image: the source's attributes, the tags rendered, shared, deprecated; the copy too.
    for (const region of [REGION, COPY_REGION]) {
      const client = ec2(region);
      const image = (await client.send(new DescribeImagesCommand({ ImageIds: [result.images[region]!] }))).Images![0]!;
      expect(image.State).toBe('available');
      expect(image.EnaSupport).toBe(true);
      expect(image.Name).toBe(result.name);
      expect(Object.fromEntries((image.Tags ?? []).map((t) => [t.Key, t.Value]))).toMatchObject({
        Team: 'images',
        Source: source.imageId,
        [BUILD_ID_TAG]: cfg.buildId,
      });
      const launch = await client.send(
        new DescribeImageAttributeCommand({ ImageId: image.ImageId!, Attribute: 'launchPermission' }),
      );
      expect(launch.LaunchPermissions).toEqual([{ UserId: '111122223333' }]);
      const snapshotId = result.snapshots[region]![0]!;
      if (region === REGION) {
        const snapshot = (await client.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] })))
          .Snapshots![0]!;
        expect(Object.fromEntries((snapshot.Tags ?? []).map((t) => [t.Key, t.Value]))).toMatchObject({
          Team: 'images',
          Layer: 'root',
          [BUILD_ID_TAG]: cfg.buildId,
        });
      } else {
        // The test EC2 does not tag a copy's snapshots: the request must ask for it.
        const [copy] = faults(COPY_REGION).inputsOf('CopyImage');
        expect(copy?.['TagSpecifications']).toEqual(
          expect.arrayContaining([
            expect.objectContaining({
              ResourceType: 'snapshot',
              Tags: expect.arrayContaining([{ Key: 'Layer', Value: 'root' }]),
            }),
          ]),
        );
      }
      const volumePerm = await client.send(
        new DescribeSnapshotAttributeCommand({ SnapshotId: snapshotId, Attribute: 'createVolumePermission' }),
      );
      expect(volumePerm.CreateVolumePermissions).toEqual([{ UserId: '111122223333' }]);
    }
    expect((await left(cfg.buildId!)).work).toEqual([]);
    await assertNoLeaks(dir.path);
  });

  it('a second build from the same source downloads nothing; a one-file change uploads a handful of blocks', async () => {
    // Warm the cache (the first test may have run alone or not at all).
    await buildAmi(config(), async (chroot) => chroot.writeFile('/etc/motd', 'first\n'), options());
    await moto.resetCalls();
    const second = await buildAmi(
      config(),
      async (chroot) => {
        await chroot.writeFile('/etc/motd', 'second\n');
      },
      options(),
    );
    expect(second.ebsDirect?.cache).toEqual({ source: 'hit', blocksDownloaded: 0 });
    const gets = (await moto.calls()).filter((c) => /^GET \/snapshots\//.test(c.action));
    expect(gets).toEqual([]);
    expect(second.ebsDirect?.blocksWritten).toBeGreaterThan(0);
    expect(second.ebsDirect?.blocksWritten).toBeLessThanOrEqual(8);
    await assertNoLeaks(dir.path);
  });

  it('from scratch: every non-zero block is uploaded, with no parent, and the AMI is registered on it', async () => {
    const cfg = config(
      {
        fromScratch: true,
        amiVirtualizationType: 'hvm',
        rootVolumeSize: 1,
        rootDeviceName: '/dev/xvda',
        amiBlockDeviceMappings: [{ deviceName: '/dev/xvda', volumeType: 'gp3', deleteOnTermination: true }],
        preMountCommands: ['mkfs.ext4 -q -F -L root {{.Device}}'],
      },
      ['sourceAmi'],
    );
    const result = await buildAmi(
      cfg,
      async (chroot) => {
        await chroot.writeFile('/hello', 'from scratch\n');
      },
      options(),
    );
    expect(result.ebsDirect?.cache).toBeUndefined();
    expect(result.ebsDirect?.blocksWritten).toBe(result.ebsDirect?.changedBlocks);
    const back = join(dir.path, 'scratch-back.raw');
    await downloadSnapshot({ snapshotId: result.ebsDirect!.snapshotId, file: back }, { ebs });
    const hello = await run('debugfs', ['-R', 'cat /hello', back], { timeoutMs: 30_000 });
    expect(hello.stdout).toBe('from scratch\n');
    const image = (await ec2().send(new DescribeImagesCommand({ ImageIds: [result.images[REGION]!] }))).Images![0]!;
    expect(image.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId).toBe(result.ebsDirect!.snapshotId);
    await assertNoLeaks(dir.path);
  });

  it('grows the root to rootVolumeSize: the snapshot is that large and the image maps that size', async () => {
    const result = await buildAmi(config({ rootVolumeSize: 2 }), () => {}, options());
    const snapshot = (await ec2().send(new DescribeSnapshotsCommand({ SnapshotIds: [result.ebsDirect!.snapshotId] })))
      .Snapshots![0]!;
    expect(snapshot.VolumeSize).toBe(2);
    const image = (await ec2().send(new DescribeImagesCommand({ ImageIds: [result.images[REGION]!] }))).Images![0]!;
    expect(image.BlockDeviceMappings?.[0]?.Ebs?.VolumeSize).toBe(2);
  });

  it.each([
    ['provisioning', 'provision'],
    ['uploading (every block fails)', 'upload'],
    ['registering', 'register'],
    ['copying to the second region', 'copy'],
    ['sharing the copy', 'permissions'],
  ] as const)('a failure while %s leaves no snapshot, image or work file', async (_what, step) => {
    if (step === 'upload') await moto.setKnobs({ ebs_fail_blocks: 1000 });
    if (step === 'register') faults().fail('RegisterImage', { code: 'InvalidParameterValue', message: 'injected' });
    if (step === 'copy') faults(COPY_REGION).fail('CopyImage', { code: 'InvalidParameterValue', message: 'injected' });
    if (step === 'permissions')
      faults(COPY_REGION).fail('ModifyImageAttribute', { code: 'UnauthorizedOperation', message: 'injected' });
    const cfg = config({ amiRegions: [COPY_REGION], amiUsers: ['111122223333'] });
    const error = await buildAmi(
      cfg,
      async (chroot) => {
        await chroot.writeFile('/etc/motd', 'x\n');
        if (step === 'provision') throw new Error('provisioning failed');
      },
      options(),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as { phase?: string }).phase).toBe(step === 'permissions' ? 'copy' : step);
    expect(await left(cfg.buildId!)).toEqual({ snapshots: 0, images: 0, work: [] });
    await assertNoLeaks(dir.path);
  });

  it('refuses the options of an attached volume by name, before downloading or creating anything', async () => {
    const cacheDir = join(dir.path, 'cache-refused');
    await moto.resetCalls();
    const error = await buildAmi(
      config({ cacheDir, devicePath: '/dev/xvdf', rootVolumeTags: { Name: 'work' }, lockDir: '/var/lock/x' }),
      () => {},
      options({ hostIdentity: { instanceId: 'i-0123456789abcdef0', availabilityZone: 'us-east-1a', region: REGION } }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    const paths = (error as ConfigError).issues.map((i) => i.path).sort();
    expect(paths).toEqual(['devicePath', 'lockDir', 'options.hostIdentity', 'rootVolumeTags']);
    expect((error as Error).message).toMatch(/devicePath.*has no meaning with via: 'ebs-direct'/s);
    expect(await moto.calls()).toEqual([]);
    await expect(readdir(cacheDir)).rejects.toThrow(/ENOENT/);
  });

  it('refuses an EC2 endpoint with nothing saying where the EBS direct APIs are, before any call', async () => {
    await moto.resetCalls();
    const { ebs: _ebs, ...withoutEbs } = options();
    const error = await buildAmi(config({ customEndpointEc2: moto.endpoint }), () => {}, withoutEbs).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.path)).toEqual(['customEndpointEc2']);
    expect((error as Error).message).toMatch(/AWS_ENDPOINT_URL_EBS/);
    expect(await moto.calls()).toEqual([]);
  });

  it('refuses a build without a region (there is no instance to ask)', async () => {
    const error = await buildAmi(config({}, ['region']), () => {}, options({ env: {} })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.path)).toEqual(['region']);
  });
});
