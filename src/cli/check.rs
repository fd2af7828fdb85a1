//! `edgemq check`.

use std::path::PathBuf;
use std::process::ExitCode;

/// Entry point of `edgemq check`.
pub fn main(_config: Option<PathBuf>) -> ExitCode {
    eprintln!("edgemq check: not built yet");
    ExitCode::from(2)
}
