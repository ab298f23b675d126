//! useragent filter: uap-core's own conformance cases (tests/data/uap/, from uap-core
//! 0.16.0, the version of the bundled rules) and Logstash's useragent_spec.rb examples.

mod common;

use serde::Deserialize;
use sluice::event::field_ref::FieldRef;
use sluice::event::{Event, Timestamp, Value};
use sluice::filters::useragent::UaParser;
use sluice::filters::{self, EventFilter, Filter};
use sluice::plugin::Options;

#[derive(Deserialize)]
struct Cases {
    test_cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    user_agent_string: String,
    family: String,
    major: Option<String>,
    minor: Option<String>,
    patch: Option<String>,
    patch_minor: Option<String>,
}

fn cases(file: &str) -> Vec<Case> {
    let text = String::from_utf8(common::gunzip(&format!("tests/data/uap/{file}"))).unwrap();
    serde_yaml::from_str::<Cases>(&text).unwrap().test_cases
}

#[test]
fn uap_core_user_agent_cases() {
    let p = UaParser::bundled().unwrap();
    let cases = cases("test_ua.yaml.gz");
    assert!(cases.len() > 1000, "{}", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let r = p.parse(&c.user_agent_string);
        let got = (
            r.family.as_str(),
            r.major.as_deref(),
            r.minor.as_deref(),
            r.patch.as_deref(),
        );
        let want = (
            c.family.as_str(),
            c.major.as_deref(),
            c.minor.as_deref(),
            c.patch.as_deref(),
        );
        if got != want {
            failures.push(format!(
                "{}: got {got:?}, want {want:?}",
                c.user_agent_string
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        cases.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}

#[test]
fn uap_core_os_cases() {
    let p = UaParser::bundled().unwrap();
    let cases = cases("test_os.yaml.gz");
    assert!(cases.len() > 400, "{}", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let r = p.parse(&c.user_agent_string);
        let got = (
            r.os_family.as_str(),
            r.os_major.as_deref(),
            r.os_minor.as_deref(),
            r.os_patch.as_deref(),
            r.os_patch_minor.as_deref(),
        );
        let want = (
            c.family.as_str(),
            c.major.as_deref(),
            c.minor.as_deref(),
            c.patch.as_deref(),
            c.patch_minor.as_deref(),
        );
        if got != want {
            failures.push(format!(
                "{}: got {got:?}, want {want:?}",
                c.user_agent_string
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        cases.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}

fn filter(body: &str) -> Box<dyn Filter> {
    let mut o = Options::from_text("useragent", "filter", body).unwrap();
    let f = filters::build("useragent", &mut o).unwrap_or_else(|e| panic!("{e}"));
    o.finish().unwrap();
    f
}

fn run(f: &dyn Filter, field: &str, ua: Value) -> Event {
    let mut e = Event::at(Timestamp::now());
    e.insert(&FieldRef::parse(field).unwrap(), ua);
    let mut v = vec![e];
    f.filter(&mut v);
    v.remove(0)
}

fn get<'a>(e: &'a Event, r: &str) -> Option<&'a str> {
    e.get(&FieldRef::parse(r).unwrap()).and_then(Value::as_str)
}

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/89.0.4389.90 Safari/537.36";
const FIREFOX_MAC: &str =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.11; rv:45.0) Gecko/20100101 Firefox/45.0";

#[test]
fn ecs_fields_by_default() {
    let f = filter(r#"source => "message""#);
    let e = run(&*f, "message", Value::from(FIREFOX_MAC));
    assert_eq!(get(&e, "[user_agent][name]"), Some("Firefox"));
    assert_eq!(get(&e, "[user_agent][version]"), Some("45.0"));
    assert_eq!(get(&e, "[user_agent][os][name]"), Some("Mac OS X"));
    assert_eq!(get(&e, "[user_agent][os][version]"), Some("10.11"));
    assert_eq!(get(&e, "[user_agent][os][full]"), Some("Mac OS X 10.11"));
    assert_eq!(get(&e, "[user_agent][device][name]"), Some("Mac"));
    assert_eq!(
        get(&e, "[@metadata][filter][user_agent][version][major]"),
        Some("45")
    );
    assert_eq!(
        get(&e, "[@metadata][filter][user_agent][os][version][minor]"),
        Some("11")
    );
    assert_eq!(get(&e, "name"), None);

    // Chrome's four-part version (spec: "Chrome 89.0.4389.90").
    let e = run(&*f, "message", Value::from(CHROME));
    assert_eq!(get(&e, "[user_agent][name]"), Some("Chrome"));
    assert_eq!(get(&e, "[user_agent][version]"), Some("89.0.4389.90"));
    assert_eq!(get(&e, "[user_agent][os][name]"), Some("Windows"));
    assert_eq!(get(&e, "[user_agent][os][version]"), Some("10"));
    assert_eq!(get(&e, "[user_agent][os][full]"), Some("Windows 10"));
    assert_eq!(get(&e, "[user_agent][device][name]"), Some("Other"));
}

#[test]
fn legacy_fields_with_target_and_prefix() {
    let f = filter(
        r#"source => "message" ecs_compatibility => disabled target => "ua" prefix => "p_""#,
    );
    let e = run(&*f, "message", Value::from(FIREFOX_MAC));
    assert_eq!(get(&e, "[ua][p_name]"), Some("Firefox"));
    assert_eq!(get(&e, "[ua][p_major]"), Some("45"));
    assert_eq!(get(&e, "[ua][p_minor]"), Some("0"));
    assert_eq!(get(&e, "[ua][p_version]"), Some("45.0"));
    assert_eq!(get(&e, "[ua][p_os]"), Some("Mac OS X"));
    assert_eq!(get(&e, "[ua][p_os_name]"), Some("Mac OS X"));
    assert_eq!(get(&e, "[ua][p_os_major]"), Some("10"));
    assert_eq!(get(&e, "[ua][p_os_minor]"), Some("11"));
    assert_eq!(get(&e, "[ua][p_os_version]"), Some("10.11"));
    assert_eq!(get(&e, "[ua][p_os_full]"), Some("Mac OS X 10.11"));
    assert_eq!(get(&e, "[ua][p_device]"), Some("Mac"));

    // Without a target, at the root.
    let f = filter(r#"source => "message" ecs_compatibility => disabled"#);
    let e = run(&*f, "message", Value::from(FIREFOX_MAC));
    assert_eq!(get(&e, "name"), Some("Firefox"));
    assert_eq!(get(&e, "os_name"), Some("Mac OS X"));
}

#[test]
fn target_equal_to_source_replaces_the_string() {
    let f = filter(r#"source => "agent" target => "agent""#);
    let e = run(&*f, "agent", Value::from(CHROME));
    assert_eq!(get(&e, "[agent][name]"), Some("Chrome"));
}

#[test]
fn array_source_empty_and_unknown_agents() {
    let f = filter(r#"source => "message" add_tag => ["ua"]"#);
    let e = run(
        &*f,
        "message",
        Value::Array(vec![Value::from(CHROME), Value::from("x")]),
    );
    assert_eq!(get(&e, "[user_agent][name]"), Some("Chrome"));
    let e = run(&*f, "message", Value::from(""));
    assert!(!e.has_tag("ua"), "an empty agent is not parsed");
    assert!(e.get(&FieldRef::parse("user_agent").unwrap()).is_none());
    let e = run(&*f, "message", Value::from("definitely-not-a-browser"));
    assert_eq!(get(&e, "[user_agent][name]"), Some("Other"));
    assert_eq!(get(&e, "[user_agent][os][name]"), Some("Other"));
    assert!(e.has_tag("ua"));
}

#[test]
fn custom_regexes_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("regexes.yaml");
    std::fs::write(
        &path,
        "user_agent_parsers:\n  - regex: '(acme)/(\\d+)'\n    family_replacement: 'ACME $1'\nos_parsers: []\ndevice_parsers: []\n",
    )
    .unwrap();
    let f = filter(&format!(
        r#"source => "message" regexes => "{}""#,
        path.display()
    ));
    let e = run(&*f, "message", Value::from("acme/7"));
    assert_eq!(get(&e, "[user_agent][name]"), Some("ACME acme"));
    assert_eq!(get(&e, "[user_agent][version]"), Some("7"));

    let mut o = Options::from_text(
        "useragent",
        "filter",
        r#"source => "m" regexes => "/nonexistent/regexes.yaml""#,
    )
    .unwrap();
    assert!(filters::build("useragent", &mut o).is_err());
}

#[test]
fn parsed_agents_are_cached() {
    let mut o = Options::from_text(
        "useragent",
        "filter",
        r#"source => "message" lru_cache_size => 10"#,
    )
    .unwrap();
    let f = filters::useragent::UserAgent::build(&mut o).unwrap();
    for ua in [CHROME, CHROME, FIREFOX_MAC, CHROME] {
        let mut e = Event::at(Timestamp::now());
        e.insert_field("message", ua);
        f.apply(&mut e);
    }
    let s = f.cache_stats();
    assert_eq!((s.hits, s.misses), (2, 2));
}
