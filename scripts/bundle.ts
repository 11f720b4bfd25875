/**
 * Bundles a program that uses ami-chroot into one ES module file, with only the AWS SDK commands
 * the library uses: the SDK packages' ES module builds (`module` main field) let esbuild drop
 * every other command and shape, and `src/aws/sdk-load.bundle.ts` stands in for
 * `src/aws/sdk-load.ts` so that the SDK is reached through the lists in `src/aws/sdk-exports/`.
 * Loading `@aws-sdk/client-ec2` whole costs a process ~0.7 s and 111 MiB; the bundled CLI
 * loads what it uses for a fraction of that (`bench/sdk-load.ts`).
 *
 * The other npm dependencies stay external (installed with the package, loaded by Node).
 *
 * `npm run build` runs this for the `ami-chroot` executable (`dist/cli/ami-chroot.mjs`); the
 * benchmarks use {@link bundleProgram} for their child processes.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type Metafile, type Plugin } from 'esbuild';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Puts the bundle's SDK loader in place of Node's (see src/aws/sdk-load.ts). */
const sdkLoad: Plugin = {
  name: 'ami-chroot-sdk-load',
  setup(b) {
    b.onResolve({ filter: /\/sdk-load\.js$/ }, (args) => ({
      path: join(args.resolveDir, 'sdk-load.bundle.ts'),
    }));
  },
};

/** What a bundle needs to know. */
export interface BundleOptions {
  /** The program's entry (TypeScript or JavaScript). */
  readonly entry: string;
  /** Where the bundle goes. */
  readonly outfile: string;
  /** The checkout whose package.json lists the external dependencies (default: this one). */
  readonly root?: string;
}

/** Bundles `entry` to `outfile` (see the module's description); resolves to what went in. */
export async function bundleProgram({ entry, outfile, root = REPO }: BundleOptions): Promise<Metafile> {
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  // Bundled: the AWS SDK (to drop what is unused) and everything it pulls in.
  const external = Object.keys(pkg.dependencies ?? {}).filter((d) => !d.startsWith('@aws-sdk/'));
  const result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    external,
    mainFields: ['module', 'main'],
    platform: 'node',
    format: 'esm',
    target: 'node20',
    plugins: [sdkLoad],
    // The SDK's CommonJS pieces call require(); an ES module has none of its own.
    banner: {
      js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
    },
    metafile: true,
    logLevel: 'error',
  });
  return result.metafile;
}

// `tsx scripts/bundle.ts`: the CLI executable.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await bundleProgram({ entry: join(REPO, 'src/cli/bin.ts'), outfile: join(REPO, 'dist/cli/ami-chroot.mjs') });
}
