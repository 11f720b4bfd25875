import { DescribeImagesCommand, DescribeSnapshotsCommand, DescribeVolumesCommand } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { findTaggedResources } from '../../../src/aws/tagged-resources.js';
import { mockedEc2 } from './fixtures.js';

const tag = (id: string) => [{ Key: 'ami-chroot:build-id', Value: id }];

describe('findTaggedResources', () => {
  function world() {
    const ec2 = mockedEc2();
    ec2.mock
      .on(DescribeVolumesCommand)
      .resolvesOnce({
        Volumes: [
          {
            VolumeId: 'vol-1',
            State: 'in-use',
            CreateTime: new Date('2026-01-01T00:00:00Z'),
            Tags: tag('b-1'),
            Attachments: [{ InstanceId: 'i-1' }],
          },
        ],
        NextToken: 'n',
      })
      .resolves({
        Volumes: [
          { VolumeId: 'vol-2', State: 'available', CreateTime: new Date('2026-06-01T00:00:00Z'), Tags: tag('b-2') },
        ],
      });
    ec2.mock.on(DescribeSnapshotsCommand).resolves({
      Snapshots: [
        { SnapshotId: 'snap-1', State: 'completed', StartTime: new Date('2026-01-01T00:00:00Z'), Tags: tag('b-1') },
      ],
    });
    ec2.mock.on(DescribeImagesCommand).resolves({
      Images: [{ ImageId: 'ami-1', State: 'available', CreationDate: '2026-01-02T00:00:00.000Z', Tags: tag('b-1') }],
    });
    return ec2;
  }

  it('lists volumes, snapshots and images carrying the build-id tag, paginating', async () => {
    const ec2 = world();
    const found = await findTaggedResources({}, { ec2: ec2.client });
    expect(found.map((r) => [r.kind, r.id, r.region, r.buildId, r.state])).toEqual([
      ['volume', 'vol-1', 'us-east-1', 'b-1', 'in-use'],
      ['volume', 'vol-2', 'us-east-1', 'b-2', 'available'],
      ['snapshot', 'snap-1', 'us-east-1', 'b-1', 'completed'],
      ['image', 'ami-1', 'us-east-1', 'b-1', 'available'],
    ]);
    expect(found[0]!.attachedTo).toEqual(['i-1']);
    const filter = [{ Name: 'tag-key', Values: ['ami-chroot:build-id'] }];
    expect(ec2.log()).toEqual([
      ['DescribeVolumes', { Filters: filter, MaxResults: 500 }],
      ['DescribeVolumes', { Filters: filter, MaxResults: 500, NextToken: 'n' }],
      ['DescribeSnapshots', { OwnerIds: ['self'], Filters: filter, MaxResults: 1000 }],
      ['DescribeImages', { Owners: ['self'], Filters: filter, MaxResults: 1000 }],
    ]);
  });

  it('narrows to one build and to resources older than a date', async () => {
    const ec2 = world();
    const found = await findTaggedResources(
      { buildId: 'b-1', olderThan: new Date('2026-03-01T00:00:00Z') },
      { ec2: ec2.client },
    );
    expect(found.map((r) => r.id)).toEqual(['vol-1', 'snap-1', 'ami-1']);
    expect(ec2.log()[0]![1]).toMatchObject({ Filters: [{ Name: 'tag:ami-chroot:build-id', Values: ['b-1'] }] });
  });

  it('takes a client per region, with signal, logger and onProgress', async () => {
    const west = world();
    const lines: string[] = [];
    const seen: string[] = [];
    const found = await findTaggedResources(
      { region: 'eu-west-1' },
      {
        ec2: (region) => {
          seen.push(region);
          return west.client;
        },
        signal: new AbortController().signal,
        logger: { debug: (line) => lines.push(line) },
        onProgress: () => {},
      },
    );
    expect(seen).toEqual(['eu-west-1']);
    expect(new Set(found.map((r) => r.region))).toEqual(new Set(['eu-west-1']));
    expect(lines.some((line) => line.startsWith('AWS DescribeVolumes in eu-west-1: ok'))).toBe(true);
  });

  it('needs a region when ec2 is a function of the region, before any call', async () => {
    const ec2 = world();
    const error = await findTaggedResources({}, { ec2: () => ec2.client }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(ec2.log()).toEqual([]);
  });

  it('stops on an aborted signal', async () => {
    const ec2 = world();
    const controller = new AbortController();
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(findTaggedResources({}, { ec2: ec2.client, signal: controller.signal })).rejects.toBe(reason);
  });
});
