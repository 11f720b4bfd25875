/**
 * Holders of a busy mount: a process in another mount namespace that merely uses the same path
 * is never signalled, and a holder the unmount will not stop is warned about once, not retried.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, open, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UnmountError } from '../../../src/errors.js';
import { run } from '../../../src/host/exec.js';
import { unmountTree } from '../../../src/host/mounts.js';
import { findHolders, stopHolders } from '../../../src/host/processes.js';
import { toCtx } from '../../../src/internal/ctx.js';
import { makeTestDir, requireRoot } from '../../helpers/loop.js';
import type { TestDir } from '../../helpers/loop.js';

let dir: TestDir;
let other: ChildProcess | undefined;
beforeEach(async () => {
  requireRoot();
  dir = await makeTestDir('holders-');
});
afterEach(async () => {
  if (other && other.exitCode === null && other.signalCode === null) {
    const exited = new Promise((resolve) => other!.once('exit', resolve));
    other.kill('SIGKILL');
    await exited;
  }
  other = undefined;
  await dir.cleanup();
});

function alive(p: ChildProcess): boolean {
  return p.exitCode === null && p.signalCode === null;
}

describe('holders in other mount namespaces', () => {
  it('never signals a process of another mount namespace whose cwd has the same path', async () => {
    const root = join(dir.path, 'root');
    await mkdir(root);
    await run('mount', ['-t', 'tmpfs', 'ours', root]);
    try {
      // Its own tmpfs at the same path, in its own namespace: nothing of ours.
      other = spawn(
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          'sh',
          '-c',
          `mount -t tmpfs theirs "$0" && cd "$0" && exec sleep 300`,
          root,
        ],
        { stdio: 'ignore' },
      );
      const pid = other.pid!;
      for (let i = 0; i < 200 && (await readlink(`/proc/${pid}/cwd`).catch(() => '')) !== root; i++)
        await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await readlink(`/proc/${pid}/cwd`)).toBe(root);

      const warnings: string[] = [];
      const ctx = toCtx({ logger: { warn: (m: string) => warnings.push(m), info: () => {} } });
      const left = await stopHolders(root, ctx, { graceMs: 300 });
      expect(alive(other)).toBe(true);
      expect(left.map((h) => h.pid)).not.toContain(pid);
      expect((await findHolders(root)).map((h) => h.pid)).not.toContain(pid);
    } finally {
      await run('umount', [root]);
    }
  }, 30_000);
});

describe('busy unmount', () => {
  it('warns once about a holder it will not stop, and stops retrying against it', async () => {
    const root = join(dir.path, 'root');
    await mkdir(root);
    await run('mount', ['-t', 'tmpfs', 'ours', root]);
    // This process holds it: it is protected, never stopped.
    const held = await open(join(root, 'held'), 'w');
    try {
      const warnings: string[] = [];
      const error = await unmountTree(root, {
        logger: { warn: (m: string) => warnings.push(m), info: () => {}, error: () => {} },
        attempts: 6,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnmountError);
      expect(warnings.filter((w) => w.includes(`Process ${process.pid} `))).toHaveLength(1);
      expect((error as Error).message).toContain('after 2 attempts');
    } finally {
      await held.close();
      await run('umount', [root]);
    }
  }, 30_000);
});
