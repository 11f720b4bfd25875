/**
 * Running a command for a benchmark: argument arrays, no shell, output captured.
 */
import { spawn } from 'node:child_process';

/**
 * How a command ended.
 * @internal
 */
export interface ExecResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time from spawn to exit. */
  readonly wallMs: number;
}

/**
 * Runs `command` with `args` and resolves when it exits, whatever the exit code.
 * @internal
 */
export function exec(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        wallMs: performance.now() - started,
      });
    });
  });
}

/**
 * The last `n` lines of a command's output, for error messages.
 * @internal
 */
export function tail(text: string, n = 15): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}
