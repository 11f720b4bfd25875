/**
 * No leaked servers: the test EC2 servers a process starts die with it, however it dies. A child
 * (plain Node with tsx, or a vitest worker) starts two servers and is killed; their PIDs must be
 * gone within seconds.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const HOLD = join(ROOT, 'test/e2e/children/hold-moto.ts');

interface Held {
  readonly worker: number;
  readonly servers: readonly number[];
}

/** The directory of a running server's AMIs file (the fixture's temporary directory). */
async function amisDir(pid: number): Promise<string> {
  const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
  const path = environ.find((v) => v.startsWith('MOTO_AMIS_PATH='))?.slice('MOTO_AMIS_PATH='.length);
  expect(path, `server ${pid} has an AMIs file`).toBeDefined();
  return dirname(path!);
}

/** Alive and not a zombie. */
async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function survivors(pids: readonly number[], withinMs: number): Promise<number[]> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const left: number[] = [];
    for (const pid of pids) if (await alive(pid)) left.push(pid);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once('exit', () => r()));
}

// What each test started, killed in afterEach if the test failed before it could.
let started: { children: ChildProcess[]; servers: number[]; dirs: string[] } = { children: [], servers: [], dirs: [] };

afterEach(async () => {
  for (const child of started.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const pid of started.servers) if (await alive(pid)) process.kill(pid, 'SIGKILL');
  for (const dir of started.dirs) await rm(dir, { recursive: true, force: true });
  started = { children: [], servers: [], dirs: [] };
});

describe('test EC2 servers die with the process that started them', () => {
  it.each(['SIGTERM', 'SIGINT', 'SIGKILL'] as const)('a Node process killed with %s', async (signal) => {
    const child = spawn(process.execPath, ['--import', 'tsx', HOLD], {
      cwd: ROOT,
      env: { ...process.env, HOLD_MOTO_MAIN: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    started.children.push(child);
    const held = await new Promise<Held>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(JSON.parse(out.slice(0, out.indexOf('\n'))) as Held);
      });
      child.once('exit', (code, sig) => reject(new Error(`the child exited first: ${code} ${sig}`)));
    });
    started.servers.push(...held.servers);
    expect(held.servers).toHaveLength(2);
    expect(await survivors(held.servers, 0)).toEqual(held.servers);
    const dirs = await Promise.all(held.servers.map(amisDir));

    child.kill(signal);
    await exited(child);
    expect(await survivors(held.servers, 10_000)).toEqual([]);
    // Nor do their temporary directories: a killed parent cannot remove them, so none outlives startup.
    const left = await Promise.all(
      dirs.map((d) =>
        access(d).then(
          () => d,
          () => undefined,
        ),
      ),
    );
    expect(left.filter(Boolean)).toEqual([]);
  });

  it('a vitest worker killed with SIGKILL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ami-chroot-lifetime-'));
    started.dirs.push(dir);
    const out = join(dir, 'held.json');
    const config = join(dir, 'vitest.config.mjs');
    await writeFile(
      config,
      `export default { test: { root: ${JSON.stringify(ROOT)}, include: ['test/e2e/children/hold-moto.vitest.ts'], testTimeout: 3600000 } };\n`,
    );
    const vitest = spawn(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--config', config], {
      cwd: ROOT,
      env: { ...process.env, HOLD_MOTO_OUT: out },
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    started.children.push(vitest);
    let held: Held | undefined;
    for (let i = 0; i < 600 && !held; i++) {
      held = await readFile(out, 'utf8').then(
        (text) => JSON.parse(text) as Held,
        () => undefined,
      );
      if (!held) await new Promise((r) => setTimeout(r, 100));
    }
    expect(held, 'the vitest worker reported its servers').toBeDefined();
    started.servers.push(...held!.servers);
    expect(held!.worker).not.toBe(vitest.pid);
    expect(await survivors(held!.servers, 0)).toEqual(held!.servers);

    process.kill(held!.worker, 'SIGKILL');
    expect(await survivors(held!.servers, 10_000)).toEqual([]);
    vitest.kill('SIGTERM');
    await exited(vitest);
  });
});
