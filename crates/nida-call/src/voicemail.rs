//! Voicemail: the greeting and the beep, then the caller's audio (mono,
//! 20 ms frames to the shell's writer) until `#`, a silence, the longest
//! message or the caller hanging up; then "saved" and goodbye. A message
//! with no voice in it is discarded. Reached from a flow's `voicemail`
//! node, a queue's `voicemail` exit and a closed queue.

use crate::io::{CallEvent, Outcome, Recording};
use crate::machine::Call;
use crate::timer::Timer;
use crate::Output;
use std::time::{Duration, Instant};

/// Samples in one 20 ms frame at 8 kHz.
const FRAME: usize = nida_media::rtp::FRAME;

/// A frame louder than this (RMS of 16-bit samples, about -36 dBFS) is
/// voice; quieter is silence, line noise or comfort noise.
const VOICE_RMS: f64 = 500.0;

/// Less voice than this and the message is discarded.
const LEAST_VOICE: Duration = Duration::from_millis(500);

/// A message being taken.
#[derive(Debug)]
pub(crate) struct Voicemail {
    queue: String,
    max: Duration,
    silence: Duration,
    /// When the beep ended and the recording began.
    since: Option<Instant>,
    /// Samples not yet a whole frame.
    pending: Vec<i16>,
    samples: u64,
    voiced_frames: u64,
    /// Kept, discarded, or the caller left before the beep.
    over: bool,
}

impl Call {
    /// Takes a voice message for `queue`: the greeting (the standard one
    /// when `greeting` is empty) and the beep, then the recording.
    pub(crate) fn start_voicemail(
        &mut self,
        now: Instant,
        queue: &str,
        greeting: Vec<String>,
        max: Duration,
        silence: Duration,
    ) {
        self.music = false;
        self.announcing = false;
        self.stop_playback();
        self.voicemail = Some(Voicemail {
            queue: queue.to_string(),
            max,
            silence,
            since: None,
            pending: Vec::new(),
            samples: 0,
            voiced_frames: 0,
            over: false,
        });
        self.event(CallEvent::VoicemailGreeting(queue.to_string()));
        let mut names = if greeting.is_empty() {
            vec!["voicemail_greeting".to_string()]
        } else {
            greeting
        };
        names.push("beep".into());
        self.event(CallEvent::Playing(names.clone()));
        if self.say(&names) == 0 {
            self.begin_message(now);
        }
    }

    /// Whether a message is being taken (greeting or recording).
    pub(crate) fn in_voicemail(&self) -> bool {
        self.voicemail.as_ref().is_some_and(|v| !v.over)
    }

    /// Whether the message is being recorded (the beep is over).
    pub(crate) fn voicemail_recording(&self) -> bool {
        self.voicemail
            .as_ref()
            .is_some_and(|v| !v.over && v.since.is_some())
    }

    /// The greeting and beep ended: record.
    pub(crate) fn begin_message(&mut self, now: Instant) {
        let Some(v) = self.voicemail.as_mut() else {
            return;
        };
        if v.since.is_some() || v.over {
            return;
        }
        v.since = Some(now);
        // The first word may take twice the silence to come.
        let first = now + v.max.min(v.silence * 2);
        self.timers.set(Timer::Voicemail, first);
        // The caller's payloads are taken as they come (see `relay_from`).
        if let Some(rtp) = self.caller_rtp() {
            rtp.set_relay(true);
        }
        self.outputs.push_back(Output::Voicemail(Recording::Start));
        self.event(CallEvent::VoicemailRecording);
    }

    /// The caller's decoded audio while recording: frames to the writer,
    /// and the silence deadline moved by each voiced frame.
    pub(crate) fn voicemail_audio(&mut self, now: Instant, pcm: &[i16]) {
        let Some(v) = self.voicemail.as_mut() else {
            return;
        };
        let Some(since) = v.since.filter(|_| !v.over) else {
            return;
        };
        // Packets lost on the way leave silence in their place, so the
        // message keeps its length (100 ms of slack for the jitter).
        let expected = (now.saturating_duration_since(since).as_millis() as u64) * 8;
        let have = v.samples + (v.pending.len() + pcm.len()) as u64;
        if have + 800 < expected {
            let gap = (expected - have - 800) as usize;
            v.pending.extend(std::iter::repeat_n(0, gap));
        }
        v.pending.extend_from_slice(pcm);
        let mut frames = Vec::new();
        let mut voiced = false;
        while v.pending.len() >= FRAME {
            let frame: Vec<i16> = v.pending.drain(..FRAME).collect();
            let energy: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
            if (energy / FRAME as f64).sqrt() > VOICE_RMS {
                v.voiced_frames += 1;
                voiced = true;
            }
            v.samples += FRAME as u64;
            frames.push(frame);
        }
        let deadline = (since + v.max).min(now + v.silence);
        for f in frames {
            self.outputs
                .push_back(Output::Voicemail(Recording::Frame(f)));
        }
        if voiced {
            self.timers.set(Timer::Voicemail, deadline);
        }
    }

    /// `#`, the silence or the longest message: keep it and say so.
    pub(crate) fn voicemail_done(&mut self) {
        let last = if self.keep_message() {
            "voicemail_saved"
        } else {
            "goodbye"
        };
        self.event(CallEvent::Playing(vec![last.into()]));
        self.close_with(last);
    }

    /// Ends the recording: kept (true) when it holds voice, else
    /// discarded. The caller may already be gone.
    pub(crate) fn keep_message(&mut self) -> bool {
        self.timers.stop(Timer::Voicemail);
        let Some(v) = self.voicemail.as_mut() else {
            return false;
        };
        if v.over {
            return false;
        }
        v.over = true;
        if v.since.is_none() {
            // Gone during the greeting: nothing was recorded.
            return false;
        }
        let voiced = Duration::from_millis(20 * v.voiced_frames);
        let seconds = v.samples as f64 / 8000.0;
        let queue = v.queue.clone();
        if voiced < LEAST_VOICE {
            self.outputs
                .push_back(Output::Voicemail(Recording::Discard));
            self.voicemail_name = None;
            self.event(CallEvent::VoicemailEmpty);
            return false;
        }
        self.outputs.push_back(Output::Voicemail(Recording::Finish));
        self.voicemail_left = Some(nida_store::VoicemailLeft {
            file: self.voicemail_name.take().unwrap_or_default(),
            seconds,
            queue: queue.clone(),
            number: self.cfg.proven_number.clone(),
        });
        self.outcome = Outcome::Voicemail;
        self.event(CallEvent::VoicemailLeft { queue, seconds });
        true
    }
}
