import { lstat, mkdir, readdir, readFile, readlink, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeBusyboxImage } from '../../../fixtures/busybox-image.js';
import { CleanupError } from '../../../src/errors.js';
import { mountChroot } from '../../../src/chroot/mount.js';
import { run } from '../../../src/host/exec.js';
import { readJournals } from '../../../src/host/journal.js';
import { attachLoop, loopDevicesOf } from '../../../src/host/loop.js';
import { readMountInfo } from '../../../src/host/mounts.js';
import { findHolders } from '../../../src/host/processes.js';
import { recoverHost } from '../../../src/host/recover.js';
import { assertNoLeaks, makeTestDir, requireRoot } from '../../helpers/loop.js';
import type { TestDir } from '../../helpers/loop.js';
import { startChild } from '../host/children/spawn.js';
import type { Child } from '../host/children/spawn.js';

const BUILD = join(import.meta.dirname, 'children/build.ts');
const quiet = { warn: () => {}, info: () => {} };

let dir: TestDir;
let child: Child | undefined;
beforeEach(async () => {
  requireRoot();
  dir = await makeTestDir('recover-');
});
afterEach(async () => {
  await child?.stop();
  child = undefined;
  await dir.cleanup();
});

describe('recoverHost', () => {
  it('cleans up after a build process killed while mounted, with a daemon still running inside', async () => {
    const image = join(dir.path, 'disk.img');
    await makeBusyboxImage(image, { resolvConfSymlink: true });
    const stateDir = join(dir.path, 'state');
    const lockDir = join(dir.path, 'lock');
    const mountPath = join(dir.path, 'mnt', 'build');
    const copied = join(dir.path, 'host-file');
    await writeFile(copied, 'from the host\n');

    child = startChild(BUILD, [image, mountPath, stateDir, copied]);
    expect(await child.nextLine()).toBe('ready');
    const daemons = await findHolders(mountPath, '/proc', 'roots');
    expect(daemons.length).toBeGreaterThan(0);
    await child.stop();

    // What the dead build left: mounts, a loop device, a daemon, two journals.
    expect((await readMountInfo()).filter((m) => m.mountPoint.startsWith(mountPath))).toHaveLength(6);
    expect(await loopDevicesOf(image)).toHaveLength(1);
    expect(await readJournals(stateDir)).toHaveLength(2);

    const report = await recoverHost({ stateDir, lockDir, killGraceMs: 500 }, { logger: quiet });
    expect(report.running).toEqual([]);
    expect(report.recovered).toHaveLength(2);
    const mountRecovery = report.recovered.find((r) => r.label.startsWith('mount'))!;
    expect(mountRecovery.unmounted).toContain(mountPath);
    expect(mountRecovery.unmounted).toHaveLength(6);
    expect(mountRecovery.restoredFiles).toEqual(
      expect.arrayContaining([join(mountPath, 'usr/sbin/policy-rc.d'), join(mountPath, copied.slice(1))]),
    );
    expect(mountRecovery.removedDirs).toEqual(expect.arrayContaining([mountPath]));
    expect(report.recovered.find((r) => r.label.startsWith('loop'))!.detachedLoops).toHaveLength(1);

    for (const d of daemons) expect((await findHolders(mountPath)).map((h) => h.pid)).not.toContain(d.pid);
    await assertNoLeaks(dir.path);
    expect(await readdir(stateDir)).toEqual([]);

    // The image got its own files back.
    await using loop = await attachLoop({ file: image, stateDir: false });
    const check = join(dir.path, 'check');
    await mkdir(check);
    await run('mount', ['-o', 'ro', loop.partitions[0]!, check]);
    try {
      expect(await readlink(join(check, 'etc/resolv.conf'))).toBe('../run/systemd/resolve/stub-resolv.conf');
      await expect(lstat(join(check, 'usr/sbin/policy-rc.d'))).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await readdir(join(check, 'tmp'))).toEqual([]);
    } finally {
      await run('umount', [check]);
      await rmdir(check);
    }
  });

  it('leaves running builds alone and removes dead reservations', async () => {
    const image = join(dir.path, 'disk.img');
    await makeBusyboxImage(image, { sizeMiB: 16 });
    const stateDir = join(dir.path, 'state');
    const lockDir = join(dir.path, 'lock');
    await mkdir(lockDir, { recursive: true });
    await writeFile(
      join(lockDir, 'sdf.reservation'),
      JSON.stringify({ pid: 2 ** 22 + 1, startTime: 1, createdAt: '' }),
    );
    const loop = await attachLoop({ file: image, stateDir });
    const mounted = await mountChroot(
      { device: loop.device, mountPath: join(dir.path, 'mnt'), stateDir, copyFiles: [] },
      { logger: quiet },
    );
    try {
      const report = await recoverHost({ stateDir, lockDir }, { logger: quiet });
      expect(report.recovered).toEqual([]);
      expect(report.running.map((r) => r.pid)).toEqual([process.pid, process.pid]);
      expect(report.removedReservations).toEqual([join(lockDir, 'sdf.reservation')]);
      expect((await readMountInfo()).some((m) => m.mountPoint === mounted.root)).toBe(true);
    } finally {
      await mounted.unmount();
      await loop.detach();
    }
    expect(await readdir(stateDir)).toEqual([]);
  });

  it('keeps a journal it could not complete, and says why', async () => {
    const stateDir = join(dir.path, 'state');
    await mkdir(stateDir);
    // A dead build whose placed file was replaced by a directory: its backup cannot go back.
    const root = join(dir.path, 'root');
    await mkdir(join(root, 'etc/x'), { recursive: true });
    await writeFile(join(root, 'etc/y'), 'placed');
    const mountTarget = join(dir.path, 'tmpfs');
    await mkdir(mountTarget);
    await run('mount', ['-t', 'tmpfs', 'tmpfs', mountTarget]);
    const made = (await readMountInfo()).filter((m) => m.mountPoint === mountTarget).at(-1)!;
    const journal = join(stateDir, 'dead.1.json');
    await writeFile(
      journal,
      JSON.stringify({
        version: 1,
        pid: 2 ** 22 + 2,
        startTime: 1,
        createdAt: '',
        label: 'mount test',
        entries: [
          { type: 'mount', target: mountTarget, id: made.id, majorMinor: made.majorMinor },
          { type: 'file', root: mountTarget, path: '/gone', backup: '/gone.ami-chroot-orig' },
          { type: 'file', root: mountTarget, path: '/dir', backup: '/dir.ami-chroot-orig' },
        ],
      }),
    );
    await mkdir(join(mountTarget, 'dir'));
    await writeFile(join(mountTarget, 'dir.ami-chroot-orig'), 'original');
    const error = await recoverHost({ stateDir, lockDir: join(dir.path, 'lock') }, { logger: quiet }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CleanupError);
    expect(error).toMatchObject({ phase: 'recovery' });
    expect((error as Error).message).toContain('dead.1.json');
    expect(await readFile(journal, 'utf8')).toContain('mount test');
    // Fix the obstacle; the next run completes.
    await rmdir(join(mountTarget, 'dir'));
    const report = await recoverHost({ stateDir, lockDir: join(dir.path, 'lock') }, { logger: quiet });
    expect(report.recovered[0]!.unmounted).toEqual([mountTarget]);
    expect(await readdir(stateDir)).toEqual([]);
  });
});
