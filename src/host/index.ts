/**
 * `ami-chroot/host`: the Linux side, no AWS. Device letters, loop devices, mounts, recovery, and
 * the chroot handle with mountChroot/withChroot.
 *
 * @packageDocumentation
 */

// By name, no `export *`: every API change shows in this file's diff.
// Every error class, so that a caller catches what this entry throws without a second import.
export {
  AmiChrootError,
  AwsError,
  BlockTransferError,
  CleanupError,
  CommandError,
  ConfigError,
  DeviceError,
  HostIdentityError,
  LockError,
  MountError,
  NotRegularFileError,
  PathEscapeError,
  ProvisionError,
  RegionCopyError,
  SourceImageError,
  UnmountError,
  UnsupportedPlatformError,
  WaitFailedError,
  WaitTimeoutError,
  isAbortError,
} from '../errors.js';
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
} from '../errors.js';
export { allocateDevice } from './devices.js';
export { DEFAULT_LOCK_DIR, DEFAULT_STATE_DIR } from './defaults.js';
export { partitionPath, resolveBlockDevice, waitForPartition } from './resolve-device.js';
export { attachLoop } from './loop.js';
export { unmountTree } from './mounts.js';
export { recoverHost } from './recover.js';
export { mountChroot } from '../chroot/mount.js';
export { DEFAULT_CHROOT_MOUNTS } from '../chroot/defaults.js';
export { createChroot, DEFAULT_CHROOT_ENV } from '../chroot/chroot.js';
export { withChroot } from '../chroot/with-chroot.js';
export type { AllocateDeviceInput, DeviceLease } from './devices.js';
export type { ResolveBlockDeviceInput, WaitForPartitionInput } from './resolve-device.js';
export type { AttachLoopInput, LoopDevice } from './loop.js';
export type { UnmountReport, UnmountTreeOptions } from './mounts.js';
export type { CommandWrapper, RunResult } from './exec.js';
export type { RecoveredBuild, RecoverHostInput, RecoveryReport } from './recover.js';
export type {
  MountChrootInput,
  MountCommands,
  MountedChroot,
  MountTemplateData,
  UnmountOptions,
} from '../chroot/mount.js';
export type { Chroot, ChrootExecOptions, ChrootTarget, ChrootWriteOptions } from '../chroot/chroot.js';

// The shared option and event types the primitives' signatures use.
export type {
  CleanupEvent,
  BlockTransferEvent,
  CopyProgressEvent,
  LogFields,
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
  WaitEvent,
  WaitKind,
} from '../types.js';
export type { ChrootMount, ChrootMountSpec } from '../config/types.js';
