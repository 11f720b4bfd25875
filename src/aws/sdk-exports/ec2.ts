/**
 * What ami-chroot uses of `@aws-sdk/client-ec2`, and nothing else: the library's view of the
 * package is typed from this list (a command not named here does not compile), and a bundle of a
 * program (the CLI, `scripts/bundle.ts`) loads the package through it, so the bundler keeps only
 * these commands and their shapes (`bench/sdk-load.ts`).
 *
 * @packageDocumentation
 */
export {
  AttachVolumeCommand,
  CopyImageCommand,
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DeleteSnapshotCommand,
  DeleteVolumeCommand,
  DeregisterImageCommand,
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeRegionsCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  DisableImageDeregistrationProtectionCommand,
  EC2Client,
  EnableImageDeprecationCommand,
  EnableImageDeregistrationProtectionCommand,
  ModifyImageAttributeCommand,
  ModifySnapshotAttributeCommand,
  RegisterImageCommand,
  paginateDescribeImages,
  paginateDescribeSnapshots,
  paginateDescribeVolumes,
} from '@aws-sdk/client-ec2';
