//! `edgemq import-mosquitto FILE`: prints the edgemq TOML equivalent of a
//! mosquitto.conf on stdout and a one-line summary on stderr.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::config::mosquitto_import::{CHECK_REFUSES, NOT_CARRIED, import};

/// Exit code for an unreadable or untranslatable input (bad configuration).
const EXIT_BAD_INPUT: u8 = 1;
/// Exit code when stdout cannot be written.
const EXIT_RUNTIME: u8 = 2;

/// Entry point of `edgemq import-mosquitto FILE`.
pub fn main(file: &Path) -> ExitCode {
    let text = match import(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("edgemq import-mosquitto: {e:#}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        eprintln!("edgemq import-mosquitto: writing the translation: {e}");
        return ExitCode::from(EXIT_RUNTIME);
    }
    let left = text.lines().filter(|l| l.starts_with(NOT_CARRIED)).count();
    let check = if text.contains(CHECK_REFUSES) {
        "; `edgemq check` will refuse it until the problems listed at the end are fixed"
    } else {
        ""
    };
    eprintln!(
        "edgemq import-mosquitto: translated {}; {left} option(s) not carried over (see the comments){check}",
        file.display()
    );
    ExitCode::SUCCESS
}
