/**
 * Packer's side of the side-by-side benchmark: installs Packer when it is missing, writes the
 * template, and undoes what the template's pre-mount commands leave behind (the loop device
 * standing for the attached volume).
 */
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packerTemplate } from './build.js';

const exec = promisify(execFile);

/** The name Packer attaches the volume under; nothing is created at it on this host. */
const ATTACH_AS = '/dev/sdq';

/**
 * `packer version`, after `apt-get install -y packer` when it is not on the PATH (Debian's
 * package is Packer 1.6.6, the version issue 14 measures against).
 * @internal
 */
export async function ensurePacker(): Promise<string> {
  const version = async (): Promise<string> => (await exec('packer', ['version'])).stdout.split('\n')[0] ?? '';
  try {
    return await version();
  } catch {
    await exec('apt-get', ['install', '-y', '--no-install-recommends', 'packer'], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      maxBuffer: 16 << 20,
    });
    return version();
  }
}

/** One Packer build's files and command line. */
export interface PackerRun {
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** Detaches the loop device and removes the files the build left, pass or fail. */
  cleanUp(): Promise<void>;
}

/**
 * Prepares one `packer build` against the test EC2 at `endpoint`. The attached volume is a loop
 * device over a sparse copy of `baseImage`, made by the template's `pre_mount_commands` after
 * AttachVolume (as our side's `resolveDevice` makes it after the attachment), and reached through
 * `nvme_device_path`, the option Packer has for a device whose node differs from the attached name.
 * @internal
 */
export async function preparePacker(options: {
  readonly endpoint: string;
  readonly dir: string;
  readonly baseImage: string;
  readonly label: string;
  /** AWS_POLL_DELAY_SECONDS (whole seconds), unset for Packer's own delays. */
  readonly pollDelayS?: number;
}): Promise<PackerRun> {
  const { dir, label } = options;
  const volumeFile = join(dir, `packer-${label}.img`);
  const link = join(dir, 'dev', `packer-${label}`);
  const loopFile = join(dir, `packer-${label}.loop`);
  const attach =
    `cp --sparse=always ${options.baseImage} ${volumeFile} && L=$(losetup --find --show ${volumeFile}) && ` +
    `echo $L > ${loopFile} && partx -a $L && ln -sfn \${L}p1 ${link}1`;
  const template = packerTemplate({
    endpoint: options.endpoint,
    amiName: `vs-packer-packer-${label}-{{timestamp}}`,
    mountPath: join(dir, 'mnt', '{{.Device}}'),
    devicePath: ATTACH_AS,
    nvmeDevicePath: link,
    preMountCommands: [attach],
  });
  const templateFile = join(dir, `packer-${label}.json`);
  await writeFile(templateFile, JSON.stringify(template, null, 2));
  return {
    args: ['build', '-color=false', templateFile],
    env: packerEnv(options.endpoint, dir, options.pollDelayS),
    cleanUp: async () => {
      const loop = (await readFile(loopFile, 'utf8').catch(() => '')).trim();
      if (loop) {
        await exec('partx', ['-d', loop]).catch(() => undefined);
        await exec('losetup', ['-d', loop]);
      }
      for (const file of [volumeFile, link + '1', loopFile, templateFile]) await rm(file, { force: true });
    },
  };
}

function packerEnv(endpoint: string, dir: string, pollDelayS: number | undefined): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'],
    HOME: dir,
    TMPDIR: dir,
    // Network goes to 127.0.0.1 only: no version check with HashiCorp.
    CHECKPOINT_DISABLE: '1',
    PACKER_CACHE_DIR: join(dir, 'packer-cache'),
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    // custom_endpoint_ec2 already moves Packer's IMDS client there; this says it outright.
    AWS_EC2_METADATA_SERVICE_ENDPOINT: endpoint,
    ...(pollDelayS === undefined ? {} : { AWS_POLL_DELAY_SECONDS: String(pollDelayS), AWS_MAX_ATTEMPTS: '2000' }),
  };
}
