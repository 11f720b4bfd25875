import {
  CopyImageCommand,
  CreateSnapshotCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  DisableImageDeregistrationProtectionCommand,
  EnableImageDeprecationCommand,
  EnableImageDeregistrationProtectionCommand,
  ModifyImageAttributeCommand,
  ModifySnapshotAttributeCommand,
  RegisterImageCommand,
} from '@aws-sdk/client-ec2';
import type { Image } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { AwsError, ConfigError, WaitFailedError } from '../../../src/errors.js';
import { deregisterImagesByName, registerImageRequest, snapshotAndRegister } from '../../../src/aws/images.js';
import type { SnapshotAndRegisterInput } from '../../../src/aws/images.js';
import { toSourceImage } from '../../../src/aws/source-image.js';
import { tagList } from '../../../src/aws/common.js';
import { ec2Error, mockedEc2, options, sourceImageFixture } from './fixtures.js';
import type { MockedEc2 } from './fixtures.js';

const source = toSourceImage(sourceImageFixture(), 'us-east-1');

function happy(ec2: MockedEc2, image: Partial<Image> = {}): void {
  ec2.mock.on(CreateSnapshotCommand).resolves({ SnapshotId: 'snap-new', State: 'pending' });
  ec2.mock
    .on(DescribeSnapshotsCommand)
    .resolves({ Snapshots: [{ SnapshotId: 'snap-new', State: 'completed', Progress: '100%' }] });
  ec2.mock.on(RegisterImageCommand).resolves({ ImageId: 'ami-new' });
  // Like AWS, the described image carries the tags given on create.
  ec2.mock.on(DescribeImagesCommand).callsFake(() => ({
    Images: [
      {
        ImageId: 'ami-new',
        State: 'available',
        BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-new' } }],
        Tags: createdTags(ec2, RegisterImageCommand),
        ...image,
      },
    ],
  }));
}

/** The image tags of the last call of `command` (RegisterImage or CopyImage). */
function createdTags(ec2: MockedEc2, command: typeof RegisterImageCommand | typeof CopyImageCommand) {
  const input = ec2.mock.commandCalls(command as typeof RegisterImageCommand).at(-1)?.args[0].input;
  return input?.TagSpecifications?.find((t) => t.ResourceType === 'image')?.Tags ?? [];
}

const base: SnapshotAndRegisterInput = { volumeId: 'vol-1', name: 'my-image', source };

describe('registerImageRequest', () => {
  const tags = tagList({ team: 'infra' }, 'b-1');

  it('inherits every attribute and mapping from the source; the root gets the new snapshot; Encrypted is dropped next to a snapshot', () => {
    expect(registerImageRequest({ name: 'x', source, description: 'built' }, 'snap-new', 'my-image', tags)).toEqual({
      Name: 'my-image',
      Description: 'built',
      Architecture: 'x86_64',
      VirtualizationType: 'hvm',
      RootDeviceName: '/dev/xvda',
      BlockDeviceMappings: [
        {
          DeviceName: '/dev/xvda',
          Ebs: {
            SnapshotId: 'snap-new',
            DeleteOnTermination: true,
            VolumeType: 'gp3',
            VolumeSize: 8,
            Iops: 3000,
            Throughput: 125,
          },
        },
        {
          DeviceName: '/dev/xvdb',
          Ebs: { SnapshotId: 'snap-data', DeleteOnTermination: true, VolumeSize: 20, VolumeType: 'gp2' },
        },
        { DeviceName: '/dev/xvdc', VirtualName: 'ephemeral0' },
      ],
      EnaSupport: true,
      SriovNetSupport: 'simple',
      BootMode: 'uefi-preferred',
      TpmSupport: 'v2.0',
      ImdsSupport: 'v2.0',
      TagSpecifications: [{ ResourceType: 'image', Tags: tags }],
    });
  });

  it('applies rootVolumeSize (grow only) and rootVolumeType to the AMI’s root mapping, dropping the old IOPS', () => {
    const request = registerImageRequest(
      { name: 'x', source, rootVolumeSize: 30, rootVolumeType: 'gp2' },
      'snap-new',
      'x',
      [],
    );
    expect(request.BlockDeviceMappings![0]).toEqual({
      DeviceName: '/dev/xvda',
      Ebs: { SnapshotId: 'snap-new', DeleteOnTermination: true, VolumeType: 'gp2', VolumeSize: 30 },
    });
    expect(
      registerImageRequest({ name: 'x', source, rootVolumeSize: 4 }, 's', 'x', []).BlockDeviceMappings![0]!.Ebs!
        .VolumeSize,
    ).toBe(8);
    expect(
      registerImageRequest({ name: 'x', source, rootVolumeType: 'io2', rootVolumeIops: 9000 }, 's', 'x', [])
        .BlockDeviceMappings![0]!.Ebs,
    ).toMatchObject({ VolumeType: 'io2', Iops: 9000 });
    expect(request.TagSpecifications).toBeUndefined();
  });

  it('lets explicit attributes override the source’s', () => {
    const request = registerImageRequest(
      {
        name: 'x',
        source,
        architecture: 'arm64',
        enaSupport: false,
        sriovSupport: false,
        bootMode: 'uefi',
        tpmSupport: 'v2.0',
        imdsSupport: 'v2.0',
        uefiData: 'QUJD',
      },
      's',
      'x',
      [],
    );
    expect(request).toMatchObject({ Architecture: 'arm64', EnaSupport: false, BootMode: 'uefi', UefiData: 'QUJD' });
    expect(request.SriovNetSupport).toBeUndefined();
  });

  it('keeps the source’s UEFI data unless given other data', () => {
    const uefi = { ...source, uefiData: 'U09VUkNF' };
    expect(registerImageRequest({ name: 'x', source: uefi }, 's', 'x', []).UefiData).toBe('U09VUkNF');
    expect(registerImageRequest({ name: 'x', source: uefi, uefiData: 'T1dO' }, 's', 'x', []).UefiData).toBe('T1dO');
  });

  it('copies kernel and RAM disk only for paravirtual images', () => {
    const pv = toSourceImage(
      sourceImageFixture({ VirtualizationType: 'paravirtual', KernelId: 'aki-1', RamdiskId: 'ari-1' }),
      'us-east-1',
    );
    expect(registerImageRequest({ name: 'x', source: pv }, 's', 'x', [])).toMatchObject({
      KernelId: 'aki-1',
      RamdiskId: 'ari-1',
    });
    expect(
      registerImageRequest({ name: 'x', source: pv, virtualizationType: 'hvm' }, 's', 'x', []).KernelId,
    ).toBeUndefined();
  });

  it('replaces the mappings with amiBlockDeviceMappings, the root entry (matched with or without /dev/) getting the snapshot and size', () => {
    const request = registerImageRequest(
      {
        name: 'x',
        source,
        rootDeviceName: 'xvda',
        rootVolumeSize: 16,
        blockDeviceMappings: [
          { DeviceName: '/dev/xvda', Ebs: { VolumeType: 'gp3', DeleteOnTermination: true } },
          {
            DeviceName: '/dev/xvdf',
            Ebs: { VolumeSize: 50, VolumeType: 'gp3', Encrypted: true, KmsKeyId: 'alias/data' },
          },
        ],
      },
      'snap-new',
      'x',
      [],
    );
    expect(request.RootDeviceName).toBe('xvda');
    expect(request.BlockDeviceMappings).toEqual([
      {
        DeviceName: '/dev/xvda',
        Ebs: { SnapshotId: 'snap-new', DeleteOnTermination: true, VolumeType: 'gp3', VolumeSize: 16 },
      },
      { DeviceName: '/dev/xvdf', Ebs: { VolumeSize: 50, VolumeType: 'gp3', Encrypted: true, KmsKeyId: 'alias/data' } },
    ]);
  });

  it('builds a fromScratch registration from the given mappings, and requires them', () => {
    const request = registerImageRequest(
      {
        name: 'x',
        rootDeviceName: '/dev/xvda',
        rootVolumeSize: 10,
        virtualizationType: 'hvm',
        blockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeType: 'gp2' } }],
      },
      'snap-new',
      'x',
      [],
    );
    expect(request).toMatchObject({ Architecture: 'x86_64', VirtualizationType: 'hvm', RootDeviceName: '/dev/xvda' });
    expect(request.BlockDeviceMappings).toEqual([
      {
        DeviceName: '/dev/xvda',
        Ebs: { SnapshotId: 'snap-new', DeleteOnTermination: true, VolumeType: 'gp2', VolumeSize: 10 },
      },
    ]);
    expect(request.EnaSupport).toBeUndefined();
    expect(() => registerImageRequest({ name: 'x' }, 's', 'x', [])).toThrow(ConfigError);
  });
});

describe('snapshotAndRegister', () => {
  it('snapshots, registers and waits, tagging on create (exact calls)', async () => {
    const ec2 = mockedEc2();
    happy(ec2);
    const opts = options(ec2);
    const image = await snapshotAndRegister(
      {
        ...base,
        tags: { team: 'infra', Name: 'img' },
        snapshotTags: { Name: 'snap' },
        buildId: 'b-1',
        description: 'desc',
      },
      opts,
    );
    expect(image).toMatchObject({
      imageId: 'ami-new',
      region: 'us-east-1',
      snapshotIds: ['snap-new'],
      name: 'my-image',
    });
    const log = ec2.log();
    expect(log.map(([n]) => n)).toEqual(['CreateSnapshot', 'DescribeSnapshots', 'RegisterImage', 'DescribeImages']);
    expect(log[0]![1]).toEqual({
      VolumeId: 'vol-1',
      Description: 'ami-chroot: my-image',
      TagSpecifications: [{ ResourceType: 'snapshot', Tags: tagList({ team: 'infra', Name: 'snap' }, 'b-1') }],
    });
    expect(log[1]![1]).toEqual({ SnapshotIds: ['snap-new'] });
    expect(log[2]![1]).toEqual(
      registerImageRequest(
        { ...base, description: 'desc' },
        'snap-new',
        'my-image',
        tagList({ team: 'infra', Name: 'img' }, 'b-1'),
      ),
    );
    expect(log[3]![1]).toEqual({ ImageIds: ['ami-new'] });
    expect(opts.events.filter((e) => e.type === 'resource')).toEqual([
      { type: 'resource', action: 'created', kind: 'snapshot', id: 'snap-new', region: 'us-east-1' },
      { type: 'resource', action: 'created', kind: 'image', id: 'ami-new', region: 'us-east-1' },
    ]);
  });

  it('reports snapshot progress while waiting', async () => {
    const ec2 = mockedEc2();
    happy(ec2);
    ec2.mock
      .on(DescribeSnapshotsCommand)
      .resolvesOnce({ Snapshots: [{ SnapshotId: 'snap-new', State: 'pending', Progress: '0%' }] })
      .resolvesOnce({ Snapshots: [{ SnapshotId: 'snap-new', State: 'pending', Progress: '57%' }] })
      .resolves({ Snapshots: [{ SnapshotId: 'snap-new', State: 'completed', Progress: '100%' }] });
    const opts = options(ec2);
    await snapshotAndRegister(base, opts);
    expect(
      opts.events
        .filter((e) => e.type === 'snapshot-progress')
        .map((e) => (e.type === 'snapshot-progress' ? e.percent : -1)),
    ).toEqual([0, 57, 100]);
  });

  it('applies launch permissions, product codes, snapshot permissions (flat form), deprecation and protection, in order', async () => {
    const ec2 = mockedEc2();
    happy(ec2);
    ec2.mock.on(ModifyImageAttributeCommand).resolves({});
    ec2.mock.on(ModifySnapshotAttributeCommand).resolves({});
    ec2.mock.on(EnableImageDeprecationCommand).resolves({});
    ec2.mock.on(EnableImageDeregistrationProtectionCommand).resolves({});
    await snapshotAndRegister(
      {
        ...base,
        amiUsers: ['111122223333'],
        amiGroups: ['all'],
        amiOrgArns: ['arn:aws:organizations::1:organization/o-1'],
        amiOuArns: ['arn:aws:organizations::1:ou/o-1/ou-1'],
        productCodes: ['pc-1'],
        snapshotUsers: ['111122223333'],
        snapshotGroups: ['all'],
        deprecateAt: '2027-01-01T00:00:00Z',
        deregistrationProtection: { enabled: true, withCooldown: true },
      },
      options(ec2),
    );
    expect(ec2.log().slice(4)).toEqual([
      [
        'ModifyImageAttribute',
        {
          ImageId: 'ami-new',
          LaunchPermission: {
            Add: [
              { UserId: '111122223333' },
              { Group: 'all' },
              { OrganizationArn: 'arn:aws:organizations::1:organization/o-1' },
              { OrganizationalUnitArn: 'arn:aws:organizations::1:ou/o-1/ou-1' },
            ],
          },
        },
      ],
      ['ModifyImageAttribute', { ImageId: 'ami-new', ProductCodes: ['pc-1'] }],
      [
        'ModifySnapshotAttribute',
        {
          SnapshotId: 'snap-new',
          Attribute: 'createVolumePermission',
          CreateVolumePermission: { Add: [{ UserId: '111122223333' }, { Group: 'all' }] },
        },
      ],
      ['EnableImageDeprecation', { ImageId: 'ami-new', DeprecateAt: new Date('2027-01-01T00:00:00Z') }],
      ['EnableImageDeregistrationProtection', { ImageId: 'ami-new', WithCooldown: true }],
    ]);
  });

  it('retries a permission change that EC2 does not see the new image for yet (eventual consistency)', async () => {
    const ec2 = mockedEc2();
    happy(ec2);
    ec2.mock
      .on(ModifyImageAttributeCommand)
      .rejectsOnce(ec2Error('InvalidAMIID.NotFound', "The image id '[ami-new]' does not exist"))
      .resolves({});
    await snapshotAndRegister({ ...base, amiGroups: ['all'] }, options(ec2));
    expect(ec2.names().slice(4)).toEqual(['ModifyImageAttribute', 'ModifyImageAttribute']);
  });

  it('deregisters same-name images (and their snapshots) in the build region and every amiRegion after the snapshot', async () => {
    const east = mockedEc2('us-east-1');
    const west = mockedEc2('eu-west-1');
    happy(east);
    east.mock.on(DescribeImagesCommand, { Owners: ['self'] }).resolves({
      Images: [
        {
          ImageId: 'ami-old',
          Name: 'my-image',
          BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-old' } }],
        },
      ],
    });
    east.mock.on(DeregisterImageCommand).resolves({});
    east.mock.on(DeleteSnapshotCommand).resolves({});
    west.mock.on(DescribeImagesCommand).resolves({ Images: [] });
    const byRegion = (region: string) => (region === 'eu-west-1' ? west.client : east.client);
    await snapshotAndRegister(
      { ...base, region: 'us-east-1', forceDeregister: true, forceDeleteSnapshot: true, amiRegions: ['eu-west-1'] },
      options(byRegion),
    );
    expect(east.names()).toEqual([
      'CreateSnapshot',
      'DescribeSnapshots',
      'DescribeImages',
      'DeregisterImage',
      'DeleteSnapshot',
      'RegisterImage',
      'DescribeImages',
    ]);
    expect(east.log()[2]![1]).toEqual({ Owners: ['self'], Filters: [{ Name: 'name', Values: ['my-image'] }] });
    expect(east.log()[3]![1]).toEqual({ ImageId: 'ami-old', DeleteAssociatedSnapshots: true });
    expect(east.log()[4]![1]).toEqual({ SnapshotId: 'snap-old' });
    expect(west.log()).toEqual([
      ['DescribeImages', { Owners: ['self'], Filters: [{ Name: 'name', Values: ['my-image'] }] }],
    ]);
  });

  it('with encryptBoot, replaces an intermediary with an encrypted copy and removes the intermediary', async () => {
    const ec2 = mockedEc2();
    happy(ec2);
    ec2.mock.on(CopyImageCommand).resolves({ ImageId: 'ami-enc' });
    ec2.mock.on(DescribeImagesCommand, { ImageIds: ['ami-enc'] }).callsFake(() => ({
      Images: [
        {
          ImageId: 'ami-enc',
          State: 'available',
          BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-enc' } }],
          Tags: createdTags(ec2, CopyImageCommand),
        },
      ],
    }));
    ec2.mock.on(DeregisterImageCommand).callsFake((input: { DeleteAssociatedSnapshots?: boolean }) => ({
      DeleteSnapshotResults: input.DeleteAssociatedSnapshots ? [{ SnapshotId: 'snap-new', ReturnCode: 'success' }] : [],
    }));
    ec2.mock.on(DeleteSnapshotCommand).resolves({});
    const image = await snapshotAndRegister(
      { ...base, encryptBoot: true, kmsKeyId: 'alias/amis', buildId: 'b-1', description: 'd' },
      options(ec2),
    );
    expect(image).toMatchObject({ imageId: 'ami-enc', snapshotIds: ['snap-enc'], name: 'my-image' });
    const log = ec2.log();
    expect(log.map(([n]) => n)).toEqual([
      'CreateSnapshot',
      'DescribeSnapshots',
      'RegisterImage',
      'DescribeImages',
      'CopyImage',
      'DescribeImages',
      'DeregisterImage',
      'DeleteSnapshot',
    ]);
    expect(log[2]![1]['Name']).toMatch(/^ami-chroot-intermediary-[0-9a-f]{10}$/);
    expect(log[4]![1]).toEqual({
      SourceImageId: 'ami-new',
      SourceRegion: 'us-east-1',
      Name: 'my-image',
      Encrypted: true,
      KmsKeyId: 'alias/amis',
      Description: 'd',
      TagSpecifications: [
        { ResourceType: 'image', Tags: tagList(undefined, 'b-1') },
        { ResourceType: 'snapshot', Tags: tagList(undefined, 'b-1') },
      ],
    });
    expect(log[6]![1]).toEqual({ ImageId: 'ami-new', DeleteAssociatedSnapshots: true });
    expect(log[7]![1]).toEqual({ SnapshotId: 'snap-new' });
  });

  it('with encryptBoot and a time-based copy, the encrypting CopyImage carries the completion duration', async () => {
    const ec2 = mockedEc2();
    happy(ec2);
    ec2.mock.on(CopyImageCommand).resolves({ ImageId: 'ami-enc' });
    ec2.mock.on(DescribeImagesCommand, { ImageIds: ['ami-enc'] }).resolves({
      Images: [
        {
          ImageId: 'ami-enc',
          State: 'available',
          BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-enc' } }],
        },
      ],
    });
    ec2.mock.on(DeregisterImageCommand).resolves({});
    ec2.mock.on(DeleteSnapshotCommand).resolves({});
    await snapshotAndRegister({ ...base, encryptBoot: true, snapshotCopyDurationMinutes: 45 }, options(ec2));
    const copies = ec2.mock.commandCalls(CopyImageCommand).map((c) => c.args[0].input);
    expect(copies).toHaveLength(1);
    expect(copies[0]).toMatchObject({ Encrypted: true, SnapshotCopyCompletionDurationMinutes: 45 });
  });

  it('with encryptBoot, an abort while the copy is not yet describable deletes its snapshots with it', async () => {
    const ec2 = mockedEc2();
    happy(ec2);
    const controller = new AbortController();
    const reason = new Error('stop during the encrypting copy');
    ec2.mock.on(CopyImageCommand).resolves({ ImageId: 'ami-enc' });
    ec2.mock.on(DescribeImagesCommand, { ImageIds: ['ami-enc'] }).callsFake(() => {
      controller.abort(reason);
      throw ec2Error('InvalidAMIID.NotFound', "The image id '[ami-enc]' does not exist");
    });
    ec2.mock.on(DeregisterImageCommand).resolves({});
    ec2.mock.on(DeleteSnapshotCommand).resolves({});
    await expect(
      snapshotAndRegister({ ...base, encryptBoot: true }, options(ec2, { signal: controller.signal })),
    ).rejects.toBe(reason);
    const deregisters = ec2.mock.commandCalls(DeregisterImageCommand).map((c) => c.args[0].input);
    expect(deregisters).toContainEqual({ ImageId: 'ami-enc', DeleteAssociatedSnapshots: true });
  });

  it('removes the image and the snapshot when a later step fails, keeping the original AwsError', async () => {
    const ec2 = mockedEc2();
    happy(ec2);
    ec2.mock
      .on(ModifyImageAttributeCommand)
      .rejects(ec2Error('InvalidAMIAttributeItemValue', 'Invalid attribute item value "x" for userId item type.'));
    ec2.mock.on(DeregisterImageCommand).callsFake((input: { DeleteAssociatedSnapshots?: boolean }) => ({
      DeleteSnapshotResults: input.DeleteAssociatedSnapshots ? [{ SnapshotId: 'snap-new', ReturnCode: 'success' }] : [],
    }));
    ec2.mock.on(DeleteSnapshotCommand).resolves({});
    const opts = options(ec2);
    const error = await snapshotAndRegister({ ...base, amiUsers: ['x'] }, opts).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsError);
    expect(error).toMatchObject({ operation: 'ModifyImageAttribute', phase: 'permissions', cleanupErrors: [] });
    expect(ec2.names()).toEqual([
      'CreateSnapshot',
      'DescribeSnapshots',
      'RegisterImage',
      'DescribeImages',
      'ModifyImageAttribute',
      'DeregisterImage',
      'DeleteSnapshot',
    ]);
    expect(
      opts.events
        .filter((e) => e.type === 'cleanup' && e.status === 'done')
        .map((e) => (e.type === 'cleanup' ? e.step : '')),
    ).toEqual(['deregister image ami-new', 'delete snapshot snap-new']);
  });

  it('attaches cleanup failures to the original error without replacing it', async () => {
    const ec2 = mockedEc2();
    happy(ec2);
    ec2.mock
      .on(DescribeImagesCommand)
      .resolves({ Images: [{ ImageId: 'ami-new', State: 'failed', StateReason: { Message: 'Snapshot is invalid' } }] });
    ec2.mock.on(DeregisterImageCommand).rejects(ec2Error('UnauthorizedOperation', 'denied', 403));
    ec2.mock.on(DeleteSnapshotCommand).resolves({});
    const error = await snapshotAndRegister(base, options(ec2)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WaitFailedError);
    expect((error as WaitFailedError).message).toContain('Snapshot is invalid');
    expect((error as WaitFailedError).cleanupErrors.map((e) => e.message)).toEqual([
      expect.stringContaining('deregister image ami-new: DeregisterImage failed'),
    ]);
    expect(ec2.names().slice(-2)).toEqual(['DeregisterImage', 'DeleteSnapshot']);
  });

  it('deletes the snapshot when it fails, before any registration', async () => {
    const ec2 = mockedEc2();
    happy(ec2);
    ec2.mock
      .on(DescribeSnapshotsCommand)
      .resolves({ Snapshots: [{ SnapshotId: 'snap-new', State: 'error', StateMessage: 'volume gone' }] });
    ec2.mock.on(DeleteSnapshotCommand).resolves({});
    await expect(snapshotAndRegister(base, options(ec2))).rejects.toThrow(
      /snapshot snap-new to be completed failed.*volume gone/,
    );
    expect(ec2.names()).toEqual(['CreateSnapshot', 'DescribeSnapshots', 'DeleteSnapshot']);
  });

  it('rejects with the caller’s reason when aborted during the snapshot wait, and deletes the snapshot', async () => {
    const ec2 = mockedEc2();
    happy(ec2);
    const controller = new AbortController();
    const reason = new Error('ctrl-c');
    ec2.mock.on(DescribeSnapshotsCommand).callsFake(() => {
      controller.abort(reason);
      return { Snapshots: [{ SnapshotId: 'snap-new', State: 'pending', Progress: '3%' }] };
    });
    ec2.mock.on(DeleteSnapshotCommand).resolves({});
    await expect(snapshotAndRegister(base, options(ec2, { signal: controller.signal }))).rejects.toBe(reason);
    expect(ec2.names()).toEqual(['CreateSnapshot', 'DescribeSnapshots', 'DeleteSnapshot']);
  });

  it('rejects with the caller’s reason when aborted during the image wait, and deregisters', async () => {
    const ec2 = mockedEc2();
    happy(ec2);
    const controller = new AbortController();
    const reason = new Error('ctrl-c');
    ec2.mock.on(DescribeImagesCommand).callsFake(() => {
      controller.abort(reason);
      return { Images: [{ ImageId: 'ami-new', State: 'pending' }] };
    });
    ec2.mock.on(DeregisterImageCommand).callsFake((input: { DeleteAssociatedSnapshots?: boolean }) => ({
      DeleteSnapshotResults: input.DeleteAssociatedSnapshots ? [{ SnapshotId: 'snap-new', ReturnCode: 'success' }] : [],
    }));
    ec2.mock.on(DeleteSnapshotCommand).resolves({});
    await expect(snapshotAndRegister(base, options(ec2, { signal: controller.signal }))).rejects.toBe(reason);
    expect(ec2.names()).toEqual([
      'CreateSnapshot',
      'DescribeSnapshots',
      'RegisterImage',
      'DescribeImages',
      'DeregisterImage',
      'DeleteSnapshot',
    ]);
  });

  it('keeps everything with keepOnError', async () => {
    const ec2 = mockedEc2();
    happy(ec2);
    ec2.mock.on(ModifyImageAttributeCommand).rejects(ec2Error('UnauthorizedOperation', 'denied', 403));
    await expect(
      snapshotAndRegister({ ...base, amiGroups: ['all'] }, options(ec2, { keepOnError: true })),
    ).rejects.toBeInstanceOf(AwsError);
    expect(ec2.names()).not.toContain('DeregisterImage');
    expect(ec2.names()).not.toContain('DeleteSnapshot');
  });

  it('deregister() removes the image then its snapshots, once; lifts deregistration protection first', async () => {
    const ec2 = mockedEc2();
    happy(ec2);
    ec2.mock.on(EnableImageDeregistrationProtectionCommand).resolves({});
    ec2.mock.on(DisableImageDeregistrationProtectionCommand).resolves({});
    ec2.mock.on(DeregisterImageCommand).resolves({});
    ec2.mock.on(DeleteSnapshotCommand).resolves({});
    const image = await snapshotAndRegister({ ...base, deregistrationProtection: { enabled: true } }, options(ec2));
    ec2.mock.resetHistory();
    await image.deregister();
    await image[Symbol.asyncDispose]();
    expect(ec2.log()).toEqual([
      ['DisableImageDeregistrationProtection', { ImageId: 'ami-new' }],
      ['DeregisterImage', { ImageId: 'ami-new', DeleteAssociatedSnapshots: true }],
      ['DeleteSnapshot', { SnapshotId: 'snap-new' }],
    ]);
  });

  it('deregister() tolerates an image and snapshot that are already gone', async () => {
    const ec2 = mockedEc2();
    happy(ec2);
    const image = await snapshotAndRegister(base, options(ec2));
    ec2.mock.on(DeregisterImageCommand).rejects(ec2Error('InvalidAMIID.NotFound'));
    ec2.mock.on(DeleteSnapshotCommand).rejects(ec2Error('InvalidSnapshot.NotFound'));
    await expect(image.deregister()).resolves.toBeUndefined();
  });

  it('validates a fromScratch registration before creating anything', async () => {
    const ec2 = mockedEc2();
    await expect(snapshotAndRegister({ volumeId: 'vol-1', name: 'x' }, options(ec2))).rejects.toBeInstanceOf(
      ConfigError,
    );
    expect(ec2.names()).toEqual([]);
  });
});

describe('deregisterImagesByName', () => {
  it('only removes images whose name matches exactly, keeping snapshots unless asked', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(DescribeImagesCommand).resolves({
      Images: [
        { ImageId: 'ami-1', Name: 'my-image', BlockDeviceMappings: [{ Ebs: { SnapshotId: 'snap-1' } }] },
        { ImageId: 'ami-2', Name: 'my-image-2' },
      ],
    });
    ec2.mock.on(DeregisterImageCommand).resolves({});
    const removed = await deregisterImagesByName({ name: 'my-image', regions: ['us-east-1'] }, options(ec2));
    expect(removed).toEqual([{ region: 'us-east-1', imageId: 'ami-1', snapshotIds: [] }]);
    expect(ec2.names()).toEqual(['DescribeImages', 'DeregisterImage']);
  });

  it('needs a client per region when several regions are given', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(DescribeImagesCommand).resolves({ Images: [] });
    await expect(
      deregisterImagesByName({ name: 'x', regions: ['us-east-1', 'eu-west-1'] }, options(ec2)),
    ).rejects.toBeInstanceOf(ConfigError);
  });
});
