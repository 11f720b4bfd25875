/**
 * The `@example` snippets of the TSDoc in src/ (and the README's ```ts blocks) compile against the public API, with the project's
 * compiler options, exactly as a user would paste them (`import { x } from 'ami-chroot'`, or from a
 * subpath such as `'ami-chroot/aws'`). And every value exported from any entry has such an example.
 *
 * One TypeScript program checks every snippet at once: each is written to its own `.mts` file (an
 * ES module whatever the nearest package.json says, so top-level `await` needs no wrapper) with
 * each package entry pointed at its source file. The files live under node_modules/.cache so that a
 * snippet importing `@aws-sdk/client-ec2` resolves it as a user's script would, and so that no
 * tsconfig `include` picks them up.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../../..');
const SRC = join(ROOT, 'src');
/** The package's entries (package.json `exports`) and the source file each is built from. */
const ENTRIES: Readonly<Record<string, string>> = {
  'ami-chroot': join(SRC, 'index.ts'),
  'ami-chroot/aws': join(SRC, 'aws/index.ts'),
  'ami-chroot/host': join(SRC, 'host/index.ts'),
  'ami-chroot/config': join(SRC, 'config/index.ts'),
};

/** One fenced `ts` block found under an `@example` tag. */
interface Snippet {
  /** The declaration it documents, e.g. `buildAmi` or `ScratchImage.preMountCommands`. */
  readonly symbol: string;
  /** `src/...:line` of the documented declaration. */
  readonly where: string;
  /** The code inside the fence. */
  readonly code: string;
}

/** An `@example` section that holds no ```ts block (nothing to check: a defect of its own). */
interface EmptyExample {
  readonly symbol: string;
  readonly where: string;
}

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out.sort();
}

function nameOf(node: ts.Node): string | undefined {
  if (ts.isVariableStatement(node)) {
    const first = node.declarationList.declarations[0];
    return first && ts.isIdentifier(first.name) ? first.name.text : undefined;
  }
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const name = (node as { name?: ts.Node }).name;
  if (name && (ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isPrivateIdentifier(name))) return name.text;
  return undefined;
}

/** `Outer.member` for a member, the declaration's own name at the top level. */
function qualifiedName(node: ts.Node): string {
  const parts: string[] = [];
  for (let n: ts.Node | undefined = node; n && !ts.isSourceFile(n); n = n.parent) {
    const name = nameOf(n);
    if (name !== undefined) parts.unshift(name);
  }
  return parts.join('.') || '(anonymous)';
}

/** The comment's lines without the `/**`, `*\/` and leading `*` decoration. */
function commentLines(raw: string): string[] {
  return raw
    .replace(/^\/\*\*/, '')
    .replace(/\*\/$/, '')
    .split('\n')
    .map((line) => line.replace(/^\s*\* ?/, ''));
}

/** The ```ts blocks of every `@example` section of one doc comment; `null` for a section with none. */
function examplesOf(raw: string): (string[] | null)[] {
  const sections: (string[] | null)[] = [];
  let section: string[] | undefined;
  let fence: string[] | undefined;
  let fenceIsTs = false;
  const close = (): void => {
    if (section) sections.push(section.length > 0 ? section : null);
    section = undefined;
  };
  for (const line of commentLines(raw)) {
    const trimmed = line.trim();
    if (fence) {
      if (trimmed.startsWith('```')) {
        if (fenceIsTs && section) section.push(fence.join('\n'));
        fence = undefined;
      } else fence.push(line);
      continue;
    }
    if (trimmed.startsWith('```')) {
      fence = [];
      fenceIsTs = /^```(ts|typescript)\s*$/.test(trimmed);
      continue;
    }
    // A block tag outside a fence ends the example section (and `@example` starts a new one).
    if (/^@[a-zA-Z]+/.test(trimmed)) {
      close();
      if (/^@example\b/.test(trimmed)) section = [];
    }
  }
  close();
  return sections;
}

async function collectExamples(): Promise<{ snippets: Snippet[]; empty: EmptyExample[] }> {
  const snippets: Snippet[] = [];
  const empty: EmptyExample[] = [];
  for (const file of await sourceFiles(SRC)) {
    const text = await readFile(file, 'utf8');
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      for (const doc of (node as { jsDoc?: readonly ts.JSDoc[] }).jsDoc ?? []) {
        const raw = text.slice(doc.getStart(source), doc.end);
        if (!raw.includes('@example')) continue;
        const symbol = qualifiedName(node);
        const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
        const where = `${relative(ROOT, file)}:${line}`;
        for (const blocks of examplesOf(raw)) {
          if (blocks === null) empty.push({ symbol, where });
          else for (const code of blocks) snippets.push({ symbol, where, code });
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  snippets.push(...(await readmeSnippets()));
  return { snippets, empty };
}

/** The README's ```ts blocks: users paste them as they are. */
async function readmeSnippets(): Promise<Snippet[]> {
  const text = await readFile(join(ROOT, 'README.md'), 'utf8');
  return [...text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => ({
    symbol: 'README.md',
    where: `README.md:${text.slice(0, m.index).split('\n').length}`,
    code: m[1]!,
  }));
}

function projectOptions(): ts.CompilerOptions {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    join(ROOT, 'tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  if (!parsed) throw new Error('tsconfig.json could not be read');
  return { ...parsed.options, noEmit: true };
}

/** `from 'ami-chroot…'` (and `import 'ami-chroot…'`) pointed at the sources, as the published package would be. */
function pointAtSources(code: string): string {
  return code.replace(
    /(\bfrom\s*|\bimport\s*\(?\s*)(['"])(ami-chroot(?:\/[a-z]+)?)\2/g,
    (match, lead: string, _quote: string, entry: string) => {
      const source = ENTRIES[entry];
      return source === undefined ? match : `${lead}${JSON.stringify(source.replace(/\.ts$/, '.js'))}`;
    },
  );
}

function describeDiagnostic(d: ts.Diagnostic): string {
  const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
  if (!d.file || d.start === undefined) return message;
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
  return `(${line + 1},${character + 1}) ${message}`;
}

let snippets: Snippet[] = [];
let emptyExamples: EmptyExample[] = [];
let workDir = '';
let program: ts.Program;
const fileOf = new Map<string, Snippet>();
/** A snippet that must not compile, checked in the same program: proves a broken example is caught. */
const CANARY =
  "import { shellQuote } from 'ami-chroot';\nconst quoted: number = shellQuote('x');\nconsole.log(quoted);\n";
let canaryFile = '';

beforeAll(async () => {
  ({ snippets, empty: emptyExamples } = await collectExamples());
  const cache = join(ROOT, 'node_modules/.cache');
  await mkdir(cache, { recursive: true });
  workDir = await mkdtemp(join(cache, 'ami-chroot-doc-examples-'));
  const files: string[] = [];
  for (const [i, snippet] of snippets.entries()) {
    const file = join(workDir, `${String(i).padStart(3, '0')}-${snippet.symbol.replace(/[^A-Za-z0-9_.-]/g, '_')}.mts`);
    await writeFile(file, `${pointAtSources(snippet.code)}\n`);
    files.push(file);
    fileOf.set(file, snippet);
  }
  canaryFile = join(workDir, 'canary.mts');
  await writeFile(canaryFile, pointAtSources(CANARY));
  // The entries are roots too, so the export checks below do not depend on what the snippets import.
  program = ts.createProgram([...Object.values(ENTRIES), ...files, canaryFile], projectOptions());
});

afterAll(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('TSDoc @example snippets', () => {
  it('every @example holds a ```ts block', () => {
    expect(snippets.length).toBeGreaterThan(0);
    expect(emptyExamples.map((e) => `${e.symbol} (${e.where})`)).toEqual([]);
  });

  it('every snippet type-checks against the public API with the project options', () => {
    const failures: string[] = [];
    for (const [file, snippet] of fileOf) {
      const source = program.getSourceFile(file);
      if (!source) {
        failures.push(`${snippet.symbol} (${snippet.where}): the snippet file was not part of the program`);
        continue;
      }
      const diagnostics = [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)];
      for (const d of diagnostics) failures.push(`${snippet.symbol} (${snippet.where}): ${describeDiagnostic(d)}`);
    }
    // Options that make the program itself invalid would otherwise pass silently.
    for (const d of [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()])
      failures.push(`program: ${describeDiagnostic(d)}`);
    expect(failures, failures.join('\n')).toEqual([]);
  });

  it('the README has code blocks, and they are among the snippets checked', () => {
    expect(snippets.filter((s) => s.symbol === 'README.md').length).toBeGreaterThanOrEqual(3);
  });

  it('README links work from the npm page (absolute, or an anchor of the README)', async () => {
    const text = await readFile(join(ROOT, 'README.md'), 'utf8');
    const links = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
    expect(links.filter((l) => !/^(https:\/\/|#)/.test(l))).toEqual([]);
  });

  it('a snippet that does not compile is reported (a canary in the same program)', () => {
    const source = program.getSourceFile(canaryFile);
    expect(source).toBeDefined();
    const messages = program.getSemanticDiagnostics(source).map(describeDiagnostic);
    expect(messages).toEqual([expect.stringContaining("Type 'string' is not assignable to type 'number'")]);
  });

  it('finds the ```ts blocks of @example sections only, up to the next tag', () => {
    const raw = [
      '/**',
      ' * Prose with a fence that is no example:',
      ' * ```ts',
      ' * notAnExample();',
      ' * ```',
      ' * @example',
      ' * ```ts',
      ' * first();',
      ' * @sealed class Widget {} // a line starting with @ inside a fence is code, not a tag',
      ' * ```',
      ' * ```sh',
      ' * not-typescript',
      ' * ```',
      ' * @example Second title',
      ' * ```typescript',
      ' * second();',
      ' * ```',
      ' * @example',
      ' * Prose only.',
      ' * @public',
      ' */',
    ].join('\n');
    expect(examplesOf(raw)).toEqual([
      ['first();\n@sealed class Widget {} // a line starting with @ inside a fence is code, not a tag'],
      ['second();'],
      null,
    ]);
  });

  /** The exports of one entry, each resolved to the symbol it aliases. */
  function exportsOf(entry: string): { name: string; symbol: ts.Symbol }[] {
    const checker = program.getTypeChecker();
    const source = program.getSourceFile(ENTRIES[entry]!);
    expect(source, `${entry} is part of the program`).toBeDefined();
    const moduleSymbol = checker.getSymbolAtLocation(source!);
    expect(moduleSymbol, `${entry} is a module`).toBeDefined();
    return checker.getExportsOfModule(moduleSymbol!).map((exported) => ({
      name: exported.name,
      symbol: exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported,
    }));
  }

  it.each(Object.keys(ENTRIES))('every value exported from %s has an example that imports it', (entry) => {
    const values: string[] = [];
    const missing: string[] = [];
    for (const { name, symbol } of exportsOf(entry)) {
      if (!(symbol.flags & ts.SymbolFlags.Value)) continue;
      values.push(name);
      const own = snippets.filter((s) => s.symbol === name);
      // From any entry that exports it: `defineConfig` is shown from 'ami-chroot', and is in 'ami-chroot/config' too.
      const imports = new RegExp(`import\\s*\\{[^}]*\\b${name}\\b[^}]*\\}\\s*from\\s*'ami-chroot(/[a-z]+)?'`);
      if (own.length === 0) missing.push(`${name}: no @example`);
      else if (!own.some((s) => imports.test(s.code)))
        missing.push(`${name}: its example does not import it from ami-chroot`);
    }
    // Every entry exports functions, classes or constants: none found means the walk is broken.
    expect(values.length).toBeGreaterThan(5);
    expect(missing, missing.join('\n')).toEqual([]);
  });

  it('every snippet import names an entry of the package, and the entries are package.json exports', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
    const subpaths = Object.keys(pkg.exports).filter((k) => k !== './package.json');
    expect(subpaths.map((k) => `ami-chroot${k.slice(1)}`).sort()).toEqual(Object.keys(ENTRIES).sort());
    const unknown = snippets.flatMap((s) =>
      [...s.code.matchAll(/from\s*'(ami-chroot[^']*)'/g)]
        .map((m) => m[1]!)
        .filter((entry) => !(entry in ENTRIES))
        .map((entry) => `${s.symbol} (${s.where}): '${entry}'`),
    );
    expect(unknown).toEqual([]);
  });

  it.each(Object.keys(ENTRIES))('every type exported from %s has a description', (entry) => {
    const checker = program.getTypeChecker();
    const undocumented = exportsOf(entry)
      .filter(({ symbol }) => !(symbol.flags & ts.SymbolFlags.Value))
      .filter(({ symbol }) => ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim() === '')
      .map(({ name }) => name);
    expect(undocumented).toEqual([]);
  });
});
