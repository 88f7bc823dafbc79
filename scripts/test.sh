#!/usr/bin/env bash
# The test suite: builds (if needed) and runs every test with ctest, two at a time.
#  - unit tests (ASan + UBSan), milliseconds;
#  - end-to-end tests that boot real guests: directly where this host's KVM has hardware
#    virtualization, otherwise each group inside its own emulated KVM host (tests/harness).
# Needs what scripts/setup.sh installs. Extra arguments go to ctest (e.g. -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
# The test build honours the VMM's test-only hooks (SBX_TEST_HOOKS: README, Isolation).
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSBX_TEST_HOOKS=ON >/dev/null
cmake --build build -j "$(nproc)"
cd build
ctest -j 2 --output-on-failure --timeout 1800 "$@"
