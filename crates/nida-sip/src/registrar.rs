//! The registrar (RFC 3261 10.3): softphones REGISTER their contact with
//! digest authentication; nida keeps one binding per user, with the
//! address the REGISTER came from (so calls reach phones behind NAT), and
//! forgets it when it expires.
//!
//! Guessing is bounded per target user as well as per source (the guard's
//! part): after `max_user_failures` refusals within `failure_window` a user
//! is locked for `user_lock`, except from the address its phone is
//! registered from, so a guesser spreading over many addresses gets
//! nowhere and cannot lock an agent's own phone out either.

use crate::auth::{Authenticator, Credentials, Secret, Verdict};
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
    /// The extra headers as name and value, for the endpoint's answer.
    pub fn header_pairs(&self) -> Vec<(&str, &str)> {
        self.headers.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    fn new(status: u16, reason: &'static str) -> Reply {
        Reply {
            status,
            reason,
            headers: Vec::new(),
            change: None,
        }
    }
}

impl From<String> for Secret {
    fn from(password: String) -> Secret {
        Secret::Password(password)
    }
}

/// Users, their secrets and their bindings.
#[derive(Debug, Clone)]
pub struct Registrar {
    auth: Authenticator,
    users: HashMap<String, Secret>,
    bindings: HashMap<String, Binding>,
    /// Refusals per user within `failure_window`.
    failures: HashMap<String, Vec<Instant>>,
    /// Users locked until then (except from their registered address).
    locked: HashMap<String, Instant>,
    /// Shortest registration accepted (423 below it).
    pub min_expires: Duration,
    /// Longest registration granted.
    pub max_expires: Duration,
    /// Refusals for one user within `failure_window` that lock it.
    pub max_user_failures: usize,
    /// The window in which refusals count.
    pub failure_window: Duration,
    /// How long a user stays locked.
    pub user_lock: Duration,
}

impl Registrar {
    /// A registrar checking credentials with `auth` for `users` (name and
    /// password, or the HA1s kept in the store).
    pub fn new<S: Into<Secret>>(
        auth: Authenticator,
        users: impl IntoIterator<Item = (String, S)>,
    ) -> Self {
        Registrar {
            auth,
            users: users.into_iter().map(|(u, s)| (u, s.into())).collect(),
            bindings: HashMap::new(),
            failures: HashMap::new(),
            locked: HashMap::new(),
            min_expires: Duration::from_secs(60),
            max_expires: Duration::from_secs(3600),
            max_user_failures: 20,
            failure_window: Duration::from_secs(60),
            user_lock: Duration::from_secs(600),
        }
    }

    /// The authenticator (to challenge other requests).
    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    /// A user's secret.
    pub fn secret(&self, user: &str) -> Option<&Secret> {
        self.users.get(user)
    }

    /// Whether `user` is locked for requests from `source` now.
    pub fn is_locked(&self, now: Instant, user: &str, source: SocketAddr) -> bool {
        let own = self
            .lookup(user, now)
            .is_some_and(|b| b.source.ip() == source.ip());
        !own && self.locked.get(user).is_some_and(|until| now < *until)
    }

    /// A refusal for `user`: counts towards its lock.
    fn failed(&mut self, now: Instant, user: &str) {
        if !self.users.contains_key(user) {
            return;
        }
        let window = self.failure_window;
        let f = self.failures.entry(user.to_string()).or_default();
        f.retain(|t| now.saturating_duration_since(*t) < window);
        f.push(now);
        if f.len() >= self.max_user_failures {
            f.clear();
            self.locked.insert(user.to_string(), now + self.user_lock);
        }
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

    /// Removes the bindings registered over one connection (a closed
    /// WebSocket); returns their users.
    pub fn drop_connection(&mut self, transport: Transport, source: SocketAddr) -> Vec<String> {
        self.remove_where(|b| b.transport == transport && b.source == source)
    }

    /// Removes lapsed bindings; returns their users.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        self.remove_where(|b| b.expires <= now)
    }

    fn remove_where(&mut self, gone: impl Fn(&Binding) -> bool) -> Vec<String> {
        let mut users = Vec::new();
        self.bindings.retain(|user, b| {
            let keep = !gone(b);
            if !keep {
                users.push(user.clone());
            }
            keep
        });
        users
    }

    /// Checks the credentials of a request from `source` for `user` (any
    /// known user when `None`); the user when they are good, else the 401
    /// or 403 to answer.
    pub fn authenticate(
        &mut self,
        now: Instant,
        req: &Request,
        source: SocketAddr,
        user: Option<&str>,
    ) -> Result<String, Box<Reply>> {
        let creds = req
            .headers
            .all("Authorization")
            .filter_map(Credentials::parse)
            .find(|c| c.realm == self.auth.realm());
        let challenge = |auth: &Authenticator, stale| {
            let mut r = Reply::new(401, "Unauthorized");
            for c in auth.challenges(now, stale) {
                r.headers.push(("WWW-Authenticate", c));
            }
            r
        };
        let Some(creds) = creds else {
            return Err(Box::new(challenge(&self.auth, false)));
        };
        let name = creds.username.clone();
        if user.is_some_and(|u| u != name) || self.is_locked(now, &name, source) {
            // The same work and answer as a wrong password.
            let _ = creds.expected(req.method.as_str(), "");
            self.failed(now, &name);
            return Err(Box::new(Reply::new(403, "Forbidden")));
        }
        let secret = self.users.get(&name).cloned();
        match self
            .auth
            .check_secret(now, &creds, req.method.as_str(), secret.as_ref())
        {
            Verdict::Ok => {
                self.failures.remove(&name);
                Ok(name)
            }
            Verdict::Stale => Err(Box::new(challenge(&self.auth, true))),
            Verdict::Denied => {
                self.failed(now, &name);
                Err(Box::new(Reply::new(403, "Forbidden")))
            }
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
        if let Err(denied) = self.authenticate(now, req, source, Some(&user)) {
            return *denied;
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
