import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../src/config/resolve.js';
import { mountPartitionFor } from '../../../src/pipeline/mount-config.js';

const BASE = { region: 'us-east-1', sourceAmi: 'ami-0123456789abcdef0', amiName: 'unit' };

describe('mountPartitionFor', () => {
  it('mounts the whole device of a paravirtual image, as Packer does', () => {
    expect(mountPartitionFor(undefined, 'paravirtual')).toBe('0');
  });

  it('mounts partition 1 of an HVM image, and when the type is unknown (local images)', () => {
    expect(mountPartitionFor(undefined, 'hvm')).toBe('1');
    expect(mountPartitionFor(undefined, undefined)).toBe('1');
  });

  it('keeps a partition the user gave, whatever the type', () => {
    expect(mountPartitionFor('2', 'paravirtual')).toBe('2');
    expect(mountPartitionFor('0', 'hvm')).toBe('0');
  });

  it('gets an unset mountPartition from the resolved config, and a set one as given', () => {
    const unset = resolveConfig(BASE, {}).mountPartition;
    expect(mountPartitionFor(unset, 'paravirtual')).toBe('0');
    expect(mountPartitionFor(unset, 'hvm')).toBe('1');
    const given = resolveConfig({ ...BASE, mountPartition: 1 }, {}).mountPartition;
    expect(mountPartitionFor(given, 'paravirtual')).toBe('1');
  });
});
