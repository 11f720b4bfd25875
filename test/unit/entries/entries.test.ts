/**
 * The package's entries: `ami-chroot/config` loads no AWS SDK module (it is for config files and
 * tools that never call AWS), and every entry exports the same error classes as src/errors.ts.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as errors from '../../../src/errors.js';
import * as main from '../../../src/index.js';
import * as aws from '../../../src/aws/index.js';
import * as host from '../../../src/host/index.js';
import * as config from '../../../src/config/index.js';
import { modulesLoadedBy } from '../../helpers/loaded-modules.js';

const SRC = join(import.meta.dirname, '../../../src');
const isAwsSdk = (url: string): boolean => /\/node_modules\/@(aws-sdk|smithy|aws-crypto)\//.test(url);

describe('ami-chroot/config', () => {
  it('loads no AWS SDK module in a fresh process', async () => {
    const loaded = await modulesLoadedBy(join(SRC, 'config/index.ts'));
    // The recorder saw the graph: the entry's own modules and its dependencies.
    expect(loaded).toContainEqual(expect.stringMatching(/\/src\/config\/resolve\.ts$/));
    expect(loaded).toContainEqual(expect.stringMatching(/\/node_modules\/valibot\//));
    expect(loaded.filter(isAwsSdk)).toEqual([]);
  });

  it('the same recorder sees the AWS SDK that ami-chroot/aws loads (the check above can fail)', async () => {
    const loaded = await modulesLoadedBy(join(SRC, 'aws/index.ts'));
    expect(loaded.filter(isAwsSdk).length).toBeGreaterThan(0);
  });
});

describe('every entry', () => {
  const errorClasses = Object.entries(errors)
    .filter(([, value]) => typeof value === 'function' && /Error$/.test(value.name))
    .map(([name]) => name)
    .sort();

  it.each([
    ['ami-chroot', main],
    ['ami-chroot/aws', aws],
    ['ami-chroot/host', host],
    ['ami-chroot/config', config],
  ] as const)('%s exports every error class, the same objects as the others', (_entry, exports) => {
    expect(errorClasses.length).toBeGreaterThanOrEqual(17);
    const own = exports as Record<string, unknown>;
    expect(errorClasses.filter((name) => own[name] !== (errors as Record<string, unknown>)[name])).toEqual([]);
  });
});
