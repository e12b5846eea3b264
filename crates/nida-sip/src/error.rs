//! The error type of the SIP crate.
//!
//! Parse failures carry the SIP status code the endpoint answers with, so a
//! malformed request becomes a response rather than a string in a log.

/// Everything that can go wrong in the SIP crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The message could not be parsed. `status` is what a server answers
    /// (400, 505, ...); `reason` explains which part was wrong.
    #[error("malformed SIP message ({status}): {reason}")]
    Malformed {
        /// Status code to answer with when the message is a request.
        status: u16,
        /// Human readable explanation, also sent as the reason phrase.
        reason: String,
    },
    /// A stream transport delivered a message without Content-Length or with a
    /// head larger than the limit; the connection cannot be resynchronised.
    #[error("stream framing error: {0}")]
    Framing(String),
    /// An SDP body could not be parsed.
    #[error("malformed SDP: {0}")]
    Sdp(String),
}

impl Error {
    /// A `Malformed` error answered with 400 Bad Request.
    pub(crate) fn bad(reason: impl Into<String>) -> Self {
        Error::Malformed {
            status: 400,
            reason: reason.into(),
        }
    }
}
