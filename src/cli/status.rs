//! `edgemq status`.

use std::path::PathBuf;
use std::process::ExitCode;

/// Entry point of `edgemq status`.
pub fn main(_config: Option<PathBuf>) -> ExitCode {
    eprintln!("edgemq status: not built yet");
    ExitCode::from(2)
}
