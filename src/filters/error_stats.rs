//! `error_stats` filter: counts the events that pass through it per service and level,
//! classifies error messages by pattern, and feeds the process's error statistics store
//! (read by the HTTP API's `/api/v1/errors/*` and `/metrics`). It changes no event.
//!
//! Levels are matched case-insensitively. Besides `error_levels` and `warning_levels`,
//! the usual spellings are always recognised (`err`, `crit`, `fatal`, `severe`, `emerg`,
//! `alert`; `warn`) and so are syslog severities as numbers (0–3 error, 4 warning, 5–6
//! info, 7 debug).

use super::common::CommonOptions;
use super::Filter;
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{Event, Value};
use crate::plugin::Options;
use crate::stats::store::{cut, Level, Limits, Observation};
use crate::stats::Store;
use std::borrow::Cow;

pub const DEFAULT_ERROR_LEVELS: &[&str] = &["ERROR", "CRITICAL", "FATAL"];
pub const DEFAULT_WARNING_LEVELS: &[&str] = &["WARN", "WARNING"];
/// Ordered: the first pattern that matches an error message names its class.
pub const DEFAULT_PATTERNS: &[(&str, &str)] = &[
    ("connection_error", "(?i)connection"),
    ("database_error", "(?i)database"),
    ("timeout_error", "(?i)timeout"),
    ("memory_error", "(?i)memory"),
    ("file_error", "(?i)file"),
];
const ERROR_ALIASES: &[&str] = &[
    "err",
    "crit",
    "fatal",
    "severe",
    "emerg",
    "emergency",
    "alert",
];
const WARNING_ALIASES: &[&str] = &["warn"];
const INFO_NAMES: &[&str] = &["info", "information", "informational", "notice"];
const DEBUG_NAMES: &[&str] = &["debug", "trace", "fine", "finer", "finest", "verbose"];
/// Service of an event without a service field.
pub const UNKNOWN_SERVICE: &str = "unknown";

/// One event as seen: service, level class, Unix minute, (pattern, grouped message).
type Seen<'a> = (Cow<'a, str>, Level, i64, Option<(u32, &'a str)>);

pub struct ErrorStats {
    service_field: FieldRef,
    level_field: FieldRef,
    message_field: FieldRef,
    error_levels: Vec<String>,
    warning_levels: Vec<String>,
    /// (store pattern index, regex), in order.
    patterns: Vec<(u32, regex::Regex)>,
    message_length: usize,
    store: &'static Store,
    common: CommonOptions,
}

impl ErrorStats {
    pub fn build(opts: &mut Options) -> Result<ErrorStats, Error> {
        let common = CommonOptions::from_options(opts)?;
        Self::build_with(opts, common, crate::stats::global())
    }

    pub fn build_with(
        opts: &mut Options,
        common: CommonOptions,
        store: &'static Store,
    ) -> Result<ErrorStats, Error> {
        let field = |opts: &mut Options, name: &str, default: &str| {
            opts.field_ref(name)
                .map(|r| r.unwrap_or_else(|| FieldRef::top(default)))
        };
        let service_field = field(opts, "service_field", "service")?;
        let level_field = field(opts, "level_field", "level")?;
        let message_field = field(opts, "message_field", "message")?;
        let lower = |v: Vec<String>| v.into_iter().map(|s| s.to_lowercase()).collect();
        let defaults = |d: &[&str]| d.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let error_levels = lower(
            opts.string_list("error_levels")?
                .unwrap_or_else(|| defaults(DEFAULT_ERROR_LEVELS)),
        );
        let warning_levels = lower(
            opts.string_list("warning_levels")?
                .unwrap_or_else(|| defaults(DEFAULT_WARNING_LEVELS)),
        );
        let pos = opts.value_pos("patterns");
        let pattern_texts = opts.string_map("patterns")?.unwrap_or_else(|| {
            DEFAULT_PATTERNS
                .iter()
                .map(|(n, r)| (n.to_string(), r.to_string()))
                .collect()
        });
        let mut patterns = Vec::with_capacity(pattern_texts.len());
        for (name, text) in pattern_texts {
            let re = regex::Regex::new(&text)
                .map_err(|e| opts.option_error("patterns", &pos, format!("`{name}`: {e}")))?;
            patterns.push((store.pattern(&name), re));
        }
        let message_length = opts.usize_or("message_length", 100)?.max(1);
        let mut limits = Limits::default();
        limits.max_services = opts.usize_or("max_services", limits.max_services)?.max(1);
        limits.top_messages = opts.usize_or("top_messages", limits.top_messages)?.max(1);
        if let Some(text) = opts.string("retention")? {
            let pos = opts.value_pos("retention");
            limits.retention_minutes = parse_minutes(&text).ok_or_else(|| {
                opts.option_error(
                    "retention",
                    &pos,
                    format!("`{text}` is not a duration like 7d, 24h or 90m"),
                )
            })?;
        }
        store.configure(limits);
        Ok(ErrorStats {
            service_field,
            level_field,
            message_field,
            error_levels,
            warning_levels,
            patterns,
            message_length,
            store,
            common,
        })
    }

    /// The level class of a level field's value.
    pub fn level_of(&self, value: Option<&Value>) -> Level {
        let text = match value {
            Some(Value::String(s)) => s.trim(),
            Some(Value::Int(n)) => return syslog_level(*n),
            _ => return Level::Other,
        };
        if let Ok(n) = text.parse::<i64>() {
            return syslog_level(n);
        }
        let is = |names: &[String]| names.iter().any(|n| n.eq_ignore_ascii_case(text));
        let alias = |names: &[&str]| names.iter().any(|n| n.eq_ignore_ascii_case(text));
        if is(&self.error_levels) || alias(ERROR_ALIASES) {
            Level::Error
        } else if is(&self.warning_levels) || alias(WARNING_ALIASES) {
            Level::Warning
        } else if alias(INFO_NAMES) {
            Level::Info
        } else if alias(DEBUG_NAMES) {
            Level::Debug
        } else {
            Level::Other
        }
    }

    /// The store's pattern index of an error message (`other` is 0).
    pub fn pattern_of(&self, message: &str) -> u32 {
        self.patterns
            .iter()
            .find(|(_, re)| re.is_match(message))
            .map_or(0, |(p, _)| *p)
    }
}

/// Syslog severity numbers: 0–3 error, 4 warning, 5–6 info, 7 debug.
fn syslog_level(n: i64) -> Level {
    match n {
        0..=3 => Level::Error,
        4 => Level::Warning,
        5 | 6 => Level::Info,
        7 => Level::Debug,
        _ => Level::Other,
    }
}

/// `7d`, `24h`, `90m` or a bare number of minutes.
fn parse_minutes(text: &str) -> Option<i64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: i64 = t[..split].parse().ok()?;
    let mult = match t[split..].trim() {
        "" | "m" => 1,
        "h" => 60,
        "d" => 24 * 60,
        _ => return None,
    };
    n.checked_mul(mult).filter(|m| *m > 0)
}

impl Filter for ErrorStats {
    fn filter(&self, events: &mut Vec<Event>) {
        let now = chrono::Utc::now().timestamp_millis();
        let seen: Vec<Seen<'_>> = events
            .iter()
            .map(|e| {
                let service = match e.get(&self.service_field) {
                    Some(Value::String(s)) if !s.is_empty() => Cow::Borrowed(s.as_str()),
                    Some(Value::Null) | None => Cow::Borrowed(UNKNOWN_SERVICE),
                    Some(Value::String(_)) => Cow::Borrowed(UNKNOWN_SERVICE),
                    Some(other) => Cow::Owned(other.to_display_string()),
                };
                let level = self.level_of(e.get(&self.level_field));
                let millis = e.timestamp().map_or(now, |t| t.unix_millis());
                let error = (level == Level::Error).then(|| {
                    let message = match e.get(&self.message_field) {
                        Some(Value::String(s)) => s.as_str(),
                        _ => "",
                    };
                    (self.pattern_of(message), cut(message, self.message_length))
                });
                (service, level, millis.div_euclid(60_000), error)
            })
            .collect();
        self.store.record_all(
            seen.iter()
                .map(|(service, level, minute, error)| Observation {
                    service,
                    level: *level,
                    minute: *minute,
                    error: *error,
                }),
        );
        drop(seen);
        if !self.common.is_empty() {
            for e in events.iter_mut() {
                self.common.apply(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::query::Window;
    use std::sync::LazyLock;

    static STORE: LazyLock<Store> = LazyLock::new(|| Store::new(Limits::default()));

    fn filter(body: &str) -> ErrorStats {
        let mut opts = Options::from_text("error_stats", "filter", body).unwrap();
        let f = ErrorStats::build_with(&mut opts, CommonOptions::default(), &STORE).unwrap();
        opts.finish().unwrap();
        f
    }

    #[test]
    fn levels_are_recognised_in_every_spelling() {
        let f = filter("");
        let s = |t: &str| f.level_of(Some(&Value::String(t.into())));
        assert_eq!(s("error"), Level::Error);
        assert_eq!(s("Critical"), Level::Error);
        assert_eq!(s("SEVERE"), Level::Error);
        assert_eq!(s("err"), Level::Error);
        assert_eq!(s("3"), Level::Error);
        assert_eq!(f.level_of(Some(&Value::Int(2))), Level::Error);
        assert_eq!(s("warn"), Level::Warning);
        assert_eq!(f.level_of(Some(&Value::Int(4))), Level::Warning);
        assert_eq!(s("INFO"), Level::Info);
        assert_eq!(s("debug"), Level::Debug);
        assert_eq!(s("banana"), Level::Other);
        assert_eq!(f.level_of(None), Level::Other);
        let custom = filter(r#"error_levels => ["oops"] warning_levels => ["hmm"]"#);
        assert_eq!(
            custom.level_of(Some(&Value::String("OOPS".into()))),
            Level::Error
        );
        assert_eq!(
            custom.level_of(Some(&Value::String("hmm".into()))),
            Level::Warning
        );
        // Built-in spellings still count.
        assert_eq!(
            custom.level_of(Some(&Value::String("fatal".into()))),
            Level::Error
        );
    }

    #[test]
    fn patterns_classify_in_order_and_default_to_other() {
        let f = filter("");
        let name = |m: &str| STORE.lock().patterns[f.pattern_of(m) as usize].to_string();
        assert_eq!(name("Database connection refused"), "connection_error");
        assert_eq!(name("database is locked"), "database_error");
        assert_eq!(name("Read TIMEOUT"), "timeout_error");
        assert_eq!(name("out of memory"), "memory_error");
        assert_eq!(name("no such file"), "file_error");
        assert_eq!(name("something else"), "other");
        let custom = filter(r#"patterns => { "auth_error" => "(?i)denied" }"#);
        let name = |m: &str| STORE.lock().patterns[custom.pattern_of(m) as usize].to_string();
        assert_eq!(name("access denied"), "auth_error");
        assert_eq!(name("connection reset"), "other");
    }

    #[test]
    fn bad_options_are_errors_with_positions() {
        for body in [
            r#"patterns => { "x" => "(" }"#,
            r#"retention => "forever""#,
            r#"message_length => "long""#,
        ] {
            let mut opts = Options::from_text("error_stats", "filter", body).unwrap();
            let err = ErrorStats::build_with(&mut opts, CommonOptions::default(), &STORE)
                .err()
                .unwrap_or_else(|| panic!("{body} accepted"));
            assert!(err.to_string().contains("options:1:"), "{err}");
        }
        assert_eq!(parse_minutes("7d"), Some(10080));
        assert_eq!(parse_minutes("90"), Some(90));
        assert_eq!(parse_minutes("0h"), None);
    }

    #[test]
    fn a_batch_is_counted_and_left_unchanged() {
        let f = filter(r#"service_field => "[app][name]" message_length => 5"#);
        let mut events = Vec::new();
        for (svc, level, msg) in [
            ("checkout", "ERROR", "database unreachable"),
            ("checkout", "INFO", "ok"),
            ("checkout", "ERROR", "database gone"),
        ] {
            let mut e = Event::new();
            e.insert(&FieldRef::parse("[app][name]").unwrap(), svc.into());
            e.insert_field("level", level);
            e.insert_field("message", msg);
            events.push(e);
        }
        let before = events.clone();
        f.filter(&mut events);
        assert_eq!(events, before);
        let s = STORE.summary(
            Window::last_hours(crate::stats::now_minute(), 1),
            Some("checkout"),
            5,
        );
        assert_eq!(s.total_errors, 2);
        // Grouped by their first five characters.
        assert_eq!(
            s.errors_by_service["checkout"].top_messages[0].message,
            "datab"
        );
        assert_eq!(s.errors_by_service["checkout"].top_messages[0].count, 2);
        assert_eq!(s.error_patterns["database_error"], 2);
    }
}
