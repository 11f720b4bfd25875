import { describe, expect, it } from 'vitest';
import { sleep, withTimeout } from '../../../src/internal/abort.js';
import { idempotent } from '../../../src/internal/once.js';
import { normalizeLogger } from '../../../src/internal/logger.js';

describe('sleep', () => {
  it('rejects with the caller’s reason when aborted', async () => {
    const c = new AbortController();
    const p = sleep(10_000, c.signal);
    const reason = new Error('stop');
    c.abort(reason);
    await expect(p).rejects.toBe(reason);
  });
});

describe('withTimeout', () => {
  it('reports its own timeout error, not an abort', async () => {
    await expect(
      withTimeout(
        20,
        undefined,
        (s) => sleep(5_000, s),
        () => new Error('waited 20 ms for x'),
      ),
    ).rejects.toThrow('waited 20 ms for x');
  });
  it('reports the caller’s abort when the caller aborted first', async () => {
    const c = new AbortController();
    const reason = new Error('user abort');
    setTimeout(() => c.abort(reason), 5);
    await expect(
      withTimeout(
        5_000,
        c.signal,
        (s) => sleep(5_000, s),
        () => new Error('timeout'),
      ),
    ).rejects.toBe(reason);
  });
});

describe('idempotent', () => {
  it('shares concurrent calls, remembers success and allows retry after failure', async () => {
    let calls = 0;
    const fn = idempotent(async () => {
      calls++;
      if (calls === 1) throw new Error('first fails');
    });
    await expect(fn()).rejects.toThrow('first fails');
    await Promise.all([fn(), fn()]);
    await fn();
    expect(calls).toBe(2);
  });
});

describe('normalizeLogger', () => {
  it('keeps `this` of a pino-style logger and silences missing debug', () => {
    const lines: string[] = [];
    const pinoLike = {
      prefix: 'p:',
      info(this: { prefix: string }, m: string) {
        lines.push(this.prefix + m);
      },
    };
    const log = normalizeLogger(pinoLike);
    log.info('hello');
    log.debug('ignored');
    expect(lines).toEqual(['p:hello']);
  });
});
