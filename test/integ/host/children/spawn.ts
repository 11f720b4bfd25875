/**
 * Starts a TypeScript child process (through tsx) and reads its stdout line by line, so tests can
 * run real concurrent or killed builds. Every child is killed at `stop()`, whatever happened.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Child {
  readonly proc: ChildProcess;
  /** Resolves with the next stdout line (rejects if the child exits first). */
  nextLine(): Promise<string>;
  /** Resolves when the child has exited. */
  readonly exited: Promise<number | null>;
  /** SIGKILLs the child if it is still running, and waits for it. */
  stop(): Promise<void>;
}

export function startChild(script: string, args: readonly string[]): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines: string[] = [];
  const waiters: { resolve: (l: string) => void; reject: (e: Error) => void }[] = [];
  let done = false;
  createInterface({ input: proc.stdout }).on('line', (line) => {
    const w = waiters.shift();
    if (w) w.resolve(line);
    else lines.push(line);
  });
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      done = true;
      for (const w of waiters.splice(0))
        w.reject(new Error(`child ${script} exited (${code}) before printing a line: ${stderr}`));
      resolve(code);
    }),
  );
  return {
    proc,
    exited,
    nextLine: () => {
      const l = lines.shift();
      if (l !== undefined) return Promise.resolve(l);
      if (done) return Promise.reject(new Error(`child ${script} has exited: ${stderr}`));
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    },
    stop: async () => {
      if (!done) proc.kill('SIGKILL');
      await exited;
    },
  };
}
