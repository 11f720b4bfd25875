/**
 * Resolving a path of the image to a host path that stays inside the image. A naive
 * `join(root, p)` follows the image's symlinks on the host: `/etc/resolv.conf -> /run/...` or
 * `/etc/evil -> /` would send a write to the host's own files. Here every component is looked at
 * with lstat and symlinks are resolved the way the chroot itself sees them.
 */
import { lstat, mkdir, readlink, realpath } from 'node:fs/promises';
import { PathEscapeError } from '../errors.js';

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

const MAX_LINKS = 40;

function isInside(path: string, root: string): boolean {
  return path === root || path.startsWith(`${root}/`);
}

/**
 * Maps `path` (as seen inside the chroot) to a host path under `root`.
 *
 * - Symlinks are resolved relative to the root: an absolute target starts again at the root, and
 *   `..` never climbs above it (what chroot(2) itself does, so the result is the file that
 *   programs inside the chroot see).
 * - With `followFinal: false` a symlink in the last component is returned as is (for lstat,
 *   rename, or an O_NOFOLLOW open that refuses it).
 * - As a last check the real path of the deepest existing directory must be inside the root's
 *   real path; anything else (a race, or a mount pointing elsewhere) is refused.
 *
 * @throws {@link PathEscapeError} on a symlink loop or a path that resolves outside the root.
 * @internal
 */
export async function resolveInRoot(root: string, path: string, options: ResolveOptions = {}): Promise<string> {
  const followFinal = options.followFinal ?? true;
  const realRoot = await realpath(root);
  let pending = path.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let links = 0;
  let missing = false;
  while (pending.length > 0) {
    const component = pending.shift()!;
    if (component === '..') {
      done.pop();
      continue;
    }
    const candidate = `${realRoot}/${[...done, component].join('/')}`;
    const isLast = pending.length === 0;
    if (!missing) {
      let st;
      try {
        st = await lstat(candidate);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        if (options.mkdirs) {
          await mkdir(candidate, { mode: 0o755 });
        } else {
          // Everything below a missing component is missing too (`..` after it is still honoured).
          missing = true;
        }
        done.push(component);
        continue;
      }
      if (st.isSymbolicLink() && (!isLast || followFinal)) {
        if (++links > MAX_LINKS) {
          throw new PathEscapeError(
            `Too many symlinks resolving ${path} inside ${root} (a loop in the image?).`,
            path,
            {
              resources: { mountPath: root },
            },
          );
        }
        const target = await readlink(candidate);
        const parts = target.split('/').filter((c) => c !== '' && c !== '.');
        if (target.startsWith('/')) done.length = 0;
        pending = [...parts, ...pending];
        continue;
      }
    }
    done.push(component);
  }
  const result = done.length ? `${realRoot}/${done.join('/')}` : realRoot;
  // Defence in depth: the deepest existing directory must really be inside the root.
  let probe = done.length ? `${realRoot}/${done.slice(0, -1).join('/')}` : realRoot;
  for (;;) {
    try {
      const real = await realpath(probe);
      if (!isInside(real, realRoot)) {
        throw new PathEscapeError(
          `${path} resolves outside the chroot ${root} (through ${probe} -> ${real}); refusing.`,
          path,
          {
            resources: { mountPath: root },
          },
        );
      }
      break;
    } catch (error) {
      if (error instanceof PathEscapeError) throw error;
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || probe === realRoot) throw error;
      probe = probe.slice(0, probe.lastIndexOf('/')) || realRoot;
    }
  }
  return result;
}
