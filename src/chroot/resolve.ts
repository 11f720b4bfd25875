/**
 * Resolving paths of the image by file descriptor: each component is opened relative to the
 * previous directory's descriptor, so a process inside the image that swaps a directory for a
 * symlink mid-walk can never send us outside the root. No path string is ever walked twice.
 */
import { constants } from 'node:fs';
import type { Stats } from 'node:fs';
import { lstat, mkdir, open, readlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { PathEscapeError } from '../errors.js';
import { errnoCode, lstatOrUndefined } from '../internal/fs.js';

/** Symlinks followed in one resolution before it counts as a loop (Linux's own limit). */
const MAX_HOPS = 40;

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** O_PATH (Linux): a handle that names a file without opening it, so a device is never opened. */
const O_PATH = 0o10000000;

/**
 * The name of the entry `name` in the directory held by `dir`, walked by the kernel through the
 * descriptor (`/proc/self/fd/N` is the directory itself, whatever path now leads to it).
 * @internal
 */
export function at(dir: FileHandle, name?: string): string {
  return name === undefined ? `/proc/self/fd/${dir.fd}` : `/proc/self/fd/${dir.fd}/${name}`;
}

/** `lstat` of `name` in the open directory `dir`, or undefined when it does not exist. @internal */
export function lstatAt(dir: FileHandle, name: string): Promise<Stats | undefined> {
  return lstatOrUndefined(at(dir, name));
}

/**
 * A directory inside the root, open, with its canonical path as the image sees it.
 * @internal
 */
export interface ResolvedParent {
  /** The directory that holds the entry; the caller closes it. */
  readonly dir: FileHandle;
  /** The entry's name in `dir`; `undefined` when the path is the root itself. */
  readonly name: string | undefined;
  /** The entry's canonical path inside the image (no symlinks, no `..`), e.g. `/usr/lib/x.so`. */
  readonly chrootPath: string;
  /** Directories created on the way (`mkdirs`), canonical, outermost first. */
  readonly created: readonly string[];
}

/**
 * Options of {@link resolveParent}.
 * @internal
 */
export interface ResolveParentOptions {
  /** Follow a symlink in the last component too (by hand, inside the root). @defaultValue true */
  readonly followFinal?: boolean;
  /** Create missing directories (mode 0755) on the way to the last component. @defaultValue false */
  readonly mkdirs?: boolean;
  /**
   * When a directory on the way is missing, return the deepest existing one and the rest of the
   * path (normalized) as `name`, instead of failing with ENOENT. @defaultValue false
   */
  readonly missingOk?: boolean;
}

function escape(root: string, path: string, why: string, cause?: unknown): PathEscapeError {
  return new PathEscapeError(`Refusing ${path} in the chroot ${root}: ${why}`, path, {
    resources: { mountPath: root },
    ...(cause === undefined ? {} : { cause }),
  });
}

function split(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

/** Below a missing directory nothing can be a symlink: `..` only drops names (never past the first). */
function lexical(parts: readonly string[]): string {
  const out: string[] = [];
  for (const p of parts) {
    if (p !== '..') out.push(p);
    else if (out.length > 1) out.pop();
  }
  return out.join('/');
}

/**
 * Opens the root directory itself. The root is a host path the caller chose (a mount point),
 * the only path string trusted here.
 * @internal
 */
export async function openRoot(root: string): Promise<FileHandle> {
  return open(root, DIR_FLAGS);
}

/**
 * Walks `path` inside `root` by descriptor and returns its parent directory, open, and the last
 * name. Symlinks are followed by hand the way the chroot sees them: an absolute target starts
 * again at the root, `..` never climbs above it, and at most 40 links are followed. Each step
 * opens one name with `O_NOFOLLOW | O_DIRECTORY` relative to the previous step, so a component
 * swapped for a symlink in between is seen as a symlink and resolved inside the root, never
 * walked by the kernel.
 *
 * @throws {@link PathEscapeError} on a symlink loop; `ENOENT`/`ENOTDIR` errors from the file system.
 * @internal
 */
export async function resolveParent(
  root: string,
  path: string,
  options: ResolveParentOptions = {},
): Promise<ResolvedParent> {
  const followFinal = options.followFinal ?? true;
  // The stack of open directories from the root down; `names` is their canonical path.
  const stack: FileHandle[] = [await openRoot(root)];
  const names: string[] = [];
  const created: string[] = [];
  let pending = split(path);
  let hops = 0;
  const top = (): FileHandle => stack[stack.length - 1]!;
  const follow = async (name: string): Promise<void> => {
    if (++hops > MAX_HOPS) throw escape(root, path, 'too many symlinks (a loop in the image?).');
    const target = await readlink(at(top(), name));
    if (target.startsWith('/')) {
      while (stack.length > 1) await stack.pop()!.close();
      names.length = 0;
    }
    pending = [...split(target), ...pending];
  };
  try {
    while (pending.length > 0) {
      const name = pending.shift()!;
      if (name === '..') {
        // Clamped at the root, like chroot(2): the root's `..` is the root.
        if (stack.length > 1) {
          await stack.pop()!.close();
          names.pop();
        }
        continue;
      }
      if (pending.length === 0) {
        if (followFinal) {
          const st = await lstatAt(top(), name);
          if (st?.isSymbolicLink()) {
            // Its target may name a directory already on the stack (`.`, `/`): the loop ends there.
            await follow(name);
            continue;
          }
        }
        const dir = stack.pop()!;
        return { dir, name, chrootPath: `/${[...names, name].join('/')}`, created };
      }
      let next: FileHandle | 'symlink';
      try {
        next = await openStep(root, path, top(), name, options.mkdirs ?? false, () =>
          created.push(`/${[...names, name].join('/')}`),
        );
      } catch (error) {
        if (!options.missingOk || errnoCode(error) !== 'ENOENT') throw error;
        const rest = lexical([name, ...pending]);
        const dir = stack.pop()!;
        return { dir, name: rest, chrootPath: `/${[...names, rest].join('/')}`, created };
      }
      if (next === 'symlink') {
        await follow(name);
        continue;
      }
      stack.push(next);
      names.push(name);
    }
    // The path named a directory reached through `..` or a link: return it as its parent + name.
    if (stack.length === 1) {
      const dir = stack.pop()!;
      return { dir, name: undefined, chrootPath: '/', created };
    }
    const self = stack.pop()!;
    await self.close();
    const dir = stack.pop()!;
    return { dir, name: names[names.length - 1], chrootPath: `/${names.join('/')}`, created };
  } finally {
    for (const handle of stack) await handle.close();
  }
}

/** Opens one directory below `dir`, or says it is a symlink to follow. */
async function openStep(
  root: string,
  path: string,
  dir: FileHandle,
  name: string,
  mkdirs: boolean,
  onCreate: () => void,
): Promise<FileHandle | 'symlink'> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await open(at(dir, name), DIR_FLAGS);
    } catch (error) {
      const c = errnoCode(error);
      if (c === 'ENOENT' && mkdirs) {
        try {
          await mkdir(at(dir, name), { mode: 0o755 });
          onCreate();
        } catch (mkdirError) {
          // Someone made it first: open what is there now.
          if (errnoCode(mkdirError) !== 'EEXIST') throw mkdirError;
        }
        continue;
      }
      if (c !== 'ELOOP' && c !== 'ENOTDIR') throw error;
      const st = await lstat(at(dir, name)).catch(() => undefined);
      if (st?.isSymbolicLink()) return 'symlink';
      if (st === undefined || st.isDirectory()) continue; // changed under us: look again
      throw escape(root, path, `${name} is not a directory.`, error);
    }
  }
  throw escape(root, path, `${name} keeps changing while being resolved; refusing.`);
}

/**
 * Options of {@link openDirInRoot}.
 * @internal
 */
export type OpenDirOptions = Pick<ResolveParentOptions, 'mkdirs'>;

/**
 * Opens the directory `path` inside `root` (following symlinks inside the root), creating it
 * when asked. The caller closes it.
 * @internal
 */
export async function openDirInRoot(
  root: string,
  path: string,
  options: OpenDirOptions = {},
): Promise<{ dir: FileHandle; chrootPath: string; created: readonly string[] }> {
  const parent = await resolveParent(root, path, { followFinal: true, mkdirs: options.mkdirs ?? false });
  if (parent.name === undefined) return { dir: parent.dir, chrootPath: '/', created: parent.created };
  try {
    const created = [...parent.created];
    const dir = await openStep(root, path, parent.dir, parent.name, options.mkdirs ?? false, () =>
      created.push(parent.chrootPath),
    );
    if (dir === 'symlink') {
      // Swapped for a symlink after it was resolved: resolve again from the root.
      return await openDirInRoot(root, parent.chrootPath, options);
    }
    return { dir, chrootPath: parent.chrootPath, created };
  } finally {
    await parent.dir.close();
  }
}

/**
 * The entry's type word for messages: `a FIFO`, `a character device` …
 * @internal
 */
export function describeType(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symlink';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'a regular file';
}

/**
 * Opens a regular file `name` in `dir` for reading without ever opening anything else: an
 * `O_PATH` handle is checked with fstat first (a device node or FIFO is refused unopened, so
 * nothing blocks and no device sees an open), then reopened through the descriptor.
 * @returns the open file, or the stats of what is there instead.
 * @internal
 */
export async function openRegularForRead(dir: FileHandle, name: string): Promise<FileHandle | Stats> {
  const probe = await open(at(dir, name), O_PATH | constants.O_NOFOLLOW);
  try {
    const st = await probe.stat();
    if (!st.isFile()) return st;
    // Reopening the O_PATH handle reaches exactly the inode just checked.
    return await open(at(probe), constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } finally {
    await probe.close();
  }
}
