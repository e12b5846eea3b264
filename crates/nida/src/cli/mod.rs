//! The command-line tools besides the daemon: the test caller
//! (`nida call`), reports, agent and flow commands.

pub mod agentcmd;
pub mod caller;
pub mod flowcmd;
pub mod report;
