/**
 * recoverHost runs as root and obeys journals: a tampered state dir or journal must not make it
 * delete, rename, unmount or signal anything its own dead build did not make.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { run } from '../../../src/host/exec.js';
import { readMountInfo } from '../../../src/host/mounts.js';
import { recoverHost } from '../../../src/host/recover.js';
import { makeTestDir, requireRoot } from '../../helpers/loop.js';
import type { TestDir } from '../../helpers/loop.js';

const quiet = { warn: () => {}, info: () => {}, error: () => {} };
/** A pid no process has (above the default pid_max). */
const DEAD_PID = 2 ** 22 + 7;

let dir: TestDir;
let stateDir: string;
let holder: ChildProcess | undefined;
beforeEach(async () => {
  requireRoot();
  dir = await makeTestDir('recover-trust-');
  stateDir = join(dir.path, 'state');
  await mkdir(stateDir, { mode: 0o700 });
});
afterEach(async () => {
  if (holder && holder.exitCode === null && holder.signalCode === null) {
    const exited = new Promise((resolve) => holder!.once('exit', resolve));
    holder.kill('SIGKILL');
    await exited;
  }
  holder = undefined;
  await dir.cleanup();
});

async function writeJournal(name: string, entries: readonly unknown[]): Promise<string> {
  const path = join(stateDir, name);
  const data = { version: 1, pid: DEAD_PID, startTime: 1, createdAt: '', label: 'mount evil', entries };
  await writeFile(path, JSON.stringify(data), { mode: 0o600 });
  return path;
}

const recover = () => recoverHost({ stateDir, lockDir: join(dir.path, 'lock'), killGraceMs: 200 }, { logger: quiet });

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describe('recoverHost trusts only its own journals', () => {
  it('refuses a state dir others can write to, before acting on anything in it', async () => {
    const victim = join(dir.path, 'victim-dir');
    await mkdir(victim);
    await writeJournal('planted.json', [{ type: 'dir', path: victim }]);
    await chmod(stateDir, 0o777);
    const error = await recover().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ issues: [{ path: 'stateDir', value: stateDir }] });
    expect(await exists(victim)).toBe(true);
  });

  it('leaves a journal owned by another user alone and reports it', async () => {
    const victim = join(dir.path, 'victim-dir');
    await mkdir(victim);
    const journal = await writeJournal('foreign.json', [{ type: 'dir', path: victim }]);
    await chown(journal, 65534, 65534);
    const report = await recover();
    expect(await exists(victim)).toBe(true);
    expect(await exists(journal)).toBe(true);
    expect(report.refused).toEqual([{ journal, reason: expect.stringContaining('uid 65534') as string }]);
  });

  it('never deletes or renames a file outside the build’s mount root', async () => {
    const root = join(dir.path, 'root');
    await mkdir(root);
    await run('mount', ['-t', 'tmpfs', 'tmpfs', root]);
    const made = (await readMountInfo()).filter((m) => m.mountPoint === root).at(-1)!;
    const host = join(dir.path, 'host');
    await mkdir(host);
    await writeFile(join(host, 'passwd'), 'host file');
    await writeFile(join(host, 'planted'), 'attacker file');
    // Old-style host paths: the file and a "backup" to rename over a host file.
    await writeJournal('outside.json', [
      { type: 'mount', target: root, id: made.id, majorMinor: made.majorMinor },
      { type: 'file', root, path: join(host, 'passwd'), backup: join(host, 'planted') },
    ]);
    const report = await recover();
    expect(await readFile(join(host, 'passwd'), 'utf8')).toBe('host file');
    expect(await readFile(join(host, 'planted'), 'utf8')).toBe('attacker file');
    expect(report.refused).toHaveLength(1);
    await run('umount', [root]);
  });

  it('never unmounts a mount the build did not make, nor signals its users', async () => {
    const target = join(dir.path, 'someone-elses');
    await mkdir(target);
    await run('mount', ['-t', 'tmpfs', 'tmpfs', target]);
    holder = spawn('sleep', ['300'], { cwd: target, stdio: 'ignore' });
    await new Promise((resolve) => holder!.once('spawn', resolve));
    // The journal names the path but recorded no mount of its own there.
    const journal = await writeJournal('never-made.json', [{ type: 'mount', target }]);
    const error = await recover().catch((e: unknown) => e);
    expect(String(error)).toContain('not by this build');
    expect((await readMountInfo()).some((m) => m.mountPoint === target)).toBe(true);
    expect(holder.exitCode).toBeNull();
    expect(holder.signalCode).toBeNull();
    expect(await readdir(stateDir)).toEqual(['never-made.json']);
    expect(await exists(journal)).toBe(true);
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder!.once('exit', resolve));
    await run('umount', [target]);
  });

  it('removes the .partial work file a dead buildImage left, and nothing else', async () => {
    const work = join(dir.path, 'out.raw.partial');
    await writeFile(work, 'half an image');
    await writeFile(join(dir.path, 'out.raw'), 'finished image');
    await writeJournal('image.json', [{ type: 'work-file', path: work }]);
    const report = await recover();
    expect(report.recovered[0]).toMatchObject({ removedWorkFiles: [work] });
    expect(await exists(work)).toBe(false);
    expect(await readFile(join(dir.path, 'out.raw'), 'utf8')).toBe('finished image');
    expect(await readdir(stateDir)).toEqual([]);
    // A work-file entry must name a .partial file.
    await writeJournal('bad.json', [{ type: 'work-file', path: join(dir.path, 'out.raw') }]);
    expect((await recover()).refused).toHaveLength(1);
    expect(await exists(join(dir.path, 'out.raw'))).toBe(true);
  });

  it('detaches the loop device over the recorded inode, never one over a new file of that name', async () => {
    const image = join(dir.path, 'work.img');
    await writeFile(image, Buffer.alloc(1 << 20));
    const { ino, dev } = await stat(image);
    const attach = async (): Promise<string> => (await run('losetup', ['--find', '--show', image])).stdout.trim();
    const dead = await attach();
    // The dead build's file is gone; a live build made a new one under the same name and uses it.
    await run('rm', ['-f', image]);
    await writeFile(image, Buffer.alloc(1 << 20));
    const live = await attach();
    try {
      await writeJournal('loop.json', [{ type: 'loop', file: image, device: dead, ino, dev }]);
      const report = await recover();
      expect(report.recovered[0]).toMatchObject({ detachedLoops: [dead] });
      const { stdout } = await run('losetup', ['--list', '--noheadings', '--output', 'NAME']);
      const attached = stdout.split('\n').map((l) => l.trim());
      expect(attached).toContain(live);
      expect(attached).not.toContain(dead);
      // A malformed identity is refused, not guessed at.
      await writeJournal('bad-loop.json', [{ type: 'loop', file: image, ino: 'x', dev }]);
      expect((await recover()).refused).toHaveLength(1);
    } finally {
      for (const device of [dead, live]) await run('losetup', ['-d', device]).catch(() => undefined);
    }
  });

  it('refuses journals naming system mount points or paths, without acting', async () => {
    for (const target of ['/', '/proc', '/sys', '/dev', '/run', '/sys/fs/cgroup']) {
      await writeJournal('system.json', [{ type: 'mount', target }]);
      const report = await recover();
      expect(report.refused).toEqual([
        { journal: join(stateDir, 'system.json'), reason: expect.stringContaining(target) as string },
      ]);
      expect(report.recovered).toEqual([]);
    }
  });
});
