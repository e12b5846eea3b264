//! In-band DTMF detection (ITU-T Q.23/Q.24 tones) by the Goertzel
//! algorithm, for carriers that send keys neither as RFC 4733 events nor
//! by SIP INFO.
//!
//! Audio is cut into blocks of [`BLOCK`] samples (25.6 ms at 8 kHz, bins
//! about 39 Hz wide, narrower than the 73 Hz between the closest DTMF
//! rows). A block holds a key when one row tone and one column tone carry
//! nearly all its energy, each well above the other tones of its group,
//! loud enough, and within the twist Q.24 allows. A key is reported once,
//! after two blocks in a row agree (over 40 ms, Q.24's shortest tone), and
//! may repeat only after two blocks without it.

/// Samples per analysed block.
pub const BLOCK: usize = 205;
/// The row tones (Hz).
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// The column tones (Hz).
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// The keys by row and column.
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
/// Share of a block's energy the two tones must carry.
const PURITY: f32 = 0.75;
/// How much stronger (power) the strongest tone of a group must be than
/// the next one of that group (8 dB).
const DOMINANCE: f32 = 6.3;
/// Most twist between the two tones (power ratio, 8 dB either way).
const TWIST: f32 = 6.3;
/// The weakest tone taken: an amplitude of about 1 % of full scale
/// (-40 dBm0 or so), as mean power per sample.
const FLOOR: f32 = 0.5 * 330.0 * 330.0;
/// Blocks that must agree before a key counts.
const CONFIRM: u8 = 2;
/// Blocks without the key before it may count again.
const RELEASE: u8 = 2;

/// The Goertzel coefficient of a frequency at 8 kHz.
fn coefficient(f: f32) -> f32 {
    2.0 * (2.0 * std::f32::consts::PI * f / 8000.0).cos()
}

/// The power of one frequency in a block (Goertzel), scaled so that a pure
/// tone of amplitude `a` gives about `a² / 2` per sample, like the block's
/// mean power.
fn power(block: &[f32], coeff: f32) -> f32 {
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in block {
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let p = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = block.len() as f32;
    2.0 * p / (n * n)
}

/// One stream's detector.
#[derive(Debug, Clone, Default)]
pub struct Detector {
    block: Vec<f32>,
    /// The key the last blocks held and how many in a row.
    candidate: Option<(char, u8)>,
    /// The key reported and not yet released.
    reported: Option<char>,
    /// Blocks in a row without the reported key.
    gap: u8,
}

impl Detector {
    /// Feeds decoded audio; returns a key when one has just been pressed.
    pub fn push(&mut self, pcm: &[i16]) -> Option<char> {
        let mut found = None;
        for &x in pcm {
            self.block.push(f32::from(x));
            if self.block.len() == BLOCK {
                let key = analyse(&self.block);
                self.block.clear();
                if let Some(k) = self.step(key) {
                    found = Some(k);
                }
            }
        }
        found
    }

    /// One block's verdict into the key state.
    fn step(&mut self, key: Option<char>) -> Option<char> {
        if let Some(r) = self.reported {
            if key == Some(r) {
                self.gap = 0;
                return None;
            }
            self.gap += 1;
            if self.gap < RELEASE {
                return None;
            }
            self.reported = None;
            self.gap = 0;
        }
        let Some(k) = key else {
            self.candidate = None;
            return None;
        };
        let run = match self.candidate {
            Some((c, n)) if c == k => n + 1,
            _ => 1,
        };
        if run >= CONFIRM {
            self.candidate = None;
            self.reported = Some(k);
            return Some(k);
        }
        self.candidate = Some((k, run));
        None
    }
}

/// The key a block holds, if any (see the module doc).
fn analyse(block: &[f32]) -> Option<char> {
    let mean = block.iter().map(|x| x * x).sum::<f32>() / block.len() as f32;
    if mean < 2.0 * FLOOR {
        return None;
    }
    let strongest = |tones: &[f32; 4]| {
        let p: Vec<f32> = tones
            .iter()
            .map(|&f| power(block, coefficient(f)))
            .collect();
        let (best, &top) = p
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .expect("four tones");
        let next = p
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != best)
            .map(|(_, v)| *v)
            .fold(0.0f32, f32::max);
        (best, top, next)
    };
    let (row, rp, rnext) = strongest(&ROWS);
    let (col, cp, cnext) = strongest(&COLS);
    let ok = rp >= FLOOR
        && cp >= FLOOR
        && rp >= DOMINANCE * rnext
        && cp >= DOMINANCE * cnext
        && rp <= TWIST * cp
        && cp <= TWIST * rp
        && rp + cp >= PURITY * mean;
    ok.then(|| KEYS[row][col])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ms` of a key's two tones at amplitude `amp` each, from sample `at`.
    fn tone(key: char, ms: usize, amp: f32, at: usize) -> Vec<i16> {
        let (r, c) = (0..16)
            .map(|i| (i / 4, i % 4))
            .find(|&(r, c)| KEYS[r][c] == key)
            .unwrap();
        (at..at + ms * 8)
            .map(|n| {
                let t = n as f32 / 8000.0;
                let w = |f: f32| (2.0 * std::f32::consts::PI * f * t).sin();
                (amp * (w(ROWS[r]) + w(COLS[c]))) as i16
            })
            .collect()
    }

    fn silence(ms: usize) -> Vec<i16> {
        vec![0; ms * 8]
    }

    /// Through µ-law and back, as the wire carries it, 20 ms at a time.
    fn detect(audio: &[i16]) -> String {
        let law = crate::Law::Mu;
        let mut d = Detector::default();
        audio
            .chunks(160)
            .filter_map(|c| d.push(&law.decode(&law.encode(c))))
            .collect()
    }

    #[test]
    fn every_key_is_heard_once() {
        let mut audio = Vec::new();
        for k in "123A456B789C*0#D".chars() {
            audio.extend(tone(k, 70, 6000.0, audio.len()));
            audio.extend(silence(60));
        }
        assert_eq!(detect(&audio), "123A456B789C*0#D");
    }

    #[test]
    fn a_long_press_is_one_key_and_a_repeat_after_a_pause_is_two() {
        let mut audio = tone('5', 600, 5000.0, 0);
        audio.extend(silence(60));
        audio.extend(tone('5', 60, 5000.0, audio.len()));
        assert_eq!(detect(&audio), "55");
    }

    #[test]
    fn quiet_short_or_single_tones_and_noise_are_not_keys() {
        // Below the floor.
        assert_eq!(detect(&tone('1', 200, 60.0, 0)), "");
        // Too short (Q.24 allows under 40 ms to be missed).
        assert_eq!(detect(&tone('1', 20, 6000.0, 0)), "");
        // One tone only (a dial tone, a beep).
        let beep: Vec<i16> = (0..1600)
            .map(|n| {
                (6000.0 * (2.0 * std::f32::consts::PI * 941.0 * n as f32 / 8000.0).sin()) as i16
            })
            .collect();
        assert_eq!(detect(&beep), "");
        // A chord of speech-like harmonics and white-ish noise.
        let mut x: u32 = 1;
        let noise: Vec<i16> = (0..8000)
            .map(|n| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let t = n as f32 / 8000.0;
                let voice: f32 = (1..12)
                    .map(|h| {
                        (2.0 * std::f32::consts::PI * 140.0 * h as f32 * t).sin() * 2500.0
                            / h as f32
                    })
                    .sum();
                (voice + ((x >> 16) as f32 / 65536.0 - 0.5) * 3000.0) as i16
            })
            .collect();
        assert_eq!(detect(&noise), "");
    }

    #[test]
    fn twist_beyond_the_limit_is_refused_within_it_taken() {
        let (r, c) = (ROWS[1], COLS[1]);
        let pair = |ra: f32, ca: f32| -> Vec<i16> {
            (0..800)
                .map(|n| {
                    let t = n as f32 / 8000.0;
                    let w = |f: f32| (2.0 * std::f32::consts::PI * f * t).sin();
                    (ra * w(r) + ca * w(c)) as i16
                })
                .collect()
        };
        // 4 dB apart: a key.
        assert_eq!(detect(&pair(6000.0, 3800.0)), "5");
        // 14 dB apart: not.
        assert_eq!(detect(&pair(8000.0, 1600.0)), "");
    }
}
