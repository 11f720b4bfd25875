/**
 * The `Chroot` handle given to provisioning code: commands run inside with chroot(8), an explicit
 * environment and no host shell; file access resolves every path inside the root.
 */
import {
  assertArgs,
  fields,
  isAbsolutePath,
  isBoolean,
  isData,
  isDuration,
  isFunction,
  isObject,
  isSignal,
  isStringArray,
  isString,
  isText,
  optional,
} from '../internal/args.js';
import { access } from 'node:fs/promises';
import { constants } from 'node:fs';
import type { OperationOptions } from '../types.js';
import { anySignal } from '../internal/abort.js';
import { toCtx } from '../internal/ctx.js';
import { run } from '../host/exec.js';
import type { CommandWrapper, RunResult } from '../host/exec.js';
import { copyInRoot, readInRoot, writeInRoot } from './files.js';
import { resolveInRoot } from './paths.js';

/**
 * The environment every command inside the chroot starts from (the host's is not inherited).
 *
 * @example
 * ```ts
 * import { DEFAULT_CHROOT_ENV, withChroot } from 'ami-chroot/host';
 *
 * await withChroot({ device: '/dev/nvme1n1' }, async (chroot) => {
 *   // Commands start from DEFAULT_CHROOT_ENV, never the host's environment; extend it per call.
 *   await chroot.sh('make -C /usr/src/app install', { env: { PATH: `/opt/toolchain/bin:${DEFAULT_CHROOT_ENV.PATH}` } });
 * });
 * ```
 * @public
 */
export const DEFAULT_CHROOT_ENV: Readonly<Record<string, string>> = Object.freeze({
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LANG: 'C.UTF-8',
  // Nobody answers debconf prompts during a build.
  DEBIAN_FRONTEND: 'noninteractive',
});

/**
 * Options of {@link Chroot.exec} and {@link Chroot.sh}.
 * @public
 */
export interface ChrootExecOptions {
  /** Added to (or, with `undefined`, removed from) the chroot's environment. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Written to standard input. @defaultValue none */
  readonly input?: string | Uint8Array;
  /** Stop the command after this long. @defaultValue no limit */
  readonly timeoutMs?: number;
  /** Also stops the command (the handle's own signal always does). */
  readonly signal?: AbortSignal;
  /** Exit codes that count as success. @defaultValue [0] */
  readonly okExitCodes?: readonly number[];
  /** Logger level for stdout lines; stderr lines go to debug (both are `output` events). @defaultValue 'info' */
  readonly outputLevel?: 'debug' | 'info' | 'silent';
}

/**
 * Options of {@link Chroot.writeFile}.
 * @public
 */
export interface ChrootWriteOptions {
  /** Permission bits of the file. @defaultValue 0o644 for a new file; an existing file keeps its mode */
  readonly mode?: number;
  /**
   * Follow a symlink at the path itself (resolved inside the chroot). By default a symlink there
   * is refused: writing through links is how an image redirects writes.
   * @defaultValue false
   */
  readonly followSymlink?: boolean;
  /**
   * Create missing parent directories (mode 0755), resolved inside the chroot like the file itself
   * (an empty from-scratch root has no `/etc` yet).
   * @defaultValue false
   */
  readonly mkdirs?: boolean;
}

/**
 * The chroot as provisioning code sees it.
 * @public
 */
export interface Chroot {
  /** The chroot's `/` on the host. */
  readonly root: string;
  /** Aborts when the build is aborted; pass it to your own long operations. */
  readonly signal: AbortSignal;
  /**
   * Runs `file` inside the chroot (chroot(8), argument array, no shell anywhere). Output goes to
   * the logger and as `output` events.
   * @throws {@link CommandError} on a non-zero exit or timeout; the signal's reason on abort.
   */
  exec(file: string, args?: readonly string[], options?: ChrootExecOptions): Promise<RunResult>;
  /** Runs a script with the chroot's `/bin/sh -c`. The host shell never sees it. */
  sh(script: string, options?: ChrootExecOptions): Promise<RunResult>;
  /**
   * Writes a file inside the chroot. Directories on the way are resolved inside the root.
   * @throws {@link PathEscapeError} when the path is a symlink (unless `followSymlink`) or escapes.
   */
  writeFile(path: string, data: string | Uint8Array, options?: ChrootWriteOptions): Promise<void>;
  /** Reads a file inside the chroot (symlinks are followed inside the root). */
  readFile(path: string): Promise<Buffer>;
  /** Reads a text file inside the chroot. */
  readFile(path: string, encoding: BufferEncoding): Promise<string>;
  /**
   * Copies a host file or directory (recursively, symlinks as symlinks, modes kept) into the
   * chroot. Like `cp -R`: into `chrootPath` if it is an existing directory, else as `chrootPath`.
   * Existing files are overwritten, never through a symlink.
   */
  copyIn(hostPath: string, chrootPath: string): Promise<void>;
  /**
   * The host path of `path` inside the chroot, every symlink resolved inside the root, so host
   * tools given the result stay inside the image.
   * @throws {@link PathEscapeError} on a symlink loop or escape.
   */
  path(path: string): Promise<string>;
}

/**
 * What {@link createChroot} needs: a root, and optionally the mount's environment and wrapper.
 * @public
 */
export interface ChrootTarget {
  /** The chroot's `/` on the host. */
  readonly root: string;
  /** Extra environment for every command (a mounted chroot's service guard). */
  readonly env?: Readonly<Record<string, string>> | undefined;
  /** Packer's command_wrapper for the chroot(8) command. */
  readonly commandWrapper?: CommandWrapper | undefined;
}

const CHROOT_CANDIDATES = ['/usr/sbin/chroot', '/usr/bin/chroot', '/sbin/chroot', '/bin/chroot'];
let chrootBinary: Promise<string> | undefined;
function findChroot(): Promise<string> {
  chrootBinary ??= (async () => {
    for (const c of CHROOT_CANDIDATES) {
      try {
        await access(c, constants.X_OK);
        return c;
      } catch {
        // next
      }
    }
    return 'chroot';
  })();
  return chrootBinary;
}

/**
 * Makes a {@link Chroot} handle for a root (usually a {@link MountedChroot}).
 *
 * @example
 * ```ts
 * import { createChroot, mountChroot } from 'ami-chroot/host';
 *
 * await using mounted = await mountChroot({ device: '/dev/nvme1n1' });
 * const chroot = createChroot(mounted, { logger: console });
 * const { stdout } = await chroot.exec('dpkg-query', ['-W', '-f', '${Version}', 'openssl']);
 * await chroot.writeFile('/etc/motd', `Built with openssl ${stdout}\n`);
 * console.log(await chroot.path('/etc/motd')); // /mnt/ami-chroot/nvme1n1/etc/motd
 * ```
 * @public
 */
export function createChroot(target: ChrootTarget, options: OperationOptions = {}): Chroot {
  assertArgs(
    'createChroot',
    fields('target', target, { root: isAbsolutePath, env: isObject, commandWrapper: isFunction }, ['root']),
  );
  const root = target.root;
  const ctx = toCtx(options);
  const handleSignal = options.signal ?? new AbortController().signal;

  const exec = async (file: string, args: readonly string[] = [], opts: ChrootExecOptions = {}): Promise<RunResult> => {
    assertArgs('exec', [
      ['file', file, isText],
      ['args', args, isStringArray],
      ...fields('options', opts, {
        env: isObject,
        input: isData,
        timeoutMs: isDuration,
        signal: isSignal,
        okExitCodes: (v) =>
          Array.isArray(v) && v.every((c) => Number.isInteger(c)) ? undefined : 'must be an array of exit codes',
        outputLevel: (v) =>
          v === 'debug' || v === 'info' || v === 'silent' ? undefined : 'must be "debug", "info" or "silent"',
      }),
    ]);
    const chroot = await findChroot();
    const display = [`chroot ${root}`, file, ...args].join(' ');
    return run(chroot, ['--', root, file, ...args], {
      signal: anySignal(handleSignal, opts.signal),
      logger: ctx.logger,
      onProgress: ctx.emit,
      env: { ...DEFAULT_CHROOT_ENV, ...target.env, ...opts.env },
      extendEnv: false,
      input: opts.input,
      timeoutMs: opts.timeoutMs,
      okExitCodes: opts.okExitCodes,
      outputLevel: opts.outputLevel ?? 'info',
      commandWrapper: target.commandWrapper,
      displayCommand: display.length > 500 ? `${display.slice(0, 500)}…` : display,
      phase: 'provision',
    });
  };

  const writeFile = async (path: string, data: string | Uint8Array, opts: ChrootWriteOptions = {}): Promise<void> => {
    assertArgs('writeFile', [
      ['path', path, isText],
      ['data', data, isData],
      ...fields('options', opts, {
        mode: (v) =>
          Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0o7777
            ? undefined
            : 'must be permission bits from 0 to 0o7777, e.g. 0o644',
        followSymlink: isBoolean,
        mkdirs: isBoolean,
      }),
    ]);
    await writeInRoot(root, path, { data }, opts);
  };

  async function readFile(path: string): Promise<Buffer>;
  async function readFile(path: string, encoding: BufferEncoding): Promise<string>;
  async function readFile(path: string, encoding?: BufferEncoding): Promise<Buffer | string> {
    assertArgs('readFile', [
      ['path', path, isText],
      [
        'encoding',
        encoding,
        optional((v) => (Buffer.isEncoding(v as string) ? undefined : 'must be a Buffer encoding, e.g. "utf8"')),
      ],
    ]);
    const data = await readInRoot(root, path);
    return encoding ? data.toString(encoding) : data;
  }

  const copyIn = async (hostPath: string, chrootPath: string): Promise<void> => {
    assertArgs('copyIn', [
      ['hostPath', hostPath, isText],
      ['chrootPath', chrootPath, isText],
    ]);
    await copyInRoot(root, hostPath, chrootPath, handleSignal, (skipped) =>
      ctx.logger.warn(`copyIn: skipping ${skipped}, which is neither a file, a directory nor a symlink.`),
    );
  };

  return {
    root,
    signal: handleSignal,
    exec,
    sh: async (script, opts = {}) => {
      assertArgs('sh', [['script', script, isString]]);
      return exec('/bin/sh', ['-c', script], opts);
    },
    writeFile,
    readFile,
    copyIn,
    path: async (path) => {
      assertArgs('path', [['path', path, isText]]);
      return resolveInRoot(root, path);
    },
  };
}
