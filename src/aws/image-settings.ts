/**
 * What is applied to a finished image in each region: launch permissions, product codes,
 * snapshot permissions, deprecation and deregistration protection; and reading an image back.
 *
 * @packageDocumentation
 */
import { ec2Sdk } from './sdk.js';
import type { EC2Client, Image, LaunchPermission } from '@aws-sdk/client-ec2';
import pRetry from 'p-retry';
import type { DeregistrationProtection } from '../config/types.js';
import type { Ctx } from '../internal/ctx.js';
import { NOT_FOUND_CODES, hasAwsCode } from './aws-errors.js';
import { send } from './call.js';
import { messageOf } from '../internal/to-error.js';

/**
 * Who may use the image and its snapshots, and its lifecycle settings.
 * @public
 */
export interface ImageSharing {
  /** Account ids that may launch the image (Packer `ami_users`). */
  readonly amiUsers?: readonly string[];
  /** Groups that may launch it; `all` makes it public (Packer `ami_groups`). */
  readonly amiGroups?: readonly string[];
  /** Organization ARNs that may launch it (Packer `ami_org_arns`). */
  readonly amiOrgArns?: readonly string[];
  /** Organizational unit ARNs that may launch it (Packer `ami_ou_arns`). */
  readonly amiOuArns?: readonly string[];
  /** Product codes to associate (Packer `ami_product_codes`). */
  readonly productCodes?: readonly string[];
  /** Account ids that may create volumes from the snapshots (Packer `snapshot_users`). */
  readonly snapshotUsers?: readonly string[];
  /** Groups that may create volumes from the snapshots; `all` makes them public (Packer `snapshot_groups`). */
  readonly snapshotGroups?: readonly string[];
  /** When the image becomes deprecated (Packer `deprecate_at`). */
  readonly deprecateAt?: Date | string;
  /** Protect the image from deregistration (Packer `deregistration_protection`). */
  readonly deregistrationProtection?: DeregistrationProtection;
}

/** The snapshots an image's EBS mappings point to. @internal */
export function snapshotIdsOf(image: Image | undefined): string[] {
  return (image?.BlockDeviceMappings ?? [])
    .map((m) => m.Ebs?.SnapshotId)
    .filter((s): s is string => typeof s === 'string');
}

/**
 * Retries a call that can fail right after an image became available (eventual consistency).
 * @internal
 */
export function retryConsistency<T>(fn: () => Promise<T>, ctx: Ctx): Promise<T> {
  return pRetry(fn, {
    retries: 6,
    minTimeout: 500,
    maxTimeout: 8_000,
    randomize: true,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    shouldRetry: ({ error }) =>
      hasAwsCode(error, NOT_FOUND_CODES.image, NOT_FOUND_CODES.snapshot, 'InvalidAMIID.Unavailable'),
    onFailedAttempt: ({ error, attemptNumber }) => {
      ctx.logger.debug(
        `Attempt ${attemptNumber} failed (${error.message.split('\n')[0]}); EC2 may not see the resource yet`,
      );
    },
  });
}

/**
 * Applies launch permissions, product codes, snapshot permissions, deprecation and
 * deregistration protection, in that order.
 * @internal
 */
export async function applySharing(
  ec2: EC2Client,
  imageId: string,
  snapshotIds: readonly string[],
  sharing: ImageSharing,
  ctx: Ctx,
  region: string,
): Promise<void> {
  await grantPermissions(ec2, imageId, snapshotIds, sharing, ctx, region);
  if (sharing.deprecateAt !== undefined) await deprecateImage(ec2, imageId, sharing.deprecateAt, ctx, region);
  if (sharing.deregistrationProtection?.enabled) {
    await protectImages(() => ec2, { [region]: imageId }, sharing.deregistrationProtection, ctx);
  }
}

/** Whether {@link grantPermissions} has anything to do. @internal */
export function grantsPermissions(sharing: ImageSharing): boolean {
  const { amiUsers, amiGroups, amiOrgArns, amiOuArns, productCodes, snapshotUsers, snapshotGroups } = sharing;
  return [amiUsers, amiGroups, amiOrgArns, amiOuArns, productCodes, snapshotUsers, snapshotGroups].some(
    (list) => (list?.length ?? 0) > 0,
  );
}

/**
 * Launch permissions, product codes and snapshot permissions (the `permissions` phase).
 * @internal
 */
export async function grantPermissions(
  ec2: EC2Client,
  imageId: string,
  snapshotIds: readonly string[],
  sharing: ImageSharing,
  ctx: Ctx,
  region: string,
): Promise<void> {
  const { ModifyImageAttributeCommand, ModifySnapshotAttributeCommand } = await ec2Sdk();
  const launch: LaunchPermission[] = [
    ...(sharing.amiUsers ?? []).map((UserId) => ({ UserId })),
    ...(sharing.amiGroups ?? []).map((Group) => ({ Group: Group as LaunchPermission['Group'] })),
    ...(sharing.amiOrgArns ?? []).map((OrganizationArn) => ({ OrganizationArn })),
    ...(sharing.amiOuArns ?? []).map((OrganizationalUnitArn) => ({ OrganizationalUnitArn })),
  ];
  const meta = { phase: 'permissions' as const, region, resources: { imageId } };
  if (launch.length > 0) {
    ctx.logger.info(`Granting launch permission on ${imageId} in ${region}`);
    await retryConsistency(
      () =>
        send(ec2, new ModifyImageAttributeCommand({ ImageId: imageId, LaunchPermission: { Add: launch } }), ctx, meta),
      ctx,
    );
  }
  if (sharing.productCodes?.length) {
    await retryConsistency(
      () =>
        send(
          ec2,
          new ModifyImageAttributeCommand({ ImageId: imageId, ProductCodes: [...sharing.productCodes!] }),
          ctx,
          meta,
        ),
      ctx,
    );
  }
  if (sharing.snapshotUsers?.length || sharing.snapshotGroups?.length) {
    for (const snapshotId of snapshotIds) {
      await retryConsistency(
        () =>
          send(
            ec2,
            new ModifySnapshotAttributeCommand({
              SnapshotId: snapshotId,
              Attribute: 'createVolumePermission',
              CreateVolumePermission: {
                Add: [
                  ...(sharing.snapshotUsers ?? []).map((UserId) => ({ UserId })),
                  ...(sharing.snapshotGroups ?? []).map((Group) => ({ Group: Group as 'all' })),
                ],
              },
            }),
            ctx,
            { phase: 'permissions', region, resources: { imageId, snapshotId } },
          ),
        ctx,
      );
    }
  }
}

/** Deprecates the image at `at` (the `deprecate` phase). @internal */
export async function deprecateImage(
  ec2: EC2Client,
  imageId: string,
  at: Date | string,
  ctx: Ctx,
  region: string,
): Promise<void> {
  const { EnableImageDeprecationCommand } = await ec2Sdk();
  const deprecateAt = at instanceof Date ? at : new Date(at);
  await retryConsistency(
    () =>
      send(ec2, new EnableImageDeprecationCommand({ ImageId: imageId, DeprecateAt: deprecateAt }), ctx, {
        phase: 'deprecate',
        region,
        resources: { imageId },
      }),
    ctx,
  );
}

/**
 * Lifts deregistration protection, warning instead of failing: removal then reports its own error.
 * @internal
 */
export async function unprotectImage(ec2: EC2Client, imageId: string, ctx: Ctx, region: string): Promise<void> {
  const { DisableImageDeregistrationProtectionCommand } = await ec2Sdk();
  try {
    await send(ec2, new DisableImageDeregistrationProtectionCommand({ ImageId: imageId }), ctx, {
      phase: 'cleanup',
      region,
      resources: { imageId },
    });
  } catch (error) {
    ctx.logger.warn(`Could not lift deregistration protection of ${imageId}: ${messageOf(error)}`);
  }
}

/**
 * Enables deregistration protection on every image, only once all of them exist: a protected
 * image cannot be undone (with the cooldown, not for 24 h after). If one region fails, the
 * protection already applied is lifted again before the error is thrown.
 * @internal
 */
export async function protectImages(
  ec2Of: (region: string) => EC2Client,
  images: Readonly<Record<string, string>>,
  protection: NonNullable<ImageSharing['deregistrationProtection']>,
  ctx: Ctx,
): Promise<void> {
  const { EnableImageDeregistrationProtectionCommand } = await ec2Sdk();
  if (!protection.enabled) return;
  const done: [string, string][] = [];
  try {
    for (const [region, imageId] of Object.entries(images)) {
      await retryConsistency(
        () =>
          send(
            ec2Of(region),
            new EnableImageDeregistrationProtectionCommand({
              ImageId: imageId,
              WithCooldown: protection.withCooldown ?? false,
            }),
            ctx,
            { phase: 'permissions', region, resources: { imageId } },
          ),
        ctx,
      );
      done.push([region, imageId]);
    }
  } catch (error) {
    for (const [region, imageId] of done) await unprotectImage(ec2Of(region), imageId, ctx, region);
    throw error;
  }
}

/**
 * The image in `region` with this id, if EC2 knows it.
 * @internal
 */
export async function describeImage(
  ec2: EC2Client,
  imageId: string,
  ctx: Ctx,
  region: string,
  signal?: AbortSignal,
): Promise<Image | undefined> {
  const { DescribeImagesCommand } = await ec2Sdk();
  const out = await send(ec2, new DescribeImagesCommand({ ImageIds: [imageId] }), ctx, {
    phase: 'register',
    region,
    resources: { imageId },
    ...(signal === undefined ? {} : { signal }),
  });
  return out.Images?.find((i) => i.ImageId === imageId);
}
