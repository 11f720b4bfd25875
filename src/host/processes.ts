/**
 * Processes on the host: liveness that survives pid reuse, and the processes that keep a mount
 * busy (root, cwd, executable, open files, mappings), stopped TERM-then-KILL.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, normalize } from 'node:path';
import type { MountHolder } from '../errors.js';
import { sleep as delay } from '../internal/abort.js';
import type { Ctx } from '../internal/ctx.js';
import { mountsUnder, readMountInfo } from './mounts.js';

/**
 * Identifies one process for its whole life: a pid plus its start time (clock ticks since boot),
 * so a reused pid is never mistaken for the original owner.
 * @internal
 */
export interface ProcessIdentity {
  readonly pid: number;
  readonly startTime: number;
}

interface ProcStat {
  readonly state: string;
  readonly ppid: number;
  readonly pgrp: number;
  readonly startTime: number;
}

async function readStat(pid: number, procRoot: string): Promise<ProcStat | undefined> {
  try {
    const text = await readFile(`${procRoot}/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: split after the last ')'.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: f[0] ?? '?', ppid: Number(f[1]), pgrp: Number(f[2]), startTime: Number(f[19]) };
  } catch {
    return undefined;
  }
}

/**
 * This process's identity (for journals and reservations).
 * @internal
 */
export async function selfIdentity(procRoot = '/proc'): Promise<ProcessIdentity> {
  const stat = await readStat(process.pid, procRoot);
  return { pid: process.pid, startTime: stat?.startTime ?? 0 };
}

/**
 * True when the process exists, is not a zombie, and (if known) started at `startTime`.
 * @internal
 */
export async function isAlive(
  who: { pid: number; startTime?: number | undefined },
  procRoot = '/proc',
): Promise<boolean> {
  const stat = await readStat(who.pid, procRoot);
  if (!stat || stat.state === 'Z' || stat.state === 'X') return false;
  return who.startTime === undefined || who.startTime === 0 || stat.startTime === who.startTime;
}

/**
 * This process and its ancestors: never stopped, whatever they hold (killing our own parent
 * shell or test runner would be worse than any leftover mount).
 * @internal
 */
export async function protectedPids(procRoot = '/proc'): Promise<Set<number>> {
  const pids = new Set<number>([1, process.pid]);
  let pid = process.pid;
  for (let i = 0; i < 64 && pid > 1; i++) {
    const stat = await readStat(pid, procRoot);
    if (!stat) break;
    pid = stat.ppid;
    pids.add(pid);
  }
  return pids;
}

/**
 * Refuses a root that would make every process a "holder": empty, relative, `/`, or not
 * normalized. Stopping holders of such a root would signal the whole machine (the caller's own
 * process group included), so this is a programming error, thrown before anything is read.
 * @internal
 */
export function assertSafeRoot(root: string, what = 'root'): void {
  if (typeof root !== 'string' || !isAbsolute(root) || root !== normalize(root) || root === '/' || root.endsWith('/')) {
    throw new TypeError(
      `Refusing ${JSON.stringify(root)} as a ${what}: it must be an absolute, normalized path below / (e.g. /mnt/ami-chroot/xvdf), ` +
        'because every process at or under it is treated as holding it.',
    );
  }
}

function inside(path: string, root: string): boolean {
  const p = path.endsWith(' (deleted)') ? path.slice(0, -' (deleted)'.length) : path;
  return p === root || p.startsWith(root.endsWith('/') ? root : `${root}/`);
}

function link(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

function commandOf(pid: number, procRoot: string): string {
  try {
    const cmd = readFileSync(`${procRoot}/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    if (cmd) return cmd.length > 200 ? `${cmd.slice(0, 200)}…` : cmd;
  } catch {
    // fall through to comm
  }
  try {
    return `[${readFileSync(`${procRoot}/${pid}/comm`, 'utf8').trim()}]`;
  } catch {
    return '?';
  }
}

/**
 * What the scan compares a process against: our mount namespace, and the devices of the mounts
 * at and under the root (a path means the same thing only inside the same namespace).
 */
interface Identity {
  readonly mountNs: string | undefined;
  readonly devices: ReadonlySet<number>;
}

/** `st_dev` as Linux encodes it (glibc's makedev), from `major:minor`. @internal */
export function makedev(majorMinor: string): number {
  const [major = 0, minor = 0] = majorMinor.split(':').map(Number);
  return (
    (minor & 0xff) +
    (major & 0xfff) * 0x100 +
    Math.floor(minor / 0x100) * 0x100000 +
    Math.floor(major / 0x1000) * 2 ** 32
  );
}

async function identityOf(root: string, procRoot: string): Promise<Identity> {
  const devices = new Set<number>();
  try {
    for (const m of mountsUnder(await readMountInfo(), root)) devices.add(makedev(m.majorMinor));
  } catch {
    // No mountinfo: nothing in another namespace can be shown to hold the root.
  }
  return { mountNs: link(`${procRoot}/self/ns/mnt`), devices };
}

function deviceOf(path: string): number | undefined {
  try {
    return statSync(path).dev;
  } catch {
    return undefined;
  }
}

/**
 * Why `pid` holds `root`, if it does. In our mount namespace, by path; in another one, paths
 * name other things, so only a root, cwd or executable on one of the root's own devices counts,
 * and such a holder is marked foreign: it is reported, never signalled.
 */
function holderReason(
  pid: number,
  root: string,
  procRoot: string,
  scope: HolderScope,
  self: Identity,
): { reason: string; foreign: boolean } | undefined {
  const base = `${procRoot}/${pid}`;
  const reason = pathReason(pid, root, procRoot, scope);
  if (reason === undefined) return undefined;
  const ns = link(`${base}/ns/mnt`);
  if (ns === undefined || self.mountNs === undefined || ns === self.mountNs) return { reason, foreign: false };
  for (const what of scope === 'roots' ? ['root'] : ['root', 'cwd', 'exe']) {
    const dev = deviceOf(`${base}/${what}`);
    if (dev !== undefined && self.devices.has(dev))
      return { reason: `${what} on ${root}'s filesystem, in another mount namespace (${ns})`, foreign: true };
  }
  return undefined;
}

function pathReason(pid: number, root: string, procRoot: string, scope: HolderScope): string | undefined {
  const base = `${procRoot}/${pid}`;
  const r = link(`${base}/root`);
  if (r !== undefined && r !== '/' && inside(r, root)) return `root ${r}`;
  if (scope === 'roots') return undefined;
  const cwd = link(`${base}/cwd`);
  if (cwd !== undefined && inside(cwd, root)) return `cwd ${cwd}`;
  const exe = link(`${base}/exe`);
  if (exe !== undefined && inside(exe, root)) return `executable ${exe}`;
  let fds: string[] = [];
  try {
    fds = readdirSync(`${base}/fd`);
  } catch {
    // Gone, or a kernel thread.
  }
  for (const fd of fds) {
    const target = link(`${base}/fd/${fd}`);
    if (target !== undefined && target.startsWith('/') && inside(target, root)) return `open file ${target}`;
  }
  try {
    const maps = readFileSync(`${base}/maps`, 'utf8');
    // Cheap substring test first; most processes map nothing from the chroot.
    if (maps.includes(root)) {
      for (const line of maps.split('\n')) {
        const at = line.indexOf('/');
        if (at >= 0 && inside(line.slice(at), root)) return `mapping ${line.slice(at)}`;
      }
    }
  } catch {
    // Gone.
  }
  return undefined;
}

/**
 * What {@link findHolders} looks at: `all` (root, cwd, executable, open files, mappings) or
 * only `roots` (processes chrooted inside: the daemons provisioning started; a few ms).
 * @internal
 */
export type HolderScope = 'all' | 'roots';

/**
 * Every process whose root, cwd, executable, open files or memory mappings are at or under
 * `root` (exact path prefix on a `/` boundary). Processes that exit during the scan are skipped.
 *
 * @remarks
 * /proc is read synchronously, yielding to the event loop every few processes: thousands of
 * tiny async reads through the thread pool cost several times more than the reads themselves.
 * @internal
 */
export async function findHolders(root: string, procRoot = '/proc', scope: HolderScope = 'all'): Promise<Holder[]> {
  assertSafeRoot(root);
  let names: string[];
  try {
    names = readdirSync(procRoot);
  } catch {
    return [];
  }
  const self = await identityOf(root, procRoot);
  const holders: Holder[] = [];
  let n = 0;
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    if (++n % 16 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const pid = Number(name);
    const found = holderReason(pid, root, procRoot, scope, self);
    if (found === undefined) continue;
    const holder: Holder = { pid, command: commandOf(pid, procRoot), reason: found.reason };
    // Not enumerable: callers see a plain MountHolder.
    if (found.foreign) Object.defineProperty(holder, 'foreign', { value: true });
    holders.push(holder);
  }
  return holders.sort((a, b) => a.pid - b.pid);
}

/**
 * A holder as found; `foreign` ones live in another mount namespace and are never signalled.
 * @internal
 */
export interface Holder extends MountHolder {
  readonly foreign?: boolean;
}

/**
 * Options of {@link stopHolders}.
 * @internal
 */
export interface StopHoldersOptions {
  /** Time between SIGTERM and SIGKILL. @defaultValue 3000 */
  readonly graceMs?: number;
  /** Never signal these (besides this process and its ancestors, always protected). */
  readonly protect?: ReadonlySet<number>;
  /** /proc, for tests. */
  readonly procRoot?: string;
  /** Which holders to look for. @defaultValue 'all' */
  readonly scope?: HolderScope;
  /**
   * Pids already warned about as not to be stopped; shared across calls (a retrying unmount) so
   * each such holder is logged once.
   */
  readonly warned?: Set<number>;
}

/**
 * Stops the processes holding `root`: SIGTERM, then SIGKILL to whatever still holds it after
 * the grace period. Processes in another mount namespace, this process and its ancestors are
 * never signalled. Returns the holders it could not stop (those included).
 * Time is spent only when holders exist.
 * @internal
 */
export async function stopHolders(root: string, ctx: Ctx, options: StopHoldersOptions = {}): Promise<Holder[]> {
  assertSafeRoot(root);
  const procRoot = options.procRoot ?? '/proc';
  const graceMs = options.graceMs ?? 3000;
  const scope = options.scope ?? 'all';
  const initial = await findHolders(root, procRoot, scope);
  if (initial.length === 0) return [];
  const protect = new Set([...(await protectedPids(procRoot)), ...(options.protect ?? [])]);
  const killable = (hs: Holder[]) => hs.filter((h) => !protect.has(h.pid) && h.foreign !== true);
  const targets = killable(initial);
  const warned = options.warned ?? new Set<number>();
  for (const h of initial.filter((x) => !targets.includes(x) && !warned.has(x.pid))) {
    warned.add(h.pid);
    const why = h.foreign ? 'it lives in another mount namespace' : 'it is this process or an ancestor';
    ctx.logger.warn(`Process ${h.pid} (${h.command}) holds ${root} (${h.reason}) but ${why}; not stopping it.`);
  }
  if (targets.length > 0) {
    ctx.logger.warn(
      `Stopping ${targets.length} process(es) left inside ${root}: ` +
        targets.map((h) => `${h.pid} ${h.command} (${h.reason})`).join(', '),
    );
    for (const h of targets) signal(h.pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    let pauseMs = 5;
    let remaining = killable(await findHolders(root, procRoot, scope));
    while (remaining.length > 0 && Date.now() < deadline) {
      await delay(pauseMs);
      pauseMs = Math.min(pauseMs * 2, 100);
      // Re-scan rather than track pids: a holder may have forked a replacement.
      remaining = killable(await findHolders(root, procRoot, scope));
      for (const h of remaining) if (!targets.some((t) => t.pid === h.pid)) signal(h.pid, 'SIGTERM');
    }
    for (let round = 0; round < 5 && remaining.length > 0; round++) {
      ctx.logger.warn(
        `Killing ${remaining.map((h) => `${h.pid} ${h.command}`).join(', ')} (still inside ${root} after SIGTERM).`,
      );
      for (const h of remaining) signal(h.pid, 'SIGKILL');
      // SIGKILL is not ignorable; the kernel needs a moment to tear the process down.
      for (let i = 0; i < 20 && remaining.length > 0; i++) {
        await delay(10);
        remaining = killable(await findHolders(root, procRoot, scope));
      }
    }
  }
  return findHolders(root, procRoot, scope);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}
