//! The wall clock, for records and folder names (the cores get time from
//! the shell; this is the shell's one reading of the date).

use std::time::SystemTime;

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DD` of a Unix time (UTC), for folder names.
pub fn civil_date(unix: u64) -> String {
    let ts = i64::try_from(unix)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.to_zoned(jiff::tz::TimeZone::UTC).date().to_string()
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date, or `None` for anything
/// else (other shapes, impossible dates such as 2026-02-30).
pub fn day_number(name: &str) -> Option<i64> {
    if name.len() != 10 {
        return None;
    }
    let date: jiff::civil::Date = name.parse().ok()?;
    let epoch = jiff::civil::date(1970, 1, 1);
    let days = epoch.until((jiff::Unit::Day, date)).ok()?.get_days();
    Some(i64::from(days))
}

#[cfg(test)]
mod tests {
    use super::{civil_date, day_number};

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(951_782_400), "2000-02-29");
        assert_eq!(civil_date(1_795_305_600), "2026-11-22");
        assert_eq!(civil_date(u64::MAX), "1970-01-01", "out of range");
    }

    #[test]
    fn day_numbers_match_the_civil_dates() {
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(day_number("2000-02-29"), Some(951_782_400 / 86_400));
        assert_eq!(day_number("2026-11-22"), Some(1_795_305_600 / 86_400));
        assert_eq!(day_number("1969-12-31"), Some(-1));
        for unix_day in [0i64, 11_016, 20_000, 20_414] {
            let name = civil_date(unix_day as u64 * 86_400);
            assert_eq!(day_number(&name), Some(unix_day), "{name}");
        }
        assert_eq!(day_number("2026-13-01"), None);
        assert_eq!(day_number("2026-02-30"), None);
        assert_eq!(day_number("notes"), None);
        assert_eq!(day_number("2026-1-01"), None);
        assert_eq!(day_number("20261101"), None);
    }
}
