//! One segment file of the queue log: records of len + CRC32 + payload, torn-tail truncation.
