import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { DescribeVolumesCommand } from '@aws-sdk/client-ec2';
import { cleanupOrphans } from '../../src/pipeline/cleanup-orphans.js';
import { BUILD_REGION, processesUnder, useE2e } from '../helpers/e2e.js';
import { MOTO_SOURCE_AMIS } from '../helpers/moto.js';
import { findLeaks } from '../helpers/loop.js';

const env = useE2e();
let child: ChildProcess | undefined;
afterEach(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
});

/** Starts the child build and resolves once it is inside provision. */
async function startChildBuild(
  name: string,
  wireSigint: boolean,
): Promise<{ child: ChildProcess; output: () => string; exited: Promise<number | null> }> {
  let out = '';
  const c = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'children', 'build-child.ts')], {
    env: {
      ...process.env,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      WIRE_SIGINT: wireSigint ? '1' : '0',
      CHILD_INPUT: JSON.stringify({
        endpoint: env.moto.endpoint,
        instanceId: env.instanceId,
        availabilityZone: env.availabilityZone,
        dir: env.dir,
        baseImage: join(env.dir, 'base.img'),
        sourceAmi: MOTO_SOURCE_AMIS.debianNew.ami_id,
        amiName: name,
      }),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = c;
  c.stdout.on('data', (d: Buffer) => (out += d.toString()));
  c.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => c.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!out.includes('PROVISIONING')) {
    if (c.exitCode !== null || Date.now() > deadline)
      throw new Error(`The child build did not reach provision:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child: c, output: () => out, exited };
}

async function volumesOfBuilds(): Promise<string[]> {
  const out = await env
    .ec2(BUILD_REGION)
    .send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag-key', Values: ['ami-chroot:build-id'] }] }));
  return (out.Volumes ?? []).map((v) => v.VolumeId!);
}

describe('recovery after a build process dies', () => {
  it('a build killed with SIGKILL during provision is fully recovered by cleanupOrphans', async () => {
    const before = await env.counts();
    const build = await startChildBuild(`killed-${process.pid}`, false);
    build.child.kill('SIGKILL');
    await build.exited;

    // What the killed build left: a mounted chroot with a daemon, a loop device, an attached volume.
    expect(await findLeaks(env.dir)).toMatch(/mounts \[.+\]/);
    expect(await volumesOfBuilds()).toHaveLength(1);

    const sweep = {
      access: {
        region: BUILD_REGION,
        customEndpointEc2: env.moto.endpoint,
        accessKey: 'testing',
        secretKey: 'testing',
      },
      regions: [BUILD_REGION, 'eu-west-1'],
      olderThan: 0,
      stateDir: join(env.dir, 'state'),
      lockDir: join(env.dir, 'lock'),
      hostIdentity: { instanceId: env.instanceId, availabilityZone: env.availabilityZone, region: BUILD_REGION },
      logger: { warn: () => {}, error: () => {} },
    };
    // A dry run says it is one, lists the volume, and removes nothing.
    const preview = await cleanupOrphans({ ...sweep, dryRun: true });
    expect(preview.dryRun).toBe(true);
    expect(preview.removed.map((r) => r.kind)).toContain('volume');
    expect(await volumesOfBuilds()).toHaveLength(1);

    const report = await cleanupOrphans(sweep);
    expect(report.dryRun).toBe(false);
    expect(report.failed).toEqual([]);
    expect(report.host?.recovered.length).toBeGreaterThan(0);
    expect(report.removed.map((r) => r.kind)).toContain('volume');
    expect(await volumesOfBuilds()).toEqual([]);
    expect(await processesUnder(env.dir)).toEqual([]);
    expect(await findLeaks(env.dir)).toBeUndefined();
    await env.assertNothingLeft(before);
  });

  it('with SIGINT wired to the signal, the build cleans up by itself and exits non-zero', async () => {
    const before = await env.counts();
    const build = await startChildBuild(`interrupted-${process.pid}`, true);
    build.child.kill('SIGINT');
    const code = await build.exited;
    expect(code).toBe(130);
    expect(build.output()).toContain('FAILED interrupted (SIGINT)');
    expect(await volumesOfBuilds()).toEqual([]);
    expect(await processesUnder(env.dir)).toEqual([]);
    expect(await findLeaks(env.dir)).toBeUndefined();
    await env.assertNothingLeft(before);
  });

  it('cleanupOrphans never touches the resources of a build that is still running', async () => {
    const build = await startChildBuild(`running-${process.pid}`, true);
    const report = await cleanupOrphans({
      access: {
        region: BUILD_REGION,
        customEndpointEc2: env.moto.endpoint,
        accessKey: 'testing',
        secretKey: 'testing',
      },
      olderThan: 0,
      stateDir: join(env.dir, 'state'),
      lockDir: join(env.dir, 'lock'),
      hostIdentity: { instanceId: env.instanceId, availabilityZone: env.availabilityZone, region: BUILD_REGION },
      logger: { warn: () => {}, error: () => {} },
    });
    expect(report.removed).toEqual([]);
    expect(report.kept.map((k) => k.reason)).toEqual([expect.stringContaining('still running on this host')]);
    expect(report.host?.running.length).toBeGreaterThan(0);
    build.child.kill('SIGINT');
    expect(await build.exited).toBe(130);
  });
});

describe('cleanupOrphans when a removal fails', () => {
  it('reports the failure, removes the rest, and a second sweep finishes the job', async () => {
    const { CreateSnapshotCommand, CreateVolumeCommand } = await import('@aws-sdk/client-ec2');
    const ec2 = env.ec2(BUILD_REGION);
    const tags = [
      { ResourceType: 'volume' as const, Tags: [{ Key: 'ami-chroot:build-id', Value: `dead-${process.pid}` }] },
    ];
    const volume = await ec2.send(
      new CreateVolumeCommand({ AvailabilityZone: env.availabilityZone, Size: 1, TagSpecifications: tags }),
    );
    const snapshot = await ec2.send(
      new CreateSnapshotCommand({
        VolumeId: volume.VolumeId!,
        TagSpecifications: [{ ...tags[0]!, ResourceType: 'snapshot' }],
      }),
    );
    env
      .faults(BUILD_REGION)
      .fail(
        'DeleteVolume',
        { code: 'UnauthorizedOperation', message: 'not allowed (test)', status: 403 },
        { times: 1 },
      );
    const sweep = () =>
      cleanupOrphans({
        ec2: (region: string) => env.ec2(region),
        access: { region: BUILD_REGION },
        buildId: `dead-${process.pid}`,
        olderThan: 0,
        recoverHost: false,
        stateDir: join(env.dir, 'state'),
        hostIdentity: { instanceId: env.instanceId, availabilityZone: env.availabilityZone, region: BUILD_REGION },
        logger: { warn: () => {}, error: () => {} },
      });

    const first = await sweep();
    expect(first.failed.map((f) => [f.kind, f.id])).toEqual([['volume', volume.VolumeId]]);
    expect(first.failed[0]!.error.message).toContain('not allowed');
    expect(first.removed.map((r) => r.id)).toEqual([snapshot.SnapshotId]);

    const second = await sweep();
    expect(second.failed).toEqual([]);
    expect(second.removed.map((r) => r.id)).toEqual([volume.VolumeId]);
    expect(await volumesOfBuilds()).toEqual([]);
  });
});
