//! csv filter: Logstash's csv_spec.rb cases, plus generated CSV through the binary.

use sluice::event::field_ref::FieldRef;
use sluice::event::{Event, Timestamp, Value};
use sluice::filters::{self, Filter};
use sluice::plugin::Options;

fn build(body: &str) -> Result<Box<dyn Filter>, String> {
    let mut o = Options::from_text("csv", "filter", body).map_err(|e| e.to_string())?;
    let f = filters::build("csv", &mut o).map_err(|e| e.to_string())?;
    o.finish().map_err(|e| e.to_string())?;
    Ok(f)
}

fn filter(body: &str) -> Box<dyn Filter> {
    build(body).unwrap_or_else(|e| panic!("{e}"))
}

fn msg(m: &str) -> Event {
    Event::with_message(m.to_string(), Timestamp::now())
}

/// Runs the filter; `None` when it dropped the event.
fn run(f: &dyn Filter, e: Event) -> Option<Event> {
    let mut v = vec![e];
    f.filter(&mut v);
    v.pop()
}

fn get<'a>(e: &'a Event, r: &str) -> Option<&'a Value> {
    e.get(&FieldRef::parse(r).unwrap())
}

fn s(v: &str) -> Option<&'static Value> {
    Some(Box::leak(Box::new(Value::from(v))))
}

#[test]
fn invalid_conversion_type_is_a_configuration_error() {
    let err = build(r#"convert => { "custom1" => "integer" "custom3" => "wrong_type" }"#)
        .err()
        .unwrap();
    assert!(err.contains("wrong_type"), "{err}");
}

#[test]
fn all_defaults() {
    let f = filter("");
    let e = run(&*f, msg("big,bird,sesame street")).unwrap();
    assert_eq!(get(&e, "column1"), s("big"));
    assert_eq!(get(&e, "column2"), s("bird"));
    assert_eq!(get(&e, "column3"), s("sesame street"));
    assert_eq!(get(&e, "message"), s("big,bird,sesame street"));
}

#[test]
fn empty_message() {
    let e = run(&*filter("skip_empty_rows => true"), msg("")).unwrap();
    assert!(e.has_tag("_csvskippedemptyfield"));
    let e = run(&*filter(""), msg("")).unwrap();
    assert!(e.has_tag("_csvparsefailure"));
}

#[test]
fn custom_separator_and_quote_char() {
    let e = run(
        &*filter(r#"separator => ";""#),
        msg("big,bird;sesame street"),
    )
    .unwrap();
    assert_eq!(get(&e, "column1"), s("big,bird"));
    assert_eq!(get(&e, "column2"), s("sesame street"));

    let e = run(
        &*filter(r#"quote_char => "'""#),
        msg("big,bird,'sesame street'"),
    )
    .unwrap();
    assert_eq!(get(&e, "column3"), s("sesame street"));

    let e = run(&*filter(""), msg(r#"big,bird,"sesame, street""#)).unwrap();
    assert_eq!(get(&e, "column3"), s("sesame, street"));

    let e = run(
        &*filter(r#"quote_char => "\x00""#),
        msg(r#"big,bird,"sesame" street"#),
    )
    .unwrap();
    assert_eq!(get(&e, "column3"), s(r#""sesame" street"#));

    let e = run(&*filter(r#"separator => "\t""#), msg("a\tb")).unwrap();
    assert_eq!(get(&e, "column2"), s("b"));
}

#[test]
fn given_column_names() {
    let e = run(
        &*filter(r#"columns => ["first", "last", "address"]"#),
        msg("big,bird,sesame street"),
    )
    .unwrap();
    assert_eq!(get(&e, "first"), s("big"));
    assert_eq!(get(&e, "last"), s("bird"));
    assert_eq!(get(&e, "address"), s("sesame street"));

    let f = filter(r#"columns => ["custom1", "custom2"] autogenerate_column_names => false"#);
    let e = run(&*f, msg("val1,val2,val3")).unwrap();
    assert_eq!(get(&e, "custom1"), s("val1"));
    assert_eq!(get(&e, "custom2"), s("val2"));
    assert_eq!(get(&e, "column3"), None);

    let f = filter(r#"columns => ["custom1", "custom2", "custom3"] skip_header => true"#);
    assert!(
        run(&*f, msg("custom1,custom2,custom3")).is_none(),
        "the header is dropped"
    );
    assert!(run(&*f, msg("a,b,c")).is_some());

    let f = filter(r#"columns => ["custom1", "custom2", "custom3"] skip_empty_columns => true"#);
    let e = run(&*f, msg("val1,,val3")).unwrap();
    assert_eq!(get(&e, "custom1"), s("val1"));
    assert_eq!(get(&e, "custom2"), None);
    assert_eq!(get(&e, "custom3"), s("val3"));

    let f = filter(r#"columns => ["custom1", "custom2"]"#);
    let e = run(&*f, msg("val1,val2,val3")).unwrap();
    assert_eq!(get(&e, "column3"), s("val3"));

    let f = filter(r#"source => "datafield" columns => ["custom1", "custom2", "custom3"]"#);
    let mut ev = Event::at(Timestamp::now());
    ev.insert_field("datafield", "val1,val2,val3");
    let e = run(&*f, ev).unwrap();
    assert_eq!(get(&e, "custom3"), s("val3"));

    let f = filter(r#"columns => ["[@metadata][one]", "two"]"#);
    let e = run(&*f, msg("hello,world")).unwrap();
    assert_eq!(get(&e, "[@metadata][one]"), s("hello"));
    assert_eq!(get(&e, "two"), s("world"));
}

#[test]
fn unquoted_empty_columns_are_null() {
    let e = run(&*filter(""), msg(r#"a,,"""#)).unwrap();
    assert_eq!(get(&e, "column2"), Some(&Value::Null));
    assert_eq!(get(&e, "column3"), s(""));
}

#[test]
fn given_target() {
    let e = run(
        &*filter(r#"target => "data""#),
        msg("big,bird,sesame street"),
    )
    .unwrap();
    assert_eq!(get(&e, "[data][column1]"), s("big"));
    assert_eq!(get(&e, "[data][column3]"), s("sesame street"));

    let e = run(&*filter(r#"target => "[foo][bar]""#), msg("hello,world")).unwrap();
    assert_eq!(get(&e, "[foo][bar][column2]"), s("world"));

    let f = filter(r#"target => "[foo][bar]" columns => ["[test][one]", "[test][two]"]"#);
    let e = run(&*f, msg("hello,world")).unwrap();
    assert_eq!(get(&e, "[foo][bar][test][one]"), s("hello"));
    assert_eq!(get(&e, "[foo][bar][test][two]"), s("world"));
}

#[test]
#[allow(clippy::approx_constant)] // Logstash's spec value, not meant as pi
fn field_conversion() {
    let f = filter(
        r#"convert => { "column1" => "integer" "column3" => "boolean" "column4" => "float"
                        "column5" => "date" "column6" => "date_time" "column7" => "date" "column8" => "date_time" }"#,
    );
    let e = run(
        &*f,
        msg("1234,bird,false,3.14159265359,2017-06-01,2001-02-03 04:05:06,invalid_date,invalid_date_time"),
    )
    .unwrap();
    assert_eq!(get(&e, "column1"), Some(&Value::Int(1234)));
    assert_eq!(get(&e, "column2"), s("bird"));
    assert_eq!(get(&e, "column3"), Some(&Value::Bool(false)));
    assert_eq!(get(&e, "column4"), Some(&Value::Float(3.14159265359)));
    match get(&e, "column5") {
        Some(Value::Timestamp(t)) => assert_eq!(t.to_iso8601(), "2017-06-01T00:00:00.000Z"),
        other => panic!("{other:?}"),
    }
    match get(&e, "column6") {
        Some(Value::Timestamp(t)) => assert_eq!(t.to_iso8601(), "2001-02-03T04:05:06.000Z"),
        other => panic!("{other:?}"),
    }
    assert_eq!(get(&e, "column7"), s("invalid_date"));
    assert_eq!(get(&e, "column8"), s("invalid_date_time"));
}

#[test]
fn autodetect_column_names_from_the_first_line() {
    let f = filter("autodetect_column_names => true");
    assert!(run(&*f, msg("first,last,address")).is_none());
    let e = run(&*f, msg("big,bird,sesame street")).unwrap();
    assert_eq!(get(&e, "first"), s("big"));
    assert_eq!(get(&e, "address"), s("sesame street"));
}

#[test]
fn malformed_lines_are_tagged_and_kept() {
    let f = filter(r#"columns => ["a", "b"] add_tag => ["parsed"]"#);
    for bad in [r#"x,"unclosed"#, r#"x,in"side"#, r#""q"tail,y"#] {
        let e = run(&*f, msg(bad)).unwrap();
        assert!(e.has_tag("_csvparsefailure"), "{bad}");
        assert!(!e.has_tag("parsed"), "{bad}");
        assert_eq!(get(&e, "a"), None, "{bad}");
        assert_eq!(get(&e, "message"), s(bad));
    }
}
