/**
 * The shapes of a loaded Packer template: what {@link loadPackerTemplate} returns and what
 * {@link runPackerProvisioners} and {@link writePackerManifest} take.
 */
import type { BuildConfig } from '../types.js';

/**
 * Options of {@link loadPackerTemplate}.
 * @public
 */
export interface LoadPackerTemplateOptions {
  /**
   * Variable values from the command line and var files, applied in this order, later wins
   * (Packer's rule for `-var` and `-var-file`): `{ file }` is a `.pkrvars.hcl`, `.pkrvars.json` or
   * (legacy templates) JSON var file; `{ name, value }` is one `-var name=value`. For a typed HCL2
   * variable the value is parsed as an HCL expression unless the type is `string`.
   */
  readonly variables?: readonly (
    | {
        /** A var file's path. */
        readonly file: string;
      }
    | {
        /** The variable's name. */
        readonly name: string;
        /** Its value, as written after `-var name=`. */
        readonly value: string;
      }
  )[];
  /** Build only these builds: names such as `amazon-chroot.base`, `mybuild.amazon-chroot.base`; `*` globs. */
  readonly only?: readonly string[];
  /** Skip these builds (same names as `only`). */
  readonly except?: readonly string[];
  /**
   * Environment for `env()` in variable defaults and for `PKR_VAR_name` values.
   * @defaultValue `process.env`
   */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Turn unsupported provisioners and post-processors into warnings (they are skipped) instead of
   * errors.
   * @defaultValue false
   */
  readonly ignoreUnsupported?: boolean;
  /** The time `timestamp()` answers. @defaultValue now */
  readonly now?: Date;
}

/**
 * One provisioner or post-processor block of a template, in template order.
 * @public
 */
export interface PackerStep {
  /** The Packer type, e.g. `shell`, `file`, `shell-local`, `manifest`. */
  readonly type: string;
  /** Where it is written: `file:line`. */
  readonly location: string;
  /**
   * Its settings with every expression evaluated. HCL2 references to `build.*` (Packer's build
   * data: `build.SourceAMIName`, `build.MountPath`, ...) are evaluated against `build`.
   */
  settings(build: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>>;
}

/**
 * One `amazon-chroot` build of a template.
 * @public
 */
export interface PackerBuild {
  /** Its name as `--only` sees it: `amazon-chroot.<source>` (HCL2), the builder's name (JSON). */
  readonly name: string;
  /** The source or builder name alone (the manifest's `name`). */
  readonly sourceName: string;
  /** The HCL2 build block's `name`, when it has one. */
  readonly buildName?: string;
  /** The builder's settings as a validated config. */
  readonly config: BuildConfig;
  /** Provisioners, in template order, already filtered by their `only`/`except`. */
  readonly provisioners: readonly PackerStep[];
  /** Post-processors, in template order. */
  readonly postProcessors: readonly PackerStep[];
}

/**
 * A loaded Packer template.
 * @public
 */
export interface PackerTemplate {
  /** The file or directory it was read from. */
  readonly path: string;
  /** `hcl2` (`.pkr.hcl`), `hcl2-json` (`.pkr.json`) or `json` (a legacy template). */
  readonly format: 'hcl2' | 'hcl2-json' | 'json';
  /** The builds selected by `only`/`except`. */
  readonly builds: readonly PackerBuild[];
  /** Things that were ignored, each with its location. */
  readonly warnings: readonly string[];
  /** Values of variables marked `sensitive` (to redact from anything printed). */
  readonly sensitiveValues: readonly string[];
}
