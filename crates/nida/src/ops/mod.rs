//! Operations: the admin API and its bounded HTTP listener, access
//! control, the desk API (voice messages, wrap-ups, IVR figures), status
//! notifications, SIP over WebSocket for web phones, the
//! pages, metrics, webhooks, recording retention and flow reload.

pub mod access;
pub mod api;
pub mod desk;
pub mod http;
pub mod metrics;
pub mod notices;
pub mod reload;
pub mod retention;
pub mod sipws;
pub mod web;
pub mod webhooks;
