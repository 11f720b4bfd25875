/**
 * Loads whole Packer templates: HCL2 (`.pkr.hcl`, a file or a directory of them), HCL2 JSON
 * (`.pkr.json`) and legacy JSON. The `amazon-chroot` blocks go through {@link fromPackerConfig}'s
 * mapping; provisioners and post-processors are kept, in template order, for
 * {@link runPackerProvisioners} and {@link writePackerManifest}.
 */
import { readFile, stat } from 'node:fs/promises';
import { loadHcl } from './hcl-template.js';
import { loadLegacy } from './legacy-template.js';
import { isRecord } from './hcl-expr.js';
import { fail, lineAt } from './template-common.js';
import type { LoadPackerTemplateOptions, PackerTemplate } from './types.js';

/**
 * Loads a Packer template unchanged: HCL2 (`.pkr.hcl`, or a directory of `.pkr.hcl`/`.pkr.json`
 * files with its `*.auto.pkrvars.*`), HCL2 JSON (`.pkr.json`), or a legacy JSON template.
 *
 * @remarks
 * Variables take values from their default (where `env("X")` is allowed), `PKR_VAR_name`,
 * auto var files, then `options.variables` in order; types convert and validation blocks run.
 * `locals` may use variables, other locals and the supported functions (`HCL_FUNCTIONS`); Packer
 * functions that read remote systems (`vault`, `aws_secretsmanager`, ...) are refused by name.
 * Every `amazon-chroot` source or builder becomes a validated {@link BuildConfig}; other builder
 * types are an error naming them (unless `except`/`only` leaves them out). Provisioners `shell`,
 * `file` and `shell-local` and the post-processor `manifest` are kept in template order; others
 * are an error listing them, or a warning with `ignoreUnsupported`.
 *
 * @example
 * ```ts
 * import { buildAmi, loadPackerTemplate, runPackerProvisioners, writePackerManifest } from 'ami-chroot';
 *
 * const template = await loadPackerTemplate('ubuntu.pkr.hcl', { variables: [{ name: 'region', value: 'eu-west-1' }] });
 * for (const build of template.builds) {
 *   const result = await buildAmi(build.config, (chroot, info) => runPackerProvisioners(build, chroot, info.packer));
 *   await writePackerManifest(build, result);
 * }
 * ```
 * @param path - a template file or a directory of HCL2 files
 * @param options - variables, build selection, unsupported steps
 * @throws {@link ConfigError} whose issues name `file:line` and the fix, for every problem found
 * @public
 */
export async function loadPackerTemplate(
  path: string,
  options: LoadPackerTemplateOptions = {},
): Promise<PackerTemplate> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    fail(
      [
        {
          location: path,
          message: `cannot read the template (${(error as NodeJS.ErrnoException).code ?? 'error'}); check the path`,
        },
      ],
      error,
    );
  }
  if (info.isDirectory() || path.endsWith('.pkr.hcl') || path.endsWith('.pkr.json')) return loadHcl(path, options);
  const text = await readFile(path, 'utf8');
  if (!path.endsWith('.json'))
    fail([
      {
        location: path,
        message: 'unknown template kind; name it *.pkr.hcl (HCL2), *.pkr.json (HCL2 JSON) or *.json (legacy JSON)',
      },
    ]);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    const pos = /position (\d+)/.exec((error as Error).message);
    fail(
      [
        {
          location: pos ? `${path}:${lineAt(text, Number(pos[1]))}` : path,
          message: `is not valid JSON: ${(error as Error).message}`,
        },
      ],
      error,
    );
  }
  if (!isRecord(json)) fail([{ location: path, message: 'must be a JSON object' }]);
  // A JSON file with HCL2's blocks is HCL2 JSON whatever its name.
  if ('source' in json || 'build' in json) return loadHcl(path, options);
  return loadLegacy(path, text, json, options);
}
