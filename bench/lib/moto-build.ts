/**
 * Full `buildAmi` runs for benchmarks: moto's EC2 server on 127.0.0.1 with realistic, scaled
 * state transitions (ec2-sim.ts), a loop device per work volume over a copy of a busybox disk
 * image, the real device allocator with a shared lock directory and a shared (empty) device
 * tree. Used in-process and by the worker processes of bench/parallel and bench/footprint.
 *
 * Scaling. EC2's transitions take seconds to minutes; a benchmark divides them by `scale` (25:
 * a 300 s snapshot takes 12 s). The poller's delays are real time too, so its policy is divided
 * by the same factor through `polling.waits` (min/max delays and timeouts): each wait then makes
 * the same Describe calls, at the same points of the transition, as it would on EC2. Host work
 * (loop device, mounts, chroot) is not scaled: it weighs `scale` times more in a scaled build
 * than in a real one, which makes the parallel figures pessimistic.
 */
import { mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { makeBusyboxImage } from '../../fixtures/busybox-image.js';
import { MOTO_SOURCE_AMIS, motoEc2, startBuildHost, startMoto, type MotoServer } from '../../fixtures/moto.js';
import { buildAmi, type BuildResult } from '../../src/pipeline/build-ami.js';
import { run } from '../../src/host/exec.js';
import { attachLoop, loopDevicesOf, type LoopDevice } from '../../src/host/loop.js';
import { readMountInfo } from '../../src/host/mounts.js';
import type { Rng } from './prng.js';
import { simulateTransitions, type AttachmentRecord, type RefusedAttachment, type TransitionTimes } from './ec2-sim.js';
import { checkHostPrerequisites } from './prereq.js';

/**
 * The build region of every benchmark build.
 * @internal
 */
export const BUILD_REGION = 'us-east-1';

/**
 * EC2's transition times in seconds (issue 7): what the simulation draws from, before scaling.
 * @internal
 */
export const EC2_RANGES_S: Readonly<Record<keyof TransitionTimes, readonly [number, number]>> = {
  volumeMs: [2, 10],
  attachMs: [1, 5],
  detachMs: [1, 5],
  snapshotMs: [30, 600],
  imageMs: [5, 30],
  copyMs: [60, 900],
};

/**
 * One build's transition times: uniform in each range, divided by `scale`, in ms.
 * @internal
 */
export function drawTransitions(rng: Rng, scale: number): TransitionTimes {
  const draw = ([min, max]: readonly [number, number]): number =>
    Math.round(((min + rng.next() * (max - min)) * 1000) / scale);
  return {
    volumeMs: draw(EC2_RANGES_S.volumeMs),
    attachMs: draw(EC2_RANGES_S.attachMs),
    detachMs: draw(EC2_RANGES_S.detachMs),
    snapshotMs: draw(EC2_RANGES_S.snapshotMs),
    imageMs: draw(EC2_RANGES_S.imageMs),
    copyMs: draw(EC2_RANGES_S.copyMs),
  };
}

/**
 * Time a build spends waiting for EC2 in the simulation (the copy is not part of these builds).
 * @internal
 */
export function simulatedWaitMs(t: TransitionTimes): number {
  return t.volumeMs + t.attachMs + t.detachMs + t.snapshotMs + t.imageMs;
}

import { scaledPolling } from './scaled-polling.js';

export { scaledPolling, scaledPollingWithHoldOff } from './scaled-polling.js';

const TOOLS = ['losetup', 'partx', 'sfdisk', 'mkfs.ext4', 'mount', 'umount', 'chroot', 'cp', 'moto_server'] as const;

/**
 * Says exactly what a full build needs and is missing here.
 * @throws {@link BenchPrerequisiteError}
 * @internal
 */
export function checkBuildPrerequisites(what: string): Promise<void> {
  return checkHostPrerequisites(what, TOOLS);
}

/**
 * What a process needs to run builds against the rig (serializable: worker processes get it
 * on their command line).
 * @internal
 */
export interface RigParams {
  readonly endpoint: string;
  readonly instanceId: string;
  readonly availabilityZone: string;
  /** The rig's own temporary directory: every file, mount and lock of the builds is under it. */
  readonly dir: string;
  readonly baseImage: string;
  readonly lockDir: string;
  readonly devRoot: string;
  readonly stateDir: string;
  /** EC2's book of attachment names, shared by every process (see ec2-sim.ts). */
  readonly deviceRegistry: string;
  readonly scale: number;
  /**
   * Make each attachment name appear in the device tree while the volume is attached (a link
   * `<devRoot>/sdX` to its loop device), as on Xen hosts or with the udev rules of Amazon Linux
   * on Nitro; without it the tree stays empty, as on a Nitro host without those links, where
   * only the allocator's reservations and EC2's list of names tell which names are taken.
   */
  readonly devNodes: boolean;
}

/**
 * A started rig: moto, the build host instance, the disk image, the directories.
 * @internal
 */
export interface Rig {
  readonly params: RigParams;
  readonly moto: MotoServer;
  /** Stops moto, checks that nothing is left under the rig's directory, removes it. */
  close(): Promise<RigLeaks>;
}

/**
 * What a rig found left behind when it closed.
 * @internal
 */
export interface RigLeaks {
  readonly mounts: readonly string[];
  readonly loopDevices: readonly string[];
  readonly reservations: readonly string[];
}

/**
 * Starts moto, a build host instance and a base disk image in a fresh temporary directory.
 * @internal
 */
export async function startRig(
  scale: number,
  options: { readonly imageSizeMiB?: number; readonly devNodes?: boolean } = {},
): Promise<Rig> {
  const imageSizeMiB = options.imageSizeMiB ?? 32;
  const dir = await mkdtemp(join(tmpdir(), 'ami-chroot-bench-build-'));
  let moto: MotoServer | undefined;
  try {
    moto = await startMoto();
    const ec2 = motoEc2(moto.endpoint, BUILD_REGION);
    const host = await startBuildHost(ec2);
    ec2.destroy();
    const baseImage = join(dir, 'base.img');
    await makeBusyboxImage(baseImage, { sizeMiB: imageSizeMiB, tmpDir: dir });
    const params: RigParams = {
      endpoint: moto.endpoint,
      instanceId: host.instanceId,
      availabilityZone: host.availabilityZone,
      dir,
      baseImage,
      lockDir: join(dir, 'lock'),
      devRoot: join(dir, 'dev'),
      stateDir: join(dir, 'state'),
      deviceRegistry: join(dir, 'ec2-devices'),
      scale,
      devNodes: options.devNodes ?? false,
    };
    await mkdir(params.lockDir, { recursive: true });
    await mkdir(params.deviceRegistry, { recursive: true });
    await mkdir(params.devRoot, { recursive: true });
    const server = moto;
    return { params, moto: server, close: () => closeRig(params, server) };
  } catch (error) {
    await moto?.stop().catch(() => {});
    await removeIfUnmounted(dir);
    throw error;
  }
}

async function removeIfUnmounted(dir: string): Promise<boolean> {
  // rm -r would descend into a mount left under it: only remove a directory with none.
  const mounted = (await readMountInfo()).some((m) => m.mountPoint === dir || m.mountPoint.startsWith(`${dir}/`));
  if (!mounted) await rm(dir, { recursive: true, force: true });
  return !mounted;
}

async function closeRig(params: RigParams, moto: MotoServer): Promise<RigLeaks> {
  await moto.stop();
  const dir = params.dir;
  const mounts = (await readMountInfo()).map((m) => m.mountPoint).filter((p) => p === dir || p.startsWith(`${dir}/`));
  const images = (await readdir(dir).catch(() => [] as string[]))
    .filter((n) => n.endsWith('.img'))
    .map((n) => join(dir, n));
  const loopDevices = (await Promise.all(images.map((image) => loopDevicesOf(image)))).flat();
  const reservations = (await readdir(params.lockDir).catch(() => [] as string[])).filter((n) =>
    n.endsWith('.reservation'),
  );
  if (mounts.length === 0 && loopDevices.length === 0) await removeIfUnmounted(dir);
  return { mounts, loopDevices, reservations };
}

/**
 * One finished build.
 * @internal
 */
export interface BuildRecord {
  readonly label: string;
  readonly transitions: TransitionTimes;
  /** Date.now() at the call and when it returned (comparable between processes). */
  readonly startedAtMs: number;
  readonly endedAtMs: number;
  readonly durationMs: number;
  readonly attachmentName: string;
  readonly hostDevice: string;
  readonly timings: BuildResult['timings'];
  readonly awsCalls: number;
  readonly describeCalls: number;
  readonly attachments: readonly AttachmentRecord[];
  /** AttachVolume calls EC2 refused because the allocator's name was in use. */
  readonly refused: readonly RefusedAttachment[];
  readonly imageId: string;
}

/**
 * A build that threw.
 * @internal
 */
export interface BuildFailure {
  readonly label: string;
  /** Error class and message. */
  readonly error: string;
  /** Its phase, when the library's error names one. */
  readonly phase?: string;
}

/**
 * A build's error as a {@link BuildFailure}.
 * @internal
 */
export function failureOf(label: string, error: unknown): BuildFailure {
  const e = error as { name?: unknown; message?: unknown; phase?: unknown };
  return {
    label,
    error: `${typeof e?.name === 'string' ? e.name : 'Error'}: ${typeof e?.message === 'string' ? e.message : String(error)}`,
    ...(typeof e?.phase === 'string' ? { phase: e.phase } : {}),
  };
}

/**
 * Runs one `buildAmi` against the rig with the given transitions: a no-op provision (`/bin/true`
 * in the chroot). Its loop device is detached and its disk copy removed afterwards, pass or fail.
 * @internal
 */
export async function runBuild(
  params: RigParams,
  label: string,
  transitions: TransitionTimes,
  signal?: AbortSignal,
): Promise<BuildRecord> {
  const clients = new Map<string, EC2Client>();
  const sims: ReturnType<typeof simulateTransitions>[] = [];
  const ec2 = (region: string): EC2Client => {
    let client = clients.get(region);
    if (!client) {
      client = motoEc2(params.endpoint, region);
      sims.push(simulateTransitions(client, () => transitions, { deviceRegistry: params.deviceRegistry }));
      clients.set(region, client);
    }
    return client;
  };
  const loops: LoopDevice[] = [];
  const files: string[] = [];
  let link: string | undefined;
  const dropLink = async (): Promise<void> => {
    if (link !== undefined) await rm(link, { force: true });
    link = undefined;
  };
  const startedAtMs = Date.now();
  try {
    const result = await buildAmi(
      {
        region: BUILD_REGION,
        sourceAmi: MOTO_SOURCE_AMIS.debianNew.ami_id,
        amiName: `bench-${label}-{{timestamp}}`,
        mountPath: join(params.dir, 'mnt', '{{.Device}}'),
        lockDir: params.lockDir,
        polling: scaledPolling(params.scale),
      },
      async (chroot) => {
        await chroot.exec('/bin/true', [], { outputLevel: 'silent' });
      },
      {
        ...(signal === undefined ? {} : { signal }),
        ec2,
        hostIdentity: {
          instanceId: params.instanceId,
          availabilityZone: params.availabilityZone,
          region: BUILD_REGION,
        },
        devRoot: params.devRoot,
        stateDir: params.stateDir,
        // moto has no UEFI data: its warning is expected and says nothing about the benchmark.
        logger: { warn: () => {} },
        // moto attached the volume; here it is a loop device over a sparse copy of the base image.
        resolveDevice: async ({ volumeId, attachmentName }) => {
          const file = join(params.dir, `${volumeId}.img`);
          files.push(file);
          await run('cp', ['--sparse=always', params.baseImage, file], { timeoutMs: 60_000 });
          const loop = await attachLoop({ file, stateDir: false });
          loops.push(loop);
          if (params.devNodes) {
            link = join(params.devRoot, basename(attachmentName));
            await symlink(loop.device, link);
          }
          return loop.device;
        },
        // The name leaves the device tree when the volume is detached.
        onProgress: (event) => {
          if (event.type === 'phase-end' && event.phase === 'detach') void dropLink();
        },
      },
    );
    const endedAtMs = Date.now();
    return {
      label,
      transitions,
      startedAtMs,
      endedAtMs,
      durationMs: result.durationMs,
      attachmentName: result.attachmentName,
      hostDevice: result.hostDevice,
      timings: result.timings,
      awsCalls: result.awsCalls,
      describeCalls: sims.reduce((sum, s) => sum + s.describeCalls(), 0),
      attachments: sims.flatMap((s) => s.attachments),
      refused: sims.flatMap((s) => s.refused),
      imageId: result.images[BUILD_REGION] ?? '',
    };
  } finally {
    // Every loop device and disk copy goes, whatever happened; a failure here must not hide the
    // build's own error, and must not pass silently after a good build either.
    const problems: string[] = [];
    await dropLink();
    for (const loop of loops)
      await loop.detach().catch((error: unknown) => problems.push(`${loop.device}: ${String(error)}`));
    // A disk copy still behind a loop device stays, so the rig's leak check finds and names it.
    if (problems.length === 0) for (const file of files) await rm(file, { force: true });
    for (const client of clients.values()) client.destroy();
    if (problems.length > 0) process.stderr.write(`bench: could not detach ${problems.join('; ')}\n`);
  }
}
