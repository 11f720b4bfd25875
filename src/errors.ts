/**
 * The error hierarchy. Every error the library throws on purpose is an {@link AmiChrootError}
 * with a stable `code`, the `phase` it happened in, the ids of the resources involved, and the
 * underlying `cause`. Messages say what failed, on which resource, and what to do about it.
 *
 * @packageDocumentation
 */

/**
 * The phases of a build, in pipeline order. Errors, log lines and progress events name one.
 * `device` (loop devices, the device lease) and `recovery` (recoverHost, cleanupOrphans) only
 * name where an error happened; every other phase a build passes through is also a
 * phase-start/phase-end pair, a hook call and a `timings` entry. A build emits `permissions` a
 * second time for deregistration protection, which comes last; the sharing of region copies
 * belongs to their `copy` phase, as they run at once.
 * @public
 */
export type Phase =
  | 'validate'
  | 'identity'
  | 'source'
  | 'preflight'
  | 'device'
  | 'volume'
  | 'attach'
  | 'pre-mount'
  | 'mount'
  | 'post-mount'
  | 'chroot-mounts'
  | 'copy-files'
  | 'service-guard'
  | 'provision'
  | 'unmount'
  | 'detach'
  | 'snapshot'
  | 'download'
  | 'upload'
  | 'deregister'
  | 'register'
  | 'encrypt'
  | 'copy'
  | 'permissions'
  | 'deprecate'
  | 'cleanup'
  | 'recovery';

/**
 * Stable, machine-readable error codes. They never change meaning between versions.
 * @public
 */
export type ErrorCode =
  | 'ERR_CONFIG'
  | 'ERR_AWS'
  | 'ERR_WAIT_TIMEOUT'
  | 'ERR_WAIT_FAILED'
  | 'ERR_HOST_IDENTITY'
  | 'ERR_SOURCE_IMAGE'
  | 'ERR_DEVICE'
  | 'ERR_LOCK'
  | 'ERR_COMMAND'
  | 'ERR_MOUNT'
  | 'ERR_UNMOUNT'
  | 'ERR_PATH_ESCAPE'
  | 'ERR_NOT_REGULAR_FILE'
  | 'ERR_PROVISION'
  | 'ERR_REGION_COPY'
  | 'ERR_BLOCK_TRANSFER'
  | 'ERR_CLEANUP'
  | 'ERR_UNSUPPORTED_PLATFORM';

/**
 * Ids of the resources an error concerns. Only the ones that exist are set.
 * @public
 */
export interface ResourceRefs {
  /** EC2 instance id of the build host. */
  readonly instanceId?: string;
  /** Work volume id. */
  readonly volumeId?: string;
  /** Snapshot id. */
  readonly snapshotId?: string;
  /** Image (AMI) id. */
  readonly imageId?: string;
  /** AWS region. */
  readonly region?: string;
  /** Host block device, e.g. `/dev/nvme1n1` or `/dev/loop3`. */
  readonly device?: string;
  /** Attachment name as EC2 knows it, e.g. `/dev/sdf`. */
  readonly attachmentName?: string;
  /** Mount point on the host. */
  readonly mountPath?: string;
}

/**
 * Options accepted by every error constructor.
 * @public
 */
export interface AmiChrootErrorOptions {
  /** The phase the error happened in. */
  readonly phase?: Phase;
  /** Resources the error concerns. */
  readonly resources?: ResourceRefs;
  /** The underlying error. */
  readonly cause?: unknown;
}

const BRAND = Symbol.for('ami-chroot.error');

/**
 * Base class of every error that ami-chroot throws on purpose.
 *
 * @remarks
 * `instanceof` works across duplicate copies of the package (the check uses a global brand).
 * Errors raised during cleanup are attached to the original error in `cleanupErrors` instead of
 * replacing it.
 *
 * @example
 * ```ts
 * import { AmiChrootError, buildAmi } from 'ami-chroot';
 *
 * try {
 *   await buildAmi({ sourceAmi: 'ami-0123456789abcdef0', amiName: 'web {{timestamp}}' }, async (chroot) => {
 *     await chroot.sh('apt-get update && apt-get install -y nginx');
 *   });
 * } catch (error) {
 *   if (!(error instanceof AmiChrootError)) throw error;
 *   // e.g. ERR_WAIT_TIMEOUT snapshot { snapshotId: 'snap-0123456789abcdef0', region: 'eu-west-1' }
 *   console.error(error.code, error.phase, error.resources);
 *   for (const failure of error.cleanupErrors) console.error('cleanup also failed:', failure.message);
 *   process.exitCode = 1;
 * }
 * ```
 * @public
 */
export class AmiChrootError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** The phase the error happened in, when known. */
  readonly phase: Phase | undefined;
  /** Ids of the resources involved. */
  readonly resources: ResourceRefs;
  /** Failures of cleanup steps that ran after this error; they never replace it. */
  readonly cleanupErrors: Error[] = [];

  /**
   * @param code - stable error code
   * @param message - what failed, on which resource, and what to do
   * @param options - phase, resources and cause
   */
  constructor(code: ErrorCode, message: string, options: AmiChrootErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.phase = options.phase;
    this.resources = { ...options.resources };
  }

  /** Brand check so `instanceof` works across package copies. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this === AmiChrootError) {
      return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
    }
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}
Object.defineProperty(AmiChrootError.prototype, BRAND, { value: true });
Object.defineProperty(AmiChrootError.prototype, 'name', {
  value: 'AmiChrootError',
  writable: true,
  configurable: true,
});

/**
 * Defines the literal `name` of an error class on its prototype (non-enumerable, like built-ins).
 * @internal
 */
function named(cls: { prototype: object }, name: string): void {
  Object.defineProperty(cls.prototype, 'name', { value: name, writable: true, configurable: true });
}

/**
 * One problem found in a configuration.
 * @public
 */
export interface ConfigIssue {
  /** Dotted path of the option, e.g. `amiBlockDeviceMappings.0.iops`. */
  readonly path: string;
  /** The offending value (secrets are redacted). */
  readonly value?: unknown;
  /** What is wrong and how to fix it. */
  readonly message: string;
}

/**
 * The configuration is invalid. Thrown before any side effect; `issues` lists every problem.
 *
 * @example
 * ```ts
 * import { ConfigError, resolveConfig } from 'ami-chroot';
 *
 * try {
 *   resolveConfig({ sourceAmi: 'ami-0123456789abcdef0', amiName: 'x' });
 * } catch (error) {
 *   if (!(error instanceof ConfigError)) throw error;
 *   for (const issue of error.issues) console.error(`${issue.path}: ${issue.message}`);
 *   // amiName: must be 3 to 128 characters long, got 1 ("x"); shorten or lengthen it
 * }
 * ```
 * @public
 */
export class ConfigError extends AmiChrootError {
  /** Every problem found, not just the first. */
  readonly issues: readonly ConfigIssue[];
  /**
   * @param issues - every problem found
   * @param options - cause
   */
  constructor(issues: readonly ConfigIssue[], options: AmiChrootErrorOptions = {}) {
    const lines = issues.map((i) => `  - ${i.path || '(config)'}: ${i.message}`);
    super(
      'ERR_CONFIG',
      `Invalid configuration (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${lines.join('\n')}`,
      { phase: 'validate', ...options },
    );
    this.issues = issues;
  }
}
named(ConfigError, 'ConfigError');

/**
 * Options of an {@link AwsError}.
 * @public
 */
export interface AwsErrorOptions extends AmiChrootErrorOptions {
  /** The EC2/STS operation, e.g. `CreateVolume`. */
  readonly operation: string;
  /** The AWS error code, e.g. `InvalidParameterValue`. */
  readonly awsCode?: string;
  /** The AWS request id, for support cases. */
  readonly requestId?: string;
  /** Decoded authorization failure message (decodeAuthorizationMessages). */
  readonly decodedMessage?: string;
}

/**
 * An AWS API call failed after the SDK's own retries.
 *
 * @example
 * ```ts
 * import { AwsError, createAwsClients, resolveSourceAmi } from 'ami-chroot/aws';
 *
 * const clients = createAwsClients({ region: 'eu-west-1', decodeAuthorizationMessages: true });
 * try {
 *   await resolveSourceAmi({ sourceAmi: 'ami-0123456789abcdef0' }, { ec2: clients.ec2 });
 * } catch (error) {
 *   if (error instanceof AwsError) {
 *     // e.g. DescribeImages UnauthorizedOperation 8f7a…: quote the request id in a support case
 *     console.error(error.operation, error.awsCode, error.requestId, error.decodedMessage ?? error.message);
 *   }
 *   throw error;
 * } finally {
 *   clients.destroy();
 * }
 * ```
 * @public
 */
export class AwsError extends AmiChrootError {
  /** The operation that failed. */
  readonly operation: string;
  /** AWS error code. */
  readonly awsCode: string | undefined;
  /** AWS request id. */
  readonly requestId: string | undefined;
  /** Decoded authorization failure message, when decoding was enabled. */
  readonly decodedMessage: string | undefined;
  /**
   * @param message - what failed and what to do
   * @param options - operation, AWS code, request id, phase, resources, cause
   */
  constructor(message: string, options: AwsErrorOptions) {
    super('ERR_AWS', message, options);
    this.operation = options.operation;
    this.awsCode = options.awsCode;
    this.requestId = options.requestId;
    this.decodedMessage = options.decodedMessage;
  }
}
named(AwsError, 'AwsError');

/**
 * A wait for an AWS state change ran out of time.
 *
 * @example
 * ```ts
 * import { WaitTimeoutError, createAwsClients, createVolume } from 'ami-chroot/aws';
 *
 * const { ec2 } = createAwsClients({ region: 'eu-west-1' });
 * const polling = { waits: { volumeAvailable: { timeoutMs: 60_000 } } };
 * try {
 *   await createVolume({ availabilityZone: 'eu-west-1a', size: 8 }, { ec2, polling });
 * } catch (error) {
 *   if (error instanceof WaitTimeoutError) {
 *     // volume vol-0123456789abcdef0 to be available 60000 creating
 *     console.error(error.waitedFor, error.timeoutMs, error.lastState, error.resources.volumeId);
 *   }
 *   throw error;
 * }
 * ```
 * @public
 */
export class WaitTimeoutError extends AmiChrootError {
  /** What was waited for, e.g. `snapshot snap-1 to be completed`. */
  readonly waitedFor: string;
  /** The limit that was exceeded. */
  readonly timeoutMs: number;
  /** The last state observed. */
  readonly lastState: string | undefined;
  /**
   * @param waitedFor - description of the awaited state
   * @param timeoutMs - the limit
   * @param lastState - last observed state
   * @param options - phase, resources
   */
  constructor(
    waitedFor: string,
    timeoutMs: number,
    lastState: string | undefined,
    options: AmiChrootErrorOptions = {},
  ) {
    super(
      'ERR_WAIT_TIMEOUT',
      `Timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${waitedFor}` +
        (lastState ? ` (last state: ${lastState})` : '') +
        '. Raise the wait with `polling` (or AWS_MAX_ATTEMPTS / AWS_POLL_DELAY_SECONDS), and check the resource in the EC2 console.',
      options,
    );
    this.waitedFor = waitedFor;
    this.timeoutMs = timeoutMs;
    this.lastState = lastState;
  }
}
named(WaitTimeoutError, 'WaitTimeoutError');

/**
 * A resource reached a failure state while being waited for (volume `error`, image `failed`, ...).
 *
 * @example
 * ```ts
 * import { WaitFailedError, createAwsClients, createVolume } from 'ami-chroot/aws';
 *
 * const { ec2 } = createAwsClients({ region: 'eu-west-1' });
 * try {
 *   // A KMS key the account may not use sends the new volume to `error`.
 *   await createVolume({ availabilityZone: 'eu-west-1a', size: 8, encrypted: true, kmsKeyId: 'alias/images' }, { ec2 });
 * } catch (error) {
 *   if (error instanceof WaitFailedError) console.error(error.state, error.phase, error.resources.volumeId); // error volume vol-0…
 *   throw error;
 * }
 * ```
 * @public
 */
export class WaitFailedError extends AmiChrootError {
  /** The failure state reached. */
  readonly state: string;
  /**
   * @param message - what failed
   * @param state - the failure state
   * @param options - phase, resources, cause
   */
  constructor(message: string, state: string, options: AmiChrootErrorOptions = {}) {
    super('ERR_WAIT_FAILED', message, options);
    this.state = state;
  }
}
named(WaitFailedError, 'WaitFailedError');

/**
 * The build host's identity (instance id, availability zone, region) could not be read.
 *
 * @example
 * ```ts
 * import { HostIdentityError, getHostIdentity } from 'ami-chroot/aws';
 *
 * try {
 *   const host = await getHostIdentity({ timeoutMs: 5_000 });
 *   console.log(host.instanceId, host.availabilityZone);
 * } catch (error) {
 *   // Not on EC2, IMDS disabled, or an IMDSv2 hop limit of 1 inside a container: the message says what to check.
 *   if (error instanceof HostIdentityError) console.error(error.phase, error.message, error.cause); // 'identity', …
 *   throw error;
 * }
 * ```
 * @public
 */
export class HostIdentityError extends AmiChrootError {
  /**
   * @param message - what failed and what to check
   * @param options - cause
   */
  constructor(message: string, options: AmiChrootErrorOptions = {}) {
    super('ERR_HOST_IDENTITY', message, { phase: 'identity', ...options });
  }
}
named(HostIdentityError, 'HostIdentityError');

/**
 * The source image could not be resolved, or is not usable (not EBS-backed, ambiguous, missing).
 *
 * @example
 * ```ts
 * import { SourceImageError, createAwsClients, resolveSourceAmi } from 'ami-chroot/aws';
 *
 * const { ec2 } = createAwsClients({ region: 'eu-west-1' });
 * const sourceAmiFilter = { filters: { name: 'debian-12-amd64-*' }, owners: ['136693071363'] };
 * try {
 *   await resolveSourceAmi({ sourceAmiFilter }, { ec2 });
 * } catch (error) {
 *   // Several images match and mostRecent is not set: the message lists them. Set mostRecent: true.
 *   if (error instanceof SourceImageError) console.error(error.phase, error.message); // 'source', …
 *   throw error;
 * }
 * ```
 * @public
 */
export class SourceImageError extends AmiChrootError {
  /**
   * @param message - what is wrong and what to do
   * @param options - resources, cause
   */
  constructor(message: string, options: AmiChrootErrorOptions = {}) {
    super('ERR_SOURCE_IMAGE', message, { phase: 'source', ...options });
  }
}
named(SourceImageError, 'SourceImageError');

/**
 * No free attachment name, an unusable device path, or a host block device that never appeared.
 *
 * @example
 * ```ts
 * import { DeviceError, allocateDevice } from 'ami-chroot/host';
 *
 * try {
 *   const lease = await allocateDevice({ devicePath: '/dev/sdf' });
 *   console.log(lease.attachmentName);
 * } catch (error) {
 *   // /dev/sdf exists on this host, EC2 lists it, or another build reserved it.
 *   if (error instanceof DeviceError) console.error(error.resources.attachmentName, error.message); // /dev/sdf …
 *   throw error;
 * }
 * ```
 * @public
 */
export class DeviceError extends AmiChrootError {
  /**
   * @param message - what is wrong and what to do
   * @param options - phase, resources, cause
   */
  constructor(message: string, options: AmiChrootErrorOptions = {}) {
    super('ERR_DEVICE', message, { phase: 'device', ...options });
  }
}
named(DeviceError, 'DeviceError');

/**
 * A cross-process lock could not be taken in time.
 *
 * @example
 * ```ts
 * import { LockError, allocateDevice } from 'ami-chroot/host';
 *
 * try {
 *   const lease = await allocateDevice({ lockTimeoutMs: 10_000 });
 *   console.log(lease.attachmentName);
 * } catch (error) {
 *   // Another process held the allocation lock for all of lockTimeoutMs (60 s unless set).
 *   if (error instanceof LockError) console.error(error.lockPath, error.message); // /var/lock/ami-chroot/allocate.lock …
 *   throw error;
 * }
 * ```
 * @public
 */
export class LockError extends AmiChrootError {
  /** The lock file. */
  readonly lockPath: string;
  /**
   * @param message - what failed
   * @param lockPath - the lock file
   * @param options - phase, cause
   */
  constructor(message: string, lockPath: string, options: AmiChrootErrorOptions = {}) {
    super('ERR_LOCK', message, { phase: 'device', ...options });
    this.lockPath = lockPath;
  }
}
named(LockError, 'LockError');

/**
 * Options of a {@link CommandError}.
 * @public
 */
export interface CommandErrorOptions extends AmiChrootErrorOptions {
  /** The program (or `sh` for shell commands). */
  readonly command: string;
  /** Its arguments. */
  readonly args: readonly string[];
  /** Exit code, when it exited. */
  readonly exitCode?: number | null;
  /** The signal that ended it, if any. */
  readonly signal?: string | null;
  /** The tail of its standard error. */
  readonly stderr?: string;
  /** True when it was stopped by its timeout. */
  readonly timedOut?: boolean;
}

/**
 * A host command, or a command inside the chroot, failed.
 *
 * @example
 * ```ts
 * import { CommandError, withChroot } from 'ami-chroot/host';
 *
 * try {
 *   await withChroot({ device: '/dev/nvme1n1' }, async (chroot) => {
 *     await chroot.exec('apt-get', ['install', '-y', 'no-such-package']);
 *   });
 * } catch (error) {
 *   if (error instanceof CommandError) {
 *     // Inside a chroot the program is chroot(8): /usr/sbin/chroot [ '--', '/mnt/ami-chroot/nvme1n1', 'apt-get', … ]
 *     console.error(error.command, error.args);
 *     console.error(error.exitCode, error.signal, error.timedOut, error.stderr); // 100 null false 'E: Unable to locate package …'
 *   }
 *   throw error;
 * }
 * ```
 * @public
 */
export class CommandError extends AmiChrootError {
  /** The program. */
  readonly command: string;
  /** Its arguments. */
  readonly args: readonly string[];
  /** Exit code, null when killed by a signal. */
  readonly exitCode: number | null;
  /** Signal that ended it. */
  readonly signal: string | null;
  /** Tail of standard error. */
  readonly stderr: string;
  /** True when its timeout stopped it. */
  readonly timedOut: boolean;
  /**
   * @param message - what failed
   * @param options - command, args, exit code, stderr, phase, cause
   */
  constructor(message: string, options: CommandErrorOptions) {
    super('ERR_COMMAND', message, options);
    this.command = options.command;
    this.args = options.args;
    this.exitCode = options.exitCode ?? null;
    this.signal = options.signal ?? null;
    this.stderr = options.stderr ?? '';
    this.timedOut = options.timedOut ?? false;
  }
}
named(CommandError, 'CommandError');

/**
 * Mounting the root device or a chroot mount failed.
 *
 * @example
 * ```ts
 * import { MountError, mountChroot, recoverHost } from 'ami-chroot/host';
 *
 * const mount = () => mountChroot({ device: '/dev/xvdf' });
 * const chroot = await mount().catch(async (error: unknown) => {
 *   // e.g. the mount path is still a mount point of a build that was killed: clean up after it, retry once.
 *   if (!(error instanceof MountError)) throw error;
 *   console.warn(error.phase, error.resources.mountPath, error.message); // mount /mnt/ami-chroot/xvdf …
 *   await recoverHost();
 *   return mount();
 * });
 * await chroot.unmount();
 * ```
 * @public
 */
export class MountError extends AmiChrootError {
  /**
   * @param message - what failed and what to do
   * @param options - phase, resources, cause
   */
  constructor(message: string, options: AmiChrootErrorOptions = {}) {
    super('ERR_MOUNT', message, { phase: 'mount', ...options });
  }
}
named(MountError, 'MountError');

/**
 * A process or file that keeps a mount busy.
 * @public
 */
export interface MountHolder {
  /** Process id. */
  readonly pid: number;
  /** Command line, as far as it could be read. */
  readonly command: string;
  /** Why it holds the mount: its root, cwd, executable, an open file or a mapping. */
  readonly reason: string;
}

/**
 * Something stayed mounted. The library never reports success while anything is mounted.
 *
 * @example
 * ```ts
 * import { UnmountError, unmountTree } from 'ami-chroot/host';
 *
 * try {
 *   await unmountTree('/mnt/ami-chroot/nvme1n1');
 * } catch (error) {
 *   if (error instanceof UnmountError) {
 *     console.error('still mounted:', error.stillMounted); // [ '/mnt/ami-chroot/nvme1n1' ]
 *     for (const holder of error.holders) console.error(holder.pid, holder.command, holder.reason);
 *   }
 *   throw error;
 * }
 * ```
 * @public
 */
export class UnmountError extends AmiChrootError {
  /** Mount points still mounted. */
  readonly stillMounted: readonly string[];
  /** Processes that were found holding them. */
  readonly holders: readonly MountHolder[];
  /**
   * @param message - what is still mounted and why
   * @param stillMounted - mount points still present
   * @param holders - processes holding them
   * @param options - resources, cause
   */
  constructor(
    message: string,
    stillMounted: readonly string[],
    holders: readonly MountHolder[],
    options: AmiChrootErrorOptions = {},
  ) {
    super('ERR_UNMOUNT', message, { phase: 'unmount', ...options });
    this.stillMounted = stillMounted;
    this.holders = holders;
  }
}
named(UnmountError, 'UnmountError');

/**
 * A path inside the chroot resolved outside of it (a hostile or absolute symlink in the image).
 *
 * @example
 * ```ts
 * import { PathEscapeError, withChroot } from 'ami-chroot/host';
 *
 * await withChroot({ device: '/dev/nvme1n1' }, async (chroot) => {
 *   try {
 *     await chroot.writeFile('/etc/motd', 'Baked by ami-chroot\n');
 *   } catch (error) {
 *     // /etc/motd is a symlink in this image: writing through it is refused unless asked for.
 *     if (!(error instanceof PathEscapeError)) throw error;
 *     console.warn(error.path, error.resources.mountPath, error.message); // /etc/motd /mnt/ami-chroot/nvme1n1 …
 *     await chroot.writeFile('/etc/motd', 'Baked by ami-chroot\n', { followSymlink: true }); // its target, inside the chroot
 *   }
 * });
 * ```
 * @public
 */
export class PathEscapeError extends AmiChrootError {
  /** The path asked for, relative to the chroot. */
  readonly path: string;
  /**
   * @param message - which path escaped and through what
   * @param path - the requested path
   * @param options - resources
   */
  constructor(message: string, path: string, options: AmiChrootErrorOptions = {}) {
    super('ERR_PATH_ESCAPE', message, { phase: 'provision', ...options });
    this.path = path;
  }
}
named(PathEscapeError, 'PathEscapeError');

/**
 * A file operation of the Chroot handle met something other than a regular file (a device node,
 * FIFO, socket or directory). Such files are refused unopened: reading a FIFO would block, and
 * opening some devices has effects of its own.
 *
 * @example
 * ```ts
 * import { NotRegularFileError, withChroot } from 'ami-chroot/host';
 *
 * await withChroot({ device: '/dev/nvme1n1' }, async (chroot) => {
 *   try {
 *     await chroot.readFile('/etc/hostname', 'utf8');
 *   } catch (error) {
 *     if (!(error instanceof NotRegularFileError)) throw error;
 *     console.warn(error.path, error.fileType); // /etc/hostname a FIFO
 *   }
 * });
 * ```
 * @public
 */
export class NotRegularFileError extends AmiChrootError {
  /** The path asked for, relative to the chroot. */
  readonly path: string;
  /** What is there instead, e.g. `a FIFO`, `a character device`. */
  readonly fileType: string;
  /**
   * @param message - which path, what it is, and what to do
   * @param path - the requested path
   * @param fileType - what is there instead
   * @param options - resources
   */
  constructor(message: string, path: string, fileType: string, options: AmiChrootErrorOptions = {}) {
    super('ERR_NOT_REGULAR_FILE', message, { phase: 'provision', ...options });
    this.path = path;
    this.fileType = fileType;
  }
}
named(NotRegularFileError, 'NotRegularFileError');

/**
 * The user's provision callback threw; the original error is the `cause`.
 *
 * @example
 * ```ts
 * import { ProvisionError, buildAmi } from 'ami-chroot';
 *
 * try {
 *   await buildAmi({ sourceAmi: 'ami-0123456789abcdef0', amiName: 'web {{timestamp}}' }, async (chroot) => {
 *     const release = await chroot.readFile('/etc/os-release', 'utf8');
 *     if (!release.includes('bookworm')) throw new Error('expected a Debian 12 source image');
 *   });
 * } catch (error) {
 *   // Your own errors arrive wrapped (ami-chroot's, e.g. a CommandError of chroot.exec, as they are).
 *   if (error instanceof ProvisionError) console.error(error.cause, error.resources.volumeId, error.resources.mountPath);
 *   throw error;
 * }
 * ```
 * @public
 */
export class ProvisionError extends AmiChrootError {
  /**
   * @param message - summary
   * @param options - resources, cause
   */
  constructor(message: string, options: AmiChrootErrorOptions = {}) {
    super('ERR_PROVISION', message, { phase: 'provision', ...options });
  }
}
named(ProvisionError, 'ProvisionError');

/**
 * The outcome of one region of a region copy.
 * @public
 */
export interface RegionOutcome {
  /** Target region. */
  readonly region: string;
  /** `ok`: copied; `failed`: the copy failed; `undone`: copied, then removed because another region failed; `kept`: left by keepOnError. */
  readonly status: 'ok' | 'failed' | 'undone' | 'kept' | 'undo-failed';
  /** The image id in that region, if one was created. */
  readonly imageId?: string;
  /** The failure, when it failed. */
  readonly error?: Error;
}

/**
 * One or more region copies failed. `outcomes` tells what happened in every region.
 *
 * @example
 * ```ts
 * import { RegionCopyError, copyToRegions, createAwsClients } from 'ami-chroot/aws';
 *
 * const clients = createAwsClients({ region: 'us-east-1' });
 * const input = { sourceImageId: 'ami-0123456789abcdef0', sourceRegion: 'us-east-1', regions: ['eu-west-1', 'ap-southeast-2'], name: 'web 2026-01-01' };
 * try {
 *   await copyToRegions(input, { ec2: clients.ec2 });
 * } catch (error) {
 *   if (error instanceof RegionCopyError) {
 *     // eu-west-1 undone ami-0…  /  ap-southeast-2 failed - <why>
 *     for (const o of error.outcomes) console.error(o.region, o.status, o.imageId ?? '-', o.error?.message ?? '');
 *   }
 *   throw error;
 * }
 * ```
 * @public
 */
export class RegionCopyError extends AmiChrootError {
  /** Every region's outcome. */
  readonly outcomes: readonly RegionOutcome[];
  /**
   * @param message - summary
   * @param outcomes - every region's outcome
   * @param options - resources, cause
   */
  constructor(message: string, outcomes: readonly RegionOutcome[], options: AmiChrootErrorOptions = {}) {
    super('ERR_REGION_COPY', message, { phase: 'copy', ...options });
    this.outcomes = outcomes;
  }
}
named(RegionCopyError, 'RegionCopyError');

/**
 * A snapshot block could not be read or written through the EBS direct APIs: its data did not
 * match its checksum, the local file is not what the snapshot needs, or EBS kept failing the block
 * after every retry.
 *
 * @example
 * ```ts
 * import { BlockTransferError, downloadSnapshot } from 'ami-chroot/aws';
 * import { EBSClient } from '@aws-sdk/client-ebs';
 *
 * try {
 *   await downloadSnapshot({ snapshotId: 'snap-0123456789abcdef0', file: '/var/cache/root.raw' }, { ebs: new EBSClient({}) });
 * } catch (error) {
 *   // The file is kept with what was verified so far: running the same call again resumes.
 *   if (error instanceof BlockTransferError) console.error(error.blockIndex, error.message);
 *   throw error;
 * }
 * ```
 * @public
 */
export class BlockTransferError extends AmiChrootError {
  /** The block (index in 512 KiB units), when one block is to blame. */
  readonly blockIndex: number | undefined;
  /**
   * @param message - what failed and what to do
   * @param options - phase (`download` or `upload`), snapshot, block index, cause
   */
  constructor(message: string, options: AmiChrootErrorOptions & { readonly blockIndex?: number } = {}) {
    super('ERR_BLOCK_TRANSFER', message, options);
    this.blockIndex = options.blockIndex;
  }
}
named(BlockTransferError, 'BlockTransferError');

/**
 * Cleanup failed while there was no other error to attach the failures to.
 *
 * @example
 * ```ts
 * import { CleanupError, recoverHost } from 'ami-chroot/host';
 *
 * try {
 *   const report = await recoverHost();
 *   console.log(`cleaned up after ${report.recovered.length} dead build(s)`);
 * } catch (error) {
 *   // Something could not be undone (a mount still busy…); its journal is kept, so a later call retries.
 *   if (error instanceof CleanupError) for (const failure of error.errors) console.error(failure.message);
 *   throw error;
 * }
 * ```
 * @public
 */
export class CleanupError extends AmiChrootError {
  /** Every cleanup failure. */
  readonly errors: readonly Error[];
  /**
   * @param errors - every cleanup failure
   * @param options - resources
   */
  constructor(errors: readonly Error[], options: AmiChrootErrorOptions = {}) {
    super(
      'ERR_CLEANUP',
      `Cleanup failed (${errors.length} step${errors.length === 1 ? '' : 's'}):\n` +
        errors.map((e) => `  - ${e.message}`).join('\n'),
      { phase: 'cleanup', ...options },
    );
    this.errors = errors;
  }
}
named(CleanupError, 'CleanupError');

/**
 * The host cannot run this operation (not Linux, or not root). A missing program surfaces as a {@link CommandError}.
 *
 * @example
 * ```ts
 * import { UnsupportedPlatformError, buildImage } from 'ami-chroot';
 *
 * try {
 *   await buildImage({ sourceImage: 'debian-12.raw', output: 'web.raw' }, async (chroot) => {
 *     await chroot.sh('apt-get update && apt-get install -y nginx');
 *   });
 * } catch (error) {
 *   // Not Linux, or not root: the message says what is needed.
 *   if (error instanceof UnsupportedPlatformError) {
 *     console.error(error.message);
 *     process.exit(2);
 *   }
 *   throw error;
 * }
 * ```
 * @public
 */
export class UnsupportedPlatformError extends AmiChrootError {
  /**
   * @param message - what is missing and how to get it
   * @param options - phase
   */
  constructor(message: string, options: AmiChrootErrorOptions = {}) {
    super('ERR_UNSUPPORTED_PLATFORM', message, options);
  }
}
named(UnsupportedPlatformError, 'UnsupportedPlatformError');

/**
 * Returns true when `error` is an abort: a DOMException or Error named `AbortError`, or the
 * `TimeoutError` of `AbortSignal.timeout()`.
 *
 * @example
 * ```ts
 * import { buildAmi, isAbortError } from 'ami-chroot';
 * import type { BuildConfig, ProvisionFn } from 'ami-chroot';
 *
 * declare const config: BuildConfig;
 * declare const provision: ProvisionFn;
 *
 * try {
 *   await buildAmi(config, provision, { signal: AbortSignal.timeout(2 * 3_600_000) });
 * } catch (error) {
 *   if (!isAbortError(error)) throw error;
 *   console.error('The build was cancelled or ran out of time; what it created has been removed.');
 * }
 * ```
 * @public
 */
export function isAbortError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const name = (error as { name?: unknown }).name;
  // AbortSignal.timeout() aborts with a DOMException named TimeoutError; ours is WaitTimeoutError.
  return name === 'AbortError' || name === 'TimeoutError';
}

/**
 * Attaches cleanup failures to the original error without replacing it.
 * @internal
 */
export function attachCleanupErrors(original: unknown, cleanupErrors: readonly Error[]): unknown {
  if (cleanupErrors.length === 0) return original;
  if (original instanceof AmiChrootError) {
    original.cleanupErrors.push(...cleanupErrors);
    return original;
  }
  if (original instanceof Error) {
    const list = ((original as Error & { cleanupErrors?: Error[] }).cleanupErrors ??= []);
    list.push(...cleanupErrors);
  }
  return original;
}
