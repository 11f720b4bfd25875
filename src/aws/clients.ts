/**
 * AWS clients: one EC2 client per region (cached) and one STS client, built from Packer-style
 * access options, or injected by the caller. Every call made through them by the library is
 * counted (`callCount()`), and authorization failures can be decoded through STS.
 *
 * @packageDocumentation
 */
import { Agent as HttpsAgent } from 'node:https';
import type { EC2Client, EC2ClientConfig } from '@aws-sdk/client-ec2';
import type { STSClient, STSClientConfig } from '@aws-sdk/client-sts';
import { ConfigError } from '../errors.js';
import type { Logger } from '../types.js';
import { toCtx } from '../internal/ctx.js';
import { registerClient, send } from './call.js';
import { ec2SdkNow, stsSdk, stsSdkNow } from './sdk.js';
import { messageOf } from '../internal/to-error.js';

/**
 * How to reach AWS. Mirrors Packer's access options (`access_key`, `profile`, `mfa_code`,
 * `custom_endpoint_ec2`, ...), camelCased. Credentials not given here come from the SDK's default
 * chain (environment, shared files, SSO, the instance role).
 * @public
 */
export interface AwsAccess {
  /** Build region. @defaultValue `AWS_REGION`/`AWS_DEFAULT_REGION`, then the host's identity document (see {@link resolveRegion}) */
  readonly region?: string;
  /** Static access key id (Packer `access_key`); needs `secretKey`. */
  readonly accessKey?: string;
  /** Static secret key (Packer `secret_key`). Never logged. */
  readonly secretKey?: string;
  /** Session token for temporary static credentials (Packer `token`). */
  readonly token?: string;
  /** Shared-config profile (Packer `profile`). @defaultValue `AWS_PROFILE`, then `default` */
  readonly profile?: string;
  /** MFA code for a profile that assumes a role with `mfa_serial` (Packer `mfa_code`). */
  readonly mfaCode?: string;
  /** An EC2-compatible endpoint used for every region (Packer `custom_endpoint_ec2`). */
  readonly customEndpointEc2?: string;
  /** Skip TLS verification of the EC2 endpoint (Packer `insecure_skip_tls_verify`). @defaultValue false */
  readonly insecureSkipTlsVerify?: boolean;
  /** Retries of a failed request by the SDK (Packer `max_retries`). @defaultValue 10 */
  readonly maxRetries?: number;
  /** Decode `UnauthorizedOperation` messages with sts:DecodeAuthorizationMessage (Packer `decode_authorization_messages`). @defaultValue false */
  readonly decodeAuthorizationMessages?: boolean;
  /** Time limit of one HTTP request, so a dead connection cannot hang a build. @defaultValue 60 000 */
  readonly requestTimeoutMs?: number;
}

/**
 * Clients the caller already has. Either replaces the factory for that service.
 * @public
 */
export interface InjectedClients {
  /** An EC2 client for the build region, or a function returning one per region. */
  readonly ec2?: EC2Client | ((region: string) => EC2Client);
  /** An STS client. */
  readonly sts?: STSClient;
}

/**
 * Options of {@link createAwsClients}.
 * @public
 */
export interface CreateAwsClientsOptions extends InjectedClients {
  /** Build region; wins over `access.region`. */
  readonly region?: string;
  /** Environment to read the region from. @defaultValue `process.env` */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Where client warnings go. */
  readonly logger?: Partial<Logger>;
}

/**
 * A set of AWS clients for one build.
 * @public
 */
export interface AwsClients {
  /** The build region. */
  readonly region: string;
  /** The EC2 client for `region` (default: the build region), created once per region. A plain function: pass it on as `{ ec2: clients.ec2 }`. */
  readonly ec2: (region?: string) => EC2Client;
  /** The STS client (build region). */
  readonly sts: () => STSClient;
  /** AWS calls made by ami-chroot through these clients so far (SDK retries not counted). */
  callCount(): number;
  /** Closes the connections of the clients this set created (injected clients are left alone). */
  destroy(): void;
}

/** Packer's default for `max_retries`. */
const DEFAULT_MAX_RETRIES = 10;

/**
 * The region from the options or the environment, without asking the host (`undefined` if none).
 * @internal
 */
export function regionFromConfigOrEnv(
  access: Pick<AwsAccess, 'region'> | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  return access?.region || env['AWS_REGION'] || env['AWS_DEFAULT_REGION'] || undefined;
}

/**
 * Decides the build region: the configured one, then `AWS_REGION`/`AWS_DEFAULT_REGION`, then the
 * region of the host's identity document (IMDS).
 *
 * @example
 * ```ts
 * import { getHostIdentity, resolveRegion } from 'ami-chroot/aws';
 *
 * // The configured region, else AWS_REGION / AWS_DEFAULT_REGION, else the build host's (IMDSv2).
 * const region = await resolveRegion({}, { identityRegion: async () => (await getHostIdentity()).region });
 * console.log(region); // 'eu-west-1'
 * ```
 * @param access - the access options
 * @param options - `identityRegion` reads the host's region (e.g. `() => getHostIdentity().then(i => i.region)`)
 * @throws {@link ConfigError} when no source gives a region
 * @public
 */
export async function resolveRegion(
  access: Pick<AwsAccess, 'region'> | undefined,
  options: {
    readonly env?: Readonly<Record<string, string | undefined>>;
    readonly identityRegion?: () => Promise<string>;
  } = {},
): Promise<string> {
  const configured = regionFromConfigOrEnv(access, options.env);
  if (configured) return configured;
  if (options.identityRegion) {
    try {
      return await options.identityRegion();
    } catch (error) {
      throw new ConfigError(
        [
          {
            path: 'region',
            message: `no region was configured and the host's identity document could not be read (${messageOf(error)}); set region or AWS_REGION`,
          },
        ],
        { cause: error },
      );
    }
  }
  throw new ConfigError([{ path: 'region', message: 'no region was configured: set region or AWS_REGION' }]);
}

function validateAccess(access: AwsAccess): void {
  const issues: { path: string; value?: unknown; message: string }[] = [];
  if ((access.accessKey === undefined) !== (access.secretKey === undefined)) {
    issues.push({
      path: access.accessKey === undefined ? 'accessKey' : 'secretKey',
      message: 'accessKey and secretKey must both be set or both be unset',
    });
  }
  if (access.token !== undefined && access.accessKey === undefined) {
    issues.push({ path: 'token', message: 'token needs accessKey and secretKey' });
  }
  if (access.maxRetries !== undefined && (!Number.isInteger(access.maxRetries) || access.maxRetries < 0)) {
    issues.push({ path: 'maxRetries', value: access.maxRetries, message: 'must be a whole number >= 0' });
  }
  if (access.customEndpointEc2 !== undefined) {
    try {
      new URL(access.customEndpointEc2);
    } catch {
      issues.push({
        path: 'customEndpointEc2',
        value: access.customEndpointEc2,
        message: 'must be a URL such as https://ec2.example.com',
      });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
}

/**
 * The SDK client configuration for the access options (shared by EC2 and STS).
 * @internal
 */
export function clientConfig(access: AwsAccess, region: string): EC2ClientConfig & STSClientConfig {
  const config: EC2ClientConfig & STSClientConfig & { mfaCodeProvider?: (serial: string) => Promise<string> } = {
    region,
    maxAttempts: (access.maxRetries ?? DEFAULT_MAX_RETRIES) + 1,
    requestHandler: {
      requestTimeout: access.requestTimeoutMs ?? 60_000,
      connectionTimeout: 10_000,
      ...(access.insecureSkipTlsVerify
        ? { httpsAgent: new HttpsAgent({ rejectUnauthorized: false, keepAlive: true }) }
        : {}),
    },
  };
  if (access.accessKey !== undefined && access.secretKey !== undefined) {
    config.credentials = {
      accessKeyId: access.accessKey,
      secretAccessKey: access.secretKey,
      ...(access.token === undefined ? {} : { sessionToken: access.token }),
    };
  } else {
    if (access.profile !== undefined) config.profile = access.profile;
    const mfaCode = access.mfaCode;
    // The SDK's default credential chain reads the client config, including this provider,
    // when a profile assumes a role that requires MFA.
    if (mfaCode !== undefined) config.mfaCodeProvider = () => Promise.resolve(mfaCode);
  }
  return config;
}

/**
 * Creates the EC2 and STS clients of a build, or wraps the ones the caller injects.
 *
 * @example
 * ```ts
 * import { createAwsClients, resolveSourceAmi } from 'ami-chroot/aws';
 *
 * const clients = createAwsClients({ region: 'eu-west-1', profile: 'images' });
 * try {
 *   const source = await resolveSourceAmi({ sourceAmi: 'ami-0123456789abcdef0' }, { ec2: clients.ec2 });
 *   console.log(source.name, clients.callCount()); // AWS calls made so far
 * } finally {
 *   clients.destroy();
 * }
 * ```
 * @throws {@link ConfigError} for inconsistent access options or when no region is known
 * @public
 */
export function createAwsClients(access: AwsAccess = {}, options: CreateAwsClientsOptions = {}): AwsClients {
  validateAccess(access);
  const region = options.region ?? regionFromConfigOrEnv(access, options.env);
  if (!region) {
    throw new ConfigError([
      {
        path: 'region',
        message:
          "no region was configured: set region or AWS_REGION (or call resolveRegion() first to use the host's region)",
      },
    ]);
  }
  const ctx = toCtx({ logger: options.logger });
  let calls = 0;
  const count = (): void => {
    calls++;
  };
  const created: { destroy(): void }[] = [];
  const ec2Cache = new Map<string, EC2Client>();
  let stsClient: STSClient | undefined;

  const sts = (): STSClient => {
    if (!stsClient) {
      if (options.sts) {
        stsClient = options.sts;
      } else {
        stsClient = new (stsSdkNow().STSClient)(clientConfig(access, region));
        created.push(stsClient);
      }
      registerClient(stsClient, { count, region });
    }
    return stsClient;
  };

  const decode = access.decodeAuthorizationMessages
    ? async (encoded: string, signal: AbortSignal | undefined): Promise<string> => {
        const { DecodeAuthorizationMessageCommand } = await stsSdk();
        const out = await send(sts(), new DecodeAuthorizationMessageCommand({ EncodedMessage: encoded }), ctx, {
          signal,
          region,
        });
        return out.DecodedMessage ?? '';
      }
    : undefined;

  const ec2 = (target: string = region): EC2Client => {
    let client = ec2Cache.get(target);
    if (client) return client;
    const injected = options.ec2;
    if (typeof injected === 'object' && injected !== null) {
      if (target !== region) {
        throw new ConfigError([
          {
            path: 'ec2',
            message: `an EC2 client for region ${target} is needed but only one client (for ${region}) was injected; pass a function (region) => EC2Client`,
          },
        ]);
      }
      client = injected;
    } else if (typeof injected === 'function') {
      client = injected(target);
    } else {
      client = new (ec2SdkNow().EC2Client)({
        ...clientConfig(access, target),
        ...(access.customEndpointEc2 === undefined ? {} : { endpoint: access.customEndpointEc2 }),
      });
      created.push(client);
    }
    registerClient(client, { count, region: target, ...(decode ? { decode } : {}) });
    ec2Cache.set(target, client);
    return client;
  };

  return {
    region,
    ec2,
    sts,
    callCount: () => calls,
    destroy: () => {
      for (const c of created.splice(0)) c.destroy();
      ec2Cache.clear();
      stsClient = undefined;
    },
  };
}
