//! Grok throughput, whole filter (match + fields written into a new event), on
//! generated logs of each format, against the `grok` crate's Oniguruma back end doing
//! the same work (match + event built from the captures) on the same machine. Both
//! capture the named fields only (`with_alias_only`), as Logstash's grok does by
//! default (`named_captures_only`).
//!
//! A second group times the match alone (captures read, no event) on each of
//! Sluice's engines, PCRE2 and the automaton, and on Oniguruma.
//!
//!   cargo bench --bench grok

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice::event::{Event, Timestamp, Value};
use sluice::filters::common::CommonOptions;
use sluice::filters::grok::Grok;
use sluice::filters::Filter;
use sluice::grok::compiler;
use sluice::grok::library::PatternLibrary;
use sluice::grok::matcher::{MatchResult, Matcher, Scratch};
use sluice::plugin::Options;
use std::io::Read;

/// (name, data file, pattern a user would write)
const CASES: &[(&str, &str, &str)] = &[
    (
        "api",
        "api-2000.log.gz",
        "%{TIMESTAMP_ISO8601:timestamp} %{LOGLEVEL:level} %{GREEDYDATA:logger_name} - %{GREEDYDATA:message}",
    ),
    (
        "device",
        "device-2000.log.gz",
        r"%{TIMESTAMP_ISO8601:timestamp} \[%{LOGLEVEL:level}\] %{NOTSPACE:device_id} - %{GREEDYDATA:message}",
    ),
    ("apache", "apache-2000.log.gz", "%{COMBINEDAPACHELOG}"),
    (
        "syslog",
        "syslog-2000.log.gz",
        "%{SYSLOGBASE} %{GREEDYDATA:message}",
    ),
    ("syslogline", "syslog-2000.log.gz", "%{SYSLOGLINE}"),
];

fn lines(file: &str) -> Vec<String> {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    // The api logs hold Python tracebacks, one line each: the pattern is for the log
    // lines, so the bench keeps those (the integration test parses the rest too).
    text.lines()
        .filter(|l| !file.starts_with("api") || l.starts_with("20"))
        .map(str::to_string)
        .collect()
}

fn sluice_grok(pattern: &str) -> Grok {
    // Without config.support_escapes a backslash stays as written, as in Logstash.
    let escaped = pattern.replace('"', "\\\"");
    let mut opts = Options::from_text(
        "grok",
        "filter",
        &format!(r#"match => {{ "message" => "{escaped}" }}"#),
    )
    .unwrap();
    let g = Grok::build(&mut opts, CommonOptions::default()).unwrap();
    opts.finish().unwrap();
    g
}

fn bench(c: &mut Criterion) {
    let now = Timestamp::now();
    let onig = grok::Grok::with_default_patterns();
    for (name, file, pattern) in CASES {
        let lines = lines(file);
        let mut g = c.benchmark_group(format!("grok/{name}"));
        g.throughput(Throughput::Elements(lines.len() as u64));
        g.sample_size(10);
        g.warm_up_time(std::time::Duration::from_secs(1));
        g.measurement_time(std::time::Duration::from_secs(3));

        let filter = sluice_grok(pattern);
        // Every line must parse, or the figures would flatter a failing pattern.
        let mut check: Vec<Event> = lines
            .iter()
            .map(|l| Event::with_message(l.clone(), now))
            .collect();
        filter.filter(&mut check);
        assert!(
            check.iter().all(|e| !e.has_tag("_grokparsefailure")),
            "{name}: some lines do not parse"
        );
        g.bench_function("sluice", |b| {
            let mut batch = Vec::with_capacity(125);
            b.iter(|| {
                for chunk in lines.chunks(125) {
                    batch.clear();
                    batch.extend(chunk.iter().map(|l| Event::with_message(l.clone(), now)));
                    filter.filter(&mut batch);
                }
                std::hint::black_box(&batch);
            })
        });

        let compiled = onig.compile(pattern, true).unwrap();
        assert!(lines.iter().all(|l| compiled.match_against(l).is_some()));
        g.bench_function("grok-crate-onig", |b| {
            let mut batch = Vec::with_capacity(125);
            b.iter(|| {
                for chunk in lines.chunks(125) {
                    batch.clear();
                    for l in chunk {
                        let mut e = Event::with_message(l.clone(), now);
                        if let Some(m) = compiled.match_against(l) {
                            for (k, v) in m.iter() {
                                e.insert_field(k, Value::String(v.to_string()));
                            }
                        }
                        batch.push(e);
                    }
                }
                std::hint::black_box(&batch);
            })
        });
        g.finish();

        // The match alone, on each engine.
        let mut g = c.benchmark_group(format!("grok-match/{name}"));
        g.throughput(Throughput::Elements(lines.len() as u64));
        g.sample_size(10);
        g.warm_up_time(std::time::Duration::from_secs(1));
        g.measurement_time(std::time::Duration::from_secs(2));
        let ex = compiler::expand(pattern, &PatternLibrary::bundled(), true).unwrap();
        let timeout = std::time::Duration::from_secs(30);
        for (engine, m) in [
            ("pcre2", Matcher::new(&ex, timeout).unwrap()),
            ("automaton", Matcher::without_pcre2(&ex, timeout).unwrap()),
        ] {
            let mut spans = Vec::new();
            let mut scratch = Scratch::new();
            assert!(lines
                .iter()
                .all(|l| m.find(l, &mut scratch, &mut spans) == MatchResult::Matched));
            g.bench_function(engine, |b| {
                b.iter(|| {
                    let mut n = 0;
                    for l in &lines {
                        m.find(l, &mut scratch, &mut spans);
                        n += spans.iter().flatten().map(|(s, e)| e - s).sum::<usize>();
                    }
                    std::hint::black_box(n)
                })
            });
        }
        g.bench_function("oniguruma", |b| {
            b.iter(|| {
                let mut n = 0;
                for l in &lines {
                    if let Some(m) = compiled.match_against(l) {
                        n += m.iter().map(|(_, v)| v.len()).sum::<usize>();
                    }
                }
                std::hint::black_box(n)
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
