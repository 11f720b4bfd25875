/**
 * Composing the primitives by hand: what buildAmi does, step by step, for pipelines that need
 * to do something between the steps (here: print each resource as it appears).
 *
 * Each resource is an async-disposable handle: `await using` guarantees its undo (detach the
 * volume, delete it) when the block is left, on success, failure or abort alike. The undos are
 * idempotent, so the explicit early `detach()` before the snapshot and the disposal at the end
 * do not clash. For everything buildAmi adds (pre-validation, region copies, tags, recovery
 * journals, progress phases) use buildAmi.
 *
 *   sudo SOURCE_AMI=ami-0123456789abcdef0 npx tsx examples/compose-primitives.ts
 */
import {
  attachVolume,
  createAwsClients,
  createVolume,
  getHostIdentity,
  resolveSourceAmi,
  snapshotAndRegister,
} from '../src/aws/index.js';
import { allocateDevice, resolveBlockDevice, withChroot } from '../src/host/index.js';

const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => controller.abort());
const signal = controller.signal;
const logger = { info: console.info, warn: console.warn, error: console.error };

// Where we are: the build host's instance id, availability zone and region (IMDSv2).
const host = await getHostIdentity({ signal });
const clients = createAwsClients({ region: host.region });
const aws = { ec2: clients.ec2, signal, logger };
try {
  const source = await resolveSourceAmi({ sourceAmi: process.env['SOURCE_AMI'] ?? 'ami-0123456789abcdef0' }, aws);
  console.log(`source ${source.imageId} (${source.name})`);

  // A volume from the source's root snapshot, in the host's zone; deleted when the block ends.
  await using volume = await createVolume(
    { availabilityZone: host.availabilityZone, source, tags: { Purpose: 'chroot build' } },
    aws,
  );
  console.log(`volume ${volume.volumeId}`);

  // Attach it under a device letter chosen under a cross-process lock; the host block device is
  // found by the volume id (NVMe or Xen). Detached when the block ends, if not before.
  await using attached = await attachVolume(
    {
      volumeId: volume.volumeId,
      instanceId: host.instanceId,
      attachmentName: (exclude) => allocateDevice({ exclude }, { signal }),
      resolveDevice: ({ volumeId, attachmentName, signal: s }) =>
        resolveBlockDevice({ volumeId, attachmentName }, s ? { signal: s } : {}),
    },
    aws,
  );
  console.log(`attached as ${attached.attachmentName}, host device ${attached.hostDevice}`);

  // Mount, provision, always unmount.
  await withChroot(
    { device: attached.hostDevice },
    async (chroot) => {
      await chroot.writeFile('/etc/motd', 'Composed by hand.\n');
      await chroot.exec('sh', ['-c', 'echo provisioned > /root/marker']);
    },
    { signal, logger },
  );

  // The snapshot must see a detached volume.
  await attached.detach();
  const image = await snapshotAndRegister({ volumeId: volume.volumeId, name: `composed ${Date.now()}`, source }, aws);
  console.log(`registered ${image.imageId} (snapshot ${image.snapshotIds.join(', ')})`);
} finally {
  clients.destroy();
}
