/**
 * `buildAmi`: the whole chroot build, wiring the AWS primitives (aws/) and the host primitives
 * (host/, chroot/) with one cleanup stack. Every resource's undo is registered the moment the
 * resource exists; undos run last-in-first-out on success, failure and abort, each at most once,
 * with their own bounded time; cleanup failures are attached to the original error.
 *
 * @packageDocumentation
 */
import type { Phase } from '../errors.js';
import type { OperationOptions } from '../types.js';
import { CleanupStack } from '../internal/cleanup-stack.js';
import type { Undo } from '../internal/cleanup-stack.js';
import { defined } from '../internal/defined.js';
import type { BuildConfig } from '../config/types.js';
import { resolveConfig } from '../config/resolve.js';
import { createTemplateClock } from '../config/templates.js';
import type { InjectedClients } from '../aws/clients.js';
import { describeInstanceDeviceNames, resolveHostIdentity } from '../aws/identity.js';
import type { HostIdentity, HostIdentitySource } from '../aws/identity.js';
import type { EbsProvider } from '../aws/ebs/blocks.js';
import type { SourceImage } from '../aws/source-image.js';
import { attachVolume, createVolume } from '../aws/volumes.js';
import type { AttachedVolume, DeviceResolver, WorkVolume } from '../aws/volumes.js';
import { allocateDevice } from '../host/devices.js';
import type { DeviceLease } from '../host/devices.js';
import { resolveBlockDevice } from '../host/resolve-device.js';
import { DEFAULT_STATE_DIR } from '../host/defaults.js';
import type { Chroot } from '../chroot/chroot.js';
import { checkRegionIsHosts } from './prevalidate.js';
import { mountStep } from './mount-config.js';
import { renderRecord, workVolumeInput } from './requests.js';
import { checkPlatform, failRun, runProvision, startRun } from './run.js';
import { copyImage, finishBuild, prepareBuild, registerRoot } from './ami-phases.js';
import type { AmiRun, PreparedBuild } from './ami-phases.js';
import { buildDirect, checkDirectConfig } from './build-direct.js';
import type { DirectTransfer } from './build-direct.js';

/**
 * Packer's build data, under Packer's own names: what a Packer template reads as `build.*` (HCL2)
 * or `{{ .Name }}`, so templates and provisioners ported from Packer find it unchanged.
 * @public
 */
export interface PackerBuildData {
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
}

/**
 * What `provision` receives besides the chroot: the resources in use, and Packer's build data
 * under `packer`.
 * @public
 */
export interface BuildInfo {
  /** The build id, also the `ami-chroot:build-id` tag value. */
  readonly buildId: string;
  /** Build region. */
  readonly region: string;
  /** The host block device of the work volume (e.g. `/dev/nvme1n1`; the loop device with `via: 'ebs-direct'`). */
  readonly hostDevice: string;
  /** Where the volume is mounted on the host (the chroot's `/`). */
  readonly mountPath: string;
  /** The attachment name EC2 knows (e.g. `/dev/sdf`; empty with `via: 'ebs-direct'`). */
  readonly attachmentName: string;
  /** Work volume id (empty with `via: 'ebs-direct'`). */
  readonly volumeId: string;
  /** Build host instance id (empty with `via: 'ebs-direct'`). */
  readonly instanceId: string;
  /** The resolved source image (undefined for fromScratch). */
  readonly sourceImage: SourceImage | undefined;
  /** Packer's build data (`build.SourceAMIName`, ...), e.g. for {@link runPackerProvisioners}. */
  readonly packer: PackerBuildData;
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
  readonly hostIdentity?: HostIdentitySource;
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
  /**
   * With `via: 'ebs-direct'`: an EBS client for the build region, or a function returning one per
   * region. @defaultValue `createEbsClient` with the config's access options
   */
  readonly ebs?: EbsProvider;
  /** With `via: 'ebs-direct'`: EBS direct requests in flight at most (downloads and uploads). @defaultValue 32 */
  readonly ebsConcurrency?: number;
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
  /** The attachment name EC2 knew the work volume by (e.g. `/dev/sdf`; empty with `via: 'ebs-direct'`). */
  readonly attachmentName: string;
  /** The host block device of the work volume (e.g. `/dev/nvme1n1`; the loop device with `via: 'ebs-direct'`). */
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
  /** What the EBS direct transfer did (`via: 'ebs-direct'` only). */
  readonly ebsDirect?: DirectTransfer;
}

/** What `prepare` learned: the host, and what every way of building shares. */
interface Prepared extends PreparedBuild {
  readonly identity: HostIdentity;
}

/** The work volume attached to this host, with its early undos. */
interface Attached {
  readonly attachment: AttachedVolume;
  readonly detach: Undo;
  readonly release: Undo;
}

/**
 * Host identity, then what every way of building prepares (clients, live-build record, source AMI,
 * name and the checks that need AWS but change nothing): everything before the first resource.
 */
async function prepare(b: AmiRun): Promise<Prepared> {
  const { cfg, options, run } = b;
  const identity = await run.step('identity', () =>
    resolveHostIdentity(options.hostIdentity, defined({ endpoint: options.imdsEndpoint, signal: run.signal })),
  );
  checkRegionIsHosts(cfg.region, identity);
  const region = cfg.region ?? identity.region;
  return { identity, ...(await prepareBuild(b, region, identity.instanceId)) };
}

/** Creates the work volume from the source's root snapshot, next to this host. */
function createWorkVolume(b: AmiRun, p: Prepared): Promise<WorkVolume> {
  return b.run.step('volume', async () => {
    const input = workVolumeInput(b.cfg, {
      availabilityZone: p.identity.availabilityZone,
      region: p.region,
      source: p.source,
      tags: renderRecord(b.cfg.rootVolumeTags, p.data, b.clock),
    });
    const created = await createVolume(input, p.aws);
    // Registered the moment the id exists, inside the phase: nothing can fail in between.
    b.stack.defer(`delete volume ${created.volumeId}`, (s) => created.delete({ signal: s }), {
      resource: { kind: 'volume', id: created.volumeId, region: p.region },
    });
    return created;
  });
}

/**
 * Allocates a device letter and attaches the work volume to this host. A letter stays reserved
 * until the volume is detached again, not just until EC2 confirms the attachment: on a Nitro host
 * without /dev/sdX links nothing else tells another build that the letter is taken, and EC2's list
 * of the instance's names, read before the choice, can miss an attachment confirmed since.
 */
async function attachWorkVolume(b: AmiRun, p: Prepared, volume: WorkVolume): Promise<Attached> {
  const { cfg, options, run } = b;
  const leases: DeviceLease[] = [];
  // Registered before the detach, so it runs after it. (Letters EC2 refused are kept with it.)
  const release = b.stack.defer('release the device reservation', async () => {
    for (const lease of leases.splice(0)) await lease.release();
  });
  let detach: Undo | undefined;
  const attachment = await run.step('attach', async () => {
    const taken = await describeInstanceDeviceNames(p.clients.ec2(p.region), p.identity.instanceId, run.ctx);
    const attached = await attachVolume(
      {
        volumeId: volume.volumeId,
        instanceId: p.identity.instanceId,
        region: p.region,
        attachmentName: async (exclude) => {
          const lease = await allocateDevice(
            defined({
              devicePath: cfg.devicePath,
              exclude: [...taken, ...exclude],
              devRoot: options.devRoot,
              lockDir: cfg.lockDir,
            }),
            run.operation,
          );
          leases.push(lease);
          // attachVolume lets go of the lease once attached; the reservation itself lasts until the detach.
          return { attachmentName: lease.attachmentName, release: async () => {} };
        },
        resolveDevice:
          options.resolveDevice ??
          ((args) =>
            resolveBlockDevice(
              {
                volumeId: args.volumeId,
                attachmentName: args.attachmentName,
                ...defined({ nvmeDevicePath: cfg.nvmeDevicePath, devRoot: options.devRoot, sysRoot: options.sysRoot }),
              },
              defined({ signal: args.signal, logger: options.logger }),
            )),
      },
      p.aws,
    );
    detach = b.stack.defer(`detach volume ${volume.volumeId}`, (s) => attached.detach({ signal: s }), {
      resource: { kind: 'attachment', id: `${volume.volumeId}:${attached.attachmentName}`, region: p.region },
    });
    return attached;
  });
  return { attachment, detach: detach!, release };
}

/**
 * Mounts the attached volume, runs `provision`, then cleans up early: the snapshot must see a
 * clean, unmounted, detached volume.
 */
async function mountAndProvision(
  b: AmiRun,
  p: Prepared,
  volume: WorkVolume,
  attached: Attached,
  provision: ProvisionFn,
): Promise<void> {
  const { run } = b;
  const { attachment } = attached;
  // As Packer: the AMI's type decides whether the root is partition 1 or the whole device.
  const virtualizationType = b.cfg.amiVirtualizationType ?? p.source?.virtualizationType;
  const { mounted, unmount } = await mountStep(run, b.cfg, attachment.hostDevice, { ...b, virtualizationType });
  const info: BuildInfo = {
    buildId: b.cfg.buildId,
    region: p.region,
    hostDevice: attachment.hostDevice,
    mountPath: mounted.root,
    attachmentName: attachment.attachmentName,
    volumeId: volume.volumeId,
    instanceId: p.identity.instanceId,
    sourceImage: p.source,
    packer: { ...p.data, Device: attachment.hostDevice, MountPath: mounted.root },
  };
  await runProvision(run, mounted, provision, info, { volumeId: volume.volumeId, device: attachment.hostDevice });
  await run.step('unmount', () => unmount.run());
  await run.step('detach', async () => {
    await attached.detach.run();
    await attached.release.run();
  });
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
 * With `via: 'ebs-direct'` the same config builds without an instance: no identity, volume, device
 * or attachment; the source's root snapshot is read into `cacheDir` (`download`), copied
 * (`volume`), provisioned on a loop device with the same chroot phases, and the blocks that differ
 * from the source are written as its child snapshot (`upload`); register, copies, sharing and
 * cleanup are the same. Options of an attached volume (`devicePath`, `rootVolumeTags`, `hostIdentity`
 * ...) are refused with a ConfigError naming them. `result.ebsDirect` says what was transferred.
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
 *     await chroot.writeFile('/etc/motd', `Built from ${build.packer.SourceAMIName}\n`);
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
  const run = startRun(options);
  // Hooked like every phase (a hook may refuse the config); still before any side effect.
  const cfg = await run.step('validate', () => {
    const resolved = resolveConfig(config, options.env ?? process.env);
    const direct = resolved.via === 'ebs-direct';
    if (direct) checkDirectConfig(config, resolved, options);
    checkPlatform('buildAmi', direct ? 'loop devices' : 'attaching volumes');
    return Promise.resolve(resolved);
  });
  for (const w of cfg.warnings) run.ctx.logger.warn(w);
  const b: AmiRun = {
    cfg,
    options,
    run,
    stack: new CleanupStack(run.ctx, options.cleanupStepTimeoutMs ?? 10 * 60_000),
    clock: createTemplateClock(),
    stateDir: options.stateDir ?? DEFAULT_STATE_DIR,
    finally: [],
  };
  try {
    if (cfg.via === 'ebs-direct') return await buildDirect(b, provision, started);
    const p = await prepare(b);
    const volume = await createWorkVolume(b, p);
    const attached = await attachWorkVolume(b, p, volume);
    await mountAndProvision(b, p, volume, attached, provision);
    const image = await registerRoot(b, p, { volumeId: volume.volumeId });
    const copies = await copyImage(b, p, image);
    const { attachmentName, hostDevice } = attached.attachment;
    return await finishBuild(b, p, { attachmentName, hostDevice, image, copies }, started);
  } catch (error) {
    throw await failRun(run, b.stack, error, cfg.keepOnError);
  } finally {
    run.end();
    for (const release of b.finally.reverse()) await release();
  }
}
