import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import type { ConfigIssue } from '../../../src/errors.js';
import { createChroot } from '../../../src/chroot/chroot.js';
import type { Chroot } from '../../../src/chroot/chroot.js';
import { mountChroot } from '../../../src/chroot/mount.js';
import { recoverHost } from '../../../src/host/recover.js';
import { allocateDevice } from '../../../src/host/devices.js';

// Issue 11 item 11: bad arguments from a JavaScript caller (or a cast) get the library's typed
// error naming the argument, before anything is touched; never a TypeError from deep inside.

/** The issue paths of the ConfigError `run` rejects with; any other outcome fails the test. */
async function rejectedPaths(run: () => unknown): Promise<string[]> {
  let caught: unknown;
  try {
    await run();
  } catch (error) {
    caught = error;
  }
  expect(caught, 'expected a ConfigError').toBeInstanceOf(ConfigError);
  return (caught as ConfigError).issues.map((i: ConfigIssue) => i.path);
}

const bad = <T>(value: unknown): T => value as T;

let root: string;
let handle: Chroot;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'typed-args-'));
  handle = createChroot({ root });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('createChroot and the Chroot handle', () => {
  it.each([
    ['null target', () => createChroot(bad(null)), 'createChroot: target'],
    ['a numeric root', () => createChroot(bad({ root: 5 })), 'createChroot: target.root'],
    ['a relative root', () => createChroot({ root: 'mnt/x' }), 'createChroot: target.root'],
    ['null options', () => createChroot({ root: '/x' }, bad(null)), 'options'],
    ['a signal that is not one', () => createChroot({ root: '/x' }, bad({ signal: 'stop' })), 'options.signal'],
    [
      'a listener that is not a function',
      () => createChroot({ root: '/x' }, bad({ onProgress: 1 })),
      'options.onProgress',
    ],
  ])('%s', async (_name, run, path) => {
    expect(await rejectedPaths(run)).toContain(path);
  });

  it.each([
    ['writeFile with a numeric path', () => handle.writeFile(bad(5), 'x'), 'writeFile: path'],
    ['writeFile with numeric data', () => handle.writeFile('/a', bad(5)), 'writeFile: data'],
    [
      'writeFile with a mode that is not one',
      () => handle.writeFile('/a', 'x', { mode: 0o17777 }),
      'writeFile: options.mode',
    ],
    ['writeFile with a NUL in the path', () => handle.writeFile('/a\0b', 'x'), 'writeFile: path'],
    ['readFile of null', () => handle.readFile(bad(null)), 'readFile: path'],
    ['readFile with an unknown encoding', () => handle.readFile('/a', bad('klingon')), 'readFile: encoding'],
    ['copyIn with numbers', () => handle.copyIn(bad(5), bad(6)), 'copyIn: hostPath'],
    ['exec of a number', () => handle.exec(bad(5)), 'exec: file'],
    ['exec with a string for args', () => handle.exec('ls', bad('-l')), 'exec: args'],
    [
      'exec with a timeout a timer cannot hold',
      () => handle.exec('ls', [], { timeoutMs: 2 ** 31 }),
      'exec: options.timeoutMs',
    ],
    ['sh of a number', () => handle.sh(bad(5)), 'sh: script'],
    ['path of undefined', () => handle.path(bad(undefined)), 'path: path'],
  ])('%s', async (_name, run, path) => {
    expect(await rejectedPaths(run)).toContain(path);
  });

  it('nothing was written into the root by the refused calls', async () => {
    expect(await readdir(root)).toEqual([]);
  });
});

describe('mountChroot', () => {
  it('reports every bad field at once, before creating the mount directory', async () => {
    const mountPath = join(root, 'never-made');
    const paths = await rejectedPaths(() =>
      mountChroot(
        bad({
          device: 5,
          mountPath,
          mountOptions: 'nouuid',
          killGraceMs: -1,
          stateDir: 'relative',
          serviceGuard: 'yes',
        }),
      ),
    );
    expect(paths).toEqual(
      expect.arrayContaining([
        'mountChroot: input.device',
        'mountChroot: input.mountOptions',
        'mountChroot: input.killGraceMs',
        'mountChroot: input.stateDir',
        'mountChroot: input.serviceGuard',
      ]),
    );
    expect(await readdir(root)).not.toContain('never-made');
  });

  it.each([
    ['null input', () => mountChroot(bad(null)), 'mountChroot: input'],
    ['no device', () => mountChroot(bad({})), 'mountChroot: input.device'],
    [
      'a relative mount path',
      () => mountChroot({ device: '/dev/loop9', mountPath: 'mnt' }),
      'mountChroot: input.mountPath',
    ],
    [
      'a wrapper that is a string',
      () => mountChroot(bad({ device: '/dev/loop9', commandWrapper: 'sudo {{.Command}}' })),
      'mountChroot: input.commandWrapper',
    ],
    ['null options', () => mountChroot({ device: '/dev/loop9' }, bad(null)), 'options'],
  ])('%s', async (_name, run, path) => {
    expect(await rejectedPaths(run)).toContain(path);
  });
});

describe('recoverHost', () => {
  it.each([
    ['null input', () => recoverHost(bad(null)), 'recoverHost: input'],
    ['a numeric stateDir', () => recoverHost(bad({ stateDir: 5 })), 'recoverHost: input.stateDir'],
    [
      'a relative lockDir',
      () => recoverHost({ stateDir: join(root, 'state'), lockDir: 'locks' }),
      'recoverHost: input.lockDir',
    ],
    [
      'a negative grace',
      () => recoverHost({ stateDir: join(root, 'state'), killGraceMs: -1 }),
      'recoverHost: input.killGraceMs',
    ],
  ])('%s', async (_name, run, path) => {
    expect(await rejectedPaths(run)).toContain(path);
  });
});

describe('every primitive checks its options the same way', () => {
  it('allocateDevice with a logger that is a string', async () => {
    expect(await rejectedPaths(() => allocateDevice({}, bad({ logger: 'console' })))).toContain('options.logger');
  });
});
