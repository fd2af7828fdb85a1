#!/usr/bin/env bash
# Smoke test of one cross-built edgemq binary under qemu-user: start `edgemq run` on a
# temporary config (127.0.0.1, ephemeral port, anonymous allowed, data in a temp dir),
# mosquitto_sub + mosquitto_pub round trip through it, SIGTERM, expect a clean exit 0.
#   tests/packaging/cross_smoke.sh TARGET BINARY
set -uo pipefail
. "$(dirname "$0")/lib.sh"
TARGET=${1:?usage: cross_smoke.sh TARGET BINARY}
BIN=${2:?usage: cross_smoke.sh TARGET BINARY}
echo "qemu smoke test: $TARGET"
# qemu emulation is slow: allow more time for the broker to come up
STARTUP_TRIES=300

qemu_for "$TARGET" || { not_ok "no qemu known for $TARGET"; finish; }
need mosquitto_pub mosquitto_sub ${QEMU[0]:+"${QEMU[0]}"} || finish
[ -x "$BIN" ] || { not_ok "no binary $BIN"; finish; }

T=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null; rm -rf "$T"' EXIT
PORT=$(free_port)
cat > "$T/edgemq.toml" <<C
data_dir = "$T/data"
log_level = "info"

[[listener]]
bind = "127.0.0.1:$PORT"
allow_anonymous = true
C

check "--version runs under ${QEMU[0]:-native}" sh -c "${QEMU[*]} '$BIN' --version | grep -q '^edgemq '"
"${QEMU[@]}" "$BIN" run -c "$T/edgemq.toml" > "$T/log" 2>&1 &
PID=$!
if wait_port "$PORT" "$PID" "$STARTUP_TRIES"; then
	ok "broker listens on 127.0.0.1:$PORT"
	check "publish/subscribe round trip" mqtt_round_trip "$PORT"
	stop_gracefully "$PID"; rc=$?; PID=""
	if [ "$rc" -eq 124 ]; then
		not_ok "still running 20 s after SIGTERM"
	else
		check "SIGTERM: clean exit 0 (got $rc)" [ "$rc" -eq 0 ]
	fi
else
	not_ok "broker did not come up: $(tail -3 "$T/log" | tr '\n' ' ')"
fi
finish
