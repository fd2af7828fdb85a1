# Stub of libubox's jshn.sh (flat objects only): json_init, json_add_string/int/boolean, json_dump.
_JSON_ITEMS=""
json_init() { _JSON_ITEMS=""; }
_json_add() { _JSON_ITEMS="${_JSON_ITEMS:+$_JSON_ITEMS, }$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"): $2"; }
json_add_string() { _json_add "$1" "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$2")"; }
json_add_int() { _json_add "$1" "$(($2))"; }
json_add_boolean() { if [ "$2" = 1 ]; then _json_add "$1" true; else _json_add "$1" false; fi; }
json_dump() { echo "{ $_JSON_ITEMS }"; }
