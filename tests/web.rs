//! The wallboard and the agent page in real headless Chromium (Debian's
//! `chromium`, driven through `chromedriver` over the WebDriver protocol):
//! the wallboard's queue tile goes from 0 to 1 waiting when a real call
//! (`nida call`) queues, without reloading; the pages switch to Arabic
//! right to left; the agent logs in with their SIP credentials, goes not
//! ready with a reason, then ready, sees the screen pop of the call
//! offered to them, and the wrap-up after the call (sipp is the agent's
//! phone: it answers and hangs up after five seconds), and the chart of
//! the day shows the call once it has ended. From the wallboard's live
//! calls a supervisor of another queue is refused, and one of the call's
//! queue listens in (nida rings baresip as her phone) and switches to
//! whisper.

use crate::common;

use common::{Nida, TOKEN};
use serde_json::{json, Value};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A WebDriver session (thirtyfour) on a chromedriver of its own.
struct Browser {
    driver: Child,
    rt: tokio::runtime::Runtime,
    client: Option<thirtyfour::WebDriver>,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        Browser::start_with(Vec::new())
    }

    /// A browser started with `extra` command-line switches too.
    fn start_with(extra: Vec<String>) -> Browser {
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
        let profile = tempfile::Builder::new()
            .prefix("nida-chromium-")
            .tempdir()
            .unwrap();
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
        ]
        .map(String::from)
        .to_vec();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.extend(extra);
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args }
        });
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object literal")
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        common::install_tls_provider();
        let client = rt
            .block_on(thirtyfour::WebDriver::new(
                format!("http://127.0.0.1:{port}"),
                caps,
            ))
            .unwrap_or_else(|e| panic!("no WebDriver session: {e}"));
        Browser {
            driver,
            rt,
            client: Some(client),
            _profile: profile,
        }
    }

    fn client(&self) -> &thirtyfour::WebDriver {
        self.client.as_ref().expect("open until drop")
    }

    fn open(&self, url: &str) {
        self.rt.block_on(self.client().goto(url)).unwrap();
    }

    /// Runs a script in the page; returns its value.
    fn js(&self, script: &str) -> Value {
        self.rt
            .block_on(self.client().execute(script, Vec::new()))
            .unwrap_or_else(|e| panic!("{script}: {e}"))
            .json()
            .clone()
    }

    /// A browser whose microphone plays `mic` (a WAV file), allowed
    /// without asking, its pages' audio playing unprompted.
    fn with_microphone(mic: &std::path::Path) -> Browser {
        Browser::start_with(vec![
            "--use-fake-ui-for-media-stream".into(),
            "--use-fake-device-for-media-stream".into(),
            format!("--use-file-for-fake-audio-capture={}", mic.display()),
            "--autoplay-policy=no-user-gesture-required".into(),
        ])
    }

    /// Opens the agent page and logs in as agent 1001.
    fn log_in(&self, nida: &Nida) {
        self.open(&format!("http://{}/agent", nida.http));
        assert!(self.until(
            "document.querySelector('#login-form') !== null",
            Duration::from_secs(5)
        ));
        self.js("document.querySelector('#user').value = '1001';\
             document.querySelector('#password').value = 'pw-one';\
             document.querySelector('#login-form').requestSubmit(); return true;");
    }

    /// [`Browser::log_in`], then waits for the page's phone to register.
    fn log_in_phone(&self, nida: &Nida) {
        self.log_in(nida);
        assert!(
            self.until(
                "document.querySelector('#phone-state').dataset.state === 'registered'",
                Duration::from_secs(10)
            ),
            "{}\n{}",
            self.js("return document.body.innerText"),
            nida.log()
        );
    }

    /// The pitch and level of what the page receives on the stream
    /// `stream` (a script expression), through WebAudio over a second,
    /// measured again until audio has begun (a jitter buffer fills).
    fn heard_pitch(&self, stream: &str) -> Value {
        let measure = || {
            self.js(&format!(
                "return (async () => {{\
                   const ctx = new AudioContext();\
                   const an = ctx.createAnalyser(); an.fftSize = 2048;\
                   ctx.createMediaStreamSource({stream}).connect(an);\
                   const buf = new Float32Array(an.fftSize);\
                   let z = 0, e = 0, n = 0;\
                   for (let k = 0; k < 20; k++) {{\
                     await new Promise((r) => setTimeout(r, 50));\
                     an.getFloatTimeDomainData(buf);\
                     for (let i = 1; i < buf.length; i++) {{ if ((buf[i] < 0) !== (buf[i - 1] < 0)) z++; e += buf[i] * buf[i]; }}\
                     n += buf.length;\
                   }}\
                   return {{ hz: z / 2 / (n / ctx.sampleRate), rms: Math.sqrt(e / n) }};\
                 }})()"
            ))
        };
        let mut pitch = measure();
        for _ in 0..10 {
            if pitch["rms"].as_f64().unwrap_or(0.0) > 0.02 {
                break;
            }
            pitch = measure();
        }
        pitch
    }

    /// Waits (20 s at most) for the agent page's phone to ring.
    fn wait_ringing(&self, nida: &Nida) {
        assert!(
            self.until(
                "!document.querySelector('#phone-ring').hidden",
                Duration::from_secs(20)
            ),
            "{}\n{}",
            self.js("return document.body.innerText"),
            nida.log()
        );
    }

    /// Closes the page's tab, as an agent does (the session goes on in a
    /// new, empty tab).
    fn close_tab(&self) {
        self.rt.block_on(async {
            let c = self.client();
            let old = c.window().await.unwrap();
            let fresh = c.new_tab().await.unwrap();
            c.switch_to_window(old).await.unwrap();
            c.close_window().await.unwrap();
            c.switch_to_window(fresh).await.unwrap();
        });
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
        if let Some(c) = self.client.take() {
            let _ = self.rt.block_on(c.quit());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn post(nida: &Nida, path: &str) {
    let (status, body) = common::http(nida.http, "POST", path, Some(TOKEN), "");
    assert_eq!(status, 202, "{path}: {body}");
}

#[test]
fn wallboard_and_agent_page_follow_a_real_call_in_chromium() {
    common::which_sipp();
    let agent_port = common::ports(10);
    let phone = Command::new("sipp")
        .args(["-sf", &common::scenario("agent_hold.xml")])
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
             [queues.visa_general]\nannounce_seconds = 0\nwrap_up_seconds = 60\n\
             wrapup_codes = [\"visa status given\", \"complaint opened\", \"needs follow-up\"]\n",
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
        // A voice the agent's phone echoes, so the caller hears the
        // call go on after the hold's music (silence would end its
        // script early).
        .arg("--say")
        .arg(crate::agents::caller_voice_for(&nida.dir, 60))
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
    // Hold from the page: nida's re-INVITE (sendonly) reaches the phone,
    // which answers recvonly; the caller hears the music. Then resume
    // (the phone's scenario fails without both re-INVITEs).
    assert!(browser.until(
        "!document.querySelector('#call-buttons').hidden",
        Duration::from_secs(5)
    ));
    assert_eq!(
        browser.js("return document.querySelector('#btn-hold').textContent"),
        json!("تعليق")
    );
    browser.js("document.querySelector('#btn-hold').click(); return true;");
    assert!(
        nida.wait_log("by_page=true", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    assert!(nida.wait_log("direction=SendOnly", Duration::from_secs(5)));
    browser.js("document.querySelector('#btn-resume').click(); return true;");
    assert!(
        nida.wait_log("caller back from hold", Duration::from_secs(5)),
        "{}",
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
    // The queue's wrap-up codes: the agent ticks two and saves them.
    assert!(
        browser.until(
            "!document.querySelector('#codes').hidden && document.querySelectorAll('#code-list input').length === 3",
            Duration::from_secs(5)
        ),
        "{}",
        browser.js("return document.body.innerText")
    );
    browser.js(
        "document.querySelector('#code-list input[value=\"visa status given\"]').click();\
         document.querySelector('#code-list input[value=\"needs follow-up\"]').click();\
         document.querySelector('#btn-codes').click(); return true;",
    );
    assert!(
        browser.until(
            "!document.querySelector('#codes-saved').hidden",
            Duration::from_secs(5)
        ),
        "{}",
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
    caller_ends(&mut caller);

    // The codes are the call's, counted for the agent and the queue.
    let records: serde_json::Value = serde_json::from_str(&nida.get("/api/records")).unwrap();
    let answered = records
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["agent"] == 1)
        .unwrap_or_else(|| panic!("{records}"));
    let mut codes: Vec<&str> = answered["wrapup"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    codes.sort_unstable();
    assert_eq!(
        codes,
        ["needs follow-up", "visa status given"],
        "{answered}"
    );
    let counts = nida.get("/api/wrapups");
    assert!(
        counts.contains("\"code\":\"needs follow-up\",\"count\":1"),
        "{counts}"
    );
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

#[test]
fn a_supervisor_listens_in_from_the_wallboard_and_switches_to_whisper() {
    use crate::agents::{
        agent_config, caller, caller_voice_for, start_centre, Baresip, AGENT_1001,
    };
    let sups = "[[supervisors]]\nuser = \"salma\"\npassword = \"sup-pw\"\nname = \"Salma\"\n\
                queues = [\"visa_general\"]\n\
                [[supervisors]]\nuser = \"omar\"\npassword = \"sup-pw2\"\nname = \"Omar\"\n\
                queues = [\"police_traffic\"]\n";
    let nida = start_centre(&format!("{sups}{}", agent_config(AGENT_1001, "")));
    let agent = Baresip::start(nida.sip, "1001", "s3cret", true);
    let sup = Baresip::start_speaking(nida.sip, "salma", "sup-pw", 1400);
    assert!(nida.wait_log("supervisor registered", Duration::from_secs(10)));
    assert!(nida.wait_log("state=Available", Duration::from_secs(10)));
    let browser = Browser::start();
    browser.open(&format!("http://{}/wallboard#token={TOKEN}", nida.http));
    assert!(browser.until(
        "document.querySelectorAll('#supervisor option').length === 2",
        Duration::from_secs(10)
    ));
    let voice = caller_voice_for(&nida.dir, 30);
    let heard = nida.dir.join("caller-heard.wav");
    let call = caller(&nida, "2,0", 40, &voice, &heard);
    let row = "document.querySelector('#call-list tr[data-state=\"talking\"]')";
    assert!(
        browser.until(&format!("{row} !== null"), Duration::from_secs(20)),
        "{}\n{}",
        browser.js("return document.body.innerText"),
        nida.log()
    );
    // Omar's queues do not include this call's: refused, and said so.
    browser.js(&format!(
        "document.querySelector('#supervisor').value = 'omar';\
         {row}.querySelector('[data-mode=\"listen\"]').click(); return true;"
    ));
    assert!(browser.until(
        "document.querySelector('#supervise-status').dataset.code === '403'",
        Duration::from_secs(5)
    ));
    // Salma listens: nida rings her phone, which answers.
    browser.js(&format!(
        "document.querySelector('#supervisor').value = 'salma';\
         {row}.querySelector('[data-mode=\"listen\"]').click(); return true;"
    ));
    assert!(browser.until(
        "document.querySelector('#supervise-status').dataset.code === '202'",
        Duration::from_secs(5)
    ));
    assert!(
        nida.wait_log(
            "supervisor joined supervisor=salma mode=\"listen\"",
            Duration::from_secs(10)
        ),
        "{}\n{}",
        nida.log(),
        sup.log()
    );
    browser.js(&format!(
        "{row}.querySelector('[data-mode=\"whisper\"]').click(); return true;"
    ));
    assert!(
        nida.wait_log("supervisor mode mode=\"whisper\"", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    sup.hangup();
    assert!(nida.wait_log("supervisor left", Duration::from_secs(5)));
    agent.hangup();
    let out = call.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", nida.log());
}

/// A caller whose queue's longest wait passes leaves a voice message
/// (`nida call --say`, a 1000 Hz voice); the agent page lists it, plays
/// it from the API in Chromium, and the audio the page loaded is the
/// caller's voice (WebAudio decodes it); marked handled, it leaves the
/// list.
#[test]
fn a_voice_message_is_played_back_on_the_agent_page_in_chromium() {
    let nida = Nida::start_with(|dir| {
        format!(
            "data_dir = \"{}\"\n[[agents]]\nid = 1\nuser = \"1001\"\npassword = \"pw-one\"\nname = \"Amina\"\n\
             skills = {{ visa = 5 }}\nlanguages = [\"en\"]\n\
             [queues.visa_general]\nannounce_seconds = 0\nmax_wait_seconds = 2\nexit = \"voicemail\"\n\
             voicemail_seconds = 4\nwrapup_codes = [\"visa status given\", \"needs follow-up\"]\n",
            dir.join("data").display()
        )
    });
    // The caller keeps talking through the silence while nida records.
    let out = crate::agents::agent_caller(
        &nida,
        6000,
        40,
        &crate::agents::caller_voice_for(&nida.dir, 40),
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list =
        || -> Value { serde_json::from_str(&nida.get("/api/voicemails?open=true")).unwrap() };
    assert!(
        common::wait(Duration::from_secs(10), || list().as_array().unwrap().len()
            == 1),
        "{}",
        nida.log()
    );
    let vm = &list()[0];
    assert_eq!(vm["queue"], "visa_general", "{vm}");
    assert_eq!(vm["language"], "en", "{vm}");
    let seconds = vm["seconds"].as_f64().unwrap();
    assert!((3.5..4.6).contains(&seconds), "{vm}");
    assert!(vm.get("file").is_none(), "no server path in the listing");
    let rec: Value = serde_json::from_str(&nida.get("/api/records")).unwrap();
    assert_eq!(rec[0]["outcome"], "voicemail", "{rec}");

    let browser = Browser::start();
    // The wallboard's IVR table counts the call under its flow; it asked
    // for an agent, so none of it was served by the IVR alone.
    browser.open(&format!("http://{}/wallboard#token={TOKEN}", nida.http));
    let row = "document.querySelector('#ivr-list tr[data-flow=\"main\"]')";
    assert!(
        browser.until(
            &format!("{row} !== null && {row}.querySelector('.calls').textContent === '1'"),
            Duration::from_secs(10)
        ),
        "{}",
        browser.js("return document.body.innerText")
    );
    assert_eq!(
        browser.js(&format!(
            "return {row}.querySelector('.containment').textContent"
        )),
        json!("0 %")
    );
    browser.log_in(&nida);
    assert!(
        browser.until(
            "document.querySelector('#vm-list tr[data-voicemail]') !== null",
            Duration::from_secs(10)
        ),
        "{}",
        browser.js("return document.body.innerText")
    );
    browser.js("document.querySelector('[data-play]').click(); return true;");
    assert!(browser.until(
        "(document.querySelector('[data-audio]').src || '').startsWith('blob:')",
        Duration::from_secs(5)
    ));
    // What the page loaded, decoded by the browser: its length and its
    // pitch (zero crossings per second).
    let heard = browser.js(
        "return (async () => {\
           const a = document.querySelector('[data-audio]');\
           const bytes = await (await fetch(a.src)).arrayBuffer();\
           const ctx = new OfflineAudioContext(1, 8000, 8000);\
           const buf = await ctx.decodeAudioData(bytes);\
           const d = buf.getChannelData(0);\
           let z = 0, e = 0;\
           for (let i = 1; i < d.length; i++) { if ((d[i] < 0) !== (d[i - 1] < 0)) z++; e += d[i] * d[i]; }\
           return { seconds: buf.duration, hz: z / 2 / buf.duration, rms: Math.sqrt(e / d.length) };\
         })()",
    );
    let secs = heard["seconds"].as_f64().unwrap();
    let hz = heard["hz"].as_f64().unwrap();
    assert!((3.5..4.6).contains(&secs), "{heard}");
    assert!(
        (900.0..1100.0).contains(&hz),
        "the caller's 1000 Hz voice: {heard}"
    );
    assert!(heard["rms"].as_f64().unwrap() > 0.05, "{heard}");
    browser.js("document.querySelector('[data-handled]').click(); return true;");
    assert!(browser.until(
        "document.querySelector('#vm-list tr[data-voicemail]') === null",
        Duration::from_secs(5)
    ));
    assert_eq!(list().as_array().unwrap().len(), 0);
    let all: Value = serde_json::from_str(&nida.get("/api/voicemails")).unwrap();
    assert_eq!(all[0]["handled_by"], 1, "{all}");
}

/// Lets a `nida call` end by itself (40 s at most), then makes sure it
/// has.
fn caller_ends(caller: &mut Child) {
    let end = Instant::now() + Duration::from_secs(40);
    while caller.try_wait().unwrap().is_none() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = caller.kill();
    let _ = caller.wait();
}

/// The agent page as the agent's phone: Chromium (a fake microphone
/// playing a 600 Hz tone) logs in, registers over SIP over WebSocket,
/// rings for a real caller (`nida call --say`, 1000 Hz), answers from the
/// page, and each side hears the other (the caller's recording, and the
/// page's received audio through WebAudio); the page hangs up and the
/// caller goes on to the survey. A second call answered and then the tab
/// closed: the agent's leg ends, the caller goes to the survey, and the
/// agent is logged out, so a third caller is not offered to them.
#[test]
fn the_agent_page_is_a_phone_in_chromium() {
    common::which_sipp();
    let nida = Nida::start_with(|dir| {
        format!(
            "data_dir = \"{}\"\n[[agents]]\nid = 1\nuser = \"1001\"\npassword = \"pw-one\"\nname = \"Amina\"\n\
             skills = {{ visa = 5 }}\nlanguages = [\"en\"]\n\
             [queues.visa_general]\nannounce_seconds = 0\nwrap_up_seconds = 1\n\
             wrapup_codes = [\"visa status given\", \"complaint opened\"]\n",
            dir.join("data").display()
        )
    });
    let mic = nida.dir.join("agent-mic.wav");
    crate::agents::tone_file(&mic, 600.0, 60);
    let browser = Browser::with_microphone(&mic);
    browser.log_in_phone(&nida);
    assert!(browser.until(
        "document.querySelector('#state').dataset.state === 'available'",
        Duration::from_secs(5)
    ));

    let voice = crate::agents::caller_voice_for(&nida.dir, 60);
    let place = |heard: &std::path::Path| {
        crate::agents::agent_caller(&nida, 4000, 45, &voice)
            .arg("--record")
            .arg(heard)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let heard = nida.dir.join("caller-heard.wav");
    let mut caller = place(&heard);
    // The page rings; the agent answers from it.
    browser.wait_ringing(&nida);
    browser.js("document.querySelector('#btn-answer').click(); return true;");
    assert!(
        nida.wait_log("web phone's media connected", Duration::from_secs(10)),
        "{}",
        nida.log()
    );
    assert!(browser.until(
        "!document.querySelector('#phone-call').hidden",
        Duration::from_secs(5)
    ));
    let pitch = browser.heard_pitch("window.nidaPhoneStream");
    let hz = pitch["hz"].as_f64().unwrap();
    assert!(
        (900.0..1100.0).contains(&hz) && pitch["rms"].as_f64().unwrap() > 0.02,
        "the page hears the caller's 1000 Hz: {pitch}\n{}",
        nida.log()
    );
    // The page's keypad: *2# in the media gives the second wrap-up code.
    for key in ["*", "2", "#"] {
        browser.js(&format!(
            "document.querySelector('#phone-keys [data-key=\"{key}\"]').click(); return true;"
        ));
    }
    assert!(
        common::wait(Duration::from_secs(5), || nida
            .get("/api/wrapups")
            .contains("\"code\":\"complaint opened\",\"count\":1")),
        "{}\n{}",
        nida.get("/api/wrapups"),
        nida.log()
    );
    // Hold from the page (nida's re-INVITE goes to the page, which keeps
    // its media), then resume; mute and unmute.
    assert!(browser.until(
        "!document.querySelector('#call-buttons').hidden",
        Duration::from_secs(5)
    ));
    browser.js("document.querySelector('#btn-hold').click(); return true;");
    assert!(
        nida.wait_log("by_page=true", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    browser.js("document.querySelector('#btn-resume').click(); return true;");
    assert!(
        nida.wait_log("caller back from hold", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    browser.js("document.querySelector('#btn-mute').click(); return true;");
    assert_eq!(
        browser.js("return window.nidaPhone.call.stream.getAudioTracks()[0].enabled"),
        json!(false)
    );
    browser.js("document.querySelector('#btn-mute').click(); return true;");
    assert_eq!(
        browser.js("return window.nidaPhone.call.stream.getAudioTracks()[0].enabled"),
        json!(true)
    );
    assert_eq!(
        browser.js("return document.querySelector('#phone-state').dataset.state"),
        json!("registered"),
        "still the agent's phone after hold"
    );
    // The page hangs up; the caller hears the survey and hangs up.
    browser.js("document.querySelector('#btn-hangup').click(); return true;");
    assert!(browser.until(
        "document.querySelector('#phone-call').hidden",
        Duration::from_secs(5)
    ));
    caller_ends(&mut caller);
    let (pcm, rate) = crate::agents::read_wav(&heard, 0).expect("the caller's recording");
    assert!(
        crate::agents::has_tone(&pcm, rate, 600.0),
        "the caller hears the page's microphone\n{}",
        nida.log()
    );
    assert!(
        nida.wait_log("survey", Duration::from_secs(10)),
        "{}",
        nida.log()
    );

    // A second caller; answered, then the tab is closed mid-call.
    let heard2 = nida.dir.join("caller-heard-2.wav");
    let mut second = place(&heard2);
    browser.wait_ringing(&nida);
    browser.js("document.querySelector('#btn-answer').click(); return true;");
    assert!(browser.until(
        "!document.querySelector('#phone-call').hidden",
        Duration::from_secs(10)
    ));
    assert!(
        common::wait(Duration::from_secs(10), || nida
            .log()
            .matches("web phone's media connected")
            .count()
            == 2),
        "{}",
        nida.log()
    );
    browser.close_tab();
    assert!(
        nida.wait_agent_state(1, "logged_out", Duration::from_secs(10)),
        "{}\n{}",
        nida.agent_state(1),
        nida.log()
    );
    caller_ends(&mut second);
    let records: Value = serde_json::from_str(&nida.get("/api/records")).unwrap();
    let answered = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["agent"] == 1 && r["outcome"] == "answered")
        .count();
    assert_eq!(answered, 2, "{records}");

    // Logged in again, ready, and the tab closed: no call is offered to
    // the agent, who is logged out.
    browser.open(&format!("http://{}/agent", nida.http));
    browser.js("sessionStorage.clear(); return true;");
    browser.log_in_phone(&nida);
    assert!(nida.wait_agent_state(1, "available", Duration::from_secs(5)));
    browser.close_tab();
    assert!(
        nida.wait_agent_state(1, "logged_out", Duration::from_secs(10)),
        "{}",
        nida.agent_state(1)
    );
    let heard3 = nida.dir.join("caller-heard-3.wav");
    let mut third = place(&heard3);
    let queues = || -> Value { serde_json::from_str(&nida.get("/api/calls")).unwrap_or_default() };
    assert!(
        common::wait(Duration::from_secs(20), || queues()
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["state"] == "waiting"))),
        "{}\n{}",
        queues(),
        nida.log()
    );
    assert_eq!(nida.agent_state(1), "logged_out", "not offered");
    let _ = third.kill();
    let _ = third.wait();
}

/// A standard web phone from the npm registry: JsSIP (bundled for the
/// browser by `tests/run`) in Chromium registers with nida as agent 1002
/// over `ws://HTTP/sip` with digest, auto-answers the offered call with
/// WebRTC, and each side hears the other; JsSIP hangs up.
#[test]
fn a_jssip_web_phone_registers_and_takes_a_call_in_chromium() {
    let bundle = common::repo().join("tests/web-phone/jssip.js");
    let Ok(jssip) = std::fs::read_to_string(&bundle) else {
        panic!(
            "{} is missing: tests/run installs JsSIP from the npm registry and bundles it",
            bundle.display()
        );
    };
    let nida = Nida::start_with(|dir| {
        format!(
            "data_dir = \"{}\"\n[[agents]]\nid = 2\nuser = \"1002\"\npassword = \"pw-two\"\n\
             skills = {{ visa = 5 }}\nlanguages = [\"en\"]\n\
             [queues.visa_general]\nannounce_seconds = 0\nwrap_up_seconds = 1\n",
            dir.join("data").display()
        )
    });
    let mic = nida.dir.join("jssip-mic.wav");
    crate::agents::tone_file(&mic, 600.0, 60);
    let browser = Browser::with_microphone(&mic);
    browser.open(&format!("http://{}/health", nida.http));
    assert_eq!(
        browser.js(&format!(
            "{jssip}\nwindow.JsSIP = JsSIP; return typeof JsSIP.UA;"
        )),
        json!("function")
    );
    browser.js(
        "const socket = new JsSIP.WebSocketInterface(`ws://${location.host}/sip`);\
         const ua = new JsSIP.UA({ sockets: [socket], uri: 'sip:1002@127.0.0.1',\
           password: 'pw-two', register: true, session_timers: false });\
         window.jssip = { state: 'starting', call: 'none' };\
         ua.on('registered', () => { window.jssip.state = 'registered'; });\
         ua.on('registrationFailed', (e) => { window.jssip.state = 'failed: ' + e.cause; });\
         ua.on('newRTCSession', (e) => {\
           if (e.originator !== 'remote') return;\
           const s = e.session; window.jssip.session = s;\
           s.on('peerconnection', (p) => p.peerconnection.addEventListener('track',\
             (t) => { window.jssip.stream = t.streams[0]; const a = new Audio(); a.srcObject = t.streams[0]; a.play().catch(() => {}); }));\
           s.on('confirmed', () => { window.jssip.call = 'confirmed'; });\
           s.on('ended', () => { window.jssip.call = 'ended'; });\
           s.on('failed', (f) => { window.jssip.call = 'failed: ' + f.cause; });\
           s.answer({ mediaConstraints: { audio: true, video: false } });\
         });\
         window.jssip.ua = ua; ua.start(); return true;",
    );
    assert!(
        browser.until(
            "window.jssip.state === 'registered'",
            Duration::from_secs(10)
        ),
        "{}\n{}",
        browser.js("return window.jssip.state"),
        nida.log()
    );
    let voice = crate::agents::caller_voice_for(&nida.dir, 60);
    let heard = nida.dir.join("caller-heard.wav");
    let mut caller = crate::agents::agent_caller(&nida, 4000, 45, &voice)
        .arg("--record")
        .arg(&heard)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        browser.until("window.jssip.call === 'confirmed'", Duration::from_secs(25)),
        "{}\n{}",
        browser.js("return window.jssip.call"),
        nida.log()
    );
    assert!(
        nida.wait_log("web phone's media connected", Duration::from_secs(10)),
        "{}",
        nida.log()
    );
    let pitch = browser.heard_pitch("window.jssip.stream");
    let hz = pitch["hz"].as_f64().unwrap();
    assert!(
        (900.0..1100.0).contains(&hz),
        "JsSIP hears the caller's 1000 Hz: {pitch}"
    );
    browser.js("window.jssip.session.terminate(); return true;");
    assert!(browser.until("window.jssip.call === 'ended'", Duration::from_secs(5)));
    caller_ends(&mut caller);
    let (pcm, rate) = crate::agents::read_wav(&heard, 0).expect("the caller's recording");
    assert!(
        crate::agents::has_tone(&pcm, rate, 600.0),
        "the caller hears JsSIP's microphone"
    );
    let records: Value = serde_json::from_str(&nida.get("/api/records")).unwrap();
    assert_eq!(records[0]["agent"], 2, "{records}");
}

/// A browser that gives no microphone (headless Chromium without a fake
/// device, its permission prompt unanswered) answers the offer 480: the
/// page says why, and the agent is not left talking on a dead phone.
#[test]
fn a_page_without_a_microphone_does_not_take_the_call() {
    let nida = Nida::start_with(|dir| {
        format!(
            "data_dir = \"{}\"\n[[agents]]\nid = 1\nuser = \"1001\"\npassword = \"pw-one\"\n\
             skills = {{ visa = 5 }}\nlanguages = [\"en\"]\n\
             [queues.visa_general]\nannounce_seconds = 0\nwrap_up_seconds = 0\n",
            dir.join("data").display()
        )
    });
    let browser = Browser::start_with(vec!["--deny-permission-prompts".into()]);
    browser.log_in_phone(&nida);
    let voice = crate::agents::caller_voice_for(&nida.dir, 30);
    let mut caller = crate::agents::agent_caller(&nida, 4000, 30, &voice)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    browser.wait_ringing(&nida);
    browser.js("document.querySelector('#btn-answer').click(); return true;");
    assert!(browser.until(
        "!document.querySelector('#phone-mic').hidden",
        Duration::from_secs(10)
    ));
    assert!(
        nida.wait_log(
            "agent did not take the call agent=1 reason=Refused(480)",
            Duration::from_secs(5)
        ),
        "{}",
        nida.log()
    );
    assert!(
        !nida.log().contains("bridged agent=1"),
        "no call on a phone without a microphone"
    );
    let _ = caller.kill();
    let _ = caller.wait();
}

/// The page's Reject button refuses an offer (486: nida tries the next
/// agent, here the same one again), and an offer the agent lets ring is
/// cancelled after the queue's ring time: the page stops ringing.
#[test]
fn the_page_rejects_an_offer_and_stops_ringing_when_nida_cancels() {
    let nida = Nida::start_with(|dir| {
        format!(
            "data_dir = \"{}\"\n[[agents]]\nid = 1\nuser = \"1001\"\npassword = \"pw-one\"\n\
             skills = {{ visa = 5 }}\nlanguages = [\"en\"]\n\
             [queues.visa_general]\nannounce_seconds = 0\nwrap_up_seconds = 0\n\
             offer_timeout_seconds = 3\nmax_missed = 5\n",
            dir.join("data").display()
        )
    });
    let mic = nida.dir.join("agent-mic.wav");
    crate::agents::tone_file(&mic, 600.0, 30);
    let browser = Browser::with_microphone(&mic);
    browser.log_in_phone(&nida);
    let voice = crate::agents::caller_voice_for(&nida.dir, 40);
    let mut caller = crate::agents::agent_caller(&nida, 6000, 40, &voice)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ringing = "!document.querySelector('#phone-ring').hidden";
    assert!(
        browser.until(ringing, Duration::from_secs(20)),
        "{}",
        nida.log()
    );
    browser.js("document.querySelector('#btn-reject').click(); return true;");
    assert!(
        nida.wait_log(
            "agent did not take the call agent=1 reason=Refused(486)",
            Duration::from_secs(5)
        ),
        "{}",
        nida.log()
    );
    // Offered again; this time it rings out and nida cancels it.
    assert!(
        browser.until(ringing, Duration::from_secs(10)),
        "{}",
        nida.log()
    );
    assert!(
        browser.until(
            "document.querySelector('#phone-ring').hidden && document.querySelector('#phone-ended').textContent === 'cancelled'",
            Duration::from_secs(10)
        ),
        "{}\n{}",
        browser.js("return document.body.innerText"),
        nida.log()
    );
    assert!(
        !nida.log().contains("bridged agent=1"),
        "nobody answered: {}",
        nida.log()
    );
    let _ = caller.kill();
    let _ = caller.wait();
}
