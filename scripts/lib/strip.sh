# shellcheck shell=bash
# Sourced by scripts/build-deb.sh and scripts/build-ipk.sh.

# A stripped copy of the binary (packages ship without debug info; a debug build is 10x larger).
# The strip tool must match the binary's architecture; without one the binary goes in as it is.
stripped_copy() {  # stripped_copy BINARY DEST
	local info tool
	info=$(file -bL "$1")
	case "$info" in
		*x86-64*) tool=strip ;;
		*aarch64*) tool=aarch64-linux-gnu-strip ;;
		*ARM*) tool=arm-linux-gnueabihf-strip ;;
		*MIPS*) tool=mipsel-linux-gnu-strip ;;
		*) tool="" ;;
	esac
	case "$info" in
		*", stripped"*) cp "$1" "$2" ;;
		*) if [ -n "$tool" ] && command -v "$tool" >/dev/null 2>&1; then
			"$tool" -o "$2" "$1"
		   else
			echo "note: no $tool, packaging $1 unstripped" >&2
			cp "$1" "$2"
		   fi ;;
	esac
}
