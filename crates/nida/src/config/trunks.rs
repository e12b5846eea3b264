//! Carrier trunks in the configuration (`[[trunks]]`) and their live state
//! as the admin API and `/metrics` show it. The trunk logic itself is the
//! sans-IO [`nida_sip::trunk`]; the driver runs it.

use nida_sip::guard::Cidr;
use nida_sip::trunk::{RegState, Rewrite, TrunkConfig, TrunkStatus};
use nida_sip::Transport;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// `[[trunks]]` as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkDef {
    name: String,
    addresses: Vec<String>,
    #[serde(default)]
    transport: Option<String>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    register: Option<bool>,
    #[serde(default)]
    register_expires_seconds: Option<u64>,
    #[serde(default)]
    options_interval_seconds: Option<u64>,
    #[serde(default)]
    retry_seconds: Option<u64>,
    #[serde(default)]
    inbound: Vec<String>,
    #[serde(default)]
    rewrite_in: Vec<RewriteDef>,
    #[serde(default)]
    rewrite_out: Vec<RewriteDef>,
    #[serde(default)]
    reliable_provisionals: bool,
}

/// `{ prefix = "+44", replace = "0" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RewriteDef {
    prefix: String,
    #[serde(default)]
    replace: String,
}

/// What is wrong with a `[[trunks]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrunkError {
    /// No name.
    #[error("a trunk needs a name")]
    NoName,
    /// No address to reach the carrier.
    #[error("trunk {0:?} needs at least one address")]
    NoAddress(String),
    /// An address that is neither IP:port nor a host name.
    #[error("trunk {trunk:?}: address {address:?} is neither IP:port nor a host name")]
    BadAddress {
        /// The trunk.
        trunk: String,
        /// What was written.
        address: String,
    },
    /// A host name beside other addresses.
    #[error("trunk {0:?}: a host name must be the trunk's only address (DNS gives the rest)")]
    NameAmongAddresses(String),
    /// A transport nida does not have.
    #[error("trunk {trunk:?}: unknown transport {transport:?} (udp, tcp, tls)")]
    UnknownTransport {
        /// The trunk.
        trunk: String,
        /// What was written.
        transport: String,
    },
    /// Registering needs a username.
    #[error("trunk {0:?}: register needs a username")]
    RegisterWithoutUser(String),
    /// A username needs its password.
    #[error("trunk {0:?}: username without password")]
    UserWithoutPassword(String),
    /// A registration that would expire at once.
    #[error("trunk {0:?}: register_expires_seconds must be above 0")]
    ZeroExpires(String),
    /// An inbound network that does not parse.
    #[error("trunk {trunk:?}: inbound {network:?} is not an address or ADDR/BITS")]
    BadInbound {
        /// The trunk.
        trunk: String,
        /// What was written.
        network: String,
    },
    /// A rewrite rule without a prefix.
    #[error("trunk {0:?}: a rewrite rule needs a prefix")]
    EmptyPrefix(String),
}

impl TrunkDef {
    /// The trunk's settings, or what is wrong with them.
    pub fn to_config(&self) -> Result<TrunkConfig, TrunkError> {
        let name = &self.name;
        if name.is_empty() {
            return Err(TrunkError::NoName);
        }
        if self.addresses.is_empty() {
            return Err(TrunkError::NoAddress(name.clone()));
        }
        let mut addresses = Vec::new();
        let mut host = None;
        for a in &self.addresses {
            match a.parse::<SocketAddr>() {
                Ok(addr) => addresses.push(addr),
                Err(_) => match host_name(a) {
                    Some(h) => host = Some(h),
                    None => {
                        return Err(TrunkError::BadAddress {
                            trunk: name.clone(),
                            address: a.clone(),
                        })
                    }
                },
            }
        }
        if host.is_some() && self.addresses.len() > 1 {
            return Err(TrunkError::NameAmongAddresses(name.clone()));
        }
        let first = match (&host, addresses.first()) {
            (Some((h, _)), _) => h.clone(),
            (None, Some(a)) => a.to_string(),
            (None, None) => return Err(TrunkError::NoAddress(name.clone())),
        };
        let transport = match self.transport.as_deref().unwrap_or("udp") {
            t if t.eq_ignore_ascii_case("udp") => Transport::Udp,
            t if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
            t if t.eq_ignore_ascii_case("tls") => Transport::Tls,
            t => {
                return Err(TrunkError::UnknownTransport {
                    trunk: name.clone(),
                    transport: t.to_string(),
                })
            }
        };
        let register = self.register.unwrap_or(self.username.is_some());
        if register && self.username.is_none() {
            return Err(TrunkError::RegisterWithoutUser(name.clone()));
        }
        if self.username.is_some() && self.password.is_none() {
            return Err(TrunkError::UserWithoutPassword(name.clone()));
        }
        let expires = self.register_expires_seconds.unwrap_or(3600);
        if expires == 0 {
            return Err(TrunkError::ZeroExpires(name.clone()));
        }
        let inbound = self
            .inbound
            .iter()
            .map(|c| {
                Cidr::parse(c).ok_or_else(|| TrunkError::BadInbound {
                    trunk: name.clone(),
                    network: c.clone(),
                })
            })
            .collect::<Result<_, _>>()?;
        let rules = |defs: &[RewriteDef]| -> Result<Vec<Rewrite>, TrunkError> {
            defs.iter()
                .map(|r| {
                    if r.prefix.is_empty() {
                        return Err(TrunkError::EmptyPrefix(name.clone()));
                    }
                    Ok(Rewrite {
                        prefix: r.prefix.clone(),
                        replace: r.replace.clone(),
                    })
                })
                .collect()
        };
        Ok(TrunkConfig {
            name: name.clone(),
            addresses,
            transport,
            domain: self.domain.clone().unwrap_or_else(|| first.to_string()),
            username: self.username.clone(),
            password: self.password.clone().unwrap_or_default(),
            register,
            expires: Duration::from_secs(expires),
            probe_interval: match self.options_interval_seconds.unwrap_or(30) {
                0 => None,
                s => Some(Duration::from_secs(s)),
            },
            retry: Duration::from_secs(self.retry_seconds.unwrap_or(30).max(1)),
            inbound,
            rewrite_in: rules(&self.rewrite_in)?,
            rewrite_out: rules(&self.rewrite_out)?,
            rel100: self.reliable_provisionals,
            resolve: host,
        })
    }
}

/// `host` or `host:port` when `s` is a DNS name (letters, digits, `-`
/// and dots; not an IP address).
fn host_name(s: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse::<u16>().ok().filter(|p| *p > 0)?)),
        None => (s, None),
    };
    let labels_ok = !host.is_empty()
        && host.len() <= 253
        && host.trim_end_matches('.').split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    let numeric = host.parse::<std::net::IpAddr>().is_ok()
        || host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    (labels_ok && !numeric).then(|| (host.to_ascii_lowercase(), port))
}

/// A trunk's state for the admin API.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TrunkView {
    /// Name.
    pub name: String,
    /// `off`, `waiting`, `registering`, `registered`, `failed`.
    pub registration: &'static str,
    /// When the registration lapses, in Unix seconds (when registered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Status of the last failure (when failed; 408: no answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// Where it is registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_at: Option<String>,
    /// Each address and its health (`up`, `down`, `unknown`).
    pub addresses: Vec<AddressView>,
}

/// One address of a trunk.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AddressView {
    /// `ip:port`.
    pub address: String,
    /// `up`, `down`, `unknown`.
    pub health: &'static str,
}

/// Views of the trunks' states at `now` (`unix_now` in Unix seconds).
pub fn views(status: &[TrunkStatus], now: Instant, unix_now: u64) -> Vec<TrunkView> {
    status
        .iter()
        .map(|t| {
            let (registration, expires_at, last_status) = match t.registration {
                RegState::Off => ("off", None, None),
                RegState::Waiting => ("waiting", None, None),
                RegState::Registering => ("registering", None, None),
                RegState::Registered(until) => (
                    "registered",
                    Some(unix_now + until.saturating_duration_since(now).as_secs()),
                    None,
                ),
                RegState::Failed(s) => ("failed", None, Some(s)),
            };
            TrunkView {
                name: t.name.clone(),
                registration,
                expires_at,
                last_status,
                registered_at: match t.registration {
                    RegState::Registered(_) => t.registered_at.map(|a| a.to_string()),
                    _ => None,
                },
                addresses: t
                    .addresses
                    .iter()
                    .map(|(a, h)| AddressView {
                        address: a.to_string(),
                        health: h.as_str(),
                    })
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(text: &str) -> Result<TrunkConfig, String> {
        toml::from_str::<TrunkDef>(text)
            .map_err(|e| e.to_string())?
            .to_config()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_errors() {
        let t = def(
            "name = \"c\"\naddresses = [\"192.0.2.1:5060\"]\nusername = \"u\"\npassword = \"p\"\n",
        )
        .unwrap();
        assert!(t.register, "a username means registering");
        assert_eq!(t.domain, "192.0.2.1:5060");
        assert_eq!(t.expires, Duration::from_secs(3600));
        assert_eq!(t.probe_interval, Some(Duration::from_secs(30)));
        let t =
            def("name = \"c\"\naddresses = [\"192.0.2.1:5060\"]\noptions_interval_seconds = 0\n")
                .unwrap();
        assert!(!t.register);
        assert_eq!(t.probe_interval, None);
        for (text, needle) in [
            ("name = \"c\"\naddresses = []\n", "at least one address"),
            ("name = \"c\"\naddresses = [\"192.0.2.1:5060\"]\ntransport = \"sctp\"\n", "sctp"),
            ("name = \"c\"\naddresses = [\"192.0.2.1:5060\"]\nregister = true\n", "needs a username"),
            ("name = \"c\"\naddresses = [\"192.0.2.1:5060\"]\nusername = \"u\"\n", "without password"),
            ("name = \"c\"\naddresses = [\"192.0.2.1:5060\"]\ninbound = [\"10.0.0.0/33\"]\n", "10.0.0.0/33"),
            ("name = \"c\"\naddresses = [\"192.0.2.1:5060\"]\nrewrite_in = [{ prefix = \"\" }]\n", "needs a prefix"),
            ("name = \"c\"\naddresses = [\"carrier..example\"]\n", "neither IP:port"),
            ("name = \"c\"\naddresses = [\"10.1.2.3\"]\n", "neither IP:port"),
        ] {
            let err = def(text).unwrap_err();
            assert!(err.contains(needle), "{text:?} gave {err}");
        }
        // A host name is resolved by the shell (RFC 3263); it is the domain
        // unless one is given, and the addresses start empty.
        let t = def("name = \"c\"\naddresses = [\"Carrier.Example:5070\"]\n").unwrap();
        assert_eq!(t.resolve, Some(("carrier.example".into(), Some(5070))));
        assert!(t.addresses.is_empty());
        assert_eq!(t.domain, "carrier.example");
    }
}
