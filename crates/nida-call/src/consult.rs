//! Consult, attended transfer and three-way calls, asked from the agent
//! page: the agent holds the caller (who hears the queue's music) and
//! nida dials a colleague (an available agent, whose screen pops with the
//! caller's data) or a number (through the outbound rules). Once they
//! talk, the agent completes the transfer (the caller is joined to the
//! colleague and the agent leaves), cancels it (back to the caller) or
//! makes it a three-way call (everyone hears everyone, mixed). A party
//! may leave a three-way call: when the agent does, the caller stays with
//! the colleague; the survey and the recording follow the call to its
//! last agent.

use crate::io::{CallEvent, Output, ToCentre};
use crate::leg::{LegId, Role};
use crate::machine::{Bridge, Call};
use crate::target::{Dial, Purpose, Target};
use nida_acd::AgentId;
use std::time::Instant;

/// Whom the agent consults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsultTarget {
    /// Another agent (available; the centre keeps them out of routing
    /// meanwhile).
    Agent {
        /// The agent.
        agent: AgentId,
        /// Their phone.
        target: Target,
    },
    /// A number, dialled as transfers to numbers are.
    Number(String),
}

/// What the agent does with a consult under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsultAction {
    /// Join the caller to the colleague; the agent leaves.
    Complete,
    /// Hang up on the colleague; back to the caller.
    Cancel,
    /// Everyone in one call.
    ThreeWay,
}

/// A leg one call gave away for another to adopt.
#[derive(Debug, Clone)]
pub struct Detached {
    /// Its id in the call that gave it (the shell moves its socket).
    pub leg: LegId,
    /// The media agreed on it.
    pub media: nida_sip::sdp::Negotiated,
    /// nida's SRTP key on it.
    pub srtp: Option<[u8; 30]>,
    /// Who is on it.
    pub role: Role,
}

/// The consult leg.
#[derive(Debug, Clone)]
pub(crate) struct Consult {
    pub leg: LegId,
    pub agent: Option<AgentId>,
    /// `agent:N` or the number, for the record's transfers.
    pub to: String,
    pub up: bool,
    /// A three-way call.
    pub joined: bool,
}

impl Call {
    /// The bridged agent consults `target`: the caller is held.
    pub(crate) fn consult(&mut self, now: Instant, target: ConsultTarget) {
        let Some(b) = self.bridge.filter(|b| b.agent.is_some()) else {
            self.refuse_consult(&target);
            return;
        };
        if self.consult.is_some() || self.caller.is_none() {
            self.refuse_consult(&target);
            return;
        }
        let from = self.cfg.caller.clone();
        let (dial, number, agent, to) = match target {
            ConsultTarget::Agent { agent, target } => (
                Dial::Target(target),
                None,
                Some(agent),
                format!("agent:{}", agent.0),
            ),
            ConsultTarget::Number(n) => match self.external_target("", &n) {
                Some(dial) => {
                    let number = match &dial {
                        Dial::Trunk { number, .. } => Some((Purpose::Transfer, number.clone())),
                        Dial::Target(_) => Some((Purpose::Transfer, n.clone())),
                    };
                    (dial, number, None, n)
                }
                None => {
                    self.event(CallEvent::TransferNotFound(n));
                    return;
                }
            },
        };
        let leg = self.new_leg(Role::Consult(agent), dial, from, number);
        self.event(CallEvent::Consulting {
            agent: b.agent,
            to: to.clone(),
        });
        self.consult = Some(Consult {
            leg,
            agent,
            to,
            up: false,
            joined: false,
        });
        self.set_consult_hold(now, true);
    }

    /// A consult nida will not place: the colleague is let go again.
    fn refuse_consult(&mut self, target: &ConsultTarget) {
        if let ConsultTarget::Agent { agent, .. } = target {
            self.centre(ToCentre::ConsultOver(*agent));
        }
    }

    /// The colleague answered with `n` (none: no usable audio).
    pub(crate) fn consult_answered(
        &mut self,
        now: Instant,
        leg: LegId,
        n: Option<nida_sip::sdp::Negotiated>,
    ) {
        if !self.answered_leg(now, leg, n) {
            self.consult_gone(now, leg);
            return;
        }
        match self.consult.as_mut().filter(|c| c.leg == leg) {
            Some(c) => {
                c.up = true;
                self.event(CallEvent::ConsultAnswered);
            }
            None => {
                // An agent's call to a colleague (`Start::Internal`): the
                // two talk.
                let agent = match self.leg(leg).map(|l| l.role) {
                    Some(Role::Consult(a)) => a,
                    _ => None,
                };
                self.bridge = Some(Bridge { leg, agent });
                self.event(CallEvent::ConsultAnswered);
            }
        }
        self.wire(now);
    }

    /// Gives the bridged leg away (an attended transfer made from a
    /// softphone: the call it joins adopts it), and ends this call: its
    /// caller (the transferring agent's consult dialog) is hung up. The
    /// leg's media as agreed, nida's SRTP key on it and its role.
    pub fn detach_bridge(&mut self, now: Instant) -> Option<Detached> {
        self.set_now(now);
        let b = self.bridge.take()?;
        let i = self.legs.iter().position(|l| l.id == b.leg)?;
        let leg = self.legs.remove(i);
        self.links.clear();
        self.mixing = None;
        self.event(CallEvent::TransferCompleted {
            to: "another call".into(),
        });
        self.hang_up
            .get_or_insert(crate::io::HangupCause::TransferEnded);
        self.settle_now(now);
        Some(Detached {
            leg: b.leg,
            media: leg.media?,
            srtp: leg.srtp,
            role: leg.role,
        })
    }

    /// Takes a leg another call gave away (see [`Call::detach_bridge`])
    /// as the colleague of an attended transfer the bridged agent's
    /// phone asked for by REFER with `Replaces`, their leg being
    /// `referred_by`: the agent learns it worked (NOTIFY 200, when the
    /// REFER came on that leg) and leaves, the caller talks to the
    /// colleague. The new leg's id.
    pub fn adopt(&mut self, now: Instant, d: Detached, referred_by: LegId, notify: bool) -> LegId {
        self.set_now(now);
        let leg = self.add_leg_up(now, d.role, d.media, d.srtp);
        let agent = match d.role {
            Role::Consult(a) => a,
            Role::Agent(a) => Some(a),
            _ => None,
        };
        let to = agent.map_or("transfer".to_string(), |a| format!("agent:{}", a.0));
        self.consult = Some(Consult {
            leg,
            agent,
            to,
            up: true,
            joined: false,
        });
        if notify {
            self.outputs.push_back(Output::NotifyRefer {
                leg: referred_by,
                status: 200,
                reason: "OK",
            });
        }
        if self.bridge.is_some_and(|b| b.leg == referred_by) {
            self.outputs.push_back(Output::Hangup(referred_by));
            self.close_leg(referred_by);
            self.hand_over(now);
        }
        self.settle_now(now);
        leg
    }

    /// The agent's word on the consult.
    pub(crate) fn consult_action(&mut self, now: Instant, action: ConsultAction) {
        let Some(c) = self.consult.clone() else {
            return;
        };
        match action {
            ConsultAction::Cancel => {
                self.outputs.push_back(Output::Hangup(c.leg));
                self.consult_gone(now, c.leg);
            }
            ConsultAction::ThreeWay if c.up => {
                if let Some(k) = self.consult.as_mut() {
                    k.joined = true;
                }
                self.event(CallEvent::ThreeWay);
                self.set_consult_hold(now, false);
                self.wire(now);
            }
            ConsultAction::Complete if c.up => {
                if let Some(b) = self.bridge {
                    self.outputs.push_back(Output::Hangup(b.leg));
                    self.close_leg(b.leg);
                }
                self.hand_over(now);
            }
            _ => {}
        }
    }

    /// The colleague becomes the caller's party: the first agent is done
    /// (their task completes), the call goes on with the colleague as its
    /// agent.
    fn hand_over(&mut self, now: Instant) {
        let Some(c) = self.consult.take() else {
            return;
        };
        if let Some(task) = self.task.take() {
            if let Some(colleague) = c.agent {
                self.centre(ToCentre::HandedTo(colleague, task));
            }
            self.centre(ToCentre::Complete(task));
        }
        self.transfers.push(c.to.clone());
        self.bridge = Some(Bridge {
            leg: c.leg,
            agent: c.agent,
        });
        if c.agent.is_some() {
            self.agent = c.agent;
        } else {
            self.outcome = crate::io::Outcome::Transferred;
        }
        self.event(CallEvent::TransferCompleted { to: c.to });
        self.release_holds(now);
        self.wire(now);
    }

    /// The bridged agent's other phone takes the agent's leg `old` (an
    /// INVITE with `Replaces`, RFC 3891): a new leg with the same role,
    /// bridged in its place; the old dialog is hung up. `None` when `old`
    /// is not the bridged agent's leg.
    pub fn replace_leg(
        &mut self,
        now: Instant,
        old: LegId,
        media: nida_sip::sdp::Negotiated,
        srtp: Option<[u8; 30]>,
    ) -> Option<LegId> {
        let b = self.bridge.filter(|b| b.leg == old && b.agent.is_some())?;
        let role = self.leg(old)?.role;
        self.set_now(now);
        let leg = self.add_leg_up(now, role, media, srtp);
        self.bridge = Some(Bridge {
            leg,
            agent: b.agent,
        });
        self.outputs.push_back(Output::Hangup(old));
        self.close_leg(old);
        // The new phone talks: a hold the old one made is over.
        self.hold.phone = false;
        self.apply_hold(now);
        self.event(CallEvent::LegReplaced(b.agent));
        self.wire(now);
        self.settle_now(now);
        Some(leg)
    }

    /// The bridged agent hung up while consulting: an answered colleague
    /// takes the caller (a transfer completed by hanging up, as on desk
    /// phones); a colleague still ringing is let go. Whether the call
    /// went on.
    pub(crate) fn agent_left_consult(&mut self, now: Instant) -> bool {
        match self.consult.as_ref() {
            Some(c) if c.up => {
                self.hand_over(now);
                true
            }
            Some(c) => {
                let leg = c.leg;
                self.outputs.push_back(Output::Hangup(leg));
                self.consult_gone(now, leg);
                false
            }
            None => false,
        }
    }

    /// The consult leg ended (or was never placed): back to the caller.
    pub(crate) fn consult_gone(&mut self, now: Instant, leg: LegId) {
        if self.consult.as_ref().is_none_or(|c| c.leg != leg) {
            return;
        }
        self.consult = None;
        self.close_leg(leg);
        self.event(CallEvent::ConsultEnded);
        self.set_consult_hold(now, false);
        self.wire(now);
    }

    /// The caller held (or not) for the consult.
    fn set_consult_hold(&mut self, now: Instant, on: bool) {
        if self.hold.consult != on {
            self.hold.consult = on;
            self.apply_hold(now);
        }
    }
}
