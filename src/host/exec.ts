/**
 * Running host commands. Argument arrays, never a shell, except for what is a shell command by
 * definition (pre/post-mount commands, Packer's command_wrapper). Every call is abortable and can
 * time out; both end the child's whole process group, so nothing it started outlives the call.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { CommandError } from '../errors.js';
import type { Phase } from '../errors.js';
import type { Logger, ProgressListener } from '../types.js';
import { sleep as delay } from '../internal/abort.js';
import { toCtx } from '../internal/ctx.js';

/**
 * Packer's `command_wrapper`: receives a complete, shell-quoted command line and returns the line
 * to run with `/bin/sh -c`.
 *
 * @example
 * ```ts
 * import { mountChroot } from 'ami-chroot/host';
 * import type { CommandWrapper } from 'ami-chroot/host';
 *
 * const commandWrapper: CommandWrapper = (command) => `sudo -n ${command}`;
 * await using chroot = await mountChroot({ device: '/dev/xvdf', commandWrapper }); // sudo -n mount …
 * console.log(chroot.root);
 * ```
 * @public
 */
export type CommandWrapper = (command: string) => string;

/**
 * Options of {@link run} and {@link runShell}.
 * @internal
 */
export interface RunOptions {
  /** Stops the command (its whole process group); the call then rejects with the signal's reason. */
  readonly signal?: AbortSignal | undefined;
  /** Receives the command line (debug) and its output lines. */
  readonly logger?: Partial<Logger> | undefined;
  /** Receives an `output` event per line. */
  readonly onProgress?: ProgressListener | undefined;
  /** Kill the command (its whole process group) after this long. @defaultValue no limit */
  readonly timeoutMs?: number | undefined;
  /** Extra environment variables; `undefined` removes one. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /** Start from this process's environment. False passes exactly `env`. @defaultValue true */
  readonly extendEnv?: boolean | undefined;
  /** Working directory. @defaultValue this process's */
  readonly cwd?: string | undefined;
  /** Written to the command's standard input, which is then closed. @defaultValue no input (stdin is /dev/null) */
  readonly input?: string | Uint8Array | undefined;
  /** Wraps the command line (Packer's command_wrapper); the command then runs with `/bin/sh -c`. */
  readonly commandWrapper?: CommandWrapper | undefined;
  /** Time between SIGTERM and SIGKILL when the command is stopped. @defaultValue 2000 */
  readonly killGraceMs?: number | undefined;
  /** The build phase named in errors. */
  readonly phase?: Phase | undefined;
  /** Logger level for the command's stdout lines; stderr lines go to debug (all are `output` events). @defaultValue 'debug' */
  readonly outputLevel?: 'debug' | 'info' | 'silent' | undefined;
  /** Show this instead of the real command line in logs and errors (e.g. for a long script). */
  readonly displayCommand?: string | undefined;
  /** Fail when stdout exceeds this many bytes. @defaultValue 64 MiB */
  readonly maxBufferBytes?: number | undefined;
  /** Exit codes that count as success. @defaultValue [0] */
  readonly okExitCodes?: readonly number[] | undefined;
}

/**
 * What a finished command produced.
 * @public
 */
export interface RunResult {
  /** Standard output, complete. */
  readonly stdout: string;
  /** Standard error, complete. */
  readonly stderr: string;
  /** The exit code (0 unless `okExitCodes` allowed another). */
  readonly exitCode: number;
}

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Quotes one word for a POSIX shell: single quotes, with `'` written as `'\''`. Nothing inside
 * is expanded (`$`, backticks, globs), unlike Packer's double-quoting. Plain words stay bare so
 * logs stay readable.
 * @internal
 */
export function shellQuote(word: string): string {
  if (word !== '' && SAFE_WORD.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * Joins a program and its arguments into one shell-safe command line.
 * @internal
 */
export function commandLine(file: string, args: readonly string[]): string {
  return [file, ...args].map(shellQuote).join(' ');
}

// Process groups of commands still running, killed if this process exits first (a crash or
// process.exit must not leave mount or chroot commands behind).
const liveGroups = new Set<number>();
let exitHookInstalled = false;
function trackGroup(pgid: number): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const g of liveGroups) signalGroup(g, 'SIGKILL');
    });
  }
  liveGroups.add(pgid);
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already empty.
  }
}

/**
 * Pids of the non-zombie members of a process group. Zombies hold no files, mounts or cwd, and
 * on hosts whose init does not reap orphans they linger forever, so they don't count.
 * @internal
 */
export async function liveGroupMembers(pgid: number, procRoot = '/proc'): Promise<number[]> {
  const members: number[] = [];
  let names: string[];
  try {
    names = await readdir(procRoot);
  } catch {
    return members;
  }
  await Promise.all(
    names.map(async (name) => {
      if (!/^\d+$/.test(name)) return;
      try {
        const stat = await readFile(`${procRoot}/${name}/stat`, 'utf8');
        // Fields after the parenthesised command: state ppid pgrp ...
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (rest[0] !== 'Z' && Number(rest[2]) === pgid) members.push(Number(name));
      } catch {
        // The process exited while we looked.
      }
    }),
  );
  return members;
}

const TAIL_BYTES = 4096;

function phaseOf(options: RunOptions): { phase?: Phase } {
  return options.phase === undefined ? {} : { phase: options.phase };
}

function tail(text: string): string {
  const trimmed = text.trimEnd();
  return trimmed.length > TAIL_BYTES ? `…${trimmed.slice(-TAIL_BYTES)}` : trimmed;
}

function shorten(text: string, max = 300): string {
  const oneLine = text.replace(/\s*\n\s*/g, '; ');
  return oneLine.length > max ? `${oneLine.slice(0, max)}…` : oneLine;
}

/**
 * Runs a program with an argument array (no shell), or, with `commandWrapper`, the wrapped,
 * shell-quoted command line with `/bin/sh -c`. Resolves when the program has exited and its
 * output is read; rejects with {@link CommandError} on a non-zero exit or timeout, and with the
 * signal's reason on abort, in both cases only after its whole process group is gone.
 *
 * @remarks
 * The child starts in its own process group (`detached`), so stopping it (SIGTERM, then SIGKILL
 * after `killGraceMs`) also stops everything it started that stayed in the group. Background
 * processes that outlive a *successful* command (a daemon started by a script) are left alone:
 * output they keep writing is not waited for.
 * @internal
 */
export function run(file: string, args: readonly string[] = [], options: RunOptions = {}): Promise<RunResult> {
  const wrapper = options.commandWrapper;
  if (wrapper) {
    const line = commandLine(file, args);
    return spawnAndWait('/bin/sh', ['-c', wrapper(line)], file, args, options);
  }
  return spawnAndWait(file, args, file, args, options);
}

/**
 * Runs a shell command line with `/bin/sh -c` (wrapped first if `commandWrapper` is set). Only
 * for options that are shell commands by definition; quote any value you put into `script` with
 * {@link shellQuote}.
 * @internal
 */
export function runShell(script: string, options: RunOptions = {}): Promise<RunResult> {
  const line = options.commandWrapper ? options.commandWrapper(script) : script;
  return spawnAndWait('/bin/sh', ['-c', line], 'sh', ['-c', script], options);
}

// After the program exits, output still buffered in the pipes is read; output from background
// processes that inherited the pipes is not waited for longer than this.
const DRAIN_MS = 100;

async function spawnAndWait(
  spawnFile: string,
  spawnArgs: readonly string[],
  file: string,
  args: readonly string[],
  options: RunOptions,
): Promise<RunResult> {
  const ctx = toCtx(options);
  const signal = options.signal;
  signal?.throwIfAborted();
  const display = options.displayCommand ?? commandLine(file, args);
  const name = basename(file);
  const killGraceMs = options.killGraceMs ?? 2000;
  const maxBuffer = options.maxBufferBytes ?? 64 * 1024 * 1024;
  const okCodes = options.okExitCodes ?? [0];
  const level = options.outputLevel ?? 'debug';

  const env: Record<string, string> = {};
  if (options.extendEnv ?? true) {
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  }
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }

  const fields = { command: name, ...phaseOf(options) };
  const started = performance.now();
  ctx.logger.debug(`$ ${display}`, fields);
  const child = spawn(spawnFile, spawnArgs, {
    detached: true,
    env,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });

  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  let stdoutBytes = 0;
  let overflow = false;
  const partial = { stdout: '', stderr: '' };
  const emitLines = (stream: 'stdout' | 'stderr', chunk: Buffer, flush: boolean): void => {
    const text = partial[stream] + chunk.toString('utf8');
    const lines = text.split('\n');
    partial[stream] = flush ? '' : (lines.pop() ?? '');
    for (const line of lines) {
      if (flush && line === '') continue;
      ctx.emit({ type: 'output', stream, command: name, line });
      // stderr is diagnostics and progress (apt, curl): detail, not a milestone. A failure
      // carries its tail in the CommandError; onProgress gets every line.
      const lineLevel = level !== 'silent' && stream === 'stderr' ? 'debug' : level;
      if (lineLevel !== 'silent') ctx.logger[lineLevel](`[${name}] ${line}`, { ...fields, stream });
    }
  };

  let timedOut = false;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const pgid = child.pid;
      if (pgid === undefined) return;
      signalGroup(pgid, 'SIGTERM');
      const deadline = Date.now() + killGraceMs;
      // Poll quickly: most programs exit on TERM within milliseconds.
      let pauseMs = 5;
      while ((await liveGroupMembers(pgid)).length > 0) {
        if (Date.now() >= deadline) {
          signalGroup(pgid, 'SIGKILL');
          break;
        }
        await delay(pauseMs);
        pauseMs = Math.min(pauseMs * 2, 100);
      }
    })();
    return stopping;
  };

  const onAbort = (): void => void stop();
  let timer: NodeJS.Timeout | undefined;

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, sig) => resolve({ code, signal: sig }));
  });
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));

  if (child.pid !== undefined) trackGroup(child.pid);
  signal?.addEventListener('abort', onAbort, { once: true });
  if (options.timeoutMs !== undefined && Number.isFinite(options.timeoutMs)) {
    timer = setTimeout(() => {
      timedOut = true;
      void stop();
    }, options.timeoutMs);
    timer.unref();
  }

  child.stdout!.on('data', (chunk: Buffer) => {
    stdoutBytes += chunk.length;
    if (stdoutBytes > maxBuffer) {
      if (!overflow) {
        overflow = true;
        void stop();
      }
      return;
    }
    stdout.push(chunk);
    emitLines('stdout', chunk, false);
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr.push(chunk);
    emitLines('stderr', chunk, false);
  });
  if (options.input !== undefined && child.stdin) {
    // A program that exits without reading its input must not crash us with EPIPE.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input);
  }

  try {
    let exit: { code: number | null; signal: NodeJS.Signals | null };
    try {
      exit = await exited;
    } catch (error) {
      throw new CommandError(`Could not start \`${display}\`: ${(error as Error).message}`, {
        command: file,
        args,
        ...phaseOf(options),
        cause: error,
      });
    }
    // The program is done: a late timer or abort must not stop what it left running.
    if (timer) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    if (stopping) await stopping;
    // Read what is left in the pipes; don't wait for background processes holding them.
    let drainTimer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      closed.then(() => true),
      new Promise<boolean>((resolve) => (drainTimer = setTimeout(() => resolve(false), DRAIN_MS))),
    ]);
    clearTimeout(drainTimer);
    if (!drained) {
      child.stdout!.destroy();
      child.stderr!.destroy();
    }
    emitLines('stdout', Buffer.alloc(0), true);
    emitLines('stderr', Buffer.alloc(0), true);

    const durationMs = Math.round(performance.now() - started);
    ctx.logger.debug(`${name} exited with ${exit.code ?? exit.signal} after ${durationMs} ms`, {
      ...fields,
      exitCode: exit.code,
      durationMs,
    });
    if (signal?.aborted) throw signal.reason;
    const out = Buffer.concat(stdout).toString('utf8');
    const err = Buffer.concat(stderr).toString('utf8');
    const errTail = tail(err);
    const withStderr = errTail ? `\n${errTail}` : '';
    if (timedOut) {
      throw new CommandError(
        `Command timed out after ${options.timeoutMs} ms and was stopped: ${shorten(display)}${withStderr}`,
        {
          command: file,
          args,
          exitCode: exit.code,
          signal: exit.signal,
          stderr: errTail,
          timedOut: true,
          ...phaseOf(options),
        },
      );
    }
    if (overflow) {
      throw new CommandError(`Command output exceeded ${maxBuffer} bytes and was stopped: ${shorten(display)}`, {
        command: file,
        args,
        exitCode: exit.code,
        signal: exit.signal,
        stderr: errTail,
        ...phaseOf(options),
      });
    }
    if (exit.code === null || !okCodes.includes(exit.code)) {
      const how = exit.code === null ? `was killed by ${exit.signal}` : `failed with exit code ${exit.code}`;
      throw new CommandError(`Command ${how}: ${shorten(display)}${withStderr}`, {
        command: file,
        args,
        exitCode: exit.code,
        signal: exit.signal,
        stderr: errTail,
        ...phaseOf(options),
      });
    }
    return { stdout: out, stderr: err, exitCode: exit.code };
  } finally {
    if (timer) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    if (child.pid !== undefined) liveGroups.delete(child.pid);
  }
}
