//! Status notification calls: nida calls a citizen to tell them their
//! request moved on. The call starts with no caller: it dials the number
//! (through the outbound trunk, checked against the outbound rules), and
//! when someone answers it listens for who did ([`crate::amd`]): a person
//! hears the flow at once; an answering machine hears it after its
//! greeting and beep. Busy, unanswered and refused attempts end the call
//! at once. Every attempt ends with an [`Output::Notice`] for the
//! scheduler (which retries per its policy), and an answered one with
//! the call's record too.

use crate::amd::{AnsweredBy, Detector, Verdict};
use crate::io::{CallEvent, CallInfo, Outcome};
use crate::leg::{LegId, LegState, Role};
use crate::machine::Call;
use crate::rules::{CallConfig, Shared};
use crate::timer::Timer;
use crate::{Dial, Output, Purpose};
use nida_sip::rng::Rng;
use nida_sip::sdp::Negotiated;
use nida_sip::EndReason;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One attempt at a notification, as the scheduler hands it to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The notification's id.
    pub id: String,
    /// The number to call (in nida's format; the trunk rewrites it).
    pub number: String,
    /// The flow the answerer hears.
    pub flow: String,
    /// The flow's variables (the application's status, ...).
    pub vars: BTreeMap<String, String>,
    /// The citizen's language, when known.
    pub language: Option<String>,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// How long the phone may ring.
    pub ring: Duration,
    /// Whether to listen for an answering machine before the flow.
    pub detect_machine: bool,
}

/// How an attempt went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A person answered and heard the flow.
    Human,
    /// A machine answered; the message was left after its greeting.
    Machine,
    /// Answered, but hung up before the message began.
    HungUp,
    /// Busy (486, 600).
    Busy,
    /// Nobody answered within the ring time (or 408, 480).
    NoAnswer,
    /// Refused with this status (403, 404, 603, ...).
    Refused(u16),
    /// Not placed: no RTP port (nida at capacity), the outbound rules'
    /// caps, nida stopping (tried again later).
    NotPlaced,
    /// Answered with no audio nida can use.
    NoAudio,
}

impl Delivery {
    /// As stored and sent to webhooks.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Human => "answered",
            Delivery::Machine => "machine",
            Delivery::HungUp => "hung_up",
            Delivery::Busy => "busy",
            Delivery::NoAnswer => "no_answer",
            Delivery::Refused(_) => "refused",
            Delivery::NotPlaced => "not_placed",
            Delivery::NoAudio => "no_audio",
        }
    }

    /// Whether the message was delivered (to a person or a machine).
    pub fn delivered(self) -> bool {
        matches!(self, Delivery::Human | Delivery::Machine)
    }

    /// Whether another attempt may reach them.
    pub fn retry(self) -> bool {
        matches!(
            self,
            Delivery::Busy
                | Delivery::NoAnswer
                | Delivery::HungUp
                | Delivery::NoAudio
                | Delivery::NotPlaced
        )
    }

    fn of_end(r: EndReason) -> Delivery {
        match r {
            EndReason::Refused(486 | 600) => Delivery::Busy,
            EndReason::Refused(408 | 480 | 487) | EndReason::NoAnswer => Delivery::NoAnswer,
            EndReason::Refused(code) | EndReason::Rejected(code) => Delivery::Refused(code),
            _ => Delivery::NoAnswer,
        }
    }
}

/// What an attempt came to, for the scheduler and the store.
#[derive(Debug, Clone, PartialEq)]
pub struct NoticeResult {
    /// The notification.
    pub id: String,
    /// The attempt.
    pub attempt: u32,
    /// The call's Call-ID.
    pub call_id: String,
    /// How it went.
    pub delivery: Delivery,
    /// Seconds from the answer to the message's start (the time the
    /// detector listened, and a machine's greeting).
    pub message_after: Option<f64>,
    /// Seconds answered.
    pub seconds: f64,
}

/// The notification's part of the call.
pub(crate) struct NoticeCall {
    notice: Notice,
    /// The leg dialling the number, while it rings.
    dialling: Option<LegId>,
    answered_at: Option<Instant>,
    detector: Option<Detector>,
    /// Audio last heard from the answerer (for a phone that sends
    /// nothing while quiet).
    heard_at: Option<Instant>,
    message_at: Option<Instant>,
    delivery: Option<Delivery>,
}

impl NoticeCall {
    /// Whether the number is still being dialled.
    pub(crate) fn dialling(&self) -> bool {
        self.dialling.is_some()
    }
}

impl Call {
    /// A notification attempt: dials `notice.number` and goes on when it
    /// answers. `unix` is the wall clock at `now`, in seconds.
    pub fn notification(
        now: Instant,
        unix: i64,
        shared: Shared,
        cfg: CallConfig,
        rng: Rng,
        notice: Notice,
    ) -> Call {
        let mut c = Call::empty(now, unix, shared, cfg, rng);
        c.info = CallInfo {
            call_id: c.cfg.call_id.clone(),
            queue: String::new(),
            language: notice
                .language
                .clone()
                .unwrap_or_else(|| c.language.clone()),
            path: Vec::new(),
            vars: notice.vars.clone(),
        };
        c.language = c.info.language.clone();
        c.outcome = Outcome::Notified;
        c.event(CallEvent::NoticeDialling {
            id: notice.id.clone(),
            attempt: notice.attempt,
        });
        let number = notice.number.clone();
        let checked = Some((Purpose::Notification, number.clone()));
        let from = c.cfg.called.clone();
        let dial = match (&c.cfg.outbound_trunk, &c.cfg.outbound_uri) {
            (Some(trunk), _) => Some(Dial::Trunk {
                trunk: trunk.clone(),
                number,
            }),
            (None, Some(t)) => {
                crate::static_target(&t.replace("{number}", &number)).map(Dial::Target)
            }
            (None, None) => None,
        };
        let ring = notice.ring;
        c.notice = Some(NoticeCall {
            notice,
            dialling: None,
            answered_at: None,
            detector: None,
            heard_at: None,
            message_at: None,
            delivery: None,
        });
        match dial {
            Some(dial) => {
                let leg = c.new_leg(Role::Notified, dial, from, checked);
                if let Some(n) = c.notice.as_mut() {
                    n.dialling = Some(leg);
                }
                c.timers.set(Timer::Ring, now + ring);
            }
            None => c.notice_failed(Delivery::NotPlaced),
        }
        c.settle_now(now);
        c
    }

    /// The notification's attempt ended before anyone answered.
    pub(crate) fn notice_failed(&mut self, delivery: Delivery) {
        self.timers.stop(Timer::Ring);
        if let Some(n) = self.notice.as_mut() {
            n.dialling = None;
            n.delivery.get_or_insert(delivery);
        }
        self.event(CallEvent::NoticeFailed(delivery));
    }

    /// The dialled leg ended or could not be placed.
    pub(crate) fn notice_leg_failed(&mut self, reason: Option<EndReason>) {
        self.notice_failed(reason.map_or(Delivery::NotPlaced, Delivery::of_end));
    }

    /// The phone rang out.
    pub(crate) fn notice_ring_out(&mut self) {
        if let Some(leg) = self.notice.as_ref().and_then(|n| n.dialling) {
            self.drop_leg(leg);
            self.notice_failed(Delivery::NoAnswer);
        }
    }

    /// Someone answered: they are the call's caller leg now; the detector
    /// listens (or the flow starts).
    pub(crate) fn notice_answered(&mut self, now: Instant, leg: LegId, n: Option<Negotiated>) {
        let Some(n) = n else {
            self.drop_leg(leg);
            self.notice_failed(Delivery::NoAudio);
            return;
        };
        self.timers.stop(Timer::Ring);
        self.event(CallEvent::NoticeAnswered {
            codec: n.codec.name(),
        });
        let srtp = self.leg(leg).and_then(|l| l.srtp);
        let mut rtp = self.leg_rtp(now, leg, &n, srtp);
        let detect = self
            .notice
            .as_ref()
            .is_some_and(|c| c.notice.detect_machine);
        // While listening, the answerer's audio is taken as it comes.
        rtp.set_relay(detect);
        if let Some(l) = self.leg_mut(leg) {
            l.role = Role::Caller;
            l.state = LegState::Up;
            l.rtp = Some(rtp);
            l.media = Some(n);
        }
        self.caller = Some(leg);
        self.answered_at = Some(now);
        self.timers
            .set(Timer::MaxDuration, now + self.cfg.call_duration);
        let Some(c) = self.notice.as_mut() else {
            return;
        };
        c.dialling = None;
        c.answered_at = Some(now);
        c.heard_at = Some(now);
        if detect {
            c.detector = Some(Detector::new());
            self.timers.set(Timer::Detect, now + crate::amd::LISTEN);
        } else {
            self.notice_speak(now, AnsweredBy::Human);
        }
    }

    /// Whether the detector is listening to the answerer.
    pub(crate) fn notice_listening(&self) -> bool {
        self.notice
            .as_ref()
            .and_then(|n| n.detector.as_ref())
            .is_some_and(|d| !d.is_done())
    }

    /// The answerer's decoded audio while the detector listens.
    pub(crate) fn notice_audio(&mut self, now: Instant, pcm: &[i16]) {
        let Some(c) = self.notice.as_mut() else {
            return;
        };
        let Some(d) = c.detector.as_mut() else {
            return;
        };
        // A gap in the packets (a phone quiet without sending) is quiet.
        let gap = c
            .heard_at
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        let mut verdict = None;
        if gap > Duration::from_millis(200) {
            verdict = d.quiet_for(gap - Duration::from_millis(20));
        }
        c.heard_at = Some(now);
        if !d.is_done() {
            verdict = d.feed(pcm).or(verdict);
        }
        if let Some(v) = verdict {
            self.notice_verdict(now, v);
        }
    }

    /// The detector's deadline: undecided means a person; a machine whose
    /// greeting never ends gets the message anyway.
    pub(crate) fn notice_detect_due(&mut self, now: Instant) {
        let v = self
            .notice
            .as_mut()
            .and_then(|c| c.detector.as_mut())
            .and_then(Detector::give_up);
        if let Some(v) = v {
            self.notice_verdict(now, v);
        }
    }

    fn notice_verdict(&mut self, now: Instant, v: Verdict) {
        match v {
            Verdict::Human => {
                self.timers.stop(Timer::Detect);
                self.notice_speak(now, AnsweredBy::Human);
            }
            Verdict::Machine => {
                self.event(CallEvent::NoticeMachine);
                let since = self
                    .notice
                    .as_ref()
                    .and_then(|c| c.answered_at)
                    .unwrap_or(now);
                self.timers
                    .set(Timer::Detect, since + crate::amd::LONGEST_GREETING);
            }
            Verdict::GreetingOver => {
                self.timers.stop(Timer::Detect);
                self.notice_speak(now, AnsweredBy::Machine);
            }
        }
    }

    /// The message begins: the flow, with the notification's variables and
    /// `answered_by` (`human` or `machine`, so it can skip its menu).
    fn notice_speak(&mut self, now: Instant, by: AnsweredBy) {
        let Some(c) = self.notice.as_mut() else {
            return;
        };
        if c.message_at.is_some() {
            return;
        }
        c.message_at = Some(now);
        c.delivery = Some(match by {
            AnsweredBy::Human => Delivery::Human,
            AnsweredBy::Machine => Delivery::Machine,
        });
        let flow = c.notice.flow.clone();
        let mut vars = nida_ivr::expr::Vars::new();
        for (k, v) in &c.notice.vars {
            vars.insert(k.clone(), nida_ivr::Value::Str(v.clone()));
        }
        let number = c.notice.number.clone();
        let after = now
            .saturating_duration_since(c.answered_at.unwrap_or(now))
            .as_secs_f64();
        vars.insert("caller".into(), nida_ivr::Value::Str(number));
        vars.insert(
            "called".into(),
            nida_ivr::Value::Str(self.cfg.called.clone()),
        );
        vars.insert(
            "language".into(),
            nida_ivr::Value::Str(self.language.clone()),
        );
        vars.insert(
            "answered_by".into(),
            nida_ivr::Value::Str(by.as_str().into()),
        );
        if let Some(rtp) = self.caller_rtp() {
            rtp.set_relay(false);
        }
        self.event(CallEvent::NoticeSpeaking { by, after });
        self.ivr = self.new_session(now, &flow, vars);
        if self.ivr.is_some() {
            self.event(CallEvent::FlowStarted(flow));
        } else {
            self.event(CallEvent::FlowMissing(flow));
            self.hang_up.get_or_insert(crate::io::HangupCause::Done);
        }
    }

    /// The attempt's result, once the call is over.
    pub(crate) fn notice_over(&mut self, now: Instant) {
        let Some(c) = self.notice.take() else {
            return;
        };
        let delivery = c.delivery.unwrap_or(if c.answered_at.is_some() {
            Delivery::HungUp
        } else {
            Delivery::NoAnswer
        });
        let secs = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t).as_secs_f64());
        let message_after = match (c.answered_at, c.message_at) {
            (Some(a), Some(m)) => Some(m.saturating_duration_since(a).as_secs_f64()),
            _ => None,
        };
        if !delivery.delivered() && self.outcome == Outcome::Notified {
            self.outcome = Outcome::NotNotified;
        }
        self.outputs.push_back(Output::Notice(NoticeResult {
            id: c.notice.id,
            attempt: c.notice.attempt,
            call_id: self.cfg.call_id.clone(),
            delivery,
            message_after,
            seconds: secs(c.answered_at).unwrap_or(0.0),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_answers_map_to_what_the_scheduler_retries() {
        assert_eq!(Delivery::of_end(EndReason::Refused(486)), Delivery::Busy);
        assert_eq!(
            Delivery::of_end(EndReason::Refused(480)),
            Delivery::NoAnswer
        );
        assert_eq!(Delivery::of_end(EndReason::NoAnswer), Delivery::NoAnswer);
        assert_eq!(
            Delivery::of_end(EndReason::Refused(404)),
            Delivery::Refused(404)
        );
        assert!(Delivery::Busy.retry() && Delivery::NoAnswer.retry());
        assert!(!Delivery::Refused(404).retry() && Delivery::NotPlaced.retry());
        assert!(Delivery::Machine.delivered() && !Delivery::Machine.retry());
    }
}
