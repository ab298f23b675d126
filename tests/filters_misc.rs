//! split, clone, uuid, truncate, prune, urldecode, syslog_pri and cidr, with the
//! cases of their Logstash spec files.

use sluice::event::field_ref::FieldRef;
use sluice::event::{Event, Timestamp, Value};
use sluice::filters::{self, Filter};
use sluice::plugin::Options;

fn build(name: &str, body: &str) -> Result<Box<dyn Filter>, String> {
    let mut o = Options::from_text(name, "filter", body).map_err(|e| e.to_string())?;
    let f = filters::build(name, &mut o).map_err(|e| e.to_string())?;
    o.finish().map_err(|e| e.to_string())?;
    Ok(f)
}

fn filter(name: &str, body: &str) -> Box<dyn Filter> {
    build(name, body).unwrap_or_else(|e| panic!("{e}"))
}

fn ev(fields: &[(&str, Value)]) -> Event {
    let mut e = Event::at(Timestamp::now());
    for (k, v) in fields {
        e.insert(&FieldRef::parse(k).unwrap(), v.clone());
    }
    e
}

fn run(f: &dyn Filter, e: Event) -> Vec<Event> {
    let mut v = vec![e];
    f.filter(&mut v);
    v
}

fn get<'a>(e: &'a Event, r: &str) -> Option<&'a Value> {
    e.get(&FieldRef::parse(r).unwrap())
}

fn s(v: &str) -> Value {
    Value::from(v)
}

fn strs(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|i| s(i)).collect())
}

#[test]
fn split_strings_and_arrays() {
    let f = filter("split", r#"add_tag => ["piece"]"#);
    let out = run(&*f, ev(&[("message", s("big"))]));
    assert_eq!(out.len(), 1);
    assert!(!out[0].has_tag("piece"), "one piece is no split");
    let out = run(&*f, ev(&[("message", s("big\nbird\nsesame street"))]));
    let msgs: Vec<_> = out.iter().map(|e| e.get_str("message").unwrap()).collect();
    assert_eq!(msgs, ["big", "bird", "sesame street"]);
    assert!(out.iter().all(|e| e.has_tag("piece")));

    let f = filter("split", r#"terminator => "\t""#);
    assert_eq!(
        run(&*f, ev(&[("message", s("big\tbird\tsesame street"))])).len(),
        3
    );

    let f = filter("split", r#"field => "custom""#);
    let out = run(
        &*f,
        ev(&[
            ("custom", s("big\nbird\nsesame street")),
            ("do_not_touch", s("1\n2\n3")),
        ]),
    );
    assert_eq!(out.len(), 3);
    assert!(out
        .iter()
        .all(|e| e.get_str("do_not_touch") == Some("1\n2\n3")));
    assert_eq!(out[2].get_str("custom"), Some("sesame street"));

    let f = filter("split", r#"field => "array""#);
    let out = run(
        &*f,
        ev(&[
            ("array", strs(&["big", "bird", "sesame street"])),
            ("untouched", s("1\n2\n3")),
        ]),
    );
    assert_eq!(
        out.iter()
            .map(|e| e.get_str("array").unwrap())
            .collect::<Vec<_>>(),
        ["big", "bird", "sesame street"]
    );
    let out = run(&*f, ev(&[("array", strs(&["single-element"]))]));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].get_str("array"), Some("single-element"));
    let out = run(
        &*f,
        ev(&[(
            "array",
            Value::Array(vec![
                s("big"),
                Value::Null,
                s("bird"),
                Value::Null,
                s("sesame street"),
            ]),
        )]),
    );
    assert_eq!(out.len(), 3);

    let f = filter("split", r#"field => "array" target => "element""#);
    let out = run(&*f, ev(&[("array", strs(&["a", "b"]))]));
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].get_str("element"), Some("b"));
    assert_eq!(get(&out[1], "array"), Some(&strs(&["a", "b"])));

    let f = filter("split", r#"field => "n""#);
    let out = run(&*f, ev(&[("n", Value::Int(3))]));
    assert_eq!(out.len(), 1);
    assert!(out[0].has_tag("_split_type_failure"));
}

#[test]
fn clone_by_type_or_tag() {
    let f = filter(
        "clone",
        r#"clones => ["nginx-access", "nginx-error"] ecs_compatibility => disabled add_tag => ["cloned"]"#,
    );
    let out = run(&*f, ev(&[("message", s("hello")), ("type", s("orig"))]));
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].get_str("type"), Some("orig"));
    assert!(!out[0].has_tag("cloned"), "the original is left alone");
    assert_eq!(out[1].get_str("type"), Some("nginx-access"));
    assert_eq!(out[2].get_str("type"), Some("nginx-error"));
    assert!(out[1].has_tag("cloned") && out[2].has_tag("cloned"));

    let f = filter("clone", r#"clones => ["copy"]"#);
    let out = run(&*f, ev(&[("message", s("hello")), ("tags", strs(&["a"]))]));
    assert_eq!(get(&out[1], "tags"), Some(&strs(&["a", "copy"])));
    assert_eq!(get(&out[1], "type"), None);
    assert!(build("clone", "").is_err(), "clones is required");
}

#[test]
fn uuid_keeps_or_overwrites() {
    let f = filter("uuid", r#"target => "uuid""#);
    let out = run(&*f, ev(&[]));
    let id = out[0].get_str("uuid").unwrap().to_string();
    assert!(uuid_shape(&id), "{id}");
    let out = run(&*f, ev(&[("uuid", s("kept"))]));
    assert_eq!(out[0].get_str("uuid"), Some("kept"));
    let f = filter("uuid", r#"target => "uuid" overwrite => true"#);
    let out = run(&*f, ev(&[("uuid", s("kept"))]));
    assert!(uuid_shape(out[0].get_str("uuid").unwrap()));
    assert!(build("uuid", "").is_err());
}

fn uuid_shape(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

#[test]
fn truncate_bytes_on_char_boundaries() {
    let f = filter(
        "truncate",
        r#"length_bytes => 3 fields => ["a", "[m][x]", "list"] add_tag => ["cut"]"#,
    );
    let mut m = sluice::event::new_map();
    m.insert("x".into(), s("abcdef"));
    let out = run(
        &*f,
        ev(&[
            ("a", s("😀😀")),
            ("m", Value::Map(m)),
            ("list", Value::Array(vec![s("abcd"), Value::Int(12345)])),
            ("other", s("untouched")),
        ]),
    );
    let e = &out[0];
    assert_eq!(
        e.get_str("a"),
        Some(""),
        "a 4-byte character does not fit in 3"
    );
    assert_eq!(get(e, "[m][x]"), Some(&s("abc")));
    assert_eq!(
        get(e, "list"),
        Some(&Value::Array(vec![s("abc"), Value::Int(12345)]))
    );
    assert_eq!(e.get_str("other"), Some("untouched"));
    assert!(e.has_tag("cut"));

    let f = filter("truncate", r#"length_bytes => 5 add_tag => ["cut"]"#);
    let out = run(
        &*f,
        ev(&[("message", s("hello world")), ("short", s("ok"))]),
    );
    assert_eq!(out[0].get_str("message"), Some("hello"));
    assert_eq!(out[0].get_str("short"), Some("ok"));
    let out = run(&*f, ev(&[("short", s("ok"))]));
    assert!(!out[0].has_tag("cut"), "nothing cut, no success");
}

#[test]
fn prune_names_and_values() {
    let base = || {
        ev(&[
            ("firstname", s("Borat")),
            ("lastname", s("Sagdiyev")),
            ("fullname", s("Borat Sagdiyev")),
            ("country", s("Kazakhstan")),
            ("location", s("Somethere")),
            ("hobby", s("Cloud")),
            ("status", s("200")),
            ("Borat_saying", s("Cloud is not ready for enterprise if is not integrate with single server running Active Directory.")),
            ("%{hmm}", s("doh")),
        ])
    };
    let f = filter("prune", "");
    let out = run(&*f, base());
    assert_eq!(
        out[0].get_str("%{hmm}"),
        None,
        "unresolved references go by default"
    );
    assert_eq!(out[0].get_str("firstname"), Some("Borat"));

    let f = filter(
        "prune",
        r#"whitelist_names => ["firstname", "(hobby|status)", "%{firstname}_saying"]"#,
    );
    let e = &run(&*f, base())[0];
    assert_eq!(e.get_str("firstname"), Some("Borat"));
    assert_eq!(e.get_str("hobby"), Some("Cloud"));
    assert_eq!(e.get_str("status"), Some("200"));
    assert_eq!(e.get_str("lastname"), None);
    assert_eq!(e.get_str("Borat_saying"), None, "not interpolated");

    let f = filter(
        "prune",
        r#"whitelist_names => ["firstname", "%{firstname}_saying"] interpolate => true"#,
    );
    let e = &run(&*f, base())[0];
    assert!(e.get_str("Borat_saying").is_some());
    assert_eq!(e.get_str("lastname"), None);

    let f = filter(
        "prune",
        r#"blacklist_names => ["firstname", "(hobby|status)"]"#,
    );
    let e = &run(&*f, base())[0];
    assert_eq!(e.get_str("firstname"), None);
    assert_eq!(e.get_str("hobby"), None);
    assert_eq!(
        e.get_str("%{hmm}"),
        Some("doh"),
        "an explicit blacklist replaces the default"
    );

    let f = filter(
        "prune",
        r#"whitelist_values => { "firstname" => "^Borat$" "status" => "^2\d\d$" "lastname" => "^Nobody$" }"#,
    );
    let e = &run(&*f, base())[0];
    assert_eq!(e.get_str("firstname"), Some("Borat"));
    assert_eq!(e.get_str("status"), Some("200"));
    assert_eq!(e.get_str("lastname"), None);

    let f = filter(
        "prune",
        r#"blacklist_values => { "firstname" => "^Borat$" "list" => "^b" }"#,
    );
    let mut e = base();
    e.insert_field("list", strs(&["a", "b1", "c", "b2"]));
    let e = &run(&*f, e)[0];
    assert_eq!(e.get_str("firstname"), None);
    assert_eq!(get(e, "list"), Some(&strs(&["a", "c"])));
}

#[test]
fn urldecode_one_field_or_all() {
    let f = filter("urldecode", "");
    let out = run(
        &*f,
        ev(&[(
            "message",
            s("http%3A%2F%2Flogstash.net%2Fdocs%2F1.3.2%2Ffilters%2Furldecode"),
        )]),
    );
    assert_eq!(
        out[0].get_str("message"),
        Some("http://logstash.net/docs/1.3.2/filters/urldecode")
    );
    let out = run(
        &*f,
        ev(&[(
            "message",
            s("http://logstash.net/docs/1.3.2/filters/urldecode"),
        )]),
    );
    assert_eq!(
        out[0].get_str("message"),
        Some("http://logstash.net/docs/1.3.2/filters/urldecode")
    );
    let out = run(&*f, ev(&[("message", s("a+b%20c%C3%A9"))]));
    assert_eq!(out[0].get_str("message"), Some("a+b cé"));

    let f = filter("urldecode", "all_fields => true");
    let out = run(&*f, ev(&[("a", s("%2F")), ("b", strs(&["%41", "x"]))]));
    assert_eq!(out[0].get_str("a"), Some("/"));
    assert_eq!(get(&out[0], "b"), Some(&strs(&["A", "x"])));

    let f = filter("urldecode", "");
    let out = run(&*f, ev(&[("message", s("bad %FF byte"))]));
    assert!(out[0].has_tag("_urldecodefailure"));
    assert_eq!(out[0].get_str("message"), Some("bad \u{fffd} byte"));
}

#[test]
fn syslog_pri_codes_and_labels() {
    let cases = [
        (Value::Int(13), "user-level", "notice", 1, 5),
        (Value::Int(34), "security/authorization", "critical", 4, 2),
        (Value::Int(165), "local4", "notice", 20, 5),
        (Value::Int(191), "local7", "debug", 23, 7),
        (s("137"), "local1", "alert", 17, 1),
    ];
    let ecs = filter("syslog_pri", "");
    let legacy = filter("syslog_pri", "ecs_compatibility => disabled");
    for (pri, fac, sev, fac_code, sev_code) in cases {
        let e = &run(&*ecs, ev(&[("[log][syslog][priority]", pri.clone())]))[0];
        assert_eq!(get(e, "[log][syslog][facility][name]"), Some(&s(fac)));
        assert_eq!(get(e, "[log][syslog][severity][name]"), Some(&s(sev)));
        assert_eq!(
            get(e, "[log][syslog][facility][code]"),
            Some(&Value::Int(fac_code))
        );
        assert_eq!(
            get(e, "[log][syslog][severity][code]"),
            Some(&Value::Int(sev_code))
        );
        let e = &run(&*legacy, ev(&[("syslog_pri", pri)]))[0];
        assert_eq!(e.get_str("syslog_facility"), Some(fac));
        assert_eq!(e.get_str("syslog_severity"), Some(sev));
        assert_eq!(get(e, "syslog_facility_code"), Some(&Value::Int(fac_code)));
    }
    // Without a PRI: 13.
    let e = &run(&*legacy, ev(&[]))[0];
    assert_eq!(e.get_str("syslog_severity"), Some("notice"));
    // Too high: tagged, codes set, no labels.
    let e = &run(&*legacy, ev(&[("syslog_pri", Value::Int(193))]))[0];
    assert!(e.has_tag("_syslogpriparsefailure"));
    assert_eq!(e.get_str("syslog_facility"), None);
    assert_eq!(get(e, "syslog_facility_code"), Some(&Value::Int(24)));
    let f = filter(
        "syslog_pri",
        "ecs_compatibility => disabled use_labels => false",
    );
    let e = &run(&*f, ev(&[("syslog_pri", Value::Int(193))]))[0];
    assert!(!e.has_tag("_syslogpriparsefailure"));
    assert_eq!(get(e, "syslog_severity_code"), Some(&Value::Int(1)));
}

#[test]
fn cidr_matches_addresses_against_networks() {
    let f = filter(
        "cidr",
        r#"address => ["%{clientip}"] network => ["192.168.0.0/24"] add_tag => ["matched"]"#,
    );
    assert!(run(&*f, ev(&[("clientip", s("192.168.0.30"))]))[0].has_tag("matched"));
    assert!(!run(&*f, ev(&[("clientip", s("123.52.122.33"))]))[0].has_tag("matched"));
    assert!(!run(&*f, ev(&[("clientip", s("not-an-ip"))]))[0].has_tag("matched"));

    let f = filter(
        "cidr",
        r#"address => ["%{clientip}"] network => ["fe80::/64"] add_tag => ["matched"]"#,
    );
    assert!(run(&*f, ev(&[("clientip", s("fe80:0:0:0:0:0:0:1"))]))[0].has_tag("matched"));

    let f = filter(
        "cidr",
        r#"address => ["%{clientip}"] network => ["%{net}"] add_field => { "matched" => "yes" }"#,
    );
    let e = &run(
        &*f,
        ev(&[
            ("clientip", s("10.1.2.3")),
            ("net", s("192.168.0.0/16,10.0.0.0/8")),
        ]),
    )[0];
    assert_eq!(e.get_str("matched"), Some("yes"));

    let f = filter(
        "cidr",
        r#"address_field => "ips" network => ["10.0.0.0/8"] add_tag => ["matched"]"#,
    );
    assert!(run(&*f, ev(&[("ips", strs(&["8.8.8.8", "10.0.0.1"]))]))[0].has_tag("matched"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nets.txt");
    std::fs::write(&path, "192.168.1.0/24,10.0.0.0/8").unwrap();
    let f = filter(
        "cidr",
        &format!(
            r#"address => ["%{{clientip}}"] network_path => "{}" separator => "," add_tag => ["matched"]"#,
            path.display()
        ),
    );
    assert!(run(&*f, ev(&[("clientip", s("10.9.9.9"))]))[0].has_tag("matched"));
    assert!(!run(&*f, ev(&[("clientip", s("11.9.9.9"))]))[0].has_tag("matched"));

    assert!(build("cidr", r#"network => ["10.0.0.0/8"] network_path => "/x""#).is_err());
    assert!(build("cidr", r#"address => ["a"] address_field => "b""#).is_err());
}
