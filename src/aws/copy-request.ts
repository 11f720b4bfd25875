/**
 * The CopyImage request of a copy, pure: the region copies, the encrypting copy and the plan's
 * listing build it here, so they cannot drift apart.
 */
import type { CopyImageRequest } from '@aws-sdk/client-ec2';
import { defined } from '../internal/defined.js';
import { tagList, tagSpecs } from './common.js';
import type { CopyToRegionsInput } from './regions.js';

/**
 * What one CopyImage request is made of: the fields of {@link CopyToRegionsInput} it uses.
 * @internal
 */
export type CopyImageRequestInput = Pick<
  CopyToRegionsInput,
  | 'sourceImageId'
  | 'sourceRegion'
  | 'name'
  | 'description'
  | 'encryptBoot'
  | 'kmsKeyId'
  | 'regionKmsKeyIds'
  | 'tags'
  | 'snapshotTags'
  | 'buildId'
  | 'snapshotCopyDurationMinutes'
>;

/**
 * The KMS key of a copy into `region`: its own `regionKmsKeyIds` entry (`''`: the region's
 * default key); in the source region, `kmsKeyId`; elsewhere `kmsKeyId` only when it names the
 * same key in every region (a multi-region key id or an alias), else none (the account's default
 * key, Packer's rule).
 * @internal
 */
export function copyKmsKeyId(
  input: Pick<CopyToRegionsInput, 'sourceRegion' | 'kmsKeyId' | 'regionKmsKeyIds'>,
  region: string,
): string | undefined {
  const own = input.regionKmsKeyIds?.[region];
  if (own !== undefined) return own || undefined;
  const key = input.kmsKeyId;
  if (!key) return undefined;
  if (region === input.sourceRegion) return key;
  return /^mrk-[0-9a-f]+$/.test(key) || key.startsWith('alias/') ? key : undefined;
}

/**
 * The CopyImage request that copies `input.sourceImageId` into `region`: name, description,
 * encryption and key, the image and snapshot tags (tagged on create, build id included), and a
 * time-based copy's duration.
 * @internal
 */
export function copyImageRequest(input: CopyImageRequestInput, region: string): CopyImageRequest {
  const imageTags = tagList(input.tags, input.buildId);
  const snapshotTags = tagList({ ...input.tags, ...input.snapshotTags }, input.buildId);
  return {
    SourceImageId: input.sourceImageId,
    SourceRegion: input.sourceRegion,
    Name: input.name,
    ...defined({
      // An empty description or duration means none, as in Packer.
      Description: input.description || undefined,
      Encrypted: input.encryptBoot,
      KmsKeyId: copyKmsKeyId(input, region),
      TagSpecifications: tagSpecs({ type: 'image', tags: imageTags }, { type: 'snapshot', tags: snapshotTags }),
      SnapshotCopyCompletionDurationMinutes: input.snapshotCopyDurationMinutes || undefined,
    }),
  };
}
