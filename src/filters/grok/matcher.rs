//! Running a compiled pattern: on the `regex` crate's automata when the compiler could
//! translate it there, else on `fancy-regex` with a backtracking budget that stands for
//! `timeout_millis`.

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
    /// The backtracking budget ran out: the pattern ran away on this input.
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

/// A compiled pattern: the engines and where each capture is.
#[derive(Debug)]
pub struct Matcher {
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
    /// Compiles `expanded`; `timeout` bounds a backtracking run.
    pub fn new(expanded: &Expanded, timeout: Duration) -> Result<Matcher, CompileError> {
        let t = compiler::translate(&expanded.regex)?;
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
        let backtracking = match (backtracking, &automaton) {
            (Ok(r), _) => Some(r),
            (Err(_), Some(_)) => None,
            (Err(e), None) => return Err(CompileError::Regex(e.to_string())),
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
            automaton,
            local: thread_local::ThreadLocal::new(),
            edge_checks: t.edge_checks,
            auto_groups,
            backtracking,
            bt_groups,
        })
    }

    pub fn engine(&self) -> EngineKind {
        if self.automaton.is_some() {
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
        spans.clear();
        let _ = scratch;
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
            re.search_captures_with(cache, &Input::new(text).anchored(Anchored::Yes), caps);
            if !caps.is_match() {
                re.search_captures_with(cache, &Input::new(text), caps);
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
        match re.captures(text) {
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
        Matcher::new(&ex, Duration::from_secs(1)).unwrap()
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
        let m = Matcher::new(&ex, Duration::from_millis(50)).unwrap();
        assert_eq!(m.engine(), EngineKind::Backtracking);
        let text = "a".repeat(200);
        assert_eq!(spans(&m, &text).0, MatchResult::Timeout);
    }
}
