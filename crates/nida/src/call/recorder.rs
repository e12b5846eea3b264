//! WAV recordings written on a thread of their own (file writes never run
//! on a tokio worker): calls in stereo (caller left, the other side
//! right) under `recordings/`, voice messages in mono under `voicemail/`.
//! The call machine sends 20 ms frames; the file is written under
//! `NAME.wav.part` and renamed to its name once complete, so a nida killed
//! mid-call leaves no half file among the recordings.

use nida_call::Recording;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use tokio::sync::oneshot;
use tracing::warn;

/// Frames queued for the writer at most (20 s); a writer that far behind
/// loses frames rather than holding memory without bound.
const QUEUE: usize = 1000;

/// A recording being written.
pub struct Recorder {
    tx: SyncSender<Recording>,
    done: Option<oneshot::Receiver<()>>,
    /// The file's final name.
    pub path: PathBuf,
}

/// What is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A call, in stereo.
    Call,
    /// A voice message, in mono.
    Voicemail,
}

impl Recorder {
    /// Starts a call's recording at a new random name under `data_dir`.
    pub fn start(data_dir: &Path) -> Recorder {
        Recorder::start_kind(data_dir, Kind::Call)
    }

    /// Starts a recording of `kind` at a new random name under `data_dir`.
    pub fn start_kind(data_dir: &Path, kind: Kind) -> Recorder {
        let path = recording_path(data_dir, kind);
        let (tx, rx) = sync_channel::<Recording>(QUEUE);
        let (done_tx, done) = oneshot::channel();
        let target = path.clone();
        std::thread::spawn(move || {
            write(&target, kind, rx);
            let _ = done_tx.send(());
        });
        Recorder {
            tx,
            done: Some(done),
            path,
        }
    }

    /// Passes a frame, the finish or the discard to the writer.
    pub fn send(&self, r: Recording) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(r) {
            warn!("recording writer behind: a frame lost");
        }
    }

    /// Waits (without blocking a worker) until the file is complete.
    pub async fn finished(mut self) {
        drop(self.tx);
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

fn write(path: &Path, kind: Kind, rx: std::sync::mpsc::Receiver<Recording>) {
    let mut part = path.to_path_buf().into_os_string();
    part.push(".part");
    let part = PathBuf::from(part);
    if let Some(dir) = path.parent() {
        if let Err(e) = std::fs::create_dir_all(dir) {
            warn!(path = %path.display(), error = %e, "cannot record");
            return;
        }
    }
    let spec = hound::WavSpec {
        channels: if kind == Kind::Call { 2 } else { 1 },
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = match hound::WavWriter::create(&part, spec) {
        Ok(w) => w,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot record");
            return;
        }
    };
    let mut failed = false;
    for r in rx {
        match r {
            Recording::Frame(f) => {
                if !failed && f.iter().any(|s| writer.write_sample(*s).is_err()) {
                    warn!(path = %path.display(), "recording write failed");
                    failed = true;
                }
            }
            Recording::Finish => {
                if let Err(e) = writer.finalize() {
                    warn!(error = %e, "recording not finalised");
                } else if let Err(e) = std::fs::rename(&part, path) {
                    warn!(error = %e, "recording not renamed to its final name");
                }
                return;
            }
            Recording::Discard | Recording::Start => break,
        }
    }
    // Discarded, or the call ended without finishing it.
    drop(writer);
    let _ = std::fs::remove_file(&part);
}

/// A new recording's file: today's folder, a random name (the Call-ID is
/// the caller's to choose: any length, any characters); the record links
/// the two.
fn recording_path(data_dir: &Path, kind: Kind) -> PathBuf {
    data_dir
        .join(match kind {
            Kind::Call => "recordings",
            Kind::Voicemail => "voicemail",
        })
        .join(crate::clock::civil_date(crate::clock::unix_now()))
        .join(format!("{}.wav", nida_sip::rng::os_token()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Recording {
        Recording::Frame(vec![100i16; 320])
    }

    #[tokio::test]
    async fn a_recording_has_a_random_name_and_its_final_one_only_when_complete() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let r = Recorder::start(&dir);
        let path = r.path.clone();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(name.len(), 36, "{name}");
        assert!(name[..32].chars().all(|c| c.is_ascii_hexdigit()), "{name}");
        assert_ne!(recording_path(&dir, Kind::Call), path);
        r.send(frame());
        r.send(frame());
        r.send(Recording::Finish);
        r.finished().await;
        assert!(path.exists() && !path.with_extension("wav.part").exists());
        let wav = hound::WavReader::open(&path).unwrap();
        assert_eq!(wav.spec().channels, 2);
        assert_eq!(wav.len(), 640);
        // A discarded one leaves nothing.
        let d = Recorder::start(&dir);
        let gone = d.path.clone();
        d.send(frame());
        d.send(Recording::Discard);
        d.finished().await;
        assert!(!gone.exists() && !gone.with_extension("wav.part").exists());
        // A voice message: mono, in its own folder.
        let v = Recorder::start_kind(&dir, Kind::Voicemail);
        let vpath = v.path.clone();
        assert!(vpath.starts_with(dir.join("voicemail")));
        v.send(Recording::Frame(vec![7i16; 160]));
        v.send(Recording::Finish);
        v.finished().await;
        let wav = hound::WavReader::open(&vpath).unwrap();
        assert_eq!((wav.spec().channels, wav.len()), (1, 160));
    }
}
