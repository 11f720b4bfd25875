/**
 * The work volume: create it from the source's root snapshot (or blank), attach it to the build
 * host, and undo both. Handles are disposable and their undo is idempotent, so an early cleanup
 * (before the snapshot) and the final one can both call it.
 *
 * @packageDocumentation
 */
import pRetry from 'p-retry';
import { ec2Sdk } from './sdk.js';
import type { CreateVolumeRequest, EC2Client, Volume, VolumeType } from '@aws-sdk/client-ec2';
import { ConfigError, DeviceError } from '../errors.js';
import { cleanupSignal, throwIfAborted } from '../internal/abort.js';
import { toCtx } from '../internal/ctx.js';
import type { Ctx } from '../internal/ctx.js';
import { idempotent } from '../internal/once.js';
import { NOT_FOUND_CODES, awsErrorCode, hasAwsCode } from './aws-errors.js';
import { send } from './call.js';
import { ec2For, policyFor, pollBits, tagList, tagSpecs, undoAfterFailure } from './common.js';
import type { AwsOperationOptions } from './common.js';
import type { VolumeType as VolumeTypeSetting } from '../config/types.js';
import { pollUntil, realClock } from './poll.js';
import { volumeReads } from './shared-reads.js';
import type { PollClock, PollVerdict } from './poll.js';
import { messageOf } from '../internal/to-error.js';

/**
 * The source root volume a work volume copies (a {@link SourceImage} fits).
 * @public
 */
export interface RootVolumeSource {
  /** Snapshot to create the volume from. */
  readonly rootSnapshotId: string;
  /** Its size in GiB. */
  readonly rootVolumeSize: number;
  /** Its volume type. */
  readonly rootVolumeType: string;
  /** Its IOPS, if any. */
  readonly rootIops?: number | undefined;
  /** Its throughput, if any. */
  readonly rootThroughput?: number | undefined;
  /** Whether the snapshot is encrypted. */
  readonly rootEncrypted?: boolean | undefined;
  /** Its KMS key, if any. */
  readonly rootKmsKeyId?: string | undefined;
}

/**
 * Input of {@link createVolume}.
 * @public
 */
export interface CreateVolumeInput {
  /** The build host's availability zone. */
  readonly availabilityZone: string;
  /** The source root volume; omit to create a blank volume (fromScratch). */
  readonly source?: RootVolumeSource;
  /** Size in GiB (`rootVolumeSize`): grows the source's size, required without a source. */
  readonly size?: number;
  /** Volume type (`rootVolumeType`). @defaultValue the source's type; `gp2` without a source */
  readonly volumeType?: VolumeTypeSetting;
  /** IOPS (io1/io2/gp3). @defaultValue the source's, when the type is unchanged */
  readonly iops?: number;
  /** Throughput in MiB/s (gp3). @defaultValue the source's, when the type is unchanged */
  readonly throughput?: number;
  /** Rate in MiB/s at which the volume fetches its snapshot's blocks (`rootVolumeInitializationRate`); needs a source. */
  readonly initializationRate?: number;
  /** Encrypt the volume (`rootVolumeEncryptBoot`). @defaultValue as the source snapshot */
  readonly encrypted?: boolean;
  /** KMS key for the volume (`rootVolumeKmsKeyId`). */
  readonly kmsKeyId?: string;
  /** Tags, already rendered (`rootVolumeTags`). */
  readonly tags?: Readonly<Record<string, string>>;
  /** Build id; adds the `ami-chroot:build-id` and `ami-chroot:created-by` tags. */
  readonly buildId?: string;
  /** Region. @defaultValue the EC2 client's */
  readonly region?: string;
}

/**
 * A work volume. `delete()` waits until it is detached, then deletes it; it is idempotent.
 * @public
 */
export interface WorkVolume extends AsyncDisposable {
  /** Volume id. */
  readonly volumeId: string;
  /** Region. */
  readonly region: string;
  /** Availability zone. */
  readonly availabilityZone: string;
  /** Waits until the volume is detached, then deletes it. Never uses the creating call's signal. */
  delete(options?: { readonly signal?: AbortSignal }): Promise<void>;
}

/** Volume types that need an IOPS value. */
const NEEDS_IOPS = new Set(['io1', 'io2']);

/**
 * The CreateVolume request that the source and the options decide.
 * @internal
 */
export function createVolumeRequest(input: CreateVolumeInput): CreateVolumeRequest {
  const { source } = input;
  const issues: { path: string; value?: unknown; message: string }[] = [];
  let size: number | undefined;
  let volumeType: string;
  let iops: number | undefined;
  let throughput: number | undefined;
  if (source) {
    // Packer only ever grows the root volume; a smaller size would not fit the snapshot.
    size = input.size !== undefined && input.size > source.rootVolumeSize ? input.size : source.rootVolumeSize;
    volumeType = input.volumeType ?? source.rootVolumeType;
    const sameType = volumeType === source.rootVolumeType;
    iops = input.iops ?? (sameType ? source.rootIops : undefined);
    throughput = input.throughput ?? (sameType ? source.rootThroughput : undefined);
    if (input.encrypted === false && source.rootEncrypted) {
      issues.push({
        path: 'encrypted',
        value: false,
        message: 'the source snapshot is encrypted; a volume made from it cannot be unencrypted',
      });
    }
  } else {
    if (input.size === undefined)
      issues.push({ path: 'size', message: 'a blank (fromScratch) volume needs a size in GiB' });
    size = input.size;
    volumeType = input.volumeType ?? 'gp2';
    iops = input.iops;
    throughput = input.throughput;
  }
  if (input.initializationRate !== undefined && !source) {
    issues.push({
      path: 'initializationRate',
      value: input.initializationRate,
      message: 'a blank (fromScratch) volume has no snapshot to initialize from; remove it',
    });
  }
  if (NEEDS_IOPS.has(volumeType) && iops === undefined) {
    issues.push({
      path: 'iops',
      message: `volume type ${volumeType} needs iops (the source volume's type is ${source?.rootVolumeType ?? 'none'})`,
    });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  const encrypted = input.encrypted ?? (input.kmsKeyId !== undefined ? true : source?.rootEncrypted);
  const kmsKeyId = input.kmsKeyId ?? (encrypted && input.encrypted === undefined ? source?.rootKmsKeyId : undefined);
  const tags = tagList(input.tags, input.buildId);
  const specs = tagSpecs({ type: 'volume', tags });
  return {
    AvailabilityZone: input.availabilityZone,
    ...(source ? { SnapshotId: source.rootSnapshotId } : {}),
    ...(size === undefined ? {} : { Size: size }),
    VolumeType: volumeType as VolumeType,
    ...(iops === undefined ? {} : { Iops: iops }),
    ...(throughput === undefined ? {} : { Throughput: throughput }),
    ...(source && input.initializationRate !== undefined ? { VolumeInitializationRate: input.initializationRate } : {}),
    ...(encrypted ? { Encrypted: true } : {}),
    ...(kmsKeyId === undefined ? {} : { KmsKeyId: kmsKeyId }),
    ...(specs ? { TagSpecifications: specs } : {}),
  };
}

interface WaitContext {
  readonly ec2: EC2Client;
  readonly ctx: Ctx;
  readonly region: string;
  readonly options: Pick<AwsOperationOptions, 'polling' | 'clock'>;
}

/**
 * The detach a wait follows: whether EC2 accepted our DetachVolume, and how to send it again. EC2
 * refuses to detach an attachment it does not show yet (a late attachment): the wait then waits
 * for it to appear and detaches it again.
 */
interface DetachRequest {
  accepted: boolean;
  /**
   * When a reading first showed the attachment (the wait's clock), if one did: a refusal then means
   * it is already on its way out, and the attachment existed from then on.
   */
  readonly seenAt: number | undefined;
  readonly resend: (signal: AbortSignal | undefined) => Promise<boolean>;
}

/** How long an attachment EC2 refused to detach may stay unseen before its absence is believed. */
const LATE_ATTACHMENT_GRACE_MS = 120_000;

/**
 * How much later than the last moment an attachment was known to exist a reading must be taken for
 * its absence (or, in a delete, its being stuck) to be believed. A stale read shows the volume as
 * a replica saw it a moment ago; a reading taken this long after the attachment was known shows a
 * moment when it already existed, so "no attachment" then means detached. EC2 publishes no bound:
 * its stale reads are replica lag (hundreds of ms; the test EC2's realistic preset uses 150 ms),
 * while the seconds-long lag is a new id's visibility, which the NotFound grace covers. A stale
 * read that still slips through is caught downstream: DeleteVolume's VolumeInUse is retried and a
 * taken device name is refused by AttachVolume and skipped. The window counts from the first
 * reading that showed the attachment, so a build, which mounts and provisions in between, pays
 * nothing for it; only a detach right after an attach waits for it.
 * @internal
 */
export const DETACH_CONFIRM_MS = 1_000;

/** What a detach wait has seen so far (times on its clock). */
interface DetachWatch {
  readonly instanceId: string | undefined;
  readonly detachingOnly: boolean;
  readonly detach: DetachRequest | undefined;
  readonly started: number;
  /** When the latest reading was taken. */
  readAt: number;
  /** When the latest reading that contradicts "detached" (or our accepted detach) was taken. */
  since: number;
  seenLive: boolean;
  resend: boolean;
  stuckSince: number | undefined;
}

/** One reading of a detach wait: done only when a later reading confirms what an earlier one showed. */
function judgeDetach(watch: DetachWatch, volume: Volume | undefined): PollVerdict<undefined> {
  if (volume?.State === 'deleted' || volume?.State === 'deleting')
    return { done: true, value: undefined, state: volume.State };
  const { detach, instanceId, readAt } = watch;
  const live = (volume?.Attachments ?? []).filter(
    (a) => (instanceId === undefined || a.InstanceId === instanceId) && a.State !== 'detached',
  );
  if (live.length === 0) {
    watch.stuckSince = undefined;
    // EC2 refused our detach because it did not show the attachment yet: wait for it to appear.
    const awaitingLate =
      detach !== undefined && !detach.accepted && !watch.seenLive && readAt - watch.started < LATE_ATTACHMENT_GRACE_MS;
    if (awaitingLate) return { done: false, state: 'attachment-not-visible-yet' };
    // Without a detach of ours the wait precedes DeleteVolume, whose VolumeInUse retry confirms.
    const confirmIn = detach === undefined ? 0 : watch.since + DETACH_CONFIRM_MS - readAt;
    if (confirmIn <= 0) return { done: true, value: undefined, state: volume ? 'detached' : 'gone' };
    return { done: false, state: 'detached-unconfirmed', readAgainInMs: confirmIn };
  }
  watch.seenLive = true;
  watch.since = readAt;
  if (detach && !detach.accepted && live.some((a) => a.State === 'attaching' || a.State === 'attached'))
    watch.resend = true;
  const stuck = live.find((a) => a.State !== 'detaching');
  if (!watch.detachingOnly || !stuck) {
    watch.stuckSince = undefined;
    return { done: false, state: live.map((a) => a.State ?? 'unknown').join(',') };
  }
  watch.stuckSince ??= readAt;
  const stuckIn = watch.stuckSince + DETACH_CONFIRM_MS - readAt;
  if (stuckIn > 0) return { done: false, state: stuck.State ?? 'attached', readAgainInMs: stuckIn };
  return {
    failed: true,
    state: stuck.State ?? 'attached',
    message: `It is still attached to ${stuck.InstanceId ?? '?'} as ${stuck.Device ?? '?'}; detach it first (the attachment's undo runs before the volume's).`,
  };
}

/**
 * Waits until the volume has no attachment to `instanceId` (any instance when omitted); a deleted
 * volume counts. With `detachingOnly`, an attachment that is not on its way out fails the wait
 * (deleting a volume that nobody detaches would otherwise hang until the timeout).
 *
 * Reads are eventually consistent: one can show the volume as it was a moment ago, before the
 * attachment existed or before our detach. So after our own detach an absence is believed only
 * from a reading taken {@link DETACH_CONFIRM_MS} after the attachment was last known to exist (its
 * first sighting, our accepted DetachVolume, or a later reading that showed it), and a stuck
 * attachment only when a reading that long after the first one still shows it.
 */
async function waitDetached(
  w: WaitContext,
  volumeId: string,
  instanceId: string | undefined,
  signal: AbortSignal | undefined,
  detachingOnly: boolean,
  detach?: DetachRequest,
): Promise<void> {
  const ctx: Ctx = { ...w.ctx, signal };
  const clock = w.options.clock ?? realClock;
  const policy = policyFor('volumeDetached', w.options, w.ctx);
  const started = clock.now();
  const watch: DetachWatch = {
    instanceId,
    detachingOnly,
    detach,
    started,
    readAt: started,
    // Our accepted DetachVolume shows EC2 had the attachment; its first sighting is earlier still.
    since: detach?.seenAt ?? started,
    seenLive: detach?.seenAt !== undefined,
    resend: false,
    stuckSince: undefined,
  };
  const readVolume = volumeReads({ ec2: w.ec2, region: w.region, ctx, phase: 'detach', clock: w.options.clock })(
    volumeId,
  );
  await pollUntil({
    read: async (delayMs, slackMs, s) => {
      if (watch.resend && detach) {
        watch.resend = false;
        detach.accepted = await detach.resend(s);
        if (detach.accepted) watch.since = clock.now();
      }
      try {
        return await readVolume(delayMs, slackMs, s);
      } catch (error) {
        if (hasAwsCode(error, NOT_FOUND_CODES.volume)) return undefined;
        throw error;
      } finally {
        watch.readAt = clock.now();
      }
    },
    evaluate: (volume) => judgeDetach(watch, volume),
    waitingFor: `volume ${volumeId} to be detached${instanceId ? ` from ${instanceId}` : ''}`,
    id: volumeId,
    kind: 'volumeDetached',
    policy,
    ctx,
    region: w.region,
    phase: 'detach',
    resources: { volumeId, region: w.region, ...(instanceId ? { instanceId } : {}) },
    ...pollBits(w.options),
  });
}

/** How long DeleteVolume keeps retrying VolumeInUse after the detach was seen done. */
const VOLUME_IN_USE_RETRY_MS = 120_000;

async function deleteDetachedVolume(w: WaitContext, volumeId: string, signal: AbortSignal | undefined): Promise<void> {
  const { DeleteVolumeCommand } = await ec2Sdk();
  try {
    // A detach can read as done before EC2 has finished it (a late or stale read): DeleteVolume
    // then answers VolumeInUse for a moment; retry that, within a bounded time.
    await pRetry(
      () =>
        send(
          w.ec2,
          new DeleteVolumeCommand({ VolumeId: volumeId }),
          { ...w.ctx, signal },
          { phase: 'cleanup', region: w.region, resources: { volumeId }, signal },
        ),
      {
        retries: 30,
        minTimeout: 500,
        maxTimeout: 5_000,
        randomize: true,
        maxRetryTime: VOLUME_IN_USE_RETRY_MS,
        ...(signal ? { signal } : {}),
        shouldRetry: ({ error }) => hasAwsCode(error, 'VolumeInUse', 'IncorrectState'),
        onFailedAttempt: ({ error, attemptNumber }) =>
          w.ctx.logger.debug(`DeleteVolume ${volumeId} attempt ${attemptNumber}: ${error.message.split('\n')[0]}`),
      },
    );
  } catch (error) {
    if (!hasAwsCode(error, NOT_FOUND_CODES.volume)) throw error;
  }
  w.ctx.logger.info(`Deleted volume ${volumeId}`);
  w.ctx.emit({ type: 'resource', action: 'removed', kind: 'volume', id: volumeId, region: w.region });
}

/**
 * Detaches a volume from the given instances (never forced; an attachment already gone is fine),
 * waits until it is detached, and deletes it. For the orphan sweep, which finds volumes a killed
 * build left attached to this host.
 * @internal
 */
export async function detachAndDeleteVolume(
  ec2: EC2Client,
  volumeId: string,
  attachedTo: readonly string[],
  ctx: Ctx,
  region: string,
  options: Pick<AwsOperationOptions, 'polling' | 'clock'> = {},
): Promise<void> {
  const { DetachVolumeCommand } = await ec2Sdk();
  const w: WaitContext = { ec2, ctx, region, options };
  for (const instanceId of attachedTo) {
    try {
      await send(ec2, new DetachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId }), ctx, {
        phase: 'detach',
        region,
        resources: { volumeId, instanceId },
      });
    } catch (error) {
      if (!hasAwsCode(error, 'IncorrectState', 'InvalidAttachment.NotFound', NOT_FOUND_CODES.volume)) throw error;
    }
  }
  await waitDetached(w, volumeId, undefined, ctx.signal, false);
  await deleteDetachedVolume(w, volumeId, ctx.signal);
}

/**
 * Creates the work volume and waits until it is available.
 *
 * @remarks
 * From the source's root snapshot in the host's availability zone, with the size (only ever
 * grown), type, IOPS, throughput, encryption and KMS key the input and the source decide; tagged
 * on create. If the wait fails, the volume is deleted (unless `keepOnError`) before the error is
 * thrown, so a failed call leaves nothing behind.
 *
 * @example
 * ```ts
 * import { createAwsClients, createVolume, getHostIdentity, resolveSourceAmi } from 'ami-chroot/aws';
 *
 * const host = await getHostIdentity();
 * const { ec2 } = createAwsClients({ region: host.region });
 * const source = await resolveSourceAmi({ sourceAmi: 'ami-0123456789abcdef0' }, { ec2 });
 * // The source's root volume, grown to 20 GiB as gp3, in this host's zone; deleted when the scope ends.
 * await using volume = await createVolume({ availabilityZone: host.availabilityZone, source, size: 20, volumeType: 'gp3' }, { ec2 });
 * console.log(volume.volumeId); // vol-0…, available
 * ```
 * @throws {@link ConfigError} impossible size/type/encryption combinations
 * @throws {@link WaitFailedError} the volume went to `error`
 * @throws {@link WaitTimeoutError} it never became available
 * @throws {@link AwsError} an EC2 call failed
 * @public
 */
export async function createVolume(input: CreateVolumeInput, options: AwsOperationOptions): Promise<WorkVolume> {
  const { CreateVolumeCommand } = await ec2Sdk();
  const ctx = toCtx(options);
  const request = createVolumeRequest(input);
  const { client: ec2, region } = await ec2For(options.ec2, input.region);
  throwIfAborted(ctx.signal);
  const clock: PollClock | undefined = options.clock;
  ctx.logger.info(
    `Creating a ${request.Size ?? '?'} GiB ${request.VolumeType ?? ''} volume in ${input.availabilityZone}${request.SnapshotId ? ` from ${request.SnapshotId}` : ''}`,
  );
  const created = await send(ec2, new CreateVolumeCommand(request), ctx, { phase: 'volume', region });
  const volumeId = created.VolumeId;
  if (!volumeId) throw new Error('CreateVolume returned no VolumeId');
  const createdAt = (clock ?? realClock).now();
  ctx.emit({ type: 'resource', action: 'created', kind: 'volume', id: volumeId, region });
  const w: WaitContext = { ec2, ctx, region, options };

  const remove = idempotent(async (signal: AbortSignal) => {
    await waitDetached(w, volumeId, undefined, signal, true);
    await deleteDetachedVolume(w, volumeId, signal);
  });
  const handle: WorkVolume = {
    volumeId,
    region,
    availabilityZone: input.availabilityZone,
    delete: (opts = {}) => remove(opts.signal ?? cleanupSignal(options.cleanupTimeoutMs ?? 600_000)),
    [Symbol.asyncDispose]: () => handle.delete(),
  };

  try {
    await pollUntil({
      read: volumeReads({ ec2, region, ctx, phase: 'volume', clock })(volumeId),
      evaluate: (volume) => {
        const state = volume?.State ?? 'not-visible-yet';
        if (state === 'available') return { done: true, value: undefined, state };
        if (state === 'error' || state === 'deleted' || state === 'deleting') {
          return {
            failed: true,
            state,
            message:
              'EC2 could not create the volume; check the snapshot, the KMS key permissions and the volume quotas.',
          };
        }
        return { done: false, state };
      },
      waitingFor: `volume ${volumeId} to be available`,
      id: volumeId,
      kind: 'volumeAvailable',
      policy: policyFor('volumeAvailable', options, ctx),
      ctx,
      region,
      phase: 'volume',
      resources: { volumeId, region },
      createdAt,
      ...pollBits(options),
    });
  } catch (error) {
    throw await undoAfterFailure(
      error,
      [{ name: `delete volume ${volumeId}`, run: (signal) => handle.delete({ signal }) }],
      ctx,
      options,
    );
  }
  ctx.logger.info(`Volume ${volumeId} is available`);
  return handle;
}

/** The lease an allocator hands out (the host's `allocateDevice` lease fits). */
interface Lease {
  readonly attachmentName: string;
  release(): Promise<void>;
}

/**
 * Picks a free attachment name, avoiding `exclude` (names EC2 just refused), and holds it until
 * `release()`: the host side's `allocateDevice` fits. A `/dev/xvdf` spelling is sent to EC2 as
 * `/dev/sdf`; `release()` is called once the attachment is `attached`, or on failure.
 * @public
 */
export type DeviceAllocator = (exclude: readonly string[]) => Promise<{
  /** The attachment name picked, e.g. `/dev/sdf`. */
  readonly attachmentName: string;
  /** Gives the name up (for other builds); called once, when attached or on failure. */
  release(): Promise<void>;
}>;

/**
 * Finds the host block device of an attached volume (NVMe or Xen).
 * @public
 */
export type DeviceResolver = (args: {
  /** The attached volume. */
  readonly volumeId: string;
  /** Its attachment name, e.g. `/dev/sdf`. */
  readonly attachmentName: string;
  /** Stops the search. */
  readonly signal: AbortSignal | undefined;
}) => Promise<string>;

/**
 * Input of {@link attachVolume}.
 * @public
 */
export interface AttachVolumeInput {
  /** The volume. */
  readonly volumeId: string;
  /** The build host. */
  readonly instanceId: string;
  /** A fixed attachment name (e.g. `/dev/sdf`), or an allocator (retried with the next name when EC2 says the name is in use). */
  readonly attachmentName: string | DeviceAllocator;
  /** Resolves the host block device. @defaultValue the attachment name itself */
  readonly resolveDevice?: DeviceResolver;
  /** How many names to try when EC2 reports "already in use". @defaultValue 5 */
  readonly maxDeviceAttempts?: number;
  /** Region. @defaultValue the EC2 client's */
  readonly region?: string;
}

/**
 * An attached volume. `detach()` detaches and waits until EC2 reports it detached; idempotent.
 * @public
 */
export interface AttachedVolume extends AsyncDisposable {
  /** Volume id. */
  readonly volumeId: string;
  /** The instance it is attached to. */
  readonly instanceId: string;
  /** Attachment name as EC2 knows it, e.g. `/dev/sdf`. */
  readonly attachmentName: string;
  /** Host block device, e.g. `/dev/nvme1n1` or `/dev/xvdf`. */
  readonly hostDevice: string;
  /** Detaches (never forced) and waits until detached. Never uses the attaching call's signal. */
  detach(options?: { readonly signal?: AbortSignal }): Promise<void>;
}

/**
 * The attachment name EC2 expects: the host may call a slot `/dev/xvdf`, EC2 wants `/dev/sdf`.
 * @internal
 */
export function toAttachName(device: string): string {
  return device.replace('/xvd', '/sd');
}

function isDeviceInUse(error: unknown): boolean {
  const message = error instanceof Error ? error.message : '';
  return hasAwsCode(error, 'InvalidParameterValue', 'InvalidDevice.InUse') && /already in use/i.test(message);
}

/**
 * Attaches a volume to the build host at the caller's attachment name, waits until the attachment is
 * `attached`, then resolves the host block device.
 *
 * @remarks
 * The detach undo exists as soon as AttachVolume returns, before the wait, as in Packer. With an
 * allocator, "attachment point already in use" is retried with the next free name; the lease is
 * released the moment the attachment is confirmed, and on any failure. If the wait or the device
 * resolution fails, the volume is detached (unless `keepOnError`) before the error is thrown.
 *
 * @example
 * ```ts
 * import { attachVolume, createAwsClients } from 'ami-chroot/aws';
 * import type { HostIdentity, WorkVolume } from 'ami-chroot/aws';
 * import { allocateDevice, resolveBlockDevice } from 'ami-chroot/host';
 *
 * declare const host: HostIdentity;
 * declare const volume: WorkVolume;
 *
 * const { ec2 } = createAwsClients({ region: host.region });
 * await using attached = await attachVolume(
 *   {
 *     volumeId: volume.volumeId,
 *     instanceId: host.instanceId,
 *     attachmentName: (exclude) => allocateDevice({ exclude }), // a free /dev/sd[f-p], reserved until attached
 *     resolveDevice: ({ volumeId, attachmentName }) => resolveBlockDevice({ volumeId, attachmentName }), // NVMe or Xen
 *   },
 *   { ec2 },
 * );
 * console.log(attached.attachmentName, attached.hostDevice); // /dev/sdf /dev/nvme1n1 (detached when the scope ends)
 * ```
 * @throws {@link DeviceError} every name tried was in use
 * @throws {@link WaitTimeoutError} the attachment never completed
 * @throws {@link AwsError} an EC2 call failed
 * @public
 */
export async function attachVolume(input: AttachVolumeInput, options: AwsOperationOptions): Promise<AttachedVolume> {
  const { AttachVolumeCommand } = await ec2Sdk();
  const ctx = toCtx(options);
  const { client: ec2, region } = await ec2For(options.ec2, input.region);
  const { volumeId, instanceId } = input;
  const maxAttempts = input.maxDeviceAttempts ?? 5;
  const exclude: string[] = [];
  const w: WaitContext = { ec2, ctx, region, options };
  let lease: Lease | undefined;
  let device = '';

  const releaseLease = async (): Promise<void> => {
    const l = lease;
    lease = undefined;
    if (!l) return;
    try {
      await l.release();
    } catch (error) {
      ctx.logger.warn(`Releasing the device lease for ${l.attachmentName} failed: ${messageOf(error)}`);
    }
  };

  // 1. Attach, moving to the next name when EC2 says a name is taken.
  try {
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(ctx.signal);
      lease =
        typeof input.attachmentName === 'string'
          ? { attachmentName: input.attachmentName, release: async () => {} }
          : await input.attachmentName([...exclude]);
      device = toAttachName(lease.attachmentName);
      try {
        ctx.logger.info(`Attaching ${volumeId} to ${instanceId} as ${device}`);
        await send(ec2, new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: device }), ctx, {
          phase: 'attach',
          region,
          resources: { volumeId, instanceId, attachmentName: device },
        });
        break;
      } catch (error) {
        if (!isDeviceInUse(error) || typeof input.attachmentName === 'string' || attempt >= maxAttempts) {
          if (isDeviceInUse(error)) {
            throw new DeviceError(
              typeof input.attachmentName === 'string'
                ? `EC2 says attachment point ${device} of ${instanceId} is already in use: pick another device, or let the allocator choose.`
                : `EC2 refused ${attempt} attachment points of ${instanceId} as already in use (${[...exclude, device].join(', ')}): detach stale volumes from the instance, or wait for earlier detaches to finish.`,
              { cause: error, phase: 'attach', resources: { volumeId, instanceId, attachmentName: device, region } },
            );
          }
          throw error;
        }
        ctx.logger.warn(`Attachment point ${device} is already in use on ${instanceId}; trying another one.`);
        exclude.push(lease.attachmentName);
        await releaseLease();
      }
    }
  } catch (error) {
    await releaseLease();
    throw error;
  }

  // 2. The undo exists from here on, before the wait.
  const createdAt = (options.clock ?? realClock).now();
  const attachName = device;
  let attachmentSeenAt: number | undefined;
  /** Sends DetachVolume; false when EC2 refused it as not attached (yet): the wait settles that. */
  const sendDetach = async (signal: AbortSignal | undefined): Promise<boolean> => {
    const { DetachVolumeCommand } = await ec2Sdk();
    try {
      // InstanceId too: it detaches only from this host, never from another instance.
      await send(
        ec2,
        new DetachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: attachName }),
        { ...ctx, signal },
        { phase: 'detach', region, resources: { volumeId, instanceId, attachmentName: attachName }, signal },
      );
      return true;
    } catch (error) {
      // Already detaching/detached, gone, or attached so recently that EC2 does not show it yet.
      if (!hasAwsCode(error, 'IncorrectState', 'InvalidAttachment.NotFound', NOT_FOUND_CODES.volume)) throw error;
      ctx.logger.debug(`DetachVolume ${volumeId}: ${awsErrorCode(error)}; waiting for the detached state anyway`);
      return false;
    }
  };
  const detach = idempotent(async (signal: AbortSignal) => {
    const accepted = await sendDetach(signal);
    await waitDetached(w, volumeId, instanceId, signal, false, {
      accepted,
      seenAt: attachmentSeenAt,
      resend: sendDetach,
    });
    ctx.logger.info(`Detached ${volumeId} from ${instanceId}`);
    ctx.emit({ type: 'resource', action: 'removed', kind: 'attachment', id: `${volumeId}:${attachName}`, region });
  });
  ctx.emit({ type: 'resource', action: 'created', kind: 'attachment', id: `${volumeId}:${attachName}`, region });

  // 3. Wait for `attached`, release the name, resolve the host device.
  let hostDevice: string;
  try {
    await pollUntil({
      read: volumeReads({ ec2, region, ctx, phase: 'attach', clock: options.clock })(volumeId),
      evaluate: (volume) => {
        if (!volume) return { done: false, state: 'not-visible-yet' };
        if (volume.State === 'error' || volume.State === 'deleted' || volume.State === 'deleting') {
          return { failed: true, state: volume.State, message: 'The volume cannot be attached.' };
        }
        const mine = (volume.Attachments ?? []).find((a) => a.InstanceId === instanceId);
        // Taken after the reading, so the attachment surely existed by then.
        if (mine) attachmentSeenAt ??= (options.clock ?? realClock).now();
        const state = mine?.State ?? 'no-attachment-yet';
        if (state === 'attached') return { done: true, value: undefined, state };
        return { done: false, state };
      },
      waitingFor: `volume ${volumeId} to be attached to ${instanceId} as ${device}`,
      id: volumeId,
      kind: 'volumeAttached',
      policy: policyFor('volumeAttached', options, ctx),
      ctx,
      region,
      phase: 'attach',
      resources: { volumeId, instanceId, attachmentName: device, region },
      createdAt,
      ...pollBits(options),
    });
    await releaseLease();
    const resolve = input.resolveDevice ?? ((args: { attachmentName: string }) => Promise.resolve(args.attachmentName));
    hostDevice = await resolve({ volumeId, attachmentName: device, signal: ctx.signal });
  } catch (error) {
    await releaseLease();
    throw await undoAfterFailure(
      error,
      [{ name: `detach volume ${volumeId} from ${instanceId}`, run: (signal) => detach(signal) }],
      ctx,
      options,
    );
  }
  ctx.logger.info(`Volume ${volumeId} is attached to ${instanceId} as ${device} (host device ${hostDevice})`);

  const handle: AttachedVolume = {
    volumeId,
    instanceId,
    attachmentName: device,
    hostDevice,
    detach: (opts = {}) => detach(opts.signal ?? cleanupSignal(options.cleanupTimeoutMs ?? 600_000)),
    [Symbol.asyncDispose]: () => handle.detach(),
  };
  return handle;
}
