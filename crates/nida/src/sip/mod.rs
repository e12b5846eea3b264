//! The SIP side of the shell: the driver (sockets, connections and the
//! one sans-IO endpoint), bounded accepting of connections, and DNS for
//! trunks given by host name.

pub mod dns;
pub mod driver;
pub mod listen;
