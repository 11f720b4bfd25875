/**
 * The console progress display: phase lines with durations and changes, a live status line on a
 * terminal (redrawn in place, cut to the width) and plain lines otherwise, and the timings table.
 */
import { describe, expect, it } from 'vitest';
import { createProgressRenderer } from '../../../src/pipeline/progress-renderer.js';
import type { ProgressEvent } from '../../../src/types.js';

function sink(
  isTTY: boolean,
  columns = 60,
): { text: () => string; write(t: string): void; isTTY: boolean; columns: number } {
  let out = '';
  return { isTTY, columns, write: (t: string) => void (out += t), text: () => out };
}

const BUILD: ProgressEvent[] = [
  { type: 'phase-start', phase: 'volume' },
  { type: 'resource', action: 'created', kind: 'volume', id: 'vol-1', region: 'us-east-1' },
  { type: 'wait', waitingFor: 'volume vol-1 available', id: 'vol-1', state: 'creating', polls: 1, elapsedMs: 0 },
  { type: 'wait', waitingFor: 'volume vol-1 available', id: 'vol-1', state: 'creating', polls: 2, elapsedMs: 900 },
  { type: 'phase-end', phase: 'volume', durationMs: 1234, ok: true },
  { type: 'phase-start', phase: 'register' },
  { type: 'snapshot-progress', snapshotId: 'snap-1', region: 'us-east-1', percent: 10 },
  { type: 'snapshot-progress', snapshotId: 'snap-1', region: 'us-east-1', percent: 20 },
  { type: 'snapshot-progress', snapshotId: 'snap-1', region: 'us-east-1', percent: 60 },
  { type: 'resource', action: 'created', kind: 'image', id: 'ami-1', region: 'us-east-1' },
  { type: 'phase-end', phase: 'register', durationMs: 80, ok: true },
  { type: 'phase-start', phase: 'copy' },
  { type: 'copy', region: 'eu-west-1', state: 'started', imageId: 'ami-2' },
  { type: 'copy', region: 'eu-west-1', state: 'failed' },
  { type: 'cleanup', step: 'deregister ami-2', status: 'failed', error: 'boom' },
  { type: 'phase-end', phase: 'copy', durationMs: 2500, ok: false },
];

describe('createProgressRenderer', () => {
  it('plain output: one line per phase and per state change, no escape codes', () => {
    const out = sink(false);
    const progress = createProgressRenderer({ output: out });
    for (const event of BUILD) progress.onProgress(event);
    progress.logger.warn?.('slow mirror');
    progress.finish(3814);
    expect(out.text()).not.toContain('\x1b');
    expect(out.text().split('\n')).toEqual([
      '    waiting for volume vol-1 available: creating',
      '  ✓ volume       1.23 s  +volume vol-1',
      '    snapshot snap-1 10%',
      '    snapshot snap-1 60%',
      '  ✓ register      80 ms  +image ami-1',
      '    copies: eu-west-1 started ami-2',
      '    copies: eu-west-1 failed',
      '    cleanup failed: deregister ami-2: boom',
      '  ✗ copy         2.50 s',
      '    warning: slow mirror',
      '',
      '  Timings',
      '    volume           1.23 s  ' + '█'.repeat(15),
      '    register          80 ms  █',
      '    copy             2.50 s  ' + '█'.repeat(30),
      '    total            3.81 s',
      '',
    ]);
  });

  it('on a terminal: the status line is redrawn in place, cut to the width, and cleared by the next line', () => {
    const out = sink(true, 30);
    const progress = createProgressRenderer({ output: out, color: false });
    for (const event of BUILD.slice(0, 5)) progress.onProgress(event);
    const text = out.text();
    // Both polls redraw the status (no newline), then the phase line clears it.
    expect(text.split('\r\x1b[2K  … volume').length - 1).toBe(2);
    expect(text).toContain('\r\x1b[2K  … volume     waiting for vo\r\x1b[2K  ✓ volume');
    expect(text.split('\n')[0]!.endsWith('+volume vol-1')).toBe(true);
  });

  it('prints command output only when asked', () => {
    const quiet = sink(false);
    const loud = sink(false);
    const event: ProgressEvent = { type: 'output', stream: 'stdout', command: 'apt-get', line: 'Setting up nginx' };
    createProgressRenderer({ output: quiet }).onProgress(event);
    createProgressRenderer({ output: loud, commandOutput: true }).onProgress(event);
    expect(quiet.text()).toBe('');
    expect(loud.text()).toBe('    apt-get: Setting up nginx\n');
  });
});
