# Stub of OpenWRT's /lib/functions/procd.sh: every call is appended to $PROCD_LOG as one line
# ("procd_set_param command /usr/bin/edgemq run -c ..."), so a test can assert what the init
# script asked procd to do.

_procd_log() { echo "$*" >> "${PROCD_LOG:?PROCD_LOG unset}"; }
procd_open_service() { _procd_log procd_open_service "$@"; }
procd_close_service() { _procd_log procd_close_service "$@"; }
procd_open_instance() { _procd_log procd_open_instance "$@"; }
procd_close_instance() { _procd_log procd_close_instance "$@"; }
procd_set_param() { _procd_log procd_set_param "$@"; }
procd_append_param() { _procd_log procd_append_param "$@"; }
procd_add_reload_trigger() { _procd_log procd_add_reload_trigger "$@"; }
procd_add_validation() { _procd_log procd_add_validation "$@"; }
procd_open_trigger() { _procd_log procd_open_trigger "$@"; }
procd_close_trigger() { _procd_log procd_close_trigger "$@"; }
procd_send_signal() { _procd_log procd_send_signal "$@"; }
procd_kill() { _procd_log procd_kill "$@"; }
