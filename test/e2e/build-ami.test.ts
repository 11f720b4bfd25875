import { describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeleteVolumeCommand,
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DetachVolumeCommand,
} from '@aws-sdk/client-ec2';
import { buildAmi } from '../../src/pipeline/build-ami.js';
import type { ProgressEvent } from '../../src/types.js';
import { AmiChrootError, ConfigError, ProvisionError } from '../../src/errors.js';
import { run } from '../../src/host/exec.js';
import { partitionPath } from '../../src/host/resolve-device.js';
import { BUILD_REGION, COPY_REGIONS, useE2e } from '../helpers/e2e.js';
import { MOTO_SOURCE_AMIS } from '../helpers/moto.js';
import { findLeaks, forceCleanup } from '../helpers/loop.js';

const env = useE2e();

/** Mounts a partition read-only in a temp dir and reads files from it. */
async function readFromDevice(device: string, files: readonly string[]): Promise<Record<string, string>> {
  const dir = await mkdtemp(join(tmpdir(), 'ami-chroot-verify-'));
  try {
    await run('mount', ['-o', 'ro', partitionPath(device, '1'), dir]);
    try {
      const out: Record<string, string> = {};
      for (const f of files) out[f] = await readFile(join(dir, f), 'utf8').catch(() => '<missing>');
      return out;
    } finally {
      await run('umount', [dir]);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('buildAmi end to end (moto + loop devices)', () => {
  it('builds an image in every requested region with the right requests, and leaves only the images', async () => {
    const events: ProgressEvent[] = [];
    const before = await env.counts();
    const result = await buildAmi(
      env.config({
        amiRegions: [...COPY_REGIONS],
        amiDescription: 'built from {{.SourceAMIName}} in {{.BuildRegion}}',
        amiUsers: ['111122223333'],
        amiGroups: ['all'],
        snapshotUsers: ['111122223333'],
        tags: { Name: '{{.SourceAMIName}}', Base: '{{.SourceAMI}}' },
        snapshotTags: { Kind: 'root' },
        rootVolumeTags: { Purpose: 'build' },
        // A public AMI: EC2 deprecates it at most 2 years ahead.
        deprecateAt: `${new Date().getUTCFullYear() + 1}-01-01T00:00:00Z`,
        enaSupport: true,
      }),
      async (chroot, build) => {
        await chroot.writeFile('/etc/motd', `built by ami-chroot from ${build.packer.SourceAMIName}\n`);
        await chroot.sh('echo provisioned > /root/marker && mkdir -p /var/lib/app && id -u > /var/lib/app/uid');
        // A stray daemon that the unmount must stop.
        await chroot.sh('sleep 600 >/dev/null 2>&1 &');
      },
      env.options({ onProgress: (e) => events.push(e) }),
    );

    expect(Object.keys(result.images).sort()).toEqual([BUILD_REGION, ...COPY_REGIONS].sort());
    for (const [region, id] of Object.entries(result.images)) {
      const out = await env.ec2(region).send(new DescribeImagesCommand({ ImageIds: [id] }));
      expect(out.Images?.[0]?.Name).toBe(result.name);
      expect(out.Images?.[0]?.State).toBe('available');
      const perms = await env
        .ec2(region)
        .send(new DescribeImageAttributeCommand({ ImageId: id, Attribute: 'launchPermission' }));
      expect(perms.LaunchPermissions).toEqual(expect.arrayContaining([{ UserId: '111122223333' }, { Group: 'all' }]));
    }
    expect(result.sourceImage?.imageId).toBe(MOTO_SOURCE_AMIS.debianNew.ami_id);
    expect(result.awsCalls).toBeGreaterThan(10);
    for (const phase of [
      'identity',
      'source',
      'volume',
      'attach',
      'mount',
      'provision',
      'unmount',
      'detach',
      'register',
      'copy',
    ] as const) {
      expect(result.timings[phase], phase).toBeGreaterThanOrEqual(0);
    }

    // moto keeps only name and description of RegisterImage: assert what we asked for.
    const faults = env.faults(BUILD_REGION);
    const register = faults.inputsOf('RegisterImage').at(-1)!;
    expect(register).toMatchObject({
      Name: result.name,
      Description: `built from ${MOTO_SOURCE_AMIS.debianNew.name} in ${BUILD_REGION}`,
      EnaSupport: true,
      VirtualizationType: 'hvm',
      Architecture: 'x86_64',
    });
    const mappings = register['BlockDeviceMappings'] as {
      DeviceName: string;
      Ebs?: { SnapshotId?: string; Encrypted?: boolean };
    }[];
    const snapshotId = result.snapshots[BUILD_REGION]![0]!;
    expect(mappings.find((m) => m.DeviceName === register['RootDeviceName'])?.Ebs?.SnapshotId).toBe(snapshotId);
    expect(mappings.every((m) => m.Ebs?.Encrypted === undefined)).toBe(true);
    const tagSpecs = register['TagSpecifications'] as {
      ResourceType: string;
      Tags: { Key: string; Value: string }[];
    }[];
    expect(tagSpecs.find((t) => t.ResourceType === 'image')?.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'Name', Value: MOTO_SOURCE_AMIS.debianNew.name },
        { Key: 'Base', Value: MOTO_SOURCE_AMIS.debianNew.ami_id },
        { Key: 'ami-chroot:build-id', Value: result.buildId },
      ]),
    );
    const volumeTags = (
      faults.inputsOf('CreateVolume').at(-1)!['TagSpecifications'] as { Tags: { Key: string; Value: string }[] }[]
    )[0]!.Tags;
    expect(volumeTags).toEqual(
      expect.arrayContaining([
        { Key: 'Purpose', Value: 'build' },
        { Key: 'ami-chroot:build-id', Value: result.buildId },
      ]),
    );
    const snapTags = (
      faults.inputsOf('CreateSnapshot').at(-1)!['TagSpecifications'] as { Tags: { Key: string; Value: string }[] }[]
    )[0]!.Tags;
    expect(snapTags).toEqual(expect.arrayContaining([{ Key: 'Kind', Value: 'root' }]));
    expect(faults.inputsOf('DetachVolume').at(-1)).toMatchObject({ InstanceId: env.instanceId });
    expect(faults.inputsOf('ModifySnapshotAttribute').at(-1)).toMatchObject({
      CreateVolumePermission: { Add: [{ UserId: '111122223333' }] },
    });
    for (const region of [BUILD_REGION, ...COPY_REGIONS]) {
      expect(
        env
          .faults(region)
          .inputsOf('EnableImageDeprecation')
          .map((i) => i['ImageId']),
      ).toContain(result.images[region]);
    }
    for (const region of COPY_REGIONS) {
      expect(env.faults(region).inputsOf('CopyImage').at(-1)).toMatchObject({
        SourceImageId: result.images[BUILD_REGION],
        SourceRegion: BUILD_REGION,
        Name: result.name,
      });
    }

    // The work volume is gone; the images and their snapshots are all that is left.
    const after = await env.counts();
    expect(after[BUILD_REGION]!.volumes).toBe(before[BUILD_REGION]!.volumes);

    // The image content: what provision wrote, and the image's own resolv.conf back in place.
    const loop = env.loops.at(-1)!;
    const files = await readFromDevice(loop.device, ['etc/motd', 'root/marker', 'var/lib/app/uid', 'etc/resolv.conf']);
    expect(files['etc/motd']).toBe(`built by ami-chroot from ${MOTO_SOURCE_AMIS.debianNew.name}\n`);
    expect(files['root/marker']).toBe('provisioned\n');
    expect(files['var/lib/app/uid']).toBe('0\n');
    expect(files['etc/resolv.conf']).toContain("the image's own resolv.conf");

    // Events: phases in order, resources created, and cleanup of the volume.
    const starts = events.filter((e) => e.type === 'phase-start').map((e) => (e as { phase: string }).phase);
    // Validation runs once (the AWS checks are their own phase), and every emitted phase is timed.
    expect(starts.filter((p) => p === 'validate')).toEqual(['validate']);
    expect(starts).toContain('preflight');
    expect(Object.keys(result.timings).sort()).toEqual([...new Set(starts)].sort());
    expect(starts.indexOf('provision')).toBeLessThan(starts.indexOf('register'));
    // The mount's own steps are phases too, between the mount's start and the provisioning.
    const mountSteps = ['pre-mount', 'post-mount', 'chroot-mounts', 'copy-files', 'service-guard'];
    expect(starts.slice(starts.indexOf('mount') + 1, starts.indexOf('provision'))).toEqual(mountSteps);
    expect(starts.indexOf('unmount')).toBeLessThan(
      starts.indexOf('snapshot') === -1 ? starts.indexOf('register') : starts.indexOf('snapshot'),
    );
  });

  it('emits every phase it passes through, with its hooks and its timing, in order', async () => {
    const first = await buildAmi(env.config({ amiName: `phases-${process.pid}` }), () => {}, env.options());
    await env.afterEach();
    const events: string[] = [];
    const hooks: string[] = [];
    const result = await buildAmi(
      env.config({
        amiName: first.name,
        forceDeregister: true,
        encryptBoot: true,
        amiRegions: [COPY_REGIONS[0]],
        amiProductCodes: ['abc123'],
        deprecateAt: `${new Date().getUTCFullYear() + 1}-01-01T00:00:00Z`,
        deregistrationProtection: { enabled: true },
      }),
      () => {},
      env.options({
        onProgress: (e) => {
          if (e.type === 'phase-start') events.push(`start ${e.phase}`);
          if (e.type === 'phase-end') events.push(`end ${e.phase}`);
        },
        hooks: {
          before: (phase) => void hooks.push(`before ${phase}`),
          after: (phase) => void hooks.push(`after ${phase}`),
        },
      }),
    );
    const mountSteps = ['pre-mount', 'post-mount', 'chroot-mounts', 'copy-files', 'service-guard'];
    const flat = (phase: string): string[] => [`start ${phase}`, `end ${phase}`];
    expect(events).toEqual([
      ...['validate', 'identity', 'source', 'preflight', 'volume', 'attach'].flatMap(flat),
      'start mount',
      ...mountSteps.flatMap(flat),
      'end mount',
      ...['provision', 'unmount', 'detach'].flatMap(flat),
      // The registration's own steps, then the copy; deregistration protection comes last.
      ...['snapshot', 'deregister', 'register', 'encrypt', 'permissions', 'deprecate', 'copy', 'permissions'].flatMap(
        flat,
      ),
    ]);
    // Hooks fire around every emitted phase (a hook of a nested step runs inside its parent's).
    expect(hooks).toEqual(events.map((e) => e.replace(/^start /, 'before ').replace(/^end /, 'after ')));
    expect(Object.keys(result.timings).sort()).toEqual([...new Set(events.map((e) => e.split(' ')[1]))].sort());
    for (const [phase, ms] of Object.entries(result.timings)) expect(ms, phase).toBeGreaterThanOrEqual(0);
    // forceDeregister removed the first build's image; the new one is encrypted.
    const images = await env
      .ec2(BUILD_REGION)
      .send(new DescribeImagesCommand({ Filters: [{ Name: 'name', Values: [first.name] }] }));
    expect(images.Images?.map((i) => i.ImageId)).toEqual([result.images[BUILD_REGION]]);
  });

  it('a hook failing after deregistration protection still leaves nothing behind', async () => {
    const before = await env.counts();
    let permissions = 0;
    const error = await buildAmi(
      env.config({ amiRegions: [COPY_REGIONS[0]], deregistrationProtection: { enabled: true } }),
      () => {},
      env.options({
        hooks: {
          // Without sharing, the only permissions step is the protection, the build's last.
          after: (phase) => {
            if (phase === 'permissions' && ++permissions === 1) throw new Error('refused after protection');
          },
        },
      }),
    ).catch((e: unknown) => e);
    expect((error as Error).message).toBe('refused after protection');
    expect((error as AmiChrootError).cleanupErrors ?? []).toEqual([]);
    await env.assertNothingLeft(before);
  });

  it('rejects a bad configuration before touching AWS or the host', async () => {
    const before = env.faults(BUILD_REGION).calls.length;
    const error = await buildAmi({ ...env.config(), amiName: 'x', rootVolumeSize: -3 }, () => {}, env.options()).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.path)).toEqual(
      expect.arrayContaining(['amiName', 'rootVolumeSize']),
    );
    expect(env.faults(BUILD_REGION).calls.length).toBe(before);
    expect(env.loops).toHaveLength(0);
  });

  it('refuses an AMI name that is taken, before creating anything', async () => {
    const first = await buildAmi(env.config({ amiName: `taken-${process.pid}` }), () => {}, env.options());
    await env.afterEach();
    const before = await env.counts();
    const error = await buildAmi(env.config({ amiName: first.name }), () => {}, env.options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(first.images[BUILD_REGION]);
    expect(env.faults(BUILD_REGION).names()).not.toContain('CreateVolume');
    await env.assertNothingLeft(before);
  });

  it('a provision that throws fails the build in phase provision and leaves nothing behind', async () => {
    const before = await env.counts();
    const error = await buildAmi(
      env.config({ amiRegions: [...COPY_REGIONS] }),
      async (chroot) => {
        await chroot.sh('sleep 600 &');
        throw new Error('apt-get failed');
      },
      env.options(),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProvisionError);
    expect((error as AmiChrootError).phase).toBe('provision');
    expect(((error as Error).cause as Error).message).toBe('apt-get failed');
    expect(env.faults(BUILD_REGION).names()).toEqual(expect.arrayContaining(['DetachVolume', 'DeleteVolume']));
    expect(env.faults(BUILD_REGION).names()).not.toContain('CreateSnapshot');
    await env.assertNothingLeft(before);
  });

  it('a failure after registration removes the image, its snapshots and the region copies', async () => {
    const before = await env.counts();
    env.faults('ap-southeast-2').fail('CopyImage', { code: 'InvalidParameterValue', message: 'no such key' });
    const error = await buildAmi(env.config({ amiRegions: [...COPY_REGIONS] }), () => {}, env.options()).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AmiChrootError);
    expect((error as AmiChrootError).phase).toBe('copy');
    expect(env.faults(BUILD_REGION).names()).toContain('DeregisterImage');
    expect(env.faults('eu-west-1').names()).toContain('DeregisterImage');
    await env.assertNothingLeft(before);
  });
});

describe('buildAmi from scratch (moto + a blank loop device)', () => {
  it('partitions and formats a blank volume, provisions it, and registers it with the given mappings', async () => {
    const { open } = await import('node:fs/promises');
    const { attachLoop } = await import('../../src/host/loop.js');
    const before = await env.counts();
    // From scratch there is no source: drop the harness's default sourceAmi.
    const { sourceAmi: _unused, ...base } = env.config();
    const result = await buildAmi(
      {
        ...base,
        fromScratch: true,
        amiVirtualizationType: 'hvm',
        amiArchitecture: 'arm64',
        rootVolumeSize: 8,
        rootDeviceName: '/dev/xvda',
        amiBlockDeviceMappings: [{ deviceName: '/dev/xvda', deleteOnTermination: true, volumeType: 'gp3' }],
        // Loop devices get partition nodes from partx, not from the kernel, on these hosts.
        preMountCommands: [
          "printf 'label: dos\\n,,L\\n' | sfdisk -q {{.Device}}",
          'partx -u {{.Device}}',
          'mkfs.ext4 -q {{.Device}}p1',
        ],
      },
      async (chroot) => {
        await chroot.writeFile('/etc/hostname', 'scratch\n', { mkdirs: true });
      },
      env.options({
        resolveDevice: async ({ volumeId }) => {
          const file = join(env.dir, `${volumeId}.img`);
          const handle = await open(file, 'w');
          await handle.truncate(64 * 1024 * 1024);
          await handle.close();
          const loop = await attachLoop({ file, stateDir: false });
          env.loops.push(loop);
          return loop.device;
        },
      }),
    );
    expect(result.sourceImage).toBeUndefined();
    const faults = env.faults(BUILD_REGION);
    expect(faults.inputsOf('CreateVolume').at(-1)).toMatchObject({ Size: 8, VolumeType: 'gp2' });
    expect(faults.inputsOf('CreateVolume').at(-1)).not.toHaveProperty('SnapshotId');
    const register = faults.inputsOf('RegisterImage').at(-1)!;
    expect(register).toMatchObject({
      Architecture: 'arm64',
      VirtualizationType: 'hvm',
      RootDeviceName: '/dev/xvda',
      BlockDeviceMappings: [
        {
          DeviceName: '/dev/xvda',
          Ebs: {
            DeleteOnTermination: true,
            VolumeType: 'gp3',
            VolumeSize: 8,
            SnapshotId: result.snapshots[BUILD_REGION]![0],
          },
        },
      ],
    });
    const files = await readFromDevice(env.loops.at(-1)!.device, ['etc/hostname']);
    expect(files['etc/hostname']).toBe('scratch\n');
    expect((await env.counts())[BUILD_REGION]!.volumes).toBe(before[BUILD_REGION]!.volumes);
  });
});

describe('buildAmi options that change what is kept', () => {
  it('skipSaveBuildRegion copies to the other regions and keeps no image in the build region', async () => {
    const before = await env.counts();
    const result = await buildAmi(
      env.config({ amiRegions: ['eu-west-1'], skipSaveBuildRegion: true, amiUsers: ['111122223333'] }),
      () => {},
      env.options(),
    );
    expect(Object.keys(result.images)).toEqual(['eu-west-1']);
    const after = await env.counts();
    expect(after[BUILD_REGION]!.images).toBe(before[BUILD_REGION]!.images);
    expect(after['eu-west-1']!.images).toBe(before['eu-west-1']!.images + 1);
    const registered = env.faults(BUILD_REGION).inputsOf('RegisterImage').at(-1)!;
    expect(registered['Name']).toMatch(/^ami-chroot-intermediary-[0-9a-f]{10}$/);
    expect(env.faults('eu-west-1').inputsOf('CopyImage').at(-1)).toMatchObject({ Name: result.name });
    // Sharing goes to the copies, not to the temporary image.
    expect(env.faults(BUILD_REGION).names()).not.toContain('ModifyImageAttribute');
    expect(env.faults('eu-west-1').names()).toContain('ModifyImageAttribute');
    expect(env.faults(BUILD_REGION).names()).toContain('DeregisterImage');
  });

  it('keepOnError leaves the volume attached and mounted after a failure, and says so', async () => {
    const warnings: string[] = [];
    const error = await buildAmi(
      env.config({ keepOnError: true }),
      () => {
        throw new Error('inspect me');
      },
      env.options({ logger: { warn: (m: string) => warnings.push(m), error: () => {} } }),
    ).catch((e: unknown) => e);
    expect((error as Error).message).toContain('inspect me');
    expect(warnings.join('\n')).toMatch(/keepOnError[\s\S]*delete volume vol-[\s\S]*unmount /);
    expect(
      await findLeaks(
        env.dir,
        env.loops.map((l) => l.device),
      ),
    ).toMatch(/mounts \[.+\]/);
    const volumeId = env.faults(BUILD_REGION).inputsOf('AttachVolume').at(-1)!['VolumeId'] as string;
    expect(env.faults(BUILD_REGION).names()).not.toContain('DeleteVolume');
    // The letter stays reserved while the kept volume is attached.
    expect(await readdir(join(env.dir, 'lock'))).toContain('sdf.reservation');
    // The test's own cleanup of what was kept.
    await forceCleanup(join(env.dir, 'mnt'));
    await env.ec2(BUILD_REGION).send(new DetachVolumeCommand({ VolumeId: volumeId, InstanceId: env.instanceId }));
    await env.ec2(BUILD_REGION).send(new DeleteVolumeCommand({ VolumeId: volumeId }));
    await rm(join(env.dir, 'state'), { recursive: true, force: true });
    await rm(join(env.dir, 'lock', 'sdf.reservation'), { force: true });
  });

  it('keepOnError does not keep anything when the build is aborted, whatever the reason', async () => {
    const before = await env.counts();
    const controller = new AbortController();
    const error = await buildAmi(
      env.config({ keepOnError: true }),
      async (chroot) => {
        setTimeout(() => controller.abort(new Error('Interrupted')), 100);
        await chroot.sh('sleep 60');
      },
      env.options({ signal: controller.signal }),
    ).catch((e: unknown) => e);
    expect((error as Error).message).toBe('Interrupted');
    await env.assertNothingLeft(before);
  });
});
