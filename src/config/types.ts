/**
 * The build configuration: one typed home for every option of Packer's `amazon-chroot` builder
 * (camelCase), plus the few ami-chroot adds. Validated by {@link resolveConfig} before anything
 * touches AWS or the host.
 */
import type { PollingConfig } from '../types.js';

/**
 * Build data a template can use. Which names an option may use depends on the option (see
 * {@link BuildConfig}); everything is a string, absent values render as the empty string.
 * @public
 */
export interface TemplateData {
  /** The region the AMI is built in, e.g. `eu-central-1`. */
  readonly BuildRegion?: string;
  /** The source AMI id, e.g. `ami-a2412fcd`. */
  readonly SourceAMI?: string;
  /** The source AMI's name. */
  readonly SourceAMIName?: string;
  /** The source AMI's creation date (as EC2 reports it). */
  readonly SourceAMICreationDate?: string;
  /** The source AMI owner's account id. */
  readonly SourceAMIOwner?: string;
  /** The source AMI owner's alias (e.g. `amazon`), when it has one. */
  readonly SourceAMIOwnerName?: string;
  /** The source AMI's tags; a template reads one as `{{ .SourceAMITags.key }}`. */
  readonly SourceAMITags?: Readonly<Record<string, string>>;
  /** The host block device (`/dev/nvme1n1`, `/dev/xvdf` on Xen), or its basename (`nvme1n1`) in `mountPath`. */
  readonly Device?: string;
  /** Where the root device is mounted. */
  readonly MountPath?: string;
  /** The shell command a `commandWrapper` wraps. */
  readonly Command?: string;
}

/**
 * A template option: a string in Packer's template syntax (`"my-ami {{timestamp}}"`,
 * `"{{ .SourceAMIName | clean_resource_name }}"`), or a function of the same data.
 *
 * @remarks
 * A string can never run code: anything outside the grammar is a {@link ConfigError}. A function
 * receives a frozen copy of the data; in shell-command options it receives raw values and must
 * quote them itself (see {@link shellQuote}).
 * @public
 */
export type Template = string | ((data: TemplateData) => string);

/**
 * The time and id source of one build, so `{{timestamp}}` and `{{isotime}}` are one value for the
 * whole build.
 * @public
 */
export interface TemplateClock {
  /** The build's start time. */
  readonly now: Date;
  /** A new UUID for each `{{uuid}}`. */
  uuid(): string;
}

/**
 * A validated, compiled template option, ready to render.
 * @public
 */
export interface CompiledTemplate {
  /** The option path, e.g. `tags.Name`. */
  readonly path: string;
  /** The template text, or `undefined` for a function template. */
  readonly source: string | undefined;
  /** The data names this option may use. */
  readonly allowed: readonly (keyof TemplateData)[];
  /**
   * Renders the template. Throws a {@link ConfigError} when a function template returns something
   * other than a string, or the rendered value is not valid for the option (an AMI name with
   * forbidden characters, a relative mount path).
   */
  render(data: TemplateData, clock: TemplateClock): string;
}

/**
 * Selects the source AMI with DescribeImages (Packer `source_ami_filter`).
 * @public
 */
export interface SourceAmiFilter {
  /**
   * DescribeImages filters, e.g. `{ name: 'ubuntu/images/*', 'virtualization-type': 'hvm' }`.
   * An array gives several values for one filter. Unlike Packer, a string is one value (Packer
   * splits it as a CSV line; {@link fromPackerConfig} does that for imported configs).
   */
  readonly filters?: Readonly<Record<string, string | readonly string[]>>;
  /**
   * Account ids, `self`, or aliases such as `amazon`. Required whenever a filter is set (Packer's
   * chroot builder does not enforce it; an unowned filter can pick anybody's public image).
   */
  readonly owners?: readonly string[];
  /** Pick the newest image when several match, instead of failing. @defaultValue false */
  readonly mostRecent?: boolean;
  /** Also consider deprecated images. @defaultValue false */
  readonly includeDeprecated?: boolean;
}

/**
 * EBS volume types.
 * @public
 */
export type VolumeType = 'standard' | 'gp2' | 'gp3' | 'io1' | 'io2' | 'sc1' | 'st1';

/**
 * AMI architectures (Packer `ami_architecture`).
 * @public
 */
export type Architecture = 'x86_64' | 'arm64' | 'i386' | 'x86_64_mac' | 'arm64_mac';

/**
 * AMI boot modes (Packer `boot_mode`).
 * @public
 */
export type BootMode = 'legacy-bios' | 'uefi' | 'uefi-preferred';

/**
 * AMI virtualization types (Packer `ami_virtualization_type`).
 * @public
 */
export type VirtualizationType = 'hvm' | 'paravirtual';

/**
 * NitroTPM support of an AMI; only `v2.0` exists (Packer `tpm_support`).
 * @public
 */
export type TpmSupport = 'v2.0';

/**
 * IMDS support of an AMI: `v2.0` requires IMDSv2 (Packer `imds_support`); `''` is unset.
 * @public
 */
export type ImdsSupport = 'v2.0' | '';

/**
 * One block device mapping of the AMI (Packer `ami_block_device_mappings` item).
 * @public
 */
export interface BlockDeviceMapping {
  /** The device name exposed to the instance, e.g. `/dev/sdh` or `xvdh` (Packer `device_name`). Required. */
  readonly deviceName: string;
  /** Delete the volume when the instance terminates. @defaultValue false */
  readonly deleteOnTermination?: boolean;
  /** Encrypt the volume. */
  readonly encrypted?: boolean;
  /**
   * Not accepted: RegisterImage takes no KMS key in a block device mapping, so validation rejects it.
   * Encrypt the AMI with a key through `encryptBoot: true` and the top-level `kmsKeyId` instead.
   */
  readonly kmsKeyId?: string;
  /** Provisioned IOPS: io1 100–64000 (≤ 50/GiB), io2 100–256000 (≤ 1000/GiB), gp3 3000–80000 (≤ 500/GiB). */
  readonly iops?: number;
  /** Throughput in MiB/s, gp3 only: 125–2000. */
  readonly throughput?: number;
  /** Suppress this device of the AMI. */
  readonly noDevice?: boolean;
  /** The snapshot to create the volume from. */
  readonly snapshotId?: string;
  /** An instance store volume, e.g. `ephemeral0`. */
  readonly virtualName?: string;
  /** Size in GiB; required unless `snapshotId`, `virtualName` or `noDevice` is set, or this is the root device. */
  readonly volumeSize?: number;
  /** The volume type. */
  readonly volumeType?: VolumeType;
}

/**
 * A filesystem mounted into the chroot: Packer's `[fsType, source, target]` triple, or the same as
 * an object. `fsType: 'bind'` bind-mounts `source`.
 * @public
 */
export type ChrootMount =
  | readonly [fsType: string, source: string, target: string]
  | {
      /** Filesystem type (`proc`, `sysfs`, `devpts`, ...), or `bind` to bind-mount `source`. */
      readonly fsType: string;
      /** Device or pseudo-filesystem name (e.g. `proc`), or for `bind` the host path. */
      readonly source: string;
      /** Absolute path inside the chroot. */
      readonly target: string;
    };

/**
 * A chroot mount, resolved.
 * @public
 */
export interface ChrootMountSpec {
  /** Filesystem type, or `bind`. */
  readonly fsType: string;
  /** Device, pseudo-filesystem name, or (for `bind`) host path. */
  readonly source: string;
  /** Absolute path inside the chroot. */
  readonly target: string;
}

/**
 * AMI deregistration protection (Packer `deregistration_protection`).
 * @public
 */
export interface DeregistrationProtection {
  /** Protect the AMI from deregistration. Forced on by `withCooldown`. @defaultValue false */
  readonly enabled?: boolean;
  /** Keep the protection for 24 h after it is disabled. @defaultValue false */
  readonly withCooldown?: boolean;
}

/**
 * Everything a build can be told. Each field names the Packer `amazon-chroot` option it mirrors;
 * {@link fromPackerConfig} maps a Packer builder block onto it.
 *
 * @remarks
 * Deliberate differences from Packer: static credentials are optional (the AWS SDK's default
 * credential chain is the norm); the virtualization type follows the source image unless set;
 * `chrootMounts: []` means "no extra mounts" (in Packer it means "the defaults") and
 * `extraChrootMounts` adds to the defaults; block device mappings, volume types, IOPS and
 * throughput are validated; templates may use build data in `amiName`.
 *
 * @example
 * ```ts
 * import type { BuildConfig } from 'ami-chroot';
 *
 * export const config: BuildConfig = {
 *   sourceAmiFilter: { filters: { name: 'debian-12-amd64-*' }, owners: ['136693071363'], mostRecent: true },
 *   amiName: 'base {{ isotime "2006-01-02" }} {{timestamp}}',
 *   tags: { Source: '{{ .SourceAMIName }}' },
 * };
 * ```
 * @public
 */
export interface BuildConfig {
  // --- Access -------------------------------------------------------------------------------

  /** The build region (Packer `region`). @defaultValue `AWS_REGION` or `AWS_DEFAULT_REGION`, else the build host's region (instance identity document) */
  readonly region?: string;
  /** Shared-config profile (Packer `profile`). @defaultValue the SDK's default (`AWS_PROFILE`) */
  readonly profile?: string;
  /** Static access key id (Packer `access_key`). Optional, unlike Packer: the SDK's credential chain is the norm. Set with `secretKey`. */
  readonly accessKey?: string;
  /** Static secret key (Packer `secret_key`). Set with `accessKey`. Never logged. */
  readonly secretKey?: string;
  /** Session token for temporary static credentials (Packer `token`). Never logged. */
  readonly token?: string;
  /** MFA TOTP code (Packer `mfa_code`). Never logged. */
  readonly mfaCode?: string;
  /** EC2 endpoint URL for EC2-compatible APIs (Packer `custom_endpoint_ec2`). */
  readonly customEndpointEc2?: string;
  /** Skip TLS verification of the EC2 endpoint (Packer `insecure_skip_tls_verify`). @defaultValue false */
  readonly insecureSkipTlsVerify?: boolean;
  /** AWS SDK retries per request (Packer `max_retries`). @defaultValue 10 (as Packer) */
  readonly maxRetries?: number;
  /** Decode encoded authorization failures with sts:DecodeAuthorizationMessage (Packer `decode_authorization_messages`). @defaultValue false */
  readonly decodeAuthorizationMessages?: boolean;
  /** Accepted for compatibility and ignored, as in Packer (`skip_metadata_api_check`). @defaultValue false */
  readonly skipMetadataApiCheck?: boolean;
  /** Skip checking that `region` and `amiRegions` exist (Packer `skip_region_validation`); also skips the region-name pattern check. @defaultValue false */
  readonly skipRegionValidation?: boolean;

  // --- Source -------------------------------------------------------------------------------

  /** The source AMI id (Packer `source_ami`). Required unless `sourceAmiFilter` is set or `fromScratch`. */
  readonly sourceAmi?: string;
  /** Select the source AMI by filters (Packer `source_ami_filter`). With `sourceAmi` too, the id must also match the filter. */
  readonly sourceAmiFilter?: SourceAmiFilter;

  // --- AMI ----------------------------------------------------------------------------------

  /**
   * The AMI's name (Packer `ami_name`): 3–128 characters of `A-Za-z0-9()[] ./-'@_`. Required.
   * A template; unlike Packer it may also use build data (`{{ .SourceAMIName }}`). Use
   * `{{ ... | clean_resource_name }}` to make arbitrary text valid.
   */
  readonly amiName: Template;
  /** The AMI's description (Packer `ami_description`); a template with build data. @defaultValue none */
  readonly amiDescription?: Template;
  /** Virtualization type of the AMI (Packer `ami_virtualization_type`). Required with `fromScratch`. @defaultValue the source image's type (Packer's docs claim paravirtual; its code follows the source too) */
  readonly amiVirtualizationType?: VirtualizationType;
  /** Architecture, used for `fromScratch` images (others take the source's) (Packer `ami_architecture`). @defaultValue `x86_64` */
  readonly amiArchitecture?: Architecture;
  /** Account ids that may launch the AMI (Packer `ami_users`). @defaultValue [] */
  readonly amiUsers?: readonly string[];
  /** Groups that may launch the AMI; only `all` (public) exists (Packer `ami_groups`). @defaultValue [] */
  readonly amiGroups?: readonly string[];
  /** Organization ARNs that may launch the AMI (Packer `ami_org_arns`). @defaultValue [] */
  readonly amiOrgArns?: readonly string[];
  /** Organizational unit ARNs that may launch the AMI (Packer `ami_ou_arns`). @defaultValue [] */
  readonly amiOuArns?: readonly string[];
  /** Product codes to associate (Packer `ami_product_codes`). @defaultValue [] */
  readonly amiProductCodes?: readonly string[];
  /** Regions to copy the AMI to (Packer `ami_regions`); deduplicated, the build region dropped. @defaultValue [] */
  readonly amiRegions?: readonly string[];
  /**
   * KMS key per copy region (Packer `region_kms_key_ids`); `''` means that region's default key.
   * When set, its keys and `amiRegions` must match exactly.
   */
  readonly regionKmsKeyIds?: Readonly<Record<string, string>>;
  /** Re-encrypt the AMI with a copy (Packer `encrypt_boot`). Unset keeps the source's encryption on copies; `false` decrypts them. @defaultValue unset */
  readonly encryptBoot?: boolean;
  /** KMS key for `encryptBoot` in the build region (Packer `kms_key_id`); needs `encryptBoot: true`. */
  readonly kmsKeyId?: string;
  /** Don't keep an AMI in the build region (Packer `skip_save_build_region`). @defaultValue false */
  readonly skipSaveBuildRegion?: boolean;
  /** Deregister an existing AMI with the same name first (Packer `force_deregister`). @defaultValue false */
  readonly forceDeregister?: boolean;
  /** With `forceDeregister`, also delete the old AMI's snapshots (Packer `force_delete_snapshot`). @defaultValue false */
  readonly forceDeleteSnapshot?: boolean;
  /** Register with ENA support (Packer `ena_support`); needs HVM. `false` turns it off. @defaultValue the source image's (Packer: off unless set) */
  readonly enaSupport?: boolean;
  /** Register with SR-IOV (`simple`) support (Packer `sriov_support`); needs HVM. `false` keeps the source image's setting. @defaultValue false */
  readonly sriovSupport?: boolean;
  /** Boot mode (Packer `boot_mode`). @defaultValue the source image's; with `fromScratch`, EC2's default for the architecture */
  readonly bootMode?: BootMode;
  /** Base64 UEFI variable store (Packer `uefi_data`); needs a UEFI boot mode (or arm64). @defaultValue the source image's */
  readonly uefiData?: string;
  /** NitroTPM support; only `v2.0` (Packer `tpm_support`). Not with `legacy-bios`. @defaultValue the source image's */
  readonly tpmSupport?: TpmSupport;
  /** Require IMDSv2 on instances of the AMI; only `v2.0` (Packer `imds_support`); `''` is unset. @defaultValue the source image's */
  readonly imdsSupport?: ImdsSupport;
  /** Deprecate the AMI (in every region) at this time: RFC 3339 (`2030-01-02T03:04:05Z`) or a Date; in the future, at most 10 years ahead (2 for a public AMI), as EC2 allows (Packer `deprecate_at`). */
  readonly deprecateAt?: string | Date;
  /** Deregistration protection (Packer `deregistration_protection`). @defaultValue disabled */
  readonly deregistrationProtection?: DeregistrationProtection;
  /** Time-based copy: finish each region copy within this many minutes, 15–2880 in steps of 15 (Packer `snapshot_copy_duration_minutes`). @defaultValue best effort */
  readonly snapshotCopyDurationMinutes?: number;
  /** Tags of the AMI and its snapshots (Packer `tags`/`tag`); values are templates with build data. @defaultValue `{}` */
  readonly tags?: Readonly<Record<string, Template>>;
  /** Tags of the snapshots, over `tags` (Packer `snapshot_tags`/`snapshot_tag`); templates with build data. @defaultValue `{}` */
  readonly snapshotTags?: Readonly<Record<string, Template>>;
  /** Account ids that may create volumes from the snapshots (Packer `snapshot_users`). @defaultValue [] */
  readonly snapshotUsers?: readonly string[];
  /** Groups that may create volumes from the snapshots; only `all` (Packer `snapshot_groups`). @defaultValue [] */
  readonly snapshotGroups?: readonly string[];

  // --- Block devices ------------------------------------------------------------------------

  /**
   * The AMI's block device mappings (Packer `ami_block_device_mappings`). They replace the
   * source's entirely and then need `rootDeviceName` and `rootVolumeSize`; required with
   * `fromScratch`. The entry named `rootDeviceName` receives the new snapshot.
   * @defaultValue the source image's mappings
   */
  readonly amiBlockDeviceMappings?: readonly BlockDeviceMapping[];

  // --- Root volume --------------------------------------------------------------------------

  /** Root volume size in GiB, 1–65536 (Packer `root_volume_size`); only grows the source's. Required with `fromScratch` or mappings. @defaultValue the source snapshot's size */
  readonly rootVolumeSize?: number;
  /** Root volume type (Packer `root_volume_type`), of the work volume and the AMI's root mapping unless that mapping names its own (Packer's AMI keeps the source's); st1/sc1 cannot boot. @defaultValue the source's type; `gp2` with `fromScratch` */
  readonly rootVolumeType?: VolumeType;
  /** Root volume IOPS, of the work volume and the AMI's root mapping (ours: Packer cannot set it); ranges as {@link BlockDeviceMapping.iops}. @defaultValue the source's when the type is unchanged, else the type's default */
  readonly rootVolumeIops?: number;
  /** Root volume throughput in MiB/s, gp3 only, 125–2000, of the work volume and the AMI's root mapping (ours: Packer cannot set it). @defaultValue the source's when the type is unchanged, else 125 */
  readonly rootVolumeThroughput?: number;
  /**
   * How fast, in MiB/s (100-300, EC2's range), the work volume fetches the source snapshot's
   * blocks from S3 (CreateVolume `VolumeInitializationRate`; ours: Packer cannot set it).
   *
   * @remarks
   * A volume made from a snapshot reads each block slowly the first time, because the block is
   * fetched from S3 then; provisioning that reads much of the image (package upgrades, a
   * `find /`, compiling) waits on it. A rate makes EC2 fetch every block in the background at that
   * pace, so the volume is fully initialized after about size / rate (8 GiB at 300 MiB/s: under
   * half a minute). It pays when provisioning reads a large share of a large source image and
   * the source has no fast snapshot restore; it is billed per GiB initialized. Leave it unset for
   * small images or provisioning that touches few files, and when the source snapshot is enabled
   * for fast snapshot restore (a rate overrides it). Not allowed with `fromScratch` (no snapshot).
   * @defaultValue unset (EC2's default: blocks fetched on first read)
   */
  readonly rootVolumeInitializationRate?: number;
  /** Tags of the work volume, applied on create (Packer `root_volume_tags`/`root_volume_tag`); templates with build data. @defaultValue `{}` */
  readonly rootVolumeTags?: Readonly<Record<string, Template>>;
  /** Encrypt the work volume itself, so no slow encrypted copy is needed (Packer `root_volume_encrypt_boot`). @defaultValue unset (as the source) */
  readonly rootVolumeEncryptBoot?: boolean;
  /** KMS key of the work volume (Packer `root_volume_kms_key_id`); needs `rootVolumeEncryptBoot: true`. */
  readonly rootVolumeKmsKeyId?: string;
  /** The root device name, e.g. `xvda` or `/dev/xvda` (Packer `root_device_name`). Required with mappings or `fromScratch`. */
  readonly rootDeviceName?: string;
  /** Build a new empty volume instead of copying a source AMI (Packer `from_scratch`); `preMountCommands` must partition and format it. @defaultValue false */
  readonly fromScratch?: boolean;

  // --- Chroot -------------------------------------------------------------------------------

  /**
   * Filesystems mounted into the chroot, in order (Packer `chroot_mounts`); replaces the defaults
   * (proc, sysfs, /dev bind, devpts, binfmt_misc). Unlike Packer, `[]` means none.
   * @defaultValue the five Packer defaults
   */
  readonly chrootMounts?: readonly ChrootMount[];
  /** Filesystems mounted after `chrootMounts` (ours: Packer can only replace the list). @defaultValue [] */
  readonly extraChrootMounts?: readonly ChrootMount[];
  /** Host files copied into the chroot for provisioning and restored before the snapshot (Packer `copy_files`). @defaultValue `['/etc/resolv.conf']`; `[]` with `fromScratch` */
  readonly copyFiles?: readonly string[];
  /**
   * Wraps every host shell command (Packer `command_wrapper`), e.g. `sudo {{.Command}}`; must
   * contain `{{.Command}}`. `.Command` is inserted as is where it stands unquoted (it is already a
   * quoted shell command) and escaped inside quotes.
   * @defaultValue `{{.Command}}`
   */
  readonly commandWrapper?: Template;
  /** Attachment device, `/dev/sd[f-p]` or `/dev/xvd[f-p]` (Packer `device_path`). @defaultValue a free one, chosen under a lock */
  readonly devicePath?: string;
  /** Host block device to mount instead of the resolved one, e.g. `/dev/nvme1n1p` (Packer `nvme_device_path`). @defaultValue resolved from the volume id */
  readonly nvmeDevicePath?: string;
  /** Where the root device is mounted (Packer `mount_path`); a template with `.Device` (the host block device's basename, e.g. `nvme1n1` or `xvdf`); must be absolute. @defaultValue `/mnt/packer-amazon-chroot-volumes/{{.Device}}` */
  readonly mountPath?: Template;
  /** Partition holding `/`; `"0"` mounts the whole device (Packer `mount_partition`). @defaultValue `"1"`; `"0"` when the image is paravirtual (`amiVirtualizationType`, else the source's), as Packer does */
  readonly mountPartition?: string | number;
  /** Options of the root mount, each passed as `-o` (Packer `mount_options`); an XFS root gets `nouuid` added, since its UUID is a copy's that may be mounted already. @defaultValue [] (plus `nouuid` for XFS) */
  readonly mountOptions?: readonly string[];
  /** Shell commands run after attach, before mount (Packer `pre_mount_commands`); templates with `.Device` (the host block device, e.g. `/dev/nvme1n1`), values shell-quoted. Required with `fromScratch`. @defaultValue [] */
  readonly preMountCommands?: readonly Template[];
  /** Shell commands run after the root mount, before the chroot mounts (Packer `post_mount_commands`); templates with `.Device` (the host block device) and `.MountPath`, values shell-quoted. @defaultValue [] */
  readonly postMountCommands?: readonly Template[];

  // --- ami-chroot ---------------------------------------------------------------------------

  /** Wait tuning (Packer `aws_polling`; also AWS_POLL_DELAY_SECONDS / AWS_MAX_ATTEMPTS, which this wins over). @defaultValue per-wait defaults */
  readonly polling?: PollingConfig;
  /** On failure, keep what was created (mounts, volume, snapshot, AMI, copies) for inspection instead of cleaning up (Packer `-on-error=abort`); an abort with the default reason still cleans up. @defaultValue false */
  readonly keepOnError?: boolean;
  /** Keep services from starting inside the chroot during provisioning (policy-rc.d and friends). @defaultValue true */
  readonly serviceGuard?: boolean;
  /** Directory of the cross-process device lock. @defaultValue `/var/lock/ami-chroot` */
  readonly lockDir?: string;
  /** How the image is written: `attach` provisions an EBS volume attached to the EC2 instance this runs on; `ebs-direct` needs no instance: the source's root snapshot is read into `cacheDir` with the EBS direct APIs, provisioned on a loop device, and only the blocks that changed are written back as a child snapshot. @defaultValue `attach` */
  readonly via?: 'attach' | 'ebs-direct';
  /** With `via: 'ebs-direct'`: the source snapshot cache, which also holds the working copy while a build runs. @defaultValue `/var/cache/ami-chroot` */
  readonly cacheDir?: string;
  /** Tags every created resource so orphans can be found: 1–64 of `A-Za-z0-9._-`. @defaultValue a random UUID */
  readonly buildId?: string;
}

/**
 * Static credentials. Printing, inspecting or serializing this object shows only the access key id.
 * @public
 */
export interface StaticCredentials {
  /** Access key id. */
  readonly accessKeyId: string;
  /** Secret access key. */
  readonly secretAccessKey: string;
  /** Session token. */
  readonly sessionToken?: string;
}

/**
 * A {@link BuildConfig} after validation, with every default filled in and every template compiled.
 * @public
 */
export interface ResolvedConfig {
  /** Build region; `undefined` when neither the config nor AWS_REGION / AWS_DEFAULT_REGION says (then the host's). */
  readonly region: string | undefined;
  /** Shared-config profile. */
  readonly profile: string | undefined;
  /** Static credentials, when configured (redacted when printed). */
  readonly credentials: StaticCredentials | undefined;
  /** MFA code (kept out of printing as well). */
  readonly mfaCode: string | undefined;
  /** EC2 endpoint override. */
  readonly customEndpointEc2: string | undefined;
  /** Skip TLS verification. */
  readonly insecureSkipTlsVerify: boolean;
  /** SDK retries per request. */
  readonly maxRetries: number;
  /** Decode authorization failure messages. */
  readonly decodeAuthorizationMessages: boolean;
  /** Skip region existence checks. */
  readonly skipRegionValidation: boolean;

  /** Build from an empty volume. */
  readonly fromScratch: boolean;
  /** Source AMI id. */
  readonly sourceAmi: string | undefined;
  /** Source AMI filter, normalized (every filter value an array). */
  readonly sourceAmiFilter:
    | {
        /** DescribeImages filters, each with its list of values (`{}` when none). */
        readonly filters: Readonly<Record<string, readonly string[]>>;
        /** Owner account ids, `self` or aliases; never empty (validation requires owners). */
        readonly owners: readonly string[];
        /** Pick the newest of several matches instead of failing. */
        readonly mostRecent: boolean;
        /** Also consider deprecated images. */
        readonly includeDeprecated: boolean;
      }
    | undefined;

  /** AMI name template (renders validated). */
  readonly amiName: CompiledTemplate;
  /** AMI description template. */
  readonly amiDescription: CompiledTemplate | undefined;
  /** Explicit virtualization type; `undefined`: the source's. */
  readonly amiVirtualizationType: VirtualizationType | undefined;
  /** Architecture for fromScratch images. */
  readonly amiArchitecture: Architecture;
  /** Launch permission: accounts. */
  readonly amiUsers: readonly string[];
  /** Launch permission: groups. */
  readonly amiGroups: readonly string[];
  /** Launch permission: organizations. */
  readonly amiOrgArns: readonly string[];
  /** Launch permission: organizational units. */
  readonly amiOuArns: readonly string[];
  /** Product codes. */
  readonly amiProductCodes: readonly string[];
  /** Copy regions: deduplicated, without the build region when it was known. */
  readonly amiRegions: readonly string[];
  /** KMS key per copy region (`''`: the region's default key). */
  readonly regionKmsKeyIds: Readonly<Record<string, string>>;
  /** Tri-state: `undefined` keeps the source's encryption on copies. */
  readonly encryptBoot: boolean | undefined;
  /** KMS key for encryptBoot. */
  readonly kmsKeyId: string | undefined;
  /** Skip the build-region AMI. */
  readonly skipSaveBuildRegion: boolean;
  /** Deregister a same-name AMI first. */
  readonly forceDeregister: boolean;
  /** Also delete its snapshots. */
  readonly forceDeleteSnapshot: boolean;
  /** Tri-state ENA support. */
  readonly enaSupport: boolean | undefined;
  /** SR-IOV support. */
  readonly sriovSupport: boolean;
  /** Boot mode. */
  readonly bootMode: BootMode | undefined;
  /** UEFI variable store. */
  readonly uefiData: string | undefined;
  /** NitroTPM. */
  readonly tpmSupport: TpmSupport | undefined;
  /** IMDS support (`''` normalized to undefined). */
  readonly imdsSupport: 'v2.0' | undefined;
  /** Deprecation time. */
  readonly deprecateAt: Date | undefined;
  /** Deregistration protection (`enabled` forced by `withCooldown`). */
  readonly deregistrationProtection: {
    /** Enable deregistration protection on the AMI (and its copies). */
    readonly enabled: boolean;
    /** Keep the protection for 24 h after it is disabled. */
    readonly withCooldown: boolean;
  };
  /** Time-based copy duration. */
  readonly snapshotCopyDurationMinutes: number | undefined;
  /** AMI (and snapshot) tags. */
  readonly tags: Readonly<Record<string, CompiledTemplate>>;
  /** Snapshot tags. */
  readonly snapshotTags: Readonly<Record<string, CompiledTemplate>>;
  /** Snapshot permission: accounts. */
  readonly snapshotUsers: readonly string[];
  /** Snapshot permission: groups. */
  readonly snapshotGroups: readonly string[];

  /** Mappings replacing the source's; `undefined`: the source's. */
  readonly amiBlockDeviceMappings: readonly BlockDeviceMapping[] | undefined;
  /** Root volume size. */
  readonly rootVolumeSize: number | undefined;
  /** Root volume type (`gp2` for fromScratch when unset). */
  readonly rootVolumeType: VolumeType | undefined;
  /** Root volume IOPS. */
  readonly rootVolumeIops: number | undefined;
  /** Root volume throughput. */
  readonly rootVolumeThroughput: number | undefined;
  /** Work volume initialization rate, MiB/s. */
  readonly rootVolumeInitializationRate: number | undefined;
  /** Work volume tags. */
  readonly rootVolumeTags: Readonly<Record<string, CompiledTemplate>>;
  /** Tri-state work volume encryption. */
  readonly rootVolumeEncryptBoot: boolean | undefined;
  /** Work volume KMS key. */
  readonly rootVolumeKmsKeyId: string | undefined;
  /** Root device name. */
  readonly rootDeviceName: string | undefined;

  /** The final list of chroot mounts, in mount order. */
  readonly chrootMounts: readonly ChrootMountSpec[];
  /** Files to copy in. */
  readonly copyFiles: readonly string[];
  /** Command wrapper (values escaped for the shell). */
  readonly commandWrapper: CompiledTemplate;
  /** Explicit attachment device. */
  readonly devicePath: string | undefined;
  /** Explicit host device to mount. */
  readonly nvmeDevicePath: string | undefined;
  /** Mount path template (renders validated: absolute). */
  readonly mountPath: CompiledTemplate;
  /** Partition number, `"0"` for the whole device; `undefined`: `"1"`, or the whole device for a paravirtual image. */
  readonly mountPartition: string | undefined;
  /** Root mount options. */
  readonly mountOptions: readonly string[];
  /** Pre-mount shell commands (values shell-quoted). */
  readonly preMountCommands: readonly CompiledTemplate[];
  /** Post-mount shell commands (values shell-quoted). */
  readonly postMountCommands: readonly CompiledTemplate[];

  /** Polling, merged from the config and the environment (config wins). */
  readonly polling: PollingConfig;
  /** Keep resources on failure. */
  readonly keepOnError: boolean;
  /** Block service starts in the chroot. */
  readonly serviceGuard: boolean;
  /** Device lock directory. */
  readonly lockDir: string;
  /** How the image is written. */
  readonly via: 'attach' | 'ebs-direct';
  /** The source snapshot cache of `via: 'ebs-direct'`. */
  readonly cacheDir: string;
  /** Build id. */
  readonly buildId: string;
  /** Things that are valid but probably not what was meant (dropped regions, ignored env values, ...). */
  readonly warnings: readonly string[];
}
