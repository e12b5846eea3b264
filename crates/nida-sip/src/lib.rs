//! Sans-IO SIP for nida.
//!
//! - [`message`]: parsing and writing SIP messages, tolerant of the valid
//!   oddities of RFC 4475 and strict about the invalid ones;
//! - [`headers`]: typed views of Via, name-addr and SIP URIs;
//! - [`framing`]: message boundaries on TCP;
//! - [`transaction`]: the RFC 3261 transaction machines and timers A to M;
//! - [`endpoint`]: the user-agent server core with dialogs;
//! - [`sdp`]: SDP and the offer/answer model;
//! - [`offer_answer`]: one dialog's offers and answers (hold, moves);
//! - [`auth`]: digest authentication (MD5, SHA-256);
//! - [`session_timer`]: RFC 4028 session timers;
//! - [`registrar`]: REGISTER bindings for softphones;
//! - [`guard`]: limits per source address;
//! - [`srv`]: RFC 3263 names and RFC 2782 order for trunks by host name;
//! - [`trunk`]: carrier trunks (registration, health checks, numbers).
//!
//! No module reads the clock or a socket: time comes in as `now`, bytes come
//! in and go out through `handle_*` and `poll_*` calls.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod dtmf;
pub mod endpoint;
mod error;
pub mod framing;
pub mod guard;
pub mod headers;
pub mod message;
pub mod offer_answer;
pub mod registrar;
pub mod rng;
pub mod sdp;
pub mod session_timer;
pub mod srv;
pub mod transaction;
pub mod trunk;

pub use endpoint::{
    CallHandle, EndReason, Endpoint, EndpointConfig, Event, IncomingCall, Invite, OutRequest,
    Stats, Transmit, Transport,
};
pub use error::Error;
