import { ec2Sdk } from '../aws/sdk.js';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { ConfigError, SourceImageError } from '../errors.js';
import type { Ctx } from '../internal/ctx.js';
import { send } from '../aws/call.js';
import type { SourceImage } from '../aws/source-image.js';

/**
 * Fails before anything is created when an image of this account already has the AMI name
 * (Packer's pre-validation; skipped with forceDeregister, which replaces it instead).
 * @internal
 */
export async function checkImageNameFree(ec2: EC2Client, name: string, region: string, ctx: Ctx): Promise<void> {
  const { DescribeImagesCommand } = await ec2Sdk();
  const out = await send(
    ec2,
    new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: [name] }] }),
    ctx,
    { phase: 'validate' },
  );
  const clash = (out.Images ?? []).filter((i) => i.Name === name);
  if (clash.length > 0) {
    throw new ConfigError([
      {
        path: 'amiName',
        value: name,
        message: `is already used by ${clash.map((i) => i.ImageId).join(', ')} in ${region}; choose another name (add {{timestamp}}), or set forceDeregister to replace it`,
      },
    ]);
  }
}

/**
 * The configured region must be the build host's: the work volume is created in the host's
 * availability zone and attached to it.
 * @internal
 */
export function checkRegionIsHosts(
  configured: string | undefined,
  host: { region: string; availabilityZone: string },
): void {
  if (configured === undefined || configured === host.region) return;
  throw new ConfigError([
    {
      path: 'region',
      value: configured,
      message: `differs from the build host's region ${host.region} (${host.availabilityZone}): the work volume must be created in the host's availability zone. Remove region (it defaults to the host's), or run the build on a host in ${configured}; use amiRegions to publish elsewhere`,
    },
  ]);
}

/**
 * Enhanced networking needs an HVM image: with enaSupport or sriovSupport and no explicit
 * amiVirtualizationType, the source must be HVM (Packer's rule).
 * @internal
 */
export function checkEnhancedNetworking(
  source: SourceImage,
  wantsEnhanced: boolean,
  explicitType: string | undefined,
): void {
  if (!wantsEnhanced || explicitType !== undefined || source.virtualizationType === 'hvm') return;
  throw new SourceImageError(
    `Cannot enable enhanced networking (enaSupport/sriovSupport): source ${source.imageId} is ${source.virtualizationType}, not hvm. ` +
      'Use an HVM source image, or set amiVirtualizationType: "hvm" if the build converts it.',
    { resources: { imageId: source.imageId, region: source.region } },
  );
}

/** What EC2 gives an image registered from a snapshot: plain Linux/UNIX billing. */
const PLAIN_PLATFORM = 'Linux/UNIX';
const PLAIN_USAGE = 'RunInstances';

/**
 * The warning for a source whose billing is not plain Linux/UNIX (RHEL, SLES, Windows, a
 * Marketplace product): RegisterImage from a snapshot gives the new image Linux/UNIX billing, so
 * the source's billing code is lost. `undefined` when there is nothing to lose (or EC2 did not say).
 * @internal
 */
export function billingLossWarning(source: SourceImage): string | undefined {
  const platform = source.image.PlatformDetails;
  const usage = source.image.UsageOperation;
  const lost =
    (platform !== undefined && platform !== PLAIN_PLATFORM) || (usage !== undefined && usage !== PLAIN_USAGE);
  if (!lost) return undefined;
  return (
    `Source AMI ${source.imageId} is billed as ${platform ?? 'unknown platform'} (UsageOperation ${usage ?? 'unknown'}), ` +
    `but an image registered from a snapshot is billed as ${PLAIN_PLATFORM} (${PLAIN_USAGE}): the new AMI loses the ` +
    "source's billing code, so its instances are not covered by the source's license-included or Marketplace billing. " +
    'Build from a plain Linux/UNIX source, or create the image from a running instance (CreateImage) to keep the billing code.'
  );
}
