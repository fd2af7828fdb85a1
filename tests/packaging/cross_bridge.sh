#!/usr/bin/env bash
# The store-and-forward bridge of one cross-built edgemq binary, run under qemu-user: the part
# that must not lose data, exercised on the architecture it ships for (32-bit ARM and MIPS have
# their own atomics, alignment and word size; the round trip of cross_smoke.sh touches none of it).
#   tests/packaging/cross_bridge.sh TARGET BINARY
#
# The central broker is a real Mosquitto configured like seed 000 (TLS 1.3, the gateway's client
# certificate, use_identity_as_username, `pattern readwrite meters/%u/#`). It is down while
# mosquitto_pub sends N QoS 1 messages to the edge, which queues them on disk (durability
# "always") and keeps a retained message in its sled store: half of them, then a clean stop
# (SIGTERM) and a restart, then the other half and SIGKILL. The central broker starts with an
# observer subscribed, and the edge starts again on the same data: every
# message must reach the central broker in order (a duplicate would be allowed, none expected),
# the retained message must still be there, and a message published now must pass straight through.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
TARGET=${1:?usage: cross_bridge.sh TARGET BINARY}
BIN=$(realpath -m "${2:?usage: cross_bridge.sh TARGET BINARY}")
N=${CROSS_BRIDGE_MESSAGES:-300}
echo "qemu bridge test: $TARGET ($N messages through an outage and a restart)"

qemu_for "$TARGET" || { not_ok "no qemu known for $TARGET"; finish; }
need mosquitto mosquitto_pub mosquitto_sub openssl ${QEMU[0]:+"${QEMU[0]}"} || finish
[ -x "$BIN" ] || { not_ok "no binary $BIN"; finish; }

W=$(mktemp -d)
EDGE=""; CENTRAL=""; OBS=""
stop() { [ -n "$1" ] && kill -KILL "$1" 2>/dev/null && wait "$1" 2>/dev/null; }
trap 'stop "$EDGE"; stop "$OBS"; stop "$CENTRAL"; rm -rf "$W"' EXIT
cd "$W" || exit 2
make_pki || { not_ok "certificates (openssl)"; finish; }
TLS_PORT=$(free_port); PLAIN_PORT=$(free_port); EDGE_PORT=$(free_port)
{ printf 'user root\npersistence false\nlog_dest stderr\n'
	central_listeners "$W" "$TLS_PORT" "$PLAIN_PORT"; } >central.conf
cat >edge.toml <<EOF
data_dir = "$W/data"
[[listener]]
bind = "127.0.0.1:$EDGE_PORT"
allow_anonymous = true
$(gateway_bridge "$W" "$TLS_PORT")
[bridge.queue]
durability = "always"
EOF

# qemu runs the edge several times slower than native: its waits are generous
start_edge() {
	"${QEMU[@]}" "$BIN" run -c edge.toml >>edge.log 2>&1 &
	EDGE=$!
	wait_port "$EDGE_PORT" "$EDGE" 300
}
stop_edge() {  # SIGTERM, then the exit status (124 if still running after 30 s)
	local rc
	stop_gracefully "$EDGE" 300; rc=$?
	EDGE=""
	return $rc
}
edge_status() { "${QEMU[@]}" "$BIN" status -c edge.toml 2>&1; }
# the first arrival of each message, in arrival order, must be data/1 .. data/N
arrived_in_order() {
	seq 1 "$N" | sed 's|^|meters/GW-0001/data/seq |' >want.txt
	awk '!seen[$0]++' got.txt | grep '^meters/GW-0001/data/seq ' | diff -q want.txt - >/dev/null
}

H=$((N / 2))
start_edge || { not_ok "edge did not start: $(tail -3 edge.log | tr '\n' ' ')"; finish; }
ok "edge listens under ${QEMU[0]:-native}, central broker down"
seq 1 "$H" | mosquitto_pub -p "$EDGE_PORT" -i cross-pub -q 1 -t data/seq -l
check "mosquitto_pub: $H QoS 1 messages acknowledged" [ $? -eq 0 ]
mosquitto_pub -p "$EDGE_PORT" -q 1 -r -t local/keep -m "kept on $TARGET"
check "status: $H messages queued while the central broker is down" \
	grep -q "queue: $H messages" <<<"$(edge_status)"
stop_edge; rc=$?
check "SIGTERM with a backlog: clean exit 0 (got $rc)" [ "$rc" -eq 0 ]
start_edge || { not_ok "edge did not restart on its data: $(tail -3 edge.log | tr '\n' ' ')"; finish; }
seq $((H + 1)) "$N" | mosquitto_pub -p "$EDGE_PORT" -i cross-pub -q 1 -t data/seq -l
check "after a restart, $((N - H)) more acknowledged" [ $? -eq 0 ]
check "status: all $N queued" grep -q "queue: $N messages" <<<"$(edge_status)"
stop "$EDGE"; EDGE=""
ok "SIGKILL with the central broker still down"

mosquitto -c central.conf 2>central.log &
CENTRAL=$!
wait_port "$TLS_PORT" "$CENTRAL" && wait_port "$PLAIN_PORT" "$CENTRAL" ||
	{ not_ok "central mosquitto did not start: $(tail -3 central.log | tr '\n' ' ')"; finish; }
mosquitto_sub -p "$PLAIN_PORT" -i cross-observer -q 1 -v -t 'meters/#' >got.txt 2>&1 &
OBS=$!
sleep 0.5
start_edge || { not_ok "edge did not restart on its data: $(tail -3 edge.log | tr '\n' ' ')"; finish; }
for _ in $(seq 1 600); do
	[ "$(grep -c '^meters/GW-0001/data/seq ' got.txt)" -ge "$N" ] && break
	sleep 0.1
done
check "after the restart all $N reached the central broker over TLS, in order" arrived_in_order
check "no duplicates after a clean stop" [ "$(grep -c '^meters/GW-0001/data/seq ' got.txt)" -eq "$N" ]
check "the retained message survived the restart" sh -c \
	"mosquitto_sub -p $EDGE_PORT -t local/keep -C 1 -W 10 | grep -qx 'kept on $TARGET'"
mosquitto_pub -p "$EDGE_PORT" -q 1 -t data/live -m now
for _ in $(seq 1 100); do grep -qx 'meters/GW-0001/data/live now' got.txt && break; sleep 0.1; done
check "a message published with the uplink up passes straight through" \
	grep -qx 'meters/GW-0001/data/live now' got.txt
check "status: the queue is empty again" grep -q "queue: 0 messages" <<<"$(edge_status)"
stop_edge; rc=$?
check "SIGTERM: clean exit 0 (got $rc)" [ "$rc" -eq 0 ]
if [ "$FAIL" -gt 0 ]; then
	echo "  --- edge.log (last 15 lines)"; tail -15 edge.log | sed 's/^/  /'
	echo "  --- central.log (last 5 lines)"; tail -5 central.log | sed 's/^/  /'
fi
finish
