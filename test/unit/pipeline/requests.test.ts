import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../src/config/resolve.js';
import { createTemplateClock } from '../../../src/config/templates.js';
import type { BuildConfig } from '../../../src/config/types.js';
import { toSourceImage } from '../../../src/aws/source-image.js';
import {
  awsAccessOf,
  blockDeviceMappingsOf,
  copyInput,
  registerInput,
  renderRecord,
  sharingOf,
  sourceTemplateData,
  workVolumeInput,
} from '../../../src/pipeline/requests.js';
import type { ImageRequestData } from '../../../src/pipeline/requests.js';

const SOURCE = toSourceImage(
  {
    ImageId: 'ami-0123456789abcdef0',
    Name: 'debian-12',
    OwnerId: '136693071363',
    ImageOwnerAlias: 'amazon',
    CreationDate: '2024-01-02T03:04:05.000Z',
    Architecture: 'arm64',
    VirtualizationType: 'hvm',
    RootDeviceType: 'ebs',
    RootDeviceName: '/dev/xvda',
    BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-1', VolumeSize: 8, VolumeType: 'gp3' } }],
    Tags: [{ Key: 'os', Value: 'debian' }],
  },
  'eu-west-1',
);
const BASE: BuildConfig = { amiName: 'web', sourceAmi: SOURCE.imageId };
const resolve = (extra: Partial<BuildConfig> = {}) => resolveConfig({ ...BASE, ...extra }, {});
const request = (extra: Partial<ImageRequestData> = {}): ImageRequestData => ({
  region: 'eu-west-1',
  name: 'web',
  description: undefined,
  tags: { Name: 'web' },
  snapshotTags: { Snap: 'yes' },
  copyRegions: [],
  ...extra,
});

describe('sourceTemplateData', () => {
  it('carries Packer build data of the source', () => {
    expect(sourceTemplateData('eu-west-1', SOURCE)).toEqual({
      BuildRegion: 'eu-west-1',
      SourceAMI: 'ami-0123456789abcdef0',
      SourceAMIName: 'debian-12',
      SourceAMICreationDate: '2024-01-02T03:04:05.000Z',
      SourceAMIOwner: '136693071363',
      SourceAMIOwnerName: 'amazon',
      SourceAMITags: { os: 'debian' },
    });
  });

  it('is empty strings from scratch, never undefined', () => {
    const data = sourceTemplateData('us-east-1', undefined);
    expect(data.SourceAMI).toBe('');
    expect(data.SourceAMITags).toEqual({});
  });
});

describe('renderRecord', () => {
  it('renders every tag template with the build data', () => {
    const cfg = resolve({ tags: { Name: '{{ .SourceAMIName }}-x', Region: '{{ .BuildRegion }}' } });
    expect(renderRecord(cfg.tags, sourceTemplateData('eu-west-1', SOURCE), createTemplateClock())).toEqual({
      Name: 'debian-12-x',
      Region: 'eu-west-1',
    });
  });
});

describe('awsAccessOf', () => {
  it('maps static credentials and leaves unset options absent', () => {
    const access = awsAccessOf(resolve({ accessKey: 'AKID', secretKey: 'shh', maxRetries: 3 }), 'eu-west-1');
    expect(access).toMatchObject({ region: 'eu-west-1', accessKey: 'AKID', secretKey: 'shh', maxRetries: 3 });
    expect(access).not.toHaveProperty('token');
    expect(access).not.toHaveProperty('profile');
  });
});

describe('workVolumeInput', () => {
  const at = { availabilityZone: 'eu-west-1a', region: 'eu-west-1', source: SOURCE, tags: { a: 'b' } };

  it('takes the source and keeps its type unless told', () => {
    const input = workVolumeInput(resolve(), at);
    expect(input).toMatchObject({ availabilityZone: 'eu-west-1a', source: SOURCE, tags: { a: 'b' } });
    expect(input.volumeType).toBeUndefined();
  });

  it('passes rootVolumeInitializationRate to the work volume', () => {
    expect(workVolumeInput(resolve({ rootVolumeInitializationRate: 250 }), at).initializationRate).toBe(250);
    expect(workVolumeInput(resolve(), at)).not.toHaveProperty('initializationRate');
  });

  it('defaults to gp2 from scratch and passes size, type, encryption', () => {
    const scratch = resolveConfig(
      {
        amiName: 'scratch',
        fromScratch: true,
        amiVirtualizationType: 'hvm',
        rootVolumeSize: 8,
        rootDeviceName: '/dev/xvda',
        preMountCommands: ['mkfs.ext4 {{.Device}}'],
        amiBlockDeviceMappings: [{ deviceName: '/dev/xvda' }],
      },
      {},
    );
    expect(workVolumeInput(scratch, { ...at, source: undefined })).toMatchObject({ size: 8, volumeType: 'gp2' });
    const enc = workVolumeInput(
      resolve({ rootVolumeType: 'gp3', rootVolumeEncryptBoot: true, rootVolumeKmsKeyId: 'alias/k' }),
      at,
    );
    expect(enc).toMatchObject({ volumeType: 'gp3', encrypted: true, kmsKeyId: 'alias/k' });
  });
});

describe('blockDeviceMappingsOf', () => {
  it('keeps only each kind of entry its own fields', () => {
    expect(
      blockDeviceMappingsOf([
        { deviceName: '/dev/xvda', volumeSize: 10, volumeType: 'gp3', deleteOnTermination: true },
        { deviceName: '/dev/xvdb', virtualName: 'ephemeral0' },
        { deviceName: '/dev/xvdc', noDevice: true },
      ]),
    ).toEqual([
      { DeviceName: '/dev/xvda', Ebs: { VolumeSize: 10, VolumeType: 'gp3', DeleteOnTermination: true } },
      { DeviceName: '/dev/xvdb', VirtualName: 'ephemeral0' },
      { DeviceName: '/dev/xvdc', NoDevice: '' },
    ]);
    expect(blockDeviceMappingsOf(undefined)).toBeUndefined();
  });
});

describe('sharingOf', () => {
  it('leaves deregistration protection out: buildAmi applies it last, once every region succeeded', () => {
    expect(sharingOf(resolve())).not.toHaveProperty('deregistrationProtection');
    const on = sharingOf(resolve({ amiUsers: ['123456789012'], deregistrationProtection: { enabled: true } }));
    expect(on).toMatchObject({ amiUsers: ['123456789012'] });
    expect(on).not.toHaveProperty('deregistrationProtection');
  });
});

describe('registerInput', () => {
  const at = { volumeId: 'vol-1', source: SOURCE, registerName: 'web' };

  it('registers under the name with sharing, tags and the build id', () => {
    const cfg = resolve({
      amiUsers: ['123456789012'],
      encryptBoot: true,
      kmsKeyId: 'alias/shared',
      forceDeregister: true,
    });
    const input = registerInput(cfg, request({ copyRegions: ['us-east-1'] }), at);
    expect(input).toMatchObject({
      volumeId: 'vol-1',
      name: 'web',
      source: SOURCE,
      amiUsers: ['123456789012'],
      encryptBoot: true,
      forceDeregister: true,
      amiRegions: ['us-east-1'],
      tags: { Name: 'web' },
      snapshotTags: { Snap: 'yes' },
      buildId: cfg.buildId,
    });
    // The source decides the architecture unless built from scratch.
    expect(input).not.toHaveProperty('architecture');
  });

  it("passes snapshotCopyDurationMinutes to the build region's encrypting copy", () => {
    const cfg = resolve({ encryptBoot: true, snapshotCopyDurationMinutes: 45 });
    expect(registerInput(cfg, request(), at)).toMatchObject({
      encryptBoot: true,
      snapshotCopyDurationMinutes: 45,
    });
  });

  it('makes the skipSaveBuildRegion image a temporary one: no sharing, encryption or forced deregistration', () => {
    const cfg = resolve({
      skipSaveBuildRegion: true,
      amiRegions: ['us-east-1'],
      amiUsers: ['123456789012'],
      encryptBoot: true,
      kmsKeyId: 'alias/shared',
      forceDeregister: true,
    });
    const input = registerInput(cfg, request(), { ...at, registerName: 'ami-chroot-intermediary-1' });
    expect(input.name).toBe('ami-chroot-intermediary-1');
    expect(input.forceDeregister).toBe(false);
    expect(input).not.toHaveProperty('amiUsers');
    expect(input).not.toHaveProperty('encryptBoot');
  });

  it('lets a root mapping with its own type win over rootVolumeType', () => {
    const typed = resolve({
      rootVolumeType: 'io2',
      rootVolumeIops: 3000,
      rootVolumeSize: 10,
      rootDeviceName: '/dev/xvda',
      amiBlockDeviceMappings: [{ deviceName: '/dev/xvda', volumeType: 'gp3' }],
    });
    expect(registerInput(typed, request(), at)).not.toHaveProperty('rootVolumeType');
    expect(registerInput(resolve({ rootVolumeType: 'gp3' }), request(), at).rootVolumeType).toBe('gp3');
  });

  it("uses the build region's own KMS key before the general one", () => {
    const cfg = resolve({
      encryptBoot: true,
      kmsKeyId: 'alias/general',
      amiRegions: ['eu-west-1', 'us-east-1'],
      regionKmsKeyIds: { 'eu-west-1': 'alias/regional', 'us-east-1': 'alias/east' },
    });
    expect(registerInput(cfg, request(), at).kmsKeyId).toBe('alias/regional');
  });
});

describe('copyInput', () => {
  it('copies under the real name with encryption, sharing and the copy duration', () => {
    const cfg = resolve({
      amiRegions: ['us-east-1'],
      encryptBoot: true,
      kmsKeyId: 'alias/k',
      amiGroups: ['all'],
      snapshotCopyDurationMinutes: 30,
    });
    const input = copyInput(cfg, request({ copyRegions: ['us-east-1'], description: 'd' }), 'ami-1');
    expect(input).toMatchObject({
      sourceImageId: 'ami-1',
      sourceRegion: 'eu-west-1',
      regions: ['us-east-1'],
      name: 'web',
      description: 'd',
      encryptBoot: true,
      kmsKeyId: 'alias/k',
      amiGroups: ['all'],
      snapshotCopyDurationMinutes: 30,
      skipRegionValidation: true,
    });
  });
});
