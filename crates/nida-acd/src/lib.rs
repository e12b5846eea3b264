//! nida's routing core (automatic call distribution): queues, agents and
//! waiting tasks, deciding which task goes to which agent now.
//!
//! - [`model`]: agents, tasks, queues, strategies, escalation, outputs;
//! - [`router`]: the sans-IO core, fed `&mut self` commands with `now`,
//!   drained with `poll_output`, timers fired by `handle_timeout`;
//! - [`writer`]: what the single writer (the shell's task that owns the
//!   router) applies, and the statistics it publishes as snapshots readers
//!   take without locks. No thread and no clock here.
//!
//! The core needs nothing from SIP: tasks may be calls, chats or e-mails.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod model;
pub mod router;
pub mod writer;

pub use model::*;
pub use router::{AcdError, FastMap, KeyHasher, QueueStats, Router, Violation};
