# Stub of OpenWRT's /lib/functions.sh: the UCI config_* API an init script uses.
# UCI files are valid shell (`config TYPE 'name'`, `option k 'v'`, `list k 'v'`), so
# config_load sources the file with config/option/list defined as callbacks that store
# CONFIG_<section>_<option>, which is what the real functions.sh does with `uci export`.
# Set UCI_CONFIG_DIR to the directory holding the config files.

CONFIG_SECTIONS=""
CONFIG_NUM_SECTIONS=0
CONFIG_SECTION=""

config() {
	local type="$1" name="$2"
	CONFIG_NUM_SECTIONS=$((CONFIG_NUM_SECTIONS + 1))
	[ -n "$name" ] || name="cfg$CONFIG_NUM_SECTIONS"
	CONFIG_SECTION="$name"
	CONFIG_SECTIONS="$CONFIG_SECTIONS $name"
	eval "CONFIG_${name}_TYPE=\$type"
}

option() {
	local varname="$1"; shift
	eval "CONFIG_${CONFIG_SECTION}_${varname}=\$*"
}

list() {
	local varname="$1"; shift
	local len
	eval "len=\${CONFIG_${CONFIG_SECTION}_${varname}_LENGTH:-0}"
	len=$((len + 1))
	eval "CONFIG_${CONFIG_SECTION}_${varname}_ITEM${len}=\$*"
	eval "CONFIG_${CONFIG_SECTION}_${varname}_LENGTH=$len"
	eval "CONFIG_${CONFIG_SECTION}_${varname}=\"\${CONFIG_${CONFIG_SECTION}_${varname}:+\${CONFIG_${CONFIG_SECTION}_${varname}} }\$*\""
}

config_load() {
	local file="${UCI_CONFIG_DIR:-/etc/config}/$1"
	CONFIG_SECTIONS=""
	CONFIG_NUM_SECTIONS=0
	[ -f "$file" ] || return 1
	. "$file"
}

config_get() {
	case "$3" in
		"") eval echo "\"\${CONFIG_${1}_${2}:-\${4}}\"" ;;
		*)  eval "${1}=\${CONFIG_${2}_${3}:-\${4}}" ;;
	esac
}

get_bool() {
	local _tmp="$1"
	case "$_tmp" in
		1|on|true|yes|enabled) _tmp=1 ;;
		0|off|false|no|disabled) _tmp=0 ;;
		*) _tmp="$2" ;;
	esac
	printf %s "$_tmp"
}

config_get_bool() {
	local _tmp
	config_get _tmp "$2" "$3" "$4"
	_tmp="$(get_bool "$_tmp" "$4")"
	eval "$1=\$_tmp"
}

config_foreach() {
	local ___function="$1" ___type="$2" section cfgtype
	shift 2
	for section in $CONFIG_SECTIONS; do
		config_get cfgtype "$section" TYPE
		[ -n "$___type" ] && [ "$cfgtype" != "$___type" ] && continue
		eval "$___function \"\$section\" \"\$@\""
	done
}
