/**
 * The ami-chroot demo: a real chroot AMI build, end to end, on this machine, with no AWS account.
 *
 *   npm install && sudo npm run demo
 *
 * It starts moto's EC2 server on 127.0.0.1 as the EC2 endpoint, makes a small partitioned ext4
 * disk image with a static busybox root, and runs the real `buildAmi`: source AMI, work volume,
 * attach (the device resolver maps the attached volume to a loop device over a copy of that disk
 * image, as a Nitro host maps it to /dev/nvme1n1), mounts, a TypeScript provision callback that
 * writes files, runs commands inside the chroot and leaves a stray background process behind,
 * unmount, detach, snapshot, register, and a copy to a second region. Then it checks its own
 * result: the images in moto, the requests sent, the image's content, and that nothing is left
 * behind. Then the same provisioning through `buildImage`, which makes a raw disk image file.
 *
 * Needs Linux, root, loop devices, busybox-static, moto_server, sfdisk and mkfs.ext4; it says
 * what is missing before doing anything. Exit code 0 only if every check passed. Everything it
 * creates lives in one temp directory and is removed at the end, also on failure and on Ctrl-C.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, constants, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DescribeImagesCommand, DescribeVolumesCommand } from '@aws-sdk/client-ec2';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { buildImage, buildAmi, createProgressRenderer } from '../src/index.js';
import type { Chroot } from '../src/index.js';
import { BUILD_ID_TAG } from '../src/aws/index.js';
import { attachLoop, unmountTree } from '../src/host/index.js';
import type { LoopDevice } from '../src/host/index.js';
import { IMAGE_RESOLV_CONF, makeBusyboxImage } from '../fixtures/busybox-image.js';
import { MOTO_SOURCE_AMIS, motoEc2, startBuildHost, startMoto } from '../fixtures/moto.js';
import type { MotoServer } from '../fixtures/moto.js';

const BUILD_REGION = 'us-east-1';
const COPY_REGION = 'eu-west-1';
const tty = process.stdout.isTTY === true;
const c = {
  bold: (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s),
  dim: (s: string) => (tty ? `\x1b[2m${s}\x1b[0m` : s),
  green: (s: string) => (tty ? `\x1b[32m${s}\x1b[0m` : s),
  red: (s: string) => (tty ? `\x1b[31m${s}\x1b[0m` : s),
};

// --- Ctrl-C: the two lines every build script wants --------------------------------------
// The build stops at once and cleans up. `on`, not `once`: a terminal Ctrl-C can arrive twice
// (from the terminal and relayed by npm/tsx), and a second, unhandled one would kill the process
// in the middle of its cleanup.

const controller = new AbortController();
for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => controller.abort(new Error(`Interrupted by ${s}`)));

let work = '';
let moto: MotoServer | undefined;
const clients = new Map<string, EC2Client>();
const loops: LoopDevice[] = [];

/** Preflight, the demo, and a teardown that always runs; returns the exit code. */
async function main(): Promise<number> {
  // Say exactly what is missing, before touching anything.
  const missing = await preflight();
  if (missing.length > 0) {
    console.error(c.bold('The demo cannot run here yet:'));
    for (const line of missing) console.error(`  ${c.red('✗')} ${line}`);
    return 1;
  }
  work = await mkdtemp(join(tmpdir(), 'ami-chroot-demo-'));
  const checks = new Checks();
  try {
    await runDemo(checks);
    return checks.failed === 0 ? 0 : 1;
  } catch (error) {
    if (controller.signal.aborted) {
      console.error(`\n${c.red('Interrupted')}: the build cleaned up after itself; removing the demo's own setup.`);
      return 130;
    }
    console.error(`\n${c.red('The demo failed:')} ${error instanceof Error ? error.message : String(error)}`);
    for (const e of (error as { cleanupErrors?: Error[] }).cleanupErrors ?? [])
      console.error(`  cleanup also failed: ${e.message}`);
    return 1;
  } finally {
    await teardown();
  }
}

// --- The demo ----------------------------------------------------------------------------

async function runDemo(checks: Checks): Promise<void> {
  const signal = controller.signal;
  const started = performance.now();

  // Setup: moto as the EC2 endpoint, an instance standing in for the build host, a source disk.
  step('Starting moto_server on 127.0.0.1 (the EC2 endpoint)');
  moto = await startMoto();
  signal.throwIfAborted();
  const ec2 = (region: string): EC2Client => {
    let client = clients.get(region);
    if (!client) {
      client = motoEc2(moto!.endpoint, region);
      recordCalls(client, region);
      clients.set(region, client);
    }
    return client;
  };
  const host = await startBuildHost(ec2(BUILD_REGION));
  const baseImage = join(work, 'base.img');
  await makeBusyboxImage(baseImage, { sizeMiB: 64, tmpDir: work });
  const baseHash = await sha256(baseImage);
  done(`moto at ${moto.endpoint}, build host ${host.instanceId}, source disk ${baseImage} (busybox, 64 MiB)`);
  signal.throwIfAborted();

  // ---- Part 1: buildAmi ----
  console.log(
    `\n${c.bold('1. buildAmi')}: ${MOTO_SOURCE_AMIS.debianNew.name} → a new AMI in ${BUILD_REGION}, copied to ${COPY_REGION}`,
  );
  const stateDir = join(work, 'state');
  let strayPid = 0;
  let volumeId = '';
  const printer = createProgressRenderer();
  const result = await buildAmi(
    {
      region: BUILD_REGION,
      sourceAmi: MOTO_SOURCE_AMIS.debianNew.ami_id,
      amiName: 'ami-chroot-demo {{timestamp}}',
      amiDescription: 'ami-chroot demo from {{ .SourceAMIName }}',
      amiRegions: [COPY_REGION],
      tags: { Name: 'ami-chroot demo', Base: '{{ .SourceAMIName }}' },
      mountPath: join(work, 'mnt', '{{.Device}}'),
      lockDir: join(work, 'lock'),
    },
    async (chroot, build) => {
      strayPid = await provisionDemo(chroot, `an AMI built from ${build.packer.SourceAMIName}`);
    },
    {
      signal,
      // Injected clients: the library takes any EC2Client (here moto's, with a call recorder).
      ec2,
      // moto's instance metadata is a stub, so the build host is given rather than read from IMDS.
      hostIdentity: { instanceId: host.instanceId, availabilityZone: host.availabilityZone, region: BUILD_REGION },
      // moto attached the volume; on this host it is a loop device over a copy of the source disk.
      resolveDevice: async ({ volumeId: id }) => {
        const file = join(work, `${id}.img`);
        await execFileP('cp', ['--sparse=always', baseImage, file]);
        const loop = await attachLoop({ file, stateDir: false });
        loops.push(loop);
        return loop.device;
      },
      devRoot: join(work, 'dev'),
      stateDir,
      logger: { warn: (m) => printer.note(demoWarning(m)), error: (m) => printer.note(c.red(m)) },
      onProgress: (event) => {
        if (event.type === 'resource' && event.kind === 'volume' && event.action === 'created') volumeId = event.id;
        printer.onProgress(event);
      },
    },
  );

  console.log(`\n  ${c.bold('AMIs')}`);
  for (const [region, id] of Object.entries(result.images))
    console.log(`    ${region.padEnd(14)} ${id}  ${c.dim(result.name)}`);
  printer.finish(result.durationMs);
  const byOperation = countBy(calls.map((call) => call.name));
  console.log(
    `\n  ${c.bold('AWS calls')}: ${result.awsCalls}  ${c.dim(
      Object.entries(byOperation)
        .map(([n, k]) => `${n} ${k}`)
        .join(', '),
    )}`,
  );

  console.log(`\n  ${c.bold('Checks')}`);
  for (const region of [BUILD_REGION, COPY_REGION]) {
    await checks.run(`the image is available in ${region}`, async () => {
      const id = result.images[region];
      const image = (await ec2(region).send(new DescribeImagesCommand({ ImageIds: [id!] }))).Images?.[0];
      return image?.State === 'available' && image.Name === result.name
        ? true
        : `found ${image?.ImageId ?? 'nothing'} in state ${image?.State}`;
    });
  }
  await checks.run('RegisterImage carried the name, description, new snapshot and build-id tag', () => {
    const input = calls.find((call) => call.region === BUILD_REGION && call.name === 'RegisterImage')?.input;
    const root = (
      input?.BlockDeviceMappings as { DeviceName?: string; Ebs?: { SnapshotId?: string } }[] | undefined
    )?.find((m) => m.DeviceName === input?.RootDeviceName);
    return expectAll({
      Name: [input?.Name, result.name],
      Description: [input?.Description, `ami-chroot demo from ${MOTO_SOURCE_AMIS.debianNew.name}`],
      'root SnapshotId': [root?.Ebs?.SnapshotId, result.snapshots[BUILD_REGION]?.[0]],
      [BUILD_ID_TAG]: [tagOf(input, 'image', BUILD_ID_TAG), result.buildId],
    });
  });
  await checks.run(`CopyImage to ${COPY_REGION} carried the source, the name and the tags`, () => {
    const input = calls.find((call) => call.region === COPY_REGION && call.name === 'CopyImage')?.input;
    return expectAll({
      SourceRegion: [input?.SourceRegion, BUILD_REGION],
      SourceImageId: [input?.SourceImageId, result.images[BUILD_REGION]],
      Name: [input?.Name, result.name],
      'Name tag': [tagOf(input, 'image', 'Name'), 'ami-chroot demo'],
    });
  });
  const volumeImage = loops[0];
  await checks.run('the image holds what provision wrote, and its own resolv.conf again', () =>
    checkContent(volumeImage!),
  );
  await checks.run('the stray background process was stopped at unmount', async () =>
    strayPid > 0 && !(await isAlive(strayPid)) ? true : `pid ${strayPid} still runs`,
  );
  await checks.run('the work volume was deleted', async () => {
    const volumes = (await ec2(BUILD_REGION).send(new DescribeVolumesCommand({}))).Volumes ?? [];
    return volumeId !== '' && !volumes.some((v) => v.VolumeId === volumeId)
      ? true
      : `${volumeId || 'no volume'} still exists`;
  });
  await checks.run('nothing is mounted, no journal is left', () => nothingLeft(stateDir));
  for (const loop of loops.splice(0)) await loop.detach();
  await checks.run('no loop device is left', () => noLoops());

  // ---- Part 2: buildImage ----
  console.log(`\n${c.bold('2. buildImage')}: the same provisioning on a local raw image, no AWS at all`);
  const output = join(work, 'demo.raw');
  const imageState = join(work, 'state-image');
  const imagePrinter = createProgressRenderer();
  let imageStray = 0;
  const image = await buildImage(
    { sourceImage: baseImage, output, mountPath: join(work, 'mnt-image', '{{.Device}}') },
    async (chroot) => {
      imageStray = await provisionDemo(chroot, 'a raw image built locally');
    },
    {
      signal,
      stateDir: imageState,
      onProgress: imagePrinter.onProgress,
      logger: { warn: (m) => imagePrinter.note(demoWarning(m)) },
    },
  );
  console.log(
    `\n  ${c.bold('Image')}: ${image.output}, ${mib(image.sizeBytes)} MiB disk, ${mib(image.allocatedBytes)} MiB on disk (sparse)`,
  );
  imagePrinter.finish(image.durationMs);

  console.log(`\n  ${c.bold('Checks')}`);
  await checks.run('the raw image exists under its final name, no .partial left', async () =>
    (await exists(output)) && !(await exists(`${output}.partial`)) ? true : 'missing output or leftover .partial',
  );
  await checks.run('it is sparse', () =>
    image.allocatedBytes < image.sizeBytes ? true : `${image.allocatedBytes} of ${image.sizeBytes} bytes allocated`,
  );
  await checks.run('the source disk is untouched (same sha256)', async () =>
    (await sha256(baseImage)) === baseHash ? true : 'the source changed',
  );
  await checks.run('the image holds what provision wrote, and its own resolv.conf again', async () => {
    await using loop = await attachLoop({ file: output, readOnly: true, stateDir: false });
    // `return await`: the loop device is disposed when this block ends, after the check.
    return await checkContent(loop);
  });
  await checks.run('the stray background process was stopped at unmount', async () =>
    imageStray > 0 && !(await isAlive(imageStray)) ? true : `pid ${imageStray} still runs`,
  );
  await checks.run('nothing is mounted, no journal, no loop device is left', async () => {
    const left = await nothingLeft(imageState);
    return left === true ? noLoops() : left;
  });

  const total = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `\n${checks.failed === 0 ? c.green(`All ${checks.passed} checks passed`) : c.red(`${checks.failed} of ${checks.passed + checks.failed} checks failed`)} in ${total} s.`,
  );
}

/**
 * The provisioning, shared by both builds: what a real build script does, in miniature. The
 * chroot handle runs commands inside with the image's own /bin/sh, never the host's shell.
 * Returns the pid of the daemon it leaves behind.
 */
async function provisionDemo(chroot: Chroot, what: string): Promise<number> {
  await chroot.writeFile('/etc/motd', `This is ${what}, baked by ami-chroot.\n`);
  await chroot.sh('mkdir -p /opt/demo && uname -m > /opt/demo/arch && echo "$((6 * 7))" > /opt/demo/answer');
  await chroot.exec('sed', ['-i', 's/^busybox$/demo/', '/etc/hostname']);
  // copyFiles put the host's resolv.conf in, so package managers could resolve names here.
  const resolv = await chroot.readFile('/etc/resolv.conf');
  if (!resolv.equals(await readFile('/etc/resolv.conf')))
    throw new Error("the host's resolv.conf is not in the chroot");
  // A careless package script leaves a daemon running: the unmount finds it and stops it.
  await chroot.sh('sleep 600 </dev/null >/dev/null 2>&1 & echo $! > /tmp/stray.pid');
  const pid = Number((await chroot.readFile('/tmp/stray.pid', 'utf8')).trim());
  await chroot.exec('rm', ['/tmp/stray.pid']);
  return pid;
}

/** Mounts the first partition of `loop` read-only and checks what provisionDemo left there. */
async function checkContent(loop: LoopDevice): Promise<true | string> {
  const dir = await mkdtemp(join(work, 'inspect-'));
  await execFileP('mount', ['-o', 'ro', loop.partitions[0]!, dir]);
  try {
    const read = (p: string) => readFile(join(dir, p), 'utf8').catch(() => '<missing>');
    return expectAll({
      '/etc/motd': [(await read('etc/motd')).includes('baked by ami-chroot'), true],
      '/opt/demo/answer': [await read('opt/demo/answer'), '42\n'],
      '/etc/hostname': [await read('etc/hostname'), 'demo\n'],
      "the image's /etc/resolv.conf": [await read('etc/resolv.conf'), IMAGE_RESOLV_CONF],
      'no policy-rc.d left by the service guard': [await exists(join(dir, 'usr/sbin/policy-rc.d')), false],
    });
  } finally {
    await execFileP('umount', [dir]);
    await rm(dir, { recursive: true });
  }
}

// --- Progress (the package's renderer; warnings shortened) ---

/** Warnings, shortened; moto's known gaps are named as such. */
function demoWarning(message: string): string {
  if (message.includes('Could not read the UEFI data'))
    return c.dim('note: moto lacks DescribeImageAttribute uefiData, so the image is registered without UEFI data');
  return `warning: ${message.replaceAll(`${work}/`, '')}`;
}

// --- Checks ---------------------------------------------------------------------------

/** Self-checks, each printed as ✓ or ✗ with what was found. */
class Checks {
  passed = 0;
  failed = 0;

  async run(name: string, fn: () => Promise<true | string> | true | string): Promise<void> {
    let outcome: true | string;
    try {
      outcome = await fn();
    } catch (error) {
      outcome = error instanceof Error ? error.message : String(error);
    }
    if (outcome === true) {
      this.passed++;
      console.log(`    ${c.green('✓')} ${name}`);
    } else {
      this.failed++;
      console.log(`    ${c.red('✗')} ${name}: ${outcome}`);
    }
  }
}

/** True when every `[actual, expected]` pair matches, else which did not. */
function expectAll(pairs: Record<string, [unknown, unknown]>): true | string {
  const wrong = Object.entries(pairs)
    .filter(([, [actual, expected]]) => actual !== expected)
    .map(([what, [actual, expected]]) => `${what} is ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
  return wrong.length === 0 ? true : wrong.join('; ');
}

/** Nothing mounted under the demo's directory, and no open recovery journal. */
async function nothingLeft(stateDir: string): Promise<true | string> {
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point.startsWith(`${work}/`));
  const list = (d: string) => readdir(d).catch(() => [] as string[]);
  // Mount and loop journals, and buildAmi's live-build record.
  const journals = [...(await list(stateDir)), ...(await list(join(stateDir, 'builds')))].filter((n) =>
    n.endsWith('.json'),
  );
  if (mounts.length > 0) return `still mounted: ${mounts.join(', ')}`;
  if (journals.length > 0) return `open journals: ${journals.join(', ')}`;
  return true;
}

/** No loop device is backed by a file of the demo. */
async function noLoops(): Promise<true | string> {
  const left = await demoLoops();
  return left.length === 0 ? true : `still attached: ${left.join(', ')}`;
}

async function demoLoops(): Promise<string[]> {
  const { stdout } = await execFileP('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE']);
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([, file]) => file?.startsWith(`${work}/`))
    .map(([device]) => device!);
}

// --- AWS call recorder ------------------------------------------------------------------

interface RecordedCall {
  readonly region: string;
  readonly name: string;
  readonly input: Record<string, unknown>;
}
const calls: RecordedCall[] = [];

/**
 * Records every command a client sends, with its input, as SDK middleware. moto keeps only part
 * of what RegisterImage and CopyImage receive, so the requests themselves are what we check.
 */
function recordCalls(client: EC2Client, region: string): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      calls.push({
        region,
        name: String(context.commandName).replace(/Command$/, ''),
        input: { ...(args.input as Record<string, unknown>) },
      });
      return next(args);
    },
    { step: 'initialize', name: 'demo-call-recorder' },
  );
}

function tagOf(input: Record<string, unknown> | undefined, resourceType: string, key: string): string | undefined {
  const specs = (input?.TagSpecifications ?? []) as {
    ResourceType?: string;
    Tags?: { Key?: string; Value?: string }[];
  }[];
  return specs.find((s) => s.ResourceType === resourceType)?.Tags?.find((t) => t.Key === key)?.Value;
}

// --- Teardown: everything the demo made, whatever state it is in --------------------------

async function teardown(): Promise<void> {
  const quiet = { warn: () => {}, error: () => {} };
  // A build cleans up after itself; this catches what the demo itself made (and a crash).
  await unmountTree(work, { logger: quiet, killGraceMs: 1000 }).catch(() => {});
  for (const loop of loops.splice(0)) await loop.detach().catch(() => {});
  for (const device of await demoLoops().catch(() => [] as string[])) {
    await execFileP('partx', ['-d', device]).catch(() => {});
    await execFileP('losetup', ['-d', device]).catch(() => {});
  }
  for (const client of clients.values()) client.destroy();
  await moto?.stop().catch(() => {});
  await rm(work, { recursive: true, force: true }).catch((e: unknown) =>
    console.error(`Could not remove ${work}: ${String(e)}`),
  );
}

// --- Preflight ----------------------------------------------------------------------------

/** Every missing prerequisite as one line that says how to get it. */
async function preflight(): Promise<string[]> {
  if (process.platform !== 'linux') {
    return [
      `Linux is needed (this is ${process.platform}): the build mounts loop devices and chroots into them. ` +
        'Run the demo in a Linux VM (e.g. `multipass launch`, `limactl start`), as root.',
    ];
  }
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('root is needed (loop devices, mount, chroot): run `sudo npm run demo`.');
  if (!(await exists('/dev/loop-control')))
    problems.push(
      'no loop devices (/dev/loop-control): run `modprobe loop` (in a container: start it with --privileged).',
    );
  const tools: [string, string][] = [
    ['losetup', 'apt-get install mount'],
    ['mount', 'apt-get install mount'],
    ['partx', 'apt-get install util-linux'],
    ['sfdisk', 'apt-get install fdisk'],
    ['mkfs.ext4', 'apt-get install e2fsprogs'],
    ['chroot', 'apt-get install coreutils'],
  ];
  for (const [tool, fix] of tools) if (!(await onPath(tool))) problems.push(`${tool} is missing: ${fix}`);
  if (!(await exists('/bin/busybox')))
    problems.push('busybox is missing (the source image is a static busybox root): apt-get install busybox-static');
  else if (!(await isStaticElf('/bin/busybox')))
    problems.push('/bin/busybox is dynamically linked; the image needs a static one: apt-get install busybox-static');
  if (!(await onPath('moto_server'))) {
    problems.push(
      `moto_server is missing (moto's EC2 server stands in for AWS): pip install 'moto[server]' (and keep it on root's PATH: sudo env "PATH=$PATH" npm run demo)`,
    );
  }
  if (!(await exists('/etc/resolv.conf')))
    problems.push(
      '/etc/resolv.conf is missing (builds copy it into the chroot): create one, e.g. `echo nameserver 127.0.0.53 > /etc/resolv.conf`',
    );
  return problems;
}

async function onPath(tool: string): Promise<boolean> {
  const dirs = [...(process.env['PATH'] ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs.filter(Boolean)) {
    try {
      await access(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

/** An ELF executable without a program interpreter (PT_INTERP) is statically linked. */
async function isStaticElf(path: string): Promise<boolean> {
  const elf = await readFile(path);
  if (elf.readUInt32BE(0) !== 0x7f454c46) return false;
  const is64 = elf[4] === 2;
  const le = elf[5] === 1;
  const u16 = (o: number) => (le ? elf.readUInt16LE(o) : elf.readUInt16BE(o));
  const u32 = (o: number) => (le ? elf.readUInt32LE(o) : elf.readUInt32BE(o));
  const phoff = is64 ? Number(le ? elf.readBigUInt64LE(0x20) : elf.readBigUInt64BE(0x20)) : u32(0x1c);
  const [entSize, count] = is64 ? [u16(0x36), u16(0x38)] : [u16(0x2a), u16(0x2c)];
  for (let i = 0; i < count; i++) if (u32(phoff + i * entSize) === 3) return false;
  return true;
}

// --- Small helpers ------------------------------------------------------------------------

function execFileP(file: string, args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(file, [...args], { encoding: 'utf8' });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function isAlive(pid: number): Promise<boolean> {
  const st = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Zombies hold nothing: they count as gone.
  return st !== '' && st.slice(st.lastIndexOf(')') + 2)[0] !== 'Z';
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

function countBy(items: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) out[item] = (out[item] ?? 0) + 1;
  return out;
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

function step(text: string): void {
  process.stdout.write(tty ? `${c.dim('…')} ${text}` : `${text}\n`);
}

function done(text: string): void {
  if (tty) process.stdout.write('\r\x1b[2K');
  console.log(`${c.green('✓')} ${text}`);
}

process.exit(await main());
