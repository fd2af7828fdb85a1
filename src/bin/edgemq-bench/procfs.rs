//! What the kernel says about a process and a disk: VmRSS from
//! /proc/PID/status, sectors written from /sys/dev/block/MAJ:MIN/stat (the
//! device under a directory), bytes a directory tree occupies.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Resident set size of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    status_field(pid, "VmRSS:")
}

fn status_field(pid: u32, key: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("{key} missing in {path}"))
}

/// CPU time (user + system, all threads) `pid` has used, in microseconds.
pub fn cpu_us(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    // Fields after the parenthesised command name, which may itself hold spaces.
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    let (Some(u), Some(s)) = (ticks(11), ticks(12)) else {
        bail!("no utime/stime in {path}");
    };
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
    Ok((u + s) * 1_000_000 / hz.max(1))
}

/// The block device holding `dir`, as its /sys stat file.
pub fn device_stat_path(dir: &Path) -> Result<PathBuf> {
    let dev = std::fs::metadata(dir)
        .with_context(|| format!("stat {}", dir.display()))?
        .dev();
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let p = PathBuf::from(format!("/sys/dev/block/{major}:{minor}/stat"));
    if !p.exists() {
        bail!(
            "{} is on {major}:{minor}, which has no {}",
            dir.display(),
            p.display()
        );
    }
    Ok(p)
}

/// Bytes written to the device so far (sectors written × 512).
pub fn bytes_written(stat: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(stat).with_context(|| format!("read {}", stat.display()))?;
    let sectors: u64 = text
        .split_whitespace()
        .nth(6)
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no sectors-written field in {}", stat.display()))?;
    Ok(sectors * 512)
}

/// Flushes the file system holding `dir`, so its dirty pages show up in the counter.
pub fn sync_fs(dir: &Path) -> Result<()> {
    let st = Command::new("sync")
        .arg("-f")
        .arg(dir)
        .status()
        .context("run sync -f")?;
    if !st.success() {
        bail!("sync -f {} failed", dir.display());
    }
    Ok(())
}

/// Bytes allocated on disk by every file under `dir` (like `du -s`).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_rss_and_dir_size() {
        assert!(rss_kib(std::process::id()).unwrap() > 100);
        let t0 = cpu_us(std::process::id()).unwrap();
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1 && cpu_us(std::process::id()).unwrap() > t0);
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), vec![1u8; 100_000]).unwrap();
        assert!(dir_bytes(d.path()) >= 100_000);
    }
}
