//! nida's call machine: one caller's whole life with the contact centre,
//! sans-IO.
//!
//! A [`Call`] owns the IVR session, the wait in a queue (music on hold,
//! announcements, the call-back digit, the queue's exits), the agent legs
//! it rings (offer, answer, reject, withdraw), the bridge, the survey,
//! call-backs and transfers. A call is a set of [legs](leg) (caller,
//! agents, the caller again for a call-back, a transfer's far end) with
//! media relations between them (who hears whom), so that holds,
//! listen-in and conferences add relations rather than rewrite the call.
//!
//! It never reads the clock, a socket or a file: `now` comes with every
//! input and the shell carries out what it asks.
//!
//! ```text
//!   let mut call = Call::answered(now, unix, shared, cfg, rng, negotiated, srtp, start);
//!   loop {
//!       while let Some(t) = call.poll_transmit(now, &mut buf) { socket_of(t.leg).send_to(..) }
//!       while let Some(o) = call.poll_output() { shell.carry_out(o) }   // Dial, Hangup, Centre, Record..
//!       if call.is_over() { break }
//!       match shell.next(call.poll_timeout()) {
//!           Rtp(leg, from, bytes) => call.handle_rtp(now, leg, from, &bytes),
//!           Sip(leg, event)       => call.handle_leg(now, leg, event),
//!           Centre(m)             => call.handle_centre(now, m),
//!           Stored(s)             => call.handle_stored(now, s),
//!           Lookup(id, result)    => call.handle_lookup(now, id, result),
//!           Timer                 => call.handle_timeout(now),
//!       }
//!   }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod amd;
pub mod answering;
pub mod bookings;
pub mod calendar;
mod callback;
mod chosen;
pub mod consult;
mod hold;
pub mod io;
pub mod leg;
mod machine;
mod media;
pub mod notifier;
pub mod notify;
mod queue;
pub mod rules;
mod supervise;
mod target;
pub mod timer;
mod transfer;
mod voicemail;
mod wrapup;

pub use chosen::MAX_SLOTS as MAX_CALLBACK_SLOTS;
pub use consult::{ConsultAction, ConsultTarget, Detached};
pub use io::{
    CallEvent, CallInfo, CallbackStatus, FromCentre, HangupCause, LegEvent, NotBooked, Outcome,
    Output, Recording, Stored, SuperviseMode, ToCentre, Transmit,
};
pub use leg::{LegId, LegState, Role};
pub use machine::{Call, Start};
pub use media::law_of;
pub use notify::{Delivery, Notice, NoticeResult};
pub use rules::{CallConfig, CallbackFirst, QueueRules, Shared};
pub use target::{static_target, Dial, Purpose, Target};
