import { describe, expect, it } from 'vitest';
import { parseChrootCycleArgs, stepDurations, stepOf } from '../../../bench/chroot-cycle.js';
import type { ProgressEvent } from '../../../src/types.js';

const root = '/tmp/x/mnt/loop0';
const created = (kind: 'mount' | 'file' | 'service-guard', id: string): ProgressEvent => ({
  type: 'resource',
  action: 'created',
  kind,
  id,
});
const removed = (kind: 'mount' | 'file' | 'service-guard', id: string): ProgressEvent => ({
  type: 'resource',
  action: 'removed',
  kind,
  id,
});

describe('chroot cycle step naming', () => {
  it('names each step after the library event that ends it, paths shown inside the chroot', () => {
    expect(stepOf(created('mount', root), undefined, 0)).toBe('mount root partition');
    expect(stepOf(created('mount', `${root}/proc/sys/fs/binfmt_misc`), root, 0)).toBe('mount /proc/sys/fs/binfmt_misc');
    expect(stepOf(created('file', `${root}/etc/resolv.conf`), root, 0)).toBe('copy /etc/resolv.conf');
    expect(stepOf(created('service-guard', root), root, 0)).toBe('install service guard');
    expect(stepOf(removed('service-guard', root), root, 0)).toBe('stop leftovers + remove guard');
    expect(stepOf(removed('file', `${root}/etc/resolv.conf`), root, 0)).toBe('restore /etc/resolv.conf');
    expect(stepOf(removed('mount', `${root}/proc`), root, 0)).toBe('unmount all + verify');
    expect(stepOf(removed('mount', root), root, 5)).toBe('journal updates');
    const output: ProgressEvent = { type: 'output', stream: 'stdout', line: 'hi', command: 'true' };
    expect(stepOf(output, root, 0)).toBeUndefined();
  });

  it('turns marks into durations, adding up repeated steps', () => {
    const steps = stepDurations(100, [
      { t: 110, step: 'a' },
      { t: 115, step: 'b' },
      { t: 116, step: 'b' },
      { t: 120, step: 'c' },
    ]);
    expect(Object.fromEntries(steps)).toEqual({ a: 10, b: 6, c: 4 });
  });

  it('parses its options', () => {
    expect(parseChrootCycleArgs(['--cycles', '5', '--warmup', '0'])).toEqual({ cycles: 5, warmup: 0 });
    expect(() => parseChrootCycleArgs(['--nope'])).toThrow();
  });
});
