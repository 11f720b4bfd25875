/**
 * The mount directory: created with its missing parents, tolerating parallel builds that share
 * those parents.
 */
import { lstat, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Creates `path` and missing parents; returns the directories created, deepest last. Parallel
 * builds share parents (e.g. /mnt/ami-chroot): one may create a parent just before us (EEXIST: it
 * is not ours, and not recorded), or remove its own empty parent just before our mkdir (ENOENT:
 * look again).
 * @internal
 */
export async function mkdirs(path: string): Promise<string[]> {
  const created: string[] = [];
  for (let attempt = 0; ; attempt++) {
    const missing: string[] = [];
    for (let p = path; ; p = dirname(p)) {
      try {
        await lstat(p);
        break;
      } catch {
        missing.unshift(p);
        if (dirname(p) === p) break;
      }
    }
    try {
      for (const p of missing) {
        try {
          await mkdir(p, { mode: 0o755 });
          created.push(p);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || p === path) throw error;
        }
      }
      return created;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 3) throw error;
    }
  }
}
