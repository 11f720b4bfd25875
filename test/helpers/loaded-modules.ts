/**
 * The modules that importing one file loads, recorded in a fresh Node process: a resolve hook
 * chained after tsx's writes every URL it resolves to a file the caller reads back.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// Runs in Node's hooks thread; `data.file` comes from register().
const RECORDER = `
import { appendFileSync } from 'node:fs';
let file;
export async function initialize(data) { file = data.file; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(file, result.url + '\\n');
  return result;
}
`;

/** Imports `entry` (a source path) in a fresh process and returns every module URL it resolved. */
export async function modulesLoadedBy(entry: string): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'ami-chroot-modules-'));
  try {
    const file = join(dir, 'loaded.txt');
    const script = [
      "import { register } from 'node:module';",
      `register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(RECORDER)}`)}, import.meta.url, { data: { file: ${JSON.stringify(file)} } });`,
      `await import(${JSON.stringify(pathToFileURL(entry).href)});`,
    ].join('\n');
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.once('error', reject);
      child.once('close', (c) => resolve({ code: c, stderr: err }));
    });
    if (code !== 0) throw new Error(`importing ${entry} failed (exit ${String(code)}): ${stderr}`);
    return (await readFile(file, 'utf8')).split('\n').filter((line) => line !== '');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
