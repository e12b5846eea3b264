//! The web pages nida serves (wallboard, agent page, their script and
//! style, the agent page's browser phone) and the OpenAPI description of the admin API, embedded in the
//! binary from `crates/nida/web/`.

/// The supervisors' wallboard.
pub const WALLBOARD: &str = include_str!("../../web/wallboard.html");
/// The agent page.
pub const AGENT: &str = include_str!("../../web/agent.html");
/// Both pages' script.
pub const SCRIPT: &str = include_str!("../../web/nida.js");
/// The agent page's browser phone (SIP over WebSocket and WebRTC).
pub const PHONE: &str = include_str!("../../web/phone.js");
/// Both pages' style.
pub const STYLE: &str = include_str!("../../web/nida.css");
/// The OpenAPI 3.1 description of the admin API.
pub const OPENAPI: &str = include_str!("../../web/openapi.json");
