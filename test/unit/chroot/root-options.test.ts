import { describe, expect, it } from 'vitest';
import { withXfsNouuid } from '../../../src/chroot/root-options.js';

describe('withXfsNouuid', () => {
  it('adds nouuid to an XFS root mount', () => {
    expect(withXfsNouuid('xfs', [])).toEqual(['nouuid']);
    expect(withXfsNouuid('xfs', ['noatime'])).toEqual(['noatime', 'nouuid']);
  });

  it('keeps a nouuid the user set, alone or among comma-separated options', () => {
    expect(withXfsNouuid('xfs', ['nouuid'])).toEqual(['nouuid']);
    expect(withXfsNouuid('xfs', ['noatime,nouuid'])).toEqual(['noatime,nouuid']);
  });

  it('leaves other filesystems, and unknown ones, as they are', () => {
    expect(withXfsNouuid('ext4', ['noatime'])).toEqual(['noatime']);
    expect(withXfsNouuid('btrfs', [])).toEqual([]);
    expect(withXfsNouuid(undefined, [])).toEqual([]);
  });
});
