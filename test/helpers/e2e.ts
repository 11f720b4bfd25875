/**
 * The end-to-end environment: buildAmi against the test EC2 on 127.0.0.1 (real SDK over HTTP,
 * EC2's real behaviours on with the `realistic` preset, one-off faults injected by middleware) and
 * real loop devices. The device resolver maps the volume that
 * moto attached to a loop device holding a fresh copy of a busybox image, so mounts, chroot,
 * unmount and recovery run for real.
 *
 * API
 * - `startE2e(knobs?)` (in `beforeAll`): one test EC2 (knobs default to the realistic preset), the
 *   build host instance, a base image.
 * - `env.options(extra)`: BuildAmiOptions wired to moto, the injected identity, the loop resolver,
 *   and temp `devRoot`/`stateDir`; `env.config(extra)`: a BuildConfig with a unique AMI name, the
 *   mount path and lock dir under the test dir.
 * - `env.faults(region)`: the fault/recording middleware of that region's client.
 * - `env.counts()` / `env.assertNothingLeft(before)`: moto's volumes, snapshots and images per
 *   region, and a check that a failed build left none of its own behind, no mount or loop device
 *   under the test dir, no live lock reservation, and no journal.
 * - `env.afterEach()`: detaches the loop devices the resolver made (the test owns them), resets faults.
 * - `env.close()` (in `afterAll`): stops moto, removes the temp dir.
 * - `useE2e(knobs?)`: all of the above wired into the suite's hooks (start in `beforeAll`,
 *   `afterEach`, `close` in `afterAll`); returns the environment, usable from the first test on.
 * - `useE2ePool(size, knobs?)`: `size` such environments, each with its own test EC2 and
 *   directory; `pool.use(fn)` lends one to `fn` alone and resets it afterwards, so independent
 *   cases run concurrently (`describe.concurrent`) without seeing each other's resources.
 */
import { copyFile, mkdir, readdir, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { DescribeImagesCommand, DescribeSnapshotsCommand, DescribeVolumesCommand } from '@aws-sdk/client-ec2';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { makeBusyboxImage } from '../../fixtures/busybox-image.js';
import { attachLoop } from '../../src/host/loop.js';
import type { LoopDevice } from '../../src/host/loop.js';
import type { BuildAmiOptions } from '../../src/pipeline/build-ami.js';
import type { BuildConfig } from '../../src/config/types.js';
import { installEc2Faults } from './ec2-faults.js';
import type { Ec2Faults } from './ec2-faults.js';
import { MOTO_SOURCE_AMIS, motoEc2, startBuildHost, startMoto } from '../../fixtures/moto.js';
import type { MotoServer } from '../../fixtures/moto.js';
import { freshReads } from './moto.js';
import { findLeaks, forceCleanup, makeTestDir, requireRoot } from './loop.js';
import type { TestDir } from './loop.js';

export const BUILD_REGION = 'us-east-1';
export const COPY_REGIONS = ['eu-west-1', 'ap-southeast-2'] as const;
const REGIONS = [BUILD_REGION, ...COPY_REGIONS];

/** Resource counts of one region. */
export interface RegionCounts {
  readonly volumes: number;
  readonly snapshots: number;
  readonly images: number;
}

export interface E2eEnv {
  readonly moto: MotoServer;
  readonly dir: string;
  readonly instanceId: string;
  readonly availabilityZone: string;
  ec2(region?: string): EC2Client;
  faults(region?: string): Ec2Faults;
  options(extra?: Partial<BuildAmiOptions>): BuildAmiOptions;
  config(extra?: Partial<BuildConfig>): BuildConfig;
  /** Loop devices the resolver made for builds so far (the test's to detach). */
  readonly loops: LoopDevice[];
  counts(): Promise<Record<string, RegionCounts>>;
  assertNothingLeft(before: Record<string, RegionCounts>): Promise<void>;
  afterEach(): Promise<void>;
  close(): Promise<void>;
}

let unique = 0;

/** PIDs whose root or cwd is under `dir` (processes a build left in its chroot). */
export async function processesUnder(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    for (const link of ['root', 'cwd']) {
      const target = await readlink(`/proc/${name}/${link}`).catch(() => '');
      if (target === dir || target.startsWith(`${dir}/`)) {
        found.push(Number(name));
        break;
      }
    }
  }
  return found;
}

/** States that change at once: the default of end-to-end suites whose call lists are exact. */
export const E2E_KNOBS: Readonly<Record<string, unknown>> = { preset: 'instant' };

/** EC2's real behaviours, small and seeded (late attachments, InUse, NotFound, stale reads ...). */
export const E2E_REALISTIC_KNOBS: Readonly<Record<string, unknown>> = { preset: 'realistic', seed: 12 };

export async function startE2e(knobs: Readonly<Record<string, unknown>> = E2E_KNOBS): Promise<E2eEnv> {
  requireRoot();
  const testDir: TestDir = await makeTestDir('ami-chroot-e2e-');
  const dir = testDir.path;
  let moto: MotoServer | undefined;
  try {
    moto = await startMoto({ knobs });
    const server = moto;
    const clients = new Map<string, { client: EC2Client; faults: Ec2Faults; plain: EC2Client }>();
    const entry = (region = BUILD_REGION) => {
      let e = clients.get(region);
      if (!e) {
        const client = motoEc2(server.endpoint, region);
        // The harness counts what exists now: the test EC2 serves it no stale read.
        const plain = freshReads(motoEc2(server.endpoint, region));
        e = { client, faults: installEc2Faults(client), plain };
        clients.set(region, e);
      }
      return e;
    };
    const host = await startBuildHost(entry(BUILD_REGION).plain);
    const baseImage = join(dir, 'base.img');
    await makeBusyboxImage(baseImage, { sizeMiB: 64 });
    const devRoot = join(dir, 'dev');
    await mkdir(devRoot, { recursive: true });
    const loops: LoopDevice[] = [];

    const env: E2eEnv = {
      moto: server,
      dir,
      instanceId: host.instanceId,
      availabilityZone: host.availabilityZone,
      loops,
      ec2: (region) => entry(region).client,
      faults: (region) => entry(region).faults,
      options: (extra = {}) => ({
        hostIdentity: { instanceId: host.instanceId, availabilityZone: host.availabilityZone, region: BUILD_REGION },
        ec2: (region: string) => entry(region).client,
        devRoot,
        stateDir: join(dir, 'state'),
        logger: { warn: () => {}, error: () => {} },
        // moto attached the volume; the host side sees a loop device with a fresh image copy.
        resolveDevice: async ({ volumeId }) => {
          const file = join(dir, `${volumeId}.img`);
          await copyFile(baseImage, file);
          const loop = await attachLoop({ file, stateDir: false });
          loops.push(loop);
          return loop.device;
        },
        ...extra,
      }),
      config: (extra = {}) => ({
        region: BUILD_REGION,
        sourceAmi: MOTO_SOURCE_AMIS.debianNew.ami_id,
        amiName: `e2e-${process.pid}-${++unique}-{{timestamp}}`,
        mountPath: `${dir}/mnt/{{.Device}}`,
        lockDir: join(dir, 'lock'),
        ...extra,
      }),
      counts: async () => {
        const out: Record<string, RegionCounts> = {};
        for (const region of REGIONS) {
          // A client without the recorder: the harness's own calls are not the build's.
          const c = entry(region).plain;
          const [v, s, i] = await Promise.all([
            c.send(new DescribeVolumesCommand({})),
            c.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] })),
            c.send(new DescribeImagesCommand({ Owners: ['self'] })),
          ]);
          out[region] = {
            volumes: v.Volumes?.length ?? 0,
            snapshots: s.Snapshots?.length ?? 0,
            images: i.Images?.length ?? 0,
          };
        }
        return out;
      },
      assertNothingLeft: async (before) => {
        const after = await env.counts();
        const problems: string[] = [];
        for (const region of REGIONS) {
          const b = before[region]!;
          const a = after[region]!;
          if (a.volumes !== b.volumes) problems.push(`${region}: ${a.volumes - b.volumes} volume(s) left`);
          if (a.snapshots !== b.snapshots) problems.push(`${region}: ${a.snapshots - b.snapshots} snapshot(s) left`);
          if (a.images !== b.images) problems.push(`${region}: ${a.images - b.images} image(s) left`);
        }
        const leak = await findLeaks(
          dir,
          loops.map((l) => l.device),
        );
        if (leak) problems.push(leak);
        const inside = await processesUnder(dir);
        if (inside.length > 0) problems.push(`processes still running under ${dir}: ${inside.join(', ')}`);
        const reservations = await readdir(join(dir, 'lock')).catch(() => [] as string[]);
        const live = reservations.filter((n) => !n.endsWith('.lock') && n !== 'allocate');
        if (live.length > 0) problems.push(`lock dir still holds: ${live.join(', ')}`);
        const journals = await readdir(join(dir, 'state')).catch(() => [] as string[]);
        const openJournals = journals.filter((n) => n.endsWith('.json'));
        if (openJournals.length > 0) problems.push(`journals left: ${openJournals.join(', ')}`);
        if (problems.length > 0) throw new Error(`The build left things behind:\n${problems.join('\n')}`);
      },
      afterEach: async () => {
        for (const loop of loops.splice(0)) await loop.detach().catch(() => {});
        await forceCleanup(join(dir, 'mnt'));
        await rm(join(dir, 'mnt'), { recursive: true, force: true });
        for (const e of clients.values()) {
          e.faults.remove();
          e.faults = installEc2Faults(e.client);
        }
      },
      close: async () => {
        for (const loop of loops.splice(0)) await loop.detach().catch(() => {});
        for (const e of clients.values()) {
          e.client.destroy();
          e.plain.destroy();
        }
        await server.stop();
        await forceCleanup(dir);
        await testDir.cleanup();
      },
    };
    return env;
  } catch (error) {
    await moto?.stop().catch(() => {});
    await testDir.cleanup().catch(() => {});
    throw error;
  }
}

/**
 * One environment for the suite: started in `beforeAll`, reset after each test, closed in
 * `afterAll`. The returned object stands for it (it throws if used before `beforeAll` ran).
 */
export function useE2e(knobs: Readonly<Record<string, unknown>> = E2E_KNOBS): E2eEnv {
  let env: E2eEnv | undefined;
  beforeAll(async () => {
    env = await startE2e(knobs);
  });
  afterEach(async () => {
    await env?.afterEach();
  });
  afterAll(async () => {
    await env?.close();
  });
  return new Proxy({} as E2eEnv, {
    get: (_, key) => {
      if (!env) throw new Error('The e2e environment is used before beforeAll started it.');
      return Reflect.get(env, key) as unknown;
    },
  });
}

/** Environments lent out one test at a time: see {@link useE2ePool}. */
export interface E2ePool {
  /**
   * Runs `fn` on a free environment (waiting for one if all are lent), then resets it as
   * `afterEach` would, pass or fail.
   */
  use<T>(fn: (env: E2eEnv) => Promise<T>): Promise<T>;
}

/**
 * `size` environments for the suite, started in `beforeAll` and closed in `afterAll`.
 * Each case borrows one through `use`, so the cases of a `describe.concurrent` run `size` at a
 * time; a case owns its environment while it runs, so counts and leak checks stay exact.
 */
export function useE2ePool(size: number, knobs: Readonly<Record<string, unknown>> = E2E_KNOBS): E2ePool {
  const free: E2eEnv[] = [];
  const waiting: ((env: E2eEnv) => void)[] = [];
  const all: E2eEnv[] = [];
  beforeAll(async () => {
    // One after another: concurrent `losetup --find --show` calls can race (one printed nothing).
    for (let i = 0; i < size; i++) all.push(await startE2e(knobs));
    free.push(...all);
  }, 60_000 * size);
  afterAll(async () => {
    await Promise.all(all.map((env) => env.close()));
  });
  const release = (env: E2eEnv): void => {
    const next = waiting.shift();
    if (next) next(env);
    else free.push(env);
  };
  return {
    use: async (fn) => {
      if (all.length === 0) throw new Error('The e2e pool is used before beforeAll started it.');
      const env = free.pop() ?? (await new Promise<E2eEnv>((resolve) => waiting.push(resolve)));
      try {
        return await fn(env);
      } finally {
        await env.afterEach().finally(() => release(env));
      }
    },
  };
}
