/**
 * Starts two test EC2 servers, prints `{"worker": pid, "servers": [pid, pid]}` on one line (and
 * writes it to HOLD_MOTO_OUT when set), then waits to be killed. For the server-lifetime tests.
 */
import { writeFileSync } from 'node:fs';
import { startMoto } from '../../../fixtures/moto.js';

/** Starts the servers and reports their PIDs; resolves never. */
export async function holdMoto(): Promise<never> {
  const servers = await Promise.all([startMoto(), startMoto()]);
  const line = JSON.stringify({ worker: process.pid, servers: servers.map((s) => s.pid) });
  if (process.env['HOLD_MOTO_OUT']) writeFileSync(process.env['HOLD_MOTO_OUT'], line);
  process.stdout.write(`${line}\n`);
  return new Promise<never>(() => setInterval(() => undefined, 60_000));
}

if (process.env['HOLD_MOTO_MAIN'] === '1') await holdMoto();
