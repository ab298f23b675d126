//! Joda-Time format patterns (`YYYY.MM.dd`, `dd/MMM/yyyy:HH:mm:ss Z`), the date syntax
//! Logstash users write in `%{+...}` templates and the date filter. Compiled once into
//! tokens; formatting walks the tokens.

mod locale;

pub use locale::{LocaleNames, UnknownLocale};

use super::timestamp::push_padded;
use chrono::{DateTime, Datelike, FixedOffset, Offset, TimeZone, Timelike};
use std::sync::Arc;

/// One element of a compiled Joda pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Literal(String),
    /// `y`/`Y`/`u`: year; width 2 means two-digit year.
    Year(usize),
    /// `x`: week-based year.
    WeekYear(usize),
    /// `M`: 1-2 digits, 3 short name, 4+ full name.
    Month(usize),
    /// `d`
    DayOfMonth(usize),
    /// `D`
    DayOfYear(usize),
    /// `w`
    WeekOfYear(usize),
    /// `E`: 3 or fewer short name, 4+ full name.
    DayOfWeekName(usize),
    /// `e`: ISO day of week number.
    DayOfWeek(usize),
    /// `a`
    HalfDay,
    /// `H`
    Hour24(usize),
    /// `k`: 1-24
    ClockHour24(usize),
    /// `h`: 1-12
    ClockHour12(usize),
    /// `K`: 0-11
    Hour12(usize),
    /// `m`
    Minute(usize),
    /// `s`
    Second(usize),
    /// `S`: fraction of second with that many digits.
    Fraction(usize),
    /// `Z`: `+0000`; `ZZ`: `+00:00`; `ZZZ`: zone id.
    Offset(usize),
    /// `z`: zone name.
    ZoneName(usize),
}

/// A compiled Joda pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JodaPattern {
    tokens: Vec<Token>,
    /// Month and day names to parse when not English; English names are matched from
    /// the built-in table, the fast path most logs take.
    names: Option<Arc<LocaleNames>>,
}

/// A pattern letter Joda does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JodaError {
    #[error("unknown pattern letter `{0}` in date format")]
    UnknownLetter(char),
    #[error("unterminated quote in date format")]
    UnterminatedQuote,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// English month names, full form, January first.
pub fn month_names() -> &'static [&'static str; 12] {
    &MONTHS
}

/// English day names, full form, Monday first.
pub fn day_names() -> &'static [&'static str; 7] {
    &DAYS
}

impl JodaPattern {
    pub fn compile(pattern: &str) -> Result<JodaPattern, JodaError> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                // '' is a literal quote; 'text' is literal text.
                if chars.get(i + 1) == Some(&'\'') {
                    literal.push('\'');
                    i += 2;
                    continue;
                }
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(JodaError::UnterminatedQuote),
                        Some('\'') if chars.get(j + 1) == Some(&'\'') => {
                            literal.push('\'');
                            j += 2;
                        }
                        Some('\'') => break,
                        Some(ch) => {
                            literal.push(*ch);
                            j += 1;
                        }
                    }
                }
                i = j + 1;
                continue;
            }
            if !c.is_ascii_alphabetic() {
                literal.push(c);
                i += 1;
                continue;
            }
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            let token = match c {
                'y' | 'Y' | 'u' => Token::Year(n),
                'x' => Token::WeekYear(n),
                'M' => Token::Month(n),
                'd' => Token::DayOfMonth(n),
                'D' => Token::DayOfYear(n),
                'w' => Token::WeekOfYear(n),
                'E' => Token::DayOfWeekName(n),
                'e' => Token::DayOfWeek(n),
                'a' => Token::HalfDay,
                'H' => Token::Hour24(n),
                'k' => Token::ClockHour24(n),
                'h' => Token::ClockHour12(n),
                'K' => Token::Hour12(n),
                'm' => Token::Minute(n),
                's' => Token::Second(n),
                'S' => Token::Fraction(n),
                'Z' => Token::Offset(n),
                'z' => Token::ZoneName(n),
                other => return Err(JodaError::UnknownLetter(other)),
            };
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            tokens.push(token);
            i += n;
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Ok(JodaPattern {
            tokens,
            names: None,
        })
    }

    /// This pattern reading month and day names of `names` instead of English ones
    /// (formatting stays English, as `%{+...}` templates have no locale).
    pub fn with_locale(mut self, names: Option<Arc<LocaleNames>>) -> JodaPattern {
        self.names = names;
        self
    }

    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// Appends `dt` formatted with this pattern.
    pub fn format<Tz: TimeZone>(&self, dt: &DateTime<Tz>, out: &mut String)
    where
        Tz::Offset: std::fmt::Display,
    {
        let offset_secs = dt.offset().fix().local_minus_utc();
        for token in &self.tokens {
            match token {
                Token::Literal(s) => out.push_str(s),
                Token::Year(2) => push_padded(out, (dt.year() % 100) as i64, 2),
                Token::Year(n) => push_padded(out, dt.year() as i64, *n),
                Token::WeekYear(2) => push_padded(out, (dt.iso_week().year() % 100) as i64, 2),
                Token::WeekYear(n) => push_padded(out, dt.iso_week().year() as i64, *n),
                Token::Month(n) if *n >= 4 => out.push_str(MONTHS[dt.month0() as usize]),
                Token::Month(3) => out.push_str(&MONTHS[dt.month0() as usize][..3]),
                Token::Month(n) => push_padded(out, dt.month() as i64, *n),
                Token::DayOfMonth(n) => push_padded(out, dt.day() as i64, *n),
                Token::DayOfYear(n) => push_padded(out, dt.ordinal() as i64, *n),
                Token::WeekOfYear(n) => push_padded(out, dt.iso_week().week() as i64, *n),
                Token::DayOfWeekName(n) => {
                    let name = DAYS[dt.weekday().num_days_from_monday() as usize];
                    out.push_str(if *n >= 4 { name } else { &name[..3] });
                }
                Token::DayOfWeek(n) => {
                    push_padded(out, dt.weekday().number_from_monday() as i64, *n)
                }
                Token::HalfDay => out.push_str(if dt.hour() < 12 { "AM" } else { "PM" }),
                Token::Hour24(n) => push_padded(out, dt.hour() as i64, *n),
                Token::ClockHour24(n) => {
                    let h = if dt.hour() == 0 { 24 } else { dt.hour() };
                    push_padded(out, h as i64, *n)
                }
                Token::ClockHour12(n) => {
                    let h = dt.hour() % 12;
                    push_padded(out, if h == 0 { 12 } else { h as i64 }, *n)
                }
                Token::Hour12(n) => push_padded(out, (dt.hour() % 12) as i64, *n),
                Token::Minute(n) => push_padded(out, dt.minute() as i64, *n),
                Token::Second(n) => push_padded(out, dt.second() as i64, *n),
                Token::Fraction(n) => {
                    let nanos = (dt.nanosecond() % 1_000_000_000) as i64;
                    let digits = (*n).min(9);
                    let value = nanos / 10_i64.pow(9 - digits as u32);
                    push_padded(out, value, digits);
                    for _ in digits..*n {
                        out.push('0');
                    }
                }
                Token::Offset(n) => write_offset(out, offset_secs, *n),
                Token::ZoneName(_) => {
                    if offset_secs == 0 {
                        out.push_str("UTC");
                    } else {
                        write_offset(out, offset_secs, 2);
                    }
                }
            }
        }
    }

    /// Formats `dt` into a new string.
    pub fn format_to_string<Tz: TimeZone>(&self, dt: &DateTime<Tz>) -> String
    where
        Tz::Offset: std::fmt::Display,
    {
        let mut s = String::with_capacity(32);
        self.format(dt, &mut s);
        s
    }
}

fn write_offset(out: &mut String, offset_secs: i32, width: usize) {
    if width >= 3 && offset_secs == 0 {
        out.push_str("UTC");
        return;
    }
    out.push(if offset_secs < 0 { '-' } else { '+' });
    let abs = offset_secs.unsigned_abs();
    push_padded(out, (abs / 3600) as i64, 2);
    if width >= 2 {
        out.push(':');
    }
    push_padded(out, ((abs % 3600) / 60) as i64, 2);
}

/// Helper for callers that hold a fixed offset.
pub fn fixed_offset(secs: i32) -> Option<FixedOffset> {
    FixedOffset::east_opt(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn fmt(p: &str) -> String {
        let dt =
            Utc.with_ymd_and_hms(2026, 3, 7, 9, 5, 3).unwrap() + chrono::Duration::milliseconds(42);
        JodaPattern::compile(p).unwrap().format_to_string(&dt)
    }

    #[test]
    fn formats_common_patterns() {
        assert_eq!(fmt("YYYY.MM.dd"), "2026.03.07");
        assert_eq!(fmt("yyyy-MM-dd HH:mm:ss,SSS"), "2026-03-07 09:05:03,042");
        assert_eq!(fmt("dd/MMM/yyyy:HH:mm:ss Z"), "07/Mar/2026:09:05:03 +0000");
        assert_eq!(fmt("EEE, d MMMM yy"), "Sat, 7 March 26");
        assert_eq!(
            fmt("yyyy-MM-dd'T'HH:mm:ss.SSSZZ"),
            "2026-03-07T09:05:03.042+00:00"
        );
        assert_eq!(fmt("hh:mm a"), "09:05 AM");
        assert_eq!(fmt("'week' ww"), "week 10");
    }

    #[test]
    fn refuses_unknown_letters() {
        assert_eq!(
            JodaPattern::compile("yyyy-qq"),
            Err(JodaError::UnknownLetter('q'))
        );
        assert_eq!(
            JodaPattern::compile("yyyy 'oops"),
            Err(JodaError::UnterminatedQuote)
        );
    }
}

/// The fields a parse found; what is missing is filled in by the caller (year) or
/// defaults (time of day zero, UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Parsed {
    pub year: Option<i32>,
    pub month: Option<u32>,
    pub day: Option<u32>,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
    pub pm: Option<bool>,
    pub hour12: bool,
    /// Offset east of UTC written in the text, in seconds.
    pub offset: Option<i32>,
    /// A zone id written in the text (`ZZZ`), e.g. `Europe/Berlin`.
    pub zone: Option<chrono_tz::Tz>,
}

/// Reads up to `max` ASCII digits (at least one) from `s` at `*i`.
fn digits(s: &[u8], i: &mut usize, max: usize) -> Option<u64> {
    let start = *i;
    let mut n: u64 = 0;
    while *i < s.len() && *i - start < max && s[*i].is_ascii_digit() {
        n = n * 10 + u64::from(s[*i] - b'0');
        *i += 1;
    }
    (*i > start).then_some(n)
}

fn name_index(s: &[u8], i: &mut usize, names: &[&str]) -> Option<usize> {
    let rest = &s[*i..];
    // Full names first, so "March" is not read as "Mar" + "ch".
    for (idx, name) in names.iter().enumerate() {
        let n = name.as_bytes();
        if rest.len() >= n.len() && rest[..n.len()].eq_ignore_ascii_case(n) {
            *i += n.len();
            return Some(idx);
        }
    }
    for (idx, name) in names.iter().enumerate() {
        let n = &name.as_bytes()[..3];
        if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(n) {
            *i += 3;
            return Some(idx);
        }
    }
    None
}

fn parse_offset(s: &[u8], i: &mut usize) -> Option<i32> {
    let rest = &s[*i..];
    if rest.first() == Some(&b'Z') {
        *i += 1;
        return Some(0);
    }
    for utc in [&b"UTC"[..], b"GMT"] {
        if rest.len() >= 3 && &rest[..3] == utc {
            *i += 3;
            return Some(0);
        }
    }
    let sign = match rest.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    *i += 1;
    let start = *i;
    let h = digits(s, i, 2)?;
    if *i - start != 2 {
        return None;
    }
    if s.get(*i) == Some(&b':') {
        *i += 1;
    }
    let m = digits(s, i, 2).unwrap_or(0);
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h as i32 * 3600 + m as i32 * 60))
}

impl JodaPattern {
    /// Does this pattern contain a year field? Year-less (syslog) dates take one from
    /// the caller.
    pub fn has_year(&self) -> bool {
        self.tokens
            .iter()
            .any(|t| matches!(t, Token::Year(_) | Token::WeekYear(_)))
    }

    /// Parses `text`, which must be consumed whole, as Joda does.
    pub fn parse(&self, text: &str) -> Option<Parsed> {
        let s = text.as_bytes();
        let mut i = 0;
        let mut p = Parsed::default();
        for (k, token) in self.tokens.iter().enumerate() {
            // A numeric field directly followed by another numeric field reads exactly
            // its width (`yyyyMMdd`); otherwise it reads as many digits as it may.
            let next_numeric = matches!(
                self.tokens.get(k + 1),
                Some(
                    Token::Year(_)
                        | Token::Month(1 | 2)
                        | Token::DayOfMonth(_)
                        | Token::Hour24(_)
                        | Token::ClockHour12(_)
                        | Token::Minute(_)
                        | Token::Second(_)
                        | Token::Fraction(_)
                )
            );
            let width = |n: usize, max: usize| if next_numeric { n.max(1) } else { max };
            match token {
                Token::Literal(lit) => {
                    let l = lit.as_bytes();
                    if s.len() < i + l.len() || &s[i..i + l.len()] != l {
                        return None;
                    }
                    i += l.len();
                }
                Token::Year(2) | Token::WeekYear(2) => {
                    let y = digits(s, &mut i, 2)? as i32;
                    p.year = Some(2000 + y);
                }
                Token::Year(n) | Token::WeekYear(n) => {
                    let negative = s.get(i) == Some(&b'-');
                    if negative {
                        i += 1;
                    }
                    let y = digits(s, &mut i, width(*n, 9))? as i32;
                    p.year = Some(if negative { -y } else { y });
                }
                Token::Month(n) if *n >= 3 => {
                    p.month = Some(match &self.names {
                        None => name_index(s, &mut i, &MONTHS)? as u32 + 1,
                        Some(names) => {
                            let (len, month) = names.month(text.get(i..)?)?;
                            i += len;
                            month
                        }
                    });
                }
                Token::Month(n) => p.month = Some(digits(s, &mut i, width(*n, 2))? as u32),
                Token::DayOfMonth(n) => p.day = Some(digits(s, &mut i, width(*n, 2))? as u32),
                Token::DayOfYear(n) => {
                    let _ = digits(s, &mut i, width(*n, 3))?;
                }
                Token::WeekOfYear(n) | Token::DayOfWeek(n) => {
                    let _ = digits(s, &mut i, width(*n, 2))?;
                }
                Token::DayOfWeekName(_) => match &self.names {
                    None => {
                        let _ = name_index(s, &mut i, &DAYS)?;
                    }
                    Some(names) => i += names.day(text.get(i..)?)?,
                },
                Token::HalfDay => {
                    let rest = &s[i..];
                    if rest.len() < 2 {
                        return None;
                    }
                    p.pm = match &rest[..2] {
                        x if x.eq_ignore_ascii_case(b"AM") => Some(false),
                        x if x.eq_ignore_ascii_case(b"PM") => Some(true),
                        _ => return None,
                    };
                    i += 2;
                }
                Token::Hour24(n) | Token::ClockHour24(n) => {
                    p.hour = digits(s, &mut i, width(*n, 2))? as u32 % 24;
                }
                Token::ClockHour12(n) | Token::Hour12(n) => {
                    p.hour = digits(s, &mut i, width(*n, 2))? as u32;
                    p.hour12 = true;
                }
                Token::Minute(n) => p.minute = digits(s, &mut i, width(*n, 2))? as u32,
                Token::Second(n) => p.second = digits(s, &mut i, width(*n, 2))? as u32,
                Token::Fraction(n) => {
                    let start = i;
                    let v = digits(s, &mut i, if next_numeric { *n } else { 9 })?;
                    let len = (i - start) as u32;
                    p.nanos = (v * 10u64.pow(9 - len)) as u32;
                    // Joda reads further digits than nanoseconds can hold; skip them.
                    while i < s.len() && s[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                Token::Offset(n) if *n >= 3 => {
                    let start = i;
                    while i < s.len() && (s[i].is_ascii_alphanumeric() || b"/_+-".contains(&s[i])) {
                        i += 1;
                    }
                    let id = std::str::from_utf8(&s[start..i]).ok()?;
                    if id == "UTC" || id == "Z" {
                        p.offset = Some(0);
                    } else {
                        p.zone = Some(id.parse().ok()?);
                    }
                }
                Token::Offset(_) => p.offset = Some(parse_offset(s, &mut i)?),
                Token::ZoneName(_) => {
                    let start = i;
                    while i < s.len() && s[i].is_ascii_alphabetic() {
                        i += 1;
                    }
                    p.offset = Some(match &s[start..i] {
                        b"UTC" | b"GMT" | b"Z" | b"UT" => 0,
                        b"EST" => -5 * 3600,
                        b"EDT" => -4 * 3600,
                        b"CST" => -6 * 3600,
                        b"CDT" => -5 * 3600,
                        b"MST" => -7 * 3600,
                        b"MDT" => -6 * 3600,
                        b"PST" => -8 * 3600,
                        b"PDT" => -7 * 3600,
                        b"CET" => 3600,
                        b"CEST" => 2 * 3600,
                        _ => return None,
                    });
                }
            }
        }
        if i != s.len() {
            return None;
        }
        if p.hour12 {
            if p.hour > 12 {
                return None;
            }
            p.hour %= 12;
            if p.pm == Some(true) {
                p.hour += 12;
            }
        }
        Some(p)
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    fn parse(pattern: &str, text: &str) -> Option<Parsed> {
        JodaPattern::compile(pattern).unwrap().parse(text)
    }

    #[test]
    fn parses_the_formats_logs_use() {
        let p = parse("yyyy-MM-dd HH:mm:ss,SSS", "2026-11-21 10:30:00,123").unwrap();
        assert_eq!((p.year, p.month, p.day), (Some(2026), Some(11), Some(21)));
        assert_eq!(
            (p.hour, p.minute, p.second, p.nanos),
            (10, 30, 0, 123_000_000)
        );

        let p = parse("dd/MMM/yyyy:HH:mm:ss Z", "21/Nov/2026:10:30:00 -0500").unwrap();
        assert_eq!(p.offset, Some(-5 * 3600));
        assert_eq!(p.month, Some(11));

        let p = parse("MMM  d HH:mm:ss", "Nov  1 07:05:09").unwrap();
        assert_eq!((p.year, p.month, p.day), (None, Some(11), Some(1)));
        assert!(parse("MMM dd HH:mm:ss", "Nov 21 07:05:09").is_some());

        let p = parse("yyyyMMddHHmmss", "20261121103000").unwrap();
        assert_eq!(
            (p.year, p.month, p.day, p.hour),
            (Some(2026), Some(11), Some(21), 10)
        );

        let p = parse(
            "EEE, dd MMMM yyyy hh:mm a ZZZ",
            "Sat, 21 November 2026 02:15 PM Europe/Berlin",
        )
        .unwrap();
        assert_eq!(p.hour, 14);
        assert_eq!(p.zone, Some(chrono_tz::Europe::Berlin));

        let p = parse(
            "yyyy-MM-dd'T'HH:mm:ss.SSSSSSZZ",
            "2026-11-21T10:30:00.123456+01:00",
        )
        .unwrap();
        assert_eq!((p.nanos, p.offset), (123_456_000, Some(3600)));
    }

    #[test]
    fn refuses_what_does_not_fit() {
        assert!(parse("yyyy-MM-dd", "2026-11-21 trailing").is_none());
        assert!(parse("yyyy-MM-dd", "2026/11/21").is_none());
        assert!(parse("MMM dd", "Foo 21").is_none());
        assert!(parse("hh:mm a", "13:00 PM").is_none());
        assert!(parse("Z", "+99:00").is_none());
        assert!(parse("yyyy", "").is_none());
    }
}
