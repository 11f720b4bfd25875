import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeviceError, LockError } from '../../../src/errors.js';
import { allocateDevice } from '../../../src/host/devices.js';
import { selfIdentity } from '../../../src/host/processes.js';

let base: string;
let devRoot: string;
let lockDir: string;
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'devices-'));
  devRoot = join(base, 'dev');
  lockDir = join(base, 'lock');
  await mkdir(devRoot);
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

const reservations = async () => (await readdir(lockDir)).filter((n) => n.endsWith('.reservation')).sort();

describe('allocateDevice', () => {
  it('reserves the first free letter until released, then hands it out again', async () => {
    const a = await allocateDevice({ devRoot, lockDir });
    const b = await allocateDevice({ devRoot, lockDir });
    expect([a.attachmentName, b.attachmentName]).toEqual(['/dev/sdf', '/dev/sdg']);
    expect(await reservations()).toEqual(['sdf.reservation', 'sdg.reservation']);
    const record = JSON.parse(await readFile(join(lockDir, 'sdf.reservation'), 'utf8'));
    expect(record).toMatchObject(await selfIdentity());
    await a.release();
    await a.release();
    expect(await reservations()).toEqual(['sdg.reservation']);
    const c = await allocateDevice({ devRoot, lockDir });
    expect(c.attachmentName).toBe('/dev/sdf');
    await b[Symbol.asyncDispose]();
    await c.release();
    expect(await reservations()).toEqual([]);
  });

  it('skips names present in /dev in either spelling, partitions included, and names EC2 lists', async () => {
    for (const n of ['sdf', 'xvdg', 'sdh1', 'xvdi1']) await writeFile(join(devRoot, n), '');
    const lease = await allocateDevice({
      devRoot,
      lockDir,
      exclude: ['/dev/sdj', 'xvdk', '/dev/xvdl1', 'sdm2', '/dev/nvme0n1', '/dev/xvda'],
    });
    expect(lease.attachmentName).toBe('/dev/sdn');
    await lease.release();
  });

  it('gives distinct names to concurrent allocations in one process', async () => {
    const leases = await Promise.all(Array.from({ length: 8 }, () => allocateDevice({ devRoot, lockDir })));
    expect(new Set(leases.map((l) => l.attachmentName)).size).toBe(8);
    await Promise.all(leases.map((l) => l.release()));
  });

  it('says why every name is taken when none is free', async () => {
    for (const l of 'fghijklmno') await writeFile(join(devRoot, `xvd${l}`), '');
    const held = await allocateDevice({ devRoot, lockDir });
    expect(held.attachmentName).toBe('/dev/sdp');
    const error = await allocateDevice({ devRoot, lockDir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeviceError);
    expect((error as Error).message).toContain(`sdf: ${devRoot}/xvdf exists`);
    expect((error as Error).message).toContain(`sdp: reserved by pid ${process.pid}`);
    await held.release();
  });

  it('checks and reserves a given devicePath instead of searching', async () => {
    const lease = await allocateDevice({ devRoot, lockDir, devicePath: '/dev/xvdk' });
    expect(lease.attachmentName).toBe('/dev/sdk');
    await expect(allocateDevice({ devRoot, lockDir, devicePath: '/dev/sdk' })).rejects.toThrow(
      /\/dev\/sdk .*is in use: sdk: reserved by pid/,
    );
    await lease.release();
    await writeFile(join(devRoot, 'sdk'), '');
    await expect(allocateDevice({ devRoot, lockDir, devicePath: '/dev/sdk' })).rejects.toThrow(
      /is in use: sdk: .*sdk exists/,
    );
    await expect(allocateDevice({ devRoot, lockDir, devicePath: '/dev/nvme1n1' })).rejects.toThrow(
      /not an attachment name/,
    );
  });

  it('ignores a reservation whose owner is dead, even if its pid was reused', async () => {
    await mkdir(lockDir, { recursive: true });
    const me = await selfIdentity();
    // Same pid, different start time: the owner died and this process got its pid.
    await writeFile(
      join(lockDir, 'sdf.reservation'),
      JSON.stringify({ pid: me.pid, startTime: me.startTime + 1, createdAt: '' }),
    );
    await writeFile(join(lockDir, 'sdg.reservation'), '{"pid": 4194304'); // torn write
    const a = await allocateDevice({ devRoot, lockDir });
    const b = await allocateDevice({ devRoot, lockDir });
    expect([a.attachmentName, b.attachmentName]).toEqual(['/dev/sdf', '/dev/sdg']);
    await a.release();
    await b.release();
  });

  it('takes over an allocation lock its holder stopped refreshing', async () => {
    await mkdir(join(lockDir, 'allocate.lock'), { recursive: true });
    const old = new Date(Date.now() - 60_000);
    await utimes(join(lockDir, 'allocate.lock'), old, old);
    const lease = await allocateDevice({ devRoot, lockDir, lockStaleMs: 2000 });
    expect(lease.attachmentName).toBe('/dev/sdf');
    await lease.release();
  });

  it('gives up with a LockError while a live holder keeps the lock fresh', async () => {
    const lockPath = join(lockDir, 'allocate.lock');
    await mkdir(lockPath, { recursive: true });
    const keepFresh = setInterval(() => void utimes(lockPath, new Date(), new Date()).catch(() => {}), 100);
    try {
      const error = await allocateDevice({ devRoot, lockDir, lockTimeoutMs: 300 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockError);
      expect(error).toMatchObject({ lockPath, code: 'ERR_LOCK' });
    } finally {
      clearInterval(keepFresh);
    }
  });

  it('rejects with the signal’s reason while waiting for the lock', async () => {
    const lockPath = join(lockDir, 'allocate.lock');
    await mkdir(lockPath, { recursive: true });
    const reason = new Error('stop');
    const c = new AbortController();
    setTimeout(() => c.abort(reason), 30);
    await expect(allocateDevice({ devRoot, lockDir }, { signal: c.signal })).rejects.toBe(reason);
  });
});
