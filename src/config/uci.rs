//! Loading OpenWRT UCI (/etc/config/edgemq) into the same model.
