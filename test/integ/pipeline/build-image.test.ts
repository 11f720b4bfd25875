import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE_RESOLV_CONF, makeBusyboxImage } from '../../../fixtures/busybox-image.js';
import { buildImage } from '../../../src/pipeline/build-image.js';
import type { BuildImageInput } from '../../../src/pipeline/build-image.js';
import { resolveConfig } from '../../../src/config/resolve.js';
import type { BuildConfig } from '../../../src/config/types.js';
import { ConfigError, DeviceError, ProvisionError } from '../../../src/errors.js';
import type { AmiChrootError } from '../../../src/errors.js';
import { run } from '../../../src/host/exec.js';
import { attachLoop } from '../../../src/host/loop.js';
import type { ProgressEvent } from '../../../src/types.js';
import { assertNoLeaks, makeTestDir, requireRoot } from '../../helpers/loop.js';
import type { TestDir } from '../../helpers/loop.js';

const quiet = { warn: () => {}, error: () => {} };
const MiB = 1024 * 1024;

let dir: TestDir;
let source: string;
let sourceHash: string;
let unique = 0;

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function alive(pid: number): Promise<boolean> {
  try {
    const st = await readFile(`/proc/${pid}/stat`, 'utf8');
    return st.slice(st.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** A fresh output path and the per-build directories, all under the test dir. */
function paths(): { output: string; mountPath: string; stateDir: string } {
  const n = ++unique;
  return {
    output: join(dir.path, `out-${n}.raw`),
    mountPath: join(dir.path, `mnt-${n}/{{.Device}}`),
    stateDir: join(dir.path, `state-${n}`),
  };
}

/** Attaches a finished image read-only, mounts its first partition read-only, and runs `fn` on it. */
async function inspect<T>(image: string, fn: (root: string) => Promise<T>): Promise<T> {
  const loop = await attachLoop({ file: image, readOnly: true, stateDir: false });
  const root = join(dir.path, `inspect-${++unique}`);
  await mkdir(root);
  try {
    await run('mount', ['-o', 'ro', loop.partitions[0]!, root]);
    try {
      return await fn(root);
    } finally {
      await run('umount', [root]);
    }
  } finally {
    await loop.detach();
    await rmdir(root);
  }
}

/** buildImage's phases after validate, in order; the mount's own steps nest inside it (each ends first). */
const PHASES_AFTER_VALIDATE = [
  'volume',
  'attach',
  'pre-mount',
  'post-mount',
  'chroot-mounts',
  'copy-files',
  'service-guard',
  'mount',
  'provision',
  'unmount',
  'detach',
  'register',
] as const;

/** No output, no work file, no mount, no loop device, no open journal. */
async function assertNothingLeft(output: string, stateDir: string): Promise<void> {
  await expect(lstat(output)).rejects.toMatchObject({ code: 'ENOENT' });
  await expect(lstat(`${output}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
  await assertNoLeaks(dir.path);
  const journals = (await readdir(stateDir).catch(() => [] as string[])).filter((n) => n.endsWith('.json'));
  expect(journals).toEqual([]);
}

beforeAll(async () => {
  requireRoot();
  dir = await makeTestDir('ami-chroot-build-image-');
  source = join(dir.path, 'source.img');
  await makeBusyboxImage(source, { sizeMiB: 64 });
  sourceHash = await sha256(source);
});

afterAll(async () => {
  await dir?.cleanup();
});

describe('buildImage on real loop devices', () => {
  it('copies the source sparsely, provisions it, and leaves a finished raw image with the source untouched', async () => {
    const { output, mountPath, stateDir } = paths();
    const events: ProgressEvent[] = [];
    let strayPid = 0;
    const result = await buildImage(
      {
        sourceImage: source,
        output,
        mountPath,
        postMountCommands: ['echo {{.Device}} > {{.MountPath}}/root/post-mount'],
      },
      async (chroot, info) => {
        expect(info.sourceImage).toBe(source);
        expect(info.workFile).toBe(`${output}.partial`);
        expect(info.hostDevice).toMatch(/^\/dev\/loop\d+$/);
        expect(info.mountPath).toBe(chroot.root);
        // The host's resolv.conf is there while provisioning.
        expect(await chroot.readFile('/etc/resolv.conf')).toEqual(await readFile('/etc/resolv.conf'));
        await chroot.writeFile('/etc/motd', 'built locally\n');
        await chroot.sh('mkdir -p /opt/app && echo "$((6*7))" > /opt/app/answer');
        // A stray daemon the unmount has to stop.
        await chroot.sh('sleep 600 >/dev/null 2>&1 & echo $! > /tmp/stray.pid');
        strayPid = Number((await chroot.readFile('/tmp/stray.pid', 'utf8')).trim());
        await chroot.sh('rm /tmp/stray.pid');
      },
      { stateDir, logger: quiet, onProgress: (e) => events.push(e) },
    );

    expect(result.output).toBe(output);
    const st = await stat(output);
    expect(result.sizeBytes).toBe(st.size);
    expect(result.sizeBytes).toBe(64 * MiB);
    expect(result.allocatedBytes).toBe(st.blocks * 512);
    // Sparse: a 64 MiB busybox disk occupies a few MiB.
    expect(result.allocatedBytes).toBeLessThan(result.sizeBytes / 2);
    expect(await sha256(source)).toBe(sourceHash);
    expect(strayPid).toBeGreaterThan(0);
    expect(await alive(strayPid)).toBe(false);
    await expect(lstat(`${output}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
    await assertNoLeaks(dir.path);
    expect((await readdir(stateDir)).filter((n) => n.endsWith('.json'))).toEqual([]);

    await inspect(output, async (root) => {
      expect(await readFile(join(root, 'etc/motd'), 'utf8')).toBe('built locally\n');
      expect(await readFile(join(root, 'opt/app/answer'), 'utf8')).toBe('42\n');
      expect(await readFile(join(root, 'root/post-mount'), 'utf8')).toMatch(/^\/dev\/loop\d+\n$/);
      // The image's own files are back, the service guard is gone.
      expect(await readFile(join(root, 'etc/resolv.conf'), 'utf8')).toBe(IMAGE_RESOLV_CONF);
      await expect(lstat(join(root, 'usr/sbin/policy-rc.d'))).rejects.toMatchObject({ code: 'ENOENT' });
    });

    const phaseEnds = events.filter((e) => e.type === 'phase-end').map((e) => e.phase);
    expect(phaseEnds).toEqual(['validate', ...PHASES_AFTER_VALIDATE]);
    expect(Object.keys(result.timings).sort()).toEqual([...phaseEnds].sort());
    const files = events.filter(
      (e): e is Extract<ProgressEvent, { type: 'resource' }> => e.type === 'resource' && e.kind === 'image-file',
    );
    expect(files.map((e) => `${e.action} ${e.id}`)).toEqual([
      `created ${output}.partial`,
      `removed ${output}.partial`,
      `created ${output}`,
    ]);
    const loops = events.filter(
      (e): e is Extract<ProgressEvent, { type: 'resource' }> => e.type === 'resource' && e.kind === 'loop-device',
    );
    expect(loops.map((e) => e.action)).toEqual(['created', 'removed']);
  });

  it('builds from scratch: partitions and formats an empty sparse disk in preMountCommands', async () => {
    const { output, mountPath, stateDir } = paths();
    const result = await buildImage(
      {
        fromScratch: {
          sizeMiB: 48,
          preMountCommands: [
            "printf 'label: dos\\nstart=2048, type=83\\n' | sfdisk --quiet {{.Device}}",
            'partx -u {{.Device}}',
            'mkfs.ext4 -q -L scratch -E lazy_itable_init=1,lazy_journal_init=1 {{.Device}}p1',
          ],
        },
        // Runs after the scratch commands: the file system exists by then.
        preMountCommands: ['blkid -o value -s LABEL {{.Device}}p1 | grep -qx scratch'],
        chrootMounts: [],
        output,
        mountPath,
      },
      async (chroot) => {
        // fromScratch copies no host files in: there is nothing to restore them into.
        await expect(lstat(join(chroot.root, 'etc'))).rejects.toMatchObject({ code: 'ENOENT' });
        await chroot.writeFile('/hello', 'from scratch\n');
      },
      { stateDir, logger: quiet },
    );
    expect(result.sizeBytes).toBe(48 * MiB);
    expect(result.allocatedBytes).toBeLessThan(result.sizeBytes);
    const table = await run('sfdisk', ['--dump', output]);
    expect(table.stdout).toMatch(/label: dos/);
    expect(table.stdout).toMatch(/start=\s*2048/);
    await inspect(output, async (root) => {
      expect(await readFile(join(root, 'hello'), 'utf8')).toBe('from scratch\n');
    });
    await assertNoLeaks(dir.path);
  });

  it('grows the disk before attaching and replaces an existing output with overwrite', async () => {
    const { output, mountPath, stateDir } = paths();
    await writeFile(output, 'an old image\n');
    let seenSize = 0;
    const result = await buildImage(
      { sourceImage: source, output, overwrite: true, growToMiB: 96, mountPath, chrootMounts: [] },
      async (chroot, info) => {
        seenSize = Number((await run('blockdev', ['--getsize64', info.hostDevice])).stdout.trim());
        await chroot.writeFile('/etc/grown', 'yes\n');
      },
      { stateDir, logger: quiet },
    );
    expect(seenSize).toBe(96 * MiB);
    expect(result.sizeBytes).toBe(96 * MiB);
    await inspect(output, async (root) => {
      expect(await readFile(join(root, 'etc/grown'), 'utf8')).toBe('yes\n');
    });
    expect(await sha256(source)).toBe(sourceHash);
    await assertNoLeaks(dir.path);
  });

  it('a throwing provision leaves no output, no work file, no mount, no loop device and no journal', async () => {
    const { output, mountPath, stateDir } = paths();
    const boom = new Error('provisioning went wrong');
    const events: ProgressEvent[] = [];
    const error = (await buildImage(
      { sourceImage: source, output, mountPath },
      async (chroot) => {
        await chroot.writeFile('/etc/half-done', 'x');
        throw boom;
      },
      { stateDir, logger: quiet, onProgress: (e) => events.push(e) },
    ).catch((e: unknown) => e)) as AmiChrootError;
    expect(error).toBeInstanceOf(ProvisionError);
    expect(error.phase).toBe('provision');
    expect(error.cause).toBe(boom);
    expect(error.message).toContain('provisioning went wrong');
    expect(error.cleanupErrors).toEqual([]);
    await assertNothingLeft(output, stateDir);
    expect(await sha256(source)).toBe(sourceHash);
    const cleanups = events
      .filter((e) => e.type === 'cleanup' && e.status === 'done')
      .map((e) => (e as { step: string }).step);
    expect(cleanups).toEqual([
      expect.stringMatching(/^unmount /),
      expect.stringMatching(/^detach \/dev\/loop\d+$/),
      `remove ${output}.partial`,
    ]);
  });

  it('abort during provision stops the command inside, throws the signal reason and cleans up', async () => {
    const { output, mountPath, stateDir } = paths();
    const controller = new AbortController();
    const reason = new Error('operator pressed Ctrl-C');
    let pid = 0;
    const error = await buildImage(
      { sourceImage: source, output, mountPath },
      async (chroot) => {
        await chroot.sh('sleep 600 >/dev/null 2>&1 & echo $! > /tmp/daemon.pid');
        pid = Number((await chroot.readFile('/tmp/daemon.pid', 'utf8')).trim());
        setTimeout(() => controller.abort(reason), 100);
        await chroot.exec('sleep', ['60']);
      },
      { stateDir, logger: quiet, signal: controller.signal },
    ).catch((e: unknown) => e);
    expect(error).toBe(reason);
    expect((error as Error & { phase?: string }).phase).toBe('provision');
    expect(await alive(pid)).toBe(false);
    await assertNothingLeft(output, stateDir);
  });

  it('abort between phases (from a hook) removes the work file', async () => {
    const { output, mountPath, stateDir } = paths();
    const controller = new AbortController();
    const error = await buildImage({ sourceImage: source, output, mountPath }, () => {}, {
      stateDir,
      logger: quiet,
      signal: controller.signal,
      hooks: { after: (phase) => void (phase === 'attach' && controller.abort()) },
    }).catch((e: unknown) => e);
    expect((error as Error).name).toBe('AbortError');
    await assertNothingLeft(output, stateDir);
  });

  it.each(PHASES_AFTER_VALIDATE)('a hook failing right after the %s phase leaves nothing behind', async (phase) => {
    const { output, mountPath, stateDir } = paths();
    const failure = new Error(`hook failed after ${phase}`);
    const error = await buildImage(
      { sourceImage: source, output, mountPath },
      (chroot) => chroot.writeFile('/etc/x', 'x'),
      {
        stateDir,
        logger: quiet,
        hooks: {
          after: (p) => {
            if (p === phase) throw failure;
          },
        },
      },
    ).catch((e: unknown) => e);
    expect(error).toBe(failure);
    expect((error as Error & { phase?: string }).phase).toBe(phase);
    await assertNothingLeft(output, stateDir);
  });

  it('refuses an existing output before any side effect', async () => {
    const { output, mountPath, stateDir } = paths();
    await writeFile(output, 'keep me\n');
    const events: ProgressEvent[] = [];
    let provisioned = false;
    const error = (await buildImage({ sourceImage: source, output, mountPath }, () => void (provisioned = true), {
      stateDir,
      logger: quiet,
      onProgress: (e) => events.push(e),
    }).catch((e: unknown) => e)) as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.phase).toBe('validate');
    expect(error.issues).toEqual([
      expect.objectContaining({ path: 'output', message: expect.stringContaining('pass overwrite: true') }),
    ]);
    expect(error.message).toContain(output);
    expect(provisioned).toBe(false);
    expect(await readFile(output, 'utf8')).toBe('keep me\n');
    await expect(lstat(`${output}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(lstat(stateDir)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(events.map((e) => e.type)).toEqual(['phase-start', 'phase-end']);
    await assertNoLeaks(dir.path);
  });

  it('refuses a leftover work file unless overwrite, and never replaces one a loop device uses', async () => {
    const { output, mountPath, stateDir } = paths();
    const partial = `${output}.partial`;
    await writeFile(partial, '');
    const refused = (await buildImage({ sourceImage: source, output, mountPath }, () => {}, {
      stateDir,
      logger: quiet,
    }).catch((e: unknown) => e)) as ConfigError;
    expect(refused).toBeInstanceOf(ConfigError);
    expect(refused.issues[0]?.message).toContain('recoverHost()');

    await run('truncate', ['-s', '1M', partial]);
    const busy = await attachLoop({ file: partial, partscan: false, stateDir: false });
    try {
      const error = (await buildImage({ sourceImage: source, output, mountPath, overwrite: true }, () => {}, {
        stateDir,
        logger: quiet,
      }).catch((e: unknown) => e)) as DeviceError;
      expect(error).toBeInstanceOf(DeviceError);
      expect(error.phase).toBe('volume');
      expect(error.message).toContain(busy.device);
      expect((await stat(partial)).size).toBe(MiB);
    } finally {
      await busy.detach();
    }
  });

  it('validates the chroot options with the config layer rules and reports every problem at once', async () => {
    const { output } = paths();
    const input = {
      sourceImage: join(dir.path, 'missing.img'),
      output,
      growToMiB: 0,
      mountPath: 'relative/{{.Device}}',
      commandWrapper: 'sudo',
      chrootMounts: [['proc', 'proc', 'proc']],
      preMountCommands: ['echo {{.MountPath}}'],
      sourceImg: 'typo',
      amiRegions: ['eu-west-1'],
    } as unknown as BuildImageInput;
    const error = (await buildImage(input, () => {}, { logger: quiet }).catch((e: unknown) => e)) as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    const byPath = Object.fromEntries(error.issues.map((i) => [i.path, i.message]));
    expect(byPath['sourceImg']).toContain('did you mean `sourceImage`?');
    expect(byPath['amiRegions']).toContain('buildAmi option');
    expect(byPath['sourceImage']).toContain('does not exist');
    expect(byPath['growToMiB']).toContain('integer');
    // The same messages as buildAmi's configuration gives for the same values.
    const same = (key: keyof BuildConfig, value: unknown): string | undefined => {
      try {
        resolveConfig({ amiName: 'x-local', sourceAmi: 'ami-00000000', [key]: value }, {});
      } catch (e) {
        return (e as ConfigError).issues.find((i) => i.path.startsWith(key))?.message;
      }
      return undefined;
    };
    expect(byPath['commandWrapper']).toBe(same('commandWrapper', 'sudo'));
    expect(byPath['mountPath']).toBe(same('mountPath', 'relative/{{.Device}}'));
    expect(byPath['chrootMounts.0']).toBe(same('chrootMounts', [['proc', 'proc', 'proc']]));
    expect(byPath['preMountCommands.0']).toBe(same('preMountCommands', ['echo {{.MountPath}}']));
    expect(error.issues.length).toBe(8);
  });

  it('names fromScratch commands by their own path, and rejects sourceImage with fromScratch', async () => {
    const { output } = paths();
    const error = (await buildImage(
      {
        sourceImage: source,
        fromScratch: { sizeMiB: 8, preMountCommands: ['mkfs {{.Nope}}'] },
        preMountCommands: ['true'],
        output,
        growToMiB: 1,
      },
      () => {},
      { logger: quiet },
    ).catch((e: unknown) => e)) as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    const paths_ = error.issues.map((i) => i.path).sort();
    expect(paths_).toEqual(['fromScratch', 'fromScratch.preMountCommands.0', 'growToMiB']);
  });
});
