//! Mosquitto acl_file syntax: user, topic, pattern with %u and %c.
