//! The SIP side of the shell: the driver (sockets, connections and the
//! one sans-IO endpoint), bounded accepting of connections, DNS for
//! trunks given by host name, and web phones' media gateways.

pub mod dns;
pub mod driver;
pub mod gateway;
pub mod listen;
