//! The notification scheduler (sans-IO): which notification is dialled
//! when. A notification waits until it is due and the calendar is open;
//! each trunk takes at most its `per_second` new calls a second and its
//! `concurrent` live ones; a busy or unanswered attempt is tried again
//! after the policy's wait, until its attempts run out. Each change of a
//! notification's state comes out of [`Notifier::poll_update`] for the
//! store and the webhooks; nothing is dropped past a bound: a full
//! scheduler refuses new notifications instead.

use crate::calendar::Calendars;
use crate::notify::{Delivery, Notice, NoticeResult};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How notifications are tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// Wait after a busy line.
    pub retry_busy: Duration,
    /// Wait after a phone nobody answered (or answered and hung up).
    pub retry_no_answer: Duration,
    /// How long a phone rings.
    pub ring: Duration,
    /// Listen for answering machines.
    pub detect_machine: bool,
    /// Calls only while this calendar is open (none: any time).
    pub calendar: Option<String>,
    /// Notifications waiting at most (past it, new ones are refused).
    pub max_pending: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            attempts: 3,
            retry_busy: Duration::from_secs(300),
            retry_no_answer: Duration::from_secs(900),
            ring: Duration::from_secs(30),
            detect_machine: true,
            calendar: None,
            max_pending: 100_000,
        }
    }
}

/// A trunk's pace for notification calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// New calls a second at most (at least 1).
    pub per_second: u32,
    /// Live notification calls at most (at least 1).
    pub concurrent: u32,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            per_second: 1,
            concurrent: 4,
        }
    }
}

/// A notification to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its id.
    pub id: String,
    /// The number to call.
    pub number: String,
    /// The flow the answerer hears.
    pub flow: String,
    /// The flow's variables.
    pub vars: BTreeMap<String, String>,
    /// The citizen's language, when known.
    pub language: Option<String>,
    /// The trunk it goes out through (empty: no trunk).
    pub trunk: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not tried before this (Unix seconds).
    pub due: i64,
}

/// Where a notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for its time (a first attempt or a retry).
    Pending,
    /// An attempt is under way.
    Calling,
    /// Delivered to a person or a machine.
    Delivered,
    /// Its attempts ran out, or the number cannot be reached.
    Failed,
}

impl State {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Calling => "calling",
            State::Delivered => "delivered",
            State::Failed => "failed",
        }
    }

    /// Whether nothing more will happen to it.
    pub fn is_final(self) -> bool {
        matches!(self, State::Delivered | State::Failed)
    }
}

/// A change of a notification's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The notification.
    pub id: String,
    /// The number it calls.
    pub number: String,
    /// Its state now.
    pub state: State,
    /// Attempts made.
    pub attempts: u32,
    /// The next attempt's time (Unix seconds), when one is planned.
    pub next_at: Option<i64>,
    /// The attempt that just ended.
    pub result: Option<NoticeResult>,
}

/// Why a notification was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// As many wait as the policy allows.
    #[error("too many notifications waiting")]
    Full,
    /// One with this id is known already.
    #[error("a notification with this id exists")]
    Duplicate,
}

/// A dial order: the attempt and the trunk it goes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The attempt.
    pub notice: Notice,
    /// The trunk (empty: none).
    pub trunk: String,
}

#[derive(Debug, Default)]
struct TrunkState {
    live: u32,
    /// Starts in the last second.
    starts: VecDeque<Instant>,
}

/// The scheduler.
#[derive(Debug)]
pub struct Notifier {
    policy: Policy,
    paces: HashMap<String, Pace>,
    default_pace: Pace,
    calendars: Arc<Calendars>,
    /// Waiting, by (due, arrival).
    waiting: BTreeMap<(i64, u64), Request>,
    seq: u64,
    /// Attempts under way, by id.
    live: HashMap<String, Request>,
    trunks: HashMap<String, TrunkState>,
    updates: VecDeque<Update>,
    /// The wall clock's offset from the monotonic clock (set by each
    /// input).
    base: Option<(Instant, i64)>,
}

impl Notifier {
    /// A scheduler with this policy; `paces` per trunk, else `default_pace`.
    pub fn new(
        policy: Policy,
        default_pace: Pace,
        paces: HashMap<String, Pace>,
        calendars: Arc<Calendars>,
    ) -> Notifier {
        Notifier {
            policy,
            paces,
            default_pace,
            calendars,
            waiting: BTreeMap::new(),
            seq: 0,
            live: HashMap::new(),
            trunks: HashMap::new(),
            updates: VecDeque::new(),
            base: None,
        }
    }

    /// Notifications waiting or under way.
    pub fn len(&self) -> usize {
        self.waiting.len() + self.live.len()
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Attempts under way.
    pub fn calling(&self) -> usize {
        self.live.len()
    }

    fn clock(&mut self, now: Instant, unix: i64) {
        self.base = Some((now, unix));
    }

    fn knows(&self, id: &str) -> bool {
        self.live.contains_key(id) || self.waiting.values().any(|r| r.id == id)
    }

    /// A new notification (or one stored before a restart, with its
    /// attempts so far).
    pub fn submit(&mut self, now: Instant, unix: i64, r: Request) -> Result<(), Refused> {
        self.clock(now, unix);
        if self.len() >= self.policy.max_pending {
            return Err(Refused::Full);
        }
        if self.knows(&r.id) {
            return Err(Refused::Duplicate);
        }
        self.wait(r);
        Ok(())
    }

    fn wait(&mut self, r: Request) {
        self.seq += 1;
        self.waiting.insert((r.due, self.seq), r);
    }

    fn pace(&self, trunk: &str) -> Pace {
        self.paces.get(trunk).copied().unwrap_or(self.default_pace)
    }

    /// Whether `trunk` may start a call at `now`; else when it may.
    fn trunk_free(&mut self, trunk: &str, now: Instant) -> Result<(), Option<Instant>> {
        let pace = self.pace(trunk);
        let t = self.trunks.entry(trunk.to_string()).or_default();
        while t
            .starts
            .front()
            .is_some_and(|&s| now.saturating_duration_since(s) >= Duration::from_secs(1))
        {
            t.starts.pop_front();
        }
        if t.live >= pace.concurrent.max(1) {
            // Free when a call ends.
            return Err(None);
        }
        if t.starts.len() >= pace.per_second.max(1) as usize {
            return Err(t.starts.front().map(|&s| s + Duration::from_secs(1)));
        }
        Ok(())
    }

    /// The next attempt to dial at `now`, if any may start.
    pub fn poll_dial(&mut self, now: Instant, unix: i64) -> Option<Order> {
        self.clock(now, unix);
        let keys = self.due_keys(unix);
        // Closed: when it opens next (none: not within a year).
        let closed = self
            .policy
            .calendar
            .as_ref()
            .and_then(|c| self.calendars.get(c))
            .filter(|c| !keys.is_empty() && !c.is_open(unix))
            .map(|c| c.next_open(unix));
        if let Some(open) = closed {
            // Every due one waits for the opening.
            self.defer_all_due(unix, open);
            return None;
        }
        for key in keys {
            let trunk = self.waiting[&key].trunk.clone();
            if self.trunk_free(&trunk, now).is_err() {
                continue;
            }
            let mut r = self.waiting.remove(&key).expect("listed above");
            r.attempts += 1;
            let t = self.trunks.entry(trunk.clone()).or_default();
            t.live += 1;
            t.starts.push_back(now);
            let notice = Notice {
                id: r.id.clone(),
                number: r.number.clone(),
                flow: r.flow.clone(),
                vars: r.vars.clone(),
                language: r.language.clone(),
                attempt: r.attempts,
                ring: self.policy.ring,
                detect_machine: self.policy.detect_machine,
            };
            self.updates.push_back(Update {
                id: r.id.clone(),
                number: r.number.clone(),
                state: State::Calling,
                attempts: r.attempts,
                next_at: None,
                result: None,
            });
            self.live.insert(r.id.clone(), r);
            return Some(Order { notice, trunk });
        }
        None
    }

    /// The waiting ones due at `unix`, in order.
    fn due_keys(&self, unix: i64) -> Vec<(i64, u64)> {
        self.waiting
            .range(..(unix + 1, 0))
            .map(|(k, _)| *k)
            .collect()
    }

    /// Moves every due notification to the calendar's next opening (or
    /// fails them when it never opens).
    fn defer_all_due(&mut self, unix: i64, open: Option<i64>) {
        for key in self.due_keys(unix) {
            let mut r = self.waiting.remove(&key).expect("listed above");
            match open {
                Some(at) => {
                    r.due = at;
                    self.wait(r);
                }
                None => self.updates.push_back(Update {
                    number: r.number,
                    id: r.id,
                    state: State::Failed,
                    attempts: r.attempts,
                    next_at: None,
                    result: None,
                }),
            }
        }
    }

    /// An attempt's result: delivered, tried again later, or failed.
    pub fn handle_result(&mut self, now: Instant, unix: i64, res: NoticeResult) {
        self.clock(now, unix);
        let Some(mut r) = self.live.remove(&res.id) else {
            return;
        };
        if let Some(t) = self.trunks.get_mut(&r.trunk) {
            t.live = t.live.saturating_sub(1);
        }
        let wait = match res.delivery {
            Delivery::Busy => Some(self.policy.retry_busy),
            d if d.retry() => Some(self.policy.retry_no_answer),
            _ => None,
        };
        let (state, next_at) = if res.delivery.delivered() {
            (State::Delivered, None)
        } else {
            match wait {
                Some(w) if r.attempts < self.policy.attempts => {
                    (State::Pending, Some(unix + w.as_secs() as i64))
                }
                _ => (State::Failed, None),
            }
        };
        self.updates.push_back(Update {
            id: r.id.clone(),
            number: r.number.clone(),
            state,
            attempts: r.attempts,
            next_at,
            result: Some(res),
        });
        if let Some(at) = next_at {
            r.due = at;
            self.wait(r);
        }
    }

    /// The next change of state, for the store and the webhooks.
    pub fn poll_update(&mut self) -> Option<Update> {
        self.updates.pop_front()
    }

    /// When to call [`Notifier::poll_dial`] next (a notification falls
    /// due, or a trunk's second has room again); `None` while nothing
    /// waits, or only for calls to end.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let (now, unix) = self.base?;
        let mut best: Option<Instant> = None;
        let mut keep = |t: Instant| best = Some(best.map_or(t, |b: Instant| b.min(t)));
        for r in self.waiting.values() {
            if r.due > unix {
                keep(now + Duration::from_secs((r.due - unix) as u64));
                // Later ones are later still.
                break;
            }
            let pace = self.pace(&r.trunk);
            let t = self.trunks.get(&r.trunk);
            let live = t.map_or(0, |t| t.live);
            if live >= pace.concurrent.max(1) {
                continue;
            }
            let room = t
                .filter(|t| t.starts.len() >= pace.per_second.max(1) as usize)
                .and_then(|t| t.starts.front())
                .map_or(now, |&s| s + Duration::from_secs(1));
            keep(room);
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::CalendarDef;

    fn req(id: &str, trunk: &str) -> Request {
        Request {
            id: id.into(),
            number: format!("0700{id}"),
            flow: "notify_status".into(),
            vars: BTreeMap::new(),
            language: None,
            trunk: trunk.into(),
            attempts: 0,
            due: 0,
        }
    }

    fn result(o: &Order, d: Delivery) -> NoticeResult {
        NoticeResult {
            id: o.notice.id.clone(),
            attempt: o.notice.attempt,
            call_id: format!("c{}", o.notice.attempt),
            delivery: d,
            message_after: None,
            seconds: 0.0,
        }
    }

    fn notifier(pace: Pace, calendar: Option<&str>) -> Notifier {
        let mut defs = BTreeMap::new();
        let def = CalendarDef {
            time_zone: Some("Asia/Dubai".into()),
            week: [("mon", "08:00-18:00"), ("tue", "08:00-18:00")]
                .iter()
                .map(|(d, h)| (d.to_string(), h.to_string()))
                .collect(),
            dates: Vec::new(),
        };
        defs.insert("office".to_string(), def);
        let policy = Policy {
            calendar: calendar.map(str::to_string),
            max_pending: 3,
            ..Policy::default()
        };
        Notifier::new(
            policy,
            pace,
            HashMap::new(),
            Arc::new(Calendars::new(&defs).unwrap()),
        )
    }

    #[test]
    fn a_busy_line_is_tried_again_after_the_wait_until_the_attempts_run_out() {
        let t0 = Instant::now();
        let u0 = 1_800_000_000;
        let mut n = notifier(Pace::default(), None);
        n.submit(t0, u0, req("a", "carrier")).unwrap();
        let o = n.poll_dial(t0, u0).unwrap();
        assert_eq!((o.notice.attempt, o.trunk.as_str()), (1, "carrier"));
        assert_eq!(n.poll_update().unwrap().state, State::Calling);
        n.handle_result(t0, u0, result(&o, Delivery::Busy));
        let u = n.poll_update().unwrap();
        assert_eq!(
            (u.state, u.attempts, u.next_at),
            (State::Pending, 1, Some(u0 + 300))
        );
        assert_eq!(n.poll_dial(t0, u0), None);
        assert_eq!(n.poll_timeout(), Some(t0 + Duration::from_secs(300)));
        // No answer the second time: the longer wait.
        let t1 = t0 + Duration::from_secs(300);
        let o = n.poll_dial(t1, u0 + 300).unwrap();
        assert_eq!(o.notice.attempt, 2);
        n.handle_result(t1, u0 + 300, result(&o, Delivery::NoAnswer));
        n.poll_update();
        assert_eq!(n.poll_update().unwrap().next_at, Some(u0 + 1200));
        let t2 = t0 + Duration::from_secs(1200);
        let o = n.poll_dial(t2, u0 + 1200).unwrap();
        assert_eq!(o.notice.attempt, 3);
        n.handle_result(t2, u0 + 1200, result(&o, Delivery::Busy));
        n.poll_update();
        let u = n.poll_update().unwrap();
        assert_eq!((u.state, u.attempts, u.next_at), (State::Failed, 3, None));
        assert!(n.is_empty());
        assert_eq!(n.poll_timeout(), None);
    }

    #[test]
    fn delivered_and_refused_numbers_are_not_tried_again() {
        let t0 = Instant::now();
        let mut n = notifier(Pace::default(), None);
        n.submit(t0, 100, req("a", "")).unwrap();
        n.submit(t0, 100, req("b", "")).unwrap();
        let a = n.poll_dial(t0, 100).unwrap();
        let b = n.poll_dial(t0, 100);
        // One a second on this trunk.
        assert_eq!(b, None);
        assert_eq!(n.poll_timeout(), Some(t0 + Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(1);
        let b = n.poll_dial(t1, 101).unwrap();
        n.handle_result(t1, 101, result(&a, Delivery::Machine));
        n.handle_result(t1, 101, result(&b, Delivery::Refused(404)));
        let finals: Vec<(String, State)> = std::iter::from_fn(|| n.poll_update())
            .filter(|u| u.state.is_final())
            .map(|u| (u.id, u.state))
            .collect();
        assert_eq!(
            finals,
            [("a".into(), State::Delivered), ("b".into(), State::Failed)]
        );
        assert!(n.is_empty());
    }

    #[test]
    fn each_trunk_keeps_its_pace_and_its_concurrent_calls() {
        let t0 = Instant::now();
        let pace = Pace {
            per_second: 2,
            concurrent: 3,
        };
        let mut n = notifier(pace, None);
        n.policy.max_pending = 100;
        for i in 0..6 {
            n.submit(t0, 0, req(&format!("x{i}"), "carrier")).unwrap();
        }
        n.submit(t0, 0, req("y", "other")).unwrap();
        let at = |n: &mut Notifier, ms: u64| {
            let t = t0 + Duration::from_millis(ms);
            let mut got = Vec::new();
            while let Some(o) = n.poll_dial(t, (ms / 1000) as i64) {
                got.push(o);
            }
            got
        };
        let first = at(&mut n, 0);
        // Two on the carrier in the first second, and the other trunk's own.
        let trunks: Vec<&str> = first.iter().map(|o| o.trunk.as_str()).collect();
        assert_eq!(trunks, ["carrier", "carrier", "other"]);
        assert_eq!(n.poll_timeout(), Some(t0 + Duration::from_secs(1)));
        let second = at(&mut n, 1000);
        // Only one more: three are live on the carrier.
        assert_eq!(second.len(), 1);
        assert_eq!(n.calling(), 4);
        assert_eq!(n.poll_timeout(), None);
        n.handle_result(t0, 1, result(&first[0], Delivery::Human));
        let third = at(&mut n, 1500);
        assert_eq!(third.len(), 1, "a call ended: room for one");
    }

    #[test]
    fn calls_wait_for_the_calendar_to_open_and_a_full_scheduler_refuses() {
        // Monday 2027-01-04 19:00 in Dubai is 15:00 UTC; it opens Tuesday
        // at 08:00 local (04:00 UTC).
        let monday_evening = 1_799_074_800; // 2027-01-04T15:00:00Z
        let tuesday_open = monday_evening + 13 * 3600;
        let t0 = Instant::now();
        let mut n = notifier(Pace::default(), Some("office"));
        n.submit(t0, monday_evening, req("a", "")).unwrap();
        assert_eq!(n.poll_dial(t0, monday_evening), None);
        assert_eq!(
            n.poll_timeout(),
            Some(t0 + Duration::from_secs(13 * 3600)),
            "waits for Tuesday's opening"
        );
        let t1 = t0 + Duration::from_secs(13 * 3600);
        assert!(n.poll_dial(t1, tuesday_open).is_some());
        n.submit(t1, tuesday_open, req("b", "")).unwrap();
        assert_eq!(
            n.submit(t1, tuesday_open, req("b", "")),
            Err(Refused::Duplicate)
        );
        n.submit(t1, tuesday_open, req("c", "")).unwrap();
        assert_eq!(n.submit(t1, tuesday_open, req("d", "")), Err(Refused::Full));
    }
}
