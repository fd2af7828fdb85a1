use super::{Seen, Step, Steps, Watch};
use std::time::{Duration, Instant};

const DAY: u64 = 86_400_000;

#[test]
fn a_look_tells_a_step_from_drift() {
    let t0 = Instant::now();
    let mut w = Watch::new(1_000_000, t0);
    // One second later by both clocks, give or take NTP's slew.
    assert_eq!(w.look(1_001_000, t0 + Duration::from_secs(1)), Seen::Steady);
    assert_eq!(w.look(1_002_001, t0 + Duration::from_secs(2)), Seen::Steady);
    // A day ahead within the next second: a forward step, from where the clock stood.
    assert_eq!(
        w.look(1_003_000 + DAY, t0 + Duration::from_secs(3)),
        Seen::Forward(Step {
            before_ms: 1_003_001,
            by_ms: DAY - 1,
        })
    );
    // The clock keeps pace from its new reading.
    assert_eq!(
        w.look(1_004_000 + DAY, t0 + Duration::from_secs(4)),
        Seen::Steady
    );
    assert_eq!(
        w.look(1_005_000, t0 + Duration::from_secs(5)),
        Seen::Back(DAY)
    );
}

#[test]
fn readings_older_than_the_last_look_are_ignored() {
    // Two threads read the clocks around a step; the later reading took the lock first.
    let t0 = Instant::now();
    let mut w = Watch::new(1_000, t0);
    let early = (1_500, t0 + Duration::from_millis(500));
    let late = (1_600 + DAY, t0 + Duration::from_millis(600));
    assert!(matches!(w.look(late.0, late.1), Seen::Forward(_)));
    assert_eq!(w.look(early.0, early.1), Seen::Steady);
    // And the step is not seen a second time.
    assert_eq!(
        w.look(2_600 + DAY, t0 + Duration::from_millis(1_600)),
        Seen::Steady
    );
}

#[test]
fn a_late_look_is_no_step() {
    // The watcher was not scheduled for a minute (a busy router): both clocks moved on.
    let t0 = Instant::now();
    let mut w = Watch::new(5_000, t0);
    assert_eq!(w.look(65_000, t0 + Duration::from_secs(60)), Seen::Steady);
}

#[test]
fn stamps_before_a_step_are_corrected_and_later_ones_are_not() {
    let mut s = Steps::new();
    assert!(s.add(Step {
        before_ms: 10_000,
        by_ms: DAY,
    }));
    assert!(!s.add(Step {
        before_ms: 10_000,
        by_ms: DAY,
    }));
    assert_eq!(s.corrected(9_000), 9_000 + DAY);
    assert_eq!(s.corrected(10_000), 10_000 + DAY);
    assert_eq!(s.corrected(10_000 + DAY), 10_000 + DAY);
    // Ages stay true: a stamp 1 s before the step, read 2 s after it, is 3 s old.
    assert_eq!(10_000 + DAY + 2_000 - s.corrected(9_000), 3_000);
    // A second step adds up for stamps before both.
    s.add(Step {
        before_ms: 20_000 + DAY,
        by_ms: 5_000,
    });
    assert_eq!(s.corrected(9_000), 9_000 + DAY + 5_000);
    assert_eq!(s.corrected(15_000 + DAY), 20_000 + DAY);
    assert_eq!(s.corrected(30_000 + DAY), 30_000 + DAY);
}

#[test]
fn steps_are_bounded_and_the_earliest_goes_first() {
    let mut s = Steps::new();
    for i in 0..40u64 {
        s.add(Step {
            before_ms: 1_000 * (40 - i),
            by_ms: 1,
        });
    }
    assert_eq!(s.list().len(), super::MAX_STEPS);
    assert_eq!(
        s.list()[0].before_ms,
        1_000 * (41 - super::MAX_STEPS as u64)
    );
    assert!(s.list().windows(2).all(|w| w[0].before_ms < w[1].before_ms));
}

#[test]
fn the_file_round_trips_and_a_bad_line_is_named() {
    let mut s = Steps::new();
    s.add(Step {
        before_ms: 1_700_000_000_000,
        by_ms: 3 * DAY,
    });
    s.add(Step {
        before_ms: 1_700_500_000_000,
        by_ms: 2_500,
    });
    let text = s.render();
    assert_eq!(Steps::parse(&text).unwrap(), s.list());
    assert_eq!(Steps::parse("").unwrap(), []);
    assert_eq!(
        Steps::parse("# x\n1 2\n3\n").unwrap_err(),
        "line 3: expected two numbers"
    );
    assert!(Steps::parse("1 2 3\n").is_err());
    assert!(Steps::parse("1 -2\n").is_err());
}

#[tokio::test(start_paused = true)]
async fn a_failed_save_is_retried_until_the_file_is_written() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the temporary file goes makes every save fail.
    let blocker = dir.path().join(format!("{}.tmp", super::STEPS_FILE));
    std::fs::create_dir(&blocker).unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(super::watch(dir.path().to_path_buf(), shutdown.clone()));
    // A step no real stamp is affected by: the other tests share this process's steps.
    super::remember(&[Step {
        before_ms: 0,
        by_ms: 1,
    }]);
    tokio::time::sleep(super::WATCH_EVERY * 3).await;
    let file = dir.path().join(super::STEPS_FILE);
    assert!(!file.exists());
    std::fs::remove_dir(&blocker).unwrap();
    tokio::time::sleep(super::WATCH_EVERY * 2).await;
    let saved = Steps::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(saved.contains(&Step {
        before_ms: 0,
        by_ms: 1,
    }));
    shutdown.cancel();
    task.await.unwrap();
}
