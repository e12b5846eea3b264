//! What a call is started with: its own facts ([`CallConfig`]), and what
//! every call of the centre shares ([`Shared`]: flows, prompts, queue
//! rules, the pending call-backs).

use crate::bookings::Bookings;
use nida_ivr::FlowSet;
use nida_media::PromptStore;
use nida_sip::sdp::Codec;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A queue's rules as a waiting call follows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRules {
    /// Place and estimated wait announced this often (zero: never).
    pub announce: Duration,
    /// Music on hold prompt (looped).
    pub music: String,
    /// Record answered calls (stereo: caller left, agent right).
    pub record: bool,
    /// Flow run after the agent hangs up (the satisfaction survey).
    pub survey_flow: Option<String>,
    /// Answered within this counts for the service level.
    pub service_level: Duration,
    /// The key a waiting caller presses to be called back (empty: none).
    pub callback_digit: String,
    /// Tries to reach the caller for a call-back.
    pub callback_attempts: u32,
    /// Time between two tries.
    pub callback_retry: Duration,
    /// The calendar of the queue's opening hours (none: always open).
    pub calendar: Option<String>,
    /// Where a call goes when the queue is closed.
    pub closed_exit: nida_acd::Exit,
    /// The longest voice message its callers leave.
    pub voicemail_max: Duration,
    /// Times a caller who asks for a call-back may choose from (after
    /// "as soon as possible"); 0: the call-back keeps the place in line.
    pub callback_slots: usize,
    /// Call-backs booked in one slot (an hour), at most; they are spread
    /// over its hour.
    pub callback_slot_capacity: u32,
    /// The soonest slot offered, from the caller's request.
    pub callback_lead: Duration,
    /// Who a call-back at a chosen time reaches first.
    pub callback_first: CallbackFirst,
    /// The queue's wrap-up codes, in order: an agent keys `*2#` on their
    /// phone for the second.
    pub wrapup_codes: Vec<String>,
}

/// Who a call-back at a chosen time reaches first when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallbackFirst {
    /// It joins the line; the caller is dialled once an agent takes it
    /// (nobody answers a call-back only to wait).
    #[default]
    Agent,
    /// The caller is dialled at the time; once they answer they wait at
    /// the head of the line (no agent waits on a phone that rings out).
    Caller,
}

impl Default for QueueRules {
    fn default() -> Self {
        QueueRules {
            announce: Duration::from_secs(30),
            music: "moh".into(),
            record: false,
            survey_flow: Some("survey".into()),
            service_level: Duration::from_secs(20),
            callback_digit: "1".into(),
            callback_attempts: 3,
            callback_retry: Duration::from_secs(300),
            calendar: None,
            closed_exit: nida_acd::Exit::Voicemail,
            voicemail_max: Duration::from_secs(120),
            callback_slots: 0,
            callback_slot_capacity: 20,
            callback_lead: Duration::from_secs(3600),
            callback_first: CallbackFirst::Agent,
            wrapup_codes: Vec::new(),
        }
    }
}

/// What every call of the centre shares; cheap to clone.
#[derive(Clone)]
pub struct Shared {
    /// The flows as they were when the call came in.
    pub flows: Arc<FlowSet>,
    /// The prompts, decoded.
    pub prompts: Arc<PromptStore>,
    /// Queue rules by name (queues the config does not list have the
    /// defaults).
    pub queues: Arc<BTreeMap<String, QueueRules>>,
    /// The numbers with a call-back pending.
    pub bookings: Bookings,
    /// Opening hours, for flows' `open(...)` and queues' calendars.
    pub calendars: Arc<crate::calendar::Calendars>,
}

/// Settings and facts of one call.
#[derive(Debug, Clone)]
pub struct CallConfig {
    /// SIP Call-ID of the caller's leg (names the call-back and record).
    pub call_id: String,
    /// The caller's number (user part of From).
    pub caller: String,
    /// The number dialled.
    pub called: String,
    /// Where the INVITE came from (call-backs go there by default).
    pub source: SocketAddr,
    /// The caller's number as a trusted trunk asserted it (or as stored
    /// with a call-back): the only number a call-back dials without the
    /// caller keying it in.
    pub proven_number: Option<String>,
    /// The default language.
    pub language: String,
    /// Codecs nida accepts, in its order of preference.
    pub codecs: Vec<Codec>,
    /// A leg whose RTP stops this long is hung up.
    pub rtp_timeout: Duration,
    /// The longest a caller stays on the line.
    pub call_duration: Duration,
    /// The carrier trunk calls to numbers go through.
    pub outbound_trunk: Option<String>,
    /// Else this SIP URI template (`{number}` replaced).
    pub outbound_uri: Option<String>,
    /// nida's own SIP address (a transfer there is no external call).
    pub sip_addr: SocketAddr,
}
