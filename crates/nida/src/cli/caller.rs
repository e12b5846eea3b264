//! `nida call URI`: a test caller for ops. It places a real SIP call (to a
//! running nida or any SIP server), waits for each prompt to finish, presses
//! the keys of each group as RFC 4733 events with realistic gaps, records
//! what it hears to WAV and prints the timeline.

use crate::cli::CliError;
use nida_media::{Law, MediaEvent, RtpSession, SessionConfig};
use nida_sip::sdp::{self, Codec, LocalMedia};
use nida_sip::{EndReason, Endpoint, EndpointConfig, Event, Transport};
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
    /// The caller's number.
    pub from: String,
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
    });
    let codecs = [Codec::Pcmu, Codec::Pcma];
    let offer = sdp::offer(
        &codecs,
        &LocalMedia {
            addr: rtp_addr,
            session_id: seed >> 20,
            version: 1,
            srtp: None,
        },
    );
    let voice = match &args.say {
        Some(p) => Some(std::sync::Arc::new(
            nida_media::Prompt::load(p).map_err(|e| CliError::audio(p)(e.to_string()))?,
        )),
        None => None,
    };
    let tl = Timeline(Instant::now());
    let mut groups: VecDeque<String> = args
        .digits
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(|g| g.trim().to_string())
        .filter(|g| !g.is_empty())
        .collect();
    let handle = ep.invite(
        Instant::now(),
        &args.uri,
        dest,
        Transport::Udp,
        &args.from,
        offer,
    );
    tl.say(format!("INVITE {} from {local}", args.uri));
    let mut deadline = Instant::now() + args.max;
    let mut rtp: Option<RtpSession> = None;
    let mut keys: VecDeque<(Instant, char)> = VecDeque::new();
    let mut heard = false;
    let mut heard_at: Option<Instant> = None;
    let mut quiet_since: Option<Instant> = None;
    let mut answered = false;
    let mut ended: Option<EndReason> = None;
    let mut hung_up = false;
    let mut buf = vec![0u8; 65536];
    let mut rtp_buf = vec![0u8; 2048];
    let mut out = [0u8; 1500];
    while ended.is_none() {
        let now = Instant::now();
        // Drain the SIP endpoint.
        while let Some(t) = ep.poll_transmit() {
            let _ = sip.send(&t.data).await;
        }
        while let Some(ev) = ep.poll_event() {
            match ev {
                Event::Progress { status, .. } => tl.say(format!("{status} (ringing)")),
                Event::Answered { sdp: Some(sd), .. } => {
                    match sdp::negotiate(&sd, &codecs, false) {
                        Some(n) => {
                            tl.say(format!("answered: {} to {}", n.codec.name(), n.remote));
                            let law = if n.codec == Codec::Pcma {
                                Law::A
                            } else {
                                Law::Mu
                            };
                            answered = true;
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
                            if let Some(v) = &voice {
                                session.play(v.clone());
                            }
                            rtp = Some(session);
                        }
                        None => {
                            tl.say("answered without usable audio: hanging up");
                            ep.hangup(now, handle);
                        }
                    }
                }
                Event::Answered { sdp: None, .. } => {
                    tl.say("answered without SDP: hanging up");
                    ep.hangup(now, handle);
                }
                Event::Ended { reason, .. } => {
                    tl.say(format!("ended: {reason:?}"));
                    ended = Some(reason);
                }
                Event::Refer { call, .. } => {
                    tl.say("asked to transfer: declined");
                    ep.notify_refer(now, call, 603, "Declined");
                }
                Event::Incoming(_)
                | Event::Confirmed { .. }
                | Event::Registered(_)
                | Event::Unregistered { .. }
                | Event::AuthFailed { .. }
                | Event::AuthSucceeded { .. }
                | Event::Response { .. } => {}
            }
        }
        if ended.is_some() {
            break;
        }
        // Media: send what is due, press keys when the prompt has finished.
        if let Some(r) = rtp.as_mut() {
            while keys.front().is_some_and(|(at, _)| *at <= now) {
                if let Some((_, k)) = keys.pop_front() {
                    r.send_dtmf(k, TONE);
                    if let (true, true, Some(after)) =
                        (keys.is_empty(), groups.is_empty(), args.hang_up_after)
                    {
                        deadline = deadline.min(now + TONE + after);
                    }
                    if keys.is_empty() {
                        // What counts as the next prompt is what comes after
                        // the last key of this group.
                        heard = false;
                        heard_at = None;
                        quiet_since = None;
                    }
                }
            }
            let quiet_for = quiet_since.map(|q| now - q).unwrap_or_default();
            let prompt_over = quiet_for >= args.gap;
            let waits = groups.front().is_some_and(|g| g.starts_with('w'));
            let barge = match (args.barge_in, heard_at, groups.is_empty() || waits) {
                (Some(b), Some(at), false) => now - at >= b,
                _ => false,
            };
            if heard && keys.is_empty() && (prompt_over || barge) {
                match groups.pop_front() {
                    Some(g) => {
                        let g = g.trim_start_matches('w').to_string();
                        let why = if prompt_over {
                            "prompt over"
                        } else {
                            "barging in"
                        };
                        tl.say(format!("{why}; pressing {g}"));
                        for (i, k) in g.chars().enumerate() {
                            keys.push_back((now + (TONE + BETWEEN_KEYS) * i as u32, k));
                        }
                        heard = false;
                        heard_at = None;
                        quiet_since = None;
                    }
                    None if !hung_up => {
                        tl.say("nothing more to press: hanging up");
                        ep.hangup(now, handle);
                        hung_up = true;
                    }
                    None => {}
                }
            }
            while let Some((n, to)) = r.poll_transmit(now, &mut out) {
                let _ = rtp_sock.send_to(&out[..n], to).await;
            }
            while let Some(ev) = r.poll_event() {
                match ev {
                    MediaEvent::Latched(a) => tl.say(format!("RTP from {a}")),
                    // The voice loops for the whole call.
                    MediaEvent::PlaybackFinished => {
                        if let Some(v) = &voice {
                            r.play(v.clone());
                        }
                    }
                    _ => {}
                }
            }
        }
        if now >= deadline && !hung_up {
            tl.say(
                if args.hang_up_after.is_some() && groups.is_empty() && keys.is_empty() {
                    "done after the last keys: hanging up"
                } else {
                    "longest call time reached: hanging up"
                },
            );
            ep.hangup(now, handle);
            hung_up = true;
        }
        let mut wake = deadline.max(now + Duration::from_millis(1));
        if let Some(t) = ep.poll_timeout() {
            wake = wake.min(t);
        }
        if let Some(r) = &rtp {
            wake = wake.min(r.poll_timeout());
        }
        if let Some((at, _)) = keys.front() {
            wake = wake.min(*at);
        }
        if quiet_since.is_some() {
            wake = wake.min(now + Duration::from_millis(20));
        }
        tokio::select! {
            r = sip.recv(&mut buf) => {
                if let Ok(n) = r {
                    ep.handle_message(Instant::now(), Transport::Udp, dest, &buf[..n]);
                }
            }
            r = rtp_sock.recv_from(&mut rtp_buf) => {
                if let (Ok((n, from)), Some(s)) = (r, rtp.as_mut()) {
                    let before = s.received_audio().len();
                    s.handle_packet(Instant::now(), from, &rtp_buf[..n]);
                    let frame = &s.received_audio()[before..];
                    if !frame.is_empty() {
                        let loud = frame.iter().any(|v| v.unsigned_abs() >= QUIET as u16);
                        if loud {
                            heard = true;
                            heard_at.get_or_insert_with(Instant::now);
                            quiet_since = None;
                        } else if heard && quiet_since.is_none() {
                            quiet_since = Some(Instant::now());
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                let now = Instant::now();
                ep.handle_timeout(now);
                if let Some(r) = rtp.as_mut() { r.handle_timeout(now); }
            }
        }
    }
    // Let the last transactions (the 200 for a BYE) go out.
    while let Some(t) = ep.poll_transmit() {
        let _ = sip.send(&t.data).await;
    }
    let heard_samples = rtp.as_ref().map(|r| r.received_audio().len()).unwrap_or(0);
    tl.say(format!(
        "heard {:.2}s of audio{}",
        heard_samples as f64 / 8000.0,
        if groups.is_empty() {
            ""
        } else {
            "; some keys were never pressed"
        }
    ));
    if let (Some(path), Some(r)) = (&args.record, &rtp) {
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
        tl.say(format!("recorded to {}", path.display()));
    }
    Ok(answered && matches!(ended, Some(EndReason::LocalBye | EndReason::RemoteBye)))
}
