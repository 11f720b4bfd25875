/**
 * The one build both tools make in the side-by-side benchmark, and its Packer 1.6.6
 * amazon-chroot template.
 */

/**
 * The build: source by filter, a provision writing a file, one region copy, sharing, tags.
 * @internal
 */
export const SIDE_BY_SIDE = {
  region: 'us-east-1',
  copyRegion: 'us-west-2',
  sourceNamePattern: 'debian-12-amd64-*',
  /** Owner of the test EC2's source images (fixtures/moto.ts). */
  sourceOwner: '136693071363',
  shareWith: '123456789012',
  tags: { Purpose: 'vs-packer', Tool: 'bench' },
  provisionCommand: 'echo built > /etc/vs-packer-marker',
} as const;

/**
 * Packer 1.6.6's amazon-chroot template (JSON) for {@link SIDE_BY_SIDE}.
 * @internal
 */
export function packerTemplate(options: {
  /** The test EC2 (`custom_endpoint_ec2`). */
  readonly endpoint: string;
  readonly amiName: string;
  readonly mountPath: string;
  /** The name the volume is attached under. */
  readonly devicePath: string;
  /** Where Packer mounts it from (partition 1 is this path with `1` appended). */
  readonly nvmeDevicePath: string;
  /** Run after AttachVolume, before the mount: they make the device node. */
  readonly preMountCommands: readonly string[];
}): Record<string, unknown> {
  return {
    builders: [
      {
        type: 'amazon-chroot',
        region: SIDE_BY_SIDE.region,
        custom_endpoint_ec2: options.endpoint,
        skip_region_validation: true,
        source_ami_filter: {
          filters: { name: SIDE_BY_SIDE.sourceNamePattern },
          owners: [SIDE_BY_SIDE.sourceOwner],
          most_recent: true,
        },
        ami_name: options.amiName,
        ami_regions: [SIDE_BY_SIDE.copyRegion],
        ami_users: [SIDE_BY_SIDE.shareWith],
        tags: SIDE_BY_SIDE.tags,
        mount_path: options.mountPath,
        device_path: options.devicePath,
        nvme_device_path: options.nvmeDevicePath,
        pre_mount_commands: options.preMountCommands,
      },
    ],
    provisioners: [{ type: 'shell', inline: [SIDE_BY_SIDE.provisionCommand] }],
  };
}
