//! Recording retention: recordings live in `data_dir/recordings/YYYY-MM-DD/`;
//! day folders older than the configured number of days are deleted at
//! start and then every hour.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tracing::{info, warn};

/// Days since 1970-01-01 of a `YYYY-MM-DD` name (proleptic Gregorian,
/// after H. Hinnant's published algorithm), or `None` for other names.
pub fn day_number(name: &str) -> Option<i64> {
    let mut parts = name.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

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

/// Deletes expired day folders under `data_dir/recordings`; returns them.
pub fn sweep(data_dir: &Path, days: u64, now: SystemTime) -> Vec<PathBuf> {
    let root = data_dir.join("recordings");
    let Ok(entries) = std::fs::read_dir(&root) else {
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
    fn day_numbers_match_the_civil_dates() {
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(day_number("2000-02-29"), Some(951_782_400 / 86_400));
        assert_eq!(day_number("2026-11-22"), Some(1_795_305_600 / 86_400));
        for unix_day in [0i64, 11_016, 20_000, 20_414] {
            let name = crate::clock::civil_date(unix_day as u64 * 86_400);
            assert_eq!(day_number(&name), Some(unix_day), "{name}");
        }
        assert_eq!(day_number("2026-13-01"), None);
        assert_eq!(day_number("notes"), None);
        assert_eq!(day_number("2026-1-01"), None);
    }

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
        let dir = std::env::temp_dir().join(format!("nida-retention-{}", std::process::id()));
        let rec = dir.join("recordings");
        for d in ["2000-01-01", "2026-11-20", "keep-me"] {
            std::fs::create_dir_all(rec.join(d)).unwrap();
            std::fs::write(rec.join(d).join("a.wav"), b"RIFF").unwrap();
        }
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_392_000); // 2026-11-23
        let removed = sweep(&dir, 30, now);
        assert_eq!(removed, vec![rec.join("2000-01-01")]);
        assert!(!rec.join("2000-01-01").exists());
        assert!(rec.join("2026-11-20/a.wav").exists());
        assert!(rec.join("keep-me/a.wav").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
