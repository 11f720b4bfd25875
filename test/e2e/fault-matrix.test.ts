/**
 * The fault matrix: for every AWS call a build makes (each occurrence, in every region) and every
 * host step, inject (a) throttling: the build still succeeds; (b) a hard error: the build rejects
 * naming the phase, and nothing it created is left (moto resources, mounts, loop devices, locks,
 * journals, processes); (c) an abort at that point: same. Calls made only by the final cleanup of
 * a successful build are retried by the cleanup stack, so there a one-off error or an abort must
 * still end in a successful build that leaves nothing but its images.
 *
 * EC2's real behaviours are on (the test EC2's `realistic` preset: slow transitions, late
 * attachments, NotFound right after create, stale reads), at a quarter of their durations, with polls
 * tuned to them. Waits then poll a varying number of times, so a "call" of the matrix is a run of
 * consecutive identical calls (same operation and input: one wait's polls, one retried delete),
 * and a fault hits its first.
 *
 * The same cases run for `via: 'ebs-direct'` (every EC2 call of the instance-less build, every
 * phase), with the EBS direct APIs' own faults (throttling, failed blocks, corrupt reads); nothing
 * may be left there either, nor the working copy in the cache.
 *
 * The cases are independent builds: they run concurrently, each on an environment of its own
 * (its own test EC2, directory, loop devices and cache), {@link LANES} at a time.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EBSClient } from '@aws-sdk/client-ebs';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { createEbsClient } from '../../src/aws/ebs/blocks.js';
import { buildAmi } from '../../src/pipeline/build-ami.js';
import type { BuildAmiOptions, BuildResult, ProvisionFn } from '../../src/pipeline/build-ami.js';
import type { BuildConfig } from '../../src/config/types.js';
import { WAIT_KINDS } from '../../src/config/rules/leaves.js';
import { AmiChrootError } from '../../src/errors.js';
import type { Phase } from '../../src/errors.js';
import { BUILD_REGION, E2E_REALISTIC_KNOBS, useE2ePool } from '../helpers/e2e.js';
import type { E2eEnv, RegionCounts } from '../helpers/e2e.js';
import { makeEbsSource } from '../helpers/ebs-source.js';
import type { EbsSource } from '../helpers/ebs-source.js';
import { motoEc2 } from '../helpers/moto.js';

const COPY_REGION = 'eu-west-1';

/** Builds at once: each on its own environment (test EC2, loop devices), most of a build is waiting. */
const LANES = 3;

/**
 * EC2's real behaviours at a quarter of their durations (stale reads up to 37.5 ms): the cases
 * wait on the wall clock, so the scale is most of the matrix's time. A copy takes a few polls
 * (0.75-1 s), as on EC2, so its wait always sees it pending and follows its snapshots' progress.
 */
const MATRIX_KNOBS = { ...E2E_REALISTIC_KNOBS, time_scale: 0.25, copy_ms: [3_000, 4_000] };
/**
 * Polls scaled with those durations; half the minimum delay (what a detach waits to confirm a
 * reading, 75 ms) stays longer than a read can lag.
 */
const MATRIX_POLLING: NonNullable<BuildConfig['polling']> = {
  waits: Object.fromEntries(WAIT_KINDS.map((k) => [k, { minDelayMs: 150, maxDelayMs: 500 }])),
};

/** What makes two calls the same: operation and input (a wait's polls, a retried call). */
function callKey(name: string, input: unknown): string {
  return `${name} ${JSON.stringify(input)}`;
}

/** Consecutive identical calls as one. */
function runs(calls: readonly { name: string; input: unknown }[]): string[] {
  const keys = calls.map((c) => callKey(c.name, c.input));
  return calls.filter((_, i) => keys[i] !== keys[i - 1]).map((c) => c.name);
}

/** The call runs from registering the snapshot to the image's last setting, the same for both ways of building. */
const REGISTER_CALLS: readonly string[] = [
  'DescribeImages', // forceDeregister lookup
  'RegisterImage',
  'DescribeImages', // available
  'ModifyImageAttribute', // launch permission
  'ModifyImageAttribute', // product codes
  'ModifySnapshotAttribute',
  'EnableImageDeprecation',
];

/** The region copy's call runs, the same for both ways of building. */
const COPY_CALLS: readonly string[] = [
  'DescribeImages', // forceDeregister lookup
  'CopyImage',
  'DescribeImages', // pending: names the copy's snapshots
  'DescribeSnapshots', // the copy's progress
  'DescribeImages', // available
  'ModifyImageAttribute',
  'ModifyImageAttribute',
  'ModifySnapshotAttribute',
  'EnableImageDeprecation',
];

/** Best-effort reads: a failure is logged and the build goes on without that attribute. */
const TOLERATED = new Set(['DescribeImageAttribute']);

interface Point {
  readonly region: string;
  readonly op: string;
  readonly nth: number;
  readonly index: number;
  readonly label: string;
}

function pointsOf(calls: Record<string, readonly string[]>): Point[] {
  return Object.entries(calls).flatMap(([region, ops]) =>
    ops.map((op, index) => {
      const nth = ops.slice(0, index + 1).filter((o) => o === op).length;
      return { region, op, nth, index, label: `${region} ${op}#${nth}` };
    }),
  );
}

const results: { kind: string; point: string; outcome: string }[] = [];

const pool = useE2ePool(LANES, MATRIX_KNOBS);
afterAll(() => {
  const byKind = new Map<string, number>();
  for (const r of results) byKind.set(r.kind, (byKind.get(r.kind) ?? 0) + 1);
  console.log(
    `Fault matrix: ${results.length} cases (${[...byKind].map(([k, n]) => `${k}: ${n}`).join(', ')}); ` +
      `${results.filter((r) => r.outcome.startsWith('ok')).length} passed.\n` +
      results.map((r) => `  ${r.kind.padEnd(19)} ${r.point.padEnd(34)} ${r.outcome}`).join('\n'),
  );
});

/** The steps of mountChroot, each a phase of its own inside `mount`. */
const MOUNT_STEPS = ['pre-mount', 'post-mount', 'chroot-mounts', 'copy-files', 'service-guard'] as const;
/** The registration's phases that matrixConfig asks for (forceDeregister, sharing, deprecateAt). */
const REGISTER_STEPS = ['deregister', 'register', 'permissions', 'deprecate'] as const;

function matrixConfig(env: E2eEnv): BuildConfig {
  return env.config({
    amiRegions: [COPY_REGION],
    amiUsers: ['111122223333'],
    snapshotUsers: ['111122223333'],
    amiProductCodes: ['abc123'],
    deprecateAt: '2030-01-01T00:00:00Z',
    forceDeregister: true,
    tags: { Team: 'images' },
    polling: MATRIX_POLLING,
  });
}

const provision: ProvisionFn = async (chroot) => {
  await chroot.writeFile('/etc/matrix', 'x\n');
  await chroot.sh('sleep 300 >/dev/null 2>&1 &');
};

/**
 * Runs `fn` on the first call of the nth run of `op`: at `initialize` (before everything, for
 * aborts) or inside the SDK's retry loop (`finalizeRequest`, below the retry middleware, for
 * throttling; the SDK's retries of that call are the same run).
 */
function onCall(client: EC2Client, point: Point, at: 'initialize' | 'retried', fn: () => void): () => void {
  let seen = 0;
  let last: string | undefined;
  const name = `matrix-${point.label}-${at}-${Math.random()}`;
  const middleware =
    <A extends { input?: unknown }, R>(next: (args: A) => Promise<R>, context: { commandName?: string }) =>
    async (args: A): Promise<R> => {
      const op = String(context.commandName).replace(/Command$/, '');
      const key = callKey(op, args.input);
      if (op === point.op && key !== last && ++seen === point.nth) fn();
      last = key;
      return next(args);
    };
  if (at === 'initialize') client.middlewareStack.add(middleware, { step: 'initialize', priority: 'high', name });
  else client.middlewareStack.add(middleware, { step: 'finalizeRequest', priority: 'normal', name });
  return () => client.middlewareStack.remove(name);
}

/** A throttling response as EC2 sends it; the SDK's retry strategy retries it with backoff. */
function throttlingError(): Error {
  return Object.assign(new Error('Request limit exceeded.'), {
    name: 'RequestLimitExceeded',
    $fault: 'client',
    $metadata: { httpStatusCode: 503, attempts: 1 },
    $retryable: { throttling: true },
  });
}

/** A hard error on the first call of the nth run of the point's operation. */
function failFirstOfRun(env: E2eEnv, point: Point): void {
  let seen = 0;
  const faults = env.faults(point.region);
  faults.fail(
    point.op,
    { code: 'UnauthorizedOperation', message: `matrix: ${point.label} not allowed`, status: 403 },
    {
      times: 1,
      when: (input) => {
        const previous = faults.calls.at(-1);
        const first = !previous || callKey(previous.name, previous.input) !== callKey(point.op, input);
        return first && ++seen === point.nth;
      },
    },
  );
}

/** After a successful build: the work volume is gone and only the images remain. */
async function expectOnlyImages(env: E2eEnv, before: Record<string, RegionCounts>, result: BuildResult) {
  const after = await env.counts();
  expect(after[BUILD_REGION]!.volumes).toBe(before[BUILD_REGION]!.volumes);
  expect(Object.keys(result.images).sort()).toEqual([BUILD_REGION, COPY_REGION].sort());
}

function settled<T>(promise: Promise<T>): Promise<{ ok: true; r: T } | { ok: false; e: unknown }> {
  return promise.then(
    (r) => ({ ok: true as const, r }),
    (e: unknown) => ({ ok: false as const, e }),
  );
}

/** One way of building (`via`), as the matrix drives it. */
interface Variant {
  /** The describe title. */
  readonly title: string;
  /** Prefix of the result kinds in the summary. */
  readonly tag: string;
  /** The call runs of the matrix build, in order, per region. */
  readonly calls: Record<string, readonly string[]>;
  /** The build region's calls from this index on are made by the final cleanup of a successful build. */
  readonly finalCleanupFrom: number;
  /** Its phases, in order. */
  readonly phases: readonly Phase[];
  build(
    env: E2eEnv,
    options?: Partial<BuildAmiOptions>,
    config?: Partial<BuildConfig>,
    fn?: ProvisionFn,
  ): Promise<BuildResult>;
  /** Nothing in moto or on the host (and, for ebs-direct, in the cache's work directory). */
  expectClean(env: E2eEnv, before: Record<string, RegionCounts>): Promise<void>;
}

const ATTACH: Variant = {
  title: 'fault matrix: attach',
  tag: '',
  calls: {
    [BUILD_REGION]: [
      'DescribeImages', // source image
      'DescribeImageAttribute', // the source's UEFI data (best effort)
      'DescribeRegions', // region validation
      'CreateVolume',
      'DescribeVolumes', // volume available
      'DescribeInstances', // EC2's attachment names for the allocator
      'AttachVolume',
      'DescribeVolumes', // attached
      'DetachVolume', // early cleanup
      'DescribeVolumes', // detached
      'CreateSnapshot',
      'DescribeSnapshots', // completed
      ...REGISTER_CALLS,
      'DescribeVolumes', // final cleanup: detached?
      'DeleteVolume', // final cleanup
    ],
    [COPY_REGION]: COPY_CALLS,
  },
  finalCleanupFrom: 19,
  phases: [
    'identity',
    'source',
    'validate',
    'volume',
    'attach',
    'mount',
    ...MOUNT_STEPS,
    'provision',
    'unmount',
    'detach',
    'snapshot',
    ...REGISTER_STEPS,
    'copy',
  ],
  build: (env, options = {}, config = {}, fn = provision) =>
    buildAmi({ ...matrixConfig(env), ...config }, fn, env.options(options)),
  expectClean: (env, before) => env.assertNothingLeft(before),
};

/** What a lane needs for ebs-direct builds: an EBS client and a source with real blocks. */
interface DirectRig {
  readonly ebs: EBSClient;
  readonly source: EbsSource;
}
const rigs = new Map<E2eEnv, Promise<DirectRig>>();
afterAll(async () => {
  for (const rig of rigs.values()) (await rig.catch(() => undefined))?.ebs.destroy();
});

/** The environment's ebs-direct rig, made on its first ebs-direct case. */
function directRig(env: E2eEnv): Promise<DirectRig> {
  let rig = rigs.get(env);
  if (!rig) {
    rig = (async () => {
      const ebs = createEbsClient(
        { region: BUILD_REGION, accessKey: 'testing', secretKey: 'testing' },
        env.moto.endpoint,
      );
      const setup = motoEc2(env.moto.endpoint, BUILD_REGION);
      try {
        return { ebs, source: await makeEbsSource(env.dir, { ebs, ec2: setup }, 'matrix-direct-source') };
      } finally {
        setup.destroy();
      }
    })();
    rigs.set(env, rig);
  }
  return rig;
}

const DIRECT: Variant = {
  title: "fault matrix: via 'ebs-direct'",
  tag: 'direct ',
  calls: {
    [BUILD_REGION]: [
      'DescribeImages', // source image (no UEFI boot mode: no DescribeImageAttribute)
      'DescribeRegions', // region validation
      'DescribeSnapshots', // the uploaded snapshot completed
      ...REGISTER_CALLS,
    ],
    [COPY_REGION]: COPY_CALLS,
  },
  finalCleanupFrom: Number.POSITIVE_INFINITY,
  phases: [
    'validate',
    'source',
    'preflight',
    'download',
    'volume',
    'attach',
    'mount',
    'provision',
    'unmount',
    'detach',
    'upload',
    ...REGISTER_STEPS,
    'copy',
  ],
  build: async (env, options = {}, config = {}, fn = provision) => {
    const { ebs, source } = await directRig(env);
    const { lockDir: _lockDir, ...base } = matrixConfig(env);
    return buildAmi(
      {
        ...base,
        via: 'ebs-direct',
        sourceAmi: source.imageId,
        mountPartition: '0',
        cacheDir: join(env.dir, 'cache'),
        ...config,
      },
      fn,
      {
        ec2: (region: string) => env.ec2(region),
        ebs,
        stateDir: join(env.dir, 'state'),
        logger: { warn: () => {}, error: () => {} },
        ...options,
      },
    );
  },
  expectClean: async (env, before) => {
    await env.assertNothingLeft(before);
    expect(await readdir(join(env.dir, 'cache', 'work')).catch(() => [])).toEqual([]);
  },
};

/**
 * Runs one case on a free environment: `before` is counted once the environment is ready for
 * the variant (an ebs-direct lane makes its source on first use, before counting).
 */
function onLane(variant: Variant, fn: (env: E2eEnv, before: Record<string, RegionCounts>) => Promise<void>) {
  return () =>
    pool.use(async (env) => {
      if (variant === DIRECT) await directRig(env);
      await fn(env, await env.counts());
    });
}

describe.concurrent.each([ATTACH, DIRECT])('$title', (variant) => {
  const record = (kind: string, point: string, outcome: string) =>
    results.push({ kind: `${variant.tag}${kind}`, point, outcome });
  const final = (point: Point) => point.region === BUILD_REGION && point.index >= variant.finalCleanupFrom;

  it(
    'the matrix covers every call the build makes',
    onLane(variant, async (env, before) => {
      const result = await variant.build(env);
      for (const region of Object.keys(variant.calls)) {
        expect(runs(env.faults(region).calls), region).toEqual(variant.calls[region]);
      }
      await expectOnlyImages(env, before, result);
      // Nothing of the build is left on the host either (its loop device is the test's own).
      await variant.expectClean(env, await env.counts());
      if (variant === DIRECT) expect(await readdir(join(env.dir, 'cache', 'work'))).toEqual([]);
      record('baseline', 'all calls', 'ok: calls match the matrix');
    }),
  );

  describe.each(pointsOf(variant.calls))('$label', (point) => {
    it(
      'hard error: fails naming the phase and leaves nothing behind',
      onLane(variant, async (env, before) => {
        failFirstOfRun(env, point);
        const outcome = await settled(variant.build(env));
        if (final(point)) {
          // The image is final; the cleanup stack retried the undo and the volume is gone.
          expect(outcome.ok).toBe(true);
          if (outcome.ok) await expectOnlyImages(env, before, outcome.r);
          record('error', point.label, 'ok: cleanup retried, build succeeded');
          return;
        }
        if (TOLERATED.has(point.op)) {
          expect(outcome.ok).toBe(true);
          if (outcome.ok) await expectOnlyImages(env, before, outcome.r);
          record('error', point.label, 'ok: best-effort read, build succeeded');
          return;
        }
        expect(outcome.ok).toBe(false);
        const error = (outcome as { e: unknown }).e;
        expect(error).toBeInstanceOf(AmiChrootError);
        expect((error as AmiChrootError).phase).toBeTypeOf('string');
        expect((error as Error).message + String(((error as Error).cause as Error | undefined)?.message)).toContain(
          point.op,
        );
        await variant.expectClean(env, before);
        record('error', point.label, `ok: failed in ${(error as AmiChrootError).phase}, nothing left`);
      }),
    );

    it(
      'abort at this call: rejects with the reason and leaves nothing behind',
      onLane(variant, async (env, before) => {
        const controller = new AbortController();
        const reason = new Error(`matrix abort at ${point.label}`);
        const remove = onCall(env.ec2(point.region), point, 'initialize', () => controller.abort(reason));
        try {
          const outcome = await settled(variant.build(env, { signal: controller.signal }));
          expect(controller.signal.aborted).toBe(true);
          if (final(point)) {
            // Aborting while the final cleanup runs cannot undo a finished build; cleanup completes.
            expect(outcome.ok).toBe(true);
            if (outcome.ok) await expectOnlyImages(env, before, outcome.r);
            record('abort', point.label, 'ok: build was final, cleanup completed');
            return;
          }
          expect(outcome.ok).toBe(false);
          expect((outcome as { e: unknown }).e).toBe(reason);
          await variant.expectClean(env, before);
          record('abort', point.label, 'ok: aborted, nothing left');
        } finally {
          remove();
        }
      }),
    );
  });

  describe.each(variant.phases)('%s', (phase) => {
    it.each(['before', 'after'] as const)(
      'an error %s it fails the build in that phase and leaves nothing behind',
      (when) =>
        onLane(variant, async (env, before) => {
          const error = await variant
            .build(env, {
              hooks: {
                [when]: (p: Phase) => {
                  if (p === phase) throw new Error(`matrix: host fault ${when} ${phase}`);
                },
              },
            })
            .catch((e: unknown) => e);
          expect(error).toBeInstanceOf(Error);
          expect((error as Error).message).toBe(`matrix: host fault ${when} ${phase}`);
          expect((error as { phase?: string }).phase).toBe(phase);
          await variant.expectClean(env, before);
          record('host-error', `${when} ${phase}`, 'ok: failed, nothing left');
        })(),
    );

    it(
      'an abort before it rejects with the reason and leaves nothing behind',
      onLane(variant, async (env, before) => {
        const controller = new AbortController();
        const reason = new Error(`matrix abort before ${phase}`);
        const error = await variant
          .build(env, {
            signal: controller.signal,
            hooks: { before: (p: Phase) => void (p === phase && controller.abort(reason)) },
          })
          .catch((e: unknown) => e);
        expect(error).toBe(reason);
        await variant.expectClean(env, before);
        record('host-abort', phase, 'ok: aborted, nothing left');
      }),
    );
  });
});

describe.concurrent('fault matrix: attach, what only it has', () => {
  describe.each(pointsOf(ATTACH.calls))('$label', (point) => {
    it(
      'throttled: the build still succeeds',
      onLane(ATTACH, async (env, before) => {
        // Under the SDK's retry middleware, like a real 503 from EC2.
        let thrown = false;
        const remove = onCall(env.ec2(point.region), point, 'retried', () => {
          if (thrown) return;
          thrown = true;
          throw throttlingError();
        });
        try {
          const result = await ATTACH.build(env);
          expect(thrown).toBe(true);
          await expectOnlyImages(env, before, result);
          results.push({ kind: 'throttle', point: point.label, outcome: 'ok: succeeded' });
        } finally {
          remove();
        }
      }),
    );
  });

  const hostFaults: { name: string; config: Partial<BuildConfig>; phase: Phase }[] = [
    {
      name: 'a pre-mount command exits non-zero',
      config: { preMountCommands: ['echo partitioning {{.Device}}; exit 3'] },
      phase: 'pre-mount',
    },
    {
      name: 'a post-mount command exits non-zero',
      config: { postMountCommands: ['test -d {{.MountPath}}/etc && exit 4'] },
      phase: 'post-mount',
    },
    {
      name: 'a chroot mount cannot be mounted',
      config: { extraChrootMounts: [['no-such-fs', 'none', '/mnt/bogus']] },
      phase: 'chroot-mounts',
    },
    {
      name: 'a file to copy does not exist on the host',
      config: { copyFiles: ['/etc/resolv.conf', '/nonexistent/ami-chroot-file'] },
      phase: 'copy-files',
    },
    { name: 'the mount fails (bad option)', config: { mountOptions: ['no-such-mount-option'] }, phase: 'mount' },
  ];
  it.each(hostFaults)('$name: fails in $phase and leaves nothing behind', ({ config, phase }) =>
    onLane(ATTACH, async (env, before) => {
      const error = await ATTACH.build(env, {}, config).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AmiChrootError);
      expect((error as AmiChrootError).phase).toBe(phase);
      await ATTACH.expectClean(env, before);
      results.push({
        kind: 'host-error',
        point: JSON.stringify(config).slice(0, 34),
        outcome: `ok: failed in ${phase}, nothing left`,
      });
    })(),
  );

  it(
    'a provision that throws with daemons left running fails in provision and leaves nothing behind',
    onLane(ATTACH, async (env, before) => {
      const error = await ATTACH.build(env, {}, {}, async (chroot) => {
        await chroot.sh('sleep 300 >/dev/null 2>&1 & cd /tmp && sleep 300 >/dev/null 2>&1 &');
        throw new Error('provisioning broke');
      }).catch((e: unknown) => e);
      expect((error as AmiChrootError).phase).toBe('provision');
      await ATTACH.expectClean(env, before);
      results.push({ kind: 'host-error', point: 'provision throws + daemons', outcome: 'ok: failed, nothing left' });
    }),
  );

  it(
    'an abort while a command runs inside the chroot stops it and leaves nothing behind',
    onLane(ATTACH, async (env, before) => {
      const controller = new AbortController();
      const reason = new Error('matrix abort during provision');
      const error = await ATTACH.build(env, { signal: controller.signal }, {}, async (chroot) => {
        setTimeout(() => controller.abort(reason), 300);
        await chroot.sh('sleep 120');
      }).catch((e: unknown) => e);
      expect(error).toBe(reason);
      await ATTACH.expectClean(env, before);
      results.push({ kind: 'host-abort', point: 'during a chroot command', outcome: 'ok: aborted, nothing left' });
    }),
  );
});

describe.concurrent("fault matrix: via 'ebs-direct', the EBS direct APIs' faults", () => {
  const rmCache = (env: E2eEnv) => rm(join(env.dir, 'cache'), { recursive: true, force: true });

  it.each([
    ['EBS throttles every call for a while', { ebs_throttle: { actions: '*', burst: 6 } }],
    ['a few blocks fail once', { ebs_fail_blocks: 3 }],
  ] as const)('%s: the build still succeeds, leaving only its images', (what, knobs) =>
    onLane(DIRECT, async (env) => {
      // A cold cache, so the downloads meet the faults too.
      await rmCache(env);
      const before = await env.counts();
      await env.moto.setKnobs(knobs);
      try {
        const result = await DIRECT.build(env, {}, {}, async (chroot) => chroot.writeFile('/etc/matrix', `${what}\n`));
        await expectOnlyImages(env, before, result);
        results.push({ kind: 'direct ebs', point: what.slice(0, 34), outcome: 'ok: succeeded' });
      } finally {
        await env.moto.resetKnobs();
      }
    })(),
  );

  it(
    'every block upload fails: fails in upload and leaves nothing behind',
    onLane(DIRECT, async (env, before) => {
      await env.moto.setKnobs({ ebs_fail_blocks: 10_000 });
      try {
        const error = await DIRECT.build(env).catch((e: unknown) => e);
        expect((error as AmiChrootError).phase).toBe('upload');
        await DIRECT.expectClean(env, before);
        results.push({
          kind: 'direct ebs',
          point: 'every PutSnapshotBlock fails',
          outcome: 'ok: failed, nothing left',
        });
      } finally {
        await env.moto.resetKnobs();
      }
    }),
  );

  it(
    'every block read is corrupt: fails in download and leaves nothing behind (no cache entry either)',
    onLane(DIRECT, async (env) => {
      await rmCache(env);
      const before = await env.counts();
      await env.moto.setKnobs({ ebs_corrupt_reads: 100_000 });
      try {
        const error = await DIRECT.build(env).catch((e: unknown) => e);
        expect((error as AmiChrootError).phase).toBe('download');
        await DIRECT.expectClean(env, before);
        const { source } = await directRig(env);
        expect(await readdir(join(env.dir, 'cache')).catch(() => [])).not.toContain(source.snapshotId);
        results.push({
          kind: 'direct ebs',
          point: 'every GetSnapshotBlock corrupt',
          outcome: 'ok: failed, nothing left',
        });
      } finally {
        await env.moto.resetKnobs();
      }
    }),
  );
});
