//! `date` filter: parses a date out of a field into `@timestamp` (or `target`), with
//! Logstash's formats: `ISO8601`, `UNIX`, `UNIX_MS`, `TAI64N` and Joda patterns. Every
//! pattern is compiled once at start; the time zone may be a per-event template.

use super::{EventFilter, Outcome};
use crate::config::Error;
use crate::event::date_parse::{DateParseError, DateParser};
use crate::event::field_ref::FieldRef;
use crate::event::{Event, Timestamp, Value};
use crate::plugin::Options;
use chrono::Utc;

pub use crate::event::date_parse::DATE_PARSE_FAILURE;

pub struct Date {
    source: FieldRef,
    parser: DateParser,
    target: FieldRef,
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
        let target = opts
            .field_ref("target")?
            .unwrap_or_else(|| FieldRef::top("@timestamp"));
        let tz_pos = opts.value_pos("timezone");
        let timezone = opts.string("timezone")?;
        let loc_pos = opts.value_pos("locale");
        let locale = opts.string("locale")?;
        let parser = DateParser::new(patterns, timezone.as_deref(), locale.as_deref()).map_err(
            |e| match e {
                DateParseError::Format { .. } | DateParseError::NoFormat => {
                    opts.option_error("match", &pos, e)
                }
                DateParseError::Zone(_) | DateParseError::ZoneTemplate(_) => {
                    opts.option_error("timezone", &tz_pos, e)
                }
                DateParseError::Locale(_) => opts.option_error("locale", &loc_pos, e),
            },
        )?;
        let tag_on_failure = opts
            .string_list("tag_on_failure")?
            .unwrap_or_else(|| vec![DATE_PARSE_FAILURE.to_string()]);
        Ok(Date {
            source,
            parser,
            target,
            tag_on_failure,
        })
    }
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
        match self.parser.parse(&text, event, Utc::now()) {
            Some(ts) => {
                // Logstash's date filter holds Joda instants: milliseconds. Finer digits
                // (UNIX fractions, ISO8601 micro- and nanoseconds, TAI64N) are dropped,
                // so the same input gives the same @timestamp as in Logstash.
                let ts = Timestamp::from_unix_millis(ts.unix_millis()).unwrap_or(ts);
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
    use chrono::{Datelike, TimeZone};

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
            "2026-11-21T10:30:00.123Z",
            "truncated to milliseconds, as Logstash"
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
            "2014-02-10T08:32:25.612Z"
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
        let parser = DateParser::new(&["MMM dd HH:mm:ss".into()], None, None).unwrap();
        assert_eq!(
            parser
                .parse("Dec 31 23:59:59", &Event::new(), jan)
                .unwrap()
                .to_iso8601(),
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
            r#"match => ["t", "ISO8601"] locale => "xx""#,
        ] {
            let mut opts = Options::from_text("date", "filter", body).unwrap();
            assert!(Date::build(&mut opts).is_err(), "{body}");
        }
    }
}
