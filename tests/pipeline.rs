//! End-to-end tests of the `sluice` binary: configuration checking, the stdin → stdout
//! path with real generated logs, hostile input, conditionals, drain on EOF and on
//! SIGTERM, and back-pressure from a slow pipeline to a tcp client.

mod common;

use common::{free_port, gunzip, run, sluice, spawn, wait_for_port};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

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
    // The security pipeline takes its Sentinel settings from the environment, and a
    // variable without a default must be set (as Logstash requires).
    let out = sluice()
        .args(["-t", "-f", &dir])
        .env(
            "SENTINEL_DCE_ENDPOINT",
            "https://dce.example.ingest.monitor.azure.com",
        )
        .env("SENTINEL_DCR_ID", "dcr-0")
        .env("AZURE_TENANT_ID", "tenant")
        .env("AZURE_CLIENT_ID", "client")
        .env("AZURE_CLIENT_SECRET", "secret")
        .output()
        .unwrap();
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

/// Lines in `path`, waiting (up to `limit`) until there are at least `n`.
fn wait_for_lines(path: &std::path::Path, n: usize, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let lines = std::fs::read_to_string(path)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for the child to exit on its own; None if it is still running after `limit`.
fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_signal_stops_stdin_held_open_and_drains_every_event_in_flight() {
    // stdin stays open, as with a terminal or a pipe from a long-running producer: the
    // input never sees EOF, so only the signal can end the run.
    for signal in ["TERM", "INT"] {
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
        let input: String = (0..1000).map(|i| format!("event {i}\n")).collect();
        stdin.write_all(input.as_bytes()).unwrap();
        stdin.flush().unwrap();
        // About a second of work through the sleep filter: signal once it has begun.
        assert!(
            wait_for_lines(&path, 1, Duration::from_secs(20)) >= 1,
            "SIG{signal}: nothing came through"
        );
        assert_eq!(unsafe_free_kill(child.0.id() as i32, signal), 0);
        let status = wait_exit(&mut child.0, Duration::from_secs(15))
            .unwrap_or_else(|| panic!("SIG{signal} did not stop sluice while stdin was open"));
        assert!(status.success(), "SIG{signal}: exit status {status}");
        let written = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            written.lines().count(),
            1000,
            "SIG{signal}: every accepted event was drained"
        );
        drop(stdin);
    }
}

/// Starts `config` on one line of held-open stdin, signals once (the drain cannot
/// finish), then again: the second signal must end the process at once, exit 1.
fn second_signal_exits_at_once(config: &str) {
    let mut child = spawn({
        let mut c = sluice();
        c.args(["-w", "1", "-e", config]);
        c
    });
    let mut stdin = child.0.stdin.take().unwrap();
    stdin.write_all(b"held\n").unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let pid = child.0.id() as i32;
    assert_eq!(unsafe_free_kill(pid, "TERM"), 0);
    assert!(
        wait_exit(&mut child.0, Duration::from_millis(1500)).is_none(),
        "the first signal must drain, and the drain cannot finish"
    );
    assert_eq!(unsafe_free_kill(pid, "INT"), 0);
    let status = wait_exit(&mut child.0, Duration::from_secs(5))
        .expect("a second signal did not exit at once");
    assert_eq!(status.code(), Some(1), "exit status {status}");
    drop(stdin);
}

#[test]
fn a_second_signal_exits_at_once_while_an_output_cannot_deliver() {
    // Nothing listens on the port: the output retries for as long as it takes.
    let config = format!(
        "input {{ stdin {{}} }} output {{ elasticsearch {{ hosts => [\"127.0.0.1:{}\"] retry_initial_interval => 0.1 retry_max_interval => 0.5 }} }}",
        free_port()
    );
    second_signal_exits_at_once(&config);
}

#[test]
fn a_second_signal_exits_at_once_while_a_filter_blocks_a_worker() {
    // The one event sits in a minute-long sleep: the first signal's drain cannot finish.
    second_signal_exits_at_once(
        "input { stdin {} } filter { sleep { time => 60 } } output { null {} }",
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
    let status = wait_exit(&mut child, Duration::from_secs(30));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let status = status.expect("sluice kept running after its stdout and stderr closed");
    // Its output is gone for good: the events it could not write make the run a failure,
    // reported with exit code 1 (not a panic's 101, not death by SIGPIPE).
    assert_eq!(status.code(), Some(1), "exit status {status}");
}

fn stdout_text(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_json_filter_parses_into_the_event_or_a_target_and_tags_failures() {
    let config = r#"input { stdin {} }
filter {
  if [message] =~ /^S/ { json { source => "message" skip_on_invalid_json => true } }
  else if [message] =~ /^C/ { json { source => "message" tag_on_failure => ["bad_json"] } }
  else { json { source => "message" } }
}
output { stdout { codec => json_lines } }"#;
    let input = b"{\"a\":1,\"b\":{\"c\":[1,2]}}\nnot json\nSkip me\nCut {\n{\"@timestamp\":\"yesterday\",\"k\":1}\n{\"@timestamp\":\"2026-01-02T03:04:05.678Z\",\"k\":2}\n";
    let out = run(&["-w", "1", "-e", config], input);
    let events = json_lines(stdout_text(&out).as_bytes());
    assert_eq!(events.len(), 6);
    let by_message = |prefix: &str| {
        events
            .iter()
            .find(|e| e["message"].as_str().unwrap_or("").starts_with(prefix))
            .unwrap_or_else(|| panic!("no event for {prefix}: {events:?}"))
    };
    let parsed = events
        .iter()
        .find(|e| e["a"] == 1)
        .expect("parsed into the root");
    assert_eq!(parsed["b"]["c"], serde_json::json!([1, 2]));
    assert!(tags(parsed).is_empty());
    assert_eq!(tags(by_message("not json")), vec!["_jsonparsefailure"]);
    assert!(
        tags(by_message("Skip")).is_empty(),
        "skip_on_invalid_json adds no tag"
    );
    assert_eq!(tags(by_message("Cut")), vec!["bad_json"]);
    let bad_time = events.iter().find(|e| e["k"] == 1).unwrap();
    assert_eq!(bad_time["_@timestamp"], "yesterday");
    assert!(tags(bad_time).contains(&"_timestampparsefailure"));
    let good_time = events.iter().find(|e| e["k"] == 2).unwrap();
    assert_eq!(good_time["@timestamp"], "2026-01-02T03:04:05.678Z");

    let out = run(
        &[
            "-e",
            r#"input { stdin {} } filter { json { source => "message" target => "[doc][inner]" } } output { stdout { codec => json_lines } }"#,
        ],
        b"{\"x\":\"y\"}\n",
    );
    let e = &json_lines(stdout_text(&out).as_bytes())[0];
    assert_eq!(e["doc"]["inner"]["x"], "y");
    assert!(e.get("x").is_none(), "a target keeps the root clean: {e}");
}

#[test]
fn mutate_applies_its_operations_in_logstash_order_whatever_the_config_order() {
    // Written in reverse of the documented order; each pair below gives a different
    // result if the later operation ran first.
    let config = r#"input { stdin { codec => json_lines } }
filter { mutate {
  copy => { "g" => "g_copy" }
  join => { "s" => "+" }
  split => { "s" => "," }
  strip => ["w"]
  lowercase => ["low"]
  capitalize => ["cap"]
  uppercase => ["g"]
  gsub => ["g", "a", "b"]
  convert => { "n" => "integer" "f" => "float" "t" => "boolean" }
  replace => { "r" => "%{n}-replaced" }
  update => { "u" => "updated" "absent" => "never" }
  rename => { "src" => "n" "old" => "u" }
  coerce => { "c" => "default" }
  merge => { "m" => "g" }
} }
output { stdout { codec => json_lines } }"#;
    let input = br#"{"g":"aaa","s":"a,b,c","w":"  pad  ","low":"LoW","cap":"hELLO","src":"42","f":"1.5","t":"true","r":"x","old":"o","c":null,"m":["x"]}
"#;
    let out = run(&["-e", config], input);
    let e = &json_lines(stdout_text(&out).as_bytes())[0];
    assert_eq!(e["n"], 42, "rename before convert: {e}");
    assert!(e.get("src").is_none());
    assert_eq!(e["f"], 1.5);
    assert_eq!(e["t"], true);
    assert_eq!(e["r"], "42-replaced", "rename before replace: {e}");
    assert_eq!(e["u"], "updated", "rename before update: {e}");
    assert!(e.get("absent").is_none(), "update never creates a field");
    assert_eq!(e["g"], "BBB", "gsub before uppercase: {e}");
    assert_eq!(e["g_copy"], "BBB", "copy last: {e}");
    assert_eq!(e["s"], "a+b+c", "split before join: {e}");
    assert_eq!(e["w"], "pad");
    assert_eq!(e["low"], "low");
    assert_eq!(e["cap"], "Hello");
    assert_eq!(e["c"], "default");
    // merge runs after gsub and uppercase: it appends the final value.
    assert_eq!(
        e["m"],
        serde_json::json!(["x", "BBB"]),
        "merge after uppercase: {e}"
    );
    assert!(tags(e).is_empty(), "{e}");
}

#[test]
fn comparison_regex_and_boolean_operators_evaluate_as_documented() {
    let config = r#"input { stdin { codec => json_lines } }
filter {
  if [n] < 10 { mutate { add_tag => ["lt"] } }
  if [n] <= 10 { mutate { add_tag => ["le"] } }
  if [n] > 10 { mutate { add_tag => ["gt"] } }
  if [n] >= 10 { mutate { add_tag => ["ge"] } }
  if [s] !~ /^err/ { mutate { add_tag => ["not_err"] } }
  if [s] < "m" { mutate { add_tag => ["before_m"] } }
  if [a] nand [b] { mutate { add_tag => ["nand"] } }
}
output { stdout { codec => line { format => "%{id} %{tags}" } } }"#;
    let input = br#"{"id":1,"n":9,"s":"error here","a":true,"b":true}
{"id":2,"n":10,"s":"fine","a":true}
{"id":3,"n":11,"s":"zeta","b":true}
{"id":4,"n":10.5,"s":"apple"}
"#;
    let out = run(&["-w", "1", "-e", config], input);
    let mut lines: Vec<String> = stdout_text(&out).lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "1 lt,le,before_m",
            "2 le,ge,not_err,before_m,nand",
            "3 gt,ge,not_err,nand",
            "4 gt,ge,not_err,before_m,nand",
        ]
    );
}

#[test]
fn drop_removes_the_given_percentage_of_events() {
    let input: String = (0..2000).map(|i| format!("{i}\n")).collect();
    let count = |percentage: u32| {
        let config = format!(
            "input {{ stdin {{}} }} filter {{ drop {{ percentage => {percentage} }} }} output {{ stdout {{ codec => line }} }}"
        );
        stdout_text(&run(&["-e", &config], input.as_bytes()))
            .lines()
            .count()
    };
    assert_eq!(count(0), 2000);
    assert_eq!(count(100), 0);
    // Binomial(2000, 0.5): the standard deviation is about 22 events.
    let kept = count(50);
    assert!((850..=1150).contains(&kept), "kept {kept} of 2000 at 50%");
    let kept = count(10);
    assert!((1700..=1900).contains(&kept), "kept {kept} of 2000 at 10%");
}

#[test]
fn the_file_output_creates_missing_directories_from_its_template() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("a/b/%{service}/events.jsonl");
    let config = format!(
        "input {{ stdin {{ codec => json_lines }} }} output {{ file {{ path => \"{}\" }} }}",
        template.display()
    );
    let out = run(
        &["-e", &config],
        b"{\"service\":\"api\",\"i\":1}\n{\"service\":\"web\",\"i\":2}\n{\"service\":\"api\",\"i\":3}\n",
    );
    stdout_text(&out);
    let api = std::fs::read_to_string(dir.path().join("a/b/api/events.jsonl")).unwrap();
    let web = std::fs::read_to_string(dir.path().join("a/b/web/events.jsonl")).unwrap();
    assert_eq!(api.lines().count(), 2);
    assert_eq!(web.lines().count(), 1);
    let first: serde_json::Value = serde_json::from_str(api.lines().next().unwrap()).unwrap();
    assert_eq!(first["i"], 1);
}

#[test]
fn metadata_reaches_rubydebug_only_when_asked() {
    let config = |metadata: bool| {
        format!(
            r#"input {{ stdin {{}} }}
filter {{ mutate {{ add_field => {{ "[@metadata][route]" => "secret-route" }} }} }}
output {{ stdout {{ codec => rubydebug {{ metadata => {metadata} }} }} }}"#
        )
    };
    let shown = stdout_text(&run(&["-e", &config(true)], b"hi\n"));
    assert!(shown.contains("@metadata"), "{shown}");
    assert!(shown.contains("secret-route"), "{shown}");
    let hidden = stdout_text(&run(&["-e", &config(false)], b"hi\n"));
    assert!(!hidden.contains("@metadata"), "{hidden}");
    assert!(!hidden.contains("secret-route"), "{hidden}");
    assert!(hidden.contains("\"hi\""), "{hidden}");
    // json_lines never shows it.
    let json = stdout_text(&run(
        &[
            "-e",
            r#"input { stdin {} } filter { mutate { add_field => { "[@metadata][route]" => "secret-route" } } } output { stdout { codec => json_lines } }"#,
        ],
        b"hi\n",
    ));
    assert!(!json.contains("secret-route"), "{json}");
}

/// Runs sluice with JSON logs at `level` on `config`, feeding `input`; returns each log
/// line as JSON.
fn json_log_lines(level: &str, config: &str, input: &[u8]) -> Vec<serde_json::Value> {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["--log.level", level, "--log.format", "json", "-e", config])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The `span.plugin_id` of the line whose message is `message`.
fn plugin_of(lines: &[serde_json::Value], message: &str) -> serde_json::Value {
    lines
        .iter()
        .find(|v| v["message"] == message)
        .map(|v| v["span"]["plugin_id"].clone())
        .unwrap_or_else(|| panic!("no `{message}` in {lines:?}"))
}

#[test]
fn json_log_lines_name_their_pipeline_and_plugin() {
    // Every line the runtime writes names the pipeline, whatever the level.
    let lines = json_log_lines(
        "debug",
        r#"input { stdin { id => "lines" } } filter { json { id => "parse" source => "message" } } output { null { id => "sink" } }"#,
        b"not json\n",
    );
    let mut runtime_lines = 0;
    for v in &lines {
        let target = v["target"].as_str().unwrap_or_default();
        let runtime = ["pipeline", "inputs", "filters", "outputs", "queue"]
            .iter()
            .any(|m| target.starts_with(&format!("sluice::{m}")));
        if runtime {
            runtime_lines += 1;
            assert_eq!(v["span"]["pipeline_id"], "main", "{v}");
        }
    }
    assert!(runtime_lines >= 3, "{lines:?}");
    assert_eq!(
        plugin_of(&lines, "json filter could not parse field"),
        "parse"
    );
    assert_eq!(plugin_of(&lines, "stdin reached end of file"), "lines");
    assert_eq!(plugin_of(&lines, "starting input"), "lines");
    // At the default level too (a span the level filtered out would carry no ids).
    let lines = json_log_lines(
        "warn",
        r#"input { stdin {} } filter { csv { id => "columns" } } output { null {} }"#,
        b"a,\"unterminated\n",
    );
    let warned = lines
        .iter()
        .find(|v| v["message"] == "csv filter could not parse field")
        .unwrap_or_else(|| panic!("no csv warning in {lines:?}"));
    assert_eq!(warned["span"]["plugin_id"], "columns", "{warned}");
    assert_eq!(warned["span"]["pipeline_id"], "main", "{warned}");
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "--log.level",
            "info",
            "--log.format",
            "json",
            "-e",
            "input { stdin {} } output { null {} }",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() >= 2, "expected start and stop lines: {stderr}");
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
        assert!(v["message"].is_string(), "{line}");
    }
    assert!(stderr.contains("pipeline stopped"), "{stderr}");

    let out = sluice()
        .args([
            "--log.format",
            "yaml",
            "-e",
            "input { stdin {} } output { null {} }",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log.format must be plain or json"));
}

/// How long one line written to a held-open stdin takes to reach stdout.
fn first_line_latency(batch_delay_ms: &str) -> Duration {
    let mut child = spawn({
        let mut c = sluice();
        c.args([
            "-w",
            "1",
            "-b",
            "100",
            "--pipeline.batch.delay",
            batch_delay_ms,
            "-e",
            "input { stdin {} } output { stdout { codec => line } }",
        ]);
        c
    });
    let mut stdin = child.0.stdin.take().unwrap();
    let mut stdout = child.0.stdout.take().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    stdin.write_all(b"one\n").unwrap();
    stdin.flush().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4];
        let _ = tx.send(stdout.read_exact(&mut buf).map(|()| buf));
    });
    let got = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the line never came out");
    assert_eq!(&got.unwrap(), b"one\n");
    let latency = started.elapsed();
    drop(stdin);
    latency
}

#[test]
fn batch_delay_bounds_how_long_a_worker_waits_for_a_batch_to_fill() {
    // One line, batches of 100: the worker holds it for the whole delay.
    let slow = first_line_latency("2500");
    assert!(
        slow >= Duration::from_millis(2000),
        "held {slow:?}, not the 2.5 s delay"
    );
    let fast = first_line_latency("10");
    assert!(
        fast < Duration::from_millis(1500),
        "held {fast:?} with a 10 ms delay"
    );
}

#[test]
fn stdin_cuts_over_long_lines_and_replaces_invalid_utf8() {
    let mut input = Vec::new();
    input.extend_from_slice(&vec![b'x'; 300]);
    input.extend_from_slice(b"\nshort after\ncaf\xe9 \xff\xfe ok\n");
    let out = run(
        &[
            "-w",
            "1",
            "-e",
            "input { stdin { max_line_bytes => 100 } } output { stdout { codec => json_lines } }",
        ],
        &input,
    );
    let events = json_lines(stdout_text(&out).as_bytes());
    let cut: Vec<_> = events
        .iter()
        .filter(|e| tags(e).contains(&"_linetoolong"))
        .collect();
    assert_eq!(cut.len(), 1, "{events:?}");
    let cut_message = cut[0]["message"].as_str().unwrap();
    assert!(
        !cut_message.is_empty()
            && cut_message.len() <= 100
            && cut_message.bytes().all(|b| b == b'x'),
        "{cut_message}"
    );
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        messages.contains(&"short after"),
        "the next line survives: {messages:?}"
    );
    assert!(
        messages.contains(&"caf\u{FFFD} \u{FFFD}\u{FFFD} ok"),
        "invalid bytes become U+FFFD: {messages:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| !tags(e).contains(&"_linetoolong") || e == cut[0]),
        "only the long line is tagged"
    );
}

#[test]
fn grok_subcommand_reads_a_match_file_with_extra_pattern_directories() {
    let dir = tempfile::tempdir().unwrap();
    let patterns = dir.path().join("patterns");
    std::fs::create_dir(&patterns).unwrap();
    std::fs::write(patterns.join("extra"), "ORDER_ID ORD-[0-9]{4}\n").unwrap();
    let lines = dir.path().join("lines.log");
    std::fs::write(
        &lines,
        "order ORD-1234 from 10.0.0.7\norder XYZ from 10.0.0.8\n",
    )
    .unwrap();
    let out = sluice()
        .args([
            "grok",
            "order %{ORDER_ID:order} from %{IP:client}",
            "--match-file",
            lines.to_str().unwrap(),
            "--patterns-dir",
            patterns.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let results = json_lines(stdout_text(&out).as_bytes());
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["matched"], true);
    assert_eq!(results[0]["fields"]["order"], "ORD-1234");
    assert_eq!(results[0]["fields"]["client"], "10.0.0.7");
    assert_eq!(results[1]["matched"], false);
    assert!(
        results[1]["failed_at"]
            .as_str()
            .unwrap()
            .contains("ORDER_ID"),
        "{}",
        results[1]
    );

    // Without the directory the pattern name is unknown: a clear error, exit 2.
    let out = sluice()
        .args([
            "grok",
            "%{ORDER_ID:order}",
            "--match-file",
            lines.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ORDER_ID"));
}
