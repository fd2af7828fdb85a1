//! `edgemq status [-c PATH] [--json]`: asks the running daemon (over the
//! status socket in its data_dir) for each bridge's state and queue depth.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::{config, sys};

/// How long to wait for the daemon's answer.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// Entry point of `edgemq status`.
pub fn main(path: Option<PathBuf>, json: bool) -> ExitCode {
    let cfg = match config::load_for_run(path.as_deref()) {
        Ok((c, _)) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let sock = sys::status_socket(&cfg.data_dir);
    let mut s = match UnixStream::connect(&sock) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "edgemq status: edgemq is not running for data_dir {} ({}: {e})",
                cfg.data_dir.display(),
                sock.display()
            );
            return ExitCode::from(2);
        }
    };
    let _ = s.set_read_timeout(Some(STATUS_TIMEOUT));
    let _ = s.set_write_timeout(Some(STATUS_TIMEOUT));
    // A write error is not fatal: the answer, if any, still tells.
    let request = if json { sys::REQUEST_JSON } else { "text" };
    let _ = writeln!(s, "{request}").and_then(|()| s.shutdown(Shutdown::Write));
    let mut text = String::new();
    match s.read_to_string(&mut text) {
        Ok(_) if json && !text.starts_with('{') => {
            eprintln!("edgemq status: the daemon answered without JSON (older edgemq? restart it)");
            ExitCode::from(2)
        }
        Ok(_) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edgemq status: no answer from the daemon: {e}");
            ExitCode::from(2)
        }
    }
}
