import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeBusyboxImage } from '../../../fixtures/busybox-image.js';
import { mountChroot } from '../../../src/chroot/mount.js';
import { attachLoop } from '../../../src/host/loop.js';
import type { LoopDevice } from '../../../src/host/loop.js';
import { assertNoLeaks, makeTestDir, requireRoot } from '../../helpers/loop.js';

const quiet = { warn: () => {}, error: () => {} };

describe('mountChroot run by parallel builds', () => {
  it('two builds creating the same missing parent of their mount paths at once both mount and clean up', async () => {
    requireRoot();
    const dir = await makeTestDir();
    const loops: LoopDevice[] = [];
    try {
      const base = join(dir.path, 'base.img');
      await makeBusyboxImage(base, { sizeMiB: 32 });
      for (const name of ['a.img', 'b.img']) {
        await copyFile(base, join(dir.path, name));
        loops.push(await attachLoop({ file: join(dir.path, name), stateDir: false }));
      }
      // The shared parent does not exist yet in any round: both builds race to create it, and
      // both remove it again if they were the one that made it and it is empty.
      for (let round = 0; round < 8; round++) {
        const parent = join(dir.path, `shared-${round}`, 'mnt');
        const mounted = await Promise.all(
          loops.map((loop, i) =>
            mountChroot(
              {
                device: loop.device,
                mountPath: join(parent, `build-${i}`),
                chrootMounts: [],
                copyFiles: [],
                serviceGuard: false,
                stateDir: false,
              },
              { logger: quiet },
            ),
          ),
        );
        expect(mounted.map((m) => m.root).sort()).toEqual([join(parent, 'build-0'), join(parent, 'build-1')]);
        await Promise.all(mounted.map((m) => m.unmount()));
      }
      await assertNoLeaks(
        dir.path,
        loops.map((l) => l.device),
      );
    } finally {
      for (const loop of loops) await loop.detach().catch(() => {});
      await dir.cleanup();
    }
  });
});
