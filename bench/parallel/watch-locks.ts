/**
 * Watches the device allocator's lock directory from outside the builds (its own process, so a
 * busy build process does not delay the timestamps) and prints one JSON line per directory
 * event: `{"t": <ms since the epoch, sub-ms>, "name": "sdf.reservation", "exists": true}`.
 * Node reports creation, removal and (for a directory such as `allocate.lock`, whose mtime the
 * lock refreshes) attribute changes alike as "rename", so the entry is looked up at once: the
 * reader opens a hold when an entry appears and closes it when it is gone.
 *
 *   node --import tsx bench/parallel/watch-locks.ts <lockDir>
 *
 * Prints `{"ready":true}` once watching; stops when stdin closes.
 */
import { existsSync, watch } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: watch-locks.ts <lockDir>');
const watcher = watch(dir, (type, name) => {
  if (type !== 'rename' || !name) return;
  const t = performance.timeOrigin + performance.now();
  process.stdout.write(`${JSON.stringify({ t, name, exists: existsSync(join(dir, name)) })}\n`);
});
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
process.stdin.resume();
process.stdin.on('end', () => watcher.close());
