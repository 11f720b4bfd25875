/**
 * moto's EC2 server for integration tests: a real EC2-compatible endpoint on 127.0.0.1, reached
 * over HTTP by the real SDK (the same path as `customEndpointEc2`).
 *
 * API
 * - `startMoto(options?)` spawns `moto_server -H 127.0.0.1 -p <free port>`, waits until it answers,
 *   and returns `{ endpoint, port, pid, stop() }`. `stop()` kills that PID (TERM, then KILL) and
 *   waits for it to exit; call it in `afterAll`. One server per test file: tests use unique names.
 *   Missing moto_server is an error that says `pip install 'moto[server]'` (tests are never skipped).
 * - The server loads the AMIs of {@link MOTO_SOURCE_AMIS} (through MOTO_AMIS_PATH) in every region,
 *   instead of moto's 884 defaults: startup stays fast, and the source images are realistic
 *   EBS-backed images. Images registered through RegisterImage in moto report a `standard` root
 *   device type (a moto quirk), so they cannot serve as a source; {@link registerImageInMoto} makes
 *   one anyway, e.g. to test that refusal.
 * - `motoEc2(endpoint, region?)` an EC2Client for the server (dummy credentials, few retries).
 * - `startBuildHost(ec2, options?)` RunInstances: the instance that stands in for the build host
 *   (moto's IMDS answers `i-fake`, which EC2 does not know, so tests inject this identity).
 *
 * moto gaps that tests must respect (see other-anchors.md §D): everything is instantly
 * available/completed (slow transitions come from ec2-faults.ts); RegisterImage keeps only the
 * name and description; DetachVolume needs InstanceId; ModifySnapshotAttribute honours only the
 * flat form; EnableImageDeprecation is not implemented (emulate it with ec2-faults.ts `respond`).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateSnapshotCommand, CreateVolumeCommand, EC2Client, RegisterImageCommand, RunInstancesCommand } from '@aws-sdk/client-ec2';

/** A running moto server. */
export interface MotoServer {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** Its port. */
  readonly port: number;
  /** The PID of the moto_server process this helper started. */
  readonly pid: number;
  /** Kills that process and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
}

/** An AMI definition in moto's MOTO_AMIS_PATH format. */
export interface MotoAmi {
  readonly ami_id: string;
  readonly name: string;
  readonly description: string;
  readonly owner_id: string;
  readonly state: 'available';
  readonly public: boolean;
  readonly image_location: string;
  readonly root_device_type: 'ebs' | 'instance-store';
  readonly root_device_name: string;
  readonly architecture: string;
  readonly virtualization_type: string;
  readonly hypervisor: 'xen';
  readonly image_type: 'machine';
  readonly sriov: string;
  readonly boot_mode: string;
  /**
   * Left out on purpose: moto 5.2 parses it in place when it loads a region's images, so the
   * second region that loads them fails (HTTP 500). Images then all date from the server's start.
   */
  readonly creation_date?: string;
}

function ami(id: string, name: string, extra: Partial<MotoAmi> = {}): MotoAmi {
  return {
    ami_id: id,
    name,
    description: `${name} (ami-chroot test source)`,
    owner_id: '136693071363',
    state: 'available',
    public: true,
    image_location: `136693071363/${name}`,
    root_device_type: 'ebs',
    root_device_name: '/dev/xvda',
    architecture: 'x86_64',
    virtualization_type: 'hvm',
    hypervisor: 'xen',
    image_type: 'machine',
    sriov: 'simple',
    boot_mode: 'uefi-preferred',
    ...extra,
  };
}

/**
 * The source images every test server has, in every region. moto gives each a 15 GiB `standard`
 * root snapshot of its own.
 */
export const MOTO_SOURCE_AMIS = {
  /** The newest Debian-like image. */
  debianNew: ami('ami-0deb1200000000002', 'debian-12-amd64-20260301-1700'),
  /** An older one of the same family. */
  debianOld: ami('ami-0deb1200000000001', 'debian-12-amd64-20260101-1200'),
  /** Another architecture of the same family. */
  debianArm: ami('ami-0deb1200000000003', 'debian-12-arm64-20260301-1700', { architecture: 'arm64' }),
  /** An instance-store image, which a chroot build must refuse. */
  instanceStore: ami('ami-0157000000000001', 'legacy-instance-store', { root_device_type: 'instance-store' }),
} as const;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function answers(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1_000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts moto's server on a free loopback port with {@link MOTO_SOURCE_AMIS} loaded.
 * @throws when moto_server is not installed (install it with `pip install 'moto[server]'`)
 */
export async function startMoto(options: { readonly amis?: readonly MotoAmi[]; readonly startTimeoutMs?: number } = {}): Promise<MotoServer> {
  const dir = await mkdtemp(join(tmpdir(), 'ami-chroot-moto-'));
  const amisPath = join(dir, 'amis.json');
  await writeFile(amisPath, JSON.stringify(options.amis ?? Object.values(MOTO_SOURCE_AMIS)));
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
      env: { ...process.env, MOTO_AMIS_PATH: amisPath, MOTO_EC2_LOAD_DEFAULT_AMIS: 'false', PYTHONUNBUFFERED: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4_000);
      // MOTO_LOG=<file> keeps the server's log (tracebacks of moto's 500s) for debugging.
      if (process.env['MOTO_LOG']) appendFileSync(process.env['MOTO_LOG'], chunk);
    });
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
    while (Date.now() < deadline) {
      const failed = await Promise.race([spawnError, new Promise<undefined>((r) => setTimeout(() => r(undefined), 100))]);
      if (failed) {
        await rm(dir, { recursive: true, force: true });
        if ((failed as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new Error("moto_server was not found on PATH: install it with pip install 'moto[server]' (integration tests need it).", { cause: failed });
        }
        throw failed;
      }
      if (child.exitCode !== null) break;
      if (await answers(endpoint)) {
        const pid = child.pid!;
        let stopping: Promise<void> | undefined;
        return {
          endpoint,
          port,
          pid,
          stop: () =>
            (stopping ??= (async () => {
              if (child.exitCode === null && child.signalCode === null) {
                child.kill('SIGTERM');
                const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
                await exited(child);
                clearTimeout(killer);
              }
              await rm(dir, { recursive: true, force: true });
            })()),
        };
      }
    }
    // Did not come up (port taken, or too slow): make sure it is gone, then retry on another port.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited(child);
    }
    lastError = new Error(`moto_server did not answer on ${endpoint}; its stderr:\n${stderr}`);
  }
  await rm(dir, { recursive: true, force: true });
  throw lastError ?? new Error('moto_server did not start');
}

/** An EC2 client for the moto server (dummy credentials, a couple of retries). */
export function motoEc2(endpoint: string, region = 'us-east-1'): EC2Client {
  return new EC2Client({
    region,
    endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 2,
  });
}

/** The build host stand-in: a running instance in `availabilityZone`. */
export async function startBuildHost(
  ec2: EC2Client,
  options: { readonly imageId?: string; readonly availabilityZone?: string } = {},
): Promise<{ instanceId: string; availabilityZone: string }> {
  const availabilityZone = options.availabilityZone ?? `${await ec2.config.region()}a`;
  const out = await ec2.send(
    new RunInstancesCommand({
      ImageId: options.imageId ?? MOTO_SOURCE_AMIS.debianNew.ami_id,
      MinCount: 1,
      MaxCount: 1,
      InstanceType: 't3.micro',
      Placement: { AvailabilityZone: availabilityZone },
    }),
  );
  const instanceId = out.Instances?.[0]?.InstanceId;
  if (!instanceId) throw new Error('RunInstances returned no instance');
  return { instanceId, availabilityZone };
}

/**
 * Registers an image the way a user would (volume, snapshot, RegisterImage). moto reports its root
 * device type as `standard`, so it is not a usable chroot source.
 */
export async function registerImageInMoto(ec2: EC2Client, name: string): Promise<{ imageId: string; snapshotId: string }> {
  const region = await ec2.config.region();
  const volume = await ec2.send(new CreateVolumeCommand({ AvailabilityZone: `${region}a`, Size: 8, VolumeType: 'gp3' }));
  const snapshot = await ec2.send(new CreateSnapshotCommand({ VolumeId: volume.VolumeId! }));
  const image = await ec2.send(
    new RegisterImageCommand({
      Name: name,
      RootDeviceName: '/dev/xvda',
      Architecture: 'x86_64',
      VirtualizationType: 'hvm',
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: snapshot.SnapshotId!, VolumeSize: 8, VolumeType: 'gp3' } }],
    }),
  );
  return { imageId: image.ImageId!, snapshotId: snapshot.SnapshotId! };
}
