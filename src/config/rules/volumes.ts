/**
 * EBS volume rules: limits per volume type, block device mappings, the root volume.
 */
import type { VolumeType } from '../types.js';
import { show } from './format.js';
import { type Add, type Loose, asList, asRecord, has, isInt, isString, isTrue } from './helpers.js';

/**
 * EBS limits per volume type, from the EC2 API reference (EbsBlockDevice / CreateVolume, as shipped
 * in @aws-sdk/client-ec2 3.11xx): sizes in GiB; IOPS range and maximum IOPS per GiB.
 */
export const VOLUME_LIMITS: Readonly<
  Record<VolumeType, { size: [number, number]; iops?: [number, number]; iopsPerGiB?: number; boot: boolean }>
> = {
  standard: { size: [1, 1024], boot: true },
  gp2: { size: [1, 16_384], boot: true },
  gp3: { size: [1, 65_536], iops: [3000, 80_000], iopsPerGiB: 500, boot: true },
  io1: { size: [4, 16_384], iops: [100, 64_000], iopsPerGiB: 50, boot: true },
  io2: { size: [4, 65_536], iops: [100, 256_000], iopsPerGiB: 1000, boot: true },
  st1: { size: [125, 16_384], boot: false },
  sc1: { size: [125, 16_384], boot: false },
};
export const VOLUME_TYPES = Object.keys(VOLUME_LIMITS) as VolumeType[];
export const THROUGHPUT: [number, number] = [125, 2000];
/** CreateVolume VolumeInitializationRate, MiB/s (EC2 API reference). */
export const VOLUME_INITIALIZATION_RATE: [number, number] = [100, 300];

/** IOPS / throughput / size rules for one volume; `at(field)` gives the issue path of a field. */
function volumeRules(
  add: Add,
  at: (field: 'iops' | 'throughput' | 'size' | 'type') => string,
  vol: { type: unknown; iops: unknown; throughput: unknown; size: unknown; typeKnown: boolean; requireIops: boolean },
): void {
  const type = isString(vol.type) && Object.hasOwn(VOLUME_LIMITS, vol.type) ? (vol.type as VolumeType) : undefined;
  const limits = type ? VOLUME_LIMITS[type] : undefined;
  const size = isInt(vol.size) ? vol.size : undefined;
  if (isInt(vol.iops)) {
    if (!type) {
      if (vol.typeKnown)
        add(
          at('iops'),
          vol.iops,
          'IOPS need a volume type that takes them; set the volume type to "gp3", "io1" or "io2"',
        );
    } else if (!limits?.iops) {
      add(at('iops'), vol.iops, `${type} volumes do not take IOPS; use "gp3", "io1" or "io2", or remove the IOPS`);
    } else {
      const [min, max] = limits.iops;
      if (vol.iops < min || vol.iops > max)
        add(at('iops'), vol.iops, `${type} IOPS must be from ${min} to ${max}, got ${vol.iops}`);
      else if (size !== undefined && limits.iopsPerGiB && vol.iops > size * limits.iopsPerGiB) {
        add(
          at('iops'),
          vol.iops,
          `${type} allows at most ${limits.iopsPerGiB} IOPS per GiB: ${vol.iops} IOPS needs at least ${Math.ceil(vol.iops / limits.iopsPerGiB)} GiB, the size is ${size}; raise the size or lower the IOPS`,
        );
      }
    }
  } else if (vol.requireIops && (type === 'io1' || type === 'io2')) {
    add(at('iops'), vol.iops, `${type} volumes need IOPS; set them (from ${limits!.iops![0]} to ${limits!.iops![1]})`);
  }
  if (vol.throughput !== undefined && type !== 'gp3' && (type !== undefined || vol.typeKnown)) {
    add(
      at('throughput'),
      vol.throughput,
      `throughput applies to gp3 volumes only, the type is ${type ?? 'unset'}; set the volume type to "gp3" or remove the throughput`,
    );
  }
  if (size !== undefined && limits && (size < limits.size[0] || size > limits.size[1])) {
    add(at('size'), size, `${type} volumes must be from ${limits.size[0]} to ${limits.size[1]} GiB, got ${size}`);
  }
}

/**
/** Block device mappings: required fields, duplicates, EBS fields against noDevice/virtualName, the root mapping. */
export function mappingRules(c: Loose, add: Add): void {
  const rootName = isString(c.rootDeviceName) ? c.rootDeviceName : undefined;
  const mappings = asList(c.amiBlockDeviceMappings);
  const seen = new Map<string, number>();
  mappings.forEach((raw, i) => {
    const m = asRecord(raw);
    const p = `amiBlockDeviceMappings.${i}`;
    if (!has(m, 'deviceName'))
      add(`${p}.deviceName`, undefined, 'is required: the device name exposed to the instance, e.g. "/dev/sdb"');
    if (isString(m.deviceName)) {
      const first = seen.get(m.deviceName);
      if (first !== undefined)
        add(
          `${p}.deviceName`,
          m.deviceName,
          `duplicates amiBlockDeviceMappings.${first}; each device may be mapped once`,
        );
      else seen.set(m.deviceName, i);
    }
    const isRoot = rootName !== undefined && m.deviceName === rootName;
    const ebsFields = [
      'volumeSize',
      'volumeType',
      'iops',
      'throughput',
      'snapshotId',
      'encrypted',
      'kmsKeyId',
      'deleteOnTermination',
    ].filter((f) => has(m, f));
    if (isTrue(m.noDevice) && (ebsFields.length > 0 || has(m, 'virtualName'))) {
      add(
        `${p}.noDevice`,
        true,
        `suppresses the device, so ${[...ebsFields, ...(has(m, 'virtualName') ? ['virtualName'] : [])].join(', ')} cannot be set with it; remove them or noDevice`,
      );
    }
    if (has(m, 'virtualName') && ebsFields.length > 0) {
      add(
        `${p}.virtualName`,
        m.virtualName,
        `names an instance store volume, which has no ${ebsFields.join(', ')}; remove them or virtualName`,
      );
    }
    if (!isTrue(m.noDevice) && !has(m, 'virtualName') && !has(m, 'snapshotId') && !has(m, 'volumeSize') && !isRoot) {
      add(`${p}.volumeSize`, undefined, 'is required unless snapshotId is set; set the size in GiB');
    }
    // RegisterImage takes no KMS key in a mapping (EC2 accepts one only when launching).
    if (has(m, 'kmsKeyId'))
      add(
        `${p}.kmsKeyId`,
        m.kmsKeyId,
        `got ${show(m.kmsKeyId)}, but RegisterImage does not accept a KMS key (id, alias or ARN) in a block device mapping; remove it (encrypted: true alone uses the account's default EBS key), or encrypt the AMI with your key through the copy: encryptBoot: true and the top-level kmsKeyId (or set the key in the launch's block device mappings)`,
      );
    if (isRoot && (m.volumeType === 'st1' || m.volumeType === 'sc1'))
      add(
        `${p}.volumeType`,
        m.volumeType,
        `the root device cannot be ${m.volumeType}; use "gp3", "gp2", "io1" or "io2"`,
      );
    volumeRules(add, (f) => `${p}.${f === 'size' ? 'volumeSize' : f === 'type' ? 'volumeType' : f}`, {
      type: m.volumeType,
      iops: m.iops,
      throughput: m.throughput,
      size: isRoot && m.volumeSize === undefined ? undefined : m.volumeSize,
      typeKnown: true,
      requireIops: true,
    });
  });
  if (rootName !== undefined && mappings.length > 0 && !seen.has(rootName)) {
    add(
      'rootDeviceName',
      rootName,
      `must equal the deviceName of one of amiBlockDeviceMappings (exactly), got ${show(rootName)}; mapped: ${[...seen.keys()].map((k) => show(k)).join(', ') || 'none'}`,
    );
  }
}

/** The root volume: size, type, IOPS and throughput, its KMS key. */
export function rootVolumeRules(c: Loose, add: Add): void {
  const scratch = isTrue(c.fromScratch);
  const rootType = c.rootVolumeType ?? (scratch ? 'gp2' : undefined);
  volumeRules(
    add,
    (f) =>
      f === 'size'
        ? 'rootVolumeSize'
        : f === 'type'
          ? 'rootVolumeType'
          : f === 'iops'
            ? 'rootVolumeIops'
            : 'rootVolumeThroughput',
    {
      type: rootType,
      iops: c.rootVolumeIops,
      throughput: c.rootVolumeThroughput,
      size: c.rootVolumeSize,
      typeKnown: rootType !== undefined,
      // io1 from scratch has its own issue above.
      requireIops: scratch && rootType !== 'io1',
    },
  );
  if (has(c, 'rootVolumeKmsKeyId') && c.rootVolumeEncryptBoot !== true) {
    add(
      'rootVolumeKmsKeyId',
      c.rootVolumeKmsKeyId,
      'needs rootVolumeEncryptBoot: true (EC2 rejects a key for an unencrypted volume); set it, or remove rootVolumeKmsKeyId',
    );
  }
}
