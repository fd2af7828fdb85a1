//! Topic name and filter validation and matching: pure functions.
