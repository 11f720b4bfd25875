import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { CommandError } from '../../../src/errors.js';
import { commandLine, run, runShell, shellQuote } from '../../../src/host/exec.js';
import type { ProgressEvent } from '../../../src/types.js';

/** True while the process exists and is not a zombie (zombies hold nothing). */
async function running(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Collects `output` lines; resolves `pids` once `count` numeric lines arrived. */
function pidCollector(count: number) {
  const pids: number[] = [];
  let resolve!: () => void;
  const ready = new Promise<void>((r) => (resolve = r));
  const onProgress = (e: ProgressEvent): void => {
    if (e.type === 'output' && /^\d+$/.test(e.line)) {
      pids.push(Number(e.line));
      if (pids.length === count) resolve();
    }
  };
  return { pids, ready, onProgress };
}

describe('shellQuote', () => {
  it('leaves plain words bare and single-quotes everything else', () => {
    expect(shellQuote('/dev/sdf')).toBe('/dev/sdf');
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote('$HOME')).toBe("'$HOME'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote('')).toBe("''");
    expect(commandLine('mount', ['-o', 'ro,noatime', '/dev/x y', '/mnt/`id`'])).toBe(
      "mount -o ro,noatime '/dev/x y' '/mnt/`id`'",
    );
  });
});

describe('run', () => {
  it('passes arguments verbatim, without a shell', async () => {
    const r = await run('printf', ['%s|', 'a b', '$HOME', "it's", '`id`', '*']);
    expect(r).toEqual({ stdout: "a b|$HOME|it's|`id`|*|", stderr: '', exitCode: 0 });
  });

  it('writes input to stdin and sets the environment', async () => {
    const r = await run('sh', ['-c', 'cat; echo "$GREETING"'], { input: 'from stdin\n', env: { GREETING: 'hi' } });
    expect(r.stdout).toBe('from stdin\nhi\n');
  });

  it('passes exactly `env` when extendEnv is false', async () => {
    const r = await run('/usr/bin/env', [], { env: { ONLY: '1' }, extendEnv: false });
    expect(r.stdout).toBe('ONLY=1\n');
  });

  it('fails with the command, exit code and stderr', async () => {
    const error = await run('sh', ['-c', 'echo out; echo "bad thing" >&2; exit 3'], { phase: 'mount' }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CommandError);
    expect(error).toMatchObject({
      code: 'ERR_COMMAND',
      phase: 'mount',
      command: 'sh',
      args: ['-c', 'echo out; echo "bad thing" >&2; exit 3'],
      exitCode: 3,
      stderr: 'bad thing',
      timedOut: false,
    });
    expect((error as Error).message).toContain('exit code 3');
    expect((error as Error).message).toContain('bad thing');
  });

  it('accepts other exit codes when told to', async () => {
    expect((await run('sh', ['-c', 'exit 1'], { okExitCodes: [0, 1] })).exitCode).toBe(1);
  });

  it('reports a program that cannot start', async () => {
    await expect(run('/nonexistent/program', [])).rejects.toMatchObject({
      code: 'ERR_COMMAND',
      message: expect.stringContaining('Could not start'),
    });
  });

  it('streams output lines as events and to the logger', async () => {
    const events: ProgressEvent[] = [];
    const lines: string[] = [];
    await run('sh', ['-c', 'echo one; echo two >&2; printf three'], {
      onProgress: (e) => events.push(e),
      logger: { info: (m) => lines.push(m) },
      outputLevel: 'info',
    });
    // stdout and stderr are separate pipes: their relative order is not defined.
    expect(events).toHaveLength(3);
    expect(events).toEqual(
      expect.arrayContaining([
        { type: 'output', stream: 'stdout', command: 'sh', line: 'one' },
        { type: 'output', stream: 'stderr', command: 'sh', line: 'two' },
        { type: 'output', stream: 'stdout', command: 'sh', line: 'three' },
      ]),
    );
    // stderr is detail: it goes to debug, not to info.
    expect(lines.sort()).toEqual(['[sh] one', '[sh] three']);
  });

  it('stops the whole process group on timeout, leaving no process behind', async () => {
    const c = pidCollector(2);
    const error = await run('sh', ['-c', 'sleep 1000 & echo $!; sleep 1000 & echo $!; wait'], {
      timeoutMs: 300,
      onProgress: c.onProgress,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandError);
    expect(error).toMatchObject({ timedOut: true, exitCode: null, signal: 'SIGTERM' });
    expect(c.pids).toHaveLength(2);
    for (const pid of c.pids) expect(await running(pid)).toBe(false);
  });

  it('rejects with the signal’s reason on abort, after killing children that ignore SIGTERM', async () => {
    const controller = new AbortController();
    const c = pidCollector(1);
    const promise = run('sh', ['-c', 'trap "" TERM; sleep 1000 & echo $!; wait; wait'], {
      signal: controller.signal,
      killGraceMs: 200,
      onProgress: c.onProgress,
    });
    await c.ready;
    const reason = new Error('user stopped the build');
    controller.abort(reason);
    await expect(promise).rejects.toBe(reason);
    expect(await running(c.pids[0]!)).toBe(false);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const reason = new Error('already');
    await expect(run('true', [], { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  it('returns when the program exits even if a background child keeps its output open', async () => {
    const r = await run('sh', ['-c', 'sleep 1000 & echo $!']);
    const pid = Number(r.stdout.trim());
    try {
      expect(await running(pid)).toBe(true);
    } finally {
      process.kill(pid, 'SIGKILL');
    }
  });

  it('runs the shell-quoted command line through the command wrapper', async () => {
    const seen: string[] = [];
    const wrapper = (command: string) => {
      seen.push(command);
      return `WRAPPED=yes ${command}`;
    };
    const r = await run('sh', ['-c', 'echo "$WRAPPED:$1"', 'sh', "a'b $x `y`"], { commandWrapper: wrapper });
    expect(r.stdout).toBe("yes:a'b $x `y`\n");
    expect(seen).toEqual([`sh -c 'echo "$WRAPPED:$1"' sh 'a'\\''b $x \`y\`'`]);
  });

  it('names the real command, not the wrapper shell, in errors', async () => {
    await expect(run('false', [], { commandWrapper: (c) => `exec ${c}` })).rejects.toMatchObject({
      command: 'false',
      exitCode: 1,
    });
  });
});

describe('runShell', () => {
  it('runs a shell command line, wrapped when asked', async () => {
    expect((await runShell('echo $((1+2))')).stdout).toBe('3\n');
    const r = await runShell('echo "$W"', { commandWrapper: (c) => `W=wrapped sh -c ${shellQuote(c)}` });
    expect(r.stdout).toBe('wrapped\n');
  });
});
