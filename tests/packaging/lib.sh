# Shared helpers of the packaging tests (sourced).
# Tests needing a tool FAIL when CI=true and it is missing, else skip with a note.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PASS=0
FAIL=0

ok() { PASS=$((PASS + 1)); echo "  ok   $*"; }
not_ok() { FAIL=$((FAIL + 1)); echo "  FAIL $*"; }
check() {  # check "description" command...
	local d=$1; shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}
need() {  # need TOOL... : returns 1 (caller skips) unless CI=true, where it fails
	local t
	for t in "$@"; do
		if ! command -v "$t" >/dev/null 2>&1; then
			if [ "${CI:-}" = true ]; then
				not_ok "required tool $t is missing (CI=true)"
				finish
			fi
			echo "  skip: $t not installed"
			return 1
		fi
	done
}
finish() {
	echo "  $PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ] && exit 0 || exit 1
}
# an unused TCP port on 127.0.0.1
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# wait (bounded) until 127.0.0.1:$1 accepts connections; $2 = pid that must stay alive
wait_port() {
	local i
	for i in $(seq 1 100); do
		kill -0 "$2" 2>/dev/null || return 1
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
# the edgemq binary the tests package: $EDGEMQ_BIN, else the newer of target/release and
# target/debug (a stale release build must not shadow the debug build CI just made)
find_binary() {
	if [ -n "${EDGEMQ_BIN:-}" ]; then
		[ -x "$EDGEMQ_BIN" ] && { echo "$EDGEMQ_BIN"; return 0; }
		return 1
	fi
	local b
	b=$(ls -t "$ROOT/target/release/edgemq" "$ROOT/target/debug/edgemq" 2>/dev/null | head -1)
	[ -n "$b" ] && [ -x "$b" ] && { echo "$b"; return 0; }
	return 1
}
# publish/subscribe round trip through a broker on 127.0.0.1:$1; extra args (-u/-P) follow
mqtt_round_trip() {
	local port=$1; shift
	local out msg="edgemq-roundtrip-$$-$RANDOM" sub
	out=$(mktemp)
	mosquitto_sub -h 127.0.0.1 -p "$port" "$@" -t 'pkgtest/rt' -C 1 -W 10 -q 1 > "$out" 2>&1 &
	sub=$!
	sleep 0.5
	local i
	for i in 1 2 3 4 5; do
		mosquitto_pub -h 127.0.0.1 -p "$port" "$@" -t 'pkgtest/rt' -q 1 -m "$msg" 2>>"$out" || true
		grep -q "$msg" "$out" && break
		sleep 0.5
	done
	wait "$sub" 2>/dev/null
	if grep -q "^$msg\$" "$out"; then rm -f "$out"; return 0; fi
	echo "    round trip output: $(tr '\n' ' ' < "$out")"
	rm -f "$out"
	return 1
}
