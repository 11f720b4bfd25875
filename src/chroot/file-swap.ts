/**
 * Placing a file into the image for the duration of a build while keeping the image's own, and
 * putting the image's own back: both by descriptor inside the root, at the moment they act, so a
 * provisioning step that turns a parent into a symlink to the host cannot redirect either.
 * Packer instead deletes its copy and with it the image's file (packer#4698).
 */
import { constants } from 'node:fs';
import { open, rename, rmdir, unlink } from 'node:fs/promises';
import { MountError, PathEscapeError } from '../errors.js';
import type { Phase } from '../errors.js';
import type { Journal, JournalEntry } from '../host/journal.js';
import { errnoCode } from '../internal/fs.js';
import { at, lstatAt, resolveParent } from './resolve.js';

/** Suffix of the image's original while our file stands in for it. */
export const BACKUP_SUFFIX = '.ami-chroot-orig';

/**
 * A placed file as the journal records it: paths are canonical paths inside the image.
 * @internal
 */
export type PlacedEntry = Extract<JournalEntry, { type: 'file' }>;

/**
 * A file placed into the image; `restore()` puts the image's original back. Idempotent.
 * @internal
 */
export interface PlacedFile {
  /** Host path of the placed file, for logs and events (never used to act on it). */
  readonly hostPath: string;
  restore(): Promise<void>;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * Puts `data` at `chrootPath` inside `root` (mode `mode`), moving an existing entry aside.
 * The parent directory is resolved inside the root by descriptor (missing directories are
 * created); the last component is never followed, so a symlink there is moved aside, not
 * written through.
 * @internal
 */
export async function placeFile(
  root: string,
  chrootPath: string,
  data: Uint8Array | string,
  mode: number,
  journal: Journal | undefined,
  phase: Phase,
): Promise<PlacedFile> {
  const last = baseName(chrootPath);
  if (!last || last === '.' || last === '..') {
    throw new MountError(`Cannot place a file at "${chrootPath}": it names no file.`, {
      phase,
      resources: { mountPath: root },
    });
  }
  const parent = await resolveParent(root, chrootPath, { followFinal: false, mkdirs: true });
  const { dir } = parent;
  let entry: PlacedEntry;
  try {
    const name = parent.name!;
    const backupName = `${name}${BACKUP_SUFFIX}`;
    if (await lstatAt(dir, backupName)) {
      throw new MountError(
        `${root}${parent.chrootPath}${BACKUP_SUFFIX} already exists: a previous build was interrupted with the image's ${chrootPath} set aside. ` +
          'Run recoverHost() to put it back, or inspect and remove it.',
        { phase, resources: { mountPath: root } },
      );
    }
    const hadOriginal = (await lstatAt(dir, name)) !== undefined;
    entry = {
      type: 'file',
      root,
      path: parent.chrootPath,
      ...(hadOriginal ? { backup: `${parent.chrootPath}${BACKUP_SUFFIX}` } : {}),
      ...(parent.created.length > 0 ? { createdDirs: parent.created } : {}),
    };
    await journal?.add(entry);
    try {
      if (hadOriginal) await rename(at(dir, name), at(dir, backupName));
      const handle = await open(
        at(dir, name),
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        mode,
      );
      try {
        await handle.writeFile(data);
        await handle.chmod(mode);
      } finally {
        await handle.close();
      }
    } catch (error) {
      await restorePlaced(entry).catch(() => {});
      await journal?.remove(entry).catch(() => {});
      if (errnoCode(error) === 'EEXIST' || errnoCode(error) === 'ELOOP') {
        throw new PathEscapeError(
          `Something reappeared at ${chrootPath} in ${root} while placing a file there; refusing to write through it.`,
          chrootPath,
          { phase, cause: error },
        );
      }
      throw error;
    }
  } finally {
    await dir.close();
  }
  let restored = false;
  const placed = entry;
  return {
    hostPath: `${root}${placed.path}`,
    restore: async () => {
      if (restored) return;
      await restorePlaced(placed);
      restored = true;
      await journal?.remove(placed);
    },
  };
}

/**
 * Undoes one placed file: removes what stands at its path and renames the image's original
 * back, then removes the directories created for it if empty. Everything is re-resolved inside
 * `entry.root` by descriptor when it happens (the image may have changed since), and nothing
 * is followed at the last component, so it can only ever act inside the image.
 * @throws {@link MountError} when the entry is malformed or a directory now stands at the path.
 * @internal
 */
export async function restorePlaced(entry: PlacedEntry): Promise<void> {
  const { root, path } = entry;
  if (entry.backup !== undefined && entry.backup !== `${path}${BACKUP_SUFFIX}`) {
    throw new MountError(
      `Refusing to restore ${path} in ${root}: its backup is recorded as ${entry.backup}, not ${path}${BACKUP_SUFFIX}.`,
      { phase: 'recovery', resources: { mountPath: root } },
    );
  }
  const parent = await resolveParent(root, path, { followFinal: false }).catch((error: unknown) => {
    // The directory is gone from the image: there is nothing of ours left to remove there.
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return undefined;
    throw error;
  });
  if (parent?.name !== undefined) {
    const { dir, name } = parent;
    try {
      const st = await lstatAt(dir, name);
      if (st?.isDirectory()) {
        throw new MountError(
          `Cannot put the image's ${path} back in ${root}: a directory stands there now. Remove it, then run recoverHost().`,
          { phase: 'copy-files', resources: { mountPath: root } },
        );
      }
      if (st) await unlink(at(dir, name));
      const backupName = `${name}${BACKUP_SUFFIX}`;
      if (entry.backup !== undefined && (await lstatAt(dir, backupName))) {
        await rename(at(dir, backupName), at(dir, name));
      }
    } finally {
      await dir.close();
    }
  } else if (parent) {
    await parent.dir.close();
  }
  for (const created of [...(entry.createdDirs ?? [])].reverse()) await removeEmptyDirInRoot(root, created);
}

/** Removes the directory `path` inside `root` if it is (still) an empty directory. */
async function removeEmptyDirInRoot(root: string, path: string): Promise<void> {
  const parent = await resolveParent(root, path, { followFinal: false }).catch(() => undefined);
  if (!parent) return;
  try {
    if (parent.name === undefined) return;
    if ((await lstatAt(parent.dir, parent.name))?.isDirectory())
      await rmdir(at(parent.dir, parent.name)).catch(() => {});
  } finally {
    await parent.dir.close();
  }
}
