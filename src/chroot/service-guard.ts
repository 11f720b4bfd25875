/**
 * Keeping package installs from starting services inside the chroot. A service started there
 * runs on the build host with the image's root, holds the mount busy, and may bind host ports.
 *
 * - Debian-like images (they have /usr/sbin): a `/usr/sbin/policy-rc.d` that exits 101 ("action
 *   forbidden"), which invoke-rc.d and deb-systemd-invoke consult before starting anything. An
 *   existing policy-rc.d is set aside and restored.
 * - systemd: commands run through the Chroot handle get `SYSTEMD_OFFLINE=1`, so systemctl only
 *   edits unit files (enable/disable work, start is refused) even if the image carries a
 *   `/run/systemd/system`. Without that directory (the default mounts don't bring the host's /run
 *   in) systemctl already refuses to start units; we warn when it is there.
 *
 * Nothing else is diverted: replacing `systemctl` or `service` binaries would leave the image
 * broken if the build were killed before the restore.
 */
import type { Journal } from '../host/journal.js';
import type { Ctx } from '../internal/ctx.js';
import { placeFile } from './file-swap.js';
import type { PlacedFile } from './file-swap.js';
import { openDirInRoot } from './resolve.js';

const POLICY_RC_D =
  '#!/bin/sh\n# Installed by ami-chroot while provisioning: no service may start inside the chroot.\nexit 101\n';

/**
 * An installed guard. `remove()` restores exactly what was there. Idempotent.
 * @internal
 */
export interface ServiceGuard {
  /** Environment for commands run inside the chroot. */
  readonly env: Readonly<Record<string, string>>;
  /** What was installed, for logs. */
  readonly installed: readonly string[];
  remove(): Promise<void>;
}

/** True when `path` is a directory inside the image (resolved by descriptor, like the placing). */
async function isDirInRoot(root: string, path: string): Promise<boolean> {
  try {
    const { dir } = await openDirInRoot(root, path);
    await dir.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Installs the service guard in the mounted image at `root`.
 * @internal
 */
export async function installServiceGuard(root: string, journal: Journal | undefined, ctx: Ctx): Promise<ServiceGuard> {
  const placed: PlacedFile[] = [];
  const installed: string[] = [];
  if (await isDirInRoot(root, '/usr/sbin')) {
    placed.push(await placeFile(root, '/usr/sbin/policy-rc.d', POLICY_RC_D, 0o755, journal, 'service-guard'));
    installed.push('/usr/sbin/policy-rc.d');
  }
  if (await isDirInRoot(root, '/run/systemd/system')) {
    ctx.logger.warn(
      `${root}/run/systemd/system exists in the image: tools may believe systemd is running inside the chroot. ` +
        'Commands run through the chroot handle get SYSTEMD_OFFLINE=1; remove the directory from the image if services still start.',
    );
  }
  installed.push('SYSTEMD_OFFLINE=1');
  let removed = false;
  return {
    env: { SYSTEMD_OFFLINE: '1' },
    installed,
    remove: async () => {
      if (removed) return;
      for (const p of [...placed].reverse()) await p.restore();
      removed = true;
    },
  };
}
