import { describe, expect, it } from 'vitest';
import { mountsUnder, parseMountInfo } from '../../../src/host/mounts.js';

const TABLE = [
  '22 27 0:21 / /proc rw,relatime - proc proc rw',
  '27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard',
  '50 27 7:1 / /mnt/ami-chroot/loop0p1 rw,relatime - ext4 /dev/loop0p1 rw',
  '51 50 0:40 / /mnt/ami-chroot/loop0p1/proc rw,relatime - proc proc rw',
  '52 50 0:6 / /mnt/ami-chroot/loop0p1/dev rw,relatime - devtmpfs devtmpfs rw,size=1k',
  '53 52 0:41 / /mnt/ami-chroot/loop0p1/dev/pts rw,relatime - devpts devpts rw,gid=5,mode=620,ptmxmode=666',
  '54 27 7:2 / /mnt/ami-chroot/loop0p10 rw,relatime - ext4 /dev/loop0p10 rw',
  '55 27 0:42 / /mnt/with\\040space\\011tab rw shared:7 master:3 - tmpfs my\\134src rw',
  '56 51 0:43 / /mnt/ami-chroot/loop0p1/proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw',
  '57 50 0:44 / /mnt/ami-chroot/loop0p1/dev rw - tmpfs overmount rw',
  'garbage line',
  '',
].join('\n');

describe('parseMountInfo', () => {
  it('parses every field, propagation tags included', () => {
    const entries = parseMountInfo(TABLE);
    expect(entries).toHaveLength(10);
    expect(entries[1]).toEqual({
      id: 27,
      parentId: 1,
      majorMinor: '254:0',
      root: '/',
      mountPoint: '/',
      options: 'rw,relatime',
      optionalFields: ['shared:1'],
      fsType: 'ext4',
      source: '/dev/vda',
      superOptions: 'rw,discard',
    });
  });

  it('decodes the kernel’s octal escapes in paths', () => {
    const e = parseMountInfo(TABLE).find((m) => m.id === 55)!;
    expect(e.mountPoint).toBe('/mnt/with space\ttab');
    expect(e.source).toBe('my\\src');
    expect(e.optionalFields).toEqual(['shared:7', 'master:3']);
  });
});

describe('mountsUnder', () => {
  it('matches exact paths on a / boundary, children before parents, stacked mounts newest first', () => {
    const under = mountsUnder(parseMountInfo(TABLE), '/mnt/ami-chroot/loop0p1').map((m) => m.mountPoint);
    expect(under).toEqual([
      '/mnt/ami-chroot/loop0p1/dev',
      '/mnt/ami-chroot/loop0p1/proc/sys/fs/binfmt_misc',
      '/mnt/ami-chroot/loop0p1/dev/pts',
      '/mnt/ami-chroot/loop0p1/dev',
      '/mnt/ami-chroot/loop0p1/proc',
      '/mnt/ami-chroot/loop0p1',
    ]);
    // loop0p10 shares the prefix but is another mount.
    expect(under).not.toContain('/mnt/ami-chroot/loop0p10');
  });

  it('ignores a trailing slash on the root', () => {
    expect(mountsUnder(parseMountInfo(TABLE), '/mnt/ami-chroot/loop0p10/').map((m) => m.mountPoint)).toEqual([
      '/mnt/ami-chroot/loop0p10',
    ]);
  });
});
