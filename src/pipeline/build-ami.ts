/**
 * `buildAmi`: the whole chroot build, wiring the AWS primitives (aws/) and the host primitives
 * (host/, chroot/) with one cleanup stack. Every resource's undo is registered the moment the
 * resource exists; undos run last-in-first-out on success, failure and abort, each at most once,
 * with their own bounded time; cleanup failures are attached to the original error.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import type { BlockDeviceMapping as Ec2BlockDeviceMapping } from '@aws-sdk/client-ec2';
import { AmiChrootError, ProvisionError, attachCleanupErrors, isAbortError } from '../errors.js';
import type { Phase } from '../errors.js';
import type { OperationOptions, ProgressEvent } from '../types.js';
import { CleanupStack } from '../internal/cleanup-stack.js';
import type { Undo } from '../internal/cleanup-stack.js';
import type { BuildConfig, ResolvedConfig, TemplateData } from '../config/types.js';
import { copyTargetRegions, resolveConfig, validateAmiName } from '../config/resolve.js';
import { createTemplateClock } from '../config/templates.js';
import { createAwsClients } from '../aws/clients.js';
import type { AwsClients, InjectedClients } from '../aws/clients.js';
import { describeInstanceDeviceNames, getHostIdentity } from '../aws/identity.js';
import type { HostIdentity } from '../aws/identity.js';
import { resolveSourceAmi } from '../aws/source-image.js';
import type { SourceImage } from '../aws/source-image.js';
import { attachVolume, createVolume } from '../aws/volumes.js';
import type { DeviceResolver } from '../aws/volumes.js';
import { deregisterImagesByName, snapshotAndRegister } from '../aws/images.js';
import { copyToRegions, validateRegions } from '../aws/regions.js';
import { checkEnhancedNetworking, checkImageNameFree } from './prevalidate.js';
import { allocateDevice } from '../host/devices.js';
import type { DeviceLease } from '../host/devices.js';
import { resolveBlockDevice } from '../host/resolve-device.js';
import { DEFAULT_STATE_DIR } from '../host/journal.js';
import { createChroot } from '../chroot/chroot.js';
import type { Chroot } from '../chroot/chroot.js';
import { stampPhase } from './phases.js';
import { checkPlatform, defined, hookedSteps, mountWithConfig, startRun } from './common.js';
import { registerBuild } from './registry.js';

/**
 * What `provision` receives besides the chroot: Packer's build data plus the resources in use.
 * @public
 */
export interface BuildInfo {
  /** The build id, also the `ami-chroot:build-id` tag value. */
  readonly buildId: string;
  /** Build region. */
  readonly BuildRegion: string;
  /** Source AMI id (empty for fromScratch). */
  readonly SourceAMI: string;
  /** Source AMI name. */
  readonly SourceAMIName: string;
  /** Source AMI creation date. */
  readonly SourceAMICreationDate: string;
  /** Source AMI owner account id. */
  readonly SourceAMIOwner: string;
  /** Source AMI owner alias. */
  readonly SourceAMIOwnerName: string;
  /** Source AMI tags. */
  readonly SourceAMITags: Readonly<Record<string, string>>;
  /** The host block device of the work volume (e.g. `/dev/nvme1n1`). */
  readonly Device: string;
  /** Where the volume is mounted on the host (the chroot's `/`). */
  readonly MountPath: string;
  /** The attachment name EC2 knows (e.g. `/dev/sdf`). */
  readonly attachmentName: string;
  /** Work volume id. */
  readonly volumeId: string;
  /** Build host instance id. */
  readonly instanceId: string;
  /** The resolved source image (undefined for fromScratch). */
  readonly sourceImage: SourceImage | undefined;
}

/**
 * The user's provisioning: runs with the volume mounted; throwing fails the build (and cleans up).
 * @public
 */
export type ProvisionFn = (chroot: Chroot, build: BuildInfo) => Promise<void> | void;

/**
 * Called around every phase. Throwing fails the build at that point; useful for custom steps,
 * e.g. `before: 'unmount'` runs after provisioning with the volume still mounted.
 * @public
 */
export interface BuildHooks {
  /** Called before a phase starts. */
  readonly before?: (phase: Phase, signal: AbortSignal) => Promise<void> | void;
  /** Called after a phase finished successfully. */
  readonly after?: (phase: Phase, signal: AbortSignal) => Promise<void> | void;
}

/**
 * Options of {@link buildAmi}.
 * @public
 */
export interface BuildAmiOptions extends OperationOptions, InjectedClients {
  /**
   * The build host. @defaultValue read from IMDSv2 (instance id, availability zone, region)
   */
  readonly hostIdentity?: HostIdentity | (() => Promise<HostIdentity>);
  /** IMDS endpoint override (also `AWS_EC2_METADATA_SERVICE_ENDPOINT`). */
  readonly imdsEndpoint?: string;
  /**
   * Maps an attached volume to its host block device.
   * @defaultValue by volume id: NVMe serial or by-id link, then Xen `/dev/sdX`/`/dev/xvdX`
   */
  readonly resolveDevice?: DeviceResolver;
  /** Root of the device tree the allocator and resolver look at. @defaultValue `/dev` */
  readonly devRoot?: string;
  /** Root of sysfs for NVMe serials. @defaultValue `/sys` */
  readonly sysRoot?: string;
  /** Directory of recovery journals and live-build records. @defaultValue `/run/ami-chroot` */
  readonly stateDir?: string;
  /** Environment to read (region, polling overrides). @defaultValue `process.env` */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Time limit of each cleanup step. @defaultValue 10 minutes */
  readonly cleanupStepTimeoutMs?: number;
  /** Hooks around phases. */
  readonly hooks?: BuildHooks;
}

/**
 * The outcome of a successful build.
 * @public
 */
export interface BuildResult {
  /** The build id (tag `ami-chroot:build-id`). */
  readonly buildId: string;
  /** The AMI name. */
  readonly name: string;
  /** Build region. */
  readonly region: string;
  /** Image id per region, the build region included (unless skipSaveBuildRegion). */
  readonly images: Readonly<Record<string, string>>;
  /** Snapshot ids per region. */
  readonly snapshots: Readonly<Record<string, readonly string[]>>;
  /** The source image (undefined for fromScratch). */
  readonly sourceImage:
    | {
        /** The source AMI id. */
        readonly imageId: string;
        /** The source AMI's name. */
        readonly name: string;
      }
    | undefined;
  /** Attachment name used. */
  readonly device: string;
  /** Host block device used. */
  readonly hostDevice: string;
  /** Time spent in each phase, in ms. */
  readonly timings: Readonly<Partial<Record<Phase, number>>>;
  /** Whole build, in ms. */
  readonly durationMs: number;
  /** AWS calls made (SDK retries not counted). */
  readonly awsCalls: number;
  /** Cleanup failures after a successful build (e.g. the work volume could not be deleted). */
  readonly cleanupErrors: readonly Error[];
  /** Validation warnings. */
  readonly warnings: readonly string[];
}

function renderRecord(
  templates: ResolvedConfig['tags'],
  data: TemplateData,
  clock: ReturnType<typeof createTemplateClock>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, template] of Object.entries(templates)) out[key] = template.render(data, clock);
  return out;
}

/** The root entry of amiBlockDeviceMappings, if any. */
function rootMappingOf(cfg: ResolvedConfig): NonNullable<ResolvedConfig['amiBlockDeviceMappings']>[number] | undefined {
  return cfg.amiBlockDeviceMappings?.find((m) => m.deviceName === cfg.rootDeviceName);
}

function toEc2Mappings(mappings: ResolvedConfig['amiBlockDeviceMappings']): Ec2BlockDeviceMapping[] | undefined {
  if (!mappings) return undefined;
  return mappings.map((m) => {
    if (m.noDevice) return { DeviceName: m.deviceName, NoDevice: '' };
    if (m.virtualName) return { DeviceName: m.deviceName, VirtualName: m.virtualName };
    return {
      DeviceName: m.deviceName,
      Ebs: defined({
        DeleteOnTermination: m.deleteOnTermination,
        Encrypted: m.encrypted,
        KmsKeyId: m.kmsKeyId,
        Iops: m.iops,
        Throughput: m.throughput,
        SnapshotId: m.snapshotId,
        VolumeSize: m.volumeSize,
        VolumeType: m.volumeType,
      }),
    };
  });
}

async function hostIdentityOf(options: BuildAmiOptions, signal: AbortSignal | undefined): Promise<HostIdentity> {
  const given = options.hostIdentity;
  if (typeof given === 'function') return given();
  if (given) return given;
  return getHostIdentity(defined({ endpoint: options.imdsEndpoint, signal }));
}

/**
 * Builds an EBS-backed AMI from a source AMI (or from scratch) on the EC2 host this runs on.
 *
 * @remarks
 * Steps: validate; host identity; source AMI; name and region checks; create the volume; allocate a
 * device and attach (the device lock is held from choice until EC2 confirms the attachment);
 * pre-mount commands; mount; post-mount commands; chroot mounts; copy files; service guard;
 * `provision(chroot, build)`; early cleanup (guard, files restored, unmount, detach); snapshot;
 * forced deregistration; register; permissions, tags, deprecation; region copies; delete the
 * work volume. On failure or abort everything created is removed, the registered image and its
 * copies included (unless `keepOnError`), and the original error is thrown with `cleanupErrors`.
 *
 * @example
 * ```ts
 * import { buildAmi } from 'ami-chroot';
 *
 * const controller = new AbortController();
 * process.on('SIGINT', () => controller.abort()); // Ctrl-C: everything created so far is removed; `on`, so a 2nd one cannot kill the cleanup
 * const result = await buildAmi(
 *   { sourceAmi: 'ami-0123456789abcdef0', amiName: 'web {{timestamp}}', amiRegions: ['eu-west-1'] },
 *   async (chroot, build) => {
 *     await chroot.sh('apt-get update && apt-get install -y nginx');
 *     await chroot.writeFile('/etc/motd', `Built from ${build.SourceAMIName}\n`);
 *   },
 *   {
 *     signal: controller.signal,
 *     onProgress: (event) => {
 *       if (event.type === 'snapshot-progress') console.log(`snapshot ${event.percent}%`);
 *     },
 *   },
 * );
 * console.log(result.images); // { 'us-east-1': 'ami-0…', 'eu-west-1': 'ami-0…' }
 * ```
 * @param config - the build configuration (validated before anything happens)
 * @param provision - the provisioning callback
 * @param options - signal, logger, onProgress, injected clients and host overrides
 * @throws {@link ConfigError} before any side effect; otherwise the first error, with its phase
 * @public
 */
export async function buildAmi(
  config: BuildConfig,
  provision: ProvisionFn,
  options: BuildAmiOptions = {},
): Promise<BuildResult> {
  const started = performance.now();
  const { ctx, signal, phases, end } = startRun(options);
  const { logger } = ctx;
  const env = options.env ?? process.env;

  // Validation happens before any side effect, and its errors need no cleanup.
  const cfg = await phases.run('validate', () => {
    const resolved = resolveConfig(config, env);
    checkPlatform('buildAmi', 'attaching volumes');
    return resolved;
  });
  for (const w of cfg.warnings) logger.warn(w);

  const stack = new CleanupStack(ctx, options.cleanupStepTimeoutMs ?? 10 * 60_000);
  const stateDir = options.stateDir ?? DEFAULT_STATE_DIR;
  const clock = createTemplateClock();
  const buildId = cfg.buildId;
  let clients: AwsClients | undefined;
  let unregister: (() => Promise<void>) | undefined;

  const step = hookedSteps(phases, options.hooks, signal);

  try {
    const identity = await step('identity', () => hostIdentityOf(options, signal));
    const region = cfg.region ?? identity.region;
    clients = createAwsClients(
      defined({
        region,
        profile: cfg.profile,
        accessKey: cfg.credentials?.accessKeyId,
        secretKey: cfg.credentials?.secretAccessKey,
        token: cfg.credentials?.sessionToken,
        mfaCode: cfg.mfaCode,
        customEndpointEc2: cfg.customEndpointEc2,
        insecureSkipTlsVerify: cfg.insecureSkipTlsVerify,
        maxRetries: cfg.maxRetries,
        decodeAuthorizationMessages: cfg.decodeAuthorizationMessages,
      }),
      defined({ region, ec2: options.ec2, sts: options.sts, env, logger: options.logger }),
    );
    const ec2 = clients.ec2;
    const aws = {
      ...defined({ logger: options.logger, onProgress: options.onProgress }),
      signal,
      ec2,
      polling: cfg.polling,
    };
    unregister = await registerBuild(stateDir, { buildId, region, instanceId: identity.instanceId });

    const source = cfg.fromScratch
      ? undefined
      : await step('source', () =>
          resolveSourceAmi(
            defined({ sourceAmi: cfg.sourceAmi, sourceAmiFilter: cfg.sourceAmiFilter, region }),
            aws,
          ).then((found) => {
            checkEnhancedNetworking(found, cfg.enaSupport === true || cfg.sriovSupport, cfg.amiVirtualizationType);
            return found;
          }),
        );

    const data: TemplateData = {
      BuildRegion: region,
      SourceAMI: source?.imageId ?? '',
      SourceAMIName: source?.name ?? '',
      SourceAMICreationDate: source?.creationDate ?? '',
      SourceAMIOwner: source?.ownerId ?? '',
      SourceAMIOwnerName: source?.ownerAlias ?? '',
      SourceAMITags: source?.tags ?? {},
    };
    const name = cfg.amiName.render(data, clock);
    validateAmiName(name);
    const copyRegions = copyTargetRegions(cfg, region);

    // Checks that need AWS but change nothing: region names and a name clash, before any resource.
    await step('validate', async () => {
      if (!cfg.skipRegionValidation && copyRegions.length > 0)
        await validateRegions(ec2(region), copyRegions, ctx, region);
      if (!cfg.forceDeregister) await checkImageNameFree(ec2(region), name, region, ctx);
    });

    const volume = await step('volume', async () => {
      const created = await createVolume(
        {
          availabilityZone: identity.availabilityZone,
          ...defined({
            source: source,
            size: cfg.rootVolumeSize,
            volumeType: cfg.rootVolumeType ?? (cfg.fromScratch ? 'gp2' : undefined),
            iops: cfg.rootVolumeIops,
            throughput: cfg.rootVolumeThroughput,
            encrypted: cfg.rootVolumeEncryptBoot,
            kmsKeyId: cfg.rootVolumeKmsKeyId,
          }),
          tags: renderRecord(cfg.rootVolumeTags, data, clock),
          buildId,
          region,
        },
        aws,
      );
      // Registered the moment the id exists, inside the phase: nothing can fail in between.
      stack.defer(`delete volume ${created.volumeId}`, (s) => created.delete({ signal: s }));
      return created;
    });

    // A letter stays reserved until the volume is detached again, not just until EC2 confirms the
    // attachment: on a Nitro host without /dev/sdX links nothing else tells another build that the
    // letter is taken, and EC2's list of the instance's names, read before the choice, can miss an
    // attachment confirmed since. (Letters EC2 refused are simply kept with it.) Registered before
    // the detach, so it runs after it.
    const leases: DeviceLease[] = [];
    const releaseUndo = stack.defer('release the device reservation', async () => {
      for (const lease of leases.splice(0)) await lease.release();
    });
    let detachUndo: Undo | undefined;
    const attachment = await step('attach', async () => {
      const taken = await describeInstanceDeviceNames(ec2(region), identity.instanceId, ctx);
      const attached = await attachVolume(
        {
          volumeId: volume.volumeId,
          instanceId: identity.instanceId,
          region,
          device: async (exclude) => {
            const lease = await allocateDevice(
              defined({
                devicePath: cfg.devicePath,
                exclude: [...taken, ...exclude],
                devRoot: options.devRoot,
                lockDir: cfg.lockDir,
              }),
              { signal, ...defined({ logger: options.logger, onProgress: options.onProgress }) },
            );
            leases.push(lease);
            // attachVolume lets go of the lease once attached; the reservation itself lasts until the detach.
            return { device: lease.device, release: async () => {} };
          },
          resolveDevice:
            options.resolveDevice ??
            ((args) =>
              resolveBlockDevice(
                {
                  volumeId: args.volumeId,
                  device: args.device,
                  ...defined({
                    nvmeDevicePath: cfg.nvmeDevicePath,
                    devRoot: options.devRoot,
                    sysRoot: options.sysRoot,
                  }),
                },
                defined({ signal: args.signal, logger: options.logger }),
              )),
        },
        aws,
      );
      detachUndo = stack.defer(`detach volume ${volume.volumeId}`, (s) => attached.detach({ signal: s }));
      return attached;
    });

    let unmountUndo: Undo | undefined;
    const mounted = await step('mount', async () => {
      const m = await mountWithConfig(cfg, attachment.hostDevice, {
        clock,
        stack,
        stateDir,
        operation: { signal, ...defined({ logger: options.logger, onProgress: options.onProgress }) },
      });
      unmountUndo = m.unmount;
      return m.mounted;
    });

    const info: BuildInfo = {
      buildId,
      BuildRegion: region,
      SourceAMI: data.SourceAMI ?? '',
      SourceAMIName: data.SourceAMIName ?? '',
      SourceAMICreationDate: data.SourceAMICreationDate ?? '',
      SourceAMIOwner: data.SourceAMIOwner ?? '',
      SourceAMIOwnerName: data.SourceAMIOwnerName ?? '',
      SourceAMITags: data.SourceAMITags ?? {},
      Device: attachment.hostDevice,
      MountPath: mounted.root,
      attachmentName: attachment.device,
      volumeId: volume.volumeId,
      instanceId: identity.instanceId,
      sourceImage: source,
    };
    await step('provision', async () => {
      const chroot = createChroot(
        { root: mounted.root, env: mounted.env, commandWrapper: mounted.commandWrapper },
        { signal, ...defined({ logger: options.logger, onProgress: options.onProgress }) },
      );
      try {
        await provision(chroot, info);
      } catch (error) {
        if (signal.aborted || error instanceof AmiChrootError) throw error;
        throw new ProvisionError(
          `The provision callback failed: ${error instanceof Error ? error.message : String(error)}`,
          {
            cause: error,
            resources: { volumeId: volume.volumeId, mountPath: mounted.root, device: attachment.hostDevice },
          },
        );
      }
    });

    // Early cleanup: the snapshot must see a clean, unmounted, detached volume.
    await step('unmount', () => unmountUndo!.run());
    await step('detach', async () => {
      await detachUndo!.run();
      await releaseUndo.run();
    });

    const snapshotTags = renderRecord(cfg.snapshotTags, data, clock);
    const tags = renderRecord(cfg.tags, data, clock);
    const description = cfg.amiDescription?.render(data, clock);
    const sharing = {
      amiUsers: cfg.amiUsers,
      amiGroups: cfg.amiGroups,
      amiOrgArns: cfg.amiOrgArns,
      amiOuArns: cfg.amiOuArns,
      productCodes: cfg.amiProductCodes,
      snapshotUsers: cfg.snapshotUsers,
      snapshotGroups: cfg.snapshotGroups,
      ...defined({ deprecateAt: cfg.deprecateAt }),
      ...(cfg.deregistrationProtection.enabled ? { deregistrationProtection: cfg.deregistrationProtection } : {}),
    };
    // skipSaveBuildRegion (Packer's behaviour): register under a temporary name, copy to the other
    // regions under the real one, then remove the temporary image whatever happens.
    const skipSave = cfg.skipSaveBuildRegion;
    const registerName = skipSave ? `ami-chroot-intermediary-${randomBytes(5).toString('hex')}` : name;
    if (skipSave && cfg.forceDeregister) {
      await step('deregister', () =>
        deregisterImagesByName(
          { name, regions: [region, ...copyRegions], deleteSnapshots: cfg.forceDeleteSnapshot },
          aws,
        ).then(() => undefined),
      );
    }
    const image = await step('register', async () => {
      const registered = await snapshotAndRegister(
        {
          volumeId: volume.volumeId,
          region,
          name: registerName,
          ...defined({
            description,
            source: source,
            rootDeviceName: cfg.rootDeviceName,
            blockDeviceMappings: toEc2Mappings(cfg.amiBlockDeviceMappings),
            rootVolumeSize: cfg.rootVolumeSize,
            // A root entry in amiBlockDeviceMappings that names its own type is more specific than
            // rootVolumeType (which from scratch defaults to gp2 for the work volume).
            rootVolumeType: rootMappingOf(cfg)?.volumeType === undefined ? cfg.rootVolumeType : undefined,
            rootVolumeIops: cfg.rootVolumeIops,
            rootVolumeThroughput: cfg.rootVolumeThroughput,
            architecture: cfg.fromScratch || !source ? cfg.amiArchitecture : undefined,
            virtualizationType: cfg.amiVirtualizationType,
            enaSupport: cfg.enaSupport,
            sriovNetSupport: cfg.sriovSupport || undefined,
            bootMode: cfg.bootMode,
            uefiData: cfg.uefiData,
            tpmSupport: cfg.tpmSupport,
            imdsSupport: cfg.imdsSupport,
            // The copies carry the encryption when the build-region image is not kept.
            encryptBoot: skipSave ? undefined : cfg.encryptBoot,
            kmsKeyId: cfg.regionKmsKeyIds[region] || cfg.kmsKeyId,
          }),
          tags,
          snapshotTags,
          buildId,
          forceDeregister: skipSave ? false : cfg.forceDeregister,
          forceDeleteSnapshot: cfg.forceDeleteSnapshot,
          amiRegions: copyRegions,
          ...(skipSave ? {} : sharing),
        },
        aws,
      );
      // Unlike Packer, a failure after registration removes the image and its snapshots; the
      // temporary image of skipSaveBuildRegion goes on success too.
      stack.defer(
        `deregister ${registered.imageId} and delete its snapshots`,
        (s) => registered.deregister({ signal: s }),
        {
          onlyOnFailure: !skipSave,
        },
      );
      return registered;
    });

    let copies: Awaited<ReturnType<typeof copyToRegions>> | undefined;
    if (copyRegions.length > 0) {
      copies = await step('copy', async () => {
        const done = await copyToRegions(
          {
            sourceImageId: image.imageId,
            sourceRegion: region,
            regions: copyRegions,
            name,
            ...defined({
              description,
              encrypted: cfg.encryptBoot,
              kmsKeyId: cfg.kmsKeyId,
              snapshotCopyCompletionDurationMinutes: cfg.snapshotCopyDurationMinutes,
            }),
            regionKmsKeyIds: cfg.regionKmsKeyIds,
            tags,
            snapshotTags,
            buildId,
            // Regions were validated before anything was created.
            skipRegionValidation: true,
            ...sharing,
          },
          { ...aws, keepOnError: cfg.keepOnError },
        );
        stack.defer('remove the region copies', (s) => done.undo({ signal: s }), { onlyOnFailure: true });
        return done;
      });
    }

    const cleanupErrors = await stack.unwind('success');
    for (const e of cleanupErrors) logger.error(`After a successful build: ${e.message}`);
    const images: Record<string, string> = {
      ...(cfg.skipSaveBuildRegion ? {} : { [region]: image.imageId }),
      ...copies?.images,
    };
    const snapshots: Record<string, readonly string[]> = {
      ...(cfg.skipSaveBuildRegion ? {} : { [region]: image.snapshotIds }),
      ...copies?.snapshots,
    };
    logger.info(
      `Built ${name}: ${Object.entries(images)
        .map(([r, id]) => `${r}:${id}`)
        .join(', ')}`,
    );
    return {
      buildId,
      name,
      region,
      images,
      snapshots,
      sourceImage: source ? { imageId: source.imageId, name: source.name } : undefined,
      device: attachment.device,
      hostDevice: attachment.hostDevice,
      timings: { ...phases.timings },
      durationMs: performance.now() - started,
      awsCalls: clients.callCount(),
      cleanupErrors,
      warnings: cfg.warnings,
    };
  } catch (error) {
    const phase = phases.current;
    if (phase) stampPhase(error, phase);
    // keepOnError is for failures; an abort (any reason) means stop and clean up.
    if (cfg.keepOnError && !signal.aborted && !isAbortError(error)) {
      const keptList = stack.keepAll();
      logger.warn(
        `keepOnError: leaving everything for inspection. Not undone:\n${keptList.map((k) => `  - ${k}`).join('\n')}\n` +
          `Run cleanupOrphans() and recoverHost() when done.`,
      );
      ctx.emit({
        type: 'cleanup',
        step: `keepOnError: kept ${keptList.length} resource(s)`,
        status: 'skipped',
      } satisfies ProgressEvent);
      throw error;
    }
    const cleanupErrors = await phases.run('cleanup', () => stack.unwind('failure'), { checkAbort: false });
    throw attachCleanupErrors(error, cleanupErrors);
  } finally {
    end();
    clients?.destroy();
    await unregister?.().catch((e: unknown) => logger.warn(`Could not remove the live-build record: ${String(e)}`));
  }
}
