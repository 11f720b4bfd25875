/**
 * The AWS SDK packages, loaded on first use: importing ami-chroot (or a config file through
 * `ami-chroot/config`) costs no SDK start-up, and a build that never calls EBS direct never loads
 * it. Call paths are async and await the loaders; the public client factories are synchronous.
 *
 * Both load the package with `require`, never `import()`: these packages are CommonJS with no
 * `exports` map, and `import()` of one makes Node scan its source for module syntax and for named
 * exports (cjs-module-lexer) before running it. For `@aws-sdk/client-ec2`, one 2 MiB file, that
 * scan cost more than half a second of CPU and 14 MiB of peak RSS per process
 * (`bench/sdk-load.ts`). `require` gives the same module a static import does, so one class (what
 * aws-sdk-client-mock patches) serves both (a unit test checks it).
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

/** One package, loaded once: `async` for call paths (a promise, so they need not change if loading becomes asynchronous again). */
function lazy<T>(load: () => unknown): { async: () => Promise<T>; now: () => T } {
  let loaded: T | undefined;
  const now = (): T => (loaded ??= load() as T);
  return { async: () => Promise.resolve().then(now), now };
}

const ec2 = lazy<Ec2Sdk>(() => require('@aws-sdk/client-ec2'));
const sts = lazy<StsSdk>(() => require('@aws-sdk/client-sts'));
const ebs = lazy<EbsSdk>(() => require('@aws-sdk/client-ebs'));
const imds = lazy<ImdsSdk>(() => require('@aws-sdk/ec2-metadata-service'));

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
