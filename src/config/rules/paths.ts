/**
 * Host path rules: where the build mounts, copies and locks must be plain absolute paths that
 * cannot climb out (`..`) or land on the host's root or kernel file systems.
 */

/** Host directories a build must never mount over or under. */
const SYSTEM_TREES = ['/proc', '/sys', '/dev'];

/** A path with repeated and trailing slashes removed ("/" stays "/"). */
export function normalizeSlashes(path: string): string {
  const collapsed = path.replace(/\/+/g, '/');
  return collapsed.length > 1 ? collapsed.replace(/\/$/, '') : collapsed;
}

/** What is wrong with an absolute host path (and the fix), or undefined. */
export function hostPathProblem(path: string, what: string): string | undefined {
  if (!path.startsWith('/')) return `${what} must be an absolute path (start with "/")`;
  if (path.includes('\0')) return `${what} must not contain a NUL character`;
  if (path.split('/').includes('..')) return `${what} must not contain ".." segments; write the path without them`;
  return undefined;
}

/** What is wrong with a mount point on the host, or undefined. */
export function mountPointProblem(path: string, what: string): string | undefined {
  const problem = hostPathProblem(path, what);
  if (problem) return problem;
  const normal = normalizeSlashes(path);
  if (normal === '/')
    return `${what} must not be the host's root "/"; use a directory of its own, e.g. "/mnt/ami-chroot/{{.Device}}"`;
  const tree = SYSTEM_TREES.find((t) => normal === t || normal.startsWith(`${t}/`));
  if (tree)
    return `${what} must not be in the host's ${tree}; use a directory of its own, e.g. "/mnt/ami-chroot/{{.Device}}"`;
  return undefined;
}
