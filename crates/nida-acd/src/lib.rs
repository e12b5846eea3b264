//! nida's routing core (automatic call distribution): queues, agents and
//! waiting tasks, deciding which task goes to which agent now.
//!
//! - [`model`]: agents, tasks, queues, strategies, escalation, outputs;
//! - [`router`]: the sans-IO core, fed `&mut self` commands with `now`,
//!   drained with `poll_output`, timers fired by `handle_timeout`;
//! - [`shell`]: the single writer on its own thread, fed through a
//!   multi-producer queue, publishing statistics as snapshots readers take
//!   without locks.
//!
//! The core needs nothing from SIP: tasks may be calls, chats or e-mails.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod model;
pub mod router;
pub mod shell;

pub use model::*;
pub use router::{AcdError, QueueStats, Router};
