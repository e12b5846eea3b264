//! Prompt loading from real encoded files: WAV (written here with hound),
//! FLAC, Ogg Vorbis and MP3 (fixtures made with sox), each a 440 Hz tone at
//! half scale of another rate or channel count.

use nida_media::{Law, Prompt, PromptStore};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Frequency from zero crossings, and RMS, over the steady middle part.
fn analyse(p: &Prompt) -> (f64, f64) {
    let mid = &p.pcm[800..p.pcm.len() - 800];
    let crossings = mid.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    let freq = crossings as f64 / 2.0 / (mid.len() as f64 / 8000.0);
    let rms = (mid.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / mid.len() as f64).sqrt();
    (freq, rms)
}

fn check(p: &Prompt, what: &str) {
    let secs = p.duration().as_secs_f64();
    // MP3 files written without a gapless (LAME) header keep the encoder's
    // delay and padding: up to two frames of 1152 samples (144 ms at 16 kHz).
    let slack = if what.ends_with(".mp3") { 0.144 } else { 0.01 };
    assert!(secs >= 0.59 && secs <= 0.6 + slack, "{what}: {secs} s");
    let (freq, rms) = analyse(p);
    assert!((freq - 440.0).abs() < 5.0, "{what}: {freq} Hz");
    let expected = 0.5 * 32767.0 / 2f64.sqrt();
    assert!((rms - expected).abs() / expected < 0.1, "{what}: rms {rms}");
    // Both encodings are ready and decode back to the same tone.
    assert_eq!(p.encoded(Law::Mu).len(), p.pcm.len());
    let back = Law::A.decode(p.encoded(Law::A));
    let err: f64 = back
        .iter()
        .zip(&p.pcm)
        .map(|(a, b)| (*a as f64 - *b as f64).abs())
        .sum::<f64>()
        / back.len() as f64;
    assert!(err < 200.0, "{what}: mean A-law error {err}");
}

#[test]
fn decodes_flac_ogg_and_mp3_of_other_rates_and_channels() {
    for f in ["tone-44k-stereo.flac", "tone-22k.ogg", "tone-16k.mp3"] {
        let p = Prompt::load(&fixture(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        check(&p, f);
    }
}

#[test]
fn decodes_a_48k_stereo_wav_and_a_store_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let en = dir.join("en");
    std::fs::create_dir_all(&en).unwrap();
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(en.join("welcome.wav"), spec).unwrap();
    for i in 0..(48000 * 6 / 10) {
        let s = ((2.0 * std::f64::consts::PI * 440.0 * i as f64 / 48000.0).sin() * 16383.5) as i16;
        w.write_sample(s).unwrap();
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    std::fs::write(en.join("notes.txt"), "not audio").unwrap();
    let store = PromptStore::load_dir(dir).unwrap();
    assert_eq!(store.len(), 1, "only audio files are prompts");
    check(&store.get("en", "welcome").unwrap(), "wav");
    assert!(store.get("ar", "welcome").is_none());

    std::fs::write(en.join("broken.wav"), b"RIFF....WAVEfmt garbage").unwrap();
    let err = PromptStore::load_dir(dir).unwrap_err();
    assert!(err.to_string().contains("broken.wav"), "{err}");
}

#[test]
fn missing_file_is_a_clear_error() {
    let err = Prompt::load(Path::new("/nonexistent/x.wav")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/x.wav"), "{err}");
}
