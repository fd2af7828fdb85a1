#!/usr/bin/env bash
# Build edgemq .ipk packages for opkg from an already built binary, without the OpenWRT SDK.
#   scripts/build-ipk.sh BINARY OPKG_ARCH [OUTDIR]
#   e.g. scripts/build-ipk.sh target/cross/mipsel-unknown-linux-musl/release/edgemq mipsel_24kc
# Produces edgemq_<ver>_<arch>.ipk (binary, /etc/config/edgemq, procd init, uci-defaults, keep.d,
# rpcd status plugin) and luci-app-edgemq_<ver>_all.ipk. An ipk holds debian-binary ("2.0"),
# control.tar.gz and data.tar.gz. The outer archive is an ar archive by default (the classic
# ipk, as `ar t` lists it); OpenWRT's ipkg-build writes a gzipped tar instead (IPK_FORMAT=tar);
# opkg reads both.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:?usage: build-ipk.sh BINARY OPKG_ARCH [OUTDIR]}
PARCH=${2:?usage: build-ipk.sh BINARY OPKG_ARCH [OUTDIR]}
OUT=${3:-$ROOT/target/ipk}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)-1
FORMAT=${IPK_FORMAT:-ar}
OWRT=$ROOT/openwrt-package
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# shellcheck source=lib/strip.sh
. "$(dirname "$0")/lib/strip.sh"
mkdir -p "$OUT"

# pack <name> <arch> <dir with data/ and control/>: deterministic, root-owned tarballs
pack() {
	local name=$1 arch=$2 d=$3 ipk="$OUT/${1}_${VERSION}_${2}.ipk"
	local taropts=(--numeric-owner --owner=0 --group=0 --sort=name --mtime=@0)
	echo "2.0" > "$d/debian-binary"
	tar -C "$d/control" "${taropts[@]}" -czf "$d/control.tar.gz" .
	tar -C "$d/data" "${taropts[@]}" -czf "$d/data.tar.gz" .
	rm -f "$ipk"
	if [ "$FORMAT" = tar ]; then
		tar -C "$d" "${taropts[@]}" -czf "$ipk" ./debian-binary ./control.tar.gz ./data.tar.gz
	else
		(cd "$d" && ar -rcD "$ipk" debian-binary control.tar.gz data.tar.gz)
	fi
	echo "$ipk"
}

control() {  # control <name> <arch> <depends> <description> <installed size>
	cat <<C
Package: $1
Version: $VERSION
Depends: $3
Source: openwrt-package/$1
License: Apache-2.0
Section: net
Architecture: $2
Installed-Size: $5
Description: $4
C
}

# ---- edgemq
E=$W/edgemq
install -d "$E/control" "$E/data/usr/bin" "$E/data/etc/config" "$E/data/etc/init.d" \
	"$E/data/etc/uci-defaults" "$E/data/lib/upgrade/keep.d" "$E/data/usr/libexec/rpcd" "$E/data/etc/edgemq"
stripped_copy "$BIN" "$W/edgemq.bin"
install -m 0755 "$W/edgemq.bin" "$E/data/usr/bin/edgemq"
install -m 0600 "$OWRT/edgemq/files/edgemq.config" "$E/data/etc/config/edgemq"
install -m 0755 "$ROOT/init/edgemq.procd" "$E/data/etc/init.d/edgemq"
install -m 0755 "$OWRT/edgemq/files/edgemq.uci-defaults" "$E/data/etc/uci-defaults/90-edgemq"
install -m 0644 "$OWRT/edgemq/files/edgemq.keep" "$E/data/lib/upgrade/keep.d/edgemq"
install -m 0755 "$OWRT/edgemq/files/edgemq.rpcd" "$E/data/usr/libexec/rpcd/edgemq"
control edgemq "$PARCH" "libc, ca-bundle" "Lightweight MQTT broker with a store-and-forward bridge" \
	"$(du -sb "$E/data" | cut -f1)" > "$E/control/control"
echo /etc/config/edgemq > "$E/control/conffiles"
# what the SDK's USERID:= and default_postinst do: create the user, run uci-defaults, enable
cat > "$E/control/postinst" <<'S'
#!/bin/sh
# opkg: create user/group edgemq, then on a live system run uci-defaults and enable the service
if ! grep -q '^edgemq:' "${IPKG_INSTROOT}/etc/group"; then
	echo 'edgemq:x:1883:' >> "${IPKG_INSTROOT}/etc/group"
fi
if ! grep -q '^edgemq:' "${IPKG_INSTROOT}/etc/passwd"; then
	echo 'edgemq:x:1883:1883:edgemq:/var/lib/edgemq:/bin/false' >> "${IPKG_INSTROOT}/etc/passwd"
	[ -f "${IPKG_INSTROOT}/etc/shadow" ] && echo 'edgemq:*:0:0:99999:7:::' >> "${IPKG_INSTROOT}/etc/shadow"
fi
[ -n "${IPKG_INSTROOT}" ] && exit 0
( . /etc/uci-defaults/90-edgemq ) && rm -f /etc/uci-defaults/90-edgemq
/etc/init.d/edgemq enable
/etc/init.d/rpcd reload 2>/dev/null
/etc/init.d/edgemq start
exit 0
S
cat > "$E/control/prerm" <<'S'
#!/bin/sh
[ -n "${IPKG_INSTROOT}" ] && exit 0
/etc/init.d/edgemq stop
/etc/init.d/edgemq disable
exit 0
S
chmod 0755 "$E/control/postinst" "$E/control/prerm"
pack edgemq "$PARCH" "$E"

# ---- luci-app-edgemq (architecture independent)
L=$W/luci
install -d "$L/control" "$L/data"
install -d "$L/data/www"
cp -a "$OWRT/luci-app-edgemq/htdocs/." "$L/data/www/"
cp -a "$OWRT/luci-app-edgemq/root/." "$L/data/"
control luci-app-edgemq all "libc, edgemq, luci-base" "LuCI support for the edgemq MQTT broker" \
	"$(du -sb "$L/data" | cut -f1)" > "$L/control/control"
cat > "$L/control/postinst" <<'S'
#!/bin/sh
[ -n "${IPKG_INSTROOT}" ] && exit 0
rm -f /tmp/luci-indexcache* /tmp/luci-modulecache/* 2>/dev/null
/etc/init.d/rpcd reload 2>/dev/null
exit 0
S
chmod 0755 "$L/control/postinst"
pack luci-app-edgemq all "$L"
