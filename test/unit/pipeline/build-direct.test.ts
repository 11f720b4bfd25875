/**
 * The `via: 'ebs-direct'` helpers that need no EC2: the ext4 allocation knob of the working copy's
 * mount (a sysfs tree stood in by a directory), and the EBS endpoint check.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EBSClient } from '@aws-sdk/client-ebs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ebsEndpointIssue, packExt4Allocations } from '../../../src/pipeline/build-direct.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ami-chroot-direct-unit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('packExt4Allocations', () => {
  const logger = (): { warnings: string[]; debug: () => void; warn: (m: string) => void } => {
    const warnings: string[] = [];
    return { warnings, debug: () => {}, warn: (m: string) => void warnings.push(m) };
  };

  it("sets mb_stream_req of the mounted device's ext4 to pack small and large files alike", async () => {
    const sysfs = join(dir, 'sysfs-ext4');
    await mkdir(join(sysfs, 'loop7p1'), { recursive: true });
    await writeFile(join(sysfs, 'loop7p1', 'mb_stream_req'), '16\n');
    const log = logger();
    expect(await packExt4Allocations('/dev/loop7p1', log, sysfs)).toBe(true);
    expect(await readFile(join(sysfs, 'loop7p1', 'mb_stream_req'), 'utf8')).toBe('65536');
    expect(log.warnings).toEqual([]);
  });

  it('leaves another file system alone, without a warning', async () => {
    const log = logger();
    expect(await packExt4Allocations('/dev/loop8', log, join(dir, 'no-such-sysfs'))).toBe(false);
    expect(log.warnings).toEqual([]);
  });

  it('warns and goes on when the knob cannot be written', async () => {
    const sysfs = join(dir, 'sysfs-bad');
    // A directory where the knob should be: EISDIR.
    await mkdir(join(sysfs, 'loop9', 'mb_stream_req'), { recursive: true });
    const log = logger();
    expect(await packExt4Allocations('/dev/loop9', log, sysfs)).toBe(false);
    expect(log.warnings.join('\n')).toMatch(/mb_stream_req.*the upload may be larger/);
  });
});

describe('ebsEndpointIssue', () => {
  const endpoint = 'https://ec2.example.internal';

  it('refuses an EC2 endpoint with nothing saying where EBS is, naming the option and the fixes', () => {
    const issue = ebsEndpointIssue({ customEndpointEc2: endpoint }, {}, {});
    expect(issue?.path).toBe('customEndpointEc2');
    expect(issue?.value).toBe(endpoint);
    expect(issue?.message).toMatch(/AWS_ENDPOINT_URL_EBS/);
    expect(issue?.message).toMatch(/options\.ebs/);
  });

  it('accepts an EBS client, the SDK endpoint variables, or no EC2 endpoint at all', () => {
    const ebs = new EBSClient({ region: 'us-east-1' });
    try {
      expect(ebsEndpointIssue({ customEndpointEc2: endpoint }, { ebs }, {})).toBeUndefined();
    } finally {
      ebs.destroy();
    }
    expect(
      ebsEndpointIssue({ customEndpointEc2: endpoint }, {}, { AWS_ENDPOINT_URL_EBS: 'http://127.0.0.1:1' }),
    ).toBeUndefined();
    expect(ebsEndpointIssue({ customEndpointEc2: endpoint }, {}, { AWS_ENDPOINT_URL: 'http://127.0.0.1:1' })).toBe(
      undefined,
    );
    expect(ebsEndpointIssue({ customEndpointEc2: undefined }, {}, {})).toBeUndefined();
  });
});
