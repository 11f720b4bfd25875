import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveBlockDevice } from '../../../src/host/resolve-device.js';
import { withLoopImage } from '../../helpers/loop.js';

// Fake /dev and /sys trees whose nodes point at a real loop device, as the end-to-end tests do
// to map the volume moto "attached" onto the loop device holding the test image.
describe('resolveBlockDevice over fake trees pointing at a real loop device', () => {
  it('resolves an NVMe serial and Xen names (instance-store NVMe or not) to the loop device and waits for its real partition', async () => {
    await withLoopImage(
      async ({ dir, loop }) => {
        const nitro = { dev: join(dir, 'nitro/dev'), sys: join(dir, 'nitro/sys') };
        await mkdir(join(nitro.sys, 'block/nvme0n1/device'), { recursive: true });
        await mkdir(join(nitro.sys, 'block/nvme1n1/device'), { recursive: true });
        await writeFile(join(nitro.sys, 'block/nvme0n1/device/serial'), 'vol0root            \n');
        await writeFile(join(nitro.sys, 'block/nvme1n1/device/serial'), 'vol0123456789abcdef0\n');
        await mkdir(nitro.dev, { recursive: true });
        await symlink(loop.device, join(nitro.dev, 'nvme1n1'));
        const disk = await resolveBlockDevice({
          volumeId: 'vol-0123456789abcdef0',
          attachmentName: '/dev/sdf',
          devRoot: nitro.dev,
          sysRoot: nitro.sys,
          partition: '1',
        });
        expect(disk).toBe(loop.device);

        const xen = { dev: join(dir, 'xen/dev'), sys: join(dir, 'xen/sys') };
        await mkdir(xen.dev, { recursive: true });
        await mkdir(join(xen.sys, 'block'), { recursive: true });
        await symlink(loop.device, join(xen.dev, 'xvdg'));
        expect(
          await resolveBlockDevice({
            volumeId: 'vol-1',
            attachmentName: '/dev/sdg',
            devRoot: xen.dev,
            sysRoot: xen.sys,
            partition: '1',
          }),
        ).toBe(loop.device);

        // A Xen host with NVMe instance store (i3): the NVMe device is not the volume, xvdh is.
        const i3 = { dev: join(dir, 'i3/dev'), sys: join(dir, 'i3/sys') };
        await mkdir(join(i3.sys, 'block/nvme0n1/device'), { recursive: true });
        await writeFile(join(i3.sys, 'block/nvme0n1/device/serial'), 'AWS22D2B1A2C3D4E5F6 \n');
        await writeFile(join(i3.sys, 'block/nvme0n1/device/model'), 'Amazon EC2 NVMe Instance Storage        \n');
        await mkdir(i3.dev, { recursive: true });
        await symlink(loop.device, join(i3.dev, 'xvdh'));
        expect(
          await resolveBlockDevice({
            volumeId: 'vol-2',
            attachmentName: '/dev/sdh',
            devRoot: i3.dev,
            sysRoot: i3.sys,
            partition: '1',
            timeoutMs: 5000,
          }),
        ).toBe(loop.device);
      },
      { sizeMiB: 16 },
    );
  });
});
