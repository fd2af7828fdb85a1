//! The `edgemq` subcommands; `main.rs` only parses arguments and dispatches here.

pub mod check;
pub mod import;
pub mod passwd;
pub mod run;
pub mod status;
