//! Shared helpers for the end-to-end tests: start the real `nida` binary
//! on free loopback ports with a generated config, run sipp against it,
//! read its log and its status endpoint.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Ports handed out so far, from [`FIRST_PORT`] up.
static NEXT: AtomicU16 = AtomicU16::new(0);
/// The first port the tests use; they stay below Linux's ephemeral range
/// (32768 and up), so no outgoing socket takes them.
const FIRST_PORT: u16 = 2000;
const LAST_PORT: u16 = 32767;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn scenario(name: &str) -> String {
    repo().join("tests/sipp").join(name).display().to_string()
}

/// Ports other programs on the machine hold whatever the tests do: mDNS
/// (Chromium's WebRTC answers on it to hide local addresses) and SIP's
/// own. A block holding one of them is skipped.
const TAKEN: [u16; 3] = [5060, 5061, 5353];

/// A block of `n` consecutive ports no other test of this run has.
pub fn ports(n: u16) -> u16 {
    loop {
        let first = FIRST_PORT + NEXT.fetch_add(n, Ordering::SeqCst);
        assert!(
            u32::from(first) + u32::from(n) <= u32::from(LAST_PORT),
            "the tests ran out of ports"
        );
        if !TAKEN.iter().any(|t| (first..first + n).contains(t)) {
            return first;
        }
    }
}

/// Ports for one sipp run: its media port (and the +2 it also binds) and
/// its SIP port at +4.
pub fn media_ports() -> u16 {
    ports(6)
}

/// The admin token every test nida gets.
pub const TOKEN: &str = "test-admin-token-0123";

pub struct Nida {
    pub child: Child,
    pub sip: SocketAddr,
    pub http: SocketAddr,
    pub log: Arc<Mutex<String>>,
    /// nida's own folder: its configuration, and its data unless the
    /// test names another `data_dir`.
    pub dir: PathBuf,
    /// Removes `dir` when the test is over.
    tmp: Option<tempfile::TempDir>,
}

impl Nida {
    /// Starts nida with `extra` TOML lines on ports of its own.
    pub fn start(extra: &str) -> Nida {
        Nida::start_with(|_| extra.to_string())
    }

    /// Like `start`, with the extra TOML made from nida's own folder
    /// (for paths inside it).
    pub fn start_with(extra: impl FnOnce(&Path) -> String) -> Nida {
        let p = ports(110);
        let sip: SocketAddr = format!("127.0.0.1:{p}").parse().unwrap();
        let http: SocketAddr = format!("127.0.0.1:{}", p + 1).parse().unwrap();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("nida-test-{p}-"))
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let cfg = dir.join("nida.toml");
        // `TLS` in the extra lines stands for a `[tls]` table with the test
        // certificate, trusting the test CA, listening at the SIP port + 2.
        let tls = format!(
            "[tls]\naddr = \"127.0.0.1:{}\"\ncertificate = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n",
            p + 2,
            repo().join("tests/tls/nida-test.crt").display(),
            repo().join("tests/tls/nida-test.key").display(),
            repo().join("tests/tls/test-ca.crt").display()
        );
        let extra = extra(&dir).replace("TLS\n", &tls);
        // `UNSEEDED` in the extra lines: no test seed, identifiers from the
        // OS as in production.
        let seed = if extra.contains("UNSEEDED\n") {
            ""
        } else {
            "seed = 7\n"
        };
        let mut extra = extra.replace("UNSEEDED\n", "");
        // Each nida keeps its records apart from the other tests'.
        if !extra.contains("data_dir") {
            extra = format!("data_dir = \"{}\"\n{extra}", dir.join("data").display());
        }
        std::fs::write(
            &cfg,
            format!(
                "sip_addr = \"{sip}\"\nhttp_addr = \"{http}\"\nrtp_ports = \"{}-{}\"\n{seed}admin_token = \"{TOKEN}\"\n{extra}\n",
                p + 10,
                p + 109
            ),
        )
        .unwrap();
        Nida::spawn(&cfg, sip, http, tmp)
    }

    /// Kills nida with SIGKILL (no chance to tidy up) and starts it again
    /// on the same configuration and data folder.
    pub fn kill_and_restart(mut self) -> Nida {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (sip, http) = (self.sip, self.http);
        // The folder goes to the new process (dropping `self` would
        // delete it).
        let tmp = self.tmp.take().expect("a folder of its own");
        Nida::spawn(&tmp.path().join("nida.toml"), sip, http, tmp)
    }

    fn spawn(cfg: &Path, sip: SocketAddr, http: SocketAddr, tmp: tempfile::TempDir) -> Nida {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nida"))
            .arg("--config")
            .arg(cfg)
            .env("RUST_LOG", "info,nida=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nida starts");
        let log = Arc::new(Mutex::new(String::new()));
        collect_lines(&log, child.stderr.take().unwrap());
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        assert!(
            first.contains("listening"),
            "nida did not start: {first:?} {}",
            log.lock().unwrap()
        );
        assert!(first.contains(&sip.to_string()), "{first}");
        Nida {
            child,
            sip,
            http,
            log,
            dir: tmp.path().to_path_buf(),
            tmp: Some(tmp),
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait(timeout, || self.log().contains(needle))
    }

    /// A number from the JSON of `/status`.
    pub fn status(&self, key: &str) -> u64 {
        let body = self.get("/api/status");
        let pat = format!("\"{key}\":");
        let at = body
            .find(&pat)
            .unwrap_or_else(|| panic!("{key} not in {body}"))
            + pat.len();
        body[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .unwrap()
    }

    /// GET `path` from the admin API with the token: the body of a 200.
    pub fn get(&self, path: &str) -> String {
        let (status, body) = http(self.http, "GET", path, Some(TOKEN), "");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Agent `id`'s state as the API says it (`available`, `logged_out`).
    pub fn agent_state(&self, id: u32) -> String {
        let a: serde_json::Value =
            serde_json::from_str(&self.get(&format!("/api/agents/{id}"))).unwrap_or_default();
        a["agent"]["state"].as_str().unwrap_or_default().to_string()
    }

    /// Waits (`timeout` at most) until agent `id` is in `state`.
    pub fn wait_agent_state(&self, id: u32, state: &str, timeout: Duration) -> bool {
        wait(timeout, || self.agent_state(id) == state)
    }

    /// Waits (5 s at most) until a call is up.
    pub fn wait_for_a_call(&self) {
        let t0 = Instant::now();
        while self.status("calls") < 1 {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "the call never came up: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM: nida starts to stop.
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Where nida listens for TLS when its config has the `TLS` table.
    pub fn tls(&self) -> SocketAddr {
        SocketAddr::new(self.sip.ip(), self.sip.port() + 2)
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Nida {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tests' one HTTP client (reqwest, blocking): a 10 s timeout, so a
/// stuck server fails the test instead of hanging it.
pub fn client() -> &'static reqwest::blocking::Client {
    static CLIENT: std::sync::OnceLock<reqwest::blocking::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client")
    })
}

fn builder() -> reqwest::blocking::ClientBuilder {
    install_tls_provider();
    reqwest::blocking::Client::builder()
}

/// nida builds reqwest without a default TLS provider; every reqwest
/// client the tests build (theirs, thirtyfour's) speaks plain HTTP but
/// needs one all the same.
pub fn install_tls_provider() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
}

/// One request to `addr` with an optional bearer token and a JSON body:
/// the status code and the body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let r = response(addr, method, path, token, body);
    let status = r.status().as_u16();
    (status, r.text().unwrap_or_default())
}

/// One request as [`http`] does; the whole response (for its headers).
pub fn response(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> reqwest::blocking::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut req = client()
        .request(method, format!("http://{addr}{path}"))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The server-sent events of `path` (a JSON object per `data:` line),
/// collected in the background; subscribed once this returns (the
/// response's headers have arrived).
pub fn events(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> Arc<Mutex<Vec<serde_json::Value>>> {
    // The stream stays open: no overall timeout on this one.
    let mut req = builder()
        .timeout(None)
        .build()
        .expect("HTTP client")
        .get(format!("http://{addr}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(r.status().as_u16(), 200, "{path}");
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if let Some(json) = line.strip_prefix("data: ") {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_str(json).unwrap());
            }
        }
    });
    events
}

/// Appends the lines `from` writes to `log`, in the background (bytes
/// that are not UTF-8 replaced).
pub fn collect_lines(log: &Arc<Mutex<String>>, from: impl Read + Send + 'static) {
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(from).split(b'\n').map_while(Result::ok) {
            let mut l = sink.lock().unwrap();
            l.push_str(&String::from_utf8_lossy(&line));
            l.push('\n');
        }
    });
}

/// Holds one call for 3 s and places a second one, which must get 503
/// (`uac_503.xml`); gives back the held call's run.
pub fn hold_a_call_and_get_503(nida: &Nida) -> std::thread::JoinHandle<SippRun> {
    let rtp = media_ports();
    let sip = nida.sip;
    let held = std::thread::spawn(move || sipp(sip, "uac_basic.xml", rtp, &["-d", "3000"]));
    nida.wait_for_a_call();
    let run = sipp(nida.sip, "uac_503.xml", media_ports(), &[]);
    assert!(run.ok, "{}\n{}", run.output, nida.log());
    held
}

/// Waits until `ok` holds (checked every 50 ms); false after `timeout`.
pub fn wait(timeout: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Waits until a peer started by the test has bound UDP `port` (read from
/// the kernel's socket table, without touching the port); panics after
/// 10 s.
pub fn wait_udp_bound(port: u16) {
    let needle = format!(":{port:04X} ");
    let bound = wait(Duration::from_secs(10), || {
        ["/proc/net/udp", "/proc/net/udp6"].iter().any(|t| {
            std::fs::read_to_string(t).is_ok_and(|table| {
                table.lines().skip(1).any(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .is_some_and(|a| format!("{a} ").ends_with(&needle))
                })
            })
        })
    });
    assert!(bound, "nothing listens on UDP port {port}");
}

/// The result of one sipp run.
pub struct SippRun {
    pub ok: bool,
    pub output: String,
}

/// Runs sipp as a UAC against nida; `rtp` is the port the scenario's SDP
/// offers (sipp's own media port too).
pub fn sipp(sip: SocketAddr, scenario_file: &str, rtp: u16, args: &[&str]) -> SippRun {
    sipp_with(sip, scenario_file, rtp, rtp, args)
}

/// Runs sipp with its media port `mp` and an SDP offering `sdp_port`.
pub fn sipp_with(
    sip: SocketAddr,
    scenario_file: &str,
    mp: u16,
    sdp_port: u16,
    args: &[&str],
) -> SippRun {
    which_sipp();
    // sipp's own SIP port sits in the block reserved for its media (which
    // uses mp and mp + 2): see `media_ports`.
    let mut cmd = Command::new("sipp");
    cmd.arg(sip.to_string())
        .args(["-sf", &scenario(scenario_file)])
        .args([
            "-s",
            "901",
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "30s",
            "-timeout_error",
        ])
        .args(["-i", "127.0.0.1", "-p", &(mp + 4).to_string()])
        .args([
            "-mp",
            &mp.to_string(),
            "-key",
            "rtp_port",
            &sdp_port.to_string(),
        ])
        .args(args)
        .stdin(Stdio::null());
    let out = cmd.output().expect("sipp runs");
    let output = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    SippRun {
        ok: out.status.success(),
        output,
    }
}

/// Fails the test unless `program` is on the PATH, naming the Debian
/// `package` tests/run installs it from.
pub fn require(program: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{program} is not installed: run tests/run (it installs the Debian package {package})"
    );
}

pub fn which_sipp() {
    require("sipp", "sip-tester");
}

/// Writes `pcm` (8 kHz mono) as a pcap of RTP packets (PCMA, 20 ms each,
/// timed as they would be sent) that sipp's `play_pcap_audio` plays: an
/// Ethernet, IPv4 and UDP frame around each packet.
pub fn write_rtp_pcap(path: &Path, pcm: &[i16]) {
    let mut out = Vec::new();
    // Global header: microsecond pcap 2.4, Ethernet links.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, frame) in pcm.chunks(160).enumerate() {
        let payload = nida_media::Law::A.encode(frame);
        let mut rtp = vec![0x80, 8];
        rtp.extend_from_slice(&(i as u16).to_be_bytes());
        rtp.extend_from_slice(&((i * 160) as u32).to_be_bytes());
        rtp.extend_from_slice(&0x5eed_0001u32.to_be_bytes());
        rtp.extend_from_slice(&payload);
        let udp_len = 8 + rtp.len();
        let ip_len = 20 + udp_len;
        let mut pkt = Vec::with_capacity(14 + ip_len);
        pkt.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00]);
        pkt.extend_from_slice(&[0x45, 0]);
        pkt.extend_from_slice(&(ip_len as u16).to_be_bytes());
        pkt.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0]);
        pkt.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
        pkt.extend_from_slice(&6000u16.to_be_bytes());
        pkt.extend_from_slice(&6002u16.to_be_bytes());
        pkt.extend_from_slice(&(udp_len as u16).to_be_bytes());
        pkt.extend_from_slice(&[0, 0]);
        pkt.extend_from_slice(&rtp);
        let us = i as u64 * 20_000;
        out.extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        out.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        out.extend_from_slice(&pkt);
    }
    std::fs::write(path, out).expect("pcap written");
}
