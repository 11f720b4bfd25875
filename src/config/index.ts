/**
 * `ami-chroot/config`: the build configuration without the rest of the SDK. {@link BuildConfig}, its
 * validation, the Packer import and the template language; no AWS SDK module is loaded from here.
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
export type { PollingConfig, WaitKind, WaitPolicy } from '../types.js';
export { defineConfig, resolveConfig, validateAmiName } from './resolve.js';
export { fromPackerConfig } from './packer.js';
export { createTemplateClock, renderTemplate, shellQuote } from './templates.js';
export type { FromPackerConfigOptions } from './packer.js';
export { loadPackerTemplate } from './packer/template.js';
// runPackerProvisioners needs the chroot handle: it is in the main entry only.
export { writePackerManifest } from './packer/provisioners.js';
export type { PackerManifestInput } from './packer/provisioners.js';
export type { LoadPackerTemplateOptions, PackerBuild, PackerStep, PackerTemplate } from './packer/types.js';
export type { RenderTemplateOptions } from './templates.js';
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
} from './types.js';
