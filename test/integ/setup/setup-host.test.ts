/**
 * scripts/setup-host.sh on a fresh machine: a Debian minbase root made with debootstrap (downloads
 * cached under node_modules/.cache), entered with chroot. Without root it lists what to install in
 * one message and changes nothing; as root it installs the packages and the tools exist after.
 */
import { execFile } from 'node:child_process';
import { access, copyFile, mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestDir, requireRoot } from '../../helpers/loop.js';
import type { TestDir } from '../../helpers/loop.js';

const execFileP = promisify(execFile);
const ROOT = join(import.meta.dirname, '../../..');
const SCRIPT = join(ROOT, 'scripts/setup-host.sh');
const SUITE = 'bookworm';
const MIRROR = 'http://deb.debian.org/debian';
const TARBALL = join(ROOT, `node_modules/.cache/debootstrap-${SUITE}-minbase.tgz`);
const TOOLS = [
  'losetup',
  'mount',
  'partx',
  'sfdisk',
  'mkfs.ext4',
  'mkfs.xfs',
  'chroot',
  'fuser',
  'lsof',
  'flock',
  'blkid',
  'filefrag',
];

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function sh(file: string, args: readonly string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileP(file, args, { maxBuffer: 64 * 1024 * 1024, timeout: 600_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw error;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

let dir: TestDir | undefined;
let root = '';
let procMounted = false;

/** Runs the setup script inside the fresh root, as `user` (a uid:gid) or root. */
function inRoot(args: readonly string[], user?: string): Promise<Run> {
  const env = ['env', '-i', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'];
  return sh('chroot', [...(user ? [`--userspec=${user}`] : []), root, ...env, 'sh', '/setup-host.sh', ...args]);
}

beforeAll(async () => {
  requireRoot();
  if (!(await exists('/usr/sbin/debootstrap')))
    throw new Error('debootstrap is missing: apt-get install debootstrap (this test builds a fresh Debian root)');
  dir = await makeTestDir('ami-chroot-setup-');
  root = join(dir.path, 'root');
  await mkdir(root);
  if (!(await exists(TARBALL))) {
    const work = join(dir.path, 'download');
    // npm ci empties node_modules, the cache's folder with it.
    await mkdir(dirname(TARBALL), { recursive: true });
    const made = await sh('debootstrap', ['--variant=minbase', `--make-tarball=${TARBALL}`, SUITE, work, MIRROR]);
    expect(made.code, made.stderr).toBe(0);
  }
  const unpacked = await sh('debootstrap', ['--variant=minbase', `--unpack-tarball=${TARBALL}`, SUITE, root, MIRROR]);
  expect(unpacked.code, unpacked.stdout + unpacked.stderr).toBe(0);
  await copyFile(SCRIPT, join(root, 'setup-host.sh'));
  // apt inside the root resolves the mirror with the host's resolver.
  await copyFile('/etc/resolv.conf', join(root, 'etc/resolv.conf'));
  await sh('mount', ['-t', 'proc', 'proc', join(root, 'proc')]).then((r) => {
    expect(r.code, r.stderr).toBe(0);
    procMounted = true;
  });
}, 900_000);

afterAll(async () => {
  if (procMounted) await sh('umount', [join(root, 'proc')]);
  if (dir) await dir.cleanup();
}, 120_000);

describe('scripts/setup-host.sh in a fresh Debian root', () => {
  it('starts without the packages the tests need', async () => {
    const present = await Promise.all(
      ['sbin/sfdisk', 'bin/busybox', 'bin/lsof'].map((p) => exists(join(root, 'usr', p))),
    );
    expect(present).toEqual([false, false, false]);
  });

  it('without root: one message lists what to install, exit 1, nothing installed', async () => {
    const r = await inRoot([], '65534:65534');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ami-chroot host setup: missing OS packages: .*busybox-static.*fdisk/m);
    expect(r.stderr).toMatch(/apt-get install .*lsof.*psmisc/);
    expect(await exists(join(root, 'usr/sbin/sfdisk'))).toBe(false);
  });

  it('AMI_CHROOT_SKIP_SETUP=1 turns it off', async () => {
    const r = await sh('chroot', [root, 'env', 'AMI_CHROOT_SKIP_SETUP=1', 'sh', '/setup-host.sh']);
    expect(r).toMatchObject({ code: 0, stdout: expect.stringContaining('skipped') });
    expect(await exists(join(root, 'usr/sbin/sfdisk'))).toBe(false);
  });

  it('as root: says what it installs, installs it, and a second run finds everything', async () => {
    // --warn-only: moto_server is not an apt package and stays missing in this root.
    const r = await inRoot(['--warn-only']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/installing .*busybox-static.*fdisk.*lsof.*psmisc/);
    expect(r.stdout).toContain('ami-chroot host setup: installed');
    // apt's own warnings (no /dev/pts in the root) may come first; no package is reported missing.
    expect(r.stderr).toContain('ami-chroot host setup: moto_server is missing');
    expect(r.stderr).not.toContain('missing OS packages');
    const found = await sh('chroot', [root, 'sh', '-c', TOOLS.map((t) => `command -v ${t}`).join(' && ')]);
    expect(found.code, found.stderr).toBe(0);
    expect(found.stdout.trim().split('\n')).toHaveLength(TOOLS.length);
    const busybox = await readFile(join(root, 'bin/busybox'));
    expect(busybox.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    const again = await inRoot(['--warn-only']);
    expect(again.stdout).toContain('every OS package is present');
  }, 900_000);
});
