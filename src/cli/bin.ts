#!/usr/bin/env node
/**
 * The `ami-chroot` executable. As published it is a bundle (`scripts/bundle.ts`,
 * `dist/cli/ami-chroot.mjs`) of the CLI, the library and only the AWS SDK commands the library
 * uses, so that a Packer template builds without loading the whole SDK.
 *
 * A build file imports `ami-chroot` itself, and Node gives it the package's own modules. It runs
 * through those too (`./main.js`, found at run time so the bundler leaves it alone), so the file
 * and the CLI share one copy of the library: an error the chroot throws is an `instanceof` the
 * classes the file imports.
 */
import { parseArgs } from './args.js';
import { isBuildFile } from './build-file.js';
import { main } from './main.js';

type Main = typeof main;

const argv = process.argv.slice(2);
let target: string | undefined;
try {
  target = parseArgs(argv).target;
} catch {
  // main reports the usage error.
}
const unbundled = new URL('./main.js', import.meta.url).href;
const run = target !== undefined && isBuildFile(target) ? ((await import(unbundled)) as { main: Main }).main : main;
process.exitCode = await run(argv);
