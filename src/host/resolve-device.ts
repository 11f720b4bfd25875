/**
 * Finding the host block device of an attached EBS volume, by volume id: NVMe (Nitro) by the
 * udev by-id link or the controller serial, Xen by the attachment name, or an explicit override.
 * The /dev and /sys roots are parameters so tests can point them at fake trees.
 */
import { access, readdir, readFile, realpath } from 'node:fs/promises';
import { basename } from 'node:path';
import { DeviceError } from '../errors.js';
import type { OperationOptions } from '../types.js';
import { sleep as delay } from '../internal/abort.js';
import { toCtx } from '../internal/ctx.js';

/**
 * The node of partition `partition` of `disk`: a `p` goes between a name ending in a digit and
 * the number (`/dev/nvme1n1` + `1` = `/dev/nvme1n1p1`, `/dev/loop3` + `1` = `/dev/loop3p1`,
 * `/dev/xvdf` + `1` = `/dev/xvdf1`). `'0'` or `''` means the whole disk.
 *
 * @example
 * ```ts
 * import { partitionPath } from 'ami-chroot/host';
 *
 * partitionPath('/dev/nvme1n1', '1'); // => '/dev/nvme1n1p1'
 * partitionPath('/dev/loop3', '2'); // => '/dev/loop3p2'
 * partitionPath('/dev/xvdf', '1'); // => '/dev/xvdf1'
 * partitionPath('/dev/xvdf', '0'); // => '/dev/xvdf' (the whole disk)
 * ```
 * @public
 */
export function partitionPath(disk: string, partition: string): string {
  if (partition === '' || partition === '0') return disk;
  return /\d$/.test(disk) ? `${disk}p${partition}` : `${disk}${partition}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Waits for a path to exist, polling quickly at first. Returns false on timeout.
 * @internal
 */
export async function waitForPath(path: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let pauseMs = 5;
  for (;;) {
    if (await exists(path)) return true;
    if (Date.now() >= deadline) return false;
    await delay(Math.min(pauseMs, Math.max(1, deadline - Date.now())), signal);
    pauseMs = Math.min(pauseMs * 2, 250);
  }
}

/**
 * Input of {@link waitForPartition}.
 * @public
 */
export interface WaitForPartitionInput {
  /** The whole disk, e.g. `/dev/nvme1n1` or `/dev/loop3`. */
  readonly disk: string;
  /** The partition number, e.g. `'1'`; `'0'` or `''` means the whole disk. */
  readonly partition: string;
  /** Give up after this long. @defaultValue 30000 */
  readonly timeoutMs?: number | undefined;
}

/**
 * Waits for partition `partition` of `disk` to appear and returns its node. The kernel (or
 * udev) creates partition nodes a moment after the disk appears or is re-partitioned.
 *
 * @example
 * ```ts
 * import { waitForPartition } from 'ami-chroot/host';
 *
 * // Right after a volume is attached (or re-partitioned), its partition node appears a moment later.
 * const root = await waitForPartition({ disk: '/dev/nvme1n1', partition: '1', timeoutMs: 10_000 });
 * console.log(root); // '/dev/nvme1n1p1'
 * ```
 * @throws {@link DeviceError} when it does not appear within `timeoutMs` (default 30 s).
 * @public
 */
export async function waitForPartition(input: WaitForPartitionInput, options: OperationOptions = {}): Promise<string> {
  const { disk, partition } = input;
  const path = partitionPath(disk, partition);
  const timeoutMs = input.timeoutMs ?? 30_000;
  if (await waitForPath(path, timeoutMs, options.signal)) {
    toCtx(options).logger.debug(`Partition ${partition} of ${disk} is ${path}.`);
    return path;
  }
  throw new DeviceError(
    `Partition ${partition} of ${disk} (${path}) did not appear within ${Math.round(timeoutMs / 1000)} s. ` +
      'Check that the volume has a partition table (use mountPartition "0" for a whole-disk filesystem); ' +
      'after partitioning in preMountCommands, re-read the table (partprobe, or partx -u for loop devices).',
    { phase: 'mount', resources: { device: disk } },
  );
}

/**
 * Input of {@link resolveBlockDevice}.
 * @public
 */
export interface ResolveBlockDeviceInput {
  /** The attached volume, e.g. `vol-0123456789abcdef0`. */
  readonly volumeId: string;
  /** Its attachment name, e.g. `/dev/sdf` (Xen hosts show it as `/dev/sdf` or `/dev/xvdf`). */
  readonly attachmentName: string;
  /**
   * Packer's `nvme_device_path`: use this node instead of looking. Packer's idiom of a trailing
   * `p` (`/dev/nvme1n1p`, concatenated with the partition number) is accepted.
   */
  readonly nvmeDevicePath?: string | undefined;
  /** Also wait for this partition (`'0'`: none). @defaultValue none */
  readonly partition?: string | undefined;
  /** Where device nodes are looked for (tests point it at a fake tree). @defaultValue `/dev` */
  readonly devRoot?: string | undefined;
  /** Where /sys/block is read (tests point it at a fake tree). @defaultValue `/sys` */
  readonly sysRoot?: string | undefined;
  /** How long to wait for the node (and partition) to appear. @defaultValue 60000 */
  readonly timeoutMs?: number | undefined;
}

/** The NVMe model string of EBS volumes on Nitro hosts. */
const EBS_MODEL = 'Amazon Elastic Block Store';

/** `vol-0abc` → `vol0abc`: the form in NVMe serials and by-id names. */
function serialOf(volumeId: string): string {
  return volumeId.replace(/^vol-/, 'vol');
}

/** What the NVMe scan saw: the match, every device (for the error), and whether any is EBS. */
interface NvmeScan {
  readonly found?: string;
  readonly seen: string[];
  /** An EBS volume is an NVMe device here: a Nitro host, where Xen names are never EBS volumes. */
  readonly ebs: boolean;
}

async function readTrimmed(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

async function byNvmeSerial(serial: string, devRoot: string, sysRoot: string): Promise<NvmeScan> {
  const seen: string[] = [];
  let ebs = false;
  let names: string[];
  try {
    names = await readdir(`${sysRoot}/block`);
  } catch {
    return { seen, ebs };
  }
  for (const name of names.filter((n) => /^nvme\d+n\d+$/.test(n)).sort()) {
    // Serials are padded with spaces to 20 characters; some tools print them with the dash.
    const value = (await readTrimmed(`${sysRoot}/block/${name}/device/serial`))?.replace(/^vol-/, 'vol');
    if (value === undefined) continue;
    const model = await readTrimmed(`${sysRoot}/block/${name}/device/model`);
    seen.push(model ? `${name}=${value} (${model})` : `${name}=${value}`);
    // Only EBS volumes have a `vol…` serial; instance-store NVMe (i3, f1 on Xen too) has others.
    if (/^vol\w+$/.test(value) || model === EBS_MODEL) ebs = true;
    if (value === serial) return { found: `${devRoot}/${name}`, seen, ebs };
  }
  return { seen, ebs };
}

/**
 * The first Xen name that exists and is not an NVMe node: on a Nitro host a `/dev/sdX` may be a
 * udev link to an NVMe device, which is ours only if its serial matched.
 */
async function firstXenName(paths: readonly string[]): Promise<string | undefined> {
  for (const p of paths) {
    const real = await realpath(p).catch(() => undefined);
    if (real !== undefined && !/^nvme\d+n\d+$/.test(basename(real))) return p;
  }
  return undefined;
}

/**
 * Finds the host block device (whole disk) of an attached volume and waits for it, and for
 * `partition` if given, to appear. Looks, in order, at `nvmeDevicePath`; the udev link
 * `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol…`; the NVMe controller serials in
 * `/sys/block/nvme*n*\/device/serial`; then, unless an NVMe device here is an EBS volume (a
 * Nitro host), the Xen names `/dev/sdX` and `/dev/xvdX`. Symlinks are resolved, so the result is
 * the real node (`/dev/nvme1n1`, `/dev/xvdf`).
 *
 * @remarks
 * Nitro hosts number NVMe devices in attach order, not by the requested name, so a fixed
 * `/dev/nvme1n1` is wrong as soon as two volumes are attached; the volume id is what identifies
 * the device. No "device prefix" detection is needed. Xen hosts with NVMe instance store (i3,
 * f1) have NVMe devices too, with serials that are not `vol…`; their EBS volumes are found by the
 * Xen name.
 *
 * @example
 * ```ts
 * import { resolveBlockDevice } from 'ami-chroot/host';
 *
 * // Attached as /dev/sdf; on a Nitro host it shows up as whichever NVMe node the attach order gave it.
 * const disk = await resolveBlockDevice({ volumeId: 'vol-0123456789abcdef0', attachmentName: '/dev/sdf', partition: '1' });
 * console.log(disk); // '/dev/nvme1n1' ('/dev/xvdf' on Xen), and '/dev/nvme1n1p1' exists too
 * ```
 * @throws {@link DeviceError} when nothing appears within `timeoutMs`, listing what was looked at.
 * @public
 */
export async function resolveBlockDevice(
  input: ResolveBlockDeviceInput,
  options: OperationOptions = {},
): Promise<string> {
  const ctx = toCtx(options);
  const devRoot = input.devRoot ?? '/dev';
  const sysRoot = input.sysRoot ?? '/sys';
  const timeoutMs = input.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const serial = serialOf(input.volumeId);
  const letterName = input.attachmentName.replace(/^\/dev\//, '').replace(/^(xvd|sd)/, '');
  const byId = `${devRoot}/disk/by-id/nvme-Amazon_Elastic_Block_Store_${serial}`;
  const xen = [`${devRoot}/sd${letterName}`, `${devRoot}/xvd${letterName}`];
  const override = input.nvmeDevicePath?.replace(/(nvme\d+n\d+)p$/, '$1');

  let nvme: NvmeScan = { seen: [], ebs: false };
  let pauseMs = 5;
  for (;;) {
    let found: string | undefined;
    if (override !== undefined) {
      if (await exists(override)) found = override;
    } else {
      if (await exists(byId)) found = byId;
      if (!found) {
        nvme = await byNvmeSerial(serial, devRoot, sysRoot);
        found = nvme.found;
      }
      // Xen names only when no NVMe device is an EBS volume: on Nitro, /dev/sdX may be a udev
      // link that already resolved above, or absent. Xen hosts with NVMe instance store (i3,
      // f1) have NVMe devices, but their EBS volumes still appear as /dev/xvdX.
      if (!found && !nvme.ebs) found = await firstXenName(xen);
    }
    if (found) {
      const disk = await realpath(found);
      ctx.logger.debug(
        `Volume ${input.volumeId} (${input.attachmentName}) is ${disk} on this host (found at ${found}).`,
      );
      if (input.partition !== undefined && input.partition !== '0' && input.partition !== '') {
        await waitForPartition(
          { disk, partition: input.partition, timeoutMs: Math.max(1000, deadline - Date.now()) },
          options,
        );
      }
      return disk;
    }
    if (Date.now() >= deadline) break;
    await delay(Math.min(pauseMs, Math.max(1, deadline - Date.now())), options.signal);
    pauseMs = Math.min(pauseMs * 2, 250);
  }
  const looked =
    override !== undefined
      ? `nvmeDevicePath ${override}`
      : `${byId}, NVMe serials in ${sysRoot}/block/nvme*n*/device/serial (${nvme.seen.length ? nvme.seen.join(', ') : 'no NVMe devices'}), ` +
        (nvme.ebs
          ? `not ${xen.join(' or ')} (EBS volumes are NVMe devices on this host)`
          : `${xen.join(', ')} (no EBS NVMe device: a Xen host)`);
  throw new DeviceError(
    `Volume ${input.volumeId} attached as ${input.attachmentName} did not appear on this host within ${Math.round(timeoutMs / 1000)} s. ` +
      `Looked at: ${looked}. Check that the attachment is in state "attached", or set nvmeDevicePath to the right node.`,
    { phase: 'attach', resources: { volumeId: input.volumeId, attachmentName: input.attachmentName } },
  );
}
