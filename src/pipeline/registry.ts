/**
 * Live-build records. A running build writes `<stateDir>/builds/<buildId>.json` with its pid and
 * process start time; `cleanupOrphans` treats a build as running only while that process is alive,
 * so it can sweep what a killed build left behind on this host without racing a live one.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isAlive, selfIdentity } from '../host/processes.js';

/** A running build, as recorded on disk. @internal */
export interface BuildRecord {
  readonly buildId: string;
  readonly pid: number;
  readonly startTime: number;
  readonly startedAt: string;
  readonly region: string;
  readonly instanceId?: string;
}

function dirOf(stateDir: string): string {
  return join(stateDir, 'builds');
}

/** Records this process as running `buildId`; returns the function that removes the record. @internal */
export async function registerBuild(
  stateDir: string,
  record: Omit<BuildRecord, 'pid' | 'startTime' | 'startedAt'>,
): Promise<() => Promise<void>> {
  const me = await selfIdentity();
  const dir = dirOf(stateDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${record.buildId}.json`);
  const full: BuildRecord = { ...record, pid: me.pid, startTime: me.startTime, startedAt: new Date().toISOString() };
  await writeFile(file, JSON.stringify(full), { mode: 0o600 });
  return () => rm(file, { force: true });
}

/** Build ids whose owning process is still alive; records of dead processes are removed. @internal */
export async function liveBuildIds(stateDir: string): Promise<Set<string>> {
  const dir = dirOf(stateDir);
  const live = new Set<string>();
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return live;
    throw error;
  }
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    const file = join(dir, name);
    try {
      const record = JSON.parse(await readFile(file, 'utf8')) as BuildRecord;
      if (await isAlive({ pid: record.pid, startTime: record.startTime })) live.add(record.buildId);
      else await rm(file, { force: true });
    } catch {
      // A record being written right now, or garbage: leave it to the next sweep.
    }
  }
  return live;
}
