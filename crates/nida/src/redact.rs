//! Caller numbers are personal data: logs show them masked unless the
//! configuration asks for them in full.

use std::fmt;

/// A phone number or user part that prints masked by default: the last two
/// characters stay visible so an engineer can tell calls apart.
pub struct Redacted<'a> {
    value: &'a str,
    reveal: bool,
    /// Keep no character visible (keyed digits: a PIN's last two matter).
    whole: bool,
}

impl<'a> Redacted<'a> {
    /// Wraps a value; `reveal` prints it in full.
    pub fn new(value: &'a str, reveal: bool) -> Self {
        Redacted {
            value,
            reveal,
            whole: false,
        }
    }

    /// Like [`Redacted::new`], masking every character (keyed digits).
    pub fn all(value: &'a str, reveal: bool) -> Self {
        Redacted {
            value,
            reveal,
            whole: true,
        }
    }
}

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reveal {
            return f.write_str(self.value);
        }
        let chars: Vec<char> = self.value.chars().collect();
        let keep = if chars.len() > 4 && !self.whole { 2 } else { 0 };
        for _ in 0..chars.len() - keep {
            f.write_str("*")?;
        }
        for c in &chars[chars.len() - keep..] {
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Redacted;

    #[test]
    fn masks_all_but_the_last_two() {
        assert_eq!(
            Redacted::new("+971501234567", false).to_string(),
            "***********67"
        );
        assert_eq!(Redacted::new("901", false).to_string(), "***");
        assert_eq!(
            Redacted::new("+971501234567", true).to_string(),
            "+971501234567"
        );
        assert_eq!(Redacted::all("20240002", false).to_string(), "********");
        assert_eq!(Redacted::all("20240002", true).to_string(), "20240002");
    }
}
