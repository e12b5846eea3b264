//! RFC 3263 and RFC 2782 for carrier trunks given by host name, sans-IO:
//! which NAPTR service a transport takes, the SRV name to ask for, and the
//! order to try SRV targets in (by priority, then weighted at random). The
//! shell asks a resolver and hands the addresses to [`crate::trunk`].

use crate::Transport;

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvTarget {
    /// Lower goes first.
    pub priority: u16,
    /// Share among targets of one priority.
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Host to resolve.
    pub target: String,
}

/// The NAPTR service of a transport (RFC 3263 4.1).
pub fn naptr_service(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "SIP+D2U",
        Transport::Tcp => "SIP+D2T",
        Transport::Tls => "SIPS+D2T",
        // RFC 7118 10.
        Transport::Ws => "SIP+D2W",
        Transport::Wss => "SIPS+D2W",
    }
}

/// The SRV name for a domain and transport (RFC 3263 4.2).
pub fn srv_name(domain: &str, t: Transport) -> String {
    let domain = domain.trim_end_matches('.');
    match t {
        Transport::Udp => format!("_sip._udp.{domain}."),
        Transport::Tcp => format!("_sip._tcp.{domain}."),
        Transport::Tls => format!("_sips._tcp.{domain}."),
        Transport::Ws => format!("_sip._ws.{domain}."),
        Transport::Wss => format!("_sips._ws.{domain}."),
    }
}

/// The default port of a transport when neither the address nor SRV
/// names one.
pub fn default_port(t: Transport) -> u16 {
    match t {
        Transport::Tls => 5061,
        _ => 5060,
    }
}

/// The order to try targets in (RFC 2782): ascending priority; within a
/// priority, each next one drawn with a chance proportional to its weight
/// (zero-weight targets are tried last among equals, in a draw of their
/// own). `draw(n)` returns a number in `0..=n`. A single target "." means
/// the service is not offered: none.
pub fn order(mut records: Vec<SrvTarget>, mut draw: impl FnMut(u32) -> u32) -> Vec<SrvTarget> {
    if records.len() == 1 && records[0].target.trim_end_matches('.').is_empty() {
        return Vec::new();
    }
    records.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(records.len());
    let mut i = 0;
    while i < records.len() {
        let p = records[i].priority;
        let end = records[i..]
            .iter()
            .position(|r| r.priority != p)
            .map_or(records.len(), |n| i + n);
        let mut group: Vec<SrvTarget> = records[i..end].to_vec();
        // Zero weights first, as RFC 2782 lays the list out.
        group.sort_by_key(|r| r.weight != 0);
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let pick = draw(total);
            let mut run = 0u32;
            let at = group
                .iter()
                .position(|r| {
                    run += u32::from(r.weight);
                    run >= pick && (r.weight > 0 || total == 0 || pick == 0)
                })
                .unwrap_or(group.len() - 1);
            out.push(group.remove(at));
        }
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(priority: u16, weight: u16, target: &str) -> SrvTarget {
        SrvTarget {
            priority,
            weight,
            port: 5060,
            target: target.into(),
        }
    }

    #[test]
    fn priority_first_then_weight() {
        let recs = vec![t(20, 0, "c"), t(10, 10, "a"), t(10, 90, "b")];
        // Draws of 0..=total: 95 falls in b's share (10 < 95 <= 100).
        let o = order(recs.clone(), |n| n.min(95));
        let names: Vec<&str> = o.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(names, ["b", "a", "c"]);
        // 5 falls in a's share.
        let o = order(recs, |n| n.min(5));
        assert_eq!(o[0].target, "a");
        assert_eq!(o[2].target, "c", "priority 20 after all of 10");
    }

    #[test]
    fn weights_share_the_first_place_in_proportion() {
        let recs = vec![t(10, 25, "a"), t(10, 75, "b")];
        let mut x: u32 = 12345;
        let mut first_b = 0;
        for _ in 0..4000 {
            let o = order(recs.clone(), |n| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 8) % (n + 1)
            });
            first_b += usize::from(o[0].target == "b");
        }
        assert!((2800..3200).contains(&first_b), "{first_b} of 4000");
    }

    #[test]
    fn a_lone_dot_means_no_service_and_names_are_built_per_transport() {
        assert!(order(vec![t(0, 0, ".")], |_| 0).is_empty());
        assert_eq!(
            srv_name("carrier.example", Transport::Udp),
            "_sip._udp.carrier.example."
        );
        assert_eq!(
            srv_name("carrier.example.", Transport::Tls),
            "_sips._tcp.carrier.example."
        );
        assert_eq!(naptr_service(Transport::Tcp), "SIP+D2T");
        assert_eq!(default_port(Transport::Tls), 5061);
    }
}
