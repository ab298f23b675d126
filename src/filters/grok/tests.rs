use super::*;
use crate::event::field_ref::FieldRef;
use crate::event::ruby_number::{ruby_to_f, ruby_to_i};
use crate::event::{Event, Value};
use crate::filters::common::CommonOptions;
use crate::grok::compiler;
use crate::grok::matcher::Matcher;
use crate::grok::matcher::{MatchResult, Scratch};
use crate::grok::{pattern_stats, EngineKind};

fn grok(body: &str) -> Grok {
    let mut opts = Options::from_text("grok", "filter", body).unwrap();
    let common = CommonOptions::from_options(&mut opts).unwrap();
    let g = Grok::build(&mut opts, common).unwrap();
    opts.finish().unwrap();
    g
}

fn run(g: &Grok, message: &str) -> (Outcome, Event) {
    let mut e = Event::new();
    e.insert_field("message", message);
    let o = g.apply(&mut e);
    (o, e)
}

fn get<'e>(e: &'e Event, r: &str) -> Option<&'e Value> {
    e.get(&FieldRef::parse(r).unwrap())
}

#[test]
fn api_line_parses_into_fields() {
    let g = grok(
        r#"match => { "message" => "%{TIMESTAMP_ISO8601:timestamp} %{LOGLEVEL:level} %{GREEDYDATA:logger_name} - %{GREEDYDATA:msg}" }"#,
    );
    let (o, e) = run(
        &g,
        "2026-11-21 10:30:00,123 ERROR valtronics.api.devices - Database timeout after 30s",
    );
    assert_eq!(o, Outcome::Success);
    assert_eq!(e.get_str("timestamp"), Some("2026-11-21 10:30:00,123"));
    assert_eq!(e.get_str("level"), Some("ERROR"));
    assert_eq!(e.get_str("logger_name"), Some("valtronics.api.devices"));
    assert_eq!(e.get_str("msg"), Some("Database timeout after 30s"));
    assert!(!e.has_tag("_grokparsefailure"));
}

#[test]
fn combined_apache_with_int_conversion() {
    let g = grok(
        r#"match => { "message" => "%{IPORHOST:clientip} %{HTTPDUSER:ident} %{HTTPDUSER:auth} \[%{HTTPDATE:timestamp}\] \"%{WORD:verb} %{NOTSPACE:request} HTTP/%{NUMBER:httpversion:float}\" %{NUMBER:response:int} %{NUMBER:bytes:int} %{QS:referrer} %{QS:agent}" }"#,
    );
    let (o, e) = run(
        &g,
        r#"149.96.190.25 - svc-deployer [21/Nov/2026:00:00:00 +0000] "DELETE /static/app.js HTTP/1.1" 200 15624 "https://valtronics.com/" "curl/8.5.0""#,
    );
    assert_eq!(o, Outcome::Success);
    assert_eq!(e.get_field("bytes"), Some(&Value::Int(15624)));
    assert_eq!(e.get_field("response"), Some(&Value::Int(200)));
    assert_eq!(e.get_field("httpversion"), Some(&Value::Float(1.1)));
    assert_eq!(e.get_str("auth"), Some("svc-deployer"));
    assert_eq!(e.get_str("agent"), Some("\"curl/8.5.0\""));
}

#[test]
fn combinedapachelog_names() {
    let g = grok(r#"match => { "message" => "%{COMBINEDAPACHELOG}" }"#);
    let (o, e) = run(
        &g,
        r#"94.29.109.10 - - [21/Nov/2026:00:00:00 +0000] "GET /health HTTP/1.1" 200 63088 "https://valtronics.com/" "-""#,
    );
    assert_eq!(o, Outcome::Success);
    for (k, v) in [
        ("clientip", "94.29.109.10"),
        ("ident", "-"),
        ("timestamp", "21/Nov/2026:00:00:00 +0000"),
        ("verb", "GET"),
        ("request", "/health"),
        ("httpversion", "1.1"),
        ("response", "200"),
        ("bytes", "63088"),
    ] {
        assert_eq!(e.get_str(k), Some(v), "{k}");
    }
    assert!(e.get_field("rawrequest").is_none());
}

#[test]
fn failure_tags_and_custom_tags() {
    let g = grok(r#"match => { "message" => "%{INT:n}" }"#);
    let (o, e) = run(&g, "no digits");
    assert_eq!(o, Outcome::Failure);
    assert!(e.has_tag("_grokparsefailure"));
    let g = grok(
        r#"match => { "message" => "%{INT:n}" } tag_on_failure => ["a", "b"] add_tag => ["ok"]"#,
    );
    let (_, e) = run(&g, "none");
    assert!(e.has_tag("a") && e.has_tag("b") && !e.has_tag("ok"));
    let (_, e) = run(&g, "5");
    assert!(e.has_tag("ok"));
    // A missing source field is a failure, too.
    let g = grok(r#"match => { "nope" => "%{GREEDYDATA:x}" }"#);
    let (o, _) = run(&g, "x");
    assert_eq!(o, Outcome::Failure);
}

#[test]
fn patterns_are_tried_in_order_and_break_on_match() {
    let body = r#"match => { "message" => ["%{INT:num}", "%{WORD:word}"] }"#;
    let g = grok(body);
    let (_, e) = run(&g, "abc 12");
    assert_eq!(e.get_str("num"), Some("12"));
    assert!(e.get_field("word").is_none());
    let (_, e) = run(&g, "abc");
    assert_eq!(e.get_str("word"), Some("abc"));
    let g = grok(&format!("{body} break_on_match => false"));
    let (_, e) = run(&g, "abc 12");
    assert_eq!(e.get_str("num"), Some("12"));
    assert_eq!(e.get_str("word"), Some("abc"));
}

#[test]
fn several_fields_and_break_on_match_across_them() {
    let g = grok(r#"match => { "message" => "%{INT:a}" "other" => "%{WORD:b}" }"#);
    let mut e = Event::new();
    e.insert_field("message", "1");
    e.insert_field("other", "w");
    g.apply(&mut e);
    assert_eq!(e.get_str("a"), Some("1"));
    assert!(e.get_field("b").is_none());
}

#[test]
fn repeated_field_makes_an_array_and_overwrite_replaces() {
    let g = grok(r#"match => { "message" => "%{WORD:w} %{WORD:w}" }"#);
    let (_, e) = run(&g, "one two");
    assert_eq!(
        e.get_field("w"),
        Some(&Value::Array(vec![Value::from("one"), Value::from("two")]))
    );
    // Capturing into the source field without overwrite keeps both, as Logstash does.
    let g = grok(r#"match => { "message" => "%{WORD} %{GREEDYDATA:message}" }"#);
    let (_, e) = run(&g, "a rest");
    assert_eq!(
        e.get_field("message"),
        Some(&Value::Array(vec![
            Value::from("a rest"),
            Value::from("rest")
        ]))
    );
    let g = grok(
        r#"match => { "message" => "%{WORD} %{GREEDYDATA:message}" } overwrite => ["message"]"#,
    );
    let (_, e) = run(&g, "a rest");
    assert_eq!(e.get_str("message"), Some("rest"));
}

#[test]
fn nested_fields_and_target() {
    let g = grok(r#"match => { "message" => "%{WORD:[http][verb]} %{INT:[http][status]:int}" }"#);
    let (_, e) = run(&g, "GET 404");
    assert_eq!(get(&e, "[http][verb]"), Some(&Value::from("GET")));
    assert_eq!(get(&e, "[http][status]"), Some(&Value::Int(404)));
    let g = grok(r#"match => { "message" => "%{WORD:verb} %{INT:[s][code]}" } target => "parsed""#);
    let (_, e) = run(&g, "GET 404");
    assert_eq!(get(&e, "[parsed][verb]"), Some(&Value::from("GET")));
    assert_eq!(get(&e, "[parsed][s][code]"), Some(&Value::from("404")));
    assert!(e.get_field("verb").is_none());
}

#[test]
fn conversions_follow_ruby() {
    let g = grok(
        r#"match => { "message" => "(?<a>\S+) (?<b>\S+) %{DATA:c:int} %{GREEDYDATA:d:float}" }"#,
    );
    let (_, e) = run(&g, "x y 12abc 1.5e3");
    assert_eq!(e.get_field("c"), Some(&Value::Int(12)));
    assert_eq!(e.get_field("d"), Some(&Value::Float(1500.0)));
    assert_eq!(ruby_to_i("abc"), 0);
    assert_eq!(ruby_to_i("-7"), -7);
    assert_eq!(ruby_to_f("3.5x"), 3.5);
    assert_eq!(ruby_to_f(""), 0.0);
}

#[test]
fn named_captures_only_and_keep_empty_captures() {
    let g = grok(r#"match => { "message" => "%{WORD} %{INT:n}" } named_captures_only => false"#);
    let (_, e) = run(&g, "abc 1");
    assert_eq!(e.get_str("WORD"), Some("abc"));
    let g = grok(r#"match => { "message" => "%{WORD:a}:(?<b>\d*)" }"#);
    let (_, e) = run(&g, "x:");
    assert!(e.get_field("b").is_none());
    let g = grok(r#"match => { "message" => "%{WORD:a}:(?<b>\d*)" } keep_empty_captures => true"#);
    let (_, e) = run(&g, "x:");
    assert_eq!(e.get_str("b"), Some(""));
}

#[test]
fn pattern_definitions_and_patterns_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine"),
        "MYID [A-Z]{3}-\\d+\nWORD [a-z]{2}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("skip.txt"), "OTHER x\n").unwrap();
    let body = format!(
        r#"match => {{ "message" => "%{{MYID:id}} %{{WORD:w}} %{{LOCAL:l}}" }} patterns_dir => ["{}"] patterns_files_glob => "mine" pattern_definitions => {{ "LOCAL" => "L+" }}"#,
        dir.path().display()
    );
    let g = grok(&body);
    let (o, e) = run(&g, "ABC-12 yz LL");
    assert_eq!(o, Outcome::Success);
    assert_eq!(e.get_str("id"), Some("ABC-12"));
    // The directory's WORD (two letters) overrides the bundled one.
    assert_eq!(e.get_str("w"), Some("yz"));
    assert_eq!(e.get_str("l"), Some("LL"));
    let mut opts = Options::from_text(
        "grok",
        "filter",
        &format!(
            r#"match => {{ "message" => "%{{OTHER}}" }} patterns_dir => ["{}"] patterns_files_glob => "mine""#,
            dir.path().display()
        ),
    )
    .unwrap();
    assert!(Grok::build(&mut opts, CommonOptions::default()).is_err());
}

#[test]
fn bad_options_are_load_errors() {
    for body in [
        r#"match => { "message" => "%{NOPE:x}" }"#,
        r#"match => { "message" => "(unclosed" }"#,
        r#"match => { "message" => "%{INT:x}" } ecs_compatibility => "v8""#,
        r#"match => { "message" => "%{INT:x}" } timeout_scope => "never""#,
        "",
    ] {
        let mut opts = Options::from_text("grok", "filter", body).unwrap();
        assert!(
            Grok::build(&mut opts, CommonOptions::default()).is_err(),
            "{body}"
        );
    }
}

#[test]
fn a_runaway_pattern_is_stopped_and_tagged() {
    // Exponential backtracking on a long line (the `b` it needs is there, so no
    // engine can rule the line out before it starts).
    let g = grok(
        r#"match => { "message" => "^(?<x>(?:a|aa)+)(?<!a)b" } timeout_millis => 100 timeout_scope => "event""#,
    );
    assert_eq!(
        g.patterns().next().map(Pattern::engine),
        Some(EngineKind::Pcre2)
    );
    let (o, e) = run(&g, &format!("{}b", "a".repeat(5000)));
    assert_eq!(o, Outcome::Failure);
    assert!(e.has_tag("_groktimeout"));
    assert!(!e.has_tag("_grokparsefailure"));
    let stats = g.stats();
    assert_eq!(stats[0].timeouts, 1);
    // The worker goes on: the next event parses.
    let g2 = grok(
        r#"match => { "message" => ["^(?<x>(?:a|aa)+)(?=b)b", "%{GREEDYDATA:rest}"] } timeout_millis => 100 tag_on_timeout => "slow""#,
    );
    let (_, e) = run(&g2, &format!("{}cb", "a".repeat(5000)));
    assert!(e.has_tag("slow"));
    let (o, e) = run(&g2, "ab");
    assert_eq!(o, Outcome::Success);
    assert_eq!(e.get_str("x"), Some("a"));
}

#[test]
fn stats_count_matches_and_failures() {
    let g = grok(r#"match => { "message" => ["%{INT:n}", "%{WORD:w}"] }"#);
    let mut batch: Vec<Event> = ["1", "w", "-"]
        .iter()
        .map(|m| {
            let mut e = Event::new();
            e.insert_field("message", *m);
            e
        })
        .collect();
    Filter::filter(&g, &mut batch);
    let s = g.stats();
    assert_eq!((s[0].matches, s[0].failures), (1, 2));
    assert_eq!((s[1].matches, s[1].failures), (1, 1));
    assert!(pattern_stats().iter().any(|p| p.pattern == "%{WORD:w}"));
}

#[test]
fn array_sources_match_each_element() {
    let g = grok(r#"match => { "message" => "%{INT:n}" }"#);
    let mut e = Event::new();
    e.insert_field(
        "message",
        Value::Array(vec![Value::from("1"), Value::from("x"), Value::from("2")]),
    );
    assert_eq!(g.apply(&mut e), Outcome::Success);
    assert_eq!(
        e.get_field("n"),
        Some(&Value::Array(vec![Value::from("1"), Value::from("2")]))
    );
}

/// The automaton engine with look-arounds proven redundant gives the backtracking
/// engine's answer on every sample line.
#[test]
fn both_engines_agree_on_the_samples() {
    let lib = PatternLibrary::bundled();
    let sample = include_str!("../../../samples/mixed.log");
    for p in [
        "%{COMBINEDAPACHELOG}",
        "%{SLUICE_API}",
        "%{SLUICE_DEVICE}",
        "%{SLUICE_SYSLOG}",
        "%{SYSLOGLINE}",
        "%{IP:ip}",
        "%{NUMBER:n}",
        "%{HOSTNAME:h}",
    ] {
        let ex = compiler::expand(p, &lib, true).unwrap();
        let t = compiler::translate(&ex).unwrap();
        let bt = fancy_regex::Regex::new(&t.backtracking).unwrap();
        let m = Matcher::new(&ex, Duration::from_secs(5)).unwrap();
        for line in sample.lines() {
            let mut spans = Vec::new();
            let r = m.find(line, &mut Scratch::new(), &mut spans);
            let expected: Option<Vec<Option<(usize, usize)>>> =
                bt.captures(line).unwrap().map(|c| {
                    ex.captures
                        .iter()
                        .map(|cap| c.name(&cap.group).map(|m| (m.start(), m.end())))
                        .collect()
                });
            match expected {
                None => assert_eq!(r, MatchResult::NoMatch, "{p} on {line}"),
                Some(exp) => {
                    assert_eq!(r, MatchResult::Matched, "{p} on {line}");
                    assert_eq!(spans, exp, "{p} on {line}");
                }
            }
        }
    }
}
