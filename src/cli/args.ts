/**
 * Command-line parsing for `ami-chroot`. Packer's single-dash spelling (`-var`, `-var-file`,
 * `-only`) is accepted as well as `--var`, so a Packer command line works after renaming the
 * program.
 */

/** Exit codes, as documented in the help text. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  leftovers: 3,
  interrupted: 130,
} as const;

export const HELP = `Usage: ami-chroot <command> [options]

Build EBS-backed AMIs in a chroot from Packer templates (HCL2 .pkr.hcl, HCL2 JSON
.pkr.json, legacy JSON) or a TypeScript/JavaScript build file.

Commands:
  build <template|dir|build.ts>  Run the template's amazon-chroot builds (as root on EC2)
                                 --dry-run: ask AWS what each build would do (source,
                                 names, name clashes, device, requests); nothing is created
  validate <template|dir>        Check the template: variables, options, provisioners
  plan <template|dir>            Print each build's resolved config and provisioning
                                 steps; nothing is created
  cleanup                        List what killed builds left behind (volumes, snapshots,
                                 images, mounts); --yes removes it

Template options (build, validate, plan):
  -var NAME=VALUE                Set a variable; repeatable. Later -var/-var-file win
  -var-file FILE                 Variables from a .pkrvars.hcl or JSON file; repeatable
  -only NAME[,NAME]              Only these builds (amazon-chroot.NAME, globs with *)
  -except NAME[,NAME]            Skip these builds
  --ignore-unsupported           Skip unsupported provisioners/post-processors (warning)

Cleanup options:
  --region REGION                Region to sweep; repeatable (default: the host's)
  --older-than DURATION          Only resources older than this, e.g. 6h, 90m (default 6h)
  --yes                          Remove what was found (default: dry run)

Output:
  --json                         One JSON event per line on stdout (logs on stderr)
  --plain                        Plain lines even on a terminal (default in CI)
  -h, --help                     This text
  --version                      The version

A build file (build.ts, build.mjs, build.js) exports \`config\` (a BuildConfig) and
\`provision\` (chroot, build) => Promise<void>. A .ts file needs a TypeScript loader:
ami-chroot registers tsx when it is installed, else run on Node >= 22.6 with
NODE_OPTIONS=--experimental-strip-types, or compile the file to JavaScript.

Ctrl-C stops the build and cleans up everything it created; a second Ctrl-C does not
interrupt the cleanup.

Exit codes:
  0    success
  1    the build failed (everything it created was removed, unless reported otherwise)
  2    usage or template error: nothing was started
  3    finished, but something could not be removed (listed on stderr); run
       \`ami-chroot cleanup\` to see and remove it
  130  interrupted by Ctrl-C or SIGTERM (after cleanup)
`;

/** A parsed command line. */
export interface CliArgs {
  readonly command: 'build' | 'validate' | 'plan' | 'cleanup' | 'help' | 'version';
  readonly target?: string;
  readonly variables: ({ file: string } | { name: string; value: string })[];
  readonly only: string[];
  readonly except: string[];
  readonly ignoreUnsupported: boolean;
  readonly json: boolean;
  readonly plain: boolean;
  readonly regions: string[];
  readonly olderThanMs?: number;
  readonly yes: boolean;
  readonly dryRun: boolean;
}

/** A command line that cannot be run: the message says what to change. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

function duration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(text);
  if (!m) throw new UsageError(`--older-than ${JSON.stringify(text)}: write a duration like 30m, 6h or 2d`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's'];
}

/** Parses argv (without node and the script). */
export function parseArgs(argv: readonly string[]): CliArgs {
  const args = {
    variables: [] as CliArgs['variables'],
    only: [] as string[],
    except: [] as string[],
    regions: [] as string[],
    ignoreUnsupported: false,
    json: false,
    plain: false,
    yes: false,
    dryRun: false,
  };
  let olderThanMs: number | undefined;
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    if (!raw.startsWith('-') || raw === '-') {
      positional.push(raw);
      continue;
    }
    const eq = raw.indexOf('=');
    const flag = (eq > 0 ? raw.slice(0, eq) : raw).replace(/^--?/, '');
    const value = (): string => {
      if (eq > 0) return raw.slice(eq + 1);
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`${raw} needs a value`);
      return next;
    };
    switch (flag) {
      case 'var': {
        const v = value();
        const at = v.indexOf('=');
        if (at <= 0) throw new UsageError(`-var ${JSON.stringify(v)}: write -var NAME=VALUE`);
        args.variables.push({ name: v.slice(0, at), value: v.slice(at + 1) });
        break;
      }
      case 'var-file':
        args.variables.push({ file: value() });
        break;
      case 'only':
        args.only.push(...value().split(',').filter(Boolean));
        break;
      case 'except':
        args.except.push(...value().split(',').filter(Boolean));
        break;
      case 'region':
        args.regions.push(value());
        break;
      case 'older-than':
        olderThanMs = duration(value());
        break;
      case 'ignore-unsupported':
        args.ignoreUnsupported = true;
        break;
      case 'json':
        args.json = true;
        break;
      case 'plain':
        args.plain = true;
        break;
      case 'dry-run':
        args.dryRun = true;
        break;
      case 'yes':
      case 'y':
        args.yes = true;
        break;
      case 'h':
      case 'help':
        return { ...args, command: 'help' };
      case 'version':
        return { ...args, command: 'version' };
      default:
        throw new UsageError(`unknown option ${raw}; see ami-chroot --help`);
    }
  }
  const [command, target, ...extra] = positional;
  if (command === undefined || command === 'help') return { ...args, command: 'help' };
  if (command !== 'build' && command !== 'validate' && command !== 'plan' && command !== 'cleanup')
    throw new UsageError(`unknown command ${JSON.stringify(command)}; the commands are build, validate, plan, cleanup`);
  if (command === 'cleanup') {
    if (target !== undefined) throw new UsageError(`cleanup takes no template (got ${JSON.stringify(target)})`);
  } else if (target === undefined)
    throw new UsageError(`${command} needs a template: ami-chroot ${command} <template>`);
  if (args.dryRun && command !== 'build')
    throw new UsageError(
      `--dry-run is an option of build (ami-chroot build --dry-run <template>); ${command === 'plan' ? 'plan never calls AWS' : `${command} does not take it`}`,
    );
  if (extra.length > 0) throw new UsageError(`unexpected ${extra.map((e) => JSON.stringify(e)).join(' ')}`);
  return {
    ...args,
    command,
    ...(target === undefined ? {} : { target }),
    ...(olderThanMs === undefined ? {} : { olderThanMs }),
  };
}
