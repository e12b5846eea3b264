//! Carrier trunks end to end, against the real binary with sipp playing
//! the carrier on loopback: nida registers with digest authentication and
//! refreshes before the registration lapses; calls from the trunk's
//! network are taken with the called number rewritten into the dial plan,
//! calls from anywhere else are refused 403. (A call-back through a trunk,
//! with failover and a challenged INVITE, is in `agents.rs`.)

use crate::common;

use common::{sipp, Nida};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The carrier's registrar: sipp at `port`, one registration dialog
/// (`carrier_registrar.xml`), 20 s at most.
fn carrier_registrar(port: u16) -> Child {
    let registrar = Command::new("sipp")
        .args(["-sf", &common::scenario("carrier_registrar.xml")])
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error"])
        .args(["-mp", &(port + 4).to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp starts");
    common::wait_udp_bound(port);
    registrar
}

/// A trunk to the carrier at `port` that registers as 4420 with
/// `password`, without health checks, plus `extra` lines.
fn registering_trunk(port: u16, password: &str, extra: &str) -> String {
    format!(
        "[[trunks]]\nname = \"carrier\"\naddresses = [\"127.0.0.1:{port}\"]\n\
         domain = \"carrier.example\"\nusername = \"4420\"\npassword = \"{password}\"\n\
         options_interval_seconds = 0\n{extra}\n"
    )
}

#[test]
fn nida_registers_to_the_carrier_and_refreshes_in_time() {
    common::which_sipp();
    let carrier = common::ports(10);
    let registrar = carrier_registrar(carrier);
    let nida = Nida::start(&registering_trunk(
        carrier,
        "trunk-pass",
        "register_expires_seconds = 60",
    ));
    let out = registrar.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the carrier's registrar: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        nida.log()
    );
    // Registered for the 600 s granted the second time, shown in the API
    // and the metrics.
    assert!(
        common::wait(Duration::from_secs(5), || nida
            .log()
            .matches("registered to the carrier")
            .count()
            >= 2),
        "{}",
        nida.log()
    );
    let trunks = nida.get("/api/trunks");
    assert!(
        trunks.contains("\"registration\":\"registered\""),
        "{trunks}"
    );
    assert!(
        trunks.contains(&format!("\"registered_at\":\"127.0.0.1:{carrier}\"")),
        "{trunks}"
    );
    let metrics = nida.get("/metrics");
    assert!(
        metrics.contains("nida_trunk_registered{trunk=\"carrier\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_wrong_trunk_password_is_reported_in_the_log_api_and_metrics() {
    common::which_sipp();
    let carrier = common::ports(10);
    let registrar = carrier_registrar(carrier);
    let nida = Nida::start(&registering_trunk(carrier, "not-it", "retry_seconds = 60"));
    let out = registrar.wait_with_output().unwrap();
    assert!(!out.status.success(), "the registrar refused the answer");
    assert!(
        nida.wait_log("registration to the carrier failed", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    assert!(
        nida.wait_log("status=403", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    let trunks = nida.get("/api/trunks");
    assert!(trunks.contains("\"registration\":\"failed\""), "{trunks}");
    assert!(trunks.contains("\"last_status\":403"), "{trunks}");
    assert!(
        nida.get("/metrics")
            .contains("nida_trunk_registered{trunk=\"carrier\"} 0"),
        "{}",
        nida.get("/metrics")
    );
}

#[test]
fn calls_from_the_trunk_network_are_taken_and_others_refused() {
    // The carrier's network is 127.0.0.2; its calls name the number in
    // international form, the dial plan knows the national one.
    let nida = Nida::start(
        "[dial_plan]\n\"0901\" = \"police\"\n\
         [[trunks]]\nname = \"carrier\"\naddresses = [\"127.0.0.2:5060\"]\n\
         options_interval_seconds = 0\ninbound = [\"127.0.0.2/32\"]\n\
         rewrite_in = [{ prefix = \"+44\", replace = \"0\" }]\n",
    );
    let rtp = common::media_ports();
    let ok = sipp(
        nida.sip,
        "uac_basic.xml",
        rtp,
        &["-i", "127.0.0.2", "-s", "+44901"],
    );
    assert!(ok.ok, "{}\n{}", ok.output, nida.log());
    assert!(
        nida.wait_log("called=0901 trunk=\"carrier\"", Duration::from_secs(5)),
        "the number is rewritten and the trunk named: {}",
        nida.log()
    );
    assert!(
        nida.wait_log(
            "running flow flow=police called=0901",
            Duration::from_secs(5)
        ),
        "{}",
        nida.log()
    );
    // From any other address: 403, nothing answered.
    let rtp = common::media_ports();
    let refused = sipp(nida.sip, "uac_403.xml", rtp, &["-s", "+44901"]);
    assert!(refused.ok, "{}\n{}", refused.output, nida.log());
    assert!(
        nida.wait_log(
            "call from no trunk, agent or trusted network: 403",
            Duration::from_secs(5)
        ),
        "{}",
        nida.log()
    );
    assert_eq!(nida.status("calls"), 0);
}
