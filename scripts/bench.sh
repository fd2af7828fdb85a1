#!/usr/bin/env bash
# Runs every edgemq-bench scenario against Debian's mosquitto and edgemq in
# alternation, on loopback, and writes the table into BENCHMARKS.md (between
# the bench:begin/end markers; the analysis around them is kept).
#
# The broker under test is pinned to CPU $BROKER_CPU, the load generator to
# $LOAD_CPU (taskset), so the per-core rows compare one core with one core.
# Each scenario starts a fresh broker; each value is the median of $ROUNDS
# alternating runs (mosquitto, edgemq, edgemq, mosquitto, ...).
#
#   scripts/bench.sh                  full run (about 20 minutes)
#   QUICK=1 scripts/bench.sh          counts / 10, one round
#   EDGE=mosquitto scripts/bench.sh   both columns Mosquitto: proves the harness
#   ONLY="qos0 latency" scripts/bench.sh   a subset (names: see SCENARIOS below)
#   RAW_FROM=/tmp/edgemq-bench-run.X/raw.tsv scripts/bench.sh   only re-render a past run's table
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}            # alternations of the fast scenarios
BRIDGE_ROUNDS=${BRIDGE_ROUNDS:-1}
QUICK=${QUICK:-0}
EDGE=${EDGE:-edgemq}           # what runs in the "edgemq" column
BROKER_CPU=${BROKER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
OUT=${OUT:-BENCHMARKS.md}
ONLY=${ONLY:-}
BIG_WINDOW=${BIG_WINDOW:-1024}  # the ingest rows run again with this publisher window
MOSQUITTO=${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}
COMMAND="QUICK=$QUICK ROUNDS=$ROUNDS BRIDGE_ROUNDS=$BRIDGE_ROUNDS EDGE=$EDGE${ONLY:+ ONLY=\"$ONLY\"} scripts/bench.sh"

div=1
[ "$QUICK" = 1 ] && { div=10; ROUNDS=1; BRIDGE_ROUNDS=1; }
n() { echo $(( $1 / div )); }

work=$(mktemp -d /tmp/edgemq-bench-run.XXXXXX)
RAW=${RAW_FROM:-$work/raw.tsv}
LOG=$work/bench.log
BIN=$PWD/target/release
stripped=$work/edgemq.stripped
SCRATCH=/tmp
DISK_DEV="the store's device"
mnt=""
img=""

# build: release binaries, and a stripped copy of edgemq for the size row.
build() {
    cargo build --release --bin edgemq --bin edgemq-bench >&2
    cp "$BIN/edgemq" "$stripped" && strip "$stripped"
}

# mount_scratch: the stores go on a loop-mounted ext4 image of our own, so
# the device's sectors-written counter sees no other writer.
mount_scratch() {
    [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null || return 0
    img=$work/store.img
    truncate -s 2G "$img" && mkfs.ext4 -q -F "$img" 2>/dev/null
    mnt=$(mktemp -d /tmp/edgemq-bench-mnt.XXXXXX)
    if mount -o loop "$img" "$mnt" 2>/dev/null; then
        SCRATCH=$mnt
    else
        rmdir "$mnt"; mnt=""
        echo "note: no loop mount; disk bytes include every other writer on the disk" >&2
    fi
    DISK_DEV=$(df --output=source "$SCRATCH" | tail -1)
}
cleanup() {
    if [ -n "$mnt" ]; then umount -l "$mnt" 2>/dev/null && rmdir "$mnt"; fi
    if [ -n "$img" ]; then rm -f "$img"; fi
}
trap cleanup EXIT

# bench COLUMN KIND SCENARIO ARGS...: one run, results appended to $RAW as
# "column<TAB>metric<TAB>value<TAB>unit".
bench() {
    local col=$1 kind=$2; shift 2
    echo "== $col ($kind): $*" >&2
    taskset -c "$LOAD_CPU" "$BIN/edgemq-bench" "$@" --broker "$kind" --cpu "$BROKER_CPU" \
        --scratch "$SCRATCH" --edgemq "$BIN/edgemq" --mosquitto "$MOSQUITTO" 2>>"$LOG" \
        | sed "s/^/$col\t/" >> "$RAW" || echo "   failed (see $LOG)" >&2
}

# alternate ROUNDS SCENARIO ARGS...: both columns, order swapped every round.
alternate() {
    local rounds=$1; shift
    for r in $(seq 1 "$rounds"); do
        if [ $((r % 2)) = 1 ]; then
            bench mosquitto mosquitto "$@"; bench edgemq "$EDGE" "$@"
        else
            bench edgemq "$EDGE" "$@"; bench mosquitto mosquitto "$@"
        fi
    done
}

wanted() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

# med COLUMN METRIC: median of the runs, empty when none.
med() {
    awk -F'\t' -v c="$1" -v m="$2" '$1==c && $2==m {print $3}' "$RAW" | sort -g |
        awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'
}

# run_all: every wanted scenario (names: qos0 qos1 fanout fanin latency idle
# startup ingest replay store kill9).
run_all() {
    wanted qos0 && alternate "$ROUNDS" qos0 --count "$(n 500000)" --payload 64
    wanted qos1 && alternate "$ROUNDS" qos1 --count "$(n 200000)" --payload 64
    wanted fanout && alternate "$ROUNDS" fanout --count "$(n 20000)" --clients 100 --payload 64
    wanted fanin && alternate "$ROUNDS" fanin --count "$(n 200000)" --clients 100 --payload 64
    if wanted latency; then
        max=$(med mosquitto qos0_rate)
        [ -z "$max" ] && { bench mosquitto mosquitto qos0 --count "$(n 500000)"; max=$(med mosquitto qos0_rate); }
        LAT_RATE=$(lat_rate)
        LAT_COUNT=$(awk -v r="$LAT_RATE" -v d="$div" 'BEGIN {c = r * 10 / d; if (c > 500000) c = 500000; printf "%d", c}')
        [ "$LAT_RATE" -gt 0 ] && alternate "$ROUNDS" latency --rate "$LAT_RATE" --count "$LAT_COUNT" --payload 64
    fi
    wanted idle && alternate "$ROUNDS" idle --conns 1000
    wanted startup && alternate "$ROUNDS" startup --runs 5
    if wanted ingest; then
        alternate "$BRIDGE_ROUNDS" bridge-ingest --durability always --count "$(n 100000)" --payload 256
        alternate "$BRIDGE_ROUNDS" bridge-ingest --durability outage --count "$(n 100000)" --payload 256
        # "uplink up" as in the field: a publisher the uplink keeps up with.
        alternate "$BRIDGE_ROUNDS" bridge-ingest --durability outage --rate 10000 --count "$(n 50000)" --payload 256 --label ingest_outage_paced
        alternate "$BRIDGE_ROUNDS" bridge-unbridged --count "$(n 100000)" --payload 256
        # A publisher that keeps more unacknowledged lets one fdatasync cover more messages.
        alternate "$BRIDGE_ROUNDS" bridge-ingest --durability always --window "$BIG_WINDOW" --count "$(n 300000)" --payload 256
        alternate "$BRIDGE_ROUNDS" bridge-ingest --durability outage --window "$BIG_WINDOW" --count "$(n 300000)" --payload 256
        alternate "$BRIDGE_ROUNDS" bridge-unbridged --window "$BIG_WINDOW" --count "$(n 300000)" --payload 256
    fi
    wanted replay && alternate "$BRIDGE_ROUNDS" bridge-replay --durability always --count "$(n 100000)" --payload 256
    if wanted store; then
        alternate "$BRIDGE_ROUNDS" bridge-steady --count "$(n 1000000)" --backlog 10000 --payload 256
        alternate "$BRIDGE_ROUNDS" bridge-replay --label replay300k --durability always --count "$(n 300000)" --payload 256
    fi
    wanted kill9 && alternate "$BRIDGE_ROUNDS" bridge-replay --kill9 --label kill9 --durability always --count "$(n 20000)" --payload 256
    # An unwanted last scenario must not end the script (set -e) before the table is written.
    return 0
}

# lat_rate: half of Mosquitto's median QoS 0 rate.
lat_rate() { awk -v m="$(med mosquitto qos0_rate)" 'BEGIN {printf "%d", m / 2}'; }

# --- the table ----------------------------------------------------------------
# fmt KIND VALUE: human units.
fmt() {
    [ -z "$2" ] && { echo "—"; return; }
    case $1 in
        rate) awk -v v="$2" 'BEGIN {printf "%\047d", v}' ;;
        us) awk -v v="$2" 'BEGIN {printf "%.0f µs", v}' ;;
        us1) awk -v v="$2" 'BEGIN {printf "%.2f µs", v}' ;;
        kib) awk -v v="$2" 'BEGIN {printf "%.1f MiB", v / 1024}' ;;
        bytes) awk -v v="$2" 'BEGIN {printf "%.1f MiB", v / 1048576}' ;;
        b) awk -v v="$2" 'BEGIN {printf "%.1f B", v}' ;;
        ms) awk -v v="$2" 'BEGIN {printf "%.1f ms", v}' ;;
        s) awk -v v="$2" 'BEGIN {printf "%.1f s", v}' ;;
        *) echo "$2" ;;
    esac
}
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f×", a / b; else print "—"}' || echo "—"; }
# check EXPR E M X Y: evaluates EXPR over e, m, x, y (awk); yes, **no**, or —
# when a value the expression uses is missing.
check() {
    local expr=$1 vars=(e m x y) vals=("${2:-}" "${3:-}" "${4:-}" "${5:-}") i
    for i in 0 1 2 3; do
        if [[ $expr =~ (^|[^a-z])${vars[$i]}([^a-z]|$) ]] && [ -z "${vals[$i]}" ]; then echo "—"; return; fi
    done
    awk -v e="${vals[0]:-0}" -v m="${vals[1]:-0}" -v x="${vals[2]:-0}" -v y="${vals[3]:-0}" \
        "BEGIN {print (($expr) ? \"yes\" : \"**no**\")}"
}
# row NAME KIND EDGEMQ MOSQUITTO TARGET MET
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$(fmt "$2" "$3")" "$(fmt "$2" "$4")" "$(ratio "$3" "$4")" "$5" "$6"; }
E() { med edgemq "$1"; }
M() { med mosquitto "$1"; }

table() {
    echo "| scenario | edgemq | Mosquitto | ratio | target | met? |"
    echo "|---|---:|---:|---:|---|---|"
    local e m x
    e=$(E qos0_rate) m=$(M qos0_rate) x=$(E qos0_lost) y=$(M qos0_lost)
    row "QoS 0, 1 → 1, 64 B, msg/s delivered (one core)" rate "$e" "$m" "≥ 1.3× Mosquitto, no more drops" "$(check 'e >= 1.3 * m && x <= y' "$e" "$m" "$x" "$y")"
    e=$(E qos0_cpu_us_per_msg) m=$(M qos0_cpu_us_per_msg); row "… broker CPU per message (user+sys, steadier than rates on a shared host)" us1 "$e" "$m" "reported" "—"
    e=$(E qos0_lost) m=$(M qos0_lost); row "… QoS 0 messages dropped of $(n 500000)" n "$e" "$m" "reported" "—"
    e=$(E qos1_rate) m=$(M qos1_rate) x=$(E qos1_lost) y=$(M qos1_lost)
    row "QoS 1, 1 → 1, 64 B, msg/s acked end to end (one core)" rate "$e" "$m" "≥ 1.3× Mosquitto, no loss" "$(check 'e >= 1.3 * m && x == 0' "$e" "$m" "$x")"
    e=$(E qos1_cpu_us_per_msg) m=$(M qos1_cpu_us_per_msg); row "… broker CPU per message (user+sys, steadier than rates on a shared host)" us1 "$e" "$m" "reported" "—"
    e=$(E fanout_rate) m=$(M fanout_rate) x=$(E fanout_lost) y=$(M fanout_lost)
    row "fan-out 1 → 100, QoS 0, deliveries/s (one core)" rate "$e" "$m" "≥ 1.3× Mosquitto, no more drops" "$(check 'e >= 1.3 * m && x <= y' "$e" "$m" "$x" "$y")"
    e=$(E fanout_cpu_us_per_msg) m=$(M fanout_cpu_us_per_msg); row "… broker CPU per message (user+sys, steadier than rates on a shared host)" us1 "$e" "$m" "reported" "—"
    e=$(E fanout_lost) m=$(M fanout_lost); row "… deliveries dropped of $(( $(n 20000) * 100 ))" n "$e" "$m" "reported" "—"
    e=$(E fanin_rate) m=$(M fanin_rate) x=$(E fanin_lost) y=$(M fanin_lost)
    row "fan-in 100 → 1, QoS 1, msg/s (one core)" rate "$e" "$m" "≥ 1.3× Mosquitto, no loss" "$(check 'e >= 1.3 * m && x == 0' "$e" "$m" "$x")"
    e=$(E fanin_cpu_us_per_msg) m=$(M fanin_cpu_us_per_msg); row "… broker CPU per message (user+sys, steadier than rates on a shared host)" us1 "$e" "$m" "reported" "—"
    e=$(E fanin_lost) m=$(M fanin_lost); row "… messages lost of $(n 200000) (Mosquitto logs \"Outgoing messages are being dropped\")" n "$e" "$m" "0" "$(check 'e == 0' "$e")"
    e=$(E latency_p50) m=$(M latency_p50); row "latency p50 at ${LAT_RATE:-?} msg/s (50 % of Mosquitto's QoS 0 max)" us "$e" "$m" "reported" "—"
    e=$(E latency_p99) m=$(M latency_p99); row "latency p99, same run" us "$e" "$m" "≤ Mosquitto's p99" "$(check 'e <= m' "$e" "$m")"
    e=$(E latency_p999) m=$(M latency_p999); row "latency p99.9, same run" us "$e" "$m" "reported" "—"
    e=$(E conns_rss) m=$(M conns_rss); row "RSS with 1,000 idle connections" kib "$e" "$m" "≤ 1.5× Mosquitto" "$(check 'e <= 1.5 * m' "$e" "$m")"
    e=$(E idle_rss) m=$(M idle_rss); row "RSS idle, no clients (store included)" kib "$e" "$m" "≤ 8 MiB" "$(check 'e <= 8192' "$e")"
    e=$(E startup_ms) m=$(M startup_ms); row "startup to first CONNACK, empty store (median of 5)" ms "$e" "$m" "≤ 100 ms" "$(check 'e <= 100' "$e")"
    e=$(E ingest_always_rate) m=$(M ingest_always_rate) x=$(E unbridged_rate)
    row "bridge, durability always: QoS 1 msg/s into the queue, uplink up, 256 B, publisher window 64" rate "$e" "$m" "≥ 20,000 and ≥ 0.8× unbridged" "$(check 'e >= 20000 && e >= 0.8 * x' "$e" "" "$x")"
    e=$(E ingest_always_rate) m=$(E unbridged_rate); row "… edgemq always against edgemq unbridged, window 64 (ratio column)" rate "$e" "$m" "≥ 0.8×" "$(check 'e >= 0.8 * m' "$e" "$m")"
    e=$(E unbridged_rate) m=$(M unbridged_rate); row "same workload, topic not bridged, window 64" rate "$e" "$m" "reference" "—"
    e=$(E ingest_outage_rate) m=$(M ingest_outage_rate); row "bridge, durability outage, same workload, window 64 (cost of always)" rate "$e" "$m" "reported" "—"
    e=$(E ingest_always_cpu_us_per_msg) m=$(M ingest_always_cpu_us_per_msg); row "… broker CPU per message, always, window 64 (publish to delivered at the central broker)" us1 "$e" "$m" "reported" "—"
    e=$(E unbridged_cpu_us_per_msg) m=$(M unbridged_cpu_us_per_msg); row "… broker CPU per message, unbridged, window 64" us1 "$e" "$m" "reported" "—"
    local w=_w$BIG_WINDOW
    e=$(E ingest_always${w}_rate) m=$(M ingest_always${w}_rate) x=$(E unbridged${w}_rate)
    row "bridge, durability always, publisher window $BIG_WINDOW" rate "$e" "$m" "≥ 20,000 and ≥ 0.8× unbridged" "$(check 'e >= 20000 && e >= 0.8 * x' "$e" "" "$x")"
    e=$(E ingest_always${w}_rate) m=$(E unbridged${w}_rate); row "… edgemq always against edgemq unbridged, window $BIG_WINDOW (ratio column)" rate "$e" "$m" "≥ 0.8×" "$(check 'e >= 0.8 * m' "$e" "$m")"
    e=$(E unbridged${w}_rate) m=$(M unbridged${w}_rate); row "same workload, topic not bridged, window $BIG_WINDOW" rate "$e" "$m" "reference" "—"
    e=$(E ingest_outage${w}_rate) m=$(M ingest_outage${w}_rate); row "bridge, durability outage, window $BIG_WINDOW" rate "$e" "$m" "reported" "—"
    e=$(E ingest_always${w}_cpu_us_per_msg) m=$(M ingest_always${w}_cpu_us_per_msg); row "… broker CPU per message, always, window $BIG_WINDOW" us1 "$e" "$m" "reported" "—"
    e=$(E unbridged${w}_cpu_us_per_msg) m=$(M unbridged${w}_cpu_us_per_msg); row "… broker CPU per message, unbridged, window $BIG_WINDOW" us1 "$e" "$m" "reported" "—"
    e=$(E ingest_always${w}_disk_per_msg) m=$(M ingest_always${w}_disk_per_msg); row "… disk bytes per bridged message, always, window $BIG_WINDOW" b "$e" "$m" "≤ 768 B (3× payload)" "$(check 'e <= 768' "$e")"
    e=$(E replay_always_rate) m=$(M replay_always_rate) x=$(E replay_always_lost)
    row "bridge replay of $(n 100000) queued messages to a local Mosquitto central, msg/s" rate "$e" "$m" "≥ 20,000, zero lost" "$(check 'e >= 20000 && x == 0' "$e" "" "$x")"
    e=$(E replay_always_lost) m=$(M replay_always_lost); row "… messages lost (Mosquitto: max_queued_messages 10000)" n "$e" "$m" "0" "$(check 'e == 0' "$e")"
    e=$(E replay_always_dups) m=$(M replay_always_dups); row "… duplicates delivered" n "$e" "$m" "counted" "—"
    e=$(E replay_always_reconnect) m=$(M replay_always_reconnect); row "… uplink back to first delivery" s "$e" "$m" "reported" "—"
    e=$(E replay_always_rss_max) m=$(M replay_always_rss_max); row "RSS while draining the backlog" kib "$e" "$m" "≤ 16 MiB" "$(check 'e <= 16384' "$e")"
    e=$(E ingest_always_disk_per_msg) m=$(M ingest_always_disk_per_msg); row "disk bytes per bridged 256 B message, always (device $DISK_DEV)" b "$e" "$m" "≤ 768 B (3× payload)" "$(check 'e <= 768' "$e")"
    e=$(E ingest_outage_paced_disk_per_msg) m=$(M ingest_outage_paced_disk_per_msg); row "disk bytes per bridged message, outage, uplink up (publisher at 10,000 msg/s, which the uplink keeps up with)" b "$e" "$m" "0" "$(check 'e < 0.5' "$e")"
    e=$(E ingest_outage_disk_per_msg) m=$(M ingest_outage_disk_per_msg); row "… outage, uplink up but outrun by the unpaced publisher (backlog beyond 4 MiB of RAM goes to disk)" b "$e" "$m" "reported" "—"
    e=$(E steady_store_max) m=$(M steady_store_max) x=$(E steady_peak_backlog_bytes)
    row "queue store after $(n 1000000) messages, backlog ≤ 10,000" bytes "$e" "$m" "≤ 4× peak backlog + 16 MiB" "$(check 'e <= 4 * x + 16777216' "$e" "" "$x")"
    e=$(E replay300k_store_peak) m=$(M replay300k_store_peak); row "queue store at a $(n 300000)-message outage backlog" bytes "$e" "$m" "reported" "—"
    e=$(E replay300k_store_after) m=$(M replay300k_store_after); row "… after the drain" bytes "$e" "$m" "≤ 16 MiB" "$(check 'e <= 16777216' "$e")"
    e=$(E kill9_lost) m=$(M kill9_lost); row "SIGKILL during an outage: of $(n 20000) acknowledged, lost" n "$e" "$m" "0" "$(check 'e == 0' "$e")"
    e=$(stat -c %s "$stripped") m=$(stat -c %s "$MOSQUITTO")
    row "stripped binary, x86_64, release (Mosquitto: its executable alone, without libmosquitto/libssl)" bytes "$e" "$m" "≤ 3 MiB" "$(check 'e <= 3145728' "$e")"
}

machine() {
    echo "- command: \`$COMMAND\`"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)')"
    echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- brokers: edgemq column = \`$EDGE\`; $("$MOSQUITTO" -h 2>/dev/null | head -1 || true); broker pinned to CPU $BROKER_CPU, load generator to CPU $LOAD_CPU"
    echo "- medians of $ROUNDS alternating runs (bridge rows: $BRIDGE_ROUNDS); store on $DISK_DEV; raw results: \`$RAW\`"
    echo "- rows marked — have no figure: the scenario failed for that broker (its log is next to the raw results)"
}

if [ -n "${RAW_FROM:-}" ]; then
    build
    LAT_RATE=$(lat_rate)
else
    : > "$RAW"
    echo "raw results: $RAW, log: $LOG" >&2
    build
    ulimit -n 8192
    mount_scratch
    run_all
fi

block=$work/block.md
{ echo "<!-- bench:begin -->"; machine; echo; table; echo "<!-- bench:end -->"; } > "$block"
if [ -f "$OUT" ] && grep -q '<!-- bench:begin -->' "$OUT"; then
    awk -v f="$block" '/<!-- bench:begin -->/ {while ((getline l < f) > 0) print l; skip=1; next}
        /<!-- bench:end -->/ {skip=0; next} !skip' "$OUT" > "$work/out.md"
    cp "$work/out.md" "$OUT"
else
    { echo "# Benchmarks"; echo; cat "$block"; } > "$OUT"
fi
cat "$block"
