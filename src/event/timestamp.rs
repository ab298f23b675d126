//! Event timestamps: UTC instants with nanosecond precision, printed as Logstash prints
//! them (`2026-11-21T10:30:00.123Z`).

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use std::fmt;

/// A UTC instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp(Utc::now())
    }

    pub fn from_datetime(dt: DateTime<Utc>) -> Timestamp {
        Timestamp(dt)
    }

    /// From seconds and nanoseconds since the Unix epoch; `None` when out of range.
    pub fn from_unix(secs: i64, nanos: u32) -> Option<Timestamp> {
        Utc.timestamp_opt(secs, nanos).single().map(Timestamp)
    }

    pub fn from_unix_millis(ms: i64) -> Option<Timestamp> {
        Utc.timestamp_millis_opt(ms).single().map(Timestamp)
    }

    pub fn datetime(&self) -> &DateTime<Utc> {
        &self.0
    }

    pub fn unix_seconds(&self) -> i64 {
        self.0.timestamp()
    }

    pub fn unix_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// Parses an ISO 8601 / RFC 3339 instant; a missing offset means UTC.
    pub fn parse_iso8601(s: &str) -> Option<Timestamp> {
        let s = s.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Some(Timestamp(dt.with_timezone(&Utc)));
        }
        // Without an offset, or with a space instead of `T`.
        for fmt in [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S%.f%z",
            "%Y-%m-%d %H:%M:%S%.f%z",
            "%Y-%m-%d %H:%M:%S,%3f",
        ] {
            if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
                return Some(Timestamp(dt.with_timezone(&Utc)));
            }
            if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
                return Some(Timestamp(Utc.from_utc_datetime(&naive)));
            }
        }
        None
    }

    /// Appends the ISO 8601 form with at least millisecond precision, as Logstash 8 does.
    pub fn write_iso8601(&self, out: &mut String) {
        let d = &self.0;
        push_padded(out, d.year() as i64, 4);
        out.push('-');
        push_padded(out, d.month() as i64, 2);
        out.push('-');
        push_padded(out, d.day() as i64, 2);
        out.push('T');
        push_padded(out, d.hour() as i64, 2);
        out.push(':');
        push_padded(out, d.minute() as i64, 2);
        out.push(':');
        push_padded(out, d.second() as i64, 2);
        out.push('.');
        let nanos = d.nanosecond() % 1_000_000_000;
        if nanos.is_multiple_of(1_000_000) {
            push_padded(out, (nanos / 1_000_000) as i64, 3);
        } else if nanos.is_multiple_of(1_000) {
            push_padded(out, (nanos / 1_000) as i64, 6);
        } else {
            push_padded(out, nanos as i64, 9);
        }
        out.push('Z');
    }

    pub fn to_iso8601(&self) -> String {
        let mut s = String::with_capacity(24);
        self.write_iso8601(&mut s);
        s
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso8601())
    }
}

/// Appends `n` zero-padded to `width` digits without going through `format!`.
pub(crate) fn push_padded(out: &mut String, n: i64, width: usize) {
    let mut buf = itoa_buf(n.unsigned_abs());
    if n < 0 {
        out.push('-');
    }
    let digits = buf.len();
    for _ in digits..width {
        out.push('0');
    }
    out.push_str(std::mem::take(&mut buf).as_str());
}

fn itoa_buf(mut n: u64) -> String {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // The slice holds only ASCII digits.
    String::from_utf8_lossy(&tmp[i..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_millis_like_logstash() {
        let t = Timestamp::from_unix_millis(1_795_257_000_123).unwrap();
        assert_eq!(t.to_iso8601(), "2026-11-21T10:30:00.123Z");
        let t = Timestamp::from_unix(0, 0).unwrap();
        assert_eq!(t.to_iso8601(), "1970-01-01T00:00:00.000Z");
        let t = Timestamp::from_unix(0, 1_500).unwrap();
        assert_eq!(t.to_iso8601(), "1970-01-01T00:00:00.000001500Z");
    }

    #[test]
    fn parses_iso8601_variants() {
        let want = Timestamp::from_unix_millis(1_795_257_000_123).unwrap();
        for s in [
            "2026-11-21T10:30:00.123Z",
            "2026-11-21T11:30:00.123+01:00",
            "2026-11-21T10:30:00.123",
            "2026-11-21 10:30:00.123",
        ] {
            assert_eq!(Timestamp::parse_iso8601(s), Some(want), "{s}");
        }
        assert_eq!(Timestamp::parse_iso8601("yesterday"), None);
    }
}
