//! The error type of the media crate.

/// Everything that can go wrong in the media crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A prompt file could not be read.
    #[error("cannot read prompt {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A prompt file could not be decoded.
    #[error("cannot decode prompt {path}: {reason}")]
    Decode {
        /// The file.
        path: String,
        /// What the decoder said.
        reason: String,
    },
    /// An RTP or RFC 4733 packet is malformed.
    #[error("malformed packet: {0}")]
    Packet(&'static str),
}
