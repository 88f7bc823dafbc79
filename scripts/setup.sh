#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a code cell running in a microVM:
#   1. apt-installs every build, test and guest dependency (as root);
#   2. builds libsandbox, the VMM, the CLI and the guest init;
#   3. prepares a guest: Debian's cloud kernel, our initramfs, a Debian rootfs with python3;
#   4. creates a microVM and runs a Python cell in it through the code interpreter. Where this host's KVM has
#      no hardware virtualization, it runs through the emulated KVM host (tests/harness).
# Options: --no-run skips step 4.
set -euo pipefail
cd "$(dirname "$0")/.."
run=1
[ "${1:-}" = --no-run ] && run=0

packages=(
  # build
  gcc make cmake pkg-config libc6-dev musl-tools libjansson-dev libseccomp-dev libcap-ng-dev
  libnl-3-dev libnl-route-3-dev libnftables-dev
  # guest: Debian's cloud kernel and its modules, the rootfs builder
  linux-image-cloud-amd64 debootstrap e2fsprogs cpio
  # tests and benchmarks: the emulated KVM host and the peer VMM we compare with
  qemu-system-x86 linux-image-amd64 busybox-static acpica-tools xfsprogs kmod lz4 zstd xz-utils
  iproute2 nftables python3 ca-certificates
)
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (apt-get, debootstrap)" >&2
  exit 1
fi
echo "setup: installing packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"

echo "setup: building"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)"

echo "setup: preparing the guest (the first rootfs build runs debootstrap: a few minutes)"
tests/e2e/prepare build/e2e build/sandbox

[ "$run" = 1 ] || exit 0
echo "setup: creating a sandbox and running a Python cell in it (code interpreter)"
export SANDBOX_DEMO_CELL='import sys, platform
print("hello from a microVM:", platform.release(), "python", sys.version.split()[0])
sum(i * i for i in range(10))'
# The state directory holds sockets: /tmp, a tmpfs in the emulated host (not the shared tree).
tests/harness/run-e2e -w "$PWD/build" -- /bin/sh -ec '
  export SANDBOX_STATE_DIR=/tmp/sbx-setup
  cli='"$PWD"'/build/sandbox e2e='"$PWD"'/build/e2e
  id=$($cli create --kernel $e2e/vmlinuz --initramfs $e2e/initramfs.cpio --rootfs $e2e/rootfs.img:ro)
  status=0
  $cli run-code "$id" "$SANDBOX_DEMO_CELL" || status=$?
  $cli destroy "$id"
  exit $status'
