/**
 * `planBuild`: a dry run of {@link buildAmi}. It does everything a build does before its first
 * resource (validate, host identity, source AMI, rendered names and tags, region and name checks,
 * the attachment name) and lists the AWS requests the build would make, built by the same pure
 * mappings buildAmi uses (requests.ts, createVolumeRequest, registerImageRequest), so the plan
 * cannot drift from the build.
 *
 * @packageDocumentation
 */
import type { ConfigIssue, Phase } from '../errors.js';
import { ConfigError } from '../errors.js';
import { defined } from '../internal/defined.js';
import { toCtx } from '../internal/ctx.js';
import type { Ctx } from '../internal/ctx.js';
import type { BuildConfig, ResolvedConfig } from '../config/types.js';
import { copyTargetRegions, resolveConfig, validateAmiName } from '../config/resolve.js';
import { createTemplateClock } from '../config/templates.js';
import { createAwsClients } from '../aws/clients.js';
import type { AwsClients } from '../aws/clients.js';
import { tagList } from '../aws/common.js';
import { describeInstanceDeviceNames, resolveHostIdentity } from '../aws/identity.js';
import type { HostIdentity } from '../aws/identity.js';
import { registerImageRequest } from '../aws/images.js';
import { copyImageRequest } from '../aws/copy-request.js';
import { validateRegions } from '../aws/regions.js';
import { resolveSourceAmi } from '../aws/source-image.js';
import type { SourceImage } from '../aws/source-image.js';
import { createVolumeRequest, toAttachName } from '../aws/volumes.js';
import { allocateDevice } from '../host/devices.js';
import { checkEnhancedNetworking, checkImageNameFree, checkRegionIsHosts } from './prevalidate.js';
import {
  awsAccessOf,
  copyInput,
  registerInput,
  renderRecord,
  sharingOf,
  sourceTemplateData,
  workVolumeInput,
} from './requests.js';
import type { ImageRequestData } from './requests.js';
import type { BuildAmiOptions } from './build-ami.js';

/**
 * Options of {@link planBuild}: those of {@link buildAmi} that matter before the first resource.
 * @public
 */
export type PlanBuildOptions = Pick<
  BuildAmiOptions,
  'signal' | 'logger' | 'onProgress' | 'ec2' | 'sts' | 'hostIdentity' | 'imdsEndpoint' | 'devRoot' | 'env'
>;

/**
 * One AWS request of the planned build.
 * @public
 */
export interface PlannedRequest {
  /** The build phase that makes it. */
  readonly phase: Phase;
  /** The EC2 action, e.g. `CreateVolume`. */
  readonly action: string;
  /** The region it goes to. */
  readonly region: string;
  /** Its key parameters; ids that exist only once the build runs read `<volume>`, `<snapshot>`, `<image>`. */
  readonly params: Readonly<Record<string, unknown>>;
  /** True when it creates, changes or deletes something in the account. */
  readonly mutating: boolean;
  /** When it is made only under a condition (e.g. `if an image has this name`). */
  readonly when?: string;
}

/**
 * What {@link buildAmi} would do with this config on this host, found without creating anything.
 * @public
 */
export interface BuildPlan {
  /** The build id (tag `ami-chroot:build-id`) the build would use. */
  readonly buildId: string;
  /** Build region. */
  readonly region: string;
  /** The build host. */
  readonly host: HostIdentity;
  /** The resolved source image (undefined for fromScratch). */
  readonly source: SourceImage | undefined;
  /** The AMI name, rendered. */
  readonly name: string;
  /** The description, rendered. */
  readonly description: string | undefined;
  /** Image tags, rendered. */
  readonly tags: Readonly<Record<string, string>>;
  /** Snapshot tags, rendered. */
  readonly snapshotTags: Readonly<Record<string, string>>;
  /** Work volume tags, rendered. */
  readonly volumeTags: Readonly<Record<string, string>>;
  /** Regions the image would be copied to. */
  readonly copyRegions: readonly string[];
  /** The attachment name the build would use now (e.g. `/dev/sdf`); another build may take it first. */
  readonly attachmentName: string;
  /** The AWS requests of the build, in order (reads included). */
  readonly requests: readonly PlannedRequest[];
  /** What would make the build fail before its first resource (a name already used, an unknown region). Empty when it would start. */
  readonly problems: readonly ConfigIssue[];
  /** Validation warnings. */
  readonly warnings: readonly string[];
  /** AWS calls the plan made (all reads). */
  readonly awsCalls: number;
}

const VOLUME = '<volume>';
const SNAPSHOT = '<snapshot>';
const IMAGE = '<image>';

/** The tag specifications of a request, as a compact record per resource type, for reading. */
function withoutTagSpecs<T extends object>(request: T): Record<string, unknown> {
  const { TagSpecifications: _tags, ...rest } = request as T & { TagSpecifications?: unknown };
  return rest;
}

/** Checks that need AWS and change nothing; their ConfigErrors become problems of the plan. */
async function preflight(cfg: ResolvedConfig, clients: AwsClients, request: ImageRequestData, ctx: Ctx) {
  const problems: ConfigIssue[] = [];
  const collect = async (check: () => Promise<void>): Promise<void> => {
    try {
      await check();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.issues);
    }
  };
  const { region } = request;
  if (!cfg.skipRegionValidation && request.copyRegions.length > 0)
    await collect(() => validateRegions(clients.ec2(region), request.copyRegions, ctx, region));
  const unknown = new Set(problems.map((p) => p.value));
  if (!cfg.forceDeregister)
    for (const r of [...(cfg.skipSaveBuildRegion ? [] : [region]), ...request.copyRegions])
      if (!unknown.has(r)) await collect(() => checkImageNameFree(clients.ec2(r), request.name, r, ctx));
  return problems;
}

/** The attachment name the build would take now: allocated as the build does, then released. */
async function pickAttachmentName(
  cfg: ResolvedConfig,
  options: PlanBuildOptions,
  taken: readonly string[],
): Promise<string> {
  const lease = await allocateDevice(
    defined({ devicePath: cfg.devicePath, exclude: taken, devRoot: options.devRoot, lockDir: cfg.lockDir }),
    defined({ signal: options.signal, logger: options.logger }),
  );
  try {
    return toAttachName(lease.attachmentName);
  } finally {
    await lease.release();
  }
}

/** The sharing requests of one image (launch, snapshot permissions, deprecation). */
function sharingRequests(cfg: ResolvedConfig, phase: Phase, region: string, image: string): PlannedRequest[] {
  const sharing = sharingOf(cfg);
  const out: PlannedRequest[] = [];
  const launch = [
    ...sharing.amiUsers!.map((UserId) => ({ UserId })),
    ...sharing.amiGroups!.map((Group) => ({ Group })),
    ...sharing.amiOrgArns!.map((OrganizationArn) => ({ OrganizationArn })),
    ...sharing.amiOuArns!.map((OrganizationalUnitArn) => ({ OrganizationalUnitArn })),
  ];
  const add = (action: string, params: Record<string, unknown>): void => {
    out.push({ phase, action, region, params, mutating: true });
  };
  if (launch.length > 0) add('ModifyImageAttribute', { ImageId: image, LaunchPermission: { Add: launch } });
  if (sharing.productCodes?.length) add('ModifyImageAttribute', { ImageId: image, ProductCodes: sharing.productCodes });
  if (sharing.snapshotUsers?.length || sharing.snapshotGroups?.length)
    add('ModifySnapshotAttribute', {
      SnapshotId: SNAPSHOT,
      Attribute: 'createVolumePermission',
      Add: [...sharing.snapshotUsers!, ...sharing.snapshotGroups!],
    });
  if (sharing.deprecateAt !== undefined)
    add('EnableImageDeprecation', { ImageId: image, DeprecateAt: new Date(sharing.deprecateAt).toISOString() });
  return out;
}

/** Everything the plan knows when the requests are listed. */
interface PlanState {
  readonly cfg: ResolvedConfig;
  readonly host: HostIdentity;
  readonly source: SourceImage | undefined;
  readonly request: ImageRequestData;
  readonly volumeTags: Readonly<Record<string, string>>;
  readonly attachmentName: string;
}

/** The requests of buildAmi, in its order, from the same mappings it uses. */
function plannedRequests(s: PlanState): PlannedRequest[] {
  const { cfg, request } = s;
  const region = request.region;
  const out: PlannedRequest[] = [];
  const read = (phase: Phase, action: string, r: string, params: Record<string, unknown>): void => {
    out.push({ phase, action, region: r, params, mutating: false });
  };
  const write = (phase: Phase, action: string, r: string, params: Record<string, unknown>, when?: string): void => {
    out.push({ phase, action, region: r, params, mutating: true, ...(when === undefined ? {} : { when }) });
  };
  if (!cfg.fromScratch)
    read(
      'source',
      'DescribeImages',
      region,
      cfg.sourceAmi ? { ImageIds: [cfg.sourceAmi] } : { Filter: 'sourceAmiFilter' },
    );
  // resolveSourceAmi reads the UEFI variable store of a UEFI source.
  if (s.source?.bootMode === 'uefi' || s.source?.bootMode === 'uefi-preferred')
    read('source', 'DescribeImageAttribute', region, { ImageId: s.source.imageId, Attribute: 'uefiData' });
  if (!cfg.skipRegionValidation && request.copyRegions.length > 0) read('preflight', 'DescribeRegions', region, {});
  if (!cfg.forceDeregister)
    for (const r of [...(cfg.skipSaveBuildRegion ? [] : [region]), ...request.copyRegions])
      read('preflight', 'DescribeImages', r, { Owners: ['self'], Name: request.name });

  const volume = workVolumeInput(cfg, {
    availabilityZone: s.host.availabilityZone,
    region,
    source: s.source,
    tags: s.volumeTags,
  });
  write('volume', 'CreateVolume', region, withoutTagSpecs(createVolumeRequest(volume)));
  read('attach', 'DescribeInstances', region, { InstanceIds: [s.host.instanceId] });
  write('attach', 'AttachVolume', region, {
    VolumeId: VOLUME,
    InstanceId: s.host.instanceId,
    Device: s.attachmentName,
  });
  write('detach', 'DetachVolume', region, { VolumeId: VOLUME, InstanceId: s.host.instanceId });

  const temporary = cfg.skipSaveBuildRegion;
  const registerName = temporary ? 'ami-chroot-intermediary-<random>' : request.name;
  if (cfg.forceDeregister)
    for (const r of [region, ...request.copyRegions])
      write(
        'deregister',
        'DeregisterImage',
        r,
        { Name: request.name, DeleteAssociatedSnapshots: cfg.forceDeleteSnapshot },
        'for each image of this account with this name',
      );
  const input = registerInput(cfg, request, { volumeId: VOLUME, source: s.source, registerName });
  write('snapshot', 'CreateSnapshot', region, { VolumeId: VOLUME });
  const imageTags = tagList(input.tags, input.buildId);
  const registered = registerImageRequest(
    input,
    SNAPSHOT,
    input.encryptBoot ? `${registerName} (unencrypted)` : registerName,
    imageTags,
  );
  write('register', 'RegisterImage', region, withoutTagSpecs(registered));
  if (input.encryptBoot) {
    const encrypted = copyImageRequest({ ...input, sourceImageId: IMAGE, sourceRegion: region }, region);
    write('encrypt', 'CopyImage', region, withoutTagSpecs(encrypted));
    write('encrypt', 'DeregisterImage', region, { ImageId: '<unencrypted image>', DeleteAssociatedSnapshots: true });
  }
  if (!temporary) out.push(...sharingRequests(cfg, 'permissions', region, IMAGE));

  if (request.copyRegions.length > 0) {
    const copy = copyInput(cfg, request, IMAGE);
    for (const r of copy.regions) {
      write('copy', 'CopyImage', r, withoutTagSpecs(copyImageRequest(copy, r)));
      out.push(...sharingRequests(cfg, 'permissions', r, `<image in ${r}>`));
    }
  }
  if (cfg.deregistrationProtection.enabled)
    for (const r of [...(temporary ? [] : [region]), ...request.copyRegions])
      write('permissions', 'EnableImageDeregistrationProtection', r, {
        ImageId: r === region ? IMAGE : `<image in ${r}>`,
        WithCooldown: cfg.deregistrationProtection.withCooldown ?? false,
      });
  write('cleanup', 'DeleteVolume', region, { VolumeId: VOLUME });
  if (temporary) write('cleanup', 'DeregisterImage', region, { ImageId: IMAGE, DeleteAssociatedSnapshots: true });
  return out;
}

/**
 * A dry run of {@link buildAmi}: validates the config, reads the host identity, resolves the
 * source image, renders every name and tag, checks the regions and the AMI name in every target
 * region, picks the attachment name the build would use (reserved for an instant, then released),
 * and returns the AWS requests the build would make, in order, with their key parameters.
 * It creates, changes and deletes nothing: every AWS call it makes is a Describe.
 *
 * @remarks
 * A name already used (without `forceDeregister`) or an unknown copy region does not throw: it is
 * listed in `problems`, all of them at once, since that is what a dry run is for. An invalid
 * config throws, as it would for buildAmi. Print a plan with {@link formatPlan}.
 *
 * @example
 * ```ts
 * import { formatPlan, planBuild } from 'ami-chroot';
 *
 * const plan = await planBuild({ sourceAmi: 'ami-0123456789abcdef0', amiName: 'web {{timestamp}}', amiRegions: ['eu-west-1'] });
 * console.log(formatPlan(plan)); // the source, the rendered name and tags, then one row per request
 * if (plan.problems.length > 0) process.exitCode = 1; // e.g. the name is taken in eu-west-1
 * ```
 * @param config - the build configuration, as for buildAmi
 * @param options - signal, logger, injected clients and host overrides, as for buildAmi
 * @throws {@link ConfigError} when the config is invalid (before any call)
 * @throws {@link HostIdentityError} when the host identity cannot be read
 * @throws {@link SourceImageError} when the source image cannot be resolved
 * @public
 */
export async function planBuild(config: BuildConfig, options: PlanBuildOptions = {}): Promise<BuildPlan> {
  const cfg = resolveConfig(config, options.env ?? process.env);
  const ctx = toCtx(options);
  const host = await resolveHostIdentity(
    options.hostIdentity,
    defined({ endpoint: options.imdsEndpoint, signal: options.signal }),
  );
  checkRegionIsHosts(cfg.region, host);
  const region = cfg.region ?? host.region;
  const clients = createAwsClients(
    awsAccessOf(cfg, region),
    defined({ region, ec2: options.ec2, sts: options.sts, env: options.env, logger: options.logger }),
  );
  try {
    const aws = { ...defined({ signal: options.signal, logger: options.logger }), ec2: clients.ec2 };
    let source: SourceImage | undefined;
    if (!cfg.fromScratch) {
      source = await resolveSourceAmi(
        defined({ sourceAmi: cfg.sourceAmi, sourceAmiFilter: cfg.sourceAmiFilter, region }),
        aws,
      );
      checkEnhancedNetworking(source, cfg.enaSupport === true || cfg.sriovSupport, cfg.amiVirtualizationType);
    }
    const clock = createTemplateClock();
    const data = sourceTemplateData(region, source);
    const name = cfg.amiName.render(data, clock);
    validateAmiName(name);
    const request: ImageRequestData = {
      region,
      name,
      description: cfg.amiDescription?.render(data, clock),
      tags: renderRecord(cfg.tags, data, clock),
      snapshotTags: renderRecord(cfg.snapshotTags, data, clock),
      copyRegions: copyTargetRegions(cfg, region),
    };
    const problems = await preflight(cfg, clients, request, ctx);
    const taken = await describeInstanceDeviceNames(clients.ec2(region), host.instanceId, ctx);
    const attachmentName = await pickAttachmentName(cfg, options, taken);
    const volumeTags = renderRecord(cfg.rootVolumeTags, data, clock);
    const state: PlanState = { cfg, host, source, request, volumeTags, attachmentName };
    return {
      buildId: cfg.buildId,
      region,
      host,
      source,
      name,
      description: request.description,
      tags: request.tags,
      snapshotTags: request.snapshotTags,
      volumeTags,
      copyRegions: request.copyRegions,
      attachmentName,
      requests: plannedRequests(state),
      problems,
      warnings: cfg.warnings,
      awsCalls: clients.callCount(),
    };
  } finally {
    clients.destroy();
  }
}

/** One parameter value, short enough for a table cell. */
function cell(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

/** Rows padded to their columns' widths. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: readonly string[]): string =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

const record = (r: Readonly<Record<string, string>>): string =>
  Object.keys(r).length === 0
    ? '(none)'
    : Object.entries(r)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ');

/**
 * A {@link BuildPlan} as text: what was resolved, then one row per request (`*` marks the
 * requests that change the account), then the problems, if any.
 *
 * @example
 * ```ts
 * import { formatPlan, planBuild } from 'ami-chroot';
 *
 * console.log(formatPlan(await planBuild({ sourceAmi: 'ami-0123456789abcdef0', amiName: 'web' })));
 * ```
 * @public
 */
export function formatPlan(plan: BuildPlan): string {
  const source = plan.source ? `${plan.source.imageId} (${plan.source.name})` : '(from scratch)';
  const lines = [
    `Build ${plan.buildId} in ${plan.region} on ${plan.host.instanceId} (${plan.host.availabilityZone})`,
    `Source:         ${source}`,
    `AMI name:       ${plan.name}`,
    ...(plan.description === undefined ? [] : [`Description:    ${plan.description}`]),
    `Tags:           ${record(plan.tags)}`,
    `Snapshot tags:  ${record(plan.snapshotTags)}`,
    `Volume tags:    ${record(plan.volumeTags)}`,
    `Copy regions:   ${plan.copyRegions.length === 0 ? '(none)' : plan.copyRegions.join(', ')}`,
    `Attachment:     ${plan.attachmentName}`,
    '',
    ...table(
      ['#', '', 'phase', 'request', 'region', 'parameters'],
      plan.requests.map((r, i) => [
        String(i + 1),
        r.mutating ? '*' : '',
        r.phase,
        r.action,
        r.region,
        [
          ...Object.entries(r.params).map(([k, v]) => `${k}=${cell(v)}`),
          ...(r.when === undefined ? [] : [`(${r.when})`]),
        ].join(' '),
      ]),
    ),
    '',
    `* changes the account. The plan made ${plan.awsCalls} AWS calls, all reads.`,
    ...plan.warnings.map((w) => `Warning: ${w}`),
    ...(plan.problems.length === 0
      ? ['No problem found: the build would start.']
      : [
          `The build would fail before creating anything (${plan.problems.length} problem${plan.problems.length === 1 ? '' : 's'}):`,
          ...plan.problems.map((p) => `  ${p.path}: ${p.message}`),
        ]),
  ];
  return lines.join('\n');
}
