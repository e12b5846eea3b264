//! Feature codes: numbers an agent dials from the softphone to log in, be
//! ready, take a break (with a reason code) or log out. Parsing is pure;
//! the driver recognises the agent by the address the call comes from.

use serde::Deserialize;
use std::collections::BTreeMap;

/// Agent state changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentCommand {
    /// Log in (not ready until `Ready`).
    Login,
    /// Ready for calls.
    Ready,
    /// Not ready, with a reason.
    NotReady(String),
    /// Log out.
    Logout,
}

/// The codes, from the `[feature_codes]` table of the configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureCodes {
    /// Log in (not ready until `ready`).
    pub login: String,
    /// Log in if needed and become ready for calls.
    pub ready: String,
    /// Not ready; digits after the code pick a reason from `reasons`.
    pub not_ready: String,
    /// Log out.
    pub logout: String,
    /// Not-ready reason codes (`*231` is reason `1`).
    pub reasons: BTreeMap<String, String>,
    /// A supervisor listens to the call of the agent whose id follows
    /// (`*7012`: agent 12).
    pub listen: String,
    /// A supervisor whispers to the agent whose id follows.
    pub whisper: String,
    /// A supervisor barges into the call of the agent whose id follows.
    pub barge: String,
}

impl Default for FeatureCodes {
    fn default() -> Self {
        FeatureCodes {
            login: "*21".into(),
            ready: "*22".into(),
            not_ready: "*23".into(),
            logout: "*24".into(),
            listen: "*70".into(),
            whisper: "*71".into(),
            barge: "*72".into(),
            reasons: [
                ("1", "break"),
                ("2", "lunch"),
                ("3", "training"),
                ("4", "meeting"),
                ("5", "after-call work"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        }
    }
}

/// What a feature code asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    /// The state change.
    pub command: AgentCommand,
    /// The confirmation prompt.
    pub prompt: &'static str,
}

/// Why a dialled number is no feature, or a feature code set is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeatureError {
    /// A not-ready code with a reason code the configuration lacks.
    #[error("no not-ready reason {0:?}")]
    NoReason(String),
    /// Not one of the codes.
    #[error("{0:?} is not a feature code")]
    Unknown(String),
    /// A code that is not `*` and digits.
    #[error("feature code {0:?} must be `*` and digits")]
    BadCode(String),
    /// One code is a prefix of another.
    #[error("feature codes {0:?} and {1:?} overlap")]
    Overlap(String, String),
}

impl FeatureCodes {
    /// Whether `dialled` is meant as a feature code (it starts with `*`).
    pub fn is_feature(dialled: &str) -> bool {
        dialled.starts_with('*')
    }

    /// The feature a dialled number asks for, or why it is not one.
    pub fn parse(&self, dialled: &str) -> Result<Feature, FeatureError> {
        let f = |command, prompt| Ok(Feature { command, prompt });
        if dialled == self.login {
            return f(AgentCommand::Login, "agent_logged_in");
        }
        if dialled == self.ready {
            return f(AgentCommand::Ready, "agent_ready");
        }
        if dialled == self.logout {
            return f(AgentCommand::Logout, "agent_logged_out");
        }
        if let Some(code) = dialled.strip_prefix(self.not_ready.as_str()) {
            let reason = if code.is_empty() {
                "not ready".to_string()
            } else {
                match self.reasons.get(code) {
                    Some(r) => r.clone(),
                    None => return Err(FeatureError::NoReason(code.to_string())),
                }
            };
            return f(AgentCommand::NotReady(reason), "agent_not_ready");
        }
        Err(FeatureError::Unknown(dialled.to_string()))
    }

    /// A supervisor's code: the mode and the agent's id after it.
    pub fn parse_supervise(&self, dialled: &str) -> Option<(nida_call::SuperviseMode, u32)> {
        use nida_call::SuperviseMode as M;
        [
            (&self.listen, M::Listen),
            (&self.whisper, M::Whisper),
            (&self.barge, M::Barge),
        ]
        .into_iter()
        .find_map(|(code, mode)| {
            let id = dialled.strip_prefix(code.as_str())?;
            let agent = id
                .parse()
                .ok()
                .filter(|_| id.chars().all(|c| c.is_ascii_digit()))?;
            Some((mode, agent))
        })
    }

    /// Checks that no code is empty or a prefix of another.
    pub fn check(&self) -> Result<(), FeatureError> {
        let codes = [
            &self.login,
            &self.ready,
            &self.not_ready,
            &self.logout,
            &self.listen,
            &self.whisper,
            &self.barge,
        ];
        for (i, a) in codes.iter().enumerate() {
            if !Self::is_feature(a) || a.len() < 2 {
                return Err(FeatureError::BadCode(a.to_string()));
            }
            for b in &codes[i + 1..] {
                if a.starts_with(b.as_str()) || b.starts_with(a.as_str()) {
                    return Err(FeatureError::Overlap(a.to_string(), b.to_string()));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supervisor_codes_carry_the_mode_and_the_agent() {
        use nida_call::SuperviseMode as M;
        let c = FeatureCodes::default();
        assert_eq!(c.parse_supervise("*7012"), Some((M::Listen, 12)));
        assert_eq!(c.parse_supervise("*711"), Some((M::Whisper, 1)));
        assert_eq!(c.parse_supervise("*723"), Some((M::Barge, 3)));
        for bad in ["*70", "*70x", "*70+1", "*21", "*7"] {
            assert_eq!(c.parse_supervise(bad), None, "{bad}");
        }
        let clash = FeatureCodes {
            listen: "*2".into(),
            ..FeatureCodes::default()
        };
        assert!(matches!(clash.check(), Err(FeatureError::Overlap(..))));
    }

    #[test]
    fn codes_map_to_commands() {
        let c = FeatureCodes::default();
        assert_eq!(c.parse("*21").unwrap().command, AgentCommand::Login);
        assert_eq!(c.parse("*22").unwrap().command, AgentCommand::Ready);
        assert_eq!(c.parse("*24").unwrap().command, AgentCommand::Logout);
        assert_eq!(
            c.parse("*23").unwrap().command,
            AgentCommand::NotReady("not ready".into())
        );
        let lunch = c.parse("*232").unwrap();
        assert_eq!(lunch.command, AgentCommand::NotReady("lunch".into()));
        assert_eq!(lunch.prompt, "agent_not_ready");
        assert_eq!(
            c.parse("*239").unwrap_err(),
            FeatureError::NoReason("9".into())
        );
        assert_eq!(
            c.parse("*99").unwrap_err(),
            FeatureError::Unknown("*99".into())
        );
        assert!(c.parse("*2").is_err());
        assert!(FeatureCodes::is_feature("*21"));
        assert!(!FeatureCodes::is_feature("901"));
    }

    #[test]
    fn overlapping_codes_are_refused() {
        assert!(FeatureCodes::default().check().is_ok());
        let c = FeatureCodes {
            ready: "*2".into(),
            ..FeatureCodes::default()
        };
        assert!(matches!(c.check(), Err(FeatureError::Overlap(..))));
        let c = FeatureCodes {
            login: "21".into(),
            ..FeatureCodes::default()
        };
        assert_eq!(c.check(), Err(FeatureError::BadCode("21".into())));
    }
}
