import { DescribeRegionsCommand, DescribeVolumesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DecodeAuthorizationMessageCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AwsError, ConfigError } from '../../../src/errors.js';
import { clientConfig, createAwsClients, resolveRegion } from '../../../src/aws/clients.js';
import type { AwsClients } from '../../../src/aws/clients.js';
import { send } from '../../../src/aws/call.js';
import { toCtx } from '../../../src/internal/ctx.js';
import { ec2Error } from './fixtures.js';

const made: AwsClients[] = [];
function track(c: AwsClients): AwsClients {
  made.push(c);
  return c;
}
afterEach(() => {
  for (const c of made.splice(0)) c.destroy();
});

describe('createAwsClients', () => {
  it('builds EC2 clients from the access options: region, static keys, endpoint, retries', async () => {
    const clients = track(
      createAwsClients(
        {
          region: 'eu-west-1',
          accessKey: 'AKIDEXAMPLE',
          secretKey: 'very-secret',
          token: 'session',
          customEndpointEc2: 'http://127.0.0.1:1',
          maxRetries: 3,
        },
        { env: {} },
      ),
    );
    const ec2 = clients.ec2();
    expect(clients.region).toBe('eu-west-1');
    expect(await ec2.config.region()).toBe('eu-west-1');
    expect(await ec2.config.credentials()).toMatchObject({
      accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: 'very-secret',
      sessionToken: 'session',
    });
    expect(await ec2.config.maxAttempts()).toBe(4);
    const endpoint = ec2.config.endpointProvider({
      Region: 'eu-west-1',
      Endpoint: 'http://127.0.0.1:1',
      UseFIPS: false,
      UseDualStack: false,
    });
    expect(endpoint.url.href).toBe('http://127.0.0.1:1/');
  });

  it('defaults to Packer’s 10 retries', async () => {
    const clients = track(createAwsClients({ region: 'us-east-1' }, { env: {} }));
    expect(await clients.ec2().config.maxAttempts()).toBe(11);
  });

  it('caches one EC2 client per region and creates others on demand', async () => {
    const clients = track(createAwsClients({ region: 'us-east-1' }, { env: {} }));
    expect(clients.ec2()).toBe(clients.ec2('us-east-1'));
    const west = clients.ec2('eu-west-1');
    expect(west).not.toBe(clients.ec2());
    expect(await west.config.region()).toBe('eu-west-1');
    expect(clients.ec2('eu-west-1')).toBe(west);
  });

  it('takes the region from the options, then the access options, then AWS_REGION, then AWS_DEFAULT_REGION', () => {
    expect(track(createAwsClients({ region: 'a-1' }, { region: 'b-1', env: { AWS_REGION: 'c-1' } })).region).toBe(
      'b-1',
    );
    expect(track(createAwsClients({ region: 'a-1' }, { env: { AWS_REGION: 'c-1' } })).region).toBe('a-1');
    expect(track(createAwsClients({}, { env: { AWS_REGION: 'c-1', AWS_DEFAULT_REGION: 'd-1' } })).region).toBe('c-1');
    expect(track(createAwsClients({}, { env: { AWS_DEFAULT_REGION: 'd-1' } })).region).toBe('d-1');
    expect(() => createAwsClients({}, { env: {} })).toThrow(ConfigError);
  });

  it('rejects inconsistent access options before creating anything', () => {
    expect(() => createAwsClients({ region: 'x', accessKey: 'AKID' })).toThrow(
      /accessKey and secretKey must both be set/,
    );
    expect(() => createAwsClients({ region: 'x', token: 't' })).toThrow(/token needs accessKey/);
    expect(() => createAwsClients({ region: 'x', maxRetries: -1 })).toThrow(/maxRetries/);
    expect(() => createAwsClients({ region: 'x', customEndpointEc2: 'not a url' })).toThrow(/customEndpointEc2/);
  });

  it('uses injected clients: a function per region, or one client for the build region only', () => {
    const own = new EC2Client({ region: 'us-east-1' });
    const clients = track(createAwsClients({ region: 'us-east-1' }, { ec2: own, env: {} }));
    expect(clients.ec2()).toBe(own);
    expect(() => clients.ec2('eu-west-1')).toThrow(ConfigError);
    const perRegion = new Map<string, EC2Client>();
    const factory = (r: string): EC2Client =>
      perRegion.get(r) ?? perRegion.set(r, new EC2Client({ region: r })).get(r)!;
    const viaFactory = track(createAwsClients({ region: 'us-east-1' }, { ec2: factory, env: {} }));
    expect(viaFactory.ec2('eu-west-1')).toBe(factory('eu-west-1'));
    const sts = new STSClient({ region: 'us-east-1' });
    expect(track(createAwsClients({ region: 'us-east-1' }, { sts, env: {} })).sts()).toBe(sts);
    own.destroy();
    sts.destroy();
    for (const c of perRegion.values()) c.destroy();
  });

  it('counts the AWS calls the library makes through its clients, failed ones included', async () => {
    const clients = track(createAwsClients({ region: 'us-east-1', accessKey: 'a', secretKey: 'b' }, { env: {} }));
    const ec2 = clients.ec2();
    const mock = mockClient(ec2);
    mock.on(DescribeRegionsCommand).resolves({ Regions: [] });
    mock.on(DescribeVolumesCommand).rejects(ec2Error('InvalidVolume.NotFound'));
    const ctx = toCtx();
    await send(ec2, new DescribeRegionsCommand({}), ctx);
    await send(ec2, new DescribeRegionsCommand({}), ctx);
    await expect(send(ec2, new DescribeVolumesCommand({ VolumeIds: ['vol-1'] }), ctx)).rejects.toBeInstanceOf(AwsError);
    expect(clients.callCount()).toBe(3);
    mock.restore();
  });

  it('decodes UnauthorizedOperation messages through STS when decodeAuthorizationMessages is on', async () => {
    const sts = new STSClient({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    const stsMock = mockClient(sts);
    stsMock.on(DecodeAuthorizationMessageCommand).resolves({ DecodedMessage: '{"allowed":false,"explicitDeny":true}' });
    const clients = track(
      createAwsClients(
        { region: 'us-east-1', accessKey: 'a', secretKey: 'super-secret-key', decodeAuthorizationMessages: true },
        { sts, env: {} },
      ),
    );
    const ec2 = clients.ec2();
    const mock = mockClient(ec2);
    mock
      .on(DescribeRegionsCommand)
      .rejects(
        ec2Error(
          'UnauthorizedOperation',
          'You are not authorized to perform this operation. Encoded authorization failure message: AbC-123_xyz=',
          403,
        ),
      );
    const error = (await send(ec2, new DescribeRegionsCommand({}), toCtx()).catch((e: unknown) => e)) as AwsError;
    expect(error).toBeInstanceOf(AwsError);
    expect(error.decodedMessage).toBe('{"allowed":false,"explicitDeny":true}');
    expect(error.message).toContain('Decoded authorization message: {"allowed":false,"explicitDeny":true}');
    expect(error.message).not.toContain('super-secret-key');
    expect(stsMock.calls().map((c) => (c.args[0] as DecodeAuthorizationMessageCommand).input)).toEqual([
      { EncodedMessage: 'AbC-123_xyz=' },
    ]);
    expect(clients.callCount()).toBe(2);
    mock.restore();
    sts.destroy();
  });

  it('does not call STS without decodeAuthorizationMessages', async () => {
    const sts = new STSClient({ region: 'us-east-1' });
    const stsMock = mockClient(sts);
    const clients = track(createAwsClients({ region: 'us-east-1', accessKey: 'a', secretKey: 'b' }, { sts, env: {} }));
    const ec2 = clients.ec2();
    const mock = mockClient(ec2);
    mock
      .on(DescribeRegionsCommand)
      .rejects(ec2Error('UnauthorizedOperation', 'Encoded authorization failure message: abc', 403));
    const error = (await send(ec2, new DescribeRegionsCommand({}), toCtx()).catch((e: unknown) => e)) as AwsError;
    expect(error.decodedMessage).toBeUndefined();
    expect(error.message).toContain('enable decodeAuthorizationMessages');
    expect(stsMock.calls()).toEqual([]);
    mock.restore();
    sts.destroy();
  });
});

describe('profile with MFA', () => {
  it('assumes the profile’s role with the MFA code, through the SDK’s own credential chain', async () => {
    const bodies: string[] = [];
    const sts = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        bodies.push(body);
        res
          .writeHead(200, { 'content-type': 'text/xml' })
          .end(
            '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>' +
              '<AccessKeyId>ASIAMFA</AccessKeyId><SecretAccessKey>assumed</SecretAccessKey><SessionToken>token</SessionToken>' +
              '<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/builder/s</Arn>' +
              '<AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>',
          );
      });
    });
    await new Promise<void>((resolve) => sts.listen(0, '127.0.0.1', resolve));
    const dir = await mkdtemp(join(tmpdir(), 'ami-chroot-mfa-'));
    try {
      await writeFile(
        join(dir, 'config'),
        '[profile base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = basesecret\n' +
          '[profile builder]\nrole_arn = arn:aws:iam::123456789012:role/builder\nsource_profile = base\nmfa_serial = arn:aws:iam::123456789012:mfa/me\n',
      );
      await writeFile(join(dir, 'credentials'), '');
      vi.stubEnv('AWS_CONFIG_FILE', join(dir, 'config'));
      vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', join(dir, 'credentials'));
      vi.stubEnv('AWS_ENDPOINT_URL_STS', `http://127.0.0.1:${(sts.address() as AddressInfo).port}`);
      vi.stubEnv('AWS_PROFILE', undefined);
      vi.stubEnv('AWS_ACCESS_KEY_ID', undefined);
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', undefined);
      const clients = track(
        createAwsClients({ region: 'us-east-1', profile: 'builder', mfaCode: '123456' }, { env: {} }),
      );
      await expect(clients.ec2().config.credentials()).resolves.toMatchObject({
        accessKeyId: 'ASIAMFA',
        secretAccessKey: 'assumed',
      });
      expect(bodies).toHaveLength(1);
      const params = new URLSearchParams(bodies[0]);
      expect(params.get('Action')).toBe('AssumeRole');
      expect(params.get('RoleArn')).toBe('arn:aws:iam::123456789012:role/builder');
      expect(params.get('SerialNumber')).toBe('arn:aws:iam::123456789012:mfa/me');
      expect(params.get('TokenCode')).toBe('123456');
    } finally {
      sts.closeAllConnections();
      await new Promise<void>((resolve) => sts.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('clientConfig', () => {
  it('skips TLS verification only when asked', () => {
    const insecure = clientConfig({ insecureSkipTlsVerify: true }, 'us-east-1').requestHandler as {
      httpsAgent?: { options: { rejectUnauthorized?: boolean } };
    };
    expect(insecure.httpsAgent?.options.rejectUnauthorized).toBe(false);
    const secure = clientConfig({}, 'us-east-1').requestHandler as { httpsAgent?: unknown };
    expect(secure.httpsAgent).toBeUndefined();
  });

  it('passes the profile, and the MFA code to the SDK’s role assumption', async () => {
    const config = clientConfig({ profile: 'images', mfaCode: '123456' }, 'us-east-1') as {
      profile?: string;
      mfaCodeProvider?: (serial: string) => Promise<string>;
    };
    expect(config.profile).toBe('images');
    await expect(config.mfaCodeProvider?.('arn:aws:iam::1:mfa/me')).resolves.toBe('123456');
  });

  it('bounds every request in time', () => {
    expect(clientConfig({}, 'us-east-1').requestHandler).toMatchObject({
      requestTimeout: 60_000,
      connectionTimeout: 10_000,
    });
    expect(clientConfig({ requestTimeoutMs: 5_000 }, 'us-east-1').requestHandler).toMatchObject({
      requestTimeout: 5_000,
    });
  });
});

describe('resolveRegion', () => {
  it('prefers the configuration, then the environment, then the host’s identity document', async () => {
    await expect(
      resolveRegion({ region: 'a-1' }, { env: { AWS_REGION: 'b-1' }, identityRegion: async () => 'c-1' }),
    ).resolves.toBe('a-1');
    await expect(resolveRegion({}, { env: { AWS_REGION: 'b-1' }, identityRegion: async () => 'c-1' })).resolves.toBe(
      'b-1',
    );
    await expect(resolveRegion({}, { env: {}, identityRegion: async () => 'c-1' })).resolves.toBe('c-1');
  });

  it('says what to set when nothing gives a region', async () => {
    await expect(resolveRegion({}, { env: {} })).rejects.toThrow(/set region or AWS_REGION/);
    await expect(
      resolveRegion({}, { env: {}, identityRegion: async () => Promise.reject(new Error('IMDS down')) }),
    ).rejects.toThrow(/IMDS down/);
  });
});
