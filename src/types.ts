/**
 * Types shared by every primitive: logger, progress events, and the common options.
 * @packageDocumentation
 */
import type { Phase } from './errors.js';

/**
 * A logger. Any subset of the four methods may be given; `console` fits as it is. Missing
 * `debug`/`info` are silent; missing `warn`/`error` go to `console`.
 *
 * @remarks
 * Lines about an AWS call, a command, a phase or a resource pass a {@link LogFields} object after
 * the message, so structured loggers can index them. pino and bunyan take the object first:
 * wrap them with {@link objectFirstLogger}.
 * @public
 */
export interface Logger {
  /** Detailed tracing: every AWS call, every poll, every host command, the stderr of commands. */
  debug(message: string, fields?: LogFields): void;
  /** Milestones: resource created, phase finished, the output of provisioning commands. */
  info(message: string, fields?: LogFields): void;
  /** Something was retried or worked around. */
  warn(message: string, fields?: LogFields): void;
  /** Something failed. */
  error(message: string, fields?: LogFields): void;
}

/**
 * What a log line is about, as fields (the same facts are in the message, for people).
 * @public
 */
export interface LogFields {
  /** The phase the line belongs to. */
  readonly phase?: Phase;
  /** AWS region. */
  readonly region?: string;
  /** EBS volume id. */
  readonly volumeId?: string;
  /** Snapshot id. */
  readonly snapshotId?: string;
  /** AMI id. */
  readonly imageId?: string;
  /** EC2 instance id. */
  readonly instanceId?: string;
  /** Block device. */
  readonly device?: string;
  /** Mount point. */
  readonly mountPath?: string;
  /** AWS operation, e.g. `CreateVolume`. */
  readonly operation?: string;
  /** Program name of a command. */
  readonly command?: string;
  /** Which output stream of a command a line comes from. */
  readonly stream?: 'stdout' | 'stderr';
  /** Exit code of a command. */
  readonly exitCode?: number | null;
  /** How long the call, command or phase took. */
  readonly durationMs?: number;
  /** False when the call, command or phase failed. */
  readonly ok?: boolean;
}

/**
 * Kinds of resources that are created and removed during a build.
 * @public
 */
export type ResourceKind =
  | 'volume'
  | 'attachment'
  | 'snapshot'
  | 'image'
  | 'device-lease'
  | 'mount'
  | 'file'
  | 'service-guard'
  | 'loop-device'
  | 'image-file';

/**
 * A phase started.
 * @public
 */
export interface PhaseStartEvent {
  /** Discriminator. */
  readonly type: 'phase-start';
  /** The phase. */
  readonly phase: Phase;
}

/**
 * A phase finished (successfully or not).
 * @public
 */
export interface PhaseEndEvent {
  /** Discriminator. */
  readonly type: 'phase-end';
  /** The phase. */
  readonly phase: Phase;
  /** How long it took. */
  readonly durationMs: number;
  /** False when the phase failed. */
  readonly ok: boolean;
}

/**
 * A resource was created, removed, or deliberately kept.
 * @public
 */
export interface ResourceEvent {
  /** Discriminator. */
  readonly type: 'resource';
  /** What happened to it. */
  readonly action: 'created' | 'removed' | 'kept';
  /** Its kind. */
  readonly kind: ResourceKind;
  /** Its id: volume/snapshot/image id, device path, mount point, file path. */
  readonly id: string;
  /** AWS region, for AWS resources. */
  readonly region?: string;
}

/**
 * A wait observed a state (reported on every change of state or progress).
 * @public
 */
export interface WaitEvent {
  /** Discriminator. */
  readonly type: 'wait';
  /** What is being waited for, e.g. `volume vol-1 available`. */
  readonly waitingFor: string;
  /** The resource id. */
  readonly id: string;
  /** The state last observed. */
  readonly state: string;
  /** Describe calls made so far for this wait. */
  readonly polls: number;
  /** Time waited so far. */
  readonly elapsedMs: number;
}

/**
 * Snapshot progress, as reported by EC2.
 * @public
 */
export interface SnapshotProgressEvent {
  /** Discriminator. */
  readonly type: 'snapshot-progress';
  /** Snapshot id. */
  readonly snapshotId: string;
  /** Region. */
  readonly region: string;
  /** 0 to 100. */
  readonly percent: number;
}

/**
 * The state of one region copy changed.
 * @public
 */
export interface CopyProgressEvent {
  /** Discriminator. */
  readonly type: 'copy';
  /** Target region. */
  readonly region: string;
  /** The new image in that region, once known. */
  readonly imageId?: string;
  /** The copy's state. */
  readonly state: 'started' | 'available' | 'failed' | 'undone';
}

/**
 * A cleanup step ran.
 * @public
 */
export interface CleanupEvent {
  /** Discriminator. */
  readonly type: 'cleanup';
  /** The step, e.g. `delete volume vol-1`. */
  readonly step: string;
  /** Its outcome. */
  readonly status: 'start' | 'done' | 'failed' | 'skipped';
  /** The failure message, when it failed. */
  readonly error?: string;
}

/**
 * A line of output from a command run on the host or inside the chroot.
 * @public
 */
export interface OutputEvent {
  /** Discriminator. */
  readonly type: 'output';
  /** Which stream. */
  readonly stream: 'stdout' | 'stderr';
  /** The command (program name). */
  readonly command: string;
  /** One line, without its newline. */
  readonly line: string;
}

/**
 * Blocks moved through the EBS direct APIs so far (snapshot download or upload).
 * @public
 */
export interface BlockTransferEvent {
  /** Discriminator. */
  readonly type: 'blocks';
  /** `download` (GetSnapshotBlock) or `upload` (PutSnapshotBlock). */
  readonly direction: 'download' | 'upload';
  /** The snapshot read or written. */
  readonly snapshotId: string;
  /** Blocks transferred so far. */
  readonly done: number;
  /** Blocks to transfer in all. */
  readonly total: number;
  /** Bytes transferred so far. */
  readonly bytes: number;
}

/**
 * Every progress event. Switch on `type`.
 * @public
 */
export type ProgressEvent =
  | PhaseStartEvent
  | PhaseEndEvent
  | ResourceEvent
  | WaitEvent
  | SnapshotProgressEvent
  | CopyProgressEvent
  | CleanupEvent
  | OutputEvent
  | BlockTransferEvent;

/**
 * Receives progress events. It must not throw; if it does, the error is logged and ignored.
 * @public
 */
export type ProgressListener = (event: ProgressEvent) => void;

/**
 * Options shared by every primitive.
 * @public
 */
export interface OperationOptions {
  /** Aborts the operation. Cleanup still runs, with its own time limit. */
  readonly signal?: AbortSignal;
  /** Where log lines go. @defaultValue warnings and errors to `console` */
  readonly logger?: Partial<Logger>;
  /** Receives typed progress events. */
  readonly onProgress?: ProgressListener;
}

/**
 * The AWS state changes the library waits for.
 * @public
 */
export type WaitKind =
  | 'volumeAvailable'
  | 'volumeAttached'
  | 'volumeDetached'
  | 'volumeDeleted'
  | 'snapshotCompleted'
  | 'imageAvailable'
  | 'copyAvailable';

/**
 * How one wait polls. All times in milliseconds.
 * @public
 */
export interface WaitPolicy {
  /** Give up after this long; the error names the wait and this limit. */
  readonly timeoutMs?: number;
  /** First delay between polls. */
  readonly minDelayMs?: number;
  /** Largest delay between polls. */
  readonly maxDelayMs?: number;
  /**
   * Shortest time between the first poll, always made at once, and the second (0: none). Lets a
   * wait known to take minutes skip polls that cannot find it done.
   * @defaultValue 60 000 for `copyAvailable`, 0 for the other waits
   */
  readonly firstDelayMs?: number;
}

/**
 * Polling overrides. `delayMs`/`maxAttempts` mirror Packer's `aws_polling` block and the
 * AWS_POLL_DELAY_SECONDS / AWS_MAX_ATTEMPTS environment variables (a fixed delay, and a timeout of
 * delay x attempts); `waits` tunes each wait separately and wins over both.
 * @public
 */
export interface PollingConfig {
  /** Fixed delay between polls for every wait (Packer `aws_polling.delay_seconds`, in ms here). */
  readonly delayMs?: number;
  /** Attempts per wait (Packer `aws_polling.max_attempts`); the timeout becomes delay x attempts. */
  readonly maxAttempts?: number;
  /**
   * Per-wait policies; each wins over `delayMs`/`maxAttempts` for its wait.
   * @property __type.volumeAvailable - a new work volume becoming `available` (CreateVolume)
   * @property __type.volumeAttached - the work volume becoming `attached` to the build host
   * @property __type.volumeDetached - the work volume becoming detached again (`available`)
   * @property __type.volumeDeleted - a deleted volume being gone (no wait of the build uses it yet)
   * @property __type.snapshotCompleted - the snapshot reaching `completed` (reports its percent)
   * @property __type.imageAvailable - the registered AMI becoming `available`
   * @property __type.copyAvailable - an image copy (another region, or the encryptBoot copy) becoming `available`
   */
  readonly waits?: { readonly [K in WaitKind]?: WaitPolicy };
}
