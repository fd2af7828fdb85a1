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
# SIGTERM to pid $1, then its exit status once it ended: 124 (and SIGKILL) if it still runs
# after $2 tenths of a second (default 200). The pid must be a child of this shell.
stop_gracefully() {
	local i rc
	kill -TERM "$1" 2>/dev/null
	for i in $(seq 1 "${2:-200}"); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$1" 2>/dev/null; then
		kill -KILL "$1" 2>/dev/null
		wait "$1" 2>/dev/null
		return 124
	fi
	wait "$1"; rc=$?
	return $rc
}
# an unused TCP port on 127.0.0.1
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# wait (bounded: $3 tenths of a second, default 100) until 127.0.0.1:$1 accepts connections;
# $2, if not empty, is a pid that must stay alive meanwhile
wait_port() {
	local i
	for i in $(seq 1 "${3:-100}"); do
		[ -z "${2:-}" ] || kill -0 "$2" 2>/dev/null || return 1
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
# In the current directory, the certificates of seed 000: a CA (ca.crt, ca.key), a server
# certificate for 127.0.0.1 and localhost (server.crt, server.key) and the gateway's client
# certificate, CN=GW-0001 (GW-0001.crt, GW-0001.key). Returns 1, saying why, if openssl fails.
make_pki() {
	local leaf
	_ossl() { openssl "$@" >/dev/null 2>&1 || { echo "openssl $* failed" >&2; return 1; }; }
	_ossl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout ca.key -out ca.crt -subj /CN=edgemq-test-CA || return 1
	printf 'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
	printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' >client.ext
	for leaf in "server /CN=localhost server.ext" "GW-0001 /CN=GW-0001/O=MBusGateway/C=DK client.ext"; do
		set -- $leaf
		_ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" || return 1
		_ossl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 30 -extfile "$3" || return 1
	done
}
# The listeners of a central Mosquitto configured like seed 000, for mosquitto.conf (stdout):
# TLS 1.3 on $2 with require_certificate, use_identity_as_username and `pattern readwrite
# meters/%u/#`, certificates from make_pki in directory $1; a plain anonymous listener on $3
# for the test's own observer. Writes $1/acl.
central_listeners() {
	local dir=$1 tls_port=$2 plain_port=$3
	echo 'pattern readwrite meters/%u/#' >"$dir/acl"
	cat <<EOC
per_listener_settings true
max_queued_messages 1000000
listener $tls_port 127.0.0.1
allow_anonymous false
cafile $dir/ca.crt
certfile $dir/server.crt
keyfile $dir/server.key
require_certificate true
use_identity_as_username true
tls_version tlsv1.3
acl_file $dir/acl
listener $plain_port 127.0.0.1
allow_anonymous true
EOC
}
# QEMU=(the qemu-user command line that runs a binary built for target $1); empty for x86_64
qemu_for() {
	case $1 in
		armv7-*gnueabihf) QEMU=(qemu-arm-static -L /usr/arm-linux-gnueabihf) ;;
		aarch64-*gnu) QEMU=(qemu-aarch64-static -L /usr/aarch64-linux-gnu) ;;
		armv7-*|arm-*) QEMU=(qemu-arm-static) ;;
		aarch64-*) QEMU=(qemu-aarch64-static) ;;
		mipsel-*) QEMU=(qemu-mipsel-static) ;;
		x86_64-*) QEMU=() ;;
		*) return 1 ;;
	esac
}
# The [[bridge]] of seed 000's gateway GW-0001, for edgemq.toml (stdout): to central_listeners'
# TLS listener on 127.0.0.1:$2 with make_pki's certificates in directory $1, carrying data/# to
# meters/GW-0001/data/#. Further [bridge.*] tables may follow it.
gateway_bridge() {
	cat <<EOB
[[bridge]]
name = "central"
addresses = ["127.0.0.1:$2"]
client_id = "GW-0001"
keepalive = "5s"
reconnect_min = "100ms"
reconnect_max = "500ms"
[bridge.tls]
ca = "$1/ca.crt"
cert = "$1/GW-0001.crt"
key = "$1/GW-0001.key"
tls13_only = true
[[bridge.topic]]
pattern = "data/#"
remote_prefix = "meters/GW-0001/"
EOB
}
