//! Randomness for identifiers, nonces and keys.
//!
//! Every tag, branch, Call-ID, SSRC, nonce secret and key nida makes must be
//! unguessable by a peer that sees the ones before it, so the generator is
//! ChaCha20 keyed from the operating system's CSPRNG ([`Rng::from_os`]).
//! Cores never read the OS themselves: the shell hands them a generator.
//! [`Rng::seeded`] makes a reproducible stream for tests only; secrets
//! (nonce keys, SRTP keys, tokens) always come from [`os_bytes`], never
//! from a seeded generator.

use chacha20::ChaCha20Rng;
use rand_core::{Rng as _, SeedableRng};

/// A ChaCha20 generator: keyed from the OS, or from a test seed.
pub struct Rng(ChaCha20Rng);

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The state is a secret: never in a log line.
        f.write_str("Rng(..)")
    }
}

impl Rng {
    /// A generator keyed from the operating system's CSPRNG.
    pub fn from_os() -> Self {
        Rng(ChaCha20Rng::from_seed(os_bytes()))
    }

    /// A reproducible generator for tests: the same seed gives the same
    /// identifiers. Never use it for secrets.
    pub fn seeded(seed: u64) -> Self {
        Rng(ChaCha20Rng::seed_from_u64(seed))
    }

    /// [`Rng::seeded`] with a test seed, else [`Rng::from_os`].
    pub fn new(seed: Option<u64>) -> Self {
        match seed {
            Some(s) => Rng::seeded(s),
            None => Rng::from_os(),
        }
    }

    /// A new independent generator keyed from this one's output (one per
    /// call, so calls draw without sharing a lock).
    pub fn fork(&mut self) -> Rng {
        let mut key = [0u8; 32];
        self.0.fill_bytes(&mut key);
        Rng(ChaCha20Rng::from_seed(key))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    /// 64 random bits as 16 hex digits (tags, branches).
    pub fn hex(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }

    /// 128 random bits as 32 hex digits (Call-IDs, tokens).
    pub fn hex128(&mut self) -> String {
        format!("{:016x}{:016x}", self.next_u64(), self.next_u64())
    }
}

/// `N` bytes straight from the operating system's CSPRNG.
///
/// # Panics
/// When the OS has no random source to give (no `getrandom(2)` and no
/// `/dev/urandom`): nida cannot make a safe identifier or key then, and
/// stopping is better than making guessable ones.
pub fn os_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the operating system's random source is readable");
    b
}

/// 128 bits from the OS CSPRNG as 32 hex digits: secrets and tokens.
pub fn os_token() -> String {
    os_bytes::<16>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::seeded(7);
        let mut b = Rng::seeded(7);
        assert_eq!(a.hex(), b.hex());
        assert_ne!(a.next_u64(), a.next_u64());
    }

    #[test]
    fn os_generators_differ() {
        let (mut a, mut b) = (Rng::from_os(), Rng::from_os());
        assert_ne!(a.hex128(), b.hex128());
        assert_ne!(os_token(), os_token());
        assert_eq!(os_token().len(), 32);
    }

    #[test]
    fn forks_are_independent_of_each_other() {
        let mut root = Rng::seeded(1);
        let (mut a, mut b) = (root.fork(), root.fork());
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
