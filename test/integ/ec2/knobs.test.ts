/**
 * The test EC2's knobs (test/ec2/patches/), each driven through the real SDK over HTTP: EC2's
 * transitional states, late and stale views, InUse after deregistration, failed copies and
 * throttling, as the library will meet them.
 */
import {
  AttachVolumeCommand,
  CopyImageCommand,
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DeleteSnapshotCommand,
  DeleteVolumeCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  DescribeSnapshotAttributeCommand,
  DetachVolumeCommand,
  DisableImageDeprecationCommand,
  DisableImageDeregistrationProtectionCommand,
  EC2Client,
  EnableImageDeprecationCommand,
  EnableImageDeregistrationProtectionCommand,
  ModifySnapshotAttributeCommand,
  RegisterImageCommand,
} from '@aws-sdk/client-ec2';
import type { Image } from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { getHostIdentity } from '../../../src/aws/identity.js';
import { MOTO_SOURCE_AMIS, freshReads, motoEc2, startBuildHost, startMoto } from '../../helpers/moto.js';
import type { MotoServer } from '../../helpers/moto.js';

let moto: MotoServer;
let ec2: EC2Client;
let host: { instanceId: string; availabilityZone: string };
let unique = 0;
const name = (what: string): string => `${what}-${process.pid}-${++unique}`;

beforeAll(async () => {
  moto = await startMoto();
  ec2 = motoEc2(moto.endpoint);
  host = await startBuildHost(ec2);
});

afterEach(async () => {
  await moto.resetKnobs();
});

afterAll(async () => {
  ec2?.destroy();
  await moto?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Reads `read()` every `everyMs` until `done(value)` or `withinMs`; returns every value seen. */
async function observe<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  { everyMs = 40, withinMs = 5_000 } = {},
): Promise<T[]> {
  const seen: T[] = [];
  const deadline = Date.now() + withinMs;
  for (;;) {
    const value = await read();
    seen.push(value);
    if (done(value)) return seen;
    if (Date.now() > deadline) throw new Error(`not done within ${withinMs} ms; saw ${JSON.stringify(seen)}`);
    await sleep(everyMs);
  }
}

/** Distinct consecutive values: the states a resource went through. */
const transitions = <T>(values: readonly T[]): T[] =>
  values.filter((v, i) => i === 0 || JSON.stringify(v) !== JSON.stringify(values[i - 1]));

async function volumeView(volumeId: string): Promise<string> {
  const volume = (await ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }))).Volumes![0]!;
  const attachment = volume.Attachments?.[0]?.State;
  return attachment ? `${volume.State}/${attachment}` : volume.State!;
}

async function newVolume(): Promise<string> {
  const created = await ec2.send(new CreateVolumeCommand({ AvailabilityZone: host.availabilityZone, Size: 1 }));
  return created.VolumeId!;
}

async function newSnapshot(): Promise<string> {
  const volumeId = await newVolume();
  await observe(
    () => volumeView(volumeId),
    (s) => s === 'available',
  );
  const snapshot = await ec2.send(new CreateSnapshotCommand({ VolumeId: volumeId }));
  await ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }));
  return snapshot.SnapshotId!;
}

async function register(snapshotId: string, client: EC2Client = ec2): Promise<string> {
  const image = await client.send(
    new RegisterImageCommand({
      Name: name('img'),
      RootDeviceName: '/dev/xvda',
      Architecture: 'x86_64',
      VirtualizationType: 'hvm',
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: snapshotId, VolumeType: 'gp3' } }],
    }),
  );
  return image.ImageId!;
}

async function imageState(imageId: string, client: EC2Client = ec2): Promise<string> {
  return (await client.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).Images![0]!.State!;
}

describe('volumes', () => {
  it('volume_creating_ms: a new volume is `creating`, then `available`; AttachVolume meanwhile is IncorrectState', async () => {
    await moto.setKnobs({ volume_creating_ms: 400 });
    const volumeId = await newVolume();
    await expect(
      ec2.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: host.instanceId, Device: '/dev/sdf' })),
    ).rejects.toMatchObject({ name: 'IncorrectState' });
    const seen = await observe(
      () => volumeView(volumeId),
      (s) => s === 'available',
    );
    expect(transitions(seen)).toEqual(['creating', 'available']);
    await ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }));
  });

  it('attach_visible_after_ms + attaching_ms: the attachment is invisible, then `attaching`, then `attached`', async () => {
    await moto.setKnobs({ attach_visible_after_ms: 300, attaching_ms: 300 });
    const volumeId = await newVolume();
    await ec2.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: host.instanceId, Device: '/dev/sdf' }));
    const seen = await observe(
      () => volumeView(volumeId),
      (s) => s === 'in-use/attached',
    );
    expect(transitions(seen)).toEqual(['available', 'in-use/attaching', 'in-use/attached']);
    await ec2.send(new DetachVolumeCommand({ VolumeId: volumeId }));
    await ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }));
  });

  it('attach_visible_after_ms: DetachVolume of an attachment not shown yet is IncorrectState and detaches nothing', async () => {
    await moto.setKnobs({ attach_visible_after_ms: 300 });
    const volumeId = await newVolume();
    await ec2.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: host.instanceId, Device: '/dev/sdh' }));
    await expect(
      ec2.send(new DetachVolumeCommand({ VolumeId: volumeId, InstanceId: host.instanceId })),
    ).rejects.toMatchObject({ name: 'IncorrectState', message: expect.stringContaining("in the 'available' state") });
    // The attachment appears and stays until detached again.
    const seen = await observe(
      () => volumeView(volumeId),
      (s) => s === 'in-use/attached',
    );
    expect(seen.at(-1)).toBe('in-use/attached');
    await sleep(200);
    expect(await volumeView(volumeId)).toBe('in-use/attached');
    await ec2.send(new DetachVolumeCommand({ VolumeId: volumeId }));
    await ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }));
  });

  it('detaching_ms: the attachment is `detaching` and DeleteVolume answers VolumeInUse until it is gone', async () => {
    await moto.setKnobs({ detaching_ms: 400 });
    const volumeId = await newVolume();
    await ec2.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: host.instanceId, Device: '/dev/sdg' }));
    await ec2.send(new DetachVolumeCommand({ VolumeId: volumeId }));
    await expect(ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }))).rejects.toMatchObject({
      name: 'VolumeInUse',
    });
    const seen = await observe(
      () => volumeView(volumeId),
      (s) => s === 'available',
    );
    expect(transitions(seen)).toEqual(['in-use/detaching', 'available']);
    await ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }));
  });

  it('not_found_after_create_ms: a just-created volume, snapshot and image are NotFound for a while', async () => {
    const snapshotId = await newSnapshot();
    await moto.setKnobs({ not_found_after_create_ms: 300 });
    const volumeId = await newVolume();
    await expect(ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }))).rejects.toMatchObject({
      name: 'InvalidVolume.NotFound',
    });
    const imageId = await register(snapshotId);
    await expect(ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).rejects.toMatchObject({
      name: 'InvalidAMIID.NotFound',
    });
    const copy = await ec2.send(new CreateSnapshotCommand({ VolumeId: volumeId }));
    await expect(ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [copy.SnapshotId!] }))).rejects.toMatchObject({
      name: 'InvalidSnapshot.NotFound',
    });
    await sleep(350);
    expect(await volumeView(volumeId)).toBe('available');
    expect(await imageState(imageId)).toBe('available');
    await ec2.send(new DeregisterImageCommand({ ImageId: imageId, DeleteAssociatedSnapshots: true }));
    await ec2.send(new DeleteSnapshotCommand({ SnapshotId: copy.SnapshotId! }));
    await ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }));
  });

  it('stale_read_ms: a Describe can answer an older state than one already seen', async () => {
    await moto.setKnobs({ stale_read_ms: 1_000, seed: 7 });
    const volumeId = await newVolume();
    await ec2.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: host.instanceId, Device: '/dev/sdh' }));
    const seen: string[] = [];
    for (let i = 0; i < 30; i++) seen.push(await volumeView(volumeId).catch((e: Error) => e.name));
    // Attached now, yet some reads see the moment before the attach (or before the volume:
    // InvalidVolume.NotFound).
    const firstAttached = seen.indexOf('in-use/attached');
    expect(firstAttached).toBeGreaterThanOrEqual(0);
    expect(seen.slice(firstAttached).some((s) => s !== 'in-use/attached')).toBe(true);
    // A harness asking for the present (X-Test-Ec2-Fresh) never gets a stale answer.
    const fresh = freshReads(motoEc2(moto.endpoint));
    try {
      for (let i = 0; i < 30; i++) {
        const volume = (await fresh.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }))).Volumes![0]!;
        expect(`${volume.State}/${volume.Attachments?.[0]?.State}`).toBe('in-use/attached');
      }
    } finally {
      fresh.destroy();
    }
    await moto.resetKnobs();
    await ec2.send(new DetachVolumeCommand({ VolumeId: volumeId }));
    await ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }));
  });
});

describe('snapshots and images', () => {
  it('snapshot_ms: a snapshot is `pending` with rising progress, then `completed` 100%', async () => {
    await moto.setKnobs({ snapshot_ms: 600 });
    const volumeId = await newVolume();
    const { SnapshotId } = await ec2.send(new CreateSnapshotCommand({ VolumeId: volumeId }));
    const seen = await observe(
      async () => (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [SnapshotId!] }))).Snapshots![0]!,
      (s) => s.State === 'completed',
    );
    const pending = seen.filter((s) => s.State === 'pending').map((s) => Number.parseInt(s.Progress!, 10));
    expect(pending.length).toBeGreaterThan(2);
    expect(pending).toEqual([...pending].sort((a, b) => a - b));
    expect(pending.at(-1)).toBeGreaterThan(pending[0]!);
    expect(seen.at(-1)!.Progress).toBe('100%');
    await ec2.send(new DeleteSnapshotCommand({ SnapshotId: SnapshotId! }));
    await ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }));
  });

  it('image_pending_ms: a registered image is `pending`, then `available`', async () => {
    const snapshotId = await newSnapshot();
    await moto.setKnobs({ image_pending_ms: 400 });
    const imageId = await register(snapshotId);
    const seen = await observe(
      () => imageState(imageId),
      (s) => s === 'available',
    );
    expect(transitions(seen)).toEqual(['pending', 'available']);
    await ec2.send(new DeregisterImageCommand({ ImageId: imageId, DeleteAssociatedSnapshots: true }));
  });

  it('snapshot_in_use_after_deregister_ms: DeleteSnapshot answers InUse for a while after DeregisterImage', async () => {
    const snapshotId = await newSnapshot();
    const imageId = await register(snapshotId);
    await moto.setKnobs({ snapshot_in_use_after_deregister_ms: 500 });
    await expect(ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }))).rejects.toMatchObject({
      name: 'InvalidSnapshot.InUse',
    });
    await ec2.send(new DeregisterImageCommand({ ImageId: imageId }));
    await expect(ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }))).rejects.toMatchObject({
      name: 'InvalidSnapshot.InUse',
    });
    await sleep(550);
    await ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
    await expect(ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }))).rejects.toMatchObject({
      name: 'InvalidSnapshot.NotFound',
    });
  });

  it('DeregisterImage with DeleteAssociatedSnapshots removes the snapshots at once, InUse window or not', async () => {
    const snapshotId = await newSnapshot();
    const imageId = await register(snapshotId);
    await moto.setKnobs({ snapshot_in_use_after_deregister_ms: 5_000 });
    const out = await ec2.send(new DeregisterImageCommand({ ImageId: imageId, DeleteAssociatedSnapshots: true }));
    expect(out.DeleteSnapshotResults).toEqual([{ SnapshotId: snapshotId, ReturnCode: 'success' }]);
    await expect(ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }))).rejects.toMatchObject({
      name: 'InvalidSnapshot.NotFound',
    });
  });

  it('copy_ms + kms_keys: a copy with a key of the destination succeeds; with a foreign key it is accepted, then `failed`', async () => {
    const west = motoEc2(moto.endpoint, 'eu-west-1');
    try {
      const imageId = await register(await newSnapshot());
      await moto.setKnobs({ copy_ms: 400, kms_keys: { 'eu-west-1': ['key-west'], 'us-east-1': ['key-east'] } });
      const copy = async (kmsKeyId: string): Promise<string[]> => {
        const { ImageId } = await west.send(
          new CopyImageCommand({
            SourceImageId: imageId,
            SourceRegion: 'us-east-1',
            Name: name('copy'),
            Encrypted: true,
            KmsKeyId: kmsKeyId,
          }),
        );
        const seen = await observe(
          () => imageState(ImageId!, west),
          (s) => s !== 'pending',
        );
        const image = (await west.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }))).Images![0]!;
        const snapshotId = image.BlockDeviceMappings![0]!.Ebs!.SnapshotId!;
        const snapshot = (await west.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }))).Snapshots![0]!;
        await west.send(new DeregisterImageCommand({ ImageId: ImageId!, DeleteAssociatedSnapshots: true }));
        return [...transitions(seen), snapshot.State!, String(snapshot.Encrypted), image.StateReason?.Code ?? '-'];
      };
      expect(await copy('key-west')).toEqual(['pending', 'available', 'completed', 'true', '-']);
      expect(await copy('key-east')).toEqual(['pending', 'failed', 'error', 'true', 'Client.InvalidKMSKey.NotFound']);
      await ec2.send(new DeregisterImageCommand({ ImageId: imageId, DeleteAssociatedSnapshots: true }));
    } finally {
      west.destroy();
    }
  });
});

describe('throttling and presets', () => {
  it('throttle: the next `burst` matching calls answer RequestLimitExceeded 503; the SDK retry recovers', async () => {
    await moto.setKnobs({ throttle: { actions: ['DescribeVolumes'], burst: 2 } });
    const patient = new EC2Client({
      region: 'us-east-1',
      endpoint: moto.endpoint,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      maxAttempts: 4,
    });
    const impatient = motoEc2(moto.endpoint);
    try {
      await moto.resetCalls();
      await expect(impatient.send(new DescribeVolumesCommand({}))).rejects.toMatchObject({
        name: 'RequestLimitExceeded',
        $metadata: { httpStatusCode: 503 },
      });
      await moto.setKnobs({ throttle: { actions: ['DescribeVolumes'], burst: 2 } });
      const volumes = await patient.send(new DescribeVolumesCommand({}));
      expect(volumes.Volumes).toBeDefined();
      await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }));
      const served = (await moto.calls()).map((c) => `${c.action} ${c.status}`);
      expect(served).toEqual([
        'DescribeVolumes 503',
        'DescribeVolumes 503',
        'DescribeVolumes 503',
        'DescribeVolumes 503',
        'DescribeVolumes 200',
        'DescribeImages 200',
      ]);
    } finally {
      patient.destroy();
      impatient.destroy();
    }
  });

  it('preset realistic turns every behaviour on; time_scale stretches it', async () => {
    await moto.setKnobs({ preset: 'realistic', time_scale: 4 });
    const volumeId = await newVolume();
    // Realistic creation takes 150-400 ms, x4 here; a read may also find nothing yet.
    const seen = await observe(
      () => volumeView(volumeId).catch(() => 'not-found'),
      (s) => s === 'available',
      { withinMs: 8_000 },
    );
    expect(seen).toContain('creating');
    await moto.resetKnobs();
    await ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }));
  });
});

describe("moto's gaps, closed", () => {
  it('RegisterImage keeps mappings, attributes and tags on create; the root device type is `ebs`', async () => {
    const snapshotId = await newSnapshot();
    const imageName = name('full');
    const { ImageId } = await ec2.send(
      new RegisterImageCommand({
        Name: imageName,
        RootDeviceName: '/dev/xvda',
        Architecture: 'arm64',
        VirtualizationType: 'hvm',
        EnaSupport: true,
        SriovNetSupport: 'simple',
        BootMode: 'uefi',
        TpmSupport: 'v2.0',
        ImdsSupport: 'v2.0',
        BlockDeviceMappings: [
          { DeviceName: '/dev/xvda', Ebs: { SnapshotId: snapshotId, VolumeSize: 9, VolumeType: 'gp3' } },
          { DeviceName: '/dev/sdb', VirtualName: 'ephemeral0' },
        ],
        TagSpecifications: [
          { ResourceType: 'image', Tags: [{ Key: 'build', Value: 'b1' }] },
          { ResourceType: 'snapshot', Tags: [{ Key: 'build', Value: 'b1-snap' }] },
        ],
      }),
    );
    const image = (await ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }))).Images![0]!;
    expect(image).toMatchObject({
      Name: imageName,
      RootDeviceType: 'ebs',
      RootDeviceName: '/dev/xvda',
      Architecture: 'arm64',
      VirtualizationType: 'hvm',
      EnaSupport: true,
      SriovNetSupport: 'simple',
      BootMode: 'uefi',
      TpmSupport: 'v2.0',
      ImdsSupport: 'v2.0',
      Tags: [{ Key: 'build', Value: 'b1' }],
      BlockDeviceMappings: [
        {
          DeviceName: '/dev/xvda',
          Ebs: { SnapshotId: snapshotId, VolumeSize: 9, VolumeType: 'gp3', DeleteOnTermination: true },
        },
        { DeviceName: '/dev/sdb', VirtualName: 'ephemeral0' },
      ],
    });
    const snapshot = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }))).Snapshots![0]!;
    expect(snapshot.Tags).toEqual([{ Key: 'build', Value: 'b1-snap' }]);
    // No extra snapshot of moto's own: the image maps only the one it was given.
    const owned = await ec2.send(
      new DescribeSnapshotsCommand({ Filters: [{ Name: 'description', Values: [`*${ImageId!}*`] }] }),
    );
    expect(owned.Snapshots).toEqual([]);
    await expect(
      ec2.send(new RegisterImageCommand({ Name: imageName, RootDeviceName: '/dev/xvda' })),
    ).rejects.toMatchObject({ name: 'InvalidAMIName.Duplicate' });
    await expect(
      ec2.send(
        new RegisterImageCommand({
          Name: name('kms'),
          RootDeviceName: '/dev/xvda',
          BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: snapshotId, KmsKeyId: 'key-1' } }],
        }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidParameterValue' });
    await ec2.send(new DeregisterImageCommand({ ImageId: ImageId!, DeleteAssociatedSnapshots: true }));
  });

  it('CopyImage copies mappings (new snapshots) and attributes, tags only when asked, never protection or deprecation', async () => {
    const west = motoEc2(moto.endpoint, 'eu-west-1');
    try {
      const snapshotId = await newSnapshot();
      const { ImageId } = await ec2.send(
        new RegisterImageCommand({
          Name: name('src'),
          RootDeviceName: '/dev/xvda',
          Architecture: 'x86_64',
          VirtualizationType: 'hvm',
          EnaSupport: true,
          BootMode: 'uefi-preferred',
          BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: snapshotId, VolumeType: 'gp3' } }],
          TagSpecifications: [{ ResourceType: 'image', Tags: [{ Key: 'k', Value: 'v' }] }],
        }),
      );
      await ec2.send(new EnableImageDeprecationCommand({ ImageId, DeprecateAt: new Date(Date.now() + 86_400_000) }));
      await ec2.send(new EnableImageDeregistrationProtectionCommand({ ImageId }));
      const copy = async (copyTags: boolean) => {
        const out = await west.send(
          new CopyImageCommand({
            SourceImageId: ImageId,
            SourceRegion: 'us-east-1',
            Name: name('dst'),
            CopyImageTags: copyTags,
            TagSpecifications: [{ ResourceType: 'image', Tags: [{ Key: 'mine', Value: 'x' }] }],
          }),
        );
        return (await west.send(new DescribeImagesCommand({ ImageIds: [out.ImageId!] }))).Images![0]!;
      };
      const [withTags, without] = [await copy(true), await copy(false)];
      expect(withTags).toMatchObject({
        RootDeviceType: 'ebs',
        EnaSupport: true,
        BootMode: 'uefi-preferred',
        DeregistrationProtection: 'disabled',
        BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeType: 'gp3' } }],
      });
      expect(withTags.DeprecationTime).toBeUndefined();
      expect(withTags.BlockDeviceMappings![0]!.Ebs!.SnapshotId).not.toBe(snapshotId);
      expect(withTags.Tags).toEqual(
        expect.arrayContaining([
          { Key: 'k', Value: 'v' },
          { Key: 'mine', Value: 'x' },
        ]),
      );
      expect(without.Tags).toEqual([{ Key: 'mine', Value: 'x' }]);
      for (const image of [withTags, without])
        await west.send(new DeregisterImageCommand({ ImageId: image.ImageId, DeleteAssociatedSnapshots: true }));
      await ec2.send(new DisableImageDeregistrationProtectionCommand({ ImageId }));
      await ec2.send(new DeregisterImageCommand({ ImageId, DeleteAssociatedSnapshots: true }));
    } finally {
      west.destroy();
    }
  });

  it('billing: a source keeps its PlatformDetails/UsageOperation and its copies too; a registered image is Linux/UNIX', async () => {
    const billing = (i: Image | undefined) => [i?.PlatformDetails, i?.UsageOperation];
    const rhel = MOTO_SOURCE_AMIS.rhel.ami_id;
    const [source] = (await ec2.send(new DescribeImagesCommand({ ImageIds: [rhel] }))).Images!;
    expect(billing(source)).toEqual(['Red Hat Enterprise Linux', 'RunInstances:0010']);
    const registered = await register(await newSnapshot());
    const [image] = (await ec2.send(new DescribeImagesCommand({ ImageIds: [registered] }))).Images!;
    expect(billing(image)).toEqual(['Linux/UNIX', 'RunInstances']);
    const west = motoEc2(moto.endpoint, 'eu-west-1');
    try {
      const { ImageId } = await west.send(
        new CopyImageCommand({ SourceImageId: rhel, SourceRegion: 'us-east-1', Name: name('rhel-copy') }),
      );
      const [copy] = (await west.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }))).Images!;
      expect(billing(copy)).toEqual(['Red Hat Enterprise Linux', 'RunInstances:0010']);
      await west.send(new DeregisterImageCommand({ ImageId, DeleteAssociatedSnapshots: true }));
    } finally {
      west.destroy();
    }
    await ec2.send(new DeregisterImageCommand({ ImageId: registered, DeleteAssociatedSnapshots: true }));
  });

  it('deregistration protection blocks DeregisterImage; with cooldown it lasts 24 h after disabling', async () => {
    const plain = await register(await newSnapshot());
    const cooled = await register(await newSnapshot());
    await ec2.send(new EnableImageDeregistrationProtectionCommand({ ImageId: plain }));
    await ec2.send(new EnableImageDeregistrationProtectionCommand({ ImageId: cooled, WithCooldown: true }));
    for (const imageId of [plain, cooled])
      await expect(ec2.send(new DeregisterImageCommand({ ImageId: imageId }))).rejects.toMatchObject({
        name: 'OperationNotPermitted',
      });
    await ec2.send(new DisableImageDeregistrationProtectionCommand({ ImageId: plain }));
    await ec2.send(new DisableImageDeregistrationProtectionCommand({ ImageId: cooled }));
    const protection = async (imageId: string) =>
      (await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).Images![0]!.DeregistrationProtection;
    expect(await protection(plain)).toBe('disabled');
    expect(await protection(cooled)).toMatch(/^disabled-until \d{4}-/);
    await expect(ec2.send(new DeregisterImageCommand({ ImageId: cooled }))).rejects.toMatchObject({
      name: 'OperationNotPermitted',
    });
    await ec2.send(new DeregisterImageCommand({ ImageId: plain, DeleteAssociatedSnapshots: true }));
    // The cooled image stays (as on EC2, for 24 h); this server dies with the test file.
  });

  it('EnableImageDeprecation sets DeprecationTime (future only); Disable clears it', async () => {
    const imageId = await register(await newSnapshot());
    const at = new Date(Date.now() + 3 * 86_400_000);
    at.setUTCSeconds(0, 0);
    await ec2.send(new EnableImageDeprecationCommand({ ImageId: imageId, DeprecateAt: at }));
    const image = async () => (await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).Images![0]!;
    expect((await image()).DeprecationTime).toBe(at.toISOString());
    await expect(
      ec2.send(new EnableImageDeprecationCommand({ ImageId: imageId, DeprecateAt: new Date(Date.now() - 60_000) })),
    ).rejects.toMatchObject({ name: 'InvalidParameterValue' });
    await ec2.send(new DisableImageDeprecationCommand({ ImageId: imageId }));
    expect((await image()).DeprecationTime).toBeUndefined();
    await ec2.send(new DeregisterImageCommand({ ImageId: imageId, DeleteAssociatedSnapshots: true }));
  });

  it('ModifySnapshotAttribute takes the structured CreateVolumePermission form the SDK sends', async () => {
    const snapshotId = await newSnapshot();
    await ec2.send(
      new ModifySnapshotAttributeCommand({
        SnapshotId: snapshotId,
        Attribute: 'createVolumePermission',
        CreateVolumePermission: { Add: [{ UserId: '111122223333' }, { UserId: '444455556666' }, { Group: 'all' }] },
      }),
    );
    await ec2.send(
      new ModifySnapshotAttributeCommand({
        SnapshotId: snapshotId,
        Attribute: 'createVolumePermission',
        CreateVolumePermission: { Remove: [{ UserId: '444455556666' }] },
      }),
    );
    const { CreateVolumePermissions } = await ec2.send(
      new DescribeSnapshotAttributeCommand({ SnapshotId: snapshotId, Attribute: 'createVolumePermission' }),
    );
    expect(CreateVolumePermissions).toEqual(expect.arrayContaining([{ UserId: '111122223333' }, { Group: 'all' }]));
    expect(CreateVolumePermissions).toHaveLength(2);
    await ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
  });

  it('imds_instance_id: IMDSv2 and the identity document name an instance the test EC2 has', async () => {
    const imds = async (path: string): Promise<Response> => {
      const token = await fetch(`${moto.endpoint}/latest/api/token`, {
        method: 'PUT',
        headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' },
      }).then((response) => response.text());
      return fetch(`${moto.endpoint}${path}`, { headers: { 'x-aws-ec2-metadata-token': token } });
    };
    const document = '/latest/dynamic/instance-identity/document';
    // Stock answers without the knob, the document included.
    expect(await (await imds(document)).json()).toMatchObject({ instanceId: 'i-fake', region: 'us-east-1' });
    await moto.setKnobs({ imds_instance_id: host.instanceId });
    await expect(getHostIdentity({ endpoint: moto.endpoint })).resolves.toEqual({
      instanceId: host.instanceId,
      availabilityZone: host.availabilityZone,
      region: 'us-east-1',
    });
    const identity = (await (await imds(document)).json()) as Record<string, unknown>;
    expect(identity).toMatchObject({
      instanceId: host.instanceId,
      availabilityZone: host.availabilityZone,
      region: 'us-east-1',
      accountId: '123456789012',
      instanceType: 't3.micro',
    });
    // Go's time.Time and JS's Date both parse it.
    expect(Number.isNaN(Date.parse(String(identity['pendingTime'])))).toBe(false);
    await moto.setKnobs({ imds_instance_id: 'i-0000000000000dead' });
    expect((await imds(document)).status).toBe(404);
    expect((await imds('/latest/meta-data/instance-id')).status).toBe(404);
  });
});
