/**
 * The AWS SDK packages, loaded on first use: importing ami-chroot (or a config file through
 * `ami-chroot/config`) costs no SDK start-up, and a build that never calls EBS direct never loads
 * it. Call paths are async and await the loaders; the public client factories are synchronous and
 * return SDK clients, so they load the package with `require`. Both resolve to the same module:
 * these packages have no `exports` map, so `import()` loads their CommonJS `main` too, and one
 * class (what aws-sdk-client-mock patches) serves both (a unit test checks it).
 *
 * @packageDocumentation
 */
import { createRequire } from 'node:module';
import type * as Ec2 from '@aws-sdk/client-ec2';
import type * as Sts from '@aws-sdk/client-sts';
import type * as Ebs from '@aws-sdk/client-ebs';
import type * as Imds from '@aws-sdk/ec2-metadata-service';

/** `@aws-sdk/client-ec2`. @internal */
export type Ec2Sdk = typeof Ec2;
/** `@aws-sdk/client-sts`. @internal */
export type StsSdk = typeof Sts;
/** `@aws-sdk/client-ebs`. @internal */
export type EbsSdk = typeof Ebs;
/** `@aws-sdk/ec2-metadata-service`. @internal */
export type ImdsSdk = typeof Imds;

const require = createRequire(import.meta.url);

/** One package: loaded once, by whichever of the two ways asks first. */
function lazy<T>(load: () => Promise<T>, loadNow: () => T): { async: () => Promise<T>; now: () => T } {
  let loaded: T | undefined;
  let loading: Promise<T> | undefined;
  return {
    async: () => (loaded !== undefined ? Promise.resolve(loaded) : (loading ??= load().then((m) => (loaded = m)))),
    now: () => (loaded ??= loadNow()),
  };
}

const ec2 = lazy<Ec2Sdk>(
  () => import('@aws-sdk/client-ec2'),
  () => require('@aws-sdk/client-ec2') as Ec2Sdk,
);
const sts = lazy<StsSdk>(
  () => import('@aws-sdk/client-sts'),
  () => require('@aws-sdk/client-sts') as StsSdk,
);
const ebs = lazy<EbsSdk>(
  () => import('@aws-sdk/client-ebs'),
  () => require('@aws-sdk/client-ebs') as EbsSdk,
);
const imds = lazy<ImdsSdk>(
  () => import('@aws-sdk/ec2-metadata-service'),
  () => require('@aws-sdk/ec2-metadata-service') as ImdsSdk,
);

/** `@aws-sdk/client-ec2`, loaded on first use. @internal */
export const ec2Sdk = ec2.async;
/** `@aws-sdk/client-sts`, loaded on first use. @internal */
export const stsSdk = sts.async;
/** `@aws-sdk/client-ebs`, loaded on first use. @internal */
export const ebsSdk = ebs.async;
/** `@aws-sdk/ec2-metadata-service`, loaded on first use. @internal */
export const imdsSdk = imds.async;
/** `@aws-sdk/client-ec2` now, for the synchronous client factories. @internal */
export const ec2SdkNow = ec2.now;
/** `@aws-sdk/client-sts` now, for the synchronous client factories. @internal */
export const stsSdkNow = sts.now;
/** `@aws-sdk/client-ebs` now, for the synchronous client factories. @internal */
export const ebsSdkNow = ebs.now;
