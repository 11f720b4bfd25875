import { lstat, readFile, readlink, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IMAGE_RESOLV_CONF, makeBusyboxImage } from '../../../fixtures/busybox-image.js';
import { run } from '../../../src/host/exec.js';
import { attachLoop, loopDevicesOf } from '../../../src/host/loop.js';
import { readJournals } from '../../../src/host/journal.js';
import { assertNoLeaks, makeTestDir, requireRoot } from '../../helpers/loop.js';
import type { TestDir } from '../../helpers/loop.js';

let dir: TestDir;
beforeEach(async () => {
  requireRoot();
  dir = await makeTestDir();
});
afterEach(async () => {
  await dir.cleanup();
});

describe('makeBusyboxImage + attachLoop', () => {
  it('makes a partitioned ext4 image with a busybox root, and leaves nothing attached', async () => {
    const image = join(dir.path, 'disk.img');
    await makeBusyboxImage(image, { sizeMiB: 32 });
    expect((await stat(image)).size).toBe(32 * 1024 * 1024);
    await assertNoLeaks(dir.path);

    const loop = await attachLoop({ file: image, stateDir: false });
    try {
      expect(loop.device).toMatch(/^\/dev\/loop\d+$/);
      expect(loop.partitions).toEqual([`${loop.device}p1`]);
      expect((await stat(loop.partitions[0]!)).isBlockDevice()).toBe(true);
      expect(await loopDevicesOf(image)).toEqual([loop.device]);
      const mnt = join(dir.path, 'mnt');
      await run('mkdir', [mnt]);
      await run('mount', ['-o', 'ro', loop.partitions[0]!, mnt]);
      try {
        expect((await lstat(join(mnt, 'bin/busybox'))).isFile()).toBe(true);
        expect(await readlink(join(mnt, 'bin/sh'))).toBe('../bin/busybox');
        expect(await readFile(join(mnt, 'etc/resolv.conf'), 'utf8')).toBe(IMAGE_RESOLV_CONF);
        expect(await readFile(join(mnt, 'etc/os-release'), 'utf8')).toContain('ID=busybox');
      } finally {
        await run('umount', [mnt]);
      }
    } finally {
      await loop.detach();
    }
    // Detach is idempotent and removed the partitions too.
    await loop.detach();
    expect(await loopDevicesOf(image)).toEqual([]);
    await expect(stat(`${loop.device}p1`)).rejects.toMatchObject({ code: 'ENOENT' });
    await assertNoLeaks(dir.path);
  });

  it('can make the image resolv.conf a dangling symlink, and format the whole file', async () => {
    const image = join(dir.path, 'whole.img');
    await makeBusyboxImage(image, { sizeMiB: 16, partitioned: false, resolvConfSymlink: true });
    await using loop = await attachLoop({ file: image, stateDir: false });
    expect(loop.partitions).toEqual([]);
    const mnt = join(dir.path, 'mnt');
    await run('mkdir', [mnt]);
    await run('mount', ['-o', 'ro', loop.device, mnt]);
    try {
      expect(await readlink(join(mnt, 'etc/resolv.conf'))).toBe('../run/systemd/resolve/stub-resolv.conf');
    } finally {
      await run('umount', [mnt]);
    }
  });

  it('rescans after the device is partitioned (what from-scratch pre-mount commands do)', async () => {
    const image = join(dir.path, 'blank.img');
    await writeFile(image, '');
    await truncate(image, 16 * 1024 * 1024);
    const loop = await attachLoop({ file: image, stateDir: false });
    try {
      expect(loop.partitions).toEqual([]);
      await run('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', loop.device], {
        input: 'label: dos\nstart=2048, type=83\n',
      });
      expect(await loop.rescan()).toEqual([`${loop.device}p1`]);
      expect(loop.partitions).toEqual([`${loop.device}p1`]);
    } finally {
      await loop.detach();
    }
    await assertNoLeaks(dir.path);
  });

  it('journals the loop device while attached, and removes the journal at detach', async () => {
    const image = join(dir.path, 'j.img');
    await makeBusyboxImage(image, { sizeMiB: 16 });
    const stateDir = join(dir.path, 'state');
    const loop = await attachLoop({ file: image, stateDir });
    try {
      const journals = await readJournals(stateDir);
      expect(journals).toHaveLength(1);
      expect(journals[0]!.data.pid).toBe(process.pid);
      const { ino, dev } = await stat(image);
      expect(journals[0]!.data.entries).toEqual([{ type: 'loop', file: image, ino, dev }]);
    } finally {
      await loop.detach();
    }
    expect(await readJournals(stateDir)).toEqual([]);
  });
});

describe('attachLoop under concurrency (losetup --find is not atomic)', () => {
  it('attaches eight files at once to eight distinct devices, each over its own file', async () => {
    const files = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const file = join(dir.path, `c${i}.img`);
        await writeFile(file, '');
        await truncate(file, 4 * 1024 * 1024);
        return file;
      }),
    );
    const loops = await Promise.all(files.map((file) => attachLoop({ file, partscan: false, stateDir: false })));
    try {
      expect(new Set(loops.map((l) => l.device)).size).toBe(8);
      for (const [i, loop] of loops.entries()) expect(await loopDevicesOf(files[i]!)).toEqual([loop.device]);
    } finally {
      await Promise.all(loops.map((l) => l.detach()));
    }
    for (const file of files) expect(await loopDevicesOf(file)).toEqual([]);
  });

  describe('when losetup attaches but prints nothing, or prints nothing and attaches nothing', () => {
    let savedPath: string | undefined;
    const shim = async (body: string): Promise<void> => {
      const bin = join(dir.path, 'bin');
      await run('mkdir', ['-p', bin]);
      // Only `losetup --find` is changed; every other losetup call reaches the real one.
      const real = (await run('sh', ['-c', 'command -v losetup'])).stdout.trim();
      await writeFile(
        join(bin, 'losetup'),
        `#!/bin/sh\nif [ "$1" != --find ]; then exec ${real} "$@"; fi\n${body.replaceAll('REAL', real)}\n`,
        { mode: 0o755 },
      );
      savedPath = process.env.PATH;
      process.env.PATH = `${bin}:${savedPath ?? ''}`;
    };
    afterEach(() => {
      if (savedPath !== undefined) process.env.PATH = savedPath;
      savedPath = undefined;
    });

    it('adopts the device that appeared over the file', async () => {
      const file = join(dir.path, 'silent.img');
      await writeFile(file, '');
      await truncate(file, 4 * 1024 * 1024);
      await shim('REAL "$@" >/dev/null');
      await using loop = await attachLoop({ file, partscan: false, stateDir: false });
      expect(await loopDevicesOf(file)).toEqual([loop.device]);
    });

    it('retries an attach that printed nothing and attached nothing', async () => {
      const file = join(dir.path, 'retry.img');
      await writeFile(file, '');
      await truncate(file, 4 * 1024 * 1024);
      const marker = join(dir.path, 'first-call-done');
      await shim(`if [ -e ${marker} ]; then exec REAL "$@"; fi; : > ${marker}`);
      await using loop = await attachLoop({ file, partscan: false, stateDir: false });
      expect(await loopDevicesOf(file)).toEqual([loop.device]);
      expect(await readFile(marker, 'utf8')).toBe('');
    });
  });
});
