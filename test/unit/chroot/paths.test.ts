import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PathEscapeError } from '../../../src/errors.js';
import { createChroot } from '../../../src/chroot/chroot.js';
import { resolveInRoot } from '../../../src/chroot/paths.js';

// A fake image root with hostile and ordinary symlinks; "outside" stands for the host.
let base: string;
let root: string;
let outside: string;
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'paths-'));
  root = join(base, 'root');
  outside = join(base, 'outside');
  await mkdir(join(root, 'etc'), { recursive: true });
  await mkdir(join(root, 'usr/lib'), { recursive: true });
  await mkdir(join(root, 'run'), { recursive: true });
  await mkdir(outside);
  await writeFile(join(outside, 'secret'), 'host secret\n');
  await writeFile(join(root, 'etc/hosts'), 'image hosts\n');
  await symlink('/', join(root, 'etc/evil')); // absolute, to "/"
  await symlink('../../../../../..', join(root, 'etc/up')); // climbs far above the root
  await symlink(outside, join(root, 'etc/abs-outside')); // absolute host path
  await symlink('usr/lib', join(root, 'lib')); // ordinary relative link
  await symlink('/run', join(root, 'var-run')); // ordinary absolute link
  await symlink('loop-b', join(root, 'loop-a'));
  await symlink('loop-a', join(root, 'loop-b'));
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('resolveInRoot', () => {
  it('resolves ordinary relative and absolute symlinks inside the root', async () => {
    expect(await resolveInRoot(root, '/lib/x.so')).toBe(join(root, 'usr/lib/x.so'));
    expect(await resolveInRoot(root, '/var-run/pid')).toBe(join(root, 'run/pid'));
    expect(await resolveInRoot(root, 'etc/../etc/./hosts')).toBe(join(root, 'etc/hosts'));
    expect(await resolveInRoot(root, '/')).toBe(root);
  });

  it('re-roots absolute targets, as the chroot itself sees them', async () => {
    expect(await resolveInRoot(root, '/etc/evil/etc/hosts')).toBe(join(root, 'etc/hosts'));
    expect(await resolveInRoot(root, `/etc/abs-outside/secret`)).toBe(join(root, outside.slice(1), 'secret'));
  });

  it('clamps .. at the root, in the path and in link targets', async () => {
    expect(await resolveInRoot(root, '/../../../etc/hosts')).toBe(join(root, 'etc/hosts'));
    expect(await resolveInRoot(root, '/etc/up/etc/hosts')).toBe(join(root, 'etc/hosts'));
    expect(await resolveInRoot(root, '/etc/up')).toBe(root);
  });

  it('returns the link itself when told not to follow the last component', async () => {
    expect(await resolveInRoot(root, '/etc/evil', { followFinal: false })).toBe(join(root, 'etc/evil'));
  });

  it('refuses symlink loops', async () => {
    await expect(resolveInRoot(root, '/loop-a/x')).rejects.toBeInstanceOf(PathEscapeError);
  });

  it('creates missing directories inside the root when asked', async () => {
    const p = await resolveInRoot(root, '/etc/evil/new/dir', { mkdirs: true });
    expect(p).toBe(join(root, 'new/dir'));
    expect((await stat(p)).isDirectory()).toBe(true);
  });
});

describe('Chroot file access', () => {
  it('refuses to write through a symlink, hostile or not', async () => {
    const chroot = createChroot({ root });
    await expect(chroot.writeFile('/etc/evil', 'x')).rejects.toBeInstanceOf(PathEscapeError);
    await expect(chroot.writeFile('/etc/abs-outside', 'x')).rejects.toBeInstanceOf(PathEscapeError);
    await expect(chroot.writeFile('/etc/up', 'x')).rejects.toThrow(/symlink/);
    expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('host secret\n');
  });

  it('writes through symlinked directories only inside the root', async () => {
    const chroot = createChroot({ root });
    await chroot.writeFile('/etc/evil/tmp-file', 'inside\n');
    await chroot.writeFile('/etc/up/etc/from-up', 'inside\n');
    await mkdir(join(root, outside.slice(1)), { recursive: true });
    await chroot.writeFile('/etc/abs-outside/secret', 'image copy\n');
    expect(await readFile(join(root, 'tmp-file'), 'utf8')).toBe('inside\n');
    expect(await readFile(join(root, 'etc/from-up'), 'utf8')).toBe('inside\n');
    expect(await readFile(join(root, outside.slice(1), 'secret'), 'utf8')).toBe('image copy\n');
    // The host's file is untouched.
    expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('host secret\n');
  });

  it('reads through symlinks inside the root, never the host’s file', async () => {
    const chroot = createChroot({ root });
    expect(await chroot.readFile('/etc/evil/etc/hosts', 'utf8')).toBe('image hosts\n');
    await expect(chroot.readFile('/etc/abs-outside/secret')).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(chroot.readFile('/etc/up/../../outside/secret')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('writes with the given mode and follows a final symlink only when asked', async () => {
    const chroot = createChroot({ root });
    await chroot.writeFile('/usr/lib/tool', '#!/bin/sh\n', { mode: 0o755 });
    expect((await stat(join(root, 'usr/lib/tool'))).mode & 0o777).toBe(0o755);
    await symlink('/usr/lib/tool', join(root, 'etc/tool-link'));
    await chroot.writeFile('/etc/tool-link', 'echo via link\n', { followSymlink: true });
    expect(await readFile(join(root, 'usr/lib/tool'), 'utf8')).toBe('echo via link\n');
  });

  it('copies a host tree in, symlinks as symlinks, never writing through an image symlink', async () => {
    const src = join(base, 'src');
    await mkdir(join(src, 'conf.d'), { recursive: true });
    await writeFile(join(src, 'conf.d/a.conf'), 'a\n', { mode: 0o600 });
    await symlink('a.conf', join(src, 'conf.d/link.conf'));
    const chroot = createChroot({ root });
    await chroot.copyIn(src, '/etc/app');
    expect(await readFile(join(root, 'etc/app/conf.d/a.conf'), 'utf8')).toBe('a\n');
    expect((await stat(join(root, 'etc/app/conf.d/a.conf'))).mode & 0o777).toBe(0o600);
    expect(await chroot.readFile('/etc/app/conf.d/link.conf', 'utf8')).toBe('a\n');
    // Into an existing directory, like cp -R.
    await chroot.copyIn(join(src, 'conf.d/a.conf'), '/etc');
    expect(await readFile(join(root, 'etc/a.conf'), 'utf8')).toBe('a\n');
    // A hostile symlink at the destination is refused.
    await writeFile(join(base, 'evil-src'), 'x');
    await expect(chroot.copyIn(join(base, 'evil-src'), '/etc/abs-outside')).rejects.toBeInstanceOf(PathEscapeError);
    expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('host secret\n');
  });

  it('path() gives a host path with every symlink resolved inside the root', async () => {
    const chroot = createChroot({ root });
    expect(await chroot.path('/etc/evil')).toBe(root);
    expect(await chroot.path('/lib')).toBe(join(root, 'usr/lib'));
  });
});
