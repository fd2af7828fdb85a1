#!/usr/bin/env bash
# The Armbian image customisation, the way the Armbian build framework runs it: build the .deb,
# put it in an overlay, run armbian/userpatches/customize-image.sh inside a debootstrap'd Debian
# bookworm chroot, check the result (package, user, enabled units), then run the first-boot
# script in the chroot with a /boot/edgemq/bridge.toml and certificate and check what it took in.
# Slow the first time (debootstrap, ~2-5 min; cached as a tarball in $CHROOT_CACHE), then seconds.
# Needs root and access to the Debian mirror apt uses.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
echo "Armbian image customisation (customize-image.sh in a debootstrap chroot)"
[ "$(id -u)" = 0 ] || { echo "  skip: needs root"; [ "${CI:-}" = true ] && exit 1; exit 0; }
need debootstrap dpkg-deb || finish
BIN=$(find_binary) || { not_ok "no edgemq binary"; finish; }
CACHE=${CHROOT_CACHE:-/var/cache/edgemq-test/bookworm-minbase.tar.gz}
MIRROR=$(grep -h -m1 -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}')
MIRROR=${MIRROR:-http://deb.debian.org/debian}
T=$(mktemp -d)
C=$T/chroot
cleanup() {
	for m in "$C/proc" "$C/dev" ; do mountpoint -q "$m" && umount -l "$m"; done
	rm -rf "$T"
}
trap cleanup EXIT

if [ ! -s "$CACHE" ]; then
	echo "  debootstrap bookworm (first run; cached in $CACHE)"
	mkdir -p "$(dirname "$CACHE")" "$T/boot"
	if ! debootstrap --variant=minbase --include=adduser,systemd,systemd-sysv bookworm "$T/boot" "$MIRROR" > "$T/debootstrap.log" 2>&1; then
		not_ok "debootstrap: $(tail -3 "$T/debootstrap.log" | tr '\n' ' ')"; finish
	fi
	tar -C "$T/boot" -czf "$CACHE" . && rm -rf "$T/boot"
fi
mkdir -p "$C" && tar -C "$C" -xzf "$CACHE"
mount -t proc proc "$C/proc"

# the overlay Armbian mounts at /tmp/overlay: the .deb, and a preseed for /boot/edgemq
OV=$C/tmp/overlay
mkdir -p "$OV/boot-edgemq"
DEB=$("$ROOT/scripts/build-deb.sh" "$BIN" "$OV") || { not_ok "build-deb.sh"; finish; }
cat > "$OV/boot-edgemq/bridge.toml" <<'B'
[[bridge]]
name = "central"
addresses = ["mqtt.example.com:8883"]
[bridge.tls]
ca = "/etc/edgemq/central-ca.pem"
[[bridge.topic]]
pattern = "meters/#"
direction = "out"
qos = 1
B
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=test-ca -days 2 \
	-keyout "$OV/boot-edgemq/device.key" -out "$OV/boot-edgemq/central-ca.pem" 2>/dev/null
cp "$ROOT/armbian/userpatches/customize-image.sh" "$C/tmp/customize-image.sh"

if chroot "$C" /bin/bash /tmp/customize-image.sh bookworm sunxi orangepizero no > "$T/customize.log" 2>&1; then
	ok "customize-image.sh ran in the chroot"
else
	not_ok "customize-image.sh: $(tail -5 "$T/customize.log" | tr '\n' ' ')"; finish
fi
check "edgemq installed" sh -c "chroot '$C' dpkg-query -W -f='\${Status}' edgemq | grep -q \"install ok installed\""
check "user edgemq exists in the image" sh -c "chroot '$C' getent passwd edgemq >/dev/null"
check "edgemq.service enabled" test -L "$C/etc/systemd/system/multi-user.target.wants/edgemq.service"
check "edgemq-firstboot.service enabled" test -L "$C/etc/systemd/system/multi-user.target.wants/edgemq-firstboot.service"
check "/boot/edgemq preseeded" test -f "$C/boot/edgemq/bridge.toml"
started_in_chroot() {
	local p
	for p in $(pgrep -x edgemq); do [ "$(readlink "/proc/$p/root")" = "$C" ] && return 0; done
	return 1
}
if started_in_chroot; then not_ok "a daemon was started in the chroot"; else ok "no daemon was started in the chroot"; fi

# first boot, run by hand in the chroot (systemd is not running there)
echo "0123456789abcdef0123456789abcdef" > "$C/etc/machine-id"
if chroot "$C" /usr/lib/edgemq/firstboot.sh > "$T/firstboot.log" 2>&1; then
	ok "first-boot script ran"
else
	not_ok "first-boot script: $(tail -3 "$T/firstboot.log" | tr '\n' ' ')"
fi
check "client id generated from machine-id" grep -qx "edgemq-012345" "$C/etc/edgemq/client-id"
check "bridge.toml taken in with the client id" sh -c \
	"grep -q 'name = \"central\"' '$C/etc/edgemq/edgemq.toml' && grep -q 'client_id = \"edgemq-012345\"' '$C/etc/edgemq/edgemq.toml'"
check "bridge.toml marked imported" test -f "$C/boot/edgemq/bridge.toml.imported"
check "certificate copied to /etc/edgemq" test -f "$C/etc/edgemq/central-ca.pem"
check "private key removed from /boot" test ! -e "$C/boot/edgemq/device.key"
check "private key in /etc/edgemq, not world-readable" sh -c "[ \"\$(stat -c %a '$C/etc/edgemq/device.key')\" = 640 ]"
check "local user in the password file" grep -q '^local:' "$C/etc/edgemq/passwd"
check "credentials only readable by root" sh -c "[ \"\$(stat -c %a '$C/root/edgemq-credentials.txt')\" = 600 ]"
check "resulting config passes edgemq check" chroot "$C" sh -c "/usr/bin/edgemq check -c /etc/edgemq/edgemq.toml >/dev/null"
check "first boot marked done" test -f "$C/etc/edgemq/.firstboot-done"
before=$(md5sum < "$C/etc/edgemq/edgemq.toml")
chroot "$C" /usr/lib/edgemq/firstboot.sh >/dev/null 2>&1
check "second run changes nothing" [ "$before" = "$(md5sum < "$C/etc/edgemq/edgemq.toml")" ]

# an invalid bridge.toml on a later first boot (e.g. a re-flashed card) is refused, config kept
rm -f "$C/etc/edgemq/.firstboot-done"
printf '[[bridge]]\nname = "bad"\naddresses = ["nohost"]\n' > "$C/boot/edgemq/bridge.toml"
before=$(md5sum < "$C/etc/edgemq/edgemq.toml")
chroot "$C" /usr/lib/edgemq/firstboot.sh > "$T/firstboot2.log" 2>&1
check "invalid bridge.toml: config left as it was" [ "$before" = "$(md5sum < "$C/etc/edgemq/edgemq.toml")" ]
check "invalid bridge.toml: errors written next to it" test -s "$C/boot/edgemq/bridge.toml.errors"
check "invalid bridge.toml: stays in place for the user to fix" test -f "$C/boot/edgemq/bridge.toml"
finish
