import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeviceError } from '../../../src/errors.js';
import { partitionPath, resolveBlockDevice, waitForPartition } from '../../../src/host/resolve-device.js';

describe('partitionPath', () => {
  it('inserts p after a trailing digit only', () => {
    expect(partitionPath('/dev/nvme1n1', '1')).toBe('/dev/nvme1n1p1');
    expect(partitionPath('/dev/xvdf', '1')).toBe('/dev/xvdf1');
    expect(partitionPath('/dev/sdf', '2')).toBe('/dev/sdf2');
    expect(partitionPath('/dev/loop3', '1')).toBe('/dev/loop3p1');
    expect(partitionPath('/dev/nvme1n1', '0')).toBe('/dev/nvme1n1');
    expect(partitionPath('/dev/xvdf', '')).toBe('/dev/xvdf');
  });
});

// Fake /dev and /sys trees; the "device nodes" are regular files (realpath is all that matters).
let base: string;
let dev: string;
let sys: string;
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'resolve-device-'));
  dev = join(base, 'dev');
  sys = join(base, 'sys');
  await mkdir(join(dev, 'disk/by-id'), { recursive: true });
  await mkdir(join(sys, 'block'), { recursive: true });
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

async function nvme(name: string, serial: string, model?: string): Promise<void> {
  await mkdir(join(sys, 'block', name, 'device'), { recursive: true });
  await writeFile(join(sys, 'block', name, 'device/serial'), serial.padEnd(20, ' ') + '\n');
  if (model !== undefined) await writeFile(join(sys, 'block', name, 'device/model'), model.padEnd(40, ' ') + '\n');
  await writeFile(join(dev, name), '');
}

const EBS = 'Amazon Elastic Block Store';
const INSTANCE_STORE = 'Amazon EC2 NVMe Instance Storage';
/** The device node appears a moment after the call starts, as after AttachVolume. */
const later = (fn: () => Promise<void>): void => void setTimeout(() => void fn(), 40);

describe('resolveBlockDevice', () => {
  it('finds an NVMe volume by its controller serial, not by attach order', async () => {
    await nvme('nvme0n1', 'vol0root000000000000');
    await nvme('nvme1n1', 'vol0bbbbbbbbbbbbbbbb');
    await nvme('nvme2n1', 'vol0aaaaaaaaaaaaaaaa');
    const disk = await resolveBlockDevice({
      volumeId: 'vol-0aaaaaaaaaaaaaaaa',
      attachmentName: '/dev/sdf',
      devRoot: dev,
      sysRoot: sys,
    });
    expect(disk).toBe(join(dev, 'nvme2n1'));
  });

  it('prefers the udev by-id link and resolves it to the real node', async () => {
    await nvme('nvme0n1', 'vol0root000000000000');
    await writeFile(join(dev, 'nvme3n1'), '');
    await symlink('../../nvme3n1', join(dev, 'disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0ccc'));
    expect(
      await resolveBlockDevice({ volumeId: 'vol-0ccc', attachmentName: '/dev/sdg', devRoot: dev, sysRoot: sys }),
    ).toBe(join(dev, 'nvme3n1'));
  });

  it('finds a Xen volume as /dev/sdX or /dev/xvdX', async () => {
    await writeFile(join(dev, 'xvdh'), '');
    expect(
      await resolveBlockDevice({ volumeId: 'vol-1', attachmentName: '/dev/sdh', devRoot: dev, sysRoot: sys }),
    ).toBe(join(dev, 'xvdh'));
    await writeFile(join(dev, 'sdi'), '');
    expect(
      await resolveBlockDevice({ volumeId: 'vol-2', attachmentName: '/dev/xvdi', devRoot: dev, sysRoot: sys }),
    ).toBe(join(dev, 'sdi'));
  });

  it('never takes a Xen name on an NVMe host, where it could be another volume', async () => {
    await nvme('nvme0n1', 'vol0root000000000000');
    await writeFile(join(dev, 'sdf'), '');
    await expect(
      resolveBlockDevice({
        volumeId: 'vol-0new',
        attachmentName: '/dev/sdf',
        devRoot: dev,
        sysRoot: sys,
        timeoutMs: 50,
      }),
    ).rejects.toBeInstanceOf(DeviceError);
  });

  it('uses nvmeDevicePath as given, accepting Packer’s trailing-p idiom', async () => {
    await writeFile(join(dev, 'nvme5n1'), '');
    const input = { volumeId: 'vol-1', attachmentName: '/dev/sdf', devRoot: dev, sysRoot: sys };
    expect(await resolveBlockDevice({ ...input, nvmeDevicePath: join(dev, 'nvme5n1') })).toBe(join(dev, 'nvme5n1'));
    expect(await resolveBlockDevice({ ...input, nvmeDevicePath: join(dev, 'nvme5n1p') })).toBe(join(dev, 'nvme5n1'));
  });

  it('waits for the node and then its partition to appear', async () => {
    setTimeout(() => void nvme('nvme1n1', 'vol0late'), 30);
    setTimeout(() => void writeFile(join(dev, 'nvme1n1p1'), ''), 80);
    const disk = await resolveBlockDevice({
      volumeId: 'vol-0late',
      attachmentName: '/dev/sdf',
      devRoot: dev,
      sysRoot: sys,
      partition: '1',
    });
    expect(disk).toBe(join(dev, 'nvme1n1'));
  });

  it('times out with what it looked at', async () => {
    await nvme('nvme0n1', 'vol0root000000000000');
    const error = await resolveBlockDevice({
      volumeId: 'vol-0abc',
      attachmentName: '/dev/sdf',
      devRoot: dev,
      sysRoot: sys,
      timeoutMs: 30,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeviceError);
    expect(error).toMatchObject({ phase: 'attach', resources: { volumeId: 'vol-0abc', attachmentName: '/dev/sdf' } });
    const message = (error as Error).message;
    expect(message).toContain('nvme-Amazon_Elastic_Block_Store_vol0abc');
    expect(message).toContain('nvme0n1=vol0root000000000000');
    expect(message).toContain('nvmeDevicePath');
  });

  it('is abortable', async () => {
    const reason = new Error('stop');
    const c = new AbortController();
    setTimeout(() => c.abort(reason), 20);
    await expect(
      resolveBlockDevice(
        { volumeId: 'vol-x', attachmentName: '/dev/sdf', devRoot: dev, sysRoot: sys },
        { signal: c.signal },
      ),
    ).rejects.toBe(reason);
  });
});

// The host kinds EC2 has: what /sys and /dev look like there when volume vol-0123456789abcdef0,
// attached as /dev/sdf, shows up.
describe('resolveBlockDevice per host kind', () => {
  const volume = { volumeId: 'vol-0123456789abcdef0', attachmentName: '/dev/sdf' };

  it('Nitro: the NVMe device with the volume’s serial, past instance store and a stale /dev/sdf link', async () => {
    await nvme('nvme0n1', 'vol0aaaaaaaaaaaaaaaa', EBS);
    await nvme('nvme1n1', 'AWS22D2B1A2C3D4E5F6', INSTANCE_STORE);
    await symlink('nvme1n1', join(dev, 'sdf'));
    later(() => nvme('nvme2n1', 'vol0123456789abcdef0', EBS));
    expect(await resolveBlockDevice({ ...volume, devRoot: dev, sysRoot: sys, timeoutMs: 5000 })).toBe(
      join(dev, 'nvme2n1'),
    );
  });

  it('Xen with NVMe instance store (i3, f1): the Xen name, once it appears', async () => {
    await nvme('nvme0n1', 'AWS22D2B1A2C3D4E5F6', INSTANCE_STORE);
    await nvme('nvme1n1', 'AWS3A1B2C3D4E5F60718', INSTANCE_STORE);
    await writeFile(join(dev, 'xvda'), '');
    later(() => writeFile(join(dev, 'xvdf'), ''));
    expect(await resolveBlockDevice({ ...volume, devRoot: dev, sysRoot: sys, timeoutMs: 5000 })).toBe(
      join(dev, 'xvdf'),
    );
  });

  it('plain Xen: /dev/xvdX for an attachment named /dev/sdX', async () => {
    await writeFile(join(dev, 'xvda'), '');
    later(() => writeFile(join(dev, 'xvdf'), ''));
    expect(await resolveBlockDevice({ ...volume, devRoot: dev, sysRoot: sys, timeoutMs: 5000 })).toBe(
      join(dev, 'xvdf'),
    );
  });

  it('sd names (older Xen kernels), with instance-store NVMe too', async () => {
    await nvme('nvme0n1', 'AWS22D2B1A2C3D4E5F6', INSTANCE_STORE);
    await writeFile(join(dev, 'sda'), '');
    later(() => writeFile(join(dev, 'sdf'), ''));
    expect(
      await resolveBlockDevice({ ...volume, attachmentName: '/dev/xvdf', devRoot: dev, sysRoot: sys, timeoutMs: 5000 }),
    ).toBe(join(dev, 'sdf'));
  });

  it('tells a Xen host with instance store why it waited for the Xen names', async () => {
    await nvme('nvme0n1', 'AWS22D2B1A2C3D4E5F6', INSTANCE_STORE);
    // A udev link to the instance store is not the volume, whatever its name.
    await symlink('nvme0n1', join(dev, 'sdf'));
    const error = await resolveBlockDevice({ ...volume, devRoot: dev, sysRoot: sys, timeoutMs: 30 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DeviceError);
    const message = (error as Error).message;
    expect(message).toContain(`nvme0n1=AWS22D2B1A2C3D4E5F6 (${INSTANCE_STORE})`);
    expect(message).toContain(`${join(dev, 'sdf')}, ${join(dev, 'xvdf')} (no EBS NVMe device: a Xen host)`);
  });

  it('tells a Nitro host it did not look at the Xen names', async () => {
    await nvme('nvme0n1', 'vol0aaaaaaaaaaaaaaaa', EBS);
    const error = await resolveBlockDevice({ ...volume, devRoot: dev, sysRoot: sys, timeoutMs: 30 }).catch(
      (e: unknown) => e,
    );
    expect((error as Error).message).toContain('(EBS volumes are NVMe devices on this host)');
  });
});

describe('waitForPartition', () => {
  it('explains what to do when the partition never appears', async () => {
    await writeFile(join(dev, 'loop9'), '');
    const error = await waitForPartition({ disk: join(dev, 'loop9'), partition: '1', timeoutMs: 20 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DeviceError);
    expect((error as Error).message).toContain(`${join(dev, 'loop9')}p1`);
    expect((error as Error).message).toContain('mountPartition "0"');
  });

  it('takes (input, options): the signal stops it, the logger hears where the partition is', async () => {
    await writeFile(join(dev, 'loop8'), '');
    await writeFile(join(dev, 'loop8p2'), '');
    const lines: string[] = [];
    const found = await waitForPartition(
      { disk: join(dev, 'loop8'), partition: '2' },
      { logger: { debug: (line) => lines.push(line) }, onProgress: () => {} },
    );
    expect(found).toBe(join(dev, 'loop8p2'));
    expect(lines).toEqual([`Partition 2 of ${join(dev, 'loop8')} is ${join(dev, 'loop8p2')}.`]);
    const controller = new AbortController();
    const reason = new Error('stop');
    setTimeout(() => controller.abort(reason), 20);
    await expect(
      waitForPartition({ disk: join(dev, 'loop8'), partition: '3', timeoutMs: 10_000 }, { signal: controller.signal }),
    ).rejects.toBe(reason);
  });
});
