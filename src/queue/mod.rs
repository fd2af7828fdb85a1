//! The durable FIFO per bridge: a segmented append-only log.

pub mod log;
pub mod policy;
pub mod segment;
