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
