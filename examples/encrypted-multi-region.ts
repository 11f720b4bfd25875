/**
 * Encrypted AMIs in several regions, each with its own KMS key.
 *
 * Two ways, as in Packer:
 * - `encryptBoot` + `kmsKeyId` (Packer `encrypt_boot`, `kms_key_id`): the image is registered,
 *   then copied encrypted; `amiRegions` + `regionKmsKeyIds` give every region its own key. Copies
 *   of encrypted snapshots can queue for a long time under AWS's copy limits.
 * - `--root-volume`: `rootVolumeEncryptBoot` + `rootVolumeKmsKeyId` (Packer
 *   `root_volume_encrypt_boot`, `root_volume_kms_key_id`): the work volume itself is encrypted,
 *   so the snapshot and the image are, with no extra copy in the build region. Region copies of
 *   an encrypted image are encrypted too, with each region's default EBS key.
 *
 * Keys may be ids, aliases or ARNs; in regionKmsKeyIds `''` means that region's default key. The
 * config is checked before anything starts: every region of amiRegions needs an entry there, and
 * images shared with other accounts cannot use a default key.
 *
 *   sudo SOURCE_AMI=ami-0123456789abcdef0 npx tsx examples/encrypted-multi-region.ts [--root-volume]
 */
import { defineConfig, buildAmi } from '../src/index.js';
import type { BuildConfig } from '../src/index.js';

const common: BuildConfig = {
  region: 'us-east-1',
  sourceAmi: process.env['SOURCE_AMI'] ?? 'ami-0123456789abcdef0',
  amiName: 'encrypted {{timestamp}}',
  amiRegions: ['eu-west-1', 'ap-southeast-2'],
};

const config = process.argv.includes('--root-volume')
  ? defineConfig({
      ...common,
      rootVolumeEncryptBoot: true,
      rootVolumeKmsKeyId: 'alias/ami-build',
    })
  : defineConfig({
      ...common,
      encryptBoot: true,
      kmsKeyId: 'arn:aws:kms:us-east-1:111122223333:alias/ami-build',
      regionKmsKeyIds: {
        'eu-west-1': 'alias/ami-build',
        // That region's default EBS key.
        'ap-southeast-2': '',
      },
    });

const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => controller.abort());

const result = await buildAmi(
  config,
  async (chroot) => {
    await chroot.writeFile('/etc/motd', 'An encrypted image.\n');
  },
  {
    signal: controller.signal,
    logger: { info: console.info, warn: console.warn, error: console.error },
    // Region copies report their progress; a failed region undoes the others.
    onProgress: (event) => {
      if (event.type === 'copy')
        console.log(`copy to ${event.region}: ${event.state}${event.imageId ? ` (${event.imageId})` : ''}`);
    },
  },
);
for (const [region, id] of Object.entries(result.images))
  console.log(`${region}: ${id} (snapshots ${result.snapshots[region]?.join(', ')})`);
