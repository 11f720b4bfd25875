/**
 * The `ami-chroot` command: runs Packer templates unchanged, or a TypeScript build file, through
 * the public API only. `./bin.ts` is the executable that runs it.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ConfigError,
  buildAmi,
  cleanupOrphans,
  formatPlan,
  isAbortError,
  loadPackerTemplate,
  planBuild,
  runPackerProvisioners,
  writePackerManifest,
} from '../index.js';
import type {
  AmiChrootError,
  BuildAmiOptions,
  BuildConfig,
  BuildResult,
  CleanupOrphansOptions,
  PackerBuild,
  ProvisionFn,
} from '../index.js';
import { EXIT, HELP, parseArgs, UsageError } from './args.js';
import { importBuildFile, isBuildFile } from './build-file.js';
import type { CliArgs } from './args.js';
import { createOutput, redactor } from './output.js';
import type { Output } from './output.js';

/**
 * What a test harness injects through `AMI_CHROOT_CLI_TEST_HOOK` (a module whose default export
 * returns it): the test EC2's clients, its host identity, a loop-device resolver, and config paths
 * under the test's temp dir. Not part of the documented surface: a real host needs none of it.
 */
interface TestHook {
  readonly options?: Partial<BuildAmiOptions & CleanupOrphansOptions>;
  readonly config?: Partial<BuildConfig>;
}

async function testHook(command: 'build' | 'cleanup'): Promise<TestHook> {
  const hook = process.env['AMI_CHROOT_CLI_TEST_HOOK'];
  if (!hook) return {};
  const mod = (await import(pathToFileURL(resolve(hook)).href)) as {
    default: (command: 'build' | 'cleanup') => TestHook | Promise<TestHook>;
  };
  return mod.default(command);
}

/** A build to run: from a template, or from a build file. */
interface Job {
  readonly name: string;
  readonly config: BuildConfig;
  readonly provision: ProvisionFn;
  readonly packer?: PackerBuild;
}

async function loadJobs(args: CliArgs, out: Output): Promise<{ jobs: Job[]; secrets: string[] }> {
  const target = args.target!;
  if (isBuildFile(target)) {
    const mod = await importBuildFile(resolve(target));
    const from = (mod.default && typeof mod.default === 'object' ? mod.default : mod) as Record<string, unknown>;
    const config = from.config as BuildConfig | undefined;
    const provision = from.provision as ProvisionFn | undefined;
    if (!config || typeof config !== 'object' || typeof provision !== 'function')
      throw new UsageError(
        `${target} must export \`config\` (a BuildConfig) and \`provision\` (a function); found ${Object.keys(from).join(', ') || 'no exports'}`,
      );
    return { jobs: [{ name: target, config, provision }], secrets: [] };
  }
  const template = await loadPackerTemplate(target, {
    variables: args.variables,
    only: args.only,
    except: args.except,
    ignoreUnsupported: args.ignoreUnsupported,
  });
  for (const w of template.warnings) out.logger.warn(w);
  if (template.builds.length === 0) throw new UsageError(`${target}: no build left after -only/-except`);
  const jobs = template.builds.map((b) => ({
    name: b.name,
    config: b.config,
    packer: b,
    provision: (chroot, info) => runPackerProvisioners(b, chroot, info.packer, { logger: out.logger }),
  })) satisfies Job[];
  return { jobs, secrets: [...template.sensitiveValues] };
}

function secretsOf(config: BuildConfig): string[] {
  return [config.secretKey, config.token, config.mfaCode].filter((s): s is string => typeof s === 'string');
}

/** Runs one build; the caller's signal aborts it, and cleanup runs to the end whatever happens. */
async function runJob(job: Job, signal: AbortSignal, out: Output, runUuid: string): Promise<BuildResult> {
  const hook = await testHook('build');
  const options: BuildAmiOptions = {
    signal,
    logger: out.logger,
    onProgress: (e) => out.event(job.name, e),
    ...hook.options,
  };
  const result = await buildAmi({ ...job.config, ...hook.config }, job.provision, options);
  if (job.packer) {
    const files = await writePackerManifest(job.packer, { images: result.images, data: { ...result } }, runUuid);
    for (const f of files) out.message(`${job.name}: manifest written to ${f}`, { build: job.name, manifest: f });
  }
  return result;
}

async function commandBuild(args: CliArgs, out: Output, signal: AbortSignal): Promise<number> {
  const { jobs } = await loadJobs(args, out);
  const runUuid = randomUUID();
  let code: number = EXIT.ok;
  // One build after the other: parallel builds on one host are the library's job, not the CLI's.
  for (const job of jobs) {
    if (signal.aborted) break;
    out.message(`==> ${job.name}: building ${String(job.config.amiName)}`);
    try {
      const result = await runJob(job, signal, out, runUuid);
      const ids = Object.entries(result.images)
        .map(([region, ami]) => `${region}: ${ami}`)
        .join(', ');
      out.message(`==> ${job.name}: done in ${(result.durationMs / 1000).toFixed(1)}s: ${ids}`, {
        build: job.name,
        result: { images: result.images, snapshots: result.snapshots, buildId: result.buildId },
      });
      if (result.cleanupErrors.length > 0) {
        for (const e of result.cleanupErrors) out.error(`${job.name}: cleanup: ${e.message}`);
        code = EXIT.leftovers;
      }
    } catch (error) {
      if (signal.aborted && isAbortError(error)) {
        out.error(`==> ${job.name}: interrupted; everything it created was removed`);
        return EXIT.interrupted;
      }
      out.error(`==> ${job.name}: failed: ${(error as Error).message}`, {
        build: job.name,
        code: (error as AmiChrootError).code,
      });
      const causes = (error as { cleanupErrors?: readonly Error[] }).cleanupErrors;
      if (causes && causes.length > 0) return EXIT.leftovers;
      code = code === EXIT.ok ? EXIT.failed : code;
    }
  }
  return signal.aborted ? EXIT.interrupted : code;
}

/** `build --dry-run`: each build's plan against AWS (planBuild); exit 1 when one would fail. */
async function commandDryRun(args: CliArgs, out: Output, signal: AbortSignal): Promise<number> {
  const { jobs } = await loadJobs(args, out);
  const hook = await testHook('build');
  let code: number = EXIT.ok;
  for (const job of jobs) {
    const plan = await planBuild(
      { ...job.config, ...hook.config },
      { signal, logger: out.logger, onProgress: (e) => out.event(job.name, e), ...hook.options },
    );
    out.message(`==> ${job.name}: dry run, nothing was created\n${formatPlan(plan)}`, {
      build: job.name,
      plan,
    });
    if (plan.problems.length > 0) code = EXIT.failed;
  }
  return code;
}

async function commandValidate(args: CliArgs, out: Output): Promise<number> {
  const { jobs } = await loadJobs(args, out);
  out.message(`${args.target}: valid (${jobs.map((j) => j.name).join(', ')})`, { builds: jobs.map((j) => j.name) });
  return EXIT.ok;
}

async function commandPlan(args: CliArgs, out: Output): Promise<number> {
  const { jobs } = await loadJobs(args, out);
  for (const job of jobs) {
    const steps = (job.packer?.provisioners ?? []).map((p) => ({
      type: p.type,
      at: p.location,
      settings: p.settings(new Proxy({}, { get: (_, k) => `<build.${String(k)}>` })),
    }));
    const post = (job.packer?.postProcessors ?? []).map((p) => ({ type: p.type, at: p.location }));
    out.message(
      [
        `==> ${job.name}`,
        `config: ${JSON.stringify(job.config, null, 2)}`,
        job.packer
          ? `provisioners (in order):${steps.map((s, i) => `\n  ${i + 1}. ${s.type} (${s.at}): ${JSON.stringify(s.settings)}`).join('') || ' none'}`
          : "provision: the build file's provision function",
        job.packer ? `post-processors:${post.map((p) => `\n  - ${p.type} (${p.at})`).join('') || ' none'}` : '',
      ]
        .filter(Boolean)
        .join('\n'),
      { build: job.name, config: job.config, provisioners: steps, postProcessors: post },
    );
  }
  return EXIT.ok;
}

async function commandCleanup(args: CliArgs, out: Output, signal: AbortSignal): Promise<number> {
  const report = await cleanupOrphans({
    dryRun: !args.yes,
    signal,
    logger: out.logger,
    ...(args.regions.length > 0 ? { regions: args.regions } : {}),
    ...(args.olderThanMs === undefined ? {} : { olderThan: args.olderThanMs }),
    ...(await testHook('cleanup')).options,
  });
  const verb = args.yes ? 'removed' : 'would remove';
  for (const r of report.removed)
    out.message(`${verb} ${r.kind} ${r.id} (${r.region}, build ${r.buildId})`, {
      action: args.yes ? 'removed' : 'found',
      ...r,
    });
  for (const r of report.kept)
    out.message(`kept ${r.kind} ${r.id} (${r.region}): ${r.reason}`, { action: 'kept', ...r });
  for (const r of report.failed)
    out.error(`could not remove ${r.kind} ${r.id} (${r.region}): ${r.error.message}`, {
      action: 'failed',
      kind: r.kind,
      id: r.id,
      region: r.region,
    });
  if (!args.yes && report.removed.length > 0)
    out.message(`dry run: run again with --yes to remove ${report.removed.length} resource(s)`);
  if (report.removed.length === 0 && report.kept.length === 0 && report.failed.length === 0)
    out.message('nothing to clean up');
  return report.failed.length > 0 ? EXIT.leftovers : EXIT.ok;
}

async function version(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Runs the command line; resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let args: CliArgs;
  try {
    args = parseArgs(argv);
  } catch (error) {
    process.stderr.write(`ami-chroot: ${(error as Error).message}\n`);
    return EXIT.usage;
  }
  if (args.command === 'help') {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  if (args.command === 'version') {
    process.stdout.write(`${await version()}\n`);
    return EXIT.ok;
  }
  const mode = args.json ? 'json' : args.plain || process.env['CI'] || !process.stderr.isTTY ? 'plain' : 'tty';
  let secrets: string[] = [];
  const out = createOutput(mode, (text) => redactor(secrets)(text));
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (name: string) => {
    interrupts++;
    if (interrupts === 1) {
      out.error(`${name}: stopping and cleaning up (a second Ctrl-C does not stop the cleanup)`);
      controller.abort(new Error(`interrupted by ${name}`));
    } else out.error(`${name}: still cleaning up; wait for it to finish so nothing is left behind`);
  };
  const sigint = () => onSignal('SIGINT');
  const sigterm = () => onSignal('SIGTERM');
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigterm);
  try {
    switch (args.command) {
      case 'build':
        // Secrets are known only once the template is loaded; loading twice is cheap.
        secrets = await peekSecrets(args, out);
        if (args.dryRun) return await commandDryRun(args, out, controller.signal);
        return await commandBuild(args, out, controller.signal);
      case 'validate':
        return await commandValidate(args, out);
      case 'plan':
        secrets = await peekSecrets(args, out);
        return await commandPlan(args, out);
      case 'cleanup':
        return await commandCleanup(args, out, controller.signal);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      out.error(`ami-chroot: ${error.message}`);
      return EXIT.usage;
    }
    if (error instanceof ConfigError) {
      out.error(`ami-chroot: ${args.target ?? ''}: ${error.message}`, { code: error.code, issues: error.issues });
      return EXIT.usage;
    }
    if (controller.signal.aborted) return EXIT.interrupted;
    out.error(`ami-chroot: ${(error as Error).message}`, { code: (error as AmiChrootError).code });
    return EXIT.failed;
  } finally {
    out.close();
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
  }
}

/** The values to redact: the template's sensitive variables and the configs' credentials. */
async function peekSecrets(args: CliArgs, out: Output): Promise<string[]> {
  const quiet: Output = { ...out, logger: { ...out.logger, warn: () => {} } };
  const { jobs, secrets } = await loadJobs(args, quiet);
  return [...secrets, ...jobs.flatMap((j) => secretsOf(j.config))];
}
