#!/usr/bin/env bash
# The default configs the packages install pass `edgemq check`: /etc/config/edgemq (UCI, as
# shipped and with every disabled example section switched on) and /etc/edgemq/edgemq.toml.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
echo "packaged default configs vs edgemq check"
BIN=$(find_binary) || { not_ok "no edgemq binary (cargo build first, or set EDGEMQ_BIN)"; finish; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
: > "$T/passwd"

# referenced files moved into the sandbox; everything else exactly as shipped
sandbox() { sed -e "s|/etc/edgemq/|$T/|g" -e "s|/var/lib/edgemq|$T/data|g" "$1"; }

sandbox "$ROOT/openwrt-package/edgemq/files/edgemq.config" > "$T/edgemq"
check "OpenWRT /etc/config/edgemq passes edgemq check" sh -c "'$BIN' check -c '$T/edgemq' > '$T/out' 2>&1" ||
	sed 's/^/      /' "$T/out"
check "  ... as UCI, with user edgemq and a LAN listener" sh -c \
	"grep -q 'user: edgemq' '$T/out' && grep -q '0.0.0.0:1883' '$T/out'"
sed "s/option enabled '0'/option enabled '1'/" "$T/edgemq" > "$T/edgemq-all"
check "OpenWRT config with the example user, bridge and topic enabled passes" sh -c \
	"'$BIN' check -c '$T/edgemq-all' > '$T/out2' 2>&1" || sed 's/^/      /' "$T/out2"
check "  ... and shows the bridge" grep -q 'central' "$T/out2"
printf "\nconfig listener 'typo'\n\toption bnid '0.0.0.0:1884'\n" >> "$T/edgemq-all"
check "a misspelt UCI option is refused, naming file and line" sh -c \
	"! '$BIN' check -c '$T/edgemq-all' > '$T/out4' 2>&1 && grep -q 'edgemq-all:[0-9]*:.*bnid' '$T/out4'"

sandbox "$ROOT/armbian/edgemq.toml" > "$T/edgemq.toml"
check "Armbian /etc/edgemq/edgemq.toml passes edgemq check" sh -c "'$BIN' check -c '$T/edgemq.toml' > '$T/out3' 2>&1" ||
	sed 's/^/      /' "$T/out3"
finish
