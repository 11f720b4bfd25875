/**
 * Every EC2/STS call of the library goes through {@link send}: it passes the abort signal, counts
 * the call for the client set it belongs to, logs it, and turns a failure into an
 * {@link AwsError} that says what to do (decoding authorization failures when asked to).
 * It is a wrapper around `client.send`, not middleware, so it behaves the same with injected
 * clients and with aws-sdk-client-mock.
 */
import { AwsError } from '../errors.js';
import type { Phase, ResourceRefs } from '../errors.js';
import { throwIfAborted } from '../internal/abort.js';
import type { Ctx } from '../internal/ctx.js';
import { awsErrorCode, httpStatusOf, isThrottlingError, withoutTransport } from './aws-errors.js';
import { messageOf } from '../internal/to-error.js';

/** The output type of an SDK command, read from its middleware handler. @internal */
export type OutputOf<C> = C extends {
  resolveMiddleware(...args: never[]): (...args: never[]) => Promise<{ output: infer O }>;
}
  ? O
  : never;

/** Anything with the SDK client's `send`. @internal */
export interface SdkClient {
  send(command: never, options?: { abortSignal?: AbortSignal }): Promise<unknown>;
}

/** What a client set knows about one of its clients. @internal */
export interface ClientInfo {
  /** Counts calls. */
  readonly count: () => void;
  /** Decodes an encoded authorization failure message (decodeAuthorizationMessages). */
  readonly decode?: (encoded: string, signal: AbortSignal | undefined) => Promise<string>;
  /** The region the client talks to. */
  readonly region?: string;
}

const registry = new WeakMap<object, ClientInfo>();

/** Associates a client with its client set (counter, decoder). @internal */
export function registerClient(client: object, info: ClientInfo): void {
  registry.set(client, info);
}

/** What a call is about, for logs and errors. @internal */
export interface CallMeta {
  /** The phase named by an error. */
  readonly phase?: Phase;
  /** Resources named by an error. */
  readonly resources?: ResourceRefs;
  /** Region, for messages. */
  readonly region?: string;
  /** A signal that replaces the context's (cleanup runs with its own). */
  readonly signal?: AbortSignal | undefined;
}

/** `CreateVolumeCommand` -> `CreateVolume`. @internal */
export function operationName(command: object): string {
  const name = command.constructor.name;
  return name.endsWith('Command') ? name.slice(0, -'Command'.length) : name;
}

const ENCODED_MESSAGE = /Encoded authorization failure message:\s*([A-Za-z0-9_\-+/=]+)/;

function hintFor(code: string | undefined, status: number | undefined, operation: string, error: unknown): string {
  const message = error instanceof Error ? error.message : '';
  switch (code) {
    case 'UnauthorizedOperation':
    case 'AccessDenied':
    case 'AccessDeniedException':
    case 'AuthFailure':
      return `Allow ec2:${operation} in the IAM policy of the credentials in use (enable decodeAuthorizationMessages to see which statement denied it).`;
    case 'InvalidClientTokenId':
    case 'UnrecognizedClientException':
    case 'SignatureDoesNotMatch':
    case 'IncompleteSignature':
      return 'The AWS credentials are not valid: check accessKey/secretKey or the profile.';
    case 'ExpiredToken':
    case 'ExpiredTokenException':
    case 'RequestExpired':
      return 'The AWS credentials have expired: refresh the session (or the MFA code) and retry; a clock far off also causes this.';
    case 'OptInRequired':
      return 'The account is not subscribed to this service or region: enable the region for the account.';
    case undefined:
      break;
    default:
      if (isThrottlingError(error))
        return 'EC2 kept throttling after the SDK retries: raise maxRetries or run fewer builds at once.';
      if (code.endsWith('.NotFound')) return 'Check the id and the region.';
      return '';
  }
  if (status === undefined) {
    if (/credential/i.test(message)) {
      return 'No AWS credentials were found: set accessKey/secretKey, a profile, or run on an instance with an IAM role.';
    }
    if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|socket|timeout/i.test(message)) {
      return 'The EC2 endpoint could not be reached: check the network, the region, and customEndpointEc2.';
    }
  }
  return '';
}

/**
 * Wraps a failed AWS call into an {@link AwsError} with the operation, the AWS code and request id,
 * and a hint. Never includes request parameters, so no secret can leak through it.
 * @internal
 */
export async function toAwsError(
  error: unknown,
  operation: string,
  meta: CallMeta,
  decode?: ClientInfo['decode'],
): Promise<AwsError> {
  if (error instanceof AwsError) return error;
  const code = awsErrorCode(error);
  const status = httpStatusOf(error);
  const requestId = (error as { $metadata?: { requestId?: string } } | undefined)?.$metadata?.requestId;
  const original = messageOf(error);
  let decodedMessage: string | undefined;
  if (decode && (code === 'UnauthorizedOperation' || code === 'AccessDenied')) {
    const match = ENCODED_MESSAGE.exec(original);
    if (match?.[1]) {
      try {
        decodedMessage = await decode(match[1], meta.signal);
      } catch (decodeError) {
        decodedMessage = `(could not decode the authorization message: ${messageOf(decodeError)})`;
      }
    }
  }
  const where = [
    meta.region && `in ${meta.region}`,
    ...Object.entries(meta.resources ?? {})
      .filter(([k]) => k !== 'region')
      .map(([, v]): unknown => v),
  ]
    .filter(Boolean)
    .join(', ');
  const hint = hintFor(code, status, operation, error);
  const message =
    `${operation} failed${where ? ` (${where})` : ''}: ${code ? `${code}: ` : ''}${original}` +
    (decodedMessage ? `\nDecoded authorization message: ${decodedMessage}` : '') +
    (hint ? `\n${hint}` : '');
  return new AwsError(message, {
    operation,
    ...(code === undefined ? {} : { awsCode: code }),
    ...(requestId === undefined ? {} : { requestId }),
    ...(decodedMessage === undefined ? {} : { decodedMessage }),
    ...(meta.phase === undefined ? {} : { phase: meta.phase }),
    resources: { ...meta.resources, ...(meta.region === undefined ? {} : { region: meta.region }) },
    cause: withoutTransport(error),
  });
}

/**
 * Sends one command: abortable, counted, logged at debug with its fields once done, and failing
 * with an {@link AwsError}.
 * On abort it throws the signal's reason, never the SDK's own AbortError.
 * @internal
 */
export async function send<C extends object>(
  client: object,
  command: C,
  ctx: Ctx,
  meta: CallMeta = {},
): Promise<OutputOf<C>> {
  const signal = 'signal' in meta ? meta.signal : ctx.signal;
  throwIfAborted(signal);
  const info = registry.get(client);
  const operation = operationName(command);
  info?.count();
  const start = performance.now();
  let ok = false;
  try {
    const options = signal === undefined ? {} : { abortSignal: signal };
    const output = (await (client as SdkClient).send(command as never, options)) as OutputOf<C>;
    ok = true;
    return output;
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw await toAwsError(error, operation, { ...meta, signal }, info?.decode);
  } finally {
    logCall(ctx, operation, meta, Math.round(performance.now() - start), ok);
  }
}

/** One debug line per call, once it is done: what, where, on what, how long. */
function logCall(ctx: Ctx, operation: string, meta: CallMeta, durationMs: number, ok: boolean): void {
  const region = meta.region ?? meta.resources?.region;
  ctx.logger.debug(`AWS ${operation}${region ? ` in ${region}` : ''}: ${ok ? 'ok' : 'failed'} in ${durationMs} ms`, {
    operation,
    ...(meta.phase === undefined ? {} : { phase: meta.phase }),
    ...meta.resources,
    ...(region === undefined ? {} : { region }),
    durationMs,
    ok,
  });
}

/**
 * Every page of a paginated call, from the SDK's own paginator (`paginateDescribeVolumes`, ...)
 * with each request sent through {@link send}: counted, logged, abortable, an {@link AwsError}.
 * @internal
 */
export function pages<Client extends object, Input, Output>(
  paginate: (config: { client: Client; pageSize?: number }, input: Input) => AsyncIterable<Output>,
  client: Client,
  input: Input,
  ctx: Ctx,
  meta: CallMeta & { readonly pageSize?: number } = {},
): AsyncIterable<Output> {
  const { pageSize, ...callMeta } = meta;
  // The paginator insists on an instance of the SDK's client class: a view of the client whose
  // `send` is ours passes that check and still reaches the real (or mocked) client.
  const routed = Object.create(client, {
    send: { value: (command: object) => send(client, ownInput(command), ctx, callMeta) },
  }) as Client;
  return paginate({ client: routed, ...(pageSize === undefined ? {} : { pageSize }) }, input);
}

// The paginator reuses one input object, setting the next token on it after each page: each
// command gets its own copy (without the unset token), so what was sent stays what was sent.
function ownInput(command: object): object {
  const { input } = command as { input: Record<string, unknown> };
  const copy = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  return new (command.constructor as new (input: object) => object)(copy);
}
