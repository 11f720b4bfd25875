/**
 * Mounts: the mountinfo parser (exact paths), mount/umount through the command wrapper, and the
 * robust unmount that never reports success while anything is mounted.
 */
import { constants } from 'node:fs';
import { open, readFile, rmdir } from 'node:fs/promises';
import { UnmountError } from '../errors.js';
import type { MountHolder, Phase } from '../errors.js';
import type { OperationOptions } from '../types.js';
import { sleep as delay } from '../internal/abort.js';
import { toCtx } from '../internal/ctx.js';
import type { Ctx } from '../internal/ctx.js';
import { run } from './exec.js';
import type { CommandWrapper } from './exec.js';
import { assertSafeRoot, findHolders, stopHolders } from './processes.js';

/**
 * One line of /proc/self/mountinfo.
 * @internal
 */
export interface MountInfo {
  readonly id: number;
  readonly parentId: number;
  /** `major:minor` of the filesystem's device. */
  readonly majorMinor: string;
  /** The directory of the filesystem that forms this mount's root (a bind mount's source). */
  readonly root: string;
  /** Where it is mounted, unescaped. */
  readonly mountPoint: string;
  readonly options: string;
  /** Propagation tags such as `shared:1`, `master:2`. */
  readonly optionalFields: readonly string[];
  readonly fsType: string;
  readonly source: string;
  readonly superOptions: string;
}

/** The kernel escapes space, tab, newline and backslash in mountinfo as octal (`\040`). */
function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * Parses the text of /proc/<pid>/mountinfo. Lines that don't parse are skipped.
 * @internal
 */
export function parseMountInfo(text: string): MountInfo[] {
  const entries: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0 || fields.length < sep + 3) continue;
    entries.push({
      id: Number(fields[0]),
      parentId: Number(fields[1]),
      majorMinor: fields[2]!,
      root: unescapeMountPath(fields[3]!),
      mountPoint: unescapeMountPath(fields[4]!),
      options: fields[5]!,
      optionalFields: fields.slice(6, sep),
      fsType: fields[sep + 1]!,
      source: unescapeMountPath(fields[sep + 2]!),
      superOptions: fields[sep + 3] ?? '',
    });
  }
  return entries;
}

/**
 * This process's mount table.
 * @internal
 */
export async function readMountInfo(path = '/proc/self/mountinfo'): Promise<MountInfo[]> {
  return parseMountInfo(await readFile(path, 'utf8'));
}

function isUnder(path: string, root: string): boolean {
  if (root === '/') return true;
  return path === root || path.startsWith(`${root}/`);
}

/**
 * The mounts at or under `root` (exact path prefix on a `/` boundary: `/mnt/a` does not match
 * `/mnt/ab`), in the order to unmount them: children before parents, the most recent of
 * several stacked on one point first.
 * @internal
 */
export function mountsUnder(entries: readonly MountInfo[], root: string): MountInfo[] {
  const r = root.length > 1 && root.endsWith('/') ? root.slice(0, -1) : root;
  // mountinfo lists a mount after its parent and after what it is stacked on; reverse order
  // therefore unmounts every child before its parent.
  return entries.filter((e) => isUnder(e.mountPoint, r)).reverse();
}

/**
 * True when `path` is a mount point (exact match).
 * @internal
 */
export async function isMountPoint(path: string): Promise<boolean> {
  return (await readMountInfo()).some((e) => e.mountPoint === path);
}

/**
 * Host-command context: logging, cancellation and Packer's command wrapper.
 * @internal
 */
export interface HostCtx extends Ctx {
  readonly commandWrapper?: CommandWrapper | undefined;
}

/**
 * A mount to make.
 * @internal
 */
export interface MountSpec {
  readonly source: string;
  readonly target: string;
  /** Filesystem type; `bind` makes a bind mount. Omitted: let mount(8) detect it. */
  readonly fsType?: string | undefined;
  readonly options?: readonly string[] | undefined;
}

/**
 * Mounts one filesystem with mount(8), made private in the same call so that nothing mounted
 * below it propagates to the host's mounts (on systemd hosts `/` is shared: a `/dev` bind
 * would otherwise carry a devpts mount back onto the host's `/dev/pts`).
 * @internal
 */
export async function mountOne(spec: MountSpec, ctx: HostCtx, phase: Phase = 'mount'): Promise<void> {
  const args: string[] = [];
  if (spec.fsType === 'bind') args.push('--bind');
  else if (spec.fsType) args.push('-t', spec.fsType);
  args.push('--make-private');
  for (const o of spec.options ?? []) args.push('-o', o);
  args.push(spec.source, spec.target);
  await run('mount', args, {
    signal: ctx.signal,
    logger: ctx.logger,
    onProgress: ctx.emit,
    commandWrapper: ctx.commandWrapper,
    timeoutMs: 120_000,
    phase,
  });
}

/**
 * The filesystem type on `device` (`xfs`, `ext4`…) as blkid(8) probes it, or undefined when it
 * finds none. Probes the device itself (`-p`), not blkid's cache: pre-mount commands may have just
 * formatted it. A failing blkid is logged and counts as unknown: the mount then says what is wrong.
 * @internal
 */
export async function filesystemType(
  device: string,
  ctx: HostCtx,
  phase: Phase = 'mount',
): Promise<string | undefined> {
  try {
    const { stdout } = await run('blkid', ['-p', '-o', 'value', '-s', 'TYPE', device], {
      signal: ctx.signal,
      logger: ctx.logger,
      commandWrapper: ctx.commandWrapper,
      timeoutMs: 60_000,
      phase,
      // 2: nothing recognised on the device.
      okExitCodes: [0, 2],
    });
    return stdout.trim() || undefined;
  } catch (error) {
    ctx.signal?.throwIfAborted();
    ctx.logger.warn(`Could not tell the filesystem type of ${device} (blkid): ${(error as Error).message}`);
    return undefined;
  }
}

/**
 * Options of {@link unmountTree}.
 * @public
 */
export interface UnmountTreeOptions extends OperationOptions {
  /** Time between SIGTERM and SIGKILL for processes still inside. @defaultValue 3000 */
  readonly killGraceMs?: number;
  /** Unmount attempts before giving up. @defaultValue 6 */
  readonly attempts?: number;
  /** Remove the `root` directory once nothing is mounted there. @defaultValue false */
  readonly removeDir?: boolean;
  /** Packer's command_wrapper, applied to umount. */
  readonly commandWrapper?: CommandWrapper;
  /** Processes never to signal (this process and its ancestors always are). */
  readonly protectPids?: ReadonlySet<number>;
}

/**
 * What {@link unmountTree} did.
 * @public
 */
export interface UnmountReport {
  /** Mount points unmounted, in order. */
  readonly unmounted: readonly string[];
  /** Processes that were stopped because they held the tree. */
  readonly stopped: readonly MountHolder[];
}

/**
 * Unmounts everything at and under `root`, deepest first, including mounts someone else made
 * there (a package script mounting binfmt_misc). Processes holding the tree are stopped
 * (SIGTERM, then SIGKILL after `killGraceMs`), unmounting is retried with backoff, and the result
 * is verified against /proc/self/mountinfo. Throws {@link UnmountError} naming what is still
 * mounted and who holds it; never returns while anything is mounted.
 *
 * @remarks
 * Lazy unmount (`umount -l`) is never used: it only hides the mount while the filesystem stays
 * live on the device, so a snapshot or detach afterwards would capture a filesystem that is
 * still being written. A force unmount (`-f`) is meaningless for local filesystems.
 *
 * @example
 * ```ts
 * import { unmountTree } from 'ami-chroot/host';
 *
 * // Everything at and under the directory, deepest first; processes still inside are stopped.
 * const report = await unmountTree('/mnt/ami-chroot/loop0', { killGraceMs: 5_000, removeDir: true });
 * console.log(report.unmounted); // [ '/mnt/ami-chroot/loop0/proc/sys/fs/binfmt_misc', …, '/mnt/ami-chroot/loop0' ]
 * console.log(report.stopped.map((holder) => `${holder.pid} ${holder.command}`)); // e.g. [ '4242 /usr/sbin/nginx' ]
 * ```
 * @public
 */
export async function unmountTree(root: string, options: UnmountTreeOptions = {}): Promise<UnmountReport> {
  const ctx: HostCtx = { ...toCtx(options), commandWrapper: options.commandWrapper };
  return unmountTreeCtx(root, ctx, options);
}

/**
 * {@link unmountTree} with a built context. `warned` carries the holders already warned about
 * across calls, so one mount's repeated unmounts warn once per holder.
 * @internal
 */
export async function unmountTreeCtx(
  root: string,
  ctx: HostCtx,
  options: Pick<UnmountTreeOptions, 'killGraceMs' | 'attempts' | 'removeDir' | 'protectPids'> & {
    readonly warned?: Set<number>;
  } = {},
): Promise<UnmountReport> {
  assertSafeRoot(root, 'mount tree root');
  const attempts = Math.max(1, options.attempts ?? 6);
  const unmounted: string[] = [];
  const stopped: MountHolder[] = [];
  let lastError = '';
  let holders: MountHolder[];
  let finalAttempt = attempts;
  const warned = options.warned ?? new Set<number>();
  let pauseMs = 50;
  for (let attempt = 1; ; attempt++) {
    ctx.signal?.throwIfAborted();
    const remaining = mountsUnder(await readMountInfo(), root).map((m) => m.mountPoint);
    if (remaining.length === 0) break;
    if (attempt > finalAttempt) {
      holders = await findHolders(root);
      const who = holders.length
        ? ` Held by: ${holders.map((h) => `pid ${h.pid} ${h.command} (${h.reason})`).join('; ')}.`
        : ' No process holds it: check for mounts of the same filesystem in other mount namespaces (e.g. containers) and nested loop devices.';
      throw new UnmountError(
        `Could not unmount ${remaining.join(', ')} after ${attempt - 1} attempts: ${lastError || 'still mounted'}.${who} ` +
          'Stop those processes, then call unmount() again or run recoverHost().',
        remaining,
        holders,
        { resources: { mountPath: root } },
      );
    }
    if (attempt > 1) {
      // Something refused to go: stop whatever is inside before trying again.
      const found = await findHolders(root);
      if (found.length > 0) {
        const left = await stopHolders(root, ctx, {
          ...(options.killGraceMs === undefined ? {} : { graceMs: options.killGraceMs }),
          ...(options.protectPids ? { protect: options.protectPids } : {}),
          warned,
        });
        for (const h of found)
          if (!left.some((l) => l.pid === h.pid) && !stopped.some((s) => s.pid === h.pid)) stopped.push(h);
        // A holder we will not stop keeps the tree busy however often we retry: one last try.
        if (left.length > 0) finalAttempt = Math.min(finalAttempt, attempt);
      }
    }
    // One umount(8) for the whole tree, deepest first; it carries on past a busy one.
    try {
      await run('umount', remaining, {
        signal: ctx.signal,
        logger: ctx.logger,
        onProgress: ctx.emit,
        commandWrapper: ctx.commandWrapper,
        timeoutMs: 120_000,
        phase: 'unmount',
      });
    } catch (error) {
      if (ctx.signal?.aborted) throw ctx.signal.reason;
      lastError = error instanceof Error ? (error as { stderr?: string }).stderr || error.message : String(error);
    }
    const after = new Set(mountsUnder(await readMountInfo(), root).map((m) => m.mountPoint));
    for (const m of remaining) if (!after.has(m)) unmounted.push(m);
    if (after.size > 0 && attempt > 1) {
      await delay(pauseMs, ctx.signal);
      pauseMs = Math.min(pauseMs * 2, 1000);
    }
  }
  if (options.removeDir) {
    try {
      await rmdir(root);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT')
        ctx.logger.warn(`Unmounted ${root} but could not remove the directory: ${(error as Error).message}`);
    }
  }
  return { unmounted, stopped };
}

/**
 * Waits until no filesystem holds `device` (an exclusive open of a block device fails with
 * EBUSY while it is mounted anywhere, in any mount namespace). Returns false on timeout.
 * @internal
 */
export async function waitDeviceReleased(device: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let pauseMs = 5;
  for (;;) {
    try {
      const handle = await open(device, constants.O_RDONLY | constants.O_EXCL);
      await handle.close();
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EBUSY') return true; // Gone or not a block device: nothing holds it.
    }
    if (Date.now() >= deadline) return false;
    await delay(pauseMs, signal);
    pauseMs = Math.min(pauseMs * 2, 200);
  }
}
