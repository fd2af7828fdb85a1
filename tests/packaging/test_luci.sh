#!/usr/bin/env bash
# luci-app-edgemq: the view edits exactly the UCI schema (UCI.md and the loader's table, both
# ways), edgemq check accepts what it writes, the JS parses, menu.d/acl.d are valid and agree
# with the rpcd status plugin, which returns `edgemq status --json` of a real daemon, and the
# view renders that answer as a table.
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
	check "$(basename "$(dirname "$f")")/$(basename "$f") is valid JSON" sh -c 'python3 -m json.tool "$1" >/dev/null' _ "$f"
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

# The rpcd plugin (jshn stubbed) runs the real `edgemq status --json` against a real daemon
# whose bridge points at a closed port, and the view renders its answer (under node).
BIN=$(find_binary) || { not_ok "no edgemq binary for the rpcd plugin test"; finish; }
PORT=$(free_port); CLOSED=$(free_port)
cat > "$T/edgemq.toml" <<F
data_dir = "$T/data"
[[listener]]
bind = "127.0.0.1:$PORT"
allow_anonymous = true
[[bridge]]
name = "central"
addresses = ["127.0.0.1:$CLOSED"]
client_id = "GW-LUCI"
[[bridge.topic]]
pattern = "meters/#"
direction = "out"
qos = 1
F
sed -e "s|/usr/share/libubox/jshn.sh|$ROOT/tests/packaging/stubs/usr/share/libubox/jshn.sh|" \
    -e "s|/usr/bin/edgemq|$BIN|" -e "s|/etc/config/edgemq|$T/edgemq.toml|" \
    "$ROOT/openwrt-package/edgemq/files/edgemq.rpcd" > "$T/rpcd"
check "rpcd plugin lists method status" sh -c "sh '$T/rpcd' list | python3 -c 'import json,sys; assert \"status\" in json.load(sys.stdin)'"
"$BIN" run -c "$T/edgemq.toml" 2> "$T/daemon.log" &
DAEMON_PID=$!
trap 'kill -KILL "$DAEMON_PID" 2>/dev/null; rm -rf "$T"' EXIT
if wait_port "$PORT" "$DAEMON_PID"; then
	queued=0
	if need mosquitto_pub; then
		for i in 1 2 3; do mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t meters/power -m "$i"; done
		queued=3
	fi
	echo '{}' | sh "$T/rpcd" call status > "$T/status.json"
	check "rpcd plugin status returns the daemon's JSON: bridge central, disconnected, $queued queued" \
		python3 - "$T/status.json" "$CLOSED" "$queued" <<'P'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["code"] == 0 and "error" not in r, r
b = r["status"]["bridges"]
assert [x["name"] for x in b] == ["central"], b
b = b[0]
assert b["connected"] is False and b["address"] == "127.0.0.1:" + sys.argv[2], b
assert b["last_error"] and b["queue_messages"] == int(sys.argv[3]), b
P
	if need node; then
		node "$ROOT/tests/packaging/render_luci_status.js" "$JS" < "$T/status.json" > "$T/view.txt" 2>&1
		check "the view renders one table row for bridge central, disconnected, $queued messages" \
			grep -q "^tr(tr): central | disconnected (last address 127.0.0.1:$CLOSED) since .* ago: .* | $queued messages, " "$T/view.txt"
		check "the view has a header row and no warning" sh -c \
			"grep -q '^tr(tr table-titles): Bridge | State | Queued | Oldest' '$T/view.txt' && ! grep -q warning '$T/view.txt'"
	fi
	kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"
	check "daemon stopped cleanly" test $? -eq 0
else
	not_ok "daemon did not start:"; sed 's/^/      /' "$T/daemon.log"
	kill -KILL "$DAEMON_PID" 2>/dev/null
fi
echo '{}' | sh "$T/rpcd" call status > "$T/down.json"
check "rpcd plugin without a daemon: code 2 and an error saying it is not running" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["code"] == 2 and "not running" in r["error"] and "status" not in r, r' "$T/down.json"
if need node; then
	node "$ROOT/tests/packaging/render_luci_status.js" "$JS" < "$T/down.json" > "$T/view.txt" 2>&1
	check "the view says the daemon is not running" \
		grep -q "^p(alert-message warning): edgemq is not running, or did not answer: .*not running" "$T/view.txt"
fi
finish
