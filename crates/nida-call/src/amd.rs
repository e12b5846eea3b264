//! Answering-machine detection for the calls nida places, by energy and
//! cadence (sans-IO, in 20 ms frames of the answerer's audio).
//!
//! A person answers with a short word ("Hello?") and waits; a machine
//! talks on: its greeting runs for seconds with only short pauses, then
//! beeps. So, from the answer:
//! - voice that runs [`MACHINE_SPEECH`] with no pause longer than
//!   [`WORD_GAP`] is a greeting: a machine;
//! - voice, then a pause of [`HUMAN_PAUSE`]: a person waiting for an
//!   answer;
//! - nothing for [`SILENT_ANSWER`]: a person who says nothing (told
//!   apart from a machine by its silence);
//! - still undecided after [`LISTEN`]: many short words are a machine,
//!   else a person.
//!
//! Once a machine is heard, the greeting ends at the first
//! [`GREETING_OVER`] of quiet after the last sound (the beep is a sound
//! too), or after [`LONGEST_GREETING`]: then the message is played.

use std::time::Duration;

/// Samples in one 20 ms frame at 8 kHz.
const FRAME: usize = nida_media::rtp::FRAME;

/// A frame louder than this (RMS of 16-bit samples) is voice.
const VOICE_RMS: f64 = 500.0;

/// Voice with no longer pause than [`WORD_GAP`] this long is a greeting.
pub const MACHINE_SPEECH: Duration = Duration::from_millis(2500);
/// A pause shorter than this is inside a run of speech.
pub const WORD_GAP: Duration = Duration::from_millis(300);
/// A pause this long after a few words: a person waiting.
pub const HUMAN_PAUSE: Duration = Duration::from_millis(800);
/// Silence from the answer this long: a person who says nothing.
pub const SILENT_ANSWER: Duration = Duration::from_millis(2500);
/// The longest the detector listens before it decides.
pub const LISTEN: Duration = Duration::from_secs(5);
/// Quiet after a machine's last sound (its beep) this long: recording.
pub const GREETING_OVER: Duration = Duration::from_millis(1000);
/// The longest a machine's greeting is waited for.
pub const LONGEST_GREETING: Duration = Duration::from_secs(30);

/// Who answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnsweredBy {
    /// A person.
    Human,
    /// An answering machine or a voicemail greeting.
    Machine,
}

impl AnsweredBy {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            AnsweredBy::Human => "human",
            AnsweredBy::Machine => "machine",
        }
    }
}

/// What the detector says after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A person answered: speak now.
    Human,
    /// A machine answered: wait for its greeting to end.
    Machine,
    /// The machine's greeting (and beep) is over: leave the message.
    GreetingOver,
}

/// The detector's state.
#[derive(Debug, Default)]
pub struct Detector {
    pending: Vec<i16>,
    /// Frames heard since the answer.
    frames: u32,
    /// Frames of voice since the answer.
    voiced: u32,
    /// The current run of speech (with short gaps), in frames.
    run: u32,
    /// Quiet frames since the last voiced one.
    quiet: u32,
    /// Runs of speech begun (words, roughly).
    words: u32,
    machine: bool,
    done: bool,
}

fn frames(d: Duration) -> u32 {
    (d.as_millis() / 20) as u32
}

impl Detector {
    /// A detector listening from the answer.
    pub fn new() -> Detector {
        Detector::default()
    }

    /// Who answered, once known.
    pub fn answered_by(&self) -> Option<AnsweredBy> {
        match (self.machine, self.done) {
            (true, _) => Some(AnsweredBy::Machine),
            (false, true) => Some(AnsweredBy::Human),
            (false, false) => None,
        }
    }

    /// Whether the detector has nothing more to say.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The answerer's decoded audio; the verdict, when this audio gave one.
    pub fn feed(&mut self, pcm: &[i16]) -> Option<Verdict> {
        self.pending.extend_from_slice(pcm);
        let mut verdict = None;
        while self.pending.len() >= FRAME && !self.done {
            let energy: f64 = self.pending[..FRAME]
                .iter()
                .map(|&s| f64::from(s) * f64::from(s))
                .sum();
            self.pending.drain(..FRAME);
            let v = self.frame((energy / FRAME as f64).sqrt() > VOICE_RMS);
            verdict = v.or(verdict);
        }
        if self.done {
            self.pending.clear();
        }
        verdict
    }

    /// The time passed with no audio at all (a phone that sends nothing
    /// while quiet): counted as quiet frames.
    pub fn quiet_for(&mut self, d: Duration) -> Option<Verdict> {
        let mut verdict = None;
        for _ in 0..frames(d) {
            if self.done {
                break;
            }
            verdict = self.frame(false).or(verdict);
        }
        verdict
    }

    /// Listening ran out (see [`LISTEN`] and [`LONGEST_GREETING`]).
    pub fn give_up(&mut self) -> Option<Verdict> {
        if self.done {
            return None;
        }
        self.done = true;
        Some(if self.machine {
            Verdict::GreetingOver
        } else {
            Verdict::Human
        })
    }

    fn frame(&mut self, voiced: bool) -> Option<Verdict> {
        self.frames += 1;
        if voiced {
            if self.quiet > frames(WORD_GAP) || self.voiced == 0 {
                self.run = 0;
                self.words += 1;
            }
            // A short gap belongs to the run.
            self.run += 1 + if self.voiced > 0 && self.quiet <= frames(WORD_GAP) {
                self.quiet
            } else {
                0
            };
            self.voiced += 1;
            self.quiet = 0;
        } else {
            self.quiet += 1;
        }
        if self.machine {
            if self.quiet >= frames(GREETING_OVER) || self.frames >= frames(LONGEST_GREETING) {
                self.done = true;
                return Some(Verdict::GreetingOver);
            }
            return None;
        }
        if self.run >= frames(MACHINE_SPEECH) {
            self.machine = true;
            return Some(Verdict::Machine);
        }
        let human = if self.voiced == 0 {
            self.quiet >= frames(SILENT_ANSWER)
        } else {
            self.quiet >= frames(HUMAN_PAUSE)
        };
        if human {
            self.done = true;
            return Some(Verdict::Human);
        }
        if self.frames >= frames(LISTEN) {
            if self.words >= 4 {
                self.machine = true;
                return Some(Verdict::Machine);
            }
            self.done = true;
            return Some(Verdict::Human);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: u32) -> Vec<i16> {
        (0..ms * 8)
            .map(|i| {
                ((i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).sin() * 8000.0) as i16
            })
            .collect()
    }

    fn quiet(ms: u32) -> Vec<i16> {
        vec![0; (ms * 8) as usize]
    }

    /// Feeds the pieces in 20 ms packets; each verdict with the time (ms)
    /// of the packet that gave it.
    fn run(pieces: &[Vec<i16>]) -> Vec<(u32, Verdict)> {
        let all: Vec<i16> = pieces.concat();
        let mut d = Detector::new();
        let mut out = Vec::new();
        for (i, p) in all.chunks(FRAME).enumerate() {
            if let Some(v) = d.feed(p) {
                out.push(((i as u32 + 1) * 20, v));
            }
        }
        out
    }

    #[test]
    fn hello_then_a_pause_is_a_person() {
        let v = run(&[quiet(300), tone(600), quiet(2000)]);
        assert_eq!(v, [(1700, Verdict::Human)]);
    }

    #[test]
    fn a_long_greeting_is_a_machine_and_its_beep_ends_it() {
        // "Hello, you have reached ... please leave a message" with short
        // pauses between words, then the beep, then quiet.
        let mut p = vec![quiet(200)];
        for _ in 0..8 {
            p.push(tone(400));
            p.push(quiet(150));
        }
        p.push(quiet(500));
        p.push(tone(400)); // the beep
        p.push(quiet(3000));
        let v = run(&p);
        assert_eq!(v[0].1, Verdict::Machine);
        assert!((2600..=2800).contains(&v[0].0), "{v:?}");
        // 200 + 8 * 550 + 500 + 400 = 5500 ms at the beep's end; then one
        // second of quiet.
        assert_eq!(v[1], (6500, Verdict::GreetingOver));
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn silence_from_the_answer_is_a_person_who_says_nothing() {
        assert_eq!(run(&[quiet(4000)]), [(2500, Verdict::Human)]);
        let mut d = Detector::new();
        assert_eq!(d.quiet_for(Duration::from_secs(3)), Some(Verdict::Human));
        assert_eq!(d.answered_by(), Some(AnsweredBy::Human));
    }

    #[test]
    fn many_short_words_without_a_long_pause_are_a_machine() {
        let mut p = Vec::new();
        for _ in 0..9 {
            p.push(tone(300));
            p.push(quiet(400));
        }
        let v = run(&p);
        assert_eq!(v[0], (5000, Verdict::Machine), "{v:?}");
    }

    #[test]
    fn a_greeting_that_never_ends_is_given_up_on() {
        let v = run(&[tone(40_000)]);
        assert_eq!(
            v,
            [(2500, Verdict::Machine), (30_000, Verdict::GreetingOver)]
        );
        let mut d = Detector::new();
        assert_eq!(d.give_up(), Some(Verdict::Human));
        assert_eq!(d.give_up(), None);
    }
}
