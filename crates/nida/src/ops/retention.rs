//! Recording retention: recordings live in `data_dir/recordings/YYYY-MM-DD/`
//! and voice messages in `data_dir/voicemail/YYYY-MM-DD/`; day folders
//! older than the configured number of days are deleted at start and then
//! every hour (a message's row stays, its audio answers "gone").

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tracing::{info, warn};

use crate::clock::day_number;

/// The day folders among `names` that are more than `days` days older
/// than `today` (a day number). Names that are not dates are left alone.
pub fn expired<'a>(
    names: impl IntoIterator<Item = &'a str>,
    today: i64,
    days: u64,
) -> Vec<&'a str> {
    names
        .into_iter()
        .filter(|n| day_number(n).is_some_and(|d| today - d > days as i64))
        .collect()
}

/// Deletes expired day folders under `data_dir/recordings` and
/// `data_dir/voicemail`; returns them.
pub fn sweep(data_dir: &Path, days: u64, now: SystemTime) -> Vec<PathBuf> {
    ["recordings", "voicemail"]
        .iter()
        .flat_map(|f| sweep_folder(&data_dir.join(f), days, now))
        .collect()
}

fn sweep_folder(root: &Path, days: u64, now: SystemTime) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let today = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| (d.as_secs() / 86_400) as i64)
        .unwrap_or(0);
    let mut removed = Vec::new();
    for name in expired(names.iter().map(String::as_str), today, days) {
        let dir = root.join(name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => removed.push(dir),
            Err(e) => warn!(dir = %dir.display(), error = %e, "cannot remove old recordings"),
        }
    }
    removed
}

/// Sweeps now and every hour (`days` 0: keep recordings for ever).
pub async fn run(data_dir: PathBuf, days: u64) {
    if days == 0 {
        return;
    }
    loop {
        let dir = data_dir.clone();
        let removed = tokio::task::spawn_blocking(move || sweep(&dir, days, SystemTime::now()))
            .await
            .unwrap_or_default();
        for d in removed {
            info!(dir = %d.display(), days, "recordings past retention removed");
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dates_past_the_retention_expire() {
        let today = day_number("2026-11-23").unwrap();
        let names = [
            "2026-11-23",
            "2026-10-24",
            "2026-10-23",
            "2025-01-01",
            "misc",
        ];
        assert_eq!(expired(names, today, 30), vec!["2026-10-23", "2025-01-01"]);
        assert!(expired(names, today, 1000).is_empty());
    }

    #[test]
    fn sweep_removes_old_day_folders_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let rec = dir.join("recordings");
        for d in ["2000-01-01", "2026-11-20", "keep-me"] {
            std::fs::create_dir_all(rec.join(d)).unwrap();
            std::fs::write(rec.join(d).join("a.wav"), b"RIFF").unwrap();
        }
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_392_000); // 2026-11-23
        let removed = sweep(dir, 30, now);
        assert_eq!(removed, vec![rec.join("2000-01-01")]);
        assert!(!rec.join("2000-01-01").exists());
        assert!(rec.join("2026-11-20/a.wav").exists());
        assert!(rec.join("keep-me/a.wav").exists());
    }
}
