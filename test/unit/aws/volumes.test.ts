import {
  AttachVolumeCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
} from '@aws-sdk/client-ec2';
import type { Volume } from '@aws-sdk/client-ec2';
import { describe, expect, it, vi } from 'vitest';
import { AwsError, ConfigError, DeviceError, WaitFailedError, WaitTimeoutError } from '../../../src/errors.js';
import {
  DETACH_CONFIRM_MS,
  attachVolume,
  createVolume,
  createVolumeRequest,
  toAttachName,
} from '../../../src/aws/volumes.js';
import type { DeviceAllocator, RootVolumeSource } from '../../../src/aws/volumes.js';

type DeviceLease = Awaited<ReturnType<DeviceAllocator>>;
import { ec2Error, mockedEc2, options, virtualClock } from './fixtures.js';

const source: RootVolumeSource = {
  rootSnapshotId: 'snap-root',
  rootVolumeSize: 8,
  rootVolumeType: 'gp3',
  rootIops: 4000,
  rootThroughput: 250,
  rootEncrypted: false,
};

const vol = (state: Volume['State'], attachments: Volume['Attachments'] = []): { Volumes: Volume[] } => ({
  Volumes: [{ VolumeId: 'vol-1', State: state, Attachments: attachments }],
});

describe('createVolumeRequest', () => {
  it('copies the source root volume: snapshot, size, type, iops, throughput', () => {
    expect(createVolumeRequest({ availabilityZone: 'us-east-1a', source })).toEqual({
      AvailabilityZone: 'us-east-1a',
      SnapshotId: 'snap-root',
      Size: 8,
      VolumeType: 'gp3',
      Iops: 4000,
      Throughput: 250,
    });
  });

  it('asks EC2 to initialize the volume from its snapshot at the given rate; refuses one without a snapshot', () => {
    expect(createVolumeRequest({ availabilityZone: 'a', source, initializationRate: 300 })).toMatchObject({
      SnapshotId: 'snap-root',
      VolumeInitializationRate: 300,
    });
    expect(createVolumeRequest({ availabilityZone: 'a', source })).not.toHaveProperty('VolumeInitializationRate');
    expect(() => createVolumeRequest({ availabilityZone: 'a', size: 8, initializationRate: 200 })).toThrow(
      /initializationRate.*no snapshot/s,
    );
  });

  it('only ever grows the size', () => {
    expect(createVolumeRequest({ availabilityZone: 'a', source, size: 20 }).Size).toBe(20);
    expect(createVolumeRequest({ availabilityZone: 'a', source, size: 4 }).Size).toBe(8);
  });

  it('drops the source IOPS and throughput when the type changes, and takes explicit ones', () => {
    expect(createVolumeRequest({ availabilityZone: 'a', source, volumeType: 'gp2' })).toEqual({
      AvailabilityZone: 'a',
      SnapshotId: 'snap-root',
      Size: 8,
      VolumeType: 'gp2',
    });
    expect(createVolumeRequest({ availabilityZone: 'a', source, volumeType: 'io2', iops: 10_000 })).toMatchObject({
      VolumeType: 'io2',
      Iops: 10_000,
    });
    expect(createVolumeRequest({ availabilityZone: 'a', source, iops: 6000, throughput: 500 })).toMatchObject({
      Iops: 6000,
      Throughput: 500,
    });
  });

  it('encrypts with the given KMS key, or keeps the source snapshot’s encryption and key', () => {
    expect(createVolumeRequest({ availabilityZone: 'a', source, kmsKeyId: 'alias/build' })).toMatchObject({
      Encrypted: true,
      KmsKeyId: 'alias/build',
    });
    expect(createVolumeRequest({ availabilityZone: 'a', source, encrypted: true })).toMatchObject({ Encrypted: true });
    expect(
      createVolumeRequest({
        availabilityZone: 'a',
        source: { ...source, rootEncrypted: true, rootKmsKeyId: 'key-src' },
      }),
    ).toMatchObject({ Encrypted: true, KmsKeyId: 'key-src' });
  });

  it('tags on create with the rendered tags plus the build id', () => {
    expect(
      createVolumeRequest({ availabilityZone: 'a', source, tags: { Name: 'work' }, buildId: 'b-1' }).TagSpecifications,
    ).toEqual([
      {
        ResourceType: 'volume',
        Tags: [
          { Key: 'Name', Value: 'work' },
          { Key: 'ami-chroot:build-id', Value: 'b-1' },
          { Key: 'ami-chroot:created-by', Value: 'ami-chroot' },
        ],
      },
    ]);
  });

  it('makes a blank gp2 volume of the given size without a source (fromScratch)', () => {
    expect(createVolumeRequest({ availabilityZone: 'a', size: 10 })).toEqual({
      AvailabilityZone: 'a',
      Size: 10,
      VolumeType: 'gp2',
    });
  });

  it('rejects impossible combinations with a ConfigError naming each problem', () => {
    expect(() => createVolumeRequest({ availabilityZone: 'a' })).toThrow(ConfigError);
    expect(() => createVolumeRequest({ availabilityZone: 'a', source, volumeType: 'io1' })).toThrow(/iops/);
    expect(() =>
      createVolumeRequest({ availabilityZone: 'a', source: { ...source, rootEncrypted: true }, encrypted: false }),
    ).toThrow(/encrypted/);
  });
});

describe('createVolume', () => {
  it('creates, waits until available, and returns a handle (exact calls)', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(CreateVolumeCommand).resolves({ VolumeId: 'vol-1', State: 'creating' });
    ec2.mock.on(DescribeVolumesCommand).resolvesOnce(vol('creating')).resolves(vol('available'));
    const opts = options(ec2);
    const volume = await createVolume({ availabilityZone: 'us-east-1a', source, buildId: 'b-1' }, opts);
    expect(volume).toMatchObject({ volumeId: 'vol-1', region: 'us-east-1', availabilityZone: 'us-east-1a' });
    expect(ec2.log()).toEqual([
      ['CreateVolume', createVolumeRequest({ availabilityZone: 'us-east-1a', source, buildId: 'b-1' })],
      ['DescribeVolumes', { VolumeIds: ['vol-1'] }],
      ['DescribeVolumes', { VolumeIds: ['vol-1'] }],
    ]);
    expect(opts.events).toContainEqual({
      type: 'resource',
      action: 'created',
      kind: 'volume',
      id: 'vol-1',
      region: 'us-east-1',
    });
  });

  it('sends no request at all when the input is invalid', async () => {
    const ec2 = mockedEc2();
    await expect(
      createVolume({ availabilityZone: 'a', source, volumeType: 'io1' }, options(ec2)),
    ).rejects.toBeInstanceOf(ConfigError);
    expect(ec2.names()).toEqual([]);
  });

  it('deletes the volume when it goes to error, and reports WaitFailedError', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(CreateVolumeCommand).resolves({ VolumeId: 'vol-1' });
    ec2.mock.on(DescribeVolumesCommand).resolves(vol('error'));
    ec2.mock.on(DeleteVolumeCommand).resolves({});
    const error = await createVolume({ availabilityZone: 'a', source }, options(ec2)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WaitFailedError);
    expect((error as WaitFailedError).resources).toMatchObject({ volumeId: 'vol-1' });
    // The wait's reading, then the detached check (DeleteVolume's VolumeInUse retry confirms it).
    expect(ec2.names()).toEqual(['CreateVolume', 'DescribeVolumes', 'DescribeVolumes', 'DeleteVolume']);
  });

  it('treats InvalidVolume.NotFound right after CreateVolume as eventual consistency', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(CreateVolumeCommand).resolves({ VolumeId: 'vol-1' });
    ec2.mock.on(DescribeVolumesCommand).rejectsOnce(ec2Error('InvalidVolume.NotFound')).resolves(vol('available'));
    await createVolume({ availabilityZone: 'a', source }, options(ec2));
    expect(ec2.names()).toEqual(['CreateVolume', 'DescribeVolumes', 'DescribeVolumes']);
  });

  it('keeps polling through throttling', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(CreateVolumeCommand).resolves({ VolumeId: 'vol-1' });
    ec2.mock
      .on(DescribeVolumesCommand)
      .rejectsOnce(ec2Error('RequestLimitExceeded'))
      .rejectsOnce(ec2Error('RequestLimitExceeded', 'slow down', 503))
      .resolves(vol('available'));
    const opts = options(ec2);
    await createVolume({ availabilityZone: 'a', source }, opts);
    expect(ec2.names()).toEqual(['CreateVolume', 'DescribeVolumes', 'DescribeVolumes', 'DescribeVolumes']);
    expect(opts.warnings.filter((w) => w.includes('throttling'))).toHaveLength(2);
  });

  it('rejects with the caller’s reason when aborted during the wait, and still deletes the volume', async () => {
    const ec2 = mockedEc2();
    const controller = new AbortController();
    const reason = new Error('abort!');
    ec2.mock.on(CreateVolumeCommand).resolves({ VolumeId: 'vol-1' });
    ec2.mock.on(DescribeVolumesCommand).callsFake(() => {
      // The first poll sees `creating`; the user aborts before the second.
      controller.abort(reason);
      return vol('creating');
    });
    ec2.mock.on(DeleteVolumeCommand).resolves({});
    await expect(
      createVolume({ availabilityZone: 'a', source }, options(ec2, { signal: controller.signal })),
    ).rejects.toBe(reason);
    expect(ec2.names()).toEqual(['CreateVolume', 'DescribeVolumes', 'DescribeVolumes', 'DeleteVolume']);
  });

  it('leaves the volume in place with keepOnError', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(CreateVolumeCommand).resolves({ VolumeId: 'vol-1' });
    ec2.mock.on(DescribeVolumesCommand).resolves(vol('error'));
    const opts = options(ec2, { keepOnError: true });
    await expect(createVolume({ availabilityZone: 'a', source }, opts)).rejects.toBeInstanceOf(WaitFailedError);
    expect(ec2.names()).toEqual(['CreateVolume', 'DescribeVolumes']);
    expect(opts.events).toContainEqual({ type: 'cleanup', step: 'delete volume vol-1', status: 'skipped' });
  });

  it('times out with the wait named in the error', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(CreateVolumeCommand).resolves({ VolumeId: 'vol-1' });
    ec2.mock.on(DescribeVolumesCommand).resolves(vol('creating'));
    ec2.mock.on(DeleteVolumeCommand).resolves({});
    const error = await createVolume(
      { availabilityZone: 'a', source },
      options(ec2, { polling: { waits: { volumeAvailable: { timeoutMs: 20_000 } } } }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WaitTimeoutError);
    expect((error as Error).message).toContain('volume vol-1 to be available');
    expect((error as Error).message).toContain('last state: creating');
    expect(ec2.names().at(-1)).toBe('DeleteVolume');
  });

  it('wraps an AWS failure of CreateVolume into an AwsError with an actionable message', async () => {
    const ec2 = mockedEc2();
    ec2.mock
      .on(CreateVolumeCommand)
      .rejects(ec2Error('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403));
    const error = await createVolume({ availabilityZone: 'a', source }, options(ec2)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsError);
    expect(error).toMatchObject({
      operation: 'CreateVolume',
      awsCode: 'UnauthorizedOperation',
      requestId: 'req-test-1',
      phase: 'volume',
    });
    expect((error as Error).message).toContain('Allow ec2:CreateVolume');
  });

  describe('delete()', () => {
    async function created() {
      const ec2 = mockedEc2();
      ec2.mock.on(CreateVolumeCommand).resolves({ VolumeId: 'vol-1' });
      ec2.mock.on(DescribeVolumesCommand).resolves(vol('available'));
      const opts = options(ec2);
      const volume = await createVolume({ availabilityZone: 'a', source }, opts);
      ec2.mock.resetHistory();
      return { ec2, volume, opts };
    }

    it('checks it is detached, deletes it, and is idempotent', async () => {
      const { ec2, volume, opts } = await created();
      ec2.mock.on(DeleteVolumeCommand).resolves({});
      await volume.delete();
      await volume.delete();
      await volume[Symbol.asyncDispose]();
      // One reading sees it detached: a stale one would make DeleteVolume answer VolumeInUse, retried.
      expect(ec2.log()).toEqual([
        ['DescribeVolumes', { VolumeIds: ['vol-1'] }],
        ['DeleteVolume', { VolumeId: 'vol-1' }],
      ]);
      expect(opts.events).toContainEqual({
        type: 'resource',
        action: 'removed',
        kind: 'volume',
        id: 'vol-1',
        region: 'us-east-1',
      });
    });

    it('waits while the volume is detaching', async () => {
      const { ec2, volume } = await created();
      ec2.mock
        .on(DescribeVolumesCommand)
        .resolvesOnce(vol('in-use', [{ InstanceId: 'i-1', State: 'detaching' }]))
        .resolves(vol('available'));
      ec2.mock.on(DeleteVolumeCommand).resolves({});
      await volume.delete();
      expect(ec2.names()).toEqual(['DescribeVolumes', 'DescribeVolumes', 'DeleteVolume']);
    });

    it('fails fast, without DeleteVolume, when the volume is still attached (seen twice)', async () => {
      const { ec2, volume } = await created();
      ec2.mock
        .on(DescribeVolumesCommand)
        .resolves(vol('in-use', [{ InstanceId: 'i-1', State: 'attached', Device: '/dev/sdf' }]));
      await expect(volume.delete()).rejects.toThrow(/still attached to i-1 as \/dev\/sdf/);
      expect(ec2.names()).toEqual(['DescribeVolumes', 'DescribeVolumes']);
    });

    it('does not fail on one stale reading that shows it still attached', async () => {
      const { ec2, volume } = await created();
      ec2.mock
        .on(DescribeVolumesCommand)
        .resolvesOnce(vol('in-use', [{ InstanceId: 'i-1', State: 'attached', Device: '/dev/sdf' }]))
        .resolves(vol('available'));
      ec2.mock.on(DeleteVolumeCommand).resolves({});
      await volume.delete();
      // The later reading (taken a poll delay after the stale one) is believed.
      expect(ec2.names()).toEqual(['DescribeVolumes', 'DescribeVolumes', 'DeleteVolume']);
    });

    it('tolerates a volume that is already gone', async () => {
      const { ec2, volume } = await created();
      ec2.mock.on(DescribeVolumesCommand).rejects(ec2Error('InvalidVolume.NotFound'));
      ec2.mock.on(DeleteVolumeCommand).rejects(ec2Error('InvalidVolume.NotFound'));
      await expect(volume.delete()).resolves.toBeUndefined();
      expect(ec2.names()).toEqual(['DescribeVolumes', 'DeleteVolume']);
    });

    it('rejects with the given signal’s reason when aborted while waiting for a detach to finish', async () => {
      const { ec2, volume } = await created();
      const controller = new AbortController();
      const reason = new Error('cleanup budget exhausted');
      ec2.mock.on(DescribeVolumesCommand).callsFake(() => {
        controller.abort(reason);
        return vol('in-use', [{ InstanceId: 'i-1', State: 'detaching' }]);
      });
      await expect(volume.delete({ signal: controller.signal })).rejects.toBe(reason);
      expect(ec2.names()).toEqual(['DescribeVolumes']);
    });

    it('can be retried after a failure', async () => {
      const { ec2, volume } = await created();
      ec2.mock
        .on(DeleteVolumeCommand)
        .rejectsOnce(ec2Error('UnauthorizedOperation', 'no', 403))
        .resolves({});
      await expect(volume.delete()).rejects.toBeInstanceOf(AwsError);
      await volume.delete();
      expect(ec2.names()).toEqual(['DescribeVolumes', 'DeleteVolume', 'DescribeVolumes', 'DeleteVolume']);
    });
  });
});

describe('toAttachName', () => {
  it('sends the /dev/sd spelling EC2 expects', () => {
    expect(toAttachName('/dev/xvdf')).toBe('/dev/sdf');
    expect(toAttachName('/dev/sdg')).toBe('/dev/sdg');
  });
});

describe('attachVolume', () => {
  function lease(device: string, released: string[]): DeviceLease {
    return { attachmentName: device, release: async () => void released.push(device) };
  }

  it('attaches, waits for `attached`, releases the lease, resolves the host device (exact calls)', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(AttachVolumeCommand).resolves({ State: 'attaching' });
    ec2.mock
      .on(DescribeVolumesCommand)
      .resolvesOnce(vol('available'))
      .resolvesOnce(vol('in-use', [{ InstanceId: 'i-1', State: 'attaching' }]))
      .resolves(vol('in-use', [{ InstanceId: 'i-1', State: 'attached' }]));
    const released: string[] = [];
    const allocator = vi.fn(async () => lease('/dev/xvdf', released));
    const resolveDevice = vi.fn(async () => '/dev/nvme1n1');
    const attached = await attachVolume(
      { volumeId: 'vol-1', instanceId: 'i-1', attachmentName: allocator, resolveDevice },
      options(ec2),
    );
    expect(attached).toMatchObject({
      volumeId: 'vol-1',
      instanceId: 'i-1',
      attachmentName: '/dev/sdf',
      hostDevice: '/dev/nvme1n1',
    });
    expect(ec2.log()).toEqual([
      ['AttachVolume', { VolumeId: 'vol-1', InstanceId: 'i-1', Device: '/dev/sdf' }],
      ['DescribeVolumes', { VolumeIds: ['vol-1'] }],
      ['DescribeVolumes', { VolumeIds: ['vol-1'] }],
      ['DescribeVolumes', { VolumeIds: ['vol-1'] }],
    ]);
    expect(allocator).toHaveBeenCalledWith([]);
    expect(released).toEqual(['/dev/xvdf']);
    expect(resolveDevice).toHaveBeenCalledWith({ volumeId: 'vol-1', attachmentName: '/dev/sdf', signal: undefined });
  });

  it('uses the attachment name as the host device by default', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(AttachVolumeCommand).resolves({});
    ec2.mock.on(DescribeVolumesCommand).resolves(vol('in-use', [{ InstanceId: 'i-1', State: 'attached' }]));
    const attached = await attachVolume(
      { volumeId: 'vol-1', instanceId: 'i-1', attachmentName: '/dev/sdg' },
      options(ec2),
    );
    expect(attached.hostDevice).toBe('/dev/sdg');
  });

  it('moves to the next name when EC2 says the attachment point is in use', async () => {
    const ec2 = mockedEc2();
    ec2.mock
      .on(AttachVolumeCommand)
      .rejectsOnce(
        ec2Error(
          'InvalidParameterValue',
          "Invalid value '/dev/sdf' for unixDevice. Attachment point /dev/sdf is already in use",
        ),
      )
      .resolves({});
    ec2.mock.on(DescribeVolumesCommand).resolves(vol('in-use', [{ InstanceId: 'i-1', State: 'attached' }]));
    const released: string[] = [];
    const names = ['/dev/sdf', '/dev/sdg'];
    const allocator = vi.fn(async (exclude: readonly string[]) =>
      lease(
        names.find((n) => !exclude.includes(n))!,
        released,
      ),
    );
    const opts = options(ec2);
    const attached = await attachVolume({ volumeId: 'vol-1', instanceId: 'i-1', attachmentName: allocator }, opts);
    expect(attached.attachmentName).toBe('/dev/sdg');
    expect(allocator.mock.calls).toEqual([[[]], [['/dev/sdf']]]);
    expect(released).toEqual(['/dev/sdf', '/dev/sdg']);
    expect(
      ec2
        .log()
        .filter(([n]) => n === 'AttachVolume')
        .map(([, i]) => i['Device']),
    ).toEqual(['/dev/sdf', '/dev/sdg']);
    expect(opts.warnings[0]).toContain('already in use');
  });

  it('gives up with a DeviceError after maxDeviceAttempts names in use', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(AttachVolumeCommand).rejects(ec2Error('InvalidParameterValue', 'Attachment point is already in use'));
    const released: string[] = [];
    let n = 0;
    const error = await attachVolume(
      {
        volumeId: 'vol-1',
        instanceId: 'i-1',
        attachmentName: async () => lease(`/dev/sd${'fgh'[n++]}`, released),
        maxDeviceAttempts: 3,
      },
      options(ec2),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeviceError);
    expect((error as Error).message).toContain('/dev/sdf, /dev/sdg, /dev/sdh');
    expect(released).toEqual(['/dev/sdf', '/dev/sdg', '/dev/sdh']);
    expect(ec2.names()).toEqual(['AttachVolume', 'AttachVolume', 'AttachVolume']);
  });

  it('does not retry a fixed device name that is in use', async () => {
    const ec2 = mockedEc2();
    ec2.mock
      .on(AttachVolumeCommand)
      .rejects(ec2Error('InvalidParameterValue', 'Attachment point /dev/sdf is already in use'));
    await expect(
      attachVolume({ volumeId: 'vol-1', instanceId: 'i-1', attachmentName: '/dev/sdf' }, options(ec2)),
    ).rejects.toThrow(/already in use: pick another device/);
    expect(ec2.names()).toEqual(['AttachVolume']);
  });

  it('fails on other AttachVolume errors without retrying, releasing the lease', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(AttachVolumeCommand).rejects(ec2Error('IncorrectState', "vol-1 is in 'creating' state."));
    const released: string[] = [];
    await expect(
      attachVolume(
        { volumeId: 'vol-1', instanceId: 'i-1', attachmentName: async () => lease('/dev/sdf', released) },
        options(ec2),
      ),
    ).rejects.toMatchObject({
      awsCode: 'IncorrectState',
    });
    expect(released).toEqual(['/dev/sdf']);
  });

  it('detaches when the attachment never completes (timeout), releasing the lease', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(AttachVolumeCommand).resolves({});
    ec2.mock
      .on(DescribeVolumesCommand)
      .callsFake(() =>
        ec2.names().includes('DetachVolume')
          ? vol('available')
          : vol('in-use', [{ InstanceId: 'i-1', State: 'attaching' }]),
      );
    ec2.mock.on(DetachVolumeCommand).resolves({});
    const released: string[] = [];
    const error = await attachVolume(
      { volumeId: 'vol-1', instanceId: 'i-1', attachmentName: async () => lease('/dev/sdf', released) },
      options(ec2, { polling: { waits: { volumeAttached: { timeoutMs: 10_000 } } } }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WaitTimeoutError);
    expect((error as WaitTimeoutError).lastState).toBe('attaching');
    const names = ec2.names();
    expect(names[0]).toBe('AttachVolume');
    // The attachment was seen 10 s before the detach: one reading without it is believed.
    expect(names.slice(-3)).toEqual(['DescribeVolumes', 'DetachVolume', 'DescribeVolumes']);
    expect(ec2.log().find(([n]) => n === 'DetachVolume')![1]).toEqual({
      VolumeId: 'vol-1',
      InstanceId: 'i-1',
      Device: '/dev/sdf',
    });
    expect(released).toEqual(['/dev/sdf']);
  });

  it('detaches when the host device cannot be resolved, and rethrows the resolver’s error', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(AttachVolumeCommand).resolves({});
    ec2.mock
      .on(DescribeVolumesCommand)
      .callsFake(() =>
        ec2.names().includes('DetachVolume')
          ? vol('available')
          : vol('in-use', [{ InstanceId: 'i-1', State: 'attached' }]),
      );
    ec2.mock.on(DetachVolumeCommand).resolves({});
    const failure = new DeviceError('no block device for vol-1');
    await expect(
      attachVolume(
        {
          volumeId: 'vol-1',
          instanceId: 'i-1',
          attachmentName: '/dev/sdf',
          resolveDevice: async () => Promise.reject(failure),
        },
        options(ec2),
      ),
    ).rejects.toBe(failure);
    expect(ec2.names()).toEqual([
      'AttachVolume',
      'DescribeVolumes',
      'DetachVolume',
      'DescribeVolumes',
      'DescribeVolumes',
    ]);
  });

  it('rejects with the caller’s reason when aborted during the wait, and detaches', async () => {
    const ec2 = mockedEc2();
    const controller = new AbortController();
    const reason = new Error('stop');
    ec2.mock.on(AttachVolumeCommand).resolves({});
    ec2.mock.on(DescribeVolumesCommand).callsFake(() => {
      if (ec2.names().includes('DetachVolume')) return vol('available');
      controller.abort(reason);
      return vol('in-use', [{ InstanceId: 'i-1', State: 'attaching' }]);
    });
    ec2.mock.on(DetachVolumeCommand).resolves({});
    await expect(
      attachVolume(
        { volumeId: 'vol-1', instanceId: 'i-1', attachmentName: '/dev/sdf' },
        options(ec2, { signal: controller.signal }),
      ),
    ).rejects.toBe(reason);
    expect(ec2.names()).toEqual([
      'AttachVolume',
      'DescribeVolumes',
      'DetachVolume',
      'DescribeVolumes',
      'DescribeVolumes',
    ]);
  });

  describe('detach()', () => {
    async function attached() {
      const ec2 = mockedEc2();
      ec2.mock.on(AttachVolumeCommand).resolves({});
      ec2.mock.on(DescribeVolumesCommand).resolves(vol('in-use', [{ InstanceId: 'i-1', State: 'attached' }]));
      const opts = options(ec2, { clock: virtualClock() });
      const handle = await attachVolume({ volumeId: 'vol-1', instanceId: 'i-1', attachmentName: '/dev/sdf' }, opts);
      ec2.mock.resetHistory();
      return { ec2, handle, opts };
    }

    it('detaches with the instance id, waits until detached, and is idempotent', async () => {
      const { ec2, handle, opts } = await attached();
      ec2.mock.on(DetachVolumeCommand).resolves({});
      ec2.mock
        .on(DescribeVolumesCommand)
        .resolvesOnce(vol('in-use', [{ InstanceId: 'i-1', State: 'detaching' }]))
        .resolves(vol('available'));
      await handle.detach();
      await handle[Symbol.asyncDispose]();
      expect(ec2.log()).toEqual([
        ['DetachVolume', { VolumeId: 'vol-1', InstanceId: 'i-1', Device: '/dev/sdf' }],
        ['DescribeVolumes', { VolumeIds: ['vol-1'] }],
        ['DescribeVolumes', { VolumeIds: ['vol-1'] }],
      ]);
      expect(opts.events).toContainEqual({
        type: 'resource',
        action: 'removed',
        kind: 'attachment',
        id: 'vol-1:/dev/sdf',
        region: 'us-east-1',
      });
    });

    it.each(['IncorrectState', 'InvalidAttachment.NotFound', 'InvalidVolume.NotFound'])(
      'tolerates %s from DetachVolume',
      async (code) => {
        const { ec2, handle } = await attached();
        ec2.mock.on(DetachVolumeCommand).rejects(ec2Error(code));
        ec2.mock.on(DescribeVolumesCommand).resolves(vol('available'));
        await handle.detach();
        expect(ec2.names()).toEqual(['DetachVolume', 'DescribeVolumes', 'DescribeVolumes']);
      },
    );

    it('believes one reading without the attachment when the attachment was seen long enough before', async () => {
      const { ec2, handle, opts } = await attached();
      // A build mounts and provisions between the attach and the detach.
      await opts.clock!.sleep(60_000);
      ec2.mock.on(DetachVolumeCommand).resolves({});
      ec2.mock.on(DescribeVolumesCommand).resolves(vol('available'));
      await handle.detach();
      expect(ec2.names()).toEqual(['DetachVolume', 'DescribeVolumes']);
    });

    it('right after the attach, confirms with a reading at the end of the window from its first sighting', async () => {
      const { ec2, handle, opts } = await attached();
      const clock = opts.clock as ReturnType<typeof virtualClock>;
      expect(clock.sleeps).toEqual([]); // the first reading showed it attached: no time has passed since
      ec2.mock.on(DetachVolumeCommand).resolves({});
      ec2.mock.on(DescribeVolumesCommand).resolves(vol('available'));
      await handle.detach();
      // The first reading may be stale (from before the attachment): the next one is taken when the
      // window since the first sighting ends, not a whole poll delay later.
      expect(ec2.names()).toEqual(['DetachVolume', 'DescribeVolumes', 'DescribeVolumes']);
      expect(clock.sleeps).toEqual([DETACH_CONFIRM_MS]);
    });

    it('does not believe one reading without the attachment: a later one must confirm it', async () => {
      const { ec2, handle } = await attached();
      ec2.mock.on(DetachVolumeCommand).resolves({});
      ec2.mock
        .on(DescribeVolumesCommand)
        // A stale reading (from before the attachment), then the truth: still detaching.
        .resolvesOnce(vol('available'))
        .resolvesOnce(vol('in-use', [{ InstanceId: 'i-1', State: 'detaching' }]))
        .resolves(vol('available'));
      await handle.detach();
      expect(ec2.names()).toEqual(['DetachVolume', 'DescribeVolumes', 'DescribeVolumes', 'DescribeVolumes']);
    });

    it('re-detaches an attachment EC2 refused to detach because it did not show it yet', async () => {
      const ec2 = mockedEc2();
      const controller = new AbortController();
      const reason = new Error('stop right after AttachVolume');
      ec2.mock.on(AttachVolumeCommand).resolves({});
      // Not visible at first; it appears `attaching` after the refused DetachVolume, then goes.
      let reads = 0;
      ec2.mock.on(DescribeVolumesCommand).callsFake(() => {
        const detaches = ec2.names().filter((n) => n === 'DetachVolume').length;
        if (detaches === 0) {
          controller.abort(reason);
          return vol('available');
        }
        if (detaches === 1)
          return ++reads < 3 ? vol('available') : vol('in-use', [{ InstanceId: 'i-1', State: 'attaching' }]);
        return vol('available');
      });
      ec2.mock
        .on(DetachVolumeCommand)
        .rejectsOnce(ec2Error('IncorrectState', "Volume 'vol-1' is in the 'available' state."))
        .resolves({});
      await expect(
        attachVolume(
          { volumeId: 'vol-1', instanceId: 'i-1', attachmentName: '/dev/sdf' },
          options(ec2, { signal: controller.signal }),
        ),
      ).rejects.toBe(reason);
      const names = ec2.names();
      expect(names.filter((n) => n === 'DetachVolume')).toHaveLength(2);
      // The second DetachVolume follows the reading that showed the attachment.
      expect(names.slice(0, 7)).toEqual([
        'AttachVolume',
        'DescribeVolumes',
        'DetachVolume',
        'DescribeVolumes',
        'DescribeVolumes',
        'DescribeVolumes',
        'DetachVolume',
      ]);
    });

    it('rejects with the given signal’s reason when aborted while waiting for the detach', async () => {
      const { ec2, handle } = await attached();
      const controller = new AbortController();
      const reason = new Error('cleanup budget exhausted');
      ec2.mock.on(DetachVolumeCommand).resolves({});
      ec2.mock.on(DescribeVolumesCommand).callsFake(() => {
        controller.abort(reason);
        return vol('in-use', [{ InstanceId: 'i-1', State: 'detaching' }]);
      });
      await expect(handle.detach({ signal: controller.signal })).rejects.toBe(reason);
      expect(ec2.names()).toEqual(['DetachVolume', 'DescribeVolumes']);
    });

    it('fails on other DetachVolume errors, and may be retried', async () => {
      const { ec2, handle } = await attached();
      ec2.mock
        .on(DetachVolumeCommand)
        .rejectsOnce(ec2Error('UnauthorizedOperation', 'denied', 403))
        .resolves({});
      ec2.mock.on(DescribeVolumesCommand).resolves(vol('available'));
      await expect(handle.detach()).rejects.toMatchObject({
        awsCode: 'UnauthorizedOperation',
        operation: 'DetachVolume',
      });
      await handle.detach();
      expect(ec2.names()).toEqual(['DetachVolume', 'DetachVolume', 'DescribeVolumes', 'DescribeVolumes']);
    });
  });
});
