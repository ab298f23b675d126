//! What the HTTP API tests share: a plain HTTP/1.1 client, a running Sluice fed over
//! TCP, and the test data set with timestamps moved into the last 20 hours.
#![allow(dead_code)]

use crate::common::{self, KillOnDrop};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// One HTTP response.
pub struct Response {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// `GET path` with optional headers, on a fresh connection.
pub fn get(port: u16, path: &str, extra_headers: &[(&str, &str)]) -> Response {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the API");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in extra_headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the response");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header/body split");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Response {
        status,
        headers: head.to_string(),
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

/// A Sluice reading JSON lines from TCP, running `filters`, with its API on `api_port`.
pub struct Running {
    pub child: KillOnDrop,
    pub api_port: u16,
    pub tcp_port: u16,
}

pub fn start(filters: &str, data_dir: &Path, extra_args: &[&str]) -> Running {
    start_binary(common::sluice(), filters, data_dir, extra_args)
}

/// [`start`] with the binary `cmd` runs (the release binary, for the heavy tests).
pub fn start_binary(
    mut cmd: std::process::Command,
    filters: &str,
    data_dir: &Path,
    extra_args: &[&str],
) -> Running {
    let (api_port, tcp_port) = (common::free_port(), common::free_port());
    let config = format!(
        "input {{ tcp {{ port => {tcp_port} host => \"127.0.0.1\" codec => json_lines }} }} filter {{ {filters} }} output {{ null {{}} }}"
    );
    cmd.args(["-e", &config, "--api.http.port", &api_port.to_string()])
        .arg("--path.data")
        .arg(data_dir)
        .args(extra_args);
    let child = common::spawn(cmd);
    assert!(
        common::wait_for_port(api_port, Duration::from_secs(30)),
        "the API did not listen on {api_port} within 30s"
    );
    assert!(
        common::wait_for_port(tcp_port, Duration::from_secs(30)),
        "the tcp input did not listen on {tcp_port} within 30s"
    );
    Running {
        child,
        api_port,
        tcp_port,
    }
}

impl Running {
    pub fn send(&self, data: &[u8]) {
        let mut s = TcpStream::connect(("127.0.0.1", self.tcp_port)).unwrap();
        s.write_all(data).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }

    /// Waits until the store has counted `n` events (summed over `/metrics`).
    pub fn wait_counted(&self, n: u64) {
        self.wait_counted_within(n, Duration::from_secs(60));
    }

    /// [`Running::wait_counted`] with a deadline of `limit`.
    pub fn wait_counted_within(&self, n: u64, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut seen = 0;
        while Instant::now() < deadline {
            seen = counted(&get(self.api_port, "/metrics", &[]).body);
            if seen >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("only {seen} of {n} events counted by error_stats after {limit:?}");
    }
}

/// The sum of `sluice_error_stats_events_total` in an exposition.
pub fn counted(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("sluice_error_stats_events_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Unix milliseconds now.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// ISO 8601 with milliseconds, UTC.
pub fn iso(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The committed `gen-logs json 20000 --seed 1` data with event `i`'s `timestamp` set to
/// `start + i × step`: the same events, within the API's windows whenever the test runs.
pub fn events_from(start_millis: i64, step_millis: i64) -> Vec<Value> {
    let raw = common::gunzip("tests/data/json-20000.log.gz");
    String::from_utf8(raw)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let mut v: Value = serde_json::from_str(line).unwrap();
            v["timestamp"] = Value::String(iso(start_millis + i as i64 * step_millis));
            v
        })
        .collect()
}

pub fn to_lines(events: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        out.extend_from_slice(e.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}
