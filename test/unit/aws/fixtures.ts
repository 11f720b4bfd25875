/**
 * Shared pieces of the AWS unit tests: a mocked EC2 client per region, its ordered call log,
 * SDK-shaped errors, a virtual clock (waits cost no real time) and quiet options.
 */
import { EC2Client, EC2ServiceException } from '@aws-sdk/client-ec2';
import type { Image } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import type { AwsClientStub } from 'aws-sdk-client-mock';
import { operationName } from '../../../src/aws/call.js';
import type { AwsOperationOptions } from '../../../src/aws/common.js';
import type { PollClock } from '../../../src/aws/poll.js';
import type { ProgressEvent } from '../../../src/types.js';

/** A fake EC2 client for one region: `mock` programs it, `log()` lists what was sent, in order. */
export interface MockedEc2 {
  readonly client: EC2Client;
  readonly mock: AwsClientStub<EC2Client>;
  /** `[operation, input]` of every call, in order. */
  log(): [string, Record<string, unknown>][];
  /** Operation names of every call, in order. */
  names(): string[];
}

export function mockedEc2(region = 'us-east-1'): MockedEc2 {
  const client = new EC2Client({ region, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' } });
  const mock = mockClient(client);
  const log = (): [string, Record<string, unknown>][] =>
    mock.calls().map((c) => {
      const command = c.args[0] as unknown as { input: Record<string, unknown> };
      return [operationName(command), command.input];
    });
  return { client, mock, log, names: () => log().map(([n]) => n) };
}

/** An error shaped like the SDK's (code in `name`, HTTP status in `$metadata`). */
export function ec2Error(code: string, message = `${code} (test)`, status = 400): EC2ServiceException {
  return new EC2ServiceException({
    name: code,
    message,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status, requestId: 'req-test-1' },
  });
}

/** A clock on which sleeping costs nothing; `onSleep` runs before each sleep (to abort, say). */
export function virtualClock(onSleep?: (ms: number) => void): PollClock & { sleeps: number[] } {
  let t = 1_000_000;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => t,
    sleep: async (ms, signal) => {
      onSleep?.(ms);
      if (signal?.aborted) throw signal.reason;
      sleeps.push(ms);
      t += ms;
    },
  };
}

/** Options for a primitive: the mocked client, a virtual clock, a silent logger, events collected. */
export function options(
  ec2: MockedEc2 | AwsOperationOptions['ec2'],
  extra: Partial<AwsOperationOptions> = {},
): AwsOperationOptions & { events: ProgressEvent[]; warnings: string[] } {
  const events: ProgressEvent[] = [];
  const warnings: string[] = [];
  return {
    ec2: ec2 instanceof EC2Client || typeof ec2 === 'function' ? ec2 : ec2.client,
    clock: virtualClock(),
    logger: { warn: (m: string) => warnings.push(m), error: () => {} },
    onProgress: (e) => events.push(e),
    ...extra,
    events,
    warnings,
  };
}

/** A realistic EBS-backed source image. */
export function sourceImageFixture(overrides: Partial<Image> = {}): Image {
  return {
    ImageId: 'ami-source1',
    Name: 'debian-12-amd64-20260101',
    Description: 'Debian 12',
    OwnerId: '136693071363',
    CreationDate: '2026-01-01T00:00:00.000Z',
    Architecture: 'x86_64',
    VirtualizationType: 'hvm',
    RootDeviceType: 'ebs',
    RootDeviceName: '/dev/xvda',
    EnaSupport: true,
    SriovNetSupport: 'simple',
    BootMode: 'uefi-preferred',
    TpmSupport: 'v2.0',
    ImdsSupport: 'v2.0',
    State: 'available',
    BlockDeviceMappings: [
      {
        DeviceName: '/dev/xvda',
        Ebs: {
          SnapshotId: 'snap-root',
          VolumeSize: 8,
          VolumeType: 'gp3',
          Iops: 3000,
          Throughput: 125,
          Encrypted: false,
          DeleteOnTermination: true,
        },
      },
      {
        DeviceName: '/dev/xvdb',
        Ebs: {
          SnapshotId: 'snap-data',
          VolumeSize: 20,
          VolumeType: 'gp2',
          Encrypted: true,
          KmsKeyId: 'arn:aws:kms:us-east-1:1:key/k',
          DeleteOnTermination: true,
        },
      },
      { DeviceName: '/dev/xvdc', VirtualName: 'ephemeral0' },
    ],
    Tags: [{ Key: 'os', Value: 'debian' }],
    ...overrides,
  };
}
