//! Hold and resume with linphone (Debian's linphone-cli, liblinphone and
//! belle-sip), the other family of softphones agents and callers use:
//! `pause` is a re-INVITE with `a=sendonly`, `resume` one with
//! `a=sendrecv`. As an agent (nida placed the call) and as a caller to
//! the IVR (linphone placed it), the held call outlives the RTP timeout
//! and the audio flows both ways again after the resume. baresip's hold
//! is in `agents.rs`; the protocol itself is tested in virtual time in
//! `crates/nida-sip/tests/dialog.rs`. The agent page's hold (nida's own
//! re-INVITE) is tried on linphone too, and linphone as an agent calls a
//! colleague through nida and transfers the caller to them (RFC 5589).

use crate::agents::{
    agent_config, caller, caller_voice_for, finish, has_tone, http, read_wav, records,
    start_centre, tone_file, AGENT_1001,
};
use crate::common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// linphonec driven on its standard input, in file mode: it plays a
/// 600 Hz tone as its microphone and records what it hears.
struct Linphone {
    child: Child,
    stdin: ChildStdin,
    log: Arc<Mutex<String>>,
    /// The WAV it records what it hears into.
    heard: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Linphone {
    /// linphone at its own port, registered to nida as `user` when
    /// `register`, answering calls by itself.
    fn start(nida: SocketAddr, user: &str, password: &str, register: bool) -> Linphone {
        common::require("linphonec", "linphone-cli");
        let p = common::ports(4);
        let tmp = tempfile::Builder::new()
            .prefix(&format!("nida-linphone-{p}-"))
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        // liblinphone will not start its SIP stack without a database in
        // its home.
        std::fs::create_dir_all(dir.join("home/.local/share/linphone")).unwrap();
        let proxy = if register {
            format!(
                "[proxy_0]\nreg_proxy=<sip:{nida}>\nreg_identity=sip:{user}@{nida}\n\
                 reg_expires=600\nreg_sendregister=1\n\
                 [auth_info_0]\nusername={user}\npasswd={password}\n"
            )
        } else {
            String::new()
        };
        let rc = format!(
            "[sip]\nsip_port={p}\nsip_tcp_port=0\nsip_tls_port=0\n\
             default_proxy={}\nguess_hostname=0\ncontact=sip:{user}@127.0.0.1:{p}\n\
             [rtp]\naudio_rtp_port={}\naudio_adaptive_jitt_comp_enabled=0\n\
             [net]\nfirewall_policy=0\n\
             [sound]\necho_cancellation=0\n\
             {proxy}",
            if register { 0 } else { -1 },
            p + 2,
        );
        std::fs::write(dir.join("rc"), rc).unwrap();
        let voice = dir.join("voice.wav");
        tone_file(&voice, 600.0, 90);
        let heard = dir.join("heard.wav");
        let mut child = Command::new("linphonec")
            .arg("-c")
            .arg(dir.join("rc"))
            .env("HOME", dir.join("home"))
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("linphonec starts");
        let log = Arc::new(Mutex::new(String::new()));
        common::collect_lines(&log, child.stdout.take().unwrap());
        common::collect_lines(&log, child.stderr.take().unwrap());
        let stdin = child.stdin.take().unwrap();
        let mut phone = Linphone {
            child,
            stdin,
            log,
            heard,
            _tmp: tmp,
        };
        phone.command("soundcard use files");
        phone.command(&format!("play {}", voice.display()));
        phone.command(&format!("record {}", phone.heard.display()));
        phone.command("autoanswer enable");
        phone
    }

    fn command(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("linphonec reads commands");
        self.stdin.flush().unwrap();
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Samples recorded so far (the file grows as linphone writes it).
    fn heard_so_far(&self) -> usize {
        let bytes = std::fs::metadata(&self.heard).map_or(0, |m| m.len() as usize);
        bytes.saturating_sub(44) / 2
    }

    /// What it recorded, as samples with their rate.
    fn heard(&self) -> Option<(Vec<i16>, u32)> {
        read_wav(&self.heard, 0)
    }
}

impl Drop for Linphone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two seconds into the call linphone pauses (nida must see its
/// `sendonly`), stays held for twice the 2 s RTP timeout without anyone
/// being hung up, and resumes; what it had recorded before the resume
/// (samples), which must be the two seconds it heard.
fn hold_past_the_timeout_and_resume(nida: &crate::common::Nida, phone: &mut Linphone) -> usize {
    std::thread::sleep(Duration::from_secs(2));
    phone.command("pause");
    assert!(
        nida.wait_log("direction=RecvOnly", Duration::from_secs(5)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    std::thread::sleep(Duration::from_secs(4));
    assert!(!nida.log().contains("no RTP"), "{}", nida.log());
    let before_resume = phone.heard_so_far();
    assert!(before_resume > 8000, "linphone heard nida before the hold");
    phone.command("resume");
    assert!(
        nida.wait_log("direction=SendRecv", Duration::from_secs(5)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    before_resume
}

#[test]
fn a_linphone_agent_holds_past_the_rtp_timeout_and_is_heard_after_resume() {
    let extra = format!(
        "data_dir = \"DATA\"\nrtp_timeout_seconds = 2\n{}",
        agent_config(AGENT_1001, "record = true\n")
    );
    let nida = start_centre(&extra);
    let mut phone = Linphone::start(nida.sip, "1001", "s3cret", true);
    assert!(
        nida.wait_log("state=Available", Duration::from_secs(10)),
        "linphone did not register:\n{}\n{}",
        nida.log(),
        phone.log()
    );
    let voice = caller_voice_for(&nida.dir, 40);
    let heard = nida.dir.join("caller-heard.wav");
    let call = caller(&nida, "2,0,w5", 60, &voice, &heard);
    assert!(
        nida.wait_log("bridged agent=1", Duration::from_secs(20)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    let before_resume = hold_past_the_timeout_and_resume(&nida, &mut phone);
    std::thread::sleep(Duration::from_secs(3));
    // The agent page holds: nida's re-INVITE (sendonly) is answered
    // recvonly, the caller hears the music; then resumes.
    assert_eq!(http(&nida, "POST", "/api/agents/1/hold"), 202);
    assert!(
        nida.wait_log("direction=SendOnly", Duration::from_secs(5)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    assert!(nida.log().contains("by_page=true"), "{}", nida.log());
    std::thread::sleep(Duration::from_secs(2));
    let before_page_resume = phone.heard_so_far();
    assert_eq!(http(&nida, "POST", "/api/agents/1/resume"), 202);
    assert!(
        common::wait(Duration::from_secs(5), || nida
            .log()
            .matches("direction=SendRecv")
            .count()
            >= 2),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    phone.command("terminate");
    let (ok, timeline) = finish(call);
    assert!(ok, "{timeline}\n{}\n{}", nida.log(), phone.log());
    assert!(!nida.log().contains("no RTP"), "{}", nida.log());
    // After the resume each side hears the other: the last two seconds
    // of the call's recording (right: the agent, as the caller got it)
    // are the agent's 600 Hz, and of what linphone recorded the
    // caller's 1000 Hz.
    assert!(nida.wait_log("call record written", Duration::from_secs(5)));
    let recs = records(&nida);
    // Two holds (the phone's, the page's) of at least 4 and 2 seconds.
    assert_eq!(recs[0]["holds"], 2, "{}", recs[0]);
    let held = recs[0]["hold_seconds"].as_f64().unwrap();
    assert!((6.0..12.0).contains(&held), "{held}");
    let rec = PathBuf::from(recs[0]["recording"].as_str().expect("recorded"));
    let (right, rate) = read_wav(&rec, 1).unwrap();
    let tail = &right[right.len().saturating_sub(rate as usize * 2)..];
    assert!(
        has_tone(tail, rate, 600.0),
        "the caller hears the agent after resume"
    );
    // linphone's recording grows only while it receives: what it wrote
    // after each resume has the caller's 1000 Hz.
    let (pcm, rate) = phone.heard().expect("linphone's recording");
    for from in [before_resume, before_page_resume] {
        let after: &[i16] = pcm.get(from..).unwrap_or_default();
        assert!(
            has_tone(after, rate, 1000.0),
            "the agent hears the caller after resume ({} of {} samples)",
            after.len(),
            pcm.len()
        );
    }
}

#[test]
fn a_linphone_caller_holds_the_ivr_past_the_rtp_timeout_and_goes_on_after_resume() {
    let nida = start_centre("rtp_timeout_seconds = 2\n[dial_plan]\n\"901\" = \"police\"\n");
    let mut phone = Linphone::start(nida.sip, "caller", "", false);
    phone.command(&format!("call sip:901@{}", nida.sip));
    assert!(
        nida.wait_log("running flow flow=police", Duration::from_secs(10)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    let before_resume = hold_past_the_timeout_and_resume(&nida, &mut phone);
    // nida hears linphone again: its key 2 (RFC 4733) picks English
    // (with no key the menu's failure would skip the language).
    phone.command("2");
    assert!(
        nida.wait_log("prompts=[\"police_menu\"]", Duration::from_secs(15)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    phone.command("terminate");
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
    // Everything linphone sent was understood: its STUN keep-alives are
    // not counted as malformed.
    let closed = log.lines().find(|l| l.contains("media closed")).unwrap();
    assert!(closed.contains(" rejected=0 "), "{closed}");
    // And linphone hears the flow again: prompts after the resume.
    let (pcm, _) = phone.heard().expect("linphone's recording");
    let after: &[i16] = pcm.get(before_resume..).unwrap_or_default();
    let loud = after.iter().filter(|s| s.unsigned_abs() > 2000).count();
    assert!(
        loud > 1000,
        "linphone heard {loud} loud samples after resume"
    );
}

#[test]
fn a_linphone_agent_consults_a_colleague_and_transfers_attended() {
    // The REFER on the caller's call, naming the consult call.
    attended_transfer("transfer 1 --to-call 2");
}

#[test]
fn an_attended_transfer_referred_on_the_consult_call_works_too() {
    // The REFER on the consult call, naming the caller's call.
    attended_transfer("transfer 2 --to-call 1");
}

/// linphone as agent 1 holds the caller, calls agent 2 (baresip, 1400 Hz)
/// through nida, then runs `command` (an attended transfer).
fn attended_transfer(command: &str) {
    let extra = format!(
        "data_dir = \"DATA\"\n{}",
        agent_config(&format!("{AGENT_1001}{}", crate::consult::AGENT_2), "")
    );
    let nida = start_centre(&extra);
    let mut phone = Linphone::start(nida.sip, "1001", "s3cret", true);
    assert!(nida.wait_log("agent=1 state=Available", Duration::from_secs(10)));
    let voice = caller_voice_for(&nida.dir, 50);
    let heard = nida.dir.join("caller-heard.wav");
    let call = caller(&nida, "2,0", 70, &voice, &heard);
    assert!(
        nida.wait_log("bridged agent=1", Duration::from_secs(20)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    let events = crate::agents::event_stream(&nida);
    let colleague = crate::agents::Baresip::start_speaking(nida.sip, "1002", "s3cret2", 1400);
    assert!(nida.wait_log("agent=2 state=Available", Duration::from_secs(10)));
    std::thread::sleep(Duration::from_secs(1));
    // linphone holds the caller (who hears music) and calls the
    // colleague through nida ...
    phone.command("pause");
    assert!(nida.wait_log("direction=RecvOnly", Duration::from_secs(5)));
    phone.command(&format!("call sip:1002@{}", nida.sip));
    assert!(
        nida.wait_log("consult answered", Duration::from_secs(15)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    assert!(nida
        .log()
        .contains("agent=2 state=NotReady(Reason(\"consult\"))"));
    std::thread::sleep(Duration::from_secs(3));
    // ... then transfers the caller to it (REFER with Replaces).
    phone.command(command);
    assert!(
        nida.wait_log("transfer complete", Duration::from_secs(10)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    // Agent 2's page pops with the caller's data.
    assert!(crate::common::wait(Duration::from_secs(5), || events
        .lock()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "offer"
            && e["agent"] == 2
            && e["info"]["queue"] == "visa_general")));
    std::thread::sleep(Duration::from_secs(4));
    colleague.hangup();
    let (ok, timeline) = finish(call);
    assert!(ok, "{timeline}\n{}", nida.log());
    let caller_zero = crate::supervisors::logged_at(&nida, "answered codec=");
    let moved = crate::supervisors::logged_at(&nida, "transfer complete");
    let ended = crate::supervisors::logged_at(&nida, "agent hung up");
    let (c, cr) = read_wav(&heard, 0).expect("the caller's recording");
    let share = crate::supervisors::tone_share(
        &c,
        cr,
        1400.0,
        moved - caller_zero + 0.7,
        ended - caller_zero - 0.7,
    );
    assert!(share > 0.3, "the caller talks to the colleague: {share}");
    let (a2, r2) = colleague.heard().expect("the colleague's audio");
    assert!(has_tone(
        &a2[a2.len().saturating_sub(r2 as usize * 3)..],
        r2,
        1000.0
    ));
    assert!(nida.wait_log("call record written", Duration::from_secs(5)));
    let recs = records(&nida);
    let rec = recs
        .iter()
        .find(|r| r["queue"] == "visa_general")
        .expect("the caller's record");
    assert_eq!(rec["agent"], 2, "{rec}");
    assert_eq!(rec["transfers"], serde_json::json!(["agent:2"]));
    assert!(nida.wait_log("consult over: ready again", Duration::from_secs(5)));
}
