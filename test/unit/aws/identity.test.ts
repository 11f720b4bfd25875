import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { afterEach, describe, expect, it } from 'vitest';
import { HostIdentityError } from '../../../src/errors.js';
import { describeInstanceDeviceNames, getHostIdentity } from '../../../src/aws/identity.js';
import { toCtx } from '../../../src/internal/ctx.js';
import { ec2Error, mockedEc2 } from './fixtures.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

/** A fake instance metadata service on 127.0.0.1 that enforces IMDSv2 tokens. */
async function fakeImds(
  values: Record<string, string>,
  options: { tokenHandler?: Handler } = {},
): Promise<{ endpoint: string; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.method === 'PUT' && req.url === '/latest/api/token') {
      if (options.tokenHandler) return options.tokenHandler(req, res);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('token-1');
      return;
    }
    if (req.headers['x-aws-ec2-metadata-token'] !== 'token-1') {
      res.writeHead(401).end();
      return;
    }
    const key = (req.url ?? '').replace('/latest/meta-data/', '');
    const value = values[key];
    if (value === undefined) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': 'text/plain' }).end(value);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

describe('getHostIdentity', () => {
  it('reads instance id, zone and region through IMDSv2', async () => {
    const imds = await fakeImds({
      'instance-id': 'i-0abc',
      'placement/availability-zone': 'eu-west-1b',
      'placement/region': 'eu-west-1',
    });
    await expect(getHostIdentity({ endpoint: imds.endpoint })).resolves.toEqual({
      instanceId: 'i-0abc',
      availabilityZone: 'eu-west-1b',
      region: 'eu-west-1',
    });
    expect(imds.seen.filter((s) => s.startsWith('GET'))).toEqual([
      'GET /latest/meta-data/instance-id',
      'GET /latest/meta-data/placement/availability-zone',
      'GET /latest/meta-data/placement/region',
    ]);
    expect(imds.seen).toContain('PUT /latest/api/token');
  });

  it('tells the logger what it read, and takes onProgress like every primitive', async () => {
    const imds = await fakeImds({ 'instance-id': 'i-0abc', 'placement/availability-zone': 'eu-west-1b' });
    const lines: string[] = [];
    await getHostIdentity({
      endpoint: imds.endpoint,
      logger: { debug: (line) => lines.push(line) },
      onProgress: () => {},
    });
    expect(lines).toEqual([`Host identity from ${imds.endpoint}: i-0abc in eu-west-1b (eu-west-1)`]);
  });

  it('derives the region from the zone when the metadata service has no placement/region', async () => {
    const imds = await fakeImds({ 'instance-id': 'i-0abc', 'placement/availability-zone': 'ap-southeast-2c' });
    await expect(getHostIdentity({ endpoint: imds.endpoint })).resolves.toMatchObject({ region: 'ap-southeast-2' });
  });

  it('explains the likely causes and keeps the real cause when the token request hangs (hop limit in a container)', async () => {
    const imds = await fakeImds({}, { tokenHandler: () => {} });
    const error = await getHostIdentity({ endpoint: imds.endpoint, timeoutMs: 300 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostIdentityError);
    expect((error as Error).message).toContain(imds.endpoint);
    expect((error as Error).message).toContain('hop limit');
    expect((error as Error).message).toContain('runs on an EC2 instance');
    expect((error as HostIdentityError).cause).toBeInstanceOf(Error);
    expect((error as HostIdentityError).phase).toBe('identity');
  });

  it('reports a refused connection (not on EC2) as a HostIdentityError', async () => {
    const imds = await fakeImds({});
    const closed = imds.endpoint;
    for (const s of servers.splice(0)) await new Promise<void>((resolve) => s.close(() => resolve()));
    const error = await getHostIdentity({ endpoint: closed, timeoutMs: 2_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostIdentityError);
    expect(String((error as HostIdentityError).cause)).toMatch(/ECONNREFUSED|metadata/);
  });

  it('rejects with the caller’s reason when aborted', async () => {
    const imds = await fakeImds({}, { tokenHandler: () => {} });
    const reason = new Error('stop');
    const controller = new AbortController();
    setTimeout(() => controller.abort(reason), 20);
    await expect(getHostIdentity({ endpoint: imds.endpoint, signal: controller.signal })).rejects.toBe(reason);
  });
});

describe('describeInstanceDeviceNames', () => {
  it('lists the device names EC2 has for the instance', async () => {
    const ec2 = mockedEc2();
    ec2.mock.on(DescribeInstancesCommand).resolves({
      Reservations: [
        {
          Instances: [
            {
              InstanceId: 'i-1',
              BlockDeviceMappings: [
                { DeviceName: '/dev/xvda', Ebs: { VolumeId: 'vol-root', Status: 'attached' } },
                { DeviceName: '/dev/sdf', Ebs: { VolumeId: 'vol-old', Status: 'detaching' } },
              ],
            },
          ],
        },
      ],
    });
    await expect(describeInstanceDeviceNames(ec2.client, 'i-1', toCtx())).resolves.toEqual(['/dev/xvda', '/dev/sdf']);
    expect(ec2.log()).toEqual([['DescribeInstances', { InstanceIds: ['i-1'] }]]);
  });

  it('says the region is probably wrong when EC2 does not know the instance', async () => {
    const ec2 = mockedEc2('eu-central-1');
    ec2.mock
      .on(DescribeInstancesCommand)
      .rejects(ec2Error('InvalidInstanceID.NotFound', "The instance ID 'i-1' does not exist"));
    await expect(describeInstanceDeviceNames(ec2.client, 'i-1', toCtx())).rejects.toThrow(
      /EC2 does not know instance i-1 in eu-central-1/,
    );
  });
});
