//! A small seeded generator for tags, branches, SSRCs and Call-IDs.
//!
//! Cores never draw unseeded randomness: the daemon seeds this from the OS at
//! start, tests seed it with a constant so runs repeat exactly.

/// SplitMix64: fast, passes BigCrush, and enough for identifiers that must
/// be unique and hard to guess by accident (not a cryptographic source).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 64 random bits as 16 hex digits.
    pub fn hex(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn same_seed_same_sequence() {
        let mut a = super::Rng::new(7);
        let mut b = super::Rng::new(7);
        assert_eq!(a.hex(), b.hex());
        assert_ne!(a.next_u64(), a.next_u64());
    }
}
