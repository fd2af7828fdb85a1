//! `edgemq check`: validate a config without starting anything — the config
//! itself, and the files `run` would read: password and ACL files, listener
//! certificates and keys, bridge CA bundles and client certificates.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::auth::Auth;
use crate::config::{self, Config, Source};
use crate::tls::{self, ServerTls};

/// Entry point of `edgemq check`: exit 0 and a summary when valid, exit 1 and
/// one `FILE:LINE: KEY: message` line per problem on stderr when not.
pub fn main(config: Option<PathBuf>) -> ExitCode {
    match config::load_for_run(config.as_deref()) {
        Ok((cfg, source)) => {
            let problems = file_problems(&cfg, &source);
            if !problems.is_empty() {
                for p in &problems {
                    eprintln!("{p}");
                }
                return ExitCode::from(1);
            }
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

/// Parses every file the config points at, the way `run` will.
fn file_problems(cfg: &Config, source: &Source) -> Vec<String> {
    tls::install_crypto_provider();
    let file = match source {
        Source::File(p) => p.as_path(),
        Source::BuiltIn => Path::new("(built-in defaults)"),
    };
    let mut out = Vec::new();
    let mut report = |key: String, e: &dyn std::fmt::Display| {
        out.push(format!("{}: {key}: {e:#}", file.display()))
    };
    if let Err(e) = Auth::load(&cfg.auth) {
        report("auth".into(), &format!("{e:#}"));
    }
    for (i, l) in cfg.listeners.iter().enumerate() {
        if let Some(a) = &l.auth {
            if let Err(e) = Auth::load(a) {
                report(format!("listener[{i}].auth"), &format!("{e:#}"));
            }
        }
        if let Some(t) = &l.tls {
            if let Err(e) = ServerTls::load(t) {
                report(format!("listener[{i}].tls"), &e);
            }
        }
    }
    for (i, b) in cfg.bridges.iter().enumerate() {
        if let Some(t) = &b.tls {
            if let Err(e) = tls::client_config(t) {
                report(format!("bridge[{i}].tls"), &e);
            }
        }
    }
    out
}
