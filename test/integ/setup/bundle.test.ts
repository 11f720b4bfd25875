/**
 * The published executable is a bundle that keeps only the AWS SDK commands the library lists in
 * src/aws/sdk-exports/ (a stray `require` or `import()` of the SDK, or of the module that lists
 * them, would make the bundler keep all ~800 EC2 commands and double the start-up), and it runs.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Metafile } from 'esbuild';
import { bundleProgram } from '../../../scripts/bundle.js';
import * as Ec2 from '../../../src/aws/sdk-exports/ec2.js';
import * as Ebs from '../../../src/aws/sdk-exports/ebs.js';
import * as Sts from '../../../src/aws/sdk-exports/sts.js';

const ROOT = resolve(import.meta.dirname, '../../..');
let dir = '';
let outfile = '';
let meta: Metafile;

beforeAll(async () => {
  // Beside package.json's depth (cli/x.mjs), as in dist/, so `--version` finds it.
  dir = await mkdtemp(join(ROOT, '.bundle-test-'));
  outfile = join(dir, 'cli/ami-chroot.mjs');
  meta = await bundleProgram({ entry: join(ROOT, 'src/cli/bin.ts'), outfile });
}, 60_000);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The command modules of `pkg` that went into the bundle, by class name. */
function bundledCommands(pkg: string): string[] {
  const inputs = Object.values(meta.outputs).flatMap((o) => Object.keys(o.inputs));
  const re = new RegExp(`node_modules/@aws-sdk/${pkg}/dist-es/commands/(\\w+Command)\\.js$`);
  return inputs.flatMap((i) => re.exec(i)?.[1] ?? []).sort();
}

/** The commands a list names (a paginator brings its command). */
function listed(mod: Record<string, unknown>): string[] {
  const names = Object.keys(mod).map((n) => n.replace(/^paginate(\w+)$/, '$1Command'));
  return [...new Set(names.filter((n) => n.endsWith('Command')))].sort();
}

describe('the CLI bundle', () => {
  it('holds exactly the listed commands of each AWS SDK package, not the aggregated clients', () => {
    expect(bundledCommands('client-ec2')).toEqual(listed(Ec2));
    expect(bundledCommands('client-ebs')).toEqual(listed(Ebs));
    expect(bundledCommands('client-sts')).toEqual(listed(Sts));
    const inputs = Object.values(meta.outputs).flatMap((o) => Object.keys(o.inputs));
    expect(inputs.filter((i) => /client-(ec2|ebs|sts)\/dist-es\/(EC2|EBS|STS)\.js$/.test(i))).toEqual([]);
  });

  it('runs: --version prints the package version', async () => {
    const pkg = (await import('../../../package.json', { with: { type: 'json' } })).default as { version: string };
    const out = await new Promise<string>((done, fail) => {
      const child = spawn(process.execPath, [outfile, '--version'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.once('error', fail);
      child.once('close', (code) => (code === 0 ? done(text) : fail(new Error(`exit ${code}`))));
    });
    expect(out.trim()).toBe(pkg.version);
  });
});
