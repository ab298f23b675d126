//! geoip filter against MaxMind-format databases built by
//! tests/scripts/make_geoip_test_dbs.py (committed under tests/data/geoip/), with the
//! expectations of Logstash's geoip_ecs_spec.rb transcribed to those records.

mod common;

use sluice::event::field_ref::FieldRef;
use sluice::event::{Event, Timestamp, Value};
use sluice::filters::{self, Filter};
use sluice::plugin::Options;

fn db(name: &str) -> String {
    format!("{}/tests/data/geoip/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn build(body: &str) -> Result<Box<dyn Filter>, String> {
    let mut o = Options::from_text("geoip", "filter", body).map_err(|e| e.to_string())?;
    let f = filters::build("geoip", &mut o).map_err(|e| e.to_string())?;
    o.finish().map_err(|e| e.to_string())?;
    Ok(f)
}

fn filter(body: &str) -> Box<dyn Filter> {
    build(body).unwrap_or_else(|e| panic!("{e}"))
}

fn event(field: &str, value: Value) -> Event {
    let mut e = Event::at(Timestamp::now());
    e.insert(&FieldRef::parse(field).unwrap(), value);
    e
}

fn run(f: &dyn Filter, e: Event) -> Event {
    let mut v = vec![e];
    f.filter(&mut v);
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn get<'a>(e: &'a Event, r: &str) -> Option<&'a Value> {
    e.get(&FieldRef::parse(r).unwrap())
}

fn s(v: &str) -> Value {
    Value::from(v)
}

#[test]
fn city_with_ecs_names_by_default_under_the_target() {
    let f = filter(&format!(
        r#"source => "message" target => "server" database => "{}""#,
        db("GeoIP2-City-Test.mmdb")
    ));
    let e = run(&*f, event("message", s("216.160.83.56")));
    assert_eq!(get(&e, "[server][ip]"), Some(&s("216.160.83.56")));
    assert_eq!(get(&e, "[server][geo][country_iso_code]"), Some(&s("US")));
    assert_eq!(
        get(&e, "[server][geo][country_name]"),
        Some(&s("United States"))
    );
    assert_eq!(get(&e, "[server][geo][continent_code]"), Some(&s("NA")));
    assert_eq!(get(&e, "[server][geo][city_name]"), Some(&s("Milton")));
    assert_eq!(
        get(&e, "[server][geo][region_name]"),
        Some(&s("Washington"))
    );
    assert_eq!(get(&e, "[server][geo][region_iso_code]"), Some(&s("US-WA")));
    assert_eq!(get(&e, "[server][geo][postal_code]"), Some(&s("98354")));
    assert_eq!(
        get(&e, "[server][geo][timezone]"),
        Some(&s("America/Los_Angeles"))
    );
    assert_eq!(
        get(&e, "[server][geo][location][lat]"),
        Some(&Value::Float(47.2513))
    );
    assert_eq!(
        get(&e, "[server][geo][location][lon]"),
        Some(&Value::Float(-122.3149))
    );
    assert_eq!(get(&e, "[server][mmdb][dma_code]"), Some(&Value::Int(819)));
    assert_eq!(get(&e, "[server][geo][country_code3]"), None);
    assert_eq!(get(&e, "[server][country_code3]"), None);
    assert_eq!(get(&e, "[server][region_code]"), None);
    assert!(!e.has_tag("_geoip_lookup_failure"));
}

#[test]
fn city_with_legacy_names_when_ecs_is_disabled() {
    let f = filter(&format!(
        r#"source => "message" ecs_compatibility => disabled database => "{}""#,
        db("GeoIP2-City-Test.mmdb")
    ));
    let e = run(&*f, event("message", s("81.2.69.142")));
    assert_eq!(get(&e, "[geoip][ip]"), Some(&s("81.2.69.142")));
    assert_eq!(get(&e, "[geoip][country_code2]"), Some(&s("GB")));
    assert_eq!(get(&e, "[geoip][country_code3]"), Some(&s("GB")));
    assert_eq!(get(&e, "[geoip][city_name]"), Some(&s("London")));
    assert_eq!(get(&e, "[geoip][region_code]"), Some(&s("ENG")));
    assert_eq!(get(&e, "[geoip][region_iso_code]"), None);
    assert_eq!(get(&e, "[geoip][latitude]"), Some(&Value::Float(51.5142)));
    assert_eq!(
        get(&e, "[geoip][location][lon]"),
        Some(&Value::Float(-0.0931))
    );
    assert_eq!(
        get(&e, "[geoip][dma_code]"),
        None,
        "London has no metro code"
    );
}

#[test]
fn ecs_target_comes_from_an_ip_sub_field_or_is_required() {
    let f = filter(&format!(
        r#"source => "[client][ip]" database => "{}""#,
        db("GeoIP2-City-Test.mmdb")
    ));
    let e = run(&*f, event("[client][ip]", s("216.160.83.57")));
    assert_eq!(get(&e, "[client][geo][city_name]"), Some(&s("Milton")));
    assert_eq!(get(&e, "[client][ip]"), Some(&s("216.160.83.57")));

    let err = build(&format!(
        r#"source => "client_ip" database => "{}""#,
        db("GeoIP2-City-Test.mmdb")
    ))
    .err()
    .expect("ECS mode without an [ip] source needs a target");
    assert!(err.contains("target"), "{err}");
}

#[test]
fn custom_fields_only() {
    let f = filter(&format!(
        r#"source => "message" target => "server" fields => ["continent_name", "TIMEZONE"] database => "{}""#,
        db("GeoIP2-City-Test.mmdb")
    ));
    let e = run(&*f, event("message", s("216.160.83.56")));
    assert_eq!(
        get(&e, "[server][geo][continent_name]"),
        Some(&s("North America"))
    );
    assert_eq!(
        get(&e, "[server][geo][timezone]"),
        Some(&s("America/Los_Angeles"))
    );
    assert_eq!(get(&e, "[server][ip]"), None);
    assert_eq!(get(&e, "[server][geo][location]"), None);

    // "location" alone still gives lat and lon (Logstash's shared example).
    let f = filter(&format!(
        r#"source => "message" target => "server" fields => ["location", "longitude"] database => "{}""#,
        db("GeoIP2-City-Test.mmdb")
    ));
    let e = run(&*f, event("message", s("216.160.83.56")));
    assert!(get(&e, "[server][geo][location][lat]").is_some());
    assert!(get(&e, "[server][geo][location][lon]").is_some());
    assert_eq!(get(&e, "[server][geo][timezone]"), None);

    assert!(
        build(r#"source => "message" target => "t" fields => ["bogus"]"#)
            .err()
            .is_some_and(|e| e.contains("bogus"))
    );
}

#[test]
fn ipv6_is_written_as_logstash_writes_it() {
    let f = filter(&format!(
        r#"source => "message" target => "server" fields => ["continent_code", "ip"] database => "{}""#,
        db("GeoIP2-City-Test.mmdb")
    ));
    let e = run(&*f, event("message", s("2001:db8::4")));
    assert_eq!(get(&e, "[server][ip]"), Some(&s("2001:db8:0:0:0:0:0:4")));
    assert_eq!(get(&e, "[server][geo][continent_code]"), Some(&s("EU")));
}

#[test]
fn failures_are_tagged_and_leave_no_target() {
    let f = filter(&format!(
        r#"source => "message" target => "server" database => "{}" add_tag => ["geo_ok"]"#,
        db("GeoIP2-City-Test.mmdb")
    ));
    for value in [
        s("10.0.0.1"),       // private, not in the database
        s("not an address"), // not an IP
        s("   "),            // blank
        s("89.160.20.115"),  // country-level record without a location
        Value::Int(1),       // not a string
    ] {
        let e = run(&*f, event("message", value.clone()));
        assert!(e.has_tag("_geoip_lookup_failure"), "{value:?}");
        assert!(!e.has_tag("geo_ok"), "{value:?}");
    }
    let e = run(&*f, event("other", s("216.160.83.56")));
    assert!(
        e.has_tag("_geoip_lookup_failure"),
        "a missing source fails too"
    );

    let f = filter(&format!(
        r#"source => "message" target => "server" tag_on_failure => ["nogeo"] database => "{}""#,
        db("GeoIP2-City-Test.mmdb")
    ));
    let e = run(&*f, event("message", s("10.0.0.1")));
    assert!(e.has_tag("nogeo") && !e.has_tag("_geoip_lookup_failure"));
    assert_eq!(get(&e, "[server]"), None);
}

#[test]
fn an_array_source_uses_its_first_value() {
    let f = filter(&format!(
        r#"source => "ips" target => "server" database => "{}""#,
        db("GeoIP2-City-Test.mmdb")
    ));
    let e = run(
        &*f,
        event(
            "ips",
            Value::Array(vec![s("81.2.69.142"), s("216.160.83.56")]),
        ),
    );
    assert_eq!(get(&e, "[server][geo][city_name]"), Some(&s("London")));
}

#[test]
fn asn_database_with_network() {
    let body = |ecs: &str, fields: &str| {
        format!(
            r#"source => "message" target => "server" ecs_compatibility => {ecs} {fields} database => "{}""#,
            db("GeoLite2-ASN-Test.mmdb")
        )
    };
    let e = run(
        &*filter(&body("v8", "")),
        event("message", s("216.160.83.58")),
    );
    assert_eq!(get(&e, "[server][ip]"), Some(&s("216.160.83.58")));
    assert_eq!(get(&e, "[server][as][number]"), Some(&Value::Int(209)));
    assert_eq!(
        get(&e, "[server][as][organization][name]"),
        Some(&s("Qwest Communications Company, LLC"))
    );
    let e = run(
        &*filter(&body("disabled", "")),
        event("message", s("1.128.0.1")),
    );
    assert_eq!(get(&e, "[server][asn]"), Some(&Value::Int(1221)));
    assert_eq!(get(&e, "[server][as_org]"), Some(&s("Telstra Pty Ltd")));

    let f = filter(&body(
        "v1",
        r#"fields => ["AUTONOMOUS_SYSTEM_NUMBER", "network"]"#,
    ));
    let e = run(&*f, event("message", s("216.160.83.60")));
    assert_eq!(get(&e, "[server][as][number]"), Some(&Value::Int(209)));
    assert_eq!(get(&e, "[server][ip]"), None);
    assert_eq!(get(&e, "[server][as][organization][name]"), None);
    assert_eq!(
        get(&e, "[server][ip_traits][network]"),
        Some(&s("216.160.83.56/29"))
    );
}

#[test]
fn country_isp_anonymous_enterprise_and_domain_databases() {
    let one = |file: &str, ip: &str| {
        let f = filter(&format!(
            r#"source => "message" target => "source" database => "{}""#,
            db(file)
        ));
        run(&*f, event("message", s(ip)))
    };
    let e = one("GeoLite2-Country-Test.mmdb", "81.2.69.142");
    assert_eq!(get(&e, "[source][geo][country_iso_code]"), Some(&s("GB")));
    assert_eq!(get(&e, "[source][geo][continent_name]"), Some(&s("Europe")));
    assert_eq!(get(&e, "[source][geo][city_name]"), None);

    let e = one("GeoIP2-ISP-Test.mmdb", "1.128.0.1");
    assert_eq!(get(&e, "[source][mmdb][isp]"), Some(&s("Telstra Internet")));
    assert_eq!(
        get(&e, "[source][mmdb][organization]"),
        Some(&s("Telstra Internet"))
    );
    assert_eq!(get(&e, "[source][as][number]"), Some(&Value::Int(1221)));

    let e = one("GeoIP2-Anonymous-IP-Test.mmdb", "186.30.236.9");
    assert_eq!(
        get(&e, "[source][ip_traits][anonymous]"),
        Some(&Value::Bool(true))
    );
    assert_eq!(
        get(&e, "[source][ip_traits][public_proxy]"),
        Some(&Value::Bool(true))
    );
    assert_eq!(
        get(&e, "[source][ip_traits][tor_exit_node]"),
        Some(&Value::Bool(false))
    );
    assert_eq!(
        get(&e, "[source][ip]"),
        None,
        "not a default field of Anonymous-IP"
    );

    let e = one("GeoIP2-Enterprise-Test.mmdb", "216.160.83.56");
    assert_eq!(get(&e, "[source][geo][city_name]"), Some(&s("Milton")));
    assert_eq!(get(&e, "[source][geo][region_iso_code]"), Some(&s("US-WA")));
    assert_eq!(
        get(&e, "[source][geo][location][lat]"),
        Some(&Value::Float(47.2513))
    );

    let e = one("GeoIP2-Domain-Test.mmdb", "1.2.3.4");
    assert_eq!(get(&e, "[source][domain]"), Some(&s("maxmind.com")));
}

#[test]
fn enterprise_traits_on_request() {
    let f = filter(&format!(
        r#"source => "message" target => "source" fields => ["autonomous_system_number", "anonymous", "network"] database => "{}""#,
        db("GeoIP2-Enterprise-Test.mmdb")
    ));
    let e = run(&*f, event("message", s("216.160.83.57")));
    assert_eq!(get(&e, "[source][as][number]"), Some(&Value::Int(209)));
    assert_eq!(
        get(&e, "[source][ip_traits][anonymous]"),
        Some(&Value::Bool(false))
    );
    assert_eq!(
        get(&e, "[source][ip_traits][network]"),
        Some(&s("216.160.83.56/29"))
    );
}

#[test]
fn without_a_database_events_are_tagged_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let f = filter(&format!(
        r#"source => "message" target => "source" database => "{}/GeoLite2-City.mmdb""#,
        dir.path().display()
    ));
    let e = run(&*f, event("message", s("216.160.83.56")));
    assert!(e.has_tag("_geoip_database_unavailable"));
    assert_eq!(get(&e, "[source]"), None);

    // `-t` accepts such a pipeline.
    let out = common::sluice()
        .args(["--path.data", dir.path().to_str().unwrap(), "-t", "-e"])
        .arg(r#"input { stdin {} } filter { geoip { source => "[source][ip]" } } output { null {} }"#)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_file_that_is_no_database_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.mmdb");
    std::fs::write(&path, b"this is not a maxmind database").unwrap();
    let err = build(&format!(
        r#"source => "message" target => "source" database => "{}""#,
        path.display()
    ))
    .err()
    .expect("a corrupt database must not load");
    assert!(err.contains("not a valid MaxMind database"), "{err}");
    assert!(
        build(r#"source => "message" target => "source" default_database_type => "city""#).is_err()
    );
    assert!(build(r#"source => "message" target => "source" cache_size => 0"#).is_err());
}

#[test]
fn lookups_are_cached_per_address() {
    let mut o = Options::from_text(
        "geoip",
        "filter",
        &format!(
            r#"source => "message" target => "server" cache_size => 2 database => "{}""#,
            db("GeoIP2-City-Test.mmdb")
        ),
    )
    .unwrap();
    let g = filters::geoip::GeoIp::build(&mut o).unwrap();
    use sluice::filters::EventFilter;
    for ip in [
        "216.160.83.56",
        "216.160.83.56",
        "81.2.69.142",
        "216.160.83.56",
    ] {
        let mut e = event("message", s(ip));
        g.apply(&mut e);
        assert!(get(&e, "[server][geo][city_name]").is_some());
    }
    let stats = g.cache_stats();
    assert_eq!((stats.hits, stats.misses), (2, 2));
}
