//! The agent holds the caller: from the softphone (a re-INVITE that stops
//! nida sending to it, `a=sendonly` or `a=inactive`, RFC 3264 8.4) or from
//! the agent page (nida holds the agent's leg with its own re-INVITE).
//! Either way the caller hears the queue's music instead of silence and
//! nobody hears the other; resuming (both holds released) restores the
//! bridge. The time on hold is counted for the record.

use crate::io::{CallEvent, Output};
use crate::machine::Call;
use nida_sip::sdp::{Direction, Negotiated};
use std::time::{Duration, Instant};

/// Who holds the caller, since when, and for how long so far.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Hold {
    /// The agent's phone holds (its offer stopped nida's sending).
    pub phone: bool,
    /// The agent page holds.
    pub page: bool,
    /// The agent consults a colleague.
    pub consult: bool,
    /// Since when the caller is held.
    pub since: Option<Instant>,
    /// Time on hold before `since`.
    pub total: Duration,
    /// Times on hold.
    pub count: u32,
}

impl Hold {
    /// Time on hold up to `now`.
    pub fn time(&self, now: Instant) -> Duration {
        self.total
            + self
                .since
                .map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
    }
}

impl Call {
    /// The bridged leg's dialog agreed on new media: a peer that no
    /// longer receives from nida holds the caller.
    pub(crate) fn bridged_media(&mut self, now: Instant, n: &Negotiated) {
        self.hold.phone = matches!(n.direction, Direction::RecvOnly | Direction::Inactive);
        self.apply_hold(now);
    }

    /// The agent page holds (`on`) or resumes the caller: nida's own
    /// re-INVITE to the agent's phone, then the same as a phone's hold.
    pub(crate) fn page_hold(&mut self, now: Instant, on: bool) {
        let Some(b) = self.bridge else {
            return;
        };
        if self.caller.is_none() || self.hold.page == on {
            return;
        }
        self.hold.page = on;
        self.outputs.push_back(Output::HoldLeg { leg: b.leg, on });
        self.apply_hold(now);
    }

    /// Puts the caller on hold or back in the bridge as the two holds
    /// say.
    pub(crate) fn apply_hold(&mut self, now: Instant) {
        let (Some(b), Some(_)) = (self.bridge, self.caller) else {
            return;
        };
        let held = self.hold.phone || self.hold.page || self.hold.consult;
        match (held, self.hold.since) {
            (true, None) => {
                self.hold.since = Some(now);
                self.hold.count += 1;
                self.wire(now);
                if let Some(rtp) = self.caller_rtp() {
                    rtp.set_relay(false);
                }
                self.start_music();
                self.event(CallEvent::Held {
                    leg: b.leg,
                    by_page: self.hold.page,
                });
            }
            (false, Some(since)) => {
                self.end_hold(now, since);
                self.wire(now);
            }
            _ => {}
        }
    }

    /// The hold ends (resumed, or the bridge is gone): the music stops
    /// and the time counts.
    pub(crate) fn end_hold(&mut self, now: Instant, since: Instant) {
        let held = now.saturating_duration_since(since);
        self.hold.total += held;
        self.hold.since = None;
        self.music = false;
        self.stop_playback();
        if let Some(rtp) = self.caller_rtp() {
            rtp.set_relay(true);
        }
        if let Some(b) = self.bridge {
            self.event(CallEvent::Resumed { leg: b.leg, held });
        }
    }

    /// Every hold is let go (the bridge ends or changes hands): a hold
    /// in progress ends and counts.
    pub(crate) fn release_holds(&mut self, now: Instant) {
        if let Some(since) = self.hold.since {
            self.end_hold(now, since);
        }
        self.hold.phone = false;
        self.hold.page = false;
        self.hold.consult = false;
    }

    /// Whether the caller is held now.
    pub(crate) fn on_hold(&self) -> bool {
        self.hold.since.is_some()
    }
}
