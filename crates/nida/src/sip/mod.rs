//! The SIP side of the shell: the driver (sockets, connections and the
//! one sans-IO endpoint), bounded accepting, TLS, trunks, agents' feature
//! codes and the outbound dialling policy.

pub mod driver;
pub mod features;
pub mod listen;
pub mod outbound;
pub mod tls;
pub mod trunks;
