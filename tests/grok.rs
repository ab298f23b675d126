//! grok end to end: each generated log format parses whole through `sluice -e` from
//! stdin to stdout with the pattern a user would write, with the right types; a
//! runaway pattern does not hold the pipeline; the `sluice grok` debugger.

mod common;

use common::{gunzip, run};

fn events(filter: &str, input: &[u8]) -> Vec<serde_json::Value> {
    let config = format!(
        "input {{ stdin {{}} }} filter {{ {filter} }} output {{ stdout {{ codec => json_lines }} }}"
    );
    let out = run(&["-w", "2", "-e", &config], input);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn tags(e: &serde_json::Value) -> Vec<String> {
    e["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn all_parse(file: &str, filter: &str) -> Vec<serde_json::Value> {
    let input = gunzip(file);
    let lines = input
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    let evs = events(filter, &input);
    assert_eq!(evs.len(), lines, "{file}: events lost");
    let failed: Vec<_> = evs.iter().filter(|e| !tags(e).is_empty()).collect();
    assert!(
        failed.is_empty(),
        "{file}: {} failed, e.g. {}",
        failed.len(),
        failed[0]
    );
    evs
}

#[test]
fn api_logs_parse_whole() {
    let evs = all_parse(
        "tests/data/api-2000.log.gz",
        r#"grok { match => { "message" => ["%{SLUICE_API}", "%{PYTHON_TRACEBACK}"] } overwrite => ["message"] }"#,
    );
    let logs: Vec<_> = evs.iter().filter(|e| e["level"].is_string()).collect();
    assert!(logs.len() > 1800);
    assert!(logs
        .iter()
        .all(|e| e["message"].is_string() && e["logger_name"].is_string()));
    assert!(evs.iter().any(|e| e["line"].is_i64()));
}

#[test]
fn device_logs_parse_whole() {
    let evs = all_parse(
        "tests/data/device-2000.log.gz",
        r#"grok { match => { "message" => "%{SLUICE_DEVICE}" } overwrite => ["message"] }"#,
    );
    assert!(evs.iter().all(|e| e["device_id"]
        .as_str()
        .is_some_and(|d| d.starts_with("dev-"))));
}

#[test]
fn apache_logs_parse_whole_with_integer_bytes() {
    let evs = all_parse(
        "tests/data/apache-2000.log.gz",
        r#"grok { match => { "message" => '%{IPORHOST:clientip} %{HTTPDUSER:ident} %{HTTPDUSER:auth} \[%{HTTPDATE:timestamp}\] "%{WORD:verb} %{NOTSPACE:request} HTTP/%{NUMBER:httpversion}" %{NUMBER:response:int} (?:%{NUMBER:bytes:int}|-) %{QS:referrer} %{QS:agent}' } }"#,
    );
    assert!(evs.iter().all(|e| e["response"].is_i64()));
    // A "-" size leaves `bytes` out; every other one is an integer.
    let dash = regex::Regex::new(r#"" \d+ - ""#).unwrap();
    for e in &evs {
        let m = e["message"].as_str().unwrap();
        if dash.is_match(m) {
            assert!(e["bytes"].is_null(), "{e}");
        } else {
            assert!(e["bytes"].is_i64(), "{e}");
        }
    }
    // The standard pattern parses them too (strings, as in Logstash).
    let evs = all_parse(
        "tests/data/apache-2000.log.gz",
        r#"grok { match => { "message" => "%{COMBINEDAPACHELOG}" } }"#,
    );
    assert!(evs
        .iter()
        .all(|e| e["response"].is_string() && e["clientip"].is_string()));
}

#[test]
fn syslog_logs_parse_whole() {
    let evs = all_parse(
        "tests/data/syslog-2000.log.gz",
        r#"grok { match => { "message" => "%{SLUICE_SYSLOG}" } overwrite => ["message"] }"#,
    );
    assert!(evs
        .iter()
        .all(|e| e["program"].is_string() && e["logsource"].is_string()));
    assert!(evs.iter().any(|e| e["priority"].is_i64()));
    all_parse(
        "tests/data/syslog-2000.log.gz",
        r#"grok { match => { "message" => "%{SYSLOGLINE}" } overwrite => ["message"] }"#,
    );
}

#[test]
fn a_runaway_pattern_does_not_hold_the_pipeline() {
    let mut input = Vec::new();
    for i in 0..6 {
        if i % 2 == 0 {
            // The `b` the pattern needs is there, so no engine can rule the line out
            // before it starts backtracking.
            input.extend(std::iter::repeat_n(b'a', 20_000));
            input.extend_from_slice(b"cb");
        } else {
            input.extend_from_slice(b"ab");
        }
        input.push(b'\n');
    }
    let evs = events(
        r#"grok { match => { "message" => "^(?<x>(?:a|aa)+)(?=b)b" } timeout_millis => 200 }"#,
        &input,
    );
    assert_eq!(evs.len(), 6);
    assert_eq!(
        evs.iter().filter(|e| tags(e) == ["_groktimeout"]).count(),
        3
    );
    assert_eq!(evs.iter().filter(|e| e["x"] == "a").count(), 3);
}

#[test]
fn the_grok_subcommand_reports_per_line() {
    let out = run(
        &[
            "grok",
            "%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} %{INT:n:int}",
        ],
        b"2026-11-21T10:00:00Z INFO 7\n2026-11-21T10:00:00Z INFO x\n",
    );
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["fields"]["n"], 7);
    assert_eq!(lines[1]["failed_at"], "%{INT:n:int}");
    // The Logstash-style flags still work beside the subcommand.
    let out = run(&["-e", "input { stdin {} } output { null {} }"], b"x\n");
    assert!(out.status.success());
}
