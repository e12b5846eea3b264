//! Where nida places a call: a fixed SIP address, or a number through a
//! carrier trunk; and what a call to a number is for (the outbound rules
//! audit every one).

use nida_sip::Transport;
use std::net::SocketAddr;

/// Where to ring an agent, or any fixed SIP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Request-URI.
    pub uri: String,
    /// Where the INVITE goes.
    pub dest: SocketAddr,
    /// Over what.
    pub transport: Transport,
}

/// Where nida places a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dial {
    /// A fixed SIP URI and address.
    Target(Target),
    /// A number through a carrier trunk (the SIP shell picks the address
    /// that answers its health checks).
    Trunk {
        /// The trunk's name.
        trunk: String,
        /// The number, in nida's format (the trunk rewrites it).
        number: String,
    },
}

/// Why nida calls a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Calling a caller back.
    Callback,
    /// A transfer to a number.
    Transfer,
    /// A status notification.
    Notification,
}

impl Purpose {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Callback => "callback",
            Purpose::Transfer => "transfer",
            Purpose::Notification => "notification",
        }
    }
}

impl From<&nida_sip::registrar::Binding> for Target {
    /// A registered phone: its Contact, reached where its REGISTER came
    /// from, over the same transport.
    fn from(b: &nida_sip::registrar::Binding) -> Target {
        Target {
            uri: b.contact.clone(),
            dest: b.source,
            transport: b.transport,
        }
    }
}

/// A fixed contact `sip:user@host:port`: reached over UDP at host:port
/// (over TCP or TLS with `;transport=tcp` or `tls`). `None` when the host
/// is not an IP address.
pub fn static_target(uri: &str) -> Option<Target> {
    let u = nida_sip::headers::SipUri::parse(uri)?;
    let ip: std::net::IpAddr = u.host.parse().ok()?;
    Some(Target {
        uri: uri.to_string(),
        dest: SocketAddr::new(ip, u.port.unwrap_or(5060)),
        transport: match u.params.value("transport") {
            Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
            Some(t) if t.eq_ignore_ascii_case("tls") => Transport::Tls,
            _ => Transport::Udp,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_contacts_by_transport() {
        let t = static_target("sip:1001@127.0.0.1:5070;transport=tls").unwrap();
        assert_eq!(t.dest, "127.0.0.1:5070".parse().unwrap());
        assert_eq!(t.transport, Transport::Tls);
        assert_eq!(
            static_target("sip:1@10.0.0.1").unwrap().dest.port(),
            5060,
            "the default port"
        );
        assert!(static_target("sip:1@carrier.example").is_none());
    }
}
