/**
 * A source AMI whose root snapshot holds real blocks on the test EC2 (written with the EBS direct
 * APIs, as `uploadSnapshot` does): what `buildAmi` with `via: 'ebs-direct'` reads. The image is a
 * busybox ext4 file system on the whole disk (no partition table: `mountPartition: '0'`).
 */
import { join } from 'node:path';
import type { EBSClient } from '@aws-sdk/client-ebs';
import { RegisterImageCommand } from '@aws-sdk/client-ec2';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { makeBusyboxImage } from '../../fixtures/busybox-image.js';
import { uploadSnapshot } from '../../src/aws/ebs/upload.js';

/** The source: its AMI, its root snapshot, the local image it was made from and its block count. */
export interface EbsSource {
  readonly imageId: string;
  readonly snapshotId: string;
  readonly file: string;
  readonly blocks: number;
}

/** Makes a busybox image in `dir`, uploads it as a snapshot and registers an AMI on it. */
export async function makeEbsSource(
  dir: string,
  clients: { readonly ebs: EBSClient; readonly ec2: EC2Client },
  name = 'ebs-direct-source',
): Promise<EbsSource> {
  const file = join(dir, `${name}.raw`);
  await makeBusyboxImage(file, { sizeMiB: 64, partitioned: false, tmpDir: dir });
  const uploaded = await uploadSnapshot({ file, buildId: 'source' }, clients);
  const image = await clients.ec2.send(
    new RegisterImageCommand({
      Name: name,
      RootDeviceName: '/dev/xvda',
      Architecture: 'x86_64',
      VirtualizationType: 'hvm',
      EnaSupport: true,
      BlockDeviceMappings: [
        { DeviceName: '/dev/xvda', Ebs: { SnapshotId: uploaded.snapshotId, VolumeSize: 1, VolumeType: 'gp3' } },
      ],
    }),
  );
  return { imageId: image.ImageId!, snapshotId: uploaded.snapshotId, file, blocks: uploaded.blocksWritten };
}
