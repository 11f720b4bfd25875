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

/**
 * Imports `entry` (a source path) in a fresh process and returns every module URL it resolved.
 * `then` is the body of an async function run after the import with the entry's exports as `m`
 * (e.g. one AWS call); what it loads is listed too.
 */
export async function modulesLoadedBy(entry: string, then?: string): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'ami-chroot-modules-'));
  try {
    const file = join(dir, 'loaded.txt');
    const script = [
      "import { register } from 'node:module';",
      `register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(RECORDER)}`)}, import.meta.url, { data: { file: ${JSON.stringify(file)} } });`,
      `const m = await import(${JSON.stringify(pathToFileURL(entry).href)});`,
      ...(then === undefined ? [] : [`await (async (m) => { ${then} })(m);`]),
      // CommonJS modules loaded by require() (the SDK's own, or a synchronous factory's) pass no
      // resolve hook: read them from the require cache.
      "import { appendFileSync } from 'node:fs'; import { createRequire } from 'node:module'; import { pathToFileURL } from 'node:url';",
      `appendFileSync(${JSON.stringify(file)}, Object.keys(createRequire(import.meta.url).cache).map((p) => pathToFileURL(p).href + '\\n').join(''));`,
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
