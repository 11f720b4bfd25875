/**
 * buildAmi's checks that need EC2 but must come before anything exists (issue 12 items 6 and 13):
 * the test EC2 records every call served, so "nothing created" is what it saw.
 */
import {
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  RegisterImageCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { buildAmi } from '../../src/pipeline/build-ami.js';
import { ConfigError } from '../../src/errors.js';
import type { Phase } from '../../src/errors.js';
import { MOTO_SOURCE_AMIS } from '../helpers/moto.js';
import { BUILD_REGION, E2E_REALISTIC_KNOBS, useE2e } from '../helpers/e2e.js';

const env = useE2e(E2E_REALISTIC_KNOBS);

const creates = async (): Promise<string[]> =>
  (await env.moto.calls()).map((c) => c.action).filter((a) => /^(Create|Register|Copy|Attach)/.test(a));

describe('checks before any resource', () => {
  it('13. a region other than the build host’s is a ConfigError naming both, before anything is created', async () => {
    await env.moto.resetCalls();
    const error = await buildAmi(env.config({ region: 'eu-west-1' }), () => {}, env.options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/region: differs from the build host's region us-east-1/);
    expect(await creates()).toEqual([]);
  });

  it('6. an AMI name taken in a copy region fails before anything is created', async () => {
    const west = env.ec2('eu-west-1');
    const volume = await west.send(new CreateVolumeCommand({ AvailabilityZone: 'eu-west-1a', Size: 1 }));
    const snapshot = await west.send(new CreateSnapshotCommand({ VolumeId: volume.VolumeId! }));
    const name = `taken-${process.pid}`;
    await west.send(
      new RegisterImageCommand({
        Name: name,
        RootDeviceName: '/dev/xvda',
        BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: snapshot.SnapshotId! } }],
      }),
    );
    // An image registered a moment ago may not be listed yet (the realistic preset's stale reads):
    // wait until EC2 lists it, as it would for an image that has existed for a while.
    for (let tries = 0; ; tries++) {
      const listed = await west.send(
        new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: [name] }] }),
      );
      if ((listed.Images ?? []).length > 0) break;
      if (tries > 100) throw new Error(`the test EC2 never listed ${name}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await env.moto.resetCalls();
    const error = await buildAmi(
      env.config({ region: BUILD_REGION, amiName: name, amiRegions: ['eu-west-1'] }),
      () => {},
      env.options(),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/already used by ami-\w+ in eu-west-1/);
    expect(await creates()).toEqual([]);
  });

  it('9. a source billed as RHEL is warned about, naming its billing, before anything is created', async () => {
    const rhel = MOTO_SOURCE_AMIS.rhel.ami_id;
    const warnings: string[] = [];
    let warnedBeforeVolume: boolean | undefined;
    await env.moto.resetCalls();
    const result = await buildAmi(env.config({ sourceAmi: rhel }), () => {}, {
      ...env.options(),
      logger: { warn: (m: string) => void warnings.push(m), error: () => {} },
      hooks: {
        before: (phase: Phase) => {
          if (phase === 'volume') warnedBeforeVolume = warnings.some((w) => w.includes(rhel));
        },
      },
    });
    expect(warnedBeforeVolume).toBe(true);
    const warning = warnings.find((w) => w.includes(rhel))!;
    expect(warning).toContain('Red Hat Enterprise Linux');
    expect(warning).toContain('RunInstances:0010');
    expect(warning).toContain("loses the source's billing code");
    // What the warning says happens: the new image is billed as plain Linux/UNIX.
    const ec2 = env.ec2(BUILD_REGION);
    const imageId = result.images[BUILD_REGION]!;
    const [image] = (await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).Images ?? [];
    expect([image?.PlatformDetails, image?.UsageOperation]).toEqual(['Linux/UNIX', 'RunInstances']);
    await ec2.send(new DeregisterImageCommand({ ImageId: imageId, DeleteAssociatedSnapshots: true }));
  });

  it('9. a plain Linux/UNIX source is not warned about', async () => {
    const warnings: string[] = [];
    const result = await buildAmi(env.config(), () => {}, {
      ...env.options(),
      logger: { warn: (m: string) => void warnings.push(m), error: () => {} },
    });
    expect(warnings.filter((w) => w.includes('billing'))).toEqual([]);
    await env
      .ec2(BUILD_REGION)
      .send(new DeregisterImageCommand({ ImageId: result.images[BUILD_REGION]!, DeleteAssociatedSnapshots: true }));
  });
});
