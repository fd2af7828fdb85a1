#!/usr/bin/env bash
# Runs the whole edgemq test suite on a fresh Debian machine of the project's
# kind (as root): installs what the tests talk to — Mosquitto, its clients,
# openssl, Python paho-mqtt — then runs every cargo test and the packaging
# tests. Tests that need Mosquitto fail (not skip) when CI=true and it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for cmd in mosquitto mosquitto_pub mosquitto_sub mosquitto_passwd openssl; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
[ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
# node runs the LuCI view's status rendering in tests/packaging/test_luci.sh
command -v node >/dev/null 2>&1 || missing+=(node)
# libfaketime steps the broker's wall clock in tests/clock_step.rs
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "test.sh: installing mosquitto, mosquitto-clients, openssl, nodejs, faketime (missing: ${missing[*]})"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
    mosquitto mosquitto-clients openssl nodejs faketime >/dev/null
fi
export PATH="$PATH:/usr/sbin"
if ! python3 -c 'import paho.mqtt.client' 2>/dev/null; then
  echo "test.sh: installing paho-mqtt"
  python3 -m pip install -q paho-mqtt
fi
# Debian's package starts a broker on 1883 where an init system runs; ours start their own.
(service mosquitto stop || systemctl stop mosquitto) >/dev/null 2>&1 || true

# Everything below is also copied to a log, to print one total at the end.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
exec > >(tee "$log") 2>&1

# A failing stage does not stop the others: one run shows every failure.
# The builds are the exception: without them nothing below means anything.
stages_failed=()
stage() {
  local name=$1
  shift
  if ! "$@"; then
    stages_failed+=("$name")
    echo "test.sh: stage failed: $name"
  fi
}

# The release binary too (panic = "abort", what ships): tests/store_panic.rs runs it.
cargo build --release --bin edgemq
export EDGEMQ_RELEASE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/edgemq"
cargo build --all-targets
stage "cargo test" cargo test --all-targets --no-fail-fast

# Packaging (issue 5): .deb installed and run, procd/UCI/LuCI checks, ipk structure,
# customize-image.sh in a debootstrap'd chroot, and the armv7 musl cross build run
# under qemu: a publish/subscribe round trip and the bridge through an outage, a clean
# stop and a SIGKILL to a TLS Mosquitto central.
stage packaging bash tests/packaging/run.sh --all

# Simulated power cuts (a few rounds each; the scripts take more for a release):
# the queue log, the sled store, and the whole edge with its bridge.
stage "power cut: queue" bash tests/powercut/queue.sh "${POWERCUT_ROUNDS:-5}"
stage "power cut: store" bash tests/powercut/store.sh "${POWERCUT_ROUNDS:-5}"
stage "power cut: edge" bash tests/powercut/edge.sh "${POWERCUT_ROUNDS:-5}"

# A full disk under the real binary: refused with a clear log line, nothing acknowledged
# lost or reordered, accepting again once there is room.
stage "disk full: edge" bash tests/diskfull/edge.sh

# One closing line for the whole suite: cargo's per-binary results plus the
# packaging and power-cut scripts' "N passed, M failed" lines.
sleep 0.2
passed=$(grep -ohE '(test result: [a-z]+\. )?[0-9]+ passed[;,]' "$log" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -ohE '[0-9]+ passed[;,] [0-9]+ failed' "$log" | grep -oE '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
echo "all: $passed passed, $failed failed"
if [ "${#stages_failed[@]}" -gt 0 ]; then
  echo "failed stages: ${stages_failed[*]}"
  exit 1
fi
