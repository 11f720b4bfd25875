import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal, readJournals, removeJournalTemps } from '../../../src/host/journal.js';
import { selfIdentity } from '../../../src/host/processes.js';

let stateDir: string;
beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'journal-'));
});
afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

describe('Journal', () => {
  it('records entries before they happen, forgets undone ones, and disappears when closed', async () => {
    const journal = await Journal.create(stateDir, 'mount /mnt/x y');
    expect(journal.path).toMatch(new RegExp(`/mount-mnt-x-y\\.${process.pid}\\.[0-9a-f]{8}\\.json$`));
    await journal.add({ type: 'dir', path: '/mnt/x' });
    await journal.add({ type: 'mount', target: '/mnt/x' });
    // Writes are serialized: concurrent adds all land.
    await Promise.all([
      journal.add({ type: 'mount', target: '/mnt/x/proc' }),
      journal.add({ type: 'mount', target: '/mnt/x/sys' }),
    ]);
    await journal.remove({ type: 'mount', target: '/mnt/x/proc' });
    const [read] = await readJournals(stateDir);
    expect(read!.data).toMatchObject({ version: 1, ...(await selfIdentity()), label: 'mount /mnt/x y' });
    expect(read!.data.entries).toEqual([
      { type: 'dir', path: '/mnt/x' },
      { type: 'mount', target: '/mnt/x' },
      { type: 'mount', target: '/mnt/x/sys' },
    ]);
    await journal.close();
    await journal.add({ type: 'dir', path: '/late' }); // after close: nothing is written
    expect(await readdir(stateDir)).toEqual([]);
  });

  it('skips files that are not journals, and removes torn temp files', async () => {
    await writeFile(join(stateDir, 'junk.json'), '{not json');
    await writeFile(join(stateDir, 'other.json'), '{"version": 2}');
    await writeFile(join(stateDir, 'a.json.tmp'), '{');
    expect(await readJournals(stateDir)).toEqual([]);
    await removeJournalTemps(stateDir);
    expect((await readdir(stateDir)).sort()).toEqual(['junk.json', 'other.json']);
    expect(await readFile(join(stateDir, 'junk.json'), 'utf8')).toBe('{not json');
  });

  it('reads an absent state directory as empty', async () => {
    expect(await readJournals(join(stateDir, 'missing'))).toEqual([]);
  });
});
