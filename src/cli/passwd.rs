//! `edgemq passwd`.

use std::path::Path;
use std::process::ExitCode;

/// Entry point of `edgemq passwd [-D] FILE USER`.
pub fn main(_file: &Path, _user: &str, _delete: bool) -> ExitCode {
    eprintln!("edgemq passwd: not built yet");
    ExitCode::from(2)
}
