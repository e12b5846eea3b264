//! The web phone's media gateway in process and in virtual time, against
//! a full-ICE str0m peer standing for the browser: ICE and DTLS come up,
//! and each side hears the other's tone through Opus and G.711.

mod common;

use common::browser::{pitch, World};
use nida_media::webrtc::GatewayEvent;

#[test]
fn the_gateway_connects_and_each_side_hears_the_other_through_opus() {
    let mut w = World::new();
    let mut events = Vec::new();
    for _ in 0..150 {
        w.step(1000.0, 600.0);
        while let Some(e) = w.gw.poll_event() {
            events.push(e);
        }
    }
    assert!(w.connected, "ICE and DTLS up on the browser's side");
    assert!(events.contains(&GatewayEvent::Connected), "{events:?}");
    // The last second of each direction (the first frames go before
    // DTLS is up, and the codec settles).
    let browser = &w.browser_heard[w.browser_heard.len().saturating_sub(8000)..];
    let call = &w.call_heard[w.call_heard.len().saturating_sub(8000)..];
    assert!(
        browser.len() >= 8000 && call.len() >= 8000,
        "{} {}",
        browser.len(),
        call.len()
    );
    let (b, c) = (pitch(browser, 8000.0), pitch(call, 8000.0));
    assert!(
        (950.0..1050.0).contains(&b),
        "the browser hears the call's 1000 Hz: {b}"
    );
    assert!(
        (570.0..630.0).contains(&c),
        "the call hears the browser's 600 Hz: {c}"
    );
    let s = w.gw.stats();
    assert!(
        s.from_browser > 50 && s.to_browser > 50 && s.failed == 0,
        "{s:?}"
    );
}
