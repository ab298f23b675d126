//! A Kafka-protocol broker for the tests: tansu, started on 127.0.0.1 from a temporary
//! directory with SQLite storage (so a SIGKILL and a restart keep the data), and a
//! Python confluent-kafka client from the test venv to produce and read back
//! independently of Sluice.
#![allow(dead_code)]

use super::{free_port, venv_bin, wait_for_port, KillOnDrop};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The tansu binary: `SLUICE_TANSU` (set by scripts/test.sh, which installs it), or the
/// place scripts/test.sh installs it to. `None` only outside the test script when it
/// was never installed: the caller then skips, loudly.
pub fn tansu() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SLUICE_TANSU") {
        let path = PathBuf::from(path);
        assert!(
            path.exists(),
            "SLUICE_TANSU={} does not exist: run scripts/test.sh, which installs tansu",
            path.display()
        );
        return Some(path);
    }
    let home = std::env::var_os("HOME")?;
    let path = Path::new(&home).join(".cache/sluice-test-tools/tansu-0.6.0/bin/tansu");
    if path.exists() {
        return Some(path);
    }
    eprintln!(
        "\n*** SKIPPED: no Kafka broker (tansu) installed. scripts/test.sh installs it and \
         always runs these tests; set SLUICE_TANSU to run them by hand. ***\n"
    );
    None
}

/// A running tansu broker; killed on drop.
pub struct Broker {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    process: Option<KillOnDrop>,
}

impl Broker {
    /// Starts a broker, or `None` when tansu is not installed (see [`tansu`]).
    pub fn start() -> Option<Broker> {
        let bin = tansu()?;
        let mut broker = Broker {
            bin,
            dir: tempfile::tempdir().expect("temporary directory"),
            port: free_port(),
            process: None,
        };
        broker.launch();
        Some(broker)
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tansu.log"))
            .expect("broker log file");
        let child = Command::new(&self.bin)
            .current_dir(self.dir.path())
            .args(["broker", "--storage-engine", "sqlite://tansu.db"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cannot start tansu");
        self.process = Some(KillOnDrop(child));
        assert!(
            wait_for_port(self.port, Duration::from_secs(30)),
            "tansu did not listen on {} within 30 s; its log: {}",
            self.port,
            self.log()
        );
    }

    /// SIGKILL: no clean shutdown.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            let _ = p.0.kill();
            let _ = p.0.wait();
        }
    }

    /// Starts again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }

    /// Creates `topic` with `partitions` (tansu does not create topics on first use).
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let out = python(&format!(
            r#"
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({{"bootstrap.servers": "{addr}"}})
fs = a.create_topics([NewTopic("{topic}", num_partitions={partitions}, replication_factor=1)], request_timeout=30)
for t, f in fs.items():
    f.result(timeout=30)
print("created")
"#,
            addr = self.address()
        ));
        assert!(out.contains("created"), "topic {topic} not created: {out}");
    }
}

/// Runs a Python program with the test venv's interpreter; panics with its stderr on
/// failure.
pub fn python(program: &str) -> String {
    let out = Command::new(venv_bin("python"))
        .arg("-c")
        .arg(program)
        .output()
        .expect("cannot run python");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One message read back: partition, offset, key and value.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: String,
}

/// Reads every partition of `topic` from the beginning with confluent-kafka (no group,
/// nothing committed) until `expect` messages arrived or `timeout` passed (then 5 s
/// more of silence to catch duplicates beyond `expect`).
pub fn read_all(address: &str, topic: &str, expect: usize, timeout: Duration) -> Vec<Record> {
    let out = python(&format!(
        r#"
import json, sys, time
from confluent_kafka import Consumer, TopicPartition
c = Consumer({{"bootstrap.servers": "{address}", "group.id": "verify", "enable.auto.commit": False}})
md = c.list_topics("{topic}", timeout=30)
parts = [TopicPartition("{topic}", p, 0) for p in md.topics["{topic}"].partitions]
c.assign(parts)
n, deadline, quiet = 0, time.time() + {secs}, None
out = sys.stdout
while time.time() < deadline:
    m = c.poll(0.5)
    if m is None:
        if n >= {expect}:
            quiet = quiet or time.time()
            if time.time() - quiet > 2: break
        continue
    if m.error(): continue
    quiet = None
    n += 1
    k = m.key().decode() if m.key() is not None else None
    out.write(json.dumps([m.partition(), m.offset(), k, m.value().decode()]) + "\n")
c.close()
"#,
        secs = timeout.as_secs()
    ));
    out.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("reader output");
            Record {
                partition: v[0].as_i64().unwrap_or(-1) as i32,
                offset: v[1].as_i64().unwrap_or(-1),
                key: v[2].as_str().map(str::to_string),
                value: v[3].as_str().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

/// Produces `count` JSON messages `{"seq": i}` keyed `k{i % 16}` to `topic`, at about
/// `per_second` (0: as fast as possible), waiting for every delivery report.
pub fn produce(address: &str, topic: &str, count: usize, per_second: usize) {
    let out = python(&format!(
        r#"
import json, time
from confluent_kafka import Producer
p = Producer({{"bootstrap.servers": "{address}", "acks": "all", "linger.ms": 5}})
failed = []
def report(err, msg):
    if err is not None: failed.append(str(err))
start = time.time()
for i in range({count}):
    while True:
        try:
            p.produce("{topic}", json.dumps({{"seq": i}}).encode(), key=("k%d" % (i % 16)).encode(), on_delivery=report)
            break
        except BufferError:
            p.poll(0.1)
    p.poll(0)
    if {per_second} and i % 100 == 99:
        ahead = (i + 1) / {per_second} - (time.time() - start)
        if ahead > 0: time.sleep(ahead)
left = p.flush(60)
print("failed", len(failed), "left", left, failed[:3])
"#
    ));
    assert!(
        out.starts_with("failed 0 left 0"),
        "producing to {topic} failed: {out}"
    );
}

/// Resident memory of process `pid` in KiB, from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}
