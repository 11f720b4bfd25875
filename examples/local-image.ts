/**
 * `buildImage`: the chroot pipeline of buildAmi on a local raw disk image, to rehearse
 * provisioning before spending AWS time, or to produce raw images for other uses.
 *
 * The source image is copied (sparse), attached to a loop device, mounted with the chroot
 * mounts, provisioned, unmounted and detached; the result is written to `<output>.partial` and
 * renamed to `<output>` only when everything succeeded. The source is never modified.
 *
 *   sudo npx tsx examples/local-image.ts [source.img] [output.raw]
 *
 * Without arguments it makes a small busybox disk as the source (needs busybox-static, sfdisk
 * and mkfs.ext4) and writes the result to a temp directory that it removes afterwards.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../src/index.js';
import { makeBusyboxImage } from '../fixtures/busybox-image.js';

const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => controller.abort());

const work = await mkdtemp(join(tmpdir(), 'ami-chroot-example-'));
try {
  let source = process.argv[2];
  if (!source) {
    source = join(work, 'source.img');
    await makeBusyboxImage(source, { sizeMiB: 32, tmpDir: work });
  }
  const output = process.argv[3] ?? join(work, 'web.raw');

  const result = await buildImage(
    {
      sourceImage: source,
      output,
      // The disk grows (sparse) before it is attached; grow the file system in a command.
      growToMiB: 48,
      mountPath: join(work, 'mnt', '{{.Device}}'),
      // The same chroot options as a BuildConfig, with the same templates.
      postMountCommands: ['touch {{.MountPath}}/etc/.built-locally'],
    },
    async (chroot, info) => {
      await chroot.writeFile('/etc/motd', `Built locally from ${info.sourceImage}.\n`);
      await chroot.sh('mkdir -p /srv/www && echo "<h1>hello</h1>" > /srv/www/index.html');
      const files = await chroot.exec('ls', ['/srv/www'], { outputLevel: 'silent' });
      console.log(`provisioned on ${info.hostDevice}: /srv/www has ${files.stdout.trim()}`);
    },
    {
      signal: controller.signal,
      onProgress: (event) => {
        if (event.type === 'phase-end')
          console.log(`  ${event.ok ? '✓' : '✗'} ${event.phase} ${Math.round(event.durationMs)} ms`);
      },
    },
  );
  console.log(
    `${result.output}: ${result.sizeBytes / 2 ** 20} MiB disk, ${(result.allocatedBytes / 2 ** 20).toFixed(1)} MiB allocated, ` +
      `built in ${Math.round(result.durationMs)} ms`,
  );
} finally {
  await rm(work, { recursive: true, force: true });
}
