import { describe, expect, it } from 'vitest';
import { assertSafeRoot, findHolders, stopHolders } from '../../../src/host/processes.js';
import { unmountTree } from '../../../src/host/mounts.js';
import { toCtx } from '../../../src/internal/ctx.js';

// An empty or "/" root would make every process on the machine a holder of the mount, and
// stopping holders would then signal the caller's own process group. These must never run.
describe('holder scans refuse roots that cover the whole machine', () => {
  const unsafe = ['', '/', 'relative/dir', './mnt', '/mnt/../', '/mnt/x/', '/mnt//x'];

  it.each(unsafe)('assertSafeRoot(%j) throws a TypeError naming the value', (root) => {
    expect(() => assertSafeRoot(root)).toThrow(TypeError);
    expect(() => assertSafeRoot(root)).toThrow(JSON.stringify(root));
  });

  it.each(unsafe)('findHolders, stopHolders and unmountTree refuse %j before reading /proc', async (root) => {
    await expect(findHolders(root, '/nonexistent-proc')).rejects.toThrow(TypeError);
    await expect(stopHolders(root, toCtx({}), { procRoot: '/nonexistent-proc' })).rejects.toThrow(TypeError);
    await expect(unmountTree(root)).rejects.toThrow(TypeError);
  });

  it('accepts an ordinary mount path', () => {
    expect(() => assertSafeRoot('/mnt/ami-chroot/xvdf')).not.toThrow();
    expect(() => assertSafeRoot('/tmp/a b')).not.toThrow();
  });
});
