/**
 * Who the build host is: its instance id, availability zone and region (IMDSv2), and which device
 * names EC2 considers attached to it (for the device allocator).
 *
 * @packageDocumentation
 */
import { ec2Sdk, imdsSdk } from './sdk.js';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { HostIdentityError } from '../errors.js';
import { throwIfAborted, withTimeout } from '../internal/abort.js';
import { toCtx } from '../internal/ctx.js';
import type { Ctx } from '../internal/ctx.js';
import type { OperationOptions } from '../types.js';
import { hasAwsCode } from './aws-errors.js';
import { send } from './call.js';
import { messageOf } from '../internal/to-error.js';

/**
 * The build host, as EC2 knows it.
 * @public
 */
export interface HostIdentity {
  /** Instance id, e.g. `i-0123456789abcdef0`. */
  readonly instanceId: string;
  /** Availability zone, e.g. `eu-west-1b`; work volumes are created here. */
  readonly availabilityZone: string;
  /** Region, e.g. `eu-west-1`. */
  readonly region: string;
}

/**
 * The build host as a caller gives it: the identity itself, or a function that reads it.
 * @public
 */
export type HostIdentitySource = HostIdentity | (() => Promise<HostIdentity>);

/**
 * Options of {@link getHostIdentity}.
 * @public
 */
export interface GetHostIdentityOptions extends OperationOptions {
  /** IMDS endpoint. @defaultValue `AWS_EC2_METADATA_SERVICE_ENDPOINT`, then `http://169.254.169.254` */
  readonly endpoint?: string;
  /** Overall time limit. @defaultValue 10 000 */
  readonly timeoutMs?: number;
}

const CHECKLIST =
  'Check that this runs on an EC2 instance; that its metadata service is enabled (HttpEndpoint=enabled); ' +
  'that inside a container the IMDSv2 hop limit is at least 2 ' +
  '(aws ec2 modify-instance-metadata-options --instance-id <id> --http-put-response-hop-limit 2); ' +
  'or pass the instance id and availability zone explicitly.';

/**
 * Reads the host's instance id, availability zone and region from the instance metadata service,
 * IMDSv2 only (a session token first, as AWS recommends).
 *
 * @example
 * ```ts
 * import { createAwsClients, createVolume, getHostIdentity } from 'ami-chroot/aws';
 *
 * const host = await getHostIdentity();
 * console.log(host); // { instanceId: 'i-0123456789abcdef0', availabilityZone: 'eu-west-1b', region: 'eu-west-1' }
 * const { ec2 } = createAwsClients({ region: host.region });
 * const volume = await createVolume({ availabilityZone: host.availabilityZone, size: 8 }, { ec2 }); // next to this host
 * console.log(volume.volumeId);
 * ```
 * @throws {@link HostIdentityError} with the real cause and what to check (unlike Packer, which
 *   drops the cause)
 * @public
 */
export async function getHostIdentity(options: GetHostIdentityOptions = {}): Promise<HostIdentity> {
  const { MetadataService } = await imdsSdk();
  const timeoutMs = options.timeoutMs ?? 10_000;
  throwIfAborted(options.signal);
  const service = new MetadataService({
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ec2MetadataV1Disabled: true,
    // Short per-request limits: off EC2 every request times out, and the overall limit still applies.
    httpOptions: { timeout: Math.min(2_000, timeoutMs) },
    retries: 1,
    backoff: 0.2,
  });
  const where =
    options.endpoint ?? process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'] ?? 'the default endpoint (169.254.169.254)';
  try {
    const identity = await withTimeout(
      timeoutMs,
      options.signal,
      async (signal) => {
        const read = async (path: string): Promise<string> => {
          throwIfAborted(signal);
          // The service joins the endpoint's path ("/") and this one as they are: no leading slash.
          const value = (await raceAbort(service.request(`latest/meta-data/${path}`, {}), signal)).trim();
          if (!value) throw new Error(`empty answer for ${path}`);
          return value;
        };
        const instanceId = await read('instance-id');
        const availabilityZone = await read('placement/availability-zone');
        let region: string;
        try {
          region = await read('placement/region');
        } catch (error) {
          if (signal?.aborted) throw error;
          // Older metadata services lack placement/region; the zone name carries it.
          region = availabilityZone.replace(/[a-z]$/, '');
        }
        return { instanceId, availabilityZone, region };
      },
      () => new Error(`no answer within ${timeoutMs} ms`),
    );
    toCtx(options).logger.debug(
      `Host identity from ${where}: ${identity.instanceId} in ${identity.availabilityZone} (${identity.region})`,
    );
    return identity;
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    const cause = messageOf(error);
    throw new HostIdentityError(
      `Could not read the build host's identity from the instance metadata service at ${where}: ${cause}. ${CHECKLIST}`,
      {
        cause: error,
      },
    );
  }
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * The device names EC2 lists as attached to an instance (`/dev/xvda`, `/dev/sdf`, ...), including
 * attachments still detaching, so the allocator never offers a name EC2 would refuse.
 *
 * @throws {@link HostIdentityError} when EC2 does not know the instance in this region
 * @internal
 */
export async function describeInstanceDeviceNames(ec2: EC2Client, instanceId: string, ctx: Ctx): Promise<string[]> {
  const { DescribeInstancesCommand } = await ec2Sdk();
  let out;
  try {
    out = await send(ec2, new DescribeInstancesCommand({ InstanceIds: [instanceId] }), ctx, {
      phase: 'device',
      resources: { instanceId },
    });
  } catch (error) {
    if (hasAwsCode(error, 'InvalidInstanceID.NotFound', 'InvalidInstanceID.Malformed')) {
      const region = await ec2.config.region().catch(() => 'this region');
      throw new HostIdentityError(
        `EC2 does not know instance ${instanceId} in ${region}: is the build region the host's region?`,
        {
          cause: error,
          resources: { instanceId },
        },
      );
    }
    throw error;
  }
  const instance = out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === instanceId);
  if (!instance) {
    throw new HostIdentityError(`EC2 returned no instance ${instanceId}: is the build region the host's region?`, {
      resources: { instanceId },
    });
  }
  return (instance.BlockDeviceMappings ?? [])
    .map((m) => m.DeviceName)
    .filter((d): d is string => typeof d === 'string' && d.length > 0);
}

/**
 * The host identity the caller gave (a value or a function), else the one IMDSv2 reports: the one
 * resolution buildAmi and cleanupOrphans share.
 * @internal
 */
export async function resolveHostIdentity(
  given: HostIdentitySource | undefined,
  imds: GetHostIdentityOptions = {},
): Promise<HostIdentity> {
  if (typeof given === 'function') return given();
  return given ?? getHostIdentity(imds);
}
