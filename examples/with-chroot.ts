/**
 * `withChroot` alone, on a disk image file: mount it with the chroot mounts, work inside, and
 * always unmount. No AWS involved: the same primitive buildAmi uses on an attached EBS volume,
 * here on a loop device.
 *
 *   sudo npx tsx examples/with-chroot.ts [disk.img]
 *
 * Without an argument it makes a small throwaway disk (a partitioned ext4 image with a static
 * busybox root; needs busybox-static, sfdisk and mkfs.ext4). With one, it writes into that image.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachLoop, withChroot } from '../src/host/index.js';
import { makeBusyboxImage } from '../fixtures/busybox-image.js';

const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => controller.abort());

const work = await mkdtemp(join(tmpdir(), 'ami-chroot-example-'));
try {
  let image = process.argv[2];
  if (!image) {
    image = join(work, 'disk.img');
    await makeBusyboxImage(image, { sizeMiB: 32, tmpDir: work });
  }

  // A loop device over the file, with its partitions; detached when this block is left.
  await using loop = await attachLoop({ file: image }, { signal: controller.signal });
  console.log(`${image} is attached to ${loop.device} (partitions: ${loop.partitions.join(', ') || 'none'})`);

  const release = await withChroot(
    // The same options as a build's: mount path, partition, chroot mounts, copied files.
    { device: loop.device, mountPath: join(work, 'mnt', '{{.Device}}') },
    async (chroot) => {
      // Commands run inside, with the image's /bin/sh and an environment of their own.
      const uname = await chroot.exec('uname', ['-m'], { outputLevel: 'silent' });
      console.log(`inside the chroot: uname -m = ${uname.stdout.trim()}`);
      // /proc, /sys and /dev are mounted inside.
      const mounts = await chroot.sh('grep -c . /proc/mounts', { outputLevel: 'silent' });
      console.log(`inside the chroot: /proc/mounts has ${mounts.stdout.trim()} lines`);
      // The host's resolv.conf is there while we work; the image's own comes back at unmount.
      console.log(
        `inside the chroot: resolv.conf is the host's (${(await chroot.readFile('/etc/resolv.conf')).length} bytes)`,
      );
      // Files are written inside the root; a symlink in the image cannot redirect them to the host.
      await chroot.writeFile('/etc/motd', 'Written by examples/with-chroot.ts\n');
      return (await chroot.readFile('/etc/os-release', 'utf8')).match(/^PRETTY_NAME="?([^"\n]*)/m)?.[1] ?? 'unknown';
    },
    { signal: controller.signal },
  );
  console.log(`unmounted; the image is ${release}, with a new /etc/motd`);
} finally {
  await rm(work, { recursive: true, force: true });
}
