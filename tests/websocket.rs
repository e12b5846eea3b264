//! SIP over WebSocket (RFC 7118) on the wire: a scripted web phone
//! connects to `ws://HTTP/sip` (and `wss://` on the HTTPS listener) with
//! the `sip` subprotocol, registers as an agent with digest, is offered a
//! real caller's call over its WebSocket with a WebRTC offer (its media is
//! proven in Chromium, `tests/web.rs`), is busy, and closing the WebSocket
//! logs the agent out. A connection without the subprotocol is refused.

use crate::agents::{caller, finish, tone_file};
use crate::common::Nida;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// The phone's connection: plain (`ws://`) or over TLS (`wss://`).
enum Link {
    Plain(Box<WebSocket<MaybeTlsStream<TcpStream>>>),
    Tls(Box<WebSocket<TlsStream>>),
}

type TlsStream =
    tokio_rustls::rustls::StreamOwned<tokio_rustls::rustls::ClientConnection, TcpStream>;

impl Link {
    fn send(&mut self, m: Message) -> tungstenite::Result<()> {
        match self {
            Link::Plain(w) => w.send(m),
            Link::Tls(w) => w.send(m),
        }
    }

    fn read(&mut self) -> tungstenite::Result<Message> {
        match self {
            Link::Plain(w) => w.read(),
            Link::Tls(w) => w.read(),
        }
    }

    fn close(&mut self) -> tungstenite::Result<()> {
        match self {
            Link::Plain(w) => w.close(None),
            Link::Tls(w) => w.close(None),
        }
    }
}

/// A web phone's SIP over a WebSocket, scripted.
struct WebPhone {
    ws: Link,
    /// `WS` or `WSS`, as its Via and Contact say.
    via: &'static str,
    host: &'static str,
    cseq: u32,
    tag: String,
    call_id: String,
}

impl WebPhone {
    fn connect(nida: &Nida) -> WebPhone {
        let mut req = format!("ws://{}/sip", nida.http)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
        let (ws, resp) = tungstenite::connect(req).expect("the WebSocket opens");
        assert_eq!(
            resp.headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap()),
            Some("sip")
        );
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
        }
        WebPhone::over(Link::Plain(Box::new(ws)))
    }

    /// A web phone over TLS to nida's HTTPS listener at `addr`, trusting
    /// the test CA.
    fn connect_tls(addr: SocketAddr) -> WebPhone {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
        crate::common::install_tls_provider();
        let mut roots = rustls::RootCertStore::empty();
        let ca = crate::common::repo().join("tests/tls/test-ca.crt");
        for c in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let tls = rustls::StreamOwned::new(conn, tcp);
        let mut req = format!("wss://localhost:{}/sip", addr.port())
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
        let (ws, resp) = tungstenite::client(req, tls).expect("the secure WebSocket opens");
        assert_eq!(
            resp.headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap()),
            Some("sip")
        );
        WebPhone::over(Link::Tls(Box::new(ws)))
    }

    fn over(ws: Link) -> WebPhone {
        let via = match ws {
            Link::Plain(_) => "WS",
            Link::Tls(_) => "WSS",
        };
        WebPhone {
            ws,
            via,
            host: "k3lp0w9x.invalid",
            cseq: 0,
            tag: format!("wp{}", std::process::id()),
            call_id: format!("ws-reg-{}", std::process::id()),
        }
    }

    /// Sends one SIP message (its lines ended by CRLF whatever `text`
    /// uses).
    fn send(&mut self, text: &str) {
        let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
        self.ws.send(Message::text(crlf)).unwrap();
    }

    /// The next SIP message within `limit` (keep-alives skipped).
    fn recv(&mut self, limit: Duration) -> Option<String> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            match self.ws.read() {
                Ok(Message::Text(t)) => return Some(t.to_string()),
                Ok(Message::Binary(b)) => return Some(String::from_utf8_lossy(&b).into()),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("WebSocket: {e}"),
            }
        }
        None
    }

    /// The next request of `method`, or response to it, within `limit`.
    fn expect(&mut self, what: &str, limit: Duration) -> String {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(m) = self.recv(end - Instant::now()) {
                let response = m.starts_with("SIP/2.0") && cseq_method(&m) == what;
                if m.starts_with(what) || response {
                    return m;
                }
            }
        }
        panic!("no {what} within {limit:?}");
    }

    /// REGISTER as agent 1001: challenged (401), answered with the
    /// digest of its password, then registered (200), nida says so.
    fn register_with_digest(&mut self, nida: &Nida) {
        let challenge = self.register(nida, None);
        assert!(first_line(&challenge).contains("401"), "{challenge}");
        let www = header(&challenge, "WWW-Authenticate").expect("a challenge");
        let uri = format!("sip:{}", nida.sip);
        let auth = nida_sip::auth::answer(www, "REGISTER", &uri, "1001", "ws-secret", "c0ffee")
            .expect("an answer to the challenge");
        let ok = self.register(nida, Some(auth));
        assert!(first_line(&ok).contains("200"), "{ok}");
        assert!(
            nida.wait_log("agent registered agent=1", Duration::from_secs(5)),
            "{}",
            nida.log()
        );
    }

    fn register(&mut self, nida: &Nida, auth: Option<String>) -> String {
        self.cseq += 1;
        let auth = auth
            .map(|a| format!("Authorization: {a}\n"))
            .unwrap_or_default();
        let msg = format!(
            "REGISTER sip:{sip} SIP/2.0\n\
             Via: SIP/2.0/{via} {host};branch=z9hG4bKreg{cseq}\n\
             Max-Forwards: 70\n\
             From: <sip:1001@{sip}>;tag={tag}\n\
             To: <sip:1001@{sip}>\n\
             Call-ID: {cid}\n\
             CSeq: {cseq} REGISTER\n\
             Contact: <sip:1001@{host};transport={transport}>\n\
             Expires: 600\n\
             {auth}Content-Length: 0\n\n",
            sip = nida.sip,
            host = self.host,
            via = self.via,
            transport = self.via.to_ascii_lowercase(),
            cseq = self.cseq,
            tag = self.tag,
            cid = self.call_id,
        );
        self.send(&msg);
        self.expect("REGISTER", Duration::from_secs(5))
    }
}

fn first_line(m: &str) -> &str {
    m.lines().next().unwrap_or_default()
}

fn header<'a>(m: &'a str, name: &str) -> Option<&'a str> {
    m.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn cseq_method(m: &str) -> &str {
    header(m, "CSeq")
        .and_then(|c| c.split_whitespace().nth(1))
        .unwrap_or_default()
}

/// The answer to a request: its Via, From, To (with `to_tag`), Call-ID
/// and CSeq, and `extra` headers and body.
fn response_to(req: &str, status: &str, to_tag: &str, extra: &str, body: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\n");
    for l in req.lines().take_while(|l| !l.trim().is_empty()) {
        let lower = l.to_ascii_lowercase();
        if lower.starts_with("via:")
            || lower.starts_with("from:")
            || lower.starts_with("call-id:")
            || lower.starts_with("cseq:")
        {
            out.push_str(l.trim_end());
            out.push('\n');
        } else if lower.starts_with("to:") {
            out.push_str(l.trim_end());
            out.push_str(&format!(";tag={to_tag}\n"));
        }
    }
    out.push_str(extra);
    out.push_str(&format!("Content-Length: {}\n\n{body}", body.len()));
    out
}

#[test]
fn a_web_phone_registers_over_a_websocket_and_is_offered_webrtc() {
    let nida = Nida::start_with(|dir| {
        format!(
            "data_dir = \"{}\"\n[[agents]]\nid = 1\nuser = \"1001\"\npassword = \"ws-secret\"\n\
             skills = {{ visa = 5 }}\nlanguages = [\"en\"]\n\
             [queues.visa_general]\nannounce_seconds = 0\nwrap_up_seconds = 0\n",
            dir.join("data").display()
        )
    });
    // Without the subprotocol: refused.
    let plain = format!("ws://{}/sip", nida.http);
    assert!(tungstenite::connect(plain.as_str()).is_err());

    // REGISTER, challenged, then answered with the digest.
    let mut phone = WebPhone::connect(&nida);
    phone.register_with_digest(&nida);

    // A caller queues; the offer comes over the WebSocket, and it is a
    // WebRTC one (nida's gateway: ICE-lite, DTLS-SRTP, Opus), since web
    // phones speak WebRTC.
    let voice = nida.dir.join("caller-voice.wav");
    tone_file(&voice, 1000.0, 20);
    let heard = nida.dir.join("caller-heard.wav");
    let call = caller(&nida, "2,0", 30, &voice, &heard);
    let invite = phone.expect("INVITE", Duration::from_secs(20));
    assert!(
        header(&invite, "Via").is_some_and(|v| v.starts_with("SIP/2.0/WS ")),
        "{invite}"
    );
    let sdp = invite.split("\r\n\r\n").nth(1).unwrap_or_default();
    for needed in [
        "UDP/TLS/RTP/SAVPF",
        "a=ice-lite",
        "a=fingerprint:sha-256",
        "a=rtcp-mux",
        "opus/48000/2",
    ] {
        assert!(sdp.contains(needed), "{needed} in the offer:\n{sdp}");
    }
    // The phone is busy: the caller is not lost, the offer ends.
    let busy = response_to(&invite, "486 Busy Here", "webbusy", "", "");
    phone.send(&busy);
    phone.expect("ACK", Duration::from_secs(5));
    assert!(
        nida.wait_log(
            "agent did not take the call agent=1 reason=Refused(486)",
            Duration::from_secs(5)
        ),
        "{}",
        nida.log()
    );

    // The tab closes: the agent is logged out, not left ready.
    phone.ws.close().unwrap();
    assert!(
        nida.wait_agent_state(1, "logged_out", Duration::from_secs(5)),
        "{}\n{}",
        nida.agent_state(1),
        nida.log()
    );
    let _ = finish(call);
}

#[test]
fn a_web_phone_registers_over_a_secure_websocket() {
    let https = crate::common::ports(2);
    let nida = Nida::start_with(|dir| {
        format!(
            "data_dir = \"{}\"\nTLS\nhttps_addr = \"127.0.0.1:{https}\"\n\
             [[agents]]\nid = 1\nuser = \"1001\"\npassword = \"ws-secret\"\n\
             skills = {{ visa = 5 }}\nlanguages = [\"en\"]\n",
            dir.join("data").display()
        )
    });
    let addr: SocketAddr = format!("127.0.0.1:{https}").parse().unwrap();
    let mut phone = WebPhone::connect_tls(addr);
    phone.register_with_digest(&nida);
    // Closing it logs the agent out.
    phone.ws.close().unwrap();
    assert!(
        nida.wait_agent_state(1, "logged_out", Duration::from_secs(5)),
        "{}\n{}",
        nida.agent_state(1),
        nida.log()
    );
}
