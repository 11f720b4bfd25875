/**
 * Loop devices over image files, with their partitions. On some kernels (these build VMs among
 * them) `losetup -P` makes no `loopNp1`: the kernel does not scan the table, so partitions are
 * added with `partx -a`, which asks the kernel to create exactly the ones in the table.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { DeviceError } from '../errors.js';
import type { OperationOptions } from '../types.js';
import { statOrUndefined } from '../internal/fs.js';
import { idempotent } from '../internal/once.js';
import { toCtx } from '../internal/ctx.js';
import { run } from './exec.js';
import { DEFAULT_STATE_DIR } from './defaults.js';
import { Journal } from './journal.js';
import { partitionPath, waitForPath } from './resolve-device.js';
import { makedev } from './processes.js';

/**
 * Input of {@link attachLoop}.
 * @public
 */
export interface AttachLoopInput {
  /** The image file to attach. */
  readonly file: string;
  /** Add the partitions of the image's partition table (`partx -a`). @defaultValue true */
  readonly partscan?: boolean;
  /** Attach read-only. @defaultValue false */
  readonly readOnly?: boolean;
  /**
   * Where the recovery journal goes (see {@link recoverHost}); `false` writes none.
   * @defaultValue `/run/ami-chroot`
   */
  readonly stateDir?: string | false;
}

/**
 * A loop device attached to an image file.
 * @public
 */
export interface LoopDevice {
  /** The whole device, e.g. `/dev/loop3`. */
  readonly device: string;
  /** The image file. */
  readonly file: string;
  /** Partition nodes, e.g. `['/dev/loop3p1']` (empty without partscan or without a table). */
  readonly partitions: readonly string[];
  /** Re-reads the partition table (after partitioning the device) and returns the partitions. */
  rescan(options?: OperationOptions): Promise<readonly string[]>;
  /** Removes the partitions, then detaches the device. Idempotent. */
  detach(options?: OperationOptions): Promise<void>;
  /** Same as {@link LoopDevice.detach}. */
  [Symbol.asyncDispose](): Promise<void>;
}

async function listPartitions(device: string, sysRoot = '/sys'): Promise<string[]> {
  const name = basename(device);
  let entries: string[];
  try {
    entries = await readdir(`${sysRoot}/block/${name}`);
  } catch {
    return [];
  }
  const numbers = entries
    .filter((e) => e.startsWith(`${name}p`) && /^\d+$/.test(e.slice(name.length + 1)))
    .map((e) => e.slice(name.length + 1))
    .sort((a, b) => Number(a) - Number(b));
  return numbers.map((n) => partitionPath(device, n));
}

async function addPartitions(device: string, options: OperationOptions): Promise<string[]> {
  try {
    // -a adds what the table has; the nodes that already exist make it fail, so update instead.
    await run('partx', ['-u', device], { ...options, timeoutMs: 30_000, phase: 'device' });
  } catch {
    // No partition table (a blank image): nothing to add.
  }
  const partitions = await listPartitions(device);
  for (const p of partitions) await waitForPath(p, 10_000, options.signal);
  return partitions;
}

/**
 * Attaches `file` to a free loop device and (by default) adds its partitions.
 *
 * @example
 * ```ts
 * import { attachLoop, withChroot } from 'ami-chroot/host';
 *
 * await using loop = await attachLoop({ file: 'debian-12.raw' });
 * console.log(loop.device, loop.partitions); // /dev/loop0 [ '/dev/loop0p1' ]
 * const release = await withChroot({ device: loop.device }, (chroot) => chroot.readFile('/etc/os-release', 'utf8'));
 * console.log(release);
 * // Leaving the scope removes the partitions and detaches the loop device.
 * ```
 * @public
 */
export async function attachLoop(input: AttachLoopInput, options: OperationOptions = {}): Promise<LoopDevice> {
  const ctx = toCtx(options);
  const path = resolve(input.file);
  const stateDir = input.stateDir ?? DEFAULT_STATE_DIR;
  const journal = stateDir === false ? undefined : await Journal.create(stateDir, `loop ${basename(path)}`);
  // The file's identity, so recovery detaches only loop devices over this very inode.
  const st = await stat(path);
  const loopEntry = { type: 'loop', file: path, ino: st.ino, dev: st.dev } as const;
  await journal?.add(loopEntry);
  let device: string;
  try {
    device = await findLoop(path, st, input.readOnly ?? false, options);
  } catch (error) {
    await journal?.close();
    throw error;
  }
  ctx.emit({ type: 'resource', action: 'created', kind: 'loop-device', id: device });
  let partitions: string[] = [];
  const detach = idempotent(async (opts: OperationOptions = {}) => {
    const o: OperationOptions = { ...options, ...opts };
    await detachLoopDevice(device, o);
    toCtx(o).emit({ type: 'resource', action: 'removed', kind: 'loop-device', id: device });
    await journal?.close();
  });
  try {
    if (input.partscan ?? true) partitions = await addPartitions(device, options);
  } catch (error) {
    await detach().catch(() => {});
    throw error;
  }
  return {
    device,
    file: path,
    get partitions() {
      return partitions;
    },
    rescan: async (opts: OperationOptions = {}) => (partitions = await addPartitions(device, opts)),
    detach,
    [Symbol.asyncDispose]: () => detach(),
  };
}

// This process's `losetup --find` calls, one after another (see findLoop).
let findQueue: Promise<unknown> = Promise.resolve();
const LOOP_CONTROL = '/dev/loop-control';
// Whether the host has it (containers may not): looked up once.
let hasLoopControl: Promise<boolean> | undefined;

/**
 * `losetup --find --show`, one attach at a time. losetup(8): finding a free device and attaching
 * it is not atomic and takes no lock, so parallel attaches can collide. Calls in this process
 * queue; other processes of ours wait on flock(1) of /dev/loop-control (a lock on the device
 * node, so no lock file is left behind). losetup has been seen to exit 0 printing nothing under
 * such load: a device that appeared over the file's inode is then adopted, else it is retried.
 */
async function findLoop(
  path: string,
  st: { ino: number; dev: number },
  readOnly: boolean,
  options: OperationOptions,
): Promise<string> {
  const losetup = ['losetup', '--find', '--show', ...(readOnly ? ['--read-only'] : []), path];
  hasLoopControl ??= statOrUndefined(LOOP_CONTROL).then(Boolean);
  const [file, ...args] = (await hasLoopControl) ? ['flock', '-w', '60', LOOP_CONTROL, ...losetup] : losetup;
  const queued = findQueue.then(async () => {
    // What already backs the file is someone else's (another build may hold it read-only). A
    // silent attempt that attached nothing leaves this set as it was, so it is read once.
    const before = new Set(await loopDevicesOfInode(st.ino, st.dev, options));
    for (let i = 0; i < 3; i++) {
      const out = (await run(file!, args, { ...options, timeoutMs: 90_000, phase: 'device' })).stdout.trim();
      if (out.startsWith('/dev/')) return out;
      const appeared = (await loopDevicesOfInode(st.ino, st.dev, options)).filter((d) => !before.has(d));
      if (appeared.length === 1) return appeared[0]!;
      if (appeared.length > 1)
        throw new DeviceError(
          `losetup printed no device for ${path}, and ${appeared.join(', ')} appeared over it meanwhile; detach the ones that are not in use (losetup -d).`,
          { resources: { device: appeared[0]! } },
        );
    }
    throw new DeviceError(`losetup printed no device for ${path} three times; is a free loop device available?`);
  });
  findQueue = queued.catch(() => {});
  return queued;
}

/**
 * Removes a loop device's partitions (`partx -d`) and detaches it (`losetup -d`). A partition
 * that is still mounted makes this fail rather than leave a half-removed device.
 * @internal
 */
export async function detachLoopDevice(device: string, options: OperationOptions = {}): Promise<void> {
  const partitions = await listPartitions(device);
  if (partitions.length > 0) {
    try {
      await run('partx', ['-d', device], { ...options, timeoutMs: 30_000, phase: 'device' });
    } catch (error) {
      throw new DeviceError(
        `Could not remove the partitions of ${device} (${partitions.join(', ')}): is one still mounted? ` +
          'Unmount it first (or run recoverHost()).',
        { cause: error, resources: { device } },
      );
    }
  }
  try {
    await run('losetup', ['-d', device], { ...options, timeoutMs: 30_000, phase: 'device' });
  } catch (error) {
    // Already detached (by someone else, or autoclear): that is what we wanted.
    if (!/No such device|not a block device|No such device or address/i.test(String((error as Error).message)))
      throw error;
  }
}

/**
 * Loop devices backed by inode `ino` of the filesystem `dev` (`st_dev`), wherever that file's
 * path went (renamed, deleted, or its name reused by another file).
 * @internal
 */
export async function loopDevicesOfInode(ino: number, dev: number, options: OperationOptions = {}): Promise<string[]> {
  const { stdout } = await run('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-INO,BACK-MAJ:MIN'], {
    ...options,
    timeoutMs: 30_000,
  });
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(
      ([name, i, mm]) => name?.startsWith('/dev/') && Number(i) === ino && mm !== undefined && makedev(mm) === dev,
    )
    .map(([name]) => name!);
}

/**
 * The loop devices currently backed by `file` (`losetup -j`).
 * @internal
 */
export async function loopDevicesOf(file: string, options: OperationOptions = {}): Promise<string[]> {
  const { stdout } = await run('losetup', ['-j', resolve(file)], { ...options, timeoutMs: 30_000 });
  return stdout
    .split('\n')
    .map((line) => line.slice(0, line.indexOf(':')))
    .filter((d) => d.startsWith('/dev/'));
}
