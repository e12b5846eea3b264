//! Scale-out behind Kamailio: the dispatcher config shipped in
//! `deploy/kamailio/` runs in front of two real nida instances on
//! loopback, and sipp calls through it. Calls are spread over both; once
//! one instance is killed (or starts to stop), new calls all go to the
//! other and none fails.

use crate::common;

use common::{sipp, Nida};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Kamailio with `deploy/kamailio/kamailio.cfg`, its dispatcher set made
/// of the given nida instances, probing them every second.
struct Kamailio {
    child: Child,
    sip: SocketAddr,
    ctl: String,
    _tmp: tempfile::TempDir,
    log: Arc<Mutex<String>>,
}

/// A program of the kamailio package (in /usr/sbin, which a user's PATH
/// may lack).
fn sbin(program: &str) -> String {
    let path = format!("/usr/sbin/{program}");
    if std::path::Path::new(&path).exists() {
        path
    } else {
        program.to_string()
    }
}

impl Kamailio {
    fn start(instances: &[&Nida]) -> Kamailio {
        let port = common::ports(10);
        let sip: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("nida-kamailio-{port}-"))
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let list = dir.join("dispatcher.list");
        let lines: String = instances
            .iter()
            .map(|n| format!("1 sip:{} 0 0\n", n.sip))
            .collect();
        std::fs::write(&list, lines).unwrap();
        let ctl = format!("unix:{}", dir.join("ctl").display());
        let cfg = common::repo().join("deploy/kamailio/kamailio.cfg");
        let mut child = Command::new(sbin("kamailio"))
            .arg("-f")
            .arg(&cfg)
            // Foreground, log to stderr, small memory, runtime files in
            // the test's folder. One UDP worker: with several, nida's 180
            // and the 200 right after it may leave Kamailio in either
            // order, and sipp fails a call on a 180 after the 200 (a
            // carrier's stack ignores it, RFC 3261 17.1.1.2).
            .args(["-DD", "-E", "-m", "32", "-M", "4", "-n", "1"])
            .arg("-Y")
            .arg(&dir)
            .args(["-A", &format!("LISTEN=udp:{sip}")])
            .args(["-A", &format!("DISPATCHER_LIST=\"{}\"", list.display())])
            .args(["-A", &format!("CTL_SOCKET=\"{ctl}\"")])
            .args(["-A", "PING_INTERVAL=1", "-A", "INVITE_TIMEOUT=1000"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so its worker processes go with it.
            .process_group(0)
            .spawn()
            .expect("kamailio starts: run tests/run (it installs the Debian package kamailio)");
        let log = Arc::new(Mutex::new(String::new()));
        common::collect_lines(&log, child.stderr.take().unwrap());
        let k = Kamailio {
            child,
            sip,
            ctl,
            _tmp: tmp,
            log,
        };
        // Up once every instance has been probed and found answering.
        assert!(
            common::wait(Duration::from_secs(10), || {
                let list = k.dispatcher_list();
                instances.iter().all(|n| k.state(&list, n) == Some("AP"))
            }),
            "kamailio did not come up with both instances active:\n{}\n{}",
            k.dispatcher_list(),
            k.log()
        );
        k
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `kamcmd dispatcher.list`: every destination with its flags.
    fn dispatcher_list(&self) -> String {
        Command::new(sbin("kamcmd"))
            .args(["-s", &self.ctl, "dispatcher.list"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// The flags of `nida` in `list`: `AP` active, `IP` inactive (both
    /// probed).
    fn state<'a>(&self, list: &'a str, nida: &Nida) -> Option<&'a str> {
        let uri = format!("sip:{}", nida.sip);
        let at = list.find(&uri)?;
        let rest = &list[at..];
        let flags = rest.find("FLAGS:")? + "FLAGS:".len();
        rest[flags..].split_whitespace().next()
    }

    /// Waits until `nida`'s flags are `flags`.
    fn wait_state(&self, nida: &Nida, flags: &str) {
        assert!(
            common::wait(Duration::from_secs(10), || self
                .state(&self.dispatcher_list(), nida)
                == Some(flags)),
            "{} never became {flags}:\n{}\n{}",
            nida.sip,
            self.dispatcher_list(),
            self.log()
        );
    }

    /// `n` calls through the dispatcher, three a second, each 300 ms long:
    /// all must succeed.
    fn calls(&self, n: usize, who: &[&Nida]) {
        let rtp = common::media_ports();
        let n = n.to_string();
        let run = sipp(
            self.sip,
            "uac_basic.xml",
            rtp,
            &["-m", &n, "-r", "3", "-d", "300"],
        );
        let logs: Vec<String> = who.iter().map(|w| w.log()).collect();
        assert!(
            run.ok,
            "{}\nkamailio:\n{}\nnida:\n{}",
            run.output,
            self.log(),
            logs.join("\n----\n")
        );
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGKILL to the main process alone would leave the workers
        // holding the port: the whole group goes.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// Calls nida has answered (IVR and queued alike).
fn answered(nida: &Nida) -> u64 {
    nida.status("answered")
}

#[test]
fn calls_spread_over_two_instances_and_move_to_the_survivor() {
    common::which_sipp();
    let a = Nida::start("");
    let mut b = Nida::start("");
    let kamailio = Kamailio::start(&[&a, &b]);

    kamailio.calls(10, &[&a, &b]);
    let (on_a, on_b) = (answered(&a), answered(&b));
    assert_eq!(on_a + on_b, 10, "every call answered once");
    assert!(
        on_a >= 3 && on_b >= 3,
        "round robin spreads the calls: {on_a} on one, {on_b} on the other"
    );
    // The calls came through the dispatcher, which stays in the path.
    assert!(
        kamailio.log().contains(&format!("sent to sip:{}", b.sip)),
        "{}",
        kamailio.log()
    );

    // One instance dies without a word; the next calls go to the other,
    // the first of them after its INVITE to the dead one times out.
    let _ = b.child.kill();
    let _ = b.child.wait();
    assert!(!b.alive());
    kamailio.calls(10, &[&a]);
    assert_eq!(
        answered(&a),
        on_a + 10,
        "every new call answered by the survivor"
    );
    // Probes have taken the dead instance out.
    kamailio.wait_state(&b, "IP");
    kamailio.wait_state(&a, "AP");
}

#[test]
fn an_instance_that_starts_to_stop_gets_no_new_calls() {
    common::which_sipp();
    let stopping = Nida::start("shutdown_grace_seconds = 30");
    let other = Nida::start("");
    let kamailio = Kamailio::start(&[&stopping, &other]);

    // A call straight to the instance keeps it draining after SIGTERM.
    let sip = stopping.sip;
    let rtp = common::media_ports();
    let live = std::thread::spawn(move || sipp(sip, "uac_basic.xml", rtp, &["-d", "6000"]));
    stopping.wait_for_a_call();
    stopping.terminate();
    assert!(stopping.wait_log("stopping: new calls get 503", Duration::from_secs(2)));
    // Its 503 to the OPTIONS probes takes it out of the set.
    kamailio.wait_state(&stopping, "IP");
    let before = answered(&stopping);
    kamailio.calls(6, &[&stopping, &other]);
    assert_eq!(answered(&other), 6, "the other instance took every call");
    assert_eq!(
        answered(&stopping),
        before,
        "no new call for the stopping one"
    );
    let first = live.join().unwrap();
    assert!(first.ok, "the live call finished: {}", first.output);
}
