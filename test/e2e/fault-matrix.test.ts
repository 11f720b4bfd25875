/**
 * The fault matrix: for every AWS call a build makes (each occurrence, in every region) and every
 * host step, inject (a) throttling: the build still succeeds; (b) a hard error: the build rejects
 * naming the phase, and nothing it created is left (moto resources, mounts, loop devices, locks,
 * journals, processes); (c) an abort at that point: same. Calls made only by the final cleanup of
 * a successful build are retried by the cleanup stack, so there a one-off error or an abort must
 * still end in a successful build that leaves nothing but its images.
 *
 * EC2's real behaviours are on (the test EC2's `realistic` preset: slow transitions, late
 * attachments, NotFound right after create, stale reads), at half their durations, with polls
 * tuned to them. Waits then poll a varying number of times, so a "call" of the matrix is a run of
 * consecutive identical calls (same operation and input: one wait's polls, one retried delete),
 * and a fault hits its first.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EBSClient } from '@aws-sdk/client-ebs';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { createEbsClient } from '../../src/aws/ebs/blocks.js';
import { buildAmi } from '../../src/pipeline/build-ami.js';
import type { BuildAmiOptions, ProvisionFn } from '../../src/pipeline/build-ami.js';
import type { BuildConfig } from '../../src/config/types.js';
import { WAIT_KINDS } from '../../src/config/rules/leaves.js';
import { AmiChrootError } from '../../src/errors.js';
import type { Phase } from '../../src/errors.js';
import { BUILD_REGION, E2E_REALISTIC_KNOBS, startE2e } from '../helpers/e2e.js';
import type { E2eEnv, RegionCounts } from '../helpers/e2e.js';
import { makeEbsSource } from '../helpers/ebs-source.js';
import type { EbsSource } from '../helpers/ebs-source.js';
import { motoEc2 } from '../helpers/moto.js';

const COPY_REGION = 'eu-west-1';

/**
 * EC2's real behaviours at half their durations (stale reads up to 75 ms). A copy takes a few
 * polls, as on EC2, so its wait always sees it pending and follows its snapshots' progress.
 */
const MATRIX_KNOBS = { ...E2E_REALISTIC_KNOBS, time_scale: 0.5, copy_ms: [3_000, 4_000] };
/**
 * Polls tuned to those durations; half the minimum delay (what a detach waits to confirm a
 * reading) stays longer than a read can lag.
 */
const MATRIX_POLLING: NonNullable<BuildConfig['polling']> = {
  waits: Object.fromEntries(WAIT_KINDS.map((k) => [k, { minDelayMs: 300, maxDelayMs: 1_000 }])),
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

/** The call runs of the matrix build, in order, per region (RunInstances is the test's own setup). */
const CALLS: Record<string, readonly string[]> = {
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
    'DescribeImages', // forceDeregister lookup
    'RegisterImage',
    'DescribeImages', // available
    'ModifyImageAttribute', // launch permission
    'ModifyImageAttribute', // product codes
    'ModifySnapshotAttribute',
    'EnableImageDeprecation',
    'DescribeVolumes', // final cleanup: detached?
    'DeleteVolume', // final cleanup
  ],
  [COPY_REGION]: [
    'DescribeImages', // forceDeregister lookup
    'CopyImage',
    'DescribeImages', // pending: names the copy's snapshots
    'DescribeSnapshots', // the copy's progress
    'DescribeImages', // available
    'ModifyImageAttribute',
    'ModifyImageAttribute',
    'ModifySnapshotAttribute',
    'EnableImageDeprecation',
  ],
};
/** Calls made by the final cleanup of a successful build (after the images are final). */
const FINAL_CLEANUP_FROM = 19;
/** Best-effort reads: a failure is logged and the build goes on without that attribute. */
const TOLERATED = new Set(['DescribeImageAttribute']);

interface Point {
  readonly region: string;
  readonly op: string;
  readonly nth: number;
  readonly index: number;
  readonly label: string;
}

const POINTS: Point[] = Object.entries(CALLS).flatMap(([region, ops]) =>
  ops.map((op, index) => {
    const nth = ops.slice(0, index + 1).filter((o) => o === op).length;
    return { region, op, nth, index, label: `${region} ${op}#${nth}` };
  }),
);

const HOST_PHASES: readonly Phase[] = [
  'identity',
  'source',
  'validate',
  'volume',
  'attach',
  'mount',
  'provision',
  'unmount',
  'detach',
  'register',
  'copy',
];

const results: { kind: string; point: string; outcome: string }[] = [];

let env: E2eEnv;
beforeAll(async () => {
  env = await startE2e(MATRIX_KNOBS);
});
afterEach(async () => {
  await env.afterEach();
});
afterAll(async () => {
  const byKind = new Map<string, number>();
  for (const r of results) byKind.set(r.kind, (byKind.get(r.kind) ?? 0) + 1);
  console.log(
    `Fault matrix: ${results.length} cases (${[...byKind].map(([k, n]) => `${k}: ${n}`).join(', ')}); ` +
      `${results.filter((r) => r.outcome.startsWith('ok')).length} passed.\n` +
      results.map((r) => `  ${r.kind.padEnd(14)} ${r.point.padEnd(34)} ${r.outcome}`).join('\n'),
  );
  await env?.close();
});

function matrixConfig(): BuildConfig {
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
function failFirstOfRun(point: Point): void {
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

async function expectClean(before: Record<string, RegionCounts>): Promise<void> {
  await env.assertNothingLeft(before);
}

/** After a successful build: the work volume is gone and only the images remain. */
async function expectOnlyImages(
  before: Record<string, RegionCounts>,
  result: { images: Record<string, string> },
): Promise<void> {
  const after = await env.counts();
  expect(after[BUILD_REGION]!.volumes).toBe(before[BUILD_REGION]!.volumes);
  expect(Object.keys(result.images).sort()).toEqual([BUILD_REGION, COPY_REGION].sort());
}

async function build(
  options: Partial<BuildAmiOptions> = {},
  config: BuildConfig = matrixConfig(),
  fn: ProvisionFn = provision,
) {
  return buildAmi(config, fn, env.options(options));
}

describe('fault matrix: every AWS call', () => {
  it('the matrix covers every call the build makes', async () => {
    const before = await env.counts();
    const result = await build();
    for (const region of Object.keys(CALLS)) {
      expect(runs(env.faults(region).calls), region).toEqual(CALLS[region]);
    }
    await expectOnlyImages(before, result);
    results.push({ kind: 'baseline', point: 'all calls', outcome: 'ok: calls match the matrix' });
  });

  describe.each(POINTS)('$label', (point) => {
    it('throttled: the build still succeeds', async () => {
      const before = await env.counts();
      // Under the SDK's retry middleware, like a real 503 from EC2.
      let thrown = false;
      const remove = onCall(env.ec2(point.region), point, 'retried', () => {
        if (thrown) return;
        thrown = true;
        throw throttlingError();
      });
      try {
        const result = await build();
        expect(thrown).toBe(true);
        await expectOnlyImages(before, result);
        results.push({ kind: 'throttle', point: point.label, outcome: 'ok: succeeded' });
      } finally {
        remove();
      }
    });

    it('hard error: fails naming the phase and leaves nothing behind', async () => {
      const before = await env.counts();
      failFirstOfRun(point);
      const outcome = await build().then(
        (r) => ({ ok: true as const, r }),
        (e: unknown) => ({ ok: false as const, e }),
      );
      if (point.region === BUILD_REGION && point.index >= FINAL_CLEANUP_FROM) {
        // The image is final; the cleanup stack retried the undo and the volume is gone.
        expect(outcome.ok).toBe(true);
        if (outcome.ok) await expectOnlyImages(before, outcome.r);
        results.push({ kind: 'error', point: point.label, outcome: 'ok: cleanup retried, build succeeded' });
        return;
      }
      if (TOLERATED.has(point.op)) {
        expect(outcome.ok).toBe(true);
        if (outcome.ok) await expectOnlyImages(before, outcome.r);
        results.push({ kind: 'error', point: point.label, outcome: 'ok: best-effort read, build succeeded' });
        return;
      }
      expect(outcome.ok).toBe(false);
      const error = (outcome as { e: unknown }).e;
      expect(error).toBeInstanceOf(AmiChrootError);
      expect((error as AmiChrootError).phase).toBeTypeOf('string');
      expect((error as Error).message + String(((error as Error).cause as Error | undefined)?.message)).toContain(
        point.op,
      );
      await expectClean(before);
      results.push({
        kind: 'error',
        point: point.label,
        outcome: `ok: failed in ${(error as AmiChrootError).phase}, nothing left`,
      });
    });

    it('abort at this call: rejects with the reason and leaves nothing behind', async () => {
      const before = await env.counts();
      const controller = new AbortController();
      const reason = new Error(`matrix abort at ${point.label}`);
      const remove = onCall(env.ec2(point.region), point, 'initialize', () => controller.abort(reason));
      try {
        const outcome = await build({ signal: controller.signal }).then(
          (r) => ({ ok: true as const, r }),
          (e: unknown) => ({ ok: false as const, e }),
        );
        expect(controller.signal.aborted).toBe(true);
        if (point.region === BUILD_REGION && point.index >= FINAL_CLEANUP_FROM) {
          // Aborting while the final cleanup runs cannot undo a finished build; cleanup completes.
          expect(outcome.ok).toBe(true);
          if (outcome.ok) await expectOnlyImages(before, outcome.r);
          results.push({ kind: 'abort', point: point.label, outcome: 'ok: build was final, cleanup completed' });
          return;
        }
        expect(outcome.ok).toBe(false);
        expect((outcome as { e: unknown }).e).toBe(reason);
        await expectClean(before);
        results.push({ kind: 'abort', point: point.label, outcome: 'ok: aborted, nothing left' });
      } finally {
        remove();
      }
    });
  });
});

describe('fault matrix: every host step', () => {
  describe.each(HOST_PHASES)('%s', (phase) => {
    it.each(['before', 'after'] as const)(
      'an error %s it fails the build in that phase and leaves nothing behind',
      async (when) => {
        const before = await env.counts();
        const error = await build({
          hooks: {
            [when]: (p: Phase) => {
              if (p === phase) throw new Error(`matrix: host fault ${when} ${phase}`);
            },
          },
        }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(Error);
        expect((error as Error).message).toBe(`matrix: host fault ${when} ${phase}`);
        expect((error as { phase?: string }).phase).toBe(phase);
        await expectClean(before);
        results.push({ kind: 'host-error', point: `${when} ${phase}`, outcome: 'ok: failed, nothing left' });
      },
    );

    it('an abort there rejects with the reason and leaves nothing behind', async () => {
      const before = await env.counts();
      const controller = new AbortController();
      const reason = new Error(`matrix abort before ${phase}`);
      const error = await build({
        signal: controller.signal,
        hooks: { before: (p: Phase) => void (p === phase && controller.abort(reason)) },
      }).catch((e: unknown) => e);
      expect(error).toBe(reason);
      await expectClean(before);
      results.push({ kind: 'host-abort', point: phase, outcome: 'ok: aborted, nothing left' });
    });
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
  it.each(hostFaults)('$name: fails in $phase and leaves nothing behind', async ({ config, phase }) => {
    const before = await env.counts();
    const error = await build({}, { ...matrixConfig(), ...config }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AmiChrootError);
    expect((error as AmiChrootError).phase).toBe(phase);
    await expectClean(before);
    results.push({
      kind: 'host-error',
      point: JSON.stringify(config).slice(0, 34),
      outcome: `ok: failed in ${phase}, nothing left`,
    });
  });

  it('a provision that throws with daemons left running fails in provision and leaves nothing behind', async () => {
    const before = await env.counts();
    const error = await build({}, matrixConfig(), async (chroot) => {
      await chroot.sh('sleep 300 >/dev/null 2>&1 & cd /tmp && sleep 300 >/dev/null 2>&1 &');
      throw new Error('provisioning broke');
    }).catch((e: unknown) => e);
    expect((error as AmiChrootError).phase).toBe('provision');
    await expectClean(before);
    results.push({ kind: 'host-error', point: 'provision throws + daemons', outcome: 'ok: failed, nothing left' });
  });

  it('an abort while a command runs inside the chroot stops it and leaves nothing behind', async () => {
    const before = await env.counts();
    const controller = new AbortController();
    const reason = new Error('matrix abort during provision');
    const error = await build({ signal: controller.signal }, matrixConfig(), async (chroot) => {
      setTimeout(() => controller.abort(reason), 300);
      await chroot.sh('sleep 120');
    }).catch((e: unknown) => e);
    expect(error).toBe(reason);
    await expectClean(before);
    results.push({ kind: 'host-abort', point: 'during a chroot command', outcome: 'ok: aborted, nothing left' });
  });
});

/**
 * The same matrix for `via: 'ebs-direct'`: every EC2 call of the instance-less build (an error and
 * an abort at each), every phase (an error before and after it, an abort before it), and the EBS
 * direct APIs' own faults (throttling, failed blocks, corrupt reads). Nothing may be left: no
 * snapshot, image, mount, loop device, journal, nor the working copy in the cache.
 */
describe("fault matrix: via 'ebs-direct'", () => {
  /** The EC2 calls of the direct build, in order, per region (the EBS direct calls have knobs). */
  const DIRECT_CALLS: Record<string, readonly string[]> = {
    [BUILD_REGION]: [
      'DescribeImages', // source image (no UEFI boot mode: no DescribeImageAttribute)
      'DescribeRegions', // region validation
      'DescribeSnapshots', // the uploaded snapshot completed
      'DescribeImages', // forceDeregister lookup
      'RegisterImage',
      'DescribeImages', // available
      'ModifyImageAttribute', // launch permission
      'ModifyImageAttribute', // product codes
      'ModifySnapshotAttribute',
      'EnableImageDeprecation',
    ],
    [COPY_REGION]: CALLS[COPY_REGION]!,
  };
  const DIRECT_POINTS: Point[] = Object.entries(DIRECT_CALLS).flatMap(([region, ops]) =>
    ops.map((op, index) => {
      const nth = ops.slice(0, index + 1).filter((o) => o === op).length;
      return { region, op, nth, index, label: `${region} ${op}#${nth}` };
    }),
  );
  const DIRECT_PHASES: readonly Phase[] = [
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
    'register',
    'copy',
  ];
  let ebs: EBSClient;
  let source: EbsSource;

  beforeAll(async () => {
    ebs = createEbsClient({ region: BUILD_REGION, accessKey: 'testing', secretKey: 'testing' }, env.moto.endpoint);
    const setup = motoEc2(env.moto.endpoint, BUILD_REGION);
    try {
      source = await makeEbsSource(env.dir, { ebs, ec2: setup }, 'matrix-direct-source');
    } finally {
      setup.destroy();
    }
  }, 120_000);
  afterAll(() => ebs?.destroy());

  function directConfig(): BuildConfig {
    const { lockDir: _lockDir, ...config } = matrixConfig();
    return {
      ...config,
      via: 'ebs-direct',
      sourceAmi: source.imageId,
      mountPartition: '0',
      cacheDir: join(env.dir, 'cache'),
    };
  }

  function directBuild(options: Partial<BuildAmiOptions> = {}, fn: ProvisionFn = provision) {
    return buildAmi(directConfig(), fn, {
      ec2: (region: string) => env.ec2(region),
      ebs,
      stateDir: join(env.dir, 'state'),
      logger: { warn: () => {}, error: () => {} },
      ...options,
    });
  }

  /** Nothing in moto, on the host, or in the cache's work directory. */
  async function expectDirectClean(before: Record<string, RegionCounts>): Promise<void> {
    await env.assertNothingLeft(before);
    expect(await readdir(join(env.dir, 'cache', 'work')).catch(() => [])).toEqual([]);
  }

  it('the matrix covers every EC2 call the build makes; the work file is gone', async () => {
    const before = await env.counts();
    const result = await directBuild();
    for (const region of Object.keys(DIRECT_CALLS))
      expect(runs(env.faults(region).calls), region).toEqual(DIRECT_CALLS[region]);
    await expectOnlyImages(before, result);
    expect(await readdir(join(env.dir, 'cache', 'work'))).toEqual([]);
    results.push({ kind: 'direct', point: 'all calls', outcome: 'ok: calls match the matrix' });
  });

  describe.each(DIRECT_POINTS)('$label', (point) => {
    it('hard error: fails naming the phase and leaves nothing behind', async () => {
      const before = await env.counts();
      failFirstOfRun(point);
      const outcome = await directBuild().then(
        (r) => ({ ok: true as const, r }),
        (e: unknown) => ({ ok: false as const, e }),
      );
      if (TOLERATED.has(point.op)) {
        expect(outcome.ok).toBe(true);
        if (outcome.ok) await expectOnlyImages(before, outcome.r);
        results.push({ kind: 'direct-error', point: point.label, outcome: 'ok: best-effort read, build succeeded' });
        return;
      }
      expect(outcome.ok).toBe(false);
      const error = (outcome as { e: unknown }).e;
      expect(error).toBeInstanceOf(AmiChrootError);
      expect((error as AmiChrootError).phase).toBeTypeOf('string');
      await expectDirectClean(before);
      results.push({
        kind: 'direct-error',
        point: point.label,
        outcome: `ok: failed in ${(error as AmiChrootError).phase}, nothing left`,
      });
    });

    it('abort at this call: rejects with the reason and leaves nothing behind', async () => {
      const before = await env.counts();
      const controller = new AbortController();
      const reason = new Error(`matrix abort at ${point.label}`);
      const remove = onCall(env.ec2(point.region), point, 'initialize', () => controller.abort(reason));
      try {
        const error = await directBuild({ signal: controller.signal }).catch((e: unknown) => e);
        expect(controller.signal.aborted).toBe(true);
        expect(error).toBe(reason);
        await expectDirectClean(before);
        results.push({ kind: 'direct-abort', point: point.label, outcome: 'ok: aborted, nothing left' });
      } finally {
        remove();
      }
    });
  });

  describe.each(DIRECT_PHASES)('%s', (phase) => {
    it.each(['before', 'after'] as const)(
      'an error %s it fails the build in that phase and leaves nothing behind',
      async (when) => {
        const before = await env.counts();
        const error = await directBuild({
          hooks: {
            [when]: (p: Phase) => {
              if (p === phase) throw new Error(`matrix: direct fault ${when} ${phase}`);
            },
          },
        }).catch((e: unknown) => e);
        expect((error as Error).message).toBe(`matrix: direct fault ${when} ${phase}`);
        expect((error as { phase?: string }).phase).toBe(phase);
        await expectDirectClean(before);
        results.push({ kind: 'direct-host', point: `${when} ${phase}`, outcome: 'ok: failed, nothing left' });
      },
    );

    it('an abort before it rejects with the reason and leaves nothing behind', async () => {
      const before = await env.counts();
      const controller = new AbortController();
      const reason = new Error(`matrix abort before ${phase}`);
      const error = await directBuild({
        signal: controller.signal,
        hooks: { before: (p: Phase) => void (p === phase && controller.abort(reason)) },
      }).catch((e: unknown) => e);
      expect(error).toBe(reason);
      await expectDirectClean(before);
      results.push({ kind: 'direct-abort', point: phase, outcome: 'ok: aborted, nothing left' });
    });
  });

  it.each([
    ['EBS throttles every call for a while', { ebs_throttle: { actions: '*', burst: 6 } }],
    ['a few blocks fail once', { ebs_fail_blocks: 3 }],
  ] as const)('%s: the build still succeeds, leaving only its images', async (what, knobs) => {
    // A cold cache, so the downloads meet the faults too.
    await rmCache();
    const before = await env.counts();
    await env.moto.setKnobs(knobs);
    try {
      const result = await directBuild({}, async (chroot) => chroot.writeFile('/etc/matrix', `${what}\n`));
      await expectOnlyImages(before, result);
      results.push({ kind: 'direct-ebs', point: what.slice(0, 34), outcome: 'ok: succeeded' });
    } finally {
      await env.moto.resetKnobs();
    }
  });

  it('every block upload fails: fails in upload and leaves nothing behind', async () => {
    const before = await env.counts();
    await env.moto.setKnobs({ ebs_fail_blocks: 10_000 });
    try {
      const error = await directBuild().catch((e: unknown) => e);
      expect((error as AmiChrootError).phase).toBe('upload');
      await expectDirectClean(before);
      results.push({ kind: 'direct-ebs', point: 'every PutSnapshotBlock fails', outcome: 'ok: failed, nothing left' });
    } finally {
      await env.moto.resetKnobs();
    }
  });

  it('every block read is corrupt: fails in download and leaves nothing behind (no cache entry either)', async () => {
    await rmCache();
    const before = await env.counts();
    await env.moto.setKnobs({ ebs_corrupt_reads: 100_000 });
    try {
      const error = await directBuild().catch((e: unknown) => e);
      expect((error as AmiChrootError).phase).toBe('download');
      await expectDirectClean(before);
      expect(await readdir(join(env.dir, 'cache')).catch(() => [])).not.toContain(source.snapshotId);
      results.push({
        kind: 'direct-ebs',
        point: 'every GetSnapshotBlock corrupt',
        outcome: 'ok: failed, nothing left',
      });
    } finally {
      await env.moto.resetKnobs();
    }
  });

  async function rmCache(): Promise<void> {
    await rm(join(env.dir, 'cache'), { recursive: true, force: true });
  }
});
