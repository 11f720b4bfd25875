/**
 * What ami-chroot uses of `@aws-sdk/client-ebs` (see `./ec2.ts` for why the list exists).
 *
 * @packageDocumentation
 */
export {
  CompleteSnapshotCommand,
  EBSClient,
  GetSnapshotBlockCommand,
  ListChangedBlocksCommand,
  ListSnapshotBlocksCommand,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
