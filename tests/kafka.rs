#![cfg(feature = "kafka")]
//! The `kafka` output and input against a real Kafka-protocol broker (tansu, started
//! here on 127.0.0.1), read back and fed by an independent client (Python
//! confluent-kafka). Without tansu installed, outside scripts/test.sh, the broker tests
//! skip with a loud message; scripts/test.sh installs it and always runs them.

mod common;

use common::kafka::{produce, read_all, rss_kib, Broker};
use common::{free_port, sluice, KillOnDrop};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Waits for `child` to exit within `timeout`; panics with its stderr otherwise.
fn wait_exit(child: &mut KillOnDrop, timeout: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.0.kill();
            let mut err = String::new();
            if let Some(mut e) = child.0.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            panic!("{what} did not finish within {timeout:?}; stderr:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts sluice on `config` with its stderr in a file (a full pipe would block it).
fn start_sluice(config: &str, dir: &Path, name: &str, extra: &[&str]) -> KillOnDrop {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let data = dir.join(format!("{name}-data"));
    let mut cmd = sluice();
    let api_port = free_port().to_string();
    cmd.args([
        "--path.data",
        data.to_str().unwrap(),
        "--api.http.port",
        &api_port,
    ])
    .args(extra)
    .args(["-e", config]);
    cmd.stdout(Stdio::null()).stderr(log).stdin(Stdio::null());
    KillOnDrop(cmd.spawn().expect("start sluice"))
}

/// The `sequence` (or `seq`) numbers in a json_lines file, in file order.
fn sequences(path: &Path) -> Vec<i64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            v.get("seq")
                .or_else(|| v.get("sequence"))
                .and_then(|s| s.as_i64())
        })
        .collect()
}

#[test]
fn output_delivers_every_event_exactly_once_and_in_order_per_key() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("events", 4);
    // 100,000 events: 12,500 rounds over 8 keys. One worker, as ordering per key
    // needs (two workers may hand batches to the output in either order).
    let lines = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let total = 100_000usize;
    let config = format!(
        r#"input {{ generator {{ lines => {lines:?} count => {rounds} }} }}
output {{ kafka {{ bootstrap_servers => "{addr}" topic_id => "events"
  message_key => "%{{message}}" codec => json compression_type => "lz4" }} }}"#,
        rounds = total / lines.len(),
        addr = broker.address()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut producer = start_sluice(&config, dir.path(), "producer", &["-w", "1"]);
    let status = wait_exit(
        &mut producer,
        Duration::from_secs(120),
        "sluice producing 100,000 events",
    );
    let log = std::fs::read_to_string(dir.path().join("producer.log")).unwrap_or_default();
    assert!(status.success(), "sluice failed: {log}");

    let records = read_all(&broker.address(), "events", total, Duration::from_secs(90));
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    let mut last_per_key: HashMap<String, (i32, i64)> = HashMap::new();
    let mut partitions_per_key: HashMap<String, HashSet<i32>> = HashMap::new();
    // Per partition in offset order: the reader returns each partition in order.
    let mut by_partition: BTreeMap<i32, Vec<&common::kafka::Record>> = BTreeMap::new();
    for r in &records {
        by_partition.entry(r.partition).or_default().push(r);
    }
    for list in by_partition.values_mut() {
        list.sort_by_key(|r| r.offset);
        for r in list.iter() {
            let v: serde_json::Value = serde_json::from_str(&r.value).expect("json value");
            let seq = v["sequence"].as_i64().expect("sequence field");
            let key = r.key.clone().expect("every message has a key");
            assert_eq!(
                v["message"].as_str(),
                Some(key.as_str()),
                "key is the message"
            );
            if !seen.insert(seq) {
                duplicates += 1;
            }
            partitions_per_key
                .entry(key.clone())
                .or_default()
                .insert(r.partition);
            if let Some((_, prev)) = last_per_key.get(&key) {
                assert!(seq > *prev, "key {key}: sequence {seq} after {prev}");
            }
            last_per_key.insert(key, (r.partition, seq));
        }
    }
    assert_eq!(duplicates, 0, "duplicates without any fault");
    assert_eq!(
        seen.len(),
        total,
        "events read back: {} of {total}",
        seen.len()
    );
    assert_eq!(records.len(), total);
    assert!(
        partitions_per_key.values().all(|p| p.len() == 1),
        "a key spans partitions"
    );
    assert!(
        by_partition.len() > 1,
        "keys spread over partitions: {:?}",
        by_partition.keys()
    );
}

/// Two members of one group read a 4-partition topic into files while it is fed; member
/// a is stopped mid-run by `stop`, and member b must take over a's partitions and read
/// what a had not committed. Returns the duplicates (messages both members wrote).
fn group_takeover(address: &str, dir: &Path, stop: impl FnOnce(&mut KillOnDrop)) -> usize {
    let total = 20_000usize;
    // Produced over about 10 s while both members read.
    let feeder = {
        let addr = address.to_string();
        std::thread::spawn(move || produce(&addr, "shared", total, 2_000))
    };
    let member = |name: &str| {
        format!(
            r#"input {{ kafka {{ bootstrap_servers => "{address}" topics => ["shared"] group_id => "indexers"
  auto_offset_reset => "earliest" codec => json session_timeout_ms => 6000
  heartbeat_interval_ms => 1000 auto_commit_interval_ms => 500 }} }}
output {{ file {{ path => "{out}" codec => json_lines }} }}"#,
            out = dir.join(format!("{name}.json")).display()
        )
    };
    let mut a = start_sluice(&member("a"), dir, "a", &[]);
    let _b = start_sluice(&member("b"), dir, "b", &[]);
    let a_file = dir.join("a.json");
    let b_file = dir.join("b.json");

    // Stop member a once both members have read something.
    let deadline = Instant::now() + Duration::from_secs(60);
    while sequences(&a_file).is_empty() || sequences(&b_file).is_empty() {
        assert!(
            Instant::now() < deadline,
            "both members did not receive messages within 60 s (a: {}, b: {}); a's log: {}",
            sequences(&a_file).len(),
            sequences(&b_file).len(),
            std::fs::read_to_string(dir.join("a.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    stop(&mut a);
    let a_before = sequences(&a_file).len();
    feeder.join().expect("feeder");

    // Member b takes over a's partitions and reads what a had not committed.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let union: HashSet<i64> = sequences(&a_file)
            .into_iter()
            .chain(sequences(&b_file))
            .collect();
        if union.len() == total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "union holds {} of {total} messages 90 s after member a stopped; b's log: {}",
            union.len(),
            std::fs::read_to_string(dir.join("b.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let a_seq = sequences(&a_file);
    let b_seq = sequences(&b_file);
    assert!(a_seq
        .iter()
        .chain(&b_seq)
        .all(|s| (0..total as i64).contains(s)));
    let duplicates = a_seq.len() + b_seq.len() - total;
    eprintln!(
        "consumer group: a read {a_before} before it stopped, b read {}, duplicates \
         {duplicates} (batches a had not committed)",
        b_seq.len()
    );
    duplicates
}

#[test]
fn a_consumer_group_takes_over_from_a_member_stopped_mid_run() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("shared", 4);
    let dir = tempfile::tempdir().unwrap();
    // SIGTERM: member a drains, commits what it delivered and leaves the group.
    let duplicates = group_takeover(&broker.address(), dir.path(), |a| {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &a.0.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let status = wait_exit(a, Duration::from_secs(30), "member a after SIGTERM");
        assert!(status.success(), "member a exited with {status}");
    });
    // A clean stop commits everything a wrote, so nothing is read twice.
    assert_eq!(
        duplicates, 0,
        "a member that left cleanly had its reads re-read"
    );
}

/// SIGKILL leaves no LeaveGroup behind: the coordinator must expire the dead member's
/// session. tansu 0.6.0 never expires a member (checked with two confluent-kafka
/// consumers: the survivor is never given the dead one's partitions), so this runs
/// against librdkafka's mock cluster, which does, listening on 127.0.0.1 in this
/// process.
#[test]
fn a_consumer_group_survives_a_member_killed_mid_run() {
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::DefaultProducerContext;
    let cluster: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(1).expect("librdkafka mock cluster");
    cluster
        .create_topic("shared", 4, 1)
        .expect("create topic on the mock cluster");
    let dir = tempfile::tempdir().unwrap();
    group_takeover(&cluster.bootstrap_servers(), dir.path(), |a| {
        a.0.kill().expect("SIGKILL member a");
        let _ = a.0.wait();
    });
}

#[test]
fn a_broker_outage_loses_nothing_and_memory_stays_bounded() {
    let Some(mut broker) = Broker::start() else {
        return;
    };
    broker.create_topic("outage", 2);
    let addr = broker.address();
    let total = 40_000usize;
    let dir = tempfile::tempdir().unwrap();
    // About 2,000 events/s for 20 s: still producing when the broker goes away.
    let producer_config = format!(
        r#"input {{ generator {{ lines => ["x", "y", "z", "w"] count => {rounds} }} }}
filter {{ sleep {{ time => "0.05" every => 100 }} }}
output {{ kafka {{ bootstrap_servers => "{addr}" topic_id => "outage" message_key => "%{{message}}" codec => json }} }}"#,
        rounds = total / 4
    );
    let consumer_config = format!(
        r#"input {{ kafka {{ bootstrap_servers => "{addr}" topics => ["outage"] group_id => "outage-readers"
  auto_offset_reset => "earliest" codec => json auto_commit_interval_ms => 500 }} }}
output {{ file {{ path => "{out}" codec => json_lines }} }}"#,
        out = dir.path().join("read.json").display()
    );
    let mut producer = start_sluice(&producer_config, dir.path(), "producer", &["-w", "1"]);
    let _consumer = start_sluice(&consumer_config, dir.path(), "consumer", &[]);
    let read = dir.path().join("read.json");

    let deadline = Instant::now() + Duration::from_secs(60);
    while sequences(&read).len() < 2_000 {
        assert!(
            Instant::now() < deadline,
            "nothing flowed within 60 s; consumer log: {}",
            std::fs::read_to_string(dir.path().join("consumer.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    broker.kill();
    let outage_start = Instant::now();
    let mut max_rss = 0;
    while outage_start.elapsed() < Duration::from_secs(20) {
        if let Some(rss) = rss_kib(producer.0.id()) {
            max_rss = max_rss.max(rss);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    broker.restart();

    let status = wait_exit(
        &mut producer,
        Duration::from_secs(120),
        "the producing sluice after the outage",
    );
    assert!(
        status.success(),
        "producer failed: {}",
        std::fs::read_to_string(dir.path().join("producer.log")).unwrap_or_default()
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got: HashSet<i64> = sequences(&read).into_iter().collect();
        if got.len() == total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "consumer holds {} of {total} events 90 s after the producer finished; consumer log: {}",
            got.len(),
            std::fs::read_to_string(dir.path().join("consumer.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let all = sequences(&read);
    eprintln!(
        "broker outage: producer peak RSS {} MiB during the 20 s outage, {} duplicates read",
        max_rss / 1024,
        all.len() - total
    );
    assert!(
        max_rss < 400 * 1024,
        "producer RSS {max_rss} KiB during the outage"
    );
    // Independent check of the topic itself: nothing lost on the broker either.
    let records = read_all(&addr, "outage", total, Duration::from_secs(60));
    let on_broker: HashSet<i64> = records
        .iter()
        .filter_map(|r| serde_json::from_str::<serde_json::Value>(&r.value).ok())
        .filter_map(|v| v["sequence"].as_i64())
        .collect();
    assert_eq!(on_broker.len(), total, "distinct events on the broker");
}

#[test]
fn kafka_options_use_logstash_names_and_unknown_ones_fail_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.conf");
    std::fs::write(
        &path,
        "input {\n  kafka {\n    topics => [\"t\"]\n    group_id => \"g\"\n    poll_interval => 5\n  }\n}\noutput { stdout {} }\n",
    )
    .unwrap();
    let out = sluice()
        .args(["-t", "-f", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("bad.conf:5:"), "stderr: {stderr}");
    assert!(stderr.contains("poll_interval"), "stderr: {stderr}");

    let path = dir.path().join("bad-output.conf");
    std::fs::write(
        &path,
        "input { stdin {} }\noutput {\n  kafka {\n    topic_id => \"t\"\n    acks => \"some\"\n  }\n}\n",
    )
    .unwrap();
    let out = sluice()
        .args(["-t", "-f", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("bad-output.conf:5:"), "stderr: {stderr}");

    for file in ["edge.conf", "indexer.conf"] {
        let path = format!(
            "{}/pipelines/kafka-scale-out/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let out = sluice().args(["-t", "-f", &path]).output().unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
