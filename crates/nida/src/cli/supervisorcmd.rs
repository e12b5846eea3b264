//! `nida supervisor add|remove|list`: supervisors kept in the store of
//! `data_dir`, beside those of the configuration file (the configured one
//! wins when both have the same user). Their passwords are kept as HA1s.

use crate::cli::CliError;
use crate::config::Config;
use nida_store::{Store, SupervisorRow};
use std::process::ExitCode;

/// What to do with the stored supervisors.
#[derive(Debug, clap::Subcommand)]
pub enum SupervisorCommand {
    /// Store a supervisor (replaces the stored one with the same user).
    Add {
        /// SIP user their phone registers with.
        #[arg(long)]
        user: String,
        /// SIP digest password.
        #[arg(long)]
        password: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        /// A queue whose calls they may join (repeat it; `*` for all).
        #[arg(long = "queue", value_name = "NAME", required = true)]
        queues: Vec<String>,
        /// Only this agent's calls (repeat it for a team).
        #[arg(long = "agent", value_name = "ID")]
        agents: Vec<u32>,
        /// Fixed contact URI for a phone that does not register.
        #[arg(long, value_name = "URI")]
        contact: Option<String>,
    },
    /// Remove a stored supervisor.
    Remove {
        /// SIP user.
        #[arg(long)]
        user: String,
    },
    /// List the stored supervisors (without their secrets).
    List,
}

/// Runs the command on the store of `cfg.data_dir`.
pub fn run(cfg: &Config, command: SupervisorCommand) -> ExitCode {
    crate::cli::print_outcome("nida supervisor", apply(cfg, command))
}

fn apply(cfg: &Config, command: SupervisorCommand) -> Result<String, CliError> {
    let mut store = Store::open_dir(&cfg.data_dir)?;
    match command {
        SupervisorCommand::Add {
            user,
            password,
            name,
            queues,
            agents,
            contact,
        } => {
            let bad = |option, value: String, hint| CliError::Option {
                option,
                value,
                hint,
            };
            if user.is_empty() || password.is_empty() {
                return Err(bad(
                    "--user",
                    user,
                    "the user and the password may not be empty",
                ));
            }
            if let Some(c) = contact
                .as_ref()
                .filter(|c| nida_call::static_target(c).is_none())
            {
                return Err(bad("--contact", c.clone(), "give sip:user@ip:port"));
            }
            let agent_users: Vec<String> = cfg
                .agents
                .iter()
                .map(|a| a.user.clone())
                .chain(store.agents()?.into_iter().map(|a| a.user))
                .collect();
            if agent_users.contains(&user) {
                return Err(CliError::Conflict(format!(
                    "user {user} belongs to an agent"
                )));
            }
            let row = SupervisorRow {
                ha1: crate::cli::agentcmd::hashed(&user, &cfg.realm, &password),
                user,
                name,
                contact,
                queues,
                agents: (!agents.is_empty()).then_some(agents),
            };
            store.put_supervisor(&row)?;
            let shadowed = cfg.supervisors.iter().any(|s| s.user == row.user);
            Ok(format!(
                "supervisor {} stored; {}\n",
                row.user,
                if shadowed {
                    "the configuration has a supervisor with this user, which wins"
                } else {
                    "nida takes them at its next start"
                }
            ))
        }
        SupervisorCommand::Remove { user } => {
            if store.remove_supervisor(&user)? {
                Ok(format!("supervisor {user} removed\n"))
            } else {
                Err(CliError::NotFound(format!("no stored supervisor {user}")))
            }
        }
        SupervisorCommand::List => {
            let mut out = String::from("user\tname\tqueues\tagents\tcontact\n");
            for s in store.supervisors()? {
                let agents: Vec<String> = s
                    .agents
                    .unwrap_or_default()
                    .iter()
                    .map(u32::to_string)
                    .collect();
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    s.user,
                    s.name,
                    s.queues.join(","),
                    agents.join(","),
                    s.contact.unwrap_or_default()
                ));
            }
            Ok(out)
        }
    }
}
