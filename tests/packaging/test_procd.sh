#!/usr/bin/env bash
# The procd init script's UCI-to-procd logic, run under stubs of OpenWRT's rc.common,
# functions.sh and procd.sh (tests/packaging/stubs), with a fake edgemq for `check`.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
echo "procd init script (init/edgemq.procd) under OpenWRT stubs"

STUBS=$ROOT/tests/packaging/stubs
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export PROCD_LOG=$T/procd.log UCI_CONFIG_DIR=$T/config PATH="$STUBS/bin:$PATH"
mkdir -p "$UCI_CONFIG_DIR"

# fake edgemq: records its arguments; `check` exits $FAKE_CHECK_RC
cat > "$T/edgemq" <<'F'
#!/bin/sh
echo "edgemq $*" >> "$PROCD_LOG"
[ "$1" = check ] && { [ "${FAKE_CHECK_RC:-0}" = 0 ] || echo "$3:4: bridge.central.qos: invalid value '7'" >&2; exit "${FAKE_CHECK_RC:-0}"; }
exit 0
F
chmod +x "$T/edgemq"

# the init script with its paths pointed into the sandbox
sed -e "s|^PROG=.*|PROG=$T/edgemq|" -e "s|^CONFIG=.*|CONFIG=$UCI_CONFIG_DIR/edgemq|" \
    -e "s|^STATE=.*|STATE=$T/config.md5|" "$ROOT/init/edgemq.procd" > "$T/edgemq.init"
CONF=$UCI_CONFIG_DIR/edgemq
sed "s|/etc/edgemq/data|$T/data|" "$ROOT/openwrt-package/edgemq/files/edgemq.config" > "$CONF"

run() { : > "$PROCD_LOG"; sh "$STUBS/rc.common" "$T/edgemq.init" "$@"; }
has() { grep -qxF -- "$1" "$PROCD_LOG"; }
lacks() { ! grep -q -- "$1" "$PROCD_LOG"; }

run start; rc=$?
check "start exits 0 with the packaged config" [ $rc -eq 0 ]
check "validates with edgemq check -c CONFIG first" has "edgemq check -c $CONF"
check "opens one instance" [ "$(grep -c '^procd_open_instance' "$PROCD_LOG")" -eq 1 ]
check "command is edgemq run -c /etc/config/edgemq" has "procd_set_param command $T/edgemq run -c $CONF"
check "respawn set" has "procd_set_param respawn 3600 5 5"
check "config file watched (change => restart)" has "procd_set_param file $CONF"
check "stderr collected" has "procd_set_param stderr 1"
check "check runs before the instance is opened" \
	[ "$(grep -n "edgemq check" "$PROCD_LOG" | cut -d: -f1)" -lt "$(grep -n procd_open_instance "$PROCD_LOG" | cut -d: -f1)" ]
check "reload trigger on the edgemq config" has "procd_add_reload_trigger edgemq"
check "data_dir from UCI created" [ -d "$T/data" ]
check "daemon not started by the init script itself" lacks "^edgemq run"

run reload
check "reload, config unchanged: SIGHUP, no restart" has "procd_send_signal edgemq * HUP"
check "reload, config unchanged: no new instance" lacks procd_open_instance

printf "\nconfig listener 'lan6'\n\toption bind '[::]:1884'\n" >> "$CONF"
run reload
check "reload, config changed: instance re-declared (procd restarts it)" has procd_open_instance
check "reload, config changed: no SIGHUP" lacks procd_send_signal

FAKE_CHECK_RC=1 run start; rc=$?
check "invalid config: start fails" [ $rc -ne 0 ]
check "invalid config: no instance" lacks procd_open_instance
check "invalid config: edgemq check's message reaches syslog" grep -q "bridge.central.qos: invalid value" "$PROCD_LOG"

FAKE_CHECK_RC=1 run reload; rc=$?
check "invalid config: reload refuses (keeps the running daemon)" [ $rc -ne 0 ]
check "invalid config: reload sends no signal" lacks procd_send_signal

sed -i "/^config edgemq 'main'/a\\	option enabled '0'" "$CONF"
run start; rc=$?
check "main.enabled=0: start succeeds without an instance" [ $rc -eq 0 ]
check "main.enabled=0: no instance" lacks procd_open_instance
check "main.enabled=0: logged" grep -q "disabled" "$PROCD_LOG"

sed -i "s/option enabled '0'/option enabled 'off'/" "$CONF"
run start
check "main.enabled='off' (UCI boolean spelling) also disables" lacks procd_open_instance

finish
