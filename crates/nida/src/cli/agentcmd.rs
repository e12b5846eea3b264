//! `nida agent add|remove|list`: agents kept in the store of `data_dir`,
//! beside those of the configuration file. nida reads them at start (the
//! configured agent wins when both have the same id or user).

use crate::cli::CliError;
use crate::config::Config;
use nida_store::{AgentRow, Store};
use std::collections::BTreeMap;
use std::process::ExitCode;

/// What to do with the stored agents.
#[derive(Debug, clap::Subcommand)]
pub enum AgentCommand {
    /// Store an agent (replaces the stored agent with the same id).
    Add {
        /// Agent id.
        #[arg(long)]
        id: u32,
        /// SIP user the softphone registers with.
        #[arg(long)]
        user: String,
        /// SIP digest password.
        #[arg(long)]
        password: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        /// A skill and its level from 1 to 10, e.g. `visa=5` (repeat it).
        #[arg(long = "skill", value_name = "NAME=LEVEL")]
        skills: Vec<String>,
        /// A language the agent speaks, e.g. `ar` (repeat it; one at least).
        #[arg(long = "language", value_name = "CODE", required = true)]
        languages: Vec<String>,
        /// Fixed contact URI for a phone that does not register.
        #[arg(long, value_name = "URI")]
        contact: Option<String>,
        /// Stay not ready after the phone registers.
        #[arg(long)]
        not_ready_on_register: bool,
    },
    /// Remove a stored agent.
    Remove {
        /// Agent id.
        #[arg(long)]
        id: u32,
    },
    /// List the stored agents (without their passwords).
    List,
}

/// Runs the command on the store of `cfg.data_dir`.
pub fn run(cfg: &Config, command: AgentCommand) -> ExitCode {
    crate::cli::print_outcome("nida agent", apply(cfg, command))
}

fn apply(cfg: &Config, command: AgentCommand) -> Result<String, CliError> {
    let mut store = Store::open_dir(&cfg.data_dir)?;
    match command {
        AgentCommand::Add {
            id,
            user,
            password,
            name,
            skills,
            languages,
            contact,
            not_ready_on_register,
        } => {
            if password.is_empty() {
                return Err(CliError::Option {
                    option: "--password",
                    value: String::new(),
                    hint: "the password may not be empty",
                });
            }
            // The store keeps the HA1s, never the password.
            let ha1 = hashed(&user, &cfg.realm, &password);
            let row = AgentRow {
                id,
                user,
                name,
                password: String::new(),
                ha1: Some(ha1),
                skills: parse_skills(&skills)?,
                languages,
                contact,
                ready_on_register: !not_ready_on_register,
            };
            check(&row)?;
            if let Some(other) = store
                .agents()?
                .iter()
                .find(|a| a.user == row.user && a.id != row.id)
            {
                return Err(CliError::Conflict(format!(
                    "user {} already belongs to agent {}",
                    row.user, other.id
                )));
            }
            store.put_agent(&row)?;
            let shadowed = cfg
                .agents
                .iter()
                .any(|a| a.id == row.id || a.user == row.user);
            Ok(format!(
                "agent {} stored; {}\n",
                row.id,
                if shadowed {
                    "the configuration has an agent with this id or user, which wins"
                } else {
                    "nida takes it at its next start"
                }
            ))
        }
        AgentCommand::Remove { id } => {
            if store.remove_agent(id)? {
                Ok(format!("agent {id} removed\n"))
            } else {
                Err(CliError::NotFound(format!("no stored agent {id}")))
            }
        }
        AgentCommand::List => {
            let mut out = String::from("id\tuser\tname\tskills\tlanguages\tcontact\n");
            for a in store.agents()? {
                let skills: Vec<String> =
                    a.skills.iter().map(|(s, l)| format!("{s}={l}")).collect();
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\n",
                    a.id,
                    a.user,
                    a.name,
                    skills.join(","),
                    a.languages.join(","),
                    a.contact.unwrap_or_default()
                ));
            }
            Ok(out)
        }
    }
}

/// `visa=5` pairs into skills and levels.
fn parse_skills(items: &[String]) -> Result<BTreeMap<String, u8>, CliError> {
    items
        .iter()
        .map(|item| {
            let bad = |hint| CliError::Option {
                option: "--skill",
                value: item.clone(),
                hint,
            };
            let (name, level) = item
                .split_once('=')
                .ok_or_else(|| bad("write NAME=LEVEL, e.g. visa=5"))?;
            let level: u8 = level
                .parse()
                .map_err(|_| bad("the level is a number from 1 to 10"))?;
            Ok((name.trim().to_string(), level))
        })
        .collect()
}

/// The HA1s the store keeps of `password` (MD5, SHA-256, RFC 7616).
pub fn hashed(user: &str, realm: &str, password: &str) -> nida_store::AgentHa1 {
    use nida_sip::auth::Algorithm;
    let a1 = format!("{user}:{realm}:{password}");
    nida_store::AgentHa1 {
        realm: realm.to_string(),
        md5: Algorithm::Md5.hex(&a1),
        sha256: Algorithm::Sha256.hex(&a1),
    }
}

/// The rules the configuration applies to its agents.
fn check(a: &AgentRow) -> Result<(), CliError> {
    let bad = |option, value: String, hint| CliError::Option {
        option,
        value,
        hint,
    };
    if a.user.is_empty() || (a.password.is_empty() && a.ha1.is_none()) {
        return Err(bad(
            "--user",
            a.user.clone(),
            "the user and the password may not be empty",
        ));
    }
    if let Some((s, l)) = a.skills.iter().find(|(_, l)| !(1..=10).contains(*l)) {
        return Err(bad(
            "--skill",
            format!("{s}={l}"),
            "the level is not 1 to 10",
        ));
    }
    if a.skills.keys().any(|s| s.is_empty()) {
        return Err(bad("--skill", String::new(), "a skill needs a name"));
    }
    match &a.contact {
        Some(c) if !c.starts_with("sip:") => Err(bad("--contact", c.clone(), "give a sip: URI")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skills_are_name_equals_level() {
        let s = parse_skills(&["visa=5".into(), "police=10".into()]).unwrap();
        assert_eq!(
            s,
            BTreeMap::from([("visa".into(), 5), ("police".into(), 10)])
        );
        let option = |e: CliError| match e {
            CliError::Option { option, value, .. } => (option, value),
            other => panic!("{other}"),
        };
        assert_eq!(
            option(parse_skills(&["visa".into()]).unwrap_err()),
            ("--skill", "visa".into())
        );
        assert_eq!(
            option(parse_skills(&["visa=x".into()]).unwrap_err()),
            ("--skill", "visa=x".into())
        );
    }

    #[test]
    fn levels_and_contacts_are_checked() {
        let ok = AgentRow {
            id: 1,
            user: "1001".into(),
            password: "pw".into(),
            languages: vec!["ar".into()],
            skills: BTreeMap::from([("visa".into(), 5)]),
            ..AgentRow::default()
        };
        assert!(check(&ok).is_ok());
        let high = AgentRow {
            skills: BTreeMap::from([("visa".into(), 11)]),
            ..ok.clone()
        };
        assert!(matches!(
            check(&high),
            Err(CliError::Option { option: "--skill", value, .. }) if value == "visa=11"
        ));
        let contact = AgentRow {
            contact: Some("1001@host".into()),
            ..ok
        };
        assert!(matches!(
            check(&contact),
            Err(CliError::Option {
                option: "--contact",
                ..
            })
        ));
    }
}
