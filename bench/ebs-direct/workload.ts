/**
 * The benchmark's workload: a source ext4 image of realistic fill, and a provision that installs
 * packages the way dpkg does.
 */
import { randomFillSync } from 'node:crypto';
import { mkdir, readFile, readdir, rename, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/host/exec.js';
import { attachLoop } from '../../src/host/loop.js';
import { createRng } from '../lib/prng.js';

const MiB = 1024 * 1024;

/** Random (incompressible) bytes. */
const noise = (length: number): Buffer => randomFillSync(Buffer.alloc(length));

/** The source: an ext4 file system of `sizeMiB` whose itables are initialised (as a booted image's are), `fillMiB` of files. */
export async function makeSource(file: string, mnt: string, sizeMiB: number, fillMiB: number): Promise<void> {
  await writeFile(file, '');
  await truncate(file, sizeMiB * MiB);
  await run('mkfs.ext4', ['-q', '-F', '-L', 'root', '-E', 'lazy_itable_init=0,lazy_journal_init=0', file]);
  const loop = await attachLoop({ file, stateDir: false });
  try {
    await mkdir(mnt, { recursive: true });
    await run('mount', [loop.device, mnt]);
    try {
      const rng = createRng(7, 'ebs-direct-source');
      let left = fillMiB * MiB;
      for (let d = 0; left > 0; d++) {
        const dir = join(mnt, 'usr', 'share', `pkg${d}`);
        await mkdir(dir, { recursive: true });
        for (let f = 0; f < 40 && left > 0; f++) {
          const size = Math.min(left, rng.int(1, 64) * 16 * 1024);
          await writeFile(join(dir, `file${f}`), noise(size));
          left -= size;
        }
      }
      await mkdir(join(mnt, 'var', 'lib', 'dpkg'), { recursive: true });
      await writeFile(join(mnt, 'var', 'lib', 'dpkg', 'status'), 'Package: base\nStatus: install ok installed\n\n');
    } finally {
      await run('umount', [mnt]);
    }
  } finally {
    await loop.detach();
  }
}

/**
 * A package install as dpkg does it, on the mounted file system: new files written under a
 * temporary name and renamed, the status file rewritten after each package, existing files read.
 * `changeMiB` of new files. Returns the bytes written.
 */
export async function installPackages(root: string, seed: number, changeMiB: number): Promise<number> {
  const rng = createRng(seed, 'ebs-direct-provision');
  let written = 0;
  const existing = (await readdir(join(root, 'usr', 'share'))).filter((n) => n.startsWith('pkg'));
  for (let i = 0; i < 300; i++) {
    const dir = join(root, 'usr', 'share', existing[rng.int(0, existing.length - 1)]!);
    const names = await readdir(dir);
    await readFile(join(dir, names[rng.int(0, names.length - 1)]!));
  }
  const status = join(root, 'var', 'lib', 'dpkg', 'status');
  let left = changeMiB * MiB;
  for (let p = 0; left > 0; p++) {
    const dir = join(root, 'usr', 'lib', `new-pkg${seed}-${p}`);
    await mkdir(dir, { recursive: true });
    for (let f = 0; f < 25 && left > 0; f++) {
      const size = Math.min(left, rng.int(1, 48) * 4096);
      const target = join(dir, `lib${f}.so`);
      await writeFile(`${target}.dpkg-new`, noise(size));
      await rename(`${target}.dpkg-new`, target);
      left -= size;
      written += size;
    }
    const text = `${await readFile(status, 'utf8')}Package: new-pkg${p}\nStatus: install ok installed\n\n`;
    await writeFile(`${status}-new`, text);
    await rename(`${status}-new`, status);
    written += text.length;
  }
  return written;
}
