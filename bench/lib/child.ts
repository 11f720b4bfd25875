/**
 * A benchmark's helper process that talks JSON lines on stdout: a TypeScript script under bench/
 * run by Node with tsx's loader (no tsx CLI in between, so the PID is the script's own).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from './report.js';

/**
 * A running helper process.
 * @internal
 */
export interface JsonChild {
  readonly pid: number;
  /** The next JSON line it prints (rejects if it exits first, with the end of its stderr). */
  next<T>(): Promise<T>;
  /** Writes one line to its stdin. */
  send(line: string): void;
  /** Closes its stdin. */
  end(): void;
  /** Resolves with its exit code once it has exited. */
  readonly exited: Promise<number | null>;
  /** Ends it: SIGTERM, then SIGKILL after `graceMs` if it is still there. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts `node --import tsx <script> ...args` in the repository root.
 * @internal
 */
export function spawnJsonChild(script: string, args: readonly string[]): JsonChild {
  const child: ChildProcess = spawn(process.execPath, ['--no-warnings', '--import', 'tsx', script, ...args], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  const queue: unknown[] = [];
  const waiters: { resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  let closed: Error | undefined;
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return; // not ours (a library log line): ignore
    }
    const waiter = waiters.shift();
    if (waiter) waiter.resolve(value);
    else queue.push(value);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('close', (code) => {
      closed = new Error(
        `${script} (pid ${child.pid}) exited with code ${code} before answering; its stderr:\n${stderr.trim()}`,
      );
      for (const waiter of waiters.splice(0)) waiter.reject(closed);
      resolve(code);
    });
  });
  child.once('error', (error) => {
    closed = error;
    for (const waiter of waiters.splice(0)) waiter.reject(error);
  });
  let stopping: Promise<void> | undefined;
  return {
    pid: child.pid ?? -1,
    next: <T>() =>
      new Promise<T>((resolve, reject) => {
        if (queue.length > 0) return resolve(queue.shift() as T);
        if (closed) return reject(closed);
        waiters.push({ resolve: resolve as (v: unknown) => void, reject });
      }),
    send: (line) => void child.stdin?.write(`${line}\n`),
    end: () => void child.stdin?.end(),
    exited,
    stop: (graceMs = 15_000) =>
      (stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(killer);
      })()),
  };
}
