import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as api from '../../../src/index.js';
import { fromPackerConfig } from '../../../src/config/packer.js';
import { resolveConfig } from '../../../src/config/resolve.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const DOCS = join(ROOT, 'docs');
const page = (name: string): string => readFileSync(join(DOCS, name), 'utf8');

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
const slug = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

describe('docs/errors.md', () => {
  const text = page('errors.md');

  it('has a section for every error class the package exports, with the code that class throws', () => {
    // The code of each class, from its constructor's super('ERR_…') call.
    const source = readFileSync(join(ROOT, 'src/errors.ts'), 'utf8');
    const codes = new Map(
      [...source.matchAll(/export class (\w+) extends AmiChrootError \{[\s\S]*?super\(\s*'(ERR_[A-Z_]+)'/g)].map(
        (m) => [m[1]!, m[2]!],
      ),
    );
    const exported = Object.entries(api)
      .filter(
        ([, value]) =>
          typeof value === 'function' && value !== api.AmiChrootError && value.prototype instanceof api.AmiChrootError,
      )
      .map(([name]) => name)
      .sort();
    expect(exported.length).toBeGreaterThanOrEqual(16);
    expect([...codes.keys()].sort()).toEqual(exported);
    for (const name of exported) expect(text).toContain(`### \`${name}\` — \`${codes.get(name)!}\``);
  });

  it('names every ErrorCode and every Phase', () => {
    const source = readFileSync(join(ROOT, 'src/errors.ts'), 'utf8');
    const union = (type: string): string[] =>
      [...(new RegExp(`export type ${type} =([^;]+);`).exec(source)?.[1] ?? '').matchAll(/'([^']+)'/g)].map(
        (m) => m[1]!,
      );
    expect(union('ErrorCode').length).toBeGreaterThanOrEqual(16);
    for (const code of union('ErrorCode')) expect(text).toContain(`\`${code}\``);
    expect(union('Phase').length).toBeGreaterThanOrEqual(20);
    for (const phase of union('Phase')) expect(text).toContain(`\`${phase}\``);
  });
});

describe('docs/migration-from-packer.md', () => {
  it('shows a builder template that fromPackerConfig imports, with the script’s variable winning', () => {
    const json = /```json\n([\s\S]*?)```/.exec(page('migration-from-packer.md'))?.[1];
    expect(json).toBeDefined();
    const config = resolveConfig(fromPackerConfig(JSON.parse(json!), { variables: { region: 'eu-west-1' } }), {});
    expect(config.region).toBe('eu-west-1');
    expect(config.amiName.source).toBe('amazon-chroot-test-{{timestamp}}');
    expect(config.sourceAmiFilter?.owners).toEqual(['137112412989']);
    expect(config.enaSupport).toBe(true);
  });

  it('wires Ctrl-C with process.on, never process.once', () => {
    const text = page('migration-from-packer.md');
    expect(text).toContain("process.on('SIGINT', () => controller.abort());");
    expect(text).not.toContain('process.once(');
  });
});

describe('links between the pages', () => {
  it('point at pages and headings that exist', () => {
    const pages = readdirSync(DOCS).filter((f) => f.endsWith('.md'));
    expect(pages).toEqual(expect.arrayContaining(['configuration.md', 'errors.md', 'migration-from-packer.md']));
    let links = 0;
    for (const name of pages) {
      for (const [, target] of page(name).matchAll(/\]\(([^)]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const [file, anchor] = target!.split('#');
        const targetPage = file === '' ? name : file!;
        expect({ from: name, target, exists: pages.includes(targetPage) }).toEqual({
          from: name,
          target,
          exists: true,
        });
        if (anchor !== undefined) {
          const headings = [...page(targetPage).matchAll(/^#+ (.+)$/gm)].map((m) => slug(m[1]!));
          expect({ from: name, target, anchor: headings.includes(anchor) }).toEqual({
            from: name,
            target,
            anchor: true,
          });
        }
        links++;
      }
    }
    expect(links).toBeGreaterThanOrEqual(5);
  });
});
