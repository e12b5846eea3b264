//! Blind transfers asked by the bridged agent (REFER): to a queue by its
//! name, or to a number through the carrier route. The agent learns the
//! result (NOTIFY) and is released; a transfer nida cannot make leaves the
//! call as it is, and one that fails puts the caller back in line.

use crate::io::{CallEvent, Outcome, Output, ToCentre};
use crate::leg::{LegId, Role};
use crate::machine::Call;
use crate::{Dial, Purpose};
use std::time::Instant;

impl Call {
    /// The peer of `leg` asked to transfer the caller to `target`.
    pub(crate) fn transfer(&mut self, now: Instant, leg: LegId, target: String) {
        let bridged = self.bridge.filter(|b| b.leg == leg);
        let (Some(b), Some(task)) = (bridged, self.task) else {
            self.transfer_declined(leg, target);
            return;
        };
        let user = nida_sip::headers::SipUri::parse(&target)
            .and_then(|u| u.user)
            .unwrap_or_default();
        let to_queue = self.shared.queues.contains_key(&user);
        let to_number = match to_queue {
            true => None,
            false => self.external_target(&target, &user),
        };
        if !to_queue && to_number.is_none() {
            self.event(CallEvent::TransferNotFound(target));
            self.notify(leg, 404, "Not Found");
            return;
        }
        self.notify(leg, 200, "OK");
        self.event(CallEvent::Transferred {
            agent: b.agent,
            to: user.clone(),
            queue: to_queue,
        });
        // Whoever the agent brought in leaves with the agent.
        if let Some(k) = self.consult.as_ref().map(|k| k.leg) {
            self.outputs.push_back(Output::Hangup(k));
            self.consult_gone(now, k);
        }
        self.bridge = None;
        self.drop_supervisor(now);
        self.drop_leg(leg);
        self.centre(ToCentre::Complete(task));
        self.task = None;
        self.talk_ended = Some(now);
        if let Some(rtp) = self.caller_rtp() {
            rtp.set_relay(false);
        }
        self.end_recording();
        self.transfers.push(user.clone());
        match to_number {
            None => {
                self.info.queue = user.clone();
                self.rules = self.rules_of(&user);
                self.outcome = Outcome::Queued;
                self.start_music();
                self.join_queue(now);
            }
            Some(dial) => {
                self.outcome = Outcome::Transferred;
                self.start_music();
                let number = match &dial {
                    Dial::Trunk { number, .. } => Some((Purpose::Transfer, number.clone())),
                    Dial::Target(_) if self.cfg.outbound_uri.is_some() => {
                        Some((Purpose::Transfer, user))
                    }
                    Dial::Target(_) => None,
                };
                let from = self.cfg.caller.clone();
                self.new_leg(Role::Transfer, dial, from, number);
            }
        }
    }

    /// A transfer asked by a leg not bridged to an agent.
    pub(crate) fn transfer_declined(&mut self, leg: LegId, target: String) {
        self.event(CallEvent::TransferDeclined(target));
        self.notify(leg, 603, "Declined");
    }

    /// A transfer to a number could not be made: back to the queue the
    /// call came from, so the caller is not lost.
    pub(crate) fn transfer_failed(&mut self, now: Instant) {
        self.event(CallEvent::TransferFailed);
        self.outcome = Outcome::Queued;
        self.join_queue(now);
    }

    fn notify(&mut self, leg: LegId, status: u16, reason: &'static str) {
        self.outputs.push_back(Output::NotifyRefer {
            leg,
            status,
            reason,
        });
    }

    /// Where a transfer to `target` (user part `number`) goes: the URI
    /// itself when it names another host, else the outbound trunk or
    /// route; `None` when it is no dialable number.
    pub(crate) fn external_target(&self, target: &str, number: &str) -> Option<Dial> {
        if let Some(t) = crate::static_target(target) {
            if t.dest != self.cfg.sip_addr {
                return Some(Dial::Target(t));
            }
        }
        let dialable = !number.is_empty()
            && number
                .chars()
                .all(|c| c.is_ascii_digit() || c == '+' || c == '*' || c == '#');
        if !dialable {
            return None;
        }
        if let Some(trunk) = &self.cfg.outbound_trunk {
            return Some(Dial::Trunk {
                trunk: trunk.clone(),
                number: number.to_string(),
            });
        }
        let template = self.cfg.outbound_uri.as_ref()?;
        crate::static_target(&template.replace("{number}", number)).map(Dial::Target)
    }
}
