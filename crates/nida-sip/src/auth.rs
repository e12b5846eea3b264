//! HTTP Digest authentication for SIP (RFC 3261 22, RFC 7616, RFC 8760):
//! challenges with MD5 and SHA-256, parsing of `Authorization`, checking a
//! response, and computing one as a client.
//!
//! Nonces carry their issue time and a keyed hash of it and the realm
//! (the key comes from the OS CSPRNG at start), so any nonce nida issued
//! can be checked without a table of nonces, and an old one is answered
//! with a fresh challenge marked `stale=true`. What is kept is the highest
//! `nc` accepted per nonce: a captured `Authorization` sent again (from
//! anywhere) is refused. nida offers `qop=auth` only and refuses answers
//! without it (their response is the same for every request).
//!
//! Secrets are a user's password or, as kept in the store, its HA1 for
//! MD5 and SHA-256 (`H(user:realm:password)`): the password itself need
//! not be kept.

use md5::Md5;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// A digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (RFC 2617), what most softphones speak.
    Md5,
    /// SHA-256 (RFC 7616, RFC 8760).
    Sha256,
}

impl Algorithm {
    /// The token in `algorithm=`.
    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn parse(s: &str) -> Option<Algorithm> {
        if s.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// Lower-case hex of the hash of `data`.
    pub fn hex(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => to_hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => to_hex(&Sha256::digest(data.as_bytes())),
        }
    }
}

/// A user's secret: the password, or its HA1 per algorithm.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The password (from the configuration file).
    Password(String),
    /// `H(user:realm:password)` for MD5 and for SHA-256, lower-case hex.
    Ha1 {
        /// With MD5.
        md5: String,
        /// With SHA-256.
        sha256: String,
    },
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// The HA1s of `password` for `user` in `realm`.
    pub fn ha1s(user: &str, realm: &str, password: &str) -> Secret {
        let a1 = format!("{user}:{realm}:{password}");
        Secret::Ha1 {
            md5: Algorithm::Md5.hex(&a1),
            sha256: Algorithm::Sha256.hex(&a1),
        }
    }

    /// The HA1 for `alg`.
    pub fn ha1(&self, alg: Algorithm, user: &str, realm: &str) -> String {
        match (self, alg) {
            (Secret::Password(p), a) => a.hex(&format!("{user}:{realm}:{p}")),
            (Secret::Ha1 { md5, .. }, Algorithm::Md5) => md5.clone(),
            (Secret::Ha1 { sha256, .. }, Algorithm::Sha256) => sha256.clone(),
        }
    }

    /// Whether `password` is this secret (for `user` in `realm`), in time
    /// that does not depend on where they differ.
    pub fn matches(&self, user: &str, realm: &str, password: &str) -> bool {
        let given = Algorithm::Sha256.hex(&format!("{user}:{realm}:{password}"));
        constant_eq(
            self.ha1(Algorithm::Sha256, user, realm).as_bytes(),
            given.as_bytes(),
        )
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The fields of a Digest `Authorization` (or `Proxy-Authorization`)
/// header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `username`.
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `uri`.
    pub uri: String,
    /// `response`.
    pub response: String,
    /// `algorithm` (MD5 when absent).
    pub algorithm: String,
    /// `qop`, if any.
    pub qop: Option<String>,
    /// `nc`.
    pub nc: Option<String>,
    /// `cnonce`.
    pub cnonce: Option<String>,
    /// `opaque`.
    pub opaque: Option<String>,
}

/// Splits `k=v, k="v, with comma"` into pairs, unquoting values.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            // Quoted string with backslash escapes.
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            (v, &q[end.min(q.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.push((key, value));
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

impl Credentials {
    /// Parses a `Digest ...` header value; `None` for another scheme or
    /// when a required field is missing.
    pub fn parse(value: &str) -> Option<Credentials> {
        let v = value.trim();
        let (scheme, rest) = v.split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return None;
        }
        let mut c = Credentials {
            algorithm: "MD5".into(),
            ..Default::default()
        };
        for (k, v) in params(rest) {
            match k.as_str() {
                "username" => c.username = v,
                "realm" => c.realm = v,
                "nonce" => c.nonce = v,
                "uri" => c.uri = v,
                "response" => c.response = v.to_ascii_lowercase(),
                "algorithm" => c.algorithm = v,
                "qop" => c.qop = Some(v),
                "nc" => c.nc = Some(v),
                "cnonce" => c.cnonce = Some(v),
                "opaque" => c.opaque = Some(v),
                _ => {}
            }
        }
        if c.username.is_empty() || c.nonce.is_empty() || c.response.is_empty() {
            return None;
        }
        Some(c)
    }

    /// The response these credentials should carry for `password` and
    /// `method` (RFC 7616 3.4.1); `None` for an unknown algorithm or qop.
    pub fn expected(&self, method: &str, password: &str) -> Option<String> {
        self.expected_with(method, &Secret::Password(password.into()))
    }

    /// [`Credentials::expected`] for a [`Secret`].
    pub fn expected_with(&self, method: &str, secret: &Secret) -> Option<String> {
        let alg = Algorithm::parse(&self.algorithm)?;
        let ha1 = secret.ha1(alg, &self.username, &self.realm);
        let ha2 = alg.hex(&format!("{method}:{}", self.uri));
        match self.qop.as_deref() {
            None => Some(alg.hex(&format!("{ha1}:{}:{ha2}", self.nonce))),
            Some(q) if q.eq_ignore_ascii_case("auth") => Some(alg.hex(&format!(
                "{ha1}:{}:{}:{}:auth:{ha2}",
                self.nonce,
                self.nc.as_deref()?,
                self.cnonce.as_deref()?
            ))),
            Some(_) => None,
        }
    }
}

/// The client side: the `Authorization` value answering a challenge
/// (`WWW-Authenticate` or `Proxy-Authenticate` value), the first request
/// with its nonce (`nc=00000001`).
pub fn answer(
    challenge: &str,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
) -> Option<String> {
    answer_nc(challenge, method, uri, username, password, cnonce, 1)
}

/// [`answer`] for the `nc`-th request with the challenge's nonce.
pub fn answer_nc(
    challenge: &str,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Option<String> {
    let rest = challenge.trim().strip_prefix("Digest")?;
    let p = params(rest);
    let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let realm = get("realm")?;
    let nonce = get("nonce")?;
    let algorithm = get("algorithm").unwrap_or_else(|| "MD5".into());
    let qop = get("qop").map(|q| {
        if q.split(',').any(|x| x.trim().eq_ignore_ascii_case("auth")) {
            "auth".to_string()
        } else {
            q
        }
    });
    let c = Credentials {
        username: username.into(),
        realm: realm.clone(),
        nonce: nonce.clone(),
        uri: uri.into(),
        response: String::new(),
        algorithm: algorithm.clone(),
        nc: qop.as_ref().map(|_| format!("{nc:08x}")),
        cnonce: qop.as_ref().map(|_| cnonce.into()),
        qop: qop.clone(),
        opaque: get("opaque"),
    };
    let response = c.expected(method, password)?;
    let mut v = format!(
        "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm={algorithm}"
    );
    if qop.is_some() {
        v.push_str(&format!(", qop=auth, nc={nc:08x}, cnonce=\"{cnonce}\""));
    }
    if let Some(o) = &c.opaque {
        v.push_str(&format!(", opaque=\"{o}\""));
    }
    Some(v)
}

/// What checking credentials concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The response is right and the nonce fresh.
    Ok,
    /// The response is right but the nonce is old: challenge again with
    /// `stale=true`.
    Stale,
    /// Wrong user, wrong password, a nonce nida did not issue, another
    /// realm, no `qop`, an `nc` already used with this nonce (a replay):
    /// the same answer for all, so nothing tells which.
    Denied,
}

/// Nonces whose highest `nc` is remembered, at most: past it the oldest
/// are forgotten first (they are stale by then at any sane rate).
const MAX_NONCES: usize = 65_536;

/// Issues and checks challenges for one realm.
#[derive(Clone)]
pub struct Authenticator {
    realm: String,
    secret: String,
    epoch: Instant,
    lifetime: Duration,
    algorithms: Vec<Algorithm>,
    /// Per (nonce, user, cnonce): the nonce's issue second and the
    /// highest `nc` accepted. Nonces are per second, not per client, so
    /// a client is its user and cnonce; a replay repeats all three.
    counts: std::collections::HashMap<(String, String, String), (u64, u32)>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("realm", &self.realm)
            .field("nonces", &self.counts.len())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An authenticator for `realm` whose nonces are keyed with `secret`
    /// (random per start) and valid for `lifetime`.
    pub fn new(realm: &str, secret: &str, epoch: Instant, lifetime: Duration) -> Authenticator {
        Authenticator {
            realm: realm.into(),
            secret: secret.into(),
            epoch,
            lifetime,
            algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
            counts: std::collections::HashMap::new(),
        }
    }

    /// Sets the challenges offered, in order. Clients should answer the
    /// first they support (RFC 8760 2.4), but some (baresip 1.0 among
    /// them) give up at an algorithm they do not know, so the default
    /// offers MD5 first and SHA-256 second.
    pub fn with_algorithms(mut self, algorithms: Vec<Algorithm>) -> Authenticator {
        if !algorithms.is_empty() {
            self.algorithms = algorithms;
        }
        self
    }

    /// Parses `MD5` or `SHA-256` (any case).
    pub fn algorithm(name: &str) -> Option<Algorithm> {
        Algorithm::parse(name)
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    fn nonce_at(&self, secs: u64) -> String {
        let mac = Algorithm::Sha256.hex(&format!("{}:{secs}:{}", self.secret, self.realm));
        format!("{secs:x}.{}", &mac[..32])
    }

    /// The challenge header values, in the configured order.
    pub fn challenges(&self, now: Instant, stale: bool) -> Vec<String> {
        let secs = now.saturating_duration_since(self.epoch).as_secs();
        let nonce = self.nonce_at(secs);
        self.algorithms
            .iter()
            .map(|a| {
                let mut v = format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
                    self.realm,
                    a.token()
                );
                if stale {
                    v.push_str(", stale=true");
                }
                v
            })
            .collect()
    }

    /// Checks credentials for `method`; `password` is looked up by the
    /// caller from `creds.username` (`None`: unknown user).
    pub fn check(
        &mut self,
        now: Instant,
        creds: &Credentials,
        method: &str,
        password: Option<&str>,
    ) -> Verdict {
        let secret = password.map(|p| Secret::Password(p.into()));
        self.check_secret(now, creds, method, secret.as_ref())
    }

    /// [`Authenticator::check`] with the user's [`Secret`].
    pub fn check_secret(
        &mut self,
        now: Instant,
        creds: &Credentials,
        method: &str,
        secret: Option<&Secret>,
    ) -> Verdict {
        let Some(secret) = secret else {
            // Compute as for a real user anyway, so the answer's timing
            // does not tell unknown users from wrong passwords.
            let _ = creds.expected(method, "");
            return Verdict::Denied;
        };
        if creds.realm != self.realm {
            return Verdict::Denied;
        }
        // nida asks for qop=auth; without it the same response would be
        // good for every request with this nonce.
        let nc = match (creds.qop.as_deref(), creds.nc.as_deref()) {
            (Some(q), Some(nc)) if q.eq_ignore_ascii_case("auth") => {
                match u32::from_str_radix(nc, 16) {
                    Ok(n) if n > 0 && nc.len() == 8 => n,
                    _ => return Verdict::Denied,
                }
            }
            _ => return Verdict::Denied,
        };
        let Some((secs, _)) = creds.nonce.split_once('.') else {
            return Verdict::Denied;
        };
        let Ok(secs) = u64::from_str_radix(secs, 16) else {
            return Verdict::Denied;
        };
        if self.nonce_at(secs) != creds.nonce {
            return Verdict::Denied;
        }
        match creds.expected_with(method, secret) {
            Some(r) if constant_eq(r.as_bytes(), creds.response.as_bytes()) => {
                let now_secs = now.saturating_duration_since(self.epoch).as_secs();
                if now_secs.saturating_sub(secs) > self.lifetime.as_secs() {
                    return Verdict::Stale;
                }
                let client = (
                    creds.nonce.clone(),
                    creds.username.clone(),
                    creds.cnonce.clone().unwrap_or_default(),
                );
                self.count(now_secs, client, secs, nc)
            }
            _ => Verdict::Denied,
        }
    }

    /// Takes `nc` for a good answer from a client to a nonce issued at `secs` only if
    /// it is higher than every one taken before: a replay is refused.
    fn count(
        &mut self,
        now_secs: u64,
        client: (String, String, String),
        secs: u64,
        nc: u32,
    ) -> Verdict {
        if let Some((_, last)) = self.counts.get(&client) {
            if nc <= *last {
                return Verdict::Denied;
            }
        } else if self.counts.len() >= MAX_NONCES {
            // Stale nonces can never be used again: forget them first.
            let lifetime = self.lifetime.as_secs();
            self.counts
                .retain(|_, (issued, _)| now_secs.saturating_sub(*issued) <= lifetime);
            if self.counts.len() >= MAX_NONCES {
                let oldest = self
                    .counts
                    .iter()
                    .min_by_key(|(_, (t, _))| *t)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.counts.remove(&k);
                }
            }
        }
        self.counts.insert(client, (secs, nc));
        Verdict::Ok
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 3.9.1: the same request with SHA-256 and with MD5.
    fn rfc7616(algorithm: &str, response: &str) -> Credentials {
        Credentials {
            username: "Mufasa".into(),
            realm: "http-auth@example.org".into(),
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
            uri: "/dir/index.html".into(),
            response: response.into(),
            algorithm: algorithm.into(),
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ".into()),
            opaque: Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS".into()),
        }
    }

    #[test]
    fn rfc7616_examples() {
        let sha = rfc7616(
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        );
        assert_eq!(
            sha.expected("GET", "Circle of Life").as_deref(),
            Some(sha.response.as_str())
        );
        let md5 = rfc7616("MD5", "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(
            md5.expected("GET", "Circle of Life").as_deref(),
            Some(md5.response.as_str())
        );
    }

    /// RFC 2617 3.5 (MD5, qop=auth).
    #[test]
    fn rfc2617_example_parsed_from_the_header() {
        let h = r#"Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let c = Credentials::parse(h).unwrap();
        assert_eq!(c.cnonce.as_deref(), Some("0a4f113b"));
        assert_eq!(c.algorithm, "MD5");
        assert_eq!(
            c.expected("GET", "Circle Of Life").as_deref(),
            Some("6629fae49393a05397450978507c4ef1")
        );
        assert_eq!(Credentials::parse("Basic QWxhZGRpbjpvcGVu"), None);
    }

    #[test]
    fn challenge_answer_check_both_algorithms() {
        let t0 = Instant::now();
        let mut a = Authenticator::new("nida", "k3y", t0, Duration::from_secs(300));
        let now = t0 + Duration::from_secs(5);
        let ch = a.challenges(now, false);
        assert!(ch[0].contains("algorithm=MD5"), "{ch:?}");
        assert!(ch[1].contains("algorithm=SHA-256"));
        let strong = a
            .clone()
            .with_algorithms(vec![Algorithm::Sha256, Algorithm::Md5]);
        assert!(strong.challenges(now, false)[0].contains("SHA-256"));
        for c in &ch {
            let v = answer(c, "REGISTER", "sip:nida", "1001", "s3cret", "abc").unwrap();
            let creds = Credentials::parse(&v).unwrap();
            let mut fresh = a.clone();
            assert_eq!(
                fresh.check(now, &creds, "REGISTER", Some("s3cret")),
                Verdict::Ok
            );
            // The same Authorization again: a replay.
            assert_eq!(
                fresh.check(now, &creds, "REGISTER", Some("s3cret")),
                Verdict::Denied
            );
            assert_eq!(
                a.check(now, &creds, "REGISTER", Some("wrong")),
                Verdict::Denied
            );
            assert_eq!(a.check(now, &creds, "REGISTER", None), Verdict::Denied);
            assert_eq!(
                a.check(now, &creds, "INVITE", Some("s3cret")),
                Verdict::Denied
            );
            let later = now + Duration::from_secs(301);
            assert_eq!(
                a.check(later, &creds, "REGISTER", Some("s3cret")),
                Verdict::Stale
            );
            // A nonce from another secret (another instance, a forgery).
            let mut other = Authenticator::new("nida", "other", t0, Duration::from_secs(300));
            assert_eq!(
                other.check(now, &creds, "REGISTER", Some("s3cret")),
                Verdict::Denied
            );
        }
    }

    #[test]
    fn nonce_counts_must_rise_and_qop_is_required() {
        let t0 = Instant::now();
        let mut a = Authenticator::new("nida", "k3y", t0, Duration::from_secs(300));
        let ch = &a.challenges(t0, false)[0];
        let with_nc = |nc: &str| {
            let v = answer(ch, "REGISTER", "sip:nida", "1001", "pw", "cn").unwrap();
            let mut c = Credentials::parse(&v).unwrap();
            c.nc = Some(nc.into());
            c.response = c.expected("REGISTER", "pw").unwrap();
            c
        };
        // Each nc must be higher than the last taken; junk is refused.
        for (nc, verdict) in [
            ("00000002", Verdict::Ok),
            ("00000001", Verdict::Denied),
            ("00000002", Verdict::Denied),
            ("00000003", Verdict::Ok),
            ("zz", Verdict::Denied),
        ] {
            assert_eq!(
                a.check(t0, &with_nc(nc), "REGISTER", Some("pw")),
                verdict,
                "nc {nc}"
            );
        }
        // RFC 2069 style, without qop: refused.
        let mut old = with_nc("00000004");
        old.qop = None;
        old.nc = None;
        old.cnonce = None;
        old.response = old.expected("REGISTER", "pw").unwrap();
        assert_eq!(a.check(t0, &old, "REGISTER", Some("pw")), Verdict::Denied);
    }

    #[test]
    fn a_stored_ha1_checks_like_the_password() {
        let t0 = Instant::now();
        let a = Authenticator::new("nida", "k3y", t0, Duration::from_secs(300));
        let stored = Secret::ha1s("1001", "nida", "s3cret");
        assert!(stored.matches("1001", "nida", "s3cret"));
        assert!(!stored.matches("1001", "nida", "s3cret "));
        for ch in a.challenges(t0, false) {
            let v = answer(&ch, "REGISTER", "sip:nida", "1001", "s3cret", "x").unwrap();
            let c = Credentials::parse(&v).unwrap();
            assert_eq!(
                a.clone().check_secret(t0, &c, "REGISTER", Some(&stored)),
                Verdict::Ok
            );
        }
    }
}
