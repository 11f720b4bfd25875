import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../../../src/host/exec.js';
import { readMountInfo } from '../../../src/host/mounts.js';
import { requireRoot } from '../../helpers/loop.js';

const ROOT = resolve(import.meta.dirname, '../../..');

describe('npm run demo', () => {
  it('builds with buildAmi on moto and with buildImage, passes every self-check, and removes everything it made', async ({
    signal,
  }) => {
    requireRoot();
    const demoDirs = async () => (await readdir(tmpdir())).filter((n) => n.startsWith('ami-chroot-demo-'));
    const before = await demoDirs();
    // The package script itself, as the README tells users to run it.
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolvePromise, reject) => {
        const child = spawn('npm', ['run', '--silent', 'demo'], {
          cwd: ROOT,
          env: { ...process.env, NO_COLOR: '1' },
          stdio: ['ignore', 'pipe', 'pipe'],
          // On a timeout or a cancelled run, Ctrl-C the demo: it cleans up after itself then.
          signal,
          killSignal: 'SIGINT',
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.once('error', (error) => {
          if (!signal.aborted) reject(error);
        });
        child.once('close', (c) => resolvePromise({ code: c, stdout: out, stderr: err }));
      },
    );
    expect(stderr).toBe('');
    expect(code, stdout).toBe(0);
    expect(stdout).toMatch(/All \d+ checks passed/);
    expect(stdout).not.toContain('✗');
    // Both builds showed their phases, the AMI ids per region and the timings.
    expect(stdout).toMatch(/us-east-1\s+ami-[0-9a-f]+/);
    expect(stdout).toMatch(/eu-west-1\s+ami-[0-9a-f]+/);
    expect(stdout).toContain('✓ register');
    expect(stdout).toMatch(/Image: .*demo\.raw, 64\.0 MiB disk/);
    expect(stdout).toMatch(/AWS calls: \d+/);
    // Its temp directory, mounts and loop devices are gone.
    expect(await demoDirs()).toEqual(before);
    expect((await readMountInfo()).filter((m) => m.mountPoint.includes('/ami-chroot-demo-'))).toEqual([]);
    const { stdout: loops } = await run('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE']);
    expect(loops.split('\n').filter((l) => l.includes(join(tmpdir(), 'ami-chroot-demo-')))).toEqual([]);
  }, 180_000); // about 5 s alone; a loaded 2-core runner has taken over 60 s
});
