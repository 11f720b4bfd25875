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

// --- config: BuildConfig, validation, Packer import, templates ---
export { defineConfig, resolveConfig, validateAmiName } from './config/resolve.js';
export { fromPackerConfig } from './config/packer.js';
export { createTemplateClock, renderTemplate, shellQuote } from './config/templates.js';
export type { FromPackerConfigOptions } from './config/packer.js';
export { loadPackerTemplate } from './config/packer/template.js';
export { runPackerProvisioners, writePackerManifest } from './config/packer/provisioners.js';
export type { PackerManifestInput, RunPackerProvisionersOptions } from './config/packer/provisioners.js';
export type { LoadPackerTemplateOptions, PackerBuild, PackerStep, PackerTemplate } from './config/packer/types.js';
export type { RenderTemplateOptions } from './config/templates.js';
export type {
  Architecture,
  BlockDeviceMapping,
  BootMode,
  BuildConfig,
  ChrootMount,
  ChrootMountSpec,
  CompiledTemplate,
  DeregistrationProtection,
  ResolvedConfig,
  SourceAmiFilter,
  StaticCredentials,
  Template,
  TemplateClock,
  TemplateData,
  VolumeType,
} from './config/types.js';
// --- end config ---

// --- host and chroot: devices, loop devices, mounts, recovery, the chroot handle ---
export { allocateDevice, DEFAULT_LOCK_DIR } from './host/devices.js';
export { partitionPath, resolveBlockDevice, waitForPartition } from './host/resolve-device.js';
export { attachLoop } from './host/loop.js';
export { unmountTree } from './host/mounts.js';
export { DEFAULT_STATE_DIR } from './host/journal.js';
export { recoverHost } from './host/recover.js';
export { DEFAULT_CHROOT_MOUNTS, mountChroot } from './chroot/mount.js';
export { createChroot, DEFAULT_CHROOT_ENV } from './chroot/chroot.js';
export { withChroot } from './chroot/with-chroot.js';
export type { AllocateDeviceInput, DeviceLease } from './host/devices.js';
export type { ResolveBlockDeviceInput, WaitForPartitionOptions } from './host/resolve-device.js';
export type { AttachLoopOptions, LoopDevice } from './host/loop.js';
export type { UnmountReport, UnmountTreeOptions } from './host/mounts.js';
export type { CommandWrapper, RunResult } from './host/exec.js';
export type { RecoveredBuild, RecoverHostInput, RecoveryReport } from './host/recover.js';
export type {
  MountChrootInput,
  MountCommands,
  MountedChroot,
  MountTemplateData,
  UnmountOptions,
} from './chroot/mount.js';
export type { Chroot, ChrootExecOptions, ChrootTarget, ChrootWriteOptions } from './chroot/chroot.js';
// --- end host and chroot ---

// --- aws: clients, host identity, source AMI, volumes, images, region copies, polling ---
export { createAwsClients, resolveRegion } from './aws/clients.js';
export { getHostIdentity } from './aws/identity.js';
export { BUILD_ID_TAG, CREATED_BY_TAG } from './aws/common.js';
export { resolveSourceAmi } from './aws/source-image.js';
export { attachVolume, createVolume } from './aws/volumes.js';
export { deregisterImagesByName, snapshotAndRegister } from './aws/images.js';
export { copyToRegions } from './aws/regions.js';
export { findTaggedResources } from './aws/orphans.js';
export { DEFAULT_WAIT_POLICIES, resolveWaitPolicy } from './aws/poll.js';
export type { AwsAccess, AwsClients, CreateAwsClientsOptions, InjectedClients } from './aws/clients.js';
export type { GetHostIdentityOptions, HostIdentity } from './aws/identity.js';
export type { AwsOperationOptions, Ec2Provider } from './aws/common.js';
export type { ResolveSourceAmiInput, SourceImage, SourceImageFilter } from './aws/source-image.js';
export type {
  AttachedVolume,
  AttachVolumeInput,
  CreateVolumeInput,
  DeviceAllocator,
  DeviceResolver,
  RootVolumeSource,
  WorkVolume,
} from './aws/volumes.js';
export type {
  OperationOptionsWithEc2,
  RegisteredImage,
  RegisterOptions,
  RegisterSource,
  SnapshotAndRegisterInput,
} from './aws/images.js';
export type { ImageSharing } from './aws/permissions.js';
export type { CopyToRegionsInput, RegionCopies } from './aws/regions.js';
export type { FindTaggedResourcesOptions, TaggedResource } from './aws/orphans.js';
export type { ResolvedWaitPolicy } from './aws/poll.js';
// --- end aws ---

// --- build: local raw images (buildImage) ---
export { buildImage } from './pipeline/build-image.js';
export type {
  BuildImageInput,
  BuildImageOptions,
  ImageBuildInfo,
  ImageBuildResult,
  ImageProvisionFn,
  ScratchImage,
} from './pipeline/build-image.js';
// --- end build: local raw images ---

// --- build: the whole AMI build, and the sweep of what killed builds left ---
export { buildAmi } from './pipeline/build-ami.js';
export { cleanupOrphans } from './pipeline/orphans.js';
export type { BuildAmiOptions, BuildHooks, BuildInfo, BuildResult, ProvisionFn } from './pipeline/build-ami.js';
export type { CleanupOrphansOptions, OrphanReport, OrphanResource } from './pipeline/orphans.js';
// --- end build ---
