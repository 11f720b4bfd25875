import { DescribeImageAttributeCommand, DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { AwsError, ConfigError, SourceImageError } from '../../../src/errors.js';
import { resolveSourceAmi } from '../../../src/aws/source-image.js';
import { ec2Error, mockedEc2, options, sourceImageFixture } from './fixtures.js';

describe('resolveSourceAmi', () => {
  it('finds an image by id and returns everything later steps need', async () => {
    const ec2 = mockedEc2('eu-west-1');
    ec2.mock.on(DescribeImagesCommand).resolves({ Images: [sourceImageFixture()] });
    ec2.mock
      .on(DescribeImageAttributeCommand)
      .resolves({ ImageId: 'ami-source1', UefiData: { Value: 'QU1JLVVFRkk=' } });
    const source = await resolveSourceAmi({ sourceAmi: 'ami-source1' }, options(ec2));
    expect(ec2.log()).toEqual([
      ['DescribeImages', { ImageIds: ['ami-source1'] }],
      ['DescribeImageAttribute', { ImageId: 'ami-source1', Attribute: 'uefiData' }],
    ]);
    expect(source).toMatchObject({
      imageId: 'ami-source1',
      region: 'eu-west-1',
      name: 'debian-12-amd64-20260101',
      ownerId: '136693071363',
      creationDate: '2026-01-01T00:00:00.000Z',
      architecture: 'x86_64',
      virtualizationType: 'hvm',
      rootDeviceName: '/dev/xvda',
      rootSnapshotId: 'snap-root',
      rootVolumeSize: 8,
      rootVolumeType: 'gp3',
      rootIops: 3000,
      rootThroughput: 125,
      rootEncrypted: false,
      rootKmsKeyId: undefined,
      enaSupport: true,
      sriovNetSupport: 'simple',
      bootMode: 'uefi-preferred',
      tpmSupport: 'v2.0',
      imdsSupport: 'v2.0',
      uefiData: 'QU1JLVVFRkk=',
      tags: { os: 'debian' },
    });
    expect(source.blockDeviceMappings).toHaveLength(3);
    expect(source.rootMapping.DeviceName).toBe('/dev/xvda');
  });

  it('queries with the filter (a string is one value, an array several), owners and deprecated images, paginating', async () => {
    const ec2 = mockedEc2();
    ec2.mock
      .on(DescribeImagesCommand)
      .resolvesOnce({ Images: [], NextToken: 't1' })
      .resolves({ Images: [sourceImageFixture({ BootMode: 'legacy-bios' })] });
    await resolveSourceAmi(
      {
        sourceAmiFilter: {
          filters: { name: 'debian-12-*', architecture: ['x86_64', 'arm64'], 'root-device-type': 'ebs' },
          owners: ['self', 'amazon', '136693071363'],
          includeDeprecated: true,
        },
      },
      options(ec2),
    );
    const request = {
      Filters: [
        { Name: 'name', Values: ['debian-12-*'] },
        { Name: 'architecture', Values: ['x86_64', 'arm64'] },
        { Name: 'root-device-type', Values: ['ebs'] },
      ],
      Owners: ['self', 'amazon', '136693071363'],
      IncludeDeprecated: true,
      MaxResults: 1000,
    };
    expect(ec2.log()).toEqual([
      ['DescribeImages', request],
      ['DescribeImages', { ...request, NextToken: 't1' }],
    ]);
  });

  it('reads no UEFI data for a legacy-bios image', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(DescribeImagesCommand).resolves({ Images: [sourceImageFixture({ BootMode: 'legacy-bios' })] });
    const source = await resolveSourceAmi({ sourceAmi: 'ami-source1' }, options(ec2));
    expect(ec2.names()).toEqual(['DescribeImages']);
    expect(source.uefiData).toBeUndefined();
  });

  it('goes on with a warning when EC2 will not give the UEFI data', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(DescribeImagesCommand).resolves({ Images: [sourceImageFixture()] });
    ec2.mock
      .on(DescribeImageAttributeCommand)
      .rejects(ec2Error('AuthFailure', 'Not authorized for image:ami-source1', 403));
    const opts = options(ec2);
    const source = await resolveSourceAmi({ sourceAmi: 'ami-source1' }, opts);
    expect(source.uefiData).toBeUndefined();
    expect(opts.warnings[0]).toContain('Could not read the UEFI data of source AMI ami-source1');
  });

  it('picks the newest image with mostRecent', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(DescribeImagesCommand).resolves({
      Images: [
        sourceImageFixture({ ImageId: 'ami-old', CreationDate: '2025-01-01T00:00:00.000Z' }),
        sourceImageFixture({ ImageId: 'ami-new', CreationDate: '2026-03-01T00:00:00.000Z' }),
        sourceImageFixture({ ImageId: 'ami-mid', CreationDate: '2025-06-01T00:00:00.000Z' }),
      ],
    });
    const source = await resolveSourceAmi(
      { sourceAmiFilter: { filters: { name: 'x' }, owners: ['self'], mostRecent: true } },
      options(ec2),
    );
    expect(source.imageId).toBe('ami-new');
  });

  it('refuses several matches without mostRecent, listing them newest first', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(DescribeImagesCommand).resolves({
      Images: [
        sourceImageFixture({ ImageId: 'ami-old', Name: 'img-old', CreationDate: '2025-01-01T00:00:00.000Z' }),
        sourceImageFixture({ ImageId: 'ami-new', Name: 'img-new', CreationDate: '2026-03-01T00:00:00.000Z' }),
      ],
    });
    const error = await resolveSourceAmi(
      { sourceAmiFilter: { filters: { name: 'img-*' }, owners: ['self'] } },
      options(ec2),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceImageError);
    expect((error as Error).message).toMatch(
      /2 AMIs in us-east-1 matched filters name=img-\*; owners self; exactly one is needed/,
    );
    expect((error as Error).message.indexOf('ami-new')).toBeLessThan((error as Error).message.indexOf('ami-old'));
  });

  it('says nothing matched, naming the query', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(DescribeImagesCommand).resolves({ Images: [] });
    await expect(
      resolveSourceAmi({ sourceAmiFilter: { filters: { name: 'nope-*' }, owners: ['self'] } }, options(ec2)),
    ).rejects.toThrow('No AMI in us-east-1 matched filters name=nope-*; owners self.');
  });

  it('with both id and filter, says when the id exists but fails the filter', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(DescribeImagesCommand, { Owners: ['self'] }).resolves({ Images: [] });
    ec2.mock
      .on(DescribeImagesCommand, { ImageIds: ['ami-source1'] }, true)
      .resolves({ Images: [sourceImageFixture()] });
    const error = await resolveSourceAmi(
      { sourceAmi: 'ami-source1', sourceAmiFilter: { filters: { name: 'ubuntu-*' }, owners: ['self'] } },
      options(ec2),
    ).catch((e: unknown) => e);
    expect((error as Error).message).toContain('ami-source1 exists in us-east-1 but does not satisfy sourceAmiFilter');
    expect(ec2.log()).toEqual([
      [
        'DescribeImages',
        {
          Filters: [
            { Name: 'name', Values: ['ubuntu-*'] },
            { Name: 'image-id', Values: ['ami-source1'] },
          ],
          Owners: ['self'],
          MaxResults: 1000,
        },
      ],
      ['DescribeImages', { ImageIds: ['ami-source1'] }],
    ]);
  });

  it('turns InvalidAMIID.NotFound into a SourceImageError that keeps the cause', async () => {
    const ec2 = mockedEc2();
    ec2.mock
      .on(DescribeImagesCommand)
      .rejects(ec2Error('InvalidAMIID.NotFound', "The image id '[ami-nope]' does not exist"));
    const error = await resolveSourceAmi({ sourceAmi: 'ami-nope' }, options(ec2)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceImageError);
    expect((error as SourceImageError).cause).toBeInstanceOf(AwsError);
    expect((error as Error).message).toContain('ami-nope was not found in us-east-1');
  });

  it('refuses an instance-store image', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(DescribeImagesCommand).resolves({ Images: [sourceImageFixture({ RootDeviceType: 'instance-store' })] });
    await expect(resolveSourceAmi({ sourceAmi: 'ami-source1' }, options(ec2))).rejects.toThrow(
      /is instance-store, not EBS/,
    );
  });

  it('refuses an image whose root device has no snapshot', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(DescribeImagesCommand).resolves({ Images: [sourceImageFixture({ RootDeviceName: '/dev/sda1' })] });
    await expect(resolveSourceAmi({ sourceAmi: 'ami-source1' }, options(ec2))).rejects.toThrow(
      /no EBS mapping with a snapshot for its root device \/dev\/sda1/,
    );
  });

  it('warns when a filter has no owners', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(DescribeImagesCommand).resolves({ Images: [sourceImageFixture()] });
    const opts = options(ec2);
    await resolveSourceAmi({ sourceAmiFilter: { filters: { name: 'x' } } }, opts);
    expect(opts.warnings[0]).toContain('no owners');
  });

  it('needs an id or a filter', async () => {
    const ec2 = mockedEc2();
    await expect(resolveSourceAmi({}, options(ec2))).rejects.toBeInstanceOf(ConfigError);
    expect(ec2.names()).toEqual([]);
  });

  it('rejects a region that does not match the client', async () => {
    const ec2 = mockedEc2('us-east-1');
    await expect(resolveSourceAmi({ sourceAmi: 'ami-1', region: 'eu-west-1' }, options(ec2))).rejects.toThrow(
      /talks to us-east-1, not eu-west-1/,
    );
  });
});
