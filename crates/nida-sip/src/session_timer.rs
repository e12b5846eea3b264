//! Session timers (RFC 4028), sans-IO: what interval and refresher a
//! request and its answer agree, when the refresher must refresh and when
//! the other side gives the dialog up.
//!
//! The endpoint reads the headers of every INVITE, re-INVITE and UPDATE
//! (and of the 2xx to its own) through these functions and keeps one
//! [`SessionTimer`] per dialog that has one.

use crate::message::{split_list, Headers};
use std::time::{Duration, Instant};

/// The smallest interval RFC 4028 allows (4: 90 seconds).
pub const SMALLEST: Duration = Duration::from_secs(90);

/// nida's wishes for session timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerWish {
    /// The interval nida asks for (`None`: nida asks for none, but takes
    /// a peer's).
    pub expires: Option<Duration>,
    /// The smallest interval nida accepts (at least 90 s).
    pub min_se: Duration,
}

impl Default for TimerWish {
    fn default() -> Self {
        TimerWish {
            expires: Some(Duration::from_secs(1800)),
            min_se: SMALLEST,
        }
    }
}

/// Who sends the refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// nida.
    Nida,
    /// The peer.
    Peer,
}

/// What a request and its answer agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreement {
    /// The session interval.
    pub interval: Duration,
    /// Who refreshes.
    pub refresher: Refresher,
    /// The peer supports timers: the 2xx carries `Require: timer`.
    pub require: bool,
}

/// Whether a header list (Supported, Require) names an option tag.
pub fn names(headers: &Headers, header: &str, tag: &str) -> bool {
    headers
        .all(header)
        .flat_map(split_list)
        .any(|t| t.trim().eq_ignore_ascii_case(tag))
}

/// `Session-Expires: <seconds>[;refresher=uac|uas]`: the interval and the
/// refresher parameter, if any.
fn session_expires(headers: &Headers) -> Option<(Duration, Option<String>)> {
    let v = headers.get("Session-Expires")?;
    let mut parts = v.split(';');
    let secs: u64 = parts.next()?.trim().parse().ok()?;
    let refresher = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("refresher")
            .then(|| v.trim().to_ascii_lowercase())
    });
    Some((Duration::from_secs(secs), refresher))
}

/// `Min-SE: <seconds>`.
fn min_se(headers: &Headers) -> Option<Duration> {
    let v = headers.get("Min-SE")?;
    let secs: u64 = v.split(';').next()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

/// A request nida answers (INVITE, re-INVITE or UPDATE; RFC 4028 9):
/// `Err(min_se)` when its interval is below nida's smallest (answer 422
/// with that `Min-SE`), `Ok(None)` when neither side wants a timer.
pub fn as_uas(req: &Headers, wish: TimerWish) -> Result<Option<Agreement>, Duration> {
    let supported = names(req, "Supported", "timer") || names(req, "Require", "timer");
    let their_min = min_se(req).unwrap_or(SMALLEST);
    let (interval, param) = match session_expires(req) {
        Some((asked, param)) => {
            if asked < wish.min_se {
                return Err(wish.min_se);
            }
            // nida may shorten it, never below what the peer accepts.
            let mine = wish.expires.unwrap_or(asked);
            (asked.min(mine.max(their_min).max(wish.min_se)), param)
        }
        None => match wish.expires {
            Some(mine) => (mine.max(their_min).max(wish.min_se), None),
            None => return Ok(None),
        },
    };
    let refresher = match param.as_deref() {
        Some("uas") => Refresher::Nida,
        Some("uac") => Refresher::Peer,
        // The peer left it to nida: a peer that knows timers refreshes
        // (it asked for them); one that does not cannot.
        _ if supported => Refresher::Peer,
        _ => Refresher::Nida,
    };
    Ok(Some(Agreement {
        interval,
        refresher,
        require: supported,
    }))
}

/// The 2xx to a request nida sent (its INVITE, re-INVITE or UPDATE):
/// the peer's `Session-Expires` decides; none means no timer.
pub fn as_uac(resp: &Headers) -> Option<Agreement> {
    let (interval, param) = session_expires(resp)?;
    let refresher = match param.as_deref() {
        Some("uas") => Refresher::Peer,
        _ => Refresher::Nida,
    };
    Some(Agreement {
        interval,
        refresher,
        require: true,
    })
}

/// The 422 to a request nida sent: the `Min-SE` to ask again with.
pub fn retry_interval(resp: &Headers, wish: TimerWish) -> Option<Duration> {
    min_se(resp).map(|m| m.max(wish.min_se))
}

/// Adds nida's timer headers to a request it sends: `Supported: timer`,
/// and, with an interval, `Session-Expires` naming nida (the request's
/// sender) the refresher, and `Min-SE`.
pub fn request_headers(h: &mut Headers, interval: Option<Duration>, wish: TimerWish) {
    if let Some(i) = interval {
        h.push("Session-Expires", format!("{};refresher=uac", i.as_secs()));
        h.push("Min-SE", wish.min_se.as_secs().to_string());
    }
}

/// Adds the 2xx's timer headers for an agreement nida made as UAS.
pub fn response_headers(h: &mut Headers, a: &Agreement) {
    let who = match a.refresher {
        Refresher::Nida => "uas",
        Refresher::Peer => "uac",
    };
    h.push(
        "Session-Expires",
        format!("{};refresher={who}", a.interval.as_secs()),
    );
    if a.require {
        h.push("Require", "timer");
    }
}

/// One dialog's running session timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    /// The interval.
    pub interval: Duration,
    /// Who refreshes.
    pub refresher: Refresher,
    /// When the session was last refreshed.
    pub since: Instant,
}

/// What a session timer asks for when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerDue {
    /// nida refreshes now.
    Refresh,
    /// No refresh came: end the dialog with BYE.
    Expired,
}

impl SessionTimer {
    /// Starts (or restarts) a timer at `now` for an agreement.
    pub fn start(now: Instant, a: &Agreement) -> SessionTimer {
        SessionTimer {
            interval: a.interval,
            refresher: a.refresher,
            since: now,
        }
    }

    /// When it fires: nida refreshes at half the interval (RFC 4028 7.4,
    /// 9); the other side is given until the interval less a third of it,
    /// at most 32 s (RFC 4028 10).
    pub fn deadline(&self) -> Instant {
        match self.refresher {
            Refresher::Nida => self.since + self.interval / 2,
            Refresher::Peer => {
                let margin = (self.interval / 3).min(Duration::from_secs(32));
                self.since + self.interval - margin
            }
        }
    }

    /// What to do at `now`, if it is due.
    pub fn due(&self, now: Instant) -> Option<TimerDue> {
        (now >= self.deadline()).then_some(match self.refresher {
            Refresher::Nida => TimerDue::Refresh,
            Refresher::Peer => TimerDue::Expired,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        let mut h = Headers::default();
        for (k, v) in pairs {
            h.push(k, *v);
        }
        h
    }

    const WISH: TimerWish = TimerWish {
        expires: Some(Duration::from_secs(1800)),
        min_se: SMALLEST,
    };

    #[test]
    fn a_uac_that_asks_refreshes_by_default() {
        let req = headers(&[("Supported", "100rel, timer"), ("Session-Expires", "600")]);
        let a = as_uas(&req, WISH).unwrap().unwrap();
        assert_eq!(a.interval, Duration::from_secs(600));
        assert_eq!(a.refresher, Refresher::Peer);
        assert!(a.require);
        let mut h = Headers::default();
        response_headers(&mut h, &a);
        assert_eq!(h.get("Session-Expires"), Some("600;refresher=uac"));
        assert_eq!(h.get("Require"), Some("timer"));
    }

    #[test]
    fn the_refresher_parameter_is_obeyed() {
        let req = headers(&[
            ("Supported", "timer"),
            ("Session-Expires", "300;refresher=uas"),
        ]);
        let a = as_uas(&req, WISH).unwrap().unwrap();
        assert_eq!((a.interval.as_secs(), a.refresher), (300, Refresher::Nida));
    }

    #[test]
    fn too_short_gets_422_with_nidas_min_se() {
        let req = headers(&[("Session-Expires", "30")]);
        assert_eq!(as_uas(&req, WISH), Err(SMALLEST));
        let resp = headers(&[("Min-SE", "120")]);
        assert_eq!(retry_interval(&resp, WISH), Some(Duration::from_secs(120)));
    }

    #[test]
    fn a_uac_without_timers_gets_nida_as_refresher() {
        let req = headers(&[]);
        let a = as_uas(&req, WISH).unwrap().unwrap();
        assert_eq!((a.interval.as_secs(), a.refresher), (1800, Refresher::Nida));
        assert!(
            !a.require,
            "no Require for a peer that does not know timers"
        );
        let none = TimerWish {
            expires: None,
            ..WISH
        };
        assert_eq!(as_uas(&req, none), Ok(None));
        // nida shortens a long interval to its own.
        let req = headers(&[("Session-Expires", "7200"), ("Supported", "timer")]);
        assert_eq!(
            as_uas(&req, WISH).unwrap().unwrap().interval.as_secs(),
            1800
        );
    }

    #[test]
    fn the_2xx_decides_for_nidas_requests() {
        let a = as_uac(&headers(&[("Session-Expires", "90;refresher=uac")])).unwrap();
        assert_eq!(a.refresher, Refresher::Nida);
        let a = as_uac(&headers(&[("Session-Expires", "90;refresher=uas")])).unwrap();
        assert_eq!(a.refresher, Refresher::Peer);
        assert!(as_uac(&headers(&[])).is_none());
        let mut h = Headers::default();
        request_headers(&mut h, Some(Duration::from_secs(1800)), WISH);
        assert_eq!(h.get("Session-Expires"), Some("1800;refresher=uac"));
        assert_eq!(h.get("Min-SE"), Some("90"));
    }

    #[test]
    fn deadlines_in_virtual_time() {
        let t0 = Instant::now();
        let a = Agreement {
            interval: Duration::from_secs(90),
            refresher: Refresher::Nida,
            require: true,
        };
        let t = SessionTimer::start(t0, &a);
        assert_eq!(t.due(t0 + Duration::from_secs(44)), None);
        assert_eq!(t.due(t0 + Duration::from_secs(45)), Some(TimerDue::Refresh));
        let peer = SessionTimer::start(
            t0,
            &Agreement {
                refresher: Refresher::Peer,
                ..a
            },
        );
        // 90 s less a third (30 s).
        assert_eq!(peer.deadline(), t0 + Duration::from_secs(60));
        assert_eq!(
            peer.due(t0 + Duration::from_secs(60)),
            Some(TimerDue::Expired)
        );
        let long = SessionTimer::start(
            t0,
            &Agreement {
                interval: Duration::from_secs(1800),
                refresher: Refresher::Peer,
                require: true,
            },
        );
        assert_eq!(
            long.deadline(),
            t0 + Duration::from_secs(1768),
            "32 s at most"
        );
    }
}
