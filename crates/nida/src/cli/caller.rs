//! `nida call URI`: a test caller for ops. It places a real SIP call (to a
//! running nida or any SIP server), waits for each prompt to finish, presses
//! the keys of each group as RFC 4733 events with realistic gaps, records
//! what it hears to WAV and prints the timeline.

use crate::cli::CliError;
use nida_call::law_of;
use nida_media::{MediaEvent, RtpSession, SessionConfig};
use nida_sip::offer_answer::OfferAnswer;
use nida_sip::sdp::{self, Codec, LocalMedia};
use nida_sip::{EndReason, Endpoint, EndpointConfig, Event, Invite, Transport};
use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// Options of `nida call`.
pub struct CallArgs {
    /// `sip:user@host:port`.
    pub uri: String,
    /// Key groups, comma-separated; each is pressed when the far end has
    /// been quiet for `gap` (a group written `w5` is never pressed by
    /// barge-in: it waits for the quiet, e.g. for a survey after a talk).
    pub digits: Option<String>,
    /// Where to write what was heard (8 kHz mono WAV).
    pub record: Option<PathBuf>,
    /// Quiet time that means "the prompt has finished".
    pub gap: Duration,
    /// Press each group this long after its prompt starts, without waiting
    /// for the prompt to end (callers who know the menu barge in).
    pub barge_in: Option<Duration>,
    /// Longest call.
    pub max: Duration,
    /// Hang up this long after the last key group was pressed (e.g. a
    /// caller who asks for a call-back, or gives up in the queue, while
    /// music plays and no prompt ever ends).
    pub hang_up_after: Option<Duration>,
    /// The caller's voice, looped.
    pub say: Option<PathBuf>,
    /// Keys as DTMF tones in the audio, with no telephone-event offered.
    pub inband: bool,
    /// The caller's number.
    pub from: String,
}

/// A key's two tones (ITU-T Q.23) for `TONE`, for a caller whose keys go
/// in the audio.
fn dtmf_tone(key: char) -> nida_media::Prompt {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    let at = "123A456B789C*0#D"
        .find(key.to_ascii_uppercase())
        .unwrap_or(13);
    let (row, col) = (ROWS[at / 4], COLS[at % 4]);
    let n = (TONE.as_millis() * 8) as usize;
    let pcm = (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let w = |f: f64| (2.0 * std::f64::consts::PI * f * t).sin();
            (6000.0 * (w(row) + w(col))) as i16
        })
        .collect();
    nida_media::Prompt::from_pcm("dtmf", pcm)
}

/// A frame whose loudest sample is below this is silence.
const QUIET: i16 = 64;
/// A key press: tone length and the pause after it.
const TONE: Duration = Duration::from_millis(100);
const BETWEEN_KEYS: Duration = Duration::from_millis(160);

struct Timeline(Instant);

impl Timeline {
    fn say(&self, what: impl AsRef<str>) {
        println!(
            "{:>7.3}s  {}",
            self.0.elapsed().as_secs_f64(),
            what.as_ref()
        );
    }
}

/// Runs the call; exit 0 when it was answered and ended normally.
pub fn run(args: CallArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nida call: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(call(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("nida call: {e}");
            ExitCode::from(2)
        }
    }
}

fn destination(uri: &str) -> Result<SocketAddr, CliError> {
    let rest = uri.strip_prefix("sip:").ok_or_else(|| CliError::Option {
        option: "URI",
        value: uri.into(),
        hint: "give a sip: URI",
    })?;
    let hostport = rest.rsplit('@').next().unwrap_or(rest);
    let hostport = hostport.split(';').next().unwrap_or(hostport);
    let with_port = if hostport.contains(':') && !hostport.ends_with(']') {
        hostport.to_string()
    } else {
        format!("{hostport}:5060")
    };
    with_port
        .to_socket_addrs()
        .map_err(CliError::io(&with_port))?
        .next()
        .ok_or_else(|| CliError::NotFound(format!("{with_port}: no address")))
}

/// The keys still to press and what the caller has heard since the last
/// group: a prompt is over when the far end has been quiet for `gap`.
#[derive(Default)]
struct Keypad {
    groups: VecDeque<String>,
    keys: VecDeque<(Instant, char)>,
    heard: bool,
    heard_at: Option<Instant>,
    quiet_since: Option<Instant>,
}

impl Keypad {
    fn new(digits: Option<&str>) -> Keypad {
        Keypad {
            groups: digits
                .unwrap_or_default()
                .split(',')
                .map(|g| g.trim().to_string())
                .filter(|g| !g.is_empty())
                .collect(),
            ..Keypad::default()
        }
    }

    /// What comes next counts as a new prompt.
    fn listen_again(&mut self) {
        self.heard = false;
        self.heard_at = None;
        self.quiet_since = None;
    }

    /// A frame of received audio.
    fn on_audio(&mut self, now: Instant, frame: &[i16]) {
        if frame.is_empty() {
            return;
        }
        if frame.iter().any(|v| v.unsigned_abs() >= QUIET as u16) {
            self.heard = true;
            self.heard_at.get_or_insert(now);
            self.quiet_since = None;
        } else if self.heard && self.quiet_since.is_none() {
            self.quiet_since = Some(now);
        }
    }

    fn done(&self) -> bool {
        self.groups.is_empty() && self.keys.is_empty()
    }
}

/// The call in progress: the SIP endpoint, the media once answered, and
/// the caller's keys.
struct Caller {
    args: CallArgs,
    tl: Timeline,
    ep: Endpoint,
    handle: nida_sip::CallHandle,
    codecs: [Codec; 2],
    seed: u64,
    voice: Option<std::sync::Arc<nida_media::Prompt>>,
    rtp: Option<RtpSession>,
    keypad: Keypad,
    deadline: Instant,
    answered: bool,
    ended: Option<EndReason>,
    hung_up: bool,
}

impl Caller {
    fn hang_up(&mut self, now: Instant, why: &str) {
        if !self.hung_up {
            self.tl.say(why);
            self.ep.hangup(now, self.handle);
            self.hung_up = true;
        }
    }

    /// The call was answered with this SDP: start the media.
    fn on_answer(&mut self, now: Instant, sd: &sdp::SessionDescription) {
        let Some(n) = sdp::negotiate(sd, &self.codecs, false) else {
            self.tl.say("answered without usable audio: hanging up");
            self.ep.hangup(now, self.handle);
            return;
        };
        self.tl
            .say(format!("answered: {} to {}", n.codec.name(), n.remote));
        let law = law_of(n.codec);
        self.answered = true;
        let seed = self.seed;
        let mut session = RtpSession::new(
            now,
            SessionConfig {
                law,
                telephone_event: n.telephone_event.or(Some(101)),
                ssrc: (seed >> 32) as u32,
                initial_seq: seed as u16,
                initial_ts: (seed >> 16) as u32,
                remote: n.remote,
                rtp_timeout: Duration::from_secs(3600),
                keep_audio: true,
            },
        );
        if let Some(v) = &self.voice {
            session.play(v.clone());
        }
        self.rtp = Some(session);
    }

    fn on_event(&mut self, now: Instant, ev: Event) {
        match ev {
            Event::Progress { status, .. } => self.tl.say(format!("{status} (ringing)")),
            Event::Answered { sdp: Some(sd), .. } => self.on_answer(now, &sd),
            Event::Answered { sdp: None, .. } => {
                self.tl.say("answered without SDP: hanging up");
                self.ep.hangup(now, self.handle);
            }
            Event::Ended { reason, .. } => {
                self.tl.say(format!("ended: {reason:?}"));
                self.ended = Some(reason);
            }
            Event::Refer { call, .. } => {
                self.tl.say("asked to transfer: declined");
                self.ep.notify_refer(now, call, 603, "Declined");
            }
            Event::Media { media: n, .. } => {
                self.tl.say(format!(
                    "media now {} to {} ({:?})",
                    n.codec.name(),
                    n.remote,
                    n.direction
                ));
                if let Some(r) = self.rtp.as_mut() {
                    r.set_remote(now, n.remote);
                    r.set_codec(law_of(n.codec), n.telephone_event.or(Some(101)));
                    r.set_ptime(Duration::from_millis(u64::from(n.ptime)));
                    r.set_direction(now, n.direction.sends(), false);
                }
            }
            Event::Incoming(_)
            | Event::Dtmf { .. }
            | Event::Confirmed { .. }
            | Event::Registered(_)
            | Event::Unregistered { .. }
            | Event::AuthFailed { .. }
            | Event::AuthSucceeded { .. }
            | Event::Response { .. } => {}
        }
    }

    /// Presses the keys that are due, and starts the next group when the
    /// prompt is over (or when barging in).
    fn press_keys(&mut self, now: Instant) {
        let Some(r) = self.rtp.as_mut() else { return };
        let kp = &mut self.keypad;
        while kp.keys.front().is_some_and(|(at, _)| *at <= now) {
            let Some((_, k)) = kp.keys.pop_front() else {
                break;
            };
            if self.args.inband {
                r.play(std::sync::Arc::new(dtmf_tone(k)));
            } else {
                r.send_dtmf(k, TONE);
            }
            if let (true, Some(after)) = (kp.done(), self.args.hang_up_after) {
                self.deadline = self.deadline.min(now + TONE + after);
            }
            if kp.keys.is_empty() {
                // What counts as the next prompt is what comes after the
                // last key of this group.
                kp.listen_again();
            }
        }
        let quiet_for = kp.quiet_since.map(|q| now - q).unwrap_or_default();
        let prompt_over = quiet_for >= self.args.gap;
        let waits = kp.groups.front().is_some_and(|g| g.starts_with('w'));
        let barge = match (
            self.args.barge_in,
            kp.heard_at,
            kp.groups.is_empty() || waits,
        ) {
            (Some(b), Some(at), false) => now - at >= b,
            _ => false,
        };
        if !(kp.heard && kp.keys.is_empty() && (prompt_over || barge)) {
            return;
        }
        match kp.groups.pop_front() {
            Some(g) => {
                let g = g.trim_start_matches('w').to_string();
                let why = if prompt_over {
                    "prompt over"
                } else {
                    "barging in"
                };
                self.tl.say(format!("{why}; pressing {g}"));
                for (i, k) in g.chars().enumerate() {
                    kp.keys
                        .push_back((now + (TONE + BETWEEN_KEYS) * i as u32, k));
                }
                kp.listen_again();
            }
            None => self.hang_up(now, "nothing more to press: hanging up"),
        }
    }

    /// The voice loops for the whole call.
    fn media_events(&mut self) {
        let Some(r) = self.rtp.as_mut() else { return };
        while let Some(ev) = r.poll_event() {
            match ev {
                MediaEvent::Latched(a) => self.tl.say(format!("RTP from {a}")),
                MediaEvent::PlaybackFinished => {
                    if let Some(v) = &self.voice {
                        r.play(v.clone());
                    }
                }
                _ => {}
            }
        }
    }

    fn on_deadline(&mut self, now: Instant) {
        if now >= self.deadline {
            let why = if self.args.hang_up_after.is_some() && self.keypad.done() {
                "done after the last keys: hanging up"
            } else {
                "longest call time reached: hanging up"
            };
            self.hang_up(now, why);
        }
    }

    /// When something is next due.
    fn wake(&mut self, now: Instant) -> Instant {
        let mut wake = self.deadline.max(now + Duration::from_millis(1));
        if let Some(t) = self.ep.poll_timeout() {
            wake = wake.min(t);
        }
        if let Some(r) = &self.rtp {
            wake = wake.min(r.poll_timeout());
        }
        if let Some((at, _)) = self.keypad.keys.front() {
            wake = wake.min(*at);
        }
        if self.keypad.quiet_since.is_some() {
            wake = wake.min(now + Duration::from_millis(20));
        }
        wake
    }

    /// Writes what was heard as 8 kHz mono WAV.
    fn record(&self, path: &std::path::Path) -> Result<(), CliError> {
        let Some(r) = &self.rtp else { return Ok(()) };
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let wav = |e: hound::Error| CliError::audio(path)(e.to_string());
        let mut w = hound::WavWriter::create(path, spec).map_err(wav)?;
        for s in r.received_audio() {
            w.write_sample(*s).map_err(wav)?;
        }
        w.finalize().map_err(wav)?;
        self.tl.say(format!("recorded to {}", path.display()));
        Ok(())
    }
}

async fn call(args: CallArgs) -> Result<bool, CliError> {
    let dest = destination(&args.uri)?;
    let any = if dest.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sip = UdpSocket::bind(any).await.map_err(CliError::io(any))?;
    sip.connect(dest).await.map_err(CliError::io(dest))?;
    let local = sip.local_addr().map_err(CliError::io(dest))?;
    let rtp_sock = UdpSocket::bind(SocketAddr::new(local.ip(), 0))
        .await
        .map_err(CliError::io(local.ip()))?;
    let rtp_addr = rtp_sock.local_addr().map_err(CliError::io(local.ip()))?;
    // SDP session id, SSRC, first sequence number and timestamp.
    let seed = nida_sip::rng::Rng::from_os().next_u64();
    let mut ep = Endpoint::new(EndpointConfig {
        local_addr: local,
        timers: Default::default(),
        user_agent: format!("nida-call/{}", env!("CARGO_PKG_VERSION")),
        seed: None,
        session_timer: Default::default(),
    });
    let codecs = [Codec::Pcmu, Codec::Pcma];
    let media = OfferAnswer::new(
        LocalMedia {
            addr: rtp_addr,
            session_id: seed >> 20,
            version: 1,
            srtp: None,
        },
        codecs.to_vec(),
        false,
    )
    .with_telephone_event(!args.inband);
    let voice = match &args.say {
        Some(p) => Some(std::sync::Arc::new(
            nida_media::Prompt::load(p).map_err(|e| CliError::audio(p)(e.to_string()))?,
        )),
        None => None,
    };
    let tl = Timeline(Instant::now());
    let handle = ep.invite(
        Instant::now(),
        Invite {
            uri: args.uri.clone(),
            dest,
            transport: Transport::Udp,
            from_user: args.from.clone(),
            media,
            rel100: false,
        },
    );
    tl.say(format!("INVITE {} from {local}", args.uri));
    let mut c = Caller {
        keypad: Keypad::new(args.digits.as_deref()),
        deadline: Instant::now() + args.max,
        args,
        tl,
        ep,
        handle,
        codecs,
        seed,
        voice,
        rtp: None,
        answered: false,
        ended: None,
        hung_up: false,
    };
    let mut buf = vec![0u8; 65536];
    let mut rtp_buf = vec![0u8; 2048];
    let mut out = [0u8; 1500];
    while c.ended.is_none() {
        let now = Instant::now();
        while let Some(t) = c.ep.poll_transmit() {
            let _ = sip.send(&t.data).await;
        }
        while let Some(ev) = c.ep.poll_event() {
            c.on_event(now, ev);
        }
        if c.ended.is_some() {
            break;
        }
        c.press_keys(now);
        if let Some(r) = c.rtp.as_mut() {
            while let Some(o) = r.poll_transmit(now, &mut out) {
                if o.len > 0 {
                    let _ = rtp_sock.send_to(&out[..o.len], o.dest).await;
                }
            }
        }
        c.media_events();
        c.on_deadline(now);
        let wake = c.wake(now);
        tokio::select! {
            r = sip.recv(&mut buf) => {
                if let Ok(n) = r {
                    c.ep.handle_message(Instant::now(), Transport::Udp, dest, &buf[..n]);
                }
            }
            r = rtp_sock.recv_from(&mut rtp_buf) => {
                if let (Ok((n, from)), Some(s)) = (r, c.rtp.as_mut()) {
                    let before = s.received_audio().len();
                    s.handle_packet(Instant::now(), from, &rtp_buf[..n]);
                    c.keypad.on_audio(Instant::now(), &s.received_audio()[before..]);
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                let now = Instant::now();
                c.ep.handle_timeout(now);
                if let Some(r) = c.rtp.as_mut() { r.handle_timeout(now); }
            }
        }
    }
    // Let the last transactions (the 200 for a BYE) go out.
    while let Some(t) = c.ep.poll_transmit() {
        let _ = sip.send(&t.data).await;
    }
    let heard_samples = c
        .rtp
        .as_ref()
        .map(|r| r.received_audio().len())
        .unwrap_or(0);
    c.tl.say(format!(
        "heard {:.2}s of audio{}",
        heard_samples as f64 / 8000.0,
        if c.keypad.groups.is_empty() {
            ""
        } else {
            "; some keys were never pressed"
        }
    ));
    if let Some(path) = c.args.record.clone() {
        c.record(&path)?;
    }
    Ok(c.answered && matches!(c.ended, Some(EndReason::LocalBye | EndReason::RemoteBye)))
}
