//! A call's life with the contact centre, after its flow asked for an
//! agent: waiting with music on hold and announcements of its place,
//! ringing the agents the routing core offers it to, the bridge to the one
//! who answers (with optional stereo recording), the satisfaction survey
//! after the agent hangs up, and the call record at the end.

use crate::call::{law_of, CallSetup, PortGuard, ToCall};
use crate::centre::{CallInfo, ToCentre};
use crate::config::QueueDef;
use crate::driver::{Dial, LegSetup, ToDriver};
use crate::outbound::Purpose;
use nida_acd::{AgentId, Exit, TaskId};
use nida_ivr::Session;
use nida_media::{Law, RtpSession};
use nida_sip::sdp::{self, Negotiated};
use nida_sip::CallHandle;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// Task ids, unique in the process.
static NEXT_TASK: AtomicU64 = AtomicU64::new(1);

/// An agent being rung.
struct Leg {
    agent: AgentId,
    handle: CallHandle,
    socket: Option<std::net::UdpSocket>,
    _guard: PortGuard,
    answer: Option<Negotiated>,
    /// nida's SRTP key offered to the agent's phone (over TLS).
    srtp: Option<[u8; 30]>,
}

/// The caller talking to an agent (or, after a transfer to a number, to
/// whoever answered there: no agent).
struct Bridge {
    agent: Option<AgentId>,
    handle: CallHandle,
    sock: UdpSocket,
    rtp: RtpSession,
    _guard: PortGuard,
}

/// Stereo WAV of a bridged call: the caller left, the agent right. It is
/// written under `NAME.wav.part` and renamed to `path` once complete, so a
/// nida killed mid-call leaves no half file among the recordings.
struct Recorder {
    writer: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
    left: VecDeque<i16>,
    right: VecDeque<i16>,
    path: PathBuf,
    part: PathBuf,
}

impl Recorder {
    fn create(path: PathBuf) -> Option<Recorder> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).ok()?;
        }
        let mut part = path.clone().into_os_string();
        part.push(".part");
        let part = PathBuf::from(part);
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        match hound::WavWriter::create(&part, spec) {
            Ok(writer) => Some(Recorder {
                writer,
                left: VecDeque::new(),
                right: VecDeque::new(),
                path,
                part,
            }),
            Err(e) => {
                warn!(path = %path.display(), error = %e, "cannot record");
                None
            }
        }
    }

    /// Writes one 20 ms frame from what each side sent (silence for a
    /// side that sent less).
    fn tick(&mut self) {
        for _ in 0..nida_media::rtp::FRAME {
            let l = self.left.pop_front().unwrap_or(0);
            let r = self.right.pop_front().unwrap_or(0);
            if self.writer.write_sample(l).is_err() || self.writer.write_sample(r).is_err() {
                return;
            }
        }
        // A side far ahead (clock drift) is cut back to one frame.
        for q in [&mut self.left, &mut self.right] {
            let excess = q.len().saturating_sub(8 * nida_media::rtp::FRAME);
            q.drain(..excess);
        }
    }

    fn finish(self) -> PathBuf {
        if let Err(e) = self.writer.finalize() {
            warn!(error = %e, "recording not finalised");
        } else if let Err(e) = std::fs::rename(&self.part, &self.path) {
            warn!(error = %e, "recording not renamed to its final name");
        }
        self.path
    }
}

/// The call's state with the centre.
pub struct CentreCall {
    /// The routing core's task while the call waits or talks.
    pub task: Option<TaskId>,
    /// Hang up the caller.
    pub hang_up: bool,
    /// A flow to run next (the survey, a queue's exit flow).
    pub next_flow: Option<String>,
    /// The caller's language.
    pub language: String,
    /// The IVR path before queueing.
    pub path: Vec<String>,
    def: QueueDef,
    info: CallInfo,
    legs: Vec<Leg>,
    bridge: Option<Bridge>,
    recorder: Option<Recorder>,
    recording: Option<PathBuf>,
    music: bool,
    announcing: bool,
    closing: bool,
    in_survey: bool,
    next_announce: Option<Instant>,
    queued_at: Option<Instant>,
    /// When the call first joined a queue (Unix seconds), for the record.
    queued_unix: Option<i64>,
    answered_at: Option<Instant>,
    talk_ended: Option<Instant>,
    agent: Option<AgentId>,
    rating: Option<u8>,
    outcome: &'static str,
    caller_law: Law,
    skills: std::collections::BTreeMap<String, u8>,
    priority: u8,
    callback: Option<Callback>,
    external: Option<Dialback>,
    transfers: Vec<String>,
}

/// A call-back the caller asked for: the task stays in line without the
/// caller; when an agent takes it, nida dials the caller and bridges.
#[derive(Default)]
struct Callback {
    /// Tries so far to reach the caller.
    attempts: u32,
    /// The call to the caller, while it rings.
    dial: Option<Dialback>,
    /// When to queue again after a try the caller did not answer.
    retry_at: Option<Instant>,
    /// No more tries.
    done: bool,
    /// When the caller asked (Unix seconds).
    requested_at: i64,
    /// The number to call: one the caller proved (see
    /// [`CentreCall::callback_number`]).
    number: String,
    /// Its place among the pending call-backs, held (never read) until
    /// the call-back is dropped.
    _booking: Option<nida_call::bookings::Booking>,
}

/// The call to the caller, placed when the agent is on the line.
struct Dialback {
    handle: CallHandle,
    socket: std::net::UdpSocket,
    guard: PortGuard,
    srtp: Option<[u8; 30]>,
}

impl Dialback {
    fn new(l: LegSetup, s: &CallSetup) -> Dialback {
        Dialback {
            handle: l.handle,
            socket: l.socket,
            guard: PortGuard {
                port: l.port,
                driver: s.driver.clone(),
            },
            srtp: l.srtp,
        }
    }
}

/// The audio a leg nida placed agreed to in its answer; when nida offered
/// SRTP (`srtp`, over TLS) the answer must be SRTP too: a phone that
/// answers plain RTP to it (breaking RFC 3264) gets no call.
fn leg_answer(
    s: &CallSetup,
    answer: Option<&sdp::SessionDescription>,
    srtp: Option<[u8; 30]>,
) -> Option<Negotiated> {
    let n = sdp::negotiate(answer?, &s.cfg.codecs, srtp.is_some())?;
    (srtp.is_none() || n.srtp.is_some()).then_some(n)
}

/// Places a call owned by this call (an agent, the caller for a
/// call-back, a transfer's number); `None` when the driver has no RTP
/// port or is gone.
async fn place_call(
    s: &CallSetup,
    target: Dial,
    from_user: String,
    number: Option<(Purpose, String)>,
) -> Option<LegSetup> {
    let (reply, rx) = oneshot::channel();
    let m = ToDriver::Invite {
        target,
        from_user,
        number,
        call_id: s.call_id.clone(),
        owner: s.tx.clone(),
        reply,
    };
    s.driver.send(m).await.ok()?;
    rx.await.ok().flatten()
}

/// The caller answered a call-back: the call goes on on this leg.
pub struct NewCaller {
    /// The leg's handle.
    pub handle: CallHandle,
    /// Its RTP socket.
    pub socket: std::net::UdpSocket,
    /// Its port, given back when the call ends.
    pub guard: PortGuard,
    /// What the caller's phone answered.
    pub negotiated: Negotiated,
    /// nida's SRTP key on this leg, if it is SRTP.
    pub srtp: Option<[u8; 30]>,
}

impl CentreCall {
    /// A call not (yet) queued.
    pub fn new(s: &CallSetup, caller_law: Law) -> CentreCall {
        CentreCall {
            task: None,
            hang_up: false,
            next_flow: None,
            language: s.cfg.language.clone(),
            path: Vec::new(),
            def: QueueDef::default(),
            info: CallInfo::default(),
            legs: Vec::new(),
            bridge: None,
            recorder: None,
            recording: None,
            music: false,
            announcing: false,
            closing: false,
            in_survey: false,
            next_announce: None,
            queued_at: None,
            queued_unix: None,
            answered_at: None,
            talk_ended: None,
            agent: None,
            rating: None,
            outcome: "ivr",
            caller_law,
            skills: Default::default(),
            priority: 0,
            callback: None,
            external: None,
            transfers: Vec::new(),
        }
    }

    /// A call-back stored before a restart: back in its queue, without
    /// the caller, its tries so far counted.
    pub async fn restored(s: &CallSetup, row: &nida_store::CallbackRow) -> CentreCall {
        let mut c = CentreCall::new(s, Law::Mu);
        c.language = row.language.clone();
        c.skills = row.skills.clone();
        c.priority = row.priority;
        c.path = row.path.clone();
        c.def = s.centre.queues.get(&row.queue).cloned().unwrap_or_default();
        c.info = CallInfo {
            call_id: row.call_id.clone(),
            queue: row.queue.clone(),
            language: row.language.clone(),
            path: row.path.clone(),
            vars: row.vars.clone(),
        };
        // The wait counts from the request, not from the restart.
        let waited = Duration::from_secs((unix_now() as i64 - row.requested_at).max(0) as u64);
        let now = Instant::now();
        c.queued_at = Some(now.checked_sub(waited).unwrap_or(now));
        c.queued_unix = Some(row.requested_at);
        c.outcome = "callback_waiting";
        c.callback = Some(Callback {
            attempts: row.attempts,
            requested_at: row.requested_at,
            number: row.number.clone(),
            _booking: s.centre.bookings.book(&row.number).ok(),
            ..Callback::default()
        });
        info!(queue = %row.queue, attempts = row.attempts, "call-back restored after a restart");
        c.join_queue(s).await;
        c
    }

    /// The flow asked for an agent: join the queue, start the music.
    pub async fn enqueue(
        &mut self,
        s: &CallSetup,
        session: &Session,
        q: &nida_ivr::QueueRequest,
        rtp: &mut RtpSession,
    ) {
        let now = Instant::now();
        self.language = q.language.clone();
        self.skills = q.skills.clone();
        self.priority = q.priority;
        self.path = session.path().to_vec();
        self.def = s.centre.queues.get(&q.queue).cloned().unwrap_or_default();
        self.info = CallInfo {
            call_id: s.call_id.clone(),
            queue: q.queue.clone(),
            language: q.language.clone(),
            path: self.path.clone(),
            vars: session
                .vars()
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
        };
        self.queued_at = Some(now);
        self.queued_unix.get_or_insert(unix_now() as i64);
        self.outcome = "queued";
        if self.def.announce_seconds > 0 {
            self.next_announce = Some(now + Duration::from_secs(self.def.announce_seconds));
        }
        self.start_music(s, rtp);
        self.join_queue(s).await;
    }

    /// Sends the call to the routing core as a new task.
    async fn join_queue(&mut self, s: &CallSetup) {
        let task = TaskId(NEXT_TASK.fetch_add(1, Ordering::Relaxed));
        self.task = Some(task);
        let m = ToCentre::Enqueue {
            task,
            call: s.tx.clone(),
            skills: self.skills.clone(),
            priority: self.priority,
            info: self.info.clone(),
        };
        if s.centre.tx.send(m).await.is_err() {
            warn!("contact centre stopped");
        }
        info!(task = task.0, queue = %self.info.queue, "waiting for an agent");
    }

    /// The flow took a call-back request before queueing (its
    /// `callback_offer` node): join the queue without the caller.
    pub async fn enqueue_callback(
        &mut self,
        s: &CallSetup,
        session: &Session,
        queue: &str,
        rtp: &mut RtpSession,
    ) {
        let q = nida_ivr::QueueRequest {
            queue: queue.to_string(),
            skills: Default::default(),
            language: session.language().to_string(),
            priority: 0,
        };
        self.enqueue(s, session, &q, rtp).await;
        // Not booked: the caller stays on the line in the queue instead.
        if self.request_callback(s).await {
            rtp.stop_playback();
            self.music = false;
        }
    }

    /// Books a call-back for the caller: true once it is on disk. False
    /// (logged) when the caller proved no number, a call-back to it waits
    /// already or too many do, or the store did not take it.
    async fn request_callback(&mut self, s: &CallSetup) -> bool {
        let Some(number) = self.callback_number(s) else {
            info!("call-back refused: the caller's number is not proven");
            return false;
        };
        let booking = match s.centre.bookings.book(&number) {
            Ok(b) => b,
            Err(why) => {
                info!(?why, "call-back not booked");
                return false;
            }
        };
        // Boxed: the call's future need not carry this one's state.
        Box::pin(self.start_callback(s, number, booking)).await
    }

    /// The number a call-back may dial: one the caller proved, never the
    /// `From` of an untrusted source (anyone can write any number there,
    /// and nida would dial it through the carrier). Proven are the
    /// identity a trunk asserts (`P-Asserted-Identity` from a trunk's
    /// network) and digits the caller keyed into the flow's
    /// `callback_number` variable. Without a carrier route (no
    /// `outbound_trunk` or `outbound_uri`) nida calls back the SIP address
    /// the call came from, so the caller's own number serves.
    fn callback_number(&self, s: &CallSetup) -> Option<String> {
        if let Some(n) = &s.proven_number {
            return Some(n.clone());
        }
        if let Some(n) = self
            .info
            .vars
            .get("callback_number")
            .filter(|n| !n.is_empty())
        {
            return Some(n.clone());
        }
        (s.cfg.outbound_trunk.is_none() && s.cfg.outbound_uri.is_none()).then(|| s.caller.clone())
    }

    /// A key while waiting: the call-back digit asks for a call-back.
    /// Returns true when the key was taken.
    pub async fn digit(&mut self, s: &CallSetup, d: char, rtp: &mut RtpSession) -> bool {
        if !self.waiting() || self.callback.is_some() || self.closing {
            return false;
        }
        if !self.def.callback_digit.starts_with(d) {
            return false;
        }
        if !self.request_callback(s).await {
            return false;
        }
        info!("caller asked for a call-back, keeping the place in line");
        self.close_with(s, rtp, "callback_thanks");
        true
    }

    /// Books the call-back: true once its request is on disk. Until then
    /// nothing tells the caller it is booked; if the store fails, it is
    /// not (the caller stays in line).
    async fn start_callback(
        &mut self,
        s: &CallSetup,
        number: String,
        booking: nida_call::bookings::Booking,
    ) -> bool {
        let requested_at = unix_now() as i64;
        let row = self.callback_row(s, &number, requested_at, "requested", 0);
        if !s.store.book_callback(row).await {
            warn!("call-back not booked: the store did not take it");
            return false;
        }
        self.callback = Some(Callback {
            requested_at,
            number,
            _booking: Some(booking),
            ..Callback::default()
        });
        self.outcome = "callback_waiting";
        self.next_announce = None;
        true
    }

    /// Stores the call-back's new state.
    fn store_callback(&self, s: &CallSetup, status: &str, attempts: u32) {
        let (requested_at, number) = self
            .callback
            .as_ref()
            .map_or((0, String::new()), |c| (c.requested_at, c.number.clone()));
        s.store
            .callback(self.callback_row(s, &number, requested_at, status, attempts));
    }

    /// The call-back's row in the store.
    fn callback_row(
        &self,
        s: &CallSetup,
        number: &str,
        requested_at: i64,
        status: &str,
        attempts: u32,
    ) -> nida_store::CallbackRow {
        nida_store::CallbackRow {
            call_id: s.call_id.clone(),
            number: number.to_string(),
            source: s.source.to_string(),
            called: s.called.clone(),
            queue: self.info.queue.clone(),
            language: self.info.language.clone(),
            priority: self.priority,
            skills: self.skills.clone(),
            vars: self.info.vars.clone(),
            path: self.path.clone(),
            status: status.to_string(),
            attempts,
            requested_at,
            updated_at: unix_now() as i64,
        }
    }

    /// The caller is back on the line (they answered the call-back).
    pub fn resumed(&mut self) {
        self.hang_up = false;
        self.closing = false;
    }

    /// The caller's line is gone but a call-back keeps the task: the call
    /// waits without the caller (see [`CentreCall::handle_parked`]).
    pub fn parked(&self) -> bool {
        self.callback.as_ref().is_some_and(|c| !c.done)
    }

    fn start_music(&mut self, s: &CallSetup, rtp: &mut RtpSession) {
        rtp.stop_playback();
        match s.prompts.get(&self.language, &self.def.music) {
            Some(p) => {
                rtp.play(p);
                self.music = true;
            }
            None => warn!(prompt = %self.def.music, "music on hold missing"),
        }
    }

    /// Plays prompts now; returns how many were found.
    fn say(&self, s: &CallSetup, rtp: &mut RtpSession, names: &[String]) -> usize {
        rtp.stop_playback();
        let mut n = 0;
        for name in names {
            match s.prompts.get(&self.language, name) {
                Some(p) => {
                    rtp.play(p);
                    n += 1;
                }
                None => warn!(lang = %self.language, prompt = %name, "prompt missing"),
            }
        }
        n
    }

    /// Plays a last prompt, then hangs up.
    fn close_with(&mut self, s: &CallSetup, rtp: &mut RtpSession, prompt: &str) {
        self.music = false;
        self.announcing = false;
        self.closing = true;
        if self.say(s, rtp, &[prompt.to_string()]) == 0 {
            self.hang_up = true;
        }
    }

    /// The next moment the call needs attention.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let retry = self.callback.as_ref().and_then(|c| c.retry_at);
        let announce = self.next_announce.filter(|_| self.waiting());
        [retry, announce].into_iter().flatten().min()
    }

    /// When the agent's RTP is next due (while no caller's RTP paces it).
    pub fn bridge_timeout(&self) -> Option<Instant> {
        self.bridge.as_ref().map(|b| b.rtp.poll_timeout())
    }

    fn waiting(&self) -> bool {
        self.task.is_some() && self.bridge.is_none()
    }

    /// Announcement time: ask the core for the place in line.
    pub async fn handle_timeout(&mut self, now: Instant, s: &CallSetup) {
        let retry = self.callback.as_ref().and_then(|c| c.retry_at);
        if retry.is_some_and(|at| now >= at) {
            if let Some(c) = self.callback.as_mut() {
                c.retry_at = None;
            }
            info!("trying the call-back again: back in line");
            self.join_queue(s).await;
        }
        let (Some(at), Some(task)) = (self.next_announce, self.task) else {
            return;
        };
        if now < at || !self.waiting() {
            return;
        }
        self.next_announce = Some(now + Duration::from_secs(self.def.announce_seconds));
        let _ = s.centre.tx.send(ToCentre::Position(task)).await;
    }

    /// A prompt ended; returns true when the centre consumed the event.
    pub fn playback_done(&mut self, s: &CallSetup, rtp: &mut RtpSession) -> bool {
        if self.closing {
            self.hang_up = true;
            return true;
        }
        if !self.waiting() {
            return false;
        }
        // After an announcement, or at the end of the loop: music again.
        self.announcing = false;
        self.start_music(s, rtp);
        true
    }

    /// The socket of the bridged agent, to read from.
    pub fn bridge_socket(&self) -> Option<&UdpSocket> {
        self.bridge.as_ref().map(|b| &b.sock)
    }

    /// The caller's RTP arrived: relay it to the agent.
    pub fn relay_caller(&mut self, rtp: &mut RtpSession) {
        let Some(b) = self.bridge.as_mut() else {
            return;
        };
        let data = rtp.take_received();
        b.rtp.push_audio(rtp.law(), &data);
        if let Some(r) = self.recorder.as_mut() {
            r.left.extend(rtp.law().decode(&data));
        }
    }

    /// The agent's RTP arrived: relay it to the caller.
    pub fn relay_agent(
        &mut self,
        now: Instant,
        from: SocketAddr,
        pkt: &[u8],
        rtp: &mut RtpSession,
    ) {
        let Some(b) = self.bridge.as_mut() else {
            return;
        };
        b.rtp.handle_packet(now, from, pkt);
        let data = b.rtp.take_received();
        rtp.push_audio(b.rtp.law(), &data);
        if let Some(r) = self.recorder.as_mut() {
            r.right.extend(b.rtp.law().decode(&data));
        }
    }

    /// One caller frame went out: one recorded frame.
    pub fn tick_recording(&mut self) {
        if let Some(r) = self.recorder.as_mut() {
            r.tick();
        }
    }

    /// Sends the agent's due RTP; an agent whose RTP stopped is dropped.
    pub async fn transmit_agent(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        driver: &mpsc::Sender<ToDriver>,
    ) {
        let Some(b) = self.bridge.as_mut() else {
            return;
        };
        while let Some((n, dest)) = b.rtp.poll_transmit(now, buf) {
            if let Err(e) = b.sock.send_to(&buf[..n], dest).await {
                debug!(error = %e, %dest, "agent RTP send failed");
            }
        }
        b.rtp.handle_timeout(now);
        while let Some(ev) = b.rtp.poll_event() {
            if ev == nida_media::MediaEvent::Timeout {
                warn!(
                    agent = ?b.agent.map(|a| a.0),
                    "no RTP from the agent: hanging up the agent"
                );
                // The leg's end comes back as AgentEnded.
                let _ = driver.send(ToDriver::Hangup(b.handle)).await;
            }
        }
    }

    /// A message from the centre or about an agent leg.
    pub async fn handle(&mut self, s: &CallSetup, m: ToCall, rtp: &mut RtpSession) {
        if let ToCall::Transfer { handle, target } = m {
            self.transfer(s, handle, &target, rtp).await;
            return;
        }
        let Some(m) = self.handle_external(s, m, rtp).await else {
            return;
        };
        let Some(task) = self.task else {
            // Not waiting (any more): refuse what the core still sends.
            match m {
                ToCall::Offer { agent, .. } => {
                    debug!(agent = agent.0, "offer for a call no longer waiting")
                }
                ToCall::AgentAnswered { handle, .. } => {
                    let _ = s.driver.send(ToDriver::Hangup(handle)).await;
                }
                _ => {}
            }
            return;
        };
        let centre = |m: ToCentre| {
            let tx = s.centre.tx.clone();
            async move {
                let _ = tx.send(m).await;
            }
        };
        match m {
            ToCall::Offer {
                agent,
                target,
                name,
            } => {
                if self.bridge.is_some() {
                    centre(ToCentre::Reject(agent, task)).await;
                    return;
                }
                info!(agent = agent.0, %name, uri = %target.uri, "ringing agent");
                match place_call(s, Dial::Target(target), s.caller.clone(), None).await {
                    Some(l) => self.legs.push(Leg {
                        agent,
                        handle: l.handle,
                        socket: Some(l.socket),
                        _guard: PortGuard {
                            port: l.port,
                            driver: s.driver.clone(),
                        },
                        answer: None,
                        srtp: l.srtp,
                    }),
                    None => centre(ToCentre::Reject(agent, task)).await,
                }
            }
            ToCall::AgentProgress { handle, status } => {
                debug!(handle = handle.0, status, "agent phone progress")
            }
            ToCall::AgentAnswered { handle, sdp } => {
                let Some(leg) = self.legs.iter_mut().find(|l| l.handle == handle) else {
                    let _ = s.driver.send(ToDriver::Hangup(handle)).await;
                    return;
                };
                match leg_answer(s, sdp.as_ref(), leg.srtp) {
                    Some(n) => {
                        leg.answer = Some(n);
                        info!(agent = leg.agent.0, "agent answered");
                        centre(ToCentre::Accept(leg.agent, task)).await;
                    }
                    None => {
                        warn!(agent = leg.agent.0, "agent answered without usable audio");
                        let agent = leg.agent;
                        self.drop_leg(s, handle).await;
                        centre(ToCentre::Reject(agent, task)).await;
                    }
                }
            }
            ToCall::Connected(agent) => {
                let Some(i) = self
                    .legs
                    .iter()
                    .position(|l| l.agent == agent && l.answer.is_some())
                else {
                    warn!(agent = agent.0, "connected to an agent whose leg is gone");
                    centre(ToCentre::Complete(task)).await;
                    return;
                };
                let mut leg = self.legs.remove(i);
                let n = leg.answer.take().expect("checked above");
                let Some(sock) = leg
                    .socket
                    .take()
                    .and_then(|sk| UdpSocket::from_std(sk).ok())
                else {
                    let _ = s.driver.send(ToDriver::Hangup(leg.handle)).await;
                    centre(ToCentre::Complete(task)).await;
                    return;
                };
                self.answered_at = Some(Instant::now());
                self.agent = Some(agent);
                self.outcome = "answered";
                if self.def.record {
                    let path = recording_path(&s.cfg.data_dir);
                    self.recorder = Recorder::create(path);
                }
                let media = (n, leg.srtp);
                self.start_bridge(s, Some(agent), leg.handle, sock, leg._guard, &media, rtp);
            }
            ToCall::Withdraw(agent) => {
                let handles: Vec<CallHandle> = self
                    .legs
                    .iter()
                    .filter(|l| l.agent == agent)
                    .map(|l| l.handle)
                    .collect();
                for h in handles {
                    debug!(agent = agent.0, "offer withdrawn: cancelling");
                    self.drop_leg(s, h).await;
                }
            }
            ToCall::AgentEnded { handle, reason } => {
                if self.bridge.as_ref().is_some_and(|b| b.handle == handle) {
                    let b = self.bridge.take().expect("checked");
                    info!(agent = ?b.agent.map(|a| a.0), ?reason, "agent hung up");
                    self.talk_ended = Some(Instant::now());
                    self.task = None;
                    rtp.set_relay(false);
                    centre(ToCentre::Complete(task)).await;
                    self.end_recording();
                    match self.def.survey_flow.clone() {
                        Some(f) => {
                            self.in_survey = true;
                            self.next_flow = Some(f);
                        }
                        None => self.hang_up = true,
                    }
                } else if let Some(i) = self.legs.iter().position(|l| l.handle == handle) {
                    let leg = self.legs.remove(i);
                    info!(agent = leg.agent.0, ?reason, "agent did not take the call");
                    centre(ToCentre::Reject(leg.agent, task)).await;
                }
            }
            ToCall::Position { place, wait } => {
                if !self.waiting() || self.announcing || self.callback.is_some() {
                    return;
                }
                let minutes = wait.as_secs().div_ceil(60).max(1);
                let mut names = vec!["queue_position".to_string()];
                names.extend(nida_ivr::say::number(&self.language, place as u64));
                names.push("queue_in_line".into());
                names.push("queue_wait".into());
                names.extend(nida_ivr::say::number(&self.language, minutes));
                names.push("queue_minutes".into());
                if self.def.callback_digit == "1" {
                    names.push("queue_callback_hint".into());
                }
                info!(place, minutes, "announcing place in line");
                self.music = false;
                self.announcing = self.say(s, rtp, &names) > 0;
                if !self.announcing {
                    self.start_music(s, rtp);
                }
            }
            ToCall::Exit(exit) => {
                self.task = None;
                self.cancel_legs(s).await;
                info!(?exit, "longest wait reached");
                match exit {
                    Exit::Callback => {
                        // Called back as if they had pressed the digit,
                        // ahead of callers who have not waited that long.
                        let priority = self.priority;
                        self.priority = priority.saturating_add(1);
                        if self.request_callback(s).await {
                            self.close_with(s, rtp, "callback_thanks");
                            self.join_queue(s).await;
                        } else {
                            self.priority = priority;
                            self.outcome = "callback_unavailable";
                            self.close_with(s, rtp, "goodbye");
                        }
                    }
                    Exit::Voicemail => {
                        self.outcome = "voicemail_unavailable";
                        self.close_with(s, rtp, "goodbye");
                    }
                    Exit::Flow(f) => {
                        self.outcome = "exit_flow";
                        self.music = false;
                        rtp.stop_playback();
                        self.next_flow = Some(f);
                    }
                    Exit::Queue(_) => {}
                }
            }
            ToCall::Refused => {
                self.task = None;
                self.outcome = "refused";
                self.cancel_legs(s).await;
                self.close_with(s, rtp, "goodbye");
            }
            ToCall::Confirmed(_) | ToCall::Ended(_) | ToCall::Transfer { .. } => {}
        }
    }

    /// A message while the call waits for its call-back without the
    /// caller. Returns the caller's new leg when they answer the call-back.
    pub async fn handle_parked(
        &mut self,
        s: &CallSetup,
        m: ToCall,
        rtp: &mut RtpSession,
    ) -> Option<NewCaller> {
        let dialling = self
            .callback
            .as_ref()
            .and_then(|c| c.dial.as_ref())
            .map(|d| d.handle);
        match m {
            ToCall::Connected(agent) => {
                self.handle(s, ToCall::Connected(agent), rtp).await;
                if self.bridge.is_some() {
                    self.dial_caller(s).await;
                }
            }
            ToCall::AgentProgress { handle, status } if Some(handle) == dialling => {
                debug!(status, "call-back: caller's phone progress");
            }
            ToCall::AgentAnswered { handle, sdp } if Some(handle) == dialling => {
                let c = self.callback.as_mut()?;
                let d = c.dial.take()?;
                match leg_answer(s, sdp.as_ref(), d.srtp) {
                    Some(negotiated) => {
                        // The call-back is made: from here on the call ends
                        // like any other. Stored at once, so a restart
                        // before the call's end does not dial it again.
                        c.done = true;
                        let attempts = c.attempts + 1;
                        info!(
                            caller_codec = negotiated.codec.name(),
                            "call-back answered: caller and agent bridged"
                        );
                        self.outcome = "answered";
                        self.store_callback(s, "answered", attempts);
                        self.caller_law = law_of(negotiated.codec);
                        return Some(NewCaller {
                            handle: d.handle,
                            socket: d.socket,
                            guard: d.guard,
                            negotiated,
                            srtp: d.srtp,
                        });
                    }
                    None => {
                        warn!("call-back answered without usable audio");
                        let _ = s.driver.send(ToDriver::Hangup(d.handle)).await;
                        self.callback_missed(s, "no usable audio").await;
                    }
                }
            }
            ToCall::AgentEnded { handle, reason } if Some(handle) == dialling => {
                if let Some(c) = self.callback.as_mut() {
                    c.dial = None;
                }
                self.callback_missed(s, &format!("{reason:?}")).await;
            }
            ToCall::AgentEnded { handle, reason }
                if self.bridge.as_ref().is_some_and(|b| b.handle == handle) =>
            {
                // The agent left before the caller answered: try again
                // with the next agent, at the head of the line.
                info!(?reason, "agent left during the call-back: back in line");
                self.bridge = None;
                self.recorder = None;
                if let Some(d) = self.callback.as_mut().and_then(|c| c.dial.take()) {
                    let _ = s.driver.send(ToDriver::Hangup(d.handle)).await;
                }
                if let Some(task) = self.task.take() {
                    let _ = s.centre.tx.send(ToCentre::Complete(task)).await;
                }
                self.join_queue(s).await;
            }
            ToCall::Exit(exit) => {
                // The caller is not waiting on the line: a call-back stays
                // in line whatever the queue's longest wait.
                debug!(?exit, "call-back past the longest wait: in line again");
                self.task = None;
                self.cancel_legs(s).await;
                self.join_queue(s).await;
            }
            ToCall::Refused => {
                self.task = None;
                self.finish_callback(s, "refused");
            }
            ToCall::Ended(_) | ToCall::Position { .. } | ToCall::Confirmed(_) => {}
            other => self.handle(s, other, rtp).await,
        }
        None
    }

    /// Dials the caller for the agent now on the line.
    async fn dial_caller(&mut self, s: &CallSetup) {
        let number = self
            .callback
            .as_ref()
            .map_or_else(String::new, |c| c.number.clone());
        let checked = Some((Purpose::Callback, number.clone()));
        let leg = if let Some(trunk) = &s.cfg.outbound_trunk {
            info!(%trunk, "call-back: dialling the caller through the trunk");
            let dial = Dial::Trunk {
                trunk: trunk.clone(),
                number,
            };
            place_call(s, dial, s.called.clone(), checked).await
        } else {
            let (uri, checked) = match &s.cfg.outbound_uri {
                Some(t) => (t.replace("{number}", &number), checked),
                // Back to the SIP address the call came from.
                None => (format!("sip:{number}@{}", s.source), None),
            };
            match crate::centre::static_target(&uri) {
                Some(target) => {
                    info!(uri = %crate::redact::Redacted::new(&uri, s.cfg.log_caller_numbers), "call-back: dialling the caller");
                    place_call(s, Dial::Target(target), s.called.clone(), checked).await
                }
                None => {
                    warn!(uri = %crate::redact::Redacted::new(&uri, s.cfg.log_caller_numbers), "call-back address is not sip:user@ip:port");
                    None
                }
            }
        };
        match (leg, self.callback.as_mut()) {
            (Some(l), Some(c)) => c.dial = Some(Dialback::new(l, s)),
            _ => self.callback_missed(s, "cannot dial").await,
        }
    }

    /// The caller did not answer a call-back: the agent is freed, and the
    /// call goes back in line after the retry time (or gives up).
    async fn callback_missed(&mut self, s: &CallSetup, why: &str) {
        if let Some(b) = self.bridge.take() {
            let _ = s.driver.send(ToDriver::Hangup(b.handle)).await;
        }
        self.recorder = None;
        self.agent = None;
        self.answered_at = None;
        if let Some(task) = self.task.take() {
            let _ = s.centre.tx.send(ToCentre::Complete(task)).await;
        }
        self.outcome = "callback_waiting";
        let Some(c) = self.callback.as_mut() else {
            return;
        };
        c.attempts += 1;
        let attempts = c.attempts;
        info!(attempts, %why, "call-back not answered");
        if attempts < self.def.callback_attempts {
            c.retry_at =
                Some(Instant::now() + Duration::from_secs(self.def.callback_retry_seconds));
            self.store_callback(s, "not_answered", attempts);
        } else {
            self.finish_callback(s, "failed");
        }
    }

    fn finish_callback(&mut self, s: &CallSetup, status: &'static str) {
        let Some(c) = self.callback.as_mut() else {
            return;
        };
        c.done = true;
        let attempts = c.attempts;
        self.outcome = if status == "failed" {
            "callback_failed"
        } else {
            "callback_refused"
        };
        self.store_callback(s, status, attempts);
    }

    /// Bridges the caller to an answered leg.
    #[allow(clippy::too_many_arguments)]
    fn start_bridge(
        &mut self,
        s: &CallSetup,
        agent: Option<AgentId>,
        handle: CallHandle,
        sock: UdpSocket,
        guard: PortGuard,
        (n, srtp): &(Negotiated, Option<[u8; 30]>),
        rtp: &mut RtpSession,
    ) {
        let mut agent_rtp = crate::call::leg_rtp(Instant::now(), s, n, *srtp);
        agent_rtp.set_relay(true);
        rtp.stop_playback();
        rtp.set_relay(true);
        self.music = false;
        self.announcing = false;
        info!(
            agent = %agent.map_or("external".to_string(), |a| a.0.to_string()),
            caller_codec = ?self.caller_law,
            agent_codec = n.codec.name(),
            "bridged"
        );
        self.bridge = Some(Bridge {
            agent,
            handle,
            sock,
            rtp: agent_rtp,
            _guard: guard,
        });
    }

    /// The bridged agent asked to transfer the caller (REFER): to a queue
    /// by its name, or to a number. The agent is told the result (NOTIFY)
    /// and released; a transfer nida cannot make leaves the call as it is.
    async fn transfer(
        &mut self,
        s: &CallSetup,
        handle: CallHandle,
        target: &str,
        rtp: &mut RtpSession,
    ) {
        let notify = |status: u16, reason: &'static str| {
            let d = s.driver.clone();
            async move {
                let _ = d.send(ToDriver::NotifyRefer(handle, status, reason)).await;
            }
        };
        let ours = self.bridge.as_ref().is_some_and(|b| b.handle == handle);
        let (true, Some(task)) = (ours, self.task) else {
            warn!(target = %crate::redact::Redacted::new(target, s.cfg.log_caller_numbers), "transfer asked by a leg not bridged to an agent: declined");
            notify(603, "Declined").await;
            return;
        };
        let user = nida_sip::headers::SipUri::parse(target)
            .and_then(|u| u.user)
            .unwrap_or_default();
        let to_queue = s.centre.queues.get(&user).cloned();
        let to_number = match &to_queue {
            Some(_) => None,
            None => external_target(s, target, &user),
        };
        if to_queue.is_none() && to_number.is_none() {
            warn!(target = %crate::redact::Redacted::new(target, s.cfg.log_caller_numbers), "transfer to no queue and no reachable number: refused");
            notify(404, "Not Found").await;
            return;
        }
        notify(200, "OK").await;
        let b = self.bridge.take().expect("checked");
        // A queue's name is no personal data; a number is.
        let shown = if to_queue.is_some() {
            crate::redact::Redacted::new(&user, true)
        } else {
            crate::redact::Redacted::new(&user, s.cfg.log_caller_numbers)
        };
        info!(agent = %b.agent.map_or(0, |a| a.0), to = %shown, "blind transfer");
        let _ = s.driver.send(ToDriver::Hangup(b.handle)).await;
        let _ = s.centre.tx.send(ToCentre::Complete(task)).await;
        self.task = None;
        self.talk_ended = Some(Instant::now());
        rtp.set_relay(false);
        self.end_recording();
        self.transfers.push(user.clone());
        match (to_queue, to_number) {
            (Some(def), _) => {
                self.info.queue = user;
                self.def = def;
                self.outcome = "queued";
                self.start_music(s, rtp);
                self.join_queue(s).await;
            }
            (None, Some(t)) => {
                self.outcome = "transferred";
                self.start_music(s, rtp);
                let number = match &t {
                    Dial::Trunk { number, .. } => Some((Purpose::Transfer, number.clone())),
                    Dial::Target(_) if s.cfg.outbound_uri.is_some() => {
                        Some((Purpose::Transfer, user.clone()))
                    }
                    Dial::Target(_) => None,
                };
                match place_call(s, t, s.caller.clone(), number).await {
                    Some(l) => self.external = Some(Dialback::new(l, s)),
                    None => self.transfer_failed(s).await,
                }
            }
            (None, None) => unreachable!("checked above"),
        }
    }

    /// A transfer to a number could not be made: back to the queue the
    /// call came from, so the caller is not lost.
    async fn transfer_failed(&mut self, s: &CallSetup) {
        warn!("transfer to a number failed: back in line");
        self.outcome = "queued";
        self.join_queue(s).await;
    }

    /// Messages about a transfer to a number; gives back the others.
    async fn handle_external(
        &mut self,
        s: &CallSetup,
        m: ToCall,
        rtp: &mut RtpSession,
    ) -> Option<ToCall> {
        let dialling = self.external.as_ref().map(|d| d.handle);
        let bridged = self
            .bridge
            .as_ref()
            .filter(|b| b.agent.is_none())
            .map(|b| b.handle);
        match m {
            ToCall::AgentProgress { handle, status } if Some(handle) == dialling => {
                debug!(status, "transfer: far end progress");
            }
            ToCall::AgentAnswered { handle, sdp } if Some(handle) == dialling => {
                let d = self.external.take()?;
                let n = leg_answer(s, sdp.as_ref(), d.srtp);
                match (n, UdpSocket::from_std(d.socket).ok()) {
                    (Some(n), Some(sock)) => {
                        info!("transfer answered");
                        self.outcome = "transferred";
                        let media = (n, d.srtp);
                        self.start_bridge(s, None, d.handle, sock, d.guard, &media, rtp);
                    }
                    _ => {
                        let _ = s.driver.send(ToDriver::Hangup(d.handle)).await;
                        self.transfer_failed(s).await;
                    }
                }
            }
            ToCall::AgentEnded { handle, reason } if Some(handle) == dialling => {
                info!(?reason, "transfer not answered");
                self.external = None;
                self.transfer_failed(s).await;
            }
            ToCall::AgentEnded { handle, reason } if Some(handle) == bridged => {
                info!(?reason, "the far end of the transfer hung up");
                self.bridge = None;
                rtp.set_relay(false);
                self.hang_up = true;
            }
            other => return Some(other),
        }
        None
    }

    async fn drop_leg(&mut self, s: &CallSetup, handle: CallHandle) {
        self.legs.retain(|l| l.handle != handle);
        let _ = s.driver.send(ToDriver::Hangup(handle)).await;
    }

    async fn cancel_legs(&mut self, s: &CallSetup) {
        for l in std::mem::take(&mut self.legs) {
            let _ = s.driver.send(ToDriver::Hangup(l.handle)).await;
        }
    }

    fn end_recording(&mut self) {
        if let Some(r) = self.recorder.take() {
            self.recording = Some(r.finish());
        }
    }

    /// The caller hung up: the core and the agents learn it.
    pub async fn caller_left(&mut self, s: &CallSetup) {
        if let Some(d) = self.callback.as_mut().and_then(|c| c.dial.take()) {
            let _ = s.driver.send(ToDriver::Hangup(d.handle)).await;
        }
        if let Some(d) = self.external.take() {
            let _ = s.driver.send(ToDriver::Hangup(d.handle)).await;
        }
        if self.task.is_none() {
            if let Some(b) = self.bridge.take() {
                info!("caller hung up: ending the transferred call");
                self.talk_ended = Some(Instant::now());
                let _ = s.driver.send(ToDriver::Hangup(b.handle)).await;
            }
        }
        let Some(task) = self.task.take() else {
            return;
        };
        self.cancel_legs(s).await;
        if let Some(b) = self.bridge.take() {
            info!(agent = ?b.agent.map(|a| a.0), "caller hung up: ending the agent's call");
            self.talk_ended = Some(Instant::now());
            let _ = s.driver.send(ToDriver::Hangup(b.handle)).await;
            let _ = s.centre.tx.send(ToCentre::Complete(task)).await;
        } else {
            info!("caller left the queue");
            self.outcome = "abandoned";
            let _ = s.centre.tx.send(ToCentre::Abandon(task)).await;
        }
        self.end_recording();
    }

    /// The survey flow ended: its `rating`.
    pub fn finish_survey(&mut self, session: &Session) {
        if !self.in_survey {
            return;
        }
        self.rating = session
            .vars()
            .get("rating")
            .and_then(|v| v.to_string().parse().ok())
            .filter(|r| (1..=5).contains(r));
    }

    /// Writes the call record (one JSON line, synced) when the call had
    /// anything to do with the centre.
    pub async fn finish(&mut self, s: &CallSetup) {
        self.caller_left(s).await;
        if self.queued_at.is_none() {
            return;
        }
        let secs = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), Some(b)) => Some(b.saturating_duration_since(a).as_secs_f64()),
            _ => None,
        };
        let record = nida_store::CallRecord {
            id: 0,
            call_id: s.call_id.clone(),
            caller: s.caller.clone(),
            called: s.called.clone(),
            queued_at: self.queued_unix,
            ended_at: unix_now() as i64,
            queue: self.info.queue.clone(),
            language: self.language.clone(),
            outcome: self.outcome.to_string(),
            agent: self.agent.map(|a| a.0),
            wait_seconds: secs(self.queued_at, self.answered_at),
            talk_seconds: secs(self.answered_at, self.talk_ended),
            service_level_seconds: self.def.service_level_seconds as u32,
            rating: self.rating,
            recording: self.recording.as_ref().map(|p| p.display().to_string()),
            callback: self.callback.is_some(),
            callback_attempts: self.callback.as_ref().map(|c| c.attempts),
            path: self.path.clone(),
            vars: self.info.vars.clone(),
            transfers: self.transfers.clone(),
        };
        s.store.call(record).await;
        info!(outcome = self.outcome, rating = ?self.rating, "call record written");
    }
}

/// Where a transfer to `target` (user part `number`) goes: the URI itself
/// when it names another host, else the outbound trunk or route.
fn external_target(s: &CallSetup, target: &str, number: &str) -> Option<Dial> {
    if let Some(t) = crate::centre::static_target(target) {
        if t.dest != s.cfg.sip_addr {
            return Some(Dial::Target(t));
        }
    }
    let dialable = !number.is_empty()
        && number
            .chars()
            .all(|c| c.is_ascii_digit() || c == '+' || c == '*' || c == '#');
    if !dialable {
        return None;
    }
    if let Some(trunk) = &s.cfg.outbound_trunk {
        return Some(Dial::Trunk {
            trunk: trunk.clone(),
            number: number.to_string(),
        });
    }
    let template = s.cfg.outbound_uri.as_ref()?;
    crate::centre::static_target(&template.replace("{number}", number)).map(Dial::Target)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DD` of a Unix time (UTC), for folder names.
pub fn civil_date(unix: u64) -> String {
    // Days to civil date (proleptic Gregorian), after H. Hinnant's
    // published algorithm.
    let z = (unix / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}")
}

/// A new recording's file: today's folder, a random name (the Call-ID is
/// the caller's to choose: any length, any characters); the record links
/// the two.
fn recording_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir
        .join("recordings")
        .join(civil_date(unix_now()))
        .join(format!("{}.wav", nida_sip::rng::os_token()))
}

#[cfg(test)]
mod tests {
    use super::{civil_date, recording_path, Recorder};

    #[test]
    fn a_recording_has_a_random_name_and_its_final_one_only_when_complete() {
        let dir = std::env::temp_dir().join(format!("nida-rec-{}", std::process::id()));
        let path = recording_path(&dir);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(name.len(), 36, "{name}");
        assert!(name.ends_with(".wav"));
        assert!(name[..32].chars().all(|c| c.is_ascii_hexdigit()), "{name}");
        assert_ne!(recording_path(&dir), path);
        let mut r = Recorder::create(path.clone()).expect("the recorder starts");
        r.left.extend([100i16; 160]);
        r.tick();
        let part = path.with_extension("wav.part");
        assert!(
            part.exists() && !path.exists(),
            "only the temporary name while recording"
        );
        assert_eq!(r.finish(), path);
        assert!(path.exists() && !part.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(951_782_400), "2000-02-29");
        assert_eq!(civil_date(1_795_305_600), "2026-11-22");
    }
}
