/**
 * The local recovery journal. Every primitive that changes the host (a mount tree, a loop
 * device) writes what it is about to do into a small JSON file *before* doing it, and removes
 * the file once it has undone everything. When a build process is killed, its journal stays
 * behind; {@link recoverHost} finds journals whose owner is dead and undoes what they list.
 *
 * The default directory is `/run/ami-chroot`: /run is a tmpfs, so journals vanish on reboot
 * exactly when the mounts and loop devices they describe do.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, rename, rm, rmdir, unlink, writeFile } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import type { ProcessIdentity } from './processes.js';
import { selfIdentity } from './processes.js';

/**
 * One thing a journal owner did to the host, recorded before it was done.
 * @internal
 */
export type JournalEntry =
  /**
   * A mount point (the whole tree under it is unmounted on recovery). Recorded before mounting;
   * once mounted, the mount's id and device (from /proc/self/mountinfo) are added, and recovery
   * unmounts only a mount that still has both: never one the build did not make.
   */
  | {
      readonly type: 'mount';
      readonly target: string;
      /** Mount id in /proc/self/mountinfo. */
      readonly id?: number;
      /** `major:minor` of the mounted filesystem. */
      readonly majorMinor?: string;
    }
  /** A directory created for a mount; removed if empty. */
  | { readonly type: 'dir'; readonly path: string }
  /**
   * A build's work file (`<output>.partial` of buildImage); removed on recovery once no loop
   * device uses it.
   */
  | { readonly type: 'work-file'; readonly path: string }
  /**
   * A loop device over `file`. With the file's identity (`ino`, `dev`: recorded before the
   * attach), recovery detaches only loop devices backed by that very inode, wherever its path
   * went; without it (older journals), every loop device backed by `file`.
   */
  | {
      readonly type: 'loop';
      readonly file: string;
      readonly device?: string;
      /** Inode of the backing file. */
      readonly ino?: number;
      /** `st_dev` of the backing file. */
      readonly dev?: number;
    }
  /**
   * A file placed at `path` inside the mounted image `root`; the image's original (if any) was
   * renamed to `backup`. Paths are canonical paths inside the image (`/etc/resolv.conf`), never
   * host paths: they are resolved inside `root` when acted on. Recovery puts the original back
   * while `root` is still mounted.
   */
  | {
      readonly type: 'file';
      readonly root: string;
      readonly path: string;
      readonly backup?: string;
      /** Directories created for the file, outermost first; removed (if empty) on restore. */
      readonly createdDirs?: readonly string[];
    };

/**
 * The on-disk form of a journal.
 * @internal
 */
export interface JournalData {
  readonly version: 1;
  readonly pid: number;
  readonly startTime: number;
  readonly createdAt: string;
  /** What the owner was doing, for humans: `mount /mnt/ami-chroot/xvdf`. */
  readonly label: string;
  readonly entries: readonly JournalEntry[];
}

function sameEntry(a: JournalEntry, b: JournalEntry): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * A journal owned by this process. Writes are serialized and atomic (write a temp file, rename).
 * @internal
 */
export class Journal {
  readonly path: string;
  readonly #owner: ProcessIdentity;
  readonly #label: string;
  #entries: JournalEntry[] = [];
  #writing: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(path: string, owner: ProcessIdentity, label: string) {
    this.path = path;
    this.#owner = owner;
    this.#label = label;
  }

  /** Creates an empty journal file in `stateDir`. */
  static async create(stateDir: string, label: string): Promise<Journal> {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    await assertPrivateDir(stateDir, 'stateDir');
    const owner = await selfIdentity();
    const slug = label.replace(/[^A-Za-z0-9_.-]+/g, '-').slice(0, 60);
    const file = join(stateDir, `${slug}.${owner.pid}.${randomBytes(4).toString('hex')}.json`);
    const journal = new Journal(file, owner, label);
    await journal.#flush();
    return journal;
  }

  /** The entries recorded so far. */
  get entries(): readonly JournalEntry[] {
    return this.#entries;
  }

  /** Records an entry (call before doing the thing). */
  add(entry: JournalEntry): Promise<void> {
    this.#entries.push(entry);
    return this.#flush();
  }

  /** Replaces an entry with a more precise one (a mount's identity once it is mounted). */
  replace(entry: JournalEntry, by: JournalEntry): Promise<void> {
    this.#entries = this.#entries.map((e) => (sameEntry(e, entry) ? by : e));
    return this.#flush();
  }

  /** Forgets an entry (call after undoing the thing). */
  remove(entry: JournalEntry): Promise<void> {
    this.#entries = this.#entries.filter((e) => !sameEntry(e, entry));
    return this.#flush();
  }

  /** Deletes the journal: everything it listed has been undone. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#writing.catch(() => {});
    await rm(this.path, { force: true });
  }

  #flush(): Promise<void> {
    const data: JournalData = {
      version: 1,
      pid: this.#owner.pid,
      startTime: this.#owner.startTime,
      createdAt: new Date().toISOString(),
      label: this.#label,
      entries: [...this.#entries],
    };
    const next = this.#writing.then(async () => {
      if (this.#closed) return;
      const tmp = `${this.path}.tmp`;
      await writeFile(tmp, JSON.stringify(data, null, 1), { mode: 0o600 });
      await rename(tmp, this.path);
    });
    // Keep the chain alive after a failed write; the caller still sees this one's failure.
    this.#writing = next.catch(() => {});
    return next;
  }
}

/**
 * Why a file or directory cannot be trusted with recovery instructions, or `undefined`: it must
 * be ours (owned by this user) and writable by no one else, and not a symlink.
 * @internal
 */
export function untrustedBecause(st: Stats, kind: 'directory' | 'file'): string | undefined {
  if (st.isSymbolicLink()) return 'it is a symlink';
  if (kind === 'directory' ? !st.isDirectory() : !st.isFile()) return `it is not a ${kind}`;
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) return `it is owned by uid ${st.uid}, not by this user (uid ${uid})`;
  if ((st.mode & 0o022) !== 0)
    return `it is writable by ${st.mode & 0o020 ? 'its group' : 'others'} (mode ${(st.mode & 0o7777).toString(8)})`;
  return undefined;
}

/**
 * Refuses a state directory others could plant journals in (recovery obeys them as root).
 * @throws {@link ConfigError} naming `option`, the path, and the fix.
 * @internal
 */
export async function assertPrivateDir(path: string, option: string): Promise<void> {
  const why = untrustedBecause(await lstat(path), 'directory');
  if (why !== undefined) {
    throw new ConfigError([
      {
        path: option,
        value: path,
        message: `${path} cannot hold recovery journals: ${why}. Use a directory owned by this user with mode 0700 (e.g. chmod 700 ${path}), or another one.`,
      },
    ]);
  }
}

/**
 * Reads every journal in `stateDir`. Unreadable files are skipped; journals this user does not own
 * alone, or that others could have written, are skipped and passed to `refused`.
 * @internal
 */
export async function readJournals(
  stateDir: string,
  refused?: (path: string, why: string) => void,
): Promise<{ path: string; data: JournalData }[]> {
  let names: string[];
  try {
    names = await readdir(stateDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const out: { path: string; data: JournalData }[] = [];
  for (const name of names.sort()) {
    if (!name.endsWith('.json')) continue;
    const path = join(stateDir, name);
    try {
      const why = untrustedBecause(await lstat(path), 'file');
      if (why !== undefined) {
        refused?.(path, why);
        continue;
      }
      const data = JSON.parse(await readFile(path, 'utf8')) as JournalData;
      if (data.version === 1 && typeof data.pid === 'number' && Array.isArray(data.entries)) out.push({ path, data });
    } catch {
      // Half-written temp files and strangers are not ours to judge.
    }
  }
  return out;
}

/**
 * Removes a directory if it is empty and really a directory (never follows a symlink).
 * @internal
 */
export async function removeEmptyDir(path: string): Promise<boolean> {
  try {
    const st = await lstat(path);
    if (!st.isDirectory()) return false;
    await rmdir(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes leftover temp files of journals (a kill between write and rename).
 * @internal
 */
export async function removeJournalTemps(stateDir: string): Promise<void> {
  let names: string[] = [];
  try {
    names = await readdir(stateDir);
  } catch {
    return;
  }
  for (const name of names) if (name.endsWith('.json.tmp')) await unlink(join(stateDir, name)).catch(() => {});
}
