#!/usr/bin/env bash
# scripts/build-ipk.sh: build the edgemq and luci-app-edgemq ipks from a built binary (no SDK)
# and check their structure the way opkg reads them (ar members, control fields, data paths).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
echo "ipk packages (scripts/build-ipk.sh)"
need ar tar || finish
BIN=$(find_binary) || { not_ok "no edgemq binary (cargo build first, or set EDGEMQ_BIN)"; finish; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

"$ROOT/scripts/build-ipk.sh" "$BIN" x86_64 "$T" > "$T/list" 2> "$T/err" || { not_ok "build-ipk.sh: $(cat "$T/err")"; finish; }
IPK=$(grep '/edgemq_' "$T/list")
LUCI=$(grep '/luci-app-edgemq_' "$T/list")
check "edgemq ipk built" [ -s "$IPK" ]
check "luci-app-edgemq ipk built (arch all)" sh -c "echo '$LUCI' | grep -q '_all.ipk\$'"

for p in "$IPK" "$LUCI"; do
	n=$(basename "$p")
	check "$n: ar members are debian-binary, control.tar.gz, data.tar.gz (in that order)" \
		[ "$(ar t "$p" | tr '\n' ' ')" = "debian-binary control.tar.gz data.tar.gz " ]
	check "$n: debian-binary is 2.0" [ "$(ar p "$p" debian-binary)" = "2.0" ]
	check "$n: control.tar.gz holds ./control" sh -c "ar p '$p' control.tar.gz | tar tz | grep -qx './control'"
	check "$n: data is root-owned" sh -c "! ar p '$p' data.tar.gz | tar tvz | awk '{print \$2}' | grep -vq '^0/0\$'"
done

ctl=$(ar p "$IPK" control.tar.gz | tar xzO ./control)
for field in "Package: edgemq" "Architecture: x86_64" "Version: " "Depends: " "Installed-Size: "; do
	check "control has '$field'" grep -q "^$field" <<< "$ctl"
done
data=$(ar p "$IPK" data.tar.gz | tar tz)
for f in ./usr/bin/edgemq ./etc/config/edgemq ./etc/init.d/edgemq ./etc/uci-defaults/90-edgemq \
         ./lib/upgrade/keep.d/edgemq ./usr/libexec/rpcd/edgemq; do
	check "edgemq ipk contains $f" grep -qx "$f" <<< "$data"
done
check "conffiles lists /etc/config/edgemq" sh -c "ar p '$IPK' control.tar.gz | tar xzO ./conffiles | grep -qx /etc/config/edgemq"
check "postinst creates user edgemq" sh -c "ar p '$IPK' control.tar.gz | tar xzO ./postinst | grep -q 'edgemq:x:'"
check "init script is init/edgemq.procd" cmp -s <(ar p "$IPK" data.tar.gz | tar xzO ./etc/init.d/edgemq) "$ROOT/init/edgemq.procd"
check "init script is executable" sh -c "ar p '$IPK' data.tar.gz | tar tvz ./etc/init.d/edgemq | grep -q '^-rwx'"
check "binary is the one given, stripped" sh -c "ar p '$IPK' data.tar.gz | tar xzO ./usr/bin/edgemq > '$T/bin' && chmod +x '$T/bin' && '$T/bin' --version | grep -q ^edgemq && file '$T/bin' | grep -q ', stripped'"

ldata=$(ar p "$LUCI" data.tar.gz | tar tz)
for f in ./www/luci-static/resources/view/edgemq/config.js ./usr/share/luci/menu.d/luci-app-edgemq.json \
         ./usr/share/rpcd/acl.d/luci-app-edgemq.json; do
	check "luci ipk contains $f" grep -qx "$f" <<< "$ldata"
done

IPK_FORMAT=tar "$ROOT/scripts/build-ipk.sh" "$BIN" x86_64 "$T/tar" > /dev/null 2>&1
check "IPK_FORMAT=tar: outer gzipped tar of the same three members" sh -c \
	"tar tzf '$T/tar/$(basename "$IPK")' | sort | tr '\n' ' ' | grep -qx './control.tar.gz ./data.tar.gz ./debian-binary '"
finish
