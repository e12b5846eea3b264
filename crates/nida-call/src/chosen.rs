//! Call-backs at a time the caller chooses. A waiting caller who presses
//! the call-back digit hears the times their queue can call them back at
//! (later today, the next open days' mornings and afternoons, within its
//! opening hours and never in a full slot), after "1: as soon as an agent
//! is free", which keeps the place in line as before. A chosen time takes
//! the call out of the line until then; when it is due the call-back
//! either joins the line and dials the caller once an agent takes it
//! (agent first) or dials the caller, who then waits at the head of the
//! line (caller first). A miss is tried again by the queue's retry policy,
//! and a call-back never starts while its queue is closed.

use crate::calendar::{Calendar, Slot};
use crate::io::CallEvent;
use crate::machine::{BookingFor, Call};
use crate::rules::CallbackFirst;
use crate::timer::Timer;
use std::time::{Duration, Instant};

/// How long the caller has to choose once the menu has played.
const CHOOSE: Duration = Duration::from_secs(6);

/// The most times offered: keys 2 to 9.
pub const MAX_SLOTS: usize = 8;

impl Call {
    /// The times the caller may choose now: the queue's calendar (or all
    /// hours), none in a full slot.
    fn open_slots(&self, now: Instant) -> Vec<Slot> {
        let n = self.rules.callback_slots.min(MAX_SLOTS);
        if n == 0 {
            return Vec::new();
        }
        let always = Calendar::always();
        let cal = self.queue_calendar().unwrap_or(&always);
        let lead = self.rules.callback_lead.as_secs() as i64;
        let capacity = self.rules.callback_slot_capacity.max(1);
        // A few more than asked, so full ones leave room for the next.
        cal.slots(self.unix(now), lead, n + 4)
            .into_iter()
            .filter(|s| self.shared.bookings.in_slot(s.at) < capacity)
            .take(n)
            .collect()
    }

    /// The caller asked for a call-back while waiting: the menu of times
    /// when the queue offers them, else the call-back as soon as possible.
    pub(crate) fn callback_asked(&mut self, now: Instant) -> bool {
        let slots = self.open_slots(now);
        if slots.is_empty() {
            return self.request_callback(now, BookingFor::Digit);
        }
        let lang = self.language.clone();
        let mut names = vec!["callback_when".to_string()];
        for (i, s) in slots.iter().enumerate() {
            names.extend(s.prompts(&lang));
            names.push("callback_press".into());
            names.push(format!("digit_{}", i + 2));
        }
        self.event(CallEvent::CallbackSlotsOffered(
            slots.iter().map(|s| s.at).collect(),
        ));
        self.slot_menu = Some(slots);
        self.music = false;
        self.announcing = self.say(&names) > 0;
        if !self.announcing {
            self.timers.set(Timer::SlotMenu, now + CHOOSE);
        }
        true
    }

    /// The menu has played: the caller has a few seconds to choose.
    pub(crate) fn slot_menu_played(&mut self, now: Instant) {
        if self.slot_menu.is_some() && self.timers.get(Timer::SlotMenu).is_none() {
            self.timers.set(Timer::SlotMenu, now + CHOOSE);
        }
    }

    /// A key while the times are offered: 1 is as soon as possible, 2 and
    /// on the times in order; any other key keeps the caller in line.
    pub(crate) fn slot_digit(&mut self, now: Instant, d: char) {
        let Some(slots) = self.slot_menu.take() else {
            return;
        };
        self.timers.stop(Timer::SlotMenu);
        let chosen = d
            .to_digit(10)
            .and_then(|k| (k as usize).checked_sub(2))
            .and_then(|i| slots.get(i).copied());
        let asked = match (d, chosen) {
            ('1', _) => self.request_callback(now, BookingFor::Digit),
            (_, Some(slot)) => {
                self.slot_chosen = Some(slot);
                self.request_callback_at(now, BookingFor::Digit, Some(slot))
            }
            _ => false,
        };
        if !asked {
            self.slot_not_chosen();
        }
    }

    /// No time chosen (a wrong key, silence, or one that could not be
    /// booked): the caller waits in line with the music.
    pub(crate) fn slot_not_chosen(&mut self) {
        self.slot_menu = None;
        self.timers.stop(Timer::SlotMenu);
        self.event(CallEvent::CallbackSlotNotChosen);
        if self.waiting() && !self.closing {
            self.announcing = false;
            self.start_music();
        }
    }

    /// The store has the call-back at its time: the call leaves the line,
    /// the caller hears the time and goodbye, and the call waits for it.
    pub(crate) fn scheduled(&mut self, now: Instant, due: i64) {
        self.event(CallEvent::CallbackScheduled { at: due });
        if let Some(task) = self.task.take() {
            self.cancel_ringing();
            self.centre(crate::io::ToCentre::Reschedule(task));
        }
        let wait = (due - self.unix(now)).max(0) as u64;
        self.timers
            .set(Timer::CallbackRetry, now + Duration::from_secs(wait));
        let mut names = vec!["callback_scheduled".to_string()];
        if let Some(slot) = self.slot_chosen.take() {
            names.extend(slot.prompts(&self.language));
        }
        names.push("goodbye".into());
        self.music = false;
        self.announcing = false;
        self.closing = true;
        if self.say(&names) == 0 {
            self.hang_up.get_or_insert(crate::io::HangupCause::Done);
        }
    }

    /// A call-back's next try is due: at a closed queue it waits for the
    /// opening; else it joins the line (agent first, and every call-back
    /// as soon as possible) or dials the caller (caller first).
    pub(crate) fn callback_next(&mut self, now: Instant) {
        let unix = self.unix(now);
        if let Some(cal) = self.queue_calendar() {
            if !cal.is_open(unix) {
                if let Some(at) = cal.next_open(unix) {
                    self.event(CallEvent::CallbackWaitsForOpening { at });
                    self.timers.set(
                        Timer::CallbackRetry,
                        now + Duration::from_secs((at - unix).max(1) as u64),
                    );
                    return;
                }
            }
        }
        let (first, chosen) = self
            .callback
            .as_ref()
            .map_or((true, false), |c| (c.attempts == 0, c.chosen.is_some()));
        self.event(if first && chosen {
            CallEvent::CallbackDue
        } else {
            CallEvent::CallbackRetry
        });
        if chosen && self.rules.callback_first == CallbackFirst::Caller {
            self.dial_caller(now);
        } else {
            self.join_queue(now);
        }
    }

    /// A call-back dialled first was answered: the caller hears that this
    /// is their call-back, then waits at the head of the line.
    pub(crate) fn first_in_line(&mut self, now: Instant) {
        if let Some(rtp) = self.caller_rtp() {
            rtp.set_relay(false);
        }
        self.priority = u8::MAX;
        self.join_queue(now);
        self.music = false;
        self.announcing = self.say(&["callback_connecting".to_string()]) > 0;
        if !self.announcing {
            self.start_music();
        }
    }
}
