/**
 * How a program run from `dist/` (or by tsx) loads the AWS SDK packages: whole, with `require`.
 *
 * Never `import()`: these packages are CommonJS with no `exports` map, and `import()` of one makes
 * Node scan its source for module syntax and named exports (cjs-module-lexer) before running it.
 * For `@aws-sdk/client-ec2`, one 2 MiB file, that scan costs more than half a second of CPU and
 * 14 MiB of peak RSS per process (`bench/sdk-load.ts`). `require` gives the same module a static
 * import does, so one class (what aws-sdk-client-mock patches) serves both (a unit test checks
 * it). A bundle replaces this module with `./sdk-load.bundle.ts` (`scripts/bundle.ts`).
 *
 * @packageDocumentation
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** `@aws-sdk/client-ec2`. @internal */
export const loadEc2 = (): unknown => require('@aws-sdk/client-ec2');
/** `@aws-sdk/client-sts`. @internal */
export const loadSts = (): unknown => require('@aws-sdk/client-sts');
/** `@aws-sdk/client-ebs`. @internal */
export const loadEbs = (): unknown => require('@aws-sdk/client-ebs');
/** `@aws-sdk/ec2-metadata-service`. @internal */
export const loadImds = (): unknown => require('@aws-sdk/ec2-metadata-service');
