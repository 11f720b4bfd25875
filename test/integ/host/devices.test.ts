import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { allocateDevice } from '../../../src/host/devices.js';
import { makeTestDir } from '../../helpers/loop.js';
import type { TestDir } from '../../helpers/loop.js';
import { startChild } from './children/spawn.js';
import type { Child } from './children/spawn.js';

const SCRIPT = join(import.meta.dirname, 'children/allocate.ts');

let dir: TestDir;
let devRoot: string;
let lockDir: string;
const children: Child[] = [];
beforeEach(async () => {
  dir = await makeTestDir('devices-');
  devRoot = join(dir.path, 'dev');
  lockDir = join(dir.path, 'lock');
  await mkdir(devRoot);
});
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop()));
  await dir.cleanup();
});

describe('allocateDevice across processes', () => {
  it('gives 8 processes allocating at once 8 distinct names', async () => {
    for (let i = 0; i < 8; i++) children.push(startChild(SCRIPT, ['allocate', devRoot, lockDir]));
    const got = await Promise.all(
      children.map(async (c) => JSON.parse(await c.nextLine()) as { attachmentName: string; pid: number }),
    );
    const devices = got.map((g) => g.attachmentName);
    expect(new Set(devices).size).toBe(8);
    for (const d of devices) expect(d).toMatch(/^\/dev\/sd[f-p]$/);
    expect((await readdir(lockDir)).filter((n) => n.endsWith('.reservation'))).toHaveLength(8);
    // Each releases when its stdin closes.
    for (const c of children) c.proc.stdin!.end();
    expect(await Promise.all(children.map((c) => c.exited))).toEqual(Array(8).fill(0));
    expect((await readdir(lockDir)).filter((n) => n.endsWith('.reservation'))).toEqual([]);
  });

  it('does not let a SIGKILLed holder of a reservation block others', async () => {
    const victim = startChild(SCRIPT, ['allocate', devRoot, lockDir]);
    children.push(victim);
    const { attachmentName } = JSON.parse(await victim.nextLine()) as { attachmentName: string };
    expect(attachmentName).toBe('/dev/sdf');
    // While it lives, its name is taken.
    const other = await allocateDevice({ devRoot, lockDir });
    expect(other.attachmentName).toBe('/dev/sdg');
    await other.release();
    await victim.stop();
    // Dead: its name is free again, the very next time.
    const lease = await allocateDevice({ devRoot, lockDir, devicePath: '/dev/sdf' });
    expect(lease.attachmentName).toBe('/dev/sdf');
    await lease.release();
  });

  it('takes over the allocation lock of a process killed while holding it', async () => {
    const victim = startChild(SCRIPT, ['hold-lock', lockDir]);
    children.push(victim);
    expect(await victim.nextLine()).toBe('locked');
    await victim.stop();
    // The lock directory is still there, fresh; it goes stale after lockStaleMs (2 s minimum).
    expect(await readdir(lockDir)).toContain('allocate.lock');
    const lease = await allocateDevice({ devRoot, lockDir, lockStaleMs: 2000, lockTimeoutMs: 20_000 });
    expect(lease.attachmentName).toBe('/dev/sdf');
    await lease.release();
  });
});
