/**
 * A child process for the allocation tests: `allocate <devRoot> <lockDir>` reserves a name,
 * prints it, and releases it when stdin closes; `hold-lock <lockDir>` takes the allocation lock
 * and keeps it until killed.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { allocateDevice } from '../../../../src/host/devices.js';

const [mode, a, b] = process.argv.slice(2);

if (mode === 'allocate') {
  const lease = await allocateDevice({ devRoot: a!, lockDir: b! });
  process.stdout.write(`${JSON.stringify({ attachmentName: lease.attachmentName, pid: process.pid })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => {
    void lease.release().then(() => process.exit(0));
  });
} else if (mode === 'hold-lock') {
  await mkdir(a!, { recursive: true });
  await lockfile.lock(join(a!, 'allocate'), {
    lockfilePath: join(a!, 'allocate.lock'),
    realpath: false,
    stale: 2000,
    onCompromised: () => {},
  });
  process.stdout.write('locked\n');
  setInterval(() => {}, 1000);
} else {
  throw new Error(`unknown mode ${mode}`);
}
