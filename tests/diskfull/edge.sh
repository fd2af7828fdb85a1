#!/usr/bin/env bash
# A full disk under the real edgemq binary: it must stop accepting with a clear log line, lose
# nothing it acknowledged, and go on once there is room again (needs root, a loop device,
# mosquitto, python3 with paho-mqtt; not run by cargo test).
#
#   tests/diskfull/edge.sh        (DISKFULL_BIN=path overrides the binary; DISKFULL_KEEP=1 keeps
#                                  the work directory with the logs, unmounted)
#
# data_dir is on a small ext4 filled to its last 3 MiB. The bridge's central Mosquitto is down, so
# every bridged QoS 1 message (1 KiB, its number in the first 8 bytes) goes to the queue on disk
# until the disk is full. Then:
#   - the publisher stops getting PUBACKs (edgemq closes its connection, so paho sends again);
#   - the log says "No space left on device" and that the publishers are not acknowledged;
#   - `edgemq status` counts the refused writes as "not stored", not as dropped;
#   - with the filler removed, the same broker takes 500 more messages;
#   - after a restart on the same disk and with the central broker up, every acknowledged
#     message arrives there, in order (duplicates allowed), byte for byte.
set -u
# ROOT, check (PASS/FAIL), free_port, wait_port PORT PID
. "$(dirname "$0")/../packaging/lib.sh"
LEAVE_KB=3072
FIRST=20000
MORE=500

[ "$(id -u)" -eq 0 ] || { echo "diskfull: needs root (loop device, mount)"; exit 2; }
for tool in mosquitto mosquitto_sub python3 mkfs.ext4 fallocate; do
  command -v "$tool" >/dev/null || { echo "diskfull: $tool is required"; exit 2; }
done
python3 -c 'import paho.mqtt.client' 2>/dev/null || { echo "diskfull: python3 paho-mqtt is required"; exit 2; }
if [ -n "${DISKFULL_BIN:-}" ]; then
  BIN=$DISKFULL_BIN
else
  (cd "$ROOT" && cargo build --quiet --bin edgemq) || exit 2
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/edgemq
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/edge-diskfull.XXXX"); MNT=$W/mnt; mkdir -p "$MNT"
EDGE=""; CENTRAL=""; SUB=""
stop() { [ -n "$1" ] && kill -KILL "$1" 2>/dev/null && wait "$1" 2>/dev/null; }
cleanup() {
  stop "$EDGE"; stop "$SUB"; stop "$CENTRAL"
  mountpoint -q "$MNT" && umount "$MNT"
  if [ -n "${DISKFULL_KEEP:-}" ]; then echo "diskfull: kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cd "$W" || exit 2
truncate -s 16M disk.img && mkfs.ext4 -q -F disk.img && mount -o loop disk.img "$MNT" || exit 2
mkdir -p "$MNT/data"
avail_kb=$(df -k --output=avail "$MNT" | tail -1)
fallocate -l $(( (avail_kb - LEAVE_KB) * 1024 )) "$MNT/filler" || exit 2

EDGE_PORT=$(free_port); CENTRAL_PORT=$(free_port)
cat >edge.toml <<EOF
data_dir = "$MNT/data"
[[listener]]
bind = "127.0.0.1:$EDGE_PORT"
allow_anonymous = true
[[bridge]]
name = "central"
addresses = ["127.0.0.1:$CENTRAL_PORT"]
reconnect_min = "200ms"
reconnect_max = "500ms"
[[bridge.topic]]
pattern = "up/#"
[bridge.queue]
max_bytes = "64MiB"
EOF
printf 'listener %s 127.0.0.1\nallow_anonymous true\nuser root\n' "$CENTRAL_PORT" >central.conf

start_edge() {
  "$BIN" run -c edge.toml >>edge.log 2>&1 &
  EDGE=$!
  wait_port "$EDGE_PORT" "$EDGE" || { echo "diskfull: edgemq did not start"; cat edge.log; exit 2; }
}
status() { "$BIN" status -c edge.toml 2>&1; }

# publish FIRST N: QoS 1, at most 20 in flight; stops when nothing was acknowledged for 5 s.
# Appends every acknowledged number to acked.txt and prints how many.
publish() {
  python3 - "$EDGE_PORT" "$1" "$2" <<'EOF'
import sys, threading, time
import paho.mqtt.client as mqtt
port, first, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
lock = threading.Lock(); mids = {}; acked = set()
def on_publish(c, u, mid, *rest):
    with lock:
        if mid in mids: acked.add(mids[mid])
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="diskfull-pub", clean_session=True)
c.on_publish = on_publish
c.max_inflight_messages_set(20)
c.connect("127.0.0.1", port); c.loop_start()
progress = time.time()
for i in range(first, first + n):
    info = c.publish("up/x", b"%08d" % i + b"." * 1016, qos=1)
    with lock: mids[info.mid] = i
    while True:
        with lock: waiting, done = len(mids) - len(acked), len(acked)
        if waiting < 20: break
        if time.time() - progress > 5: break
        time.sleep(0.001)
    if waiting >= 20: break
    progress = time.time()
deadline = time.time() + 5
while time.time() < deadline:
    with lock:
        if len(acked) == len(mids): break
    time.sleep(0.05)
with lock:
    open("acked.txt", "a").write("".join("%d\n" % s for s in sorted(acked)))
    print(len(acked))
c.disconnect()
EOF
}

echo "diskfull: $BIN, data_dir on a 16 MiB ext4 with $LEAVE_KB KiB free"
start_edge
n1=$(publish 0 "$FIRST")
echo "  the full disk took $n1 of $FIRST messages"
check "the disk filled before all $FIRST were taken" [ "${n1:-0}" -gt 0 -a "${n1:-0}" -lt "$FIRST" ]
check "the log names the full disk" grep -q "No space left on device" edge.log
check "the log says the publishers are not acknowledged" \
  grep -q "bridge queue write failed; their publishers are not acknowledged" edge.log
st=$(status)
check "status counts the refused writes as not stored" grep -q "not stored after a storage error" <<<"$st"
check "status drops nothing" grep -q "dropped 0," <<<"$st"
queued=$(sed -n 's/.*queue: \([0-9]*\) messages.*/\1/p' <<<"$st")
# At least the acknowledged ones: a PUBACK may still have been on its way when paho gave up.
check "status queues every acknowledged message" [ "${queued:-0}" -ge "${n1:-1}" ]

rm -f "$MNT/filler"; sync
n2=$(publish 100000 "$MORE")
check "with room again the same broker takes $MORE more" [ "${n2:-0}" -eq "$MORE" ]

kill -TERM "$EDGE"; wait "$EDGE"; rc=$?; EDGE=""
check "SIGTERM ends it cleanly" [ "$rc" -eq 0 ]
mosquitto -c central.conf >central.log 2>&1 &
CENTRAL=$!
wait_port "$CENTRAL_PORT" "$CENTRAL" || { echo "diskfull: mosquitto did not start"; exit 2; }
mosquitto_sub -p "$CENTRAL_PORT" -t 'up/#' -q 1 -i diskfull-sub >got.txt 2>/dev/null &
SUB=$!
sleep 0.3
start_edge
want=$((queued + n2))
for _ in $(seq 1 300); do
  [ "$(wc -l <got.txt)" -ge "$want" ] && status | grep -q "queue: 0 messages" && break
  sleep 0.1
done
sleep 0.5
check "the restarted broker drained its queue" grep -q "queue: 0 messages" <<<"$(status)"
python3 - <<'EOF' >verify.txt
acked = [int(l) for l in open("acked.txt") if l.strip()]
got = [l.rstrip("\n") for l in open("got.txt")]
seqs = [int(l[:8]) for l in got]
bad = [l for l in got if len(l) != 1024 or l[8:] != "." * 1016]
# Duplicates are allowed (a re-send whose first PUBACK was lost); first arrivals must ascend.
first = list(dict.fromkeys(seqs))
order = all(a < b for a, b in zip(first, first[1:]))
missing = sorted(set(acked) - set(seqs))
print("arrived %d, acknowledged %d, missing %d, out of order %s, damaged %d"
      % (len(seqs), len(acked), len(missing), not order, len(bad)))
print("OK" if not missing and order and not bad else "BAD")
EOF
echo "  $(head -1 verify.txt)"
check "every acknowledged message arrived, in order, byte for byte" grep -qx OK verify.txt

if [ "$FAIL" -gt 0 ]; then
  echo "--- edge.log (last 30 lines)"; tail -30 edge.log
fi
echo "diskfull (edge, data_dir on a full disk): $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
