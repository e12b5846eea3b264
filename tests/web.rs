//! The wallboard and the agent page in real headless Chromium (Debian's
//! `chromium`, driven through `chromedriver` over the WebDriver protocol):
//! the wallboard's queue tile goes from 0 to 1 waiting when a real call
//! (`nida call`) queues, without reloading; the pages switch to Arabic
//! right to left; the agent logs in with their SIP credentials, goes not
//! ready with a reason, then ready, sees the screen pop of the call
//! offered to them, and the wrap-up after the call (sipp is the agent's
//! phone: it answers and hangs up after five seconds), and the chart of
//! the day shows the call once it has ended.

use crate::common;

use common::{Nida, TOKEN};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A WebDriver session on a chromedriver of its own.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempdir::Dir,
}

mod tempdir {
    /// A folder removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn http_json(port: u16, method: &str, path: &str, body: &Value) -> Value {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.to_string();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // chromedriver says `Connection: close` but keeps the socket open:
    // read the head, then exactly Content-Length bytes.
    let mut r = BufReader::new(s);
    let mut length = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("chromedriver answers");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).expect("chromedriver's answer");
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

impl Browser {
    fn start() -> Browser {
        let port = common::ports(1);
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver) starts");
        let end = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < end, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile =
            std::env::temp_dir().join(format!("nida-chromium-{}-{port}", std::process::id()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                         "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", "--window-size=1280,900",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let r = http_json(port, "POST", "/session", &caps);
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_string();
        Browser {
            driver,
            port,
            session,
            _profile: tempdir::Dir(profile),
        }
    }

    fn open(&self, url: &str) {
        http_json(
            self.port,
            "POST",
            &format!("/session/{}/url", self.session),
            &json!({ "url": url }),
        );
    }

    /// Runs a script in the page; returns its value.
    fn js(&self, script: &str) -> Value {
        let r = http_json(
            self.port,
            "POST",
            &format!("/session/{}/execute/sync", self.session),
            &json!({ "script": script, "args": [] }),
        );
        r["value"].clone()
    }

    /// Waits until the script returns true.
    fn until(&self, script: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.js(&format!("return ({script});")) == json!(true) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(150));
        }
        false
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        http_json(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            &json!({}),
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn post(nida: &Nida, path: &str) {
    let mut s = TcpStream::connect(nida.http).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    assert!(r.starts_with("HTTP/1.1 202"), "{path}: {r}");
}

#[test]
fn wallboard_and_agent_page_follow_a_real_call_in_chromium() {
    common::which_sipp();
    let agent_port = common::ports(10);
    let phone = Command::new("sipp")
        .args(["-sf", &common::scenario("callback_answer.xml")])
        .args(["-i", "127.0.0.1", "-p", &agent_port.to_string()])
        .args(["-m", "1", "-nostdin", "-timeout", "90s", "-timeout_error"])
        .args(["-mp", &(agent_port + 4).to_string(), "-rtp_echo"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp starts");
    let nida = Nida::start_with(|dir| {
        format!(
            "data_dir = \"{}\"\n[[agents]]\nid = 1\nuser = \"1001\"\npassword = \"pw-one\"\nname = \"Amina\"\n\
             skills = {{ visa = 5 }}\nlanguages = [\"en\", \"ar\"]\ncontact = \"sip:1001@127.0.0.1:{agent_port}\"\n\
             [queues.visa_general]\nannounce_seconds = 0\nwrap_up_seconds = 60\n",
            dir.join("data").display()
        )
    });
    post(&nida, "/api/agents/1/not_ready?reason=briefing");
    let browser = Browser::start();
    let base = format!("http://{}", nida.http);

    // The wallboard, in English, left to right, with its live link.
    browser.open(&format!("{base}/wallboard#token={TOKEN}"));
    let tile = "document.querySelector('.tile[data-queue=\"visa_general\"] .waiting')";
    assert!(
        browser.until(
            &format!("{tile} !== null && {tile}.textContent === '0'"),
            Duration::from_secs(10)
        ),
        "no tile: {}",
        browser.js("return document.body.innerText")
    );
    assert_eq!(
        browser.js("return document.documentElement.dir"),
        json!("ltr")
    );
    assert!(browser.until(
        "document.querySelector('#link').dataset.state === 'live'",
        Duration::from_secs(5)
    ));
    assert_eq!(
        browser
            .js("return document.querySelector('#agent-list tbody tr td:nth-child(2)').innerText"),
        json!("Not ready")
    );
    // The queue's tile counts its agents by state.
    assert_eq!(
        browser.js(
            "return document.querySelector('.tile[data-queue=\"visa_general\"] .agents').innerText"
        ),
        json!("Not ready: 1")
    );

    // A caller queues: the tile shows it without a reload.
    browser.js("window.notReloaded = true; return true;");
    let caller = Command::new(env!("CARGO_BIN_EXE_nida"))
        .args(["call", &format!("sip:8005@{}", nida.sip)])
        .args([
            "--digits",
            // Language, agent, then (after the call) the rating.
            "2,0,w5",
            "--barge-in-ms",
            "1500",
            "--max-seconds",
            "60",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        browser.until(
            &format!("{tile}.textContent === '1'"),
            Duration::from_secs(15)
        ),
        "{}\n{}",
        browser.js("return document.body.innerText"),
        nida.log()
    );
    assert_eq!(
        browser.js("return window.notReloaded === true"),
        json!(true)
    );

    // Arabic, right to left.
    browser.js("document.querySelector('#lang').click(); return true;");
    assert_eq!(
        browser.js("return document.documentElement.dir"),
        json!("rtl")
    );
    assert_eq!(
        browser.js("return document.querySelector('h1').textContent"),
        json!("لوحة المتابعة")
    );

    // The agent page in Arabic: log in with the SIP credentials.
    browser.open(&format!("{base}/agent?lang=ar"));
    assert!(browser.until(
        "document.querySelector('#login-form') !== null",
        Duration::from_secs(5)
    ));
    assert_eq!(
        browser.js("return document.documentElement.dir"),
        json!("rtl")
    );
    browser.js("document.querySelector('#user').value = '1001';\
         document.querySelector('#password').value = 'wrong';\
         document.querySelector('#login-form').requestSubmit(); return true;");
    assert!(browser.until(
        "!document.querySelector('#login-error').hidden",
        Duration::from_secs(5)
    ));
    browser.js("document.querySelector('#password').value = 'pw-one';\
         document.querySelector('#login-form').requestSubmit(); return true;");
    assert!(browser.until(
        "!document.querySelector('#desk').hidden",
        Duration::from_secs(5)
    ));
    assert!(browser.until(
        "document.querySelector('#state').dataset.state === 'not_ready' && document.querySelector('#reason').textContent === 'briefing'",
        Duration::from_secs(5)
    ));
    assert_eq!(
        browser.js("return document.querySelector('#state').textContent"),
        json!("غير جاهز")
    );

    // Not ready with a reason chosen on the page.
    browser.js("document.querySelector('#reason-select').value = 'lunch';\
         document.querySelector('#btn-not-ready').click(); return true;");
    assert!(browser.until(
        "document.querySelector('#reason').textContent === 'lunch'",
        Duration::from_secs(5)
    ));

    // Ready: the waiting call is offered; the screen pop shows it; the
    // phone answers and hangs up; the page shows the wrap-up.
    browser.js("document.querySelector('#btn-ready').click(); return true;");
    assert!(
        browser.until(
            "!document.querySelector('#pop').hidden && document.querySelector('#pop-queue').textContent === 'visa_general'",
            Duration::from_secs(10)
        ),
        "{}\n{}",
        browser.js("return document.body.innerText"),
        nida.log()
    );
    assert_eq!(
        browser.js("return document.querySelector('#pop-language').textContent"),
        json!("en")
    );
    assert!(
        browser.until(
            "document.querySelector('#state').dataset.state === 'talking'",
            Duration::from_secs(10)
        ),
        "{}\n{}",
        browser.js("return document.body.innerText"),
        nida.log()
    );
    assert!(
        browser.until(
            "document.querySelector('#state').dataset.state === 'wrap_up' && !document.querySelector('#wrap').hidden",
            Duration::from_secs(20)
        ),
        "{}\n{}",
        browser.js("return document.body.innerText"),
        nida.log()
    );
    let out = phone.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        nida.log()
    );
    // The caller rates the call and hangs up; the record is stored.
    let mut caller = caller;
    let end = Instant::now() + Duration::from_secs(40);
    while caller.try_wait().unwrap().is_none() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = caller.kill();
    let _ = caller.wait();

    // The wallboard's chart of the day has this hour's offered and
    // answered bars for the queue.
    browser.open(&format!("{base}/wallboard#token={TOKEN}"));
    let bars = "document.querySelectorAll('.chart[data-queue=\"visa_general\"] rect.bar')";
    assert!(
        browser.until(
            &format!("{bars}.length === 2 && Array.from({bars}).every((b) => b.getAttribute('height') > 0)"),
            Duration::from_secs(10)
        ),
        "{}\n{}",
        browser.js("return document.body.innerHTML"),
        nida.log()
    );
}
