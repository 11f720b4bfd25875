/**
 * Measures one build process: wall, CPU and the largest process's peak RSS from `/usr/bin/time -v`
 * (children included), and the whole process tree's peak RSS, sampled, because Packer runs its
 * builder and provisioner as plugin processes of their own.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { REPO_ROOT } from '../lib/report.js';

/** What one measured process cost. */
export interface ProcessCost {
  readonly stdout: string;
  readonly wallS: number;
  readonly cpuS: number;
  /** The largest single process's peak RSS (getrusage of the children, `time -v`). */
  readonly maxRssMiB: number;
  /** The peak of the sum of RSS over the process tree, sampled every {@link TREE_SAMPLE_MS}. */
  readonly treeRssMiB: number;
}

/** Sampling period of the tree RSS: coarse, so that sampling costs little CPU next to the build. */
export const TREE_SAMPLE_MS = 50;

async function children(pid: number): Promise<number[]> {
  const tasks = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return tasks.split(' ').filter(Boolean).map(Number);
}

async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

/** Sum of VmRSS over `root` and its descendants (main threads' children lists, as Go and Node fork). */
async function treeRssKiB(root: number): Promise<number> {
  let total = 0;
  const queue = [root];
  for (let pid = queue.pop(); pid !== undefined; pid = queue.pop()) {
    total += await rssKiB(pid);
    queue.push(...(await children(pid)));
  }
  return total;
}

function field(stderr: string, name: string): number {
  const match = new RegExp(`${name}: ([0-9.:]+)`).exec(stderr);
  if (!match?.[1]) throw new Error(`/usr/bin/time printed no "${name}"`);
  // Elapsed is [h:]m:ss.cc; the others are plain numbers.
  return match[1].split(':').reduce((sum, part) => sum * 60 + Number(part), 0);
}

/**
 * Runs `command` under `/usr/bin/time -v`; rejects with its output's tail when it fails.
 * @internal
 */
export function measure(command: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<ProcessCost> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('/usr/bin/time', ['-v', command, ...args], { cwd: REPO_ROOT, env: env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let peakKiB = 0;
    let sampling = false;
    const sampler = setInterval(() => {
      if (sampling || child.pid === undefined) return;
      sampling = true;
      void treeRssKiB(child.pid)
        .then((kib) => (peakKiB = Math.max(peakKiB, kib)))
        .finally(() => (sampling = false));
    }, TREE_SAMPLE_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(sampler);
      if (code !== 0) {
        reject(new Error(`${command} exited ${code}\n${stdout.slice(-3000)}\n${stderr.slice(-3000)}`));
        return;
      }
      try {
        resolvePromise({
          stdout,
          wallS: field(stderr, 'Elapsed \\(wall clock\\) time \\(h:mm:ss or m:ss\\)'),
          cpuS: field(stderr, 'User time \\(seconds\\)') + field(stderr, 'System time \\(seconds\\)'),
          maxRssMiB: field(stderr, 'Maximum resident set size \\(kbytes\\)') / 1024,
          treeRssMiB: peakKiB / 1024,
        });
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}
