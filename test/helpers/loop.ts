/**
 * Test helpers for real loop devices and mounts: temp dirs that are always removed, images on
 * loop devices that are always detached, and a leak check over mountinfo and losetup.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBusyboxImage } from '../../fixtures/busybox-image.js';
import type { BusyboxImageOptions } from '../../fixtures/busybox-image.js';
import { run } from '../../src/host/exec.js';
import { attachLoop } from '../../src/host/loop.js';
import type { LoopDevice } from '../../src/host/loop.js';
import { parseMountInfo, unmountTree } from '../../src/host/mounts.js';

const quiet = { warn: () => {}, error: () => {} };

/**
 * Fails fast, with what to do, when the machine cannot run host tests.
 * @internal
 */
export function requireRoot(): void {
  if (process.getuid?.() !== 0)
    throw new Error('Host integration tests need root (mounts, loop devices, chroot). Run them as root.');
}

/**
 * A temp directory for one test. `cleanup()` unmounts anything left under it (force), detaches
 * loop devices over files in it, and removes it.
 * @internal
 */
export interface TestDir {
  readonly path: string;
  cleanup(): Promise<void>;
}

/** @internal */
export async function makeTestDir(prefix = 'ami-chroot-test-'): Promise<TestDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return {
    path,
    cleanup: async () => {
      await forceCleanup(path);
      // Never delete recursively through a mount: a leftover /dev bind would take the host's
      // device nodes with it.
      const mounted = parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8')).filter(
        (m) => m.mountPoint === path || m.mountPoint.startsWith(`${path}/`),
      );
      if (mounted.length > 0) {
        throw new Error(`Not removing ${path}: still mounted there: ${mounted.map((m) => m.mountPoint).join(', ')}`);
      }
      await rm(path, { recursive: true, force: true });
    },
  };
}

/**
 * Unmounts everything under `dir` and detaches loop devices whose backing file is under `dir`.
 * For `finally` blocks: works whatever state a failed test left.
 * @internal
 */
export async function forceCleanup(dir: string): Promise<void> {
  await unmountTree(dir, { logger: quiet, killGraceMs: 500 }).catch(() => {});
  for (const loop of loopsUnder(dir)) {
    await run('partx', ['-d', loop.device]).catch(() => {});
    await run('losetup', ['-d', loop.device]).catch(() => {});
  }
}

function loopsUnder(dir: string): { device: string; file: string }[] {
  const out = execFileSync('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((f): f is [string, string] => f.length >= 2 && f[1]!.startsWith(`${dir}/`))
    .map(([device, file]) => ({ device, file }));
}

/**
 * Describes what is still mounted under `dir` and which loop devices (other than `ignore`) are
 * backed by files under it; undefined when nothing leaked.
 * @internal
 */
export async function findLeaks(dir: string, ignore: readonly string[] = []): Promise<string | undefined> {
  const mounts = parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8')).filter(
    (m) => m.mountPoint === dir || m.mountPoint.startsWith(`${dir}/`),
  );
  const loops = loopsUnder(dir).filter((l) => !ignore.includes(l.device));
  if (mounts.length === 0 && loops.length === 0) return undefined;
  return `Leaked under ${dir}: mounts [${mounts.map((m) => m.mountPoint).join(', ')}], loop devices [${loops.map((l) => `${l.device}=${l.file}`).join(', ')}]`;
}

/**
 * Throws if anything is still mounted under `dir`, or a loop device is backed by a file under it.
 * @internal
 */
export async function assertNoLeaks(dir: string, ignore: readonly string[] = []): Promise<void> {
  const leak = await findLeaks(dir, ignore);
  if (leak) throw new Error(leak);
}

/**
 * A busybox image attached to a loop device, in its own temp dir.
 * @internal
 */
export interface LoopImage {
  readonly dir: string;
  readonly image: string;
  readonly loop: LoopDevice;
}

/**
 * Makes a busybox image in a temp dir, attaches it, runs `fn`, and always detaches the loop
 * device, unmounts leftovers and removes the dir, then checks nothing leaked.
 * @internal
 */
export async function withLoopImage<T>(
  fn: (img: LoopImage) => Promise<T>,
  options: BusyboxImageOptions = {},
): Promise<T> {
  requireRoot();
  const dir = await makeTestDir();
  try {
    const image = join(dir.path, 'disk.img');
    await makeBusyboxImage(image, options);
    const loop = await attachLoop({ file: image, stateDir: false });
    let leak: string | undefined;
    let result: T;
    try {
      result = await fn({ dir: dir.path, image, loop });
    } finally {
      // The code under test must have unmounted everything; our own loop device is ours to detach.
      leak = await findLeaks(dir.path, [loop.device]);
      await unmountTree(dir.path, { logger: quiet, killGraceMs: 500 }).catch(() => {});
      await loop.detach().catch(() => {});
      await forceCleanup(dir.path);
    }
    // Reached only when the test itself passed: a failure's own error matters more than a leak.
    if (leak) throw new Error(leak);
    return result;
  } finally {
    await dir.cleanup();
  }
}
