/**
 * Realistic EC2 state transitions on top of moto, for benchmarks that run the real library.
 *
 * moto makes every volume available, every attachment attached, every snapshot completed and
 * every image available at once. This middleware, added to a real `EC2Client`, makes each
 * resource the client creates go through its transitional state for a set time, measured from
 * the call that started it: CreateVolume → `creating`; AttachVolume → `attaching`; DetachVolume →
 * `detaching` (moto drops the attachment at once, so it is put back until then); CreateSnapshot →
 * `pending` with a progress that moves linearly; RegisterImage and CopyImage → `pending`. The
 * library's code path is unchanged: it sends its requests to moto and reads these answers.
 *
 * It also records every attachment (name, volume, from AttachVolume until EC2 shows it
 * detached), for the device-collision check of the parallel benchmark.
 *
 * Attachment names. EC2 refuses AttachVolume with a name the instance still uses (attached, or
 * detaching) — "Attachment point /dev/sdh is already in use" — and lists such names in
 * DescribeInstances; moto accepts the name and overwrites the instance's mapping. With
 * `deviceRegistry` (a directory shared by every process of a benchmark), the middleware keeps
 * EC2's book of names per instance in files (claimed with O_EXCL, so two processes cannot take
 * one name at once), refuses a name in use the way EC2 does, and adds the names in use to
 * DescribeInstances. Each refusal is recorded: it means the allocator picked a taken name.
 */
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EC2ServiceException } from '@aws-sdk/client-ec2';
import type { EC2Client, Image, Instance, Reservation, Snapshot, Volume, VolumeAttachment } from '@aws-sdk/client-ec2';

/**
 * The transitions a benchmark injects, in milliseconds of real (already scaled) time.
 * @internal
 */
export interface TransitionTimes {
  readonly volumeMs: number;
  readonly attachMs: number;
  readonly detachMs: number;
  readonly snapshotMs: number;
  readonly imageMs: number;
  readonly copyMs: number;
}

/**
 * One attachment as EC2 would see it: held from the AttachVolume call until the volume shows
 * detached. Times are `Date.now()` values, comparable between processes.
 * @internal
 */
export interface AttachmentRecord {
  readonly volumeId: string;
  readonly instanceId: string;
  readonly device: string;
  readonly fromMs: number;
  /** When EC2 (here, the simulation) reports it detached; undefined while attached. */
  toMs: number | undefined;
}

/**
 * An image registered or copied through the client, and when the simulation makes it available.
 * @internal
 */
export interface ImageRecord {
  readonly imageId: string;
  readonly kind: 'register' | 'copy';
  /** Date.now() of the RegisterImage/CopyImage call. */
  readonly fromMs: number;
  /** Date.now() from which DescribeImages shows it available. */
  readonly readyMs: number;
}

/**
 * An AttachVolume refused because the name was in use on the instance.
 * @internal
 */
export interface RefusedAttachment {
  readonly volumeId: string;
  readonly device: string;
  readonly atMs: number;
  /** The volume holding the name. */
  readonly heldBy: string;
}

/** One name's entry in the shared book (file content). */
interface NameClaim {
  readonly volumeId: string;
  readonly instanceId: string;
  readonly device: string;
  readonly fromMs: number;
  readonly toMs?: number;
}

const claimFile = (instanceId: string, device: string): string => `${instanceId}${device.replaceAll('/', '_')}.claim`;
const inUse = (claim: NameClaim, now: number): boolean => claim.toMs === undefined || claim.toMs > now;

async function readClaim(path: string): Promise<NameClaim | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as NameClaim;
  } catch (error) {
    // Gone (released by another process), or caught half-written by its O_EXCL creator.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || error instanceof SyntaxError) return undefined;
    throw error;
  }
}

/**
 * Takes `device` on `instanceId` for `volumeId` in the shared book, or returns the claim holding it.
 * A claim whose detach has completed is moved aside (kept, for the collision check) first.
 */
async function claimName(dir: string, claim: NameClaim, now: number): Promise<NameClaim | undefined> {
  const path = join(dir, claimFile(claim.instanceId, claim.device));
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      await writeFile(path, JSON.stringify(claim), { flag: 'wx' });
      return undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await readClaim(path);
    if (holder === undefined) continue;
    if (inUse(holder, now)) return holder;
    await rename(path, `${path}.${holder.volumeId}.${holder.fromMs}.done`).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }
  throw new Error(`Could not claim ${claim.device} in ${dir}: the claim file keeps changing.`);
}

/**
 * Every claim in the shared book, current and past: each is one attachment EC2 accepted.
 * @internal
 */
export async function readDeviceBook(dir: string): Promise<AttachmentRecord[]> {
  // Current claims and released ones (`.done`); not the ones whose AttachVolume failed.
  const names = (await readdir(dir).catch(() => [] as string[])).filter(
    (n) => n.endsWith('.claim') || (n.includes('.claim.') && n.endsWith('.done')),
  );
  const claims = await Promise.all(names.map((n) => readClaim(join(dir, n))));
  return claims
    .filter((c): c is NameClaim => c !== undefined)
    .map((c) => ({ volumeId: c.volumeId, instanceId: c.instanceId, device: c.device, fromMs: c.fromMs, toMs: c.toMs }));
}

/**
 * Options of {@link simulateTransitions}.
 * @internal
 */
export interface SimulationOptions {
  /** Directory shared by every client of the benchmark that keeps EC2's book of attachment names. */
  readonly deviceRegistry?: string;
}

/**
 * The handle of {@link simulateTransitions}.
 * @internal
 */
export interface Ec2Simulation {
  /** Attachments made through this client. */
  readonly attachments: readonly AttachmentRecord[];
  /** Images registered or copied through this client. */
  readonly images: readonly ImageRecord[];
  /** AttachVolume calls refused because the name was in use (only with `deviceRegistry`). */
  readonly refused: readonly RefusedAttachment[];
  /** Describe calls made through this client (any Describe*). */
  readonly describeCalls: () => number;
  /** Takes the middleware off the client. */
  remove(): void;
}

let installed = 0;

/**
 * Adds the transition middleware to `client`. `times` is asked once per resource (at the call
 * that starts its transition), so a benchmark can give every build its own sampled durations.
 * @internal
 */
export function simulateTransitions(
  client: EC2Client,
  times: () => TransitionTimes,
  options: SimulationOptions = {},
): Ec2Simulation {
  const name = `ami-chroot-bench-transitions-${++installed}`;
  const volumes = new Map<string, number>();
  const attachments = new Map<string, AttachmentRecord & { readyMs: number }>();
  const snapshots = new Map<string, { fromMs: number; doneMs: number }>();
  const images = new Map<string, number>();
  const records: AttachmentRecord[] = [];
  const imageRecords: ImageRecord[] = [];
  const refused: RefusedAttachment[] = [];
  const registry = options.deviceRegistry;
  let describes = 0;

  const rewriteVolumes = (list: Volume[] | undefined, now: number): void => {
    for (const v of list ?? []) {
      const id = v.VolumeId ?? '';
      const readyMs = volumes.get(id);
      if (readyMs !== undefined && now < readyMs) {
        v.State = 'creating';
        v.Attachments = [];
        continue;
      }
      const a = attachments.get(id);
      if (!a) continue;
      if (a.toMs === undefined && now < a.readyMs) {
        for (const att of v.Attachments ?? [])
          if (att.InstanceId === a.instanceId && att.State === 'attached') att.State = 'attaching';
      } else if (a.toMs !== undefined && now < a.toMs) {
        const stillThere: VolumeAttachment = {
          VolumeId: id,
          InstanceId: a.instanceId,
          Device: a.device,
          State: 'detaching',
        };
        v.Attachments = [...(v.Attachments ?? []).filter((att) => att.InstanceId !== a.instanceId), stillThere];
        v.State = 'in-use';
      }
    }
  };
  const rewriteSnapshots = (list: Snapshot[] | undefined, now: number): void => {
    for (const s of list ?? []) {
      const t = snapshots.get(s.SnapshotId ?? '');
      if (t === undefined || now >= t.doneMs) continue;
      s.State = 'pending';
      s.Progress = `${Math.min(99, Math.floor((100 * (now - t.fromMs)) / (t.doneMs - t.fromMs)))}%`;
    }
  };
  const rewriteImages = (list: Image[] | undefined, now: number): void => {
    for (const i of list ?? []) {
      const readyMs = images.get(i.ImageId ?? '');
      if (readyMs !== undefined && now < readyMs) i.State = 'pending';
    }
  };

  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = String(context.commandName ?? '').replace(/Command$/, '');
      const input = args.input as Record<string, unknown>;
      const calledAt = Date.now();
      if (command.startsWith('Describe')) describes++;
      let claimed: string | undefined;
      if (command === 'AttachVolume' && registry !== undefined) {
        const claim: NameClaim = {
          volumeId: String(input['VolumeId']),
          instanceId: String(input['InstanceId']),
          device: String(input['Device']),
          fromMs: calledAt,
        };
        const holder = await claimName(registry, claim, calledAt);
        if (holder !== undefined) {
          refused.push({ volumeId: claim.volumeId, device: claim.device, atMs: calledAt, heldBy: holder.volumeId });
          // What EC2 answers (and the library recognises) for a name in use.
          throw new EC2ServiceException({
            name: 'InvalidParameterValue',
            message: `Invalid value '${claim.device}' for unixDevice. Attachment point ${claim.device} is already in use`,
            $fault: 'client',
            $metadata: { httpStatusCode: 400, requestId: 'simulated' },
          });
        }
        claimed = join(registry, claimFile(claim.instanceId, claim.device));
      }
      let result;
      try {
        result = await next(args);
      } catch (error) {
        if (claimed !== undefined) await rename(claimed, `${claimed}.failed.${calledAt}`).catch(() => {});
        throw error;
      }
      const output = result.output as unknown as Record<string, unknown>;
      const now = Date.now();
      switch (command) {
        case 'CreateVolume':
          if (typeof output['VolumeId'] === 'string') {
            volumes.set(output['VolumeId'], calledAt + times().volumeMs);
            output['State'] = 'creating';
          }
          break;
        case 'AttachVolume': {
          const record = {
            volumeId: String(input['VolumeId']),
            instanceId: String(input['InstanceId']),
            device: String(input['Device']),
            fromMs: calledAt,
            toMs: undefined,
            readyMs: calledAt + times().attachMs,
          };
          attachments.set(record.volumeId, record);
          records.push(record);
          output['State'] = 'attaching';
          break;
        }
        case 'DetachVolume': {
          const a = attachments.get(String(input['VolumeId']));
          if (a && a.toMs === undefined) {
            a.toMs = calledAt + times().detachMs;
            if (registry !== undefined) {
              const claim: NameClaim = {
                volumeId: a.volumeId,
                instanceId: a.instanceId,
                device: a.device,
                fromMs: a.fromMs,
                toMs: a.toMs,
              };
              await writeFile(join(registry, claimFile(a.instanceId, a.device)), JSON.stringify(claim));
            }
          }
          break;
        }
        case 'DescribeInstances':
          if (registry !== undefined)
            await addNamesInUse(registry, output['Reservations'] as Reservation[] | undefined, now);
          break;
        case 'CreateSnapshot':
          if (typeof output['SnapshotId'] === 'string') {
            snapshots.set(output['SnapshotId'], { fromMs: calledAt, doneMs: calledAt + times().snapshotMs });
            output['State'] = 'pending';
            output['Progress'] = '0%';
          }
          break;
        case 'RegisterImage':
        case 'CopyImage':
          if (typeof output['ImageId'] === 'string') {
            const kind = command === 'CopyImage' ? 'copy' : 'register';
            const readyMs = calledAt + (kind === 'copy' ? times().copyMs : times().imageMs);
            images.set(output['ImageId'], readyMs);
            imageRecords.push({ imageId: output['ImageId'], kind, fromMs: calledAt, readyMs });
          }
          break;
        case 'DescribeVolumes':
          rewriteVolumes(output['Volumes'] as Volume[] | undefined, now);
          break;
        case 'DescribeSnapshots':
          rewriteSnapshots(output['Snapshots'] as Snapshot[] | undefined, now);
          break;
        case 'DescribeImages':
          rewriteImages(output['Images'] as Image[] | undefined, now);
          break;
      }
      return result;
    },
    { step: 'initialize', name, priority: 'high' },
  );

  return {
    attachments: records,
    images: imageRecords,
    refused,
    describeCalls: () => describes,
    remove: () => {
      client.middlewareStack.remove(name);
    },
  };
}

/** Lists the names the book has in use on each instance, as EC2's DescribeInstances does. */
async function addNamesInUse(dir: string, reservations: Reservation[] | undefined, now: number): Promise<void> {
  const book = await readDeviceBook(dir);
  for (const instance of (reservations ?? []).flatMap((r): Instance[] => r.Instances ?? [])) {
    const listed = new Set((instance.BlockDeviceMappings ?? []).map((m) => m.DeviceName));
    for (const claim of book) {
      if (claim.instanceId !== instance.InstanceId || listed.has(claim.device) || !inUse(claim as NameClaim, now))
        continue;
      instance.BlockDeviceMappings = [
        ...(instance.BlockDeviceMappings ?? []),
        {
          DeviceName: claim.device,
          Ebs: { VolumeId: claim.volumeId, Status: claim.toMs === undefined ? 'attached' : 'detaching' },
        },
      ];
      listed.add(claim.device);
    }
  }
}

/**
 * Pairs of attachments that used the same name at the same time (on the same instance): each
 * one is a device collision.
 * @internal
 */
export function deviceCollisions(records: readonly AttachmentRecord[]): [AttachmentRecord, AttachmentRecord][] {
  const collisions: [AttachmentRecord, AttachmentRecord][] = [];
  const end = (r: AttachmentRecord): number => r.toMs ?? Number.POSITIVE_INFINITY;
  for (let i = 0; i < records.length; i++) {
    for (let j = i + 1; j < records.length; j++) {
      const a = records[i]!;
      const b = records[j]!;
      if (a.device !== b.device || a.instanceId !== b.instanceId) continue;
      if (a.fromMs < end(b) && b.fromMs < end(a)) collisions.push([a, b]);
    }
  }
  return collisions;
}
