//! Callers reach agents, end to end with real peers: baresip (Debian's
//! baresip-core) registers as an agent with digest authentication and
//! answers by itself, speaking a 600 Hz tone; `nida call` is the caller,
//! speaking a 1000 Hz tone. Checked: registration, queueing, the agent's
//! phone ringing and answering, audio both ways (each side hears the
//! other's tone), the agent hanging up, the survey rating in the call
//! record, the stereo recording; a caller who hangs up while the agent
//! rings (CANCEL on the wire); call-backs, a blind transfer, feature codes
//! and TLS with SRTP. The centre's rules themselves (offer timeouts,
//! announcements, retries, exits, transfers to queues) are checked in
//! virtual time by `crates/nida-call/tests/centre.rs`; this file keeps one
//! proof on the wire per feature.

use crate::common;

use common::{wait, Nida, TOKEN};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) struct Baresip {
    child: Child,
    /// Its SIP port (UDP; TLS listens on the next one).
    sip_port: u16,
    ctrl: SocketAddr,
    log: Arc<Mutex<String>>,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Baresip {
    /// A softphone registered to nida as `user`, answering by itself when
    /// `auto` (else it rings until cancelled), speaking a 600 Hz tone.
    pub(crate) fn start(nida: SocketAddr, user: &str, password: &str, auto: bool) -> Baresip {
        Baresip::launch(nida, user, password, auto, false, true, 600)
    }

    /// A wideband softphone: like `start`, speaking G.722 only.
    fn start_wideband(nida: SocketAddr, user: &str, password: &str) -> Baresip {
        Baresip::launch_with(nida, user, password, true, false, true, 600, "G722/16000/1")
    }

    /// Like `start`, over TLS to nida's TLS address (checking nida's
    /// certificate) with SDES-SRTP mandatory for its calls.
    fn start_tls(nida_tls: SocketAddr, user: &str, password: &str, auto: bool) -> Baresip {
        Baresip::launch(nida_tls, user, password, auto, true, true, 600)
    }

    /// A phone that does not register and waits for calls over TLS (at
    /// `sip_port + 1`), answering them itself, SRTP mandatory.
    fn listening_tls() -> Baresip {
        let nowhere: SocketAddr = "127.0.0.1:9".parse().unwrap();
        Baresip::launch(nowhere, "1002", "x", true, true, false, 600)
    }

    /// Like `start`, speaking a tone of `hz`.
    pub(crate) fn start_speaking(nida: SocketAddr, user: &str, password: &str, hz: u32) -> Baresip {
        Baresip::launch(nida, user, password, true, false, true, hz)
    }

    #[allow(clippy::too_many_arguments)]
    fn launch(
        nida: SocketAddr,
        user: &str,
        password: &str,
        auto: bool,
        tls: bool,
        register: bool,
        hz: u32,
    ) -> Baresip {
        Baresip::launch_with(nida, user, password, auto, tls, register, hz, "PCMU,PCMA")
    }

    #[allow(clippy::too_many_arguments)]
    fn launch_with(
        nida: SocketAddr,
        user: &str,
        password: &str,
        auto: bool,
        tls: bool,
        register: bool,
        hz: u32,
        codecs: &str,
    ) -> Baresip {
        common::require("baresip", "baresip-core");
        let p = common::ports(10);
        let tmp = tempfile::Builder::new()
            .prefix(&format!("nida-baresip-{p}-"))
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let (transports, secure, account) = if tls {
            // baresip wants a certificate of its own to speak TLS at all.
            let pem: String = ["nida-test.crt", "nida-test.key"]
                .iter()
                .map(|f| std::fs::read_to_string(common::repo().join("tests/tls").join(f)).unwrap())
                .collect();
            std::fs::write(dir.join("cert.pem"), pem).unwrap();
            let ca = common::repo().join("tests/tls/test-ca.crt");
            (
                "udp,tls",
                format!(
                    "sip_certificate {}\nsip_cafile {}\nmodule srtp.so\n",
                    dir.join("cert.pem").display(),
                    ca.display()
                ),
                ";transport=tls>;mediaenc=srtp-mand",
            )
        } else {
            ("udp", String::new(), ";transport=udp>")
        };
        let config = format!(
            "poll_method epoll\n\
             sip_listen 127.0.0.1:{p}\n\
             sip_transports {transports}\n\
             {secure}\
             audio_player aufile,{}/heard.wav\n\
             audio_source ausine,{hz}\n\
             ausrc_srate 48000\n\
             ausrc_channels 2\n\
             auplay_srate 48000\n\
             auplay_channels 1\n\
             audio_alert aufile,/dev/null\n\
             rtp_ports {}-{}\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module g722.so\n\
             module ausine.so\n\
             module aufile.so\n\
             module sndfile.so\n\
             module_app account.so\n\
             module_app menu.so\n\
             module_app ctrl_tcp.so\n\
             ctrl_tcp_listen 127.0.0.1:{}\n\
             snd_path {}\n",
            dir.display(),
            p + 6,
            p + 9,
            p + 5,
            dir.display()
        );
        std::fs::write(dir.join("config"), config).unwrap();
        let mode = if auto { "auto" } else { "manual" };
        let regint = if register { 600 } else { 0 };
        std::fs::write(
            dir.join("accounts"),
            format!(
                "<sip:{user}@{nida}{account};auth_pass={password};answermode={mode};regint={regint};audio_codecs={codecs}\n"
            ),
        )
        .unwrap();
        let mut child = Command::new("baresip")
            .arg("-f")
            .arg(&dir)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("baresip starts");
        let log = Arc::new(Mutex::new(String::new()));
        common::collect_lines(&log, child.stdout.take().unwrap());
        common::collect_lines(&log, child.stderr.take().unwrap());
        Baresip {
            child,
            sip_port: p,
            ctrl: format!("127.0.0.1:{}", p + 5).parse().unwrap(),
            log,
            dir,
            _tmp: tmp,
        }
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub(crate) fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait(timeout, || self.log().contains(needle))
    }

    /// Sends a command through baresip's control socket (netstring JSON).
    pub(crate) fn command(&self, command: &str, params: &str) {
        let mut s = TcpStream::connect(self.ctrl).expect("baresip control port");
        let m = serde_json::json!({"command": command, "params": params, "token": "t"}).to_string();
        s.write_all(format!("{}:{m},", m.len()).as_bytes()).unwrap();
    }

    /// Hangs up the current call.
    pub(crate) fn hangup(&self) {
        self.command("hangup", "");
    }

    /// What baresip decoded from nida (the caller's voice), as 16-bit
    /// samples with their rate.
    pub(crate) fn heard(&self) -> Option<(Vec<i16>, u32)> {
        let dump = std::fs::read_dir(&self.dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))?;
        read_wav(&dump, 0)
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One channel of a WAV file and its rate.
pub(crate) fn read_wav(path: &Path, channel: usize) -> Option<(Vec<i16>, u32)> {
    let r = hound::WavReader::open(path).ok()?;
    let spec = r.spec();
    let n = spec.channels as usize;
    let all: Vec<i16> = r.into_samples::<i16>().map_while(Result::ok).collect();
    Some((
        all.iter().skip(channel).step_by(n).copied().collect(),
        spec.sample_rate,
    ))
}

/// Whether some half second of `pcm` is a clear tone near `hz`.
pub(crate) fn has_tone(pcm: &[i16], rate: u32, hz: f64) -> bool {
    let win = rate as usize / 2;
    pcm.chunks(win).filter(|w| w.len() == win).any(|w| {
        let rms = (w.iter().map(|s| (*s as f64).powi(2)).sum::<f64>() / win as f64).sqrt();
        let crossings = w.windows(2).filter(|p| (p[0] < 0) != (p[1] < 0)).count() as f64;
        let f = crossings / 2.0 / 0.5;
        rms > 300.0 && (f - hz).abs() < hz * 0.05
    })
}

/// A WAV of a 1000 Hz tone: the caller's voice.
pub(crate) fn caller_voice(dir: &Path) -> PathBuf {
    caller_voice_for(dir, 2)
}

/// `seconds` of the caller's 1000 Hz voice.
pub(crate) fn caller_voice_for(dir: &Path, seconds: u32) -> PathBuf {
    let path = dir.join(format!("caller-voice-{seconds}.wav"));
    tone_file(&path, 1000.0, seconds);
    path
}

/// `seconds` of a tone of `hz` as an 8 kHz mono WAV.
pub(crate) fn tone_file(path: &Path, hz: f64, seconds: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..8000 * seconds {
        let v = (f64::from(i) * 2.0 * std::f64::consts::PI * hz / 8000.0).sin() * 8000.0;
        w.write_sample(v as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// A phone played by sipp at `port` (media at `port + 4`) running a
/// scenario for `calls` calls, within `timeout` seconds; `echo` sends back
/// the RTP it receives.
pub(crate) fn sipp_phone(scenario: &str, port: u16, calls: u32, timeout: u32, echo: bool) -> Child {
    let mut cmd = Command::new("sipp");
    cmd.args(["-sf", &common::scenario(scenario)])
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-m", &calls.to_string(), "-nostdin", "-timeout_error"])
        .args(["-timeout", &format!("{timeout}s")])
        .args(["-mp", &(port + 4).to_string()]);
    if echo {
        cmd.arg("-rtp_echo");
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp starts");
    common::wait_udp_bound(port);
    child
}

/// nida with `extra` config lines, `DATA` in them standing for its data
/// folder.
pub(crate) fn start_centre(extra: &str) -> Nida {
    Nida::start_with(|dir| extra.replace("DATA", &dir.join("data").display().to_string()))
}

/// baresip as agent 1001, registered (digest) with nida.
fn registered_phone(nida: &Nida, auto_answer: bool) -> Baresip {
    let phone = Baresip::start(nida.sip, "1001", "s3cret", auto_answer);
    assert!(
        phone.wait_log("200 OK", Duration::from_secs(10)),
        "baresip did not register:\n{}\n{}",
        phone.log(),
        nida.log()
    );
    phone
}

pub(crate) fn agent_config(agents: &str, queue: &str) -> String {
    format!("{agents}\n[queues.visa_general]\nannounce_seconds = 0\nwrap_up_seconds = 0\n{queue}\n")
}

pub(crate) const AGENT_1001: &str = "[[agents]]\nid = 1\nuser = \"1001\"\npassword = \"s3cret\"\nname = \"Amina\"\nskills = { visa = 5 }\nlanguages = [\"en\", \"ar\"]\n";

/// The callers' network (`nida call` on loopback) vouches for their
/// numbers, as a carrier's would: a call-back through `outbound_uri` or a
/// trunk dials only such a number.
const TRUSTED_CALLER: &str = "[protection]\ntrusted = [\"127.0.0.1/32\"]\n";

/// The number such a caller calls from (a national mobile number: the
/// default `[outbound]` allows it).
const CALLER_NUMBER: &str = "0501234567";

/// `nida call` dialling the main flow, choosing English and an agent.
pub(crate) fn caller(
    nida: &Nida,
    digits: &str,
    max_seconds: u32,
    voice: &Path,
    record: &Path,
) -> Child {
    caller_from(nida, "nida-call", digits, max_seconds, voice, record)
}

/// `nida call` to the main flow as an English caller who asks for an
/// agent (keys 2, then 0), saying `voice` all along; `gap_ms` of quiet
/// ends a prompt (after the last key: the call). The rest (number,
/// recording, output) is the test's to add.
pub(crate) fn agent_caller(nida: &Nida, gap_ms: u32, max_seconds: u32, voice: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nida"));
    c.args(["call", &format!("sip:8005@{}", nida.sip)])
        .args(["--digits", "2,0", "--barge-in-ms", "1500"])
        .args(["--gap-ms", &gap_ms.to_string()])
        .args(["--max-seconds", &max_seconds.to_string()])
        .arg("--say")
        .arg(voice);
    c
}

/// Like `caller`, from the number `from`.
fn caller_from(
    nida: &Nida,
    from: &str,
    digits: &str,
    max_seconds: u32,
    voice: &Path,
    record: &Path,
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_nida"))
        .args(["call", &format!("sip:8005@{}", nida.sip)])
        .args(["--from", from])
        .args([
            "--digits",
            digits,
            "--barge-in-ms",
            "1500",
            "--gap-ms",
            "700",
        ])
        .args(["--max-seconds", &max_seconds.to_string()])
        .arg("--say")
        .arg(voice)
        .arg("--record")
        .arg(record)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nida call starts")
}

/// Sends an HTTP request to nida's API; returns the status code.
pub(crate) fn http(nida: &Nida, method: &str, path: &str) -> u16 {
    common::http(nida.http, method, path, Some(TOKEN), "").0
}

/// Collects the server-sent events of `/api/events` in the background.
pub(crate) fn event_stream(nida: &Nida) -> Arc<Mutex<Vec<serde_json::Value>>> {
    common::events(nida.http, "/api/events", Some(TOKEN))
}

pub(crate) fn finish(child: Child) -> (bool, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The call records in the data folder's database, as JSON objects.
pub(crate) fn records(nida: &Nida) -> Vec<serde_json::Value> {
    let store = nida_store::Store::open_dir(&nida.dir.join("data")).expect("the database opens");
    store
        .calls(&nida_store::Query::default())
        .unwrap()
        .into_iter()
        .map(|r| {
            let mut v = serde_json::to_value(&r).unwrap();
            v["low_rating"] = r.low_rating().into();
            v
        })
        .collect()
}

#[test]
fn caller_talks_to_a_registered_agent_then_rates_the_call() {
    let extra = format!(
        "data_dir = \"DATA\"\n{}",
        agent_config(AGENT_1001, "record = true\n")
    );
    let nida = start_centre(&extra);
    let phone = Baresip::start(nida.sip, "1001", "s3cret", true);
    assert!(
        phone.wait_log("200 OK", Duration::from_secs(10)),
        "baresip did not register:\n{}\n{}",
        phone.log(),
        nida.log()
    );
    assert!(
        nida.wait_log("state=Available", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    let events = event_stream(&nida);
    let voice = caller_voice(&nida.dir);
    let heard = nida.dir.join("caller-heard.wav");
    let call = caller(&nida, "2,0,w5", 60, &voice, &heard);
    assert!(
        nida.wait_log("bridged agent=1", Duration::from_secs(20)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    // The agent's screen pop: language, IVR path, variables.
    let offer = events
        .lock()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "offer")
        .cloned()
        .expect("an offer event");
    assert_eq!(offer["agent"], 1);
    assert_eq!(offer["info"]["language"], "en");
    assert_eq!(offer["info"]["queue"], "visa_general");
    assert!(
        offer["info"]["path"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "main/agent"),
        "{offer}"
    );
    assert_eq!(offer["info"]["vars"]["last_choice"], "0");
    // Three seconds of conversation, then the agent hangs up.
    std::thread::sleep(Duration::from_secs(3));
    phone.hangup();
    let (ok, timeline) = finish(call);
    assert!(ok, "{timeline}\n{}\n{}", nida.log(), phone.log());
    assert!(
        timeline.contains("pressing 5"),
        "{timeline}\n{}\n{}",
        nida.log(),
        phone.log()
    );
    assert!(
        timeline.contains("ended: RemoteBye"),
        "nida hangs up after the survey: {timeline}"
    );
    // The caller heard the agent's 600 Hz tone; the agent heard the
    // caller's 1000 Hz tone.
    let (pcm, rate) = read_wav(&heard, 0).unwrap();
    assert!(has_tone(&pcm, rate, 600.0), "caller did not hear the agent");
    let (pcm, rate) = phone.heard().expect("baresip's decoded dump");
    assert!(
        has_tone(&pcm, rate, 1000.0),
        "agent did not hear the caller"
    );
    // The record: the agent, the rating, the recording.
    assert!(nida.wait_log("call record written", Duration::from_secs(5)));
    let recs = records(&nida);
    assert_eq!(recs.len(), 1, "{recs:?}");
    let r = &recs[0];
    assert_eq!(r["agent"], 1);
    assert_eq!(r["outcome"], "answered");
    assert_eq!(r["rating"], 5);
    assert_eq!(r["low_rating"], false);
    assert_eq!(r["language"], "en");
    assert!(r["talk_seconds"].as_f64().unwrap() >= 2.5, "{r}");
    let rec = PathBuf::from(r["recording"].as_str().expect("recorded"));
    let (left, rate) = read_wav(&rec, 0).unwrap();
    let (right, _) = read_wav(&rec, 1).unwrap();
    assert_eq!(rate, 8000);
    assert!(has_tone(&left, rate, 1000.0), "left is the caller");
    assert!(has_tone(&right, rate, 600.0), "right is the agent");
    assert!(!has_tone(&left, rate, 600.0), "channels are not mixed");
    // The agent is free again.
    assert!(
        nida.log().matches("state=Available").count() >= 2,
        "{}",
        nida.log()
    );
}

#[test]
fn an_agent_over_tls_talks_to_the_caller_in_srtp() {
    // baresip registers over TLS and insists on SRTP; the caller is plain
    // RTP over UDP: nida decrypts one side and encrypts the other.
    let extra = format!("data_dir = \"DATA\"\n{}TLS\n", agent_config(AGENT_1001, ""));
    let nida = start_centre(&extra);
    let phone = Baresip::start_tls(nida.tls(), "1001", "s3cret", true);
    assert!(
        phone.wait_log("{0/TLS/v4} 200 OK", Duration::from_secs(10)),
        "baresip did not register over TLS:\n{}\n{}",
        phone.log(),
        nida.log()
    );
    assert!(nida.wait_log("state=Available", Duration::from_secs(5)));
    let voice = caller_voice(&nida.dir);
    let heard = nida.dir.join("caller-heard.wav");
    let call = caller(&nida, "2,0", 30, &voice, &heard);
    assert!(
        nida.wait_log("bridged agent=1", Duration::from_secs(20)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    assert!(
        nida.wait_log(
            "media is SRTP suite=\"AES_CM_128_HMAC_SHA1_80\"",
            Duration::from_secs(5)
        ),
        "{}",
        nida.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    phone.hangup();
    let (ok, timeline) = finish(call);
    assert!(ok, "{timeline}\n{}\n{}", nida.log(), phone.log());
    let (pcm, rate) = read_wav(&heard, 0).unwrap();
    assert!(
        has_tone(&pcm, rate, 600.0),
        "the caller did not hear the agent through SRTP:\n{}",
        nida.log()
    );
    let (pcm, rate) = phone.heard().expect("baresip's decoded dump");
    assert!(
        has_tone(&pcm, rate, 1000.0),
        "the agent did not hear the caller through SRTP"
    );
}

#[test]
fn nida_opens_a_tls_connection_to_an_agent_phone_trusting_the_configured_ca() {
    // Agent 2 has a fixed TLS contact and never registers: nida connects
    // to it, checking the phone's certificate against `ca`.
    let phone = Baresip::listening_tls();
    assert!(phone.wait_log("baresip is ready", Duration::from_secs(10)));
    let agent = format!(
        "[[agents]]\nid = 2\nuser = \"1002\"\npassword = \"x\"\nname = \"Omar\"\n\
         skills = {{ visa = 5 }}\nlanguages = [\"en\"]\n\
         contact = \"sip:1002@127.0.0.1:{};transport=tls\"\n",
        phone.sip_port + 1
    );
    let extra = format!("data_dir = \"DATA\"\n{}TLS\n", agent_config(&agent, ""));
    let nida = start_centre(&extra);
    let voice = caller_voice(&nida.dir);
    let heard = nida.dir.join("caller-heard.wav");
    let call = caller(&nida, "2,0", 30, &voice, &heard);
    assert!(
        nida.wait_log("bridged agent=2", Duration::from_secs(20)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    assert!(
        nida.wait_log("media is SRTP", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    phone.hangup();
    let (ok, timeline) = finish(call);
    assert!(ok, "{timeline}\n{}\n{}", nida.log(), phone.log());
    let (pcm, rate) = read_wav(&heard, 0).unwrap();
    assert!(
        has_tone(&pcm, rate, 600.0),
        "the caller did not hear the agent"
    );
    let (pcm, rate) = phone.heard().expect("baresip's decoded dump");
    assert!(
        has_tone(&pcm, rate, 1000.0),
        "the agent did not hear the caller"
    );
}

#[test]
fn a_caller_over_tls_with_srtp_hears_the_flow_and_is_heard() {
    let nida = start_centre("TLS\n[dial_plan]\n\"901\" = \"police\"\n");
    let phone = Baresip::start_tls(nida.tls(), "1001", "s3cret", true);
    assert!(phone.wait_log("baresip is ready", Duration::from_secs(10)));
    phone.command("dial", &format!("sip:901@{};transport=tls", nida.tls()));
    assert!(
        nida.wait_log("running flow flow=police", Duration::from_secs(10)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    assert!(
        nida.wait_log("transport=Tls", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    assert!(
        nida.wait_log("media is SRTP", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    // baresip's first RTCP report (2.5 to 7.5 s in) carries the round
    // trip of one of nida's SRTCP sender reports: both sides opened the
    // other's SRTCP. Then baresip hangs up.
    assert!(
        nida.wait_log("first RTCP round trip", Duration::from_secs(15)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    phone.hangup();
    assert!(
        nida.wait_log("media closed", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    // Every packet from baresip opened (its tone reached nida), none
    // refused.
    let log = nida.log();
    let closed = log.lines().find(|l| l.contains("media closed")).unwrap();
    let field = |name: &str| -> u64 {
        let at = closed.find(&format!("{name}=")).unwrap() + name.len() + 1;
        closed[at..].split(' ').next().unwrap().parse().unwrap()
    };
    assert!(field("received") > 100, "{closed}");
    assert_eq!(field("rejected"), 0, "{closed}\n{log}");
    // RTCP went both ways as SRTCP: nida opened baresip's compounds
    // (a forged or undecryptable one counts as rejected) and sent its own.
    assert!(field("rtcp_received") >= 1, "{closed}");
    assert!(field("rtcp_sent") >= 1, "{closed}");
    // baresip opened nida's packets: it heard the welcome prompt (a packet
    // it could not open would leave silence).
    let (pcm, _) = phone.heard().expect("baresip's decoded dump");
    let loud = pcm.iter().filter(|s| s.unsigned_abs() > 2000).count();
    assert!(loud > 1000, "baresip heard {loud} loud samples");
}

#[test]
fn caller_hangs_up_while_the_agent_rings() {
    let extra = format!("data_dir = \"DATA\"\n{}", agent_config(AGENT_1001, ""));
    let nida = start_centre(&extra);
    let phone = registered_phone(&nida, false);
    assert!(nida.wait_log("state=Available", Duration::from_secs(5)));
    // A break through the API, then ready again.
    assert_eq!(
        http(
            &nida,
            "POST",
            "/api/agents/1/not_ready?reason=lunch%20break"
        ),
        202
    );
    assert!(
        nida.wait_log("Reason(\"lunch break\")", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    assert!(http(&nida, "POST", "/api/agents/9/ready") == 404);
    assert!(http(&nida, "POST", "/api/agents/1/ready") == 202);
    assert!(wait(Duration::from_secs(5), || nida
        .log()
        .matches("state=Available")
        .count()
        >= 2));
    let voice = caller_voice(&nida.dir);
    let heard = nida.dir.join("caller-heard.wav");
    // The caller gives up after 9 seconds; the phone rings from about 3.
    let call = caller(&nida, "2,0", 9, &voice, &heard);
    assert!(
        nida.wait_log("ringing agent", Duration::from_secs(15)),
        "{}",
        nida.log()
    );
    assert!(
        phone.wait_log("Incoming call", Duration::from_secs(5)),
        "{}",
        phone.log()
    );
    let (_, timeline) = finish(call);
    assert!(timeline.contains("longest call time reached"), "{timeline}");
    assert!(
        nida.wait_log("caller left the queue", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    // The phone stops ringing (CANCEL) and the agent is available again.
    assert!(
        phone.wait_log("session closed", Duration::from_secs(5)),
        "{}",
        phone.log()
    );
    let log = nida.log();
    let left = log.find("caller left the queue").unwrap();
    assert!(
        wait(Duration::from_secs(5), || nida.log()[left..]
            .contains("state=Available")),
        "{}",
        nida.log()
    );
    let recs = records(&nida);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["outcome"], "abandoned");
    assert!(recs[0]["agent"].is_null());
}

#[test]
fn agent_changes_state_with_feature_codes_from_the_softphone() {
    let agent = AGENT_1001.replace("languages", "ready_on_register = false\nlanguages");
    let extra = format!("data_dir = \"DATA\"\n{}", agent_config(&agent, ""));
    let nida = start_centre(&extra);
    let phone = registered_phone(&nida, true);
    assert!(nida.wait_log("agent registered", Duration::from_secs(5)));
    assert!(!nida.log().contains("state="), "{}", nida.log());
    // Each code: nida answers, says the confirmation in the agent's
    // language, hangs up; the state changes.
    let steps = [
        ("*21", "NotReady(Reason(\"logged in\"))"),
        ("*232", "NotReady(Reason(\"lunch\"))"),
        ("*22", "state=Available"),
        ("*24", "state=LoggedOut"),
    ];
    for (i, (code, state)) in steps.iter().enumerate() {
        phone.command("dial", &format!("sip:{code}@{}", nida.sip));
        assert!(
            nida.wait_log(state, Duration::from_secs(10)),
            "{code}: {}\n{}",
            nida.log(),
            phone.log()
        );
        // The phone's call ends when the confirmation has been said.
        assert!(
            wait(Duration::from_secs(10), || phone
                .log()
                .matches("session closed")
                .count()
                > i),
            "{code}: {}\n{}",
            nida.log(),
            phone.log()
        );
    }
    let log = nida.log();
    assert_eq!(log.matches("feature code agent=1").count(), 4, "{log}");
    assert!(
        log.matches("prompt finished").count() >= 4,
        "the confirmations were played to the end: {log}"
    );
    // A phone without an agent's credentials is challenged (the address
    // proves nothing) and, having none to give, gets no feature.
    let out = Command::new(env!("CARGO_BIN_EXE_nida"))
        .args(["call", &format!("sip:*22@{}", nida.sip)])
        .args(["--max-seconds", "5"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("401"), "{text}");
    let four = || nida.log().matches("feature code agent=").count() == 4;
    assert!(wait(Duration::from_secs(5), four), "{}", nida.log());
}

/// Every change of every call-back in the database, in order: the
/// call-back's row with the status and attempts of that change.
fn callbacks(nida: &Nida) -> Vec<serde_json::Value> {
    let store = nida_store::Store::open_dir(&nida.dir.join("data")).expect("the database opens");
    let mut out = Vec::new();
    for row in store.callbacks(false).unwrap() {
        for (status, attempts, at) in store.callback_history(&row.call_id).unwrap() {
            let mut v = serde_json::to_value(&row).unwrap();
            v["status"] = status.into();
            v["attempts"] = attempts.into();
            v["updated_at"] = at.into();
            out.push(v);
        }
    }
    out
}

#[test]
fn caller_asks_for_a_call_back_and_is_called_back_when_an_agent_is_free() {
    common::which_sipp();
    // The citizen's phone for the call-back is sipp speaking PCMA only
    // and echoing what it hears; baresip (the agent) speaks PCMU.
    let sp = common::ports(10);
    let agent = AGENT_1001.replace("languages", "ready_on_register = false\nlanguages");
    let extra = format!(
        "data_dir = \"DATA\"\noutbound_uri = \"sip:{{number}}@127.0.0.1:{sp}\"\n{}{TRUSTED_CALLER}",
        agent_config(&agent, "record = true\n")
    );
    let nida = start_centre(&extra);
    let phone = registered_phone(&nida, true);
    assert!(nida.wait_log("agent registered", Duration::from_secs(5)));
    let voice = caller_voice(&nida.dir);
    let heard = nida.dir.join("caller-heard.wav");
    // English, an agent, then (hearing the music) 1 for a call-back.
    let call = caller_from(&nida, CALLER_NUMBER, "2,w0,1", 40, &voice, &heard);
    assert!(
        nida.wait_log("waiting in line for the call-back", Duration::from_secs(40)),
        "{}",
        nida.log()
    );
    let (_, timeline) = finish(call);
    assert!(timeline.contains("pressing 1"), "{timeline}");
    let first = callbacks(&nida);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["status"], "requested");
    assert_eq!(first[0]["number"], CALLER_NUMBER);
    assert_eq!(first[0]["queue"], "visa_general");
    assert_eq!(first[0]["language"], "en");
    assert!(records(&nida).is_empty(), "no record while it waits");

    // The citizen's phone, then an agent becomes ready.
    let mut sipp = sipp_phone("answer_until_bye.xml", sp, 1, 60, true);
    assert!(http(&nida, "POST", "/api/agents/1/login") == 202);
    assert!(http(&nida, "POST", "/api/agents/1/ready") == 202);
    assert!(
        nida.wait_log("call-back answered", Duration::from_secs(20)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    // Three seconds of talk, then the agent hangs up; the citizen hears
    // the survey, presses nothing, and nida hangs up.
    std::thread::sleep(Duration::from_secs(3));
    phone.hangup();
    let done = wait(Duration::from_secs(40), || {
        sipp.try_wait().ok().flatten().is_some()
    });
    assert!(done, "the citizen's phone did not finish");
    let out = sipp.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "sipp: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        nida.log()
    );
    // The agent's tone went to the citizen (PCMU to PCMA) and came back
    // through sipp's echo (PCMA to PCMU): both directions, transcoded.
    assert!(
        nida.wait_log(
            "call-back answered: caller and agent bridged caller_codec=\"PCMA\"",
            Duration::from_secs(5)
        ),
        "{}",
        nida.log()
    );
    let (pcm, rate) = phone.heard().expect("baresip's decoded dump");
    assert!(
        has_tone(&pcm, rate, 600.0),
        "the agent's voice did not make the round trip"
    );
    assert!(
        nida.wait_log("call record written", Duration::from_secs(10)),
        "{}",
        nida.log()
    );
    let recs = records(&nida);
    assert_eq!(recs.len(), 1, "{recs:?}");
    let r = &recs[0];
    assert_eq!(r["outcome"], "answered", "{r}");
    assert_eq!(r["callback"], true);
    assert_eq!(r["agent"], 1);
    assert!(r["talk_seconds"].as_f64().unwrap() >= 2.5, "{r}");
    assert!(r["rating"].is_null(), "{r}");
    let rec = PathBuf::from(r["recording"].as_str().expect("recorded"));
    let (left, rate) = read_wav(&rec, 0).unwrap();
    assert!(has_tone(&left, rate, 600.0), "left is the citizen (echo)");
    let all = callbacks(&nida);
    assert_eq!(all.last().unwrap()["status"], "answered", "{all:?}");
    // The agent is free again.
    let log = nida.log();
    let answered = log.find("call-back answered").unwrap();
    assert!(
        wait(Duration::from_secs(5), || nida.log()[answered..]
            .contains("state=Available")),
        "{}",
        nida.log()
    );
}

#[test]
fn sigkill_loses_no_record_and_a_stored_call_back_is_made_after_the_restart() {
    common::which_sipp();
    // sipp plays the citizen's phone (echo) and agent 2 at a fixed
    // contact, who answers and hangs up after five seconds.
    let citizen = common::ports(10);
    let agent_port = common::ports(10);
    let extra = format!(
        "data_dir = \"DATA\"\noutbound_uri = \"sip:{{number}}@127.0.0.1:{citizen}\"\n{TRUSTED_CALLER}\
         [[agents]]\nid = 2\nuser = \"1002\"\npassword = \"x\"\nname = \"Omar\"\n\
         skills = {{ visa = 5 }}\nlanguages = [\"en\"]\ncontact = \"sip:1002@127.0.0.1:{agent_port}\"\n\
         [queues.visa_general]\nannounce_seconds = 0\nwrap_up_seconds = 0\n"
    );
    let nida = start_centre(&extra);
    assert!(http(&nida, "POST", "/api/agents/2/not_ready?reason=later") == 202);
    let voice = caller_voice(&nida.dir);
    let heard = nida.dir.join("caller-heard.wav");
    // A caller who gives up while waiting: a finished call.
    let gone = caller(&nida, "2,0", 8, &voice, &heard);
    finish(gone);
    assert!(
        nida.wait_log("call record written", Duration::from_secs(10)),
        "{}",
        nida.log()
    );
    // A caller who asks for a call-back.
    let call = caller_from(&nida, CALLER_NUMBER, "2,w0,1", 40, &voice, &heard);
    assert!(
        nida.wait_log("waiting in line for the call-back", Duration::from_secs(40)),
        "{}",
        nida.log()
    );
    finish(call);
    assert_eq!(callbacks(&nida).len(), 1);
    let mut phone = sipp_phone("answer_until_bye.xml", citizen, 1, 90, true);
    let mut agent = sipp_phone("callback_answer.xml", agent_port, 1, 90, true);

    // SIGKILL while the call-back waits; the fixed-contact agent is ready
    // again after the restart.
    let nida = nida.kill_and_restart();
    assert!(
        nida.wait_log(
            "call-back restored after a restart",
            Duration::from_secs(10)
        ),
        "{}",
        nida.log()
    );
    let before = records(&nida);
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0]["outcome"], "abandoned");
    assert!(
        nida.wait_log("call-back answered", Duration::from_secs(30)),
        "{}",
        nida.log()
    );
    // Stored as answered at once, while the call goes on: a restart now
    // must not dial the caller again.
    let answered = || {
        callbacks(&nida)
            .last()
            .is_some_and(|c| c["status"] == "answered")
    };
    assert!(
        wait(Duration::from_secs(3), answered),
        "{:?}",
        callbacks(&nida)
    );
    assert!(phone.try_wait().unwrap().is_none(), "the call is still up");
    let done = wait(Duration::from_secs(60), || {
        phone.try_wait().ok().flatten().is_some() && agent.try_wait().ok().flatten().is_some()
    });
    assert!(done, "the phones did not finish:\n{}", nida.log());
    for (who, p) in [("citizen", phone), ("agent", agent)] {
        let out = p.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{who}'s sipp: {}{}\n{}",
            &text[text.len().saturating_sub(3000)..],
            String::from_utf8_lossy(&out.stderr),
            nida.log()
        );
    }
    assert!(
        wait(Duration::from_secs(10), || records(&nida).len() == 2),
        "{}",
        nida.log()
    );
    let r = &records(&nida)[1];
    assert_eq!(r["outcome"], "answered", "{r}");
    assert_eq!(r["callback"], true, "{r}");
    assert_eq!(r["agent"], 2, "{r}");
    let statuses: Vec<String> = callbacks(&nida)
        .iter()
        .map(|c| format!("{}:{}", c["status"].as_str().unwrap(), c["attempts"]))
        .collect();
    assert_eq!(statuses, ["requested:0", "answered:1"]);
}

#[test]
fn agent_transfers_the_caller_to_a_number() {
    common::which_sipp();
    // The number is a phone (sipp, PCMA, echoing) outside nida.
    let sp = common::ports(10);
    // The number transferred to is masked in the log unless asked for.
    let extra = format!(
        "data_dir = \"DATA\"\nlog_caller_numbers = true\n{}",
        agent_config(AGENT_1001, "")
    );
    let nida = start_centre(&extra);
    let sipp = sipp_phone("callback_answer.xml", sp, 1, 60, true);
    let phone = registered_phone(&nida, true);
    let voice = caller_voice(&nida.dir);
    let heard = nida.dir.join("caller-heard.wav");
    let call = caller(&nida, "2,0", 60, &voice, &heard);
    assert!(
        nida.wait_log("bridged agent=1", Duration::from_secs(20)),
        "{}",
        nida.log()
    );
    let log = nida.log();
    let first = log.find("bridged agent=1").unwrap();
    phone.command("transfer", &format!("sip:5550100@127.0.0.1:{sp}"));
    assert!(
        nida.wait_log("bridged agent=external", Duration::from_secs(10)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    // The far end hangs up after five seconds; nida ends the caller's call.
    let (ok, timeline) = finish(call);
    assert!(ok, "{timeline}\n{}", nida.log());
    assert!(timeline.contains("ended: RemoteBye"), "{timeline}");
    let out = sipp.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The caller's own voice came back through the far end's echo, after
    // the agent was gone (nida's audio on the line is only the echo then).
    let (pcm, rate) = read_wav(&heard, 0).unwrap();
    let log = nida.log();
    assert!(log[first..].contains("blind transfer agent=1 to=5550100"));
    assert!(has_tone(&pcm, rate, 1000.0), "no echo through the transfer");
    assert!(nida.wait_log("call record written", Duration::from_secs(5)));
    let recs = records(&nida);
    assert_eq!(recs[0]["outcome"], "transferred", "{recs:?}");
    assert_eq!(recs[0]["transfers"], serde_json::json!(["5550100"]));
    assert_eq!(recs[0]["agent"], 1);
}

#[test]
fn recordings_past_their_retention_are_removed_at_start() {
    let nida = Nida::start_with(|dir| {
        let rec = dir.join("data/recordings");
        for day in ["2001-01-01", &civil_today()] {
            std::fs::create_dir_all(rec.join(day)).unwrap();
            std::fs::write(rec.join(day).join("call.wav"), b"RIFF").unwrap();
        }
        format!(
            "data_dir = \"{}\"\nrecording_retention_days = 30\n",
            dir.join("data").display()
        )
    });
    assert!(
        nida.wait_log("recordings past retention removed", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    let rec = nida.dir.join("data/recordings");
    assert!(!rec.join("2001-01-01").exists());
    assert!(rec.join(civil_today()).join("call.wav").exists());
}

/// Today's `YYYY-MM-DD` (UTC), by the system's `date`.
fn civil_today() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_call_back_goes_through_the_trunk_to_the_address_that_answers() {
    common::which_sipp();
    // The trunk has two addresses: the first is dead (nothing listens),
    // the second is the carrier (sipp), which answers the health checks,
    // challenges the INVITE and checks the rewritten number.
    let dead = common::ports(10);
    let carrier = common::ports(10);
    let agent_port = common::ports(10);
    let extra = format!(
        "data_dir = \"DATA\"\noutbound_trunk = \"carrier\"\n\
         [[trunks]]\nname = \"carrier\"\n\
         addresses = [\"127.0.0.1:{dead}\", \"127.0.0.1:{carrier}\"]\n\
         domain = \"carrier.example\"\nusername = \"4420\"\npassword = \"trunk-pass\"\n\
         register = false\noptions_interval_seconds = 1\n\
         rewrite_out = [{{ prefix = \"0\", replace = \"+44\" }}]\n\
         [[agents]]\nid = 2\nuser = \"1002\"\npassword = \"x\"\nname = \"Omar\"\n\
         skills = {{ visa = 5 }}\nlanguages = [\"en\"]\ncontact = \"sip:1002@127.0.0.1:{agent_port}\"\n\
         [queues.visa_general]\nannounce_seconds = 0\nwrap_up_seconds = 0\n"
    );
    let mut carrier_sipp = Command::new("sipp")
        .args(["-sf", &common::scenario("carrier_callback.xml")])
        .args(["-i", "127.0.0.1", "-p", &carrier.to_string()])
        .args(["-nostdin", "-timeout", "120s", "-rtp_echo"])
        .args(["-mp", &(carrier + 4).to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp starts");
    let nida = start_centre(&extra);
    assert!(http(&nida, "POST", "/api/agents/2/not_ready?reason=later") == 202);
    let voice = caller_voice(&nida.dir);
    let heard = nida.dir.join("caller-heard.wav");
    let call = caller_from(&nida, "07700900123", "2,w0,1", 40, &voice, &heard);
    assert!(
        nida.wait_log("waiting in line for the call-back", Duration::from_secs(40)),
        "{}",
        nida.log()
    );
    finish(call);
    // By now the health checks know which address answers.
    assert!(
        wait(Duration::from_secs(5), || {
            let t = nida.get("/api/trunks");
            t.contains(&format!(
                "{{\"address\":\"127.0.0.1:{dead}\",\"health\":\"down\"}}"
            )) && t.contains(&format!(
                "{{\"address\":\"127.0.0.1:{carrier}\",\"health\":\"up\"}}"
            ))
        }),
        "{}\n{}",
        nida.get("/api/trunks"),
        nida.log()
    );
    let metrics = nida.get("/metrics");
    assert!(
        metrics.contains(&format!(
            "nida_trunk_address_up{{trunk=\"carrier\",address=\"127.0.0.1:{dead}\"}} 0"
        )),
        "{metrics}"
    );
    let agent = sipp_phone("answer_until_bye.xml", agent_port, 1, 60, true);
    assert!(http(&nida, "POST", "/api/agents/2/ready") == 202);
    assert!(
        nida.wait_log("call-back answered", Duration::from_secs(20)),
        "{}",
        nida.log()
    );
    // The citizen hangs up after five seconds; nida ends the agent's leg.
    let out = agent.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "agent's sipp: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        nida.log()
    );
    assert!(
        wait(Duration::from_secs(10), || records(&nida).len() == 1),
        "{}",
        nida.log()
    );
    let r = &records(&nida)[0];
    assert_eq!(r["outcome"], "answered", "{r}");
    assert_eq!(r["callback"], true, "{r}");
    // The call out was checked against [outbound] and audited.
    let store = nida_store::Store::open_dir(&nida.dir.join("data")).unwrap();
    let out = store.outbound_calls().unwrap();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        (
            out[0].purpose.as_str(),
            out[0].number.as_str(),
            out[0].verdict.as_str()
        ),
        ("callback", "07700900123", "allowed")
    );
    assert_eq!(r["agent"], 2, "{r}");
    assert!(r["talk_seconds"].as_f64().unwrap() >= 4.0, "{r}");
    let log = nida.log();
    assert!(
        nida.wait_log(
            "call-back: dialling the caller through the trunk trunk=carrier",
            Duration::from_secs(5)
        ),
        "{log}"
    );
    // The carrier's challenge was met once: one 401, and no 403.
    let metrics = nida.get("/metrics");
    assert!(
        metrics.contains("nida_sip_responses_total{code=\"401\",direction=\"received\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("code=\"403\",direction=\"received\""),
        "{metrics}"
    );
    let _ = carrier_sipp.kill();
    let _ = carrier_sipp.wait();
}

#[test]
fn a_baresip_caller_holds_the_ivr_past_the_rtp_timeout_and_goes_on_after_resume() {
    let nida = start_centre("rtp_timeout_seconds = 2\n[dial_plan]\n\"901\" = \"police\"\n");
    let phone = Baresip::start(nida.sip, "caller", "x", true);
    assert!(phone.wait_log("baresip is ready", Duration::from_secs(10)));
    phone.command("dial", &format!("sip:901@{}", nida.sip));
    assert!(
        nida.wait_log("running flow flow=police", Duration::from_secs(10)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    phone.command("hold", "");
    assert!(
        nida.wait_log("direction=RecvOnly", Duration::from_secs(5)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    std::thread::sleep(Duration::from_secs(4));
    assert!(!nida.log().contains("no RTP"), "{}", nida.log());
    phone.command("resume", "");
    assert!(
        nida.wait_log("direction=SendRecv", Duration::from_secs(5)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    // After the resume nida hears baresip's key 2 (RFC 4733): English
    // (with no key the menu's failure would skip the language).
    phone.command("sndcode", "2");
    assert!(
        nida.wait_log("prompts=[\"police_menu\"]", Duration::from_secs(15)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    phone.hangup();
    assert!(
        nida.wait_log("flow ended", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    let log = nida.log();
    assert!(!log.contains("no RTP"), "{log}");
    let ended = log.lines().find(|l| l.contains("flow ended")).unwrap();
    assert!(
        ended.contains("police/lang_en > police/police_menu"),
        "{ended}"
    );
    let closed = log.lines().find(|l| l.contains("media closed")).unwrap();
    assert!(closed.contains(" rejected=0 "), "{closed}");
}

#[test]
fn an_agent_holds_past_the_rtp_timeout_and_both_hear_each_other_after_resume() {
    let extra = format!(
        "data_dir = \"DATA\"\nrtp_timeout_seconds = 2\n{}",
        agent_config(AGENT_1001, "record = true\n")
    );
    let nida = start_centre(&extra);
    let phone = registered_phone(&nida, true);
    let voice = caller_voice_for(&nida.dir, 40);
    let heard = nida.dir.join("caller-heard.wav");
    let call = caller(&nida, "2,0,w5", 60, &voice, &heard);
    assert!(
        nida.wait_log("bridged agent=1", Duration::from_secs(20)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    // baresip's hold is a re-INVITE with a=sendonly; nida must answer
    // recvonly with an SDP (an empty 200 left baresip unable to resume).
    phone.command("hold", "");
    assert!(
        nida.wait_log("direction=RecvOnly", Duration::from_secs(5)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    // Held for twice the RTP timeout: nobody is hung up.
    std::thread::sleep(Duration::from_secs(4));
    assert!(!nida.log().contains("no RTP"), "{}", nida.log());
    phone.command("resume", "");
    assert!(
        nida.wait_log("direction=SendRecv", Duration::from_secs(5)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    phone.hangup();
    let (ok, timeline) = finish(call);
    assert!(ok, "{timeline}\n{}\n{}", nida.log(), phone.log());
    assert!(!nida.log().contains("no RTP"), "{}", nida.log());
    // After the resume the agent is heard again: the end of the call's
    // recording (right: the agent, as the caller got it) has the agent's
    // 600 Hz; and the agent hears the caller's 1000 Hz.
    assert!(nida.wait_log("call record written", Duration::from_secs(5)));
    let recs = records(&nida);
    // Each leg's media quality is in the record (the API's view of it).
    let media = recs[0]["media"].as_array().expect("media quality").clone();
    for role in ["caller", "agent"] {
        let m = media
            .iter()
            .find(|m| m["role"] == role)
            .unwrap_or_else(|| panic!("no {role} leg in {media:?}"));
        let mos = m["mos"].as_f64().unwrap();
        assert!((4.0..=4.5).contains(&mos), "a clean loopback call: {m}");
        assert_eq!(m["lost"], 0, "{m}");
    }
    let rec = PathBuf::from(recs[0]["recording"].as_str().expect("recorded"));
    let (right, rate) = read_wav(&rec, 1).unwrap();
    let tail = &right[right.len().saturating_sub(rate as usize * 2)..];
    assert!(
        has_tone(tail, rate, 600.0),
        "the caller hears the agent after resume"
    );
    // baresip 1.0 stops its decode dump at hold and does not start it
    // again, so what it hears after the resume is proven on the wire by
    // sipp_calls::reinvites_move_the_media_set_ptime_and_hold_past_the_
    // rtp_timeout; here, what it heard before the hold is the caller.
    let (pcm, rate) = phone.heard().expect("baresip's decoded dump");
    assert!(has_tone(&pcm, rate, 1000.0), "the agent heard the caller");
}

#[test]
fn an_agent_keys_a_wrap_up_code_on_the_phone() {
    common::which_sipp();
    let agent_port = common::ports(10);
    let agents = format!(
        "[[agents]]\nid = 1\nuser = \"1001\"\npassword = \"s3cret\"\nskills = {{ visa = 5 }}\n\
         languages = [\"en\"]\ncontact = \"sip:1001@127.0.0.1:{agent_port}\"\n"
    );
    let extra = format!(
        "data_dir = \"DATA\"\n{}",
        agent_config(
            &agents,
            "wrapup_codes = [\"visa status given\", \"complaint opened\", \"needs follow-up\"]\n"
        )
    );
    let nida = start_centre(&extra);
    let phone = sipp_phone("agent_wrapup_keys.xml", agent_port, 1, 60, true);
    let voice = caller_voice(&nida.dir);
    let heard = nida.dir.join("caller-heard.wav");
    let call = caller(&nida, "2,0", 40, &voice, &heard);
    let out = phone.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "agent's sipp: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        nida.log()
    );
    let _ = finish(call);
    assert!(
        wait(Duration::from_secs(10), || records(&nida)
            .first()
            .is_some_and(
                |r| r["wrapup"] == serde_json::json!(["complaint opened"])
            )),
        "{:?}\n{}",
        records(&nida),
        nida.log()
    );
    let r = &records(&nida)[0];
    assert_eq!(r["agent"], 1, "{r}");
    let counts = nida.get("/api/wrapups");
    assert!(
        counts.contains(
            "\"agent\":1,\"queue\":\"visa_general\",\"code\":\"complaint opened\",\"count\":1"
        ),
        "{counts}"
    );
}

/// A caller (their number vouched for by a trusted network) leaves a voice
/// message when the queue's wait runs out; the agent marks it handled with
/// a call-back; once the agent is ready nida rings them, dials the
/// citizen's phone and bridges the two.
#[test]
fn a_voice_message_is_called_back_through_the_queue() {
    common::which_sipp();
    let citizen = common::ports(10);
    let agent_port = common::ports(10);
    let agents = format!(
        "[[agents]]\nid = 1\nuser = \"1001\"\npassword = \"s3cret\"\nskills = {{ visa = 5 }}\n\
         languages = [\"en\"]\ncontact = \"sip:1001@127.0.0.1:{agent_port}\"\n"
    );
    let extra = format!(
        "data_dir = \"DATA\"\noutbound_uri = \"sip:{{number}}@127.0.0.1:{citizen}\"\n{}\n{TRUSTED_CALLER}",
        agent_config(
            &agents,
            "max_wait_seconds = 2\nexit = \"voicemail\"\nvoicemail_seconds = 4\n"
        )
    );
    let nida = start_centre(&extra);
    assert!(http(&nida, "POST", "/api/agents/1/not_ready?reason=briefing") == 202);
    let out = agent_caller(&nida, 6000, 40, &caller_voice_for(&nida.dir, 40))
        .args(["--from", CALLER_NUMBER])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = || -> serde_json::Value {
        serde_json::from_str(&nida.get("/api/voicemails?open=true")).unwrap()
    };
    assert!(
        wait(Duration::from_secs(10), || list().as_array().unwrap().len()
            == 1),
        "{}",
        nida.log()
    );
    let vm = list()[0].clone();
    assert_eq!(vm["caller"], CALLER_NUMBER, "{vm}");
    assert_eq!(vm["may_call_back"], true, "a proven number: {vm}");
    let id = vm["id"].as_i64().unwrap();
    let mut phone = sipp_phone("callback_answer.xml", citizen, 1, 60, true);
    let agent = sipp_phone("answer_until_bye.xml", agent_port, 1, 60, true);
    let path = format!("/api/agents/1/voicemails/{id}/handled?callback=true");
    let (code, text) = common::http(nida.http, "POST", &path, Some(TOKEN), "");
    assert_eq!(code, 200, "{text}");
    assert!(list().as_array().unwrap().is_empty(), "handled");
    let booked = callbacks(&nida);
    assert_eq!(booked.len(), 1, "{booked:?}");
    assert_eq!(booked[0]["number"], CALLER_NUMBER);
    assert_eq!(booked[0]["status"], "requested");
    // In line (agent first): nobody is dialled while the agent is not
    // ready.
    assert!(
        nida.wait_log("call-back restored", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    assert!(phone.try_wait().unwrap().is_none());
    assert!(!nida.log().contains("call-back: dialling"));
    assert!(http(&nida, "POST", "/api/agents/1/ready") == 202);
    let out = agent.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "agent's sipp: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        nida.log()
    );
    assert!(wait(Duration::from_secs(10), || phone
        .try_wait()
        .unwrap()
        .is_some()));
    let out = phone.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "citizen's sipp: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        nida.log()
    );
    assert!(
        wait(Duration::from_secs(10), || records(&nida)
            .iter()
            .any(|r| r["callback"] == true)),
        "{}",
        nida.log()
    );
    let r = records(&nida)
        .into_iter()
        .find(|r| r["callback"] == true)
        .unwrap();
    assert_eq!(r["outcome"], "answered", "{r}");
    assert_eq!(r["agent"], 1, "{r}");
    assert_eq!(
        callbacks(&nida).last().unwrap()["status"],
        "answered",
        "{:?}",
        callbacks(&nida)
    );
    let store = nida_store::Store::open_dir(&nida.dir.join("data")).unwrap();
    let out = store.outbound_calls().unwrap();
    assert!(
        out.iter().any(|o| o.purpose == "callback"
            && o.number == CALLER_NUMBER
            && o.verdict == "allowed"),
        "{out:?}"
    );
}

/// A queue closed by its calendar (a holiday today, in the centre's zone)
/// offers nobody the call, ready agent or not: the caller hears that it
/// is closed and leaves a message (the closed exit).
#[test]
fn a_closed_queue_takes_a_message_instead_of_ringing_the_agent() {
    // The holiday covers yesterday to tomorrow (UTC), so the date cannot
    // change under the test.
    let date = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let today = (date.yesterday().unwrap(), date.tomorrow().unwrap());
    let extra = format!(
        "data_dir = \"DATA\"\n{}\n[calendars.desk]\ntime_zone = \"UTC\"\n\
         week = {{ mon = \"24h\", tue = \"24h\", wed = \"24h\", thu = \"24h\", fri = \"24h\", sat = \"24h\", sun = \"24h\" }}\n\
         [[calendars.desk.dates]]\nfrom = \"{}\"\nto = \"{}\"\nclosed = true\nname = \"holiday\"\n",
        agent_config(AGENT_1001, "calendar = \"desk\"\nvoicemail_seconds = 3\n"),
        today.0,
        today.1
    );
    let nida = start_centre(&extra);
    let phone = registered_phone(&nida, true);
    let out = agent_caller(&nida, 6000, 40, &caller_voice_for(&nida.dir, 40))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wait(Duration::from_secs(10), || !records(&nida).is_empty()),
        "{}",
        nida.log()
    );
    let r = &records(&nida)[0];
    assert_eq!(r["queue"], "visa_general", "{r}");
    assert!(r["agent"].is_null(), "no agent took it: {r}");
    let vms: serde_json::Value =
        serde_json::from_str(&nida.get("/api/voicemails?open=true")).unwrap();
    assert_eq!(vms.as_array().unwrap().len(), 1, "{vms}");
    assert_eq!(vms[0]["queue"], "visa_general", "{vms}");
    let log = nida.log();
    assert!(log.contains("queue closed"), "{log}");
    assert!(!log.contains("ringing agent"), "{log}");
    assert!(!phone.log().contains("incoming call"), "{}", phone.log());
}

/// A wideband phone: baresip speaking G.722 only registers as the agent;
/// nida answers it in G.722 and transcodes to the caller's PCMU (and
/// back), and each hears the other's tone.
#[test]
fn a_g722_agent_phone_talks_to_a_g711_caller() {
    let extra = format!("data_dir = \"DATA\"\n{}", agent_config(AGENT_1001, ""));
    let nida = start_centre(&extra);
    let phone = Baresip::start_wideband(nida.sip, "1001", "s3cret");
    assert!(
        phone.wait_log("200 OK", Duration::from_secs(10)),
        "baresip did not register:\n{}\n{}",
        phone.log(),
        nida.log()
    );
    assert!(nida.wait_log("state=Available", Duration::from_secs(5)));
    let voice = caller_voice(&nida.dir);
    let heard = nida.dir.join("caller-heard.wav");
    let call = caller(&nida, "2,0", 30, &voice, &heard);
    assert!(
        nida.wait_log(
            "bridged agent=1 caller_codec=\"PCMU\" agent_codec=\"G722\"",
            Duration::from_secs(20)
        ),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    // A few seconds of conversation, then the agent hangs up.
    assert!(
        phone.wait_log("G722", Duration::from_secs(5)),
        "{}",
        phone.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    phone.hangup();
    let _ = finish(call);
    let (pcm, rate) = read_wav(&heard, 0).unwrap();
    assert!(
        has_tone(&pcm, rate, 600.0),
        "the caller hears the G.722 agent"
    );
    let (pcm, rate) = phone.heard().expect("baresip's decoded dump");
    assert!(
        has_tone(&pcm, rate, 1000.0),
        "the G.722 agent hears the caller"
    );
}
