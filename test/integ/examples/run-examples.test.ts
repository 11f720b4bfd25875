import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, rmdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE_RESOLV_CONF, makeBusyboxImage } from '../../../fixtures/busybox-image.js';
import { run } from '../../../src/host/exec.js';
import { DEFAULT_STATE_DIR } from '../../../src/host/defaults.js';
import { attachLoop } from '../../../src/host/loop.js';
import { readMountInfo } from '../../../src/host/mounts.js';
import { assertNoLeaks, makeTestDir, requireRoot } from '../../helpers/loop.js';
import type { TestDir } from '../../helpers/loop.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const TSX = join(ROOT, 'node_modules/.bin/tsx');

/** Runs an example as a user would (tsx, from the repository root) and collects its output. */
function runExample(
  file: string,
  args: readonly string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(TSX, [file, ...args], {
      cwd: ROOT,
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

/** Nothing of the examples' own temp directories is mounted or backs a loop device any more. */
async function assertExampleTempsGone(): Promise<void> {
  const mounts = (await readMountInfo()).filter((m) => m.mountPoint.includes('/ami-chroot-example-'));
  expect(mounts.map((m) => m.mountPoint)).toEqual([]);
  const { stdout } = await run('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE']);
  expect(stdout.split('\n').filter((l) => l.includes('/ami-chroot-example-'))).toEqual([]);
}

/** Journals that a process which has exited left in the default state directory since `since`. */
async function orphanJournals(since: number): Promise<string[]> {
  const names = await readdir(DEFAULT_STATE_DIR).catch(() => [] as string[]);
  const orphans: string[] = [];
  for (const name of names.filter((n) => n.endsWith('.json'))) {
    const data = JSON.parse(await readFile(join(DEFAULT_STATE_DIR, name), 'utf8').catch(() => '{}')) as {
      pid?: number;
      createdAt?: string;
    };
    if (!data.pid || Date.parse(data.createdAt ?? '') < since) continue;
    const alive = await stat(`/proc/${data.pid}`).then(
      () => true,
      () => false,
    );
    if (!alive) orphans.push(name);
  }
  return orphans;
}

async function inspect<T>(image: string, dir: string, fn: (root: string) => Promise<T>): Promise<T> {
  const loop = await attachLoop({ file: image, readOnly: true, stateDir: false });
  const root = join(dir, `inspect-${Date.now()}`);
  await mkdir(root);
  try {
    await run('mount', ['-o', 'ro', loop.partitions[0]!, root]);
    try {
      return await fn(root);
    } finally {
      await run('umount', [root]);
    }
  } finally {
    await loop.detach();
    await rmdir(root);
  }
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

let dir: TestDir;
let source: string;
beforeAll(async () => {
  requireRoot();
  dir = await makeTestDir('ami-chroot-examples-');
  source = join(dir.path, 'source.img');
  await makeBusyboxImage(source, { sizeMiB: 32 });
});
afterAll(async () => {
  await dir?.cleanup();
});

describe('runnable examples (root, loop devices, no AWS)', () => {
  it('with-chroot.ts on its own throwaway disk: works inside, unmounts, leaves nothing', async () => {
    const since = Date.now();
    const { code, stdout, stderr } = await runExample('examples/with-chroot.ts');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/is attached to \/dev\/loop\d+ \(partitions: \/dev\/loop\d+p1\)/);
    expect(stdout).toContain('inside the chroot: uname -m = ');
    expect(stdout).toContain("inside the chroot: resolv.conf is the host's");
    expect(stdout).toContain('unmounted; the image is BusyBox test image, with a new /etc/motd');
    await assertExampleTempsGone();
    expect(await orphanJournals(since)).toEqual([]);
  });

  it("with-chroot.ts on a given image writes into it and puts the image's own resolv.conf back", async () => {
    const image = join(dir.path, 'given.img');
    await run('cp', ['--sparse=always', source, image]);
    const { code, stderr } = await runExample('examples/with-chroot.ts', [image]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    await inspect(image, dir.path, async (root) => {
      expect(await readFile(join(root, 'etc/motd'), 'utf8')).toBe('Written by examples/with-chroot.ts\n');
      expect(await readFile(join(root, 'etc/resolv.conf'), 'utf8')).toBe(IMAGE_RESOLV_CONF);
      await expect(lstat(join(root, 'usr/sbin/policy-rc.d'))).rejects.toMatchObject({ code: 'ENOENT' });
    });
    await assertNoLeaks(dir.path);
    await assertExampleTempsGone();
  });

  it('local-image.ts with its defaults: builds and reports every phase', async () => {
    const since = Date.now();
    const { code, stdout, stderr } = await runExample('examples/local-image.ts');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    for (const phase of ['validate', 'volume', 'attach', 'mount', 'provision', 'unmount', 'detach', 'register'])
      expect(stdout).toContain(`✓ ${phase} `);
    expect(stdout).toMatch(/provisioned on \/dev\/loop\d+: \/srv\/www has index\.html/);
    expect(stdout).toMatch(/web\.raw: 48 MiB disk, [\d.]+ MiB allocated/);
    await assertExampleTempsGone();
    expect(await orphanJournals(since)).toEqual([]);
  });

  it('local-image.ts from a given source to a given output: the output holds the provisioning, the source is untouched', async () => {
    const output = join(dir.path, 'web.raw');
    const before = await sha256(source);
    const { code, stderr } = await runExample('examples/local-image.ts', [source, output]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(await sha256(source)).toBe(before);
    expect((await stat(output)).size).toBe(48 * 1024 * 1024);
    await inspect(output, dir.path, async (root) => {
      expect(await readFile(join(root, 'srv/www/index.html'), 'utf8')).toBe('<h1>hello</h1>\n');
      expect(await readFile(join(root, 'etc/motd'), 'utf8')).toBe(`Built locally from ${source}.\n`);
      await expect(lstat(join(root, 'etc/.built-locally'))).resolves.toBeTruthy();
    });
    await assertNoLeaks(dir.path);
  });
});
