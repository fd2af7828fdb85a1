//! Semantic checks the parser cannot make; every problem reported at once.
