/**
 * The chroot: its mounts, the command wrapper, the mount path.
 */
import { DEFAULT_CHROOT_MOUNTS } from '../../chroot/defaults.js';
import { type Add, type Loose, asList, isString } from './helpers.js';

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
    const previous = targets.get(spec.target);
    if (previous !== undefined && path !== 'default') {
      add(
        path,
        spec.target,
        `mounts ${spec.target} again (already mounted by ${previous === 'default' ? 'the default chroot mounts' : previous}); to change a default, replace the list with chrootMounts`,
      );
    } else targets.set(spec.target, path);
  }
  if (isString(c.mountPath) && !c.mountPath.startsWith('/')) {
    add('mountPath', c.mountPath, 'must be an absolute path (start with "/"), e.g. "/mnt/ami-chroot/{{.Device}}"');
  }
}
