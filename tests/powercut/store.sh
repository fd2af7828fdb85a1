#!/usr/bin/env bash
# Simulated power cut for the sled store (needs root and loop devices; not part of cargo test).
#
#   tests/powercut/store.sh [ROUNDS] [MODE]     MODE: write (Store, default) | write-nosync (bare sled baseline)
#
# Adapted from the project's reference powercut.sh. Each round: a fresh ext4 on a loop device;
# examples/store_powercut writes retained + session messages with DATA_DIR=$MNT/data and prints
# "F <n>" after each Store::flush (sled flush + fsync). After a random 0.2-2 s the writer is
# SIGSTOPped and the loop device's backing file is copied as it stands: what the disk had received,
# without the page cache, as in a power cut. The copy is mounted (ext4 replays its journal) and
# `store_powercut verify` checks that every record up to the last "F n" is present, intact, in order.
set -u
ROUNDS=${1:-10}; MODE=${2:-write}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --example store_powercut || exit 2
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/store_powercut
WRITER="$BIN $MODE"; VERIFY="$BIN verify"

W=$(mktemp -d "${TMPDIR:-/tmp}/powercut.XXXX"); MNT=$W/mnt; mkdir -p "$MNT"
ok=0; bad=0
for r in $(seq 1 "$ROUNDS"); do
  rm -f "$W/cur.img" "$W/snap.img"
  truncate -s 1G "$W/cur.img" && mkfs.ext4 -q -F "$W/cur.img"
  LOOP=$(losetup --show -f "$W/cur.img"); mount "$LOOP" "$MNT"; mkdir -p "$MNT/data"
  DATA_DIR=$MNT/data bash -c "exec $WRITER" >"$W/writer.out" 2>"$W/writer.err" &
  CPID=$!
  MS=$(( 200 + RANDOM % 1801 ))
  sleep "$(printf '%d.%03d' $((MS/1000)) $((MS%1000)))"
  kill -STOP "$CPID"
  LAST=$(grep '^F ' "$W/writer.out" | tail -1 | awk '{print $2}')
  cp --sparse=always "$W/cur.img" "$W/snap.img"
  kill -KILL "$CPID"; wait "$CPID" 2>/dev/null
  umount "$MNT"; losetup -d "$LOOP"
  LOOP=$(losetup --show -f "$W/snap.img"); mount "$LOOP" "$MNT"
  if DATA_DIR=$MNT/data LAST_DURABLE=${LAST:-0} NO_COLOR=1 bash -c "$VERIFY" >"$W/verify.out" 2>&1; then
    ok=$((ok+1)); echo "round $r: ok (cut after ${MS} ms) $(tail -1 "$W/verify.out")"
  else
    bad=$((bad+1)); echo "round $r: FAIL (cut after ${MS} ms, last durable ${LAST:-none}): $(tail -1 "$W/verify.out" | cut -c1-200)"
  fi
  umount "$MNT"; losetup -d "$LOOP"
done
rm -rf "$W"
echo "powercut store ($MODE): $ok passed, $bad failed"
[ "$bad" -eq 0 ]
