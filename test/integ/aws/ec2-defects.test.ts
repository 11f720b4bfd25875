/**
 * What would fail or leak on real EC2 though moto hid it (issue 12): each case turns on the test
 * EC2's knob for EC2's real behaviour and runs the primitive through the real SDK.
 */
import {
  DeleteVolumeCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
} from '@aws-sdk/client-ec2';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RegionCopyError } from '../../../src/errors.js';
import { snapshotAndRegister } from '../../../src/aws/images.js';
import { copyToRegions } from '../../../src/aws/regions.js';
import { resolveSourceAmi } from '../../../src/aws/source-image.js';
import type { SourceImage } from '../../../src/aws/source-image.js';
import { DETACH_CONFIRM_MS, attachVolume, createVolume } from '../../../src/aws/volumes.js';
import { installEc2Faults } from '../../helpers/ec2-faults.js';
import { MOTO_SOURCE_AMIS, motoEc2, startBuildHost, startMoto } from '../../helpers/moto.js';
import type { MotoServer } from '../../helpers/moto.js';

let moto: MotoServer;
let host: { instanceId: string; availabilityZone: string };
let source: SourceImage;
const clients = new Map<string, EC2Client>();
const ec2 = (region = 'us-east-1'): EC2Client => {
  if (!clients.has(region)) clients.set(region, motoEc2(moto.endpoint, region));
  return clients.get(region)!;
};
let unique = 0;
const name = (what: string): string => `${what}-${process.pid}-${++unique}`;
const warnings: string[] = [];
const quiet = {
  logger: { warn: (m: string) => warnings.push(m), error: () => {} },
  // Copies here take well under a second (copy_ms): no need for the minute before the first poll.
  polling: { waits: { copyAvailable: { firstDelayMs: 100, minDelayMs: 200 } } },
};

beforeAll(async () => {
  moto = await startMoto();
  // moto creates a region's source images (and their snapshots) on its first use: do it now.
  for (const region of ['eu-west-1', 'ap-southeast-2'])
    await ec2(region).send(new DescribeImagesCommand({ Owners: ['amazon'] }));
  host = await startBuildHost(ec2());
  source = await resolveSourceAmi({ sourceAmi: MOTO_SOURCE_AMIS.debianNew.ami_id }, { ec2: ec2() });
});
afterEach(async () => {
  await moto.resetKnobs();
  warnings.length = 0;
});
afterAll(async () => {
  for (const c of clients.values()) c.destroy();
  await moto?.stop();
});

/** Volumes, snapshots and images of this account, per region: what a test must leave as it found. */
async function owned(regions: readonly string[]): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const region of regions) {
    const c = ec2(region);
    const [v, s, i] = await Promise.all([
      c.send(new DescribeVolumesCommand({})),
      c.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] })),
      c.send(new DescribeImagesCommand({ Owners: ['self'] })),
    ]);
    out[region] = [v.Volumes!.length, s.Snapshots!.length, i.Images!.length];
  }
  return out;
}

/** A registered image of ours in us-east-1 (volume deleted), ready to copy. */
async function anImage(): Promise<{ imageId: string; deregister: () => Promise<void> }> {
  const volume = await createVolume({ availabilityZone: host.availabilityZone, source }, { ec2: ec2(), ...quiet });
  const image = await snapshotAndRegister(
    { volumeId: volume.volumeId, name: name('img'), source },
    { ec2: ec2(), ...quiet },
  );
  await volume.delete();
  return { imageId: image.imageId, deregister: () => image.deregister() };
}

describe('1. KMS key of the copies', () => {
  it('kmsKeyId stays in the build region: a copy region without its own key uses the default key', async () => {
    const image = await anImage();
    await moto.setKnobs({ copy_ms: 200, kms_keys: { 'us-east-1': ['key-east'], 'eu-west-1': ['key-west'] } });
    const before = await owned(['eu-west-1', 'ap-southeast-2']);
    const copies = await copyToRegions(
      {
        sourceImageId: image.imageId,
        sourceRegion: 'us-east-1',
        regions: ['eu-west-1', 'ap-southeast-2'],
        name: name('copy'),
        encryptBoot: true,
        kmsKeyId: 'key-east',
        regionKmsKeyIds: { 'eu-west-1': 'key-west' },
      },
      { ec2, ...quiet },
    );
    expect(Object.keys(copies.images).sort()).toEqual(['ap-southeast-2', 'eu-west-1']);
    expect(warnings.join('\n')).toMatch(/kmsKeyId key-east belongs to us-east-1; the copy in ap-southeast-2/);
    await copies.undo();
    await image.deregister();
    expect(await owned(['eu-west-1', 'ap-southeast-2'])).toEqual(before);
  });

  it('a multi-region key or an alias is used in every region', async () => {
    const image = await anImage();
    await moto.setKnobs({ copy_ms: 100, kms_keys: { 'eu-west-1': ['mrk-1234abcd', 'alias/images'] } });
    for (const kmsKeyId of ['mrk-1234abcd', 'alias/images']) {
      const copies = await copyToRegions(
        { sourceImageId: image.imageId, sourceRegion: 'us-east-1', regions: ['eu-west-1'], name: name('c'), kmsKeyId },
        { ec2, ...quiet },
      );
      await copies.undo();
    }
    expect(warnings).toEqual([]);
    await image.deregister();
  });
});

describe('2. snapshots of a deregistered image stay InUse for a while', () => {
  it('the undo after a failure removes image and snapshot though DeleteSnapshot answers InUse', async () => {
    await moto.setKnobs({ snapshot_in_use_after_deregister_ms: 3_000 });
    const volume = await createVolume({ availabilityZone: host.availabilityZone, source }, { ec2: ec2(), ...quiet });
    const before = await owned(['us-east-1']);
    const client = motoEc2(moto.endpoint);
    const faults = installEc2Faults(client);
    faults.fail('ModifyImageAttribute', { code: 'UnauthorizedOperation', message: 'no', status: 403 });
    try {
      const error = await snapshotAndRegister(
        { volumeId: volume.volumeId, name: name('unshared'), source, amiUsers: ['111122223333'] },
        { ec2: client, ...quiet },
      ).catch((e: unknown) => e);
      expect(error).toMatchObject({ operation: 'ModifyImageAttribute', cleanupErrors: [] });
      expect(await owned(['us-east-1'])).toEqual(before);
    } finally {
      client.destroy();
      await volume.delete();
    }
  });

  it('encryptBoot removes its intermediary image and snapshot', async () => {
    await moto.setKnobs({ snapshot_in_use_after_deregister_ms: 3_000, copy_ms: 200 });
    const volume = await createVolume({ availabilityZone: host.availabilityZone, source }, { ec2: ec2(), ...quiet });
    const before = await owned(['us-east-1']);
    const image = await snapshotAndRegister(
      { volumeId: volume.volumeId, name: name('enc'), source, encryptBoot: true },
      { ec2: ec2(), ...quiet },
    );
    const after = await owned(['us-east-1']);
    // One more image and one more snapshot: the encrypted copy's; the intermediary's are gone.
    const [volumes, snapshots, images] = before['us-east-1']!;
    expect(after['us-east-1']).toEqual([volumes, snapshots! + 1, images! + 1]);
    await image.deregister();
    await volume.delete();
  });

  it('forceDeregister + forceDeleteSnapshot replaces the old image: never the old gone and no new one', async () => {
    const old = await anImage();
    const oldImage = (await ec2().send(new DescribeImagesCommand({ ImageIds: [old.imageId] }))).Images![0]!;
    const oldSnapshot = oldImage.BlockDeviceMappings![0]!.Ebs!.SnapshotId!;
    await moto.setKnobs({ snapshot_in_use_after_deregister_ms: 3_000 });
    const volume = await createVolume({ availabilityZone: host.availabilityZone, source }, { ec2: ec2(), ...quiet });
    const image = await snapshotAndRegister(
      {
        volumeId: volume.volumeId,
        name: oldImage.Name!,
        source,
        forceDeregister: true,
        forceDeleteSnapshot: true,
      },
      { ec2: ec2(), ...quiet },
    );
    const named = await ec2().send(
      new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: [oldImage.Name!] }] }),
    );
    expect(named.Images!.map((i) => i.ImageId)).toEqual([image.imageId]);
    await expect(ec2().send(new DescribeSnapshotsCommand({ SnapshotIds: [oldSnapshot] }))).rejects.toMatchObject({
      name: 'InvalidSnapshot.NotFound',
    });
    await image.deregister();
    await volume.delete();
  });
});

describe('4. deregistration protection', () => {
  it('is applied only once every region succeeded, so a failed region leaves nothing protected behind', async () => {
    const image = await anImage();
    await moto.setKnobs({ copy_ms: 300, kms_keys: { 'eu-west-1': [], 'ap-southeast-2': [] } });
    const before = await owned(['eu-west-1', 'ap-southeast-2']);
    const error = await copyToRegions(
      {
        sourceImageId: image.imageId,
        sourceRegion: 'us-east-1',
        regions: ['eu-west-1', 'ap-southeast-2'],
        name: name('protected'),
        encryptBoot: true,
        // A key that does not exist there: accepted, then the copy fails.
        regionKmsKeyIds: { 'ap-southeast-2': 'key-elsewhere' },
        deregistrationProtection: { enabled: true, withCooldown: true },
      },
      { ec2, ...quiet },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegionCopyError);
    expect((error as RegionCopyError).outcomes.map((o) => [o.region, o.status])).toEqual([
      ['eu-west-1', 'undone'],
      ['ap-southeast-2', 'failed'],
    ]);
    expect(await owned(['eu-west-1', 'ap-southeast-2'])).toEqual(before);
    await image.deregister();
  });

  it('when every region succeeded, every copy is protected; the undo lifts it first', async () => {
    const image = await anImage();
    const copies = await copyToRegions(
      {
        sourceImageId: image.imageId,
        sourceRegion: 'us-east-1',
        regions: ['eu-west-1'],
        name: name('kept'),
        deregistrationProtection: { enabled: true },
      },
      { ec2, ...quiet },
    );
    const copy = (await ec2('eu-west-1').send(new DescribeImagesCommand({ ImageIds: [copies.images['eu-west-1']!] })))
      .Images![0]!;
    expect(copy.DeregistrationProtection).toBe('enabled');
    await copies.undo();
    expect(
      (await ec2('eu-west-1').send(new DescribeImagesCommand({ ImageIds: [copies.images['eu-west-1']!] }))).Images,
    ).toEqual([]);
    await image.deregister();
  });
});

describe('5. eventual consistency', () => {
  it('an undo right after AttachVolume detaches and deletes though the attachment shows up late', async () => {
    await moto.setKnobs({ attach_visible_after_ms: 1_500, detaching_ms: 1_000 });
    const before = await owned(['us-east-1']);
    const volume = await createVolume({ availabilityZone: host.availabilityZone, source }, { ec2: ec2(), ...quiet });
    const controller = new AbortController();
    const reason = new Error('stop right after attach');
    const attaching = attachVolume(
      { volumeId: volume.volumeId, instanceId: host.instanceId, attachmentName: '/dev/sdk' },
      { ec2: ec2(), ...quiet, signal: controller.signal },
    );
    setTimeout(() => controller.abort(reason), 100);
    await expect(attaching).rejects.toBe(reason);
    // EC2 refused the first DetachVolume (it did not show the attachment yet): the undo waited
    // for the attachment to appear and detached it again.
    await volume.delete();
    expect(await owned(['us-east-1'])).toEqual(before);
  });

  /** Reads up to 0.9 s old: within the confirmation window, as the library assumes of EC2's. */
  const STALE = { stale_read_ms: DETACH_CONFIRM_MS * 0.9 };

  /** A volume attached to the host as `device`, settled (read with fresh reads). */
  async function settledAttachment(device: string) {
    const volume = await createVolume({ availabilityZone: host.availabilityZone, source }, { ec2: ec2(), ...quiet });
    const attached = await attachVolume(
      { volumeId: volume.volumeId, instanceId: host.instanceId, attachmentName: device },
      { ec2: ec2(), ...quiet },
    );
    return { volume, attached };
  }

  async function attachmentsNow(volumeId: string): Promise<string[]> {
    await moto.setKnobs({ stale_read_ms: 0 });
    const out = await ec2().send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }));
    return (out.Volumes?.[0]?.Attachments ?? []).map((a) => a.State ?? '?');
  }

  it('the detach undo does not conclude "detached" from one stale read', async () => {
    await moto.setKnobs({ attach_visible_after_ms: 0, attaching_ms: 0, detaching_ms: 2_000 });
    const before = await owned(['us-east-1']);
    const { volume, attached } = await settledAttachment('/dev/sdl');
    // From now on a read may show the volume as it was before it was attached.
    await moto.setKnobs(STALE);
    await attached.detach();
    // Detached means detached: nothing is still detaching, and DeleteVolume is not refused.
    expect(await attachmentsNow(volume.volumeId)).toEqual([]);
    await ec2().send(new DeleteVolumeCommand({ VolumeId: volume.volumeId }));
    await volume.delete();
    expect(await owned(['us-east-1'])).toEqual(before);
  }, 60_000);

  it('deleting the volume after its detach does not fail on a stale "attached"', async () => {
    await moto.setKnobs({ attach_visible_after_ms: 0, attaching_ms: 0, detaching_ms: 100 });
    const before = await owned(['us-east-1']);
    const { volume } = await settledAttachment('/dev/sdm');
    // Attached for longer than a read can lag, so a stale read shows it attached, not absent.
    await new Promise((r) => setTimeout(r, 3_000));
    // Detached outside the library, and seen gone with fresh reads.
    await ec2().send(new DetachVolumeCommand({ VolumeId: volume.volumeId, InstanceId: host.instanceId }));
    while ((await attachmentsNow(volume.volumeId)).length > 0) await new Promise((r) => setTimeout(r, 50));
    // A read may now show the volume still attached, as it was a moment ago.
    await moto.setKnobs(STALE);
    await volume.delete();
    expect(await owned(['us-east-1'])).toEqual(before);
  }, 60_000);
});
