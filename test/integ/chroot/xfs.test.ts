/**
 * XFS roots (Amazon Linux 2/2023) on real XFS images: the work volume is a copy of the source's
 * root, so its UUID is one the host (booted from the same family) or a parallel build has
 * mounted already, and XFS refuses it. mountChroot and buildImage mount it with nouuid.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mountChroot } from '../../../src/chroot/mount.js';
import { run, shellQuote } from '../../../src/host/exec.js';
import { attachLoop } from '../../../src/host/loop.js';
import type { LoopDevice } from '../../../src/host/loop.js';
import { readMountInfo } from '../../../src/host/mounts.js';
import { buildImage } from '../../../src/pipeline/build-image.js';
import { assertNoLeaks, makeTestDir, requireRoot } from '../../helpers/loop.js';
import type { TestDir } from '../../helpers/loop.js';

const quiet = { warn: () => {}, info: () => {} };
/** mkfs.xfs refuses filesystems under 300 MB; the file stays sparse (a few MiB on disk). */
const SIZE_MIB = 320;

let dir: TestDir;
/** The source image: an msdos label, partition 1 XFS with /etc/os-release. */
let source: string;
/** The source attached and its partition mounted, as the host's own root would be. */
let original: LoopDevice;
const loops: LoopDevice[] = [];

async function makeXfsImage(path: string): Promise<void> {
  await run('truncate', ['-s', `${SIZE_MIB}M`, path]);
  await run('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', path], {
    input: 'label: dos\nstart=2048, type=83\n',
  });
  const loop = await attachLoop({ file: path, stateDir: false });
  try {
    await run('mkfs.xfs', ['-q', '-K', loop.partitions[0]!]);
  } finally {
    await loop.detach();
  }
}

async function attach(path: string): Promise<LoopDevice> {
  const loop = await attachLoop({ file: path, stateDir: false });
  loops.push(loop);
  return loop;
}

/** A clone of the source (same filesystem UUID), attached. */
async function clone(name: string): Promise<LoopDevice> {
  const path = join(dir.path, name);
  await run('cp', ['--sparse=always', '--', source, path]);
  return attach(path);
}

/** The super options of the filesystem mounted at `path`. */
async function superOptions(path: string): Promise<string[]> {
  const entry = (await readMountInfo()).find((m) => m.mountPoint === path);
  expect(entry, `${path} is mounted`).toBeDefined();
  expect(entry!.fsType).toBe('xfs');
  return entry!.superOptions.split(',');
}

beforeEach(async () => {
  requireRoot();
  dir = await makeTestDir('ami-chroot-xfs-');
  source = join(dir.path, 'source.raw');
  await makeXfsImage(source);
  original = await attach(source);
  const at = join(dir.path, 'host-root');
  await mkdir(at);
  await run('mount', [original.partitions[0]!, at]);
  await mkdir(join(at, 'etc'));
  await writeFile(join(at, 'etc/os-release'), 'NAME="Amazon Linux"\n');
  await run('sync');
});

afterEach(async () => {
  try {
    // Everything the code under test mounted is gone; only our own source mount remains.
    const leftover = (await readMountInfo()).filter(
      (m) => m.mountPoint.startsWith(`${dir.path}/`) && m.mountPoint !== join(dir.path, 'host-root'),
    );
    expect(leftover.map((m) => m.mountPoint)).toEqual([]);
  } finally {
    await run('umount', [join(dir.path, 'host-root')]).catch(() => {});
    for (const loop of loops.splice(0).reverse()) await loop.detach().catch(() => {});
    await dir.cleanup();
  }
  await assertNoLeaks(dir.path);
});

describe('XFS roots with a UUID already mounted', () => {
  it('cannot be mounted plainly: the reason nouuid is needed', async () => {
    const copy = await clone('copy.raw');
    const at = join(dir.path, 'plain');
    await mkdir(at);
    const uuid = async (device: string) =>
      (await run('blkid', ['-p', '-o', 'value', '-s', 'UUID', device])).stdout.trim();
    expect(await uuid(copy.partitions[0]!)).toBe(await uuid(original.partitions[0]!));
    await expect(run('mount', [copy.partitions[0]!, at])).rejects.toThrow(/exit code 32/);
    expect((await readMountInfo()).some((m) => m.mountPoint === at)).toBe(false);
    // The same mount with nouuid is all it takes.
    await run('mount', ['-o', 'nouuid', copy.partitions[0]!, at]);
    await run('umount', [at]);
  });

  it('mountChroot mounts the copy with nouuid and it is usable', async () => {
    const copy = await clone('copy.raw');
    const mounted = await mountChroot(
      {
        device: copy.device,
        mountPath: join(dir.path, 'mnt/{{.Device}}'),
        stateDir: join(dir.path, 'state'),
        chrootMounts: [],
        copyFiles: [],
        serviceGuard: false,
      },
      { logger: quiet },
    );
    try {
      expect(mounted.mountedDevice).toBe(copy.partitions[0]);
      expect(await superOptions(mounted.root)).toContain('nouuid');
      expect(await readFile(join(mounted.root, 'etc/os-release'), 'utf8')).toContain('Amazon Linux');
      await writeFile(join(mounted.root, 'etc/built'), 'yes\n');
    } finally {
      await mounted.unmount();
    }
  });

  it('keeps the user’s own nouuid without adding a second one', async () => {
    const copy = await clone('copy.raw');
    const log = join(dir.path, 'wrapped.log');
    const mounted = await mountChroot(
      {
        device: copy.device,
        mountPath: join(dir.path, 'mnt/{{.Device}}'),
        stateDir: false,
        mountOptions: ['noatime,nouuid'],
        chrootMounts: [],
        copyFiles: [],
        serviceGuard: false,
        commandWrapper: (command) => `printf '%s\\n' ${shellQuote(command)} >> ${shellQuote(log)}; ${command}`,
      },
      { logger: quiet },
    );
    try {
      expect(await superOptions(mounted.root)).toContain('nouuid');
    } finally {
      await mounted.unmount();
    }
    const mounts = (await readFile(log, 'utf8')).split('\n').filter((l) => l.startsWith('mount '));
    expect(mounts).toEqual([`mount --make-private -o noatime,nouuid ${copy.partitions[0]} ${mounted.root}`]);
  });

  it('buildImage builds from the source while the source is mounted', async () => {
    const output = join(dir.path, 'out.raw');
    await buildImage(
      {
        sourceImage: source,
        output,
        mountPath: join(dir.path, 'build/{{.Device}}'),
        chrootMounts: [],
        copyFiles: [],
      },
      async (chroot, info) => {
        expect(await superOptions(info.mountPath)).toContain('nouuid');
        await chroot.writeFile('/etc/built', 'by buildImage\n');
      },
      { logger: quiet, stateDir: join(dir.path, 'state') },
    );
    const built = await attach(output);
    const at = join(dir.path, 'inspect');
    await mkdir(at);
    await run('mount', ['-o', 'ro,nouuid', built.partitions[0]!, at]);
    try {
      expect(await readFile(join(at, 'etc/built'), 'utf8')).toBe('by buildImage\n');
    } finally {
      await run('umount', [at]);
    }
  });
});
