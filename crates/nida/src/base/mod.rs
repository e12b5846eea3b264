//! What the shell's layers share below them: the messages between tasks
//! and the live counters (`bus`), the store's writer thread (`db`), the
//! HTTP client (`httpc`) and TLS contexts (`tls`).

pub mod bus;
pub mod db;
pub mod httpc;
pub mod memory;
pub mod tls;
