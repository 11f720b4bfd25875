import { describe, expect, it } from 'vitest';
import { checkJournal, isSystemPath } from '../../../src/host/journal-check.js';
import type { JournalData, JournalEntry } from '../../../src/host/journal.js';

function journal(entries: readonly unknown[]): JournalData {
  return { version: 1, pid: 1, startTime: 1, createdAt: '', label: 'mount x', entries: entries as JournalEntry[] };
}

const root = { type: 'mount', target: '/mnt/ami-chroot/xvdf', id: 42, majorMinor: '259:3' };

describe('checkJournal', () => {
  it('accepts a build’s own journal and sorts it by kind', () => {
    const plan = checkJournal(
      journal([
        { type: 'dir', path: '/mnt/ami-chroot' },
        { type: 'dir', path: '/mnt/ami-chroot/xvdf' },
        root,
        { type: 'mount', target: '/mnt/ami-chroot/xvdf/proc' },
        { type: 'file', root: root.target, path: '/etc/resolv.conf', backup: '/etc/resolv.conf.ami-chroot-orig' },
      ]),
    );
    expect(plan).toMatchObject({
      root,
      dirs: ['/mnt/ami-chroot/xvdf', '/mnt/ami-chroot'],
      files: [{ path: '/etc/resolv.conf' }],
    });
  });

  it.each([
    ['a system mount point', [{ type: 'mount', target: '/sys' }], '/sys'],
    ['anything under /proc', [{ type: 'mount', target: '/proc/sys/fs/binfmt_misc' }], 'binfmt_misc'],
    ['a relative or unnormalized path', [{ type: 'mount', target: '/mnt/x/../../etc' }], 'mount entry'],
    ['two mount roots', [root, { type: 'mount', target: '/srv/other' }], 'more than one mount root'],
    ['a file in another root', [root, { type: 'file', root: '/srv/other', path: '/etc/passwd' }], 'not in the build'],
    [
      'a backup that is not the file’s own',
      [root, { type: 'file', root: root.target, path: '/etc/x', backup: '/etc/shadow' }],
      'malformed',
    ],
    ['a dir that is no parent of the root', [root, { type: 'dir', path: '/home/user' }], 'not the mount root'],
    ['a work file that is not .partial', [{ type: 'work-file', path: '/data/disk.raw' }], 'no .partial'],
    ['an unknown entry', [{ type: 'exec', command: 'rm -rf /' }], 'unknown type'],
  ])('refuses %s', (_what, entries, why) => {
    expect(checkJournal(journal(entries))).toEqual(expect.stringContaining(why));
  });

  it('knows the system paths', () => {
    for (const p of ['/', '/proc', '/sys', '/dev', '/run', '/dev/pts', '/sys/fs/cgroup'])
      expect(isSystemPath(p)).toBe(true);
    for (const p of ['/mnt/ami-chroot/xvdf', '/tmp/build-1/mnt']) expect(isSystemPath(p)).toBe(false);
  });
});
