/**
 * Build files: a TypeScript or JavaScript module that exports `config` and `provision`, as opposed
 * to a Packer template.
 */
import { extname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from './args.js';

const TS_EXTENSIONS = new Set(['.ts', '.mts', '.cts']);
const JS_EXTENSIONS = new Set(['.js', '.mjs', '.cjs']);

/**
 * Imports a build file. A .ts file loads natively where Node strips types; otherwise through tsx
 * when it can be resolved from the file's folder or from here (it is not a dependency).
 */
export async function importBuildFile(file: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(file).href;
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (!TS_EXTENSIONS.has(extname(file)) || code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw error;
  }
  let register: (() => unknown) | undefined;
  try {
    // A variable specifier: tsx is optional, so the compiler must not resolve it.
    const specifier = 'tsx/esm/api';
    ({ register } = (await import(specifier)) as { register: () => unknown });
  } catch {
    /* not installed */
  }
  if (!register)
    throw new UsageError(
      `${file} is TypeScript and this Node cannot load it: install tsx (npm i -D tsx), use Node >= 22.6 with NODE_OPTIONS=--experimental-strip-types, or compile it to JavaScript`,
    );
  register();
  // A new URL: the loader remembers the failed import of the plain one.
  return (await import(`${url}?ts`)) as Record<string, unknown>;
}

/** Whether the CLI's target is a build file (by its extension), not a Packer template. */
export function isBuildFile(target: string): boolean {
  const ext = extname(target);
  return TS_EXTENSIONS.has(ext) || JS_EXTENSIONS.has(ext);
}
