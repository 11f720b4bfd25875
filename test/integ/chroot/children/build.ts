/**
 * A build process to be killed: attaches `image`, mounts it as a chroot at `mountPath` with
 * journals in `stateDir`, leaves a daemon running inside, prints "ready", and waits forever.
 */
import { createChroot } from '../../../../src/chroot/chroot.js';
import { mountChroot } from '../../../../src/chroot/mount.js';
import { attachLoop } from '../../../../src/host/loop.js';

const [image, mountPath, stateDir, copyFile] = process.argv.slice(2);
const loop = await attachLoop({ file: image!, stateDir: stateDir! });
const mounted = await mountChroot({
  device: loop.device,
  mountPath: mountPath!,
  stateDir: stateDir!,
  copyFiles: [copyFile!],
});
await createChroot(mounted).sh('cd /tmp && sleep 1000 > /dev/null 2>&1 &');
process.stdout.write('ready\n');
setInterval(() => {}, 60_000);
