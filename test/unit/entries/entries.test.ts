/**
 * The package's entries: `ami-chroot/config` loads no AWS SDK module (it is for config files and
 * tools that never call AWS), the main entry and `ami-chroot/aws` load a package of the SDK only
 * when a call needs it, and every entry exports the same error classes as src/errors.ts.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
});

/** The SDK packages an entry loaded, by name (`@aws-sdk/client-ec2`, ...). */
const sdkPackages = (loaded: readonly string[]): string[] =>
  [...new Set(loaded.flatMap((url) => /\/node_modules\/(@aws-sdk\/[^/]+)\//.exec(url)?.[1] ?? []))].sort();

describe('the main entry and ami-chroot/aws load the AWS SDK on first use', () => {
  // A stand-in EC2 endpoint on 127.0.0.1: every action answers an empty, well-formed response.
  let endpoint = '';
  let requests = 0;
  let stateDir = '';
  const server = createServer((req, res) => {
    requests++;
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end('<Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r-1</requestId></Response>');
    });
  });
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    stateDir = await mkdtemp(join(tmpdir(), 'ami-chroot-entries-'));
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(stateDir, { recursive: true, force: true });
  });
  const access = (): string =>
    JSON.stringify({
      region: 'us-east-1',
      accessKey: 'AKIDEXAMPLE',
      secretKey: 'not-a-secret',
      customEndpointEc2: endpoint,
      maxRetries: 0,
    });

  it.each([
    ['ami-chroot', 'index.ts'],
    ['ami-chroot/aws', 'aws/index.ts'],
  ])('%s loads no AWS SDK module on import', async (_entry, file) => {
    const loaded = await modulesLoadedBy(join(SRC, file));
    expect(loaded).toContainEqual(expect.stringMatching(/\/src\/aws\/clients\.ts$/));
    expect(loaded.filter(isAwsSdk)).toEqual([]);
  });

  it('ami-chroot/aws: one EC2 call loads the EC2 client, not STS, EBS or IMDS', async () => {
    const before = requests;
    const loaded = await modulesLoadedBy(
      join(SRC, 'aws/index.ts'),
      `const clients = m.createAwsClients(${access()});
       await m.resolveSourceAmi({ sourceAmi: 'ami-12345678', region: 'us-east-1' }, { ec2: clients.ec2 }).catch((e) => {
         if (e.name !== 'SourceImageError') throw e;
       });
       clients.destroy();`,
    );
    expect(requests).toBeGreaterThan(before);
    expect(sdkPackages(loaded)).toContain('@aws-sdk/client-ec2');
    expect(sdkPackages(loaded)).not.toContain('@aws-sdk/client-sts');
    expect(sdkPackages(loaded)).not.toContain('@aws-sdk/client-ebs');
    expect(sdkPackages(loaded)).not.toContain('@aws-sdk/ec2-metadata-service');
  });

  it('ami-chroot/aws: reading the host identity loads the IMDS client only', async () => {
    const loaded = await modulesLoadedBy(
      join(SRC, 'aws/index.ts'),
      `await m.getHostIdentity({ endpoint: ${JSON.stringify(endpoint)}, timeoutMs: 2000 }).catch(() => {});`,
    );
    expect(sdkPackages(loaded)).toContain('@aws-sdk/ec2-metadata-service');
    expect(sdkPackages(loaded)).not.toContain('@aws-sdk/client-ec2');
    expect(sdkPackages(loaded)).not.toContain('@aws-sdk/client-ebs');
  });

  it('ami-chroot: a dry-run orphan sweep loads the EC2 client, not STS, EBS or IMDS', async () => {
    const before = requests;
    const loaded = await modulesLoadedBy(
      join(SRC, 'index.ts'),
      `await m.cleanupOrphans({ dryRun: true, regions: ['us-east-1'], access: ${access()}, stateDir: ${JSON.stringify(stateDir)} });`,
    );
    expect(requests).toBeGreaterThan(before);
    expect(sdkPackages(loaded)).toContain('@aws-sdk/client-ec2');
    expect(sdkPackages(loaded)).not.toContain('@aws-sdk/client-sts');
    expect(sdkPackages(loaded)).not.toContain('@aws-sdk/client-ebs');
    expect(sdkPackages(loaded)).not.toContain('@aws-sdk/ec2-metadata-service');
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
