/**
 * Host paths of image paths, for host tools (mount targets, `Chroot.path`): resolved inside the
 * root by descriptor (see resolve.ts), then named by the directory the kernel actually reached.
 */
import { readlink, realpath } from 'node:fs/promises';
import { PathEscapeError } from '../errors.js';
import { at, openDirInRoot, resolveParent } from './resolve.js';

/**
 * Options of {@link resolveInRoot}.
 * @internal
 */
export interface ResolveOptions {
  /** Follow a symlink in the last component too. @defaultValue true */
  readonly followFinal?: boolean;
  /** Create missing directories (mode 0755) along the way, the last component included. @defaultValue false */
  readonly mkdirs?: boolean;
}

function isInside(path: string, root: string): boolean {
  return path === root || path.startsWith(`${root}/`);
}

/**
 * Maps `path` (as seen inside the chroot) to a host path under `root`: symlinks are resolved
 * relative to the root, `..` never climbs above it, components that do not exist yet are kept
 * as given. The result is a path string: a process racing us can change what it names later, so
 * the library's own file operations never use it (they work by descriptor).
 *
 * @throws {@link PathEscapeError} on a symlink loop or a result outside the root.
 * @internal
 */
export async function resolveInRoot(root: string, path: string, options: ResolveOptions = {}): Promise<string> {
  const realRoot = await realpath(root);
  let hostPath: string;
  if (options.mkdirs) {
    const { dir } = await openDirInRoot(root, path, { mkdirs: true });
    try {
      hostPath = await readlink(at(dir));
    } finally {
      await dir.close();
    }
  } else {
    const parent = await resolveParent(root, path, { followFinal: options.followFinal ?? true, missingOk: true });
    try {
      const dirPath = await readlink(at(parent.dir));
      hostPath = parent.name === undefined ? dirPath : `${dirPath === '/' ? '' : dirPath}/${parent.name}`;
    } finally {
      await parent.dir.close();
    }
  }
  // The walk cannot leave the root; a different answer means the root itself moved under us.
  if (!isInside(hostPath, realRoot)) {
    throw new PathEscapeError(`${path} resolves outside the chroot ${root} (${hostPath}); refusing.`, path, {
      resources: { mountPath: root },
    });
  }
  return hostPath;
}
