/**
 * The image is hostile: a process inside it races the library with symlink swaps, provisioning
 * turns directories into symlinks to the host before the restore, and special files wait where
 * files are read or written. Every case runs on a real loop-device image; "host" stands for a
 * directory of the test outside the image, which must never change.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NotRegularFileError } from '../../../src/errors.js';
import { createChroot } from '../../../src/chroot/chroot.js';
import type { Chroot } from '../../../src/chroot/chroot.js';
import { mountChroot } from '../../../src/chroot/mount.js';
import type { MountedChroot } from '../../../src/chroot/mount.js';
import { run } from '../../../src/host/exec.js';
import { recoverHost } from '../../../src/host/recover.js';
import { withLoopImage } from '../../helpers/loop.js';
import type { LoopImage } from '../../helpers/loop.js';

const quiet = { warn: () => {}, info: () => {}, error: () => {} };
const RACE_MS = 2500;

/** Mounts the image bare (no chroot mounts, files or guard) and always unmounts it. */
async function withMounted<T>(
  img: LoopImage,
  fn: (mounted: MountedChroot, chroot: Chroot) => Promise<T>,
  extra: Partial<Parameters<typeof mountChroot>[0]> = {},
): Promise<T> {
  const mounted = await mountChroot(
    {
      device: img.loop.device,
      mountPath: join(img.dir, 'mnt/{{.Device}}'),
      stateDir: join(img.dir, 'state'),
      chrootMounts: [],
      copyFiles: [],
      serviceGuard: false,
      killGraceMs: 500,
      ...extra,
    },
    { logger: quiet },
  );
  try {
    return await fn(mounted, createChroot(mounted, { logger: quiet }));
  } finally {
    await mounted.unmount();
  }
}

/**
 * Starts a process inside the chroot that keeps swapping `/race/A` between a real directory and
 * a symlink to `hostDir` (a host path: absolute links are how an image points at the host).
 */
async function startRacer(root: string, hostDir: string): Promise<ChildProcess> {
  await mkdir(join(root, 'race/A'), { recursive: true });
  await writeFile(join(root, 'race/A/secret'), 'IMAGE');
  await symlink(hostDir, join(root, 'race/B'));
  const script = 'cd /race; while :; do mv A T; mv B A; mv A B; mv T A; done';
  const racer = spawn('chroot', [root, '/bin/sh', '-c', script], { stdio: 'ignore' });
  await new Promise((resolve, reject) => {
    racer.once('spawn', resolve);
    racer.once('error', reject);
  });
  return racer;
}

async function stopRacer(racer: ChildProcess): Promise<void> {
  if (racer.exitCode !== null || racer.signalCode !== null) return;
  const exited = new Promise((resolve) => racer.once('exit', resolve));
  racer.kill('SIGKILL');
  await exited;
}

/** Calls `fn` repeatedly for a while, ignoring its errors (most attempts lose the race). */
async function hammer(fn: () => Promise<unknown>): Promise<unknown[]> {
  const results: unknown[] = [];
  const until = Date.now() + RACE_MS;
  while (Date.now() < until) results.push(await fn().catch((error: unknown) => error));
  return results;
}

async function withHostDir<T>(img: LoopImage, fn: (hostDir: string) => Promise<T>): Promise<T> {
  const hostDir = join(img.dir, 'host');
  await mkdir(hostDir);
  await writeFile(join(hostDir, 'secret'), 'HOST');
  return fn(hostDir);
}

describe('races through the Chroot handle (a process inside swaps a directory for a symlink)', () => {
  it('writeFile, copyIn and mkdirs never land on the host', async () => {
    await withLoopImage(async (img) => {
      await withHostDir(img, async (hostDir) => {
        const payload = join(img.dir, 'payload');
        await writeFile(payload, 'copied');
        await withMounted(img, async (mounted, chroot) => {
          const racer = await startRacer(mounted.root, hostDir);
          try {
            let i = 0;
            await hammer(async () => {
              i++;
              await chroot.writeFile('/race/A/written', 'x');
              await chroot.copyIn(payload, `/race/A/copied-${i}`);
              await chroot.writeFile(`/race/A/dir-${i}/f`, 'x', { mkdirs: true });
            });
          } finally {
            await stopRacer(racer);
          }
        });
        expect((await readdir(hostDir)).sort()).toEqual(['secret']);
      });
    });
  }, 60_000);

  it('readFile never returns a host file', async () => {
    await withLoopImage(async (img) => {
      await withHostDir(img, async (hostDir) => {
        const reads = await withMounted(img, async (mounted, chroot) => {
          const racer = await startRacer(mounted.root, hostDir);
          try {
            return await hammer(() => chroot.readFile('/race/A/secret', 'utf8'));
          } finally {
            await stopRacer(racer);
          }
        });
        expect(reads).toContain('IMAGE');
        expect(reads).not.toContain('HOST');
      });
    });
  }, 60_000);
});

describe('special files in the image', () => {
  it('readFile of a FIFO fails at once with NotRegularFileError instead of blocking', async () => {
    await withLoopImage(async (img) => {
      await withMounted(img, async (mounted, chroot) => {
        const fifo = join(mounted.root, 'etc/fifo');
        await run('mkfifo', [fifo]);
        const timeout = new Promise((resolve) => setTimeout(() => resolve('blocked'), 2000));
        const outcome = await Promise.race([chroot.readFile('/etc/fifo').catch((error: unknown) => error), timeout]);
        if (outcome === 'blocked') {
          // Release the reader stuck in the thread pool before failing.
          const writer = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
          await writer.close();
        }
        expect(outcome).toBeInstanceOf(NotRegularFileError);
        expect(outcome).toMatchObject({ path: '/etc/fifo', fileType: 'a FIFO' });
        await rm(fifo);
      });
    });
  }, 60_000);

  it('writeFile to a device node fails with NotRegularFileError and leaves the node as it was', async () => {
    await withLoopImage(async (img) => {
      await withMounted(img, async (mounted, chroot) => {
        await run('mknod', [join(mounted.root, 'etc/null-dev'), 'c', '1', '3']);
        await expect(chroot.writeFile('/etc/null-dev', 'x')).rejects.toBeInstanceOf(NotRegularFileError);
        await expect(chroot.readFile('/etc/null-dev')).rejects.toMatchObject({ fileType: 'a character device' });
        const { stdout } = await run('stat', ['-c', '%F %t:%T', join(mounted.root, 'etc/null-dev')]);
        expect(stdout.trim()).toBe('character special file 1:3');
      });
    });
  }, 60_000);
});

describe('restores after provisioning turned a parent into a symlink to the host', () => {
  /** A host directory standing for /etc, with files named like ours. */
  async function victim(img: LoopImage, names: readonly string[]): Promise<string> {
    const dir = join(img.dir, 'victim');
    await mkdir(dir);
    for (const n of names) await writeFile(join(dir, n), `host ${n}`);
    return dir;
  }

  async function victimIntact(dir: string, names: readonly string[]): Promise<void> {
    expect((await readdir(dir)).sort()).toEqual([...names].sort());
    for (const n of names) expect(await readFile(join(dir, n), 'utf8')).toBe(`host ${n}`);
  }

  it('copyFiles: unmount puts nothing back through the symlink', async () => {
    await withLoopImage(async (img) => {
      const conf = join(img.dir, 'conf/app.conf');
      await mkdir(join(img.dir, 'conf'));
      await writeFile(conf, 'from the host');
      const names = ['app.conf', 'app.conf.ami-chroot-orig'];
      const dir = await victim(img, names);
      await withMounted(
        img,
        async (mounted) => {
          // Provisioning replaces the directory holding the placed file with a link to the host.
          const inImage = join(mounted.root, img.dir, 'conf');
          await rm(inImage, { recursive: true });
          await symlink(dir, inImage);
        },
        { copyFiles: [conf] },
      );
      await victimIntact(dir, names);
    });
  }, 60_000);

  it('service guard: removing policy-rc.d touches nothing through a symlinked /usr/sbin', async () => {
    await withLoopImage(async (img) => {
      const names = ['policy-rc.d', 'policy-rc.d.ami-chroot-orig'];
      const dir = await victim(img, names);
      await withMounted(
        img,
        async (mounted) => {
          await run('mv', [join(mounted.root, 'usr/sbin'), join(mounted.root, 'usr/sbin.real')]);
          await symlink(dir, join(mounted.root, 'usr/sbin'));
        },
        { serviceGuard: true },
      );
      await victimIntact(dir, names);
    });
  }, 60_000);

  it('recoverHost: restoring a dead build’s files touches nothing through the symlink', async () => {
    await withLoopImage(async (img) => {
      const conf = join(img.dir, 'conf/app.conf');
      await mkdir(join(img.dir, 'conf'));
      await writeFile(conf, 'from the host');
      const names = ['app.conf', 'app.conf.ami-chroot-orig'];
      const dir = await victim(img, names);
      const stateDir = join(img.dir, 'state');
      await withMounted(
        img,
        async (mounted) => {
          const inImage = join(mounted.root, img.dir, 'conf');
          await rm(inImage, { recursive: true });
          await symlink(dir, inImage);
          // The build "dies": its journal now names a pid that is gone.
          const dead = spawn('true');
          await new Promise((resolve) => dead.once('exit', resolve));
          for (const name of await readdir(stateDir)) {
            const path = join(stateDir, name);
            const data = JSON.parse(await readFile(path, 'utf8')) as { pid: number; startTime: number };
            await writeFile(path, JSON.stringify({ ...data, pid: dead.pid, startTime: 1 }), { mode: 0o600 });
          }
          await recoverHost({ stateDir, lockDir: join(img.dir, 'lock'), killGraceMs: 500 }, { logger: quiet });
        },
        { copyFiles: [conf] },
      );
      await victimIntact(dir, names);
    });
  }, 60_000);
});
