//! Prompts: audio files (WAV, MP3, FLAC, Ogg Vorbis) of any rate and
//! channel count, decoded once at start with symphonia, mixed to mono,
//! resampled to 8 kHz and encoded once in both G.711 laws, then shared by
//! every call through an `Arc`.

use crate::error::Error;
use crate::g711::Law;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

/// The rate every prompt is converted to.
pub const RATE: u32 = 8000;

/// One prompt, ready to send.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// Name (file stem) of the prompt.
    pub name: String,
    /// 8 kHz mono linear samples.
    pub pcm: Vec<i16>,
    pcmu: Vec<u8>,
    pcma: Vec<u8>,
}

impl Prompt {
    /// A prompt from 8 kHz mono samples.
    pub fn from_pcm(name: &str, pcm: Vec<i16>) -> Prompt {
        Prompt {
            name: name.to_string(),
            pcmu: Law::Mu.encode(&pcm),
            pcma: Law::A.encode(&pcm),
            pcm,
        }
    }

    /// The prompt encoded in a law.
    pub fn encoded(&self, law: Law) -> &[u8] {
        match law {
            Law::Mu => &self.pcmu,
            Law::A => &self.pcma,
        }
    }

    /// Length of the prompt.
    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.pcm.len() as u64 * 1_000_000 / RATE as u64)
    }

    /// Decodes a file of any supported format, rate and channel count.
    pub fn load(path: &Path) -> Result<Prompt, Error> {
        let shown = path.display().to_string();
        let decode_err = |reason: String| Error::Decode {
            path: shown.clone(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|source| Error::Io {
            path: shown.clone(),
            source,
        })?;
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let mut format = symphonia::default::get_probe()
            .probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|e| decode_err(e.to_string()))?;
        let track = format
            .default_track(TrackType::Audio)
            .ok_or_else(|| decode_err("no audio track".into()))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| decode_err("no audio codec parameters".into()))?;
        let mut decoder = symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map_err(|e| decode_err(e.to_string()))?;
        let track_id = track.id;
        let mut mono: Vec<f32> = Vec::new();
        let mut rate = None;
        let mut frame: Vec<f32> = Vec::new();
        loop {
            let packet = match format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(decode_err(e.to_string())),
            };
            if packet.track_id != track_id {
                continue;
            }
            let buf = match decoder.decode(&packet) {
                Ok(b) => b,
                // A damaged packet is skipped, as players do.
                Err(SymError::DecodeError(_)) => continue,
                Err(e) => return Err(decode_err(e.to_string())),
            };
            let spec = buf.spec();
            rate.get_or_insert(spec.rate());
            let channels = spec.channels().count().max(1);
            frame.resize(buf.samples_interleaved(), 0.0);
            buf.copy_to_slice_interleaved(&mut frame);
            mono.extend(
                frame
                    .chunks_exact(channels)
                    .map(|c| c.iter().sum::<f32>() / channels as f32),
            );
        }
        let rate = rate.ok_or_else(|| decode_err("no audio decoded".into()))?;
        let resampled = resample(&mono, rate, RATE);
        let pcm = resampled
            .iter()
            .map(|s| (s * 32767.0).round().clamp(-32768.0, 32767.0) as i16)
            .collect();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("prompt");
        Ok(Prompt::from_pcm(name, pcm))
    }
}

/// Band-limited resampling by windowed sinc interpolation. Used once per
/// prompt at load time, so clarity matters more than speed: 16 zero
/// crossings of a Blackman-windowed sinc each side, with the cutoff just
/// below the lower Nyquist frequency so nothing folds back.
pub fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || input.is_empty() {
        return input.to_vec();
    }
    let ratio = to as f64 / from as f64;
    let cutoff = ratio.min(1.0) * 0.92;
    let half = (16.0 / cutoff).ceil() as i64;
    let out_len = (input.len() as f64 * ratio).floor() as usize;
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len {
        let t = n as f64 / ratio;
        let centre = t.floor() as i64;
        let mut acc = 0.0f64;
        for k in (centre - half + 1)..=(centre + half) {
            if k < 0 || k as usize >= input.len() {
                continue;
            }
            let x = t - k as f64;
            let sinc = if x.abs() < 1e-9 {
                1.0
            } else {
                let a = std::f64::consts::PI * cutoff * x;
                a.sin() / a
            };
            let w = x / half as f64;
            let window = if w.abs() >= 1.0 {
                0.0
            } else {
                let p = std::f64::consts::PI * (w + 1.0);
                0.42 - 0.5 * p.cos() + 0.08 * (2.0 * p).cos()
            };
            acc += input[k as usize] as f64 * cutoff * sinc * window;
        }
        out.push(acc as f32);
    }
    out
}

/// All prompts, by language and name, loaded once.
#[derive(Debug, Default, Clone)]
pub struct PromptStore {
    prompts: HashMap<(String, String), Arc<Prompt>>,
}

/// Extensions the store loads.
const EXTENSIONS: &[&str] = &["wav", "mp3", "flac", "ogg", "oga"];

impl PromptStore {
    /// Loads `dir/<lang>/<name>.<ext>` for every language folder.
    pub fn load_dir(dir: &Path) -> Result<PromptStore, Error> {
        let io = |source| Error::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut store = PromptStore::default();
        let mut langs: Vec<_> = std::fs::read_dir(dir).map_err(io)?.flatten().collect();
        langs.sort_by_key(|e| e.file_name());
        for lang in langs {
            if !lang.path().is_dir() {
                continue;
            }
            let lang_name = lang.file_name().to_string_lossy().to_string();
            let mut files: Vec<_> = std::fs::read_dir(lang.path())
                .map_err(io)?
                .flatten()
                .collect();
            files.sort_by_key(|e| e.file_name());
            for f in files {
                let p = f.path();
                let ext = p
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_ascii_lowercase)
                    .unwrap_or_default();
                if EXTENSIONS.contains(&ext.as_str()) {
                    let prompt = Prompt::load(&p)?;
                    store
                        .prompts
                        .insert((lang_name.clone(), prompt.name.clone()), Arc::new(prompt));
                }
            }
        }
        Ok(store)
    }

    /// Adds a prompt.
    pub fn insert(&mut self, lang: &str, prompt: Prompt) {
        self.prompts
            .insert((lang.to_string(), prompt.name.clone()), Arc::new(prompt));
    }

    /// A prompt by language and name.
    pub fn get(&self, lang: &str, name: &str) -> Option<Arc<Prompt>> {
        self.prompts
            .get(&(lang.to_string(), name.to_string()))
            .cloned()
    }

    /// Number of prompts.
    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }

    /// Bytes held by all prompts (PCM and both encodings).
    pub fn memory(&self) -> usize {
        self.prompts.values().map(|p| p.pcm.len() * 4).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, secs: f64) -> Vec<f32> {
        (0..(rate as f64 * secs) as usize)
            .map(|i| {
                (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin() as f32 * 0.5
            })
            .collect()
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn resampling_keeps_the_voice_band_and_removes_what_would_alias() {
        for from in [11025, 16000, 22050, 44100, 48000] {
            let pass = resample(&sine(1000.0, from, 1.0), from, 8000);
            assert!(
                (pass.len() as i64 - 8000).abs() <= 1,
                "{from}: {}",
                pass.len()
            );
            // Middle part, away from the edges.
            let r = rms(&pass[1000..7000]);
            assert!(
                (r - 0.5 / 2f64.sqrt()).abs() < 0.02,
                "{from} Hz: 1 kHz kept, rms {r}"
            );
            if from > 12000 {
                let stop = resample(&sine(6000.0, from, 1.0), from, 8000);
                let r = rms(&stop[1000..7000]);
                assert!(r < 0.01, "{from} Hz: 6 kHz removed, rms {r}");
            }
        }
    }
}
