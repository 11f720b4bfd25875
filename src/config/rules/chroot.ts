/**
 * The chroot: its mounts, the command wrapper, the mount path.
 */
import { DEFAULT_CHROOT_MOUNTS } from '../../chroot/defaults.js';
import { type Add, type Loose, asList, isString } from './helpers.js';
import { mountPointProblem, normalizeSlashes } from './paths.js';

/** Reads a chroot mount in either form; undefined when malformed (the field rule reports it). @internal */
export function chrootMountSpec(x: unknown): { fsType: string; source: string; target: string } | undefined {
  const parts = Array.isArray(x)
    ? x
    : x && typeof x === 'object'
      ? [(x as Loose).fsType, (x as Loose).source, (x as Loose).target]
      : [];
  if (parts.length !== 3 || !parts.every(isString)) return undefined;
  return { fsType: parts[0] as string, source: parts[1] as string, target: parts[2] as string };
}

/** Chroot mounts mount each target once; the wrapper runs the command; the mount path is absolute. */
export function chrootRules(c: Loose, add: Add): void {
  const mounts = [
    ...(Array.isArray(c.chrootMounts)
      ? c.chrootMounts.map((m, i) => [chrootMountSpec(m), `chrootMounts.${i}`] as const)
      : DEFAULT_CHROOT_MOUNTS.map((m) => [m, 'default'] as const)),
    ...asList(c.extraChrootMounts).map((m, i) => [chrootMountSpec(m), `extraChrootMounts.${i}`] as const),
  ];
  const targets = new Map<string, string>();
  for (const [spec, path] of mounts) {
    if (!spec) continue;
    const problem = spec.target.startsWith('/') ? chrootTargetProblem(spec.target) : undefined;
    if (problem) {
      add(path, spec.target, problem);
      continue;
    }
    const target = normalizeSlashes(spec.target);
    const previous = targets.get(target);
    if (previous !== undefined && path !== 'default') {
      add(
        path,
        spec.target,
        `mounts ${spec.target} again (already mounted by ${previous === 'default' ? 'the default chroot mounts' : previous}); to change a default, replace the list with chrootMounts`,
      );
    } else targets.set(target, path);
  }
  if (isString(c.mountPath)) {
    // Checked on the template text: actions only add characters inside a segment.
    const problem = c.mountPath.startsWith('/')
      ? mountPointProblem(c.mountPath, 'the mount path')
      : 'must be an absolute path (start with "/"), e.g. "/mnt/ami-chroot/{{.Device}}"';
    if (problem) add('mountPath', c.mountPath, problem);
  }
}

/** What is wrong with a chroot mount target (a path inside the image), or undefined. */
function chrootTargetProblem(target: string): string | undefined {
  if (target.includes('\0')) return 'the target must not contain a NUL character';
  if (target.split('/').includes('..')) return 'the target must not contain ".." segments';
  if (normalizeSlashes(target) === '/')
    return 'the target must not be the image\'s root "/" (it is the build volume itself)';
  return undefined;
}
