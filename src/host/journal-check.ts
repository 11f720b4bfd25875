/**
 * What recovery may believe of a journal: every path well-formed, one mount root, files and
 * mounts inside it, nothing on a system path. A journal that fails is refused whole.
 */
import { normalize } from 'node:path';
import type { JournalData, JournalEntry } from './journal.js';

type MountEntry = Extract<JournalEntry, { type: 'mount' }>;
type FileEntry = Extract<JournalEntry, { type: 'file' }>;

/**
 * The checked content of a dead build's journal, by kind.
 * @internal
 */
export interface RecoveryPlan {
  /** The build's own root mount (the outermost mount it recorded), if any. */
  readonly root: MountEntry | undefined;
  readonly files: readonly FileEntry[];
  /** Directories created for the mount path, newest first. */
  readonly dirs: readonly string[];
  /** Backing files of loop devices, with their identity when the journal recorded it. */
  readonly loops: readonly LoopBacking[];
  /** Work files to remove once no loop device uses them. */
  readonly workFiles: readonly string[];
}

/** A loop device's backing file as a journal recorded it. */
export interface LoopBacking {
  readonly file: string;
  readonly ino?: number | undefined;
  readonly dev?: number | undefined;
}

/** Directories of the system itself: never a build's mount, never removed. */
const SYSTEM_PATHS = new Set([
  '/',
  '/proc',
  '/sys',
  '/dev',
  '/run',
  '/boot',
  '/etc',
  '/usr',
  '/var',
  '/tmp',
  '/home',
  '/root',
  '/mnt',
  '/media',
  '/opt',
  '/srv',
  '/bin',
  '/sbin',
  '/lib',
  '/lib64',
  '/var/tmp',
  '/var/lib',
  '/var/lock',
  '/run/lock',
]);
const SYSTEM_TREES = ['/proc/', '/sys/', '/dev/'];

/**
 * True for the system's own mount points and directories, and anything under /proc, /sys, /dev.
 * @internal
 */
export function isSystemPath(path: string): boolean {
  return SYSTEM_PATHS.has(path) || SYSTEM_TREES.some((t) => path.startsWith(t));
}

function isCleanAbsolute(path: unknown): path is string {
  return (
    typeof path === 'string' &&
    path.startsWith('/') &&
    !path.includes('\0') &&
    normalize(path) === path &&
    (path === '/' || !path.endsWith('/'))
  );
}

function under(path: string, root: string): boolean {
  return path === root || path.startsWith(`${root}/`);
}

/**
 * Checks a journal before recovery obeys it.
 * @returns the plan, or why the journal is refused.
 * @internal
 */
export function checkJournal(data: JournalData): RecoveryPlan | string {
  const mounts: MountEntry[] = [];
  const files: FileEntry[] = [];
  const dirs: string[] = [];
  const loops: LoopBacking[] = [];
  const workFiles: string[] = [];
  for (const entry of data.entries as readonly unknown[]) {
    const e = entry as Partial<Record<string, unknown>> | null;
    if (typeof e !== 'object' || e === null) return 'an entry is not an object';
    const where = JSON.stringify(entry);
    switch (e.type) {
      case 'mount':
        if (!isCleanAbsolute(e.target) || isSystemPath(e.target) || e.target === '/')
          return `mount entry ${where} does not name a build's mount point`;
        mounts.push(e as MountEntry);
        break;
      case 'dir':
        if (!isCleanAbsolute(e.path) || isSystemPath(e.path)) return `dir entry ${where} names a system path`;
        dirs.unshift(e.path);
        break;
      case 'work-file':
        if (!isCleanAbsolute(e.path) || isSystemPath(e.path) || !e.path.endsWith('.partial'))
          return `work-file entry ${where} names no .partial file`;
        workFiles.push(e.path);
        break;
      case 'loop':
        if (!isCleanAbsolute(e.file) || isSystemPath(e.file)) return `loop entry ${where} names no image file`;
        if ((e.ino === undefined) !== (e.dev === undefined) || ![e.ino, e.dev].every(isOptionalCount))
          return `loop entry ${where} has a malformed file identity`;
        loops.push({ file: e.file, ino: e.ino as number | undefined, dev: e.dev as number | undefined });
        break;
      case 'file': {
        const created = e.createdDirs ?? [];
        if (
          typeof e.root !== 'string' ||
          !isCleanAbsolute(e.path) ||
          e.path === '/' ||
          (e.backup !== undefined && e.backup !== `${e.path}.ami-chroot-orig`) ||
          !Array.isArray(created) ||
          !created.every((d) => isCleanAbsolute(d) && d !== '/')
        )
          return `file entry ${where} is malformed`;
        files.push(e as FileEntry);
        break;
      }
      default:
        return `entry ${where} has an unknown type`;
    }
  }
  const outermost = mounts.filter((m) => !mounts.some((o) => o.target !== m.target && under(m.target, o.target)));
  const roots = [...new Set(outermost.map((m) => m.target))];
  if (roots.length > 1) return `it records more than one mount root (${roots.join(', ')})`;
  const root = outermost.find((m) => m.id !== undefined) ?? outermost[0];
  for (const f of files) {
    if (root === undefined || f.root !== root.target)
      return `file entry for ${f.path} is in ${f.root}, not in the build's own mount root ${root?.target ?? '(none)'}`;
  }
  for (const d of dirs) {
    // Mount directories are the root and its parents, created for it.
    if (root !== undefined && !under(root.target, d)) return `dir entry ${d} is not the mount root or a parent of it`;
  }
  return { root, files, dirs, loops, workFiles };
}

function isOptionalCount(n: unknown): boolean {
  return n === undefined || (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0);
}
