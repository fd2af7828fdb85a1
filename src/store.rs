//! sled for sessions, retained messages and metadata, with an fsync after each flush.
