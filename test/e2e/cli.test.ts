/**
 * The `ami-chroot` CLI as a child process: the example templates (HCL2 with a var file, HCL2 JSON,
 * legacy JSON) and a TypeScript build file build end to end against the test EC2 and loop
 * devices; image content, tags and manifests are checked; bad templates fail with file:line and
 * the fix; Ctrl-C cleans up; cleanup finds and removes an orphan. The CLI run is the executable
 * as published (`npm run build`: the bundle, and the compiled modules a build file runs through).
 */
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CreateVolumeCommand, DescribeImagesCommand, DescribeVolumesCommand } from '@aws-sdk/client-ec2';
import type { Image } from '@aws-sdk/client-ec2';
import { BUILD_ID_TAG } from '../../src/aws/common.js';
import { run } from '../../src/host/exec.js';
import { partitionPath } from '../../src/host/resolve-device.js';
import { MOTO_SOURCE_AMIS } from '../../fixtures/moto.js';
import { BUILD_REGION, useE2e } from '../helpers/e2e.js';
import type { CliLoop, CliTestEnv } from '../helpers/cli-hook.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'dist/cli/ami-chroot.mjs');
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm')).href;
const HOOK = join(ROOT, 'test/helpers/cli-hook.ts');
const SOURCE_AMI = MOTO_SOURCE_AMIS.debianNew.ami_id;

const env = useE2e();
// tsc and the bundle (~15 s): the test runs what `npm pack` ships.
beforeAll(async () => {
  await run('npm', ['run', 'build'], { cwd: ROOT });
}, 120_000);
let work = '';
afterEach(async () => {
  await detachLoops();
  if (work) await rm(work, { recursive: true, force: true });
  work = '';
});

interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A fresh copy of examples/packer to run in (relative paths and outputs land there). */
async function workDir(): Promise<string> {
  work = await mkdtemp(join(tmpdir(), 'ami-chroot-cli-work-'));
  await cp(join(ROOT, 'examples/packer'), work, { recursive: true });
  return work;
}

/** Runs the CLI as a user would, wired to the test EC2 by the hidden test hook. */
function cli(
  args: readonly string[],
  options: {
    cwd?: string;
    env?: Record<string, string>;
    onStderr?: (text: string, kill: (s: NodeJS.Signals) => void) => void;
  } = {},
): Promise<CliRun> {
  const testEnv: CliTestEnv = {
    endpoint: env.moto.endpoint,
    instanceId: env.instanceId,
    availabilityZone: env.availabilityZone,
    region: BUILD_REGION,
    baseImage: join(env.dir, 'base.img'),
    dir: env.dir,
  };
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', TSX, BIN, ...args], {
      cwd: options.cwd ?? (work || ROOT),
      env: {
        ...process.env,
        CI: '1',
        AMI_CHROOT_CLI_TEST_HOOK: HOOK,
        AMI_CHROOT_CLI_TEST_ENV: JSON.stringify(testEnv),
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        AWS_ENDPOINT_URL_EC2: env.moto.endpoint,
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      options.onStderr?.(stderr, (s) => child.kill(s));
    });
    child.once('error', fail);
    child.once('close', (code) => done({ code, stdout, stderr }));
  });
}

async function loops(): Promise<CliLoop[]> {
  const text = await readFile(join(env.dir, 'loops.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as CliLoop);
}

/** Detaches the loop devices the child's resolver made (this test owns them). */
async function detachLoops(): Promise<void> {
  for (const l of await loops()) await run('losetup', ['-d', l.device]).catch(() => {});
  await rm(join(env.dir, 'loops.jsonl'), { force: true });
}

/** Reads files from the image the build provisioned (the last volume's loop device). */
async function readImage(files: readonly string[]): Promise<Record<string, string>> {
  const all = await loops();
  const last = all.at(-1);
  if (!last) throw new Error('the CLI attached no loop device');
  const dir = await mkdtemp(join(tmpdir(), 'ami-chroot-cli-verify-'));
  try {
    await run('mount', ['-o', 'ro', partitionPath(last.device, '1'), dir]);
    try {
      const out: Record<string, string> = {};
      for (const f of files) out[f] = await readFile(join(dir, f), 'utf8').catch(() => '<missing>');
      out['ls /tmp'] = (await readdir(join(dir, 'tmp')).catch(() => [] as string[])).join(' ');
      return out;
    } finally {
      await run('umount', [dir]);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function image(id: string): Promise<Image> {
  const out = await env.ec2().send(new DescribeImagesCommand({ ImageIds: [id] }));
  return out.Images![0]!;
}

describe('ami-chroot build (child process, test EC2, loop devices)', () => {
  it('HCL2 template with a var file and -var: provisions in order, tags the image, writes the manifest', async () => {
    const cwd = await workDir();
    const r = await cli(
      [
        'build',
        '-var-file',
        'prod.pkrvars.hcl',
        '-var',
        `source_ami=${SOURCE_AMI}`,
        '-var',
        `mount_root=${env.dir}/mnt`,
        'app.pkr.hcl',
      ],
      { env: { AMI_BUILDER: 'tester' } },
    );
    expect(r.stderr).not.toMatch(/failed:/);
    expect(r.code).toBe(0);
    const manifest = JSON.parse(await readFile(join(cwd, 'manifest.json'), 'utf8')) as {
      builds: {
        name: string;
        builder_type: string;
        artifact_id: string;
        build_time: number;
        custom_data: unknown;
        packer_run_uuid: string;
        files: null;
      }[];
      last_run_uuid: string;
    };
    expect(manifest.builds).toHaveLength(1);
    const entry = manifest.builds[0]!;
    expect(entry).toMatchObject({
      name: 'app',
      builder_type: 'amazon-chroot',
      files: null,
      custom_data: { version: '2.1.0' },
    });
    expect(entry.packer_run_uuid).toBe(manifest.last_run_uuid);
    expect(entry.build_time).toBeGreaterThan(1_700_000_000);
    const [region, ami] = entry.artifact_id.split(':');
    expect(region).toBe(BUILD_REGION);
    expect(r.stdout).toContain(ami);

    const img = await image(ami!);
    expect(img.Name).toMatch(/^app-2-1-0-\d+$/);
    expect(img.Description).toBe(`app 2.1.0 built from ${MOTO_SOURCE_AMIS.debianNew.name}`);
    const tags = Object.fromEntries((img.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? ''] as const));
    expect(tags).toMatchObject({
      Name: 'app-2-1-0',
      Version: '2.1.0',
      Builder: 'tester',
      Source: MOTO_SOURCE_AMIS.debianNew.name,
    });

    const files = await readImage([
      'etc/app/release',
      'etc/app/quoted',
      'etc/app/app.conf',
      'srv/www/index.html',
      'srv/www/css/site.css',
      'srv/www/site/index.html',
      'etc/app/setup',
    ]);
    expect(files).toEqual({
      'etc/app/release': 'version=2.1.0\npackages=curl jq\n',
      'etc/app/quoted': `it's "quoted"\n`,
      'etc/app/app.conf': 'listen = 8080\n',
      'srv/www/index.html': '<h1>hello</h1>\n',
      'srv/www/css/site.css': await readFile(join(ROOT, 'examples/packer/files/site/css/site.css'), 'utf8'),
      // The trailing slash put the contents in /srv/www, not a /srv/www/site directory.
      'srv/www/site/index.html': '<missing>',
      'etc/app/setup': `setup from ${SOURCE_AMI} by app (amazon-chroot)\n`,
      // The uploaded scripts were removed after running.
      'ls /tmp': '',
    });
    expect(await readFile(join(cwd, 'release.txt'), 'utf8')).toBe('version=2.1.0\npackages=curl jq\n');
    expect(await readFile(join(cwd, 'built-by-shell-local.txt'), 'utf8')).toBe('app 2.1.0\n');
    const volumes = await env
      .ec2()
      .send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag-key', Values: [BUILD_ID_TAG] }] }));
    expect(volumes.Volumes ?? []).toEqual([]);
  });

  it('legacy JSON template: user variables, env in a default, policy-rc.d provisioners, manifest without time', async () => {
    const cwd = await workDir();
    const r = await cli(
      ['build', '-var', `source_ami=${SOURCE_AMI}`, '-var', `mount_root=${env.dir}/mnt`, 'legacy.json'],
      {
        env: { GREETING: 'hello' },
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const files = await readImage(['etc/greeting', 'etc/app.conf', 'usr/sbin/policy-rc.d']);
    expect(files).toEqual({
      'etc/greeting': 'hello from amazon-chroot\n',
      'etc/app.conf': 'listen = 8080\n',
      'usr/sbin/policy-rc.d': '<missing>',
      'ls /tmp': '',
    });
    const manifest = JSON.parse(await readFile(join(cwd, 'legacy-manifest.json'), 'utf8')) as {
      builds: Record<string, unknown>[];
    };
    expect(manifest.builds[0]).not.toHaveProperty('build_time');
    expect(manifest.builds[0]).toMatchObject({ name: 'amazon-chroot', builder_type: 'amazon-chroot' });
  });

  it('HCL2 JSON template with --json: every stdout line is a JSON event', async () => {
    await workDir();
    const r = await cli([
      'build',
      '--json',
      '-var',
      `source_ami=${SOURCE_AMI}`,
      '-var',
      `mount_root=${env.dir}/mnt`,
      'minimal.pkr.json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string; build?: string; phase?: string });
    expect(events.length).toBeGreaterThan(5);
    expect(events.some((e) => e.type === 'phase-start' && e.build === 'amazon-chroot.minimal')).toBe(true);
    expect(events.at(-1)?.type).toBe('message');
    expect(await readImage(['etc/minimal', 'etc/content'])).toEqual({
      'etc/minimal': 'minimal\n',
      'etc/content': 'written by the file provisioner\n',
      'ls /tmp': '',
    });
  });

  it('a TypeScript build file exporting config and provision', async () => {
    await workDir();
    // From the repository: the file imports the library by a relative path.
    const r = await cli(['build', join(ROOT, 'examples/packer/build.ts')], {
      env: { SOURCE_AMI, MOUNT_ROOT: `${env.dir}/mnt` },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(await readImage(['etc/build-file', 'etc/build-file-uid'])).toEqual({
      'etc/build-file': `provisioned from ${MOTO_SOURCE_AMIS.debianNew.name}\n`,
      'etc/build-file-uid': '0\n',
      'ls /tmp': '',
    });
  });

  it('a build file importing the package shares its classes with the CLI: a failed command is its CommandError', async () => {
    const dir = await workDir();
    const file = join(dir, 'classes.mjs');
    // The published package's own entry, as `import 'ami-chroot'` resolves for an installed user.
    const entry = pathToFileURL(join(ROOT, 'dist/index.js')).href;
    await writeFile(
      file,
      [
        `import { CommandError } from ${JSON.stringify(entry)};`,
        `export const config = { sourceAmi: ${JSON.stringify(SOURCE_AMI)}, amiName: 'classes-{{timestamp}}', mountPath: ${JSON.stringify(`${env.dir}/mnt/{{.Device}}`)} };`,
        'export async function provision(chroot) {',
        "  const error = await chroot.sh('exit 3').then(() => undefined, (e) => e);",
        "  await chroot.writeFile('/etc/classes', `${error instanceof CommandError} ${error?.name}\\n`);",
        '}',
      ].join('\n'),
    );
    const r = await cli(['build', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(await readImage(['etc/classes'])).toEqual({ 'etc/classes': 'true CommandError\n', 'ls /tmp': '' });
  });

  it('build --dry-run prints the plan, makes only reads, creates nothing; plan rejects the flag', async () => {
    await workDir();
    const before = await env.counts();
    await env.moto.resetCalls();
    // Independent processes: run together (each spawn costs a Node + tsx start-up).
    const [r, wrong] = await Promise.all([
      cli(['build', '--dry-run', join(ROOT, 'examples/packer/build.ts')], {
        env: { SOURCE_AMI, MOUNT_ROOT: `${env.dir}/mnt` },
      }),
      cli(['plan', '--dry-run', 'x.pkr.hcl']),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('dry run, nothing was created');
    expect(r.stdout).toMatch(new RegExp(`Source: +${SOURCE_AMI} \\(${MOTO_SOURCE_AMIS.debianNew.name}\\)`));
    expect(r.stdout).toMatch(/AMI name: +from-build-file-\d+/);
    expect(r.stdout).toMatch(/\*\s+volume\s+CreateVolume\s+us-east-1/);
    expect(r.stdout).toContain('No problem found: the build would start.');
    const served = (await env.moto.calls()).map((c) => c.action);
    expect(served).toContain('DescribeImages');
    expect(served.filter((a) => !a.startsWith('Describe'))).toEqual([]);
    expect(await env.counts()).toEqual(before);
    expect(await loops()).toEqual([]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('--dry-run is an option of build');
  });

  it('a failing provisioner: exit 1, the error names its file:line, nothing is left', async () => {
    const cwd = await workDir();
    const before = await env.counts();
    await cp(join(cwd, 'minimal.pkr.json'), join(cwd, 'fail.pkr.json'));
    const text = (await readFile(join(cwd, 'fail.pkr.json'), 'utf8')).replace('echo minimal > /etc/minimal', 'exit 3');
    await writeFile(join(cwd, 'fail.pkr.json'), text);
    const r = await cli([
      'build',
      '-var',
      `source_ami=${SOURCE_AMI}`,
      '-var',
      `mount_root=${env.dir}/mnt`,
      'fail.pkr.json',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Provisioner shell at .*fail\.pkr\.json.* failed/);
    await detachLoops();
    await env.assertNothingLeft(before);
  });

  it('Ctrl-C during provisioning, twice: exit 130 after a complete cleanup', async () => {
    const cwd = await workDir();
    const before = await env.counts();
    const text = (await readFile(join(cwd, 'minimal.pkr.json'), 'utf8')).replace(
      'echo minimal > /etc/minimal',
      'echo started; sleep 60',
    );
    await writeFile(join(cwd, 'slow.pkr.json'), text);
    let sent = 0;
    const r = await cli(
      ['build', '-var', `source_ami=${SOURCE_AMI}`, '-var', `mount_root=${env.dir}/mnt`, 'slow.pkr.json'],
      {
        onStderr: (all, kill) => {
          if (sent === 0 && all.includes('started')) {
            sent = 1;
            kill('SIGINT');
          } else if (sent === 1 && all.includes('stopping and cleaning up')) {
            sent = 2;
            kill('SIGINT');
          }
        },
      },
    );
    expect(sent).toBe(2);
    expect(r.stderr).toContain('still cleaning up');
    expect(r.code).toBe(130);
    await detachLoops();
    await env.assertNothingLeft(before);
  });
});

describe('ami-chroot validate: bad templates name the file, the line and the fix', () => {
  it('an HCL syntax error gives file:line:column', async () => {
    const cwd = await workDir();
    await writeFile(join(cwd, 'syntax.pkr.hcl'), 'source "amazon-chroot" "x" {\n  ami_name = \n}\n');
    const r = await cli(['validate', 'syntax.pkr.hcl']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/syntax\.pkr\.hcl:2:\d+: Invalid expression/);
  });

  it('unknown options, other builders, unsupported provisioners, a misspelt setting, a failed validation: all at once', async () => {
    const cwd = await workDir();
    await writeFile(
      join(cwd, 'bad.pkr.hcl'),
      [
        'variable "size" {',
        '  type = number',
        '  default = 4',
        '}',
        'source "amazon-chroot" "x" {',
        '  ami_name    = "bad-{{timestamp}}"',
        '  source_ami  = "ami-12345678"',
        '  root_volume_siz = var.size',
        '}',
        'source "amazon-ebs" "y" {}',
        'build {',
        '  sources = ["source.amazon-chroot.x", "source.amazon-ebs.y"]',
        '  provisioner "ansible" {}',
        '  provisioner "shell" {',
        '    inlin = ["true"]',
        '  }',
        '  post-processor "docker-push" {}',
        '}',
        '',
      ].join('\n'),
    );
    const [r, ignored] = await Promise.all([
      cli(['validate', 'bad.pkr.hcl']),
      cli(['validate', '--ignore-unsupported', '-except', 'amazon-ebs.y', 'bad.pkr.hcl']),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'bad.pkr.hcl:8: source.amazon-chroot.x.root_volume_siz: is not an amazon-chroot option; did you mean `root_volume_size`?',
    );
    expect(r.stderr).toMatch(/bad\.pkr\.hcl:11: source "amazon-ebs" .* not supported.*--except amazon-ebs\.y/);
    expect(r.stderr).toMatch(
      /bad\.pkr\.hcl:13: provisioner "ansible" is not supported \(supported: shell, file, shell-local\)/,
    );
    expect(r.stderr).toContain(
      'bad.pkr.hcl:14: provisioner "shell": "inlin" is not a shell setting; did you mean "inline"?',
    );
    expect(r.stderr).toMatch(/bad\.pkr\.hcl:17: post-processor "docker-push" is not supported \(supported: manifest\)/);
    expect(ignored.stderr).not.toContain('ansible" is not supported (supported: shell, file, shell-local); remove it');
    expect(ignored.code).toBe(2); // the misspelt option and setting remain errors
  });

  it('a variable validation, an undeclared -var, a required variable', async () => {
    await workDir();
    const [r, legacy] = await Promise.all([
      cli(['validate', '-var', 'source_ami=nope', '-var', 'app_verison=3', 'app.pkr.hcl']),
      cli(['validate', 'legacy.json']),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'app.pkr.hcl:22: variable "source_ami" = "nope" fails its validation: The source_ami must be an AMI id',
    );
    expect(r.stderr).toContain('variable "app_verison" is not declared in the template; did you mean "app_version"?');
    expect(legacy.code).toBe(2);
    expect(legacy.stderr).toContain(
      'legacy.json:4: variable "source_ami" is required (null default); pass -var source_ami=...',
    );
  });

  it('--help documents the commands and the exit codes; a bad flag is exit 2', async () => {
    const [help, bad] = await Promise.all([cli(['--help']), cli(['build', '--frobnicate', 'x.pkr.hcl'])]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes:\n {2}0 {4}success/);
    for (const c of ['build', 'validate', 'plan', 'cleanup']) expect(help.stdout).toContain(`  ${c} `);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown option --frobnicate');
  });
});

describe('ami-chroot cleanup', () => {
  it('lists an orphan in a dry run, removes it with --yes', async () => {
    await workDir();
    const vol = await env.ec2().send(
      new CreateVolumeCommand({
        AvailabilityZone: env.availabilityZone,
        Size: 1,
        TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: BUILD_ID_TAG, Value: 'cli-orphan-test' }] }],
      }),
    );
    const id = vol.VolumeId!;
    const dry = await cli(['cleanup', '--region', BUILD_REGION, '--older-than', '0s']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`would remove volume ${id}`);
    expect(dry.stdout).toContain('run again with --yes');
    const still = await env.ec2().send(new DescribeVolumesCommand({ VolumeIds: [id] }));
    expect(still.Volumes).toHaveLength(1);
    const wet = await cli(['cleanup', '--region', BUILD_REGION, '--older-than', '0s', '--yes']);
    expect(wet.code, wet.stderr).toBe(0);
    expect(wet.stdout).toContain(`removed volume ${id}`);
    const gone = await env.ec2().send(new DescribeVolumesCommand({ Filters: [{ Name: 'volume-id', Values: [id] }] }));
    expect(gone.Volumes ?? []).toEqual([]);
  });
});
