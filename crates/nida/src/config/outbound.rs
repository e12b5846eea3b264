//! Which numbers nida may dial out to, and how often (sans-IO).
//!
//! Every call nida places to a number through a carrier (a call-back, a
//! transfer to a number) passes [`Outbound::check`]: the number must match
//! one of the allowed patterns, and the calls in the last hour, in total
//! and to that number, must be under their caps. A toll fraudster who got a
//! number into a call-back or a transfer still cannot call abroad or run up
//! a bill. The driver records every verdict in the store.

use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// `[outbound]`: the numbers nida may dial through a carrier.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Patterns of the numbers allowed (in nida's format, before the
    /// trunk's rewriting): digits, `+`, `*` and `#` stand for themselves,
    /// `X` for any digit, `Z` for 1 to 9, `N` for 2 to 9, and a final `.`
    /// for one or more further characters. Default: national and local
    /// numbers only (`0Z.`, `Z.`): nothing starting with `00` or `+`.
    pub allow: Vec<String>,
    /// Calls out in any hour, all numbers together.
    pub max_per_hour: u32,
    /// Calls out to one number in any hour.
    pub max_per_number_per_hour: u32,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            allow: vec!["0Z.".into(), "Z.".into()],
            max_per_hour: 600,
            max_per_number_per_hour: 6,
        }
    }
}

/// What is wrong with the `[outbound]` section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// An allow-list entry that is not a number pattern.
    #[error("allow: {0:?} is not a number pattern (digits, +, *, #, X, Z, N, a final .)")]
    BadPattern(String),
    /// A cap of zero would forbid every call.
    #[error("max_per_hour and max_per_number_per_hour must be above 0")]
    ZeroCap,
}

impl OutboundConfig {
    /// Whether an allowed pattern matches `number` (the caps aside).
    pub fn allows(&self, number: &str) -> bool {
        self.allow.iter().any(|p| matches(p, number))
    }

    /// Checks the patterns and caps; the message names what is wrong.
    pub fn validate(&self) -> Result<(), OutboundError> {
        for p in &self.allow {
            let body = p.strip_suffix('.').unwrap_or(p);
            if body.is_empty()
                || !body
                    .chars()
                    .all(|c| c.is_ascii_digit() || "+*#XZN".contains(c))
            {
                return Err(OutboundError::BadPattern(p.clone()));
            }
        }
        if self.max_per_hour == 0 || self.max_per_number_per_hour == 0 {
            return Err(OutboundError::ZeroCap);
        }
        Ok(())
    }
}

/// Why a number may not be dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No allowed pattern matches it.
    NotAllowed,
    /// The hour's calls out reached `max_per_hour`.
    HourlyCap,
    /// The hour's calls to this number reached `max_per_number_per_hour`.
    NumberCap,
}

impl Refusal {
    /// The verdict as stored and logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NotAllowed => "not_allowed",
            Refusal::HourlyCap => "hourly_cap",
            Refusal::NumberCap => "number_cap",
        }
    }
}

/// Whether `number` matches `pattern` (see [`OutboundConfig::allow`]).
fn matches(pattern: &str, number: &str) -> bool {
    let (body, open) = match pattern.strip_suffix('.') {
        Some(b) => (b, true),
        None => (pattern, false),
    };
    let n: Vec<char> = number.chars().collect();
    let fits = |p: char, c: char| match p {
        'X' => c.is_ascii_digit(),
        'Z' => ('1'..='9').contains(&c),
        'N' => ('2'..='9').contains(&c),
        p => p == c,
    };
    let len = body.chars().count();
    let length_ok = if open { n.len() > len } else { n.len() == len };
    length_ok
        && body.chars().zip(&n).all(|(p, &c)| fits(p, c))
        && n[len.min(n.len())..]
            .iter()
            .all(|c| c.is_ascii_digit() || "*#".contains(*c))
}

/// The outbound policy and the last hour's calls.
#[derive(Debug)]
pub struct Outbound {
    cfg: OutboundConfig,
    /// When each call in the last hour went out.
    recent: VecDeque<Instant>,
    /// The same, per number.
    per_number: HashMap<String, VecDeque<Instant>>,
}

const HOUR: Duration = Duration::from_secs(3600);

impl Outbound {
    /// A policy with no calls yet.
    pub fn new(cfg: OutboundConfig) -> Outbound {
        Outbound {
            cfg,
            recent: VecDeque::new(),
            per_number: HashMap::new(),
        }
    }

    /// Whether `number` may be dialled at `now`; an allowed call counts
    /// against the caps.
    pub fn check(&mut self, now: Instant, number: &str) -> Result<(), Refusal> {
        let old = |q: &mut VecDeque<Instant>| {
            while q.front().is_some_and(|t| now.duration_since(*t) >= HOUR) {
                q.pop_front();
            }
        };
        old(&mut self.recent);
        self.per_number.retain(|_, q| {
            old(q);
            !q.is_empty()
        });
        if !self.cfg.allow.iter().any(|p| matches(p, number)) {
            return Err(Refusal::NotAllowed);
        }
        if self.recent.len() >= self.cfg.max_per_hour as usize {
            return Err(Refusal::HourlyCap);
        }
        let q = self.per_number.entry(number.to_string()).or_default();
        if q.len() >= self.cfg.max_per_number_per_hour as usize {
            return Err(Refusal::NumberCap);
        }
        q.push_back(now);
        self.recent.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_allows_national_numbers_and_nothing_abroad() {
        let mut o = Outbound::new(OutboundConfig::default());
        let t = Instant::now();
        assert_eq!(o.check(t, "07700900123"), Ok(()));
        assert_eq!(o.check(t, "5550100"), Ok(()));
        for abroad in ["00447700900123", "+447700900123", "0", "", "07x", "1900;x"] {
            assert_eq!(o.check(t, abroad), Err(Refusal::NotAllowed), "{abroad}");
        }
    }

    #[test]
    fn patterns() {
        assert!(matches("+9715X.", "+971501234567"));
        assert!(!matches("+9715X.", "+9715"));
        assert!(matches("04XXXXXXX", "043456789"));
        assert!(!matches("04XXXXXXX", "0434567890"));
        assert!(matches("N.", "2*1#"));
        assert!(!matches("N.", "1234"));
        let bad = OutboundConfig {
            allow: vec!["0[1-9].*".into()],
            ..OutboundConfig::default()
        };
        assert_eq!(
            bad.validate(),
            Err(OutboundError::BadPattern("0[1-9].*".into()))
        );
    }

    #[test]
    fn caps_per_number_and_per_hour_slide_with_the_hour() {
        let mut o = Outbound::new(OutboundConfig {
            max_per_hour: 3,
            max_per_number_per_hour: 2,
            ..OutboundConfig::default()
        });
        let t = Instant::now();
        assert_eq!(o.check(t, "0123"), Ok(()));
        assert_eq!(o.check(t, "0123"), Ok(()));
        assert_eq!(o.check(t, "0123"), Err(Refusal::NumberCap));
        assert_eq!(o.check(t, "0456"), Ok(()));
        assert_eq!(o.check(t, "0789"), Err(Refusal::HourlyCap));
        let later = t + HOUR;
        assert_eq!(o.check(later, "0123"), Ok(()));
        assert_eq!(o.check(later, "0789"), Ok(()));
    }
}
