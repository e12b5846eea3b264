//! Carrier trunks given by host name (RFC 3263): NAPTR, then SRV, then A
//! and AAAA, with hickory-resolver, on a task per named trunk that asks
//! again when the answers' time to live runs out. The order and names are
//! the sans-IO [`nida_sip::srv`]; the addresses go to the driver, which
//! hands them to the trunks' machine.

use crate::base::bus::ToDriver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use nida_sip::srv::{self, SrvTarget};
use nida_sip::Transport;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// The shortest and longest wait before asking again.
const MIN_REFRESH: Duration = Duration::from_secs(30);
const MAX_REFRESH: Duration = Duration::from_secs(3600);

/// What resolving a trunk's name failed on.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The resolver could not be set up (no resolv.conf, say).
    #[error("cannot set up the resolver: {0}")]
    Setup(String),
    /// No address came out of NAPTR, SRV and A/AAAA.
    #[error("{0} has no address (NAPTR, SRV, A, AAAA)")]
    NoAddress(String),
}

/// A resolver asking `servers` (the system's when empty).
pub fn resolver(servers: &[SocketAddr]) -> Result<TokioResolver, DnsError> {
    if servers.is_empty() {
        return Resolver::builder_tokio()
            .and_then(|b| b.build())
            .map_err(|e| DnsError::Setup(e.to_string()));
    }
    let name_servers = servers
        .iter()
        .map(|s| {
            let mut udp = ConnectionConfig::udp();
            udp.port = s.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = s.port();
            NameServerConfig::new(s.ip(), true, vec![udp, tcp])
        })
        .collect();
    let config = ResolverConfig::from_parts(None, Vec::new(), name_servers);
    Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .build()
        .map_err(|e| DnsError::Setup(e.to_string()))
}

/// A trunk's addresses in the order to try, and how long they hold.
pub async fn resolve(
    r: &TokioResolver,
    host: &str,
    port: Option<u16>,
    transport: Transport,
) -> Result<(Vec<SocketAddr>, Duration), DnsError> {
    let mut ttl = MAX_REFRESH;
    let mut targets: Vec<(String, u16)> = Vec::new();
    if let Some(port) = port {
        // A port given: A and AAAA only (RFC 3263 4.2).
        targets.push((host.to_string(), port));
    } else {
        // NAPTR: the SRV name for this transport, when the domain has one.
        let mut srv_name = srv::srv_name(host, transport);
        if let Ok(naptr) = r.lookup(host, RecordType::NAPTR).await {
            let mut best: Option<(u16, u16, String)> = None;
            for rec in naptr.answers() {
                ttl = ttl.min(Duration::from_secs(u64::from(rec.ttl)));
                if let RData::NAPTR(n) = &rec.data {
                    let service = String::from_utf8_lossy(&n.services).to_ascii_uppercase();
                    let srv_flag = n.flags.eq_ignore_ascii_case(b"s");
                    if srv_flag && service == srv::naptr_service(transport) {
                        let cand = (n.order, n.preference, n.replacement.to_string());
                        if best.as_ref().is_none_or(|b| (cand.0, cand.1) < (b.0, b.1)) {
                            best = Some(cand);
                        }
                    }
                }
            }
            if let Some((_, _, name)) = best {
                srv_name = name;
            }
        }
        let mut records = Vec::new();
        if let Ok(found) = r.lookup(srv_name.as_str(), RecordType::SRV).await {
            for rec in found.answers() {
                ttl = ttl.min(Duration::from_secs(u64::from(rec.ttl)));
                if let RData::SRV(s) = &rec.data {
                    records.push(SrvTarget {
                        priority: s.priority,
                        weight: s.weight,
                        port: s.port,
                        target: s.target.to_string(),
                    });
                }
            }
        }
        let mut rng = nida_sip::rng::Rng::from_os();
        let ordered = srv::order(records, |n| rng.next_u32() % (n + 1));
        if ordered.is_empty() {
            // No SRV: the name itself, on the transport's port.
            targets.push((host.to_string(), srv::default_port(transport)));
        }
        targets.extend(ordered.into_iter().map(|t| (t.target, t.port)));
    }
    let mut addrs = Vec::new();
    for (name, port) in targets {
        if let Ok(ips) = r.lookup_ip(name.as_str()).await {
            let until = ips.valid_until();
            let left = until.saturating_duration_since(std::time::Instant::now());
            ttl = ttl.min(left);
            for ip in ips.iter() {
                let a = SocketAddr::new(ip, port);
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
        }
    }
    if addrs.is_empty() {
        return Err(DnsError::NoAddress(host.to_string()));
    }
    Ok((addrs, ttl.clamp(MIN_REFRESH, MAX_REFRESH)))
}

/// Follows a trunk's name for as long as the driver runs: resolves it,
/// sends the addresses, waits for their time to live, again.
pub async fn follow(
    trunk: String,
    (host, port): (String, Option<u16>),
    transport: Transport,
    servers: Vec<SocketAddr>,
    driver: mpsc::Sender<ToDriver>,
) {
    let r = match resolver(&servers) {
        Ok(r) => r,
        Err(e) => {
            warn!(%trunk, error = %e, "trunk host names will not be resolved");
            return;
        }
    };
    let mut last = Vec::new();
    loop {
        let wait = match resolve(&r, &host, port, transport).await {
            Ok((addrs, ttl)) => {
                if addrs != last {
                    info!(%trunk, %host, addresses = ?addrs, "trunk resolved");
                    last = addrs.clone();
                    if driver
                        .send(ToDriver::TrunkAddresses(trunk.clone(), addrs))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                ttl
            }
            Err(e) => {
                warn!(%trunk, error = %e, "trunk not resolved; asking again");
                MIN_REFRESH
            }
        };
        tokio::time::sleep(wait).await;
    }
}
