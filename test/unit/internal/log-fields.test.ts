/**
 * Structured log fields: the AWS call wrapper, the phase tracker and the command runner pass a
 * fields object with each line (phase, resource ids, durations), a command's stderr stays out of
 * info, and objectFirstLogger hands the fields to pino-style loggers first.
 */
import { describe, expect, it } from 'vitest';
import { CreateSnapshotCommand } from '@aws-sdk/client-ec2';
import { send } from '../../../src/aws/call.js';
import { run } from '../../../src/host/exec.js';
import { PhaseTracker } from '../../../src/internal/phases.js';
import { toCtx } from '../../../src/internal/ctx.js';
import { objectFirstLogger } from '../../../src/internal/logger.js';
import { startRun } from '../../../src/pipeline/run.js';
import type { LogFields, Logger } from '../../../src/types.js';
import { ec2Error, mockedEc2 } from '../aws/fixtures.js';

type Line = [level: keyof Logger, message: string, fields: LogFields | undefined];

function capture(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const at =
    (level: keyof Logger) =>
    (message: string, fields?: LogFields): void =>
      void lines.push([level, message, fields]);
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

describe('log fields', () => {
  it('every AWS call logs its operation, phase, resources, region and duration as fields', async () => {
    const ec2 = mockedEc2('eu-west-1');
    ec2.mock.on(CreateSnapshotCommand).resolvesOnce({ SnapshotId: 'snap-1' }).rejectsOnce(ec2Error('IncorrectState'));
    const { logger, lines } = capture();
    const ctx = toCtx({ logger });
    const meta = { phase: 'snapshot', region: 'eu-west-1', resources: { volumeId: 'vol-1' } } as const;
    await send(ec2.client, new CreateSnapshotCommand({ VolumeId: 'vol-1' }), ctx, meta);
    await expect(send(ec2.client, new CreateSnapshotCommand({ VolumeId: 'vol-1' }), ctx, meta)).rejects.toThrow();
    expect(lines.map(([level, , fields]) => [level, fields])).toEqual([
      [
        'debug',
        {
          operation: 'CreateSnapshot',
          phase: 'snapshot',
          volumeId: 'vol-1',
          region: 'eu-west-1',
          durationMs: expect.any(Number),
          ok: true,
        },
      ],
      ['debug', expect.objectContaining({ operation: 'CreateSnapshot', ok: false })],
    ]);
    expect(lines[0]![1]).toMatch(/^AWS CreateSnapshot in eu-west-1: ok in \d+ ms$/);
  });

  it('a phase logs its end at info with the phase, the duration and the outcome', async () => {
    const { logger, lines } = capture();
    const tracker = new PhaseTracker(toCtx({ logger }));
    await tracker.run('volume', async () => {});
    await tracker.run('attach', () => Promise.reject(new Error('no'))).catch(() => {});
    expect(lines.filter(([level]) => level === 'info').map(([, , fields]) => fields)).toEqual([
      { phase: 'volume', durationMs: expect.any(Number), ok: true },
      { phase: 'attach', durationMs: expect.any(Number), ok: false },
    ]);
  });

  it('a command logs its stdout at its level, its stderr at debug, and its exit with fields', async () => {
    const { logger, lines } = capture();
    await run('sh', ['-c', 'echo out; echo err >&2'], { logger, outputLevel: 'info', phase: 'provision' });
    expect(lines.filter(([level]) => level === 'info')).toEqual([
      ['info', '[sh] out', { command: 'sh', phase: 'provision', stream: 'stdout' }],
    ]);
    expect(lines).toContainEqual(['debug', '[sh] err', { command: 'sh', phase: 'provision', stream: 'stderr' }]);
    expect(lines.at(-1)?.[2]).toEqual({
      command: 'sh',
      phase: 'provision',
      exitCode: 0,
      durationMs: expect.any(Number),
    });
  });

  it('silent output stays silent on both streams', async () => {
    const { logger, lines } = capture();
    await run('sh', ['-c', 'echo out; echo err >&2'], { logger, outputLevel: 'silent' });
    expect(lines.map(([, message]) => message).filter((m) => m.startsWith('[sh]'))).toEqual([]);
  });

  it('objectFirstLogger passes the fields first, on the target, and leaves missing levels missing', () => {
    const calls: unknown[][] = [];
    const target = {
      name: 'pino-like',
      info(this: { name: string }, fields: LogFields, message: string) {
        calls.push([this.name, fields, message]);
      },
    };
    const logger = objectFirstLogger(target);
    logger.info!('Phase volume: finished in 3 ms', { phase: 'volume', durationMs: 3 });
    logger.info!('no fields');
    expect(calls).toEqual([
      ['pino-like', { phase: 'volume', durationMs: 3 }, 'Phase volume: finished in 3 ms'],
      ['pino-like', {}, 'no fields'],
    ]);
    expect(Object.keys(logger)).toEqual(['info']);
  });

  it("a hook's error carries the phase it ran for", async () => {
    const hookError = new Error('refused');
    const r = startRun({ hooks: { before: (phase) => void (phase === 'volume' && throwIt(hookError)) } });
    try {
      await expect(r.step('volume', async () => {})).rejects.toBe(hookError);
      expect((hookError as Error & { phase?: string }).phase).toBe('volume');
    } finally {
      r.end();
    }
  });
});

function throwIt(error: Error): never {
  throw error;
}
