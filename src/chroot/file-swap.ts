/**
 * Placing a file into the image for the duration of a build while keeping the image's own: the
 * original (a symlink included, even a dangling one) is renamed aside in the same directory and
 * renamed back afterwards, so the AMI is byte-for-byte unchanged there. Packer instead deletes
 * its copy and with it the image's file (packer#4698: AMIs without /etc/resolv.conf).
 */
import { constants } from 'node:fs';
import { lstat, open, rename } from 'node:fs/promises';
import { MountError, PathEscapeError } from '../errors.js';
import type { Phase } from '../errors.js';
import { restorePlaced } from '../host/journal.js';
import type { Journal } from '../host/journal.js';
import { resolveInRoot } from './paths.js';

/** Suffix of the image's original while our file stands in for it. */
export const BACKUP_SUFFIX = '.ami-chroot-orig';

/**
 * A file placed into the image; `restore()` puts the image's original back. Idempotent.
 * @internal
 */
export interface PlacedFile {
  /** Host path of the placed file. */
  readonly hostPath: string;
  restore(): Promise<void>;
}

async function lexists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/**
 * Puts `data` at `chrootPath` inside `root` (mode `mode`), moving an existing entry aside.
 * The parent directory is resolved inside the root (missing directories are created); the last
 * component is never followed, so a symlink there is moved aside, not written through.
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
  const slash = chrootPath.lastIndexOf('/');
  const name = chrootPath.slice(slash + 1);
  if (!name || name === '.' || name === '..') {
    throw new MountError(`Cannot place a file at "${chrootPath}": it names no file.`, {
      phase,
      resources: { mountPath: root },
    });
  }
  // Directories created for the file are removed again at restore, so the image is unchanged.
  const parent = chrootPath.slice(0, slash) || '/';
  const wanted = await resolveInRoot(root, parent);
  const createdDirs: string[] = [];
  for (let p = wanted; p !== root && !(await lexists(p)); p = p.slice(0, p.lastIndexOf('/'))) createdDirs.unshift(p);
  const dir = createdDirs.length > 0 ? await resolveInRoot(root, parent, { mkdirs: true }) : wanted;
  const hostPath = `${dir}/${name}`;
  const backupPath = `${hostPath}${BACKUP_SUFFIX}`;
  if (await lexists(backupPath)) {
    throw new MountError(
      `${backupPath} already exists: a previous build was interrupted with the image's ${chrootPath} set aside. ` +
        'Run recoverHost() to put it back, or inspect and remove it.',
      { phase, resources: { mountPath: root } },
    );
  }
  const hadOriginal = await lexists(hostPath);
  const entry = {
    type: 'file',
    root,
    path: hostPath,
    ...(hadOriginal ? { backup: backupPath } : {}),
    ...(createdDirs.length > 0 ? { createdDirs } : {}),
  } as const;
  await journal?.add(entry);
  if (hadOriginal) await rename(hostPath, backupPath);
  try {
    const handle = await open(
      hostPath,
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
    if ((error as NodeJS.ErrnoException).code === 'EEXIST' || (error as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new PathEscapeError(
        `Something reappeared at ${chrootPath} in ${root} while placing a file there; refusing to write through it.`,
        chrootPath,
        {
          phase,
          cause: error,
        },
      );
    }
    throw error;
  }
  let restored = false;
  return {
    hostPath,
    restore: async () => {
      if (restored) return;
      await restorePlaced(entry);
      restored = true;
      await journal?.remove(entry);
    },
  };
}
