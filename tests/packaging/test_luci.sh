#!/usr/bin/env bash
# luci-app-edgemq: the view edits exactly the UCI schema (UCI.md and the loader's table, both
# ways), edgemq check accepts what it writes, the JS parses, menu.d/acl.d are valid and agree
# with the rpcd status plugin, which returns JSON from `edgemq status`.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
echo "LuCI app (openwrt-package/luci-app-edgemq)"
need python3 || finish
LUCI=$ROOT/openwrt-package/luci-app-edgemq
JS=$LUCI/htdocs/luci-static/resources/view/edgemq/config.js
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

args=()
if BIN=$(find_binary) && need openssl; then args=(--binary "$BIN"); else echo "  note: not running edgemq check on what LuCI writes (no binary or no openssl)"; fi
if python3 "$ROOT/tests/packaging/check_luci.py" "${args[@]}" > "$T/out" 2>&1; then
	ok "view <-> UCI schema <-> loader, and edgemq check accepts every field ($(tail -1 "$T/out"))"
else
	not_ok "view vs schema:"; sed 's/^/      /' "$T/out"
fi
# the checker must notice a missing and a misspelt option
sed "/'tls13_only'/d; s/'queue_max_age'/'queue_maxage'/" "$JS" > "$T/mut.js"
python3 "$ROOT/tests/packaging/check_luci.py" "$T/mut.js" > "$T/mut" 2>&1
check "checker catches a missing and a misspelt option" sh -c \
	"grep -q \"option 'tls13_only' has no LuCI field\" '$T/mut' && grep -q \"edits option 'queue_maxage'\" '$T/mut'"

if need node; then
	# LuCI views are function bodies (top-level `return view.extend(...)`)
	check "config.js parses as JavaScript" node -e \
		'new Function(require("fs").readFileSync(process.argv[1], "utf8"))' "$JS"
fi
for f in "$LUCI"/root/usr/share/luci/menu.d/*.json "$LUCI"/root/usr/share/rpcd/acl.d/*.json; do
	check "$(basename "$(dirname "$f")")/$(basename "$f") is valid JSON" python3 -m json.tool "$f" >/dev/null
done
check "menu entry points at view edgemq/config, which exists" python3 - "$LUCI" <<'P'
import json, sys, pathlib
root = pathlib.Path(sys.argv[1])
menu = json.load(open(root / "root/usr/share/luci/menu.d/luci-app-edgemq.json"))
entry = menu["admin/services/edgemq"]
assert entry["action"]["type"] == "view"
assert (root / "htdocs/luci-static/resources/view" / (entry["action"]["path"] + ".js")).exists()
assert "luci-app-edgemq" in entry["depends"]["acl"]
P
check "acl grants uci edgemq and ubus edgemq.status, the object the view calls" python3 - "$LUCI" "$JS" <<'P'
import json, re, sys, pathlib
acl = json.load(open(pathlib.Path(sys.argv[1]) / "root/usr/share/rpcd/acl.d/luci-app-edgemq.json"))["luci-app-edgemq"]
assert "edgemq" in acl["read"]["uci"] and "edgemq" in acl["write"]["uci"]
js = open(sys.argv[2]).read()
obj = re.search(r"object:\s*'(\w+)'", js).group(1); meth = re.search(r"method:\s*'(\w+)'", js).group(1)
assert meth in acl["read"]["ubus"][obj], (obj, meth)
P

# the rpcd plugin, with jshn and edgemq stubbed
cat > "$T/edgemq" <<'F'
#!/bin/sh
echo "bridge central: connected since 2026-01-01T00:00:00Z, queue 3 msgs / 420 B, oldest 2s \"q\""
F
chmod +x "$T/edgemq"
sed -e "s|/usr/share/libubox/jshn.sh|$ROOT/tests/packaging/stubs/usr/share/libubox/jshn.sh|" \
    -e "s|/usr/bin/edgemq|$T/edgemq|" "$ROOT/openwrt-package/edgemq/files/edgemq.rpcd" > "$T/rpcd"
check "rpcd plugin lists method status" sh -c "sh '$T/rpcd' list | python3 -c 'import json,sys; assert \"status\" in json.load(sys.stdin)'"
check "rpcd plugin status returns edgemq status output as JSON" sh -c \
	"echo '{}' | sh '$T/rpcd' call status | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r[\"code\"]==0 and \"queue 3 msgs\" in r[\"output\"], r'"
finish
