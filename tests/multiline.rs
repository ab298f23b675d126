//! The `multiline` codec on stream inputs, against the sluice binary: lines are joined
//! per tcp connection (two clients interleaving never mix), pending lines go out after
//! `auto_flush_interval` while the client stays connected and when it leaves, and stdin's
//! pending lines are not lost when sluice is stopped with SIGTERM.

mod common;

use common::{free_port, sluice, wait_for_port};
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Kills sluice when the test ends, failed or not.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `message` of every event in the json_lines file at `path`.
fn messages(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["message"].as_str().map(str::to_string))
        .collect()
}

fn wait_for(path: &Path, what: &str, limit: Duration, done: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        let got = messages(path);
        if done(&got) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not seen within {limit:?}; got {got:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const CODEC: &str = r#"codec => multiline {
    pattern => "^%{TIMESTAMP_ISO8601} "
    negate => true
    what => "previous"
    auto_flush_interval => 1
}"#;

#[test]
fn lines_join_per_connection_and_pending_lines_are_flushed_by_time_and_at_close() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.log");
    let port = free_port();
    let config = format!(
        r#"input {{ tcp {{ host => "127.0.0.1" port => {port} {CODEC} }} }}
        output {{ file {{ path => "{}" codec => json_lines }} }}"#,
        out.display()
    );
    let _sluice = Running(
        sluice()
            .args(["-e", &config])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("cannot start sluice"),
    );
    assert!(
        wait_for_port(port, Duration::from_secs(30)),
        "sluice did not listen"
    );
    let mut a = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut b = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let send = |s: &mut TcpStream, text: &str| {
        s.write_all(text.as_bytes()).unwrap();
        s.flush().unwrap();
        // Lets sluice read each piece apart, so the two clients' lines interleave.
        std::thread::sleep(Duration::from_millis(30));
    };
    send(&mut a, "2026-11-21 10:00:00,000 ERROR a - failed\n");
    send(&mut b, "2026-11-21 10:00:00,001 ERROR b - failed\n");
    send(&mut a, "java.lang.IllegalStateException: a\n");
    send(&mut b, "Traceback (most recent call last):\n");
    send(&mut a, "\tat A.run(A.java:1)\n");
    send(&mut b, "  File \"b.py\", line 1, in <module>\n");
    send(&mut a, "2026-11-21 10:00:01,000 INFO a - next\n");
    send(&mut b, "ValueError: b\n");

    // Client a stays connected: its pending "next" line goes out after the interval.
    wait_for(
        &out,
        "a's auto-flushed line",
        Duration::from_secs(20),
        |m| {
            m.iter()
                .any(|m| m == "2026-11-21 10:00:01,000 INFO a - next")
        },
    );
    let got = messages(&out);
    assert!(
        got.contains(
            &"2026-11-21 10:00:00,000 ERROR a - failed\njava.lang.IllegalStateException: a\n\tat A.run(A.java:1)"
                .to_string()
        ),
        "a's trace not joined to its line: {got:#?}"
    );
    // b's event is pending too, flushed by time as well (b is still connected).
    wait_for(&out, "b's joined traceback", Duration::from_secs(20), |m| {
        m.iter().any(|m| {
            m == "2026-11-21 10:00:00,001 ERROR b - failed\nTraceback (most recent call last):\n  File \"b.py\", line 1, in <module>\nValueError: b"
        })
    });

    // A line without a sequel when the client leaves goes out at once (no auto flush
    // needed: the close flushes it).
    send(
        &mut b,
        "2026-11-21 10:00:02,000 INFO b - last\n  indented tail",
    );
    b.shutdown(Shutdown::Write).unwrap();
    wait_for(
        &out,
        "b's last line at close",
        Duration::from_secs(20),
        |m| {
            m.iter()
                .any(|m| m == "2026-11-21 10:00:02,000 INFO b - last\n  indented tail")
        },
    );
    drop(a);
    assert_eq!(messages(&out).len(), 4, "{:#?}", messages(&out));
}

#[test]
fn stdin_pending_lines_are_not_lost_at_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.log");
    // No auto flush: only the shutdown can flush the last event.
    let config = format!(
        r#"input {{ stdin {{ codec => multiline {{ pattern => "^\s" what => "previous" }} }} }}
        output {{ file {{ path => "{}" codec => json_lines }} }}"#,
        out.display()
    );
    let mut sluice = Running(
        sluice()
            .args(["-e", &config])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("cannot start sluice"),
    );
    let child = &mut sluice.0;
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"first\n  one\n  two\nsecond\n  three\n")
        .unwrap();
    stdin.flush().unwrap();
    wait_for(&out, "the first event", Duration::from_secs(30), |m| {
        m.iter().any(|m| m == "first\n  one\n  two")
    });
    // stdin stays open; "second" waits for more lines. SIGTERM must not lose it.
    std::thread::sleep(Duration::from_millis(300));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "sluice did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stdin);
    assert_eq!(
        messages(&out),
        ["first\n  one\n  two", "second\n  three"],
        "the pending event was lost at shutdown"
    );
}
