/**
 * How a bundle loads the AWS SDK: only what `./sdk-exports/` names, from the packages' ES module
 * builds, which the bundler tree-shakes (a `require` or `import()` here would make it keep every
 * command). `scripts/bundle.ts` puts this module in place of `./sdk-load.ts`.
 *
 * These imports are static, so a bundle evaluates the listed commands when it starts, used or not;
 * that costs less than the whole package does unbundled (`bench/sdk-load.ts`).
 *
 * @packageDocumentation
 */
import * as Ec2 from './sdk-exports/ec2.js';
import * as Sts from './sdk-exports/sts.js';
import * as Ebs from './sdk-exports/ebs.js';
import * as Imds from './sdk-exports/imds.js';

/** `@aws-sdk/client-ec2`, the commands used. @internal */
export const loadEc2 = (): unknown => Ec2;
/** `@aws-sdk/client-sts`, the commands used. @internal */
export const loadSts = (): unknown => Sts;
/** `@aws-sdk/client-ebs`, the commands used. @internal */
export const loadEbs = (): unknown => Ebs;
/** `@aws-sdk/ec2-metadata-service`, what is used. @internal */
export const loadImds = (): unknown => Imds;
