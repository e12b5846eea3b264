//! The SIP side of the shell: the driver (sockets, connections and the
//! one sans-IO endpoint) and bounded accepting of connections.

pub mod driver;
pub mod listen;
