//! Cases of the Logstash plugin's spec suite (logstash-codec-multiline,
//! spec/codecs/multiline_spec.rb), transcribed, and stack traces.

use super::*;

fn codec(body: &str) -> Multiline {
    let mut opts = Options::from_text("multiline", "codec", body).unwrap();
    let spec = MultilineSpec::build(&mut opts).unwrap();
    opts.finish().unwrap();
    Arc::new(spec).stream()
}

fn build_error(body: &str) -> String {
    let mut opts = Options::from_text("multiline", "codec", body).unwrap();
    match MultilineSpec::build(&mut opts) {
        Ok(_) => panic!("`{body}` was accepted"),
        Err(e) => e.to_string(),
    }
}

/// Feeds `lines`, then flushes (as the end of the stream does).
fn decode_all(m: &mut Multiline, lines: &[&[u8]]) -> Vec<Event> {
    let mut out = Vec::new();
    for l in lines {
        m.line(l, false, Timestamp::now(), &mut out);
    }
    m.flush(Timestamp::now(), &mut out);
    out
}

fn messages(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e.get_str("message").unwrap())
        .collect()
}

#[test]
fn space_indented_lines_join_the_previous_one_and_are_tagged() {
    let mut m = codec(r#"pattern => "^\s" what => "previous""#);
    let out = decode_all(
        &mut m,
        &[b"hello world", b"   second line", b"another first line"],
    );
    assert_eq!(
        messages(&out),
        ["hello world\n   second line", "another first line"]
    );
    assert!(out[0].has_tag("multiline"));
    assert!(!out[1].has_tag("multiline"));
}

#[test]
fn a_custom_multiline_tag() {
    let mut m = codec(r#"pattern => "^\s" what => "previous" multiline_tag => "hurray""#);
    let out = decode_all(
        &mut m,
        &[b"hello world", b"   second line", b"another first line"],
    );
    assert!(out[0].has_tag("hurray"));
    assert!(!out[1].has_tag("hurray"));
}

#[test]
fn lines_of_non_digits_join_the_previous_one() {
    let mut m = codec(r#"pattern => '\D' what => "previous""#);
    let out = decode_all(
        &mut m,
        &[b"1234567890", b"A234567890", b"B234567890", b"0987654321"],
    );
    assert_eq!(
        messages(&out),
        ["1234567890\nA234567890\nB234567890", "0987654321"]
    );
}

#[test]
fn grok_patterns_in_the_pattern() {
    let mut m = codec(r#"pattern => "^%{NUMBER} %{TIME}" negate => true what => "previous""#);
    let lines: [&[u8]; 3] = [b"120913 12:04:33 first line", b"second line", b"third line"];
    let out = decode_all(&mut m, &lines);
    assert_eq!(
        messages(&out),
        ["120913 12:04:33 first line\nsecond line\nthird line"]
    );
}

#[test]
fn charsets() {
    let mut m = codec(r#"pattern => "^\s" what => "previous""#);
    let out = decode_all(&mut m, &["foobar".as_bytes(), "κόσμε".as_bytes()]);
    assert_eq!(messages(&out), ["foobar", "κόσμε"]);

    let mut m = codec(r#"pattern => "^\s" what => "previous" charset => "ISO-8859-1""#);
    let out = decode_all(&mut m, &[b"foobar", b"\xE0 Montr\xE9al"]);
    assert_eq!(messages(&out), ["foobar", "à Montréal"]);

    let mut m = codec(r#"pattern => "^\s" what => "previous" charset => "ASCII-8BIT""#);
    let out = decode_all(
        &mut m,
        &[
            b"\xE0 Montr\xE9al",
            b"\xCE\xBA\xCF\x8C\xCF\x83\xCE\xBC\xCE\xB5",
        ],
    );
    assert_eq!(
        messages(&out),
        ["\u{fffd} Montr\u{fffd}al", &"\u{fffd}".repeat(10)]
    );

    assert!(
        build_error(r#"pattern => "x" what => "next" charset => "KOI8-Z""#).contains("charset")
    );
}

/// Lines of "- Sample event" that all join the first: the caps cut them into events,
/// and no line is lost.
fn unclosed(body: &str, n: usize) -> Vec<Event> {
    let mut m = codec(body);
    let lines: Vec<&[u8]> = std::iter::repeat_n(&b"- Sample event"[..], n).collect();
    decode_all(&mut m, &lines)
}

fn line_count(events: &[Event]) -> usize {
    events
        .iter()
        .map(|e| e.get_str("message").unwrap().split('\n').count())
        .sum()
}

#[test]
fn max_lines_cuts_the_event_tags_it_and_keeps_every_line() {
    for (n, max) in [(300, 10), (1000, 100), (537, 37)] {
        let out = unclosed(
            &format!(
                r#"pattern => "^-" what => "previous" max_lines => {max} max_bytes => "2 mb""#
            ),
            n,
        );
        assert_eq!(line_count(&out), n);
        assert!(out[0].has_tag(MAX_LINES_REACHED), "{:?}", out[0]);
        // As in Logstash: a buffer is cut when it holds more than max_lines lines.
        assert_eq!(
            out[0].get_str("message").unwrap().split('\n').count(),
            max + 1
        );
    }
}

#[test]
fn max_bytes_cuts_the_event_tags_it_and_keeps_every_line() {
    for (n, max) in [(300, 30), (1000, 100), (450, 57)] {
        let out = unclosed(
            &format!(r#"pattern => "^-" what => "previous" max_lines => 20000 max_bytes => {max}"#),
            n,
        );
        assert_eq!(line_count(&out), n);
        assert!(out[0].has_tag(MAX_BYTES_REACHED), "{:?}", out[0]);
        assert!(!out[0].has_tag(MAX_LINES_REACHED));
    }
}

#[test]
fn what_next_joins_a_matching_line_to_the_following_ones() {
    let mut m = codec(r#"pattern => "\+\+$" what => "next""#);
    let out = decode_all(
        &mut m,
        &[
            b"hello world++",
            b"second line++",
            b"third line",
            b"Hallo Welt",
        ],
    );
    assert_eq!(
        messages(&out),
        ["hello world++\nsecond line++\nthird line", "Hallo Welt"]
    );
}

#[test]
fn pending_lines_wait_without_auto_flush_and_go_after_the_interval_with_it() {
    let lines: [&[u8]; 3] = [b"hello world", b" second line", b" third line"];
    let mut out = Vec::new();
    let mut m = codec(r#"pattern => "^\s" what => "previous""#);
    for l in lines {
        m.line(l, false, Timestamp::now(), &mut out);
    }
    assert_eq!(m.flush_due(), None);
    m.flush_if_due(Timestamp::now(), &mut out);
    assert!(out.is_empty());
    assert_eq!(m.pending_lines(), 3);

    let mut m = codec(r#"pattern => "^\s" what => "previous" auto_flush_interval => 0.05"#);
    for l in lines {
        m.line(l, false, Timestamp::now(), &mut out);
    }
    let due = m.flush_due().expect("a flush is due after the interval");
    m.flush_if_due(Timestamp::now(), &mut out);
    assert!(out.is_empty(), "flushed before the interval");
    std::thread::sleep(due.saturating_duration_since(Instant::now()) + Duration::from_millis(5));
    m.flush_if_due(Timestamp::now(), &mut out);
    assert_eq!(messages(&out), ["hello world\n second line\n third line"]);
    assert_eq!(m.pending_lines(), 0);
    assert_eq!(m.flush_due(), None);
}

/// A Java stack trace, with its `Caused by:` and `... N more` lines.
const JAVA: &str = "\
2026-11-21 10:30:00,123 ERROR [main] com.example.App - request failed
java.lang.IllegalStateException: connection pool exhausted
\tat com.example.db.Pool.acquire(Pool.java:88)
\tat com.example.db.Repository.find(Repository.java:41)
\tat com.example.App.main(App.java:12)
Caused by: java.net.SocketTimeoutException: connect timed out
\tat java.base/java.net.Socket.connect(Socket.java:633)
\t... 3 more
2026-11-21 10:30:01,004 INFO [main] com.example.App - retrying
2026-11-21 10:30:02,517 WARN [main] com.example.App - slow response
";

#[test]
fn a_java_stack_trace_stays_with_its_log_line() {
    // Logstash's documented recipe: what does not start with a timestamp belongs to
    // the line before.
    let mut m = codec(r#"pattern => "^%{TIMESTAMP_ISO8601} " negate => true what => "previous""#);
    let lines: Vec<&[u8]> = JAVA.lines().map(str::as_bytes).collect();
    let out = decode_all(&mut m, &lines);
    assert_eq!(out.len(), 3);
    let first = out[0].get_str("message").unwrap();
    assert!(first.starts_with("2026-11-21 10:30:00,123 ERROR"));
    assert!(first.ends_with("\t... 3 more"));
    assert_eq!(first.lines().count(), 8);
    assert!(out[0].has_tag("multiline"));
    assert_eq!(
        out[1].get_str("message"),
        Some("2026-11-21 10:30:01,004 INFO [main] com.example.App - retrying")
    );
    assert!(!out[2].has_tag("multiline"));

    // The other documented recipe: indented lines and `Caused by` join the previous.
    let mut m = codec(r#"pattern => "^(\s|Caused by:|java\.)" what => "previous""#);
    let out = decode_all(&mut m, &lines);
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].get_str("message").unwrap().lines().count(), 8);
}

#[test]
fn a_truncated_line_tags_its_event() {
    let mut m = codec(r#"pattern => "^\s" what => "previous""#);
    let mut out = Vec::new();
    m.line(b"head", false, Timestamp::now(), &mut out);
    m.line(b" cut", true, Timestamp::now(), &mut out);
    m.line(b"next", false, Timestamp::now(), &mut out);
    m.flush(Timestamp::now(), &mut out);
    assert!(out[0].has_tag(crate::codecs::line::LINE_TOO_LONG));
    assert!(!out[1].has_tag(crate::codecs::line::LINE_TOO_LONG));
}

#[test]
fn bad_options_are_refused_with_the_option_named() {
    assert!(build_error(r#"what => "previous""#).contains("pattern"));
    assert!(build_error(r#"pattern => "x""#).contains("what"));
    assert!(build_error(r#"pattern => "x" what => "before""#).contains("previous"));
    assert!(build_error(r#"pattern => "%{NO_SUCH_PATTERN}" what => "next""#).contains("pattern"));
    assert!(
        build_error(r#"pattern => "x" what => "next" auto_flush_interval => -1"#)
            .contains("auto_flush_interval")
    );
    assert!(
        build_error(r#"pattern => "x" what => "next" max_bytes => "lots""#).contains("max_bytes")
    );
}
