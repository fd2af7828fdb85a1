#!/usr/bin/env bash
# Build the edgemq .deb (Debian/Armbian) with dpkg-deb from an already built binary.
#   scripts/build-deb.sh [BINARY] [OUTDIR]
# BINARY: default the newer of target/release/edgemq and target/debug/edgemq.
# DEB_COMPRESS=gzip: faster (tests). The architecture comes from the binary (x86-64 amd64,
# ARM armhf, aarch64 arm64) unless ARCH is set.
# The layout: /usr/bin/edgemq, /etc/edgemq/edgemq.toml (conffile), /lib/systemd/system/
# edgemq.service + edgemq-firstboot.service, /usr/lib/edgemq/firstboot.sh, /etc/init.d/edgemq.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-}
OUT=${2:-$ROOT/target/deb}
[ -n "$BIN" ] || BIN=$(ls -t "$ROOT/target/release/edgemq" "$ROOT/target/debug/edgemq" 2>/dev/null | head -1 || true)
[ -n "$BIN" ] && [ -x "$BIN" ] || { echo "build-deb: no edgemq binary (cargo build --release first)" >&2; exit 1; }

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
info=$(file -bL "$BIN")
if [ -z "${ARCH:-}" ]; then
	case "$info" in
		*x86-64*) ARCH=amd64 ;;
		*aarch64*|*ARM\ aarch64*) ARCH=arm64 ;;
		*ARM*) ARCH=armhf ;;
		*MIPS*) ARCH=mipsel ;;
		*) echo "build-deb: cannot tell the architecture of $BIN ($info); set ARCH" >&2; exit 1 ;;
	esac
fi
# The glibc the binary needs: its newest versioned symbol reference (readelf reads
# any architecture); GLIBC_ABI_DT_RELR (packed relocations, build.rs) means 2.36.
glibc_needed() {
	local v
	v=$(readelf -V --wide "$1" | grep -o 'Name: GLIBC_2\.[0-9]*' | sed 's/Name: GLIBC_//' | sort -uV | tail -1)
	if readelf -V --wide "$1" | grep -q 'Name: GLIBC_ABI_DT_RELR'; then
		v=$(printf '%s\n2.36\n' "$v" | sort -V | tail -1)
	fi
	echo "$v"
}
DEPENDS=""
case "$info" in *dynamically*) DEPENDS=", libc6 (>= $(glibc_needed "$BIN")), libgcc-s1" ;; esac

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# shellcheck source=lib/strip.sh
. "$(dirname "$0")/lib/strip.sh"
P=$W/pkg
install -d "$P/DEBIAN" "$P/usr/bin" "$P/etc/edgemq" "$P/etc/init.d" "$P/lib/systemd/system" \
	"$P/usr/lib/edgemq" "$P/usr/share/doc/edgemq"
stripped_copy "$BIN" "$W/edgemq"
install -m 0755 "$W/edgemq" "$P/usr/bin/edgemq"
install -m 0640 "$ROOT/armbian/edgemq.toml" "$P/etc/edgemq/edgemq.toml"
install -m 0755 "$ROOT/init/edgemq.sysv" "$P/etc/init.d/edgemq"
install -m 0644 "$ROOT/init/edgemq.service" "$P/lib/systemd/system/edgemq.service"
install -m 0644 "$ROOT/armbian/firstboot/edgemq-firstboot.service" "$P/lib/systemd/system/"
install -m 0755 "$ROOT/armbian/firstboot/firstboot.sh" "$P/usr/lib/edgemq/firstboot.sh"
[ -f "$ROOT/README.md" ] && install -m 0644 "$ROOT/README.md" "$P/usr/share/doc/edgemq/README.md"
cat > "$P/usr/share/doc/edgemq/copyright" <<C
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: edgemq
Files: *
License: Apache-2.0
 On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.
C
install -m 0755 "$ROOT/armbian/debian/postinst" "$ROOT/armbian/debian/prerm" \
	"$ROOT/armbian/debian/postrm" "$P/DEBIAN/"
install -m 0644 "$ROOT/armbian/debian/conffiles" "$P/DEBIAN/conffiles"
SIZE=$(du -sk --exclude=DEBIAN "$P" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" -e "s/@DEPENDS@/$DEPENDS/" \
	"$ROOT/armbian/debian/control.in" > "$P/DEBIAN/control"
(cd "$P" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | sort | xargs md5sum) > "$P/DEBIAN/md5sums"

mkdir -p "$OUT"
DEB=$OUT/edgemq_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group "-Z${DEB_COMPRESS:-xz}" ${DEB_COMPRESS:+-z1} --build "$P" "$DEB" >/dev/null
echo "$DEB"
