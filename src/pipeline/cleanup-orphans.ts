/**
 * `cleanupOrphans`: removes what killed builds left behind, on the host (mounts, loop devices,
 * device reservations, via `recoverHost`) and in AWS (volumes, snapshots and images carrying the
 * `ami-chroot:build-id` tag whose build is not running).
 *
 * @packageDocumentation
 */
import { hasAwsCode } from '../aws/aws-errors.js';
import { createAwsClients } from '../aws/clients.js';
import type { AwsAccess, InjectedClients } from '../aws/clients.js';
import { resolveHostIdentity } from '../aws/identity.js';
import type { HostIdentity, HostIdentitySource } from '../aws/identity.js';
import { findTaggedResources } from '../aws/tagged-resources.js';
import { deleteSnapshot, removeImage } from '../aws/image-removal.js';
import { detachAndDeleteVolume } from '../aws/volumes.js';
import { DEFAULT_LOCK_DIR, DEFAULT_STATE_DIR } from '../host/defaults.js';
import { recoverHost } from '../host/recover.js';
import type { RecoveryReport } from '../host/recover.js';
import { defined } from '../internal/defined.js';
import { toCtx } from '../internal/ctx.js';
import type { OperationOptions } from '../types.js';
import { liveBuildIds } from './registry.js';
import { toError } from '../internal/to-error.js';

/**
 * Options of {@link cleanupOrphans}.
 * @public
 */
export interface CleanupOrphansOptions extends OperationOptions, InjectedClients {
  /**
   * Only resources created before this time, or more than this many milliseconds ago. Builds
   * running on this host are recognized and never touched whatever their age; builds on other
   * hosts are protected only by this age, so keep it above your longest build.
   * @defaultValue 6 hours
   */
  readonly olderThan?: Date | number;
  /** Regions to sweep. @defaultValue the region of `access`, the environment, or the host */
  readonly regions?: readonly string[];
  /** Credentials, endpoint and region, as in the build config (`customEndpointEc2`, `profile`, ...). */
  readonly access?: AwsAccess;
  /** Only this build's resources. */
  readonly buildId?: string;
  /** List what would be removed, remove nothing. @defaultValue false */
  readonly dryRun?: boolean;
  /** Also run {@link recoverHost} first (unmount, detach loop devices, free reservations). @defaultValue true */
  readonly recoverHost?: boolean;
  /** Recovery journals and live-build records. @defaultValue `/run/ami-chroot` */
  readonly stateDir?: string;
  /** Device reservations. @defaultValue `/var/lock/ami-chroot` */
  readonly lockDir?: string;
  /**
   * This host, to detach volumes a killed build left attached to it.
   * @defaultValue read from IMDSv2 when a volume is attached somewhere; volumes attached elsewhere are kept
   */
  readonly hostIdentity?: HostIdentitySource;
}

/**
 * One resource {@link cleanupOrphans} looked at.
 * @public
 */
export interface OrphanResource {
  /** What it is. */
  readonly kind: 'volume' | 'snapshot' | 'image';
  /** Its id. */
  readonly id: string;
  /** Region. */
  readonly region: string;
  /** The build that created it. */
  readonly buildId: string;
}

/**
 * What {@link cleanupOrphans} did.
 * @public
 */
export interface OrphanReport {
  /** The host recovery, when it ran. */
  readonly host: RecoveryReport | undefined;
  /** True when this was a dry run: `removed` lists what would be removed, and nothing was. */
  readonly dryRun: boolean;
  /** Removed (or, with dryRun, would be removed). */
  readonly removed: readonly OrphanResource[];
  /** Left alone, with the reason (a running build, attached to another instance, in use). */
  readonly kept: readonly (OrphanResource & {
    /** Why it was left alone. */
    readonly reason: string;
  })[];
  /** Could not be removed. */
  readonly failed: readonly (OrphanResource & {
    /** What went wrong removing it. */
    readonly error: Error;
  })[];
}

const DEFAULT_AGE_MS = 6 * 3_600_000;

/** This host, if it can be known: volumes attached elsewhere are kept either way. */
function identityOf(options: CleanupOrphansOptions): Promise<HostIdentity | undefined> {
  return resolveHostIdentity(options.hostIdentity, defined({ signal: options.signal })).catch(() => undefined);
}

/**
 * Finds and removes what builds that were killed mid-way left behind: first on this host (leftover
 * mounts, loop devices and device reservations, through {@link recoverHost}), then in AWS: volumes,
 * snapshots and images tagged `ami-chroot:build-id` whose build is not running.
 *
 * @remarks
 * Images go first (a snapshot cannot be deleted while an image uses it), then snapshots, then
 * volumes; a volume still attached to this host is detached first, one attached to another
 * instance is kept. Builds running on this host are known from their live-build records and are
 * never touched; elsewhere only `olderThan` protects a running build.
 *
 * @example
 * ```ts
 * import { cleanupOrphans } from 'ami-chroot';
 *
 * // First list what would go, then remove it.
 * const preview = await cleanupOrphans({ regions: ['us-east-1', 'eu-west-1'], olderThan: 2 * 3_600_000, dryRun: true });
 * console.log(preview.removed.map((r) => `${r.region} ${r.kind} ${r.id}`)); // [ 'us-east-1 volume vol-0…', … ]
 * const report = await cleanupOrphans({ regions: ['us-east-1', 'eu-west-1'], olderThan: 2 * 3_600_000 });
 * for (const { kind, id, reason } of report.kept) console.log(`kept ${kind} ${id}: ${reason}`);
 * for (const { kind, id, error } of report.failed) console.error(`could not remove ${kind} ${id}: ${error.message}`);
 * ```
 * @public
 */
export async function cleanupOrphans(options: CleanupOrphansOptions = {}): Promise<OrphanReport> {
  const ctx = toCtx(options);
  const stateDir = options.stateDir ?? DEFAULT_STATE_DIR;
  const host =
    options.recoverHost === false || options.dryRun
      ? undefined
      : await recoverHost({ stateDir, lockDir: options.lockDir ?? DEFAULT_LOCK_DIR }, options);
  const live = await liveBuildIds(stateDir);

  const olderThan =
    options.olderThan instanceof Date
      ? options.olderThan
      : new Date(Date.now() - (options.olderThan ?? DEFAULT_AGE_MS));
  let identity: HostIdentity | undefined;
  const explicitRegion = options.access?.region ?? options.regions?.[0];
  if (!explicitRegion && !process.env['AWS_REGION'] && !process.env['AWS_DEFAULT_REGION'])
    identity = await identityOf(options);
  const clients = createAwsClients(
    options.access ?? {},
    defined({
      region: explicitRegion ?? identity?.region,
      ec2: options.ec2,
      sts: options.sts,
      logger: options.logger,
    }),
  );
  const regions = options.regions ?? [clients.region];

  const removed: OrphanResource[] = [];
  const kept: (OrphanResource & { reason: string })[] = [];
  const failed: (OrphanResource & { error: Error })[] = [];
  try {
    await Promise.all(
      regions.map(async (region) => {
        const ec2 = clients.ec2(region);
        const found = await findTaggedResources(defined({ olderThan, buildId: options.buildId, region }), {
          ec2: clients.ec2,
          ...defined({ signal: options.signal, logger: options.logger, onProgress: options.onProgress }),
        });
        const order = { image: 0, snapshot: 1, volume: 2 } as const;
        for (const r of found.sort((a, b) => order[a.kind] - order[b.kind])) {
          const ref: OrphanResource = { kind: r.kind, id: r.id, region, buildId: r.buildId };
          if (live.has(r.buildId)) {
            kept.push({ ...ref, reason: `build ${r.buildId} is still running on this host` });
            continue;
          }
          if (r.kind === 'volume' && r.attachedTo.length > 0) {
            identity ??= await identityOf(options);
            const elsewhere = r.attachedTo.filter((i) => i !== identity?.instanceId);
            if (elsewhere.length > 0) {
              kept.push({
                ...ref,
                reason: `attached to ${elsewhere.join(', ')}, not this host; detach it there or run cleanupOrphans on that host`,
              });
              continue;
            }
          }
          if (options.dryRun) {
            removed.push(ref);
            continue;
          }
          try {
            if (r.kind === 'image') await removeImage(ec2, r.id, [], ctx, region, { unprotect: true });
            else if (r.kind === 'snapshot') await deleteSnapshot(ec2, r.id, ctx, region);
            else await detachAndDeleteVolume(ec2, r.id, r.attachedTo, ctx, region);
            removed.push(ref);
            ctx.logger.info(`Removed orphaned ${r.kind} ${r.id} (build ${r.buildId}) in ${region}`);
          } catch (error) {
            if (r.kind === 'snapshot' && hasAwsCode(error, 'InvalidSnapshot.InUse')) {
              kept.push({ ...ref, reason: 'in use by an image that is not an orphan' });
              continue;
            }
            const e = toError(error);
            ctx.logger.error(`Could not remove orphaned ${r.kind} ${r.id} in ${region}: ${e.message}`);
            failed.push({ ...ref, error: e });
          }
        }
      }),
    );
  } finally {
    clients.destroy();
  }
  return { dryRun: options.dryRun === true, host, removed, kept, failed };
}
