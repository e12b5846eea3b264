//! nida end to end: the real `nida` binary on loopback against real peers
//! (sipp, baresip, linphone, Kamailio, headless Chromium, sipvicious). One test
//! binary, so the suite links once and its tests share the test threads;
//! each file below is one area.

mod common;
mod consult;

mod adversarial;
mod agents;
mod api;
mod dispatcher;
mod ivr_call;
mod ivr_cli;
mod linphone;
mod notify;
mod protection;
mod sipp_calls;
mod supervisors;
mod torture;
mod trunks;
mod web;
mod websocket;
