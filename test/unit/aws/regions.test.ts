import {
  CopyImageCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeRegionsCommand,
  EnableImageDeprecationCommand,
  ModifyImageAttributeCommand,
  ModifySnapshotAttributeCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { ConfigError, RegionCopyError } from '../../../src/errors.js';
import { copyToRegions } from '../../../src/aws/regions.js';
import type { CopyToRegionsInput } from '../../../src/aws/regions.js';
import { tagList } from '../../../src/aws/common.js';
import { ec2Error, mockedEc2, options } from './fixtures.js';
import type { MockedEc2 } from './fixtures.js';

const REGIONS = ['us-east-1', 'eu-west-1', 'ap-south-1'];

function world(): { clients: Record<string, MockedEc2>; byRegion: (region: string) => MockedEc2['client'] } {
  const clients: Record<string, MockedEc2> = {};
  for (const r of REGIONS) clients[r] = mockedEc2(r);
  clients['us-east-1']!.mock.on(DescribeRegionsCommand).resolves({
    Regions: REGIONS.map((RegionName) => ({ RegionName })),
  });
  for (const r of ['eu-west-1', 'ap-south-1']) {
    const c = clients[r]!;
    c.mock.on(CopyImageCommand).resolves({ ImageId: `ami-${r}` });
    // Like AWS, the copy carries the tags given to CopyImage.
    c.mock.on(DescribeImagesCommand).callsFake(() => ({
      Images: [
        {
          ImageId: `ami-${r}`,
          State: 'available',
          BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: `snap-${r}` } }],
          Tags:
            c.mock
              .commandCalls(CopyImageCommand)
              .at(-1)
              ?.args[0].input.TagSpecifications?.find((t) => t.ResourceType === 'image')?.Tags ?? [],
        },
      ],
    }));
    c.mock.on(ModifyImageAttributeCommand).resolves({});
    c.mock.on(ModifySnapshotAttributeCommand).resolves({});
    c.mock.on(EnableImageDeprecationCommand).resolves({});
    c.mock.on(DeregisterImageCommand).resolves({});
    c.mock.on(DeleteSnapshotCommand).resolves({});
  }
  return { clients, byRegion: (region) => clients[region]!.client };
}

const input: CopyToRegionsInput = {
  sourceImageId: 'ami-src',
  sourceRegion: 'us-east-1',
  regions: ['eu-west-1', 'ap-south-1', 'eu-west-1', 'us-east-1'],
  name: 'my-image',
};

describe('copyToRegions', () => {
  it('validates the regions, then copies to each one (deduplicated, build region skipped) with keys, tags and sharing', async () => {
    const { clients, byRegion } = world();
    const opts = options(byRegion);
    const copies = await copyToRegions(
      {
        ...input,
        description: 'd',
        encryptBoot: true,
        kmsKeyId: 'alias/default-key',
        regionKmsKeyIds: { 'eu-west-1': 'alias/eu-key' },
        tags: { team: 'infra' },
        snapshotTags: { kind: 'root' },
        buildId: 'b-1',
        amiUsers: ['111122223333'],
        snapshotGroups: ['all'],
        deprecateAt: new Date('2027-01-01T00:00:00Z'),
      },
      opts,
    );
    expect(copies.images).toEqual({ 'eu-west-1': 'ami-eu-west-1', 'ap-south-1': 'ami-ap-south-1' });
    expect(copies.snapshots).toEqual({ 'eu-west-1': ['snap-eu-west-1'], 'ap-south-1': ['snap-ap-south-1'] });
    expect(clients['us-east-1']!.log()).toEqual([['DescribeRegions', {}]]);
    const eu = clients['eu-west-1']!.log();
    expect(eu).toEqual([
      [
        'CopyImage',
        {
          SourceImageId: 'ami-src',
          SourceRegion: 'us-east-1',
          Name: 'my-image',
          Description: 'd',
          Encrypted: true,
          KmsKeyId: 'alias/eu-key',
          TagSpecifications: [
            { ResourceType: 'image', Tags: tagList({ team: 'infra' }, 'b-1') },
            { ResourceType: 'snapshot', Tags: tagList({ team: 'infra', kind: 'root' }, 'b-1') },
          ],
        },
      ],
      ['DescribeImages', { ImageIds: ['ami-eu-west-1'] }],
      ['ModifyImageAttribute', { ImageId: 'ami-eu-west-1', LaunchPermission: { Add: [{ UserId: '111122223333' }] } }],
      [
        'ModifySnapshotAttribute',
        {
          SnapshotId: 'snap-eu-west-1',
          Attribute: 'createVolumePermission',
          CreateVolumePermission: { Add: [{ Group: 'all' }] },
        },
      ],
      ['EnableImageDeprecation', { ImageId: 'ami-eu-west-1', DeprecateAt: new Date('2027-01-01T00:00:00Z') }],
    ]);
    expect(clients['ap-south-1']!.log()[0]![1]['KmsKeyId']).toBe('alias/default-key');
    expect(
      opts.events.filter((e) => e.type === 'copy').map((e) => (e.type === 'copy' ? `${e.region}:${e.state}` : '')),
    ).toEqual(
      expect.arrayContaining([
        'eu-west-1:started',
        'eu-west-1:available',
        'ap-south-1:started',
        'ap-south-1:available',
      ]),
    );
  });

  it('refuses an unknown region before copying anything', async () => {
    const { clients, byRegion } = world();
    const error = await copyToRegions({ ...input, regions: ['eu-west-1', 'mars-north-1'] }, options(byRegion)).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('mars-north-1 is not a region enabled for this account');
    expect(clients['eu-west-1']!.names()).toEqual([]);
  });

  it('skips the check with skipRegionValidation', async () => {
    const { clients, byRegion } = world();
    await copyToRegions({ ...input, regions: ['eu-west-1'], skipRegionValidation: true }, options(byRegion));
    expect(clients['us-east-1']!.names()).toEqual([]);
  });

  it('lets every copy settle, removes the ones that succeeded, and reports every region', async () => {
    const { clients, byRegion } = world();
    clients['ap-south-1']!.mock.on(DescribeImagesCommand).resolves({
      Images: [{ ImageId: 'ami-ap-south-1', State: 'failed', StateReason: { Message: 'KMS key not usable' } }],
    });
    const opts = options(byRegion);
    const error = await copyToRegions(input, opts).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegionCopyError);
    const outcomes = (error as RegionCopyError).outcomes;
    expect(outcomes.map((o) => [o.region, o.status, o.imageId])).toEqual([
      ['eu-west-1', 'undone', 'ami-eu-west-1'],
      ['ap-south-1', 'failed', 'ami-ap-south-1'],
    ]);
    expect(outcomes[1]!.error?.message).toContain('KMS key not usable');
    expect((error as Error).message).toContain('failed in 1 of 2 region(s)');
    expect(clients['eu-west-1']!.names().slice(-2)).toEqual(['DeregisterImage', 'DeleteSnapshot']);
    expect(clients['eu-west-1']!.log().at(-1)![1]).toEqual({ SnapshotId: 'snap-eu-west-1' });
    // The failed copy exists too: it is removed as well (its snapshots looked up first).
    expect(clients['ap-south-1']!.names()).toEqual([
      'CopyImage',
      'DescribeImages',
      'DescribeImages',
      'DeregisterImage',
    ]);
  });

  it('reports a CopyImage failure, with the other region undone', async () => {
    const { clients, byRegion } = world();
    clients['eu-west-1']!.mock.on(CopyImageCommand).rejects(
      ec2Error('ResourceLimitExceeded', 'too many copies in flight'),
    );
    const error = await copyToRegions(input, options(byRegion)).catch((e: unknown) => e);
    expect((error as RegionCopyError).outcomes.map((o) => [o.region, o.status])).toEqual([
      ['eu-west-1', 'failed'],
      ['ap-south-1', 'undone'],
    ]);
    expect(clients['eu-west-1']!.names()).toEqual(['CopyImage']);
  });

  it('keeps the successful copies with keepOnError', async () => {
    const { clients, byRegion } = world();
    clients['eu-west-1']!.mock.on(CopyImageCommand).rejects(ec2Error('ResourceLimitExceeded'));
    const error = await copyToRegions(input, options(byRegion, { keepOnError: true })).catch((e: unknown) => e);
    expect((error as RegionCopyError).outcomes.map((o) => [o.region, o.status])).toEqual([
      ['eu-west-1', 'failed'],
      ['ap-south-1', 'kept'],
    ]);
    expect(clients['ap-south-1']!.names()).not.toContain('DeregisterImage');
  });

  it('reports undo failures as undo-failed and attaches them to the error', async () => {
    const { clients, byRegion } = world();
    clients['eu-west-1']!.mock.on(CopyImageCommand).rejects(ec2Error('ResourceLimitExceeded'));
    clients['ap-south-1']!.mock.on(DeregisterImageCommand).rejects(ec2Error('UnauthorizedOperation', 'denied', 403));
    const error = (await copyToRegions(input, options(byRegion)).catch((e: unknown) => e)) as RegionCopyError;
    expect(error.outcomes.find((o) => o.region === 'ap-south-1')?.status).toBe('undo-failed');
    expect(error.cleanupErrors).toHaveLength(1);
  });

  it('rejects with the caller’s reason on abort, after removing the copies that exist', async () => {
    const { clients, byRegion } = world();
    const controller = new AbortController();
    const reason = new Error('stop');
    clients['eu-west-1']!.mock.on(DescribeImagesCommand).callsFake(() => {
      if (controller.signal.aborted)
        return {
          Images: [
            {
              ImageId: 'ami-eu-west-1',
              State: 'pending',
              BlockDeviceMappings: [{ Ebs: { SnapshotId: 'snap-eu-west-1' } }],
            },
          ],
        };
      controller.abort(reason);
      return { Images: [{ ImageId: 'ami-eu-west-1', State: 'pending' }] };
    });
    await expect(copyToRegions(input, options(byRegion, { signal: controller.signal }))).rejects.toBe(reason);
    expect(clients['eu-west-1']!.names()).toContain('DeregisterImage');
  });

  it('an abort while the copy is not yet describable still deletes its snapshots with it', async () => {
    const { clients, byRegion } = world();
    const controller = new AbortController();
    const reason = new Error('stop during the copy wait');
    // Right after CopyImage, EC2 may not know the new id yet: every lookup is NotFound.
    clients['eu-west-1']!.mock.on(DescribeImagesCommand).callsFake(() => {
      controller.abort(reason);
      throw ec2Error('InvalidAMIID.NotFound', "The image id '[ami-eu-west-1]' does not exist");
    });
    await expect(copyToRegions(input, options(byRegion, { signal: controller.signal }))).rejects.toBe(reason);
    expect(clients['eu-west-1']!.log().filter(([n]) => n === 'DeregisterImage')).toEqual([
      ['DeregisterImage', { ImageId: 'ami-eu-west-1', DeleteAssociatedSnapshots: true }],
    ]);
  });

  it('undo() removes every copy, once', async () => {
    const { clients, byRegion } = world();
    const copies = await copyToRegions(input, options(byRegion));
    for (const c of Object.values(clients)) c.mock.resetHistory();
    await copies.undo();
    await copies.undo();
    expect(clients['eu-west-1']!.log()).toEqual([
      ['DeregisterImage', { ImageId: 'ami-eu-west-1', DeleteAssociatedSnapshots: true }],
      ['DeleteSnapshot', { SnapshotId: 'snap-eu-west-1' }],
    ]);
    expect(clients['ap-south-1']!.names()).toEqual(['DeregisterImage', 'DeleteSnapshot']);
  });

  it('is disposable: leaving an `await using` scope removes every copy, once, as undo() does', async () => {
    const { clients, byRegion } = world();
    {
      await using copies = await copyToRegions(input, options(byRegion));
      expect(copies.images).toEqual({ 'eu-west-1': 'ami-eu-west-1', 'ap-south-1': 'ami-ap-south-1' });
      for (const c of Object.values(clients)) c.mock.resetHistory();
    }
    expect(clients['eu-west-1']!.log()).toEqual([
      ['DeregisterImage', { ImageId: 'ami-eu-west-1', DeleteAssociatedSnapshots: true }],
      ['DeleteSnapshot', { SnapshotId: 'snap-eu-west-1' }],
    ]);
    expect(clients['ap-south-1']!.names()).toEqual(['DeregisterImage', 'DeleteSnapshot']);
  });

  it('disposing after undo() removes nothing twice; with no copy it does nothing', async () => {
    const { clients, byRegion } = world();
    const copies = await copyToRegions(input, options(byRegion));
    await copies.undo();
    for (const c of Object.values(clients)) c.mock.resetHistory();
    await copies[Symbol.asyncDispose]();
    const none = await copyToRegions({ ...input, regions: ['us-east-1'] }, options(byRegion));
    await none[Symbol.asyncDispose]();
    for (const c of Object.values(clients)) expect(c.names()).toEqual([]);
  });

  it('needs a client per region', async () => {
    const single = mockedEc2('us-east-1');
    await expect(copyToRegions(input, options(single))).rejects.toThrow(/a single client for us-east-1 was given/);
    expect(single.names()).toEqual([]);
  });

  it('does nothing when the only region is the source region', async () => {
    const { clients, byRegion } = world();
    const copies = await copyToRegions({ ...input, regions: ['us-east-1'] }, options(byRegion));
    expect(copies.images).toEqual({});
    expect(clients['us-east-1']!.names()).toEqual([]);
  });
});
