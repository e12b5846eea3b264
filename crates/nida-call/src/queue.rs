//! Waiting for an agent and ringing agents: joining the routing core,
//! music on hold and announcements of the place in line, the queue's
//! exits, offers to agents (ring, answer, reject, withdraw), the bridge to
//! the one the core connects, and the agent hanging up (then the survey).

use crate::io::{CallEvent, CallInfo, FromCentre, LegEvent, Outcome, Recording, ToCentre};
use crate::leg::{LegId, LegState, Role};
use crate::machine::{BookingFor, Call};
use crate::timer::Timer;
use crate::Dial;
use nida_acd::{AgentId, Exit, TaskId};
use nida_sip::EndReason;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Silence that ends a voice message taken by a queue's exit.
const VOICEMAIL_SILENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Task ids, unique in the process.
static NEXT_TASK: AtomicU64 = AtomicU64::new(1);

impl Call {
    /// The flow asked for an agent: join the queue, start the music; or,
    /// the queue being closed, take its closed exit (false).
    pub(crate) fn enqueue(&mut self, now: Instant, q: &nida_ivr::QueueRequest) -> bool {
        self.language = q.language.clone();
        self.skills = q.skills.clone();
        self.priority = q.priority;
        let (path, vars) = match &self.ivr {
            Some(s) => (s.path().to_vec(), crate::machine::text_vars(s)),
            None => Default::default(),
        };
        self.path = path;
        self.rules = self.rules_of(&q.queue);
        self.info = CallInfo {
            call_id: self.cfg.call_id.clone(),
            queue: q.queue.clone(),
            language: q.language.clone(),
            path: self.path.clone(),
            vars,
        };
        if self.queue_closed(now) {
            self.event(CallEvent::QueueClosed(q.queue.clone()));
            self.outcome = Outcome::Closed;
            match self.rules.closed_exit.clone() {
                Exit::Flow(f) => {
                    self.stop_playback();
                    self.next_flow = Some(f);
                    return false;
                }
                Exit::Callback => {
                    // Called back once an agent takes it (when it opens).
                    self.join(now);
                    let before = self.priority;
                    if !self.request_callback(now, BookingFor::Exit(before)) {
                        self.callback_unavailable(before);
                    }
                    return false;
                }
                Exit::Voicemail | Exit::Queue(_) => {
                    // The flow that asked (a call-back offer's goes on) ends.
                    if let Some(s) = self.ivr.take() {
                        self.flow_ended(s);
                    }
                    let greeting = vec!["queue_closed".into(), "voicemail_greeting".into()];
                    self.queue_voicemail(now, greeting);
                    return false;
                }
            }
        }
        self.join(now);
        true
    }

    /// A message for the call's queue, at the queue's longest length.
    fn queue_voicemail(&mut self, now: Instant, greeting: Vec<String>) {
        let (queue, max) = (self.info.queue.clone(), self.rules.voicemail_max);
        self.start_voicemail(now, &queue, greeting, max, VOICEMAIL_SILENCE);
    }

    /// The queue's calendar, when it has one the centre knows.
    pub(crate) fn queue_calendar(&self) -> Option<&crate::calendar::Calendar> {
        self.rules
            .calendar
            .as_deref()
            .and_then(|c| self.shared.calendars.get(c))
    }

    /// Whether the queue's calendar says it is closed now.
    fn queue_closed(&self, now: Instant) -> bool {
        let unix = self.unix(now);
        self.queue_calendar().is_some_and(|c| !c.is_open(unix))
    }

    /// In line: counted from now, the music on, the core told.
    fn join(&mut self, now: Instant) {
        self.queued_at = Some(now);
        if self.queued_unix.is_none() {
            self.queued_unix = Some(self.unix(now));
        }
        self.outcome = Outcome::Queued;
        self.start_music();
        self.join_queue(now);
    }

    /// The flow took a call-back request before queueing (its
    /// `callback_offer`): the call joins the queue and the flow goes on
    /// (its thanks, its hang-up); if the call-back cannot be booked the
    /// caller stays in line instead.
    pub(crate) fn enqueue_callback(&mut self, now: Instant, queue: &str) {
        let q = nida_ivr::QueueRequest {
            queue: queue.to_string(),
            skills: Default::default(),
            language: self
                .ivr
                .as_ref()
                .map_or_else(|| self.language.clone(), |s| s.language().to_string()),
            priority: 0,
        };
        if !self.enqueue(now, &q) {
            return;
        }
        // The flow's own prompts play, not the music.
        if self.music {
            self.stop_playback();
            self.music = false;
        }
        if !self.request_callback(now, BookingFor::FlowOffer) {
            self.stay_in_line();
        }
    }

    /// A call-back from the flow was not booked: the flow stops and the
    /// caller waits on the line.
    pub(crate) fn stay_in_line(&mut self) {
        if let Some(s) = self.ivr.take() {
            self.flow_ended(s);
        }
        self.start_music();
    }

    /// Sends the call to the routing core as a new task.
    pub(crate) fn join_queue(&mut self, now: Instant) {
        let task = TaskId(NEXT_TASK.fetch_add(1, Ordering::Relaxed));
        self.task = Some(task);
        self.centre(ToCentre::Enqueue {
            task,
            skills: self.skills.clone(),
            priority: self.priority,
            info: self.info.clone(),
        });
        if !self.rules.announce.is_zero()
            && !self.parked()
            && self.timers.get(Timer::Announce).is_none()
        {
            self.timers.set(Timer::Announce, now + self.rules.announce);
        }
        self.event(CallEvent::Waiting {
            task,
            queue: self.info.queue.clone(),
        });
    }

    /// A key while waiting: the call-back digit asks for a call-back.
    /// True when the key was taken.
    pub(crate) fn queue_digit(&mut self, now: Instant, d: char) -> bool {
        if self.slot_menu.is_some() && self.waiting() {
            self.slot_digit(now, d);
            return true;
        }
        if !self.waiting()
            || self.callback.is_some()
            || self.pending_booking.is_some()
            || self.closing
            || !self.rules.callback_digit.starts_with(d)
        {
            return false;
        }
        self.callback_asked(now)
    }

    /// Announcement time: ask the core for the place in line.
    pub(crate) fn announce_due(&mut self, now: Instant) {
        let Some(task) = self.task.filter(|_| self.waiting()) else {
            return;
        };
        if self.parked() {
            return;
        }
        self.timers.set(Timer::Announce, now + self.rules.announce);
        self.centre(ToCentre::Position(task));
    }

    /// The routing core's word.
    pub(crate) fn centre_message(&mut self, now: Instant, m: FromCentre) {
        match m {
            FromCentre::Hold(on) => return self.page_hold(now, on),
            FromCentre::Consult(target) => return self.consult(now, target),
            FromCentre::ConsultAction(a) => return self.consult_action(now, a),
            FromCentre::Supervise {
                supervisor,
                target,
                mode,
            } => return self.supervise(now, supervisor, target, mode),
            _ => {}
        }
        if self.caller.is_none() {
            if let Some(m) = self.parked_message(now, m) {
                self.waiting_message(now, m);
            }
            return;
        }
        self.waiting_message(now, m);
    }

    fn waiting_message(&mut self, now: Instant, m: FromCentre) {
        let Some(task) = self.task else {
            // Not waiting (any more): what the core still sends is
            // refused by its own timers.
            return;
        };
        match m {
            FromCentre::Offer {
                agent,
                target,
                name,
            } => {
                if self.bridge.is_some() {
                    self.centre(ToCentre::Reject(agent, task));
                    return;
                }
                self.event(CallEvent::Ringing {
                    agent,
                    name,
                    uri: target.uri.clone(),
                });
                let from = self.cfg.caller.clone();
                self.new_leg(Role::Agent(agent), Dial::Target(target), from, None);
            }
            FromCentre::Withdraw(agent) => {
                let legs: Vec<LegId> = self
                    .legs
                    .iter()
                    .filter(|l| l.agent() == Some(agent))
                    .filter(|l| self.bridge.is_none_or(|b| b.leg != l.id))
                    .map(|l| l.id)
                    .collect();
                for leg in legs {
                    self.event(CallEvent::OfferWithdrawn(agent));
                    self.drop_leg(leg);
                }
            }
            FromCentre::Connected(agent) => self.connected(now, task, agent),
            FromCentre::Position { place, wait } => self.announce(place, wait),
            FromCentre::Exit(exit) => self.exit(now, exit),
            FromCentre::Hold(_)
            | FromCentre::Supervise { .. }
            | FromCentre::Consult(_)
            | FromCentre::ConsultAction(_) => {}
            FromCentre::Refused => {
                self.task = None;
                self.event(CallEvent::Refused);
                self.outcome = Outcome::Refused;
                self.cancel_ringing();
                self.close_with("goodbye");
            }
        }
    }

    /// The core connected an agent who answered: bridge them.
    pub(crate) fn connected(&mut self, now: Instant, task: TaskId, agent: AgentId) {
        let leg = self
            .legs
            .iter()
            .find(|l| l.agent() == Some(agent) && l.state == LegState::Answered)
            .map(|l| l.id);
        let Some(leg) = leg else {
            self.centre(ToCentre::Complete(task));
            return;
        };
        self.answered_at = Some(now);
        self.agent = Some(agent);
        self.outcome = Outcome::Answered;
        if self.rules.record {
            self.tape = Some(Default::default());
            self.outputs
                .push_back(crate::Output::Recording(Recording::Start));
        }
        self.start_bridge(now, leg, Some(agent));
    }

    fn announce(&mut self, place: usize, wait: std::time::Duration) {
        if !self.waiting() || self.announcing || self.slot_menu.is_some() || self.parked() {
            return;
        }
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let mut names = vec!["queue_position".to_string()];
        names.extend(nida_ivr::say::number(&self.language, place as u64));
        names.push("queue_in_line".into());
        names.push("queue_wait".into());
        names.extend(nida_ivr::say::number(&self.language, minutes));
        names.push("queue_minutes".into());
        if self.rules.callback_digit == "1" {
            names.push("queue_callback_hint".into());
        }
        self.event(CallEvent::Announced { place, minutes });
        self.music = false;
        self.announcing = self.say(&names) > 0;
        if !self.announcing {
            self.start_music();
        }
    }

    fn exit(&mut self, now: Instant, exit: Exit) {
        self.task = None;
        self.cancel_ringing();
        self.event(CallEvent::Exited(exit.clone()));
        match exit {
            Exit::Callback => {
                // Called back as if they had pressed the digit, ahead of
                // callers who have not waited that long.
                let before = self.priority;
                self.priority = before.saturating_add(1);
                if !self.request_callback(now, BookingFor::Exit(before)) {
                    self.callback_unavailable(before);
                }
            }
            Exit::Voicemail => self.queue_voicemail(now, Vec::new()),
            Exit::Flow(f) => {
                self.outcome = Outcome::ExitFlow;
                self.music = false;
                self.stop_playback();
                self.next_flow = Some(f);
            }
            Exit::Queue(_) => {}
        }
    }

    /// The exit's call-back could not be booked: goodbye.
    pub(crate) fn callback_unavailable(&mut self, priority: u8) {
        self.priority = priority;
        self.outcome = Outcome::CallbackUnavailable;
        self.close_with("goodbye");
    }

    /// Hangs up every agent leg still ringing or answered, not bridged.
    pub(crate) fn cancel_ringing(&mut self) {
        let legs: Vec<LegId> = self
            .legs
            .iter()
            .filter(|l| matches!(l.role, Role::Agent(_)))
            .filter(|l| self.bridge.is_none_or(|b| b.leg != l.id))
            .map(|l| l.id)
            .collect();
        for leg in legs {
            self.drop_leg(leg);
        }
    }

    /// A leg nida placed: placed, ringing, answered, transfer asked, ended.
    pub(crate) fn other_leg_event(&mut self, now: Instant, leg: LegId, ev: LegEvent) {
        let Some(role) = self.leg(leg).map(|l| l.role) else {
            return;
        };
        match ev {
            LegEvent::Placed { srtp } => {
                if let Some(l) = self.leg_mut(leg) {
                    l.srtp = srtp;
                    l.state = LegState::Ringing;
                }
            }
            LegEvent::Progress(status) => self.event(CallEvent::Progress { leg, status }),
            LegEvent::Refer(target) => self.transfer(now, leg, target),
            // Keys count from the caller only, as RFC 4733 ones do, from a
            // supervisor (their mode) and from the bridged agent (wrap-up
            // codes).
            LegEvent::Dtmf(d) if role == Role::Supervisor => self.supervisor_key(now, d),
            LegEvent::Dtmf(d) if self.bridge.is_some_and(|b| b.leg == leg) => {
                self.agent_key(now, d)
            }
            LegEvent::Dtmf(_) => {}
            LegEvent::Media(n) => self.media_changed(now, leg, n),
            LegEvent::PlaceFailed | LegEvent::Ended(_) if role == Role::Supervisor => {
                self.supervisor_gone(now, leg)
            }
            LegEvent::PlaceFailed | LegEvent::Ended(_)
                if matches!(role, Role::Consult(_)) && self.bridge.is_none_or(|b| b.leg != leg) =>
            {
                self.consult_gone(now, leg)
            }
            LegEvent::PlaceFailed => {
                self.close_leg(leg);
                self.leg_failed(now, role, None);
            }
            LegEvent::Answered(sdp) => self.leg_answered(now, leg, role, sdp),
            LegEvent::Ended(reason) => {
                let bridged = self.bridge.filter(|b| b.leg == leg);
                self.close_leg(leg);
                match bridged {
                    Some(_) if self.agent_left_consult(now) => {}
                    Some(b) => self.bridge_ended(now, b.agent, reason),
                    None => self.leg_failed(now, role, Some(reason)),
                }
            }
        }
    }

    /// A leg that was not bridged ended or could not be placed.
    fn leg_failed(&mut self, now: Instant, role: Role, reason: Option<EndReason>) {
        match role {
            Role::Agent(agent) => {
                if let Some(reason) = reason {
                    self.event(CallEvent::AgentMissed { agent, reason });
                }
                if let Some(task) = self.task {
                    self.centre(ToCentre::Reject(agent, task));
                }
            }
            Role::CallbackCaller => {
                if let Some(c) = self.callback.as_mut() {
                    c.dial = None;
                }
                let why = reason.map_or("cannot dial".to_string(), |r| format!("{r:?}"));
                self.callback_missed(now, &why);
            }
            Role::Notified => self.notice_leg_failed(reason),
            Role::Transfer => {
                if let Some(r) = reason {
                    self.event(CallEvent::TransferUnanswered(r));
                }
                self.transfer_failed(now);
            }
            Role::Caller | Role::Supervisor | Role::Consult(_) => {}
        }
    }

    fn leg_answered(
        &mut self,
        now: Instant,
        leg: LegId,
        role: Role,
        sdp: Option<nida_sip::sdp::SessionDescription>,
    ) {
        let n = self.leg_answer(leg, sdp.as_ref());
        match (role, n) {
            (Role::Supervisor, n) => self.supervisor_answered(now, leg, n),
            (Role::Consult(_), n) => self.consult_answered(now, leg, n),
            (Role::Agent(agent), n) => {
                let Some(task) = self.task else {
                    self.drop_leg(leg);
                    return;
                };
                match n {
                    Some(n) => {
                        if let Some(l) = self.leg_mut(leg) {
                            l.answer = Some(n);
                            l.state = LegState::Answered;
                        }
                        self.event(CallEvent::AgentAnswered(agent));
                        self.centre(ToCentre::Accept(agent, task));
                    }
                    None => {
                        self.event(CallEvent::AgentUnusable(agent));
                        self.drop_leg(leg);
                        self.centre(ToCentre::Reject(agent, task));
                    }
                }
            }
            (Role::CallbackCaller, Some(n)) => self.callback_answered(now, leg, n),
            (Role::CallbackCaller, None) => {
                self.drop_leg(leg);
                if let Some(c) = self.callback.as_mut() {
                    c.dial = None;
                }
                self.callback_missed(now, "no usable audio");
            }
            (Role::Notified, n) => self.notice_answered(now, leg, n),
            (Role::Transfer, Some(n)) => {
                if let Some(l) = self.leg_mut(leg) {
                    l.answer = Some(n);
                }
                self.event(CallEvent::TransferAnswered);
                self.outcome = Outcome::Transferred;
                self.start_bridge(now, leg, None);
            }
            (Role::Transfer, None) => {
                self.drop_leg(leg);
                self.transfer_failed(now);
            }
            (Role::Caller, _) => {}
        }
    }

    /// The bridged leg hung up.
    pub(crate) fn bridge_ended(&mut self, now: Instant, agent: Option<AgentId>, reason: EndReason) {
        self.bridge = None;
        self.drop_supervisor(now);
        self.release_holds(now);
        self.links.clear();
        if let Some(rtp) = self.caller_rtp() {
            rtp.set_relay(false);
        }
        if agent.is_none() {
            self.event(CallEvent::TransferEnded(reason));
            self.hang_up
                .get_or_insert(crate::io::HangupCause::TransferEnded);
            return;
        }
        if self.caller.is_none() {
            self.callback_agent_left(now);
            return;
        }
        self.event(CallEvent::AgentLeft { agent, reason });
        self.talk_ended = Some(now);
        if let Some(task) = self.task.take() {
            self.centre(ToCentre::Complete(task));
        }
        self.end_recording();
        match self.rules.survey_flow.clone() {
            Some(f) => {
                // The flow that queued the call ends as the IVR's part.
                if let Some(s) = self.ivr.take() {
                    self.flow_ended(s);
                }
                self.in_survey = true;
                self.next_flow = Some(f);
            }
            None => {
                self.hang_up.get_or_insert(crate::io::HangupCause::Done);
            }
        }
    }
}
