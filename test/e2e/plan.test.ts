/**
 * planBuild against the test EC2: the plan lists buildAmi's requests in order with the resolved
 * parameters, the server's call log shows that only reads were made, the device reservation is
 * gone afterwards, and a name already used in a copy region is reported, not thrown.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CopyImageCommand, DeregisterImageCommand } from '@aws-sdk/client-ec2';
import { formatPlan, planBuild } from '../../src/pipeline/plan.js';
import type { PlanBuildOptions } from '../../src/pipeline/plan.js';
import { ConfigError } from '../../src/errors.js';
import type { BuildConfig } from '../../src/config/types.js';
import { BUILD_REGION, COPY_REGIONS, useE2e } from '../helpers/e2e.js';
import { MOTO_SOURCE_AMIS } from '../helpers/moto.js';

const MUTATING = /^(Create|Register|Copy|Attach|Modify|Delete|Deregister|Detach|Enable|Disable|Run|Put|Start|Complete)/;

const env = useE2e();

/** planBuild's options: the e2e wiring without what only a real build uses. */
function planOptions(): PlanBuildOptions {
  const o = env.options();
  return { hostIdentity: o.hostIdentity!, ec2: o.ec2!, devRoot: o.devRoot!, logger: o.logger! };
}

describe('planBuild against the test EC2', () => {
  it('lists the build requests in order with their parameters, and makes only reads', async () => {
    const before = await env.counts();
    await env.moto.resetCalls();
    const source = MOTO_SOURCE_AMIS.debianNew;
    const config = env.config({
      amiName: `plan-${process.pid}-{{.SourceAMIName}}`,
      amiRegions: [...COPY_REGIONS],
      amiUsers: ['111122223333'],
      amiDescription: 'from {{.SourceAMIName}}',
      snapshotCopyDurationMinutes: 15,
      tags: { Base: '{{.SourceAMI}}', Region: '{{.BuildRegion}}' },
      rootVolumeTags: { Purpose: 'work volume of {{.SourceAMIName}}' },
    });

    const plan = await planBuild(config, planOptions());

    const served = await env.moto.calls();
    expect(served.length).toBeGreaterThan(0);
    expect(served.filter((c) => MUTATING.test(c.action)).map((c) => c.action)).toEqual([]);
    expect(new Set(served.map((c) => c.action))).toEqual(
      new Set(['DescribeImages', 'DescribeImageAttribute', 'DescribeRegions', 'DescribeInstances']),
    );
    expect(plan.awsCalls).toBe(served.length);
    expect(await env.counts()).toEqual(before);
    // The device was reserved for the choice only.
    const reservations = await readdir(join(env.dir, 'lock')).catch(() => [] as string[]);
    expect(reservations.filter((n) => !n.endsWith('.lock') && n !== 'allocate')).toEqual([]);

    expect(plan.source?.imageId).toBe(source.ami_id);
    expect(plan.name).toBe(`plan-${process.pid}-${plan.source!.name}`);
    expect(plan.tags).toEqual({ Base: source.ami_id, Region: BUILD_REGION });
    expect(plan.volumeTags).toEqual({ Purpose: `work volume of ${plan.source!.name}` });
    expect(plan.copyRegions).toEqual([...COPY_REGIONS]);
    expect(plan.attachmentName).toMatch(/^\/dev\/sd[f-p]$/);
    expect(plan.problems).toEqual([]);

    expect(plan.requests.map((r) => `${r.action} ${r.region}`)).toEqual([
      `DescribeImages ${BUILD_REGION}`,
      `DescribeImageAttribute ${BUILD_REGION}`,
      `DescribeRegions ${BUILD_REGION}`,
      `DescribeImages ${BUILD_REGION}`,
      `DescribeImages ${COPY_REGIONS[0]}`,
      `DescribeImages ${COPY_REGIONS[1]}`,
      `CreateVolume ${BUILD_REGION}`,
      `DescribeInstances ${BUILD_REGION}`,
      `AttachVolume ${BUILD_REGION}`,
      `DetachVolume ${BUILD_REGION}`,
      `CreateSnapshot ${BUILD_REGION}`,
      `RegisterImage ${BUILD_REGION}`,
      `ModifyImageAttribute ${BUILD_REGION}`,
      `CopyImage ${COPY_REGIONS[0]}`,
      `ModifyImageAttribute ${COPY_REGIONS[0]}`,
      `CopyImage ${COPY_REGIONS[1]}`,
      `ModifyImageAttribute ${COPY_REGIONS[1]}`,
      `DeleteVolume ${BUILD_REGION}`,
    ]);
    const byAction = (action: string) => plan.requests.find((r) => r.action === action)!;
    expect(byAction('CreateVolume').params).toMatchObject({
      AvailabilityZone: env.availabilityZone,
      SnapshotId: plan.source!.rootSnapshotId,
    });
    expect(byAction('AttachVolume').params).toEqual({
      VolumeId: '<volume>',
      InstanceId: env.instanceId,
      Device: plan.attachmentName,
    });
    expect(byAction('RegisterImage').params).toMatchObject({ Name: plan.name, RootDeviceName: '/dev/xvda' });
    // The copy's request is the one copyToRegions sends (copyImageRequest), tags aside.
    expect(byAction('CopyImage').params).toEqual({
      SourceImageId: '<image>',
      SourceRegion: BUILD_REGION,
      Name: plan.name,
      Description: plan.description,
      SnapshotCopyCompletionDurationMinutes: 15,
    });
    expect(byAction('ModifyImageAttribute').params).toMatchObject({
      LaunchPermission: { Add: [{ UserId: '111122223333' }] },
    });
    expect(plan.requests.filter((r) => !r.mutating).map((r) => r.action)).toEqual(
      expect.arrayContaining(['DescribeImages', 'DescribeRegions', 'DescribeInstances']),
    );

    const text = formatPlan(plan);
    expect(text).toContain(`AMI name:       ${plan.name}`);
    expect(text).toContain(`Attachment:     ${plan.attachmentName}`);
    expect(text).toMatch(/\n\d+\s+\*\s+volume\s+CreateVolume\s+us-east-1\s+.*AvailabilityZone=/);
    expect(text).toContain('No problem found: the build would start.');
  });

  it('reports a name already used in a copy region, and every other clash, without throwing', async () => {
    const name = `plan-clash-${process.pid}`;
    const copyRegion = COPY_REGIONS[1];
    const ec2 = env.ec2(copyRegion);
    const existing = await ec2.send(
      new CopyImageCommand({
        SourceImageId: MOTO_SOURCE_AMIS.debianNew.ami_id,
        SourceRegion: BUILD_REGION,
        Name: name,
      }),
    );
    try {
      await env.moto.resetCalls();
      const plan = await planBuild(env.config({ amiName: name, amiRegions: [...COPY_REGIONS] }), planOptions());
      expect(plan.problems).toEqual([
        expect.objectContaining({
          path: 'amiName',
          value: name,
          message: expect.stringContaining(`is already used by ${existing.ImageId} in ${copyRegion}`),
        }),
      ]);
      expect((await env.moto.calls()).filter((c) => MUTATING.test(c.action))).toEqual([]);
      const text = formatPlan(plan);
      expect(text).toContain('The build would fail before creating anything (1 problem):');
      expect(text).toContain(`in ${copyRegion}`);
    } finally {
      await ec2.send(new DeregisterImageCommand({ ImageId: existing.ImageId! }));
    }
  });

  it('throws a ConfigError for an invalid config before any AWS call', async () => {
    await env.moto.resetCalls();
    const bad = { ...env.config(), amiNmae: 'typo' } as BuildConfig;
    await expect(planBuild(bad, planOptions())).rejects.toThrow(ConfigError);
    await expect(planBuild(bad, planOptions())).rejects.toThrow(/amiNmae/);
    expect(await env.moto.calls()).toEqual([]);
  });
});
