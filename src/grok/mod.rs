//! The grok engine: named patterns expanded into one regex each, matched against a
//! field, captures written into the event with Logstash's semantics.
//!
//! It sits below the plugins because three of them run it: the `grok` filter, the
//! `syslog` input (which, like Logstash's, parses with grok) and the `multiline` codec
//! (whose `pattern` is grok syntax); `if [x] =~ /re/` conditions use its matcher too.
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

use crate::event::field_ref::{FieldRef, FieldRefError};
use crate::event::ruby_number::{ruby_to_f, ruby_to_i};
use crate::event::{Event, Value};
use compiler::Conversion;
use library::PatternLibrary;
use matcher::{MatchResult, Matcher, Scratch};
use prometheus_client::metrics::counter::Counter;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

pub use matcher::EngineKind;

/// Logstash's tag for an event no pattern matched.
pub const GROK_FAILURE: &str = "_grokparsefailure";
/// Logstash's tag for an event whose match ran past the timeout.
pub const GROK_TIMEOUT: &str = "_groktimeout";

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

/// What a [`Grok`] is built from: the `grok` filter's options once read, or the
/// settings another plugin fixes for itself.
pub struct GrokConfig {
    /// Source field and its patterns, tried in order.
    pub matches: Vec<(String, Vec<String>)>,
    pub library: PatternLibrary,
    pub settings: CompileSettings,
    pub break_on_match: bool,
    pub keep_empty_captures: bool,
    pub tag_on_failure: Vec<String>,
    pub tag_on_timeout: String,
    /// The timeout bounds all patterns of an event together rather than each one.
    pub timeout_per_event: bool,
    /// Export per-pattern counters (`sluice_grok_*_total{pattern}`) and list the
    /// patterns in the node stats; off for patterns a plugin uses internally.
    pub export_stats: bool,
}

impl GrokConfig {
    /// Logstash's defaults for `matches` against the bundled library.
    pub fn new(matches: Vec<(String, Vec<String>)>) -> GrokConfig {
        GrokConfig {
            matches,
            library: PatternLibrary::bundled(),
            settings: CompileSettings::default(),
            break_on_match: true,
            keep_empty_captures: false,
            tag_on_failure: vec![GROK_FAILURE.to_string()],
            tag_on_timeout: GROK_TIMEOUT.to_string(),
            timeout_per_event: false,
            export_stats: true,
        }
    }
}

/// Why a [`GrokConfig`] could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum GrokError {
    #[error("source field `{field}`: {source}")]
    Source {
        field: String,
        source: FieldRefError,
    },
    #[error("pattern `{pattern}`: {source}")]
    Pattern {
        pattern: String,
        source: compiler::CompileError,
    },
}

/// A compiled set of grok matches, ready to run on events.
pub struct Grok {
    matches: Vec<FieldMatch>,
    break_on_match: bool,
    keep_empty_captures: bool,
    tag_on_failure: Vec<String>,
    tag_on_timeout: String,
    timeout: Duration,
    timeout_per_event: bool,
}

/// Per-thread buffers reused across the events of a batch.
#[derive(Default)]
pub struct Work {
    scratch: Vec<Scratch>,
    spans: Vec<Option<(usize, usize)>>,
    values: Vec<(usize, Value)>,
    attempts: u64,
}

impl Grok {
    /// Compiles every pattern of `config`.
    pub fn new(config: GrokConfig) -> Result<Grok, GrokError> {
        let mut matches = Vec::with_capacity(config.matches.len());
        for (field, patterns) in config.matches {
            let source = FieldRef::parse(&field).map_err(|source| GrokError::Source {
                field: field.clone(),
                source,
            })?;
            let mut compiled = Vec::with_capacity(patterns.len());
            for p in &patterns {
                let mut pattern =
                    compile_pattern(p, &config.library, &config.settings).map_err(|source| {
                        GrokError::Pattern {
                            pattern: p.clone(),
                            source,
                        }
                    })?;
                if config.export_stats {
                    pattern.exported = ExportedCounters::of(p);
                }
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
            break_on_match: config.break_on_match,
            keep_empty_captures: config.keep_empty_captures,
            tag_on_failure: config.tag_on_failure,
            tag_on_timeout: config.tag_on_timeout,
            timeout: config.settings.timeout,
            timeout_per_event: config.timeout_per_event,
        };
        if config.export_stats {
            grok.register();
        }
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

    /// Runs the matches on one event: true when a pattern matched. A failed event is
    /// tagged with `tag_on_failure` (or `tag_on_timeout`).
    pub fn apply_with(&self, event: &mut Event, work: &mut Work) -> bool {
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
            return true;
        }
        if timed_out {
            event.add_tag(&self.tag_on_timeout);
        } else {
            for t in &self.tag_on_failure {
                event.add_tag(t);
            }
        }
        false
    }

    /// [`Grok::apply_with`] with buffers of its own.
    pub fn apply(&self, event: &mut Event) -> bool {
        self.apply_with(event, &mut Work::default())
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
            if spec.overwrite || spec.field.is_timestamp() {
                // `@timestamp` goes through `insert`, which parses a string into a time.
                event.insert(&spec.field, value);
                continue;
            }
            match event.slot(&spec.field) {
                None => {} // a parent on the path is not a map: as `insert`, nothing written
                Some(slot @ Value::Null) => *slot = value,
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
