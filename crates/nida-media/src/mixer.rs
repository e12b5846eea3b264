//! An audio mixer for calls of more than two parties, sans-IO.
//!
//! Each party is a leg keyed by the caller's own id type. What a party
//! sends is pushed in its law (or as linear PCM) and decoded into a short
//! input queue; [`Mixer::mix`] takes one frame (20 ms, 160 samples at
//! 8 kHz) from every party and gives each listener the saturated sum of
//! the parties it hears (never itself), encoded in the listener's own
//! law, through [`Mixer::poll_output`]. Who hears whom is a matrix set
//! with [`Mixer::set_hears`]: a whispering supervisor is heard by the
//! agent only, a listening one hears both and is heard by nobody.
//!
//! Inputs arrive with network jitter; a party's queue is used only once
//! it holds two frames (40 ms of play-out delay) and again after it ran
//! dry, and is cut back to eight frames when its clock runs ahead of the
//! mixer's.
//!
//! The caller drives `mix` once per frame time; nothing here reads the
//! clock.

use crate::g711::Law;
use std::collections::VecDeque;

/// Samples in one mixed frame (20 ms at 8 kHz).
pub const FRAME: usize = 160;

/// Frames a party's input holds before it is heard.
const PRIME: usize = 2;

/// Most frames a party's input holds; older audio is dropped.
const MAX_QUEUED: usize = 8;

/// One party of the mix.
#[derive(Debug)]
struct Party<K> {
    id: K,
    law: Law,
    input: VecDeque<i16>,
    primed: bool,
    /// Who this party hears.
    hears: Vec<K>,
    /// The frame taken from its input at the last mix.
    frame: Vec<i16>,
}

/// A conference of parties keyed by `K` (see the module doc).
#[derive(Debug)]
pub struct Mixer<K> {
    parties: Vec<Party<K>>,
    out: VecDeque<(K, Vec<u8>)>,
    scratch: Vec<i32>,
}

impl<K> Default for Mixer<K> {
    fn default() -> Self {
        Mixer {
            parties: Vec::new(),
            out: VecDeque::new(),
            scratch: vec![0; FRAME],
        }
    }
}

impl<K: Copy + Eq> Mixer<K> {
    /// An empty mix.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a party that receives in `law`, hearing nobody and heard by
    /// nobody until [`Mixer::set_hears`] says otherwise. Adding a party
    /// already there changes its law.
    pub fn add(&mut self, id: K, law: Law) {
        if let Some(p) = self.party_mut(id) {
            p.law = law;
            return;
        }
        self.parties.push(Party {
            id,
            law,
            input: VecDeque::with_capacity(MAX_QUEUED * FRAME),
            primed: false,
            hears: Vec::new(),
            frame: vec![0; FRAME],
        });
    }

    /// Removes a party: nobody hears it any more.
    pub fn remove(&mut self, id: K) {
        self.parties.retain(|p| p.id != id);
        for p in &mut self.parties {
            p.hears.retain(|h| *h != id);
        }
        self.out.retain(|(k, _)| *k != id);
    }

    /// Whether `id` takes part.
    pub fn contains(&self, id: K) -> bool {
        self.parties.iter().any(|p| p.id == id)
    }

    /// The parties, in the order they were added.
    pub fn parties(&self) -> impl Iterator<Item = K> + '_ {
        self.parties.iter().map(|p| p.id)
    }

    /// How many parties there are.
    pub fn len(&self) -> usize {
        self.parties.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.parties.is_empty()
    }

    /// Whether `listener` hears `speaker` (`on`) or not. A party never
    /// hears itself; unknown parties are ignored.
    pub fn set_hears(&mut self, listener: K, speaker: K, on: bool) {
        if listener == speaker || !self.contains(speaker) {
            return;
        }
        let Some(p) = self.party_mut(listener) else {
            return;
        };
        let there = p.hears.contains(&speaker);
        if on && !there {
            p.hears.push(speaker);
        } else if !on && there {
            p.hears.retain(|h| *h != speaker);
        }
    }

    /// Whether `listener` hears `speaker`.
    pub fn hears(&self, listener: K, speaker: K) -> bool {
        self.party(listener)
            .is_some_and(|p| p.hears.contains(&speaker))
    }

    /// Audio a party sent, in `law` (decoded here, so a party in another
    /// law than its listeners is transcoded).
    pub fn push(&mut self, id: K, law: Law, payload: &[u8]) {
        if let Some(p) = self.party_mut(id) {
            p.input.extend(law.decode(payload));
            Self::bound(p);
        }
    }

    /// Audio a party sent, as linear samples at 8 kHz.
    pub fn push_pcm(&mut self, id: K, pcm: &[i16]) {
        if let Some(p) = self.party_mut(id) {
            p.input.extend(pcm);
            Self::bound(p);
        }
    }

    fn bound(p: &mut Party<K>) {
        let excess = p.input.len().saturating_sub(MAX_QUEUED * FRAME);
        p.input.drain(..excess);
        if p.input.len() >= PRIME * FRAME {
            p.primed = true;
        }
    }

    /// One frame time: takes a frame from every party (silence from one
    /// whose input is not primed or ran dry) and queues, for every party
    /// that hears anyone, the sum of what it hears in its law.
    pub fn mix(&mut self) {
        for p in &mut self.parties {
            let take = if p.primed {
                if p.input.len() < FRAME {
                    // Ran dry: the rest now, then wait to prime again.
                    p.primed = false;
                }
                p.input.len().min(FRAME)
            } else {
                0
            };
            p.frame.clear();
            p.frame.extend(p.input.drain(..take));
            p.frame.resize(FRAME, 0);
        }
        for i in 0..self.parties.len() {
            if self.parties[i].hears.is_empty() {
                continue;
            }
            self.scratch.iter_mut().for_each(|s| *s = 0);
            for speaker in &self.parties[i].hears {
                let Some(sp) = self.parties.iter().find(|p| p.id == *speaker) else {
                    continue;
                };
                for (acc, s) in self.scratch.iter_mut().zip(&sp.frame) {
                    *acc += i32::from(*s);
                }
            }
            let mixed: Vec<i16> = self
                .scratch
                .iter()
                .map(|s| (*s).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
                .collect();
            let p = &self.parties[i];
            self.out.push_back((p.id, p.law.encode(&mixed)));
        }
    }

    /// The next listener's mixed frame, in its law.
    pub fn poll_output(&mut self) -> Option<(K, Vec<u8>)> {
        self.out.pop_front()
    }

    /// What a party sent in the last mixed frame (linear; silence when it
    /// sent nothing), as the recording takes it.
    pub fn last_frame(&self, id: K) -> Option<&[i16]> {
        self.party(id).map(|p| &p.frame[..])
    }

    fn party(&self, id: K) -> Option<&Party<K>> {
        self.parties.iter().find(|p| p.id == id)
    }

    fn party_mut(&mut self, id: K) -> Option<&mut Party<K>> {
        self.parties.iter_mut().find(|p| p.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` samples of a tone of `hz` at amplitude `amp`.
    fn tone(hz: f64, amp: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| ((i as f64) * 2.0 * std::f64::consts::PI * hz / 8000.0).sin() * amp)
            .map(|v| v as i16)
            .collect()
    }

    /// The energy of `hz` in `pcm` (Goertzel), relative to the signal's.
    fn share_of(pcm: &[i16], hz: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for x in pcm {
            let s = f64::from(*x) + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
        let total: f64 = pcm.iter().map(|x| f64::from(*x).powi(2)).sum();
        if total == 0.0 {
            0.0
        } else {
            power / (total * pcm.len() as f64 / 2.0)
        }
    }

    /// Runs `frames` mixes feeding each party its tone; what each heard.
    fn run(m: &mut Mixer<u8>, tones: &[(u8, Law, f64)], frames: usize) -> Vec<(u8, Vec<i16>)> {
        let mut heard: Vec<(u8, Vec<i16>)> = tones.iter().map(|t| (t.0, Vec::new())).collect();
        for f in 0..frames {
            for (id, law, hz) in tones {
                let pcm = tone(*hz, 6000.0, FRAME * (f + 1));
                m.push(*id, *law, &law.encode(&pcm[FRAME * f..]));
            }
            m.mix();
            while let Some((id, bytes)) = m.poll_output() {
                let law = tones.iter().find(|t| t.0 == id).unwrap().1;
                heard
                    .iter_mut()
                    .find(|h| h.0 == id)
                    .unwrap()
                    .1
                    .extend(law.decode(&bytes));
            }
        }
        heard
    }

    #[test]
    fn each_party_hears_exactly_whom_it_is_set_to_hear() {
        // 1 caller (400 Hz), 2 agent (1000 Hz), 3 supervisor (1700 Hz).
        let mut m = Mixer::new();
        for id in [1, 2, 3] {
            m.add(id, Law::Mu);
        }
        // Whisper: caller and agent hear each other; the agent hears the
        // supervisor; the supervisor hears both.
        m.set_hears(1, 2, true);
        m.set_hears(2, 1, true);
        m.set_hears(2, 3, true);
        m.set_hears(3, 1, true);
        m.set_hears(3, 2, true);
        m.set_hears(3, 3, true); // never oneself
        let tones = [
            (1, Law::Mu, 400.0),
            (2, Law::Mu, 1000.0),
            (3, Law::Mu, 1700.0),
        ];
        let heard = run(&mut m, &tones, 50);
        let of = |id: u8| &heard.iter().find(|h| h.0 == id).unwrap().1[FRAME * 4..];
        let has = |id: u8, hz: f64| share_of(of(id), hz) > 0.1;
        assert!(
            has(1, 1000.0) && !has(1, 1700.0) && !has(1, 400.0),
            "caller"
        );
        assert!(has(2, 400.0) && has(2, 1700.0) && !has(2, 1000.0), "agent");
        assert!(
            has(3, 400.0) && has(3, 1000.0) && !has(3, 1700.0),
            "supervisor"
        );
        // Barge: the caller hears the supervisor too.
        m.set_hears(1, 3, true);
        let heard = run(&mut m, &tones, 20);
        let caller = &heard[0].1[FRAME * 4..];
        assert!(share_of(caller, 1700.0) > 0.1 && share_of(caller, 1000.0) > 0.1);
        // Listen: nobody hears the supervisor.
        m.set_hears(1, 3, false);
        m.set_hears(2, 3, false);
        let heard = run(&mut m, &tones, 20);
        for (id, pcm) in &heard[..2] {
            assert!(
                share_of(&pcm[FRAME * 4..], 1700.0) < 0.01,
                "{id} hears the listener"
            );
        }
    }

    #[test]
    fn parties_in_the_other_law_are_transcoded() {
        let mut m = Mixer::new();
        m.add(1, Law::Mu);
        m.add(2, Law::A);
        m.add(3, Law::A);
        for (a, b) in [(1, 2), (2, 1), (1, 3), (3, 1), (2, 3), (3, 2)] {
            m.set_hears(a, b, true);
        }
        let tones = [
            (1, Law::Mu, 500.0),
            (2, Law::A, 1200.0),
            (3, Law::A, 2000.0),
        ];
        let heard = run(&mut m, &tones, 30);
        let caller = &heard[0].1[FRAME * 4..];
        assert!(share_of(caller, 1200.0) > 0.1 && share_of(caller, 2000.0) > 0.1);
        let second = &heard[1].1[FRAME * 4..];
        assert!(share_of(second, 500.0) > 0.1 && share_of(second, 2000.0) > 0.1);
    }

    #[test]
    fn loud_parties_saturate_instead_of_wrapping() {
        let mut m = Mixer::new();
        for id in [1, 2, 3] {
            m.add(id, Law::Mu);
        }
        m.set_hears(3, 1, true);
        m.set_hears(3, 2, true);
        for _ in 0..4 {
            m.push_pcm(1, &[30_000; FRAME]);
            m.push_pcm(2, &[30_000; FRAME]);
            m.mix();
        }
        let mut last = None;
        while let Some((id, bytes)) = m.poll_output() {
            assert_eq!(id, 3);
            last = Some(Law::Mu.decode(&bytes));
        }
        // µ-law's largest code, not a wrapped negative sum.
        assert!(last.unwrap().iter().all(|s| *s > 30_000));
    }

    #[test]
    fn jitter_is_absorbed_and_a_dry_input_is_silence_not_a_stall() {
        let mut m = Mixer::new();
        m.add(1, Law::Mu);
        m.add(2, Law::Mu);
        m.set_hears(2, 1, true);
        // One frame alone is not yet heard (40 ms of play-out first).
        m.push_pcm(1, &[1000; FRAME]);
        m.mix();
        let (_, b) = m.poll_output().unwrap();
        assert!(Law::Mu.decode(&b).iter().all(|s| s.abs() < 10));
        // A second arrives late, with the third: both are then played.
        m.push_pcm(1, &[1000; FRAME * 2]);
        let mut loud = 0;
        for _ in 0..4 {
            m.mix();
            let (_, b) = m.poll_output().unwrap();
            if Law::Mu.decode(&b).iter().all(|s| (s - 1000).abs() < 40) {
                loud += 1;
            }
        }
        assert_eq!(loud, 3, "all three frames heard, then silence");
        assert_eq!(m.last_frame(1), Some(&[0i16; FRAME][..]));
        // A runaway clock is cut back to eight frames.
        m.push_pcm(1, &[5; FRAME * 20]);
        assert_eq!(m.parties[0].input.len(), MAX_QUEUED * FRAME);
        // Removing a party: nobody hears it, its output is gone.
        m.mix();
        m.remove(1);
        assert!(!m.hears(2, 1));
        assert_eq!(m.len(), 1);
    }
}
