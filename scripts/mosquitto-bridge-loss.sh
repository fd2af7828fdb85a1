#!/usr/bin/env bash
# What a Mosquitto bridge loses in an outage, next to edgemq, for the benchmark story.
#
#   scripts/mosquitto-bridge-loss.sh [N]      (default 5000 messages; EDGEMQ_BIN overrides the binary)
#
# A central Mosquitto configured like seed 000 (TLS 1.3, require_certificate,
# use_identity_as_username, `pattern readwrite meters/%u/#`, persistence on so the observer's
# session survives its restart) and an observer subscribed there (QoS 1, persistent session).
# For each edge: the bridge connects, the central broker is stopped, N QoS 1 messages are
# published to the edge (paho, counting PUBACKs), optionally the edge is SIGKILLed and restarted
# on its data, the central broker comes back, and the observer counts what arrived.
#   mosquitto      Mosquitto as the edge: max_queued_messages default (1000), persistence on,
#                  autosave_interval 0 (the database is written only at a clean exit)
#   mosquitto-kill the same, SIGKILLed during the outage
#   edgemq-kill    edgemq (durability "always"), SIGKILLed during the outage
# Needs mosquitto, openssl, python3 with paho-mqtt. Prints one line per edge; exits 0.
set -u
N=${1:-5000}
# ROOT, free_port, wait_port, make_pki, central_listeners, gateway_bridge
. "$(dirname "$0")/../tests/packaging/lib.sh"
QUIET_SECS=3     # the observer is done when nothing arrived for this long
MAX_WAIT=60
for tool in mosquitto openssl python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool"; exit 2; }
done
python3 -c 'import paho.mqtt.client' 2>/dev/null || { echo "needs python3 paho-mqtt"; exit 2; }
if [ -n "${EDGEMQ_BIN:-}" ]; then BIN=$EDGEMQ_BIN; else
  (cd "$ROOT" && cargo build --quiet --bin edgemq) || exit 2
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/edgemq
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/bridge-loss.XXXX")
CENTRAL=""; EDGE=""; OBS=""
stop() { [ -n "$1" ] && kill -"${2:-KILL}" "$1" 2>/dev/null && wait "$1" 2>/dev/null; }
cleanup() { stop "$EDGE"; stop "$OBS"; stop "$CENTRAL"; rm -rf "$W"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$W" || exit 2

make_pki || exit 2
TLS_PORT=$(free_port); PLAIN_PORT=$(free_port); EDGE_PORT=$(free_port)
mkdir -p central-db
{ printf 'user root\npersistence true\npersistence_location %s/central-db/\n' "$W"
  printf 'log_dest file %s/central.log\nlog_type all\n' "$W"
  central_listeners "$W" "$TLS_PORT" "$PLAIN_PORT"; } >central.conf

cat >loss.py <<'EOF'
import sys, threading, time
import paho.mqtt.client as mqtt
V2 = mqtt.CallbackAPIVersion.VERSION2

def publish(port, topic, n):
    """Publishes n QoS 1 messages, prints how many were PUBACKed."""
    c = mqtt.Client(V2, client_id=f"loss-pub-{time.time_ns()}")
    c.max_inflight_messages_set(100)
    acked = 0
    done = threading.Event()
    def on_publish(*_a):
        nonlocal acked
        acked += 1
        if acked == n:
            done.set()
    c.on_publish = on_publish
    c.connect("127.0.0.1", port)
    c.loop_start()
    for i in range(n):
        c.publish(topic, str(i), qos=1)
    done.wait(60)
    c.disconnect(); c.loop_stop()
    print(acked)

def observe(port):
    """Persistent QoS 1 subscriber at the central broker; prints 'topic payload' per message."""
    c = mqtt.Client(V2, client_id="loss-observer", clean_session=False)
    c.reconnect_delay_set(1, 1)
    c.on_connect = lambda c, *a: c.subscribe("meters/#", qos=1)
    c.on_subscribe = lambda *a: print("SUBSCRIBED", flush=True)
    c.on_message = lambda _c, _u, m: print(m.topic, m.payload.decode(), flush=True)
    c.connect("127.0.0.1", port)
    c.loop_forever(retry_first_connection=True)

if sys.argv[1] == "publish":
    publish(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
else:
    observe(int(sys.argv[2]))
EOF

start_central() {
  mosquitto -c "$W/central.conf" 2>/dev/null &
  CENTRAL=$!
  wait_port "$PLAIN_PORT" && wait_port "$TLS_PORT" || { echo "central mosquitto did not start"; exit 2; }
}
bridge_logins() { grep -c "as GW-0001" "$W/central.log" 2>/dev/null || true; }
arrived() { grep -c "^meters/GW-0001/data/$1 " "$W/obs.out"; }
distinct() { grep "^meters/GW-0001/data/$1 " "$W/obs.out" | sort -u | wc -l; }

mosquitto_edge() {  # $1 = data dir
  mkdir -p "$1"
  cat >"$1/edge.conf" <<EOF
user root
listener $EDGE_PORT 127.0.0.1
allow_anonymous true
persistence true
persistence_location $1/
autosave_interval 0
log_dest file $1/edge.log
connection central
address 127.0.0.1:$TLS_PORT
remote_clientid GW-0001
cleansession false
restart_timeout 1
bridge_cafile $W/ca.crt
bridge_certfile $W/GW-0001.crt
bridge_keyfile $W/GW-0001.key
bridge_tls_version tlsv1.3
bridge_insecure true
topic data/# out 1 "" meters/GW-0001/
EOF
  mosquitto -c "$1/edge.conf" 2>/dev/null &
  EDGE=$!
}

edgemq_edge() {
  mkdir -p "$1"
  cat >"$1/edgemq.toml" <<EOF
data_dir = "$1/data"
[[listener]]
bind = "127.0.0.1:$EDGE_PORT"
allow_anonymous = true
$(gateway_bridge "$W" "$TLS_PORT")
EOF
  "$BIN" run -c "$1/edgemq.toml" 2>>"$1/edge.log" &
  EDGE=$!
}

# One scenario: $1 name (also the topic), $2 edge kind (mosquitto_edge|edgemq_edge), $3 kill (0|1).
scenario() {
  local name=$1 kind=$2 kill=$3 dir=$W/$1
  "$kind" "$dir"; wait_port "$EDGE_PORT" || { echo "$name: edge did not start"; return; }
  # The bridge is up once a probe crosses it.
  for _ in $(seq 1 100); do
    python3 loss.py publish "$EDGE_PORT" "data/$name-probe" 1 >/dev/null
    [ "$(arrived "$name-probe")" -gt 0 ] && break; sleep 0.2
  done
  stop "$CENTRAL" TERM; CENTRAL=""
  sleep 1
  local t0 acked
  t0=$(date +%s.%N)
  acked=$(python3 loss.py publish "$EDGE_PORT" "data/$name" "$N")
  if [ "$kill" = 1 ]; then
    stop "$EDGE"; "$kind" "$dir"; wait_port "$EDGE_PORT" || echo "$name: edge did not restart"
  fi
  local before; before=$(bridge_logins)
  start_central
  # Wait for the bridge to log in again, then until nothing more arrives.
  for _ in $(seq 1 $((MAX_WAIT * 10))); do [ "$(bridge_logins)" -gt "$before" ] && break; sleep 0.1; done
  local last=-1 now quiet=0 waited=0
  while [ "$quiet" -lt "$QUIET_SECS" ] && [ "$waited" -lt "$MAX_WAIT" ]; do
    sleep 1; waited=$((waited+1)); now=$(arrived "$name")
    if [ "$now" = "$last" ]; then quiet=$((quiet+1)); else quiet=0; last=$now; fi
    [ "$now" -ge "$N" ] && [ "$(distinct "$name")" -ge "$N" ] && break
  done
  local got; got=$(distinct "$name")
  printf '%-16s PUBACKed %5s of %s, arrived %5s distinct (%s arrivals), lost %5s\n' \
    "$name" "$acked" "$N" "$got" "$(arrived "$name")" "$((acked - got))"
  stop "$EDGE"; EDGE=""
}

start_central
python3 -u loss.py observe "$PLAIN_PORT" >"$W/obs.out" 2>"$W/obs.err" &
OBS=$!
for _ in $(seq 1 250); do grep -q SUBSCRIBED "$W/obs.out" && break; sleep 0.02; done
scenario mosquitto mosquitto_edge 0
scenario mosquitto-kill mosquitto_edge 1
scenario edgemq-kill edgemq_edge 1
