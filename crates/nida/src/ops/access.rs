//! Who may use the admin API, decided without I/O: agent page sessions
//! (they end after [`SESSION_IDLE`] unused, after [`SESSION_MAX`] in any
//! case, and at log-out), short-lived single-use tickets for the event
//! stream (a browser's `EventSource` cannot send a header, and a token in a
//! URL ends up in logs and histories), and the log-in throttle: after
//! [`LOGIN_FAILURES`] wrong log-ins within [`LOGIN_WINDOW`], from one
//! address or for one user, further tries are refused until the window
//! has passed. The API shell passes the time in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A session unused this long ends.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after its log-in, used or not.
pub const SESSION_MAX: Duration = Duration::from_secs(12 * 3600);
/// An event-stream ticket is good this long, once.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(30);
/// Wrong log-ins within [`LOGIN_WINDOW`] that stop further tries.
pub const LOGIN_FAILURES: usize = 5;
/// The window of the log-in throttle.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(300);
/// Sessions and tickets kept at most (the oldest go first).
const MAX_ENTRIES: usize = 10_000;

/// Who a token or ticket stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The admin token's holder.
    Admin,
    /// An agent logged in on the agent page.
    Agent(u32),
}

#[derive(Debug, Clone, Copy)]
struct Session {
    agent: u32,
    started: Instant,
    used: Instant,
}

/// Sessions, tickets and the log-in throttle.
#[derive(Debug, Default)]
pub struct Access {
    sessions: HashMap<String, Session>,
    tickets: HashMap<String, (Who, Instant)>,
    /// Wrong log-ins per address and per user.
    failures_by_ip: HashMap<IpAddr, Vec<Instant>>,
    failures_by_user: HashMap<String, Vec<Instant>>,
}

fn recent(list: &mut Vec<Instant>, now: Instant) -> usize {
    list.retain(|t| now.saturating_duration_since(*t) < LOGIN_WINDOW);
    list.len()
}

impl Access {
    /// No sessions yet.
    pub fn new() -> Access {
        Access::default()
    }

    /// Whether a log-in for `user` from `ip` may be tried now; `Err` with
    /// the time to wait when the throttle holds it.
    pub fn may_try_login(&mut self, now: Instant, ip: IpAddr, user: &str) -> Result<(), Duration> {
        let by_ip = self
            .failures_by_ip
            .get_mut(&ip)
            .map_or(0, |l| recent(l, now));
        let by_user = self
            .failures_by_user
            .get_mut(user)
            .map_or(0, |l| recent(l, now));
        if by_ip < LOGIN_FAILURES && by_user < LOGIN_FAILURES {
            return Ok(());
        }
        let oldest = [
            self.failures_by_ip.get(&ip),
            self.failures_by_user.get(user),
        ]
        .into_iter()
        .flatten()
        .filter(|l| l.len() >= LOGIN_FAILURES)
        .filter_map(|l| l.first().copied())
        .max()
        .unwrap_or(now);
        Err(LOGIN_WINDOW.saturating_sub(now.saturating_duration_since(oldest)))
    }

    /// A wrong log-in for `user` from `ip`.
    pub fn login_failed(&mut self, now: Instant, ip: IpAddr, user: &str) {
        if self.failures_by_ip.len() >= MAX_ENTRIES {
            self.failures_by_ip.retain(|_, l| recent(l, now) > 0);
        }
        if self.failures_by_user.len() >= MAX_ENTRIES {
            self.failures_by_user.retain(|_, l| recent(l, now) > 0);
        }
        self.failures_by_ip.entry(ip).or_default().push(now);
        self.failures_by_user
            .entry(user.to_string())
            .or_default()
            .push(now);
    }

    /// A session for `agent` under the new `token`.
    pub fn start_session(&mut self, now: Instant, agent: u32, token: String) {
        self.expire(now);
        if self.sessions.len() >= MAX_ENTRIES {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.sessions.remove(&k);
            }
        }
        self.sessions.insert(
            token,
            Session {
                agent,
                started: now,
                used: now,
            },
        );
    }

    /// The agent of a live session (which counts as used now).
    pub fn session(&mut self, now: Instant, token: &str) -> Option<u32> {
        let s = self.sessions.get_mut(token)?;
        if now.saturating_duration_since(s.used) >= SESSION_IDLE
            || now.saturating_duration_since(s.started) >= SESSION_MAX
        {
            self.sessions.remove(token);
            return None;
        }
        s.used = now;
        Some(s.agent)
    }

    /// Ends a session; whether there was one.
    pub fn end_session(&mut self, token: &str) -> bool {
        self.sessions.remove(token).is_some()
    }

    /// A ticket for `who` to open the event stream with, under `ticket`.
    pub fn issue_ticket(&mut self, now: Instant, who: Who, ticket: String) {
        self.tickets
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < TICKET_LIFETIME);
        if self.tickets.len() < MAX_ENTRIES {
            self.tickets.insert(ticket, (who, now));
        }
    }

    /// Who a ticket was issued to, if it is fresh; it is good only once.
    pub fn take_ticket(&mut self, now: Instant, ticket: &str) -> Option<Who> {
        let (who, at) = self.tickets.remove(ticket)?;
        (now.saturating_duration_since(at) < TICKET_LIFETIME).then_some(who)
    }

    fn expire(&mut self, now: Instant) {
        self.sessions.retain(|_, s| {
            now.saturating_duration_since(s.used) < SESSION_IDLE
                && now.saturating_duration_since(s.started) < SESSION_MAX
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_when_idle_at_their_age_and_at_log_out() {
        let t0 = Instant::now();
        let mut a = Access::new();
        a.start_session(t0, 1, "s1".into());
        assert_eq!(a.session(t0 + SESSION_IDLE / 2, "s1"), Some(1));
        assert_eq!(a.session(t0 + SESSION_IDLE, "s1"), Some(1), "used since");
        assert_eq!(
            a.session(t0 + SESSION_IDLE * 2 + Duration::from_secs(1), "s1"),
            None
        );
        // Used all the time, it still ends at SESSION_MAX.
        a.start_session(t0, 2, "s2".into());
        let mut t = t0;
        while t < t0 + SESSION_MAX - SESSION_IDLE {
            t += SESSION_IDLE / 2;
            assert_eq!(a.session(t, "s2"), Some(2));
        }
        assert_eq!(a.session(t0 + SESSION_MAX, "s2"), None);
        a.start_session(t0, 3, "s3".into());
        assert!(a.end_session("s3"));
        assert_eq!(a.session(t0, "s3"), None);
        assert!(!a.end_session("s3"));
    }

    #[test]
    fn tickets_are_good_once_and_briefly() {
        let t0 = Instant::now();
        let mut a = Access::new();
        a.issue_ticket(t0, Who::Agent(4), "t1".into());
        assert_eq!(a.take_ticket(t0, "t1"), Some(Who::Agent(4)));
        assert_eq!(a.take_ticket(t0, "t1"), None);
        a.issue_ticket(t0, Who::Admin, "t2".into());
        assert_eq!(a.take_ticket(t0 + TICKET_LIFETIME, "t2"), None);
    }

    #[test]
    fn the_throttle_holds_per_address_and_per_user() {
        let t0 = Instant::now();
        let mut a = Access::new();
        let (ip1, ip2): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..LOGIN_FAILURES {
            assert!(a.may_try_login(t0, ip1, "1001").is_ok());
            a.login_failed(t0, ip1, "1001");
        }
        assert!(a.may_try_login(t0, ip1, "1002").is_err(), "same address");
        assert!(a.may_try_login(t0, ip2, "1001").is_err(), "same user");
        assert!(a.may_try_login(t0, ip2, "1002").is_ok());
        let wait = a
            .may_try_login(t0 + Duration::from_secs(100), ip1, "x")
            .unwrap_err();
        assert_eq!(wait, LOGIN_WINDOW - Duration::from_secs(100));
        assert!(a.may_try_login(t0 + LOGIN_WINDOW, ip1, "1001").is_ok());
    }
}
