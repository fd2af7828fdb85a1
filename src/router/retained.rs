//! Retained messages, persisted through the store.
