/**
 * The data names templates may use, and which of them each template option may use.
 */
import type { TemplateData } from '../types.js';

/** A name of {@link TemplateData}. @internal */
export type DataName = keyof TemplateData;

/**
 * Every data name a template can refer to.
 * @internal
 */
export const TEMPLATE_DATA_NAMES: readonly DataName[] = [
  'BuildRegion',
  'SourceAMI',
  'SourceAMIName',
  'SourceAMICreationDate',
  'SourceAMIOwner',
  'SourceAMIOwnerName',
  'SourceAMITags',
  'Device',
  'MountPath',
  'Command',
];

/**
 * The names each template option may use (Packer's "build template data" per option; `amiName`
 * gets build data too, which Packer cannot offer because it renders the name before the source
 * lookup).
 * @internal
 */
export const TEMPLATE_SCOPES = {
  buildData: [
    'BuildRegion',
    'SourceAMI',
    'SourceAMIName',
    'SourceAMICreationDate',
    'SourceAMIOwner',
    'SourceAMIOwnerName',
    'SourceAMITags',
  ],
  mountPath: ['Device'],
  preMountCommands: ['Device'],
  postMountCommands: ['Device', 'MountPath'],
  commandWrapper: ['Command'],
} as const satisfies Record<string, readonly DataName[]>;
