/**
 * Encryption and sharing: keys need encryption, regions need keys, shared images need customer keys.
 */
import { type Add, type Loose, asList, asRecord, has, isString, isTrue, nonEmptyList } from './helpers.js';
import { DEFAULT_EBS_ALIASES } from './patterns.js';

/** Encryption keys and sharing with other accounts. */
export function sharingRules(c: Loose, add: Add): void {
  const regionKeys = asRecord(c.regionKmsKeyIds);
  const regionKeyNames = Object.keys(regionKeys);
  const amiRegions = asList(c.amiRegions).filter(isString);
  const encrypt = isTrue(c.encryptBoot);
  if (has(c, 'kmsKeyId') && !encrypt)
    add('kmsKeyId', c.kmsKeyId, 'needs encryptBoot: true; set it, or remove kmsKeyId');
  if (!encrypt && regionKeyNames.some((r) => regionKeys[r] !== '')) {
    add('regionKmsKeyIds', regionKeys, 'needs encryptBoot: true when any key is set; set it, or remove the keys');
  }
  if (regionKeyNames.length > 0) {
    asList(c.amiRegions).forEach((r, i) => {
      if (isString(r) && !Object.hasOwn(regionKeys, r))
        add(
          `amiRegions.${i}`,
          r,
          `has no entry in regionKmsKeyIds; add ${JSON.stringify(r)} (use "" for the region's default key) or remove the region`,
        );
    });
    for (const r of regionKeyNames) {
      if (!amiRegions.includes(r))
        add(
          `regionKmsKeyIds.${r}`,
          regionKeys[r],
          `region ${JSON.stringify(r)} is not in amiRegions; add it there or remove this key`,
        );
    }
  }
  const isDefaultKey = (k: unknown): boolean => !isString(k) || k === '' || DEFAULT_EBS_ALIASES.has(k);
  const sharedAmi = nonEmptyList(c.amiUsers) || nonEmptyList(c.amiOrgArns) || nonEmptyList(c.amiOuArns);
  if (sharedAmi && encrypt && isDefaultKey(c.kmsKeyId)) {
    add(
      'kmsKeyId',
      c.kmsKeyId,
      'cannot share an AMI encrypted with the default KMS key (other accounts cannot use it); set kmsKeyId to a customer managed key shared with them, or stop sharing',
    );
  }
  if (sharedAmi) {
    for (const r of regionKeyNames) {
      if (isDefaultKey(regionKeys[r]))
        add(
          `regionKmsKeyIds.${r}`,
          regionKeys[r],
          `cannot share an AMI encrypted with the default KMS key in ${r}; set a customer managed key`,
        );
    }
    if (
      isTrue(c.rootVolumeEncryptBoot) &&
      isDefaultKey(c.rootVolumeKmsKeyId) &&
      !(encrypt && !isDefaultKey(c.kmsKeyId))
    ) {
      add(
        'rootVolumeKmsKeyId',
        c.rootVolumeKmsKeyId,
        'cannot share an AMI whose volume is encrypted with the default KMS key; set rootVolumeKmsKeyId to a customer managed key shared with the accounts',
      );
    }
  }
  if (nonEmptyList(c.snapshotUsers)) {
    if (encrypt && isDefaultKey(c.kmsKeyId) && regionKeyNames.length === 0) {
      add(
        'snapshotUsers',
        c.snapshotUsers,
        'cannot share snapshots encrypted with the default KMS key (see https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ebs-modifying-snapshot-permissions.html); set kmsKeyId to a customer managed key',
      );
    }
    for (const r of regionKeyNames) {
      if (isDefaultKey(regionKeys[r]))
        add(
          `regionKmsKeyIds.${r}`,
          regionKeys[r],
          `cannot share snapshots encrypted with the default KMS key in ${r}; set a customer managed key`,
        );
    }
  }
  if (isTrue(c.skipSaveBuildRegion) && amiRegions.length === 0) {
    add(
      'skipSaveBuildRegion',
      true,
      'with no amiRegions no AMI would be kept anywhere; add amiRegions or remove skipSaveBuildRegion',
    );
  }
}
