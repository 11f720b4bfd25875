/**
 * Runs a Packer template's provisioners as a build's provision function, with Packer's semantics:
 * `shell` scripts are uploaded into the chroot and run there with `execute_command`; `file`
 * uploads (and downloads) through the chroot handle; `shell-local` runs on the host. And writes
 * the `manifest` post-processor's file in Packer's format.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Chroot } from '../../chroot/chroot.js';
import { ProvisionError } from '../../errors.js';
import type { Logger } from '../../types.js';
import { didYouMean } from '../suggest.js';
import { isRecord } from './hcl-expr.js';
import type { PackerBuild, PackerStep } from './types.js';

/**
 * Options of {@link runPackerProvisioners}.
 * @public
 */
export interface RunPackerProvisionersOptions {
  /** Where provisioner output and notes go. @defaultValue the chroot's own logging only */
  readonly logger?: Partial<Logger>;
  /** Relative `source`/`script` paths resolve here (Packer: the working directory). @defaultValue `process.cwd()` */
  readonly cwd?: string;
}

const SETTINGS: Readonly<Record<string, readonly string[]>> = {
  shell: [
    'inline',
    'script',
    'scripts',
    'environment_vars',
    'env',
    'execute_command',
    'inline_shebang',
    'remote_folder',
    'remote_file',
    'remote_path',
    'skip_clean',
    'valid_exit_codes',
    'expect_disconnect',
    'env_var_format',
    'binary',
    'use_env_var_file',
    'start_retry_timeout',
    'pause_after',
  ],
  file: ['source', 'sources', 'destination', 'direction', 'generated', 'content'],
  'shell-local': [
    'inline',
    'script',
    'scripts',
    'command',
    'environment_vars',
    'env',
    'execute_command',
    'inline_shebang',
    'valid_exit_codes',
    'env_var_format',
    'only_on',
    'use_linux_pathing',
    'tempfile_extension',
  ],
  manifest: ['output', 'strip_path', 'strip_time', 'custom_data', 'keep_input_artifact'],
};
const COMMON = ['only', 'except', 'pause_before', 'max_retries', 'timeout', 'name', 'type', 'override'];

/**
 * Problems with one step's settings: unknown keys and missing required ones. Used when loading,
 * so that a typo fails before any AWS call.
 * @internal
 */
export function checkStepSettings(type: string, s: Readonly<Record<string, unknown>>): string[] {
  const known = SETTINGS[type] ?? [];
  const out = Object.keys(s)
    .filter((k) => !known.includes(k) && !COMMON.includes(k))
    .map((k) => {
      const hint = didYouMean(k, known);
      return `"${k}" is not a ${type} setting${hint ? `; did you mean "${hint}"?` : ` (known: ${known.join(', ')})`} (remove or rename it)`;
    });
  const has = (k: string) => s[k] !== undefined && s[k] !== '' && !(Array.isArray(s[k]) && s[k].length === 0);
  if ((type === 'shell' || type === 'shell-local') && !['inline', 'script', 'scripts', 'command'].some(has))
    out.push(`needs one of inline, script or scripts${type === 'shell-local' ? ', command' : ''}`);
  if (type === 'file') {
    if (!has('destination')) out.push('needs destination');
    if (!has('source') && !has('sources') && !has('content')) out.push('needs source, sources or content');
    if (s.direction !== undefined && s.direction !== 'upload' && s.direction !== 'download')
      out.push(`direction must be "upload" or "download", got ${JSON.stringify(s.direction)}`);
  }
  return out;
}

function strings(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

/** Packer's `{{.Vars}}`: `KEY='value' ` pairs, `'` escaped for a POSIX shell. */
function envVars(pairs: readonly [string, string][], format: string): string {
  return pairs
    .map(([k, v]) => {
      const quoted = v.replace(/'/g, `'"'"'`);
      let n = 0;
      return format.replace(/%s/g, () => (n++ === 0 ? k : quoted));
    })
    .join('');
}

function renderCommand(template: string, data: Readonly<Record<string, string>>): string {
  return template.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (all, name: string) => {
    if (!Object.hasOwn(data, name))
      throw new Error(
        `${all} is not available in execute_command (available: ${Object.keys(data)
          .map((k) => `{{.${k}}}`)
          .join(', ')})`,
      );
    return data[name]!;
  });
}

function parseDuration(v: unknown, what: string): number {
  if (v === undefined || v === '') return 0;
  if (typeof v === 'number') return v * 1000;
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v) : null;
  if (!m) throw new Error(`${what}: ${JSON.stringify(v)} is not a duration like "30s" or "5m"`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms'];
}

function envPairs(s: Readonly<Record<string, unknown>>, build: PackerBuild): [string, string][] {
  const pairs: [string, string][] = [
    ['PACKER_BUILDER_TYPE', 'amazon-chroot'],
    ['PACKER_BUILD_NAME', build.sourceName],
  ];
  for (const kv of strings(s.environment_vars)) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new Error(`environment_vars: ${JSON.stringify(kv)} is not KEY=value`);
    pairs.push([kv.slice(0, i), kv.slice(i + 1)]);
  }
  if (isRecord(s.env)) for (const [k, v] of Object.entries(s.env)) pairs.push([k, String(v)]);
  return pairs;
}

async function scriptsOf(
  s: Readonly<Record<string, unknown>>,
  cwd: string,
  shebang: string,
): Promise<{ name: string; body: Buffer }[]> {
  const out: { name: string; body: Buffer }[] = [];
  const inline = strings(s.inline);
  if (inline.length > 0) out.push({ name: 'inline', body: Buffer.from(`#!${shebang}\n${inline.join('\n')}\n`) });
  for (const file of [...strings(s.script), ...strings(s.scripts)]) {
    const raw = await readFile(resolve(cwd, file));
    // Packer turns CRLF into LF unless the script is binary.
    out.push({ name: file, body: s.binary === true ? raw : Buffer.from(raw.toString('utf8').replace(/\r\n/g, '\n')) });
  }
  return out;
}

function okCodes(s: Readonly<Record<string, unknown>>): number[] {
  const codes = strings(s.valid_exit_codes).map(Number);
  return codes.length > 0 ? codes : [0];
}

async function runShell(
  chroot: Chroot,
  s: Readonly<Record<string, unknown>>,
  build: PackerBuild,
  ctx: Ctx,
): Promise<void> {
  if (s.expect_disconnect !== undefined)
    ctx.logger.info?.(`${ctx.step.location}: expect_disconnect is ignored (a chroot has no connection to lose)`);
  const useFile = s.use_env_var_file === true;
  const exec =
    typeof s.execute_command === 'string'
      ? s.execute_command
      : useFile
        ? 'chmod +x {{.Path}}; . {{.EnvVarFile}} && {{.Path}}'
        : 'chmod +x {{.Path}}; {{.Vars}} {{.Path}}';
  const pairs = envPairs(s, build);
  const format = typeof s.env_var_format === 'string' ? s.env_var_format : useFile ? "export %s='%s'\n" : "%s='%s' ";
  const folder = typeof s.remote_folder === 'string' ? s.remote_folder : '/tmp';
  const scripts = await scriptsOf(s, ctx.cwd, typeof s.inline_shebang === 'string' ? s.inline_shebang : '/bin/sh -e');
  for (const script of scripts) {
    const remote =
      typeof s.remote_path === 'string'
        ? s.remote_path
        : `${folder}/${typeof s.remote_file === 'string' ? s.remote_file : `script_${Math.floor(Math.random() * 10_000)}.sh`}`;
    const envFile = `${folder}/packer-ps-env-vars-${randomUUID()}.sh`;
    await chroot.writeFile(remote, script.body, { mode: 0o755 });
    if (useFile) await chroot.writeFile(envFile, envVars(pairs, format), { mode: 0o644 });
    try {
      const command = renderCommand(exec, { Path: remote, Vars: envVars(pairs, format), EnvVarFile: envFile });
      const result = await chroot.sh(command, { okExitCodes: okCodes(s), signal: ctx.signal });
      ctx.logger.debug?.(`${ctx.step.location}: ${script.name} exited ${result.exitCode}`);
    } finally {
      if (s.skip_clean !== true) {
        await chroot
          .sh(`rm -f '${remote.replace(/'/g, `'"'"'`)}' '${envFile}'`, { outputLevel: 'silent' })
          .catch(() => {});
      }
    }
  }
  const pause = parseDuration(s.pause_after, 'pause_after');
  if (pause > 0) await sleep(pause, undefined, { signal: ctx.signal });
}

async function runFile(chroot: Chroot, s: Readonly<Record<string, unknown>>, ctx: Ctx): Promise<void> {
  const destination = String(s.destination);
  if (s.direction === 'download') {
    for (const src of strings(s.source)) {
      const target = destination.endsWith('/') ? join(destination, basename(src)) : destination;
      const real = await chroot.path(src);
      if ((await stat(real)).isDirectory())
        throw new Error(
          `${src} is a directory: downloading directories is not supported by the amazon-chroot file provisioner (as in Packer); download its files one by one`,
        );
      await writeFile(resolve(ctx.cwd, target), await chroot.readFile(src));
    }
    return;
  }
  if (typeof s.content === 'string') {
    await chroot.writeFile(destination, s.content);
    return;
  }
  const sources = [...strings(s.source), ...strings(s.sources)];
  for (const src of sources) {
    const host = resolve(ctx.cwd, src);
    const info = await stat(host).catch(() => undefined);
    if (!info) throw new Error(`source ${src} does not exist on the host (${host})`);
    if (info.isDirectory() && src.endsWith('/')) {
      // Packer's trailing-slash rule: the directory's contents go into the destination.
      const exists = await chroot.path(destination).then(
        async (p) => (await stat(p).catch(() => undefined))?.isDirectory() ?? false,
        () => false,
      );
      if (!exists) await chroot.copyIn(host, destination);
      else for (const entry of await readdir(host)) await chroot.copyIn(join(host, entry), destination);
    } else {
      const target =
        destination.endsWith('/') || sources.length > 1
          ? `${destination.replace(/\/+$/, '')}/${basename(host)}`
          : destination;
      await chroot.copyIn(host, info.isDirectory() ? destination : target);
    }
  }
}

async function runLocal(s: Readonly<Record<string, unknown>>, build: PackerBuild, ctx: Ctx): Promise<void> {
  const pairs = envPairs(s, build);
  const format = typeof s.env_var_format === 'string' ? s.env_var_format : "%s='%s' ";
  const exec = Array.isArray(s.execute_command)
    ? s.execute_command.map(String)
    : ['/bin/sh', '-c', '{{.Vars}} {{.Script}}'];
  const dir = await mkdtemp(join(tmpdir(), 'ami-chroot-shell-local-'));
  try {
    const scripts = await scriptsOf(s, ctx.cwd, typeof s.inline_shebang === 'string' ? s.inline_shebang : '/bin/sh -e');
    if (typeof s.command === 'string')
      scripts.unshift({ name: 'command', body: Buffer.from(`#!/bin/sh -e\n${s.command}\n`) });
    for (const [i, script] of scripts.entries()) {
      const path = join(dir, `script-${i}${typeof s.tempfile_extension === 'string' ? s.tempfile_extension : '.sh'}`);
      await writeFile(path, script.body, { mode: 0o700 });
      const data = {
        Vars: envVars(pairs, format),
        Script: path,
        Command: typeof s.command === 'string' ? s.command : '',
      };
      const argv = exec.map((a) => renderCommand(a, data));
      const code = await new Promise<number>((done, failed) => {
        const child = spawn(argv[0]!, argv.slice(1), {
          cwd: ctx.cwd,
          env: { ...process.env, ...Object.fromEntries(pairs) },
          stdio: ['ignore', 'pipe', 'pipe'],
          signal: ctx.signal,
        });
        const log = (chunk: Buffer) => {
          for (const line of chunk.toString('utf8').split('\n')) if (line) ctx.logger.info?.(line);
        };
        child.stdout.on('data', log);
        child.stderr.on('data', log);
        child.on('error', failed);
        child.on('close', (c) => done(c ?? 1));
      });
      if (!okCodes(s).includes(code))
        throw new Error(`${script.name} exited with ${code} on the host (valid: ${okCodes(s).join(', ')})`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface Ctx {
  readonly logger: Partial<Logger>;
  readonly cwd: string;
  readonly signal: AbortSignal;
  readonly step: PackerStep;
}

async function runStep(
  chroot: Chroot,
  step: PackerStep,
  data: Readonly<Record<string, unknown>>,
  build: PackerBuild,
  ctx: Ctx,
): Promise<void> {
  const s = step.settings(data);
  const pause = parseDuration(s.pause_before, 'pause_before');
  if (pause > 0) await sleep(pause, undefined, { signal: ctx.signal });
  const timeout = parseDuration(s.timeout, 'timeout');
  const signal = timeout > 0 ? AbortSignal.any([ctx.signal, AbortSignal.timeout(timeout)]) : ctx.signal;
  const tries = 1 + (typeof s.max_retries === 'number' ? s.max_retries : Number(s.max_retries ?? 0) || 0);
  for (let attempt = 1; ; attempt++) {
    try {
      if (step.type === 'shell') return await runShell(chroot, s, build, { ...ctx, signal });
      if (step.type === 'file') return await runFile(chroot, s, { ...ctx, signal });
      return await runLocal(s, build, { ...ctx, signal });
    } catch (error) {
      if (attempt >= tries || ctx.signal.aborted) throw error;
      ctx.logger.warn?.(
        `${step.location}: ${step.type} failed (${(error as Error).message}); retry ${attempt} of ${tries - 1}`,
      );
    }
  }
}

/**
 * Runs a loaded build's provisioners, in order, inside the chroot: the provision function of
 * {@link buildAmi} for a Packer template.
 *
 * @remarks
 * `shell`: each script (inline lines become one script with `inline_shebang`, default
 * `/bin/sh -e`) is written to `remote_folder`/`remote_file` (default `/tmp/script_NNNN.sh`) in the
 * chroot and run there by the chroot's `/bin/sh -c` with `execute_command` (default
 * `chmod +x {{.Path}}; {{.Vars}} {{.Path}}`), then removed; `environment_vars` are single-quoted
 * and `PACKER_BUILDER_TYPE`/`PACKER_BUILD_NAME` are set, as in Packer. `expect_disconnect` is
 * ignored with a note. `file`: uploads files and directories (a trailing `/` on a directory
 * source uploads its contents), `content`, and `direction = "download"` for files. `shell-local`:
 * runs on the host with `execute_command` (default `["/bin/sh", "-c", "{{.Vars}} {{.Script}}"]`).
 * `pause_before`, `timeout` and `max_retries` apply to every step.
 *
 * @example
 * ```ts
 * import { buildAmi, loadPackerTemplate, runPackerProvisioners } from 'ami-chroot';
 *
 * const [build] = (await loadPackerTemplate('template.json')).builds;
 * if (build) await buildAmi(build.config, (chroot, info) => runPackerProvisioners(build, chroot, info.packer, { logger: console }));
 * ```
 * @param build - a build of {@link loadPackerTemplate}
 * @param chroot - the chroot handle the build passes to its provision function
 * @param data - the build data (HCL2 `build.*`, legacy `{{ build `Name` }}`): `info.packer` of
 *   buildAmi's or buildImage's provision function
 * @param options - logger, working directory
 * @throws {@link ProvisionError} naming the provisioner's `file:line` when a step fails
 * @public
 */
export async function runPackerProvisioners(
  build: PackerBuild,
  chroot: Chroot,
  data: object,
  options: RunPackerProvisionersOptions = {},
): Promise<void> {
  const record = { ...data } as Record<string, unknown>;
  for (const step of build.provisioners) {
    const ctx: Ctx = { logger: options.logger ?? {}, cwd: options.cwd ?? process.cwd(), signal: chroot.signal, step };
    options.logger?.info?.(`==> ${build.name}: provisioner ${step.type} (${step.location})`);
    try {
      await runStep(chroot, step, record, build, ctx);
    } catch (error) {
      if (chroot.signal.aborted) throw error;
      throw new ProvisionError(`Provisioner ${step.type} at ${step.location} failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
}

/**
 * What {@link writePackerManifest} needs of a finished build.
 * @public
 */
export interface PackerManifestInput {
  /** Images by region. */
  readonly images: Readonly<Record<string, string>>;
  /** Build data for HCL2 `build.*` in `custom_data`. */
  readonly data?: object;
}

/**
 * Writes the `manifest` post-processors of a build, in Packer's format: the file (`output`,
 * default `packer-manifest.json`) keeps earlier runs' entries and appends
 * `{ name, builder_type, build_time, files, artifact_id, packer_run_uuid, custom_data }`, with
 * `artifact_id` as `region:ami-...` pairs sorted and joined by commas, and sets `last_run_uuid`.
 *
 * @example
 * ```ts
 * import { buildAmi, loadPackerTemplate, runPackerProvisioners, writePackerManifest } from 'ami-chroot';
 *
 * const [build] = (await loadPackerTemplate('template.pkr.hcl')).builds;
 * if (build) {
 *   const result = await buildAmi(build.config, (chroot, info) => runPackerProvisioners(build, chroot, info.packer));
 *   const files = await writePackerManifest(build, result);
 *   console.log(files); // [ 'packer-manifest.json' ] unless the template sets output
 * }
 * ```
 * @param build - a build of {@link loadPackerTemplate}
 * @param result - its images (a {@link BuildResult} will do)
 * @param runUuid - the run's id, shared by every build of one run @defaultValue a new UUID
 * @returns the files written
 * @public
 */
export async function writePackerManifest(
  build: PackerBuild,
  result: PackerManifestInput,
  runUuid: string = randomUUID(),
): Promise<string[]> {
  const written: string[] = [];
  for (const step of build.postProcessors) {
    if (step.type !== 'manifest') continue;
    const s = step.settings({ ...(result.data ?? {}) });
    const output = typeof s.output === 'string' && s.output !== '' ? s.output : 'packer-manifest.json';
    let manifest: { builds: unknown[]; last_run_uuid: string } = { builds: [], last_run_uuid: runUuid };
    const existing = await readFile(output, 'utf8').catch(() => undefined);
    if (existing !== undefined) {
      try {
        const parsed = JSON.parse(existing) as unknown;
        if (isRecord(parsed) && Array.isArray(parsed.builds))
          manifest = { builds: parsed.builds, last_run_uuid: runUuid };
      } catch {
        // Packer overwrites a file it cannot read as a manifest.
      }
    }
    const artifactId = Object.entries(result.images)
      .map(([region, ami]) => `${region}:${ami}`)
      .sort()
      .join(',');
    manifest.builds.push({
      name: build.sourceName,
      builder_type: 'amazon-chroot',
      ...(s.strip_time === true ? {} : { build_time: Math.floor(Date.now() / 1000) }),
      files: null,
      artifact_id: artifactId,
      packer_run_uuid: runUuid,
      custom_data: isRecord(s.custom_data)
        ? Object.fromEntries(Object.entries(s.custom_data).map(([k, v]) => [k, String(v)]))
        : null,
    });
    await writeFile(output, `${JSON.stringify(manifest, null, 2)}\n`);
    written.push(output);
  }
  return written;
}
