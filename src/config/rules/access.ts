/**
 * Rules on credentials, regions, the source image and building from scratch.
 */
import { show } from './format.js';
import { type Add, type Loose, asList, asRecord, has, isString, isTrue, nonEmptyList } from './helpers.js';
import { REGION_PATTERN } from './patterns.js';

/** Credentials come in pairs; region names are checked unless skipRegionValidation. */
export function accessRules(c: Loose, add: Add): void {
  if (has(c, 'accessKey') !== has(c, 'secretKey')) {
    const missing = has(c, 'accessKey') ? 'secretKey' : 'accessKey';
    add(
      missing,
      undefined,
      `accessKey and secretKey must both be set or both unset; set ${missing} too, or remove ${missing === 'secretKey' ? 'accessKey' : 'secretKey'} to use the default credential chain`,
    );
  }
  if (has(c, 'token') && !has(c, 'accessKey')) {
    add('token', undefined, 'a session token only works with accessKey and secretKey; set them too, or remove token');
  }
  if (!isTrue(c.skipRegionValidation)) {
    const fix = 'use a region name like "us-east-1" (or set skipRegionValidation for EC2-compatible clouds)';
    if (isString(c.region) && !REGION_PATTERN.test(c.region))
      add('region', c.region, `must be an AWS region name, got ${show(c.region)}; ${fix}`);
    asList(c.amiRegions).forEach((r, i) => {
      if (isString(r) && !REGION_PATTERN.test(r))
        add(`amiRegions.${i}`, r, `must be an AWS region name, got ${show(r)}; ${fix}`);
    });
    for (const r of Object.keys(asRecord(c.regionKmsKeyIds))) {
      if (!REGION_PATTERN.test(r))
        add(`regionKmsKeyIds.${r}`, r, `the key must be an AWS region name, got ${show(r)}; ${fix}`);
    }
  }
}

/** A name and a source are required; a filter needs owners. */
export function sourceRules(c: Loose, add: Add): void {
  const scratch = isTrue(c.fromScratch);
  if (!has(c, 'amiName')) add('amiName', undefined, 'is required: set a unique name, e.g. "my-image {{timestamp}}"');
  if (!scratch && !has(c, 'sourceAmi') && !has(c, 'sourceAmiFilter')) {
    add(
      'sourceAmi',
      undefined,
      'is required: set sourceAmi or sourceAmiFilter (or fromScratch: true to start from an empty volume)',
    );
  }
  if (has(c, 'sourceAmiFilter')) {
    const owners = asRecord(c.sourceAmiFilter).owners;
    if (owners === undefined || (Array.isArray(owners) && owners.length === 0)) {
      add(
        'sourceAmiFilter.owners',
        owners,
        'is required with sourceAmiFilter, so only images of trusted accounts can match; set e.g. ["self"], ["amazon"] or an account id',
      );
    }
  }
}

/** What building from scratch requires, and what custom mappings require otherwise. */
export function scratchRules(c: Loose, add: Add): void {
  const scratch = isTrue(c.fromScratch);
  if (scratch) {
    const requireScratch = (key: string, example: string): void => {
      const value = c[key];
      if (value === undefined || (Array.isArray(value) && value.length === 0))
        add(key, value, `is required with fromScratch; set it, e.g. ${example}`);
    };
    requireScratch('rootVolumeSize', 'rootVolumeSize: 8');
    requireScratch('preMountCommands', 'commands that partition and format {{.Device}}');
    requireScratch('amiVirtualizationType', 'amiVirtualizationType: "hvm"');
    requireScratch('rootDeviceName', 'rootDeviceName: "xvda"');
    requireScratch('amiBlockDeviceMappings', '[{ deviceName: "xvda", deleteOnTermination: true, volumeType: "gp3" }]');
    if (c.rootVolumeType === 'io1')
      add('rootVolumeType', 'io1', 'io1 cannot be used when building from scratch; use "gp3" or "io2"');
    if (has(c, 'rootVolumeInitializationRate'))
      add(
        'rootVolumeInitializationRate',
        c.rootVolumeInitializationRate,
        'cannot be used with fromScratch: a blank volume has no snapshot to initialize from; remove it',
      );
  } else {
    const mappings = nonEmptyList(c.amiBlockDeviceMappings);
    if (mappings && !has(c, 'rootDeviceName')) {
      add(
        'rootDeviceName',
        undefined,
        'is required with amiBlockDeviceMappings: name the mapping that receives the new snapshot, e.g. "/dev/xvda"',
      );
    }
    if (has(c, 'rootDeviceName') && !mappings) {
      add(
        'amiBlockDeviceMappings',
        c.amiBlockDeviceMappings,
        'is required with rootDeviceName (it only applies to custom mappings); add the mappings or remove rootDeviceName',
      );
    }
    if (mappings && has(c, 'rootDeviceName') && !has(c, 'rootVolumeSize')) {
      add(
        'rootVolumeSize',
        undefined,
        "is required with amiBlockDeviceMappings (they replace the source's, size included); set the root size in GiB",
      );
    }
  }
}
