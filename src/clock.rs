//! The wall clock, and the forward steps it takes while edgemq runs.
//!
//! A router without a battery-backed clock boots at a stale time (OpenWRT's
//! sysfixtime: the newest file in /etc; Armbian's fake-hwclock: its last save)
//! and steps forward when NTP first syncs: by hours or weeks, and often right
//! after an outage, when the bridge queue is fullest. Ages are measured from
//! wall-clock stamps (they must mean something after a restart), so a stamp
//! taken before such a step would look that much older, and `max_age` (or a
//! message expiry, or a session expiry at restore) would drop what edgemq had
//! acknowledged. So the wall clock is watched against the monotonic one, each
//! forward step is remembered (in memory, and in `data_dir/clock-steps` for
//! stamps still queued after a restart), and [`corrected`] adds it back to any
//! stamp taken before it. A backward step makes earlier stamps look younger,
//! which only keeps messages longer: it is logged and left alone.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The file in data_dir that remembers forward steps across restarts.
pub const STEPS_FILE: &str = "clock-steps";
/// A jump of the wall clock against the monotonic one larger than this between
/// two looks is a step (NTP slews by at most 0.5 ms per second).
const STEP_MS: i64 = 1_000;
/// Steps remembered; the earliest is forgotten first.
const MAX_STEPS: usize = 16;
/// How often the watcher looks.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Milliseconds since the Unix epoch by the wall clock, 0 if it is before it.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A forward step: the wall clock read at most `before_ms` when it jumped
/// ahead by `by_ms`. Stamps taken before it are at most `before_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The latest wall-clock reading before the step.
    pub before_ms: u64,
    /// How far it jumped.
    pub by_ms: u64,
}

/// The remembered forward steps, earliest first.
#[derive(Debug, Default)]
pub struct Steps {
    list: Vec<Step>,
}

impl Steps {
    /// No steps.
    pub const fn new() -> Steps {
        Steps { list: Vec::new() }
    }

    /// Remembers `step` (once); false if it was already known.
    pub fn add(&mut self, step: Step) -> bool {
        if step.by_ms == 0 || self.list.contains(&step) {
            return false;
        }
        self.list.push(step);
        self.list.sort_by_key(|s| s.before_ms);
        if self.list.len() > MAX_STEPS {
            self.list.remove(0);
        }
        true
    }

    /// `stamp_ms` as it would read had the clock never stepped forward after it was taken.
    pub fn corrected(&self, stamp_ms: u64) -> u64 {
        self.list
            .iter()
            .filter(|s| stamp_ms <= s.before_ms)
            .fold(stamp_ms, |t, s| t.saturating_add(s.by_ms))
    }

    /// The steps, earliest first.
    pub fn list(&self) -> &[Step] {
        &self.list
    }

    /// The file's text: a comment, then `before_ms by_ms` per line.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# edgemq: forward steps of the system clock (wall ms before the step, ms jumped)\n",
        );
        for s in &self.list {
            out.push_str(&format!("{} {}\n", s.before_ms, s.by_ms));
        }
        out
    }

    /// Parses [`Steps::render`]'s text; an error names the line.
    pub fn parse(text: &str) -> Result<Vec<Step>, String> {
        let mut steps = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut f = line.split_ascii_whitespace().map(str::parse::<u64>);
            match (f.next(), f.next(), f.next()) {
                (Some(Ok(before_ms)), Some(Ok(by_ms)), None) => {
                    steps.push(Step { before_ms, by_ms })
                }
                _ => return Err(format!("line {}: expected two numbers", i + 1)),
            }
        }
        Ok(steps)
    }
}

/// Compares the wall clock with the monotonic one between looks.
#[derive(Debug)]
pub struct Watch {
    wall_ms: u64,
    mono: Instant,
}

/// What a look saw.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// The clocks kept pace.
    Steady,
    /// The wall clock jumped ahead.
    Forward(Step),
    /// The wall clock went back by this many ms.
    Back(u64),
}

impl Watch {
    /// Starts watching from these readings.
    pub fn new(wall_ms: u64, mono: Instant) -> Watch {
        Watch { wall_ms, mono }
    }

    /// Takes new readings and says whether the wall clock stepped since the last ones.
    pub fn look(&mut self, wall_ms: u64, mono: Instant) -> Seen {
        if mono < self.mono {
            // Readings taken before the last ones, that waited for the lock: comparing them
            // would see the last step again, backwards.
            return Seen::Steady;
        }
        let elapsed = mono.saturating_duration_since(self.mono).as_millis() as i64;
        let jump = wall_ms as i64 - self.wall_ms as i64 - elapsed;
        // A stamp taken before the step read at most the old reading plus the time since.
        let before_ms = self.wall_ms.saturating_add(elapsed as u64);
        *self = Watch::new(wall_ms, mono);
        match jump {
            j if j > STEP_MS => Seen::Forward(Step {
                before_ms,
                by_ms: j as u64,
            }),
            j if j < -STEP_MS => Seen::Back(j.unsigned_abs()),
            _ => Seen::Steady,
        }
    }
}

static STEPS: RwLock<Steps> = RwLock::new(Steps::new());
/// Spares the lock on every expiry check while the clock has never stepped.
static ANY_STEP: AtomicBool = AtomicBool::new(false);
/// Bumped whenever a step is remembered, so watchers know to rewrite their files.
static GENERATION: AtomicU32 = AtomicU32::new(0);
/// One watch per process: every server's watcher looks through it, so a step is seen once.
static WATCH: Mutex<Option<Watch>> = Mutex::new(None);

/// [`Steps::corrected`] with the steps this process knows of.
pub fn corrected(stamp_ms: u64) -> u64 {
    if !ANY_STEP.load(Ordering::Acquire) {
        return stamp_ms;
    }
    STEPS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .corrected(stamp_ms)
}

/// Remembers `steps`; watchers save them if any was new.
pub fn remember(steps: &[Step]) {
    let mut known = STEPS.write().unwrap_or_else(|e| e.into_inner());
    if steps.iter().filter(|s| known.add(**s)).count() > 0 {
        ANY_STEP.store(true, Ordering::Release);
        GENERATION.fetch_add(1, Ordering::AcqRel);
    }
}

/// The text of the steps file for the steps this process knows of.
fn rendered() -> String {
    STEPS.read().unwrap_or_else(|e| e.into_inner()).render()
}

/// Looks every [`WATCH_EVERY`] until `shutdown`, and rewrites `data_dir/clock-steps`
/// whenever the known steps change. Run once per server, after [`load`].
pub fn watch(
    data_dir: PathBuf,
    shutdown: tokio_util::sync::CancellationToken,
) -> impl std::future::Future<Output = ()> {
    // Read now, not at the first poll: a step remembered in between must still be saved.
    let written = GENERATION.load(Ordering::Acquire);
    watch_from(data_dir, shutdown, written)
}

async fn watch_from(
    data_dir: PathBuf,
    shutdown: tokio_util::sync::CancellationToken,
    mut written: u32,
) {
    // A full or read-only disk fails every retry: one warning until a save succeeds.
    let mut warned = false;
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        look();
        let generation = GENERATION.load(Ordering::Acquire);
        if generation == written {
            continue;
        }
        match save(&data_dir, &rendered()) {
            Ok(()) => {
                if warned {
                    tracing::info!(data_dir = %data_dir.display(), "clock steps saved");
                }
                (written, warned) = (generation, false);
            }
            Err(e) if !warned => {
                warned = true;
                tracing::warn!(data_dir = %data_dir.display(), error = %e,
                    "cannot save the clock step; after a restart, messages stamped before it \
                     count as older (retrying every second)");
            }
            Err(_) => {}
        }
    }
}

/// Replaces the steps file so a power cut leaves the old one or the new one.
fn save(data_dir: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = data_dir.join(format!("{STEPS_FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, data_dir.join(STEPS_FILE))?;
    std::fs::File::open(data_dir)?.sync_all()
}

/// Reads `data_dir/clock-steps` into the steps this process knows of. A missing file is no
/// step; an unreadable one is logged and ignored (messages may then expire early, which the
/// log says).
pub fn load(data_dir: &Path) {
    let path = data_dir.join(STEPS_FILE);
    let steps = match std::fs::read_to_string(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        read => read
            .map_err(|e| e.to_string())
            .and_then(|t| Steps::parse(&t)),
    };
    match steps {
        Ok(steps) => remember(&steps),
        Err(error) => tracing::warn!(file = %path.display(), error,
            "clock steps unreadable; stamps taken before an earlier clock step count as older"),
    }
}

/// [`now_ms`] for comparing with stamps: any step up to now is known first, so a stamp
/// taken before it is [`corrected`] (the watcher alone might look a second too late).
pub fn checked_now_ms() -> u64 {
    let wall = now_ms();
    look_at(wall, Instant::now());
    wall
}

/// Looks at the clocks once (through the process's one [`Watch`]); remembers and logs a step.
pub fn look() {
    look_at(now_ms(), Instant::now());
}

fn look_at(wall: u64, mono: Instant) {
    // The step is remembered before the lock is released: a thread that looks after us
    // then compares its stamps with the step known.
    let mut w = WATCH.lock().unwrap_or_else(|e| e.into_inner());
    let seen = match w.as_mut() {
        Some(w) => w.look(wall, mono),
        None => {
            *w = Some(Watch::new(wall, mono));
            Seen::Steady
        }
    };
    match seen {
        Seen::Steady => {}
        Seen::Forward(step) => {
            tracing::info!(
                by_s = step.by_ms / 1000,
                "system clock stepped forward; \
                messages stamped before the step keep their true age"
            );
            remember(&[step]);
        }
        Seen::Back(ms) => tracing::info!(by_s = ms / 1000, "system clock stepped back"),
    }
}

#[cfg(test)]
#[path = "clock_tests.rs"]
mod tests;
