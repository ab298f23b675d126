//! Date parsing with Logstash's `date` formats: `ISO8601`, `UNIX`, `UNIX_MS`, `TAI64N`
//! and Joda patterns, tried in order; dates without an offset read in a fixed or
//! per-event time zone.
//!
//! It lives beside [`Timestamp`] rather than in the `date` filter because the `syslog`
//! input parses its timestamps the same way, as Logstash's does.

use super::joda::{JodaPattern, LocaleNames, Parsed, UnknownLocale};
use super::sprintf::{Template, TemplateError};
use super::{Event, Timestamp};
use chrono::{DateTime, Datelike, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// Logstash's tag for a value no format could read.
pub const DATE_PARSE_FAILURE: &str = "_dateparsefailure";

/// One entry of a `match` list.
enum Format {
    Iso8601,
    Unix,
    UnixMs,
    Tai64n,
    Joda(JodaPattern),
}

/// The zone for dates that carry no offset of their own.
enum Zone {
    Utc,
    Fixed(Tz),
    PerEvent(Template),
}

/// Why a [`DateParser`] could not be built; the caller names the option.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DateParseError {
    #[error("`{format}`: {reason}")]
    Format { format: String, reason: String },
    #[error("expects at least one format, e.g. \"ISO8601\"")]
    NoFormat,
    #[error("unknown time zone `{0}`")]
    Zone(String),
    #[error(transparent)]
    ZoneTemplate(#[from] TemplateError),
    #[error(transparent)]
    Locale(#[from] UnknownLocale),
}

/// Formats compiled once at start, tried in order on each value.
pub struct DateParser {
    formats: Vec<Format>,
    zone: Zone,
}

impl DateParser {
    /// `timezone` may be a `%{field}` template; `locale` is a Java locale tag (`fr`,
    /// `de-DE`, `pt_BR`) whose month and day names Joda patterns read (English when
    /// unset, as Logstash falls back to English).
    pub fn new(
        formats: &[String],
        timezone: Option<&str>,
        locale: Option<&str>,
    ) -> Result<DateParser, DateParseError> {
        if formats.is_empty() {
            return Err(DateParseError::NoFormat);
        }
        let names = match locale {
            Some(tag) => LocaleNames::for_tag(tag)?.map(std::sync::Arc::new),
            None => None,
        };
        let formats = formats
            .iter()
            .map(|p| {
                Ok(match p.as_str() {
                    "ISO8601" => Format::Iso8601,
                    "UNIX" => Format::Unix,
                    "UNIX_MS" => Format::UnixMs,
                    "TAI64N" => Format::Tai64n,
                    joda => Format::Joda(
                        JodaPattern::compile(joda)
                            .map_err(|e| DateParseError::Format {
                                format: joda.to_string(),
                                reason: e.to_string(),
                            })?
                            .with_locale(names.clone()),
                    ),
                })
            })
            .collect::<Result<Vec<_>, DateParseError>>()?;
        let zone = match timezone {
            None => Zone::Utc,
            Some(tz) if tz.contains("%{") => Zone::PerEvent(Template::parse(tz)?),
            Some(tz) => Zone::Fixed(parse_zone(tz).ok_or_else(|| DateParseError::Zone(tz.into()))?),
        };
        Ok(DateParser { formats, zone })
    }

    fn zone_for(&self, event: &Event) -> Option<Tz> {
        match &self.zone {
            Zone::Utc => None,
            Zone::Fixed(tz) => Some(*tz),
            Zone::PerEvent(t) => parse_zone(&t.render(event)),
        }
    }

    /// The first format that reads `text` (trimmed) wins; `now` places year-less dates.
    pub fn parse(&self, text: &str, event: &Event, now: DateTime<Utc>) -> Option<Timestamp> {
        let text = text.trim();
        for format in &self.formats {
            let parsed = match format {
                Format::Iso8601 => parse_iso8601(text, self.zone_for(event)),
                Format::Unix => parse_unix(text, 1_000_000_000),
                Format::UnixMs => parse_unix(text, 1_000_000),
                Format::Tai64n => parse_tai64n(text),
                Format::Joda(p) => p
                    .parse(text)
                    .and_then(|parsed| resolve(&parsed, p.has_year(), self.zone_for(event), now)),
            };
            if parsed.is_some() {
                return parsed;
            }
        }
        None
    }
}

fn parse_zone(name: &str) -> Option<Tz> {
    match name {
        "UTC" | "Z" | "GMT" | "Etc/UTC" => Some(Tz::UTC),
        other => other.parse().ok(),
    }
}

/// Builds the instant from parsed fields. A year-less date takes the current year, but
/// a December date read in January belongs to last year and a January date read in
/// December to next year, as Logstash guesses it.
fn resolve(p: &Parsed, has_year: bool, zone: Option<Tz>, now: DateTime<Utc>) -> Option<Timestamp> {
    let month = p.month.unwrap_or(1);
    let day = p.day.unwrap_or(1);
    let year = match p.year {
        Some(y) if has_year => y,
        _ => {
            let y = now.year();
            match (month, now.month()) {
                (12, 1) => y - 1,
                (1, 12) => y + 1,
                _ => y,
            }
        }
    };
    let naive = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_nano_opt(
        p.hour,
        p.minute,
        p.second.min(59),
        p.nanos,
    )?;
    let utc = if let Some(offset) = p.offset {
        chrono::FixedOffset::east_opt(offset)?
            .from_local_datetime(&naive)
            .single()?
            .with_timezone(&Utc)
    } else if let Some(tz) = p.zone.or(zone) {
        match tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            // In the autumn overlap, take the earlier instant, as Joda does.
            LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
            // In the spring gap the local time does not exist: it cannot be parsed.
            LocalResult::None => return None,
        }
    } else {
        Utc.from_utc_datetime(&naive)
    };
    Some(Timestamp::from_datetime(utc))
}

fn parse_iso8601(text: &str, zone: Option<Tz>) -> Option<Timestamp> {
    const FORMATS: [&str; 4] = [
        "yyyy-MM-dd'T'HH:mm:ss.SSSZ",
        "yyyy-MM-dd'T'HH:mm:ssZ",
        "yyyy-MM-dd'T'HH:mm:ss.SSS",
        "yyyy-MM-dd'T'HH:mm:ss",
    ];
    // ISO 8601 allows a space for `T` and a comma for the decimal point.
    let normalised: std::borrow::Cow<str> = if text.contains([' ', ',']) {
        std::borrow::Cow::Owned(text.replacen(' ', "T", 1).replacen(',', ".", 1))
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    thread_local! {
        static PATTERNS: Vec<JodaPattern> = FORMATS
            .iter()
            .filter_map(|f| JodaPattern::compile(f).ok())
            .collect();
    }
    PATTERNS
        .with(|patterns| {
            patterns.iter().find_map(|p| {
                p.parse(&normalised)
                    .and_then(|parsed| resolve(&parsed, true, zone, Utc::now()))
            })
        })
        .or_else(|| {
            // A date alone: midnight.
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| {
                    let parsed = Parsed {
                        year: Some(d.year()),
                        month: Some(d.month()),
                        day: Some(d.day()),
                        ..Parsed::default()
                    };
                    resolve(&parsed, true, zone, Utc::now())
                })
        })
}

/// Seconds (`unit` = 1e9 ns) or milliseconds (`unit` = 1e6 ns) since the epoch, with
/// an optional fraction.
fn parse_unix(text: &str, unit: i64) -> Option<Timestamp> {
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    if int.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = int.parse().ok()?;
    let digits = frac.len().min(9);
    let mut frac_ns: i64 = if digits == 0 {
        0
    } else {
        frac[..digits].parse::<i64>().ok()? * 10i64.pow(9 - digits as u32)
    };
    frac_ns = frac_ns * unit / 1_000_000_000;
    let total = whole
        .checked_mul(unit)?
        .checked_add(if whole < 0 { -frac_ns } else { frac_ns })?;
    Timestamp::from_unix(
        total.div_euclid(1_000_000_000),
        total.rem_euclid(1_000_000_000) as u32,
    )
}

/// `@4000000052f88ea32489532c`: TAI seconds since 1970 offset by 2^62 (plus the 10 s
/// TAI-UTC difference at 1970, as Logstash counts it) and nanoseconds.
fn parse_tai64n(text: &str) -> Option<Timestamp> {
    let hex = text.strip_prefix('@').unwrap_or(text);
    if hex.len() != 24 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let secs = u64::from_str_radix(&hex[..16], 16).ok()?;
    let nanos = u32::from_str_radix(&hex[16..], 16).ok()?;
    let secs = i64::try_from(secs.checked_sub((1u64 << 62) + 10)?).ok()?;
    Timestamp::from_unix(secs, nanos.min(999_999_999))
}
