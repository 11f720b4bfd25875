/**
 * What a benchmark needs from the machine, said exactly, rather than numbers from a half-working
 * setup.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { BenchPrerequisiteError } from './report.js';

async function onPath(tool: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(delimiter).concat(['/usr/sbin', '/sbin'])) {
    try {
      await access(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

/**
 * Checks root, loop devices, a static busybox and `tools`.
 * @throws {@link BenchPrerequisiteError} naming everything that is missing and how to get it
 * @internal
 */
export async function checkHostPrerequisites(what: string, tools: readonly string[]): Promise<void> {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (run with sudo)');
  try {
    await access('/dev/loop-control', constants.W_OK);
  } catch {
    missing.push('loop devices (/dev/loop-control; modprobe loop)');
  }
  try {
    await access('/bin/busybox', constants.X_OK);
  } catch {
    missing.push('a static busybox at /bin/busybox (apt-get install busybox-static)');
  }
  for (const tool of tools) {
    if (!(await onPath(tool)))
      missing.push(
        tool === 'moto_server'
          ? "moto_server (pip install 'moto[server]')"
          : `${tool} (util-linux, fdisk, e2fsprogs, coreutils)`,
      );
  }
  if (missing.length > 0) throw new BenchPrerequisiteError(`${what} needs ${missing.join(', ')}.`);
}
