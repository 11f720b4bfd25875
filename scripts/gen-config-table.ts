/**
 * Generates the option tables of docs/configuration.md from the code, so they cannot drift:
 *
 * - the Packer → BuildConfig key maps of `src/config/packer/options.ts` (`OPTIONS`, `MAPPING_KEYS`,
 *   `FILTER_KEYS`, `POLLING_KEYS`, `DEREGISTRATION_KEYS`, `IGNORED`, `UNSUPPORTED`);
 * - the keys the schema accepts (`ENTRIES` of `src/config/schema.ts`);
 * - the fields of `BuildConfig` and its nested interfaces, with their TSDoc summary and
 *   `@defaultValue` (`src/config/types.ts`, `src/types.ts`);
 * - the wait defaults (`DEFAULT_WAIT_POLICIES` of `src/aws/poll.ts`).
 *
 * The maps are private constants, so they are read from the source text with the TypeScript
 * compiler API rather than imported. Any disagreement between them (a BuildConfig field the schema
 * does not accept, a Packer option mapped to a field that does not exist) is an error.
 *
 * Usage: `npx tsx scripts/gen-config-table.ts` rewrites the tables in place;
 * `npx tsx scripts/gen-config-table.ts --check` exits 1 when the committed tables are stale.
 *
 * @packageDocumentation
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { DEFAULT_WAIT_POLICIES } from '../src/aws/poll-policy.js';
import type { WaitKind } from '../src/types.js';

/** The repository root. @internal */
export const ROOT = resolve(import.meta.dirname, '..');
/** The page the tables live in. @internal */
export const CONFIG_DOC = join(ROOT, 'docs/configuration.md');

/** Marks the start and end of one generated block in the page. @internal */
export const MARKERS = {
  options: ['<!-- BEGIN GENERATED: options (scripts/gen-config-table.ts) -->', '<!-- END GENERATED: options -->'],
  waits: ['<!-- BEGIN GENERATED: waits (scripts/gen-config-table.ts) -->', '<!-- END GENERATED: waits -->'],
  packerOnly: [
    '<!-- BEGIN GENERATED: packer-only (scripts/gen-config-table.ts) -->',
    '<!-- END GENERATED: packer-only -->',
  ],
} as const;

/** One row of the option table. @internal */
export interface OptionRow {
  /** Group heading. */
  readonly group: string;
  /** Our path, e.g. `amiName`, `sourceAmiFilter.owners`, `amiBlockDeviceMappings[].iops`. */
  readonly name: string;
  /** Packer's names for it (several for `tags` and the `tag` blocks); empty when it is ours. */
  readonly packer: readonly string[];
  /** The TypeScript type, as written. */
  readonly type: string;
  /** The `@defaultValue`, or a placeholder. */
  readonly defaultValue: string;
  /** The TSDoc summary on one line. */
  readonly meaning: string;
}

// --- Reading the source ---------------------------------------------------------------------

/** Reads a source file by its path relative to the repository root. @internal */
export type ReadSource = (relativePath: string) => string;

const readRepoFile: ReadSource = (relativePath) => readFileSync(join(ROOT, relativePath), 'utf8');

function parser(read: ReadSource): (relativePath: string) => ts.SourceFile {
  return (relativePath) => ts.createSourceFile(relativePath, read(relativePath), ts.ScriptTarget.Latest, true);
}

function nameOf(name: ts.PropertyName): string {
  if (ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isNumericLiteral(name)) return name.text;
  throw new Error(`unexpected property name ${name.getText()}`);
}

/** The object literal assigned to `const <name> = { ... }` (through `as`/`satisfies`/calls such as Object.freeze). */
function objectConst(file: ts.SourceFile, name: string): ts.ObjectLiteralExpression {
  for (const statement of file.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    for (const d of statement.declarationList.declarations) {
      if (!ts.isIdentifier(d.name) || d.name.text !== name || !d.initializer) continue;
      let e: ts.Expression = d.initializer;
      while (
        ts.isAsExpression(e) ||
        ts.isSatisfiesExpression(e) ||
        ts.isParenthesizedExpression(e) ||
        (ts.isCallExpression(e) && e.arguments.length === 1)
      ) {
        e = ts.isCallExpression(e) ? e.arguments[0]! : e.expression;
      }
      if (ts.isObjectLiteralExpression(e)) return e;
    }
  }
  throw new Error(`${file.fileName}: no object constant ${name}`);
}

function properties(object: ts.ObjectLiteralExpression): ts.PropertyAssignment[] {
  return object.properties.map((p) => {
    if (!ts.isPropertyAssignment(p)) throw new Error(`unexpected member ${p.getText()}`);
    return p;
  });
}

/** `{ a: 'x', b: 'y' }` → [['a', 'x'], ['b', 'y']]. */
function stringEntries(file: ts.SourceFile, name: string): [string, string][] {
  return properties(objectConst(file, name)).map((p) => {
    if (!ts.isStringLiteralLike(p.initializer)) throw new Error(`${name}.${nameOf(p.name)}: expected a string literal`);
    return [nameOf(p.name), p.initializer.text];
  });
}

/** `{ snake: { to: 'camel', kind: 'k' } }` → [['snake', 'camel', 'k']]. */
function mappedEntries(file: ts.SourceFile, name: string): [string, string, string][] {
  return properties(objectConst(file, name)).map((p) => {
    if (!ts.isObjectLiteralExpression(p.initializer))
      throw new Error(`${name}.${nameOf(p.name)}: expected { to, kind }`);
    const fields = new Map(
      properties(p.initializer).map((f) => {
        if (!ts.isStringLiteralLike(f.initializer))
          throw new Error(`${name}.${nameOf(p.name)}.${nameOf(f.name)}: expected a string literal`);
        return [nameOf(f.name), f.initializer.text] as const;
      }),
    );
    return [nameOf(p.name), fields.get('to') ?? '', fields.get('kind') ?? ''];
  });
}

/** One documented member of an interface. */
interface Member {
  readonly name: string;
  readonly type: string;
  readonly summary: string;
  readonly defaultValue: string | undefined;
  /** The `// --- Name ---` section comment above it, if any. */
  readonly section: string | undefined;
}

const BLOCK_TAG =
  /(?<![{\w])@(defaultValue|remarks|example|public|internal|see|deprecated|property|param|returns|throws|privateRemarks)\b/;

/** Splits a `/** ... *\/` comment into its summary and `@defaultValue`. */
function parseDoc(comment: string): { summary: string; defaultValue: string | undefined } {
  const body = comment
    .replace(/^\/\*\*/, '')
    .replace(/\*\/$/, '')
    .split('\n')
    .map((line) => line.replace(/^\s*\* ?/, ''))
    .join('\n');
  const parts = body.split(new RegExp(`(?=${BLOCK_TAG.source})`));
  const summary = BLOCK_TAG.test(parts[0] ?? '') ? '' : (parts[0] ?? '');
  const def = parts.find((p) => p.startsWith('@defaultValue'));
  const clean = (s: string): string => s.replace(/\s+/g, ' ').trim();
  return {
    summary: clean(summary),
    defaultValue: def === undefined ? undefined : clean(def.slice('@defaultValue'.length)),
  };
}

function interfaceMembers(file: ts.SourceFile, name: string): Member[] {
  const decl = file.statements.find(
    (s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === name,
  );
  if (!decl) throw new Error(`${file.fileName}: no interface ${name}`);
  const text = file.getFullText();
  let section: string | undefined;
  return decl.members.map((m) => {
    if (!ts.isPropertySignature(m) || !m.type) throw new Error(`${name}: unexpected member ${m.getText()}`);
    let doc: string | undefined;
    for (const range of ts.getLeadingCommentRanges(text, m.pos) ?? []) {
      const comment = text.slice(range.pos, range.end);
      const heading = /^\/\/\s*---\s*(.+?)\s*-*\s*$/.exec(comment);
      if (heading) section = heading[1];
      else if (comment.startsWith('/**')) doc = comment;
    }
    if (doc === undefined) throw new Error(`${name}.${nameOf(m.name)} has no TSDoc`);
    const { summary, defaultValue } = parseDoc(doc);
    return { name: nameOf(m.name), type: m.type.getText(), summary, defaultValue, section };
  });
}

// --- Formatting -----------------------------------------------------------------------------

/** `readonly string[]` → `string[]`, `Readonly<Record<…>>` → `Record<…>`, one line. */
function simplifyType(type: string): string {
  let t = type.replace(/\s+/g, ' ').replace(/\breadonly /g, '');
  for (let previous = ''; previous !== t;) {
    previous = t;
    t = t.replace(/Readonly<((?:[^<>]|<(?:[^<>]|<[^<>]*>)*>)*)>/, '$1');
  }
  return t.replace(/; \}/g, ' }');
}

/** TSDoc to table-cell markdown: links to code spans, our column's `(Packer …)` notes dropped, pipes escaped. */
function cell(text: string): string {
  return text
    .replace(/\{@link\s+([^}|]+?)\s*\|\s*([^}]+?)\s*\}/g, '$2')
    .replace(/\{@link\s+([^}]+?)\s*\}/g, '`$1`')
    .replace(/\\([{}@])/g, '$1')
    .replace(/ ?\(Packer `[^`]+`(?:\s*\/\s*`[^`]+`)?(?:,[^;()]*)?\)/g, '')
    .replace(/\(Packer `[^`]+`(?:\s*\/\s*`[^`]+`)?; /g, '(')
    .replace(/\(ours: /g, '(')
    .replace(/\|/g, '\\|')
    .trim();
}

const code = (s: string): string => `\`${s.replace(/\|/g, '\\|')}\``;

// --- The tables -----------------------------------------------------------------------------

/** Where each BuildConfig section of types.ts lands; fields listed in GROUP_OF override it. */
const SECTION_GROUP: Readonly<Record<string, string>> = {
  Access: 'Access',
  Source: 'Source',
  AMI: 'AMI',
  'Block devices': 'Block devices',
  'Root volume': 'Volume',
  Chroot: 'Chroot',
  'ami-chroot': 'Ours',
};
const GROUP_OF: Readonly<Record<string, string>> = {
  amiUsers: 'Sharing and region copies',
  amiGroups: 'Sharing and region copies',
  amiOrgArns: 'Sharing and region copies',
  amiOuArns: 'Sharing and region copies',
  snapshotUsers: 'Sharing and region copies',
  snapshotGroups: 'Sharing and region copies',
  amiRegions: 'Sharing and region copies',
  regionKmsKeyIds: 'Sharing and region copies',
  snapshotCopyDurationMinutes: 'Sharing and region copies',
  skipSaveBuildRegion: 'Sharing and region copies',
  polling: 'Polling',
};
/** Group order in the page. */
export const GROUPS = [
  'Access',
  'Source',
  'AMI',
  'Sharing and region copies',
  'Block devices',
  'Volume',
  'Chroot',
  'Polling',
  'Ours',
] as const;

/** Everything the tables are made of, read from the code. @internal */
export interface ConfigModel {
  /** Option rows, grouped and in page order. */
  readonly rows: readonly OptionRow[];
  /** Packer options accepted and ignored, with the reason. */
  readonly ignored: readonly (readonly [string, string])[];
  /** Packer options refused, with what to do instead. */
  readonly unsupported: readonly (readonly [string, string])[];
}

/**
 * Reads the maps, the schema keys and the interfaces, checks they agree, and returns the rows.
 * @param read - reads a source file (tests pass altered sources)
 * @throws Error when they disagree (a field without a schema entry, a mapping to no field, ...)
 * @internal
 */
export function readConfigModel(read: ReadSource = readRepoFile): ConfigModel {
  const parse = parser(read);
  const packer = parse('src/config/packer/options.ts');
  const schema = parse('src/config/schema.ts');
  const types = parse('src/config/types.ts');
  const common = parse('src/types.ts');

  const options = mappedEntries(packer, 'OPTIONS');
  const schemaKeys = properties(objectConst(schema, 'ENTRIES')).map((p) => nameOf(p.name));
  const fields = interfaceMembers(types, 'BuildConfig');
  const fieldNames = fields.map((f) => f.name);

  const problems: string[] = [];
  for (const f of fieldNames)
    if (!schemaKeys.includes(f)) problems.push(`BuildConfig.${f} is not a key of the schema (ENTRIES)`);
  for (const k of schemaKeys) if (!fieldNames.includes(k)) problems.push(`schema key ${k} is not a BuildConfig field`);
  for (const [snake, to] of options)
    if (!fieldNames.includes(to))
      problems.push(`Packer option ${snake} maps to ${to}, which is not a BuildConfig field`);

  const packerNames = (to: string): string[] => options.filter(([, t]) => t === to).map(([snake]) => snake);
  const nested = (
    parentPacker: string | undefined,
    sep: string,
    keys: readonly (readonly [string, string])[],
    child: string,
  ): string[] =>
    parentPacker === undefined ? [] : keys.filter(([, c]) => c === child).map(([s]) => `${parentPacker}${sep}${s}`);

  const children: Readonly<
    Record<string, { iface: Member[]; sep: string; keys: readonly (readonly [string, string])[] }>
  > = {
    sourceAmiFilter: {
      iface: interfaceMembers(types, 'SourceAmiFilter'),
      sep: '.',
      keys: stringEntries(packer, 'FILTER_KEYS'),
    },
    deregistrationProtection: {
      iface: interfaceMembers(types, 'DeregistrationProtection'),
      sep: '.',
      keys: stringEntries(packer, 'DEREGISTRATION_KEYS'),
    },
    amiBlockDeviceMappings: {
      iface: interfaceMembers(types, 'BlockDeviceMapping'),
      sep: '[].',
      keys: mappedEntries(packer, 'MAPPING_KEYS').map(([s, to]) => [s, to] as const),
    },
    polling: {
      iface: interfaceMembers(common, 'PollingConfig'),
      sep: '.',
      keys: stringEntries(packer, 'POLLING_KEYS'),
    },
  };
  const waitPolicy = interfaceMembers(common, 'WaitPolicy');

  const rows: OptionRow[] = [];
  for (const f of fields) {
    const group = GROUP_OF[f.name] ?? (f.section === undefined ? undefined : SECTION_GROUP[f.section]);
    if (group === undefined) {
      problems.push(
        `BuildConfig.${f.name}: section ${JSON.stringify(f.section)} has no group in scripts/gen-config-table.ts`,
      );
      continue;
    }
    const packerOf = packerNames(f.name);
    rows.push({
      group,
      name: f.name,
      packer: packerOf,
      type: simplifyType(f.type),
      defaultValue: defaultOf(f),
      meaning: cell(f.summary),
    });
    const sub = children[f.name];
    if (!sub) continue;
    for (const m of sub.iface) {
      const path = `${f.name}${sub.sep}${m.name}`;
      rows.push({
        group,
        name: path,
        packer: nested(packerOf[0], sub.sep, sub.keys, m.name),
        type: simplifyType(m.type),
        defaultValue: defaultOf(m),
        meaning: cell(m.summary),
      });
      if (path === 'polling.waits') {
        for (const w of waitPolicy) {
          rows.push({
            group,
            name: `polling.waits.<wait>.${w.name}`,
            packer: [],
            type: simplifyType(w.type),
            defaultValue: w.defaultValue === undefined ? 'per wait, see [Waits](#waits)' : cell(w.defaultValue),
            meaning: cell(w.summary),
          });
        }
      }
    }
  }
  if (problems.length > 0) throw new Error(`The configuration sources disagree:\n  ${problems.join('\n  ')}`);
  rows.sort(
    (a, b) => GROUPS.indexOf(a.group as (typeof GROUPS)[number]) - GROUPS.indexOf(b.group as (typeof GROUPS)[number]),
  );
  return { rows, ignored: stringEntries(packer, 'IGNORED'), unsupported: stringEntries(packer, 'UNSUPPORTED') };
}

function defaultOf(m: Member): string {
  if (m.defaultValue !== undefined) return cell(m.defaultValue);
  return /(^|\. )Required\.( |$)/.test(m.summary) ? '**required**' : '—';
}

/** The option table, one sub-table per group. @internal */
export function renderOptionTable(model: ConfigModel): string {
  const out: string[] = [];
  for (const group of GROUPS) {
    const rows = model.rows.filter((r) => r.group === group);
    if (rows.length === 0) continue;
    out.push(`### ${group}`, '', '| Option | Packer | Type | Default | Meaning |', '| --- | --- | --- | --- | --- |');
    for (const r of rows) {
      const packer = r.packer.length > 0 ? r.packer.map(code).join(', ') : '— (ours)';
      out.push(`| ${code(r.name)} | ${packer} | ${code(r.type)} | ${r.defaultValue} | ${r.meaning} |`);
    }
    out.push('');
  }
  return out.join('\n').trimEnd();
}

const seconds = (ms: number): string =>
  ms === 0
    ? '0'
    : ms % 3_600_000 === 0
      ? `${ms / 3_600_000} h`
      : ms % 60_000 === 0
        ? `${ms / 60_000} min`
        : `${ms / 1000} s`;

/** The per-wait defaults, from DEFAULT_WAIT_POLICIES. @internal */
export function renderWaitTable(): string {
  const out = ['| Wait | Timeout | Min delay | Max delay | First delay |', '| --- | --- | --- | --- | --- |'];
  for (const [kind, p] of Object.entries(DEFAULT_WAIT_POLICIES) as [
    WaitKind,
    (typeof DEFAULT_WAIT_POLICIES)[WaitKind],
  ][]) {
    out.push(
      `| ${code(kind)} | ${seconds(p.timeoutMs)} | ${seconds(p.minDelayMs)} | ${seconds(p.maxDelayMs)} | ${seconds(p.firstDelayMs)} |`,
    );
  }
  return out.join('\n');
}

/** Packer options that have no BuildConfig field: ignored ones and refused ones. @internal */
export function renderPackerOnly(model: ConfigModel): string {
  const out = ['| Packer option | What happens |', '| --- | --- |'];
  for (const [name, why] of model.ignored) out.push(`| ${code(name)} | accepted and ignored: ${cell(why)} |`);
  for (const [name, what] of model.unsupported)
    out.push(
      `| ${code(name)} | a \`ConfigError\`: ${cell(what.replace(new RegExp(`^${name} is not supported; `), ''))} |`,
    );
  return out.join('\n');
}

/**
 * Puts each generated block between its markers in `doc`.
 * @throws Error when a marker pair is missing
 * @internal
 */
export function updateDoc(doc: string, model: ConfigModel = readConfigModel()): string {
  const blocks: Record<keyof typeof MARKERS, string> = {
    options: renderOptionTable(model),
    waits: renderWaitTable(),
    packerOnly: renderPackerOnly(model),
  };
  let out = doc;
  for (const [key, [begin, end]] of Object.entries(MARKERS) as [keyof typeof MARKERS, readonly [string, string]][]) {
    const start = out.indexOf(begin);
    const stop = out.indexOf(end);
    if (start < 0 || stop < start) throw new Error(`${CONFIG_DOC} lacks the markers ${begin} … ${end}`);
    out = `${out.slice(0, start + begin.length)}\n${blocks[key]}\n${out.slice(stop)}`;
  }
  return out;
}

// Run as a script: rewrite the page, or with --check report whether it is stale.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const current = readFileSync(CONFIG_DOC, 'utf8');
  const next = updateDoc(current);
  if (process.argv.includes('--check')) {
    if (next !== current) {
      console.error('docs/configuration.md is stale: run npx tsx scripts/gen-config-table.ts');
      process.exitCode = 1;
    }
  } else if (next !== current) {
    writeFileSync(CONFIG_DOC, next);
    console.log('docs/configuration.md updated');
  } else console.log('docs/configuration.md is up to date');
}
