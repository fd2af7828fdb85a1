//! Translating a mosquitto.conf (with include_dir) into edgemq TOML.
