/**
 * Every AWS primitive over HTTP against moto's EC2 server on 127.0.0.1, reached through
 * `customEndpointEc2` with the real SDK. Request shapes that moto ignores are asserted on the
 * recorded calls; effects that moto keeps are checked in moto.
 */
import {
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeSnapshotAttributeCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
} from '@aws-sdk/client-ec2';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsClients } from '../../../src/aws/clients.js';
import type { AwsClients } from '../../../src/aws/clients.js';
import { describeInstanceDeviceNames, getHostIdentity } from '../../../src/aws/identity.js';
import { deregisterImagesByName, snapshotAndRegister } from '../../../src/aws/images.js';
import { findTaggedResources } from '../../../src/aws/tagged-resources.js';
import { copyToRegions } from '../../../src/aws/regions.js';
import { resolveSourceAmi } from '../../../src/aws/source-image.js';
import { attachVolume, createVolume } from '../../../src/aws/volumes.js';
import type { DeviceAllocator } from '../../../src/aws/volumes.js';
import { toCtx } from '../../../src/internal/ctx.js';
import type { ProgressEvent } from '../../../src/types.js';
import { installEc2Faults } from '../../helpers/ec2-faults.js';
import type { Ec2Faults } from '../../helpers/ec2-faults.js';
import { MOTO_SOURCE_AMIS, motoEc2, registerImageInMoto, startBuildHost, startMoto } from '../../helpers/moto.js';
import type { MotoServer } from '../../helpers/moto.js';

let moto: MotoServer;
let clients: AwsClients;
let east: EC2Client;
let faults: Ec2Faults;
let westFaults: Ec2Faults;
let host: { instanceId: string; availabilityZone: string };
let unique = 0;
const name = (what: string): string => `${what}-${process.pid}-${++unique}`;

beforeAll(async () => {
  moto = await startMoto();
  clients = createAwsClients({
    region: 'us-east-1',
    customEndpointEc2: moto.endpoint,
    accessKey: 'testing',
    secretKey: 'testing',
    maxRetries: 1,
  });
  east = clients.ec2();
  faults = installEc2Faults(east);
  westFaults = installEc2Faults(clients.ec2('eu-west-1'));
  // moto has no EnableImageDeprecation: answer it in the test layer (never in library code).
  host = await startBuildHost(east);
});

afterAll(async () => {
  clients?.destroy();
  await moto?.stop();
});

const quiet = { logger: { warn: () => {}, error: () => {} } };

/** Gone: AWS answers InvalidAMIID.NotFound for a deregistered id; moto answers an empty list. */
async function expectImageGone(client: EC2Client, imageId: string): Promise<void> {
  const images = await client.send(new DescribeImagesCommand({ ImageIds: [imageId] })).then(
    (out) => out.Images ?? [],
    (error: unknown) => {
      expect(error).toMatchObject({ name: 'InvalidAMIID.NotFound' });
      return [];
    },
  );
  expect(images).toEqual([]);
}

describe('host identity against moto', () => {
  it('reads moto’s instance metadata through IMDSv2 at the given endpoint', async () => {
    await expect(getHostIdentity({ endpoint: moto.endpoint })).resolves.toEqual({
      instanceId: 'i-fake',
      availabilityZone: 'us-east-1a',
      region: 'us-east-1',
    });
  });

  it('lists the device names EC2 has for the build host', async () => {
    await expect(describeInstanceDeviceNames(east, host.instanceId, toCtx())).resolves.toEqual(['/dev/sda1']);
  });
});

describe('resolveSourceAmi against moto', () => {
  it('finds an image by filter and owner', async () => {
    // moto dates every preloaded image from its start (see helpers/moto.ts), so mostRecent is unit-tested only.
    const source = await resolveSourceAmi(
      {
        sourceAmiFilter: {
          filters: { name: 'debian-12-amd64-2026030*', architecture: 'x86_64' },
          owners: ['136693071363'],
          mostRecent: true,
        },
      },
      { ec2: east, ...quiet },
    );
    expect(source).toMatchObject({
      imageId: MOTO_SOURCE_AMIS.debianNew.ami_id,
      name: MOTO_SOURCE_AMIS.debianNew.name,
      rootDeviceName: '/dev/xvda',
      architecture: 'x86_64',
      bootMode: 'uefi-preferred',
      region: 'us-east-1',
    });
    expect(source.rootSnapshotId).toMatch(/^snap-/);
    expect(source.rootVolumeSize).toBe(15);
  });

  it('refuses an ambiguous filter, listing the matches', async () => {
    await expect(
      resolveSourceAmi(
        { sourceAmiFilter: { filters: { name: 'debian-12-*' }, owners: ['amazon'] } },
        { ec2: east, ...quiet },
      ),
    ).rejects.toThrow(/3 AMIs in us-east-1 matched/);
  });

  it('checks that an id satisfies the filter', async () => {
    await expect(
      resolveSourceAmi(
        {
          sourceAmi: MOTO_SOURCE_AMIS.debianArm.ami_id,
          sourceAmiFilter: { filters: { architecture: 'x86_64' }, owners: ['amazon'] },
        },
        { ec2: east, ...quiet },
      ),
    ).rejects.toThrow(/exists in us-east-1 but does not satisfy sourceAmiFilter/);
  });

  it('refuses images that are not EBS-backed', async () => {
    await expect(
      resolveSourceAmi({ sourceAmi: MOTO_SOURCE_AMIS.instanceStore.ami_id }, { ec2: east, ...quiet }),
    ).rejects.toThrow(/instance-store, not EBS/);
  });

  it('accepts an image a user registered from a snapshot (EBS-backed, as on EC2)', async () => {
    const registered = await registerImageInMoto(east, name('user-registered'));
    const found = await resolveSourceAmi({ sourceAmi: registered.imageId }, { ec2: east, ...quiet });
    expect(found).toMatchObject({
      imageId: registered.imageId,
      rootSnapshotId: registered.snapshotId,
      rootVolumeSize: 8,
    });
  });

  it('reports an unknown id as a SourceImageError', async () => {
    await expect(resolveSourceAmi({ sourceAmi: 'ami-0000000000000dead' }, { ec2: east, ...quiet })).rejects.toThrow(
      /was not found in us-east-1/,
    );
  });
});

describe('a whole build’s AWS side against moto', () => {
  it('creates, attaches, detaches, snapshots, registers, shares, copies, and undoes everything', async () => {
    const events: ProgressEvent[] = [];
    const opts = { ec2: clients.ec2, ...quiet, onProgress: (e: ProgressEvent) => events.push(e) };
    const buildId = name('build');
    const amiName = name('image');
    const callsBefore = clients.callCount();
    const recordedBefore = faults.calls.length + westFaults.calls.length;
    // The test's own checks use separate clients: neither recorded nor counted.
    const look = motoEc2(moto.endpoint);
    const lookWest = motoEc2(moto.endpoint, 'eu-west-1');

    const source = await resolveSourceAmi({ sourceAmi: MOTO_SOURCE_AMIS.debianNew.ami_id, region: 'us-east-1' }, opts);
    const volume = await createVolume(
      {
        availabilityZone: host.availabilityZone,
        source,
        size: 20,
        volumeType: 'gp3',
        tags: { Name: 'work' },
        buildId,
        region: 'us-east-1',
      },
      opts,
    );
    const inMoto = (await look.send(new DescribeVolumesCommand({ VolumeIds: [volume.volumeId] }))).Volumes![0]!;
    expect(inMoto).toMatchObject({
      State: 'available',
      Size: 20,
      VolumeType: 'gp3',
      SnapshotId: source.rootSnapshotId,
      AvailabilityZone: 'us-east-1a',
    });
    expect(inMoto.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'Name', Value: 'work' },
        { Key: 'ami-chroot:build-id', Value: buildId },
      ]),
    );

    const taken = await describeInstanceDeviceNames(east, host.instanceId, toCtx());
    const allocator: DeviceAllocator = async (exclude) => {
      const letter = 'fghijklmnop'
        .split('')
        .find((l) => !exclude.includes(`/dev/sd${l}`) && !taken.includes(`/dev/sd${l}`))!;
      return { attachmentName: `/dev/xvd${letter}`, release: async () => {} };
    };
    const attached = await attachVolume(
      {
        volumeId: volume.volumeId,
        instanceId: host.instanceId,
        attachmentName: allocator,
        resolveDevice: async ({ attachmentName }) => `/dev/test-${attachmentName.slice(5)}`,
        region: 'us-east-1',
      },
      opts,
    );
    expect(attached).toMatchObject({ attachmentName: '/dev/sdf', hostDevice: '/dev/test-sdf' });
    expect(
      (await look.send(new DescribeVolumesCommand({ VolumeIds: [volume.volumeId] }))).Volumes![0]!.Attachments,
    ).toEqual([expect.objectContaining({ InstanceId: host.instanceId, Device: '/dev/sdf', State: 'attached' })]);
    await attached.detach();
    await attached.detach();
    expect(faults.inputsOf('DetachVolume')).toEqual([
      { VolumeId: volume.volumeId, InstanceId: host.instanceId, Device: '/dev/sdf' },
    ]);
    expect((await look.send(new DescribeVolumesCommand({ VolumeIds: [volume.volumeId] }))).Volumes![0]!.State).toBe(
      'available',
    );

    const image = await snapshotAndRegister(
      {
        volumeId: volume.volumeId,
        region: 'us-east-1',
        name: amiName,
        description: 'built by the moto test',
        source,
        rootVolumeSize: 20,
        tags: { team: 'images' },
        snapshotTags: { kind: 'root' },
        buildId,
        amiUsers: ['111122223333'],
        amiGroups: ['all'],
        snapshotUsers: ['111122223333'],
        deprecateAt: '2030-01-01T00:00:00Z',
      },
      opts,
    );
    // moto ignores most of RegisterImage: assert what was asked.
    const register = faults.inputsOf('RegisterImage').at(-1)!;
    expect(register).toMatchObject({
      Name: amiName,
      Description: 'built by the moto test',
      RootDeviceName: '/dev/xvda',
      Architecture: 'x86_64',
      VirtualizationType: 'hvm',
      BootMode: 'uefi-preferred',
      BlockDeviceMappings: [
        {
          DeviceName: '/dev/xvda',
          Ebs: { SnapshotId: image.snapshotIds[0], DeleteOnTermination: false, VolumeType: 'standard', VolumeSize: 20 },
        },
      ],
    });
    expect(faults.inputsOf('EnableImageDeprecation')).toEqual([
      { ImageId: image.imageId, DeprecateAt: new Date('2030-01-01T00:00:00Z') },
    ]);
    const snapshot = (await look.send(new DescribeSnapshotsCommand({ SnapshotIds: [...image.snapshotIds] })))
      .Snapshots![0]!;
    expect(snapshot.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'kind', Value: 'root' },
        { Key: 'team', Value: 'images' },
        { Key: 'ami-chroot:build-id', Value: buildId },
      ]),
    );
    const launch = await look.send(
      new DescribeImageAttributeCommand({ ImageId: image.imageId, Attribute: 'launchPermission' }),
    );
    expect(launch.LaunchPermissions).toEqual(expect.arrayContaining([{ UserId: '111122223333' }, { Group: 'all' }]));
    const snapPerm = await look.send(
      new DescribeSnapshotAttributeCommand({ SnapshotId: image.snapshotIds[0]!, Attribute: 'createVolumePermission' }),
    );
    expect(snapPerm.CreateVolumePermissions).toEqual([{ UserId: '111122223333' }]);

    const tagged = await findTaggedResources({ buildId }, { ec2: east });
    expect(tagged.map((r) => `${r.kind}:${r.id}`).sort()).toEqual(
      expect.arrayContaining([`volume:${volume.volumeId}`, `snapshot:${image.snapshotIds[0]}`]),
    );

    const copies = await copyToRegions(
      {
        sourceImageId: image.imageId,
        sourceRegion: 'us-east-1',
        regions: ['eu-west-1'],
        name: amiName,
        tags: { team: 'images' },
        buildId,
        amiUsers: ['111122223333'],
      },
      opts,
    );
    const copyId = copies.images['eu-west-1']!;
    expect((await lookWest.send(new DescribeImagesCommand({ ImageIds: [copyId] }))).Images![0]).toMatchObject({
      Name: amiName,
      State: 'available',
    });
    expect(
      (await lookWest.send(new DescribeImageAttributeCommand({ ImageId: copyId, Attribute: 'launchPermission' })))
        .LaunchPermissions,
    ).toEqual([{ UserId: '111122223333' }]);
    expect(westFaults.inputsOf('CopyImage')[0]).toMatchObject({
      SourceImageId: image.imageId,
      SourceRegion: 'us-east-1',
      Name: amiName,
    });

    // Undo, in reverse: copies, image (+ snapshot), volume.
    await copies.undo();
    await image.deregister();
    await volume.delete();
    await expectImageGone(lookWest, copyId);
    await expectImageGone(look, image.imageId);
    await expect(
      look.send(new DescribeSnapshotsCommand({ SnapshotIds: [...image.snapshotIds] })),
    ).rejects.toMatchObject({ name: 'InvalidSnapshot.NotFound' });
    await expect(look.send(new DescribeVolumesCommand({ VolumeIds: [volume.volumeId] }))).rejects.toMatchObject({
      name: 'InvalidVolume.NotFound',
    });

    // Every call the library made was counted, and only those.
    expect(clients.callCount() - callsBefore).toBe(faults.calls.length + westFaults.calls.length - recordedBefore);
    look.destroy();
    lookWest.destroy();
    expect(
      events
        .filter((e) => e.type === 'resource' && e.action === 'created')
        .map((e) => (e.type === 'resource' ? e.kind : '')),
    ).toEqual(['volume', 'attachment', 'snapshot', 'image', 'image']);
  });

  it('encryptBoot replaces the registered image with an encrypted copy and removes the intermediary', async () => {
    const opts = { ec2: east, ...quiet };
    const source = await resolveSourceAmi({ sourceAmi: MOTO_SOURCE_AMIS.debianNew.ami_id }, opts);
    const volume = await createVolume({ availabilityZone: host.availabilityZone, source }, opts);
    try {
      const amiName = name('encrypted');
      const image = await snapshotAndRegister(
        { volumeId: volume.volumeId, name: amiName, source, encryptBoot: true, kmsKeyId: 'alias/test' },
        opts,
      );
      const intermediary = faults.calls.filter((c) => c.name === 'RegisterImage').at(-1)!.input['Name'] as string;
      expect(intermediary).toMatch(/^ami-chroot-intermediary-/);
      expect(faults.inputsOf('CopyImage').at(-1)).toMatchObject({
        Name: amiName,
        Encrypted: true,
        KmsKeyId: 'alias/test',
      });
      const byName = async (n: string) =>
        (await east.send(new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: [n] }] })))
          .Images ?? [];
      expect(await byName(intermediary)).toEqual([]);
      expect((await byName(amiName)).map((i) => i.ImageId)).toEqual([image.imageId]);
      await image.deregister();
      expect(await byName(amiName)).toEqual([]);
    } finally {
      await volume.delete();
    }
  });

  it('forceDeregister removes the older image of the same name (and its snapshots when asked)', async () => {
    const opts = { ec2: east, ...quiet };
    const source = await resolveSourceAmi({ sourceAmi: MOTO_SOURCE_AMIS.debianNew.ami_id }, opts);
    const volume = await createVolume({ availabilityZone: host.availabilityZone, source }, opts);
    const amiName = name('same-name');
    try {
      const first = await snapshotAndRegister({ volumeId: volume.volumeId, name: amiName, source }, opts);
      const described = (await east.send(new DescribeImagesCommand({ ImageIds: [first.imageId] }))).Images![0]!;
      const firstSnapshots = (described.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId);
      expect(firstSnapshots).toEqual(first.snapshotIds);
      const second = await snapshotAndRegister(
        { volumeId: volume.volumeId, name: amiName, source, forceDeregister: true, forceDeleteSnapshot: true },
        opts,
      );
      await expectImageGone(east, first.imageId);
      // The snapshots go with the image (EC2 would answer InUse to a DeleteSnapshot right after).
      expect(faults.inputsOf('DeregisterImage')).toContainEqual({
        ImageId: first.imageId,
        DeleteAssociatedSnapshots: true,
      });
      await expect(
        east.send(new DescribeSnapshotsCommand({ SnapshotIds: first.snapshotIds.slice() })),
      ).rejects.toMatchObject({
        name: 'InvalidSnapshot.NotFound',
      });
      await second.deregister();
      await first.deregister();
      expect(await deregisterImagesByName({ name: amiName, regions: ['us-east-1'] }, opts)).toEqual([]);
    } finally {
      await volume.delete();
    }
  });
});
