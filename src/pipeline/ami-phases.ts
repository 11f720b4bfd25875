/**
 * The AWS phases every `buildAmi` shares, whichever way the root snapshot is made (`via: 'attach'`:
 * a snapshot of the attached work volume; `via: 'ebs-direct'`: the blocks uploaded with the EBS
 * direct APIs): the source, the name and region checks, the registration, the region copies and
 * the final report. One home, so both ways apply the config the same way.
 */
import { randomBytes } from 'node:crypto';
import type { CleanupStack } from '../internal/cleanup-stack.js';
import { defined } from '../internal/defined.js';
import { withPhaseRunner } from '../internal/sub-phases.js';
import type { ResolvedConfig, TemplateClock } from '../config/types.js';
import { copyTargetRegions, validateAmiName } from '../config/resolve.js';
import { createAwsClients } from '../aws/clients.js';
import type { AwsClients } from '../aws/clients.js';
import type { AwsOperationOptions } from '../aws/common.js';
import { resolveSourceAmi } from '../aws/source-image.js';
import type { SourceImage } from '../aws/source-image.js';
import { deregisterImagesByName, registerImage, snapshotAndRegister } from '../aws/images.js';
import type { RegisteredImage } from '../aws/images.js';
import { copyToRegions, validateRegions } from '../aws/regions.js';
import type { RegionCopies } from '../aws/regions.js';
import { protectImages, unprotectImage } from '../aws/image-settings.js';
import { billingLossWarning, checkEnhancedNetworking, checkImageNameFree } from './prevalidate.js';
import { registerBuild } from './registry.js';
import { awsAccessOf, copyInput, registerInput, renderRecord, sourceTemplateData } from './requests.js';
import type { ImageRequestData, SourceData } from './requests.js';
import type { Run } from './run.js';
import type { BuildAmiOptions, BuildResult } from './build-ami.js';

/** What every phase of one buildAmi run shares. @internal */
export interface AmiRun {
  readonly cfg: ResolvedConfig;
  readonly options: BuildAmiOptions;
  readonly run: Run;
  readonly stack: CleanupStack;
  readonly clock: TemplateClock;
  readonly stateDir: string;
  /** Released when the run ends, whatever happens: clients, the live-build record. */
  readonly finally: (() => Promise<void> | void)[];
}

/** What `prepareBuild` learned: the clients, the source and the rendered requests. @internal */
export interface PreparedBuild {
  readonly region: string;
  readonly clients: AwsClients;
  /** Options of every AWS primitive of this run. */
  readonly aws: AwsOperationOptions & { readonly polling: ResolvedConfig['polling'] };
  readonly source: SourceImage | undefined;
  readonly data: SourceData;
  readonly request: ImageRequestData;
}

/**
 * AWS clients, live-build record, source AMI, name and the checks that need AWS but change nothing
 * (region names, a name clash): everything before the first resource.
 * @internal
 */
export async function prepareBuild(b: AmiRun, region: string, instanceId: string | undefined): Promise<PreparedBuild> {
  const { cfg, options, run } = b;
  const clients = createAwsClients(
    awsAccessOf(cfg, region),
    defined({ region, ec2: options.ec2, sts: options.sts, env: options.env, logger: options.logger }),
  );
  b.finally.push(() => clients.destroy());
  const aws = { ...run.operation, ec2: clients.ec2, polling: cfg.polling };
  const unregister = await registerBuild(b.stateDir, { buildId: cfg.buildId, region, ...defined({ instanceId }) });
  b.finally.push(() =>
    unregister().catch((e: unknown) => run.ctx.logger.warn(`Could not remove the live-build record: ${String(e)}`)),
  );

  const source = cfg.fromScratch
    ? undefined
    : await run.step('source', async () => {
        const found = await resolveSourceAmi(
          defined({ sourceAmi: cfg.sourceAmi, sourceAmiFilter: cfg.sourceAmiFilter, region }),
          aws,
        );
        checkEnhancedNetworking(found, cfg.enaSupport === true || cfg.sriovSupport, cfg.amiVirtualizationType);
        // Before anything is created, so the build can still be stopped.
        const billing = billingLossWarning(found);
        if (billing) run.ctx.logger.warn(billing);
        return found;
      });

  const data = sourceTemplateData(region, source);
  const name = cfg.amiName.render(data, b.clock);
  validateAmiName(name);
  const request: ImageRequestData = {
    region,
    name,
    description: cfg.amiDescription?.render(data, b.clock),
    tags: renderRecord(cfg.tags, data, b.clock),
    snapshotTags: renderRecord(cfg.snapshotTags, data, b.clock),
    copyRegions: copyTargetRegions(cfg, region),
  };
  await run.step('preflight', async () => {
    const ec2 = clients.ec2(region);
    if (!cfg.skipRegionValidation && request.copyRegions.length > 0)
      await validateRegions(ec2, request.copyRegions, run.ctx, region);
    // Every region that will hold an image under this name (not the build region's temporary one).
    if (!cfg.forceDeregister)
      for (const r of [...(cfg.skipSaveBuildRegion ? [] : [region]), ...request.copyRegions])
        await checkImageNameFree(clients.ec2(r), name, r, run.ctx);
  });
  return { region, clients, aws, source, data, request };
}

/** The root of the image: the detached work volume (snapshotted here) or a completed snapshot. @internal */
export type ImageRoot = { readonly volumeId: string } | { readonly snapshotId: string };

/**
 * Registers the image on its root (snapshotting the work volume first when the root is one). With
 * skipSaveBuildRegion (Packer's behaviour) the image is a temporary one under its own name, copied
 * to the other regions under the real one and removed whatever happens; same-name images are
 * deregistered first.
 * @internal
 */
export async function registerRoot(b: AmiRun, p: PreparedBuild, root: ImageRoot): Promise<RegisteredImage> {
  const { cfg, run } = b;
  const temporary = cfg.skipSaveBuildRegion;
  if (temporary && cfg.forceDeregister) {
    await run.step('deregister', async () => {
      await deregisterImagesByName(
        {
          name: p.request.name,
          regions: [p.region, ...p.request.copyRegions],
          deleteSnapshots: cfg.forceDeleteSnapshot,
        },
        p.aws,
      );
    });
  }
  const registerName = temporary ? `ami-chroot-intermediary-${randomBytes(5).toString('hex')}` : p.request.name;
  // snapshotAndRegister/registerImage run their own steps (snapshot, deregister, register,
  // encrypt, permissions, deprecate) through the run's hooked, timed steps; each undoes what it
  // made if a later one, or a hook, fails, so the image needs the stack only once it returns.
  const aws = withPhaseRunner(p.aws, run.step);
  const registered =
    'volumeId' in root
      ? await snapshotAndRegister(
          registerInput(cfg, p.request, { volumeId: root.volumeId, source: p.source, registerName }),
          aws,
        )
      : await registerImage(snapshotRegisterInput(cfg, p, root.snapshotId, registerName), aws);
  // Unlike Packer, a failure after registration removes the image and its snapshots; the
  // temporary image of skipSaveBuildRegion goes on success too.
  b.stack.defer(
    `deregister ${registered.imageId} and delete its snapshots`,
    (s) => registered.deregister({ signal: s }),
    { onlyOnFailure: !temporary, resource: { kind: 'image', id: registered.imageId, region: p.region } },
  );
  return registered;
}

/** The same registration as the volume's, on a snapshot this build owns. */
function snapshotRegisterInput(
  cfg: ResolvedConfig,
  p: PreparedBuild,
  snapshotId: string,
  registerName: string,
): Parameters<typeof registerImage>[0] {
  const {
    volumeId: _volumeId,
    snapshotDescription: _description,
    ...rest
  } = registerInput(cfg, p.request, {
    volumeId: '',
    source: p.source,
    registerName,
  });
  return { ...rest, snapshotId, ownsSnapshot: true };
}

/** Copies the image to the other regions; a later failure removes the copies. @internal */
export async function copyImage(
  b: AmiRun,
  p: PreparedBuild,
  image: RegisteredImage,
): Promise<RegionCopies | undefined> {
  if (p.request.copyRegions.length === 0) return undefined;
  return b.run.step('copy', async () => {
    const copies = await copyToRegions(copyInput(b.cfg, p.request, image.imageId), {
      ...p.aws,
      keepOnError: b.cfg.keepOnError,
    });
    b.stack.defer('remove the region copies', (s) => copies.undo({ signal: s }), { onlyOnFailure: true });
    return copies;
  });
}

/** What a build made, for {@link finishBuild}. @internal */
export interface Built {
  /** Attachment name (empty without an instance). */
  readonly attachmentName: string;
  /** Host block device (the attached volume, or the loop device). */
  readonly hostDevice: string;
  readonly image: RegisteredImage;
  readonly copies: RegionCopies | undefined;
  /** What the EBS direct transfer did (`via: 'ebs-direct'` only). */
  readonly ebsDirect?: BuildResult['ebsDirect'];
}

/** Protects the images, unwinds the success path's undos and reports what was built. @internal */
export async function finishBuild(b: AmiRun, p: PreparedBuild, built: Built, started: number): Promise<BuildResult> {
  const { cfg, run } = b;
  const kept = cfg.skipSaveBuildRegion ? undefined : p.region;
  const images: Record<string, string> = { ...(kept && { [kept]: built.image.imageId }), ...built.copies?.images };
  // Last: a protected image cannot be undone (with the cooldown, not for 24 h).
  if (cfg.deregistrationProtection.enabled)
    await run.step('permissions', async () => {
      await protectImages(p.clients.ec2, images, cfg.deregistrationProtection, run.ctx);
      // Only a failing `after` hook can fail the build now: its undos must find the images unprotected.
      b.stack.defer(
        'lift deregistration protection',
        async (signal) => {
          for (const [r, id] of Object.entries(images))
            await unprotectImage(p.clients.ec2(r), id, { ...run.ctx, signal }, r);
        },
        { onlyOnFailure: true },
      );
    });
  const cleanupErrors = await b.stack.unwind('success');
  for (const e of cleanupErrors) run.ctx.logger.error(`After a successful build: ${e.message}`);
  const snapshots: Record<string, readonly string[]> = {
    ...(kept && { [kept]: built.image.snapshotIds }),
    ...built.copies?.snapshots,
  };
  const list = Object.entries(images).map(([r, id]) => `${r}:${id}`);
  run.ctx.logger.info(`Built ${p.request.name}: ${list.join(', ')}`);
  return {
    buildId: cfg.buildId,
    name: p.request.name,
    region: p.region,
    images,
    snapshots,
    sourceImage: p.source ? { imageId: p.source.imageId, name: p.source.name } : undefined,
    attachmentName: built.attachmentName,
    hostDevice: built.hostDevice,
    timings: { ...run.phases.timings },
    durationMs: performance.now() - started,
    awsCalls: p.clients.callCount(),
    cleanupErrors,
    warnings: cfg.warnings,
    ...(built.ebsDirect ? { ebsDirect: built.ebsDirect } : {}),
  };
}
