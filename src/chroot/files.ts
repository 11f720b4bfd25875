/**
 * File operations inside the image for the Chroot handle: every one resolves its path by
 * descriptor (resolve.ts), creates files with O_EXCL|O_NOFOLLOW and renames within the parent's
 * descriptor, and touches regular files only.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import type { Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, rename, symlink, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { NotRegularFileError, PathEscapeError } from '../errors.js';
import { errnoCode } from '../internal/fs.js';
import { at, describeType, lstatAt, openRegularForRead, resolveParent } from './resolve.js';

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

function notRegular(root: string, path: string, st: Stats, doing: string): NotRegularFileError {
  const type = describeType(st);
  return new NotRegularFileError(
    `Refusing to ${doing} ${path} in the chroot ${root}: it is ${type}, and only regular files are ${doing === 'read' ? 'read' : 'written'}. ` +
      'Run a command inside the chroot (chroot.exec) to work with special files.',
    path,
    type,
    { resources: { mountPath: root } },
  );
}

function symlinkRefused(root: string, path: string, target: string): PathEscapeError {
  return new PathEscapeError(
    `Refusing ${path} in the chroot ${root}: it is a symlink (-> ${target}); writing through it could leave the image. ` +
      'Pass followSymlink to write to its target inside the chroot.',
    path,
    { resources: { mountPath: root } },
  );
}

/** What to write: bytes, or a host file to copy. */
type Content = { readonly data: string | Uint8Array } | { readonly hostFile: string };

async function fill(out: FileHandle, content: Content): Promise<void> {
  if ('data' in content) {
    await out.writeFile(content.data);
    return;
  }
  const input = await open(content.hostFile, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const buffer = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const { bytesRead } = await input.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      await out.write(buffer, 0, bytesRead);
    }
  } finally {
    await input.close();
  }
}

/**
 * Options of {@link writeInRoot}.
 * @internal
 */
export interface WriteInRootOptions {
  /** Permission bits; an existing file keeps its own when omitted. */
  readonly mode?: number | undefined;
  /** Follow a symlink at the path (inside the root); otherwise it is refused. */
  readonly followSymlink?: boolean | undefined;
  /** Create missing parent directories. */
  readonly mkdirs?: boolean | undefined;
}

/**
 * Writes a regular file at `path` inside `root`: a new file is created next to it with
 * O_CREAT|O_EXCL|O_NOFOLLOW in the resolved parent and renamed over the name within that same
 * parent, so the write can never land anywhere but inside the image. An existing file's mode
 * and owner are kept; anything but a regular file there is refused.
 * @internal
 */
export async function writeInRoot(
  root: string,
  path: string,
  content: Content,
  options: WriteInRootOptions = {},
): Promise<void> {
  const parent = await resolveParent(root, path, {
    followFinal: options.followSymlink ?? false,
    mkdirs: options.mkdirs ?? false,
  });
  const { dir, name } = parent;
  try {
    if (name === undefined) throw notRegular(root, path, await dir.stat(), 'write');
    const existing = await lstatAt(dir, name);
    if (existing?.isSymbolicLink()) throw symlinkRefused(root, path, await readlink(at(dir, name)).catch(() => '?'));
    if (existing && !existing.isFile()) throw notRegular(root, path, existing, 'write');
    const mode = options.mode ?? (existing ? existing.mode & 0o7777 : 0o644);
    const temp = `.${name.slice(0, 200)}.ami-chroot-${randomBytes(6).toString('hex')}`;
    const out = await open(at(dir, temp), CREATE_FLAGS, 0o600);
    try {
      try {
        await fill(out, content);
        if (existing) await out.chown(existing.uid, existing.gid);
        await out.chmod(mode);
      } finally {
        await out.close();
      }
      // Within the parent's descriptor: whatever replaced `name` meanwhile is replaced, never followed.
      await rename(at(dir, temp), at(dir, name));
    } catch (error) {
      await unlink(at(dir, temp)).catch(() => {});
      throw error;
    }
  } finally {
    await dir.close();
  }
}

/**
 * Reads a regular file at `path` inside `root` (symlinks followed inside the root). Device
 * nodes, FIFOs and sockets are refused without being opened.
 * @internal
 */
export async function readInRoot(root: string, path: string): Promise<Buffer> {
  const { dir, name } = await resolveParent(root, path, { followFinal: true });
  try {
    if (name === undefined) throw notRegular(root, path, await dir.stat(), 'read');
    let opened: FileHandle | Stats;
    try {
      opened = await openRegularForRead(dir, name);
    } catch (error) {
      if (errnoCode(error) === 'ELOOP') {
        throw new PathEscapeError(
          `Refusing ${path} in the chroot ${root}: it changed into a symlink while being read.`,
          path,
          {
            resources: { mountPath: root },
            cause: error,
          },
        );
      }
      throw error;
    }
    if (!('fd' in opened)) {
      if (opened.isSymbolicLink()) {
        throw new PathEscapeError(
          `Refusing ${path} in the chroot ${root}: it changed into a symlink while being read.`,
          path,
          { resources: { mountPath: root } },
        );
      }
      throw notRegular(root, path, opened, 'read');
    }
    try {
      return await opened.readFile();
    } finally {
      await opened.close();
    }
  } finally {
    await dir.close();
  }
}

/** Makes the directory `path` inside the root (or accepts an existing one); mode for a new one. */
async function makeDir(root: string, path: string, mode: number): Promise<void> {
  const { dir, name } = await resolveParent(root, path, { followFinal: true });
  try {
    if (name === undefined) return;
    try {
      await mkdir(at(dir, name), { mode });
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error;
      const st = await lstatAt(dir, name);
      if (!st?.isDirectory()) {
        throw new PathEscapeError(
          `Refusing ${path} in the chroot ${root}: a directory is to be copied there but it is ${st ? describeType(st) : 'gone'}.`,
          path,
          { resources: { mountPath: root } },
        );
      }
    }
  } finally {
    await dir.close();
  }
}

/** Replaces whatever non-directory is at `path` with a symlink to `target` (never followed). */
async function placeSymlink(root: string, path: string, target: string): Promise<void> {
  const { dir, name } = await resolveParent(root, path, { followFinal: false });
  try {
    if (name === undefined) return;
    const existing = await lstatAt(dir, name);
    if (existing?.isDirectory()) {
      throw new PathEscapeError(
        `Refusing ${path} in the chroot ${root}: a symlink is to be copied there but it is a directory.`,
        path,
        { resources: { mountPath: root } },
      );
    }
    if (existing) await unlink(at(dir, name));
    await symlink(target, at(dir, name));
  } finally {
    await dir.close();
  }
}

/**
 * Copies a host file or tree into the image (see `Chroot.copyIn`). Every entry is resolved by
 * descriptor when it is written; host entries other than files, directories and symlinks are
 * skipped with `onSkip`.
 * @internal
 */
export async function copyInRoot(
  root: string,
  hostPath: string,
  chrootPath: string,
  signal: AbortSignal,
  onSkip: (hostPath: string) => void,
): Promise<void> {
  let dest = chrootPath;
  // Like cp -R: into an existing directory (a symlink to one inside the image included).
  const parent = await resolveParent(root, chrootPath, { followFinal: true }).catch((error: unknown) => {
    // A missing directory on the way: the destination is not an existing directory.
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  });
  if (parent) {
    try {
      const st = parent.name === undefined ? await parent.dir.stat() : await lstatAt(parent.dir, parent.name);
      if (st?.isDirectory()) dest = `${parent.chrootPath === '/' ? '' : parent.chrootPath}/${basename(hostPath)}`;
    } finally {
      await parent.dir.close();
    }
  }
  const copyTree = async (src: string, to: string): Promise<void> => {
    signal.throwIfAborted();
    const st = await lstat(src);
    if (st.isDirectory()) {
      await makeDir(root, to, st.mode & 0o7777);
      for (const name of await readdir(src)) await copyTree(`${src}/${name}`, `${to}/${name}`);
    } else if (st.isSymbolicLink()) {
      await placeSymlink(root, to, await readlink(src));
    } else if (st.isFile()) {
      await writeInRoot(root, to, { hostFile: src }, { mode: st.mode & 0o7777 });
    } else {
      onSkip(src);
    }
  };
  await copyTree(hostPath, dest);
}
