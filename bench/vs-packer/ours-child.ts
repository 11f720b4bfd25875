/**
 * One `buildAmi` of the side-by-side build (source filter, a provision writing a file, one region
 * copy, sharing, tags), in a process of its own so that `/usr/bin/time -v` measures its CPU and
 * peak RSS alone, as it measures Packer's. Argument: the JSON of {@link OursParams}. Prints the
 * build's JSON result on stdout.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { buildAmi } from '../../src/pipeline/build-ami.js';
import { run } from '../../src/host/exec.js';
import { attachLoop, type LoopDevice } from '../../src/host/loop.js';
import { scaledPolling } from '../lib/scaled-polling.js';
import { SIDE_BY_SIDE } from './build.js';

/**
 * What the child needs: the test EC2 and the rig's paths.
 * @internal
 */
export interface OursParams {
  readonly endpoint: string;
  readonly instanceId: string;
  readonly availabilityZone: string;
  readonly dir: string;
  readonly baseImage: string;
  readonly label: string;
  /** Divisor of the poller's delays, matching the test EC2's `time_scale` (1: unscaled). */
  readonly pollScale: number;
}

/**
 * What the child prints: its start-up time and the build's own timings.
 * @internal
 */
export interface OursReport {
  /** From process start to the first line of `main` (imports included). */
  readonly startupMs: number;
  /** `buildAmi`'s `durationMs`. */
  readonly durationMs: number;
  /** `buildAmi`'s per-phase `timings`. */
  readonly timings: Readonly<Record<string, number>>;
}

async function main(params: OursParams): Promise<void> {
  // Static imports are done by now: this is Node's start plus loading the SDK and the library.
  const startupMs = performance.now();
  const loops: LoopDevice[] = [];
  const files: string[] = [];
  try {
    const result = await buildAmi(
      {
        region: SIDE_BY_SIDE.region,
        sourceAmiFilter: {
          filters: { name: SIDE_BY_SIDE.sourceNamePattern },
          owners: [SIDE_BY_SIDE.sourceOwner],
          mostRecent: true,
        },
        amiName: `vs-packer-ours-${params.label}-{{timestamp}}`,
        amiRegions: [SIDE_BY_SIDE.copyRegion],
        amiUsers: [SIDE_BY_SIDE.shareWith],
        tags: SIDE_BY_SIDE.tags,
        mountPath: join(params.dir, 'mnt', '{{.Device}}'),
        lockDir: join(params.dir, 'lock'),
        polling: scaledPolling(params.pollScale),
        // As a deployed program reaches an EC2-compatible endpoint (Packer's custom_endpoint_ec2):
        // the library creates its clients, so the SDK loads as it does there (no fixture imports it).
        customEndpointEc2: params.endpoint,
        accessKey: 'testing',
        secretKey: 'testing',
      },
      async (chroot) => {
        await chroot.exec('/bin/sh', ['-c', SIDE_BY_SIDE.provisionCommand], { outputLevel: 'silent' });
      },
      {
        hostIdentity: {
          instanceId: params.instanceId,
          availabilityZone: params.availabilityZone,
          region: SIDE_BY_SIDE.region,
        },
        devRoot: join(params.dir, 'dev'),
        stateDir: join(params.dir, 'state'),
        logger: { warn: () => {} },
        // The test EC2 attaches nothing real: the volume is a loop device over a copy of the image.
        resolveDevice: async ({ volumeId }) => {
          const file = join(params.dir, `${volumeId}.img`);
          files.push(file);
          await run('cp', ['--sparse=always', params.baseImage, file], { timeoutMs: 60_000 });
          const loop = await attachLoop({ file, stateDir: false });
          loops.push(loop);
          return loop.device;
        },
      },
    );
    const report: OursReport = { startupMs, durationMs: result.durationMs, timings: result.timings };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    for (const loop of loops) await loop.detach();
    for (const file of files) await rm(file, { force: true });
  }
}

await main(JSON.parse(process.argv[2] ?? '{}') as OursParams);
