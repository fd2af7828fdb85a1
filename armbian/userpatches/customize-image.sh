#!/bin/bash
# Armbian build framework hook (userpatches/customize-image.sh), run inside the image chroot:
#   customize-image.sh RELEASE LINUXFAMILY BOARD BUILD_DESKTOP
# Installs the edgemq .deb from userpatches/overlay (mounted at /tmp/overlay), enables the
# service and its first-boot unit. Put there: edgemq_<version>_<arch>.deb (scripts/build-deb.sh),
# and optionally overlay/boot-edgemq/ (bridge.toml, certificates) to preseed /boot/edgemq.
# OVERLAY can point elsewhere (tests).
set -euo pipefail

RELEASE=${1:-}
BOARD=${3:-}
OVERLAY=${OVERLAY:-/tmp/overlay}
ARCH=$(dpkg --print-architecture)

log() { echo "[edgemq customize-image] $*"; }
log "release=${RELEASE:-?} board=${BOARD:-?} arch=$ARCH"

deb=$(ls -1 "$OVERLAY"/edgemq_*_"$ARCH".deb 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$deb" ]; then
	log "no edgemq_*_$ARCH.deb in $OVERLAY (build it with scripts/build-deb.sh)"
	exit 1
fi
log "installing $(basename "$deb")"
# the postinst creates the user and enables edgemq.service; it does not start anything in a chroot
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" ||
	DEBIAN_FRONTEND=noninteractive apt-get -y -q -f install

systemctl enable edgemq.service
systemctl enable edgemq-firstboot.service

if [ -d "$OVERLAY/boot-edgemq" ]; then
	install -d -m 0700 /boot/edgemq
	cp -a "$OVERLAY/boot-edgemq/." /boot/edgemq/
	log "preseeded /boot/edgemq: $(ls /boot/edgemq | tr '\n' ' ')"
fi
# a place for the user to drop bridge.toml and certificates before the first boot
install -d /boot/edgemq
[ -e /boot/edgemq/README.txt ] || cat > /boot/edgemq/README.txt <<'TXT'
edgemq: put bridge.toml (a [[bridge]] section, client_id = "@CLIENT_ID@" or none) and
certificate files (*.crt, *.pem, *.key) here before the first boot; they are taken in once.
TXT
log "done"
