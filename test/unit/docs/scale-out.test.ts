/**
 * docs/scale-out.md's runnable example: the GitHub Actions workflow parses, every matrix entry
 * names a source AMI and a name, and its build step runs the script that `npm run typecheck`
 * compiles (examples/ is in tsconfig's include).
 */
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../../..');

interface Workflow {
  jobs: Record<
    string,
    {
      'runs-on': string;
      strategy: { matrix: { image: { name: string; source: string }[] } };
      steps: { run?: string; uses?: string; with?: Record<string, unknown> }[];
    }
  >;
}

describe('docs/scale-out.md example', () => {
  it('the workflow is valid YAML whose matrix jobs each run examples/scale-out/build-one.ts', async () => {
    const workflow = parse(await readFile(join(ROOT, 'examples/scale-out/github-actions.yml'), 'utf8')) as Workflow;
    const build = workflow.jobs['build'];
    expect(build).toBeDefined();
    const entries = build!.strategy.matrix.image;
    expect(entries.length).toBeGreaterThan(1);
    for (const entry of entries) {
      expect(entry.source).toMatch(/^ami-[0-9a-f]{8,17}$/);
      expect(entry.name).toMatch(/^[a-z][a-z0-9-]*$/);
    }
    const runs = build!.steps.flatMap((s) => (s.run ? [s.run] : []));
    const script = runs.find((r) => r.includes('build-one.ts'));
    expect(script).toMatch(/npx tsx examples\/scale-out\/build-one\.ts \$\{\{ matrix\.image\.source \}\}/);
    await access(join(ROOT, 'examples/scale-out/build-one.ts'));
    expect(build!.steps.some((s) => s.uses?.startsWith('aws-actions/configure-aws-credentials'))).toBe(true);
  });

  it('the page names the example files, and they exist', async () => {
    const page = await readFile(join(ROOT, 'docs/scale-out.md'), 'utf8');
    const named = [...page.matchAll(/`(examples\/scale-out\/[^`\s]+)`/g)].map((m) => m[1]!);
    expect(new Set(named)).toEqual(
      new Set(['examples/scale-out/github-actions.yml', 'examples/scale-out/build-one.ts']),
    );
    for (const file of named) await access(join(ROOT, file));
  });
});
