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
use std::time::Duration;

/// How often the calls in progress are looked at.
const EVERY: Duration = Duration::from_secs(5);
/// How often the heaps are trimmed again after a burst.
const AGAIN: Duration = Duration::from_secs(15);
/// How many times.
const FOLLOW_UPS: u32 = 4;
/// Bursts smaller than this are not worth a walk of the heaps.
const SMALLEST_PEAK: u64 = 200;

/// Whether the heaps are worth trimming now, and the peak to compare
/// with from then on.
fn due(peak: u64, now: u64) -> (bool, u64) {
    let peak = peak.max(now);
    if peak >= SMALLEST_PEAK && now * 2 <= peak {
        (true, now)
    } else {
        (false, peak)
    }
}

/// Runs for the daemon's life.
pub async fn trim_after_bursts(counters: Arc<Counters>) {
    let mut peak = 0;
    // The next follow-up and how many are left.
    let mut again = (tokio::time::Instant::now(), 0);
    let mut tick = tokio::time::interval(EVERY);
    loop {
        let now = tick.tick().await;
        let (trim, next) = due(peak, counters.calls.load(Ordering::Relaxed));
        peak = next;
        let follow_up = !trim && again.1 > 0 && again.0 <= now;
        if trim {
            again = (now + AGAIN, FOLLOW_UPS);
        } else if follow_up {
            again = (now + AGAIN, again.1 - 1);
        }
        if trim || follow_up {
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
    use super::due;

    #[test]
    fn trims_once_calls_fall_to_half_their_peak() {
        // Calls rise: no trim, the peak follows.
        assert_eq!(due(0, 1000), (false, 1000));
        assert_eq!(due(1000, 4000), (false, 4000));
        // Down to 2001 of 4000: not yet.
        assert_eq!(due(4000, 2001), (false, 4000));
        // Half: trim, and the next burst is measured from here.
        assert_eq!(due(4000, 2000), (true, 2000));
        assert_eq!(due(2000, 1500), (false, 2000));
        assert_eq!(due(2000, 0), (true, 0));
    }

    #[test]
    fn small_bursts_are_left_alone() {
        assert_eq!(due(150, 0), (false, 150));
        assert_eq!(due(150, 0).1, 150);
    }
}
