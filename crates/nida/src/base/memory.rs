//! Gives memory back to the system after a burst of calls. Thousands of
//! calls set up and torn down in seconds leave the allocator's heaps
//! full of free chunks between live ones, which glibc keeps (only the
//! top of a heap is trimmed on its own). Once the calls in progress have
//! fallen to half of their peak since the last trim, or to none, the
//! heaps' free pages are handed back (`malloc_trim`), on a blocking
//! thread: it walks every arena. Then again every [`AGAIN`] for a
//! minute: the SIP transactions of those calls live on for 32 s, and the
//! endpoint gives its tables' room back after them.

use crate::base::bus::Counters;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the calls in progress are looked at.
const EVERY: Duration = Duration::from_secs(5);
/// How often the heaps are trimmed again after a burst.
const AGAIN: Duration = Duration::from_secs(15);
/// How many times.
const FOLLOW_UPS: u32 = 4;
/// Bursts smaller than this are not worth a walk of the heaps.
const SMALLEST_PEAK: u64 = 200;

/// When to trim, decided from the calls in progress at each look.
#[derive(Debug, Default)]
struct Trimmer {
    /// The most calls in progress since the last trim.
    peak: u64,
    /// When the next follow-up trim is due.
    again: Option<Instant>,
    /// Follow-ups left after the last burst.
    follow_ups: u32,
}

impl Trimmer {
    /// Whether to trim now, with `calls` in progress.
    fn look(&mut self, now: Instant, calls: u64) -> bool {
        self.peak = self.peak.max(calls);
        if self.peak >= SMALLEST_PEAK && calls * 2 <= self.peak {
            // The burst has halved: trim, and measure the next one
            // from here.
            self.peak = calls;
            self.again = Some(now + AGAIN);
            self.follow_ups = FOLLOW_UPS;
            return true;
        }
        match self.again {
            Some(at) if at <= now && self.follow_ups > 0 => {
                self.follow_ups -= 1;
                self.again = (self.follow_ups > 0).then_some(now + AGAIN);
                true
            }
            _ => false,
        }
    }
}

/// Runs for the daemon's life.
pub async fn trim_after_bursts(counters: Arc<Counters>) {
    let mut trimmer = Trimmer::default();
    let mut tick = tokio::time::interval(EVERY);
    loop {
        let now = tick.tick().await.into_std();
        if trimmer.look(now, counters.calls.load(Ordering::Relaxed)) {
            let _ = tokio::task::spawn_blocking(trim_heaps).await;
        }
    }
}

#[cfg(target_env = "gnu")]
fn trim_heaps() {
    // SAFETY: malloc_trim only reorganises the allocator's own free
    // memory; 0 keeps no padding at the top.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(target_env = "gnu"))]
fn trim_heaps() {}

#[cfg(test)]
mod tests {
    use super::{Trimmer, AGAIN, EVERY, FOLLOW_UPS};
    use std::time::{Duration, Instant};

    /// The looks at which the trimmer trims, for calls in progress at
    /// each look (one every [`EVERY`]).
    fn trims(calls: &[u64]) -> Vec<usize> {
        let t0 = Instant::now();
        let mut t = Trimmer::default();
        (0..calls.len())
            .filter(|&i| t.look(t0 + EVERY * i as u32, calls[i]))
            .collect()
    }

    #[test]
    fn trims_once_calls_fall_to_half_their_peak() {
        // Up to 4000, down to 2001: not yet; 2000: trim.
        assert_eq!(trims(&[1000, 4000, 2001, 2000]), vec![3]);
        // Then measured from 2000: 1500 is not half of it, 0 is.
        let t0 = Instant::now();
        let mut t = Trimmer::default();
        assert!(!t.look(t0, 4000));
        assert!(t.look(t0, 2000));
        assert!(!t.look(t0, 1500));
        assert!(t.look(t0, 0));
    }

    #[test]
    fn small_bursts_are_left_alone() {
        assert!(trims(&[150, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_empty());
    }

    #[test]
    fn follow_ups_come_every_15_s_for_a_minute_then_stop() {
        let mut calls = vec![4000, 0];
        calls.resize(40, 0);
        let steps = (AGAIN.as_secs() / EVERY.as_secs()) as usize;
        let expected: Vec<usize> = (0..=FOLLOW_UPS as usize).map(|k| 1 + k * steps).collect();
        assert_eq!(trims(&calls), expected);
        assert_eq!(AGAIN * FOLLOW_UPS, Duration::from_secs(60));
    }
}
