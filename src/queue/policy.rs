//! Queue bounds: max_bytes, max_age, overflow, coalesce.
