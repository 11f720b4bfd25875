#!/bin/sh
# Installs the OS packages the demo and the tests need (one list, used by `npm run demo`,
# `npm test` and .ci/run). It checks first and does nothing when every tool is present.
#
#   sh scripts/setup-host.sh              install what is missing (root + apt-get), else exit 1
#   sh scripts/setup-host.sh --warn-only  the same, but exit 0 when it cannot install (npm test:
#                                         unit tests need none of it; the others say what failed)
#   AMI_CHROOT_SKIP_SETUP=1               do nothing (you manage the host yourself)
set -eu

if [ "${AMI_CHROOT_SKIP_SETUP:-}" = "1" ]; then
  echo "ami-chroot host setup: skipped (AMI_CHROOT_SKIP_SETUP=1)"
  exit 0
fi
warn_only=0
[ "${1:-}" = "--warn-only" ] && warn_only=1

# tool:package, one per line. Loop devices, partitions, ext4, XFS (the duplicate-UUID mount
# test), chroot, the busybox root of test images, the tools that find processes holding a mount,
# debootstrap (the setup script's own test builds a fresh Debian root with it), flock (loop
# attaches take it), blkid (XFS detection) and filefrag (ebs-direct change detection).
TOOLS='losetup:mount
mount:mount
partx:util-linux
flock:util-linux
blkid:util-linux
filefrag:e2fsprogs
sfdisk:fdisk
mkfs.ext4:e2fsprogs
mkfs.xfs:xfsprogs
chroot:coreutils
fuser:psmisc
lsof:lsof
debootstrap:debootstrap'

PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

missing_packages() {
  for pair in $TOOLS; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || echo "${pair#*:}"
  done
  # The test images' root is /bin/busybox copied in: it must be the static build.
  if [ ! -x /bin/busybox ] || ! LC_ALL=C ldd /bin/busybox 2>&1 | grep -q 'not a dynamic executable\|statically linked'; then
    echo busybox-static
  fi
}

packages=$(missing_packages | sort -u | tr '\n' ' ' | sed 's/ $//')
if [ -z "$packages" ]; then
  echo "ami-chroot host setup: every OS package is present"
else
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ami-chroot host setup: installing $packages (apt-get; AMI_CHROOT_SKIP_SETUP=1 turns this off)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086 # one word per package
    apt-get install -y -qq --no-install-recommends $packages >/dev/null
    packages=$(missing_packages | sort -u | tr '\n' ' ' | sed 's/ $//')
  fi
  if [ -n "$packages" ]; then
    echo "ami-chroot host setup: missing OS packages: $packages" >&2
    echo "  install them as root (Debian/Ubuntu): apt-get install $packages" >&2
    echo "  or set AMI_CHROOT_SKIP_SETUP=1 to skip this check" >&2
    [ "$warn_only" -eq 1 ] || exit 1
  else
    echo "ami-chroot host setup: installed"
  fi
fi

# Not an OS package: moto's EC2 server, the test EC2 (PyPI, not apt).
if ! command -v moto_server >/dev/null 2>&1; then
  echo "ami-chroot host setup: moto_server is missing (the test EC2): pip install 'moto[server]'" >&2
  [ "$warn_only" -eq 1 ] || exit 1
fi
