import { spawn } from 'node:child_process';
import { lstat, mkdir, open, readdir, readFile, readlink, rmdir, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IMAGE_RESOLV_CONF } from '../../../fixtures/busybox-image.js';
import { CommandError, MountError, PathEscapeError, UnmountError } from '../../../src/errors.js';
import { createChroot } from '../../../src/chroot/chroot.js';
import { DEFAULT_CHROOT_MOUNTS } from '../../../src/chroot/defaults.js';
import { mountChroot } from '../../../src/chroot/mount.js';
import { withChroot } from '../../../src/chroot/with-chroot.js';
import { run, shellQuote } from '../../../src/host/exec.js';
import { attachLoop } from '../../../src/host/loop.js';
import { findHolders } from '../../../src/host/processes.js';
import { readMountInfo, unmountTree } from '../../../src/host/mounts.js';
import type { ProgressEvent } from '../../../src/types.js';
import { assertNoLeaks, makeTestDir, requireRoot, withLoopImage } from '../../helpers/loop.js';
import type { LoopImage } from '../../helpers/loop.js';

const quiet = { warn: () => {}, info: () => {} };

/** Mounts the image's partition read-only for inspection after the code under test is done. */
async function inspect<T>(img: LoopImage, fn: (root: string) => Promise<T>): Promise<T> {
  const dir = join(img.dir, 'inspect');
  await mkdir(dir);
  await run('mount', ['-o', 'ro', img.loop.partitions[0]!, dir]);
  try {
    return await fn(dir);
  } finally {
    await run('umount', [dir]);
    await rmdir(dir);
  }
}

async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function baseInput(img: LoopImage) {
  return { device: img.loop.device, mountPath: join(img.dir, 'mnt/{{.Device}}'), stateDir: join(img.dir, 'state') };
}

describe('mountChroot / withChroot on a real image', () => {
  it('mounts, provisions (exec, sh, writeFile, readFile, copyIn) and unmounts leaving nothing behind', async () => {
    requireRoot();
    await withLoopImage(async (img) => {
      const hostFile = join(img.dir, 'resolv.conf');
      await writeFile(hostFile, 'nameserver 198.51.100.1\n');
      const payload = join(img.dir, 'payload');
      await mkdir(join(payload, 'sub'), { recursive: true });
      await writeFile(join(payload, 'sub/app.conf'), 'key=value\n');
      const events: ProgressEvent[] = [];
      const hostPts = (await readMountInfo()).filter((m) => m.mountPoint === '/dev/pts');
      const started = performance.now();
      let mountedAt = 0;

      const result = await withChroot(
        { ...baseInput(img), copyFiles: ['/etc/resolv.conf', hostFile] },
        async (chroot) => {
          mountedAt = performance.now();
          expect(chroot.root).toBe(join(img.dir, 'mnt', 'loop' + img.loop.device.slice('/dev/loop'.length)));
          const mounts = (await readMountInfo())
            .filter((m) => m.mountPoint.startsWith(chroot.root))
            .map((m) => m.mountPoint);
          expect(mounts).toEqual([chroot.root, ...DEFAULT_CHROOT_MOUNTS.map((m) => chroot.root + m.target)]);

          const id = await chroot.exec('id', ['-u']);
          expect(id.stdout.trim()).toBe('0');
          // No host environment leaks in; the guard's variable is there.
          const env = (await chroot.exec('env')).stdout.split('\n').filter(Boolean).sort();
          expect(env).toEqual([
            'DEBIAN_FRONTEND=noninteractive',
            'HOME=/root',
            'LANG=C.UTF-8',
            'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
            'SYSTEMD_OFFLINE=1',
          ]);
          // Arguments reach the chroot verbatim: nothing is expanded by a host shell.
          expect((await chroot.exec('echo', ['$HOME', '`id`', '*'])).stdout).toBe('$HOME `id` *\n');
          expect((await chroot.sh('echo "$HOME" $((6*7))')).stdout).toBe('/root 42\n');
          // The chroot mounts work inside.
          expect(
            (
              await chroot.sh(
                'cat /proc/self/comm; test -c /dev/null && echo null-ok; ls /sys/block >/dev/null && echo sys-ok',
              )
            ).stdout,
          ).toBe('cat\nnull-ok\nsys-ok\n');
          // copyFiles and the service guard are in place.
          expect(await chroot.readFile('/etc/resolv.conf')).toEqual(await readFile('/etc/resolv.conf'));
          expect(await chroot.readFile(hostFile, 'utf8')).toBe('nameserver 198.51.100.1\n');
          expect((await chroot.exec('/usr/sbin/policy-rc.d', [], { okExitCodes: [101] })).exitCode).toBe(101);

          await chroot.writeFile('/etc/motd', 'baked\n', { mode: 0o640 });
          expect((await chroot.sh('cat /etc/motd; stat -c %a /etc/motd')).stdout).toBe('baked\n640\n');
          await chroot.copyIn(payload, '/opt');
          expect(await chroot.readFile('/opt/sub/app.conf', 'utf8')).toBe('key=value\n');
          return 'provisioned';
        },
        { logger: quiet, onProgress: (e) => events.push(e) },
      );
      const ended = performance.now();
      expect(result).toBe('provisioned');
      console.log(`mount ${Math.round(mountedAt - started)} ms, whole cycle ${Math.round(ended - started)} ms`);

      await assertNoLeaks(img.dir, [img.loop.device]);
      await expect(lstat(join(img.dir, 'mnt'))).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await readdir(join(img.dir, 'state'))).toEqual([]);
      expect((await readMountInfo()).filter((m) => m.mountPoint === '/dev/pts')).toEqual(hostPts);
      expect(
        events.filter((e) => e.type === 'resource' && e.kind === 'mount').map((e) => (e as { action: string }).action),
      ).toEqual([...Array(6).fill('created'), ...Array(6).fill('removed')]);
      // Called alone, the mount still reports its steps as phases.
      expect(events.flatMap((e) => (e.type === 'phase-end' && e.ok ? [e.phase] : []))).toEqual([
        'pre-mount',
        'post-mount',
        'chroot-mounts',
        'copy-files',
        'service-guard',
      ]);
      await inspect(img, async (root) => {
        // The image keeps its own resolv.conf, loses the guard, keeps the provisioning.
        expect(await readFile(join(root, 'etc/resolv.conf'), 'utf8')).toBe(IMAGE_RESOLV_CONF);
        await expect(lstat(join(root, 'usr/sbin/policy-rc.d'))).rejects.toMatchObject({ code: 'ENOENT' });
        expect(await readFile(join(root, 'etc/motd'), 'utf8')).toBe('baked\n');
        expect(await readFile(join(root, 'opt/sub/app.conf'), 'utf8')).toBe('key=value\n');
        expect((await readdir(join(root, 'etc'))).filter((n) => n.includes('ami-chroot'))).toEqual([]);
        // The directories made for the copied host file are gone again.
        expect(await readdir(join(root, 'tmp'))).toEqual([]);
      });
    });
  });

  it('puts a resolv.conf symlink back exactly, and a pre-existing policy-rc.d too', async () => {
    requireRoot();
    await withLoopImage(
      async (img) => {
        await withChroot(
          baseInput(img),
          async (chroot) => {
            const host = await readFile('/etc/resolv.conf');
            expect(await chroot.readFile('/etc/resolv.conf')).toEqual(host);
            expect((await lstat(join(chroot.root, 'etc/resolv.conf'))).isSymbolicLink()).toBe(false);
            expect(await chroot.readFile('/usr/sbin/policy-rc.d', 'utf8')).toContain('exit 101');
          },
          { logger: quiet },
        );
        await inspect(img, async (root) => {
          expect(await readlink(join(root, 'etc/resolv.conf'))).toBe('../run/systemd/resolve/stub-resolv.conf');
          expect(await readFile(join(root, 'usr/sbin/policy-rc.d'), 'utf8')).toBe('#!/bin/sh\nexit 0\n');
          expect((await lstat(join(root, 'usr/sbin/policy-rc.d'))).mode & 0o777).toBe(0o700);
        });
      },
      {
        resolvConfSymlink: true,
        populate: async (root) => writeFile(join(root, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 0\n', { mode: 0o700 }),
      },
    );
  });

  it('refuses writes through hostile symlinks in a real image and never touches the host', async () => {
    requireRoot();
    const marker = `ami-chroot-marker-${process.pid}-${Date.now()}`;
    await withLoopImage(
      async (img) => {
        await withChroot(
          baseInput(img),
          async (chroot) => {
            await expect(chroot.writeFile('/etc/evil', 'x')).rejects.toBeInstanceOf(PathEscapeError);
            await expect(chroot.writeFile('/etc/up', 'x')).rejects.toBeInstanceOf(PathEscapeError);
            await expect(chroot.writeFile('/etc/hostname-link', 'x')).rejects.toBeInstanceOf(PathEscapeError);
            // Through the link as a directory: lands in the image, as inside the chroot.
            await chroot.writeFile(`/etc/evil/tmp/${marker}`, 'in image\n');
            await chroot.writeFile(`/etc/up/tmp/${marker}-up`, 'in image\n');
            expect((await chroot.sh(`cat /tmp/${marker} /tmp/${marker}-up`)).stdout).toBe('in image\nin image\n');
            expect(await chroot.readFile('/etc/evil/etc/hostname', 'utf8')).toBe('busybox\n');
            expect(await chroot.path('/etc/up/../..')).toBe(chroot.root);
            // mkdirs creates the missing directories inside the image, also through the links.
            await chroot.writeFile(`/etc/evil/${marker}-dir/deeper/file`, 'made\n', { mkdirs: true });
            await chroot.writeFile(`/etc/up/${marker}-up-dir/file`, 'made\n', { mkdirs: true });
            expect((await chroot.sh(`cat /${marker}-dir/deeper/file /${marker}-up-dir/file`)).stdout).toBe(
              'made\nmade\n',
            );
          },
          { logger: quiet },
        );
        await expect(lstat(`/${marker}-dir`)).rejects.toMatchObject({ code: 'ENOENT' });
        await expect(lstat(`/${marker}-up-dir`)).rejects.toMatchObject({ code: 'ENOENT' });
        await expect(lstat(`/tmp/${marker}`)).rejects.toMatchObject({ code: 'ENOENT' });
        await expect(lstat(`/tmp/${marker}-up`)).rejects.toMatchObject({ code: 'ENOENT' });
        expect(await readFile('/etc/hostname', 'utf8')).not.toBe('x');
      },
      {
        populate: async (root) => {
          await symlink('/', join(root, 'etc/evil'));
          await symlink('../../../../../../..', join(root, 'etc/up'));
          await symlink('/etc/hostname', join(root, 'etc/hostname-link'));
        },
      },
    );
  });

  it('runs from-scratch pre-mount commands that partition and format a blank volume', async () => {
    requireRoot();
    const dir = await makeTestDir();
    try {
      const image = join(dir.path, 'blank.img');
      await writeFile(image, '');
      await truncate(image, 32 * 1024 * 1024);
      await using loop = await attachLoop({ file: image, stateDir: false });
      await withChroot(
        {
          device: loop.device,
          mountPath: join(dir.path, 'mnt'),
          stateDir: join(dir.path, 'state'),
          copyFiles: [],
          chrootMounts: [],
          preMountCommands: [
            "printf 'label: dos\\nstart=2048, type=83\\n' | sfdisk --quiet --no-reread --no-tell-kernel {{.Device}}",
            'partx -u {{.Device}}',
            'mkfs.ext4 -q -E lazy_itable_init=1,lazy_journal_init=1 {{.Device}}p1',
          ],
          postMountCommands: ['mkdir -p {{.MountPath}}/etc && echo scratch > {{.MountPath}}/etc/built-from'],
        },
        async (chroot) => {
          expect(await chroot.readFile('/etc/built-from', 'utf8')).toBe('scratch\n');
          await chroot.writeFile('/etc/os-release', 'ID=scratch\n');
        },
        { logger: quiet },
      );
      await assertNoLeaks(dir.path, [loop.device]);
      const check = join(dir.path, 'check');
      await mkdir(check);
      await run('mount', ['-o', 'ro', `${loop.device}p1`, check]);
      try {
        expect(await readFile(join(check, 'etc/os-release'), 'utf8')).toBe('ID=scratch\n');
      } finally {
        await run('umount', [check]);
      }
    } finally {
      await dir.cleanup();
    }
  });

  it('gives pre/post-mount commands the device and mount path, shell-quoted, and the function form too', async () => {
    requireRoot();
    await withLoopImage(async (img) => {
      const out = join(img.dir, 'seen');
      const input = { ...baseInput(img), mountPath: join(img.dir, 'mnt dir/{{.Device}}') };
      const mounted = await mountChroot(
        {
          ...input,
          preMountCommands: [`printf 'pre %s\\n' {{.Device}} >> ${shellQuote(out)}`],
          postMountCommands: (data) => [
            `printf 'post %s|%s\\n' ${shellQuote(data.Device)} ${shellQuote(data.MountPath)} >> ${shellQuote(out)}`,
            `test -x {{.MountPath}}/bin/busybox || test -x ${shellQuote(data.MountPath)}/bin/busybox`,
          ],
        },
        { logger: quiet },
      );
      try {
        expect(mounted.root).toContain('mnt dir/loop');
        expect(await readFile(out, 'utf8')).toBe(`pre ${img.loop.device}\npost ${img.loop.device}|${mounted.root}\n`);
      } finally {
        await mounted.unmount();
      }
      // Template form with a path containing a space.
      const mounted2 = await mountChroot(
        { ...input, postMountCommands: [`printf '%s\\n' {{.MountPath}} > ${shellQuote(out)}`] },
        { logger: quiet },
      );
      try {
        expect(await readFile(out, 'utf8')).toBe(`${mounted2.root}\n`);
      } finally {
        await mounted2.unmount();
      }
    });
  });

  it('fails with the command and its stderr when a pre-mount command fails, leaving nothing', async () => {
    requireRoot();
    await withLoopImage(async (img) => {
      const error = await mountChroot(
        { ...baseInput(img), preMountCommands: ['echo nope >&2; exit 7'] },
        { logger: quiet },
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CommandError);
      expect(error).toMatchObject({ phase: 'pre-mount', exitCode: 7, stderr: 'nope' });
      expect(await readdir(join(img.dir, 'state'))).toEqual([]);
    });
  });

  it('wraps every host command with the command wrapper', async () => {
    requireRoot();
    await withLoopImage(async (img) => {
      const log = join(img.dir, 'wrapped.log');
      const commandWrapper = (command: string) =>
        `printf '%s\\n' ${shellQuote(command)} >> ${shellQuote(log)}; ${command}`;
      await withChroot(
        { ...baseInput(img), commandWrapper, preMountCommands: ['true pre'] },
        async (chroot) => {
          await chroot.exec('echo', ["it's wrapped"]);
        },
        { logger: quiet },
      );
      const lines = (await readFile(log, 'utf8')).trim().split('\n');
      expect(lines[0]).toBe('true pre');
      expect(lines.filter((l) => l.startsWith('mount '))).toHaveLength(6);
      expect(lines.some((l) => l.includes(`-- ${join(img.dir, 'mnt')}`) && l.endsWith(`echo 'it'\\''s wrapped'`))).toBe(
        true,
      );
      expect(lines.filter((l) => l.startsWith('umount '))).toHaveLength(1);
    });
  });

  it('stops daemons left running inside (by root and by cwd) and still unmounts', async () => {
    requireRoot();
    await withLoopImage(async (img) => {
      let pids: number[] = [];
      let hostPid = 0;
      await withChroot(
        baseInput(img),
        async (chroot) => {
          const r = await chroot.sh(
            'sleep 1000 >/dev/null 2>&1 & echo $!; (trap "" TERM; exec sleep 1001) >/dev/null 2>&1 & echo $!',
          );
          pids = r.stdout.trim().split('\n').map(Number);
          // A host process whose working directory is inside the chroot.
          const host = spawn('sleep', ['1002'], { cwd: join(chroot.root, 'tmp'), detached: true, stdio: 'ignore' });
          host.unref();
          hostPid = host.pid!;
          const holders = await findHolders(chroot.root);
          expect(holders.map((h) => h.pid)).toEqual(expect.arrayContaining([...pids, hostPid]));
          expect(holders.find((h) => h.pid === hostPid)?.reason).toBe(`cwd ${join(chroot.root, 'tmp')}`);
        },
        { logger: quiet },
      );
      for (const pid of [...pids, hostPid]) expect(await alive(pid)).toBe(false);
    });
  });

  it('unmounts mounts made inside the chroot by provisioning', async () => {
    requireRoot();
    await withLoopImage(async (img) => {
      await withChroot(
        baseInput(img),
        async (chroot) => {
          await chroot.exec('mkdir', ['-p', '/mnt/scratch']);
          await chroot.exec('mount', ['-t', 'tmpfs', 'tmpfs', '/mnt/scratch']);
          expect((await readMountInfo()).some((m) => m.mountPoint === join(chroot.root, 'mnt/scratch'))).toBe(true);
        },
        { logger: quiet },
      );
    });
  });

  it('kills the command and still unmounts when aborted during a long exec', async () => {
    requireRoot();
    await withLoopImage(async (img) => {
      const controller = new AbortController();
      const reason = new Error('build cancelled');
      let pid = 0;
      const error = await withChroot(
        baseInput(img),
        async (chroot) => {
          const running = chroot.sh('echo $$; exec sleep 1000', {
            outputLevel: 'silent',
          });
          // Wait until the sleep is really running inside.
          for (let i = 0; i < 200 && pid === 0; i++) {
            const holders = await findHolders(chroot.root);
            pid = holders.find((h) => h.command.startsWith('sleep 1000'))?.pid ?? 0;
            if (pid === 0) await new Promise((r) => setTimeout(r, 10));
          }
          controller.abort(reason);
          await running;
        },
        { logger: quiet, signal: controller.signal },
      ).catch((e: unknown) => e);
      expect(error).toBe(reason);
      expect(pid).toBeGreaterThan(0);
      expect(await alive(pid)).toBe(false);
    });
  });

  it('throws an UnmountError naming the holder when it cannot stop it, and can be retried', async () => {
    requireRoot();
    await withLoopImage(async (img) => {
      const mounted = await mountChroot({ ...baseInput(img), killGraceMs: 100 }, { logger: quiet });
      // This test process holds a file inside: it is protected (never killed), so unmount fails.
      const handle = await open(join(mounted.root, 'etc/hostname'), 'r');
      let error: unknown;
      try {
        error = await mounted.unmount().catch((e: unknown) => e);
      } finally {
        await handle.close();
      }
      expect(error).toBeInstanceOf(UnmountError);
      const u = error as UnmountError;
      expect(u.stillMounted).toContain(mounted.root);
      expect(u.holders).toEqual([
        expect.objectContaining({ pid: process.pid, reason: `open file ${join(mounted.root, 'etc/hostname')}` }),
      ]);
      expect(u.message).toContain(`pid ${process.pid}`);
      expect((await readMountInfo()).some((m) => m.mountPoint === mounted.root)).toBe(true);
      // The holder is gone: the same unmount() now succeeds, and a third call is a no-op.
      await mounted.unmount();
      await mounted.unmount();
      await assertNoLeaks(img.dir, [img.loop.device]);
    });
  });

  it('warns once per holder over every unmount() of one mount, not once per try', async () => {
    requireRoot();
    await withLoopImage(async (img) => {
      const warnings: string[] = [];
      const logger = { warn: (m: string) => void warnings.push(m), info: () => {} };
      const mounted = await mountChroot({ ...baseInput(img), killGraceMs: 100 }, { logger });
      const handle = await open(join(mounted.root, 'etc/hostname'), 'r');
      try {
        // A build tries the early unmount, then its cleanup tries again (three times).
        for (let i = 0; i < 3; i++) await expect(mounted.unmount()).rejects.toBeInstanceOf(UnmountError);
      } finally {
        await handle.close();
      }
      expect(warnings.filter((w) => w.includes(`Process ${process.pid} `))).toHaveLength(1);
      await mounted.unmount();
      await assertNoLeaks(img.dir, [img.loop.device]);
    });
  });

  it('throws what the function threw, with an unmount failure attached, when both fail', async () => {
    requireRoot();
    await withLoopImage(async (img) => {
      const failure = new Error('provisioning failed');
      let handle: Awaited<ReturnType<typeof open>> | undefined;
      let root = '';
      const error = await withChroot(
        { ...baseInput(img), killGraceMs: 100 },
        async (chroot) => {
          root = chroot.root;
          handle = await open(join(chroot.root, 'etc/hostname'), 'r');
          throw failure;
        },
        { logger: quiet },
      ).catch((e: unknown) => e);
      await handle?.close();
      expect(error).toBe(failure);
      const cleanupErrors = (error as Error & { cleanupErrors?: Error[] }).cleanupErrors ?? [];
      expect(cleanupErrors).toHaveLength(1);
      expect(cleanupErrors[0]).toBeInstanceOf(UnmountError);
      // Nothing else holds it now: the test's own cleanup unmounts it.
      await unmountTree(root);
    });
  });

  it('undoes everything done so far when a chroot mount fails', async () => {
    requireRoot();
    await withLoopImage(async (img) => {
      const error = await mountChroot(
        { ...baseInput(img), chrootMounts: [...DEFAULT_CHROOT_MOUNTS.slice(0, 2), ['no-such-fs', 'none', '/mnt']] },
        { logger: quiet },
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MountError);
      expect(error).toMatchObject({ phase: 'chroot-mounts' });
      await expect(lstat(join(img.dir, 'mnt'))).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await readdir(join(img.dir, 'state'))).toEqual([]);
    });
  });

  it('refuses a mount path that is already a mount point and leaves that mount alone', async () => {
    requireRoot();
    await withLoopImage(async (img) => {
      const first = await mountChroot(baseInput(img), { logger: quiet });
      try {
        const error = await mountChroot(baseInput(img), { logger: quiet }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(MountError);
        expect((error as Error).message).toContain('already a mount point');
        expect((await readMountInfo()).filter((m) => m.mountPoint.startsWith(first.root))).toHaveLength(6);
      } finally {
        await first.unmount();
      }
    });
  });

  it('works without the service guard, the journal and any chroot mount, on the whole device', async () => {
    requireRoot();
    await withLoopImage(
      async (img) => {
        await withChroot(
          {
            device: img.loop.device,
            mountPath: join(img.dir, 'mnt'),
            mountPartition: '0',
            serviceGuard: false,
            stateDir: false,
            chrootMounts: [],
            copyFiles: [],
          },
          async (chroot) => {
            await expect(lstat(join(chroot.root, 'usr/sbin/policy-rc.d'))).rejects.toMatchObject({ code: 'ENOENT' });
            expect((await chroot.exec('env')).stdout).not.toContain('SYSTEMD_OFFLINE');
            expect(createChroot({ root: chroot.root }).root).toBe(chroot.root);
          },
          { logger: quiet },
        );
      },
      { partitioned: false },
    );
  });
});
