//! The machine's boundary: what comes in (from the routing core, about
//! legs, from the store), what goes out ([`Output`]), and the typed
//! [`CallEvent`]s the shell logs and counts and the tests assert on.

use crate::leg::LegId;
use crate::target::{Dial, Purpose, Target};
use nida_acd::{AgentId, Exit, TaskId};
use nida_sip::sdp::{Direction, Negotiated, SessionDescription};
use nida_sip::EndReason;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// What a waiting call tells about itself (the agent's screen pop, the
/// live board and the call record).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallInfo {
    /// SIP Call-ID.
    pub call_id: String,
    /// Queue name.
    pub queue: String,
    /// The caller's language.
    pub language: String,
    /// The IVR nodes the caller went through.
    pub path: Vec<String>,
    /// Variables collected in the IVR (application number, ...).
    pub vars: BTreeMap<String, String>,
}

/// The routing core's word about this call.
#[derive(Debug, Clone, PartialEq)]
pub enum FromCentre {
    /// Ring this agent.
    Offer {
        /// The agent.
        agent: AgentId,
        /// Where the agent's phone is.
        target: Target,
        /// The agent's name, for the log.
        name: String,
    },
    /// Stop ringing (or drop) this agent.
    Withdraw(AgentId),
    /// The agent's answer was accepted: bridge.
    Connected(AgentId),
    /// Place in line and estimated wait.
    Position {
        /// 1 is next.
        place: usize,
        /// Estimated wait.
        wait: Duration,
    },
    /// The queue's longest wait is over: leave by this exit.
    Exit(Exit),
    /// The queue would not take the call.
    Refused,
    /// The agent page holds (true) or resumes (false) the caller.
    Hold(bool),
    /// The bridged agent consults a colleague or a number (the caller
    /// is held meanwhile).
    Consult(crate::consult::ConsultTarget),
    /// The agent completes, cancels or joins the consult.
    ConsultAction(crate::consult::ConsultAction),
    /// A supervisor joins the call (nida rings their phone) or, already
    /// in it, changes mode.
    Supervise {
        /// The supervisor's user name.
        supervisor: String,
        /// Where their phone is.
        target: Target,
        /// How they take part.
        mode: SuperviseMode,
    },
}

/// How a supervisor takes part in a call; on the supervisor's phone the
/// keys 4, 5 and 6 switch between the first three, as in Asterisk's
/// ChanSpy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuperviseMode {
    /// Hears the caller and the agent; nobody hears them.
    Listen,
    /// Hears both; only the agent hears them.
    Whisper,
    /// Hears both and both hear them.
    Barge,
    /// Takes the call over: the agent leaves, the supervisor talks to
    /// the caller.
    TakeOver,
}

impl SuperviseMode {
    /// Its name in the API and the record.
    pub fn as_str(self) -> &'static str {
        match self {
            SuperviseMode::Listen => "listen",
            SuperviseMode::Whisper => "whisper",
            SuperviseMode::Barge => "barge",
            SuperviseMode::TakeOver => "take_over",
        }
    }

    /// The mode a name stands for.
    pub fn parse(s: &str) -> Option<SuperviseMode> {
        match s {
            "listen" => Some(SuperviseMode::Listen),
            "whisper" => Some(SuperviseMode::Whisper),
            "barge" => Some(SuperviseMode::Barge),
            "take_over" => Some(SuperviseMode::TakeOver),
            _ => None,
        }
    }

    /// The mode a key on the supervisor's phone picks.
    pub fn from_key(key: char) -> Option<SuperviseMode> {
        match key {
            '4' => Some(SuperviseMode::Listen),
            '5' => Some(SuperviseMode::Whisper),
            '6' => Some(SuperviseMode::Barge),
            _ => None,
        }
    }
}

/// What this call asks of the routing core.
#[derive(Debug, Clone, PartialEq)]
pub enum ToCentre {
    /// Wait for an agent as a new task.
    Enqueue {
        /// The task.
        task: TaskId,
        /// Skills by name and minimum level.
        skills: BTreeMap<String, u8>,
        /// Priority.
        priority: u8,
        /// What the agent sees.
        info: CallInfo,
    },
    /// The caller left before an agent took the call.
    Abandon(TaskId),
    /// The caller chose a call-back at a later time: out of the line
    /// until it is due.
    Reschedule(TaskId),
    /// The agent answered.
    Accept(AgentId, TaskId),
    /// The agent declined, was busy or did not answer.
    Reject(AgentId, TaskId),
    /// The call with the agent is over.
    Complete(TaskId),
    /// Place in line, please.
    Position(TaskId),
    /// An agent consulted (or handed the call) is done with it: they may
    /// be routed calls again.
    ConsultOver(AgentId),
    /// The call is handed to this agent (an attended transfer): their
    /// page shows the caller's data as for an offer.
    HandedTo(AgentId, TaskId),
}

/// What happened on one of the call's legs (the SIP shell's report).
#[derive(Debug, Clone, PartialEq)]
pub enum LegEvent {
    /// The INVITE asked for with [`Output::Dial`] is out; `srtp` is
    /// nida's key when it offered SRTP (over TLS).
    Placed {
        /// nida's SRTP master key and salt on this leg.
        srtp: Option<[u8; 30]>,
    },
    /// The INVITE could not be placed (no RTP port, refused by the
    /// outbound rules, the SIP shell gone).
    PlaceFailed,
    /// A provisional response.
    Progress(u16),
    /// The far end answered, with its SDP.
    Answered(Option<SessionDescription>),
    /// The peer asked to transfer the call (REFER) to this URI.
    Refer(String),
    /// A key the peer sent by SIP INFO (not in the media): taken like an
    /// RFC 4733 key from the same leg.
    Dtmf(char),
    /// An offer and answer inside the leg's dialog (re-INVITE, UPDATE)
    /// changed its media: where to send, the codec, the direction (hold,
    /// resume), the packet time, the peer's SRTP key.
    Media(Negotiated),
    /// The leg is over on the SIP side.
    Ended(EndReason),
}

/// How the store took a call-back request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// On disk.
    Yes,
    /// Not written: the caller must not be told it is booked.
    Failed,
}

/// A call-back's state as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackStatus {
    /// Asked, not yet tried.
    Requested,
    /// Tried, not answered; to be tried again.
    NotAnswered,
    /// The caller answered.
    Answered,
    /// Given up after the last try.
    Failed,
    /// The queue would not take it.
    Refused,
}

impl CallbackStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackStatus::Requested => "requested",
            CallbackStatus::NotAnswered => "not_answered",
            CallbackStatus::Answered => "answered",
            CallbackStatus::Failed => "failed",
            CallbackStatus::Refused => "refused",
        }
    }
}

/// How a call ended for the centre (the record's `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The IVR only; never queued.
    Ivr,
    /// Waiting for an agent.
    Queued,
    /// An agent (or a transfer's far end) took it.
    Answered,
    /// The caller left while waiting.
    Abandoned,
    /// Waiting for a call-back without the caller.
    CallbackWaiting,
    /// The queue's exit offered a call-back that could not be booked.
    CallbackUnavailable,
    /// The caller left a voice message.
    Voicemail,
    /// The queue was closed (and no message was left).
    Closed,
    /// Left by the queue's exit into a flow.
    ExitFlow,
    /// The queue would not take it.
    Refused,
    /// Transferred to a number.
    Transferred,
    /// A notification's message was given (to a person or a machine).
    Notified,
    /// A notification's attempt did not reach anyone.
    NotNotified,
    /// The call-back's tries ran out.
    CallbackFailed,
    /// The queue would not take the call-back.
    CallbackRefused,
}

impl Outcome {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ivr => "ivr",
            Outcome::Queued => "queued",
            Outcome::Answered => "answered",
            Outcome::Abandoned => "abandoned",
            Outcome::CallbackWaiting => "callback_waiting",
            Outcome::CallbackUnavailable => "callback_unavailable",
            Outcome::Voicemail => "voicemail",
            Outcome::Closed => "closed",
            Outcome::ExitFlow => "exit_flow",
            Outcome::Refused => "refused",
            Outcome::Transferred => "transferred",
            Outcome::Notified => "notified",
            Outcome::NotNotified => "not_notified",
            Outcome::CallbackFailed => "callback_failed",
            Outcome::CallbackRefused => "callback_refused",
        }
    }
}

/// Why a call-back was not booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotBooked {
    /// The caller proved no number nida may dial.
    NotProven,
    /// A call-back to this number waits already.
    Duplicate,
    /// Too many call-backs wait.
    Full,
    /// The store did not take it.
    StoreFailed,
}

/// A stereo recording's course: the shell writes it off the async
/// workers.
#[derive(Debug, Clone, PartialEq)]
pub enum Recording {
    /// Start a new file; the shell tells its name with
    /// [`crate::Call::set_recording_name`].
    Start,
    /// 20 ms: interleaved samples, caller left, the other side right.
    Frame(Vec<i16>),
    /// Complete: finalise it under its name.
    Finish,
    /// Never complete (the call-back's caller did not answer): remove it.
    Discard,
}

/// Why nida hangs up the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupCause {
    /// The flow or a last prompt said so.
    Done,
    /// No RTP from the caller.
    NoMedia,
    /// The longest call time.
    MaxDuration,
    /// The far end of a transfer hung up.
    TransferEnded,
}

/// What happened, typed: the shell logs and counts these, tests assert on
/// them.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// A flow started.
    FlowStarted(String),
    /// A notification's number is dialled.
    NoticeDialling {
        /// The notification.
        id: String,
        /// The attempt, from 1.
        attempt: u32,
    },
    /// The notification's attempt reached no one.
    NoticeFailed(crate::notify::Delivery),
    /// The notified number answered.
    NoticeAnswered {
        /// The codec agreed.
        codec: &'static str,
    },
    /// The detector heard an answering machine; its greeting is waited
    /// out.
    NoticeMachine,
    /// The notification's message begins.
    NoticeSpeaking {
        /// Who hears it.
        by: crate::amd::AnsweredBy,
        /// Seconds after the answer.
        after: f64,
    },
    /// The queue's calendar says it is closed.
    QueueClosed(String),
    /// The voicemail greeting plays (for this queue).
    VoicemailGreeting(String),
    /// The beep ended: the message is recorded.
    VoicemailRecording,
    /// The message held no voice: discarded.
    VoicemailEmpty,
    /// A message was kept.
    VoicemailLeft {
        /// The queue it is for.
        queue: String,
        /// Its length.
        seconds: f64,
    },
    /// A flow to run does not exist.
    FlowMissing(String),
    /// A flow ended.
    FlowEnded {
        /// The nodes it went through.
        path: Vec<String>,
        /// How.
        outcome: nida_ivr::Outcome,
    },
    /// A prompt to play is not in the store.
    PromptMissing {
        /// Language.
        lang: String,
        /// Name.
        name: String,
    },
    /// Prompts started.
    Playing(Vec<String>),
    /// A key from the caller, with all keys so far.
    Digit {
        /// The key.
        digit: char,
        /// Every key of the call so far.
        digits: String,
    },
    /// The flow handed the call to a queue.
    QueuedByFlow {
        /// Queue.
        queue: String,
        /// Language.
        language: String,
        /// Priority.
        priority: u8,
    },
    /// The flow took a call-back request.
    CallbackAsked(String),
    /// The call joined the routing core as `task`.
    Waiting {
        /// The task.
        task: TaskId,
        /// Queue.
        queue: String,
    },
    /// Place and wait announced.
    Announced {
        /// 1 is next.
        place: usize,
        /// Minutes, rounded up.
        minutes: u64,
    },
    /// Ringing an agent.
    Ringing {
        /// The agent.
        agent: AgentId,
        /// Their name.
        name: String,
        /// Their phone.
        uri: String,
    },
    /// A leg nida placed got a provisional response.
    Progress {
        /// The leg.
        leg: LegId,
        /// Its status.
        status: u16,
    },
    /// An agent answered.
    AgentAnswered(AgentId),
    /// An agent answered with no audio nida can use.
    AgentUnusable(AgentId),
    /// An agent's leg ended before the bridge.
    AgentMissed {
        /// The agent.
        agent: AgentId,
        /// Why.
        reason: EndReason,
    },
    /// The core withdrew an offer.
    OfferWithdrawn(AgentId),
    /// The caller talks to an agent (`None`: a transfer's far end).
    Bridged {
        /// The agent.
        agent: Option<AgentId>,
        /// The caller's codec.
        caller_codec: &'static str,
        /// The other side's codec.
        other_codec: &'static str,
    },
    /// The agent consults (the caller is held).
    Consulting {
        /// The consulting agent.
        agent: Option<AgentId>,
        /// `agent:N` or the number.
        to: String,
    },
    /// The colleague consulted answered.
    ConsultAnswered,
    /// The consult ended without a transfer: back to the caller.
    ConsultEnded,
    /// The caller, the agent and the colleague are in one call.
    ThreeWay,
    /// The agent's other phone took the agent's leg (Replaces).
    LegReplaced(Option<AgentId>),
    /// The caller was handed to the colleague; the first agent left.
    TransferCompleted {
        /// `agent:N` or the number.
        to: String,
    },
    /// A supervisor's phone answered: they are in the call.
    SupervisorJoined {
        /// Their user name.
        supervisor: String,
        /// How.
        mode: SuperviseMode,
    },
    /// The supervisor in the call switched mode.
    SupervisorMode(SuperviseMode),
    /// The supervisor left (hung up, or could not be reached).
    SupervisorLeft,
    /// The supervisor took the call over; the agent left it.
    TakenOver(AgentId),
    /// The caller is on hold: the music plays to them.
    Held {
        /// The bridged leg (the agent's).
        leg: LegId,
        /// Held from the agent page (else by the agent's phone).
        by_page: bool,
    },
    /// The caller is back with the agent.
    Resumed {
        /// The bridged leg.
        leg: LegId,
        /// How long this hold lasted.
        held: std::time::Duration,
    },
    /// The bridged agent hung up.
    AgentLeft {
        /// The agent.
        agent: Option<AgentId>,
        /// Why.
        reason: EndReason,
    },
    /// No RTP from the bridged agent: their leg is hung up.
    AgentSilent(Option<AgentId>),
    /// The caller left the queue.
    Abandoned,
    /// The caller hung up while talking.
    CallerLeft,
    /// A call-back is booked, the caller keeps the place in line.
    CallbackBooked,
    /// A call-back was asked and not booked.
    CallbackNotBooked(NotBooked),
    /// A stored call-back is back in its queue after a restart.
    CallbackRestored {
        /// Queue.
        queue: String,
        /// Tries so far.
        attempts: u32,
    },
    /// The call waits in line without the caller.
    Parked,
    /// Another try at the call-back: back in line (or, for one dialled
    /// first, the caller dialled again).
    CallbackRetry,
    /// The caller hears the times they may choose to be called back at.
    CallbackSlotsOffered(Vec<i64>),
    /// The agent keyed a wrap-up code on their phone (`*`, its number in
    /// the queue's list, `#`).
    WrapupKeyed {
        /// The agent.
        agent: AgentId,
        /// The code.
        code: String,
    },
    /// The agent keyed a number that is no wrap-up code of the queue.
    WrapupKeyUnknown {
        /// The agent.
        agent: AgentId,
        /// What they keyed.
        keyed: String,
    },
    /// The caller chose no time the menu offered: they stay in line.
    CallbackSlotNotChosen,
    /// A call-back at a chosen time is booked: out of the line until
    /// then.
    CallbackScheduled {
        /// When it is made (Unix seconds).
        at: i64,
    },
    /// A call-back at a chosen time is due: back in line (agent first)
    /// or the caller dialled (caller first).
    CallbackDue,
    /// A call-back is due while its queue is closed: it waits for the
    /// opening.
    CallbackWaitsForOpening {
        /// The opening (Unix seconds).
        at: i64,
    },
    /// Dialling the caller for the call-back.
    CallbackDialling {
        /// Through this trunk, if any.
        trunk: Option<String>,
        /// The URI, else.
        uri: Option<String>,
    },
    /// The call-back's address is not one nida can dial.
    CallbackUndialable(String),
    /// The caller answered the call-back.
    CallbackAnswered {
        /// The caller's codec.
        codec: &'static str,
    },
    /// The caller did not answer the call-back.
    CallbackMissed {
        /// Tries so far.
        attempts: u32,
        /// Why.
        why: String,
    },
    /// The agent left before the call-back's caller answered.
    CallbackAgentLeft,
    /// The queue's longest wait ran out.
    Exited(Exit),
    /// The queue refused the call.
    Refused,
    /// A transfer was declined (not asked by the bridged agent).
    TransferDeclined(String),
    /// A transfer's target is no queue and no reachable number.
    TransferNotFound(String),
    /// Blind transfer.
    Transferred {
        /// The agent who asked.
        agent: Option<AgentId>,
        /// The queue or number.
        to: String,
        /// To a queue (else a number).
        queue: bool,
    },
    /// The transfer's far end answered.
    TransferAnswered,
    /// A transfer to a number failed: back in line.
    TransferFailed,
    /// A transfer to a number was not answered.
    TransferUnanswered(EndReason),
    /// The far end of a transfer hung up.
    TransferEnded(EndReason),
    /// The peer of a leg said RTCP BYE: it left the media session.
    PeerLeftMedia(LegId),
    /// A leg's first round trip from RTCP: reports flow both ways.
    RoundTrip {
        /// The leg.
        leg: LegId,
        /// The round-trip time.
        rtt: std::time::Duration,
    },
    /// A leg's media source moved (NAT).
    Latched {
        /// The leg.
        leg: LegId,
        /// The new source.
        addr: SocketAddr,
    },
    /// nida hangs up the caller.
    HangingUp(HangupCause),
    /// A prompt (or a loop of music) played to its end on the caller's leg.
    PromptFinished,
    /// A leg's media changed in its dialog (see [`LegEvent::Media`]).
    MediaChanged {
        /// The leg.
        leg: LegId,
        /// Where nida sends now.
        remote: SocketAddr,
        /// The codec now.
        codec: &'static str,
        /// The direction seen from nida (`RecvOnly`: the peer holds).
        direction: Direction,
    },
    /// A leg's media is SRTP.
    MediaSecured {
        /// The leg.
        leg: LegId,
        /// The crypto suite.
        suite: &'static str,
    },
    /// A leg's media closed, with its counters.
    MediaClosed {
        /// The leg.
        leg: LegId,
        /// Who was on it.
        role: crate::leg::Role,
        /// Its counters.
        stats: nida_media::RtpStats,
        /// Its quality from both sides' figures (RTCP).
        quality: nida_media::rtcp::Quality,
        /// RTCP reports sent and received.
        rtcp: (u64, u64),
    },
    /// The call is over.
    Ended {
        /// The outcome.
        outcome: Outcome,
        /// The caller's rating.
        rating: Option<u8>,
    },
}

/// What the machine asks the shell to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send to the routing core.
    Centre(ToCentre),
    /// Place a call for a new leg; the shell answers with
    /// [`LegEvent::Placed`] or [`LegEvent::PlaceFailed`].
    Dial {
        /// The new leg.
        leg: LegId,
        /// Where.
        dial: Dial,
        /// Shown as the caller.
        from_user: String,
        /// For a call to a number: what for and the number, checked
        /// against the outbound rules and audited.
        number: Option<(Purpose, String)>,
    },
    /// Hang up (or cancel) a leg.
    Hangup(LegId),
    /// Hold (`on`) or resume a leg from nida's side: a re-INVITE
    /// (`sendonly`, then `sendrecv`).
    HoldLeg {
        /// The leg.
        leg: LegId,
        /// Hold or resume.
        on: bool,
    },
    /// The leg is gone: its socket and port go back.
    Release(LegId),
    /// Tell the peer of a leg how the transfer it asked for went.
    NotifyRefer {
        /// The leg.
        leg: LegId,
        /// Status.
        status: u16,
        /// Reason phrase.
        reason: &'static str,
    },
    /// Ask a lookup backend; answer with [`crate::Call::handle_lookup`].
    Lookup {
        /// Matches the answer.
        id: u64,
        /// Backend name.
        service: String,
        /// Parameters.
        params: BTreeMap<String, String>,
    },
    /// Store a call-back request; answer with
    /// [`crate::Call::handle_stored`] once it is on disk (or is not).
    BookCallback(nida_store::CallbackRow),
    /// Store a call-back's new state.
    StoreCallback(nida_store::CallbackRow),
    /// Write the call record (the call is over).
    Record(Box<nida_store::CallRecord>),
    /// The recording's course.
    Recording(Recording),
    /// A voice message's course: mono frames of the caller; the shell
    /// names the file with [`crate::Call::set_voicemail_name`].
    Voicemail(Recording),
    /// A notification attempt's result (before the record, if any).
    Notice(crate::notify::NoticeResult),
    /// Store wrap-up codes the agent keyed on their phone.
    Wrapup(nida_store::Wrapup),
    /// Something happened.
    Event(CallEvent),
}

/// A datagram to send on a leg's RTP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The leg.
    pub leg: LegId,
    /// Bytes written into the buffer.
    pub len: usize,
    /// Where to.
    pub dest: SocketAddr,
    /// An RTCP report for the leg's RTCP port (RTP port + 1); false for
    /// RTP, and for RTCP muxed on the RTP port.
    pub rtcp: bool,
}
