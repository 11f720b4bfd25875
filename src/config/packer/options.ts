/**
 * The amazon-chroot options of Packer, each with its BuildConfig name and how its value
 * converts; the ignored and unsupported ones with the reason.
 */
import type { BuildConfig } from '../types.js';

export type Kind =
  | 'string'
  | 'template'
  | 'bool'
  | 'int'
  | 'strings'
  | 'templates'
  | 'stringMap'
  | 'tagMap'
  | 'tagBlocks'
  | 'partition'
  | 'mounts'
  | 'mappings'
  | 'filter'
  | 'polling'
  | 'deregistration';

export interface Mapped {
  readonly to: keyof BuildConfig;
  readonly kind: Kind;
}

/** Packer option → BuildConfig option. */
export const OPTIONS: Readonly<Record<string, Mapped>> = {
  access_key: { to: 'accessKey', kind: 'string' },
  secret_key: { to: 'secretKey', kind: 'string' },
  token: { to: 'token', kind: 'string' },
  region: { to: 'region', kind: 'string' },
  profile: { to: 'profile', kind: 'string' },
  mfa_code: { to: 'mfaCode', kind: 'string' },
  custom_endpoint_ec2: { to: 'customEndpointEc2', kind: 'string' },
  insecure_skip_tls_verify: { to: 'insecureSkipTlsVerify', kind: 'bool' },
  max_retries: { to: 'maxRetries', kind: 'int' },
  decode_authorization_messages: { to: 'decodeAuthorizationMessages', kind: 'bool' },
  skip_metadata_api_check: { to: 'skipMetadataApiCheck', kind: 'bool' },
  skip_region_validation: { to: 'skipRegionValidation', kind: 'bool' },
  aws_polling: { to: 'polling', kind: 'polling' },

  source_ami: { to: 'sourceAmi', kind: 'string' },
  source_ami_filter: { to: 'sourceAmiFilter', kind: 'filter' },

  ami_name: { to: 'amiName', kind: 'template' },
  ami_description: { to: 'amiDescription', kind: 'template' },
  ami_virtualization_type: { to: 'amiVirtualizationType', kind: 'string' },
  ami_architecture: { to: 'amiArchitecture', kind: 'string' },
  ami_users: { to: 'amiUsers', kind: 'strings' },
  ami_groups: { to: 'amiGroups', kind: 'strings' },
  ami_org_arns: { to: 'amiOrgArns', kind: 'strings' },
  ami_ou_arns: { to: 'amiOuArns', kind: 'strings' },
  ami_product_codes: { to: 'amiProductCodes', kind: 'strings' },
  ami_regions: { to: 'amiRegions', kind: 'strings' },
  region_kms_key_ids: { to: 'regionKmsKeyIds', kind: 'stringMap' },
  encrypt_boot: { to: 'encryptBoot', kind: 'bool' },
  kms_key_id: { to: 'kmsKeyId', kind: 'string' },
  skip_save_build_region: { to: 'skipSaveBuildRegion', kind: 'bool' },
  force_deregister: { to: 'forceDeregister', kind: 'bool' },
  force_delete_snapshot: { to: 'forceDeleteSnapshot', kind: 'bool' },
  ena_support: { to: 'enaSupport', kind: 'bool' },
  sriov_support: { to: 'sriovSupport', kind: 'bool' },
  boot_mode: { to: 'bootMode', kind: 'string' },
  uefi_data: { to: 'uefiData', kind: 'string' },
  tpm_support: { to: 'tpmSupport', kind: 'string' },
  imds_support: { to: 'imdsSupport', kind: 'string' },
  deprecate_at: { to: 'deprecateAt', kind: 'string' },
  deregistration_protection: { to: 'deregistrationProtection', kind: 'deregistration' },
  snapshot_copy_duration_minutes: { to: 'snapshotCopyDurationMinutes', kind: 'int' },
  tags: { to: 'tags', kind: 'tagMap' },
  tag: { to: 'tags', kind: 'tagBlocks' },
  snapshot_tags: { to: 'snapshotTags', kind: 'tagMap' },
  snapshot_tag: { to: 'snapshotTags', kind: 'tagBlocks' },
  snapshot_users: { to: 'snapshotUsers', kind: 'strings' },
  snapshot_groups: { to: 'snapshotGroups', kind: 'strings' },

  ami_block_device_mappings: { to: 'amiBlockDeviceMappings', kind: 'mappings' },

  root_volume_size: { to: 'rootVolumeSize', kind: 'int' },
  root_volume_type: { to: 'rootVolumeType', kind: 'string' },
  root_volume_tags: { to: 'rootVolumeTags', kind: 'tagMap' },
  root_volume_tag: { to: 'rootVolumeTags', kind: 'tagBlocks' },
  root_volume_encrypt_boot: { to: 'rootVolumeEncryptBoot', kind: 'bool' },
  root_volume_kms_key_id: { to: 'rootVolumeKmsKeyId', kind: 'string' },
  root_device_name: { to: 'rootDeviceName', kind: 'string' },
  from_scratch: { to: 'fromScratch', kind: 'bool' },

  chroot_mounts: { to: 'chrootMounts', kind: 'mounts' },
  copy_files: { to: 'copyFiles', kind: 'strings' },
  command_wrapper: { to: 'commandWrapper', kind: 'template' },
  device_path: { to: 'devicePath', kind: 'string' },
  nvme_device_path: { to: 'nvmeDevicePath', kind: 'string' },
  mount_path: { to: 'mountPath', kind: 'template' },
  mount_partition: { to: 'mountPartition', kind: 'partition' },
  mount_options: { to: 'mountOptions', kind: 'strings' },
  pre_mount_commands: { to: 'preMountCommands', kind: 'templates' },
  post_mount_commands: { to: 'postMountCommands', kind: 'templates' },
};

/** Packer options that are accepted and have no effect here (with the reason, for the docs). */
export const IGNORED: Readonly<Record<string, string>> = {
  type: 'the builder type',
  name: 'the builder name',
  skip_credential_validation: 'credentials are not checked up front here; the first AWS call does it',
};

/** Packer options this library cannot support, with what to do instead. */
export const UNSUPPORTED: Readonly<Record<string, string>> = {
  vault_aws_engine:
    'Vault credentials are not supported; read them from Vault in your script and pass access_key/secret_key/token, or use a credential_process profile in ~/.aws/config',
  assume_role:
    'assume_role is not supported; configure a profile with role_arn (and source_profile) in ~/.aws/config and set profile, or assume the role in your script',
  shared_credentials_file:
    'shared_credentials_file is not supported; set AWS_SHARED_CREDENTIALS_FILE in the environment (and profile if needed)',
};

export const MAPPING_KEYS: Readonly<Record<string, { to: string; kind: 'string' | 'bool' | 'int' }>> = {
  device_name: { to: 'deviceName', kind: 'string' },
  delete_on_termination: { to: 'deleteOnTermination', kind: 'bool' },
  encrypted: { to: 'encrypted', kind: 'bool' },
  kms_key_id: { to: 'kmsKeyId', kind: 'string' },
  iops: { to: 'iops', kind: 'int' },
  throughput: { to: 'throughput', kind: 'int' },
  no_device: { to: 'noDevice', kind: 'bool' },
  snapshot_id: { to: 'snapshotId', kind: 'string' },
  virtual_name: { to: 'virtualName', kind: 'string' },
  volume_size: { to: 'volumeSize', kind: 'int' },
  volume_type: { to: 'volumeType', kind: 'string' },
};
export const FILTER_KEYS: Readonly<Record<string, string>> = {
  filters: 'filters',
  filter: 'filters',
  owners: 'owners',
  most_recent: 'mostRecent',
  include_deprecated: 'includeDeprecated',
};
export const POLLING_KEYS: Readonly<Record<string, string>> = { delay_seconds: 'delayMs', max_attempts: 'maxAttempts' };
export const DEREGISTRATION_KEYS: Readonly<Record<string, string>> = {
  enabled: 'enabled',
  with_cooldown: 'withCooldown',
};
export const SECRET_KEYS = new Set(['access_key', 'secret_key', 'token', 'mfa_code']);
