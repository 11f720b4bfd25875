/**
 * The `Chroot` handle given to provisioning code: commands run inside with chroot(8), an explicit
 * environment and no host shell; file access resolves every path inside the root.
 */
import { access, lstat, mkdir, open, readdir, readlink, symlink, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import { basename, posix } from 'node:path';
import { PathEscapeError } from '../errors.js';
import type { OperationOptions } from '../types.js';
import { anySignal } from '../internal/abort.js';
import { toCtx } from '../internal/logger.js';
import { run } from '../host/exec.js';
import type { CommandWrapper, RunResult } from '../host/exec.js';
import { resolveInRoot } from './paths.js';

/**
 * The environment every command inside the chroot starts from (the host's is not inherited).
 *
 * @example
 * ```ts
 * import { DEFAULT_CHROOT_ENV, withChroot } from 'ami-chroot';
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
  /** Logger level for the output lines. @defaultValue 'info' */
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

function escapeError(root: string, path: string, why: string, cause?: unknown): PathEscapeError {
  return new PathEscapeError(`Refusing ${path} in the chroot ${root}: ${why}`, path, {
    resources: { mountPath: root },
    ...(cause === undefined ? {} : { cause }),
  });
}

async function openForWrite(
  root: string,
  chrootPath: string,
  hostPath: string,
  mode: number | undefined,
): Promise<FileHandle> {
  try {
    return await open(
      hostPath,
      constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
      mode ?? 0o644,
    );
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') {
      const target = await readlink(hostPath).catch(() => '?');
      throw escapeError(
        root,
        chrootPath,
        `it is a symlink (-> ${target}); writing through it could leave the image. Pass followSymlink to write to its target inside the chroot.`,
        error,
      );
    }
    throw error;
  }
}

/**
 * Makes a {@link Chroot} handle for a root (usually a {@link MountedChroot}).
 *
 * @example
 * ```ts
 * import { createChroot, mountChroot } from 'ami-chroot';
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
  const root = target.root;
  const ctx = toCtx(options);
  const handleSignal = options.signal ?? new AbortController().signal;

  const exec = async (file: string, args: readonly string[] = [], opts: ChrootExecOptions = {}): Promise<RunResult> => {
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
    if (opts.mkdirs) await resolveInRoot(root, posix.dirname(posix.join('/', path)), { mkdirs: true });
    const hostPath = await resolveInRoot(root, path, { followFinal: opts.followSymlink ?? false });
    const handle = await openForWrite(root, path, hostPath, opts.mode);
    try {
      await handle.writeFile(data);
      if (opts.mode !== undefined) await handle.chmod(opts.mode);
    } finally {
      await handle.close();
    }
  };

  async function readFile(path: string): Promise<Buffer>;
  async function readFile(path: string, encoding: BufferEncoding): Promise<string>;
  async function readFile(path: string, encoding?: BufferEncoding): Promise<Buffer | string> {
    const hostPath = await resolveInRoot(root, path);
    let handle: FileHandle;
    try {
      handle = await open(hostPath, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ELOOP')
        throw escapeError(root, path, 'it changed into a symlink while being read.', error);
      throw error;
    }
    try {
      return encoding ? await handle.readFile(encoding) : await handle.readFile();
    } finally {
      await handle.close();
    }
  }

  const copyFileIn = async (src: string, dest: string, mode: number): Promise<void> => {
    const hostPath = await resolveInRoot(root, dest, { followFinal: false });
    const out = await openForWrite(root, dest, hostPath, mode);
    try {
      const input = await open(src, constants.O_RDONLY);
      try {
        const buffer = Buffer.allocUnsafe(1 << 20);
        for (;;) {
          const { bytesRead } = await input.read(buffer, 0, buffer.length, null);
          if (bytesRead === 0) break;
          await out.write(buffer, 0, bytesRead);
        }
      } finally {
        await input.close();
      }
      await out.chmod(mode);
    } finally {
      await out.close();
    }
  };

  const copyTree = async (src: string, dest: string): Promise<void> => {
    handleSignal.throwIfAborted();
    const st = await lstat(src);
    if (st.isDirectory()) {
      const hostDir = await resolveInRoot(root, dest);
      try {
        const existing = await lstat(hostDir);
        if (!existing.isDirectory())
          throw escapeError(root, dest, 'a directory is to be copied there but it is not a directory.');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        await mkdir(hostDir, { mode: st.mode & 0o7777 });
      }
      for (const name of await readdir(src)) await copyTree(`${src}/${name}`, `${dest}/${name}`);
    } else if (st.isSymbolicLink()) {
      const hostPath = await resolveInRoot(root, dest, { followFinal: false });
      await unlink(hostPath).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      await symlink(await readlink(src), hostPath);
    } else if (st.isFile()) {
      await copyFileIn(src, dest, st.mode & 0o7777);
    } else {
      ctx.logger.warn(`copyIn: skipping ${src}, which is neither a file, a directory nor a symlink.`);
    }
  };

  const copyIn = async (hostPath: string, chrootPath: string): Promise<void> => {
    let dest = chrootPath;
    try {
      if ((await lstat(await resolveInRoot(root, chrootPath))).isDirectory())
        dest = `${chrootPath.replace(/\/+$/, '')}/${basename(hostPath)}`;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    await copyTree(hostPath, dest);
  };

  return {
    root,
    signal: handleSignal,
    exec,
    sh: (script, opts = {}) => exec('/bin/sh', ['-c', script], opts),
    writeFile,
    readFile,
    copyIn,
    path: (path) => resolveInRoot(root, path),
  };
}
