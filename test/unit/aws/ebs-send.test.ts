/**
 * sendEbs: the EBS direct calls outside the block pool (list calls, StartSnapshot,
 * CompleteSnapshot) are retried when EBS throttles them, as the pool retries blocks; the EBS
 * client makes one attempt per request, so without this a throttled list call failed the build.
 */
import { EBSClient, EBSServiceException, ListSnapshotBlocksCommand, StartSnapshotCommand } from '@aws-sdk/client-ebs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { sendEbs } from '../../../src/aws/ebs/blocks.js';
import { toCtx } from '../../../src/internal/ctx.js';

const ebs = new EBSClient({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
const mock = mockClient(ebs);
const ctx = toCtx({ logger: { warn: () => {}, error: () => {} } });
const meta = { phase: 'download' as const, region: 'us-east-1' };

const ebsError = (name: string, status: number): EBSServiceException =>
  new EBSServiceException({
    name,
    message: `${name} (test)`,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
  });

afterEach(() => mock.reset());

describe('sendEbs', () => {
  it('retries a throttled call until it succeeds', async () => {
    mock
      .on(ListSnapshotBlocksCommand)
      .rejectsOnce(ebsError('RequestThrottledException', 400))
      .rejectsOnce(ebsError('RequestThrottledException', 400))
      .resolves({ Blocks: [{ BlockIndex: 3, BlockToken: 't' }], VolumeSize: 1 });
    const out = await sendEbs(ebs, new ListSnapshotBlocksCommand({ SnapshotId: 'snap-1' }), ctx, meta, {
      baseDelayMs: 1,
    });
    expect(out.Blocks).toEqual([{ BlockIndex: 3, BlockToken: 't' }]);
    expect(mock.commandCalls(ListSnapshotBlocksCommand)).toHaveLength(3);
  });

  it('retries a server error of an idempotent call, not of one that may have created something', async () => {
    mock.on(ListSnapshotBlocksCommand).rejectsOnce(ebsError('InternalServerException', 500)).resolves({ Blocks: [] });
    await sendEbs(ebs, new ListSnapshotBlocksCommand({ SnapshotId: 'snap-1' }), ctx, meta, { baseDelayMs: 1 });
    expect(mock.commandCalls(ListSnapshotBlocksCommand)).toHaveLength(2);

    mock.on(StartSnapshotCommand).rejects(ebsError('InternalServerException', 500));
    await expect(
      sendEbs(ebs, new StartSnapshotCommand({ VolumeSize: 1 }), ctx, meta, { idempotent: false, baseDelayMs: 1 }),
    ).rejects.toThrow(/InternalServerException/);
    expect(mock.commandCalls(StartSnapshotCommand)).toHaveLength(1);
  });

  it('gives up on an error that is not transient at once', async () => {
    mock.on(ListSnapshotBlocksCommand).rejects(ebsError('ValidationException', 400));
    await expect(
      sendEbs(ebs, new ListSnapshotBlocksCommand({ SnapshotId: 'snap-1' }), ctx, meta, { baseDelayMs: 1 }),
    ).rejects.toThrow(/ValidationException/);
    expect(mock.commandCalls(ListSnapshotBlocksCommand)).toHaveLength(1);
  });
});
