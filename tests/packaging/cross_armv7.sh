#!/usr/bin/env bash
# CI's cross check: build edgemq for armv7-unknown-linux-musleabihf (static, OpenWRT arm and
# the Orange Pi Zero) with scripts/cross-build.sh and test it under qemu-arm: a round trip
# (tests/packaging/cross_smoke.sh) and the bridge through an outage, a clean stop and a SIGKILL
# (tests/packaging/cross_bridge.sh). Minutes: toolchain setup once, then a release build.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
exec "$ROOT/scripts/cross-build.sh" armv7-unknown-linux-musleabihf
