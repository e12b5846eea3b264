//! How the configuration file's plain values (seconds, names, address
//! ranges) become typed settings while the file is read, so a wrong value
//! is reported by the TOML reader with its line and column.

use nida_sip::auth::Algorithm;
use nida_sip::guard::Cidr;
use nida_sip::sdp::Codec;
use serde::de::Error;
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// A whole number of seconds.
pub fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

/// A whole number of milliseconds.
pub fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

/// A name where the empty string means "none".
pub fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    Ok((!s.is_empty()).then_some(s))
}

/// Codec names, any case: `PCMU`, `PCMA`, `G722`.
pub fn codecs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Codec>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|c| match c.to_ascii_uppercase().as_str() {
            "PCMU" => Ok(Codec::Pcmu),
            "PCMA" => Ok(Codec::Pcma),
            "G722" => Ok(Codec::G722),
            _ => Err(D::Error::custom(format!("{c:?} is not PCMU, PCMA or G722"))),
        })
        .collect()
}

/// Digest algorithm names: `MD5`, `SHA-256`.
pub fn algorithms<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Algorithm>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|a| {
            nida_sip::auth::Authenticator::algorithm(a)
                .ok_or_else(|| D::Error::custom(format!("{a:?} is not MD5 or SHA-256")))
        })
        .collect()
}

/// Networks: an address, or `ADDR/BITS`.
pub fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Cidr>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|c| {
            Cidr::parse(c)
                .ok_or_else(|| D::Error::custom(format!("{c:?} is not an address or ADDR/BITS")))
        })
        .collect()
}

/// `[[trunks]]` entries, each checked on its own.
pub fn trunks<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<nida_sip::trunk::TrunkConfig>, D::Error> {
    Vec::<super::trunks::TrunkDef>::deserialize(d)?
        .iter()
        .map(|t| t.to_config().map_err(D::Error::custom))
        .collect()
}

/// A queue's strategy by name.
pub fn strategy<'de, D: Deserializer<'de>>(d: D) -> Result<nida_acd::Strategy, D::Error> {
    use nida_acd::Strategy::*;
    let s = String::deserialize(d)?;
    Ok(match s.as_str() {
        "longest_idle" => LongestIdle,
        "best_skill" => BestSkill,
        "round_robin" => RoundRobin,
        "fewest_calls" => FewestCalls,
        "ring_all" => RingAll,
        "weighted_random" => WeightedRandom,
        _ => {
            return Err(D::Error::custom(format!(
                "unknown strategy {s:?} (longest_idle, best_skill, round_robin, \
                 fewest_calls, ring_all, weighted_random)"
            )))
        }
    })
}
