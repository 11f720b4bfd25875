/**
 * `ami-chroot/aws`: the AWS primitives. Clients, host identity, source AMI, volumes, images, region
 * copies and polling policies; nothing here touches the host.
 *
 * @packageDocumentation
 */

// By name, no `export *`: every API change shows in this file's diff.
// Every error class, so that a caller catches what this entry throws without a second import.
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
  NotRegularFileError,
  PathEscapeError,
  ProvisionError,
  RegionCopyError,
  BlockTransferError,
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
export { createAwsClients, resolveRegion } from './clients.js';
export { getHostIdentity } from './identity.js';
export { BUILD_ID_TAG, CREATED_BY_TAG } from './common.js';
export { resolveSourceAmi } from './source-image.js';
export { attachVolume, createVolume } from './volumes.js';
export { deregisterImagesByName, registerImage, snapshotAndRegister } from './images.js';
export { EBS_BLOCK_SIZE, createEbsClient } from './ebs/blocks.js';
export { cacheSnapshot } from './ebs/cache.js';
export { downloadSnapshot } from './ebs/download.js';
export { uploadSnapshot } from './ebs/upload.js';
export type { EbsProvider, TransferStats } from './ebs/blocks.js';
export type { CacheSnapshotInput, CachedSnapshot } from './ebs/cache.js';
export type { DownloadSnapshotInput, DownloadedSnapshot, EbsOperationOptions } from './ebs/download.js';
export type { UploadSnapshotInput, UploadSnapshotOptions, UploadedSnapshot } from './ebs/upload.js';
export { copyToRegions } from './regions.js';
export { findTaggedResources } from './tagged-resources.js';
export { DEFAULT_WAIT_POLICIES, resolveWaitPolicy } from './poll-policy.js';
export type { AwsAccess, AwsClients, CreateAwsClientsOptions, InjectedClients } from './clients.js';
export type { GetHostIdentityOptions, HostIdentity, HostIdentitySource } from './identity.js';
export type { AwsOperationOptions, Ec2Provider } from './common.js';
export type { ResolveSourceAmiInput, SourceImage } from './source-image.js';
export type {
  Architecture,
  BootMode,
  DeregistrationProtection,
  ImdsSupport,
  SourceAmiFilter,
  TpmSupport,
  VirtualizationType,
  VolumeType,
} from '../config/types.js';
export type {
  AttachedVolume,
  AttachVolumeInput,
  CreateVolumeInput,
  DeviceAllocator,
  DeviceResolver,
  RootVolumeSource,
  WorkVolume,
} from './volumes.js';
export type {
  OperationOptionsWithEc2,
  RegisteredImage,
  RegisterOptions,
  RegisterSource,
  SnapshotAndRegisterInput,
  ImageRegistrationInput,
  RegisterImageInput,
} from './images.js';
export type { ImageSharing } from './image-settings.js';
export type { CopyToRegionsInput, RegionCopies } from './regions.js';
export type { FindTaggedResourcesInput, TaggedResource } from './tagged-resources.js';
export type { ResolvedWaitPolicy } from './poll-policy.js';

// The shared option and event types the primitives' signatures use.
export type {
  CleanupEvent,
  CopyProgressEvent,
  BlockTransferEvent,
  LogFields,
  Logger,
  OperationOptions,
  OutputEvent,
  PhaseEndEvent,
  PhaseStartEvent,
  PollingConfig,
  ProgressEvent,
  ProgressListener,
  ResourceEvent,
  ResourceKind,
  SnapshotProgressEvent,
  WaitEvent,
  WaitKind,
  WaitPolicy,
} from '../types.js';
