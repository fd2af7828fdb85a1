#!/bin/sh
# Bake edgemq and luci-app-edgemq into an OpenWRT firmware image with the Image Builder.
#
#   1. Download and unpack the Image Builder for your target, e.g. for MT7621:
#        https://downloads.openwrt.org/releases/<ver>/targets/ramips/mt7621/openwrt-imagebuilder-*.tar.zst
#   2. Build the ipks (scripts/build-ipk.sh BINARY OPKG_ARCH, e.g. mipsel_24kc for MT7621,
#      arm_cortex-a7_neon-vfpv4 for ipq40xx, aarch64_cortex-a53 for filogic), or the feed package
#      with the SDK.
#   3. Run this script inside the Image Builder directory:
#        /path/to/edgemq/openwrt-package/imagebuilder/build-image.sh PROFILE IPK_DIR
#      e.g. build-image.sh xiaomi_mi-router-4a-gigabit ~/edgemq/target/ipk
# The image then contains the broker, LuCI (Services > edgemq MQTT broker), and the files/
# overlay: a uci-defaults script that sets the broker's first-boot options of this image
# (a bridge preset read from files/etc/edgemq-preset/bridge, if you put one there).
set -eu

PROFILE=${1:?usage: build-image.sh PROFILE IPK_DIR}
IPKS=${2:?usage: build-image.sh PROFILE IPK_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)

[ -f ./Makefile ] && grep -q 'image:' ./Makefile ||
	{ echo "run this inside an unpacked OpenWRT Image Builder" >&2; exit 1; }

# local ipks become a package source of the Image Builder (its packages/ directory)
mkdir -p packages
cp "$IPKS"/edgemq_*.ipk "$IPKS"/luci-app-edgemq_*.ipk packages/

make image PROFILE="$PROFILE" \
	PACKAGES="edgemq luci-app-edgemq luci-ssl" \
	FILES="$HERE/files"
ls -1 bin/targets/*/*/*sysupgrade* 2>/dev/null || true
