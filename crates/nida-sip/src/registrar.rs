//! The registrar (RFC 3261 10.3): softphones REGISTER their contact with
//! digest authentication; nida keeps one binding per user, with the
//! address the REGISTER came from (so calls reach phones behind NAT), and
//! forgets it when it expires.

use crate::auth::{Authenticator, Credentials, Verdict};
use crate::endpoint::Transport;
use crate::headers::{NameAddr, SipUri};
use crate::message::Request;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Where a registered user is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The registered user.
    pub user: String,
    /// The Contact URI (the Request-URI of calls to the user).
    pub contact: String,
    /// Where the REGISTER came from: calls are sent there.
    pub source: SocketAddr,
    /// The transport it came over.
    pub transport: Transport,
    /// When the binding lapses.
    pub expires: Instant,
}

/// A change to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A user registered (or refreshed with another contact).
    Registered(Binding),
    /// A user's binding was removed or expired.
    Unregistered(String),
}

/// How the registrar answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: &'static str,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// What changed, if anything.
    pub change: Option<Change>,
}

impl Reply {
    fn new(status: u16, reason: &'static str) -> Reply {
        Reply {
            status,
            reason,
            headers: Vec::new(),
            change: None,
        }
    }
}

/// Users, their passwords and their bindings.
#[derive(Debug, Clone)]
pub struct Registrar {
    auth: Authenticator,
    users: HashMap<String, String>,
    bindings: HashMap<String, Binding>,
    /// Shortest registration accepted (423 below it).
    pub min_expires: Duration,
    /// Longest registration granted.
    pub max_expires: Duration,
}

impl Registrar {
    /// A registrar checking credentials with `auth` for `users`
    /// (name, password).
    pub fn new(auth: Authenticator, users: impl IntoIterator<Item = (String, String)>) -> Self {
        Registrar {
            auth,
            users: users.into_iter().collect(),
            bindings: HashMap::new(),
            min_expires: Duration::from_secs(60),
            max_expires: Duration::from_secs(3600),
        }
    }

    /// The authenticator (to challenge other requests).
    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    /// A user's password.
    pub fn password(&self, user: &str) -> Option<&str> {
        self.users.get(user).map(String::as_str)
    }

    /// The live binding of a user.
    pub fn lookup(&self, user: &str, now: Instant) -> Option<&Binding> {
        self.bindings.get(user).filter(|b| b.expires > now)
    }

    /// Which registered user sends from this address.
    pub fn user_at(&self, source: SocketAddr, now: Instant) -> Option<&str> {
        self.bindings
            .values()
            .find(|b| b.source == source && b.expires > now)
            .map(|b| b.user.as_str())
    }

    /// The next binding to lapse.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.bindings.values().map(|b| b.expires).min()
    }

    /// Removes lapsed bindings; returns their users.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let gone: Vec<String> = self
            .bindings
            .values()
            .filter(|b| b.expires <= now)
            .map(|b| b.user.clone())
            .collect();
        for u in &gone {
            self.bindings.remove(u);
        }
        gone
    }

    /// Checks the credentials of a request; `None` when they are good,
    /// else the 401 or 403 to answer.
    pub fn authenticate(&self, now: Instant, req: &Request, user: &str) -> Option<Reply> {
        let creds = req
            .headers
            .all("Authorization")
            .filter_map(Credentials::parse)
            .find(|c| c.realm == self.auth.realm());
        let challenge = |stale| {
            let mut r = Reply::new(401, "Unauthorized");
            for c in self.auth.challenges(now, stale) {
                r.headers.push(("WWW-Authenticate", c));
            }
            r
        };
        let Some(creds) = creds else {
            return Some(challenge(false));
        };
        let password = if creds.username == user {
            self.password(user)
        } else {
            None
        };
        match self.auth.check(now, &creds, req.method.as_str(), password) {
            Verdict::Ok => None,
            Verdict::Stale => Some(challenge(true)),
            Verdict::Denied => Some(Reply::new(403, "Forbidden")),
        }
    }

    /// Answers a REGISTER.
    pub fn handle(
        &mut self,
        now: Instant,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
    ) -> Reply {
        let user = req
            .headers
            .get("To")
            .and_then(|t| NameAddr::parse(t).ok())
            .and_then(|n| SipUri::parse(&n.uri))
            .and_then(|u| u.user);
        let Some(user) = user else {
            return Reply::new(400, "Bad Request");
        };
        if let Some(denied) = self.authenticate(now, req, &user) {
            return denied;
        }
        let header_expires = req
            .headers
            .get("Expires")
            .and_then(|e| e.trim().parse::<u64>().ok());
        let contact = req.headers.list("Contact").next().map(str::trim);
        let mut reply = Reply::new(200, "OK");
        match contact {
            None => {}
            Some("*") => {
                if header_expires != Some(0) {
                    return Reply::new(400, "Bad Request");
                }
                if self.bindings.remove(&user).is_some() {
                    reply.change = Some(Change::Unregistered(user.clone()));
                }
            }
            Some(c) => {
                let Ok(na) = NameAddr::parse(c) else {
                    return Reply::new(400, "Bad Request");
                };
                let secs = na
                    .params
                    .value("expires")
                    .and_then(|e| e.parse::<u64>().ok())
                    .or(header_expires)
                    .unwrap_or(3600);
                if secs == 0 {
                    if self.bindings.remove(&user).is_some() {
                        reply.change = Some(Change::Unregistered(user.clone()));
                    }
                } else if secs < self.min_expires.as_secs() {
                    let mut r = Reply::new(423, "Interval Too Brief");
                    r.headers
                        .push(("Min-Expires", self.min_expires.as_secs().to_string()));
                    return r;
                } else {
                    let secs = secs.min(self.max_expires.as_secs());
                    let binding = Binding {
                        user: user.clone(),
                        contact: na.uri.clone(),
                        source,
                        transport,
                        expires: now + Duration::from_secs(secs),
                    };
                    let changed = self
                        .bindings
                        .get(&user)
                        .is_none_or(|b| b.contact != binding.contact || b.source != source);
                    self.bindings.insert(user.clone(), binding.clone());
                    if changed {
                        reply.change = Some(Change::Registered(binding));
                    }
                }
            }
        }
        if let Some(b) = self.lookup(&user, now) {
            let left = b.expires.saturating_duration_since(now).as_secs();
            reply
                .headers
                .push(("Contact", format!("<{}>;expires={left}", b.contact)));
        }
        reply
    }
}
