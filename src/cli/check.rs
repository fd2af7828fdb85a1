//! `edgemq check`: validate a config without starting anything.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config;

/// Entry point of `edgemq check`: exit 0 and a summary when valid, exit 1 and
/// one `FILE:LINE: KEY: message` line per problem on stderr when not.
pub fn main(config: Option<PathBuf>) -> ExitCode {
    match config::load_for_run(config.as_deref()) {
        Ok((cfg, source)) => {
            print!("{}", config::summary(&cfg, &source));
            println!("config OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            for p in &e.problems {
                eprintln!("{p}");
            }
            ExitCode::from(1)
        }
    }
}
