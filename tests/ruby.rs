//! The `ruby` filter: the expectations of logstash-filter-ruby's spec suite (inline
//! `code`, `path` scripts with `register`/`filter`/`script_params` and their own `test`
//! blocks), the Event API as scripts use it, snippets typical of public configs, the
//! timeout, and the binary end to end (signals still reach Sluice with Ruby loaded).
#![cfg(feature = "ruby")]

mod common;

use sluice::event::field_ref::FieldRef;
use sluice::event::{Event, Timestamp, Value};
use sluice::filters::{self, Filter};
use sluice::plugin::Options;
use std::time::{Duration, Instant};

fn build(name: &str, body: &str) -> Result<Box<dyn Filter>, String> {
    let mut o = Options::from_text(name, "filter", body).map_err(|e| e.to_string())?;
    let f = filters::build(name, &mut o).map_err(|e| e.to_string())?;
    o.finish().map_err(|e| e.to_string())?;
    Ok(f)
}

fn build_err(name: &str, body: &str) -> String {
    match build(name, body) {
        Ok(_) => panic!("`{body}` loaded"),
        Err(e) => e,
    }
}

fn filter(name: &str, body: &str) -> Box<dyn Filter> {
    build(name, body).unwrap_or_else(|e| panic!("{e}"))
}

fn ruby(body: &str) -> Box<dyn Filter> {
    filter("ruby", body)
}

fn ev(fields: &[(&str, Value)]) -> Event {
    let mut e = Event::at(Timestamp::now());
    for (k, v) in fields {
        e.insert(&FieldRef::parse(k).unwrap(), v.clone());
    }
    e
}

fn run(filters: &[&dyn Filter], e: Event) -> Vec<Event> {
    let mut v = vec![e];
    for f in filters {
        f.filter(&mut v);
    }
    v
}

fn get<'a>(e: &'a Event, r: &str) -> Option<&'a Value> {
    e.get(&FieldRef::parse(r).unwrap())
}

fn s(v: &str) -> Value {
    Value::from(v)
}

fn tags(e: &Event) -> Vec<String> {
    match e.get_field("tags") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn fixture(name: &str) -> String {
    format!("{}/tests/data/ruby/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn sample() -> Event {
    ev(&[
        ("message", s("hello world")),
        ("mydate", s("2014-09-23T00:00:00-0800")),
    ])
}

fn date() -> Box<dyn Filter> {
    filter(
        "date",
        r#"match => [ "mydate", "ISO8601" ] locale => "en" timezone => "UTC""#,
    )
}

fn expected_sample_json() -> serde_json::Value {
    serde_json::json!({
        "message": "hello world",
        "mydate": "2014-09-23T00:00:00-0800",
        "@version": "1",
        "@timestamp": "2014-09-23T08:00:00.000Z"
    })
}

// ---- logstash-filter-ruby spec: inline scripts ----

#[test]
fn spec_pretty_json_of_event_to_hash() {
    let d = date();
    let r = ruby(
        r#"init => "require 'json'" code => "event.set('pretty', JSON.pretty_generate(event.to_hash))""#,
    );
    let out = run(&[&*d, &*r], sample());
    assert_eq!(out.len(), 1);
    let pretty = out[0].get_str("pretty").expect("pretty is set");
    assert_eq!(pretty.matches('\n').count(), 5, "{pretty}");
    let parsed: serde_json::Value = serde_json::from_str(pretty).unwrap();
    assert_eq!(parsed, expected_sample_json());
}

#[test]
fn spec_json_generate_of_the_event_uses_its_own_compact_to_json() {
    let d = date();
    let r = ruby(
        r#"init => "require 'json'" code => "event.set('pretty', JSON.pretty_generate(event))""#,
    );
    let out = run(&[&*d, &*r], sample());
    let pretty = out[0].get_str("pretty").expect("pretty is set");
    assert_eq!(pretty.matches('\n').count(), 0, "{pretty}");
    let parsed: serde_json::Value = serde_json::from_str(pretty).unwrap();
    assert_eq!(parsed, expected_sample_json());
}

#[test]
fn spec_an_exception_tags_the_event_and_skips_the_common_options() {
    let d = date();
    let r =
        ruby(r#"init => "require 'json'" code => "raise 'You shall not pass'" add_tag => ["ok"]"#);
    let out = run(&[&*d, &*r], sample());
    assert_eq!(out.len(), 1, "the event is never lost");
    assert_eq!(out[0].get_str("mydate"), Some("2014-09-23T00:00:00-0800"));
    assert_eq!(tags(&out[0]), ["_rubyexception"]);
    // The filter keeps working after an exception.
    let out = run(&[&*r], sample());
    assert_eq!(tags(&out[0]), ["_rubyexception"]);
}

#[test]
fn spec_new_event_block_adds_an_event_after_the_original() {
    let r = ruby(r#"code => "new_event_block.call(event.clone)""#);
    let original = sample();
    let out = run(&[&*r], original.clone());
    assert_eq!(out.len(), 2);
    assert_eq!(out[0], original, "the original comes first, unchanged");
    assert_eq!(out[1].fields(), original.fields(), "the new one is a copy");
}

#[test]
fn spec_an_event_can_be_replaced_by_another() {
    let r = ruby(
        r#"code => "new_event_block.call(event.clone);
                     event.cancel;"
           add_tag => ["ok"]"#,
    );
    let out = run(&[&*r], sample());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].get_str("message"), Some("hello world"));
    assert_eq!(out[0].get_str("mydate"), Some("2014-09-23T00:00:00-0800"));
    assert!(
        tags(&out[0]).is_empty(),
        "add_tag went to the cancelled original only"
    );
}

// ---- logstash-filter-ruby spec: file based scripts ----

#[test]
fn spec_a_script_file_filters_with_its_params_and_filter_matched_applies() {
    let body = format!(
        r#"path => "{}" script_params => {{ "field" => "foo" "multiplier" => 2 }} add_field => {{ "success" => "yes" }}"#,
        fixture("field_multiplier.rb")
    );
    let r = ruby(&body);
    let out = run(&[&*r], ev(&[("foo", Value::Int(42))]));
    assert_eq!(out.len(), 1);
    assert_eq!(get(&out[0], "foo"), Some(&Value::Int(84)));
    assert_eq!(out[0].get_str("success"), Some("yes"));
}

#[test]
fn spec_a_script_whose_own_tests_fail_is_refused_at_load() {
    let body = format!(r#"path => "{}""#, fixture("broken.rb"));
    let err = build_err("ruby", &body);
    assert!(err.contains("had 1 failing tests"), "{err}");
    assert!(err.contains("broken.rb"), "{err}");
}

#[test]
fn spec_a_script_returning_three_events_yields_three() {
    let body = format!(r#"path => "{}""#, fixture("multi_events.rb"));
    let r = ruby(&body);
    let out = run(&[&*r], ev(&[("foo", Value::Int(42))]));
    assert_eq!(
        out.len(),
        3,
        "the original is cancelled, its three copies pass"
    );
    assert!(out.iter().all(|e| get(e, "foo") == Some(&Value::Int(42))));
}

#[test]
fn script_tests_run_with_their_own_parameters_and_events() {
    let body = format!(r#"path => "{}""#, fixture("split_csv.rb"));
    let r = ruby(&body);
    let out = run(&[&*r], ev(&[("message", s("one,two"))]));
    let msgs: Vec<_> = out.iter().filter_map(|e| e.get_str("message")).collect();
    assert_eq!(msgs, ["one", "two"]);
    assert_eq!(get(&out[1], "[item][index]"), Some(&Value::Int(1)));
}

#[test]
fn script_load_errors_name_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let no_filter = dir.path().join("no_filter.rb");
    std::fs::write(&no_filter, "def register(params); end\n").unwrap();
    let err = build_err("ruby", &format!(r#"path => "{}""#, no_filter.display()));
    assert!(err.contains("does not define a filter"), "{err}");

    let syntax = dir.path().join("syntax.rb");
    std::fs::write(&syntax, "def filter(event)\n  [event\nend\n").unwrap();
    let err = build_err("ruby", &format!(r#"path => "{}""#, syntax.display()));
    assert!(
        err.contains("Error during load") && err.contains("syntax.rb"),
        "{err}"
    );

    let raising = dir.path().join("raising.rb");
    std::fs::write(
        &raising,
        "def register(params); raise 'no ' + params['x']; end\ndef filter(e); [e]; end\n",
    )
    .unwrap();
    let err = build_err(
        "ruby",
        &format!(
            r#"path => "{}" script_params => {{ "x" => "way" }}"#,
            raising.display()
        ),
    );
    assert!(
        err.contains("Error during register") && err.contains("no way"),
        "{err}"
    );

    let err = build_err("ruby", r#"path => "/nonexistent/script.rb""#);
    assert!(err.contains("cannot read script"), "{err}");
}

#[test]
fn a_script_returning_something_else_than_an_array_of_events_tags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad_result.rb");
    std::fs::write(
        &path,
        "def filter(event)\n  event.get('n') == 1 ? nil : [event, 'text']\nend\n",
    )
    .unwrap();
    let r = ruby(&format!(
        r#"path => "{}" tag_with_exception_message => true"#,
        path.display()
    ));
    for n in [1, 2] {
        let out = run(&[&*r], ev(&[("n", Value::Int(n))]));
        assert_eq!(out.len(), 1, "the original passes on");
        let t = tags(&out[0]);
        assert!(t.contains(&"_rubyexception".to_string()), "{t:?}");
        let expected = if n == 1 {
            "did not return an array"
        } else {
            "returned a non event object"
        };
        assert!(t.iter().any(|t| t.contains(expected)), "{t:?}");
    }
}

// ---- options ----

#[test]
fn code_or_path_is_required_and_code_errors_fail_the_load() {
    let err = build_err("ruby", "");
    assert!(err.contains("either an inline script"), "{err}");
    let err = build_err("ruby", r#"code => "1" path => "x.rb""#);
    assert!(err.contains("either an inline script"), "{err}");
    let err = build_err("ruby", r##"code => "event.set('a', ""##);
    assert!(
        err.contains("SyntaxError") && err.contains("(ruby filter code)"),
        "{err}"
    );
    let err = build_err("ruby", r#"init => "require 'no_such_library'" code => "1""#);
    assert!(err.contains("LoadError"), "{err}");
    // The position of the plugin comes with the error.
    assert!(err.contains("options:1:"), "{err}");
    let err = build_err("ruby", r#"code => "1" timeout => -1"#);
    assert!(err.contains("timeout"), "{err}");
}

#[test]
fn tag_on_exception_and_tag_with_exception_message() {
    let r = ruby(
        r#"code => "raise ArgumentError, 'bad value'" tag_on_exception => "_oops" tag_with_exception_message => true"#,
    );
    let out = run(&[&*r], sample());
    assert_eq!(tags(&out[0]), ["_oops: bad value", "_oops"]);
}

#[test]
fn init_state_is_the_codes_and_lasts_across_events_and_batches() {
    let r = ruby(
        r#"init => "@count = 0
                    def label(n); 'event-' + n.to_s; end"
           code => "@count += 1; event.set('label', label(@count))""#,
    );
    let mut batch: Vec<Event> = (0..3).map(|_| sample()).collect();
    r.filter(&mut batch);
    r.filter(&mut batch);
    let labels: Vec<_> = batch.iter().filter_map(|e| e.get_str("label")).collect();
    assert_eq!(labels, ["event-4", "event-5", "event-6"]);
}

#[test]
fn a_script_that_never_ends_is_interrupted_and_the_event_tagged() {
    let r = ruby(
        r#"code => "if event.get('loop') then loop { } end; event.set('done', true)" timeout => 0.3 tag_with_exception_message => true"#,
    );
    let started = Instant::now();
    let mut batch = vec![
        ev(&[("loop", Value::Bool(true))]),
        ev(&[("loop", Value::Bool(false))]),
    ];
    r.filter(&mut batch);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(batch.len(), 2);
    let t = tags(&batch[0]);
    assert!(t.contains(&"_rubyexception".to_string()), "{t:?}");
    assert!(t.iter().any(|t| t.contains("timeout")), "{t:?}");
    assert_eq!(get(&batch[1], "done"), Some(&Value::Bool(true)));
    assert!(tags(&batch[1]).is_empty());
}

#[test]
fn a_script_rescuing_everything_is_still_bounded_and_sleep_is_interrupted() {
    // `rescue => e` does not catch the timeout; a blocking sleep is woken.
    let r = ruby(
        r#"code => "begin; sleep 30; rescue => e; event.set('swallowed', true); end" timeout => 0.3"#,
    );
    let started = Instant::now();
    let out = run(&[&*r], sample());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(tags(&out[0]), ["_rubyexception"]);
    assert_eq!(get(&out[0], "swallowed"), None);
}

// ---- the Event API ----

#[test]
fn event_api_get_set_remove_include_tag_cancel() {
    let r = ruby(
        r#"code => "
          event.set('[a][b]', event.get('[src][n]') + 1)
          event.set('copy', event.get('src'))
          event.set('removed', event.remove('[src][gone]'))
          event.set('has', [event.include?('[src][n]'), event.include?('[src][gone]'), event.include?('nope')])
          event.tag('seen'); event.tag('seen')
          event.set('[@metadata][secret]', 'm')
          event.set('meta', event.get('[@metadata][secret]'))
          event.set('meta_all', event.get('@metadata'))
          event.set('types', [1, 2.5, nil, true, :sym, 'x'.encode('ISO-8859-1')])
          event.set('was_cancelled', event.cancelled?)
          h = event.get('src'); h['n'] = 100
          event.set('fmt', event.sprintf('%{[src][n]}-%{+yyyy}'))
        ""#,
    );
    let mut e = ev(&[("[src][n]", Value::Int(41)), ("[src][gone]", s("bye"))]);
    e.set_timestamp(Timestamp::from_unix(1_700_000_000, 0).unwrap());
    let out = run(&[&*r], e);
    let e = &out[0];
    assert_eq!(get(e, "[a][b]"), Some(&Value::Int(42)));
    assert_eq!(get(e, "removed"), Some(&s("bye")));
    assert_eq!(get(e, "[src][gone]"), None);
    assert_eq!(
        get(e, "has"),
        Some(&Value::Array(vec![
            Value::Bool(true),
            Value::Bool(false),
            Value::Bool(false)
        ]))
    );
    assert_eq!(tags(e), ["seen"]);
    assert_eq!(get(e, "meta"), Some(&s("m")));
    assert_eq!(get(e, "[meta_all][secret]"), Some(&s("m")));
    assert_eq!(get(e, "[@metadata][secret]"), Some(&s("m")));
    assert_eq!(
        get(e, "types"),
        Some(&Value::Array(vec![
            Value::Int(1),
            Value::Float(2.5),
            Value::Null,
            Value::Bool(true),
            s("sym"),
            s("x"),
        ]))
    );
    assert_eq!(get(e, "was_cancelled"), Some(&Value::Bool(false)));
    assert_eq!(
        get(e, "[src][n]"),
        Some(&Value::Int(41)),
        "a hash from get is a copy"
    );
    assert_eq!(get(e, "fmt"), Some(&s("41-2023")));
    assert_eq!(get(e, "[copy][n]"), Some(&Value::Int(41)));
}

#[test]
fn event_api_errors_are_exceptions_not_crashes() {
    let r = ruby(
        r#"code => "
          case event.get('case')
          when 1 then event.set('[bad', 1)
          when 2 then event.set('x', Object.new)
          when 3 then h = {}; h['self'] = h; event.set('x', h)
          when 4 then event.set('[message][inner]', 1)
          when 5 then event.timestamp = 'not a timestamp'
          end
        " tag_with_exception_message => true"#,
    );
    for (case, expect) in [
        (1, "_rubyexception: "),
        (2, "cannot store a Object"),
        (3, "nested deeper"),
        (4, "not a hash"),
        (5, "LogStash::Timestamp"),
    ] {
        let out = run(
            &[&*r],
            ev(&[("case", Value::Int(case)), ("message", s("m"))]),
        );
        let t = tags(&out[0]);
        assert!(t.iter().any(|t| t.contains(expect)), "case {case}: {t:?}");
        assert_eq!(out[0].get_str("message"), Some("m"));
    }
}

#[test]
fn new_events_from_hashes_and_the_timestamp_api() {
    let r = ruby(
        r#"code => "
          ts = event.timestamp
          later = ts + 90
          e = LogStash::Event.new('message' => 'made', '@timestamp' => '2020-01-02T03:04:05.678Z',
                                  '@metadata' => { 'k' => 'v' })
          e.set('from_meta', e.get('[@metadata][k]'))
          e.set('diff', later - ts)
          e.set('later', later)
          e.set('iso', ts.to_iso8601)
          e.set('epoch', ts.to_i)
          e.set('float', ts.to_f)
          e.set('year', ts.time.year)
          e.set('cmp', later > ts)
          e.set('at', LogStash::Timestamp.at(0))
          e.set('parsed', LogStash::Timestamp.parse_iso8601('2021-05-06T07:08:09Z'))
          e.set('from_time', Time.at(1, 500, :millisecond))
          e.set('json', later.to_json)
          new_event_block.call(e)
        ""#,
    );
    let mut orig = sample();
    orig.set_timestamp(Timestamp::from_unix(1_600_000_000, 250_000_000).unwrap());
    let out = run(&[&*r], orig);
    assert_eq!(out.len(), 2);
    let e = &out[1];
    assert_eq!(e.get_str("message"), Some("made"));
    assert_eq!(
        e.timestamp().unwrap().to_iso8601(),
        "2020-01-02T03:04:05.678Z"
    );
    assert_eq!(get(e, "from_meta"), Some(&s("v")));
    assert_eq!(get(e, "[@metadata][k]"), Some(&s("v")));
    assert_eq!(get(e, "diff"), Some(&Value::Float(90.0)));
    assert_eq!(
        get(e, "later"),
        Some(&Value::Timestamp(
            Timestamp::from_unix(1_600_000_090, 250_000_000).unwrap()
        ))
    );
    assert_eq!(get(e, "iso"), Some(&s("2020-09-13T12:26:40.250Z")));
    assert_eq!(get(e, "epoch"), Some(&Value::Int(1_600_000_000)));
    assert_eq!(get(e, "float"), Some(&Value::Float(1_600_000_000.25)));
    assert_eq!(get(e, "year"), Some(&Value::Int(2020)));
    assert_eq!(get(e, "cmp"), Some(&Value::Bool(true)));
    assert_eq!(
        get(e, "at"),
        Some(&Value::Timestamp(Timestamp::from_unix(0, 0).unwrap()))
    );
    assert_eq!(
        get(e, "parsed"),
        Some(&Value::Timestamp(
            Timestamp::from_unix(1_620_284_889, 0).unwrap()
        ))
    );
    assert_eq!(
        get(e, "from_time"),
        Some(&Value::Timestamp(
            Timestamp::from_unix(1, 500_000_000).unwrap()
        ))
    );
    assert_eq!(get(e, "json"), Some(&s("\"2020-09-13T12:28:10.250Z\"")));
}

#[test]
fn a_kept_event_cannot_be_used_after_it_left_the_filter() {
    let r = ruby(
        r#"code => "
          if @last
            begin
              @last.get('message')
              event.set('stale', 'readable')
            rescue => e
              event.set('stale', e.message)
            end
          end
          @last = event
        ""#,
    );
    let _ = run(&[&*r], sample());
    let out = run(&[&*r], sample());
    let stale = out[0].get_str("stale").unwrap();
    assert!(stale.contains("has left the ruby filter"), "{stale}");
}

#[test]
fn the_logger_and_the_standard_library_are_there() {
    let r = ruby(
        r#"init => "require 'digest'; require 'base64'; require 'securerandom'; require 'set'"
           code => "
             @logger.debug('computing', field: 'message')
             logger.info? 
             event.set('md5', Digest::MD5.hexdigest(event.get('message')))
             event.set('sha256', Digest::SHA256.hexdigest(event.get('message')))
             event.set('b64', Base64.strict_encode64(event.get('message')))
             event.set('parsed', JSON.parse({ 'a' => [1, 2] }.to_json))
             event.set('uuid_len', SecureRandom.uuid.size)
             event.set('iso', Time.parse('2001-02-03 04:05:06 UTC').iso8601)
           ""#,
    );
    let out = run(&[&*r], sample());
    let e = &out[0];
    assert!(tags(e).is_empty(), "{:?}", tags(e));
    assert_eq!(get(e, "md5"), Some(&s("5eb63bbbe01eeed093cb22bb8f5acdc3")));
    assert_eq!(
        get(e, "sha256"),
        Some(&s(
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        ))
    );
    assert_eq!(get(e, "b64"), Some(&s("aGVsbG8gd29ybGQ=")));
    assert_eq!(
        get(e, "[parsed][a]"),
        Some(&Value::Array(vec![Value::Int(1), Value::Int(2)]))
    );
    assert_eq!(get(e, "uuid_len"), Some(&Value::Int(36)));
    assert_eq!(get(e, "iso"), Some(&s("2001-02-03T04:05:06Z")));
}

// ---- snippets typical of public configs ----

#[test]
fn snippet_timestamp_arithmetic() {
    // Lag between the event's time and a time field, and a local date for an index.
    let r = ruby(
        r#"code => "
          received = Time.iso8601(event.get('received_at'))
          event.set('lag_seconds', (received - event.get('@timestamp').time).round(3))
          event.set('[@metadata][index_day]', event.get('@timestamp').time.getlocal('+09:00').strftime('%Y.%m.%d'))
          event.set('epoch_ms', (event.get('@timestamp').to_f * 1000).to_i)
          event.set('@timestamp', LogStash::Timestamp.new(received))
        ""#,
    );
    let mut e = ev(&[("received_at", s("2024-03-01T00:00:02.500Z"))]);
    e.set_timestamp(Timestamp::parse_iso8601("2024-02-29T23:59:59Z").unwrap());
    let out = run(&[&*r], e);
    let e = &out[0];
    assert!(tags(e).is_empty(), "{:?}", tags(e));
    assert_eq!(get(e, "lag_seconds"), Some(&Value::Float(3.5)));
    assert_eq!(get(e, "[@metadata][index_day]"), Some(&s("2024.03.01")));
    assert_eq!(get(e, "epoch_ms"), Some(&Value::Int(1_709_251_199_000)));
    assert_eq!(
        e.timestamp().unwrap().to_iso8601(),
        "2024-03-01T00:00:02.500Z"
    );
}

#[test]
fn snippet_hash_walking_and_flattening() {
    let r = ruby(
        r#"init => "
             def flatten(prefix, value, out)
               case value
               when Hash then value.each { |k, v| flatten(prefix.empty? ? k : prefix + '.' + k, v, out) }
               when Array then value.each_with_index { |v, i| flatten(prefix + '.' + i.to_s, v, out) }
               else out[prefix] = value
               end
               out
             end"
           code => "
             event.set('flat', flatten('', event.get('doc'), {}))
             event.remove('doc')
             event.to_hash.each { |k, v| event.remove(k) if v.nil? || v == '' }
           ""#,
    );
    let mut e = Event::at(Timestamp::now());
    let doc: serde_json::Value = serde_json::json!({
        "user": {"name": "ann", "roles": ["a", "b"]},
        "n": 1
    });
    let doc: Value = serde_json::from_value(doc).unwrap();
    e.insert(&FieldRef::parse("doc").unwrap(), doc);
    e.insert(&FieldRef::parse("empty").unwrap(), s(""));
    e.insert(&FieldRef::parse("null").unwrap(), Value::Null);
    let out = run(&[&*r], e);
    let e = &out[0];
    assert_eq!(get(e, "[flat][user.name]"), Some(&s("ann")));
    assert_eq!(get(e, "[flat][user.roles.1]"), Some(&s("b")));
    assert_eq!(get(e, "[flat][n]"), Some(&Value::Int(1)));
    assert_eq!(get(e, "doc"), None);
    assert_eq!(get(e, "empty"), None);
    assert_eq!(get(e, "null"), None);
}

#[test]
fn snippet_computed_fields() {
    let r = ruby(
        r#"code => "
          bytes = event.get('[http][bytes]').to_i
          event.set('[http][kb]', (bytes / 1024.0).round(2))
          event.set('[http][slow]', event.get('[http][ms]').to_f > 500)
          event.set('user_agent_short', event.get('ua').to_s.split('/').first.downcase)
          event.set('status_class', event.get('[http][status]').to_s[0] + 'xx')
        ""#,
    );
    let out = run(
        &[&*r],
        ev(&[
            ("[http][bytes]", s("2048")),
            ("[http][ms]", Value::Int(731)),
            ("[http][status]", Value::Int(404)),
            ("ua", s("Mozilla/5.0")),
        ]),
    );
    let e = &out[0];
    assert_eq!(get(e, "[http][kb]"), Some(&Value::Float(2.0)));
    assert_eq!(get(e, "[http][slow]"), Some(&Value::Bool(true)));
    assert_eq!(get(e, "user_agent_short"), Some(&s("mozilla")));
    assert_eq!(get(e, "status_class"), Some(&s("4xx")));
}

#[test]
fn snippet_splitting_one_event_into_many() {
    let r = ruby(
        r#"code => "
          items = event.get('items')
          if items.is_a?(Array)
            items.each do |item|
              e = event.clone
              e.remove('items')
              e.set('item', item)
              new_event_block.call(e)
            end
            event.cancel
          end
        ""#,
    );
    let items = Value::Array(vec![s("a"), s("b"), s("c")]);
    let mut batch = vec![
        ev(&[("items", items), ("id", Value::Int(1))]),
        ev(&[("id", Value::Int(2))]),
    ];
    r.filter(&mut batch);
    let got: Vec<_> = batch
        .iter()
        .map(|e| (get(e, "id").cloned(), e.get_str("item").map(str::to_string)))
        .collect();
    assert_eq!(
        got,
        [
            (Some(Value::Int(1)), Some("a".to_string())),
            (Some(Value::Int(1)), Some("b".to_string())),
            (Some(Value::Int(1)), Some("c".to_string())),
            (Some(Value::Int(2)), None),
        ]
    );
}

#[test]
fn many_filters_and_threads_share_the_one_vm() {
    let a = std::sync::Arc::new(ruby(r#"code => "event.set('a', event.get('n') * 2)""#));
    let b = std::sync::Arc::new(ruby(r#"code => "event.set('b', event.get('a') + 1)""#));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (a, b) = (a.clone(), b.clone());
            std::thread::spawn(move || {
                for round in 0..50 {
                    let mut batch: Vec<Event> = (0..20)
                        .map(|i| ev(&[("n", Value::Int(t * 10_000 + round * 100 + i))]))
                        .collect();
                    a.filter(&mut batch);
                    b.filter(&mut batch);
                    for e in &batch {
                        let Some(Value::Int(n)) = get(e, "n") else {
                            panic!("n lost")
                        };
                        assert_eq!(get(e, "b"), Some(&Value::Int(n * 2 + 1)));
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

// ---- the binary ----

#[test]
fn the_binary_runs_a_ruby_filter_and_still_stops_on_signals() {
    use std::io::Write;
    let config = r#"input { stdin {} } filter { ruby { code => "event.set('len', event.get('message').size)" } } output { stdout { codec => json_lines } }"#;
    let out = common::run(&["-e", config], b"abc\nhello\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lens: Vec<i64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["len"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let mut sorted = lens.clone();
    sorted.sort();
    assert_eq!(sorted, [3, 5]);

    // Ruby takes SIGTERM, SIGINT, SIGHUP and more for itself when nobody holds them:
    // with a ruby filter loaded, TERM and INT must still drain and exit, and HUP
    // (which Sluice leaves alone) must still end the process as it does without Ruby.
    for signal in ["TERM", "INT", "HUP"] {
        let mut child = common::spawn({
            let mut c = common::sluice();
            c.args(["-w", "1", "-e", config]);
            c
        });
        let mut stdin = child.0.stdin.take().unwrap();
        stdin.write_all(b"one\n").unwrap();
        stdin.flush().unwrap();
        let mut stdout = child.0.stdout.take().unwrap();
        let mut first = [0u8; 1];
        std::io::Read::read_exact(&mut stdout, &mut first).expect("one event came through");
        let kill = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "SIG{signal} did not stop sluice with a ruby filter; its signal state per thread:\n{}",
                signal_state(child.0.id())
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        if signal == "HUP" {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(1), "SIGHUP: exit status {status}");
        } else {
            assert!(status.success(), "SIG{signal}: exit status {status}");
        }
        drop(stdin);
    }
}

#[test]
fn a_pipeline_without_a_ruby_filter_never_starts_ruby() {
    use std::io::Write;
    let threads = |config: &str| -> Vec<String> {
        let mut child = common::spawn({
            let mut c = common::sluice();
            c.args(["-w", "1", "-e", config]);
            c
        });
        let mut stdin = child.0.stdin.take().unwrap();
        stdin.write_all(b"one\n").unwrap();
        stdin.flush().unwrap();
        let mut stdout = child.0.stdout.take().unwrap();
        let mut first = [0u8; 1];
        std::io::Read::read_exact(&mut stdout, &mut first).expect("one event came through");
        let task_dir = format!("/proc/{}/task", child.0.id());
        std::fs::read_dir(task_dir)
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|n| n.trim().to_string())
            .collect()
    };
    let plain = threads("input { stdin {} } filter { mutate { add_field => { \"a\" => \"b\" } } } output { stdout {} }");
    assert!(
        !plain.iter().any(|n| n.starts_with("sluice-ruby")),
        "{plain:?}"
    );
    // The same check sees the VM thread when there is a ruby filter.
    let with_ruby =
        threads("input { stdin {} } filter { ruby { code => \"1\" } } output { stdout {} }");
    assert!(
        with_ruby.iter().any(|n| n == "sluice-ruby"),
        "{with_ruby:?}"
    );
}

#[test]
fn each_distinct_exception_message_is_logged_once() {
    let config = r#"input { stdin {} } filter { ruby { code => "raise 'boom ' + (event.get('message').size % 2).to_s" } } output { stdout { codec => json_lines } }"#;
    let out = common::run(
        &["-w", "1", "-e", config],
        b"a\nbb\nccc\ndddd\neeeee\nffffff\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(events, 6, "every event passes on");
    let log = String::from_utf8_lossy(&out.stderr);
    let logged = |m: &str| log.lines().filter(|l| l.contains(m)).count();
    assert_eq!(logged("Ruby exception occurred: boom 1"), 1, "{log}");
    assert_eq!(logged("Ruby exception occurred: boom 0"), 1, "{log}");
}

/// The caught, ignored, blocked and pending signal masks of each thread of `pid`, to
/// see why a signal did not act.
fn signal_state(pid: u32) -> String {
    let mut out = String::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let pick: Vec<&str> = status
            .lines()
            .filter(|l| {
                [
                    "Name:", "SigPnd:", "ShdPnd:", "SigBlk:", "SigIgn:", "SigCgt:",
                ]
                .iter()
                .any(|k| l.starts_with(k))
            })
            .collect();
        out.push_str(&pick.join(" "));
        out.push('\n');
    }
    out
}
