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

/// dnsmasq on loopback `port` serving `carrier.test`: a NAPTR record to
/// `_sip._udp.edge.carrier.test` (not the SRV name nida would guess, so
/// only NAPTR leads there), whose SRV records name a dead carrier first
/// (priority 10, port `dead`) and a live one after it (priority 20, port
/// `live`), both at 127.0.0.1.
fn dns_server(port: u16, dead: u16, live: u16) -> Child {
    common::require("dnsmasq", "dnsmasq-base");
    let dnsmasq = ["/usr/sbin/dnsmasq", "dnsmasq"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok())
        .expect("dnsmasq");
    let child = Command::new(dnsmasq)
        .args([
            "--keep-in-foreground",
            "--no-daemon",
            "--no-resolv",
            "--no-hosts",
        ])
        .args([
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--user=root",
        ])
        .arg(format!("--port={port}"))
        .arg("--naptr-record=carrier.test,10,10,S,SIP+D2U,,_sip._udp.edge.carrier.test")
        .arg(format!(
            "--srv-host=_sip._udp.edge.carrier.test,dead.carrier.test,{dead},10,100"
        ))
        .arg(format!(
            "--srv-host=_sip._udp.edge.carrier.test,live.carrier.test,{live},20,100"
        ))
        .arg("--host-record=dead.carrier.test,127.0.0.1")
        .arg("--host-record=live.carrier.test,127.0.0.1")
        .arg("--local-ttl=60")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dnsmasq starts");
    common::wait_udp_bound(port);
    child
}

#[test]
fn a_trunk_by_host_name_is_resolved_by_naptr_srv_and_a_and_fails_over() {
    common::which_sipp();
    let (dns, dead, live) = (common::ports(10), common::ports(10), common::ports(10));
    let mut dnsmasq = dns_server(dns, dead, live);
    let mut carrier = Command::new("sipp")
        .args(["-sf", &common::scenario("carrier_options.xml")])
        .args(["-i", "127.0.0.1", "-p", &live.to_string()])
        .args(["-nostdin", "-timeout", "60s"])
        .args(["-mp", &(live + 4).to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp starts");
    let nida = Nida::start(&format!(
        "dns_servers = [\"127.0.0.1:{dns}\"]\n\
         [[trunks]]\nname = \"carrier\"\naddresses = [\"carrier.test\"]\n\
         register = false\noptions_interval_seconds = 1\n"
    ));
    // Both SRV targets, in priority order; the dead one found down, the
    // live one up, so calls go to the live one.
    let expected_dead = format!("{{\"address\":\"127.0.0.1:{dead}\",\"health\":\"down\"}}");
    let expected_live = format!("{{\"address\":\"127.0.0.1:{live}\",\"health\":\"up\"}}");
    let mut trunks = String::new();
    let found = common::wait(Duration::from_secs(15), || {
        trunks = nida.get("/api/trunks");
        trunks.contains(&format!("[{expected_dead},{expected_live}]"))
    });
    let _ = carrier.kill();
    let _ = dnsmasq.kill();
    let _ = (carrier.wait(), dnsmasq.wait());
    assert!(found, "{trunks}\n{}", nida.log());
    assert!(nida.log().contains("trunk resolved"), "{}", nida.log());
}

/// A carrier over TLS at `port` (the test certificate, valid for
/// `localhost` and 127.0.0.1): every connection's SNI goes to `names`,
/// and each OPTIONS on it gets 200.
fn tls_carrier(port: u16, names: std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    common::install_tls_provider();
    let dir = common::repo().join("tests/tls");
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join("nida-test.crt"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("nida-test.key")).unwrap();
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (config, names) = (config.clone(), names.clone());
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = tls.read(&mut chunk) else { return };
                    if n == 0 {
                        return;
                    }
                    if let Some(sni) = tls.conn.server_name() {
                        let mut v = names.lock().unwrap();
                        if v.is_empty() {
                            v.push(sni.to_string());
                        }
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let msg = String::from_utf8_lossy(&buf[..end]).into_owned();
                        buf.drain(..end + 4);
                        if !msg.starts_with("OPTIONS ") {
                            continue;
                        }
                        let mut reply = String::from("SIP/2.0 200 OK\r\n");
                        for l in msg.lines() {
                            let name = l.split(':').next().unwrap_or("").to_ascii_lowercase();
                            if ["via", "from", "call-id", "cseq"].contains(&name.as_str()) {
                                reply.push_str(l);
                                reply.push_str("\r\n");
                            } else if name == "to" {
                                reply.push_str(l);
                                reply.push_str(";tag=carrier\r\n");
                            }
                        }
                        reply.push_str("Content-Length: 0\r\n\r\n");
                        if tls.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
}

#[test]
fn a_tls_trunk_checks_the_carriers_certificate_by_its_name_and_sends_sni() {
    let (good, bad) = (common::ports(10), common::ports(10));
    let good_names = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let bad_names = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    tls_carrier(good, good_names.clone());
    tls_carrier(bad, bad_names.clone());
    // The same certificate (valid for localhost) behind two trunks: one
    // names the carrier localhost, the other carrier.example.
    let nida = Nida::start(&format!(
        "TLS\n[[trunks]]\nname = \"good\"\naddresses = [\"127.0.0.1:{good}\"]\ntransport = \"tls\"\n\
         domain = \"localhost\"\nregister = false\noptions_interval_seconds = 1\n\
         [[trunks]]\nname = \"bad\"\naddresses = [\"127.0.0.1:{bad}\"]\ntransport = \"tls\"\n\
         domain = \"carrier.example\"\nregister = false\noptions_interval_seconds = 1\n"
    ));
    let up = format!("{{\"address\":\"127.0.0.1:{good}\",\"health\":\"up\"}}");
    let down = format!("{{\"address\":\"127.0.0.1:{bad}\",\"health\":\"down\"}}");
    let mut trunks = String::new();
    let ok = common::wait(Duration::from_secs(15), || {
        trunks = nida.get("/api/trunks");
        trunks.contains(&up) && trunks.contains(&down)
    });
    assert!(ok, "{trunks}\n{}", nida.log());
    assert_eq!(*good_names.lock().unwrap(), ["localhost"], "SNI");
    assert!(
        bad_names
            .lock()
            .unwrap()
            .iter()
            .all(|n| n == "carrier.example"),
        "SNI is the trunk's domain"
    );
    assert!(
        nida.log().contains("TLS handshake failed"),
        "{}",
        nida.log()
    );
}
