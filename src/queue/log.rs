//! The segmented append-only log: group commit with fdatasync, cursor, segment deletion.
