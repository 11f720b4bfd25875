/**
 * The published tarball: `npm pack` (which builds through `prepack`) ships every entry of
 * package.json `exports` with its types, the sources its maps point at, the LICENSE and README,
 * and nothing of the tests, benchmarks or examples. Installed as a dependency, each entry imports.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '../../..');

interface PackResult {
  readonly filename: string;
  readonly files: readonly { readonly path: string }[];
}

let work = '';
let files: string[] = [];
let installed = '';
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
  exports: Record<string, string | { types: string; default: string }>;
};

beforeAll(async () => {
  // Under node_modules/.cache: the unpacked package resolves its dependencies from the repository's node_modules.
  const cache = join(ROOT, 'node_modules/.cache');
  await mkdir(cache, { recursive: true });
  work = await mkdtemp(join(cache, 'ami-chroot-pack-'));
  const { stdout } = await exec('npm', ['pack', '--json', '--pack-destination', work], {
    cwd: ROOT,
    maxBuffer: 64 * 1024 * 1024,
  });
  // npm prints the prepack build's output before the JSON.
  const [result] = JSON.parse(stdout.slice(stdout.indexOf('\n[') + 1)) as PackResult[];
  files = result!.files.map((f) => f.path).sort();
  installed = join(work, 'node_modules/ami-chroot');
  await mkdir(installed, { recursive: true });
  await exec('tar', ['-xzf', join(work, result!.filename), '-C', installed, '--strip-components=1']);
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships every exported entry with its types, and LICENSE, README and package.json', () => {
    const targets = Object.values(pkg.exports).flatMap((e) => (typeof e === 'string' ? [e] : [e.types, e.default]));
    expect(targets.length).toBeGreaterThanOrEqual(9);
    expect(targets.map((t) => normalize(t)).filter((t) => !files.includes(t))).toEqual([]);
    for (const name of ['LICENSE', 'README.md', 'package.json']) expect(files).toContain(name);
  });

  it('ships no tests, benchmarks, examples, fixtures or scripts', () => {
    const top = new Set(files.map((f) => f.split('/')[0]));
    expect([...top].sort()).toEqual(['LICENSE', 'README.md', 'dist', 'package.json', 'src']);
    expect(files.filter((f) => f.endsWith('.test.ts'))).toEqual([]);
  });

  it('every source map points at files that are in the package', async () => {
    const maps = files.filter((f) => f.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(20);
    const missing: string[] = [];
    for (const map of maps) {
      const { sources } = JSON.parse(await readFile(join(installed, map), 'utf8')) as { sources: string[] };
      for (const source of sources) {
        const target = normalize(join(dirname(map), source));
        if (!files.includes(target)) missing.push(`${map} -> ${target}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('each entry imports from the installed package', async () => {
    const script = join(work, 'import-all.mjs');
    const entries = Object.keys(pkg.exports)
      .filter((k) => k !== './package.json')
      .map((k) => `ami-chroot${k.slice(1)}`);
    await writeFile(
      script,
      entries
        .map((e, i) => `import * as e${i} from '${e}';\nconsole.log('${e}', Object.keys(e${i}).length);`)
        .join('\n'),
    );
    const { stdout } = await exec(process.execPath, [script], { cwd: work });
    const counts: Record<string, string> = Object.fromEntries(
      stdout
        .trim()
        .split('\n')
        .map((l) => l.split(' ') as [string, string]),
    );
    expect(Object.keys(counts).sort()).toEqual([...entries].sort());
    for (const entry of entries) expect(Number(counts[entry])).toBeGreaterThan(5);
  });
});
