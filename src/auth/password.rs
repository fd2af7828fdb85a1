//! Mosquitto-compatible password files ($6$ SHA-512 and $7$ PBKDF2-SHA512).
