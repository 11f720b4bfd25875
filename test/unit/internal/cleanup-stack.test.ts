import { describe, expect, it } from 'vitest';
import { CleanupStack } from '../../../src/internal/cleanup-stack.js';
import { toCtx } from '../../../src/internal/ctx.js';
import type { ProgressEvent } from '../../../src/types.js';

function ctx(events: ProgressEvent[] = []) {
  return toCtx({ onProgress: (e) => events.push(e), logger: { error: () => {}, warn: () => {} } });
}

describe('CleanupStack', () => {
  it('runs undos last-in-first-out on failure', async () => {
    const order: string[] = [];
    const stack = new CleanupStack(ctx());
    stack.defer('a', async () => void order.push('a'));
    stack.defer('b', async () => void order.push('b'));
    stack.defer('c', async () => void order.push('c'), { onlyOnFailure: true });
    expect(await stack.unwind('failure')).toEqual([]);
    expect(order).toEqual(['c', 'b', 'a']);
  });

  it('drops onlyOnFailure undos on success', async () => {
    const order: string[] = [];
    const stack = new CleanupStack(ctx());
    stack.defer('keep-on-success', async () => void order.push('image'), { onlyOnFailure: true });
    stack.defer('volume', async () => void order.push('volume'));
    await stack.unwind('success');
    expect(order).toEqual(['volume']);
  });

  it('runs an undo at most once, early or late', async () => {
    let runs = 0;
    const stack = new CleanupStack(ctx());
    const undo = stack.defer('unmount', async () => void runs++);
    await undo.run();
    await undo.run();
    await stack.unwind('failure');
    expect(runs).toBe(1);
  });

  it('retries a failed early undo in the final unwind', async () => {
    let runs = 0;
    const stack = new CleanupStack(ctx());
    const undo = stack.defer('detach', async () => {
      runs++;
      if (runs === 1) throw new Error('busy');
    });
    await expect(undo.run()).rejects.toThrow('busy');
    expect(await stack.unwind('failure')).toEqual([]);
    expect(runs).toBe(2);
  });

  it('retries a transiently failing undo in the final unwind', async () => {
    let runs = 0;
    const stack = new CleanupStack(ctx(), 1_000, 3, 1);
    stack.defer('delete volume', async () => {
      runs++;
      if (runs < 3) throw new Error('RequestLimitExceeded');
    });
    expect(await stack.unwind('success')).toEqual([]);
    expect(runs).toBe(3);
  });

  it('collects failures without stopping and reports them as events', async () => {
    const events: ProgressEvent[] = [];
    const order: string[] = [];
    const stack = new CleanupStack(ctx(events), 1_000, 2, 1);
    stack.defer('first', async () => void order.push('first'));
    stack.defer('broken', async () => {
      throw new Error('nope');
    });
    const errors = await stack.unwind('failure');
    expect(order).toEqual(['first']);
    expect(errors.map((e) => e.message)).toEqual(['broken: nope']);
    expect(events).toContainEqual({ type: 'cleanup', step: 'broken', status: 'failed', error: 'nope' });
  });

  it('gives each undo a live signal of its own, never the caller’s', async () => {
    const caller = new AbortController();
    caller.abort();
    let seen: AbortSignal | undefined;
    const stack = new CleanupStack(toCtx({ signal: caller.signal }));
    stack.defer('x', async (signal) => void (seen = signal));
    await stack.unwind('failure');
    expect(seen?.aborted).toBe(false);
  });

  it('cancel() drops an undo at a commit point and keepAll() reports what is kept', async () => {
    let ran = false;
    const stack = new CleanupStack(ctx());
    const snap = stack.defer('delete snapshot', async () => void (ran = true));
    stack.defer('delete volume', async () => {});
    snap.cancel();
    expect(stack.keepAll()).toEqual(['delete volume']);
    await stack.unwind('failure');
    expect(ran).toBe(false);
  });

  it('keepAll() reports each kept undo as a skipped step and its resource as kept', async () => {
    const events: ProgressEvent[] = [];
    let ran = false;
    const stack = new CleanupStack(ctx(events));
    stack.defer('delete volume vol-1', async () => void (ran = true), {
      resource: { kind: 'volume', id: 'vol-1', region: 'eu-west-1' },
    });
    stack.defer('release the device reservation', async () => void (ran = true));
    expect(stack.keepAll()).toEqual(['delete volume vol-1', 'release the device reservation']);
    expect(events).toEqual([
      { type: 'cleanup', step: 'delete volume vol-1', status: 'skipped' },
      { type: 'resource', action: 'kept', kind: 'volume', id: 'vol-1', region: 'eu-west-1' },
      { type: 'cleanup', step: 'release the device reservation', status: 'skipped' },
    ]);
    expect(await stack.unwind('failure')).toEqual([]);
    expect(ran).toBe(false);
  });
});
