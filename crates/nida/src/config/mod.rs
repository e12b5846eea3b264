//! nida's configuration: embedded defaults, an optional TOML file read
//! straight into the typed settings (every key optional, its default from
//! [`Config::default`]), then command-line overrides, and one
//! [`Config::validate`] for the rules that span values.

mod de;
pub mod features;
pub mod notify;
pub mod outbound;
pub mod queue;
pub mod trunks;

pub use queue::{queue_config, QueueExit};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the repository's own prompts and flows are, for running from a
/// checkout with no configuration at all.
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Errors reading or checking the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys, wrong types or
    /// values a key cannot take.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the TOML reader said, with line and column.
        message: String,
    },
    /// A value is out of its range, or values do not fit together.
    #[error("invalid value for {key}: {message}")]
    Value {
        /// The setting.
        key: &'static str,
        /// Why.
        message: String,
    },
}

impl ConfigError {
    /// A value out of its range, or values that do not fit together.
    fn value(key: &'static str, message: impl Into<String>) -> ConfigError {
        ConfigError::Value {
            key,
            message: message.into(),
        }
    }
}

/// An inclusive range of UDP ports for RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port.
    pub last: u16,
}

impl std::str::FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("{s:?} is not a range like 20000-30000"))?;
        let first: u16 = a.trim().parse().map_err(|_| format!("bad port {a:?}"))?;
        let last: u16 = b.trim().parse().map_err(|_| format!("bad port {b:?}"))?;
        if first == 0 || first > last {
            return Err(format!(
                "{s:?}: the first port must be 1 or more and not above the last"
            ));
        }
        Ok(PortRange { first, last })
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `[tls]`: SIP over TLS, where it listens and the files it needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// TLS listening address; none: the SIP address, port + 1 (see
    /// [`Config::tls_addr`]).
    #[serde(default)]
    pub addr: Option<SocketAddr>,
    /// PEM certificate chain presented to peers.
    pub certificate: PathBuf,
    /// PEM private key of the certificate.
    pub key: PathBuf,
    /// PEM trust roots for the connections nida opens itself (to trunks,
    /// to agents whose connection dropped); none: the system's
    /// (`/etc/ssl/certs/ca-certificates.crt`).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// An HTTPS listener (the same certificate) for the pages, the API
    /// and SIP over secure WebSocket (`wss://ADDR/sip`); none: no HTTPS.
    /// Browsers give a page on another host the microphone over HTTPS
    /// only.
    #[serde(default)]
    pub https_addr: Option<SocketAddr>,
}

/// `[protection]`: limits per source address and on connections.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Protection {
    /// Messages per second a source may send, on average.
    #[serde(rename = "rate_per_second")]
    pub rate: f64,
    /// Messages a source may send at once above the rate.
    pub burst: f64,
    /// Largest message accepted, in bytes.
    #[serde(rename = "max_message_bytes")]
    pub max_message: usize,
    /// Calls a source may have at once.
    #[serde(rename = "max_calls_per_source")]
    pub max_dialogs: usize,
    /// Authentication failures within `failure_window` that block a source.
    #[serde(rename = "auth_failures")]
    pub max_auth_failures: u32,
    /// The window in which failures count.
    #[serde(rename = "failure_window_seconds", deserialize_with = "de::secs")]
    pub failure_window: Duration,
    /// How long a blocked source is ignored.
    #[serde(rename = "block_seconds", deserialize_with = "de::secs")]
    pub block_for: Duration,
    /// Sources no limit applies to.
    #[serde(deserialize_with = "de::networks")]
    pub trusted: Vec<nida_sip::guard::Cidr>,
    /// IPv4 addresses sharing their first this many bits are one source.
    pub ipv4_prefix: u8,
    /// IPv6 addresses sharing their first this many bits are one source.
    pub ipv6_prefix: u8,
    /// TCP and TLS connections open at once, from everyone.
    pub max_connections: usize,
    /// TCP and TLS connections open at once from one source.
    pub max_connections_per_source: usize,
    /// A TCP or TLS connection silent this long between messages closes
    /// (longer than the longest registration granted, 3600 s, so a phone
    /// that only re-registers keeps its connection).
    #[serde(rename = "tcp_idle_seconds", deserialize_with = "de::secs")]
    pub tcp_idle: Duration,
    /// The share of RTP ports that calls not yet confirmed by their ACK
    /// may hold (past it new calls get 503).
    pub max_half_open_share: f64,
}

impl Default for Protection {
    fn default() -> Self {
        let g = nida_sip::guard::GuardConfig::default();
        Protection {
            rate: g.rate,
            burst: g.burst,
            max_message: g.max_message,
            max_dialogs: g.max_dialogs,
            max_auth_failures: g.max_auth_failures,
            failure_window: g.failure_window,
            block_for: g.block_for,
            trusted: g.trusted,
            ipv4_prefix: g.ipv4_prefix,
            ipv6_prefix: g.ipv6_prefix,
            max_connections: g.max_connections,
            max_connections_per_source: g.max_connections_per_source,
            tcp_idle: Duration::from_secs(3900),
            max_half_open_share: 0.25,
        }
    }
}

impl Protection {
    /// The SIP guard's limits.
    pub fn guard(&self) -> nida_sip::guard::GuardConfig {
        nida_sip::guard::GuardConfig {
            rate: self.rate,
            burst: self.burst,
            max_message: self.max_message,
            max_dialogs: self.max_dialogs,
            max_auth_failures: self.max_auth_failures,
            failure_window: self.failure_window,
            block_for: self.block_for,
            trusted: self.trusted.clone(),
            ipv4_prefix: self.ipv4_prefix,
            ipv6_prefix: self.ipv6_prefix,
            max_connections: self.max_connections,
            max_connections_per_source: self.max_connections_per_source,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let rules: [(bool, &str); 11] = [
            (self.rate > 0.0, "rate_per_second must be above 0"),
            (self.burst >= 1.0, "burst must be 1 or more"),
            (
                self.max_message >= 1024,
                "max_message_bytes must be 1024 or more",
            ),
            (
                self.max_dialogs > 0,
                "max_calls_per_source must be more than 0",
            ),
            (
                self.max_auth_failures > 0,
                "auth_failures must be more than 0",
            ),
            (
                !self.failure_window.is_zero(),
                "failure_window_seconds must be more than 0",
            ),
            (
                (1..=32).contains(&self.ipv4_prefix),
                "ipv4_prefix must be 1 to 32",
            ),
            (
                (1..=128).contains(&self.ipv6_prefix),
                "ipv6_prefix must be 1 to 128",
            ),
            (
                self.max_connections > 0 && self.max_connections_per_source > 0,
                "max_connections and max_connections_per_source must be more than 0",
            ),
            (
                !self.tcp_idle.is_zero(),
                "tcp_idle_seconds must be more than 0",
            ),
            (
                self.max_half_open_share > 0.0 && self.max_half_open_share <= 1.0,
                "max_half_open_share must be above 0 and at most 1",
            ),
        ];
        match rules.iter().find(|(ok, _)| !ok) {
            Some((_, why)) => Err(ConfigError::value("protection", *why)),
            None => Ok(()),
        }
    }
}

/// A web service told about the centre's events.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebhookDef {
    /// `http://host:port/path` that receives a JSON POST per event.
    pub url: String,
    /// Events sent: `queued`, `answered`, `ended`, `callback`, `survey`
    /// (all when empty).
    #[serde(default)]
    pub events: Vec<String>,
    /// Sent as `Authorization: Bearer ...` when set.
    #[serde(default)]
    pub token: Option<String>,
    /// Tries per event before it is dropped (logged).
    #[serde(default = "default_webhook_attempts")]
    pub attempts: u32,
    /// Wait before the first retry, doubled at each retry (milliseconds).
    #[serde(default = "default_webhook_backoff")]
    pub backoff_ms: u64,
}

fn default_webhook_attempts() -> u32 {
    6
}

fn default_webhook_backoff() -> u64 {
    1000
}

/// The webhook events there are.
pub const WEBHOOK_EVENTS: [&str; 7] = [
    "queued",
    "answered",
    "ended",
    "callback",
    "survey",
    "voicemail",
    "notification",
];

/// An agent: SIP credentials, skills and languages.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AgentDef {
    /// Number that identifies the agent.
    pub id: u32,
    /// SIP user name the softphone registers with.
    pub user: String,
    /// Digest password (not empty).
    pub password: String,
    /// For agents kept in the store: the HA1s of their password (MD5,
    /// SHA-256) for this realm; `password` is empty then.
    #[serde(skip)]
    pub ha1: Option<(String, String)>,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Skill name to level (1 to 10).
    #[serde(default)]
    pub skills: std::collections::BTreeMap<String, u8>,
    /// Languages spoken (codes as in the flows: `ar`, `en`, ...).
    pub languages: Vec<String>,
    /// A fixed SIP URI to call instead of a registration
    /// (`sip:1001@192.0.2.5:5062`).
    pub contact: Option<String>,
    /// Log in and become ready when the softphone registers.
    #[serde(default = "yes")]
    pub ready_on_register: bool,
}

/// A supervisor: their phone (registered with their own credentials,
/// or a fixed contact) and the queues whose calls they may join.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SupervisorDef {
    /// SIP user name their phone registers with (not an agent's).
    pub user: String,
    /// Digest password (not empty).
    pub password: String,
    /// For supervisors kept in the store: the HA1s of their password
    /// (MD5, SHA-256) for this realm; `password` is empty then.
    #[serde(skip)]
    pub ha1: Option<(String, String)>,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// A fixed SIP URI to call instead of a registration.
    pub contact: Option<String>,
    /// Queues whose calls they may listen to, whisper in or barge into
    /// (`"*"`: every queue).
    pub queues: Vec<String>,
    /// When given, only these agents' calls (a team lead's team).
    pub agents: Option<Vec<u32>>,
}

impl SupervisorDef {
    /// Whether they may join a call of `queue` with `agent`.
    pub fn may_join(&self, queue: &str, agent: u32) -> bool {
        self.queues.iter().any(|q| q == "*" || q == queue)
            && self.agents.as_ref().is_none_or(|a| a.contains(&agent))
    }

    /// The digest secret their phone is checked with.
    pub fn secret(&self) -> nida_sip::auth::Secret {
        secret_of(&self.password, self.ha1.as_ref())
    }
}

impl AgentDef {
    /// The digest secret nida checks the agent's phone and log-in with.
    pub fn secret(&self) -> nida_sip::auth::Secret {
        secret_of(&self.password, self.ha1.as_ref())
    }
}

/// A digest secret: the stored HA1s (MD5, SHA-256) when there are, else
/// the password.
fn secret_of(password: &str, ha1: Option<&(String, String)>) -> nida_sip::auth::Secret {
    match ha1 {
        Some((md5, sha256)) => nida_sip::auth::Secret::Ha1 {
            md5: md5.clone(),
            sha256: sha256.clone(),
        },
        None => nida_sip::auth::Secret::Password(password.to_string()),
    }
}

fn yes() -> bool {
    true
}

/// A queue's rules; every key optional.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct QueueDef {
    /// `longest_idle`, `best_skill`, `round_robin`, `fewest_calls`,
    /// `ring_all` or `weighted_random`.
    #[serde(deserialize_with = "de::strategy")]
    pub strategy: nida_acd::Strategy,
    /// How long an agent's phone rings before the offer counts as missed.
    pub offer_timeout_seconds: u64,
    /// Wrap-up after each call.
    pub wrap_up_seconds: u64,
    /// Missed offers in a row before the agent is made not ready.
    pub max_missed: u32,
    /// Longest wait before the exit.
    pub max_wait_seconds: Option<u64>,
    /// Exit after the longest wait: `callback`, `voicemail`,
    /// `queue:<name>` or `flow:<name>` (default: a call-back).
    pub exit: Option<QueueExit>,
    /// Most callers waiting.
    pub max_len: Option<usize>,
    /// Position and estimated wait announced this often (0: never).
    pub announce_seconds: u64,
    /// Music on hold prompt (looped), in `prompts/<lang>/`.
    pub music: String,
    /// Record answered calls (stereo WAV: caller left, agent right).
    pub record: bool,
    /// Flow run after the agent hangs up (the satisfaction survey).
    pub survey_flow: Option<String>,
    /// Answered within this counts for the service level.
    pub service_level_seconds: u64,
    /// The key a waiting caller presses to be called back, keeping the
    /// place in line (empty: no call-back from the queue).
    pub callback_digit: String,
    /// Tries to reach the caller for a call-back.
    pub callback_attempts: u32,
    /// Time between two tries.
    pub callback_retry_seconds: u64,
    /// Times a caller who presses the call-back digit may choose from
    /// (later today, the next open days' mornings and afternoons), after
    /// 1 for "as soon as possible"; 0 (the default): no choice, the
    /// call-back keeps the place in line. At most 8 (keys 2 to 9).
    pub callback_slots: usize,
    /// Call-backs booked in one slot (an hour), at most; they are spread
    /// over its hour. A full slot is not offered.
    pub callback_slot_capacity: u32,
    /// The soonest time offered, in minutes from the request.
    pub callback_lead_minutes: u64,
    /// Who a call-back at a chosen time reaches first: `agent` (it joins
    /// the line, the caller is dialled once an agent takes it; the
    /// default) or `caller` (the caller is dialled at the time and waits
    /// at the head of the line).
    pub callback_first: CallbackFirstDef,
    /// The calendar of the queue's opening hours (none: always open).
    pub calendar: Option<String>,
    /// Where a call goes when the queue is closed: `voicemail` (the
    /// default), `callback` or `flow:<name>`.
    pub closed_exit: Option<QueueExit>,
    /// The wrap-up codes (dispositions) agents pick for this queue's calls.
    pub wrapup_codes: Vec<String>,
    /// The longest voice message its callers leave, in seconds.
    pub voicemail_seconds: u64,
}

impl QueueDef {
    /// The rules a waiting call follows.
    pub fn rules(&self) -> nida_call::QueueRules {
        nida_call::QueueRules {
            announce: Duration::from_secs(self.announce_seconds),
            music: self.music.clone(),
            record: self.record,
            survey_flow: self.survey_flow.clone(),
            service_level: Duration::from_secs(self.service_level_seconds),
            callback_digit: self.callback_digit.clone(),
            callback_attempts: self.callback_attempts,
            callback_retry: Duration::from_secs(self.callback_retry_seconds),
            calendar: self.calendar.clone(),
            closed_exit: match &self.closed_exit {
                Some(QueueExit::Callback) => nida_acd::Exit::Callback,
                Some(QueueExit::Flow(f)) => nida_acd::Exit::Flow(f.clone()),
                Some(QueueExit::Voicemail | QueueExit::Queue(_)) | None => {
                    nida_acd::Exit::Voicemail
                }
            },
            voicemail_max: Duration::from_secs(self.voicemail_seconds.clamp(1, 600)),
            callback_slots: self.callback_slots,
            callback_slot_capacity: self.callback_slot_capacity,
            callback_lead: Duration::from_secs(self.callback_lead_minutes * 60),
            callback_first: match self.callback_first {
                CallbackFirstDef::Agent => nida_call::CallbackFirst::Agent,
                CallbackFirstDef::Caller => nida_call::CallbackFirst::Caller,
            },
            wrapup_codes: self.wrapup_codes.clone(),
        }
    }
}

impl Default for QueueDef {
    fn default() -> Self {
        QueueDef {
            strategy: nida_acd::Strategy::LongestIdle,
            offer_timeout_seconds: 20,
            wrap_up_seconds: 10,
            max_missed: 3,
            max_wait_seconds: None,
            exit: None,
            max_len: None,
            announce_seconds: 30,
            music: "moh".into(),
            record: false,
            survey_flow: Some("survey".into()),
            service_level_seconds: 20,
            callback_digit: "1".into(),
            callback_attempts: 3,
            callback_retry_seconds: 300,
            callback_slots: 0,
            callback_slot_capacity: 20,
            callback_lead_minutes: 60,
            callback_first: CallbackFirstDef::Agent,
            calendar: None,
            closed_exit: None,
            wrapup_codes: Vec::new(),
            voicemail_seconds: 120,
        }
    }
}

/// A lookup backend: a JSON file of records keyed by the `number`
/// parameter (the embedded sample backend), or an HTTP service.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LookupConfig {
    /// JSON object file: key to record.
    pub file: Option<PathBuf>,
    /// Which parameter is the key in `file` (default `number`).
    #[serde(default = "default_key")]
    pub key: String,
    /// HTTP URL; `{name}` is replaced by the parameter, URL-encoded.
    pub url: Option<String>,
    /// `GET` (parameters in the URL and query) or `POST` (JSON body).
    #[serde(default = "default_method")]
    pub method: String,
}

fn default_key() -> String {
    "number".into()
}

fn default_method() -> String {
    "GET".into()
}

/// The settings nida runs with: the file's keys, each with its default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// SIP listening address, UDP and TCP.
    pub sip_addr: SocketAddr,
    /// HTTP status address.
    pub http_addr: SocketAddr,
    /// RTP ports.
    pub rtp_ports: PortRange,
    /// Address RTP sockets bind to and SDP advertises; none: the SIP
    /// address's (see [`Config::media_ip`]).
    #[serde(rename = "media_ip")]
    pub media_addr: Option<IpAddr>,
    /// Prompt folder (`<lang>/<name>.wav`).
    pub prompts_dir: PathBuf,
    /// IVR flow folder.
    pub flows_dir: PathBuf,
    /// Calls at once before new ones get 503.
    pub max_calls: usize,
    /// Media threads (each moves the RTP of its share of the calls); 0:
    /// one per core.
    pub media_threads: usize,
    /// Time between 180 Ringing and 200 OK.
    #[serde(rename = "ring_ms", deserialize_with = "de::millis")]
    pub ring: Duration,
    /// Longest call: nida hangs up an answered call after this long.
    #[serde(rename = "call_seconds", deserialize_with = "de::secs")]
    pub call_duration: Duration,
    /// nida hangs up when no RTP arrives for this long.
    #[serde(rename = "rtp_timeout_seconds", deserialize_with = "de::secs")]
    pub rtp_timeout: Duration,
    /// Session interval nida asks for and proposes (RFC 4028); zero: nida
    /// asks for none but takes a peer's.
    #[serde(rename = "session_expires_seconds", deserialize_with = "de::secs")]
    pub session_expires: Duration,
    /// The shortest session interval nida accepts (at least 90 s).
    #[serde(rename = "min_se_seconds", deserialize_with = "de::secs")]
    pub min_se: Duration,
    /// After SIGTERM, how long live calls may go on before nida hangs up.
    #[serde(rename = "shutdown_grace_seconds", deserialize_with = "de::secs")]
    pub shutdown_grace: Duration,
    /// Prompt played on answer.
    pub welcome_prompt: String,
    /// Language of the welcome prompt.
    pub language: String,
    /// Codecs in nida's order of preference for its offers (`PCMU`,
    /// `PCMA`, `G722`); an offer is answered with its own first codec
    /// among them.
    #[serde(deserialize_with = "de::codecs")]
    pub codecs: Vec<nida_sip::sdp::Codec>,
    /// Write caller numbers in full in the log.
    pub log_caller_numbers: bool,
    /// Seed for identifiers; random when absent.
    pub seed: Option<u64>,
    /// Flow for numbers not in the dial plan (none, or empty in the file:
    /// play the welcome prompt).
    #[serde(deserialize_with = "de::non_empty")]
    pub default_flow: Option<String>,
    /// Called number to flow.
    pub dial_plan: std::collections::BTreeMap<String, String>,
    /// Lookup backends by service name.
    pub lookups: std::collections::BTreeMap<String, LookupConfig>,
    /// Digest realm for registrations.
    pub realm: String,
    /// Digest challenges offered, in order (`MD5`, `SHA-256`).
    #[serde(deserialize_with = "de::algorithms")]
    pub digest_algorithms: Vec<nida_sip::auth::Algorithm>,
    /// Folder for call records, call-backs and recordings.
    pub data_dir: PathBuf,
    /// Agents.
    pub agents: Vec<AgentDef>,
    /// Supervisors: who may listen in on which queues' calls.
    pub supervisors: Vec<SupervisorDef>,
    /// Queues by name (queues named in flows and not here get defaults).
    pub queues: std::collections::BTreeMap<String, QueueDef>,
    /// Opening hours by name, for flows' `open("name")` and queues'
    /// `calendar`.
    pub calendars: std::collections::BTreeMap<String, nida_call::calendar::CalendarDef>,
    /// Codes agents dial to change their state.
    pub feature_codes: crate::config::features::FeatureCodes,
    /// Where nida dials numbers (call-backs, transfers to a number): a SIP
    /// URI with `{number}` (`sip:{number}@192.0.2.1:5060`); none: a
    /// call-back goes back to the address the call came from, and only
    /// transfers to a full `sip:number@ip:port` work.
    pub outbound_uri: Option<String>,
    /// Recordings are deleted after this many days (0: kept for ever).
    pub recording_retention_days: u64,
    /// The admin API's bearer token; none: a random one, written to
    /// `data_dir/admin-token`.
    pub admin_token: Option<String>,
    /// Webhooks.
    pub webhooks: Vec<WebhookDef>,
    /// Limits per source address and on connections.
    pub protection: Protection,
    /// Which numbers nida may call out to, and how often.
    pub outbound: crate::config::outbound::OutboundConfig,
    /// Status notification calls: attempts, waits, hours, pace.
    pub notifications: crate::config::notify::NotificationsConfig,
    /// DNS servers for trunks given by host name (the system's when
    /// empty).
    pub dns_servers: Vec<SocketAddr>,
    /// Carrier trunks.
    #[serde(deserialize_with = "de::trunks")]
    pub trunks: Vec<nida_sip::trunk::TrunkConfig>,
    /// The trunk call-backs and transfers to numbers go through (before
    /// `outbound_uri`).
    pub outbound_trunk: Option<String>,
    /// SIP over TLS, when a certificate is configured.
    pub tls: Option<TlsConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sip_addr: "127.0.0.1:5060".parse().expect("literal address"),
            http_addr: "127.0.0.1:8080".parse().expect("literal address"),
            rtp_ports: PortRange {
                first: 20000,
                last: 39999,
            },
            media_addr: None,
            prompts_dir: Path::new(REPO).join("prompts"),
            flows_dir: Path::new(REPO).join("ivr-flows"),
            max_calls: 10_000,
            media_threads: 0,
            ring: Duration::ZERO,
            call_duration: Duration::from_secs(3600),
            rtp_timeout: Duration::from_secs(30),
            session_expires: Duration::from_secs(1800),
            min_se: Duration::from_secs(90),
            shutdown_grace: Duration::from_secs(30),
            welcome_prompt: "welcome".into(),
            language: "en".into(),
            codecs: vec![
                nida_sip::sdp::Codec::Pcmu,
                nida_sip::sdp::Codec::Pcma,
                nida_sip::sdp::Codec::G722,
            ],
            log_caller_numbers: false,
            seed: None,
            default_flow: Some("main".into()),
            dial_plan: [("901".to_string(), "police".to_string())]
                .into_iter()
                .collect(),
            lookups: [(
                "applications".to_string(),
                LookupConfig {
                    file: Some(Path::new(REPO).join("ivr-flows/data/applications.json")),
                    key: default_key(),
                    url: None,
                    method: default_method(),
                },
            )]
            .into_iter()
            .collect(),
            realm: "nida".into(),
            // Some softphones (baresip 1.0) refuse a REGISTER challenge
            // that also offers SHA-256, so only MD5 is offered unless the
            // configuration adds it.
            digest_algorithms: vec![nida_sip::auth::Algorithm::Md5],
            data_dir: std::env::temp_dir().join("nida-data"),
            agents: Vec::new(),
            supervisors: Vec::new(),
            queues: Default::default(),
            calendars: Default::default(),
            feature_codes: Default::default(),
            outbound_uri: None,
            recording_retention_days: 90,
            admin_token: None,
            webhooks: Vec::new(),
            protection: Protection::default(),
            outbound: Default::default(),
            notifications: Default::default(),
            trunks: Vec::new(),
            dns_servers: Vec::new(),
            outbound_trunk: None,
            tls: None,
        }
    }
}

impl Config {
    /// Defaults overlaid with a TOML file, each value typed; the rules
    /// that span values are [`Config::validate`]'s, after the command
    /// line's overrides.
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: shown,
            message: e.to_string(),
        })
    }

    /// Address RTP sockets bind to and SDP advertises.
    pub fn media_ip(&self) -> IpAddr {
        self.media_addr.unwrap_or(self.sip_addr.ip())
    }

    /// The session timers nida asks for and accepts.
    pub fn session_timer(&self) -> nida_sip::session_timer::TimerWish {
        nida_sip::session_timer::TimerWish {
            expires: (!self.session_expires.is_zero()).then_some(self.session_expires),
            min_se: self.min_se,
        }
    }

    /// Where SIP over TLS listens, when configured.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().map(|t| {
            t.addr.unwrap_or_else(|| {
                SocketAddr::new(self.sip_addr.ip(), self.sip_addr.port().wrapping_add(1))
            })
        })
    }

    /// The rules no single value can break alone: ranges, names that must
    /// be unique or must exist, sections that need each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, zero) in [
            ("max_calls", self.max_calls == 0),
            ("call_seconds", self.call_duration.is_zero()),
            ("rtp_timeout_seconds", self.rtp_timeout.is_zero()),
        ] {
            if zero {
                return Err(ConfigError::value(key, "must be more than 0"));
            }
        }
        if let Some(t) = self
            .trunks
            .iter()
            .find(|t| t.transport == nida_sip::Transport::Tls)
        {
            if self.tls.is_none() {
                return Err(ConfigError::value(
                    "trunks",
                    format!(
                        "trunk {:?} uses TLS: configure [tls] (its ca checks the carrier)",
                        t.name
                    ),
                ));
            }
        }
        if self.codecs.is_empty() {
            return Err(ConfigError::value("codecs", "list at least one codec"));
        }
        if self.min_se < nida_sip::session_timer::SMALLEST {
            return Err(ConfigError::value(
                "min_se_seconds",
                "must be 90 or more (RFC 4028)",
            ));
        }
        if !self.session_expires.is_zero() && self.session_expires < self.min_se {
            return Err(ConfigError::value(
                "session_expires_seconds",
                "must be 0 (none) or at least min_se_seconds",
            ));
        }
        if self.digest_algorithms.is_empty() {
            return Err(ConfigError::value("digest_algorithms", "list at least one"));
        }
        for (name, l) in &self.lookups {
            l.validate(name)?;
        }
        let mut ids = std::collections::BTreeSet::new();
        for a in &self.agents {
            if !ids.insert(a.id) {
                return Err(ConfigError::value(
                    "agents",
                    format!("agent id {} appears twice", a.id),
                ));
            }
            a.validate()?;
        }
        let mut users: std::collections::BTreeSet<&str> =
            self.agents.iter().map(|a| a.user.as_str()).collect();
        for s in &self.supervisors {
            let why = if s.user.is_empty() || s.password.is_empty() {
                Some("the user and the password may not be empty".to_string())
            } else if !users.insert(&s.user) {
                Some("the user is taken by an agent or another supervisor".into())
            } else if s.queues.is_empty() {
                Some("list the queues they may join (\"*\": all)".into())
            } else if s
                .contact
                .as_ref()
                .is_some_and(|c| nida_call::static_target(c).is_none())
            {
                Some("contact is not sip:user@ip:port".into())
            } else {
                None
            };
            if let Some(why) = why {
                return Err(ConfigError::value(
                    "supervisors",
                    format!("supervisor {:?}: {why}", s.user),
                ));
            }
        }
        let calendars = nida_call::calendar::Calendars::new(&self.calendars)
            .map_err(|e| ConfigError::value("calendars", e.to_string()))?;
        for (name, q) in &self.queues {
            q.validate(name)?;
            if let Some(c) = q.calendar.as_ref().filter(|c| calendars.get(c).is_none()) {
                return Err(ConfigError::value(
                    "queues",
                    format!("queue {name}: calendar {c:?} is not under [calendars]"),
                ));
            }
        }
        if let Some(v) = &self.outbound_uri {
            if nida_call::static_target(&v.replace("{number}", "1")).is_none() {
                return Err(ConfigError::value(
                    "outbound_uri",
                    format!("{v:?} is not sip:{{number}}@ip:port"),
                ));
            }
        }
        if self.admin_token.as_ref().is_some_and(|t| t.len() < 12) {
            return Err(ConfigError::value(
                "admin_token",
                "must be at least 12 characters",
            ));
        }
        for h in &self.webhooks {
            h.validate()?;
        }
        self.outbound
            .validate()
            .map_err(|e| ConfigError::value("outbound", e.to_string()))?;
        self.notifications
            .validate(&calendars, &self.trunks)
            .map_err(|e| ConfigError::value("notifications", e.to_string()))?;
        self.protection.validate()?;
        for (i, t) in self.trunks.iter().enumerate() {
            if self.trunks[..i].iter().any(|o| o.name == t.name) {
                return Err(ConfigError::value(
                    "trunks",
                    format!("two trunks are named {:?}", t.name),
                ));
            }
        }
        if let Some(t) = &self.outbound_trunk {
            if !self.trunks.iter().any(|c| &c.name == t) {
                return Err(ConfigError::value(
                    "outbound_trunk",
                    format!("no trunk is named {t:?}"),
                ));
            }
        }
        if self.tls_addr() == Some(self.sip_addr) {
            return Err(ConfigError::value(
                "tls",
                "addr must differ from sip_addr (TCP listens there)",
            ));
        }
        self.feature_codes
            .check()
            .map_err(|e| ConfigError::value("feature_codes", e.to_string()))
    }
}

impl WebhookDef {
    fn validate(&self) -> Result<(), ConfigError> {
        if !self.url.starts_with("http://") {
            return Err(ConfigError::value(
                "webhooks",
                format!("{}: only http:// URLs are supported", self.url),
            ));
        }
        if let Some(e) = self
            .events
            .iter()
            .find(|e| !WEBHOOK_EVENTS.contains(&e.as_str()))
        {
            return Err(ConfigError::value(
                "webhooks",
                format!("unknown event {e:?} (known: {})", WEBHOOK_EVENTS.join(", ")),
            ));
        }
        if self.attempts == 0 {
            return Err(ConfigError::value(
                "webhooks",
                "attempts must be more than 0",
            ));
        }
        Ok(())
    }
}

impl AgentDef {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some((s, l)) = self.skills.iter().find(|(_, l)| !(1..=10).contains(*l)) {
            return Err(ConfigError::value(
                "agents",
                format!("agent {}: skill {s} level {l} is not 1 to 10", self.id),
            ));
        }
        if self.languages.is_empty() {
            return Err(ConfigError::value(
                "agents",
                format!("agent {}: list at least one language", self.id),
            ));
        }
        if self.password.is_empty() || self.user.is_empty() {
            return Err(ConfigError::value(
                "agents",
                format!(
                    "agent {}: the user and the password may not be empty",
                    self.id
                ),
            ));
        }
        Ok(())
    }
}

/// `callback_first`: who a call-back at a chosen time reaches first.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum CallbackFirstDef {
    /// An agent takes it, then the caller is dialled.
    #[default]
    Agent,
    /// The caller is dialled, then waits at the head of the line.
    Caller,
}

impl QueueDef {
    fn validate(&self, name: &str) -> Result<(), ConfigError> {
        if self.callback_slots > nida_call::MAX_CALLBACK_SLOTS {
            return Err(ConfigError::value(
                "queues",
                format!(
                    "queue {name}: callback_slots is at most {} (keys 2 to 9)",
                    nida_call::MAX_CALLBACK_SLOTS
                ),
            ));
        }
        if self.callback_slots > 0
            && (self.callback_slot_capacity == 0 || self.callback_digit.is_empty())
        {
            return Err(ConfigError::value(
                "queues",
                format!("queue {name}: callback_slots needs a callback_digit and a callback_slot_capacity above 0"),
            ));
        }
        let d = &self.callback_digit;
        if d.chars().count() > 1 || !d.chars().all(|c| "0123456789*#".contains(c)) {
            return Err(ConfigError::value(
                "queues",
                format!("queue {name}: callback_digit must be one key or empty"),
            ));
        }
        if matches!(self.closed_exit, Some(QueueExit::Queue(_))) {
            return Err(ConfigError::value(
                "queues",
                format!("queue {name}: closed_exit is voicemail, callback or flow:<name>"),
            ));
        }
        if let Some(c) = self
            .wrapup_codes
            .iter()
            .find(|c| c.trim().is_empty() || c.len() > 64)
        {
            return Err(ConfigError::value(
                "queues",
                format!("queue {name}: wrap-up code {c:?} must be 1 to 64 characters"),
            ));
        }
        queue_config(name, self)
            .map(drop)
            .map_err(|e| ConfigError::value("queues", e.to_string()))
    }
}

impl LookupConfig {
    fn validate(&self, name: &str) -> Result<(), ConfigError> {
        if self.file.is_some() == self.url.is_some() {
            return Err(ConfigError::value(
                "lookups",
                format!("lookup `{name}` needs exactly one of `file` or `url`"),
            ));
        }
        if !["GET", "POST"].contains(&self.method.as_str()) {
            return Err(ConfigError::value(
                "lookups",
                format!("lookup `{name}`: method must be GET or POST"),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// The calendars, checked (a configuration that passed
    /// [`Config::validate`] has only good ones).
    pub fn calendars(&self) -> nida_call::calendar::Calendars {
        nida_call::calendar::Calendars::new(&self.calendars).unwrap_or_default()
    }

    /// The calendars' names, for the flow checker.
    pub fn calendar_names(&self) -> std::collections::BTreeSet<String> {
        self.calendars.keys().cloned().collect()
    }

    /// The flow for a called number (the user part of the Request-URI).
    pub fn flow_for(&self, called: &str) -> Option<&str> {
        self.dial_plan
            .get(called)
            .or(self.default_flow.as_ref())
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Config {
        /// Read and checked, as `nida --config` does with no overrides.
        fn from_file(path: &Path) -> Result<Config, ConfigError> {
            let cfg = Config::read(path)?;
            cfg.validate()?;
            Ok(cfg)
        }
    }

    /// The text as a config file, removed when dropped.
    fn write(text: &str) -> tempfile::TempPath {
        let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f.into_temp_path()
    }

    #[test]
    fn file_values_override_defaults() {
        let p = write("sip_addr = \"127.0.0.2:5070\"\nrtp_ports = \"30000-30099\"\ncodecs = [\"pcma\"]\nring_ms = 1500\n");
        let c = Config::from_file(&p).unwrap();
        assert_eq!(c.sip_addr.port(), 5070);
        assert_eq!(c.media_ip().to_string(), "127.0.0.2");
        assert_eq!(
            c.rtp_ports,
            PortRange {
                first: 30000,
                last: 30099
            }
        );
        assert_eq!(c.codecs, vec![nida_sip::sdp::Codec::Pcma]);
        assert_eq!(c.ring, Duration::from_millis(1500));
    }

    #[test]
    fn the_deploy_example_is_valid() {
        let c = Config::from_file(&Path::new(REPO).join("deploy/nida.toml")).unwrap();
        assert_eq!(
            c.rtp_ports,
            PortRange {
                first: 20000,
                last: 31999
            }
        );
    }

    #[test]
    fn agents_and_queues() {
        let p = write(concat!(
            "digest_algorithms = [\"SHA-256\", \"md5\"]\n",
            "[[agents]]\nid = 7\nuser = \"1007\"\npassword = \"pw\"\n",
            "skills = { visa = 4 }\nlanguages = [\"ar\"]\n",
            "[queues.visa_general]\nstrategy = \"ring_all\"\nrecord = true\n",
            "max_wait_seconds = 300\nexit = \"flow:faq\"\n",
        ));
        let c = Config::from_file(&p).unwrap();
        assert_eq!(c.agents[0].id, 7);
        assert!(c.agents[0].ready_on_register);
        assert_eq!(
            c.digest_algorithms,
            [
                nida_sip::auth::Algorithm::Sha256,
                nida_sip::auth::Algorithm::Md5
            ]
        );
        let q = &c.queues["visa_general"];
        assert!(q.record);
        assert_eq!(q.offer_timeout_seconds, 20, "defaults fill the rest");
        let rc = crate::config::queue_config("visa_general", q).unwrap();
        assert_eq!(rc.strategy, nida_acd::Strategy::RingAll);
        assert_eq!(
            rc.max_wait,
            Some((Duration::from_secs(300), nida_acd::Exit::Flow("faq".into())))
        );
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        let c = Config::from_file(&write("\n")).unwrap();
        let d = Config::default();
        assert_eq!((c.sip_addr, c.media_ip()), (d.sip_addr, d.sip_addr.ip()));
        assert_eq!(
            c.protection.guard(),
            nida_sip::guard::GuardConfig::default()
        );
        assert_eq!(c.default_flow.as_deref(), Some("main"));
        assert_eq!(c.lookups, d.lookups);
        assert_eq!(c.tls_addr(), None);
        // An empty default flow is none; an explicit media address wins.
        let c = Config::from_file(&write(
            "default_flow = \"\"\nmedia_ip = \"127.0.0.9\"\nshutdown_grace_seconds = 0\n",
        ))
        .unwrap();
        assert_eq!(c.default_flow, None);
        assert_eq!(c.media_ip().to_string(), "127.0.0.9");
        assert_eq!(c.shutdown_grace, Duration::ZERO);
    }

    #[test]
    fn queue_exits_are_typed() {
        let c = Config::from_file(&write(concat!(
            "[queues.a]\nexit = \"queue:b\"\nmax_wait_seconds = 60\n",
            "[queues.b]\nexit = \"voicemail\"\n",
        )))
        .unwrap();
        assert_eq!(c.queues["a"].exit, Some(QueueExit::Queue("b".into())));
        assert_eq!(c.queues["b"].exit, Some(QueueExit::Voicemail));
        assert_eq!(c.queues["b"].strategy, nida_acd::Strategy::LongestIdle);
    }

    #[test]
    fn call_backs_at_a_chosen_time_are_configured_per_queue() {
        let c = Config::from_file(&write(concat!(
            "[queues.a]\ncallback_slots = 3\ncallback_first = \"caller\"\n",
            "callback_slot_capacity = 12\ncallback_lead_minutes = 90\n",
            "[queues.b]\n",
        )))
        .unwrap();
        let a = c.queues["a"].rules();
        assert_eq!(a.callback_slots, 3);
        assert_eq!(a.callback_slot_capacity, 12);
        assert_eq!(a.callback_lead, Duration::from_secs(90 * 60));
        assert_eq!(a.callback_first, nida_call::CallbackFirst::Caller);
        let b = c.queues["b"].rules();
        assert_eq!(b.callback_slots, 0, "off unless asked for");
        assert_eq!(b.callback_first, nida_call::CallbackFirst::Agent);
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let cases = [
            ("unknown_key = 1\n", "unknown field"),
            ("rtp_ports = \"300-200\"\n", "first port"),
            ("max_calls = 0\n", "max_calls"),
            ("codecs = [\"G729\"]\n", "G729"),
            ("sip_addr = \"nowhere\"\n", "sip_addr"),
            ("call_seconds = \"ten\"\n", "call_seconds"),
            ("digest_algorithms = [\"SHA-1\"]\n", "SHA-1"),
            (
                "[[agents]]\nid = 1\nuser = \"a\"\npassword = \"b\"\nlanguages = []\n",
                "at least one language",
            ),
            (
                "[[agents]]\nid = 1\nuser = \"a\"\npassword = \"b\"\nlanguages = [\"en\"]\nskills = { visa = 11 }\n",
                "not 1 to 10",
            ),
            ("[queues.q]\nstrategy = \"random\"\n", "unknown strategy"),
            ("[queues.q]\nmax_wait_seconds = 5\nexit = \"sms\"\n", "unknown exit"),
            ("[queues.q]\nexit = \"queue:\"\n", "unknown exit"),
            (
                "[queues.q]\ncalendar = \"desk\"\n",
                "calendar \"desk\" is not under [calendars]",
            ),
            (
                "[calendars.desk]\ntime_zone = \"Mars/Olympus\"\n",
                "unknown time zone",
            ),
            (
                "[calendars.desk]\nweek = { mon = \"17:00-09:00\" }\n",
                "is not hours like",
            ),
            (
                "[queues.q]\nclosed_exit = \"queue:b\"\n",
                "closed_exit is voicemail, callback or flow",
            ),
            ("[queues.q]\noffer_timeout_seconds = 0\n", "offer_timeout_seconds"),
            ("[queues.q]\ncallback_digit = \"12\"\n", "callback_digit"),
            ("[queues.q]\ncallback_slots = 9\n", "callback_slots is at most 8"),
            (
                "[queues.q]\ncallback_slots = 3\ncallback_slot_capacity = 0\n",
                "callback_slot_capacity above 0",
            ),
            ("[queues.q]\ncallback_first = \"robot\"\n", "unknown variant"),
            ("[protection]\ntcp_idle_seconds = 0\n", "tcp_idle_seconds"),
            ("[protection]\nmax_half_open_share = 1.5\n", "max_half_open_share"),
            ("[protection]\nipv4_prefix = 33\n", "ipv4_prefix"),
            ("[[webhooks]]\nurl = \"ftp://x\"\n", "only http://"),
            ("[[webhooks]]\nurl = \"http://x/\"\nevents = [\"nope\"]\n", "unknown event"),
            ("admin_token = \"short\"\n", "at least 12"),
            ("outbound_uri = \"tel:{number}\"\n", "outbound_uri"),
            ("rtp_timeout_seconds = 0\n", "rtp_timeout_seconds"),
            ("min_se_seconds = 30\n", "min_se_seconds"),
            (
                "session_expires_seconds = 100\nmin_se_seconds = 200\n",
                "session_expires_seconds",
            ),
            ("codecs = []\n", "at least one codec"),
            ("[lookups.x]\nkey = \"n\"\n", "exactly one of"),
            (
                "[[agents]]\nid = 1\nuser = \"a\"\npassword = \"b\"\nlanguages = [\"en\"]\n[[agents]]\nid = 1\nuser = \"c\"\npassword = \"d\"\nlanguages = [\"en\"]\n",
                "appears twice",
            ),
            (
                "[[agents]]\nid = 1\nuser = \"a\"\npassword = \"b\"\nlanguages = [\"en\"]\n[[supervisors]]\nuser = \"a\"\npassword = \"c\"\nqueues = [\"*\"]\n",
                "taken by an agent",
            ),
            (
                "[[supervisors]]\nuser = \"s\"\npassword = \"c\"\nqueues = []\n",
                "list the queues",
            ),
            (
                "[[supervisors]]\nuser = \"s\"\npassword = \"\"\nqueues = [\"*\"]\n",
                "may not be empty",
            ),
            (
                "[[supervisors]]\nuser = \"s\"\npassword = \"c\"\nqueues = [\"*\"]\ncontact = \"tel:1\"\n",
                "contact is not",
            ),
            ("[protection]\ntrusted = [\"10.0.0.0/40\"]\n", "10.0.0.0/40"),
            ("[protection]\nrate_per_second = 0\n", "rate_per_second"),
            ("[protection]\nmax_message_bytes = 10\n", "max_message_bytes"),
            ("[protection]\nauth_failures = 0\n", "auth_failures"),
            ("outbound_trunk = \"nowhere\"\n", "no trunk is named \"nowhere\""),
            (
                "[[trunks]]\nname = \"a\"\naddresses = [\"192.0.2.1:5060\"]\n[[trunks]]\nname = \"a\"\naddresses = [\"192.0.2.2:5060\"]\n",
                "two trunks are named",
            ),
            ("[[trunks]]\nname = \"a\"\naddresses = []\n", "at least one address"),
            (
                "[[trunks]]\nname = \"a\"\naddresses = [\"not a host!\"]\n",
                "neither IP:port nor a host name",
            ),
            (
                "[[trunks]]\nname = \"a\"\naddresses = [\"sip.example\", \"192.0.2.1:5060\"]\n",
                "only address",
            ),
            ("[[trunks]]\nname = \"a\"\naddresses = [\"sip.example:0\"]\n", "neither IP:port"),
            (
                "sip_addr = \"127.0.0.1:5070\"\n[tls]\naddr = \"127.0.0.1:5070\"\ncertificate = \"c\"\nkey = \"k\"\n",
                "addr must differ from sip_addr",
            ),
            ("[tls]\ncertificate = \"c\"\n", "missing field `key`"),
            (
                "[[trunks]]\nname = \"a\"\naddresses = [\"192.0.2.1:5061\"]\ntransport = \"tls\"\n",
                "configure [tls]",
            ),
        ];
        for (text, needle) in cases {
            let err = Config::from_file(&write(text)).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?} gave {err}");
        }
        let ok = Config::from_file(&write(
            "[protection]\nrate_per_second = 5\nauth_failures = 3\nblock_seconds = 60\ntrusted = [\"192.0.2.0/24\"]\n",
        ))
        .unwrap()
        .protection;
        assert_eq!((ok.rate, ok.max_auth_failures), (5.0, 3));
        assert_eq!(ok.block_for, Duration::from_secs(60));
        assert!(ok.trusted[0].contains("192.0.2.77".parse().unwrap()));
        // TLS listens next to SIP unless told otherwise.
        let c = Config::from_file(&write(
            "sip_addr = \"127.0.0.1:5070\"\n[tls]\ncertificate = \"c.pem\"\nkey = \"k.pem\"\n",
        ))
        .unwrap();
        assert_eq!(c.tls_addr(), Some("127.0.0.1:5071".parse().unwrap()));
        let tls = c.tls.unwrap();
        assert_eq!((tls.certificate.to_str(), tls.ca), (Some("c.pem"), None));
        let err = Config::from_file(Path::new("/nonexistent/nida.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/nida.toml"));
    }
}
