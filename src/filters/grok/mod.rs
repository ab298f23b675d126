//! `grok` filter: parses unstructured text into fields with named patterns, with
//! Logstash's options and semantics.
//!
//! ```text
//! grok {
//!   match => { "message" => "%{TIMESTAMP_ISO8601:timestamp} %{LOGLEVEL:level} %{GREEDYDATA:msg}" }
//! }
//! ```
//!
//! [`library`] holds the named patterns, [`compiler`] expands a pattern into one regex
//! and picks the engine, [`matcher`] runs it.

pub mod compiler;
pub mod debug;
pub mod library;
pub mod matcher;

use super::common::CommonOptions;
use super::{EventFilter, Filter, Outcome};
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{Event, Value};
use crate::plugin::Options;
use compiler::Conversion;
use library::PatternLibrary;
use matcher::{MatchResult, Matcher, Scratch};
use prometheus_client::metrics::counter::Counter;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

pub use matcher::EngineKind;

const GROK_FAILURE: &str = "_grokparsefailure";
const GROK_TIMEOUT: &str = "_groktimeout";

/// Counters of one pattern, updated by the workers.
#[derive(Debug, Default)]
pub struct PatternStats {
    pub matches: AtomicU64,
    pub failures: AtomicU64,
    pub timeouts: AtomicU64,
    /// Time spent matching, in nanoseconds (sampled: one attempt in
    /// [`TIME_SAMPLE`] is timed and counted for all of them).
    pub nanos: AtomicU64,
}

/// One pattern's outcomes in the process-wide metrics (`sluice_grok_*_total{pattern}`).
/// Detached counters until the filter that owns the pattern attaches them.
#[derive(Debug, Default)]
struct ExportedCounters {
    matches: Counter,
    failures: Counter,
    timeouts: Counter,
}

impl ExportedCounters {
    fn of(pattern: &str) -> ExportedCounters {
        let m = &crate::metrics::get().grok;
        let labels = crate::metrics::label("pattern", pattern);
        ExportedCounters {
            matches: m.matches.get_or_create(&labels).clone(),
            failures: m.failures.get_or_create(&labels).clone(),
            timeouts: m.timeouts.get_or_create(&labels).clone(),
        }
    }
}

/// One attempt in this many is timed.
pub const TIME_SAMPLE: u64 = 16;

/// A copy of one pattern's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternStatsSnapshot {
    pub field: String,
    pub pattern: String,
    pub engine: EngineKind,
    pub matches: u64,
    pub failures: u64,
    pub timeouts: u64,
    pub time: Duration,
}

struct Registered {
    field: String,
    pattern: String,
    engine: EngineKind,
    stats: Weak<PatternStats>,
}

static REGISTRY: Mutex<Vec<Registered>> = Mutex::new(Vec::new());

/// The counters of every grok pattern of every live grok filter, for the node stats.
pub fn pattern_stats() -> Vec<PatternStatsSnapshot> {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    reg.retain(|r| r.stats.strong_count() > 0);
    reg.iter()
        .filter_map(|r| {
            let s = r.stats.upgrade()?;
            Some(snapshot(&r.field, &r.pattern, r.engine, &s))
        })
        .collect()
}

fn snapshot(
    field: &str,
    pattern: &str,
    engine: EngineKind,
    s: &PatternStats,
) -> PatternStatsSnapshot {
    PatternStatsSnapshot {
        field: field.to_string(),
        pattern: pattern.to_string(),
        engine,
        matches: s.matches.load(Ordering::Relaxed),
        failures: s.failures.load(Ordering::Relaxed),
        timeouts: s.timeouts.load(Ordering::Relaxed),
        time: Duration::from_nanos(s.nanos.load(Ordering::Relaxed)),
    }
}

/// Where one capture goes.
#[derive(Debug)]
struct FieldSpec {
    /// The name as written in the pattern, which `overwrite` lists.
    name: String,
    field: FieldRef,
    conversion: Conversion,
    overwrite: bool,
}

/// One compiled pattern of a `match` entry.
pub struct Pattern {
    text: String,
    matcher: Matcher,
    fields: Vec<FieldSpec>,
    stats: Arc<PatternStats>,
    exported: ExportedCounters,
}

impl Pattern {
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn engine(&self) -> EngineKind {
        self.matcher.engine()
    }
}

struct FieldMatch {
    source: FieldRef,
    source_name: String,
    patterns: Vec<Pattern>,
}

/// Settings that shape how patterns compile.
#[derive(Debug, Clone)]
pub struct CompileSettings {
    pub named_captures_only: bool,
    pub target: Option<String>,
    pub overwrite: Vec<String>,
    pub timeout: Duration,
}

impl Default for CompileSettings {
    fn default() -> Self {
        CompileSettings {
            named_captures_only: true,
            target: None,
            overwrite: Vec::new(),
            timeout: Duration::from_millis(30_000),
        }
    }
}

fn bracketed(name: &str) -> String {
    if name.starts_with('[') {
        name.to_string()
    } else {
        format!("[{name}]")
    }
}

/// Compiles one pattern against `lib`.
pub fn compile_pattern(
    text: &str,
    lib: &PatternLibrary,
    settings: &CompileSettings,
) -> Result<Pattern, compiler::CompileError> {
    let expanded = compiler::expand(text, lib, settings.named_captures_only)?;
    let matcher = Matcher::new(&expanded, settings.timeout)?;
    let fields = expanded
        .captures
        .iter()
        .map(|c| {
            let path = match &settings.target {
                Some(t) => format!("{}{}", bracketed(t), bracketed(&c.field)),
                None => c.field.clone(),
            };
            let field = FieldRef::parse(&path)
                .map_err(|_| compiler::CompileError::BadField(path.clone()))?;
            Ok(FieldSpec {
                overwrite: settings.overwrite.contains(&c.field),
                name: c.field.clone(),
                field,
                conversion: c.conversion,
            })
        })
        .collect::<Result<Vec<_>, compiler::CompileError>>()?;
    Ok(Pattern {
        text: text.to_string(),
        matcher,
        fields,
        stats: Arc::new(PatternStats::default()),
        exported: ExportedCounters::default(),
    })
}

/// The `grok` filter.
pub struct Grok {
    matches: Vec<FieldMatch>,
    break_on_match: bool,
    keep_empty_captures: bool,
    tag_on_failure: Vec<String>,
    tag_on_timeout: String,
    timeout: Duration,
    timeout_per_event: bool,
    common: CommonOptions,
}

/// Per-thread buffers reused across the events of a batch.
#[derive(Default)]
struct Work {
    scratch: Vec<Scratch>,
    spans: Vec<Option<(usize, usize)>>,
    values: Vec<(usize, Value)>,
    attempts: u64,
}

impl Grok {
    /// Builds the filter; the common options are applied on success.
    pub fn build(opts: &mut Options, common: CommonOptions) -> Result<Grok, Error> {
        let match_pos = opts.value_pos("match");
        let entries = opts
            .string_list_map("match")?
            .ok_or_else(|| opts.error("grok filter requires option `match`"))?;
        let mut lib = PatternLibrary::bundled();
        let glob = opts.string_or("patterns_files_glob", "*")?;
        let dirs_pos = opts.value_pos("patterns_dir");
        for dir in opts.string_list("patterns_dir")?.unwrap_or_default() {
            lib.add_dir(Path::new(&dir), &glob)
                .map_err(|e| opts.option_error("patterns_dir", &dirs_pos, e))?;
        }
        for (name, def) in opts.string_map("pattern_definitions")?.unwrap_or_default() {
            lib.insert(name, def);
        }
        let ecs_pos = opts.value_pos("ecs_compatibility");
        match opts.string("ecs_compatibility")?.as_deref() {
            None | Some("disabled") => {}
            Some(other) => {
                return Err(opts.option_error(
                    "ecs_compatibility",
                    &ecs_pos,
                    format!(
                        "`{other}` is not supported yet; use `disabled` (the legacy pattern forms)"
                    ),
                ))
            }
        }
        let timeout_ms = opts.int_or("timeout_millis", 30_000)?;
        let scope_pos = opts.value_pos("timeout_scope");
        let timeout_per_event = match opts.string_or("timeout_scope", "pattern")?.as_str() {
            "pattern" => false,
            "event" => true,
            other => {
                return Err(opts.option_error(
                    "timeout_scope",
                    &scope_pos,
                    format!("expected pattern or event, got `{other}`"),
                ))
            }
        };
        // 0 disables the timeout in Logstash; a very large budget stands for it.
        let timeout = if timeout_ms <= 0 {
            Duration::from_secs(3600)
        } else {
            Duration::from_millis(timeout_ms as u64)
        };
        let settings = CompileSettings {
            named_captures_only: opts.bool_or("named_captures_only", true)?,
            target: opts.string("target")?,
            overwrite: opts.string_list("overwrite")?.unwrap_or_default(),
            timeout,
        };
        let mut matches = Vec::with_capacity(entries.len());
        for (field, patterns) in entries {
            let source =
                FieldRef::parse(&field).map_err(|e| opts.option_error("match", &match_pos, e))?;
            let mut compiled = Vec::with_capacity(patterns.len());
            for p in &patterns {
                let mut pattern = compile_pattern(p, &lib, &settings).map_err(|e| {
                    opts.option_error("match", &match_pos, format!("pattern `{p}`: {e}"))
                })?;
                pattern.exported = ExportedCounters::of(p);
                tracing::debug!(pattern = %p, engine = ?pattern.engine(), "grok pattern compiled");
                compiled.push(pattern);
            }
            matches.push(FieldMatch {
                source,
                source_name: field,
                patterns: compiled,
            });
        }
        let grok = Grok {
            matches,
            break_on_match: opts.bool_or("break_on_match", true)?,
            keep_empty_captures: opts.bool_or("keep_empty_captures", false)?,
            tag_on_failure: opts
                .string_list("tag_on_failure")?
                .unwrap_or_else(|| vec![GROK_FAILURE.to_string()]),
            tag_on_timeout: opts.string_or("tag_on_timeout", GROK_TIMEOUT)?,
            timeout,
            timeout_per_event,
            common,
        };
        grok.register();
        Ok(grok)
    }

    fn register(&self) {
        let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        for m in &self.matches {
            for p in &m.patterns {
                reg.push(Registered {
                    field: m.source_name.clone(),
                    pattern: p.text.clone(),
                    engine: p.engine(),
                    stats: Arc::downgrade(&p.stats),
                });
            }
        }
    }

    /// This filter's per-pattern counters.
    pub fn stats(&self) -> Vec<PatternStatsSnapshot> {
        self.matches
            .iter()
            .flat_map(|m| {
                m.patterns
                    .iter()
                    .map(|p| snapshot(&m.source_name, &p.text, p.engine(), &p.stats))
            })
            .collect()
    }

    /// The compiled patterns, in order.
    pub fn patterns(&self) -> impl Iterator<Item = &Pattern> {
        self.matches.iter().flat_map(|m| m.patterns.iter())
    }

    fn apply_with(&self, event: &mut Event, work: &mut Work) -> Outcome {
        let mut matched = false;
        let mut timed_out = false;
        let started = if self.timeout_per_event {
            Some(Instant::now())
        } else {
            None
        };
        let mut index = 0;
        'fields: for m in &self.matches {
            for p in &m.patterns {
                if work.scratch.len() <= index {
                    work.scratch.push(Scratch::new());
                }
                let result = self.try_pattern(event, m, p, index, work);
                index += 1;
                match result {
                    MatchResult::Matched => {
                        matched = true;
                        if self.break_on_match {
                            break 'fields;
                        }
                    }
                    MatchResult::NoMatch => {}
                    MatchResult::Timeout => {
                        timed_out = true;
                        break 'fields;
                    }
                }
                if started.is_some_and(|s| s.elapsed() > self.timeout) {
                    p.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                    p.exported.timeouts.inc();
                    timed_out = true;
                    break 'fields;
                }
            }
        }
        if matched {
            if !self.common.is_empty() {
                self.common.apply(event);
            }
            return Outcome::Success;
        }
        if timed_out {
            event.add_tag(&self.tag_on_timeout);
        } else {
            for t in &self.tag_on_failure {
                event.add_tag(t);
            }
        }
        Outcome::Failure
    }

    /// Runs one pattern on the source field (each element if it is an array) and
    /// writes the captures.
    fn try_pattern(
        &self,
        event: &mut Event,
        m: &FieldMatch,
        p: &Pattern,
        index: usize,
        work: &mut Work,
    ) -> MatchResult {
        work.attempts += 1;
        let timed = work.attempts.is_multiple_of(TIME_SAMPLE);
        let start = timed.then(Instant::now);
        let result = match event.get(&m.source) {
            None => MatchResult::NoMatch,
            Some(Value::Array(items)) => {
                let texts: Vec<String> = items.iter().map(Value::to_display_string).collect();
                let mut any = MatchResult::NoMatch;
                for t in &texts {
                    match self.capture(t, p, index, work) {
                        MatchResult::Matched => {
                            self.write(event, p, work);
                            any = MatchResult::Matched;
                        }
                        MatchResult::Timeout => {
                            any = MatchResult::Timeout;
                            break;
                        }
                        MatchResult::NoMatch => {}
                    }
                }
                any
            }
            Some(Value::String(text)) => {
                let r = self.capture(text, p, index, work);
                if r == MatchResult::Matched {
                    self.write(event, p, work);
                }
                r
            }
            Some(other) => {
                let text = other.to_display_string();
                let r = self.capture(&text, p, index, work);
                if r == MatchResult::Matched {
                    self.write(event, p, work);
                }
                r
            }
        };
        if let Some(s) = start {
            let ns = s.elapsed().as_nanos() as u64 * TIME_SAMPLE;
            p.stats.nanos.fetch_add(ns, Ordering::Relaxed);
        }
        let (counter, exported) = match result {
            MatchResult::Matched => (&p.stats.matches, &p.exported.matches),
            MatchResult::NoMatch => (&p.stats.failures, &p.exported.failures),
            MatchResult::Timeout => {
                tracing::warn!(pattern = %p.text, field = %m.source_name, timeout_ms = self.timeout.as_millis() as u64, "grok pattern timed out");
                (&p.stats.timeouts, &p.exported.timeouts)
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        exported.inc();
        result
    }

    /// Matches `text` and turns the captures into values in `work.values`.
    fn capture(&self, text: &str, p: &Pattern, index: usize, work: &mut Work) -> MatchResult {
        let r = p
            .matcher
            .find(text, &mut work.scratch[index], &mut work.spans);
        work.values.clear();
        if r != MatchResult::Matched {
            return r;
        }
        for (i, span) in work.spans.iter().enumerate() {
            let value = match span {
                None => {
                    if !self.keep_empty_captures {
                        continue;
                    }
                    Value::Null
                }
                Some((s, e)) => {
                    let raw = &text[*s..*e];
                    if raw.is_empty() && !self.keep_empty_captures {
                        continue;
                    }
                    match p.fields[i].conversion {
                        Conversion::None => Value::String(raw.to_string()),
                        Conversion::Int => Value::Int(ruby_to_i(raw)),
                        Conversion::Float => Value::Float(ruby_to_f(raw)),
                    }
                }
            };
            work.values.push((i, value));
        }
        r
    }

    /// Writes `work.values` into the event the way Logstash does: a field that exists
    /// already becomes an array unless it is listed in `overwrite`.
    fn write(&self, event: &mut Event, p: &Pattern, work: &mut Work) {
        for (i, value) in work.values.drain(..) {
            let spec = &p.fields[i];
            if spec.overwrite {
                event.insert(&spec.field, value);
                continue;
            }
            match event.get_mut(&spec.field) {
                None | Some(Value::Null) => {
                    event.insert(&spec.field, value);
                }
                Some(Value::Array(items)) => items.push(value),
                Some(existing @ Value::String(_)) => {
                    let old = std::mem::take(existing);
                    *existing = Value::Array(vec![old, value]);
                }
                Some(_) => {
                    tracing::debug!(field = %spec.name, "grok keeps the existing non-string value");
                }
            }
        }
    }
}

/// Ruby's `String#to_i`: leading whitespace, an optional sign, digits; 0 otherwise.
fn ruby_to_i(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit() && b != b'_')
        .unwrap_or(digits.len());
    let mut n: i64 = 0;
    for b in digits[..end].bytes().filter(|b| *b != b'_') {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -n
    } else {
        n
    }
}

/// Ruby's `String#to_f`: the longest leading float; 0.0 otherwise.
fn ruby_to_f(s: &str) -> f64 {
    let t = s.trim_start();
    if let Ok(f) = t.parse::<f64>() {
        if f.is_finite() {
            return f;
        }
    }
    let b = t.as_bytes();
    let mut end = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        end = 1;
    }
    let mut seen_dot = false;
    let mut seen_exp = false;
    while end < b.len() {
        match b[end] {
            b'0'..=b'9' => {}
            b'.' if !seen_dot && !seen_exp => seen_dot = true,
            b'e' | b'E' if !seen_exp && end > 0 => {
                seen_exp = true;
                if matches!(b.get(end + 1), Some(b'+' | b'-')) {
                    end += 1;
                }
            }
            _ => break,
        }
        end += 1;
    }
    while end > 0 {
        if let Ok(f) = t[..end].parse::<f64>() {
            return f;
        }
        end -= 1;
    }
    0.0
}

impl EventFilter for Grok {
    fn apply(&self, event: &mut Event) -> Outcome {
        let mut work = Work::default();
        self.apply_with(event, &mut work)
    }
}

impl Filter for Grok {
    fn filter(&self, events: &mut Vec<Event>) {
        let mut work = Work::default();
        for e in events.iter_mut() {
            let _ = self.apply_with(e, &mut work);
        }
    }
}

#[cfg(test)]
mod tests;
