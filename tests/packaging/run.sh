#!/usr/bin/env bash
# Packaging tests (issue 5). Fast set by default; --all adds the slow ones:
#   test_image.sh  (customize-image.sh in a debootstrap'd chroot; minutes the first time)
#   cross_armv7.sh (armv7 musl cross build + qemu round trip and bridge test; minutes)
# Uses the newer of target/release/edgemq and target/debug/edgemq (or $EDGEMQ_BIN); builds debug if none.
# With CI=true a missing tool is a failure, not a skip.
set -uo pipefail
DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$DIR/../.." && pwd)
if [ -z "${EDGEMQ_BIN:-}" ] && [ ! -x "$ROOT/target/release/edgemq" ] && [ ! -x "$ROOT/target/debug/edgemq" ]; then
	(cd "$ROOT" && cargo build --bin edgemq) || exit 1
fi
tests="test_procd.sh test_uci_defaults.sh test_luci.sh test_ipk.sh test_configs.sh test_deb.sh"
[ "${1:-}" = --all ] && tests="$tests test_image.sh cross_armv7.sh"
failed=""
for t in $tests; do
	echo "== $t"
	"$DIR/$t" || failed="$failed $t"
done
if [ -n "$failed" ]; then
	echo "packaging tests FAILED:$failed"
	exit 1
fi
echo "packaging tests passed"
