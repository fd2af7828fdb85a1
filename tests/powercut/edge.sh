#!/usr/bin/env bash
# Simulated power cuts for the whole edge: the real edgemq binary, its bridge queue and its sled
# store (needs root, loop devices, mosquitto, openssl, python3 with paho-mqtt; not run by cargo test).
#
#   tests/powercut/edge.sh [ROUNDS]     (default 10; EDGE_POWERCUT_BIN=path overrides the binary,
#                                        EDGE_POWERCUT_RELEASE=1 builds and uses the release one,
#                                        EDGE_POWERCUT_WRAP=eatmydata runs the writer without fsync:
#                                        a negative control, most rounds must then FAIL,
#                                        EDGE_POWERCUT_CENTRAL=up keeps the central broker up during
#                                        the writes: acks, cursor and segment deletion get cut too)
#
# Adapted from ../shared/reliability/powercut.sh. Once: certificates by openssl and a central
# Mosquitto configured like seed 000 (TLS 1.3, require_certificate, use_identity_as_username,
# `pattern readwrite meters/%u/#`) plus a plain listener for the observer. Each round: a fresh ext4
# on a loop device holds data_dir; edgemq runs with a bridge whose central broker is DOWN; a paho
# publisher sends QoS 1 data/seq messages (bridged) and, every 10th, a retained QoS 1 keep/<n>
# (local, kept by the sled store), printing "F n" / "R n" after each PUBACK. At a random 0.2-2 s
# after the first PUBACK edgemq is SIGSTOPped and the backing image copied as it stands (what the
# disk had received; page cache and uncommitted journal lost). The copy is mounted (journal
# replay), the central broker started with an observer subscribed, and edgemq started on the copy:
# every "F n" must arrive at the central broker in order (duplicates allowed), every "R n" must be
# a retained message at the edge, and the store must open without being set aside.
set -u
ROUNDS=${1:-10}
# ROOT, free_port, wait_port, make_pki, central_listeners, gateway_bridge
. "$(dirname "$0")/../packaging/lib.sh"
IMG_SIZE=1G
MIN_MS=200; SPAN_MS=1801
VERIFY_TIMEOUT=30
CENTRAL_MODE=${EDGE_POWERCUT_CENTRAL:-down}

[ "$(id -u)" -eq 0 ] || { echo "powercut: needs root (loop devices, mount)"; exit 2; }
for tool in mosquitto openssl python3 mkfs.ext4 losetup; do
  command -v "$tool" >/dev/null || { echo "powercut: $tool is required"; exit 2; }
done
python3 -c 'import paho.mqtt.client' 2>/dev/null || { echo "powercut: python3 paho-mqtt is required"; exit 2; }
if [ -n "${EDGE_POWERCUT_BIN:-}" ]; then
  BIN=$EDGE_POWERCUT_BIN
elif [ -n "${EDGE_POWERCUT_RELEASE:-}" ]; then
  (cd "$ROOT" && cargo build --quiet --release --bin edgemq) || exit 2
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/edgemq
else
  (cd "$ROOT" && cargo build --quiet --bin edgemq) || exit 2
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/edgemq
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/edge-powercut.XXXX"); MNT=$W/mnt; mkdir -p "$MNT"
LOOP=""; EDGE=""; PUB=""; CENTRAL=""; VERIFIER=""
stop() { [ -n "$1" ] && kill -KILL "$1" 2>/dev/null && wait "$1" 2>/dev/null; }
cleanup() {
  stop "$EDGE"; stop "$PUB"; stop "$VERIFIER"; stop "$CENTRAL"
  mountpoint -q "$MNT" && umount "$MNT"
  [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- certificates and the central broker's configuration (seed 000) ---
cd "$W" || exit 2
make_pki || exit 2
TLS_PORT=$(free_port); PLAIN_PORT=$(free_port); EDGE_PORT=$(free_port)
{ printf 'user root\npersistence false\nlog_dest stderr\n'
  central_listeners "$W" "$TLS_PORT" "$PLAIN_PORT"; } >central.conf
# The verifier receives every retained keep/<n> at once: more than the default per-client queue.
cat >edgemq.toml <<EOF
data_dir = "$MNT/data"
[limits]
max_queued_messages = 1000000
[[listener]]
bind = "127.0.0.1:$EDGE_PORT"
allow_anonymous = true
$(gateway_bridge "$W" "$TLS_PORT")
[bridge.queue]
durability = "always"
EOF

# --- the publisher and the verifier (paho) ---
cat >pc.py <<'EOF'
import os, socket, subprocess, sys, threading, time
import paho.mqtt.client as mqtt

V2 = mqtt.CallbackAPIVersion.VERSION2
WINDOW = 200          # PUBLISHes outstanding at most
RETAIN_EVERY = 10     # every 10th message also sets a retained keep/<n>

def publish(port):
    c = mqtt.Client(V2, client_id="powercut-pub")
    c.max_inflight_messages_set(100)
    # Never hold our lock while calling into paho: its network thread holds its own lock
    # while it runs on_publish.
    window = threading.BoundedSemaphore(WINDOW)
    lock = threading.Lock()
    pending, early = {}, set()
    def report(kind):
        print(f"{kind[0]} {kind[1]}", flush=True)
    def on_publish(_c, _u, mid, _rc, _p):
        with lock:
            kind = pending.pop(mid, None)
            if kind is None:
                early.add(mid)
            else:
                report(kind)
        window.release()
    def send(topic, kind, retain=False):
        window.acquire()
        info = c.publish(topic, str(kind[1]), qos=1, retain=retain)
        with lock:
            if info.mid in early:
                early.discard(info.mid)
                report(kind)
            else:
                pending[info.mid] = kind
    c.on_publish = on_publish
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    n = 0
    while True:
        send("data/seq", ("F", n))
        if n % RETAIN_EVERY == 0:
            send(f"keep/{n}", ("R", n), retain=True)
        n += 1

def verify(central_port, edge_port, acked_file, edge_cmd, edge_log, go_file):
    arrivals, cond = [], threading.Condition()
    def on_message(_c, _u, m):
        if m.topic == "meters/GW-0001/data/seq":
            with cond:
                arrivals.append(int(m.payload))
                cond.notify_all()
    subscribed = threading.Event()
    obs = mqtt.Client(V2, client_id="powercut-observer")
    obs.on_message = on_message
    obs.on_subscribe = lambda *a: subscribed.set()
    obs.on_connect = lambda c, *a: c.subscribe("meters/#", qos=1)
    obs.connect("127.0.0.1", central_port)
    obs.loop_start()
    if not subscribed.wait(10):
        return "FAIL: observer not subscribed"
    # Subscribed: the script may start the writer (central up) or go on at once (central down).
    open(go_file + ".ready", "w").close()
    deadline = time.time() + 120
    while not os.path.exists(go_file):
        if time.time() > deadline:
            return "FAIL: never told to go"
        time.sleep(0.02)
    lines = open(acked_file).read().split("\n")
    acked = {int(l[2:]) for l in lines if l.startswith("F ")}
    kept = {int(l[2:]) for l in lines if l.startswith("R ")}
    log = open(edge_log, "ab")
    edge = subprocess.Popen(edge_cmd, stdout=subprocess.DEVNULL, stderr=log)
    t0 = time.time()
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", edge_port), timeout=1).close()
                break
            except OSError:
                if edge.poll() is not None or time.time() - t0 > 20:
                    return f"FAIL: edgemq did not start on the copied data_dir (exit {edge.poll()})"
                time.sleep(0.02)
        with cond:
            cond.wait_for(lambda: acked <= set(arrivals), timeout=float(os.environ.get("VERIFY_TIMEOUT", "30")))
        took = time.time() - t0
        # Then let the restarted edge drain (with the central up during the writes, everything
        # may have arrived before the cut; the replay after it must still keep the order).
        status_cmd = [edge_cmd[0], "status"] + edge_cmd[2:]
        deadline = time.time() + float(os.environ.get("VERIFY_TIMEOUT", "30"))
        while time.time() < deadline:
            st = subprocess.run(status_cmd, capture_output=True, text=True).stdout
            if "queue: 0 messages" in st:
                break
            time.sleep(0.1)
        else:
            return f"FAIL: the edge did not drain its queue: {st!r}"
        time.sleep(0.5)
        with cond:
            got = list(arrivals)
        seen, highest, dups = set(), -1, 0
        for s in got:
            if s in seen:
                dups += 1
                continue
            if s < highest:
                return f"FAIL: {s} arrived for the first time after {highest}"
            seen.add(s); highest = s
        lost = sorted(acked - seen)
        if lost:
            return f"FAIL: {len(lost)} of {len(acked)} PUBACKed lost, first {lost[:5]}"
        retained = set()
        def on_retained(_c, _u, m):
            if m.retain:
                retained.add(int(m.payload))
        r = mqtt.Client(V2, client_id="powercut-retained")
        r.on_message = on_retained
        r.on_connect = lambda c, *a: c.subscribe("keep/#", qos=1)
        r.connect("127.0.0.1", edge_port)
        r.loop_start()
        deadline = time.time() + 10
        while not kept <= retained and time.time() < deadline:
            time.sleep(0.05)
        r.loop_stop()
        missing = sorted(kept - retained)
        if missing:
            return f"FAIL: {len(missing)} of {len(kept)} PUBACKed retained messages missing, first {missing[:5]}"
        return (f"ok: {len(acked)} PUBACKed all arrived in order ({len(got)} arrivals, {dups} duplicates, "
                f"{took:.2f}s), {len(kept)} retained kept ({len(retained)} present)")
    finally:
        edge.terminate()
        try:
            edge.wait(10)
        except subprocess.TimeoutExpired:
            edge.kill()

if __name__ == "__main__":
    if sys.argv[1] == "publish":
        publish(int(sys.argv[2]))
    else:
        out = verify(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[7:], sys.argv[5], sys.argv[6])
        print(out)
        sys.exit(0 if out.startswith("ok") else 1)
EOF

start_central() {
  mosquitto -c "$W/central.conf" 2>>"$W/central.log" &
  CENTRAL=$!
  wait_port "$PLAIN_PORT" && wait_port "$TLS_PORT" || { echo "round $r: mosquitto did not start"; exit 2; }
}
# The verifier subscribes at the central broker, then waits for $W/go to start edgemq on the copy.
start_verifier() {
  rm -f "$W/go" "$W/go.ready"
  VERIFY_TIMEOUT=$VERIFY_TIMEOUT python3 "$W/pc.py" verify "$PLAIN_PORT" "$EDGE_PORT" "$W/pub.out" \
    "$W/edge.log" "$W/go" "$BIN" run -c "$W/edgemq.toml" >"$W/verify.out" 2>&1 &
  VERIFIER=$!
  for _ in $(seq 1 500); do [ -e "$W/go.ready" ] && return 0; sleep 0.02; done
  echo "round $r: the verifier did not subscribe"; cat "$W/verify.out"; exit 2
}

ok=0; bad=0
for r in $(seq 1 "$ROUNDS"); do
  rm -f "$W/cur.img" "$W/snap.img" "$W/edge.log" "$W/pub.out"
  truncate -s "$IMG_SIZE" "$W/cur.img" && mkfs.ext4 -q -F "$W/cur.img"
  LOOP=$(losetup --show -f "$W/cur.img"); mount "$LOOP" "$MNT"; mkdir -p "$MNT/data"
  if [ "$CENTRAL_MODE" = up ]; then start_central; start_verifier; fi
  ${EDGE_POWERCUT_WRAP:-} "$BIN" run -c "$W/edgemq.toml" 2>>"$W/edge.log" >/dev/null &
  EDGE=$!
  wait_port "$EDGE_PORT" || { echo "round $r: edgemq did not start"; tail -5 "$W/edge.log"; exit 2; }
  python3 -u "$W/pc.py" publish "$EDGE_PORT" >"$W/pub.out" 2>"$W/pub.err" &
  PUB=$!
  # The cut comes at a random moment after the first PUBACK (so no round checks nothing).
  for _ in $(seq 1 500); do grep -q '^F ' "$W/pub.out" 2>/dev/null && break; sleep 0.02; done
  MS=$(( MIN_MS + RANDOM % SPAN_MS ))
  sleep "$(printf '%d.%03d' $((MS/1000)) $((MS%1000)))"
  kill -STOP "$EDGE"
  cp --sparse=always "$W/cur.img" "$W/snap.img"
  stop "$PUB"; PUB=""
  stop "$EDGE"; EDGE=""
  umount "$MNT"; losetup -d "$LOOP"
  LOOP=$(losetup --show -f "$W/snap.img"); mount "$LOOP" "$MNT"
  if [ "$CENTRAL_MODE" != up ]; then start_central; start_verifier; fi
  LAST=$(grep '^F ' "$W/pub.out" | tail -1 | awk '{print $2}')
  touch "$W/go"
  wait "$VERIFIER"; VOK=$?; VERIFIER=""
  OUT=$(tail -1 "$W/verify.out")
  if [ "$VOK" -eq 0 ] && ! grep -qE 'set aside|store unusable|panicked' "$W/edge.log"; then
    ok=$((ok+1)); echo "round $r: cut after ${MS} ms, last PUBACK ${LAST:-none}: $OUT"
  else
    bad=$((bad+1)); echo "round $r: FAIL (cut after ${MS} ms, last PUBACK ${LAST:-none}): $OUT"
    grep -E 'WARN|ERROR|panicked' "$W/edge.log" | tail -5 | sed 's/^/  edge: /'
  fi
  stop "$CENTRAL"; CENTRAL=""
  umount "$MNT"; losetup -d "$LOOP"; LOOP=""
done
echo "powercut (edge, central $CENTRAL_MODE during the writes): $ok passed, $bad failed"
[ "$bad" -eq 0 ]
