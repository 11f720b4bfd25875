/**
 * The primitives against the test EC2 with slow transitions set by its knobs and one-off faults
 * injected by middleware on the real client: the waits, retries and undos run over real HTTP.
 * Also checks the fault helper itself.
 */
import {
  DescribeImagesCommand,
  DescribeRegionsCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
} from '@aws-sdk/client-ec2';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AwsError, RegionCopyError, WaitTimeoutError } from '../../../src/errors.js';
import type { AwsOperationOptions } from '../../../src/aws/common.js';
import { snapshotAndRegister } from '../../../src/aws/images.js';
import { copyToRegions } from '../../../src/aws/regions.js';
import { resolveSourceAmi } from '../../../src/aws/source-image.js';
import type { SourceImage } from '../../../src/aws/source-image.js';
import { attachVolume, createVolume } from '../../../src/aws/volumes.js';
import type { WorkVolume } from '../../../src/aws/volumes.js';
import type { ProgressEvent } from '../../../src/types.js';
import { installEc2Faults } from '../../helpers/ec2-faults.js';
import type { Ec2Faults } from '../../helpers/ec2-faults.js';
import { MOTO_SOURCE_AMIS, motoEc2, startBuildHost, startMoto } from '../../helpers/moto.js';
import type { MotoServer } from '../../helpers/moto.js';

let moto: MotoServer;
let look: EC2Client;
let host: { instanceId: string; availabilityZone: string };
let source: SourceImage;
let unique = 0;
const name = (what: string): string => `${what}-${process.pid}-${++unique}`;

/** Per test: a fresh client with its own fault layer, options that collect events and warnings. */
const made: EC2Client[] = [];
const volumes: WorkVolume[] = [];
function setup(region = 'us-east-1'): {
  ec2: EC2Client;
  faults: Ec2Faults;
  opts: AwsOperationOptions & { events: ProgressEvent[]; warnings: string[] };
} {
  const ec2 = motoEc2(moto.endpoint, region);
  made.push(ec2);
  const faults = installEc2Faults(ec2);
  const events: ProgressEvent[] = [];
  const warnings: string[] = [];
  return {
    ec2,
    faults,
    opts: {
      ec2,
      events,
      warnings,
      onProgress: (e) => events.push(e),
      logger: { warn: (m: string) => warnings.push(m), error: () => {} },
    },
  };
}

beforeAll(async () => {
  moto = await startMoto();
  look = motoEc2(moto.endpoint);
  host = await startBuildHost(look);
  source = await resolveSourceAmi({ sourceAmi: MOTO_SOURCE_AMIS.debianNew.ami_id }, { ec2: look });
});

afterEach(async () => {
  await moto.resetKnobs();
  // Leave nothing behind, whatever the test did.
  for (const v of volumes.splice(0)) await v.delete().catch(() => {});
  for (const c of made.splice(0)) c.destroy();
});

afterAll(async () => {
  look?.destroy();
  await moto?.stop();
});

async function volumeGone(volumeId: string): Promise<void> {
  await expect(look.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }))).rejects.toMatchObject({
    name: 'InvalidVolume.NotFound',
  });
}

describe('the fault helper', () => {
  it('records every command in order with its input and outcome; fails on demand', async () => {
    const { ec2, faults } = setup();
    faults.fail('DescribeRegions', { code: 'InternalError', message: 'boom', status: 500 });
    await expect(ec2.send(new DescribeRegionsCommand({}))).rejects.toMatchObject({
      name: 'InternalError',
      message: 'boom',
      $metadata: { httpStatusCode: 500 },
    });
    const regions = await ec2.send(new DescribeRegionsCommand({ AllRegions: false }));
    expect(regions.Regions?.length).toBeGreaterThan(5);
    expect(faults.calls).toEqual([
      { name: 'DescribeRegions', input: {}, outcome: 'faulted' },
      { name: 'DescribeRegions', input: { AllRegions: false }, outcome: 'sent' },
    ]);
  });
});

describe('slow transitions', () => {
  it('waits out a volume that stays `creating`, reporting the state, with few polls', async () => {
    const { faults, opts } = setup();
    await moto.setKnobs({ volume_creating_ms: 2_500 });
    const volume = await createVolume({ availabilityZone: host.availabilityZone, source }, opts);
    volumes.push(volume);
    const polls = faults.inputsOf('DescribeVolumes').length;
    expect(polls).toBeGreaterThanOrEqual(2);
    expect(polls).toBeLessThanOrEqual(6);
    expect(opts.events.filter((e) => e.type === 'wait').map((e) => (e.type === 'wait' ? e.state : ''))).toEqual([
      'creating',
      'available',
    ]);
  });

  it('waits out an attachment that stays `attaching`, then detaches', async () => {
    const { opts } = setup();
    const volume = await createVolume({ availabilityZone: host.availabilityZone, source }, opts);
    volumes.push(volume);
    await moto.setKnobs({ attaching_ms: 2_000 });
    const attached = await attachVolume(
      { volumeId: volume.volumeId, instanceId: host.instanceId, attachmentName: '/dev/sdh' },
      opts,
    );
    expect(
      opts.events
        .filter((e) => e.type === 'wait' && e.id === volume.volumeId)
        .map((e) => (e.type === 'wait' ? e.state : '')),
    ).toContain('attaching');
    await attached.detach();
    expect((await look.send(new DescribeVolumesCommand({ VolumeIds: [volume.volumeId] }))).Volumes![0]!.State).toBe(
      'available',
    );
  });

  it('reports a slow snapshot’s rising progress, and waits out an image that stays pending', async () => {
    const { faults, opts } = setup();
    const volume = await createVolume({ availabilityZone: host.availabilityZone, source }, opts);
    volumes.push(volume);
    await moto.setKnobs({ snapshot_ms: 3_000, image_pending_ms: 2_000 });
    const image = await snapshotAndRegister({ volumeId: volume.volumeId, name: name('slow'), source }, opts);
    const percents = opts.events
      .filter((e) => e.type === 'snapshot-progress')
      .map((e) => (e.type === 'snapshot-progress' ? e.percent : -1));
    expect(percents.length).toBeGreaterThanOrEqual(2);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(percents.at(-1)).toBe(100);
    expect(faults.inputsOf('DescribeSnapshots').length).toBeLessThanOrEqual(6);
    expect(
      opts.events
        .filter((e) => e.type === 'wait' && e.id === image.imageId)
        .map((e) => (e.type === 'wait' ? e.state : '')),
    ).toEqual(['pending', 'available']);
    await image.deregister();
  });
});

describe('faults', () => {
  it('keeps waiting through throttling that outlived the SDK’s retries', async () => {
    const { faults, opts } = setup();
    faults.throttle('DescribeVolumes', 2);
    const volume = await createVolume({ availabilityZone: host.availabilityZone, source }, opts);
    volumes.push(volume);
    expect(faults.calls.filter((c) => c.name === 'DescribeVolumes').map((c) => c.outcome)).toEqual([
      'faulted',
      'faulted',
      'sent',
    ]);
    expect(opts.warnings.filter((w) => w.includes('throttling'))).toHaveLength(2);
  });

  it('tries the next device when EC2 says the attachment point is in use', async () => {
    const { faults, opts } = setup();
    const volume = await createVolume({ availabilityZone: host.availabilityZone, source }, opts);
    volumes.push(volume);
    faults.fail('AttachVolume', {
      code: 'InvalidParameterValue',
      message: 'Invalid value /dev/sdi for unixDevice. Attachment point /dev/sdi is already in use',
    });
    const exclusions: string[][] = [];
    const attached = await attachVolume(
      {
        volumeId: volume.volumeId,
        instanceId: host.instanceId,
        attachmentName: async (exclude) => {
          exclusions.push([...exclude]);
          return { attachmentName: exclude.includes('/dev/sdi') ? '/dev/sdj' : '/dev/sdi', release: async () => {} };
        },
      },
      opts,
    );
    expect(attached.attachmentName).toBe('/dev/sdj');
    expect(exclusions).toEqual([[], ['/dev/sdi']]);
    expect(
      (await look.send(new DescribeVolumesCommand({ VolumeIds: [volume.volumeId] }))).Volumes![0]!.Attachments![0],
    ).toMatchObject({ Device: '/dev/sdj', State: 'attached' });
    await attached.detach();
  });

  it('times out a volume that never becomes available, naming the wait, and deletes it', async () => {
    const { faults, opts } = setup();
    await moto.setKnobs({ volume_creating_ms: 60_000 });
    const error = await createVolume(
      { availabilityZone: host.availabilityZone, source },
      { ...opts, polling: { waits: { volumeAvailable: { timeoutMs: 2_500 } } } },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WaitTimeoutError);
    expect((error as Error).message).toMatch(/waiting for volume vol-\w+ to be available \(last state: creating\)/);
    const volumeId = (error as WaitTimeoutError).resources.volumeId!;
    expect(faults.names().at(-1)).toBe('DeleteVolume');
    await volumeGone(volumeId);
  });

  it('stops at once on a permission error while polling, and still cleans up', async () => {
    const { faults, opts } = setup();
    faults.fail('DescribeVolumes', {
      code: 'UnauthorizedOperation',
      message: 'You are not authorized to perform this operation.',
      status: 403,
    });
    const error = await createVolume({ availabilityZone: host.availabilityZone, source }, opts).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AwsError);
    expect(error).toMatchObject({ operation: 'DescribeVolumes', awsCode: 'UnauthorizedOperation' });
    // The failed poll, then the delete's detached check (DeleteVolume's VolumeInUse retry confirms it).
    expect(faults.names()).toEqual(['CreateVolume', 'DescribeVolumes', 'DescribeVolumes', 'DeleteVolume']);
    await volumeGone((error as AwsError).resources.volumeId!);
  });

  it('rejects with the caller’s reason when aborted during a slow wait, and deletes the volume', async () => {
    const { faults, opts } = setup();
    await moto.setKnobs({ volume_creating_ms: 60_000 });
    const controller = new AbortController();
    const reason = new Error('operator pressed ctrl-c');
    setTimeout(() => controller.abort(reason), 1_500);
    await expect(
      createVolume({ availabilityZone: host.availabilityZone, source }, { ...opts, signal: controller.signal }),
    ).rejects.toBe(reason);
    const created = faults.calls.find((c) => c.name === 'DescribeVolumes')!.input['VolumeIds'] as string[];
    expect(faults.names().at(-1)).toBe('DeleteVolume');
    await volumeGone(created[0]!);
  });

  it('removes the image and its snapshot when sharing fails after registration', async () => {
    const { faults, opts } = setup();
    const volume = await createVolume({ availabilityZone: host.availabilityZone, source }, opts);
    volumes.push(volume);
    faults.fail('ModifyImageAttribute', {
      code: 'UnauthorizedOperation',
      message: 'You are not authorized to perform this operation.',
      status: 403,
    });
    const error = await snapshotAndRegister(
      { volumeId: volume.volumeId, name: name('unshareable'), source, amiUsers: ['111122223333'] },
      opts,
    ).catch((e: unknown) => e);
    expect(error).toMatchObject({ operation: 'ModifyImageAttribute', cleanupErrors: [] });
    const imageId = faults.calls.find((c) => c.name === 'DescribeImages')!.input['ImageIds'] as string[];
    const snapshotId = faults.inputsOf('DescribeSnapshots')[0]!['SnapshotIds'] as string[];
    expect(faults.names().slice(-2)).toEqual(['DeregisterImage', 'DeleteSnapshot']);
    expect((await look.send(new DescribeImagesCommand({ ImageIds: imageId }))).Images).toEqual([]);
    await expect(look.send(new DescribeSnapshotsCommand({ SnapshotIds: snapshotId }))).rejects.toMatchObject({
      name: 'InvalidSnapshot.NotFound',
    });
  });

  it('undoes the region copies that succeeded when another region fails', async () => {
    const { opts } = setup();
    const volume = await createVolume({ availabilityZone: host.availabilityZone, source }, opts);
    volumes.push(volume);
    const image = await snapshotAndRegister({ volumeId: volume.volumeId, name: name('copied'), source }, opts);
    const perRegion = new Map<string, { ec2: EC2Client; faults: Ec2Faults }>();
    const ec2For = (region: string): EC2Client => {
      if (!perRegion.has(region)) {
        const s = setup(region);
        perRegion.set(region, { ec2: s.ec2, faults: s.faults });
      }
      return perRegion.get(region)!.ec2;
    };
    ec2For('ap-south-1');
    perRegion.get('ap-south-1')!.faults.fail('CopyImage', {
      code: 'ResourceLimitExceeded',
      message: 'You have reached the limit of concurrent AMI copies.',
    });
    const error = await copyToRegions(
      { sourceImageId: image.imageId, sourceRegion: 'us-east-1', regions: ['eu-west-1', 'ap-south-1'], name: 'copied' },
      { ...opts, ec2: ec2For },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegionCopyError);
    const outcomes = (error as RegionCopyError).outcomes;
    expect(outcomes.map((o) => [o.region, o.status])).toEqual([
      ['eu-west-1', 'undone'],
      ['ap-south-1', 'failed'],
    ]);
    const westCopy = outcomes[0]!.imageId!;
    const west = motoEc2(moto.endpoint, 'eu-west-1');
    made.push(west);
    expect((await west.send(new DescribeImagesCommand({ ImageIds: [westCopy] }))).Images).toEqual([]);
    await image.deregister();
  });
});
