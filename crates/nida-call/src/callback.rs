//! Call-backs: the caller keeps the place in line without staying on the
//! line. Booked only once the store has the request (nobody is told
//! "booked" before that), dialled only to a number the caller proved,
//! tried again after a miss, given up after the queue's tries.

use crate::io::{CallEvent, CallbackStatus, FromCentre, NotBooked, Outcome, Stored, ToCentre};
use crate::leg::{LegId, LegState, Role};
use crate::machine::{BookingFor, Call, Callback, PendingBooking};
use crate::timer::Timer;
use crate::{Dial, Purpose};
use nida_sip::sdp::Negotiated;
use std::time::Instant;

impl Call {
    /// Asks the store to book a call-back for the caller; true once the
    /// request is on its way (the store's answer comes with
    /// [`Call::handle_stored`]). False when the caller proved no number,
    /// or one waits already for it, or too many do.
    pub(crate) fn request_callback(&mut self, now: Instant, why: BookingFor) -> bool {
        self.request_callback_at(now, why, None)
    }

    /// [`Call::request_callback`], at the chosen slot's time when there
    /// is one: the call-back is made at the slot's start, or later in its
    /// hour by its turn in the slot.
    pub(crate) fn request_callback_at(
        &mut self,
        now: Instant,
        why: BookingFor,
        slot: Option<crate::calendar::Slot>,
    ) -> bool {
        let Some(number) = self.callback_number() else {
            self.not_booked(NotBooked::NotProven);
            return false;
        };
        let capacity = self.rules.callback_slot_capacity.max(1);
        let booked = self
            .shared
            .bookings
            .book_at(&number, slot.map(|s| s.at), capacity);
        let (booking, chosen) = match booked {
            Ok((b, turn)) => (
                b,
                slot.map(|s| (s.at, s.at + i64::from(turn) * 3600 / i64::from(capacity))),
            ),
            Err(crate::bookings::Refused::Duplicate) => {
                self.not_booked(NotBooked::Duplicate);
                return false;
            }
            Err(crate::bookings::Refused::Full) => {
                self.not_booked(NotBooked::Full);
                return false;
            }
        };
        let requested_at = self.unix(now);
        let row = self.callback_row(
            &number,
            requested_at,
            chosen,
            CallbackStatus::Requested,
            0,
            now,
        );
        self.outputs.push_back(crate::Output::BookCallback(row));
        self.pending_booking = Some(PendingBooking {
            why,
            number,
            requested_at,
            booking,
            chosen,
        });
        true
    }

    /// The store answered the booking.
    pub(crate) fn booking_stored(&mut self, now: Instant, stored: Stored) {
        let Some(p) = self.pending_booking.take() else {
            return;
        };
        if stored == Stored::Failed {
            self.not_booked(NotBooked::StoreFailed);
            match p.why {
                // The caller stays in line.
                BookingFor::Digit => {}
                BookingFor::Exit(priority) => self.callback_unavailable(priority),
                BookingFor::FlowOffer => {
                    if self.caller.is_some() {
                        self.stay_in_line();
                    }
                }
            }
            return;
        }
        self.callback = Some(Callback {
            attempts: 0,
            dial: None,
            done: false,
            requested_at: p.requested_at,
            number: p.number,
            _booking: Some(p.booking),
            chosen: p.chosen,
        });
        self.outcome = Outcome::CallbackWaiting;
        self.timers.stop(Timer::Announce);
        if let Some((_, due)) = p.chosen {
            return self.scheduled(now, due);
        }
        self.event(CallEvent::CallbackBooked);
        match p.why {
            BookingFor::Digit => self.close_with("callback_thanks"),
            BookingFor::Exit(_) => {
                self.close_with("callback_thanks");
                self.join_queue(now);
            }
            BookingFor::FlowOffer => {}
        }
    }

    /// The number a call-back may dial: one the caller proved, never the
    /// `From` of an untrusted source (anyone can write any number there,
    /// and nida would dial it through the carrier). Proven are the
    /// identity a trunk asserts and digits the caller keyed into the
    /// flow's `callback_number` variable. Without a carrier route nida
    /// calls back the SIP address the call came from, so the caller's own
    /// number serves.
    fn callback_number(&self) -> Option<String> {
        if let Some(n) = &self.cfg.proven_number {
            return Some(n.clone());
        }
        if let Some(n) = self
            .info
            .vars
            .get("callback_number")
            .filter(|n| !n.is_empty())
        {
            return Some(n.clone());
        }
        (self.cfg.outbound_trunk.is_none() && self.cfg.outbound_uri.is_none())
            .then(|| self.cfg.caller.clone())
    }

    fn callback_row(
        &self,
        number: &str,
        requested_at: i64,
        chosen: Option<(i64, i64)>,
        status: CallbackStatus,
        attempts: u32,
        now: Instant,
    ) -> nida_store::CallbackRow {
        nida_store::CallbackRow {
            call_id: self.cfg.call_id.clone(),
            number: number.to_string(),
            source: self.cfg.source.to_string(),
            called: self.cfg.called.clone(),
            queue: self.info.queue.clone(),
            language: self.info.language.clone(),
            priority: self.priority,
            skills: self.skills.clone(),
            vars: self.info.vars.clone(),
            path: self.path.clone(),
            status: status.as_str().to_string(),
            attempts,
            requested_at,
            updated_at: self.unix(now),
            slot_at: chosen.map(|c| c.0),
            due_at: chosen.map(|c| c.1),
        }
    }

    /// Stores the call-back's new state.
    pub(crate) fn store_callback(&mut self, now: Instant, status: CallbackStatus, attempts: u32) {
        let (requested_at, number, chosen) = self
            .callback
            .as_ref()
            .map_or((0, String::new(), None), |c| {
                (c.requested_at, c.number.clone(), c.chosen)
            });
        let row = self.callback_row(&number, requested_at, chosen, status, attempts, now);
        self.outputs.push_back(crate::Output::StoreCallback(row));
    }

    /// The core's word while the call waits without the caller; gives
    /// back what is handled as for any waiting call.
    pub(crate) fn parked_message(&mut self, now: Instant, m: FromCentre) -> Option<FromCentre> {
        match m {
            FromCentre::Connected(agent) => {
                let task = self.task?;
                self.connected(now, task, agent);
                if self.bridge.is_some() {
                    self.dial_caller(now);
                }
                None
            }
            FromCentre::Exit(_) => {
                // The caller is not waiting on the line: a call-back stays
                // in line whatever the queue's longest wait.
                self.task = None;
                self.cancel_ringing();
                self.join_queue(now);
                None
            }
            FromCentre::Refused => {
                self.task = None;
                self.finish_callback(now, CallbackStatus::Refused);
                None
            }
            FromCentre::Position { .. } => None,
            other => Some(other),
        }
    }

    /// Dials the caller for the agent now on the line (or, for a
    /// call-back that reaches the caller first, for the line).
    pub(crate) fn dial_caller(&mut self, now: Instant) {
        let number = self
            .callback
            .as_ref()
            .map_or_else(String::new, |c| c.number.clone());
        let checked = Some((Purpose::Callback, number.clone()));
        let from = self.cfg.called.clone();
        let dial = if let Some(trunk) = self.cfg.outbound_trunk.clone() {
            self.event(CallEvent::CallbackDialling {
                trunk: Some(trunk.clone()),
                uri: None,
            });
            Some((Dial::Trunk { trunk, number }, checked))
        } else {
            let (uri, checked) = match &self.cfg.outbound_uri {
                Some(t) => (t.replace("{number}", &number), checked),
                // Back to the SIP address the call came from.
                None => (format!("sip:{number}@{}", self.cfg.source), None),
            };
            match crate::static_target(&uri) {
                Some(target) => {
                    self.event(CallEvent::CallbackDialling {
                        trunk: None,
                        uri: Some(uri),
                    });
                    Some((Dial::Target(target), checked))
                }
                None => {
                    self.event(CallEvent::CallbackUndialable(uri));
                    None
                }
            }
        };
        match dial {
            Some((dial, checked)) => {
                let leg = self.new_leg(Role::CallbackCaller, dial, from, checked);
                if let Some(c) = self.callback.as_mut() {
                    c.dial = Some(leg);
                }
            }
            None => self.callback_missed(now, "cannot dial"),
        }
    }

    /// The caller answered the call-back: they are the caller's leg now,
    /// bridged to the agent who waits.
    pub(crate) fn callback_answered(&mut self, now: Instant, leg: LegId, n: Negotiated) {
        let attempts = {
            let Some(c) = self.callback.as_mut() else {
                return;
            };
            c.done = true;
            c.dial = None;
            c.attempts + 1
        };
        self.event(CallEvent::CallbackAnswered {
            codec: n.codec.name(),
        });
        self.outcome = Outcome::Answered;
        // Stored at once, so a restart before the call's end does not
        // dial it again.
        self.store_callback(now, CallbackStatus::Answered, attempts);
        let srtp = self.leg(leg).and_then(|l| l.srtp);
        let mut rtp = self.leg_rtp(now, leg, &n, srtp);
        rtp.set_relay(true);
        if let Some(l) = self.leg_mut(leg) {
            l.role = Role::Caller;
            l.state = LegState::Up;
            l.rtp = Some(rtp);
        }
        self.caller = Some(leg);
        self.closing = false;
        self.hang_up = None;
        self.timers
            .set(Timer::MaxDuration, now + self.cfg.call_duration);
        match self.bridge {
            Some(b) => self.links = vec![(leg, b.leg), (b.leg, leg)],
            // Dialled first: the caller waits for the next agent.
            None => self.first_in_line(now),
        }
    }

    /// The caller did not answer a call-back: the agent is freed, and the
    /// call goes back in line after the retry time (or gives up).
    pub(crate) fn callback_missed(&mut self, now: Instant, why: &str) {
        if let Some(b) = self.bridge.take() {
            self.drop_leg(b.leg);
        }
        self.links.clear();
        self.discard_recording();
        self.agent = None;
        self.answered_at = None;
        if let Some(task) = self.task.take() {
            self.centre(ToCentre::Complete(task));
        }
        self.outcome = Outcome::CallbackWaiting;
        let retry = self.rules.callback_retry;
        let most = self.rules.callback_attempts;
        let Some(c) = self.callback.as_mut() else {
            return;
        };
        c.attempts += 1;
        let attempts = c.attempts;
        self.event(CallEvent::CallbackMissed {
            attempts,
            why: why.to_string(),
        });
        if attempts < most {
            self.timers.set(Timer::CallbackRetry, now + retry);
            self.store_callback(now, CallbackStatus::NotAnswered, attempts);
        } else {
            self.finish_callback(now, CallbackStatus::Failed);
        }
    }

    pub(crate) fn finish_callback(&mut self, now: Instant, status: CallbackStatus) {
        let Some(c) = self.callback.as_mut() else {
            return;
        };
        c.done = true;
        let attempts = c.attempts;
        self.outcome = if status == CallbackStatus::Failed {
            Outcome::CallbackFailed
        } else {
            Outcome::CallbackRefused
        };
        self.store_callback(now, status, attempts);
    }

    /// The agent left before the call-back's caller answered: the next
    /// agent, at the head of the line.
    pub(crate) fn callback_agent_left(&mut self, now: Instant) {
        self.event(CallEvent::CallbackAgentLeft);
        self.discard_recording();
        if let Some(leg) = self.callback.as_mut().and_then(|c| c.dial.take()) {
            self.drop_leg(leg);
        }
        if let Some(task) = self.task.take() {
            self.centre(ToCentre::Complete(task));
        }
        self.join_queue(now);
    }
}
