//! `edgemq import`.

use std::path::Path;
use std::process::ExitCode;

/// Entry point of `edgemq import-mosquitto FILE`.
pub fn main(_file: &Path) -> ExitCode {
    eprintln!("edgemq import-mosquitto: not built yet");
    ExitCode::from(2)
}
