//! Shutdown with a deadline, against the `sluice` binary and a real OpenSearch-compatible
//! server (osmem-server, from the test venv) frozen with SIGSTOP: sluice gives up at
//! `--shutdown.timeout`, says how many events it did not deliver, exits non-zero, and
//! does not acknowledge what it did not deliver (a Beats client is left without ACK).

mod common;

use common::{free_port, sluice, venv_bin, wait_for_port, KillOnDrop};
use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// An osmem-server frozen with SIGSTOP: it accepts connections (the kernel does) and
/// never answers. Thawed and killed on drop.
struct FrozenServer {
    child: KillOnDrop,
    port: u16,
}

impl FrozenServer {
    fn start() -> FrozenServer {
        let port = free_port();
        let child = common::start_osmem(port);
        signal(child.0.id(), "STOP");
        FrozenServer { child, port }
    }
}

impl Drop for FrozenServer {
    fn drop(&mut self) {
        signal(self.child.0.id(), "CONT");
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig} {pid} failed");
}

/// Starts sluice with `config` and `--shutdown.timeout timeout`.
fn start_sluice(config: &str, timeout: u64, data: &std::path::Path) -> KillOnDrop {
    KillOnDrop(
        sluice()
            .args(["--path.data"])
            .arg(data)
            .args(["-w", "2", "--shutdown.timeout", &timeout.to_string()])
            .args(["-e", config])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Waits for `child` to exit, at most `limit`; returns its status, how long it took
/// and its log.
fn wait_exit(child: &mut Child, limit: Duration) -> (ExitStatus, Duration, String) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut log = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut log);
            }
            return (status, started.elapsed(), log);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let mut log = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut log);
            }
            panic!("sluice did not exit within {limit:?}\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The count in the per-output "events not delivered" log line of output `id`.
fn undelivered_in(log: &str, id: &str) -> Option<u64> {
    log.lines()
        .filter(|l| l.contains("events not delivered by this output"))
        .filter(|l| l.contains(&format!("output={id}")))
        .find_map(|l| {
            let rest = &l[l.find("events=")? + "events=".len()..];
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
}

fn es_output(port: u16) -> String {
    format!(
        r#"output {{ elasticsearch {{
            id => "es"
            hosts => ["127.0.0.1:{port}"]
            index => "frozen"
            timeout => 120
            retry_initial_interval => 0.2
            retry_max_interval => 1
        }} }}"#
    )
}

/// Sends 1,000 lines to the tcp input and leaves the connection open.
fn send_lines(port: u16) -> std::net::TcpStream {
    assert!(
        wait_for_port(port, Duration::from_secs(20)),
        "the tcp input did not start"
    );
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut lines = String::new();
    for i in 0..1000 {
        lines.push_str(&format!("event {i}\n"));
    }
    conn.write_all(lines.as_bytes()).unwrap();
    conn.flush().unwrap();
    conn
}

#[test]
fn sigterm_with_a_frozen_elasticsearch_gives_up_at_the_deadline_and_counts_the_events() {
    let server = FrozenServer::start();
    let data = tempfile::tempdir().unwrap();
    let tcp = free_port();
    let config = format!(
        r#"input {{ tcp {{ host => "127.0.0.1" port => {tcp} }} }} {}"#,
        es_output(server.port)
    );
    let timeout = 3;
    let mut sluice = start_sluice(&config, timeout, data.path());
    let _conn = send_lines(tcp);
    // Every line is read into the (1,024-event) queue or a worker's batch.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        sluice.0.try_wait().unwrap().is_none(),
        "sluice stopped early"
    );
    signal(sluice.0.id(), "TERM");
    let (status, took, log) = wait_exit(&mut sluice.0, Duration::from_secs(timeout + 5));
    assert!(!status.success(), "exit status {status}\n{log}");
    assert!(
        took >= Duration::from_secs(timeout - 1),
        "took {took:?}\n{log}"
    );
    assert_eq!(undelivered_in(&log, "es"), Some(1000), "{log}");
    assert!(log.contains("shutdown timeout reached"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_second_signal_gives_up_at_once_and_still_counts() {
    let server = FrozenServer::start();
    let data = tempfile::tempdir().unwrap();
    let tcp = free_port();
    let config = format!(
        r#"input {{ tcp {{ host => "127.0.0.1" port => {tcp} }} }} {}"#,
        es_output(server.port)
    );
    // 0: the first signal alone would wait for ever.
    let mut sluice = start_sluice(&config, 0, data.path());
    let _conn = send_lines(tcp);
    std::thread::sleep(Duration::from_secs(2));
    signal(sluice.0.id(), "TERM");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        sluice.0.try_wait().unwrap().is_none(),
        "with --shutdown.timeout 0 sluice must wait for the output"
    );
    signal(sluice.0.id(), "TERM");
    let (status, _, log) = wait_exit(&mut sluice.0, Duration::from_secs(5));
    assert!(!status.success(), "exit status {status}\n{log}");
    assert!(log.contains("second signal received"), "{log}");
    assert_eq!(undelivered_in(&log, "es"), Some(1000), "{log}");
}

#[test]
fn a_beats_batch_that_was_not_delivered_is_not_acknowledged() {
    let server = FrozenServer::start();
    let data = tempfile::tempdir().unwrap();
    let beats = free_port();
    let config = format!(
        r#"input {{ beats {{ host => "127.0.0.1" port => {beats} }} }} {}"#,
        es_output(server.port)
    );
    let timeout = 2;
    let mut sluice = start_sluice(&config, timeout, data.path());
    assert!(
        wait_for_port(beats, Duration::from_secs(20)),
        "the beats input did not start"
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scripts/pylogbeat_send.py"
    );
    // One window of 100 events; pylogbeat waits for its ACK.
    let mut client = KillOnDrop(
        Command::new(venv_bin("python"))
            .arg(script)
            .args([beats.to_string(), "0".into(), "100".into(), "100".into()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        client.0.try_wait().unwrap().is_none(),
        "pylogbeat finished while the server is frozen: it was ACKed"
    );
    signal(sluice.0.id(), "TERM");
    let (status, took, log) = wait_exit(&mut sluice.0, Duration::from_secs(timeout + 5));
    assert!(!status.success(), "exit status {status}\n{log}");
    assert!(took <= Duration::from_secs(timeout + 5));
    assert_eq!(undelivered_in(&log, "es"), Some(100), "{log}");

    // The client sees its connection closed without an ACK: it fails, never "sent".
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = client.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "pylogbeat still waiting");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    if let Some(mut o) = client.0.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    assert!(!status.success(), "pylogbeat got its ACK: {out}");
    assert!(!out.contains("sent 100"), "{out}");
}
