//! Saying digits, numbers, dates, times and money in each language, as a
//! sequence of building-block prompts (`n_20`, `n_and`, `month_11`, ...)
//! assembled with that language's grammar:
//!
//! - English: "two thousand twenty-six" (`n_2 n_1000 n_20 n_6`);
//! - French: 17-19 as dix-sept, "et un" in 21-71, soixante-dix, quatre-vingts
//!   (with s only when nothing follows), cents likewise, mille never "un mille";
//! - Arabic: units before tens joined by "wa" (ثلاثة وعشرون), the dual for 200,
//!   2000 and two million, آلاف after 3-10 and ألف after 11 and up;
//! - Persian: parts joined by "o" (صد و بیست و سه), no "one" before hezar;
//! - Hindi and Urdu: every number below 100 is its own word; sau, hazaar,
//!   lakh and crore in Indian grouping;
//! - Filipino: English numbers, as Filipino callers read them on the phone.

use crate::flow::SayKind;

/// The languages nida has prompts and grammar for.
pub const LANGUAGES: &[&str] = &["ar", "en", "hi", "ur", "fa", "fil", "fr"];

/// Why a value cannot be said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot say {value:?} as {kind}: {why}")]
pub struct SayError {
    /// The value.
    pub value: String,
    /// The kind asked for.
    pub kind: &'static str,
    /// Why not.
    pub why: &'static str,
}

/// The largest number said.
pub const MAX: u64 = 999_999_999;

fn n(v: u64) -> String {
    format!("n_{v}")
}

/// Block names for a number in a language.
pub fn number(lang: &str, v: u64) -> Vec<String> {
    match lang {
        "fr" => french(v),
        "ar" => arabic(v),
        "fa" => persian(v),
        "hi" | "ur" => indian(v),
        _ => english(v),
    }
}

fn english(v: u64) -> Vec<String> {
    if v == 0 {
        return vec![n(0)];
    }
    let mut out = Vec::new();
    let groups = [(1_000_000, "n_million"), (1000, "n_1000")];
    let mut rest = v;
    for (size, word) in groups {
        if rest >= size {
            out.extend(english_below_1000(rest / size));
            out.push(word.to_string());
            rest %= size;
        }
    }
    out.extend(english_below_1000(rest));
    out
}

fn english_below_1000(v: u64) -> Vec<String> {
    let mut out = Vec::new();
    if v >= 100 {
        out.push(n(v / 100));
        out.push(n(100));
    }
    let r = v % 100;
    if r >= 20 {
        out.push(n(r / 10 * 10));
        if !r.is_multiple_of(10) {
            out.push(n(r % 10));
        }
    } else if r > 0 {
        out.push(n(r));
    }
    out
}

fn french(v: u64) -> Vec<String> {
    if v == 0 {
        return vec![n(0)];
    }
    let mut out = Vec::new();
    let millions = v / 1_000_000;
    let thousands = v / 1000 % 1000;
    let rest = v % 1000;
    if millions > 0 {
        out.extend(french_below_1000(millions, false));
        out.push(
            if millions > 1 {
                "n_millions"
            } else {
                "n_million"
            }
            .to_string(),
        );
    }
    if thousands > 0 {
        if thousands > 1 {
            // "deux cent mille": no s on cent before mille.
            out.extend(french_below_1000(thousands, true));
        }
        out.push(n(1000));
    }
    out.extend(french_below_1000(rest, false));
    out
}

/// `before_more`: a word follows (mille), so cents and vingts lose their s.
fn french_below_1000(v: u64, before_more: bool) -> Vec<String> {
    let mut out = Vec::new();
    let h = v / 100;
    let r = v % 100;
    if h > 0 {
        if h > 1 {
            out.push(n(h));
        }
        let plural = h > 1 && r == 0 && !before_more;
        out.push(if plural { "n_100s" } else { "n_100" }.to_string());
    }
    if r == 0 {
        return out;
    }
    let teen = |x: u64, out: &mut Vec<String>| {
        if x <= 16 {
            out.push(n(x));
        } else {
            out.push(n(10));
            out.push(n(x - 10));
        }
    };
    match r {
        1..=16 => out.push(n(r)),
        17..=19 => teen(r, &mut out),
        20..=69 => {
            out.push(n(r / 10 * 10));
            match r % 10 {
                0 => {}
                1 => {
                    out.push("n_et".into());
                    out.push(n(1));
                }
                u => out.push(n(u)),
            }
        }
        70..=79 => {
            out.push(n(60));
            if r == 71 {
                out.push("n_et".into());
            }
            teen(r - 60, &mut out);
        }
        80 => out.push(if before_more { "n_80" } else { "n_80s" }.to_string()),
        81..=89 => {
            out.push(n(80));
            out.push(n(r - 80));
        }
        _ => {
            out.push(n(80));
            teen(r - 80, &mut out);
        }
    }
    out
}

fn arabic(v: u64) -> Vec<String> {
    if v == 0 {
        return vec![n(0)];
    }
    let mut parts: Vec<Vec<String>> = Vec::new();
    let millions = v / 1_000_000;
    let thousands = v / 1000 % 1000;
    let rest = v % 1000;
    let scale = |count: u64, one: &str, two: &str, few: &str, many: &str| -> Vec<String> {
        match count {
            1 => vec![one.to_string()],
            2 => vec![two.to_string()],
            3..=10 => {
                let mut p = arabic_below_1000(count);
                p.push(few.to_string());
                p
            }
            _ => {
                let mut p = arabic_below_1000(count);
                p.push(many.to_string());
                p
            }
        }
    };
    if millions > 0 {
        parts.push(scale(
            millions,
            "n_million",
            "n_2million",
            "n_millions",
            "n_million",
        ));
    }
    if thousands > 0 {
        parts.push(scale(
            thousands,
            "n_1000",
            "n_2000",
            "n_thousands",
            "n_1000",
        ));
    }
    if rest > 0 {
        parts.push(arabic_below_1000(rest));
    }
    join(parts, "n_and")
}

fn arabic_below_1000(v: u64) -> Vec<String> {
    let mut parts: Vec<Vec<String>> = Vec::new();
    let h = v / 100;
    if h > 0 {
        parts.push(vec![n(h * 100)]);
    }
    let r = v % 100;
    match r {
        0 => {}
        1..=12 => parts.push(vec![n(r)]),
        13..=19 => parts.push(vec![n(r - 10), n(10)]),
        _ => {
            if r.is_multiple_of(10) {
                parts.push(vec![n(r)]);
            } else {
                // Units first: ثلاثة وعشرون.
                parts.push(vec![n(r % 10), "n_and".into(), n(r / 10 * 10)]);
            }
        }
    }
    join(parts, "n_and")
}

fn persian(v: u64) -> Vec<String> {
    if v == 0 {
        return vec![n(0)];
    }
    let mut parts: Vec<Vec<String>> = Vec::new();
    let millions = v / 1_000_000;
    let thousands = v / 1000 % 1000;
    let rest = v % 1000;
    if millions > 0 {
        let mut p = persian_below_1000(millions);
        p.push("n_million".into());
        parts.push(p);
    }
    if thousands > 0 {
        let mut p = if thousands == 1 {
            Vec::new()
        } else {
            persian_below_1000(thousands)
        };
        p.push(n(1000));
        parts.push(p);
    }
    if rest > 0 {
        parts.push(persian_below_1000(rest));
    }
    join(parts, "n_and")
}

fn persian_below_1000(v: u64) -> Vec<String> {
    let mut parts = Vec::new();
    if v >= 100 {
        parts.push(vec![n(v / 100 * 100)]);
    }
    let r = v % 100;
    if r >= 20 {
        parts.push(vec![n(r / 10 * 10)]);
        if !r.is_multiple_of(10) {
            parts.push(vec![n(r % 10)]);
        }
    } else if r > 0 {
        parts.push(vec![n(r)]);
    }
    join(parts, "n_and")
}

fn indian(v: u64) -> Vec<String> {
    if v == 0 {
        return vec![n(0)];
    }
    let mut out = Vec::new();
    let crore = v / 10_000_000;
    let lakh = v / 100_000 % 100;
    let thousand = v / 1000 % 100;
    let hundred = v / 100 % 10;
    let rest = v % 100;
    if crore > 0 {
        out.extend(indian(crore));
        out.push("n_crore".into());
    }
    for (count, word) in [(lakh, "n_lakh"), (thousand, "n_1000"), (hundred, "n_100")] {
        if count > 0 {
            out.push(n(count));
            out.push(word.to_string());
        }
    }
    if rest > 0 {
        out.push(n(rest));
    }
    out
}

fn join(parts: Vec<Vec<String>>, and: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, p) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push(and.to_string());
        }
        out.extend(p);
    }
    out
}

/// Block names a value needs, or why it cannot be said.
pub fn say(lang: &str, kind: SayKind, value: &str) -> Result<Vec<String>, SayError> {
    let err = |kind, why| SayError {
        value: value.to_string(),
        kind,
        why,
    };
    let value = value.trim();
    match kind {
        SayKind::Digits => value
            .chars()
            .map(|c| match c {
                '0'..='9' => Ok(format!("digit_{c}")),
                '*' => Ok("digit_star".into()),
                '#' => Ok("digit_hash".into()),
                _ => Err(err("digits", "only 0-9, * and #")),
            })
            .collect(),
        SayKind::Number => {
            let v: u64 = value
                .parse()
                .map_err(|_| err("number", "not a whole number"))?;
            if v > MAX {
                return Err(err("number", "too large"));
            }
            Ok(number(lang, v))
        }
        SayKind::Date => {
            let parts: Vec<u64> = value.split('-').filter_map(|p| p.parse().ok()).collect();
            let [y, m, d] = parts[..] else {
                return Err(err("date", "not YYYY-MM-DD"));
            };
            if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y > 9999 {
                return Err(err("date", "not a date"));
            }
            let month = format!("month_{m}");
            let day = if lang == "fr" && d == 1 {
                vec!["n_premier".to_string()]
            } else {
                number(lang, d)
            };
            let mut out = Vec::new();
            match lang {
                "en" | "fil" => {
                    out.push(month);
                    out.extend(day);
                }
                _ => {
                    out.extend(day);
                    out.push(month);
                }
            }
            out.extend(number(lang, y));
            Ok(out)
        }
        SayKind::Time => {
            let (h, m) = value
                .split_once(':')
                .ok_or_else(|| err("time", "not HH:MM"))?;
            let (h, m): (u64, u64) = match (h.parse(), m.parse()) {
                (Ok(h), Ok(m)) if h < 24 && m < 60 => (h, m),
                _ => return Err(err("time", "not a time of day")),
            };
            let mut out = number(lang, h);
            out.push("time_hours".into());
            if m > 0 {
                out.extend(number(lang, m));
                out.push("time_minutes".into());
            }
            Ok(out)
        }
        SayKind::Money => {
            let (major, minor) = value.split_once('.').unwrap_or((value, "0"));
            let major: u64 = major.parse().map_err(|_| err("money", "not an amount"))?;
            let minor: u64 = match minor.len() {
                1 => minor.parse::<u64>().map(|m| m * 10),
                2 => minor.parse(),
                _ => return Err(err("money", "at most two decimals")),
            }
            .map_err(|_| err("money", "not an amount"))?;
            if major > MAX {
                return Err(err("money", "too large"));
            }
            let mut out = number(lang, major);
            out.push("money_major".into());
            if minor > 0 {
                out.push("money_and".into());
                out.extend(number(lang, minor));
                out.push("money_minor".into());
            }
            Ok(out)
        }
    }
}

/// Every block a kind of value can need in a language (for checks and for
/// generating prompts).
pub fn blocks_for(lang: &str, kind: SayKind) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    match kind {
        SayKind::Digits => {
            out.extend((0..10).map(|d| format!("digit_{d}")));
            out.push("digit_star".into());
            out.push("digit_hash".into());
        }
        SayKind::Number => out.extend(number_blocks(lang)),
        SayKind::Date => {
            out.extend(number_blocks(lang));
            out.extend((1..=12).map(|m| format!("month_{m}")));
            if lang == "fr" {
                out.push("n_premier".into());
            }
        }
        SayKind::Time => {
            out.extend(number_blocks(lang));
            out.push("time_hours".into());
            out.push("time_minutes".into());
        }
        SayKind::Money => {
            out.extend(number_blocks(lang));
            out.extend(["money_major", "money_and", "money_minor"].map(String::from));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The number blocks of a language: what [`number`] can emit.
pub fn number_blocks(lang: &str) -> Vec<String> {
    let mut v: Vec<String> = match lang {
        "hi" | "ur" => (0..100)
            .map(n)
            .chain(["n_100", "n_1000", "n_lakh", "n_crore"].map(String::from))
            .collect(),
        "ar" => (0..=12)
            .chain((20..=90).step_by(10))
            .chain((100..=900).step_by(100))
            .map(n)
            .chain(
                [
                    "n_1000",
                    "n_2000",
                    "n_thousands",
                    "n_million",
                    "n_2million",
                    "n_millions",
                    "n_and",
                ]
                .map(String::from),
            )
            .collect(),
        "fa" => (0..20)
            .chain((20..=90).step_by(10))
            .chain((100..=900).step_by(100))
            .map(n)
            .chain(["n_1000", "n_million", "n_and"].map(String::from))
            .collect(),
        "fr" => (0..=16)
            .chain([20, 30, 40, 50, 60, 80, 100, 1000])
            .map(n)
            .chain(["n_80s", "n_100s", "n_et", "n_million", "n_millions"].map(String::from))
            .collect(),
        _ => (0..20)
            .chain((20..=90).step_by(10))
            .chain([100, 1000])
            .map(n)
            .chain(["n_million".to_string()])
            .collect(),
    };
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(lang: &str, v: u64) -> String {
        number(lang, v)
            .iter()
            .map(|b| b.trim_start_matches("n_").to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn english_numbers() {
        assert_eq!(s("en", 0), "0");
        assert_eq!(s("en", 15), "15");
        assert_eq!(s("en", 2026), "2 1000 20 6");
        assert_eq!(s("en", 1_000_100), "1 million 1 100");
        assert_eq!(
            s("en", 999_999_999),
            "9 100 90 9 million 9 100 90 9 1000 9 100 90 9"
        );
    }

    #[test]
    fn french_numbers_follow_french_rules() {
        assert_eq!(s("fr", 17), "10 7");
        assert_eq!(s("fr", 21), "20 et 1");
        assert_eq!(s("fr", 71), "60 et 11");
        assert_eq!(s("fr", 77), "60 10 7");
        assert_eq!(s("fr", 80), "80s");
        assert_eq!(s("fr", 81), "80 1", "quatre-vingt-un: no et, no s");
        assert_eq!(s("fr", 91), "80 11");
        assert_eq!(s("fr", 99), "80 10 9");
        assert_eq!(s("fr", 200), "2 100s", "deux cents");
        assert_eq!(s("fr", 201), "2 100 1", "deux cent un");
        assert_eq!(s("fr", 1000), "1000", "mille, not un mille");
        assert_eq!(s("fr", 2026), "2 1000 20 6");
        assert_eq!(s("fr", 80_000), "80 1000", "quatre-vingt mille");
        assert_eq!(s("fr", 200_000), "2 100 1000", "deux cent mille");
        assert_eq!(s("fr", 2_000_000), "2 millions");
    }

    #[test]
    fn arabic_numbers_follow_arabic_rules() {
        assert_eq!(s("ar", 23), "3 and 20", "ثلاثة وعشرون");
        assert_eq!(s("ar", 15), "5 10");
        assert_eq!(s("ar", 200), "200", "مئتان");
        assert_eq!(s("ar", 123), "100 and 3 and 20");
        assert_eq!(s("ar", 2000), "2000", "ألفان");
        assert_eq!(s("ar", 3000), "3 thousands", "ثلاثة آلاف");
        assert_eq!(s("ar", 11_000), "11 1000", "أحد عشر ألفًا");
        assert_eq!(s("ar", 2026), "2000 and 6 and 20");
        assert_eq!(s("ar", 2_000_000), "2million");
    }

    #[test]
    fn persian_and_indian_numbers() {
        assert_eq!(s("fa", 123), "100 and 20 and 3");
        assert_eq!(s("fa", 1000), "1000");
        assert_eq!(s("fa", 2026), "2 1000 and 20 and 6");
        assert_eq!(s("hi", 45), "45");
        assert_eq!(s("hi", 123_456), "1 lakh 23 1000 4 100 56");
        assert_eq!(s("ur", 12_345_678), "1 crore 23 lakh 45 1000 6 100 78");
    }

    #[test]
    fn every_block_a_number_uses_is_listed() {
        for lang in LANGUAGES {
            let blocks = number_blocks(lang);
            for v in (0..2000).chain([9999, 12_345, 99_999, 100_000, 123_456_789, MAX]) {
                for b in number(lang, v) {
                    assert!(blocks.contains(&b), "{lang} {v}: {b} not in the block list");
                }
            }
        }
    }

    #[test]
    fn dates_times_money_digits() {
        let j = |v: Vec<String>| v.join(" ");
        assert_eq!(
            j(say("en", SayKind::Date, "2026-11-01").unwrap()),
            "month_11 n_1 n_2 n_1000 n_20 n_6"
        );
        assert_eq!(
            j(say("fr", SayKind::Date, "2026-11-01").unwrap()),
            "n_premier month_11 n_2 n_1000 n_20 n_6"
        );
        assert_eq!(
            j(say("en", SayKind::Time, "14:05").unwrap()),
            "n_14 time_hours n_5 time_minutes"
        );
        assert_eq!(
            j(say("en", SayKind::Money, "125.5").unwrap()),
            "n_1 n_100 n_20 n_5 money_major money_and n_50 money_minor"
        );
        assert_eq!(
            j(say("en", SayKind::Digits, "20#").unwrap()),
            "digit_2 digit_0 digit_hash"
        );
        assert!(say("en", SayKind::Date, "2026-13-01").is_err());
        assert!(say("en", SayKind::Number, "12a").is_err());
        assert!(say("en", SayKind::Time, "25:00").is_err());
    }
}
