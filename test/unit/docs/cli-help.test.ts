import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { HELP } from '../../../src/cli/args.js';

const ROOT = join(import.meta.dirname, '../../..');

it('docs/cli.md shows the help text the command prints', async () => {
  const page = await readFile(join(ROOT, 'docs/cli.md'), 'utf8');
  const block = /```text\n(Usage: ami-chroot[\s\S]*?)```/.exec(page)?.[1];
  expect(block?.trimEnd()).toBe(HELP.trimEnd());
});
