//! `edgemq run` seen from the user's side, against the real binary: built-in
//! defaults, exit codes, logging format, signals (graceful stop, SIGHUP
//! reloads of passwords and certificates), privilege drop, worker threads,
//! nothing queued lost across a restart, and `edgemq status`.

mod daemon_support;

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use daemon_support::mqtt;
use daemon_support::{
    Daemon, STOP_TIMEOUT, basic_config, command, eventually, is_root, log_with_levels, proc_ids,
    run_to_end, runtime_threads, tempdir,
};
use nix::sys::signal::Signal;

const RECV: Duration = Duration::from_secs(3);

#[path = "daemon/running.rs"]
mod running;
#[path = "daemon/startup.rs"]
mod startup;
#[path = "daemon/state.rs"]
mod state;
