//! End-to-end tests of the `sluice` binary: configuration checking, the stdin → stdout
//! path with real generated logs, hostile input, conditionals, drain on EOF and on
//! SIGTERM, and back-pressure from a slow pipeline to a tcp client.

mod common;

use common::{free_port, gunzip, run, sluice, spawn, wait_for_port};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;

fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad output line {l}: {e}")))
        .collect()
}

fn tags(e: &serde_json::Value) -> Vec<&str> {
    e["tags"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str()).collect())
        .unwrap_or_default()
}

#[test]
fn bundled_pipelines_pass_the_config_test() {
    let dir = format!("{}/pipelines", env!("CARGO_MANIFEST_DIR"));
    let out = sluice().args(["-t", "-f", &dir]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("Configuration OK"),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_config_error_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.conf");
    std::fs::write(
        &path,
        "input {\n  stdin {}\n  tcp { port => }\n}\noutput { stdout {} }\n",
    )
    .unwrap();
    let out = sluice()
        .args(["-t", "-f", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.conf:3:"), "stderr: {stderr}");
    assert!(
        stderr.contains('^'),
        "the message shows the line with a caret: {stderr}"
    );
}

#[test]
fn unknown_plugins_and_options_fail_at_load_time() {
    for (config, expected) in [
        (
            "input { stdin {} } output { stdoot {} }",
            "unknown output plugin `stdoot`",
        ),
        (
            "input { stdin { colour => 1 } } output { stdout {} }",
            "unknown option `colour`",
        ),
        (
            "input { tcp { port => \"many\" } } output { stdout {} }",
            "expected an integer",
        ),
        (
            "input { stdin {} } filter { json {} } output { stdout {} }",
            "requires option `source`",
        ),
        (
            "input { stdin {} } output { stdout { codec => yaml } }",
            "unknown codec `yaml`",
        ),
    ] {
        let out = sluice().args(["-t", "-e", config]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{config}");
        assert!(stderr.contains(expected), "{config}: {stderr}");
        assert!(stderr.contains("config string:1:"), "{config}: {stderr}");
    }
}

const ENRICH: &str = r#"input { stdin { codec => json_lines } }
filter {
  correlation {}
  mutate { add_field => { "environment" => "production" } }
  if [level] == "ERROR" { mutate { add_tag => ["error"] } }
}
output { stdout { codec => json_lines } }"#;

#[test]
fn twenty_thousand_generated_events_are_enriched_and_none_is_lost() {
    let input = gunzip("tests/data/json-20000.log.gz");
    let originals: Vec<serde_json::Value> = json_lines(&input);
    assert_eq!(originals.len(), 20_000);
    let out = run(&["-e", ENRICH], &input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = json_lines(&out.stdout);
    assert_eq!(events.len(), 20_000);

    let by_message_and_time: std::collections::HashMap<(String, String), &serde_json::Value> =
        originals
            .iter()
            .map(|o| {
                let key = (o["timestamp"].to_string(), o["message"].to_string());
                (key, o)
            })
            .collect();
    let mut generated = HashSet::new();
    for e in &events {
        assert_eq!(e["environment"], "production");
        assert_eq!(tags(e).contains(&"error"), e["level"] == "ERROR", "{e}");
        let id = e["correlation_id"]
            .as_str()
            .expect("every event has a correlation_id");
        let original = by_message_and_time[&(e["timestamp"].to_string(), e["message"].to_string())];
        match original["correlation_id"].as_str() {
            Some(kept) => assert_eq!(id, kept),
            None => {
                assert!(uuid::Uuid::parse_str(id).is_ok(), "{id} is a UUID");
                assert!(generated.insert(id.to_string()), "{id} generated twice");
            }
        }
    }
    assert!(
        !generated.is_empty(),
        "the sample has events without a correlation id"
    );
}

#[test]
fn hostile_input_loses_no_line_and_never_panics() {
    let input = gunzip("tests/data/bad-300.log.gz");
    let mut lines = input.split(|b| *b == b'\n').count();
    if input.ends_with(b"\n") {
        lines -= 1;
    }
    for codec in ["json_lines", "line"] {
        let config = format!(
            "input {{ stdin {{ codec => {codec} }} }} filter {{ correlation {{}} }} output {{ stdout {{ codec => json_lines }} }}"
        );
        let out = run(&["-e", &config], &input);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let events = json_lines(&out.stdout);
        assert_eq!(events.len(), lines, "codec {codec}: one event per line");
        if codec == "json_lines" {
            assert!(events
                .iter()
                .any(|e| tags(e).contains(&"_jsonparsefailure")));
        }
    }
}

#[test]
fn conditionals_route_events() {
    let config = r#"
input { stdin { codec => json_lines } }
filter {
  if [status] >= 500 and [method] != "HEAD" { mutate { add_tag => ["server_error"] } }
  else if [status] in [404, 410] or [path] =~ /^\/gone/ { mutate { add_tag => ["gone"] } }
  else if ![status] { mutate { add_tag => ["no_status"] } }
  else { mutate { add_tag => ["ok"] } }
  if "admin" in [path] xor [user] == "bob" { mutate { add_tag => ["odd"] } }
  if [user] not in ["alice", "bob"] { mutate { add_field => { "guest" => "true" } } }
  if [method] == "DELETE" { drop {} }
}
output {
  if "server_error" in [tags] { stdout { codec => line { format => "E %{path}" } } }
  else { stdout { codec => line { format => "N %{path} %{tags} %{guest}" } } }
}"#;
    let input = br#"{"status":503,"method":"GET","path":"/a","user":"alice"}
{"status":503,"method":"HEAD","path":"/b","user":"bob"}
{"status":404,"method":"GET","path":"/c","user":"bob"}
{"status":200,"method":"GET","path":"/gone/d","user":"alice"}
{"method":"GET","path":"/admin/e"}
{"status":200,"method":"GET","path":"/f","user":"carol"}
{"status":200,"method":"DELETE","path":"/g","user":"alice"}
"#;
    let out = run(&["-w", "1", "-e", config], input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "E /a",
            "N /admin/e no_status,odd true",
            "N /b ok,odd %{guest}",
            "N /c gone,odd %{guest}",
            "N /f ok true",
            "N /gone/d gone %{guest}",
        ]
    );
}

#[test]
fn stdin_eof_drains_and_exits_zero() {
    let input: String = (0..5000).map(|i| format!("line {i}\n")).collect();
    let out = run(
        &[
            "-b",
            "7",
            "-w",
            "2",
            "-e",
            "input { stdin {} } output { stdout { codec => line } }",
        ],
        input.as_bytes(),
    );
    assert!(out.status.success());
    let got: HashSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(got.len(), 5000);
    assert!(got.contains("line 0") && got.contains("line 4999"));
}

#[test]
fn sigterm_drains_events_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let config = format!(
        "input {{ stdin {{}} }} filter {{ sleep {{ time => 0.01 every => 10 }} }} output {{ file {{ path => \"{}\" }} }}",
        path.display()
    );
    let mut child = spawn({
        let mut c = sluice();
        c.args(["-w", "1", "-b", "10", "-e", &config]);
        c
    });
    let mut stdin = child.0.stdin.take().unwrap();
    let input: String = (0..2000).map(|i| format!("event {i}\n")).collect();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    // 2000 events take about two seconds through the sleep filter; stop well before.
    std::thread::sleep(Duration::from_millis(500));
    let pid = child.0.id() as i32;
    assert_eq!(unsafe_free_kill(pid, "TERM"), 0);
    let status = child.0.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        written.lines().count(),
        2000,
        "every accepted event was drained"
    );
}

/// Sends a signal with the `kill` command, so the test needs no unsafe FFI.
fn unsafe_free_kill(pid: i32, signal: &str) -> i32 {
    std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .map(|s| s.code().unwrap_or(-1))
        .unwrap_or(-1)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_slow_pipeline_stalls_the_tcp_client_and_memory_stays_bounded() {
    let port = free_port();
    let config = format!(
        "input {{ tcp {{ host => \"127.0.0.1\" port => {port} }} }} filter {{ sleep {{ time => 0.05 }} }} output {{ null {{}} }}"
    );
    let child = spawn({
        let mut c = sluice();
        c.args([
            "-w",
            "1",
            "-b",
            "10",
            "--queue.max_events",
            "100",
            "-e",
            &config,
        ]);
        c
    });
    assert!(
        wait_for_port(port, Duration::from_secs(20)),
        "sluice did not listen"
    );
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let line = format!("{}\n", "x".repeat(1023));
    let chunk = line.repeat(1024); // 1 MiB of 1 KiB lines
                                   // Unthrottled, 256 MiB cross loopback in about a second; held back, the client
                                   // gets no further than the socket buffers and the small queue before its writes
                                   // stall. The loop ends on a stalled write or after 20 s, whichever comes first.
    let mut written = 0usize;
    let target = 256 * 1024 * 1024;
    let started = std::time::Instant::now();
    while written < target && started.elapsed() < Duration::from_secs(20) {
        match stream.write(chunk.as_bytes()) {
            Ok(n) => written += n,
            Err(_) => break,
        }
    }
    assert!(
        written < 64 * 1024 * 1024,
        "the client wrote {written} bytes: nothing pushed back"
    );
    let rss = rss_kib(child.0.id());
    assert!(
        rss > 0 && rss < 200 * 1024,
        "sluice RSS {rss} KiB while stalled"
    );
}

#[test]
fn a_directory_or_glob_concatenates_files_in_lexical_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("10-input.conf"), "input { stdin {} }\n").unwrap();
    std::fs::write(
        dir.path().join("20-filter.conf"),
        "filter { mutate { add_field => { \"step\" => \"one\" } } }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("30-filter.conf"),
        "filter { mutate { replace => { \"step\" => \"%{step}-two\" } } }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("40-output.conf"),
        "output { stdout { codec => line { format => \"%{message} %{step}\" } } }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("README"),
        "not a config: only *.conf match the glob\n",
    )
    .unwrap();
    let glob = format!("{}/*.conf", dir.path().display());
    for source in [dir.path().join("[0-9]*").display().to_string(), glob] {
        let out = run(&["-f", &source], b"hello\n");
        assert!(
            out.status.success(),
            "{source}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hello one-two\n",
            "{source}"
        );
    }
}

#[test]
fn environment_variables_and_escapes() {
    let config = r#"input { stdin {} }
filter { mutate { add_field => { "env" => "${SLUICE_TEST_ENV}" "region" => "${SLUICE_TEST_UNSET:eu-1}" "sep" => "a\tb" } } }
output { stdout { codec => json_lines } }"#;
    let run_with = |escapes: bool| {
        let mut cmd = sluice();
        cmd.env("SLUICE_TEST_ENV", "staging")
            .env_remove("SLUICE_TEST_UNSET");
        if escapes {
            cmd.arg("--config.support_escapes");
        }
        let out = cmd
            .args(["-e", config])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(b"x\n")?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_lines(&out.stdout).remove(0)
    };
    let plain = run_with(false);
    assert_eq!(plain["env"], "staging");
    assert_eq!(plain["region"], "eu-1");
    assert_eq!(plain["sep"], "a\\tb");
    assert_eq!(run_with(true)["sep"], "a\tb");

    let out = sluice()
        .env_remove("SLUICE_TEST_UNSET")
        .args([
            "-t",
            "-e",
            "input { tcp { port => \"${SLUICE_TEST_UNSET}\" } } output { null {} }",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SLUICE_TEST_UNSET"));
}

#[test]
fn tcp_serves_many_clients_and_cuts_over_long_lines() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let config = format!(
        "input {{ tcp {{ host => \"127.0.0.1\" port => {port} codec => json_lines max_line_bytes => 1024 }} }} output {{ file {{ path => \"{}\" }} }}",
        path.display()
    );
    let child = spawn({
        let mut c = sluice();
        c.args(["-e", &config]);
        c
    });
    assert!(
        wait_for_port(port, Duration::from_secs(20)),
        "sluice did not listen"
    );
    let clients: Vec<_> = (0..8)
        .map(|client| {
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                for i in 0..500 {
                    writeln!(s, "{{\"client\":{client},\"i\":{i}}}").unwrap();
                }
                if client == 0 {
                    writeln!(s, "{{\"big\":\"{}\"}}", "y".repeat(5000)).unwrap();
                    writeln!(s, "{{\"after\":true}}").unwrap();
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    // Wait for all 4002 events to be written (bounded), then stop sluice.
    let mut lines = Vec::new();
    for _ in 0..400 {
        lines = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        if lines.len() >= 4002 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(child);
    assert_eq!(lines.len(), 4002);
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let per_client: HashSet<(i64, i64)> = events
        .iter()
        .filter_map(|e| Some((e["client"].as_i64()?, e["i"].as_i64()?)))
        .collect();
    assert_eq!(
        per_client.len(),
        4000,
        "every line of every client arrived once"
    );
    let cut = events
        .iter()
        .find(|e| tags(e).contains(&"_linetoolong"))
        .expect("a cut line");
    assert!(cut["message"].as_str().unwrap().len() <= 1024);
    assert!(
        events.iter().any(|e| e["after"] == true),
        "the line after the long one survives"
    );
    assert!(events.iter().all(|e| e["host"] == "127.0.0.1"));
}

#[test]
fn a_closed_stdout_and_stderr_stop_sluice_instead_of_hanging() {
    // As in `sluice ... 2>&1 | head -1`: the reader leaves after one line.
    let (reader, writer) = std::io::pipe().unwrap();
    let mut child = sluice()
        .args([
            "-e",
            "input { generator { count => 0 } } output { stdout { codec => json_lines } }",
        ])
        .stdin(Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    let mut reader = reader;
    reader.read_exact(&mut first).unwrap();
    drop(reader);
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let status = status.expect("sluice kept running after its stdout and stderr closed");
    assert_ne!(status.code(), Some(101), "sluice panicked: {status}");
}
