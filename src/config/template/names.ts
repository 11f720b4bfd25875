/**
 * The data names templates may use, and which of them each template option may use.
 */
import type { TemplateData } from '../types.js';

/** A name of {@link TemplateData}. @internal */
export type DataName = keyof TemplateData;

/** Packer's build data: the build region and the source AMI. */
const BUILD_DATA_NAMES = [
  'BuildRegion',
  'SourceAMI',
  'SourceAMIName',
  'SourceAMICreationDate',
  'SourceAMIOwner',
  'SourceAMIOwnerName',
  'SourceAMITags',
] as const satisfies readonly DataName[];

/**
 * Every data name a template can refer to.
 * @internal
 */
export const TEMPLATE_DATA_NAMES: readonly DataName[] = [...BUILD_DATA_NAMES, 'Device', 'MountPath', 'Command'];

/**
 * The names each template option may use (Packer's "build template data" per option; `amiName`
 * gets build data too, which Packer cannot offer because it renders the name before the source
 * lookup).
 * @internal
 */
export const TEMPLATE_SCOPES = {
  buildData: BUILD_DATA_NAMES,
  mountPath: ['Device'],
  preMountCommands: ['Device'],
  postMountCommands: ['Device', 'MountPath'],
  commandWrapper: ['Command'],
} as const satisfies Record<string, readonly DataName[]>;
