//! Joda-Time format patterns (`YYYY.MM.dd`, `dd/MMM/yyyy:HH:mm:ss Z`), the date syntax
//! Logstash users write in `%{+...}` templates and the date filter. Compiled once into
//! tokens; formatting walks the tokens.

use super::timestamp::push_padded;
use chrono::{DateTime, Datelike, FixedOffset, Offset, TimeZone, Timelike};

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
        Ok(JodaPattern { tokens })
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
