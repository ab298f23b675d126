//! Running a compiled pattern. PCRE2 with its JIT runs what it can spell (every
//! pattern of the shipped library): it speaks Oniguruma's syntax (atomic groups,
//! possessive quantifiers, look-around), measured fastest on the grok benches, and a
//! match limit stands for `timeout_millis`. A pattern PCRE2 cannot spell, or an input
//! that overflows its bounded JIT stack, runs on the `regex` crate's automata when the
//! compiler could translate it there, else on `fancy-regex` with a backtracking
//! budget.

use super::compiler::{self, CompileError, EdgeChecks, Expanded};
use regex_automata::meta;
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input};
use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Which engine runs a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// PCRE2, JIT-compiled: backtracking like Oniguruma, bounded by a match limit.
    Pcre2,
    /// `regex-automata`'s meta engine (what the `regex` crate runs on): automata only,
    /// never backtracks without bound.
    Automaton,
    /// `fancy-regex`: backtracking, for look-around and back-references.
    Backtracking,
}

/// What one attempt gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchResult {
    Matched,
    NoMatch,
    /// The backtracking budget (or PCRE2's match limit) ran out: the pattern ran
    /// away on this input.
    Timeout,
}

/// Reusable per-call state. The automaton's own caches live in the [`Matcher`], one
/// per thread, so they stay warm across batches.
pub struct Scratch {
    _private: (),
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch { _private: () }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

/// A pattern compiled for PCRE2.
#[derive(Debug)]
struct Pcre2Matcher {
    regex: pcre2::bytes::Regex,
    /// Regex group index of each capture.
    groups: Vec<usize>,
    /// Match data (capture slots, JIT stack), one per worker thread.
    local: thread_local::ThreadLocal<RefCell<pcre2::bytes::CaptureLocations>>,
}

/// The most a JIT stack may grow to, per pattern and thread. The default, 32 KiB, is
/// too small for long lines with many backtracking points; past this bound a line
/// runs on the other engines.
const JIT_STACK_MAX: usize = 1 << 20;

/// PCRE2's own ceiling for the match limit (its default, which a pattern's
/// `(*LIMIT_MATCH=)` may lower but not raise).
const PCRE2_MATCH_LIMIT_MAX: u64 = 10_000_000;

/// PCRE2's error codes for a match that ran out of its budget.
const PCRE2_ERROR_MATCHLIMIT: i32 = -47;
const PCRE2_ERROR_DEPTHLIMIT: i32 = -53;
const PCRE2_ERROR_HEAPLIMIT: i32 = -63;

/// A compiled pattern: the engines and where each capture is.
#[derive(Debug)]
pub struct Matcher {
    pcre2: Option<Pcre2Matcher>,
    automaton: Option<meta::Regex>,
    /// The automaton's lazy-DFA cache and capture slots, one per worker thread: warm
    /// across batches, and no worker waits for another's.
    local: thread_local::ThreadLocal<RefCell<(meta::Cache, Captures)>>,
    edge_checks: EdgeChecks,
    /// Regex group index of each capture, for the automaton.
    auto_groups: Vec<usize>,
    backtracking: Option<fancy_regex::Regex>,
    bt_groups: Vec<usize>,
}

fn group_indices<'a>(
    names: impl Iterator<Item = Option<&'a str>>,
    expanded: &Expanded,
) -> Vec<usize> {
    let names: Vec<Option<&str>> = names.collect();
    expanded
        .captures
        .iter()
        .map(|c| {
            names
                .iter()
                .position(|n| *n == Some(c.group.as_str()))
                .unwrap_or(usize::MAX)
        })
        .collect()
}

impl Matcher {
    /// Compiles `expanded` for the engine that runs it fastest; `timeout` bounds a
    /// backtracking run.
    pub fn new(expanded: &Expanded, timeout: Duration) -> Result<Matcher, CompileError> {
        Matcher::build(expanded, timeout, true)
    }

    /// Compiles `expanded` without PCRE2: the automaton where the compiler could
    /// translate the pattern there, else the backtracking engine. For comparing the
    /// engines (tests, benches).
    pub fn without_pcre2(expanded: &Expanded, timeout: Duration) -> Result<Matcher, CompileError> {
        Matcher::build(expanded, timeout, false)
    }

    fn build(expanded: &Expanded, timeout: Duration, pcre2: bool) -> Result<Matcher, CompileError> {
        let t = compiler::translate(expanded)?;
        let pcre2 = match (&t.pcre2, pcre2) {
            (Some(text), true) => build_pcre2(text, expanded, timeout),
            _ => None,
        };
        let automaton = t.automaton.as_deref().and_then(|a| {
            meta::Regex::builder()
                .configure(
                    meta::Config::new()
                        .nfa_size_limit(Some(64 << 20))
                        .hybrid_cache_capacity(16 << 20),
                )
                .build(a)
                .map_err(|e| tracing::debug!(error = %e, "grok pattern falls back to backtracking"))
                .ok()
        });
        let backtracking = fancy_regex::RegexBuilder::new(&t.backtracking)
            .backtrack_limit(backtrack_budget(timeout))
            .build();
        let backtracking = match (backtracking, &automaton, &pcre2) {
            (Ok(r), _, _) => Some(r),
            (Err(_), Some(_), _) | (Err(_), None, Some(_)) => None,
            (Err(e), None, None) => return Err(CompileError::Regex(e.to_string())),
        };
        let auto_groups = automaton
            .as_ref()
            .map(|r| {
                group_indices(
                    r.group_info()
                        .pattern_names(regex_automata::PatternID::ZERO),
                    expanded,
                )
            })
            .unwrap_or_default();
        let bt_groups = backtracking
            .as_ref()
            .map(|r| group_indices(r.capture_names(), expanded))
            .unwrap_or_default();
        Ok(Matcher {
            pcre2,
            automaton,
            local: thread_local::ThreadLocal::new(),
            edge_checks: t.edge_checks,
            auto_groups,
            backtracking,
            bt_groups,
        })
    }

    pub fn engine(&self) -> EngineKind {
        if self.pcre2.is_some() {
            EngineKind::Pcre2
        } else if self.automaton.is_some() {
            EngineKind::Automaton
        } else {
            EngineKind::Backtracking
        }
    }

    /// Matches `text`, writing each capture's span into `spans` (one per capture).
    pub fn find(
        &self,
        text: &str,
        scratch: &mut Scratch,
        spans: &mut Vec<Option<(usize, usize)>>,
    ) -> MatchResult {
        self.find_at(text, 0, scratch, spans)
    }

    /// Like [`Matcher::find`], for the first match that starts at or after byte
    /// `start` (a character boundary), with the text before it still seen by
    /// look-behind and anchors: how Ruby's `String#scan` goes on after a match.
    /// Spans are offsets into the whole `text`.
    pub fn find_at(
        &self,
        text: &str,
        start: usize,
        scratch: &mut Scratch,
        spans: &mut Vec<Option<(usize, usize)>>,
    ) -> MatchResult {
        spans.clear();
        let _ = scratch;
        if start > text.len() || !text.is_char_boundary(start) {
            return MatchResult::NoMatch;
        }
        if let Some(p) = &self.pcre2 {
            match p.find(text, start, spans) {
                Ok(true) => return MatchResult::Matched,
                Ok(false) => return MatchResult::NoMatch,
                Err(PCRE2_ERROR_MATCHLIMIT | PCRE2_ERROR_DEPTHLIMIT | PCRE2_ERROR_HEAPLIMIT) => {
                    return MatchResult::Timeout
                }
                Err(code) => {
                    // The JIT stack bound, or anything else PCRE2 gave up on: this line
                    // runs on the other engines.
                    tracing::debug!(code, "grok pattern falls back from pcre2 for one line");
                    spans.clear();
                }
            }
        }
        if let Some(re) = &self.automaton {
            let cell = self
                .local
                .get_or(|| RefCell::new((re.create_cache(), re.create_captures())));
            // Only this thread reaches its cell and nothing below re-enters `find`; were
            // it ever busy, a temporary cache gives the same answer, only colder.
            let mut temporary = None;
            let mut borrowed = cell.try_borrow_mut().ok();
            let (cache, caps) = match borrowed.as_deref_mut() {
                Some((cache, caps)) => (cache, caps),
                None => {
                    let (cache, caps) = temporary.insert((re.create_cache(), re.create_captures()));
                    (cache, caps)
                }
            };
            // Most lines match from their first byte. An anchored search there finds
            // the same match an unanchored one would (leftmost-first: nothing starts
            // further left), skips the reverse scan and lets a one-pass pattern use the
            // one-pass DFA; only a miss pays for the unanchored search.
            let input = Input::new(text).range(start..);
            re.search_captures_with(cache, &input.clone().anchored(Anchored::Yes), caps);
            if !caps.is_match() {
                re.search_captures_with(cache, &input, caps);
            }
            let Some(m) = caps.get_match() else {
                return MatchResult::NoMatch;
            };
            if self.backtracking.is_none() || !self.edge_checks.violated(text, m.start(), m.end()) {
                spans.extend(
                    self.auto_groups
                        .iter()
                        .map(|&g| caps.get_group(g).map(|sp| (sp.start, sp.end))),
                );
                return MatchResult::Matched;
            }
        }
        let Some(re) = &self.backtracking else {
            return MatchResult::NoMatch;
        };
        match re.captures_from_pos(text, start) {
            Ok(Some(caps)) => {
                spans.extend(
                    self.bt_groups
                        .iter()
                        .map(|&g| caps.get(g).map(|m| (m.start(), m.end()))),
                );
                MatchResult::Matched
            }
            Ok(None) => MatchResult::NoMatch,
            Err(_) => MatchResult::Timeout,
        }
    }

    /// Whether `text` matches at all.
    pub fn is_match(&self, text: &str) -> bool {
        let mut spans = Vec::new();
        self.find(text, &mut Scratch::new(), &mut spans) == MatchResult::Matched
    }
}

/// Builds the PCRE2 matcher, or `None` (and the other engines run) when PCRE2
/// rejects the text.
fn build_pcre2(text: &str, expanded: &Expanded, timeout: Duration) -> Option<Pcre2Matcher> {
    // Ruby's `\w`, `\d`, `\s` and `\b` are ASCII: no UCP. UTF mode keeps every match
    // and capture on character boundaries.
    let limit = match_limit(timeout);
    let regex = pcre2::bytes::RegexBuilder::new()
        .utf(true)
        .ucp(false)
        .jit_if_available(true)
        .max_jit_stack_size(Some(JIT_STACK_MAX))
        .build(&format!("(*LIMIT_MATCH={limit}){text}"))
        .map_err(|e| tracing::debug!(error = %e, "grok pattern does not compile for pcre2"))
        .ok()?;
    let groups = group_indices(regex.capture_names().iter().map(|n| n.as_deref()), expanded);
    Some(Pcre2Matcher {
        regex,
        groups,
        local: thread_local::ThreadLocal::new(),
    })
}

impl Pcre2Matcher {
    /// Whether `text` matches, with the capture spans in `spans`; a PCRE2 error code
    /// when it gave up.
    fn find(
        &self,
        text: &str,
        start: usize,
        spans: &mut Vec<Option<(usize, usize)>>,
    ) -> Result<bool, i32> {
        let cell = self
            .local
            .get_or(|| RefCell::new(self.regex.capture_locations()));
        // As for the automaton's cache: only this thread reaches its cell.
        let mut temporary = None;
        let mut borrowed = cell.try_borrow_mut().ok();
        let locs = match borrowed.as_deref_mut() {
            Some(locs) => locs,
            None => temporary.insert(self.regex.capture_locations()),
        };
        // PCRE2 checks the subject's UTF-8 from `start` (less its longest look-behind)
        // on: a `&str` is valid already, but the crate offers no safe way to skip it.
        match self.regex.captures_read_at(locs, text.as_bytes(), start) {
            Ok(Some(_)) => {
                spans.extend(self.groups.iter().map(|&g| locs.get(g)));
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(e.code()),
        }
    }
}

/// PCRE2's match limit for `timeout`, from a measurement of how fast this machine's
/// JIT spends it, taken once. PCRE2 caps it at its default of ten million, which its
/// JIT spends in well under a second: a longer `timeout_millis` gives that.
fn match_limit(timeout: Duration) -> u64 {
    let per_ms = *PCRE2_LIMIT_PER_MS.get_or_init(calibrate_pcre2);
    let ms = timeout.as_secs_f64() * 1000.0;
    ((per_ms * ms) as u64).clamp(1_000, PCRE2_MATCH_LIMIT_MAX)
}

static PCRE2_LIMIT_PER_MS: OnceLock<f64> = OnceLock::new();

/// Runs a pattern that backtracks exponentially until a fixed match limit runs out
/// and times it. The result is halved for a margin.
fn calibrate_pcre2() -> f64 {
    const LIMIT: u64 = 1_000_000;
    let Ok(re) = pcre2::bytes::RegexBuilder::new()
        .utf(true)
        .jit_if_available(true)
        .build(&format!("(*LIMIT_MATCH={LIMIT})^(?:a|aa)+(?=c)b"))
    else {
        return 100_000.0;
    };
    let text = format!("{}b", "a".repeat(64));
    let start = Instant::now();
    let _ = re.is_match(text.as_bytes());
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if ms <= 0.0 {
        return 100_000.0;
    }
    (LIMIT as f64 / ms / 2.0).clamp(1_000.0, 100_000_000.0)
}

/// Backtracking steps a pattern may take within `timeout`, from a measurement of
/// this machine's backtracking speed taken once.
fn backtrack_budget(timeout: Duration) -> usize {
    let per_ms = *STEPS_PER_MS.get_or_init(calibrate);
    let ms = timeout.as_secs_f64() * 1000.0;
    (per_ms * ms).clamp(1_000.0, 1e15) as usize
}

static STEPS_PER_MS: OnceLock<f64> = OnceLock::new();

/// Runs a pattern that backtracks exponentially until a fixed budget runs out and
/// times it. The result is halved for a margin.
fn calibrate() -> f64 {
    const STEPS: usize = 200_000;
    let Ok(re) = fancy_regex::RegexBuilder::new(r"^(?=a)(?:a|aa)+(?<!a)b")
        .backtrack_limit(STEPS)
        .build()
    else {
        return 50_000.0;
    };
    let text = "a".repeat(64);
    let start = Instant::now();
    let _ = re.is_match(&text);
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if ms <= 0.0 {
        return 50_000.0;
    }
    (STEPS as f64 / ms / 2.0).clamp(1_000.0, 10_000_000.0)
}

#[cfg(test)]
mod tests {
    use super::super::library::PatternLibrary;
    use super::*;

    fn matcher(p: &str) -> Matcher {
        let ex = compiler::expand(p, &PatternLibrary::bundled(), true).unwrap();
        Matcher::without_pcre2(&ex, Duration::from_secs(1)).unwrap()
    }

    fn spans(m: &Matcher, text: &str) -> (MatchResult, Vec<Option<(usize, usize)>>) {
        let mut s = Vec::new();
        let r = m.find(text, &mut Scratch::new(), &mut s);
        (r, s)
    }

    #[test]
    fn edge_look_behind_falls_back_when_it_matters() {
        let m = matcher("%{NUMBER:n}x");
        assert_eq!(m.engine(), EngineKind::Automaton);
        // ".5" is a number, and nothing before it is in BASE10NUM's look-behind set.
        let (r, s) = spans(&m, "a.5x");
        assert_eq!(r, MatchResult::Matched);
        assert_eq!(s[0], Some((1, 3)));
        // The automaton's leftmost "1" in "v1" is followed by a space, not "x"; its
        // match "12x" starts after a space, so no check fails.
        let (r, s) = spans(&m, "v1 12x");
        assert_eq!(r, MatchResult::Matched);
        assert_eq!(s[0], Some((3, 5)));
    }

    #[test]
    fn a_runaway_pattern_times_out() {
        let ex =
            compiler::expand(r"^(?<x>(?:a|aa)+)(?<!a)b", &PatternLibrary::bundled(), true).unwrap();
        let m = Matcher::without_pcre2(&ex, Duration::from_millis(50)).unwrap();
        assert_eq!(m.engine(), EngineKind::Backtracking);
        let text = "a".repeat(200);
        assert_eq!(spans(&m, &text).0, MatchResult::Timeout);
    }

    #[test]
    fn a_runaway_pattern_hits_the_pcre2_match_limit() {
        let ex =
            compiler::expand(r"^(?<x>(?:a|aa)+)(?=c)b", &PatternLibrary::bundled(), true).unwrap();
        let m = Matcher::new(&ex, Duration::from_millis(50)).unwrap();
        assert_eq!(m.engine(), EngineKind::Pcre2);
        let text = format!("{}b", "a".repeat(60));
        let start = Instant::now();
        assert_eq!(spans(&m, &text).0, MatchResult::Timeout);
        // Generous for a loaded machine; unbounded, this runs for years.
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn find_at_goes_on_from_an_offset_and_sees_what_came_before() {
        // `(?<![a-z])`: a look-behind that the text before the offset decides.
        let ex =
            compiler::expand(r"(?<![a-z])(?<n>\d+)", &PatternLibrary::bundled(), true).unwrap();
        let engines = [
            Matcher::new(&ex, Duration::from_secs(1)).unwrap(),
            Matcher::without_pcre2(&ex, Duration::from_secs(1)).unwrap(),
        ];
        for m in &engines {
            let mut s = Vec::new();
            let text = "12 x34 56";
            assert_eq!(
                m.find_at(text, 0, &mut Scratch::new(), &mut s),
                MatchResult::Matched
            );
            assert_eq!(s[0], Some((0, 2)), "{:?}", m.engine());
            // From 4, "34" follows an `x` the engine still sees: the match is "4",
            // where a re-sliced "34 56" would give "34".
            assert_eq!(
                m.find_at(text, 4, &mut Scratch::new(), &mut s),
                MatchResult::Matched
            );
            assert_eq!(s[0], Some((5, 6)), "{:?}", m.engine());
            assert_eq!(
                m.find_at(text, 6, &mut Scratch::new(), &mut s),
                MatchResult::Matched
            );
            assert_eq!(s[0], Some((7, 9)), "{:?}", m.engine());
            assert_eq!(
                m.find_at(text, 9, &mut Scratch::new(), &mut s),
                MatchResult::NoMatch
            );
        }
    }

    #[test]
    fn pcre2_and_the_automaton_agree_on_captures() {
        for (p, text) in [
            ("%{NUMBER:n}x", "a.5x"),
            ("%{NUMBER:n}x", "v1 12x"),
            ("%{IP:ip} %{WORD:w}", "host 10.1.2.3 up"),
            (
                "%{COMBINEDAPACHELOG}",
                r#"1.2.3.4 - - [21/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl""#,
            ),
        ] {
            let ex = compiler::expand(p, &PatternLibrary::bundled(), true).unwrap();
            let fast = Matcher::new(&ex, Duration::from_secs(1)).unwrap();
            assert_eq!(fast.engine(), EngineKind::Pcre2);
            let other = Matcher::without_pcre2(&ex, Duration::from_secs(1)).unwrap();
            assert_eq!(spans(&fast, text), spans(&other, text), "{p} on {text}");
        }
    }
}
