//! Operations: the admin API and its bounded HTTP listener, access
//! control, the pages, metrics, webhooks and the HTTP client, the store's
//! writer thread, recording retention and flow reload.

pub mod access;
pub mod api;
pub mod db;
pub mod http;
pub mod httpc;
pub mod metrics;
pub mod reload;
pub mod retention;
pub mod web;
pub mod webhooks;
