import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  DescribeInstancesCommand,
  AttachVolumeCommand,
  CopyImageCommand,
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import {
  deviceCollisions,
  readDeviceBook,
  simulateTransitions,
  type AttachmentRecord,
} from '../../../bench/lib/ec2-sim.js';
import {
  EC2_RANGES_S,
  drawTransitions,
  failureOf,
  scaledPolling,
  scaledPollingWithHoldOff,
  simulatedWaitMs,
} from '../../../bench/lib/moto-build.js';
import { DeviceError } from '../../../src/errors.js';
import { createRng } from '../../../bench/lib/prng.js';
import { pairHolds, parseParallelArgs } from '../../../bench/parallel.js';
import { parseRegionsArgs } from '../../../bench/regions.js';
import { DEFAULT_WAIT_POLICIES, resolveWaitPolicy } from '../../../src/aws/poll-policy.js';
import { resolveConfig } from '../../../src/config/resolve.js';

/**
 * An EC2 endpoint that always gives moto's answer (everything done at once), behind a real
 * EC2Client: the middleware under test sees real requests and deserialized responses.
 */
function instantEc2(state: { attached: boolean }): EC2Client {
  const xml = (action: string): string => {
    const ns = 'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"';
    switch (action) {
      case 'DescribeInstances':
        return `<DescribeInstancesResponse ${ns}><reservationSet><item><instancesSet><item><instanceId>i-1</instanceId><blockDeviceMapping><item><deviceName>/dev/xvda</deviceName><ebs><volumeId>vol-root</volumeId><status>attached</status></ebs></item></blockDeviceMapping></item></instancesSet></item></reservationSet></DescribeInstancesResponse>`;
      case 'CreateVolume':
        return `<CreateVolumeResponse ${ns}><volumeId>vol-1</volumeId><status>available</status></CreateVolumeResponse>`;
      case 'AttachVolume':
        state.attached = true;
        return `<AttachVolumeResponse ${ns}><volumeId>vol-1</volumeId><instanceId>i-1</instanceId><device>/dev/sdf</device><status>attached</status></AttachVolumeResponse>`;
      case 'DetachVolume':
        state.attached = false;
        return `<DetachVolumeResponse ${ns}><volumeId>vol-1</volumeId><status>detached</status></DetachVolumeResponse>`;
      case 'DescribeVolumes': {
        const attachment = state.attached
          ? '<item><volumeId>vol-1</volumeId><instanceId>i-1</instanceId><device>/dev/sdf</device><status>attached</status></item>'
          : '';
        return `<DescribeVolumesResponse ${ns}><volumeSet><item><volumeId>vol-1</volumeId><status>${state.attached ? 'in-use' : 'available'}</status><attachmentSet>${attachment}</attachmentSet></item></volumeSet></DescribeVolumesResponse>`;
      }
      case 'CreateSnapshot':
        return `<CreateSnapshotResponse ${ns}><snapshotId>snap-1</snapshotId><status>completed</status><progress>100%</progress></CreateSnapshotResponse>`;
      case 'DescribeSnapshots':
        return `<DescribeSnapshotsResponse ${ns}><snapshotSet><item><snapshotId>snap-1</snapshotId><status>completed</status><progress>100%</progress></item></snapshotSet></DescribeSnapshotsResponse>`;
      case 'CopyImage':
        return `<CopyImageResponse ${ns}><imageId>ami-2</imageId></CopyImageResponse>`;
      case 'DescribeImages':
        return `<DescribeImagesResponse ${ns}><imagesSet><item><imageId>ami-2</imageId><imageState>available</imageState></item><item><imageId>ami-source</imageId><imageState>available</imageState></item></imagesSet></DescribeImagesResponse>`;
      default:
        throw new Error(`unexpected ${action}`);
    }
  };
  return new EC2Client({
    region: 'us-east-1',
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    maxAttempts: 1,
    requestHandler: {
      handle: async (request: { body?: unknown }) => {
        const body0 = String(request.body);
        const action = /Action=([A-Za-z]+)/.exec(body0)?.[1] ?? '';
        if (action === 'AttachVolume' && !body0.includes('VolumeId=vol-1'))
          throw new Error('this fake endpoint knows vol-1 only');
        const body = new TextEncoder().encode(xml(action));
        return {
          response: {
            statusCode: 200,
            reason: 'OK',
            headers: { 'content-type': 'text/xml' },
            body: new Blob([body]).stream(),
          },
        };
      },
    } as never,
  });
}

describe('simulateTransitions', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('keeps each resource in its transitional state for the drawn time, measured from the call that started it', async () => {
    vi.useFakeTimers({ now: 1_000_000, toFake: ['Date'] });
    const state = { attached: false };
    const ec2 = instantEc2(state);
    const sim = simulateTransitions(ec2, () => ({
      volumeMs: 500,
      attachMs: 200,
      detachMs: 300,
      snapshotMs: 1_000,
      imageMs: 0,
      copyMs: 4_000,
    }));
    const volume = async () => (await ec2.send(new DescribeVolumesCommand({ VolumeIds: ['vol-1'] }))).Volumes?.[0];
    const at = (ms: number) => vi.setSystemTime(1_000_000 + ms);

    expect((await ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: 8 }))).State).toBe(
      'creating',
    );
    at(499);
    expect((await volume())?.State).toBe('creating');
    at(500);
    expect((await volume())?.State).toBe('available');

    at(1_000);
    await ec2.send(new AttachVolumeCommand({ VolumeId: 'vol-1', InstanceId: 'i-1', Device: '/dev/sdf' }));
    at(1_199);
    expect((await volume())?.Attachments?.[0]?.State).toBe('attaching');
    at(1_200);
    expect((await volume())?.Attachments?.[0]?.State).toBe('attached');

    at(2_000);
    await ec2.send(new DetachVolumeCommand({ VolumeId: 'vol-1', InstanceId: 'i-1' }));
    at(2_299);
    // The endpoint dropped the attachment at once; EC2 would still show it detaching.
    expect(await volume()).toMatchObject({
      State: 'in-use',
      Attachments: [{ InstanceId: 'i-1', Device: '/dev/sdf', State: 'detaching' }],
    });
    at(2_300);
    expect(await volume()).toMatchObject({ State: 'available', Attachments: [] });
    expect(sim.attachments).toMatchObject([
      { volumeId: 'vol-1', instanceId: 'i-1', device: '/dev/sdf', fromMs: 1_001_000, toMs: 1_002_300 },
    ]);

    at(3_000);
    expect(await ec2.send(new CreateSnapshotCommand({ VolumeId: 'vol-1' }))).toMatchObject({
      State: 'pending',
      Progress: '0%',
    });
    at(3_500);
    expect((await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: ['snap-1'] }))).Snapshots?.[0]).toMatchObject({
      State: 'pending',
      Progress: '50%',
    });
    at(4_000);
    expect((await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: ['snap-1'] }))).Snapshots?.[0]).toMatchObject({
      State: 'completed',
    });

    at(5_000);
    await ec2.send(new CopyImageCommand({ SourceImageId: 'ami-source', SourceRegion: 'us-east-1', Name: 'x' }));
    at(8_999);
    const images = async () =>
      Object.fromEntries(
        ((await ec2.send(new DescribeImagesCommand({}))).Images ?? []).map((i) => [i.ImageId, i.State]),
      );
    // Only images made through this client are held back; the source stays as the endpoint says.
    expect(await images()).toEqual({ 'ami-2': 'pending', 'ami-source': 'available' });
    at(9_000);
    expect(await images()).toEqual({ 'ami-2': 'available', 'ami-source': 'available' });
    expect(sim.images).toEqual([{ imageId: 'ami-2', kind: 'copy', fromMs: 1_005_000, readyMs: 1_009_000 }]);
    expect(sim.describeCalls()).toBe(10);
    sim.remove();
    ec2.destroy();
  });
});

describe('the shared book of attachment names', () => {
  let dir = '';
  afterEach(async () => {
    vi.useRealTimers();
    if (dir.startsWith(tmpdir())) await rm(dir, { recursive: true, force: true });
  });

  it('refuses a name in use on the instance like EC2, from any client sharing the book, until its detach completes', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ami-chroot-bench-book-'));
    vi.useFakeTimers({ now: 5_000_000, toFake: ['Date'] });
    const times = () => ({ volumeMs: 0, attachMs: 0, detachMs: 300, snapshotMs: 0, imageMs: 0, copyMs: 0 });
    const a = instantEc2({ attached: false });
    const b = instantEc2({ attached: false });
    const simA = simulateTransitions(a, times, { deviceRegistry: dir });
    const simB = simulateTransitions(b, times, { deviceRegistry: dir });
    const attach = (ec2: EC2Client) =>
      ec2.send(new AttachVolumeCommand({ VolumeId: 'vol-1', InstanceId: 'i-1', Device: '/dev/sdf' }));
    const names = async (ec2: EC2Client) =>
      (
        (await ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-1'] }))).Reservations?.[0]?.Instances?.[0]
          ?.BlockDeviceMappings ?? []
      ).map((m) => m.DeviceName);

    await attach(a);
    await expect(attach(b)).rejects.toMatchObject({
      name: 'InvalidParameterValue',
      message: expect.stringContaining('Attachment point /dev/sdf is already in use'),
    });
    expect(await names(b)).toEqual(['/dev/xvda', '/dev/sdf']);

    vi.setSystemTime(5_000_100);
    await a.send(new DetachVolumeCommand({ VolumeId: 'vol-1', InstanceId: 'i-1' }));
    vi.setSystemTime(5_000_399);
    // Detaching: still in use.
    await expect(attach(b)).rejects.toMatchObject({ name: 'InvalidParameterValue' });
    expect(await names(b)).toEqual(['/dev/xvda', '/dev/sdf']);
    vi.setSystemTime(5_000_400);
    expect(await names(b)).toEqual(['/dev/xvda']);
    await attach(b);

    expect(simA.refused).toEqual([]);
    expect(simB.refused.map((r) => r.heldBy)).toEqual(['vol-1', 'vol-1']);
    // Both accepted attachments are in the book, one after the other: no collision.
    const book = await readDeviceBook(dir);
    expect(book.map((r) => [r.fromMs, r.toMs]).sort()).toEqual([
      [5_000_000, 5_000_400],
      [5_000_400, undefined],
    ]);
    expect(deviceCollisions(book)).toEqual([]);
    expect((await readdir(dir)).length).toBe(2);
    a.destroy();
    b.destroy();
  });
});

describe('deviceCollisions', () => {
  const record = (
    device: string,
    fromMs: number,
    toMs: number | undefined,
    instanceId = 'i-1',
    volumeId = `vol-${fromMs}`,
  ): AttachmentRecord => ({ device, fromMs, toMs, instanceId, volumeId });

  it('finds two attachments holding the same name on the same instance at overlapping times', () => {
    expect(deviceCollisions([record('/dev/sdf', 0, 100), record('/dev/sdf', 50, 150)])).toHaveLength(1);
    // Still attached (no end) overlaps anything later.
    expect(deviceCollisions([record('/dev/sdf', 0, undefined), record('/dev/sdf', 500, 600)])).toHaveLength(1);
  });

  it('allows reuse after detaching, other names, and other instances', () => {
    expect(
      deviceCollisions([
        record('/dev/sdf', 0, 100),
        record('/dev/sdf', 100, 200),
        record('/dev/sdg', 50, 150),
        record('/dev/sdf', 50, 150, 'i-2'),
      ]),
    ).toEqual([]);
  });
});

describe('pairHolds', () => {
  it('times a reservation file from creation to removal, ignoring its content being written', () => {
    const { holds, open, unclear } = pairHolds([
      { t: 10, name: 'sdf.reservation', exists: true },
      { t: 11, name: 'sdf.reservation', exists: true },
      { t: 40, name: 'sdf.reservation', exists: false },
      { t: 50, name: 'sdf.reservation', exists: true },
    ]);
    expect(holds).toEqual([{ name: 'sdf.reservation', fromMs: 10, toMs: 40 }]);
    expect(open).toEqual(['sdf.reservation']);
    expect(unclear).toBe(0);
  });

  it('times the lock directory although a refresh of its mtime is reported like a creation', () => {
    const { holds } = pairHolds([
      { t: 1, name: 'allocate.lock', exists: true },
      { t: 1.2, name: 'allocate.lock', exists: true },
      { t: 6, name: 'allocate.lock', exists: false },
    ]);
    expect(holds).toEqual([{ name: 'allocate.lock', fromMs: 1, toMs: 6 }]);
  });

  it('counts an entry gone before the watcher could look as unclear instead of inventing a time', () => {
    expect(pairHolds([{ t: 1, name: 'allocate.lock', exists: false }])).toEqual({ holds: [], open: [], unclear: 1 });
  });
});

describe('scaled builds', () => {
  it('draws each transition inside its range divided by the scale', () => {
    const rng = createRng(3, 'draws');
    for (let i = 0; i < 200; i++) {
      const t = drawTransitions(rng, 25);
      for (const [key, [min, max]] of Object.entries(EC2_RANGES_S) as [keyof typeof t, readonly [number, number]][]) {
        expect(t[key]).toBeGreaterThanOrEqual(Math.round((min * 1000) / 25));
        expect(t[key]).toBeLessThanOrEqual(Math.round((max * 1000) / 25));
      }
      expect(simulatedWaitMs(t)).toBe(t.volumeMs + t.attachMs + t.detachMs + t.snapshotMs + t.imageMs);
    }
  });

  it('divides every default wait policy by the scale, in a form the build configuration accepts', () => {
    const polling = scaledPolling(25);
    const snapshot = resolveWaitPolicy('snapshotCompleted', polling, {});
    expect(snapshot).toEqual({
      timeoutMs: DEFAULT_WAIT_POLICIES.snapshotCompleted.timeoutMs / 25,
      minDelayMs: DEFAULT_WAIT_POLICIES.snapshotCompleted.minDelayMs / 25,
      maxDelayMs: DEFAULT_WAIT_POLICIES.snapshotCompleted.maxDelayMs / 25,
      firstDelayMs: 0,
    });
    // The build's own validation takes it (the copies' hold-off is left out of this form).
    expect(() =>
      resolveConfig(
        { region: 'us-east-1', sourceAmi: 'ami-0123456789abcdef0', amiName: 'x {{timestamp}}', polling },
        {},
      ),
    ).not.toThrow();
    expect(resolveWaitPolicy('copyAvailable', scaledPollingWithHoldOff(100), {}, undefined).firstDelayMs).toBe(
      Math.round(DEFAULT_WAIT_POLICIES.copyAvailable.firstDelayMs / 100),
    );
  });

  it('reports a failed build with its error class, message and phase', () => {
    expect(failureOf('b-1', new DeviceError('No free attachment name', { phase: 'attach' }))).toEqual({
      label: 'b-1',
      error: 'DeviceError: No free attachment name',
      phase: 'attach',
    });
    expect(failureOf('b-2', 'plain')).toEqual({ label: 'b-2', error: 'Error: plain' });
  });

  it('parses the parallel and regions options and rejects unknown ones', () => {
    expect(
      parseParallelArgs(['--builds', '4', '--processes', '2', '--scale', '10', '--seed', '7', '--dev-nodes']),
    ).toEqual({ builds: 4, processes: 2, scale: 10, seed: 7, devNodes: true });
    expect(parseRegionsArgs(['--regions', '3', '--rounds', '1'])).toEqual({ regions: 3, rounds: 1 });
    expect(() => parseParallelArgs(['--bogus'])).toThrow();
  });
});
