/**
 * Pieces shared by the AWS primitives: their options, the EC2 client lookup, the tags every
 * created resource carries, and undo plumbing.
 *
 * @packageDocumentation
 */
import type { EC2Client, ResourceType, Tag, TagSpecification } from '@aws-sdk/client-ec2';
import { ConfigError, attachCleanupErrors } from '../errors.js';
import type { OperationOptions, PollingConfig, WaitKind } from '../types.js';
import { CleanupStack } from '../internal/cleanup-stack.js';
import type { Ctx } from '../internal/ctx.js';
import type { PollClock } from './poll.js';
import { resolveWaitPolicy } from './poll-policy.js';
import type { ResolvedWaitPolicy } from './poll-policy.js';

/**
 * An EC2 client, or a function that returns the client of a region (e.g. `clients.ec2` of
 * `AwsClients` of `ami-chroot/aws`).
 * @public
 */
export type Ec2Provider = EC2Client | ((region: string) => EC2Client);

/**
 * Options shared by every AWS primitive.
 * @public
 */
export interface AwsOperationOptions extends OperationOptions {
  /** The EC2 client (of the build region), or a client per region. */
  readonly ec2: Ec2Provider;
  /** Wait overrides (Packer `aws_polling`, plus per-wait policies). */
  readonly polling?: PollingConfig;
  /** Leave resources that a failed call created in place instead of removing them (for debugging). @defaultValue false */
  readonly keepOnError?: boolean;
  /** Time limit of each undo step when a call fails and cleans up after itself. @defaultValue 600 000 */
  readonly cleanupTimeoutMs?: number;
  /**
   * Time source of the waits (benchmarks replay waits on a virtual clock).
   * @internal
   */
  readonly clock?: PollClock;
}

/**
 * Tag carrying the build id on every volume, snapshot and image ami-chroot creates.
 *
 * @example
 * ```ts
 * import { buildAmi } from 'ami-chroot';
 * import type { BuildConfig, ProvisionFn } from 'ami-chroot';
 * import { BUILD_ID_TAG } from 'ami-chroot/aws';
 * import { DescribeSnapshotsCommand, EC2Client } from '@aws-sdk/client-ec2';
 *
 * declare const config: BuildConfig;
 * declare const provision: ProvisionFn;
 *
 * const result = await buildAmi(config, provision);
 * // Every volume, snapshot and image of the build carries its id in this tag:
 * const ec2 = new EC2Client({ region: result.region });
 * const filter = { Name: `tag:${BUILD_ID_TAG}`, Values: [result.buildId] };
 * const { Snapshots } = await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'], Filters: [filter] }));
 * console.log(Snapshots?.map((s) => s.SnapshotId)); // the same ids as result.snapshots[result.region]
 * ```
 * @public
 */
export const BUILD_ID_TAG = 'ami-chroot:build-id';

/**
 * Tag marking a resource as made by ami-chroot (value `ami-chroot`).
 *
 * @example
 * ```ts
 * import { CREATED_BY_TAG } from 'ami-chroot/aws';
 * import { DescribeImagesCommand, EC2Client } from '@aws-sdk/client-ec2';
 *
 * // Every image ami-chroot made in this account and region (the tag's value is always 'ami-chroot'):
 * const ec2 = new EC2Client({ region: 'eu-west-1' });
 * const filter = { Name: `tag:${CREATED_BY_TAG}`, Values: ['ami-chroot'] };
 * const { Images } = await ec2.send(new DescribeImagesCommand({ Owners: ['self'], Filters: [filter] }));
 * console.log(Images?.map((image) => `${image.ImageId} ${image.Name}`));
 * ```
 * @public
 */
export const CREATED_BY_TAG = 'ami-chroot:created-by';

/**
 * The client and region a single-region primitive talks to.
 * @internal
 */
export async function ec2For(
  provider: Ec2Provider,
  region: string | undefined,
): Promise<{ client: EC2Client; region: string }> {
  if (typeof provider === 'function') {
    if (!region) {
      throw new ConfigError([{ path: 'region', message: 'a region is needed when ec2 is a function of the region' }]);
    }
    return { client: provider(region), region };
  }
  const own = await provider.config.region();
  if (region && region !== own) {
    throw new ConfigError([
      {
        path: 'region',
        value: region,
        message: `the EC2 client given talks to ${own}, not ${region}; pass a client for ${region} or a function (region) => EC2Client`,
      },
    ]);
  }
  return { client: provider, region: own };
}

/**
 * A client for any region; a single injected client only serves its own region.
 * @internal
 */
export function ec2InRegion(provider: Ec2Provider, defaultRegion: string): (region: string) => EC2Client {
  if (typeof provider === 'function') return provider;
  return (region) => {
    if (region !== defaultRegion) {
      throw new ConfigError([
        {
          path: 'ec2',
          message: `an EC2 client for ${region} is needed, but a single client for ${defaultRegion} was given; pass clients.ec2 or a function (region) => EC2Client`,
        },
      ]);
    }
    return provider;
  };
}

/** Tags as EC2 wants them, with the build's own tags added last (they win). @internal */
export function tagList(tags: Readonly<Record<string, string>> | undefined, buildId: string | undefined): Tag[] {
  const merged: Record<string, string> = { ...tags };
  if (buildId !== undefined) {
    merged[BUILD_ID_TAG] = buildId;
    merged[CREATED_BY_TAG] = 'ami-chroot';
  }
  return Object.entries(merged).map(([Key, Value]) => ({ Key, Value }));
}

/** TagSpecifications for tag-on-create; empty when there is nothing to tag. @internal */
export function tagSpecs(...specs: { type: ResourceType; tags: Tag[] }[]): TagSpecification[] | undefined {
  const list = specs.filter((s) => s.tags.length > 0).map((s) => ({ ResourceType: s.type, Tags: s.tags }));
  return list.length > 0 ? list : undefined;
}

/** The policy of one wait under these options. @internal */
export function policyFor(kind: WaitKind, options: Pick<AwsOperationOptions, 'polling'>, ctx: Ctx): ResolvedWaitPolicy {
  return resolveWaitPolicy(kind, options.polling, process.env, ctx.logger);
}

/** The pieces of options a poll needs. @internal */
export function pollBits(options: Pick<AwsOperationOptions, 'clock'>): { clock?: PollClock } {
  return options.clock === undefined ? {} : { clock: options.clock };
}

/**
 * Runs `undo` steps (last first) after a failure inside a primitive, with their own time limit,
 * and attaches their failures to the original error. Returns that error for rethrowing.
 * @internal
 */
export async function undoAfterFailure(
  error: unknown,
  steps: readonly { name: string; run: (signal: AbortSignal) => Promise<void> }[],
  ctx: Ctx,
  options: Pick<AwsOperationOptions, 'keepOnError' | 'cleanupTimeoutMs'>,
): Promise<unknown> {
  // One try per step, as before: the primitive's caller decides about retrying the whole call.
  const stack = new CleanupStack(ctx, options.cleanupTimeoutMs ?? 600_000, 1);
  for (const step of steps) stack.defer(step.name, step.run);
  if (options.keepOnError) {
    for (const name of stack.keepAll()) ctx.logger.warn(`keepOnError: not running "${name}"`);
    return error;
  }
  return attachCleanupErrors(error, await stack.unwind('failure'));
}

/** Whether two attachment names are the same device (`/dev/sda1` and `sda1` are). @internal */
export function sameDevice(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  return a.replace(/^\/dev\//, '') === b.replace(/^\/dev\//, '');
}
