//! G.711 µ-law and A-law (ITU-T G.711), one byte per 8 kHz sample.

use audio_codec_algorithms::{decode_alaw, decode_ulaw, encode_alaw, encode_ulaw};

/// A G.711 law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law (PCMU, payload type 0).
    Mu,
    /// A-law (PCMA, payload type 8).
    A,
}

impl Law {
    /// Encodes linear samples.
    pub fn encode(self, pcm: &[i16]) -> Vec<u8> {
        match self {
            Law::Mu => pcm.iter().map(|s| encode_ulaw(*s)).collect(),
            Law::A => pcm.iter().map(|s| encode_alaw(*s)).collect(),
        }
    }

    /// Decodes to linear samples.
    pub fn decode(self, data: &[u8]) -> Vec<i16> {
        match self {
            Law::Mu => data.iter().map(|b| decode_ulaw(*b)).collect(),
            Law::A => data.iter().map(|b| decode_alaw(*b)).collect(),
        }
    }

    /// The code of digital silence.
    pub fn silence(self) -> u8 {
        match self {
            Law::Mu => 0xFF,
            Law::A => 0xD5,
        }
    }

    /// The static RTP payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Mu => 0,
            Law::A => 8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_stays_within_quantisation_error() {
        let pcm: Vec<i16> = (-32768..32767).step_by(97).map(|v| v as i16).collect();
        for law in [Law::Mu, Law::A] {
            let back = law.decode(&law.encode(&pcm));
            for (a, b) in pcm.iter().zip(&back) {
                let err = (*a as i32 - *b as i32).abs();
                // Logarithmic quantisation: the step grows with the level.
                assert!(
                    err <= (a.unsigned_abs() as i32 / 16).max(16),
                    "{law:?} {a} -> {b}"
                );
            }
            assert!(
                law.decode(&[law.silence()])[0].abs() <= 8,
                "silence decodes near zero"
            );
        }
    }
}
