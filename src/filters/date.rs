//! `date` filter: parses a date out of a field into `@timestamp` (or `target`), with
//! Logstash's formats: `ISO8601`, `UNIX`, `UNIX_MS`, `TAI64N` and Joda patterns. Every
//! pattern is compiled once at start; the time zone may be a per-event template.

use super::{EventFilter, Outcome};
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::joda::{JodaPattern, Parsed};
use crate::event::sprintf::Template;
use crate::event::{Event, Timestamp, Value};
use crate::plugin::Options;
use chrono::{DateTime, Datelike, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

pub const DATE_PARSE_FAILURE: &str = "_dateparsefailure";

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

pub struct Date {
    source: FieldRef,
    formats: Vec<Format>,
    target: FieldRef,
    zone: Zone,
    tag_on_failure: Vec<String>,
}

impl Date {
    pub fn build(opts: &mut Options) -> Result<Date, Error> {
        let pos = opts.value_pos("match");
        let list = opts.string_list("match")?.ok_or_else(|| {
            opts.error("date filter requires option `match` => [field, formats...]")
        })?;
        let Some((field, patterns)) = list.split_first().filter(|(_, p)| !p.is_empty()) else {
            return Err(opts.option_error(
                "match",
                &pos,
                "expects a field followed by at least one format, e.g. [\"timestamp\", \"ISO8601\"]",
            ));
        };
        let source = FieldRef::parse(field).map_err(|e| opts.option_error("match", &pos, e))?;
        let mut formats = Vec::with_capacity(patterns.len());
        for p in patterns {
            formats.push(match p.as_str() {
                "ISO8601" => Format::Iso8601,
                "UNIX" => Format::Unix,
                "UNIX_MS" => Format::UnixMs,
                "TAI64N" => Format::Tai64n,
                joda => Format::Joda(
                    JodaPattern::compile(joda)
                        .map_err(|e| opts.option_error("match", &pos, format!("`{joda}`: {e}")))?,
                ),
            });
        }
        let target = opts
            .field_ref("target")?
            .unwrap_or_else(|| FieldRef::top("@timestamp"));
        let tz_pos = opts.value_pos("timezone");
        let zone = match opts.string("timezone")? {
            None => Zone::Utc,
            Some(tz) if tz.contains("%{") => Zone::PerEvent(
                Template::parse(&tz).map_err(|e| opts.option_error("timezone", &tz_pos, e))?,
            ),
            Some(tz) => Zone::Fixed(parse_zone(&tz).ok_or_else(|| {
                opts.option_error("timezone", &tz_pos, format!("unknown time zone `{tz}`"))
            })?),
        };
        let loc_pos = opts.value_pos("locale");
        if let Some(locale) = opts.string("locale")? {
            // Month and day names are matched in English, which is what log files carry.
            if !locale.to_ascii_lowercase().starts_with("en") && locale != "root" {
                return Err(opts.option_error(
                    "locale",
                    &loc_pos,
                    format!("locale `{locale}` is not supported; month and day names are read in English (use \"en\")"),
                ));
            }
        }
        let tag_on_failure = opts
            .string_list("tag_on_failure")?
            .unwrap_or_else(|| vec![DATE_PARSE_FAILURE.to_string()]);
        Ok(Date {
            source,
            formats,
            target,
            zone,
            tag_on_failure,
        })
    }

    fn zone_for(&self, event: &Event) -> Option<Tz> {
        match &self.zone {
            Zone::Utc => None,
            Zone::Fixed(tz) => Some(*tz),
            Zone::PerEvent(t) => parse_zone(&t.render(event)),
        }
    }

    fn parse(&self, text: &str, event: &Event, now: DateTime<Utc>) -> Option<Timestamp> {
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

impl EventFilter for Date {
    fn apply(&self, event: &mut Event) -> Outcome {
        let text = match event.get(&self.source) {
            None => return Outcome::Failure,
            Some(Value::Array(items)) => match items.first() {
                Some(v) => v.to_display_string(),
                None => return Outcome::Failure,
            },
            Some(Value::Timestamp(t)) => {
                let t = *t;
                event.insert(&self.target, Value::Timestamp(t));
                return Outcome::Success;
            }
            Some(v) => v.to_display_string(),
        };
        match self.parse(&text, event, Utc::now()) {
            Some(ts) => {
                event.insert(&self.target, Value::Timestamp(ts));
                Outcome::Success
            }
            None => {
                tracing::debug!(field = %self.source, value = %text, "date filter could not parse field");
                for t in &self.tag_on_failure {
                    event.add_tag(t);
                }
                Outcome::Failure
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::Options;

    fn filter(body: &str) -> Date {
        let mut opts = Options::from_text("date", "filter", body).unwrap();
        let d = Date::build(&mut opts).unwrap();
        opts.finish().unwrap();
        d
    }

    fn apply(f: &Date, value: Value) -> Event {
        let mut e = Event::new();
        e.insert_field("t", value);
        f.apply(&mut e);
        e
    }

    fn ts(e: &Event) -> String {
        e.timestamp().unwrap().to_iso8601()
    }

    #[test]
    fn iso8601_and_fallback_formats_in_order() {
        let f = filter(r#"match => ["t", "ISO8601", "dd/MMM/yyyy:HH:mm:ss Z"]"#);
        assert_eq!(
            ts(&apply(&f, "2026-11-21T10:30:00.123456Z".into())),
            "2026-11-21T10:30:00.123456Z"
        );
        assert_eq!(
            ts(&apply(&f, "2026-11-21 10:30:00,123".into())),
            "2026-11-21T10:30:00.123Z"
        );
        assert_eq!(
            ts(&apply(&f, "2026-11-21T11:30:00+01:00".into())),
            "2026-11-21T10:30:00.000Z"
        );
        assert_eq!(
            ts(&apply(&f, "21/Nov/2026:05:30:00 -0500".into())),
            "2026-11-21T10:30:00.000Z"
        );
        let bad = apply(&f, "yesterday".into());
        assert!(bad.has_tag(DATE_PARSE_FAILURE));
    }

    #[test]
    fn unix_and_tai64n() {
        let f = filter(r#"match => ["t", "UNIX", "UNIX_MS"]"#);
        assert_eq!(
            ts(&apply(&f, Value::Int(1_795_257_000))),
            "2026-11-21T10:30:00.000Z"
        );
        assert_eq!(
            ts(&apply(&f, "1795257000.5".into())),
            "2026-11-21T10:30:00.500Z"
        );
        let f = filter(r#"match => ["t", "UNIX_MS"]"#);
        assert_eq!(
            ts(&apply(&f, "1795257000123".into())),
            "2026-11-21T10:30:00.123Z"
        );
        let f = filter(r#"match => ["t", "TAI64N"]"#);
        assert_eq!(
            ts(&apply(&f, "@4000000052f88ea32489532c".into())),
            "2014-02-10T08:32:25.612979500Z"
        );
    }

    #[test]
    fn time_zones_fixed_and_per_event() {
        let f = filter(r#"match => ["t", "yyyy-MM-dd HH:mm:ss"] timezone => "Europe/Berlin""#);
        assert_eq!(
            ts(&apply(&f, "2026-07-01 12:00:00".into())),
            "2026-07-01T10:00:00.000Z"
        );
        assert_eq!(
            ts(&apply(&f, "2026-12-01 12:00:00".into())),
            "2026-12-01T11:00:00.000Z"
        );
        let f = filter(r#"match => ["t", "yyyy-MM-dd HH:mm:ss"] timezone => "%{tz}""#);
        let mut e = Event::new();
        e.insert_field("t", "2026-07-01 12:00:00");
        e.insert_field("tz", "America/New_York");
        f.apply(&mut e);
        assert_eq!(ts(&e), "2026-07-01T16:00:00.000Z");
        // An offset in the text wins over the configured zone.
        let f = filter(r#"match => ["t", "yyyy-MM-dd HH:mm:ss Z"] timezone => "Asia/Tokyo""#);
        assert_eq!(
            ts(&apply(&f, "2026-07-01 12:00:00 +0000".into())),
            "2026-07-01T12:00:00.000Z"
        );
    }

    #[test]
    fn yearless_syslog_dates_take_the_current_year() {
        let f = filter(r#"match => ["t", "MMM  d HH:mm:ss", "MMM dd HH:mm:ss"]"#);
        let e = apply(&f, "Nov  1 07:05:09".into());
        // Only December and January straddle the new year; November takes this year.
        let expected_year = Utc::now().year();
        assert_eq!(e.timestamp().unwrap().datetime().year(), expected_year);
        assert!(!apply(&f, "Nov 21 07:05:09".into()).has_tag(DATE_PARSE_FAILURE));
        let jan = Utc.with_ymd_and_hms(2027, 1, 2, 0, 0, 0).unwrap();
        let p = JodaPattern::compile("MMM dd HH:mm:ss")
            .unwrap()
            .parse("Dec 31 23:59:59")
            .unwrap();
        assert_eq!(
            resolve(&p, false, None, jan).unwrap().to_iso8601(),
            "2026-12-31T23:59:59.000Z"
        );
    }

    #[test]
    fn target_and_failure_tags() {
        let f = filter(
            r#"match => ["t", "ISO8601"] target => "[event][created]" tag_on_failure => ["bad_date"]"#,
        );
        let e = apply(&f, "2026-11-21T10:30:00Z".into());
        assert!(matches!(
            e.get(&FieldRef::parse("[event][created]").unwrap()),
            Some(Value::Timestamp(_))
        ));
        assert!(apply(&f, "nope".into()).has_tag("bad_date"));
    }

    #[test]
    fn bad_options_fail_at_load_time() {
        for body in [
            r#"match => ["t"]"#,
            r#"match => ["t", "yyyy-qq"]"#,
            r#"match => ["t", "ISO8601"] timezone => "Mars/Olympus""#,
            r#"match => ["t", "ISO8601"] locale => "fr""#,
        ] {
            let mut opts = Options::from_text("date", "filter", body).unwrap();
            assert!(Date::build(&mut opts).is_err(), "{body}");
        }
    }
}
