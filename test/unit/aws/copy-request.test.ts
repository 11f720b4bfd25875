import { describe, expect, it } from 'vitest';
import { copyImageRequest, copyKmsKeyId } from '../../../src/aws/copy-request.js';

const base = { sourceImageId: 'ami-src', sourceRegion: 'us-east-1', name: 'web' } as const;

describe('copyImageRequest', () => {
  it('carries only the image, the region and the name when nothing else is set', () => {
    expect(copyImageRequest(base, 'eu-west-1')).toEqual({
      SourceImageId: 'ami-src',
      SourceRegion: 'us-east-1',
      Name: 'web',
    });
  });

  it('adds description, encryption, the region key, tags on create and the time-based duration', () => {
    expect(
      copyImageRequest(
        {
          ...base,
          description: 'd',
          encryptBoot: false,
          kmsKeyId: 'alias/images',
          tags: { team: 'infra', kind: 'image' },
          snapshotTags: { kind: 'root' },
          buildId: 'b-1',
          snapshotCopyDurationMinutes: 30,
        },
        'eu-west-1',
      ),
    ).toEqual({
      SourceImageId: 'ami-src',
      SourceRegion: 'us-east-1',
      Name: 'web',
      Description: 'd',
      Encrypted: false,
      KmsKeyId: 'alias/images',
      TagSpecifications: [
        {
          ResourceType: 'image',
          Tags: [
            { Key: 'team', Value: 'infra' },
            { Key: 'kind', Value: 'image' },
            { Key: 'ami-chroot:build-id', Value: 'b-1' },
            { Key: 'ami-chroot:created-by', Value: 'ami-chroot' },
          ],
        },
        {
          ResourceType: 'snapshot',
          Tags: [
            { Key: 'team', Value: 'infra' },
            { Key: 'kind', Value: 'root' },
            { Key: 'ami-chroot:build-id', Value: 'b-1' },
            { Key: 'ami-chroot:created-by', Value: 'ami-chroot' },
          ],
        },
      ],
      SnapshotCopyCompletionDurationMinutes: 30,
    });
  });

  it('treats an empty description and a zero duration as none', () => {
    expect(copyImageRequest({ ...base, description: '', snapshotCopyDurationMinutes: 0 }, 'eu-west-1')).toEqual({
      SourceImageId: 'ami-src',
      SourceRegion: 'us-east-1',
      Name: 'web',
    });
  });
});

describe('copyKmsKeyId', () => {
  it("uses the region's own entry first, '' meaning the region's default key", () => {
    const input = { ...base, kmsKeyId: 'alias/k', regionKmsKeyIds: { 'eu-west-1': 'key-eu', 'ap-south-1': '' } };
    expect(copyKmsKeyId(input, 'eu-west-1')).toBe('key-eu');
    expect(copyKmsKeyId(input, 'ap-south-1')).toBeUndefined();
  });

  it('uses kmsKeyId in the source region as it is, elsewhere only a multi-region key or an alias', () => {
    const key = '0123abcd-0000-0000-0000-000000000000';
    expect(copyKmsKeyId({ ...base, kmsKeyId: key }, 'us-east-1')).toBe(key);
    expect(copyKmsKeyId({ ...base, kmsKeyId: key }, 'eu-west-1')).toBeUndefined();
    expect(copyKmsKeyId({ ...base, kmsKeyId: 'mrk-0123abcd' }, 'eu-west-1')).toBe('mrk-0123abcd');
    expect(copyKmsKeyId({ ...base, kmsKeyId: 'alias/images' }, 'eu-west-1')).toBe('alias/images');
    expect(copyKmsKeyId(base, 'eu-west-1')).toBeUndefined();
  });
});
