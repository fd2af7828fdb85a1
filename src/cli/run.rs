//! `edgemq run`.

use std::path::PathBuf;
use std::process::ExitCode;

/// Entry point of `edgemq run`.
pub fn main(_config: Option<PathBuf>) -> ExitCode {
    eprintln!("edgemq run: not built yet");
    ExitCode::from(2)
}
