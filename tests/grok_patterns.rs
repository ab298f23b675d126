//! The shipped pattern library against Logstash: every pattern of every shipped file
//! compiles, each file's patterns parse examples, the examples of
//! logstash-patterns-core's own spec suite (transcribed in
//! `tests/data/grok-pattern-spec.txt`, legacy mode) give the fields Logstash gives,
//! and the values captured equal those of an independent engine (Oniguruma, through
//! the `grok` crate) on those examples and on the generated logs.

use sluice::event::{Event, Timestamp};
use sluice::filters::common::CommonOptions;
use sluice::filters::grok::Grok;
use sluice::filters::EventFilter;
use sluice::grok::library::{PatternLibrary, BUNDLED};
use sluice::grok::{compile_pattern, CompileSettings, EngineKind};
use sluice::plugin::Options;

fn grok(pattern: &str) -> Grok {
    let quoted = pattern.replace('\'', "\\'");
    let mut opts = Options::from_text(
        "grok",
        "filter",
        &format!("match => {{ \"message\" => '{quoted}' }}"),
    )
    .unwrap_or_else(|e| panic!("{pattern}: {e}"));
    let g = Grok::build(&mut opts, CommonOptions::default())
        .unwrap_or_else(|e| panic!("{pattern}: {e}"));
    opts.finish().unwrap();
    g
}

/// One transcribed expectation.
#[derive(Debug)]
struct Case {
    line: usize,
    pattern: String,
    message: String,
    parses: bool,
    fields: Vec<(String, Option<serde_json::Value>)>,
}

fn cases() -> Vec<Case> {
    let text = include_str!("data/grok-pattern-spec.txt");
    let mut out: Vec<Case> = Vec::new();
    let mut pattern = String::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let message = |rest: &str| -> String {
            match rest.strip_prefix("\" ") {
                Some(json) => serde_json::from_str(json)
                    .unwrap_or_else(|e| panic!("line {n}: bad JSON string: {e}")),
                None => rest.strip_prefix(' ').unwrap_or(rest).to_string(),
            }
        };
        if line.is_empty() || line.starts_with('#') {
            continue;
        } else if let Some(name) = line.strip_prefix("@^ ") {
            pattern = format!("^%{{{name}}}$");
        } else if let Some(raw) = line.strip_prefix("@@ ") {
            pattern = raw.to_string();
        } else if let Some(name) = line.strip_prefix("@ ") {
            pattern = format!("%{{{name}}}");
        } else if let Some(rest) = line.strip_prefix('<') {
            out.push(Case {
                line: n,
                pattern: pattern.clone(),
                message: message(rest),
                parses: true,
                fields: Vec::new(),
            });
        } else if let Some(rest) = line.strip_prefix('!') {
            out.push(Case {
                line: n,
                pattern: pattern.clone(),
                message: message(rest),
                parses: false,
                fields: Vec::new(),
            });
        } else if let Some(rest) = line.strip_prefix("= ") {
            let (field, value) = rest.split_once(' ').expect("`= field value`");
            let value: serde_json::Value = serde_json::from_str(value)
                .unwrap_or_else(|e| panic!("line {n}: bad JSON value: {e}"));
            let case = out.last_mut().expect("a message before `=`");
            case.fields.push((field.to_string(), Some(value)));
        } else if let Some(field) = line.strip_prefix("- ") {
            let case = out.last_mut().expect("a message before `-`");
            case.fields.push((field.to_string(), None));
        } else {
            panic!("line {n}: cannot read `{line}`");
        }
    }
    out
}

/// What went wrong with one case, or nothing.
fn check(filter: &Grok, case: &Case) -> Option<String> {
    let mut event = Event::with_message(case.message.clone(), Timestamp::now());
    filter.apply(&mut event);
    let json: serde_json::Value =
        serde_json::from_str(&event.to_json_string()).expect("an event serialises");
    let failed = event.has_tag("_grokparsefailure");
    if failed == case.parses {
        return Some(format!(
            "expected {}: {}",
            if case.parses { "a match" } else { "no match" },
            json
        ));
    }
    for (field, want) in &case.fields {
        let got = lookup(&json, field);
        if got != want.as_ref() {
            return Some(format!("[{field}] is {got:?}, expected {want:?}"));
        }
    }
    None
}

/// `name` or `[a][b]` in the event's JSON.
fn lookup<'a>(json: &'a serde_json::Value, field: &str) -> Option<&'a serde_json::Value> {
    let parts: Vec<&str> = match field.strip_prefix('[') {
        Some(inner) => inner.trim_end_matches(']').split("][").collect(),
        None => vec![field],
    };
    parts.iter().try_fold(json, |cur, p| cur.get(p))
}

#[test]
fn logstash_pattern_spec_examples_hold() {
    let cases = cases();
    let mut failures = Vec::new();
    let mut expectations = 0;
    let mut filters: std::collections::HashMap<&str, Grok> = std::collections::HashMap::new();
    for case in &cases {
        expectations += 1 + case.fields.len();
        let filter = filters
            .entry(case.pattern.as_str())
            .or_insert_with(|| grok(&case.pattern));
        if let Some(why) = check(filter, case) {
            failures.push(format!(
                "line {}: {} on {:?}: {why}",
                case.line, case.pattern, case.message
            ));
        }
    }
    eprintln!(
        "{} of {} spec examples hold ({} expectations)",
        cases.len() - failures.len(),
        cases.len(),
        expectations
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(cases.len() > 200, "the transcription shrank");
}

#[test]
fn every_shipped_pattern_compiles() {
    let lib = PatternLibrary::bundled();
    let settings = CompileSettings::default();
    let names = lib.names();
    assert!(names.len() > 320, "{} patterns", names.len());
    let mut not_pcre2 = Vec::new();
    for name in names {
        let p = compile_pattern(&format!("%{{{name}}}"), &lib, &settings)
            .unwrap_or_else(|e| panic!("%{{{name}}}: {e}"));
        if p.engine() != EngineKind::Pcre2 {
            not_pcre2.push(name);
        }
    }
    // The fast engine runs the whole library.
    assert!(not_pcre2.is_empty(), "not on PCRE2: {not_pcre2:?}");
}

#[test]
fn every_shipped_file_has_examples_that_parse() {
    let cases = cases();
    let mut untested = Vec::new();
    for (file, text) in BUNDLED {
        let mut one = PatternLibrary::empty();
        one.add_text(file, text).unwrap();
        let defined = one.names();
        // A case exercises a file when its pattern names one of the file's patterns
        // (or, for the core file, uses any pattern at all).
        let exercised = cases.iter().any(|c| {
            c.parses
                && defined
                    .iter()
                    .any(|n| c.pattern.contains(&format!("%{{{n}}}")))
        });
        if !exercised {
            untested.push(*file);
        }
    }
    assert!(untested.is_empty(), "no example parses with: {untested:?}");
}

// ---------------------------------------------------------------------------------
// An independent oracle: the `grok` crate on Oniguruma (Logstash's regex engine
// family) with the same pattern definitions, its own expansion and its own engine.

fn oniguruma() -> grok::Grok {
    let lib = PatternLibrary::bundled();
    let mut g = grok::Grok::empty();
    for name in lib.names() {
        g.add_pattern(name, lib.get(name).unwrap_or_default());
    }
    g
}

/// `name` → its values in capture order, the way each side reports them, flattened
/// to `name` / `[a][b]` keys.
type Captured = std::collections::BTreeMap<String, Vec<String>>;

fn flatten(prefix: &str, v: &serde_json::Value, depth: usize, out: &mut Captured) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let key = if depth == 0 {
                    k.clone()
                } else if depth == 1 {
                    format!("[{prefix}][{k}]")
                } else {
                    format!("{prefix}[{k}]")
                };
                flatten(&key, v, depth + 1, out);
            }
        }
        serde_json::Value::Array(items) => {
            let e = out.entry(prefix.to_string()).or_default();
            e.extend(items.iter().map(scalar));
        }
        other => out
            .entry(prefix.to_string())
            .or_default()
            .push(scalar(other)),
    }
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The same pattern on both sides.
struct Oracle {
    sluice: Grok,
    oniguruma: grok::Pattern,
}

fn oracle(onig: &grok::Grok, pattern: &str) -> Result<Oracle, String> {
    let quoted = pattern.replace('\'', "\\'");
    let mut opts = Options::from_text(
        "grok",
        "filter",
        &format!("match => {{ \"message\" => '{quoted}' }} target => \"g\""),
    )
    .map_err(|e| e.to_string())?;
    let sluice = Grok::build(&mut opts, CommonOptions::default()).map_err(|e| e.to_string())?;
    let oniguruma = onig
        .compile(pattern, true)
        .map_err(|e| format!("oniguruma cannot compile it: {e}"))?;
    Ok(Oracle { sluice, oniguruma })
}

fn sluice_captures(g: &Grok, message: &str) -> Option<Captured> {
    let mut event = Event::with_message(message.to_string(), Timestamp::now());
    g.apply(&mut event);
    if event.has_tag("_grokparsefailure") {
        return None;
    }
    let json: serde_json::Value = serde_json::from_str(&event.to_json_string()).ok()?;
    let mut out = Captured::new();
    if let Some(g) = json.get("g") {
        flatten("", g, 0, &mut out);
    }
    Some(out)
}

/// Oniguruma's captures, `None` when it does not match, `Err` when the grok crate
/// cannot compile the pattern.
fn oniguruma_captures(compiled: &grok::Pattern, message: &str) -> Option<Captured> {
    let m = compiled.match_against(message)?;
    let mut pairs: Vec<(String, usize, String)> = m
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| {
            // The grok crate names a second capture of `x` as `x[1]`.
            let (base, n) = match k.rsplit_once('[') {
                Some((base, n))
                    if n.ends_with(']') && n[..n.len() - 1].parse::<usize>().is_ok() =>
                {
                    (base.to_string(), n[..n.len() - 1].parse().unwrap_or(0))
                }
                _ => (k.to_string(), 0),
            };
            // `%{X:[a]}` is the field `a`.
            let base = match base.strip_prefix('[').and_then(|b| b.strip_suffix(']')) {
                Some(inner) if !inner.contains("][") => inner.to_string(),
                _ => base,
            };
            (base, n, v.to_string())
        })
        .collect();
    pairs.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let mut out = Captured::new();
    for (k, _, v) in pairs {
        out.entry(k).or_default().push(v);
    }
    Some(out)
}

/// Whether a Sluice value (converted by `:int`/`:float`) is Oniguruma's text.
fn same_value(sluice: &str, onig: &str) -> bool {
    if sluice == onig {
        return true;
    }
    // A converted number: Logstash's `to_i`/`to_f` of the text.
    match (sluice.parse::<f64>(), onig.trim().parse::<f64>()) {
        (Ok(a), Ok(b)) => a == b || a == b.trunc(),
        _ => false,
    }
}

fn compare(o: &Oracle, message: &str) -> Result<(), String> {
    let expected = oniguruma_captures(&o.oniguruma, message);
    let got = sluice_captures(&o.sluice, message);
    match (expected, got) {
        (None, None) => Ok(()),
        (Some(_), None) => Err("oniguruma matches, sluice does not".into()),
        (None, Some(_)) => Err("sluice matches, oniguruma does not".into()),
        (Some(e), Some(g)) => {
            let keys: std::collections::BTreeSet<&String> = e.keys().chain(g.keys()).collect();
            for k in keys {
                let (ev, gv) = (e.get(k), g.get(k));
                let same = match (ev, gv) {
                    (Some(ev), Some(gv)) => {
                        ev.len() == gv.len() && ev.iter().zip(gv).all(|(o, s)| same_value(s, o))
                    }
                    _ => false,
                };
                if !same {
                    return Err(format!("[{k}]: oniguruma {ev:?}, sluice {gv:?}"));
                }
            }
            Ok(())
        }
    }
}

#[test]
fn captured_values_equal_oniguruma_on_the_spec_examples() {
    let onig = oniguruma();
    let mut checked = 0;
    let mut failures = Vec::new();
    let cases = cases();
    let mut oracles: std::collections::HashMap<&str, Result<Oracle, String>> =
        std::collections::HashMap::new();
    for case in &cases {
        // Logstash compiles grok patterns with Ruby's MULTILINE (`.` matches a
        // newline), the oracle without: it speaks for single-line messages only.
        if case.message.contains('\n') {
            continue;
        }
        checked += 1;
        let o = oracles
            .entry(case.pattern.as_str())
            .or_insert_with(|| oracle(&onig, &case.pattern));
        let result = match o {
            Ok(o) => compare(o, &case.message),
            Err(e) => Err(e.clone()),
        };
        if let Err(why) = result {
            failures.push(format!(
                "line {}: {} on {:?}: {why}",
                case.line, case.pattern, case.message
            ));
        }
    }
    eprintln!(
        "{} of {checked} spec examples capture what oniguruma captures",
        checked - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn captured_values_equal_oniguruma_on_the_generated_logs() {
    let onig = oniguruma();
    for (file, patterns) in [
        (
            "api-2000.log.gz",
            &[
                "%{TIMESTAMP_ISO8601:timestamp} %{LOGLEVEL:level} %{GREEDYDATA:logger_name} - %{GREEDYDATA:message}",
                "%{SLUICE_API}",
                "%{PYTHON_TRACEBACK}",
            ][..],
        ),
        (
            "device-2000.log.gz",
            &[r"%{TIMESTAMP_ISO8601:timestamp} \[%{LOGLEVEL:level}\] %{NOTSPACE:device_id} - %{GREEDYDATA:message}", "%{SLUICE_DEVICE}"][..],
        ),
        ("apache-2000.log.gz", &["%{COMBINEDAPACHELOG}", "%{HTTPD_COMMONLOG}", "%{IP:ip} %{NUMBER:n}"][..]),
        (
            "syslog-2000.log.gz",
            &["%{SYSLOGBASE} %{GREEDYDATA:message}", "%{SYSLOGLINE}", "%{SLUICE_SYSLOG}"][..],
        ),
    ] {
        let text = gunzip(file);
        for pattern in patterns {
            let o = oracle(&onig, pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            let mut n = 0;
            for line in text.lines() {
                n += 1;
                if let Err(why) = compare(&o, line) {
                    panic!("{file}: {pattern} on {line:?}: {why}");
                }
            }
            assert!(n >= 2000, "{file}: {n} lines");
        }
    }
}

fn gunzip(file: &str) -> String {
    use std::io::Read;
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}
