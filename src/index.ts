/**
 * ami-chroot: build EBS-backed Amazon Machine Images in a chroot on an EC2 host, without launching
 * an instance. Composable async primitives plus one high-level {@link buildAmi}.
 *
 * @packageDocumentation
 */

// The whole public surface, by name (no `export *`: every API change shows in this file's diff).
export {
  AmiChrootError,
  AwsError,
  CleanupError,
  CommandError,
  ConfigError,
  DeviceError,
  HostIdentityError,
  LockError,
  MountError,
  PathEscapeError,
  ProvisionError,
  RegionCopyError,
  SourceImageError,
  UnmountError,
  UnsupportedPlatformError,
  WaitFailedError,
  WaitTimeoutError,
  isAbortError,
} from './errors.js';
export type {
  AmiChrootErrorOptions,
  AwsErrorOptions,
  CommandErrorOptions,
  ConfigIssue,
  ErrorCode,
  MountHolder,
  Phase,
  RegionOutcome,
  ResourceRefs,
} from './errors.js';
export type {
  CleanupEvent,
  CopyProgressEvent,
  Logger,
  OperationOptions,
  OutputEvent,
  PhaseEndEvent,
  PhaseStartEvent,
  ProgressEvent,
  ProgressListener,
  ResourceEvent,
  ResourceKind,
  SnapshotProgressEvent,
  PollingConfig,
  WaitEvent,
  WaitKind,
  WaitPolicy,
} from './types.js';
