import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { fromPackerConfig } from '../../../src/config/packer.js';
import { resolveConfig } from '../../../src/config/resolve.js';
import { validateBuildConfig } from '../../../src/config/schema.js';
import {
  CONFIG_DOC,
  MARKERS,
  ROOT,
  readConfigModel,
  renderOptionTable,
  updateDoc,
} from '../../../scripts/gen-config-table.js';
import type { OptionRow } from '../../../scripts/gen-config-table.js';

const model = readConfigModel();
const rowsByPacker = new Map<string, OptionRow>(model.rows.flatMap((r) => r.packer.map((p) => [p, r] as const)));

/** The "• name (type)" bullets of Packer's docs; a 4-space bullet is a field of the bullet above it. */
function packerBullets(): string[] {
  const text = readFileSync(join(import.meta.dirname, 'fixtures/packer-chroot-options.txt'), 'utf8');
  const names: string[] = [];
  let parent = '';
  for (const line of text.split('\n')) {
    const m = /^( +)• ([a-z_]+) \(([^)]+)\)$/.exec(line);
    if (!m) continue;
    const [, indent, name, type] = m;
    if (indent!.length <= 2) {
      // Fields of a list option are written `parent[].field` in the table, of an object `parent.field`.
      parent = /^array/.test(type!) ? `${name!}[]` : name!;
      names.push(name!);
    } else names.push(`${parent}.${name!}`);
  }
  return names;
}

describe('docs/configuration.md', () => {
  it('holds the tables the code generates now (run `npx tsx scripts/gen-config-table.ts` when this fails)', () => {
    const committed = readFileSync(CONFIG_DOC, 'utf8');
    expect(updateDoc(committed, model)).toBe(committed);
  });

  it('has a row for every option bullet of Packer’s amazon-chroot docs', () => {
    const bullets = packerBullets();
    // The docs list 46 options and 10 fields of two of them: a parse that finds fewer is broken.
    expect(bullets).toHaveLength(56);
    const missing = bullets.filter((name) => !rowsByPacker.has(name));
    expect(missing).toEqual([]);
  });

  it('has one row per BuildConfig option, and each named Packer option imports into that option', () => {
    const topLevel = model.rows.filter((r) => !/[.[]/.test(r.name));
    expect(new Set(topLevel.map((r) => r.name)).size).toBe(topLevel.length);
    // Every documented option is one the validation accepts (an unknown key gets "is not an option").
    const unknown = (key: string): string[] =>
      validateBuildConfig({ amiName: 'docs-test', sourceAmi: 'ami-0123456789abcdef0', [key]: undefined })
        .filter((i) => i.message.startsWith('is not an option'))
        .map((i) => i.path);
    expect(unknown('amiNmae')).toEqual(['amiNmae']);
    expect(topLevel.flatMap((r) => unknown(r.name))).toEqual([]);
    expect(topLevel.length).toBeGreaterThanOrEqual(60);
    // A Packer name in a row really lands in that row's option: import it with a value that is valid alone.
    const samples: Readonly<Record<string, unknown>> = {
      source_ami: 'ami-0123456789abcdef0',
      ami_description: 'd',
      mount_options: ['nouuid'],
      max_retries: 3,
    };
    for (const [snake, value] of Object.entries(samples)) {
      const imported = fromPackerConfig({
        ami_name: 'docs-test',
        source_ami: 'ami-0123456789abcdef0',
        [snake]: value,
      }) as unknown as Record<string, unknown>;
      expect(imported[rowsByPacker.get(snake)!.name]).toEqual(value);
    }
  });

  it('states defaults that resolveConfig really fills in', () => {
    const resolved = resolveConfig(
      { amiName: 'docs-test', sourceAmi: 'ami-0123456789abcdef0' },
      {},
    ) as unknown as Record<string, unknown>;
    let checked = 0;
    for (const row of model.rows) {
      if (/[.[]/.test(row.name) || !(row.name in resolved)) continue;
      const cell = /^`([^`]*)`$/.exec(row.defaultValue)?.[1] ?? row.defaultValue;
      let expected: unknown;
      if (cell === 'true' || cell === 'false') expected = cell === 'true';
      else if (/^\d+$/.test(cell)) expected = Number(cell);
      else if (cell === '[]') expected = [];
      else if (cell === '{}') expected = {};
      else if (/^"[^"]*"$/.test(cell)) expected = JSON.parse(cell);
      else if (cell !== row.defaultValue) expected = cell;
      else continue;
      const actual = resolved[row.name];
      const value = typeof actual === 'object' && actual !== null && 'source' in actual ? actual.source : actual;
      expect({ option: row.name, value }).toEqual({ option: row.name, value: expected });
      checked++;
    }
    // Booleans, lists, maps, the lock dir, the mount path, the command wrapper, the partition...
    expect(checked).toBeGreaterThanOrEqual(25);
  });

  it('says truly what happens to the Packer options that have no field', () => {
    const base = { ami_name: 'docs-test', source_ami: 'ami-0123456789abcdef0' };
    expect(model.ignored.map(([k]) => k)).toEqual(['type', 'name', 'skip_credential_validation']);
    for (const [key] of model.ignored) {
      expect(() =>
        fromPackerConfig({ ...base, [key]: key === 'type' ? 'amazon-chroot' : key === 'name' ? 'x' : true }),
      ).not.toThrow();
    }
    expect(model.unsupported.length).toBeGreaterThan(0);
    for (const [key] of model.unsupported) {
      const error = (() => {
        try {
          fromPackerConfig({
            ...base,
            [key]: key === 'assume_role' ? { role_arn: 'arn:aws:iam::111122223333:role/x' } : 'x',
          });
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues.map((i) => i.path)).toEqual([key]);
    }
  });

  it('keeps its generated blocks between markers, and the generator refuses a page without them', () => {
    const committed = readFileSync(CONFIG_DOC, 'utf8');
    for (const [begin, end] of Object.values(MARKERS)) {
      expect(committed.indexOf(begin)).toBeGreaterThan(-1);
      expect(committed.indexOf(end)).toBeGreaterThan(committed.indexOf(begin));
    }
    expect(() => updateDoc('# no markers\n', model)).toThrow(/lacks the markers/);
    expect(renderOptionTable(model)).toContain('| `chrootMounts` | `chroot_mounts` |');
  });
});

describe('scripts/gen-config-table.ts', () => {
  const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

  it('fails when BuildConfig has a field the schema does not accept', () => {
    const altered = (path: string): string =>
      path === 'src/config/schema.ts' ? read(path).replace(/\n {2}lockDir: [^\n]+\n/, '\n') : read(path);
    expect(() => readConfigModel(altered)).toThrow(/BuildConfig\.lockDir is not a key of the schema/);
  });

  it('fails when a Packer option maps to no BuildConfig field', () => {
    const altered = (path: string): string =>
      path === 'src/config/packer/options.ts'
        ? read(path).replace("to: 'mountOptions'", "to: 'mountOptionz'")
        : read(path);
    expect(() => readConfigModel(altered)).toThrow(/mount_options maps to mountOptionz/);
  });

  it('fails when a BuildConfig field has no TSDoc', () => {
    const altered = (path: string): string =>
      path === 'src/config/types.ts'
        ? read(path).replace(/\n *\/\*\* Directory of the cross-process device lock\.[^\n]*\n/, '\n')
        : read(path);
    expect(() => readConfigModel(altered)).toThrow(/BuildConfig\.lockDir has no TSDoc/);
  });
});
