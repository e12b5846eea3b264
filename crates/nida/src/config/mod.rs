//! nida's configuration: embedded defaults, an optional TOML file, then
//! command-line overrides, checked once at start with clear errors.

pub mod features;
pub mod outbound;
mod queue;
pub mod trunks;

pub use queue::queue_config;
use serde::Deserialize;
use std::net::SocketAddr;
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
    /// The file is not valid TOML or has unknown keys or wrong types.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the TOML reader said, with line and column.
        message: String,
    },
    /// A value is out of its range.
    #[error("invalid value for {key}: {message}")]
    Value {
        /// The setting.
        key: &'static str,
        /// Why.
        message: String,
    },
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

/// The settings file, every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    sip_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    rtp_ports: Option<PortRange>,
    media_ip: Option<std::net::IpAddr>,
    prompts_dir: Option<PathBuf>,
    flows_dir: Option<PathBuf>,
    max_calls: Option<usize>,
    ring_ms: Option<u64>,
    call_seconds: Option<u64>,
    rtp_timeout_seconds: Option<u64>,
    shutdown_grace_seconds: Option<u64>,
    welcome_prompt: Option<String>,
    language: Option<String>,
    codecs: Option<Vec<String>>,
    log_caller_numbers: Option<bool>,
    seed: Option<u64>,
    default_flow: Option<String>,
    dial_plan: Option<std::collections::BTreeMap<String, String>>,
    lookups: Option<std::collections::BTreeMap<String, LookupConfig>>,
    realm: Option<String>,
    digest_algorithms: Option<Vec<String>>,
    data_dir: Option<PathBuf>,
    agents: Option<Vec<AgentDef>>,
    queues: Option<std::collections::BTreeMap<String, QueueDef>>,
    feature_codes: Option<crate::config::features::FeatureCodes>,
    outbound_uri: Option<String>,
    recording_retention_days: Option<u64>,
    admin_token: Option<String>,
    webhooks: Option<Vec<WebhookDef>>,
    protection: Option<ProtectionDef>,
    outbound: Option<crate::config::outbound::OutboundConfig>,
    trunks: Option<Vec<crate::config::trunks::TrunkDef>>,
    outbound_trunk: Option<String>,
    tls: Option<TlsDef>,
}

/// `[tls]`: SIP over TLS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsDef {
    addr: Option<SocketAddr>,
    certificate: PathBuf,
    key: PathBuf,
    ca: Option<PathBuf>,
}

/// SIP over TLS: where it listens and the files it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// TLS listening address (default: the SIP address, port + 1).
    pub addr: SocketAddr,
    /// PEM certificate chain presented to peers.
    pub certificate: PathBuf,
    /// PEM private key of the certificate.
    pub key: PathBuf,
    /// PEM trust roots for the connections nida opens itself (to trunks,
    /// to agents whose connection dropped); none: the system's
    /// (`/etc/ssl/certs/ca-certificates.crt`).
    pub ca: Option<PathBuf>,
}

/// `[protection]`: limits per source address.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProtectionDef {
    rate_per_second: Option<f64>,
    burst: Option<f64>,
    max_message_bytes: Option<usize>,
    max_calls_per_source: Option<usize>,
    auth_failures: Option<u32>,
    failure_window_seconds: Option<u64>,
    block_seconds: Option<u64>,
    trusted: Option<Vec<String>>,
    ipv4_prefix: Option<u8>,
    ipv6_prefix: Option<u8>,
    max_connections: Option<usize>,
    max_connections_per_source: Option<usize>,
    tcp_idle_seconds: Option<u64>,
    max_half_open_share: Option<f64>,
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
pub const WEBHOOK_EVENTS: [&str; 5] = ["queued", "answered", "ended", "callback", "survey"];

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

impl AgentDef {
    /// The digest secret nida checks the agent's phone and log-in with.
    pub fn secret(&self) -> nida_sip::auth::Secret {
        match &self.ha1 {
            Some((md5, sha256)) => nida_sip::auth::Secret::Ha1 {
                md5: md5.clone(),
                sha256: sha256.clone(),
            },
            None => nida_sip::auth::Secret::Password(self.password.clone()),
        }
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
    pub strategy: String,
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
    pub exit: Option<String>,
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
        }
    }
}

impl Default for QueueDef {
    fn default() -> Self {
        QueueDef {
            strategy: "longest_idle".into(),
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

/// The settings nida runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// SIP listening address, UDP and TCP.
    pub sip_addr: SocketAddr,
    /// HTTP status address.
    pub http_addr: SocketAddr,
    /// RTP ports.
    pub rtp_ports: PortRange,
    /// Address RTP sockets bind to and SDP advertises.
    pub media_ip: std::net::IpAddr,
    /// Prompt folder (`<lang>/<name>.wav`).
    pub prompts_dir: PathBuf,
    /// IVR flow folder.
    pub flows_dir: PathBuf,
    /// Calls at once before new ones get 503.
    pub max_calls: usize,
    /// Time between 180 Ringing and 200 OK.
    pub ring: Duration,
    /// Longest call: nida hangs up an answered call after this long.
    pub call_duration: Duration,
    /// nida hangs up when no RTP arrives for this long.
    pub rtp_timeout: Duration,
    /// After SIGTERM, how long live calls may go on before nida hangs up.
    pub shutdown_grace: Duration,
    /// Prompt played on answer.
    pub welcome_prompt: String,
    /// Language of the welcome prompt.
    pub language: String,
    /// Codecs in nida's order of preference.
    pub codecs: Vec<nida_sip::sdp::Codec>,
    /// Write caller numbers in full in the log.
    pub log_caller_numbers: bool,
    /// Seed for identifiers; random when absent.
    pub seed: Option<u64>,
    /// Flow for numbers not in the dial plan (none: play the welcome prompt).
    pub default_flow: Option<String>,
    /// Called number to flow.
    pub dial_plan: std::collections::BTreeMap<String, String>,
    /// Lookup backends by service name.
    pub lookups: std::collections::BTreeMap<String, LookupConfig>,
    /// Digest realm for registrations.
    pub realm: String,
    /// Digest challenges offered, in order (`MD5`, `SHA-256`).
    pub digest_algorithms: Vec<nida_sip::auth::Algorithm>,
    /// Folder for call records, call-backs and recordings.
    pub data_dir: PathBuf,
    /// Agents.
    pub agents: Vec<AgentDef>,
    /// Queues by name (queues named in flows and not here get defaults).
    pub queues: std::collections::BTreeMap<String, QueueDef>,
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
    /// Limits per source address.
    pub protection: nida_sip::guard::GuardConfig,
    /// Which numbers nida may call out to, and how often.
    pub outbound: crate::config::outbound::OutboundConfig,
    /// A TCP or TLS connection silent this long between messages closes
    /// (longer than the longest registration granted, 3600 s, so a phone
    /// that only re-registers keeps its connection).
    pub tcp_idle: Duration,
    /// The share of RTP ports that calls not yet confirmed by their ACK
    /// may hold (past it new calls get 503).
    pub max_half_open_share: f64,
    /// Carrier trunks.
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
            media_ip: "127.0.0.1".parse().expect("literal address"),
            prompts_dir: Path::new(REPO).join("prompts"),
            flows_dir: Path::new(REPO).join("ivr-flows"),
            max_calls: 10_000,
            ring: Duration::ZERO,
            call_duration: Duration::from_secs(3600),
            rtp_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            welcome_prompt: "welcome".into(),
            language: "en".into(),
            codecs: vec![nida_sip::sdp::Codec::Pcmu, nida_sip::sdp::Codec::Pcma],
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
            queues: Default::default(),
            feature_codes: Default::default(),
            outbound_uri: None,
            recording_retention_days: 90,
            admin_token: None,
            webhooks: Vec::new(),
            protection: nida_sip::guard::GuardConfig::default(),
            outbound: Default::default(),
            tcp_idle: Duration::from_secs(3900),
            max_half_open_share: 0.25,
            trunks: Vec::new(),
            outbound_trunk: None,
            tls: None,
        }
    }
}

impl Config {
    /// Defaults overlaid with a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let file: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: shown,
            message: e.to_string(),
        })?;
        let mut cfg = Config::default();
        cfg.apply(file)?;
        Ok(cfg)
    }

    fn apply(&mut self, f: FileConfig) -> Result<(), ConfigError> {
        let positive = |key: &'static str, v: u64| {
            if v == 0 {
                Err(ConfigError::Value {
                    key,
                    message: "must be more than 0".into(),
                })
            } else {
                Ok(v)
            }
        };
        if let Some(v) = f.sip_addr {
            self.sip_addr = v;
            self.media_ip = v.ip();
        }
        if let Some(v) = f.http_addr {
            self.http_addr = v;
        }
        if let Some(v) = f.rtp_ports {
            self.rtp_ports = v;
        }
        if let Some(v) = f.media_ip {
            self.media_ip = v;
        }
        if let Some(v) = f.prompts_dir {
            self.prompts_dir = v;
        }
        if let Some(v) = f.flows_dir {
            self.flows_dir = v;
        }
        if let Some(v) = f.max_calls {
            self.max_calls = positive("max_calls", v as u64)? as usize;
        }
        if let Some(v) = f.ring_ms {
            self.ring = Duration::from_millis(v);
        }
        if let Some(v) = f.call_seconds {
            self.call_duration = Duration::from_secs(positive("call_seconds", v)?);
        }
        if let Some(v) = f.rtp_timeout_seconds {
            self.rtp_timeout = Duration::from_secs(positive("rtp_timeout_seconds", v)?);
        }
        if let Some(v) = f.shutdown_grace_seconds {
            self.shutdown_grace = Duration::from_secs(v);
        }
        if let Some(v) = f.welcome_prompt {
            self.welcome_prompt = v;
        }
        if let Some(v) = f.language {
            self.language = v;
        }
        if let Some(v) = f.codecs {
            self.codecs = v
                .iter()
                .map(|c| match c.to_ascii_uppercase().as_str() {
                    "PCMU" => Ok(nida_sip::sdp::Codec::Pcmu),
                    "PCMA" => Ok(nida_sip::sdp::Codec::Pcma),
                    other => Err(ConfigError::Value {
                        key: "codecs",
                        message: format!("{other:?} is not PCMU or PCMA"),
                    }),
                })
                .collect::<Result<_, _>>()?;
            if self.codecs.is_empty() {
                return Err(ConfigError::Value {
                    key: "codecs",
                    message: "list at least one codec".into(),
                });
            }
        }
        if let Some(v) = f.log_caller_numbers {
            self.log_caller_numbers = v;
        }
        if f.seed.is_some() {
            self.seed = f.seed;
        }
        if let Some(v) = f.default_flow {
            self.default_flow = (!v.is_empty()).then_some(v);
        }
        if let Some(v) = f.dial_plan {
            self.dial_plan = v;
        }
        if let Some(v) = f.lookups {
            for (name, l) in &v {
                if l.file.is_some() == l.url.is_some() {
                    return Err(ConfigError::Value {
                        key: "lookups",
                        message: format!("lookup `{name}` needs exactly one of `file` or `url`"),
                    });
                }
                if !["GET", "POST"].contains(&l.method.as_str()) {
                    return Err(ConfigError::Value {
                        key: "lookups",
                        message: format!("lookup `{name}`: method must be GET or POST"),
                    });
                }
            }
            self.lookups = v;
        }
        if let Some(v) = f.realm {
            self.realm = v;
        }
        if let Some(v) = f.digest_algorithms {
            self.digest_algorithms = v
                .iter()
                .map(|a| {
                    nida_sip::auth::Authenticator::algorithm(a).ok_or_else(|| ConfigError::Value {
                        key: "digest_algorithms",
                        message: format!("{a:?} is not MD5 or SHA-256"),
                    })
                })
                .collect::<Result<_, _>>()?;
            if self.digest_algorithms.is_empty() {
                return Err(ConfigError::Value {
                    key: "digest_algorithms",
                    message: "list at least one".into(),
                });
            }
        }
        if let Some(v) = f.data_dir {
            self.data_dir = v;
        }
        if let Some(v) = f.agents {
            let mut ids = std::collections::BTreeSet::new();
            for a in &v {
                let bad = |message: String| ConfigError::Value {
                    key: "agents",
                    message,
                };
                if !ids.insert(a.id) {
                    return Err(bad(format!("agent id {} appears twice", a.id)));
                }
                if let Some((s, l)) = a.skills.iter().find(|(_, l)| !(1..=10).contains(*l)) {
                    return Err(bad(format!(
                        "agent {}: skill {s} level {l} is not 1 to 10",
                        a.id
                    )));
                }
                if a.languages.is_empty() {
                    return Err(bad(format!("agent {}: list at least one language", a.id)));
                }
                if a.password.is_empty() || a.user.is_empty() {
                    return Err(bad(format!(
                        "agent {}: the user and the password may not be empty",
                        a.id
                    )));
                }
            }
            self.agents = v;
        }
        if let Some(v) = f.queues {
            for (name, q) in &v {
                if q.callback_digit.chars().count() > 1
                    || !q.callback_digit.chars().all(|c| "0123456789*#".contains(c))
                {
                    return Err(ConfigError::Value {
                        key: "queues",
                        message: format!("queue {name}: callback_digit must be one key or empty"),
                    });
                }
                crate::config::queue_config(name, q).map_err(|e| ConfigError::Value {
                    key: "queues",
                    message: e.to_string(),
                })?;
            }
            self.queues = v;
        }
        if let Some(v) = f.outbound_uri {
            let probe = v.replace("{number}", "1");
            if nida_call::static_target(&probe).is_none() {
                return Err(ConfigError::Value {
                    key: "outbound_uri",
                    message: format!("{v:?} is not sip:{{number}}@ip:port"),
                });
            }
            self.outbound_uri = Some(v);
        }
        if let Some(v) = f.recording_retention_days {
            self.recording_retention_days = v;
        }
        if let Some(t) = f.admin_token {
            if t.len() < 12 {
                return Err(ConfigError::Value {
                    key: "admin_token",
                    message: "must be at least 12 characters".into(),
                });
            }
            self.admin_token = Some(t);
        }
        if let Some(hooks) = f.webhooks {
            for h in &hooks {
                if !h.url.starts_with("http://") {
                    return Err(ConfigError::Value {
                        key: "webhooks",
                        message: format!("{}: only http:// URLs are supported", h.url),
                    });
                }
                if let Some(e) = h
                    .events
                    .iter()
                    .find(|e| !WEBHOOK_EVENTS.contains(&e.as_str()))
                {
                    return Err(ConfigError::Value {
                        key: "webhooks",
                        message: format!(
                            "unknown event {e:?} (known: {})",
                            WEBHOOK_EVENTS.join(", ")
                        ),
                    });
                }
                if h.attempts == 0 {
                    return Err(ConfigError::Value {
                        key: "webhooks",
                        message: "attempts must be more than 0".into(),
                    });
                }
            }
            self.webhooks = hooks;
        }
        if let Some(o) = f.outbound {
            o.validate().map_err(|e| ConfigError::Value {
                key: "outbound",
                message: e.to_string(),
            })?;
            self.outbound = o;
        }
        if let Some(p) = f.protection {
            let bad = |message: String| ConfigError::Value {
                key: "protection",
                message,
            };
            let g = &mut self.protection;
            if let Some(v) = p.rate_per_second {
                if v.is_nan() || v <= 0.0 {
                    return Err(bad("rate_per_second must be above 0".into()));
                }
                g.rate = v;
            }
            if let Some(v) = p.burst {
                if v.is_nan() || v < 1.0 {
                    return Err(bad("burst must be 1 or more".into()));
                }
                g.burst = v;
            }
            if let Some(v) = p.max_message_bytes {
                if v < 1024 {
                    return Err(bad("max_message_bytes must be 1024 or more".into()));
                }
                g.max_message = v;
            }
            if let Some(v) = p.max_calls_per_source {
                g.max_dialogs = positive("protection.max_calls_per_source", v as u64)? as usize;
            }
            if let Some(v) = p.auth_failures {
                g.max_auth_failures = positive("protection.auth_failures", u64::from(v))? as u32;
            }
            if let Some(v) = p.failure_window_seconds {
                g.failure_window =
                    Duration::from_secs(positive("protection.failure_window_seconds", v)?);
            }
            if let Some(v) = p.block_seconds {
                g.block_for = Duration::from_secs(v);
            }
            if let Some(v) = p.ipv4_prefix {
                if !(1..=32).contains(&v) {
                    return Err(bad("ipv4_prefix must be 1 to 32".into()));
                }
                g.ipv4_prefix = v;
            }
            if let Some(v) = p.ipv6_prefix {
                if !(1..=128).contains(&v) {
                    return Err(bad("ipv6_prefix must be 1 to 128".into()));
                }
                g.ipv6_prefix = v;
            }
            if let Some(v) = p.max_connections {
                g.max_connections = positive("protection.max_connections", v as u64)? as usize;
            }
            if let Some(v) = p.max_connections_per_source {
                g.max_connections_per_source =
                    positive("protection.max_connections_per_source", v as u64)? as usize;
            }
            if let Some(v) = p.tcp_idle_seconds {
                self.tcp_idle = Duration::from_secs(positive("protection.tcp_idle_seconds", v)?);
            }
            if let Some(v) = p.max_half_open_share {
                if !(v > 0.0 && v <= 1.0) {
                    return Err(bad(
                        "max_half_open_share must be above 0 and at most 1".into()
                    ));
                }
                self.max_half_open_share = v;
            }
            if let Some(v) = p.trusted {
                g.trusted = v
                    .iter()
                    .map(|c| {
                        nida_sip::guard::Cidr::parse(c).ok_or_else(|| {
                            bad(format!("trusted: {c:?} is not an address or ADDR/BITS"))
                        })
                    })
                    .collect::<Result<_, _>>()?;
            }
        }
        if let Some(defs) = f.trunks {
            let mut trunks = Vec::new();
            for d in &defs {
                let t = d.to_config().map_err(|e| ConfigError::Value {
                    key: "trunks",
                    message: e.to_string(),
                })?;
                if trunks
                    .iter()
                    .any(|o: &nida_sip::trunk::TrunkConfig| o.name == t.name)
                {
                    return Err(ConfigError::Value {
                        key: "trunks",
                        message: format!("two trunks are named {:?}", t.name),
                    });
                }
                trunks.push(t);
            }
            self.trunks = trunks;
        }
        if let Some(v) = f.outbound_trunk {
            self.outbound_trunk = Some(v);
        }
        if let Some(t) = &self.outbound_trunk {
            if !self.trunks.iter().any(|c| &c.name == t) {
                return Err(ConfigError::Value {
                    key: "outbound_trunk",
                    message: format!("no trunk is named {t:?}"),
                });
            }
        }
        if let Some(t) = f.tls {
            let addr = t.addr.unwrap_or_else(|| {
                SocketAddr::new(self.sip_addr.ip(), self.sip_addr.port().wrapping_add(1))
            });
            if addr == self.sip_addr {
                return Err(ConfigError::Value {
                    key: "tls",
                    message: "addr must differ from sip_addr (TCP listens there)".into(),
                });
            }
            self.tls = Some(TlsConfig {
                addr,
                certificate: t.certificate,
                key: t.key,
                ca: t.ca,
            });
        }
        if let Some(v) = f.feature_codes {
            v.check().map_err(|e| ConfigError::Value {
                key: "feature_codes",
                message: e.to_string(),
            })?;
            self.feature_codes = v;
        }
        Ok(())
    }
}

impl Config {
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

    fn write(text: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "nida-config-{}-{}.toml",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn file_values_override_defaults() {
        let p = write("sip_addr = \"127.0.0.2:5070\"\nrtp_ports = \"30000-30099\"\ncodecs = [\"pcma\"]\nring_ms = 1500\n");
        let c = Config::from_file(&p).unwrap();
        assert_eq!(c.sip_addr.port(), 5070);
        assert_eq!(c.media_ip.to_string(), "127.0.0.2");
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
                "sip_addr = \"127.0.0.1:5070\"\n[tls]\naddr = \"127.0.0.1:5070\"\ncertificate = \"c\"\nkey = \"k\"\n",
                "addr must differ from sip_addr",
            ),
            ("[tls]\ncertificate = \"c\"\n", "missing field `key`"),
            (
                "[[trunks]]\nname = \"a\"\naddresses = [\"192.0.2.1:5061\"]\ntransport = \"tls\"\n",
                "not supported for trunks",
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
        let tls = Config::from_file(&write(
            "sip_addr = \"127.0.0.1:5070\"\n[tls]\ncertificate = \"c.pem\"\nkey = \"k.pem\"\n",
        ))
        .unwrap()
        .tls
        .unwrap();
        assert_eq!(tls.addr, "127.0.0.1:5071".parse().unwrap());
        assert_eq!((tls.certificate.to_str(), tls.ca), (Some("c.pem"), None));
        let err = Config::from_file(Path::new("/nonexistent/nida.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/nida.toml"));
    }
}
