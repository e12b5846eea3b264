//! The call's own timers in one table; the next wake-up is the earliest
//! of them (and of its legs' media and its IVR session).

use std::time::Instant;

/// The call's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Ask the core for the place in line, to announce it.
    Announce = 0,
    /// A call-back's next try (after a miss, or at the time the caller
    /// chose): back in line, or the caller dialled.
    CallbackRetry = 1,
    /// The longest a caller stays on the line.
    MaxDuration = 2,
    /// A voice message's end: its longest length, or the silence after
    /// the caller's last word.
    Voicemail = 3,
    /// A notification's phone rang long enough.
    Ring = 4,
    /// The answering-machine detector's deadline.
    Detect = 5,
    /// The caller did not choose a call-back time in time.
    SlotMenu = 6,
}

const COUNT: usize = 7;
const ALL: [Timer; COUNT] = [
    Timer::Announce,
    Timer::CallbackRetry,
    Timer::MaxDuration,
    Timer::Voicemail,
    Timer::Ring,
    Timer::Detect,
    Timer::SlotMenu,
];

/// A deadline per [`Timer`].
#[derive(Debug, Default, Clone)]
pub struct TimerTable([Option<Instant>; COUNT]);

impl TimerTable {
    /// Arms `t` for `at` (replacing any earlier deadline).
    pub fn set(&mut self, t: Timer, at: Instant) {
        self.0[t as usize] = Some(at);
    }

    /// Disarms `t`.
    pub fn stop(&mut self, t: Timer) {
        self.0[t as usize] = None;
    }

    /// `t`'s deadline.
    pub fn get(&self, t: Timer) -> Option<Instant> {
        self.0[t as usize]
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }

    /// Disarms and returns the timers due at `now`, earliest first.
    pub fn expired(&mut self, now: Instant) -> Vec<Timer> {
        let mut due: Vec<(Instant, Timer)> = ALL
            .iter()
            .filter_map(|&t| self.get(t).filter(|&at| at <= now).map(|at| (at, t)))
            .collect();
        due.sort_by_key(|(at, _)| *at);
        for (_, t) in &due {
            self.stop(*t);
        }
        due.into_iter().map(|(_, t)| t).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_earliest_fires_first_and_once() {
        let t0 = Instant::now();
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(Timer::MaxDuration, t0 + Duration::from_secs(5));
        t.set(Timer::Announce, t0 + Duration::from_secs(2));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(2)));
        assert!(t.expired(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(
            t.expired(t0 + Duration::from_secs(9)),
            vec![Timer::Announce, Timer::MaxDuration]
        );
        assert!(t.expired(t0 + Duration::from_secs(9)).is_empty());
    }
}
