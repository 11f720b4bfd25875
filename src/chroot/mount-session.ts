/**
 * The steps of one mountChroot, in order, each registering its undo on one CleanupStack the moment
 * its resource exists, so a teardown (after success or failure) unwinds exactly what was made.
 */
import { lstat, readdir, readFile, realpath, rmdir } from 'node:fs/promises';
import { attachCleanupErrors, MountError, UnmountError } from '../errors.js';
import { CleanupStack } from '../internal/cleanup-stack.js';
import { defined } from '../internal/defined.js';
import type { PhaseRunner } from '../internal/sub-phases.js';
import { toError } from '../internal/to-error.js';
import type { Journal, JournalEntry } from '../host/journal.js';
import { mountOne, readMountInfo, unmountTreeCtx, waitDeviceReleased } from '../host/mounts.js';
import type { HostCtx } from '../host/mounts.js';
import { stopHolders } from '../host/processes.js';
import { waitForPartition } from '../host/resolve-device.js';
import { CHROOT_MOUNT_OPTIONS, specOf } from './chroot-mounts.js';
import { DEFAULT_CHROOT_MOUNTS, DEFAULT_COPY_FILES } from './defaults.js';
import { placeFile } from './file-swap.js';
import { commandsOf, runCommands } from './mount-commands.js';
import { mkdirs } from './mount-dir.js';
import type { MountChrootInput } from './mount.js';
import { resolveInRoot } from './paths.js';
import { rootMountOptions } from './root-options.js';
import { installServiceGuard } from './service-guard.js';

/** What one mountChroot made, and how to unmake it. @internal */
export class MountSession {
  /** The mount path, its real path once it exists. */
  root: string;
  /** The partition (or disk) mounted at `root`. */
  mountedDevice: string;
  /** Mount points made, root first; empty once unmounted. */
  mounts: string[] = [];
  /** Environment for commands inside (the service guard's). */
  env: Readonly<Record<string, string>> = {};
  private journalMounts: JournalEntry[] = [];
  private createdDirs: string[] = [];
  private teardownSignal: AbortSignal | undefined;
  private readonly killGraceMs: number;
  /** Holders warned about, over every unmount of this mount (a build tries more than once). */
  private readonly warned = new Set<number>();
  // One try per undo: the unmount retries on its own, and a failed step stays pending, so a
  // second teardown retries exactly what is left. Steps report as resource events, not as the
  // caller's own cleanup steps.
  private readonly stack: CleanupStack;

  private readonly input: MountChrootInput;
  private readonly ctx: HostCtx;
  private readonly journal: Journal | undefined;

  constructor(input: MountChrootInput, ctx: HostCtx, requestedRoot: string, journal: Journal | undefined) {
    this.input = input;
    this.ctx = ctx;
    this.journal = journal;
    this.root = requestedRoot;
    this.mountedDevice = input.device;
    this.killGraceMs = input.killGraceMs ?? 3000;
    this.stack = new CleanupStack({ ...ctx, emit: () => {} }, 120_000, 1);
  }

  /** Every step, in Packer's order; throws on the first failure, leaving the undo to teardown(). */
  async mount(phase: PhaseRunner): Promise<void> {
    const { input, ctx } = this;
    const device = input.device;
    ctx.signal?.throwIfAborted();
    await phase('pre-mount', () =>
      runCommands(commandsOf(input.preMountCommands, { Device: device, MountPath: '' }), 'pre-mount', ctx),
    );
    this.mountedDevice = await waitForPartition(
      { disk: device, partition: input.mountPartition ?? '1', timeoutMs: input.partitionTimeoutMs ?? 30_000 },
      { logger: ctx.logger, ...defined({ signal: ctx.signal }) },
    );
    await this.makeMountDir();
    await this.mountRoot();
    await phase('post-mount', () =>
      runCommands(commandsOf(input.postMountCommands, { Device: device, MountPath: this.root }), 'post-mount', ctx),
    );
    await phase('chroot-mounts', () => this.mountChrootMounts());
    await phase('copy-files', () => this.placeCopyFiles());
    if (input.serviceGuard ?? true) await phase('service-guard', () => this.placeServiceGuard());
    ctx.logger.info(`Mounted ${this.mountedDevice} at ${this.root} with ${this.mounts.length - 1} chroot mount(s).`);
  }

  /**
   * Stops what runs inside, then unwinds every undo (last first). Throws the first failure with
   * the others attached; what failed stays pending for the next call.
   */
  async teardown(signal: AbortSignal): Promise<void> {
    this.teardownSignal = signal;
    const errors: Error[] = [];
    // Daemons left running inside (chrooted there) could rewrite the files we restore: stop
    // them first. Other holders (a host shell's cwd) only block the unmount, which finds them.
    if (this.mounts.length > 0) {
      try {
        await stopHolders(this.root, { ...this.ctx, signal }, { graceMs: this.killGraceMs, scope: 'roots' });
      } catch (error) {
        errors.push(toError(error));
      }
    }
    // The stack names each failure after its step; the step's own typed error is the cause.
    for (const e of await this.stack.unwind('success')) errors.push(e.cause instanceof Error ? e.cause : e);
    if (errors.length > 0) {
      const [first, ...rest] = errors;
      throw attachCleanupErrors(first, rest);
    }
    await this.journal?.close();
  }

  /** Creates the mount directory, refusing one in use so a leftover is never mounted over. */
  private async makeMountDir(): Promise<void> {
    const requested = this.root;
    this.createdDirs.push(...(await mkdirs(requested)));
    this.stack.defer(`unmount ${requested}`, (signal) => this.undoMount(signal));
    for (const d of this.createdDirs) await this.journal?.add({ type: 'dir', path: d });
    this.root = await realpath(requested);
    const resources = { device: this.input.device, mountPath: this.root };
    if ((await readMountInfo()).some((m) => m.mountPoint === this.root)) {
      throw new MountError(
        `${this.root} is already a mount point (a build that was killed? run recoverHost()). Choose another mountPath or unmount it.`,
        { resources },
      );
    }
    if ((await readdir(this.root)).length > 0) {
      throw new MountError(
        `${this.root} is not empty; mount paths must be empty directories. Choose another mountPath.`,
        { resources },
      );
    }
  }

  private async mountRoot(): Promise<void> {
    const { ctx, journal, root } = this;
    const options = await rootMountOptions(this.mountedDevice, this.input.mountOptions ?? [], ctx);
    const rootEntry: JournalEntry = { type: 'mount', target: root };
    await journal?.add(rootEntry);
    this.journalMounts.push(rootEntry);
    this.mounts.push(root);
    try {
      await mountOne({ source: this.mountedDevice, target: root, options }, ctx, 'mount');
    } catch (error) {
      throw new MountError(`Could not mount ${this.mountedDevice} at ${root}: ${toError(error).message}`, {
        resources: { device: this.mountedDevice, mountPath: root },
        cause: error,
      });
    }
    // Recovery unmounts only this very mount: record its id and device.
    const made = (await readMountInfo()).filter((m) => m.mountPoint === root).at(-1);
    if (made && journal) {
      const identified: JournalEntry = { ...rootEntry, id: made.id, majorMinor: made.majorMinor };
      await journal.replace(rootEntry, identified);
      this.journalMounts[0] = identified;
    }
    ctx.emit({ type: 'resource', action: 'created', kind: 'mount', id: root });
  }

  private async mountChrootMounts(): Promise<void> {
    const { ctx, root } = this;
    for (const { fsType, source, target } of (this.input.chrootMounts ?? DEFAULT_CHROOT_MOUNTS).map(specOf)) {
      ctx.signal?.throwIfAborted();
      // Resolved inside the image: a /dev or /proc that is a symlink must not send the mount to the host.
      const dir = await resolveInRoot(root, target, { mkdirs: true });
      const entry: JournalEntry = { type: 'mount', target: dir };
      await this.journal?.add(entry);
      this.journalMounts.push(entry);
      this.mounts.push(dir);
      try {
        await mountOne({ fsType, source, target: dir, options: CHROOT_MOUNT_OPTIONS[fsType] }, ctx, 'chroot-mounts');
      } catch (error) {
        throw new MountError(`Could not mount ${fsType} ${source} at ${dir}: ${toError(error).message}`, {
          phase: 'chroot-mounts',
          resources: { mountPath: root },
          cause: error,
        });
      }
      ctx.emit({ type: 'resource', action: 'created', kind: 'mount', id: dir });
    }
  }

  private async placeCopyFiles(): Promise<void> {
    for (const file of this.input.copyFiles ?? DEFAULT_COPY_FILES) {
      let data: Buffer;
      let mode: number;
      try {
        data = await readFile(file);
        mode = (await lstat(await realpath(file))).mode & 0o7777;
      } catch (error) {
        throw new MountError(`Could not read ${file} to copy into the chroot (copyFiles): ${toError(error).message}`, {
          phase: 'copy-files',
          cause: error,
        });
      }
      const placed = await placeFile(this.root, file, data, mode, this.journal, 'copy-files');
      this.deferRemoval('file', placed.hostPath, `put back the image's ${file}`, () => placed.restore(), {
        message: `Could not put the image's own ${placed.hostPath} back`,
        phase: 'copy-files',
      });
    }
  }

  private async placeServiceGuard(): Promise<void> {
    const guard = await installServiceGuard(this.root, this.journal, this.ctx);
    this.env = guard.env;
    this.deferRemoval('service-guard', this.root, 'remove the service guard', () => guard.remove(), {
      message: `Could not remove the service guard from ${this.root}`,
      phase: 'service-guard',
    });
    this.ctx.logger.debug(`Service guard in ${this.root}: ${guard.installed.join(', ')}`);
  }

  /** Reports a placed thing as created and registers its removal, failing as a typed MountError. */
  private deferRemoval(
    kind: 'file' | 'service-guard',
    id: string,
    step: string,
    remove: () => Promise<void>,
    failure: { message: string; phase: 'copy-files' | 'service-guard' },
  ): void {
    this.stack.defer(step, async () => {
      try {
        await remove();
      } catch (error) {
        throw new MountError(`${failure.message}: ${toError(error).message}`, { phase: failure.phase, cause: error });
      }
      this.ctx.emit({ type: 'resource', action: 'removed', kind, id });
    });
    this.ctx.emit({ type: 'resource', action: 'created', kind, id });
  }

  /** Unmounts everything under the root and removes the directories made for it. */
  private async undoMount(stepSignal: AbortSignal): Promise<void> {
    const signal = this.teardownSignal ?? stepSignal;
    // Nothing of ours is mounted (we failed before the root mount): never touch what is there.
    if (this.mounts.length > 0) {
      await unmountTreeCtx(this.root, { ...this.ctx, signal }, { killGraceMs: this.killGraceMs, warned: this.warned });
      for (const m of [...this.mounts].reverse())
        this.ctx.emit({ type: 'resource', action: 'removed', kind: 'mount', id: m });
      for (const entry of [...this.journalMounts].reverse()) await this.journal?.remove(entry);
      this.mounts = [];
      this.journalMounts = [];
      if (!(await waitDeviceReleased(this.mountedDevice, 5000, signal).catch(() => false))) {
        throw new UnmountError(
          `${this.mountedDevice} is unmounted from ${this.root} but still in use (mounted in another mount namespace, or held open). ` +
            'Do not detach or snapshot the volume until it is released.',
          [],
          [],
          { resources: { device: this.mountedDevice, mountPath: this.root } },
        );
      }
    }
    for (const dir of [...this.createdDirs].reverse()) {
      try {
        await rmdir(dir);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // A shared parent (/mnt/ami-chroot) may hold another build's mount path.
        if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EBUSY') throw error;
      }
    }
    this.createdDirs = [];
  }
}
