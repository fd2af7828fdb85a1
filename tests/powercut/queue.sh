#!/usr/bin/env bash
# Simulated power cuts for the bridge queue (needs root and loop devices; not run by cargo test).
#
#   tests/powercut/queue.sh [ROUNDS]        (default 10; QUEUE_POWERCUT_BIN overrides the binary)
#   tests/powercut/queue.sh bench [N]       append rate and bytes reaching a fresh ext4 loop device
#
# Adapted from ../shared/reliability/powercut.sh. Each round: a fresh ext4 on a loop device; the
# writer (examples/queue_powercut.rs, "write") appends 256-byte records to a queue in it, printing
# "F <n>" once n is durable and "A <n>" before acking through n. At a random 0.2-2 s it is
# SIGSTOPped and the backing image copied as it stands (what the disk had received: page cache
# and uncommitted journal are lost). The copy is mounted (journal replay) and the verifier
# ("verify") opens the queue there: it must open, and hold every record after the last ack up
# to the last durable one, in order, without gaps.
set -u
ROUNDS=${1:-10}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${QUEUE_POWERCUT_BIN:-$ROOT/target/debug/examples/queue_powercut}
IMG_SIZE=1G
MIN_MS=200; SPAN_MS=1801

[ "$(id -u)" -eq 0 ] || { echo "powercut: needs root (loop devices, mount)"; exit 2; }
if [ ! -x "$BIN" ] || [ -z "${QUEUE_POWERCUT_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --quiet --example queue_powercut) || exit 2
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/queue-powercut.XXXX"); MNT=$W/mnt; mkdir -p "$MNT"
LOOP=""
cleanup() {
  mountpoint -q "$MNT" && umount "$MNT"
  [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT

if [ "$ROUNDS" = bench ]; then
  truncate -s "$IMG_SIZE" "$W/cur.img" && mkfs.ext4 -q -F "$W/cur.img"
  LOOP=$(losetup --show -f "$W/cur.img"); mount "$LOOP" "$MNT"
  for window in 1 16 256; do
    BENCH_BLOCK_DEVICE=$(basename "$LOOP") "$BIN" bench "$MNT" "${2:-5000}" "$window" || exit 1
  done
  "$BIN" backlog "$MNT/backlog" 100000
  exit $?
fi

ok=0; bad=0
for r in $(seq 1 "$ROUNDS"); do
  rm -f "$W/cur.img" "$W/snap.img"
  truncate -s "$IMG_SIZE" "$W/cur.img" && mkfs.ext4 -q -F "$W/cur.img"
  LOOP=$(losetup --show -f "$W/cur.img"); mount "$LOOP" "$MNT"; mkdir -p "$MNT/data"
  "$BIN" write "$MNT/data" >"$W/writer.out" 2>"$W/writer.err" &
  CPID=$!
  MS=$(( MIN_MS + RANDOM % SPAN_MS ))
  sleep "$(printf '%d.%03d' $((MS/1000)) $((MS%1000)))"
  kill -STOP "$CPID"
  LAST=$(grep '^F ' "$W/writer.out" | tail -1 | awk '{print $2}')
  ACKED=$(grep '^A ' "$W/writer.out" | tail -1 | awk '{print $2}')
  cp --sparse=always "$W/cur.img" "$W/snap.img"
  kill -KILL "$CPID"; wait "$CPID" 2>/dev/null
  umount "$MNT"; losetup -d "$LOOP"
  LOOP=$(losetup --show -f "$W/snap.img"); mount "$LOOP" "$MNT"
  if OUT=$(LAST_DURABLE=${LAST:-} LAST_ACKED=${ACKED:-} "$BIN" verify "$MNT/data" 2>&1); then
    ok=$((ok+1)); echo "round $r: cut after ${MS} ms, last durable ${LAST:-none}: $OUT"
  else
    bad=$((bad+1)); echo "round $r: FAIL (cut after ${MS} ms, last durable ${LAST:-none}, acked ${ACKED:-none}): $OUT"
    [ -s "$W/writer.err" ] && sed 's/^/  writer: /' "$W/writer.err" | tail -5
  fi
  umount "$MNT"; losetup -d "$LOOP"; LOOP=""
done
echo "powercut (queue): $ok passed, $bad failed"
[ "$bad" -eq 0 ]
