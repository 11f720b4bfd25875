/**
 * The AWS SDK packages, loaded on first use: importing ami-chroot (or a config file through
 * `ami-chroot/config`) costs no SDK start-up, and a build that never calls EBS direct never loads
 * it. Call paths are async and await the loaders; the public client factories are synchronous.
 *
 * The library sees each package through its list in `./sdk-exports/` (a command not listed there
 * does not compile); `./sdk-load.ts` says how the packages are loaded.
 *
 * @packageDocumentation
 */
import type * as Ec2 from './sdk-exports/ec2.js';
import type * as Sts from './sdk-exports/sts.js';
import type * as Ebs from './sdk-exports/ebs.js';
import type * as Imds from './sdk-exports/imds.js';
import { loadEbs, loadEc2, loadImds, loadSts } from './sdk-load.js';

/** What the library uses of `@aws-sdk/client-ec2`. @internal */
export type Ec2Sdk = typeof Ec2;
/** What the library uses of `@aws-sdk/client-sts`. @internal */
export type StsSdk = typeof Sts;
/** What the library uses of `@aws-sdk/client-ebs`. @internal */
export type EbsSdk = typeof Ebs;
/** What the library uses of `@aws-sdk/ec2-metadata-service`. @internal */
export type ImdsSdk = typeof Imds;

/** One package, loaded once: `async` for call paths (a promise, so they need not change if loading becomes asynchronous again). */
function lazy<T>(load: () => unknown): { async: () => Promise<T>; now: () => T } {
  let loaded: T | undefined;
  const now = (): T => (loaded ??= load() as T);
  return { async: () => Promise.resolve().then(now), now };
}

const ec2 = lazy<Ec2Sdk>(loadEc2);
const sts = lazy<StsSdk>(loadSts);
const ebs = lazy<EbsSdk>(loadEbs);
const imds = lazy<ImdsSdk>(loadImds);

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
