//! translate filter: Logstash's translate_spec.rb cases with dictionaries written to
//! temporary files in YAML (plain and `!!map` tagged), JSON and CSV.

use sluice::event::field_ref::FieldRef;
use sluice::event::{Event, Timestamp, Value};
use sluice::filters::{self, Filter};
use sluice::plugin::Options;
use std::path::Path;

fn build(body: &str) -> Result<Box<dyn Filter>, String> {
    let mut o = Options::from_text("translate", "filter", body).map_err(|e| e.to_string())?;
    let f = filters::build("translate", &mut o).map_err(|e| e.to_string())?;
    o.finish().map_err(|e| e.to_string())?;
    Ok(f)
}

fn filter(body: &str) -> Box<dyn Filter> {
    build(body).unwrap_or_else(|e| panic!("{e}"))
}

fn ev(field: &str, v: Value) -> Event {
    let mut e = Event::at(Timestamp::now());
    e.insert(&FieldRef::parse(field).unwrap(), v);
    e
}

fn run(f: &dyn Filter, e: Event) -> Event {
    let mut v = vec![e];
    f.filter(&mut v);
    v.remove(0)
}

fn get<'a>(e: &'a Event, r: &str) -> Option<&'a Value> {
    e.get(&FieldRef::parse(r).unwrap())
}

fn s(v: &str) -> Value {
    Value::from(v)
}

const STATUS_DICT: &str = r#"dictionary => [ "200", "OK", "300", "Redirect", "400", "Client Error", "500", "Server Error" ]"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const TAGGED_YAML: &str = "---\n!!map {\n  ? !!str \"one\"\n  : !!str \"val-1-1|val-1-2\",\n  ? !!str \"two\"\n  : !!str \"val-2-1|val-2-2\",\n  ? !!str \"six\"\n  : !!str \"val-6-1|val-6-2\",\n  ? !!str \"seven\"\n  : !!str \"val-7-1|val-7-2\",\n  ? !!str \"eight\"\n  : !!str \"val-8-1|val-8-2\",\n  ? !!str \"nine\"\n  : !!str \"val-9-1|val-9-2\",\n}\n";

const STATUS_CSV: &str =
    "\"200\",\"OK\"\n\"300\",\"Redirect\"\n\"400\",\"Client Error\"\n\"500\",\"Server Error\"\n";

#[test]
fn exact_translation_coerces_to_string() {
    let f = filter(&format!(
        r#"source => "status" target => "translation" {STATUS_DICT} exact => true regex => false"#
    ));
    let e = run(&*f, ev("status", Value::Int(200)));
    assert_eq!(get(&e, "translation"), Some(&s("OK")));
}

#[test]
fn regex_keys_do_not_match_without_regex() {
    let f = filter(
        r#"source => "status" target => "translation" dictionary => [ "^2\\d\\d", "OK", "^3\\d\\d", "Redirect" ]"#,
    );
    let e = run(&*f, ev("status", Value::Int(200)));
    assert_eq!(get(&e, "translation"), None);
}

#[test]
fn multi_translation_replaces_every_key_inside() {
    let f = filter(&format!(
        r#"source => "status" target => "translation" {STATUS_DICT} exact => false"#
    ));
    let e = run(&*f, ev("status", s("200 & 500")));
    assert_eq!(get(&e, "translation"), Some(&s("OK & Server Error")));

    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "union.csv", STATUS_CSV);
    let f = filter(&format!(
        r#"source => "status" target => "translation" dictionary_path => "{p}" refresh_interval => 0 exact => false"#
    ));
    let e = run(&*f, ev("status", s("200 & 500")));
    assert_eq!(get(&e, "translation"), Some(&s("OK & Server Error")));
}

#[test]
fn regex_translation_inline_and_from_csv() {
    let f = filter(
        r#"source => "status" target => "translation" dictionary => [ "^2[0-9][0-9]$", "OK", "^3[0-9][0-9]$", "Redirect" ] exact => true regex => true"#,
    );
    let e = run(&*f, ev("status", s("200")));
    assert_eq!(get(&e, "translation"), Some(&s("OK")));

    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "regex.csv",
        "\"^2[0-9][0-9]$\",\"OK\"\n\"^3[0-9][0-9]$\",\"Redirect\"\n",
    );
    let f = filter(&format!(
        r#"source => "status" target => "translation" dictionary_path => "{p}" refresh_interval => 0 regex => true"#
    ));
    let e = run(&*f, ev("status", s("301")));
    assert_eq!(get(&e, "translation"), Some(&s("Redirect")));
}

#[test]
fn fallback_static_and_sprintf() {
    for ecs in ["disabled", "v1"] {
        let f = filter(&format!(
            r#"source => "status" target => "translation" fallback => "no match" ecs_compatibility => {ecs}"#
        ));
        let e = run(&*f, ev("status", s("200")));
        assert_eq!(get(&e, "translation"), Some(&s("no match")));

        let f = filter(&format!(
            r#"source => "status" target => "translation" fallback => "%{{missing_translation}}" ecs_compatibility => {ecs}"#
        ));
        let mut e = ev("status", s("200"));
        e.insert_field("missing_translation", "missing no match");
        let e = run(&*f, e);
        assert_eq!(get(&e, "translation"), Some(&s("missing no match")));
    }
}

#[test]
fn dictionary_files_in_each_format() {
    let dir = tempfile::tempdir().unwrap();
    let yml = write(
        dir.path(),
        "dict.yml",
        "a : 1\nb : 2\nc : 3\nd : { \"e\": [1, \"hello\", true, \"false\", \"1\", \"1.1\"] }\n",
    );
    let f = filter(&format!(
        r#"source => "status" target => "translation" dictionary_path => "{yml}""#
    ));
    assert_eq!(
        get(&run(&*f, ev("status", s("a"))), "translation"),
        Some(&Value::Int(1))
    );
    let e = run(&*f, ev("status", s("d")));
    assert_eq!(get(&e, "[translation][e][1]"), Some(&s("hello")));
    assert_eq!(get(&e, "[translation][e][2]"), Some(&Value::Bool(true)));

    let tagged = write(dir.path(), "tag-map-dict.yml", TAGGED_YAML);
    let f = filter(&format!(
        r#"source => "status" target => "translation" dictionary_path => "{tagged}""#
    ));
    assert_eq!(
        get(&run(&*f, ev("status", s("six"))), "translation"),
        Some(&s("val-6-1|val-6-2"))
    );

    let json = write(
        dir.path(),
        "dict.json",
        "{\n  \"a\" : 10,\n  \"b\" : 20,\n  \"c\" : 30\n}\n",
    );
    let f = filter(&format!(
        r#"source => "status" target => "translation" dictionary_path => "{json}""#
    ));
    assert_eq!(
        get(&run(&*f, ev("status", s("b"))), "translation"),
        Some(&Value::Int(20))
    );

    let csv = write(dir.path(), "dict.csv", "\"a\",100\n\"b\",200\n\"c\",300\n");
    let f = filter(&format!(
        r#"source => "status" target => "translation" dictionary_path => "{csv}""#
    ));
    assert_eq!(
        get(&run(&*f, ev("status", s("c"))), "translation"),
        Some(&s("300"))
    );

    let other = write(dir.path(), "dict.other", "a,b\n");
    let err = build(&format!(
        r#"source => "status" dictionary_path => "{other}""#
    ))
    .err()
    .unwrap();
    assert!(err.contains("dict.other"), "{err}");

    let wrong = write(dir.path(), "dict-wrong.yml", "a : 1\nb : 2 : 3\n");
    let err = build(&format!(
        r#"source => "status" dictionary_path => "{wrong}""#
    ))
    .err()
    .unwrap();
    assert!(err.contains("dict-wrong.yml"), "{err}");

    // A missing file is a warning and an empty dictionary, as in Logstash.
    let f = filter(&format!(
        r#"source => "status" target => "t" fallback => "none" dictionary_path => "{}/absent.yml""#,
        dir.path().display()
    ));
    assert_eq!(get(&run(&*f, ev("status", s("a"))), "t"), Some(&s("none")));
}

#[test]
fn iterate_on_arrays_of_values_and_of_maps() {
    let dir = tempfile::tempdir().unwrap();
    let tagged = write(dir.path(), "tag-map-dict.yml", TAGGED_YAML);
    let csv = write(dir.path(), "status.csv", STATUS_CSV);
    let body = |src: &str, path: &str| {
        format!(
            r#"iterate_on => "foo" source => "{src}" target => "baz" fallback => "nooo" dictionary_path => "{path}" refresh_interval => 0"#
        )
    };

    let f = filter(&body("foo", &tagged));
    let e = run(
        &*f,
        ev("foo", Value::Array(vec![s("nine"), s("eight"), s("seven")])),
    );
    assert_eq!(
        get(&e, "baz"),
        Some(&Value::Array(vec![
            s("val-9-1|val-9-2"),
            s("val-8-1|val-8-2"),
            s("val-7-1|val-7-2")
        ]))
    );
    let f = filter(&body("foo", &csv));
    let e = run(
        &*f,
        ev(
            "foo",
            Value::Array(vec![Value::Int(200), Value::Int(300), Value::Int(400)]),
        ),
    );
    assert_eq!(
        get(&e, "baz"),
        Some(&Value::Array(vec![
            s("OK"),
            s("Redirect"),
            s("Client Error")
        ]))
    );

    let maps = |vals: Vec<Value>| {
        Value::Array(
            vals.into_iter()
                .map(|v| {
                    let mut m = sluice::event::new_map();
                    m.insert("bar".into(), v);
                    Value::Map(m)
                })
                .collect(),
        )
    };
    let f = filter(&body("bar", &tagged));
    let e = run(&*f, ev("foo", maps(vec![s("two"), s("one"), s("six")])));
    assert_eq!(get(&e, "[foo][0][baz]"), Some(&s("val-2-1|val-2-2")));
    assert_eq!(get(&e, "[foo][1][baz]"), Some(&s("val-1-1|val-1-2")));
    assert_eq!(get(&e, "[foo][2][baz]"), Some(&s("val-6-1|val-6-2")));
    let f = filter(&body("bar", &csv));
    let e = run(&*f, ev("foo", maps(vec![Value::Int(200), Value::Int(300)])));
    assert_eq!(get(&e, "[foo][1][baz]"), Some(&s("Redirect")));
}

#[test]
fn deprecated_names_override_and_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let tagged = write(dir.path(), "tag-map-dict.yml", TAGGED_YAML);
    let f = filter(&format!(
        r#"field => "foo" destination => "foo" dictionary_path => "{tagged}" override => true ecs_compatibility => disabled"#
    ));
    assert_eq!(
        get(&run(&*f, ev("foo", s("nine"))), "foo"),
        Some(&s("val-9-1|val-9-2"))
    );

    // An existing target is left alone unless override is set.
    let f = filter(&format!(
        r#"source => "status" target => "t" {STATUS_DICT}"#
    ));
    let mut e = ev("status", s("200"));
    e.insert_field("t", "kept");
    assert_eq!(get(&run(&*f, e), "t"), Some(&s("kept")));
    let f = filter(&format!(
        r#"source => "status" target => "t" override => true {STATUS_DICT}"#
    ));
    let mut e = ev("status", s("200"));
    e.insert_field("t", "kept");
    assert_eq!(get(&run(&*f, e), "t"), Some(&s("OK")));

    // ECS: the target defaults to the source (in place); legacy: `translation`.
    let f = filter(&format!(r#"source => "status" {STATUS_DICT}"#));
    assert_eq!(
        get(&run(&*f, ev("status", s("200"))), "status"),
        Some(&s("OK"))
    );
    let f = filter(&format!(
        r#"source => "status" ecs_compatibility => disabled {STATUS_DICT}"#
    ));
    assert_eq!(
        get(&run(&*f, ev("status", s("200"))), "translation"),
        Some(&s("OK"))
    );

    assert!(build(&format!(
        r#"source => "a" dictionary => {{ "x" => "y" }} dictionary_path => "{tagged}""#
    ))
    .is_err());
    assert!(build(r#"source => "a" target => "b" destination => "c""#).is_err());
    assert!(build(r#"source => "a" field => "c""#).is_err());
    assert!(build(r#"target => "b""#).is_err());
    assert!(
        build(r#"source => "a" override => false"#).is_err(),
        "in place with override false"
    );
}

#[test]
fn refresh_merges_or_replaces() {
    for (behaviour, after_del) in [("merge", Value::Int(3)), ("replace", s("no match"))] {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "d.yml", "a : 1\nb : 2\nc : 3");
        let f = filter(&format!(
            r#"source => "status" target => "translation" dictionary_path => "{p}" refresh_interval => 1 fallback => "no match" refresh_behaviour => {behaviour}"#
        ));
        assert_eq!(
            get(&run(&*f, ev("status", s("b"))), "translation"),
            Some(&Value::Int(2))
        );
        // A different length guarantees a different mtime on coarse clocks too.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(&p, "a : 1\nb : 4").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let e = run(&*f, ev("status", s("b")));
            if get(&e, "translation") == Some(&Value::Int(4)) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{behaviour}: the dictionary was not reloaded within 10 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(
            get(&run(&*f, ev("status", s("c"))), "translation"),
            Some(&after_del),
            "{behaviour}"
        );
    }
}
