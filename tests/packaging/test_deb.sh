#!/usr/bin/env bash
# The Debian/Armbian package: build the .deb from a built binary, install it with dpkg on this
# machine, start the binary as the packaged user with the packaged config, round trip with
# mosquitto_pub/sub through it, check the SysV script and lint the systemd unit, then purge.
# Needs root; changes the system (user edgemq, /etc/edgemq) and purges it again.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
echo "Debian package (armbian/, scripts/build-deb.sh)"

[ "$(id -u)" = 0 ] || { echo "  skip: needs root (dpkg -i)"; [ "${CI:-}" = true ] && exit 1; exit 0; }
need dpkg-deb setpriv runuser || finish
BIN=$(find_binary) || { not_ok "no edgemq binary (cargo build first, or set EDGEMQ_BIN)"; finish; }
T=$(mktemp -d)
TESTCONF=/etc/edgemq/pkgtest-$$.toml
DAEMON_PID=""
cleanup() {
	[ -n "$DAEMON_PID" ] && kill -KILL "$DAEMON_PID" 2>/dev/null
	/etc/init.d/edgemq stop >/dev/null 2>&1
	rm -f "$TESTCONF" /etc/default/edgemq
	dpkg --purge edgemq >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT

DEB=$(DEB_COMPRESS=gzip "$ROOT/scripts/build-deb.sh" "$BIN" "$T") || { not_ok "build-deb.sh"; finish; }
ok "built $(basename "$DEB")"
check "deb: control names package edgemq" sh -c "dpkg-deb -f '$DEB' Package | grep -qx edgemq"
contents=$(dpkg-deb -c "$DEB")
for f in ./usr/bin/edgemq ./etc/edgemq/edgemq.toml ./lib/systemd/system/edgemq.service \
         ./lib/systemd/system/edgemq-firstboot.service ./usr/lib/edgemq/firstboot.sh ./etc/init.d/edgemq; do
	check "deb contains $f" grep -q " $f\$" <<< "$contents"
done
check "deb: edgemq.toml is a conffile" sh -c "dpkg-deb --ctrl-tarfile '$DEB' | tar xO ./conffiles | grep -qx /etc/edgemq/edgemq.toml"
check "deb: service file is init/edgemq.service" cmp -s <(dpkg-deb --fsys-tarfile "$DEB" | tar xO ./lib/systemd/system/edgemq.service) "$ROOT/init/edgemq.service"

if ! DEBIAN_FRONTEND=noninteractive dpkg -i "$DEB" > "$T/dpkg.log" 2>&1; then
	not_ok "dpkg -i: $(tail -3 "$T/dpkg.log")"; finish
fi
ok "dpkg -i"
check "postinst created system user edgemq" sh -c 'getent passwd edgemq | cut -d: -f3 | { read u; [ "$u" -lt 1000 ]; }'
check "edgemq has no login shell" sh -c 'getent passwd edgemq | grep -q nologin'
check "/var/lib/edgemq owned by edgemq, 0750" sh -c '[ "$(stat -c %U:%a /var/lib/edgemq)" = edgemq:750 ]'
check "/etc/edgemq/edgemq.toml root:edgemq 0640" sh -c '[ "$(stat -c %U:%G:%a /etc/edgemq/edgemq.toml)" = root:edgemq:640 ]'
check "edgemq can read its config" runuser -u edgemq -- test -r /etc/edgemq/edgemq.toml
check "packaged config passes edgemq check (as user edgemq)" sh -c "runuser -u edgemq -- /usr/bin/edgemq check -c /etc/edgemq/edgemq.toml >/dev/null"

# a user, set the way the README and the first-boot script do it (password on stdin)
if printf 'pkgtest-secret\n' | /usr/bin/edgemq passwd /etc/edgemq/passwd pkgtest > "$T/passwd.log" 2>&1; then
	ok "edgemq passwd (stdin) added a user"
else
	not_ok "edgemq passwd: $(head -2 "$T/passwd.log")"
fi
check "password file still readable by edgemq after edgemq passwd" runuser -u edgemq -- test -r /etc/edgemq/passwd

# the packaged config with only the port changed (1883 may be taken on a CI machine)
PORT=$(free_port)
sed "s/0.0.0.0:1883/127.0.0.1:$PORT/" /etc/edgemq/edgemq.toml > "$TESTCONF"
chown root:edgemq "$TESTCONF"; chmod 0640 "$TESTCONF"
if need mosquitto_pub mosquitto_sub; then
	setpriv --reuid edgemq --regid edgemq --init-groups --no-new-privs \
		/usr/bin/edgemq run -c "$TESTCONF" > "$T/daemon.log" 2>&1 &
	DAEMON_PID=$!
	if wait_port "$PORT" "$DAEMON_PID"; then
		ok "daemon listens as user edgemq (pid $DAEMON_PID)"
		check "daemon runs as edgemq" sh -c "[ \"\$(ps -o user= -p $DAEMON_PID)\" = edgemq ]"
		check "pub/sub round trip with the packaged user" mqtt_round_trip "$PORT" -u pkgtest -P pkgtest-secret
		check "anonymous client refused (allow_anonymous = false)" sh -c \
			"! mosquitto_pub -h 127.0.0.1 -p $PORT -t pkgtest/anon -m x -q 1 2>/dev/null"
		check "edgemq status reads the running daemon" sh -c "/usr/bin/edgemq status -c '$TESTCONF' | grep -q 'clients connected'"
		check "store written under /var/lib/edgemq" sh -c '[ -n "$(ls -A /var/lib/edgemq)" ]'
		kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"; rc=$?; DAEMON_PID=""
		check "SIGTERM: clean exit 0 (got $rc)" [ "$rc" -eq 0 ]
	else
		not_ok "daemon did not listen on 127.0.0.1:$PORT: $(tail -3 "$T/daemon.log" | tr '\n' ' ')"
		kill -KILL "$DAEMON_PID" 2>/dev/null; DAEMON_PID=""
	fi

	# the SysV script, pointed at the test config through /etc/default/edgemq
	echo "CONFIG=$TESTCONF" > /etc/default/edgemq
	if /etc/init.d/edgemq start > "$T/sysv.log" 2>&1 && wait_port "$PORT" "$(cat /run/edgemq.pid 2>/dev/null || echo 0)"; then
		ok "SysV script starts the daemon"
		check "SysV: runs as edgemq" sh -c '[ "$(ps -o user= -p "$(cat /run/edgemq.pid)")" = edgemq ]'
		check "SysV: round trip" mqtt_round_trip "$PORT" -u pkgtest -P pkgtest-secret
		check "SysV: status says running" sh -c "/etc/init.d/edgemq status >/dev/null"
		check "SysV: stop" sh -c "/etc/init.d/edgemq stop >/dev/null"
		check "SysV: status says stopped" sh -c "! /etc/init.d/edgemq status >/dev/null"
	else
		not_ok "SysV start: $(tail -3 "$T/sysv.log" | tr '\n' ' ')"
	fi
	rm -f /etc/default/edgemq
fi

if command -v systemd-analyze >/dev/null 2>&1; then
	systemd-analyze verify /lib/systemd/system/edgemq.service /lib/systemd/system/edgemq-firstboot.service > "$T/verify.log" 2>&1
	rc=$?
	# other units on the machine may warn; only lines about ours count
	if [ $rc -eq 0 ] && ! grep -q 'edgemq' "$T/verify.log"; then ok "systemd-analyze verify"
	else not_ok "systemd-analyze verify (rc $rc): $(grep edgemq "$T/verify.log" | head -3)"; fi
	check "unit: hardened" sh -c 'grep -q "^ProtectSystem=strict" /lib/systemd/system/edgemq.service &&
		grep -q "^NoNewPrivileges=yes" /lib/systemd/system/edgemq.service && grep -q "^User=edgemq" /lib/systemd/system/edgemq.service'
else
	need systemd-analyze || true
fi

rm -f "$TESTCONF"
check "dpkg --purge" sh -c 'dpkg --purge edgemq >/dev/null 2>&1'
check "purge removed user edgemq" sh -c '! getent passwd edgemq >/dev/null'
check "purge removed /var/lib/edgemq and /etc/edgemq" sh -c '[ ! -e /var/lib/edgemq ] && [ ! -e /etc/edgemq ]'
finish
