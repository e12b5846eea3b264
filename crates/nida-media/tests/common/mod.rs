//! What the media tests share.

pub mod browser;
