//! Supervisors in a call, and who hears whom.
//!
//! A supervisor joins a talking call in a mode (listen, whisper, barge):
//! nida rings their phone on a leg of its own and, once it answers, wires
//! the legs: the caller and the agent hear each other (unless the caller
//! is held), the supervisor hears both, the agent hears a whispering or
//! barging supervisor and the caller a barging one. Keys 4, 5 and 6 on
//! the supervisor's phone (or the API) switch modes; every join and
//! switch is kept for the record.
//!
//! While every listener hears one party the legs relay payloads as a
//! two-party bridge does; as soon as one hears two, a [`Mixer`] takes the
//! legs' audio, mixes a frame every 20 ms and gives each leg its own mix.

use crate::io::{CallEvent, Output, SuperviseMode};
use crate::leg::{LegId, Role};
use crate::machine::Call;
use crate::target::{Dial, Target};
use nida_media::mixer::FRAME;
use nida_media::Mixer;
use std::time::{Duration, Instant};

/// The mixer's frame time.
const TICK: Duration = Duration::from_millis(20);

/// The supervisor in a call.
#[derive(Debug, Clone)]
pub(crate) struct Supervisor {
    /// Their leg.
    pub leg: LegId,
    /// Their user name.
    pub user: String,
    /// How they take part.
    pub mode: SuperviseMode,
    /// Their phone answered.
    pub up: bool,
}

/// The mix of a call of more than two, and when its next frame is due.
pub(crate) struct Mixing {
    pub mixer: Mixer<LegId>,
    pub next: Instant,
}

impl Call {
    /// A supervisor asks to join in `mode`, or (already in) to switch to
    /// it. Only a call talking to an agent can be joined, by one
    /// supervisor at a time.
    pub(crate) fn supervise(
        &mut self,
        now: Instant,
        user: String,
        target: Target,
        mode: SuperviseMode,
    ) {
        if let Some(s) = self.supervisor.as_ref() {
            if s.user == user {
                self.set_supervise_mode(now, mode);
            }
            return;
        }
        if self.caller.is_none() || self.bridge.is_none_or(|b| b.agent.is_none()) {
            return;
        }
        let from = self.cfg.caller.clone();
        let leg = self.new_leg(Role::Supervisor, Dial::Target(target), from, None);
        self.supervisor = Some(Supervisor {
            leg,
            user,
            mode,
            up: false,
        });
    }

    /// The supervisor's phone answered with `n` (none: no usable audio).
    pub(crate) fn supervisor_answered(
        &mut self,
        now: Instant,
        leg: LegId,
        n: Option<nida_sip::sdp::Negotiated>,
    ) {
        if !self.answered_leg(now, leg, n) {
            self.supervisor_gone(now, leg);
            return;
        }
        let Some(s) = self.supervisor.as_mut().filter(|s| s.leg == leg) else {
            return;
        };
        s.up = true;
        let (user, mode) = (s.user.clone(), s.mode);
        self.note_listen(now, &user, mode);
        self.event(CallEvent::SupervisorJoined {
            supervisor: user,
            mode,
        });
        if mode == SuperviseMode::TakeOver {
            self.take_over();
        }
        self.wire(now);
    }

    /// Switches the supervisor's mode.
    pub(crate) fn set_supervise_mode(&mut self, now: Instant, mode: SuperviseMode) {
        let Some(s) = self.supervisor.as_mut() else {
            return;
        };
        // A call taken over stays the supervisor's.
        if s.mode == mode || s.mode == SuperviseMode::TakeOver {
            return;
        }
        s.mode = mode;
        if !s.up {
            return;
        }
        let user = s.user.clone();
        self.note_listen(now, &user, mode);
        self.event(CallEvent::SupervisorMode(mode));
        if mode == SuperviseMode::TakeOver {
            self.take_over();
        }
        self.wire(now);
    }

    /// The supervisor takes the call: the agent's leg ends and the agent
    /// is free (the task is complete); the caller talks to the
    /// supervisor until either hangs up, then goes on as after any agent.
    fn take_over(&mut self) {
        let (Some(s), Some(b)) = (self.supervisor.as_ref(), self.bridge) else {
            return;
        };
        let Some(agent) = b.agent else {
            return;
        };
        let sup = s.leg;
        self.outputs.push_back(Output::Hangup(b.leg));
        self.close_leg(b.leg);
        if let Some(task) = self.task.take() {
            self.centre(crate::io::ToCentre::Complete(task));
        }
        self.bridge = Some(crate::machine::Bridge {
            leg: sup,
            agent: None,
        });
        self.event(CallEvent::TakenOver(agent));
    }

    /// A key on the supervisor's phone.
    pub(crate) fn supervisor_key(&mut self, now: Instant, key: char) {
        if let Some(mode) = SuperviseMode::from_key(key) {
            self.set_supervise_mode(now, mode);
        }
    }

    /// The supervisor's leg is gone (or never came up).
    pub(crate) fn supervisor_gone(&mut self, now: Instant, leg: LegId) {
        if self.bridge.is_some_and(|b| b.leg == leg) {
            // The supervisor who took the call over hangs up: the caller
            // goes on as after an agent (the survey).
            self.supervisor = None;
            self.close_leg(leg);
            self.event(CallEvent::SupervisorLeft);
            self.bridge_ended(now, self.agent, nida_sip::EndReason::RemoteBye);
            return;
        }
        if self.supervisor.as_ref().is_some_and(|s| s.leg == leg) {
            self.supervisor = None;
            self.close_leg(leg);
            self.event(CallEvent::SupervisorLeft);
            self.wire(now);
        }
    }

    /// The bridge ends: the supervisor leaves with it.
    pub(crate) fn drop_supervisor(&mut self, now: Instant) {
        if let Some(s) = self.supervisor.take() {
            self.outputs.push_back(Output::Hangup(s.leg));
            self.close_leg(s.leg);
            self.event(CallEvent::SupervisorLeft);
        }
        self.wire(now);
    }

    fn note_listen(&mut self, now: Instant, user: &str, mode: SuperviseMode) {
        let at = self.unix(now);
        self.listens.push(nida_store::ListenIn {
            supervisor: user.to_string(),
            at,
            mode: mode.as_str().to_string(),
        });
    }

    /// Who hears whom now, from the bridge, the hold and the supervisor;
    /// a mixer when someone hears two.
    pub(crate) fn wire(&mut self, now: Instant) {
        let mut links = Vec::new();
        if let (Some(c), Some(b)) = (self.caller, self.bridge) {
            if !self.on_hold() {
                links.push((c, b.leg));
                links.push((b.leg, c));
            }
            if let Some(k) = self.consult.as_ref().filter(|k| k.up && k.leg != b.leg) {
                links.push((b.leg, k.leg));
                links.push((k.leg, b.leg));
                if k.joined {
                    links.push((c, k.leg));
                    links.push((k.leg, c));
                }
            }
            if let Some(s) = self.supervisor.as_ref().filter(|s| s.up && s.leg != b.leg) {
                links.push((c, s.leg));
                links.push((b.leg, s.leg));
                if s.mode != SuperviseMode::Listen {
                    links.push((s.leg, b.leg));
                }
                if s.mode == SuperviseMode::Barge {
                    links.push((s.leg, c));
                }
            }
        }
        self.links = links;
        let mixed = self
            .links
            .iter()
            .any(|(_, to)| self.links.iter().filter(|(_, t)| t == to).count() > 1);
        if !mixed {
            self.mixing = None;
            return;
        }
        let mut mixer = match self.mixing.take() {
            Some(m) => m.mixer,
            None => Mixer::new(),
        };
        let parties: Vec<LegId> = mixer.parties().collect();
        for p in parties {
            if !self.links.iter().any(|(a, b)| *a == p || *b == p) {
                mixer.remove(p);
            }
        }
        for &(from, to) in &self.links.clone() {
            for leg in [from, to] {
                if let Some(law) = self.leg(leg).and_then(|l| l.rtp.as_ref()).map(|r| r.law()) {
                    mixer.add(leg, law);
                }
            }
        }
        let parties: Vec<LegId> = mixer.parties().collect();
        for &l in &parties {
            for &s in &parties {
                mixer.set_hears(l, s, self.links.contains(&(s, l)));
            }
        }
        self.mixing = Some(Mixing {
            mixer,
            next: now + TICK,
        });
    }

    /// Mixes the frames due at `now`, each listener's into its leg; the
    /// recording's right side takes everyone but the caller.
    pub(crate) fn mix_due(&mut self, now: Instant) {
        let Some(mut m) = self.mixing.take() else {
            return;
        };
        // After a long stall, start again from now rather than catch up.
        if now.saturating_duration_since(m.next) > TICK * 5 {
            m.next = now;
        }
        while m.next <= now {
            m.mixer.mix();
            while let Some((leg, bytes)) = m.mixer.poll_output() {
                if let Some(rtp) = self.leg_mut(leg).and_then(|l| l.rtp.as_mut()) {
                    let law = rtp.law();
                    rtp.push_audio(law, &bytes);
                }
            }
            if let Some(tape) = self.tape.as_mut() {
                let mut right = [0i32; FRAME];
                for p in m.mixer.parties().filter(|p| Some(*p) != self.caller) {
                    if let Some(frame) = m.mixer.last_frame(p) {
                        for (acc, s) in right.iter_mut().zip(frame) {
                            *acc += i32::from(*s);
                        }
                    }
                }
                tape.right
                    .extend(right.iter().map(|s| (*s).clamp(-32768, 32767) as i16));
            }
            m.next += TICK;
        }
        self.mixing = Some(m);
    }
}
