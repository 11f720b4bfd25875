import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../../..');
const TSX = join(ROOT, 'node_modules/.bin/tsx');

/** Runs an example as a user would (tsx, from the repository root) and collects its output. */
function runExample(
  file: string,
  args: readonly string[] = [],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(TSX, [file, ...args], {
      cwd: ROOT,
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

describe('examples/packer-import.ts', () => {
  it('imports the NVMe example of the Packer docs and lists every problem of broken blocks, without printing secrets', async () => {
    const { code, stdout, stderr } = await runExample('examples/packer-import.ts');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain("amiName: 'amazon-chroot-test-{{timestamp}}'");
    expect(stdout).toContain("nvmeDevicePath: '/dev/nvme1n1p'");
    expect(stdout).toContain("chrootMounts: [ [ 'proc', 'proc', '/proc' ], [ 'bind', '/dev', '/dev' ] ]");
    expect(stdout).toContain(
      'Resolved: region us-east-2, mount path /mnt/packer-amazon-chroot-volumes/{{.Device}}, chroot mounts /proc /dev',
    );
    expect(stdout).toContain('ami_nmae: is not an amazon-chroot option; did you mean `ami_name`?');
    expect(stdout).toContain('A broken builder block: 5 problems, all at once:');
    expect(stdout).toContain('region_kms_key_ids.us-west-2: region "us-west-2" is not in ami_regions');
    expect(stdout).not.toContain('never printed');
  });

  it('imports a template file given as an argument, with the region from AWS_REGION', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ami-chroot-packer-import-'));
    try {
      const file = join(dir, 'template.json');
      await writeFile(
        file,
        JSON.stringify({
          variables: { region: 'us-east-1' },
          builders: [
            {
              type: 'amazon-chroot',
              region: '{{user `region`}}',
              source_ami: 'ami-0123456789abcdef0',
              ami_name: 'from-file {{timestamp}}',
              mount_partition: '0',
            },
          ],
        }),
      );
      const { code, stdout, stderr } = await runExample('examples/packer-import.ts', [file], {
        AWS_REGION: 'eu-central-1',
      });
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(stdout).toContain("amiName: 'from-file {{timestamp}}'");
      expect(stdout).toContain("mountPartition: '0'");
      expect(stdout).toContain('Resolved: region eu-central-1');
      // Broken examples are only shown without an argument.
      expect(stdout).not.toContain('broken builder block');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails with the ConfigError of a bad template file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ami-chroot-packer-import-'));
    try {
      const file = join(dir, 'bad.json');
      await writeFile(file, JSON.stringify({ type: 'amazon-chroot', ami_name: 'x {{timestamp}}' }));
      const { code, stderr } = await runExample('examples/packer-import.ts', [file]);
      expect(code).toBe(1);
      expect(stderr).toContain('ConfigError');
      expect(stderr).toContain('source_ami: is required');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
