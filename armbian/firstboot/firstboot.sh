#!/bin/sh
# First boot of an edgemq appliance (Armbian image). Idempotent; marks itself done.
#   - client id of this device: edgemq-<6 hex of machine-id>, kept in /etc/edgemq/client-id
#   - a local MQTT user "local" with a random password in /etc/edgemq/passwd; the password is
#     written to /root/edgemq-credentials.txt (0600) and, when /boot/edgemq exists, shown there
#     as a hint to log in and read it (never the password itself on the FAT boot partition)
#   - /boot/edgemq/bridge.toml: appended to edgemq.toml (@CLIENT_ID@ replaced; a bridge without
#     client_id gets this device's), validated with `edgemq check`, rolled back if invalid
#   - /boot/edgemq/*.crt|*.pem|*.key: moved to /etc/edgemq (keys removed from /boot)
# Paths can be moved for tests with EDGEMQ_ROOT (a prefix, default empty).
set -u

R=${EDGEMQ_ROOT:-}
ETC=$R/etc/edgemq
BOOT=$R/boot/edgemq
CONF=$ETC/edgemq.toml
DONE=$ETC/.firstboot-done
BIN=${EDGEMQ_BIN:-/usr/bin/edgemq}
LOCAL_USER=local

log() { echo "edgemq-firstboot: $*" >&2; }

client_id() {
	if [ ! -s "$ETC/client-id" ]; then
		mid=$(cat "$R/etc/machine-id" 2>/dev/null || cat /proc/sys/kernel/random/uuid)
		echo "edgemq-$(echo "$mid" | tr -d -- '-' | cut -c1-6)" > "$ETC/client-id"
	fi
	cat "$ETC/client-id"
}

local_password() {
	[ -s "$R/root/edgemq-credentials.txt" ] && return 0
	pw=$(head -c 24 /dev/urandom | base64 | tr -d "/+=" | cut -c1-16)
	if printf '%s\n' "$pw" | "$BIN" passwd "$ETC/passwd" "$LOCAL_USER" >/dev/null; then
		mkdir -p "$R/root"
		( umask 077; printf 'edgemq local MQTT user\nusername=%s\npassword=%s\nclient_id=%s\n' \
			"$LOCAL_USER" "$pw" "$1" > "$R/root/edgemq-credentials.txt" )
		log "created MQTT user '$LOCAL_USER' (password in /root/edgemq-credentials.txt)"
	else
		log "could not set the local password"
		return 1
	fi
}

import_certificates() {
	[ -d "$BOOT" ] || return 0
	for f in "$BOOT"/*.crt "$BOOT"/*.pem "$BOOT"/*.key; do
		[ -f "$f" ] || continue
		install -o root -g edgemq -m 0640 "$f" "$ETC/$(basename "$f")" 2>/dev/null ||
			install -m 0640 "$f" "$ETC/$(basename "$f")"
		# a private key must not stay on the world-readable FAT partition
		case "$f" in *.key) rm -f "$f" ;; esac
		log "imported $(basename "$f")"
	done
}

import_bridge() {
	id=$1
	[ -f "$BOOT/bridge.toml" ] || return 0
	cp "$CONF" "$CONF.before-bridge"
	{
		echo
		echo "# imported from /boot/edgemq/bridge.toml on first boot"
		if grep -q '^[[:space:]]*client_id' "$BOOT/bridge.toml"; then
			sed "s/@CLIENT_ID@/$id/g" "$BOOT/bridge.toml"
		else
			sed "s/@CLIENT_ID@/$id/g; /^[[:space:]]*\[\[bridge\]\][[:space:]]*$/a client_id = \"$id\"" "$BOOT/bridge.toml"
		fi
	} >> "$CONF"
	if "$BIN" check -c "$CONF" >/dev/null 2>"$BOOT/bridge.toml.errors"; then
		mv "$BOOT/bridge.toml" "$BOOT/bridge.toml.imported"
		rm -f "$BOOT/bridge.toml.errors" "$CONF.before-bridge"
		log "imported bridge.toml"
	else
		mv "$CONF.before-bridge" "$CONF"
		log "bridge.toml is invalid, not imported (see /boot/edgemq/bridge.toml.errors)"
	fi
}

mkdir -p "$ETC"
[ -f "$DONE" ] && exit 0
id=$(client_id)
import_certificates
import_bridge "$id"
# without a local password the appliance is unusable: fail (visible, retried next boot)
local_password "$id" || exit 1
chown root:edgemq "$ETC/passwd" "$CONF" 2>/dev/null
chmod 0640 "$ETC/passwd" "$CONF" 2>/dev/null
[ -d "$BOOT" ] && echo "edgemq: log in and read /root/edgemq-credentials.txt for the local MQTT password" > "$BOOT/README.txt" 2>/dev/null
date -u +%FT%TZ > "$DONE"
exit 0
