/**
 * ami-chroot: build EBS-backed Amazon Machine Images in a chroot on an EC2 host, without launching
 * an instance. This entry holds {@link buildAmi}, {@link buildImage}, {@link cleanupOrphans}, the
 * configuration and the errors; the primitives live in `ami-chroot/aws` and `ami-chroot/host`, the
 * configuration alone (no AWS SDK) in `ami-chroot/config`.
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
  BlockTransferEvent,
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
  PollingConfig,
  WaitEvent,
  WaitKind,
  WaitPolicy,
} from './types.js';
export { objectFirstLogger } from './internal/logger.js';
export type { ObjectFirstLogger } from './internal/logger.js';

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
  ImdsSupport,
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
  TpmSupport,
  VirtualizationType,
  VolumeType,
} from './config/types.js';
// --- end config ---

// --- types from ami-chroot/aws and ami-chroot/host that the builds' signatures use ---
export type { AwsAccess, InjectedClients } from './aws/clients.js';
export type { HostIdentity, HostIdentitySource } from './aws/identity.js';
export type { SourceImage } from './aws/source-image.js';
export type { DeviceResolver } from './aws/volumes.js';
export type { Ec2Provider } from './aws/common.js';
export type { EbsProvider } from './aws/ebs/blocks.js';
export type { CachedSnapshot } from './aws/ebs/cache.js';
export type { ImageRegistrationInput, RegisterImageInput, RegisterOptions, RegisterSource } from './aws/images.js';
export type { ImageSharing } from './aws/image-settings.js';
export type { RecoveredBuild, RecoveryReport } from './host/recover.js';
export type { RunResult } from './host/exec.js';
export type { Chroot, ChrootExecOptions, ChrootWriteOptions } from './chroot/chroot.js';
// --- end types ---

// --- build: local raw images (buildImage) ---
export { buildImage } from './pipeline/build-image.js';
export type {
  BuildImageInput,
  BuildImageOptions,
  BuildImageInfo,
  BuildImageResult,
  ImageProvisionFn,
  ScratchImage,
} from './pipeline/build-image.js';
// --- end build: local raw images ---

// --- build: the whole AMI build, and the sweep of what killed builds left ---
export { buildAmi } from './pipeline/build-ami.js';
export type { DirectTransfer } from './pipeline/build-direct.js';
export { cleanupOrphans } from './pipeline/cleanup-orphans.js';
export { formatPlan, planBuild } from './pipeline/plan.js';
export type { BuildPlan, PlanBuildOptions, PlannedRequest } from './pipeline/plan.js';
export type {
  BuildAmiOptions,
  BuildHooks,
  BuildInfo,
  BuildResult,
  PackerBuildData,
  ProvisionFn,
} from './pipeline/build-ami.js';
export type { CleanupOrphansOptions, OrphanReport, OrphanResource } from './pipeline/cleanup-orphans.js';
// --- end build ---

// --- progress: a console display of a build's events ---
export { createProgressRenderer } from './pipeline/progress-renderer.js';
export type { ProgressOutput, ProgressRenderer, ProgressRendererOptions } from './pipeline/progress-renderer.js';
// --- end progress ---
