//! Wrap-up codes keyed on the agent's phone, for agents who keep their
//! hands on the phone rather than the page: during the call the agent
//! keys `*`, the code's number in the queue's list and `#` (`*2#` for the
//! second code); each code keyed is stored with the call as one picked on
//! the page would be. The caller's keys never count here, and a number
//! that is no code of the queue is reported, not stored.

use crate::io::CallEvent;
use crate::machine::Call;
use std::time::Instant;

/// Digits of a code's number, at most (99 codes per queue).
const MAX_DIGITS: usize = 2;

impl Call {
    /// A key from the bridged agent's phone.
    pub(crate) fn agent_key(&mut self, now: Instant, key: char) {
        let Some(agent) = self.bridge.and_then(|b| b.agent) else {
            return;
        };
        match key {
            '*' => self.agent_keys = Some(String::new()),
            '#' => {
                if let Some(keyed) = self.agent_keys.take() {
                    self.wrapup_keyed(now, agent, keyed);
                }
            }
            d if d.is_ascii_digit() => {
                if let Some(k) = self.agent_keys.as_mut() {
                    if k.len() < MAX_DIGITS {
                        k.push(d);
                    } else {
                        // Too long for a code: the entry is dropped.
                        let keyed = std::mem::take(k);
                        self.agent_keys = None;
                        self.event(CallEvent::WrapupKeyUnknown { agent, keyed });
                    }
                }
            }
            _ => {}
        }
    }

    fn wrapup_keyed(&mut self, now: Instant, agent: nida_acd::AgentId, keyed: String) {
        let code = keyed
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| self.rules.wrapup_codes.get(i))
            .cloned();
        let Some(code) = code else {
            self.event(CallEvent::WrapupKeyUnknown { agent, keyed });
            return;
        };
        self.event(CallEvent::WrapupKeyed {
            agent,
            code: code.clone(),
        });
        let w = nida_store::Wrapup {
            call_id: self.cfg.call_id.clone(),
            agent: agent.0,
            queue: self.info.queue.clone(),
            codes: vec![code],
            at: self.unix(now),
        };
        self.outputs.push_back(crate::Output::Wrapup(w));
    }
}
