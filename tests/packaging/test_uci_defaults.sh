#!/usr/bin/env bash
# The OpenWRT first-boot scripts (/etc/uci-defaults/90-edgemq of the package, 95-edgemq-image of
# the Image Builder recipe) under a `uci` stub, with the real edgemq for `passwd` and `check`.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
echo "OpenWRT uci-defaults scripts"
BIN=$(find_binary) || { not_ok "no edgemq binary (cargo build first, or set EDGEMQ_BIN)"; finish; }
need python3 || finish
T=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
export UCI_CONFIG_DIR=$T/config PATH="$ROOT/tests/packaging/stubs/bin:$PATH"
mkdir -p "$UCI_CONFIG_DIR" "$T/etc"
# the package's paths moved into the sandbox
sb() { sed -e "s|/etc/config/edgemq|$UCI_CONFIG_DIR/edgemq|g" -e "s|/etc/edgemq|$T/etc/edgemq|g" \
           -e "s|/usr/bin/edgemq|$BIN|g" "$1"; }
sb "$ROOT/openwrt-package/edgemq/files/edgemq.config" > "$UCI_CONFIG_DIR/edgemq"
sb "$ROOT/openwrt-package/edgemq/files/edgemq.uci-defaults" > "$T/90-edgemq"
sb "$ROOT/openwrt-package/imagebuilder/files/etc/uci-defaults/95-edgemq-image" > "$T/95-edgemq-image"

check "90-edgemq exits 0" sh "$T/90-edgemq"
check "local user added to the password file" grep -q '^local:' "$T/etc/edgemq/passwd"
check "credentials file, root only" sh -c "[ \"\$(stat -c %a '$T/etc/edgemq/local-credentials')\" = 600 ]"
pw=$(sed -n 's/^password=//p' "$T/etc/edgemq/local-credentials")
check "a 16-character random password" [ ${#pw} -eq 16 ]
id=$(uci -q get edgemq.central.client_id)
check "bridge central got a client id ($id)" sh -c "echo '$id' | grep -Eq '^edgemq-[0-9a-f]{6}$'"
check "data directory created" test -d "$T/etc/edgemq/data"
check "config still passes edgemq check" sh -c "'$BIN' check -c '$UCI_CONFIG_DIR/edgemq' >/dev/null"
check "90-edgemq again: password unchanged (runs once in effect)" sh -c \
	"sh '$T/90-edgemq' && grep -qx 'password=$pw' '$T/etc/edgemq/local-credentials'"

mkdir -p "$T/etc/edgemq-preset"
printf 'address=central.example.net:8883\nusername=gw\npassword=s3cret\ntopic=meters/# out 1\ntopic=cmd/# in 1\n' \
	> "$T/etc/edgemq-preset/bridge"
check "95-edgemq-image applies the preset" sh "$T/95-edgemq-image"
check "preset: address replaces the example" [ "$(uci -q get edgemq.central.address)" = "central.example.net:8883" ]
check "preset: bridge enabled" [ "$(uci -q get edgemq.central.enabled)" = 1 ]
check "preset: two topic rules added to the example one" [ "$(uci -q show edgemq | grep -c '=topic$')" -eq 3 ]
check "preset: the inbound rule" sh -c "uci -q show edgemq | grep -q \"pattern='cmd/#'\""
check "config with the preset passes edgemq check" sh -c "'$BIN' check -c '$UCI_CONFIG_DIR/edgemq' >/dev/null"
finish
