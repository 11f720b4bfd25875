/**
 * A paravirtual source: its root filesystem sits on the whole device, with no partition table
 * (Packer mounts such volumes whole). buildAmi mounts the whole device unless told otherwise.
 */
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateSnapshotCommand, CreateVolumeCommand, RegisterImageCommand } from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxImage } from '../../fixtures/busybox-image.js';
import { run } from '../../src/host/exec.js';
import { attachLoop } from '../../src/host/loop.js';
import { readMountInfo } from '../../src/host/mounts.js';
import { buildAmi } from '../../src/pipeline/build-ami.js';
import type { BuildAmiOptions } from '../../src/pipeline/build-ami.js';
import { BUILD_REGION, useE2e } from '../helpers/e2e.js';

const env = useE2e();
let pvImage: string;
/** A busybox filesystem on the whole file: the disk of a paravirtual image. */
let wholeDisk: string;

beforeAll(async () => {
  wholeDisk = join(env.dir, 'pv-base.img');
  await makeBusyboxImage(wholeDisk, { sizeMiB: 64, partitioned: false });
  const ec2 = env.ec2(BUILD_REGION);
  const volume = await ec2.send(
    new CreateVolumeCommand({ AvailabilityZone: env.availabilityZone, Size: 8, VolumeType: 'gp2' }),
  );
  const snapshot = await ec2.send(new CreateSnapshotCommand({ VolumeId: volume.VolumeId! }));
  const image = await ec2.send(
    new RegisterImageCommand({
      Name: `pv-source-${process.pid}`,
      RootDeviceName: '/dev/sda1',
      Architecture: 'x86_64',
      VirtualizationType: 'paravirtual',
      BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { SnapshotId: snapshot.SnapshotId!, VolumeSize: 8 } }],
    }),
  );
  pvImage = image.ImageId!;
});

/** Maps each attached volume to a fresh copy of the whole-disk image, without partition scan. */
function wholeDiskOptions(): BuildAmiOptions {
  return env.options({
    resolveDevice: async ({ volumeId }) => {
      const file = join(env.dir, `${volumeId}.img`);
      await copyFile(wholeDisk, file);
      const loop = await attachLoop({ file, partscan: false, stateDir: false });
      env.loops.push(loop);
      return loop.device;
    },
  });
}

describe('buildAmi from a paravirtual source', () => {
  it('mounts the whole device, as Packer does', async () => {
    let mountedSource = '';
    const result = await buildAmi(
      env.config({ sourceAmi: pvImage, amiRegions: [], copyFiles: [] }),
      async (chroot, info) => {
        mountedSource = (await readMountInfo()).find((m) => m.mountPoint === info.mountPath)?.source ?? '';
        await chroot.writeFile('/etc/hostname', 'paravirtual\n');
      },
      wholeDiskOptions(),
    );
    expect(result.sourceImage?.imageId).toBe(pvImage);
    const device = env.loops.at(-1)!.device;
    expect(mountedSource).toBe(device);
    const dir = await mkdtemp(join(tmpdir(), 'ami-chroot-verify-'));
    try {
      await run('mount', ['-o', 'ro', device, dir]);
      try {
        expect(await readFile(join(dir, 'etc/hostname'), 'utf8')).toBe('paravirtual\n');
      } finally {
        await run('umount', [dir]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
