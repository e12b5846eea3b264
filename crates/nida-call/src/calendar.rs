//! Opening hours: calendars of weekly hours with dated exceptions
//! (holidays closed, Ramadan hours for a range of dates), each in its own
//! time zone, read from the configuration and asked "open at this
//! instant?" and "when does it next open?". Sans-IO: the time is given.
//!
//! ```toml
//! [calendars.visa_centre]
//! time_zone = "Asia/Dubai"
//! week = { mon = "07:30-20:00", tue = "07:30-20:00", wed = "07:30-20:00",
//!          thu = "07:30-20:00", fri = "07:30-12:00", sat = "closed", sun = "07:30-20:00" }
//! [[calendars.visa_centre.dates]]
//! date = "2026-12-02"
//! closed = true
//! name = "National Day"
//! [[calendars.visa_centre.dates]]
//! from = "2027-02-08"
//! to = "2027-03-09"
//! hours = "09:00-15:00"
//! name = "Ramadan"
//! ```
//!
//! A day's hours are a list of `HH:MM-HH:MM` spans (`24:00` may end one),
//! `closed`, or `24h`. For a day, a single-date entry wins over a range,
//! and a shorter range over a longer one; days no entry covers use the
//! week. Times are local to the calendar's zone, so a change of offset
//! (summer time) moves the instants and not the hours.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A calendar that cannot be used, with what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The time zone is not in the database.
    #[error("calendar {calendar}: unknown time zone `{zone}`")]
    Zone {
        /// The calendar.
        calendar: String,
        /// The zone named.
        zone: String,
    },
    /// A span of hours is not `HH:MM-HH:MM` with the start first.
    #[error("calendar {calendar}: `{hours}` is not hours like 08:00-16:30, `closed` or `24h`")]
    Hours {
        /// The calendar.
        calendar: String,
        /// The text.
        hours: String,
    },
    /// A date is not `YYYY-MM-DD`, or a range ends before it starts.
    #[error("calendar {calendar}: {what}")]
    Date {
        /// The calendar.
        calendar: String,
        /// What is wrong.
        what: String,
    },
}

/// One calendar as written in the configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarDef {
    /// IANA time zone, e.g. `Asia/Dubai` (UTC when absent).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Hours per weekday (`mon` .. `sun`); a day not named is closed.
    #[serde(default)]
    pub week: BTreeMap<String, String>,
    /// Dated exceptions.
    #[serde(default)]
    pub dates: Vec<DateDef>,
}

/// A dated exception: one day (`date`) or a range (`from`, `to`,
/// inclusive), closed or with its own hours (the same every day, or per
/// weekday with `week`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateDef {
    /// One day, `YYYY-MM-DD`.
    #[serde(default)]
    pub date: Option<String>,
    /// First day of a range.
    #[serde(default)]
    pub from: Option<String>,
    /// Last day of a range (inclusive).
    #[serde(default)]
    pub to: Option<String>,
    /// Closed all day.
    #[serde(default)]
    pub closed: bool,
    /// The hours of every day of the entry.
    #[serde(default)]
    pub hours: Option<String>,
    /// The hours per weekday within the range.
    #[serde(default)]
    pub week: BTreeMap<String, String>,
    /// What it is (a holiday's name), for people reading the file.
    #[serde(default)]
    pub name: Option<String>,
}

/// Minutes of a day: `[start, end)`.
type Span = (u16, u16);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Week([Vec<Span>; 7]);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Exception {
    first: Date,
    last: Date,
    week: Week,
}

/// A checked calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    zone: TimeZone,
    week: Week,
    /// Single days first, then ranges from the shortest.
    exceptions: Vec<Exception>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn parse_time(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

fn parse_hours(s: &str) -> Option<Vec<Span>> {
    match s.trim() {
        "closed" | "" => return Some(Vec::new()),
        "24h" => return Some(vec![(0, 1440)]),
        _ => {}
    }
    let mut spans = Vec::new();
    for part in s.split(',') {
        let (a, b) = part.split_once('-')?;
        let (a, b) = (parse_time(a)?, parse_time(b)?);
        if a >= b {
            return None;
        }
        spans.push((a, b));
    }
    spans.sort_unstable();
    Some(spans)
}

fn weekday_index(d: Date) -> usize {
    // Monday is 1 in jiff's numbering from Monday.
    (d.weekday().to_monday_one_offset() - 1) as usize
}

impl Calendar {
    /// Checks a definition.
    pub fn new(name: &str, def: &CalendarDef) -> Result<Calendar, CalendarError> {
        let zone = match def.time_zone.as_deref() {
            None | Some("UTC") => TimeZone::UTC,
            Some(z) => TimeZone::get(z).map_err(|_| CalendarError::Zone {
                calendar: name.into(),
                zone: z.into(),
            })?,
        };
        let hours_err = |h: &str| CalendarError::Hours {
            calendar: name.into(),
            hours: h.into(),
        };
        let week_of = |m: &BTreeMap<String, String>, all: Option<&str>| {
            let mut w = Week::default();
            if let Some(h) = all {
                let spans = parse_hours(h).ok_or_else(|| hours_err(h))?;
                for d in &mut w.0 {
                    *d = spans.clone();
                }
            }
            for (day, h) in m {
                let i = DAYS
                    .iter()
                    .position(|d| d == day)
                    .ok_or_else(|| CalendarError::Date {
                        calendar: name.into(),
                        what: format!("`{day}` is not a weekday (mon, tue, .. sun)"),
                    })?;
                w.0[i] = parse_hours(h).ok_or_else(|| hours_err(h))?;
            }
            Ok::<Week, CalendarError>(w)
        };
        let week = week_of(&def.week, None)?;
        let date = |s: &str| {
            s.parse::<Date>().map_err(|_| CalendarError::Date {
                calendar: name.into(),
                what: format!("`{s}` is not a date like 2026-12-02"),
            })
        };
        let mut exceptions = Vec::new();
        for d in &def.dates {
            let (first, last) = match (&d.date, &d.from, &d.to) {
                (Some(one), None, None) => (date(one)?, date(one)?),
                (None, Some(a), Some(b)) => (date(a)?, date(b)?),
                _ => {
                    return Err(CalendarError::Date {
                        calendar: name.into(),
                        what: "an entry of `dates` needs `date`, or `from` and `to`".into(),
                    })
                }
            };
            if last < first {
                return Err(CalendarError::Date {
                    calendar: name.into(),
                    what: format!("the range {first} to {last} ends before it starts"),
                });
            }
            let week = if d.closed {
                Week::default()
            } else if d.hours.is_none() && d.week.is_empty() {
                return Err(CalendarError::Date {
                    calendar: name.into(),
                    what: format!("the entry for {first} needs `closed = true`, `hours` or `week`"),
                });
            } else {
                week_of(&d.week, d.hours.as_deref())?
            };
            exceptions.push(Exception { first, last, week });
        }
        exceptions.sort_by_key(|e| e.first.until(e.last).map(|s| s.get_days()).unwrap_or(0));
        Ok(Calendar {
            zone,
            week,
            exceptions,
        })
    }

    fn spans(&self, day: Date) -> &[Span] {
        let week = self
            .exceptions
            .iter()
            .find(|e| e.first <= day && day <= e.last)
            .map_or(&self.week, |e| &e.week);
        &week.0[weekday_index(day)]
    }

    fn local(&self, unix: i64) -> Option<(Date, u16)> {
        let z = Timestamp::from_second(unix)
            .ok()?
            .to_zoned(self.zone.clone());
        let minute = z.hour() as u16 * 60 + z.minute() as u16;
        Some((z.date(), minute))
    }

    /// Whether it is open at `unix` (seconds).
    pub fn is_open(&self, unix: i64) -> bool {
        self.local(unix).is_some_and(|(day, minute)| {
            self.spans(day)
                .iter()
                .any(|&(a, b)| a <= minute && minute < b)
        })
    }

    fn instant(&self, day: Date, minute: u16) -> Option<i64> {
        let t = if minute >= 1440 {
            day.tomorrow().ok()?.to_datetime(Time::midnight())
        } else {
            day.to_datetime(Time::new((minute / 60) as i8, (minute % 60) as i8, 0, 0).ok()?)
        };
        // A local time skipped by a change of offset is taken as the
        // instant after the gap (jiff's compatible rule).
        Some(t.to_zoned(self.zone.clone()).ok()?.timestamp().as_second())
    }

    /// The opening spans (start, end in Unix seconds) that end after
    /// `unix`, in order, looking `days` days ahead; a span already open
    /// at `unix` comes first.
    pub fn openings(&self, unix: i64, days: u32) -> Vec<(i64, i64)> {
        let Some((mut day, _)) = self.local(unix) else {
            return Vec::new();
        };
        let mut out: Vec<(i64, i64)> = Vec::new();
        for _ in 0..=days {
            for &(a, b) in self.spans(day) {
                let (Some(s), Some(e)) = (self.instant(day, a), self.instant(day, b)) else {
                    continue;
                };
                if e <= unix {
                    continue;
                }
                // A span to 24:00 and one from 00:00 the next day join.
                match out.last_mut() {
                    Some(last) if last.1 == s => last.1 = e,
                    _ => out.push((s, e)),
                }
            }
            let Ok(next) = day.tomorrow() else { break };
            day = next;
        }
        out
    }

    /// When it is next open at or after `unix`: `unix` itself when open,
    /// `None` when it does not open within a year.
    pub fn next_open(&self, unix: i64) -> Option<i64> {
        self.openings(unix, 366).first().map(|&(s, _)| s.max(unix))
    }
}

/// The day of a call-back slot, as the caller hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotDay {
    /// Later today.
    Today,
    /// Tomorrow.
    Tomorrow,
    /// A day further on: 1 is Monday, 7 Sunday.
    Weekday(u8),
}

/// A time a caller may choose to be called back at: the start of a whole
/// local hour within the opening hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// When (Unix seconds).
    pub at: i64,
    /// Its day.
    pub day: SlotDay,
    /// Its local hour (0 to 23).
    pub hour: u8,
}

impl Slot {
    /// The prompts that say it: the day, then the time of day.
    pub fn prompts(&self, lang: &str) -> Vec<String> {
        let mut out = vec![match self.day {
            SlotDay::Today => "day_today".to_string(),
            SlotDay::Tomorrow => "day_tomorrow".to_string(),
            SlotDay::Weekday(d) => format!("weekday_{d}"),
        }];
        let time = format!("{:02}:00", self.hour);
        out.extend(
            nida_ivr::say::say(lang, nida_ivr::flow::SayKind::Time, &time).unwrap_or_default(),
        );
        out
    }
}

/// A slot is offered only when the calendar stays open this long after
/// its start: there is time to make the call-back in it.
pub const SLOT_OPEN: i64 = 30 * 60;

/// Call-backs are placed in these local hours only, however long the
/// calendar is open: nobody is called back at night.
pub const CALL_HOURS: std::ops::Range<u8> = 8..21;

/// A second slot on the same day comes at 14:00 or later, and this many
/// hours after the first.
const AFTERNOON: u8 = 14;
const APART_HOURS: u8 = 3;

impl Calendar {
    /// A calendar open at all hours, in UTC (a queue without one).
    pub fn always() -> Calendar {
        Calendar {
            zone: TimeZone::UTC,
            week: Week(std::array::from_fn(|_| vec![(0, 1440)])),
            exceptions: Vec::new(),
        }
    }

    /// Up to `count` call-back slots from `unix`, none sooner than `lead`
    /// seconds: the first whole hour later today, then for each open day
    /// of the next week its first hour and its first afternoon hour (the
    /// caller's "tomorrow morning", "tomorrow afternoon"). Every slot
    /// starts within the opening hours and [`CALL_HOURS`] and stays open
    /// [`SLOT_OPEN`].
    pub fn slots(&self, unix: i64, lead: i64, count: usize) -> Vec<Slot> {
        let Some((today, _)) = self.local(unix) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut day = today;
        for i in 0..=7u32 {
            let mut first: Option<u8> = None;
            for hour in CALL_HOURS {
                if out.len() >= count {
                    return out;
                }
                let Some(at) = self.instant(day, u16::from(hour) * 60) else {
                    continue;
                };
                // A skipped hour (summer time) is not offered.
                let whole = self.local(at) == Some((day, u16::from(hour) * 60));
                if !whole
                    || at < unix + lead
                    || !self.is_open(at)
                    || !self.is_open(at + SLOT_OPEN - 1)
                {
                    continue;
                }
                let take = match first {
                    None => true,
                    Some(f) => i > 0 && hour >= AFTERNOON && hour >= f + APART_HOURS,
                };
                if !take {
                    continue;
                }
                let d = match i {
                    0 => SlotDay::Today,
                    1 => SlotDay::Tomorrow,
                    _ => SlotDay::Weekday(day.weekday().to_monday_one_offset() as u8),
                };
                out.push(Slot { at, day: d, hour });
                if first.is_some() || i == 0 {
                    break;
                }
                first = Some(hour);
            }
            let Ok(next) = day.tomorrow() else { break };
            day = next;
        }
        out
    }
}

/// Every calendar of the configuration, by name.
#[derive(Debug, Clone, Default)]
pub struct Calendars(BTreeMap<String, Calendar>);

impl Calendars {
    /// Checks every definition.
    pub fn new(defs: &BTreeMap<String, CalendarDef>) -> Result<Calendars, CalendarError> {
        defs.iter()
            .map(|(n, d)| Ok((n.clone(), Calendar::new(n, d)?)))
            .collect::<Result<_, _>>()
            .map(Calendars)
    }

    /// A calendar by name.
    pub fn get(&self, name: &str) -> Option<&Calendar> {
        self.0.get(name)
    }
}

impl nida_ivr::interp::Hours for Calendars {
    fn is_open(&self, calendar: &str, unix: i64) -> Option<bool> {
        self.get(calendar).map(|c| c.is_open(unix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(s: &str, zone: &str) -> i64 {
        let dt: jiff::civil::DateTime = s.parse().unwrap();
        dt.to_zoned(TimeZone::get(zone).unwrap())
            .unwrap()
            .timestamp()
            .as_second()
    }

    fn dubai() -> Calendar {
        let def: CalendarDef = toml_like(
            "Asia/Dubai",
            &[
                ("mon", "07:30-20:00"),
                ("tue", "07:30-20:00"),
                ("wed", "07:30-20:00"),
                ("thu", "07:30-20:00"),
                ("fri", "07:30-12:00"),
                ("sun", "07:30-20:00"),
            ],
        );
        let mut def = def;
        def.dates.push(DateDef {
            date: Some("2026-12-02".into()),
            closed: true,
            ..DateDef::default()
        });
        def.dates.push(DateDef {
            from: Some("2027-02-08".into()),
            to: Some("2027-03-09".into()),
            hours: Some("09:00-15:00".into()),
            ..DateDef::default()
        });
        // A half day inside Ramadan: the single date wins.
        def.dates.push(DateDef {
            date: Some("2027-03-01".into()),
            hours: Some("09:00-12:00".into()),
            ..DateDef::default()
        });
        Calendar::new("visa_centre", &def).unwrap()
    }

    fn toml_like(zone: &str, week: &[(&str, &str)]) -> CalendarDef {
        CalendarDef {
            time_zone: Some(zone.into()),
            week: week
                .iter()
                .map(|(d, h)| (d.to_string(), h.to_string()))
                .collect(),
            dates: Vec::new(),
        }
    }

    #[test]
    fn slots_are_later_today_then_mornings_and_afternoons_of_open_days() {
        let c = dubai();
        let at = |s: &str| unix(s, "Asia/Dubai");
        // Thursday 2026-12-10 at 10:20, an hour ahead at least.
        let s = c.slots(at("2026-12-10T10:20"), 3600, 5);
        let got: Vec<(SlotDay, u8, i64)> = s.iter().map(|s| (s.day, s.hour, s.at)).collect();
        assert_eq!(
            got,
            vec![
                (SlotDay::Today, 12, at("2026-12-10T12:00")),
                // Friday opens 07:30 and closes at noon: 08:00 and no
                // afternoon.
                (SlotDay::Tomorrow, 8, at("2026-12-11T08:00")),
                // Saturday is closed; Sunday (7) morning and afternoon.
                (SlotDay::Weekday(7), 8, at("2026-12-13T08:00")),
                (SlotDay::Weekday(7), 14, at("2026-12-13T14:00")),
                (SlotDay::Weekday(1), 8, at("2026-12-14T08:00")),
            ]
        );
        // 19:10: no time left today (the last half hour before 20:00 is
        // too short), and Wednesday 2026-12-02 (a holiday) is skipped.
        let s = c.slots(at("2026-12-01T19:10"), 600, 2);
        assert_eq!(s[0].at, at("2026-12-03T08:00"), "after the holiday");
        assert_eq!(s[0].day, SlotDay::Weekday(4), "Thursday, not tomorrow");
        assert_eq!(s[1].at, at("2026-12-03T14:00"));
        assert!(c.slots(at("2026-12-10T10:20"), 3600, 0).is_empty());
    }

    #[test]
    fn slots_say_their_day_and_hour() {
        let c = Calendar::always();
        let noon = unix("2026-12-10T12:00", "UTC");
        let s = c.slots(noon, 1800, 3);
        assert_eq!(s[0].at, unix("2026-12-10T13:00", "UTC"));
        assert_eq!(s[1].day, SlotDay::Tomorrow);
        assert_eq!(s[1].hour, 8, "open at all hours, called from 08:00");
        assert_eq!(s[2].hour, 14);
        assert_eq!(
            s[0].prompts("en"),
            ["day_today", "n_13", "time_hours"].map(String::from)
        );
        let sunday = Slot {
            at: 0,
            day: SlotDay::Weekday(7),
            hour: 9,
        };
        assert_eq!(sunday.prompts("en")[0], "weekday_7");
    }

    #[test]
    fn weekly_hours_are_local_to_the_calendars_zone() {
        let c = dubai();
        // Monday 2026-12-07, 07:29 and 07:30 in Dubai (03:29/03:30 UTC).
        assert!(!c.is_open(unix("2026-12-07T07:29", "Asia/Dubai")));
        assert!(c.is_open(unix("2026-12-07T07:30", "Asia/Dubai")));
        assert!(c.is_open(unix("2026-12-07T19:59", "Asia/Dubai")));
        assert!(!c.is_open(unix("2026-12-07T20:00", "Asia/Dubai")));
        // 05:00 UTC is 09:00 in Dubai: open, though 05:00 is before 07:30.
        assert!(c.is_open(unix("2026-12-07T05:00", "UTC")));
        // Saturday is closed; Friday closes at noon.
        assert!(!c.is_open(unix("2026-12-12T10:00", "Asia/Dubai")));
        assert!(c.is_open(unix("2026-12-11T11:59", "Asia/Dubai")));
        assert!(!c.is_open(unix("2026-12-11T12:00", "Asia/Dubai")));
    }

    #[test]
    fn a_holiday_closes_and_a_range_sets_its_own_hours() {
        let c = dubai();
        // National Day, a Wednesday: closed all day.
        assert!(!c.is_open(unix("2026-12-02T10:00", "Asia/Dubai")));
        assert!(c.is_open(unix("2026-12-03T10:00", "Asia/Dubai")));
        // Ramadan: 09:00-15:00 every day, Saturday too.
        assert!(!c.is_open(unix("2027-02-10T08:00", "Asia/Dubai")));
        assert!(c.is_open(unix("2027-02-10T14:59", "Asia/Dubai")));
        assert!(!c.is_open(unix("2027-02-10T16:00", "Asia/Dubai")));
        assert!(c.is_open(unix("2027-02-13T10:00", "Asia/Dubai")));
        // The half day within it.
        assert!(!c.is_open(unix("2027-03-01T12:30", "Asia/Dubai")));
        // After the range, the week again.
        assert!(c.is_open(unix("2027-03-10T16:00", "Asia/Dubai")));
    }

    #[test]
    fn hours_stay_local_across_a_change_of_offset() {
        let c = Calendar::new(
            "paris",
            &toml_like(
                "Europe/Paris",
                &[("sat", "09:00-17:00"), ("sun", "09:00-17:00")],
            ),
        )
        .unwrap();
        // Summer time starts on Sunday 2027-03-28: 09:00 is 08:00 UTC on
        // Saturday and 07:00 UTC on Sunday.
        assert!(c.is_open(unix("2027-03-27T08:00", "UTC")));
        assert!(!c.is_open(unix("2027-03-27T07:30", "UTC")));
        assert!(c.is_open(unix("2027-03-28T07:00", "UTC")));
        assert!(!c.is_open(unix("2027-03-28T06:59", "UTC")));
        // The next opening after Saturday's close is Sunday 07:00 UTC:
        // 15 hours later: 16 on the wall clock, less the hour skipped.
        let sat_close = unix("2027-03-27T17:00", "Europe/Paris");
        let next = c.next_open(sat_close).unwrap();
        assert_eq!(next, unix("2027-03-28T07:00", "UTC"));
        assert_eq!(next - sat_close, 16 * 3600 - 3600);
    }

    #[test]
    fn next_open_and_openings_join_spans_over_midnight() {
        let c = Calendar::new(
            "police",
            &toml_like(
                "Asia/Dubai",
                &[("mon", "22:00-24:00"), ("tue", "00:00-06:00")],
            ),
        )
        .unwrap();
        let mon_noon = unix("2026-12-07T12:00", "Asia/Dubai");
        let spans = c.openings(mon_noon, 2);
        assert_eq!(
            spans,
            vec![(
                unix("2026-12-07T22:00", "Asia/Dubai"),
                unix("2026-12-08T06:00", "Asia/Dubai")
            )]
        );
        let at_one = unix("2026-12-08T01:00", "Asia/Dubai");
        assert_eq!(c.next_open(at_one), Some(at_one));
        let closed = Calendar::new("never", &CalendarDef::default()).unwrap();
        assert_eq!(closed.next_open(mon_noon), None);
    }

    #[test]
    fn bad_definitions_say_what_is_wrong() {
        let bad_zone = toml_like("Mars/Olympus", &[]);
        assert!(matches!(
            Calendar::new("x", &bad_zone),
            Err(CalendarError::Zone { .. })
        ));
        for h in ["8-16", "16:00-08:00", "09:00-25:00", "09:60-10:00"] {
            assert!(
                matches!(
                    Calendar::new("x", &toml_like("UTC", &[("mon", h)])),
                    Err(CalendarError::Hours { .. })
                ),
                "{h}"
            );
        }
        let mut def = toml_like("UTC", &[("funday", "09:00-10:00")]);
        assert!(Calendar::new("x", &def).is_err());
        def.week.clear();
        def.dates.push(DateDef {
            from: Some("2027-01-10".into()),
            to: Some("2027-01-01".into()),
            closed: true,
            ..DateDef::default()
        });
        assert!(Calendar::new("x", &def).is_err());
        def.dates[0] = DateDef {
            date: Some("2027-01-01".into()),
            ..DateDef::default()
        };
        assert!(Calendar::new("x", &def).is_err());
    }
}
