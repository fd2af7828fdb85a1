//! What the broker under test keeps and writes on disk: its data directory's size (after a
//! sync, so delayed allocation is counted) and the bytes its device wrote over a run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::{Instant, sleep};

use crate::procfs::{bytes_written, device_stat_path, dir_bytes, sync_fs};

/// Time the store gets to shrink after a drain.
const SHRINK_TIMEOUT: Duration = Duration::from_secs(10);
/// Store size the drained queue should get back under.
const SHRUNK_BYTES: u64 = 16 << 20;

/// The data directory's size once what was written is on disk.
pub fn store_bytes(dir: &Path) -> u64 {
    let _ = sync_fs(dir);
    dir_bytes(dir)
}

/// The data directory's size once it shrank back under 16 MiB, or after 10 s.
pub async fn shrunk_store(dir: &Path) -> u64 {
    let t0 = Instant::now();
    loop {
        let b = store_bytes(dir);
        if b <= SHRUNK_BYTES || t0.elapsed() > SHRINK_TIMEOUT {
            return b;
        }
        sleep(Duration::from_millis(250)).await;
    }
}

/// Sectors written to the store's device between start and finish.
pub struct DiskMeter {
    stat: Option<PathBuf>,
    before: u64,
}

impl DiskMeter {
    /// Starts counting for the device that holds `dir`.
    pub fn start(dir: &Path) -> DiskMeter {
        let stat = device_stat_path(dir)
            .map_err(|e| eprintln!("  no disk counter: {e:#}"))
            .ok();
        let _ = sync_fs(dir);
        let before = stat
            .as_deref()
            .and_then(|s| bytes_written(s).ok())
            .unwrap_or(0);
        DiskMeter { stat, before }
    }

    /// Bytes written since `start`; None where the kernel has no counter for the device.
    pub fn finish(&self, dir: &Path) -> Option<u64> {
        let _ = sync_fs(dir);
        let after = bytes_written(self.stat.as_deref()?).ok()?;
        Some(after.saturating_sub(self.before))
    }
}
