//! Sans-IO media for nida.
//!
//! - [`rtp`]: one call's RTP stream: paced sending, receiving, symmetric
//!   RTP, loss and jitter, inactivity timeout;
//! - [`dtmf`]: RFC 4733 telephone-events, both directions;
//! - [`inband`]: DTMF tones in the audio (Goertzel);
//! - [`g711`]: µ-law and A-law;
//! - [`mixer`]: conferences of more than two parties, each hearing whom
//!   it is set to hear;
//! - [`rtcp`]: RTCP reports, round-trip time and an E-model MOS;
//! - [`prompt`]: audio files decoded, resampled and encoded once at start;
//! - [`srtp`]: SRTP (RFC 3711) with keys from SDES.
//!
//! Nothing here reads the clock or a socket.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dtmf;
mod error;
pub mod g711;
pub mod inband;
pub mod mixer;
pub mod prompt;
pub mod rtcp;
pub mod rtp;
pub mod srtp;
pub mod webrtc;

pub use error::Error;
pub use g711::Law;
pub use mixer::Mixer;
pub use prompt::{Prompt, PromptStore};
pub use rtp::{MediaEvent, Outgoing, RtpSession, RtpStats, SessionConfig};
