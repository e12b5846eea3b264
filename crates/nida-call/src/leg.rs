//! A call is a set of legs: the caller, the agents being rung, the caller
//! again for a call-back, a transfer's far end. Each leg has its role, its
//! SIP course and, once up, its RTP session; media relations between legs
//! (who hears whom) live in [`crate::Call`].

use nida_acd::AgentId;
use nida_media::RtpSession;
use nida_sip::sdp::Negotiated;

/// A leg of the call, unique within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u32);

impl LegId {
    /// The caller's leg of an incoming call.
    pub const CALLER: LegId = LegId(0);
}

/// Who is on a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The caller (who called in, or who answered a call-back).
    Caller,
    /// An agent's phone.
    Agent(AgentId),
    /// The caller being dialled for a call-back.
    CallbackCaller,
    /// The citizen being dialled for a notification.
    Notified,
    /// The far end of a transfer to a number.
    Transfer,
    /// A supervisor listening in, whispering or barging.
    Supervisor,
    /// A colleague the agent consults (an agent, or a number).
    Consult(Option<AgentId>),
}

/// Where a leg is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegState {
    /// nida asked the SIP shell to place it.
    Placing,
    /// Its INVITE is out.
    Ringing,
    /// The far end answered with usable audio (an agent: until the core
    /// connects them).
    Answered,
    /// Media flows.
    Up,
}

/// One leg.
pub struct Leg {
    /// Its id.
    pub id: LegId,
    /// Who.
    pub role: Role,
    /// Where in its life.
    pub state: LegState,
    /// nida's SRTP key offered on this leg.
    pub srtp: Option<[u8; 30]>,
    /// What the far end answered.
    pub answer: Option<Negotiated>,
    /// Its media, once up.
    pub rtp: Option<RtpSession>,
    /// The media agreed last, once up (a later offer is compared with it).
    pub media: Option<Negotiated>,
}

impl Leg {
    /// A leg nida is about to place.
    pub fn placing(id: LegId, role: Role) -> Leg {
        Leg {
            id,
            role,
            state: LegState::Placing,
            srtp: None,
            answer: None,
            rtp: None,
            media: None,
        }
    }

    /// The agent on this leg, if it is an agent's.
    pub fn agent(&self) -> Option<AgentId> {
        match self.role {
            Role::Agent(a) => Some(a),
            _ => None,
        }
    }
}
