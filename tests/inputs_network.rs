//! The network inputs (`udp`, `syslog`) against real sockets on 127.0.0.1: each test
//! runs the input on a memory queue, sends with std sockets, and reads what was queued.

mod common;

use sluice::batch::Batch;
use sluice::event::field_ref::FieldRef;
use sluice::event::{Event, Value};
use sluice::inputs::{Input, InputContext};
use sluice::plugin::Options;
use sluice::queue::{MemoryQueue, Queue};
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A running input on its own memory queue.
struct Running {
    queue: Arc<Queue>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), sluice::inputs::InputError>>,
}

impl Running {
    fn start(input: Box<dyn Input>, max_events: usize) -> Running {
        Running::start_as("test", input, max_events)
    }

    /// As [`Running::start`], with plugin id `id` (metrics are labelled by it).
    fn start_as(id: &str, input: Box<dyn Input>, max_events: usize) -> Running {
        let queue = Arc::new(Queue::Memory(MemoryQueue::new(max_events, 1 << 30)));
        let shutdown = CancellationToken::new();
        let ctx = InputContext::new(id, queue.clone(), shutdown.clone(), Default::default());
        let task = tokio::spawn(input.run(ctx));
        Running {
            queue,
            shutdown,
            task,
        }
    }

    /// Pops until `n` events arrived; fails after `limit`.
    async fn take(&self, n: usize, limit: Duration) -> Vec<Event> {
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "only {} of {n} events within {limit:?}",
                out.len()
            );
            if let Ok(Some(b)) =
                tokio::time::timeout(left, self.queue.pop(1000, Duration::ZERO)).await
            {
                let b: Batch = b;
                out.extend(b.into_events());
            }
        }
        out
    }

    /// Events that arrive within `quiet` of each other, until none does.
    async fn drain(&self, quiet: Duration) -> Vec<Event> {
        let mut out = Vec::new();
        while let Ok(Some(b)) =
            tokio::time::timeout(quiet, self.queue.pop(1000, Duration::ZERO)).await
        {
            out.extend(b.into_events());
        }
        out
    }

    async fn stop(self) {
        self.shutdown.cancel();
        // Whatever the input still pushes at shutdown is taken, so it never waits.
        let queue = self.queue.clone();
        let drainer = tokio::spawn(async move {
            while let Some(b) = queue.pop(1000, Duration::ZERO).await {
                drop(b);
            }
        });
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the input did not stop within 10 s of shutdown")
            .unwrap()
            .unwrap();
        self.queue.close();
        drainer.abort();
    }
}

fn options(plugin: &str, body: &str) -> Options {
    Options::from_text(plugin, "input", body).unwrap()
}

fn get<'a>(e: &'a Event, name: &str) -> Option<&'a Value> {
    e.get(&FieldRef::parse(name).unwrap())
}

/// Waits until `port` (a counter the input fills once bound) is set.
fn bound_port(port: &AtomicU64) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = port.load(Ordering::Relaxed);
        if p != 0 {
            return p as u16;
        }
        assert!(
            Instant::now() < deadline,
            "the input did not bind within 10 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `payloads` to `port` in rounds of 50, each round only once the input has read
/// the last (its `read` counter), so the kernel's receive buffer never overflows and
/// every loss the test sees is the input's.
async fn send_paced(payloads: &[Vec<u8>], port: u16, read: &AtomicU64) {
    send_paced_by(payloads, port, read, 50).await
}

/// As [`send_paced`], `per_round` datagrams a round (fewer for large datagrams).
async fn send_paced_by(payloads: &[Vec<u8>], port: u16, read: &AtomicU64, per_round: usize) {
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = read.load(Ordering::Relaxed);
    for (round, chunk) in payloads.chunks(per_round).enumerate() {
        for p in chunk {
            sender.send_to(p, ("127.0.0.1", port)).unwrap();
        }
        let want = start + (round * per_round + chunk.len()) as u64;
        let deadline = Instant::now() + Duration::from_secs(10);
        while read.load(Ordering::Relaxed) < want {
            assert!(
                Instant::now() < deadline,
                "the input read {} of {want} datagrams within 10 s",
                read.load(Ordering::Relaxed) - start
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

fn syslog_lines() -> Vec<String> {
    String::from_utf8(common::gunzip("tests/data/syslog-2000.log.gz"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------- udp

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_every_datagram_is_one_event_with_the_sender_ip() {
    let mut opts = options("udp", "host => '127.0.0.1' port => 0");
    let input = sluice::inputs::udp::UdpInput::build(&mut opts).unwrap();
    opts.finish().unwrap();
    let stats = input.stats();
    let running = Running::start(Box::new(input), 100_000);
    let port = bound_port(&stats.bound_port);
    let lines = syslog_lines();
    // Each datagram ends with a newline, as most senders write them: `plain` keeps it.
    let payloads: Vec<Vec<u8>> = lines
        .iter()
        .map(|l| format!("{l}\n").into_bytes())
        .collect();
    send_paced(&payloads, port, &stats.datagrams).await;
    let events = running.take(lines.len(), Duration::from_secs(20)).await;
    let mut messages: Vec<&str> = events
        .iter()
        .map(|e| e.get_str("message").unwrap())
        .collect();
    let mut expected: Vec<String> = lines.iter().map(|l| format!("{l}\n")).collect();
    messages.sort_unstable();
    expected.sort_unstable();
    assert_eq!(messages, expected);
    for e in &events {
        assert_eq!(
            get(e, "[host][ip]"),
            Some(&Value::String("127.0.0.1".into()))
        );
    }
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    assert_eq!(stats.datagrams.load(Ordering::Relaxed), lines.len() as u64);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_line_codec_splits_and_legacy_names_the_host_field() {
    let mut opts = options(
        "udp",
        "host => '127.0.0.1' port => 0 codec => line ecs_compatibility => disabled",
    );
    let input = sluice::inputs::udp::UdpInput::build(&mut opts).unwrap();
    opts.finish().unwrap();
    let stats = input.stats();
    let running = Running::start(Box::new(input), 1000);
    let port = bound_port(&stats.bound_port);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .send_to(b"one\ntwo\nthree\n", ("127.0.0.1", port))
        .unwrap();
    sender.send_to(br#"{"a":1}"#, ("127.0.0.1", port)).unwrap();
    let events = running.take(4, Duration::from_secs(10)).await;
    let messages: Vec<&str> = events
        .iter()
        .map(|e| e.get_str("message").unwrap())
        .collect();
    assert_eq!(messages, vec!["one", "two", "three", r#"{"a":1}"#]);
    assert_eq!(events[0].get_str("host"), Some("127.0.0.1"));
    running.stop().await;

    // The json codec: a datagram is one document; the sender's own `host` wins.
    let mut opts = options(
        "udp",
        "host => '127.0.0.1' port => 0 codec => json source_ip_fieldname => 'host'",
    );
    let input = sluice::inputs::udp::UdpInput::build(&mut opts).unwrap();
    let stats = input.stats();
    let running = Running::start(Box::new(input), 1000);
    let port = bound_port(&stats.bound_port);
    sender
        .send_to(br#"{"host":"app-1","n":1}"#, ("127.0.0.1", port))
        .unwrap();
    sender.send_to(br#"{"n":2}"#, ("127.0.0.1", port)).unwrap();
    let mut events = running.take(2, Duration::from_secs(10)).await;
    events.sort_by_key(|e| format!("{:?}", e.get_field("n")));
    assert_eq!(events[0].get_str("host"), Some("app-1"));
    assert_eq!(events[1].get_str("host"), Some("127.0.0.1"));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_a_full_queue_drops_and_counts_instead_of_blocking_the_socket() {
    // The pipeline queue holds 10 events and nobody pops it: the workers wait, the
    // hand-off fills (queue_size 50) and the rest is dropped, counted.
    let mut opts = options(
        "udp",
        "host => '127.0.0.1' port => 0 queue_size => 50 workers => 1 receive_buffer_bytes => 65536",
    );
    let input = sluice::inputs::udp::UdpInput::build(&mut opts).unwrap();
    opts.finish().unwrap();
    let stats = input.stats();
    let running = Running::start_as("udp-drops", Box::new(input), 10);
    let port = bound_port(&stats.bound_port);
    let sent = 2000u64;
    let payloads: Vec<Vec<u8>> = (0..sent)
        .map(|i| format!("datagram {i}").into_bytes())
        .collect();
    // Paced on what the reader read: it must go on reading while the pipeline is stuck.
    send_paced(&payloads, port, &stats.datagrams).await;
    let dropped = stats.dropped.load(Ordering::Relaxed);
    assert!(dropped > 0, "nothing dropped with a full queue");
    // What was not dropped is all delivered once the pipeline takes it.
    let events = running.drain(Duration::from_millis(500)).await;
    assert_eq!(events.len() as u64 + dropped, sent);
    // The drops are in what /metrics serves, under the input's id.
    let exposition = sluice::stats::metrics::exposition();
    let series =
        "sluice_input_datagrams_dropped_total{plugin_id=\"udp-drops\",reason=\"queue_full\"}";
    let exported = exposition
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert_eq!(exported, Some(dropped), "{series} in\n{exposition}");
    assert!(stats.receive_buffer_bytes.load(Ordering::Relaxed) > 0);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_with_the_cef_codec_decodes_each_datagram() {
    let mut opts = options(
        "udp",
        "host => '127.0.0.1' port => 0 codec => cef { ecs_compatibility => disabled }",
    );
    let input = sluice::inputs::udp::UdpInput::build(&mut opts).unwrap();
    opts.finish().unwrap();
    let stats = input.stats();
    let running = Running::start(Box::new(input), 1000);
    let port = bound_port(&stats.bound_port);
    let payloads = vec![
        b"<134>Nov 30 10:00:00 fw-1 CEF:0|Security|threatmanager|1.0|100|worm stopped|10|src=10.0.0.1 dst=192.168.1.2 msg=spaces in the value act=blocked".to_vec(),
        b"not cef at all".to_vec(),
    ];
    send_paced(&payloads, port, &stats.datagrams).await;
    let mut events = running.take(2, Duration::from_secs(10)).await;
    events.sort_by_key(|e| e.get_field("tags").is_some());
    let cef = &events[0];
    assert_eq!(cef.get_str("syslog"), Some("<134>Nov 30 10:00:00 fw-1"));
    assert_eq!(cef.get_str("deviceVendor"), Some("Security"));
    assert_eq!(cef.get_str("sourceAddress"), Some("10.0.0.1"));
    assert_eq!(cef.get_str("message"), Some("spaces in the value"));
    assert_eq!(cef.get_str("deviceAction"), Some("blocked"));
    assert_eq!(
        get(cef, "[host][ip]").and_then(Value::as_str),
        Some("127.0.0.1")
    );
    let failed = &events[1];
    assert!(failed.has_tag("_cefparsefailure"));
    assert_eq!(failed.get_str("message"), Some("not cef at all"));
    running.stop().await;
}

#[test]
fn udp_options_are_checked() {
    let build = |body: &str| sluice::inputs::udp::UdpInput::build(&mut options("udp", body));
    assert!(build("host => '127.0.0.1'").is_err(), "port is required");
    assert!(build("port => 70000").is_err());
    assert!(build("port => 5000 workers => 0").is_err());
    assert!(build("port => 5000 queue_size => 0").is_err());
    assert!(build("port => 5000 buffer_size => 0").is_err());
    assert!(build("port => 5000 ecs_compatibility => v9").is_err());
    assert!(build("port => 5000 buffer_size => 9000 workers => 4 queue_size => 10").is_ok());
}

// ------------------------------------------------------------------------- syslog

/// What the syslog input must make of one RFC 3164 line of the test data.
fn expected_priority(line: &str) -> Option<i64> {
    let rest = line.strip_prefix('<')?;
    rest[..rest.find('>')?].parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_tcp_and_udp_share_one_port() {
    let mut opts = options(
        "syslog",
        "host => '127.0.0.1' port => 0 ecs_compatibility => disabled timezone => 'UTC'",
    );
    let input = sluice::inputs::syslog::SyslogInput::build(&mut opts).unwrap();
    opts.finish().unwrap();
    let stats = input.stats();
    let running = Running::start(Box::new(input), 100_000);
    let port = bound_port(&stats.bound_port);
    assert!(
        common::wait_for_port(port, Duration::from_secs(10)),
        "no tcp listener on the udp port"
    );
    let lines = syslog_lines();
    let (by_tcp, by_udp) = lines.split_at(lines.len() / 2);
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    for line in by_tcp {
        tcp.write_all(line.as_bytes()).unwrap();
        tcp.write_all(b"\n").unwrap();
    }
    tcp.flush().unwrap();
    // Each datagram ends with a newline, as syslog senders write them.
    let payloads: Vec<Vec<u8>> = by_udp
        .iter()
        .map(|l| format!("{l}\n").into_bytes())
        .collect();
    // Paced on the input's own counter (TCP lines count too, so wait for them first).
    let deadline = Instant::now() + Duration::from_secs(20);
    while stats.messages_received.load(Ordering::Relaxed) < by_tcp.len() as u64 {
        assert!(
            Instant::now() < deadline,
            "tcp lines not all read within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    send_paced(&payloads, port, &stats.messages_received).await;
    let events = running.take(lines.len(), Duration::from_secs(20)).await;
    assert_eq!(events.len(), lines.len());

    let mut sent: std::collections::HashSet<String> = lines.iter().cloned().collect();
    let mut parsed = 0;
    for e in &events {
        // The line back from the parsed fields (a parse failure keeps it whole).
        let line = match (e.get_str("timestamp"), e.get_field("priority")) {
            (Some(ts), Some(Value::Int(pri))) if !e.has_tag("_grokparsefailure_sysloginput") => {
                format!(
                    "<{pri}>{ts} {} {}[{}]: {}",
                    e.get_str("logsource").unwrap(),
                    e.get_str("program").unwrap(),
                    e.get_str("pid").unwrap(),
                    e.get_str("message").unwrap()
                )
            }
            _ => e.get_str("message").unwrap().to_string(),
        };
        assert!(sent.remove(&line), "not sent, or seen twice: {line}");
        let line = &line;
        assert_eq!(e.get_str("host"), Some("127.0.0.1"));
        match expected_priority(line) {
            Some(pri) => {
                parsed += 1;
                assert!(!e.has_tag("_grokparsefailure_sysloginput"), "{line}: {e:?}");
                assert_eq!(get(e, "priority"), Some(&Value::Int(pri)), "{line}");
                assert_eq!(get(e, "severity"), Some(&Value::Int(pri & 7)));
                assert_eq!(get(e, "facility"), Some(&Value::Int(pri >> 3)));
                assert!(e.get_str("severity_label").is_some());
                let program = e.get_str("program").unwrap();
                assert!(line.contains(&format!(" {program}[")), "{line}");
                let stamp = e.timestamp().unwrap().to_string();
                assert!(stamp.contains("-11-21T"), "{line}: {stamp}");
            }
            None => {
                assert!(e.has_tag("_grokparsefailure_sysloginput"), "{line}");
                assert!(e.get_str("message") == Some(line.as_str()));
                assert_eq!(get(e, "priority"), Some(&Value::Int(13)));
                assert_eq!(e.get_str("facility_label"), Some("user-level"));
                assert_eq!(e.get_str("severity_label"), Some("Notice"));
            }
        }
    }
    let unknown = lines.len() - parsed;
    assert!(
        parsed > 900 && unknown > 900,
        "the data mixes both: {parsed} / {unknown}"
    );
    assert_eq!(
        stats.unknown_messages.load(Ordering::Relaxed),
        unknown as u64
    );
    drop(tcp);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_rfc5424_over_tcp_with_ecs_names() {
    let mut opts = options("syslog", "host => '127.0.0.1' port => 0");
    let input = sluice::inputs::syslog::SyslogInput::build(&mut opts).unwrap();
    opts.finish().unwrap();
    let stats = input.stats();
    let running = Running::start(Box::new(input), 1000);
    let port = bound_port(&stats.bound_port);
    assert!(common::wait_for_port(port, Duration::from_secs(10)));
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // The RFC 5424 examples (section 6.5), the last without a newline: kept at close.
    tcp.write_all(
        b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8\n\
          <165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.\r\n\
          <190>Nov 21 00:00:00 web-3 nginx[42]: GET / 200",
    )
    .unwrap();
    drop(tcp);
    let events = running.take(3, Duration::from_secs(10)).await;
    let e = &events[0];
    assert_eq!(get(e, "[log][syslog][priority]"), Some(&Value::Int(34)));
    assert_eq!(
        get(e, "[log][syslog][facility][name]"),
        Some(&Value::String("security/authorization".into()))
    );
    assert_eq!(
        get(e, "[host][hostname]"),
        Some(&Value::String("mymachine.example.com".into()))
    );
    assert_eq!(
        get(e, "[host][ip]"),
        Some(&Value::String("127.0.0.1".into()))
    );
    assert_eq!(get(e, "[process][name]"), Some(&Value::String("su".into())));
    assert_eq!(
        e.get_str("message"),
        Some("'su root' failed for lonvick on /dev/pts/8")
    );
    assert_eq!(
        e.timestamp().unwrap().to_string(),
        "2003-10-11T22:14:15.003Z"
    );
    let e = &events[1];
    assert_eq!(get(e, "[process][pid]"), Some(&Value::Int(8710)));
    assert_eq!(
        get(e, "[log][syslog][severity][name]"),
        Some(&Value::String("Notice".into()))
    );
    assert_eq!(
        e.get_str("message"),
        Some("%% It's time to make the do-nuts.")
    );
    let e = &events[2];
    assert_eq!(
        get(e, "[process][name]"),
        Some(&Value::String("nginx".into()))
    );
    assert_eq!(get(e, "[process][pid]"), Some(&Value::Int(42)));
    assert_eq!(
        get(e, "[event][original]"),
        Some(&Value::String(
            "<190>Nov 21 00:00:00 web-3 nginx[42]: GET / 200".into()
        ))
    );
    running.stop().await;
}

// --------------------------------------------------------------------------- http

fn http_input(body: &str) -> (Running, u16, Arc<sluice::inputs::http::HttpStats>) {
    http_input_on(body, 100_000)
}

fn http_input_on(
    body: &str,
    max_events: usize,
) -> (Running, u16, Arc<sluice::inputs::http::HttpStats>) {
    let mut opts = options("http", &format!("host => '127.0.0.1' port => 0 {body}"));
    let input = sluice::inputs::http::HttpInput::build(&mut opts).unwrap();
    opts.finish().unwrap();
    let stats = input.stats();
    let running = Running::start(Box::new(input), max_events);
    let port = bound_port(&stats.bound_port);
    (running, port, stats)
}

fn json_lines(n: usize) -> Vec<serde_json::Value> {
    String::from_utf8(common::gunzip("tests/data/json-20000.log.gz"))
        .unwrap()
        .lines()
        .take(n)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_answers_only_once_the_batch_is_safe() {
    let (running, port, stats) = http_input("");
    let docs = json_lines(500);
    let body = serde_json::to_vec(&docs).unwrap();
    let request = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/ingest?x=1"))
            .header("content-type", "application/json; charset=utf-8")
            .header("x-request-id", "abc")
            .body(body)
            .send()
            .await
            .unwrap()
    });
    // The events are queued, but nobody made them safe yet: no answer.
    let batch = tokio::time::timeout(
        Duration::from_secs(10),
        running.queue.pop(1000, Duration::ZERO),
    )
    .await
    .expect("the request's events were not queued within 10 s")
    .unwrap();
    assert_eq!(batch.len(), docs.len(), "one event per array element");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!request.is_finished(), "answered before the batch was safe");
    let e = &batch.events[0];
    assert_eq!(
        get(e, "[host][ip]"),
        Some(&Value::String("127.0.0.1".into()))
    );
    assert_eq!(
        get(e, "[http][method]"),
        Some(&Value::String("POST".into()))
    );
    assert_eq!(
        get(e, "[url][path]"),
        Some(&Value::String("/ingest".into()))
    );
    assert_eq!(get(e, "[url][port]"), Some(&Value::Int(port as i64)));
    assert_eq!(
        get(e, "[http][request][mime_type]"),
        Some(&Value::String("application/json".into()))
    );
    assert_eq!(
        get(
            e,
            "[@metadata][input][http][request][headers][http_x_request_id]"
        ),
        Some(&Value::String("abc".into()))
    );
    for (event, doc) in batch.events.iter().zip(&docs) {
        assert_eq!(event.get_str("message"), doc["message"].as_str());
    }
    drop(batch);
    let response = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .expect("no answer within 10 s of the ack")
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.text().await.unwrap(), "ok");
    assert_eq!(stats.events.load(Ordering::Relaxed), docs.len() as u64);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_a_failed_batch_is_answered_503_and_a_busy_input_429() {
    let (running, port, stats) = http_input("max_pending_requests => 1");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");
    let first = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { client.post(url).body("one").send().await.unwrap() }
    });
    let batch = tokio::time::timeout(
        Duration::from_secs(10),
        running.queue.pop(10, Duration::ZERO),
    )
    .await
    .unwrap()
    .unwrap();
    // The only slot is taken by the first request, which waits for its ack.
    let second = client.post(&url).body("two").send().await.unwrap();
    assert_eq!(second.status(), 429);
    assert_eq!(stats.rejected_busy.load(Ordering::Relaxed), 1);
    batch.fail();
    drop(batch);
    let first = tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.status(),
        503,
        "a batch not made safe must not be answered ok"
    );
    // The slot is free again.
    let third = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { client.post(url).body("three").send().await.unwrap() }
    });
    let batch = running.take(1, Duration::from_secs(10)).await;
    assert_eq!(batch[0].get_str("message"), Some("three"));
    let third = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(third.status(), 200);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_limits_auth_codes_and_compression() {
    let (running, port, stats) = http_input(
        "max_content_length => 1000 user => 'ingest' password => 's3cret' response_code => 202 \
         response_headers => { 'X-Answer' => 'yes' } ecs_compatibility => disabled",
    );
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/hook");
    let r = client
        .post(&url)
        .body("no credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .post(&url)
        .basic_auth("ingest", Some("wrong"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .post(&url)
        .basic_auth("ingest", Some("s3cret"))
        .body(vec![b'a'; 1001])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(stats.rejected_too_large.load(Ordering::Relaxed), 1);
    // A gzip body that inflates past the limit is refused too; one under it is read.
    let gz = |data: &[u8]| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    };
    let r = client
        .post(&url)
        .basic_auth("ingest", Some("s3cret"))
        .header("content-encoding", "gzip")
        .body(gz(&[b'b'; 5000]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(
        running.drain(Duration::from_millis(200)).await.is_empty(),
        "refused requests queued events"
    );
    let consumer = tokio::spawn({
        let queue = running.queue.clone();
        // The events are kept, the batch (and its ack) let go: the request is answered.
        async move { std::mem::take(&mut queue.pop(10, Duration::ZERO).await.unwrap().events) }
    });
    let r = client
        .post(&url)
        .basic_auth("ingest", Some("s3cret"))
        .header("content-type", "text/plain")
        .header("content-encoding", "gzip")
        .body(gz(b"line one\nline two"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["x-answer"], "yes");
    let events = consumer.await.unwrap();
    let e = &events[0];
    assert_eq!(
        e.get_str("message"),
        Some("line one\nline two"),
        "plain: the body is one event"
    );
    assert_eq!(e.get_str("host"), Some("127.0.0.1"));
    assert_eq!(
        get(e, "[headers][request_method]"),
        Some(&Value::String("POST".into()))
    );
    assert_eq!(
        get(e, "[headers][request_path]"),
        Some(&Value::String("/hook".into()))
    );
    assert_eq!(
        get(e, "[headers][content_type]"),
        Some(&Value::String("text/plain".into()))
    );
    assert_eq!(
        get(e, "[headers][http_version]"),
        Some(&Value::String("HTTP/1.1".into()))
    );
    assert!(
        get(e, "[http][method]").is_none(),
        "no ECS fields with ecs_compatibility disabled"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_over_tls() {
    use rcgen::{CertificateParams, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert_path = dir.path().join("server.pem");
    let key_path = dir.path().join("server.key");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let (running, port, _) = http_input(&format!(
        "ssl_enabled => true ssl_certificate => '{}' ssl_key => '{}'",
        cert_path.display(),
        key_path.display()
    ));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let consumer = tokio::spawn({
        let queue = running.queue.clone();
        // The events are kept, the batch (and its ack) let go: the request is answered.
        async move { std::mem::take(&mut queue.pop(10, Duration::ZERO).await.unwrap().events) }
    });
    let r = client
        .put(format!("https://localhost:{port}/"))
        .header("content-type", "application/json")
        .body(serde_json::json!({"message": "over tls", "n": 7}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let events = consumer.await.unwrap();
    assert_eq!(events[0].get_str("message"), Some("over tls"));
    assert_eq!(events[0].get_field("n"), Some(&Value::Int(7)));
    // Plain HTTP to a TLS port gets no answer.
    let plain = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/"))
        .body("x")
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    running.stop().await;
}

// --------------------------------------------------------------------------- gelf

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

/// GELF chunks of `payload` (as a GELF UDP client cuts them): magic, message id,
/// sequence number, count, then the piece.
fn gelf_chunks(id: u64, payload: &[u8], piece: usize) -> Vec<Vec<u8>> {
    let pieces: Vec<&[u8]> = payload.chunks(piece).collect();
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut d = vec![0x1e, 0x0f];
            d.extend_from_slice(&id.to_be_bytes());
            d.push(i as u8);
            d.push(pieces.len() as u8);
            d.extend_from_slice(p);
            d
        })
        .collect()
}

fn start_gelf(id: &str, body: &str) -> (Running, Arc<sluice::inputs::gelf::GelfStats>) {
    let mut opts = options("gelf", body);
    let input = sluice::inputs::gelf::GelfInput::build(&mut opts).unwrap();
    opts.finish().unwrap();
    let stats = input.stats();
    (Running::start_as(id, Box::new(input), 100_000), stats)
}

fn exported_drops(id: &str, reason: &str) -> u64 {
    let series =
        format!("sluice_input_datagrams_dropped_total{{plugin_id=\"{id}\",reason=\"{reason}\"}}");
    sluice::stats::metrics::exposition()
        .lines()
        .find_map(|l| l.strip_prefix(series.as_str())?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gelf_udp_plain_compressed_and_chunked_messages() {
    let (running, stats) = start_gelf("gelf-udp", "host => '127.0.0.1' port => 0");
    let port = bound_port(&stats.bound_udp_port);
    let message = |i: usize| {
        format!(
            r#"{{"version":"1.1","host":"app-{i}","short_message":"short {i}","full_message":"full {i}\nwith a stack trace","timestamp":1700000000.{i:03},"level":3,"_user_id":{i},"_request":"r-{i}"}}"#
        )
    };
    let big = format!(
        r#"{{"version":"1.1","host":"big","short_message":"{}","timestamp":1700000001.5}}"#,
        // Text that compresses poorly, so that it takes many chunks.
        (0..20_000u64)
            .scan(1u64, |state, _| {
                *state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                Some(char::from(b'a' + ((*state >> 33) % 26) as u8))
            })
            .collect::<String>()
    );
    let mut payloads = vec![
        message(1).into_bytes(),
        zlib(message(2).as_bytes()),
        gzip(message(3).as_bytes()),
        br#"{"version":"1.1","host":"s","short_message":"only short"}"#.to_vec(),
        b"not json at all".to_vec(),
    ];
    // A chunked, compressed message whose chunks arrive out of order.
    let mut chunks = gelf_chunks(42, &zlib(big.as_bytes()), 1000);
    assert!(chunks.len() > 2);
    chunks.reverse();
    payloads.extend(chunks);
    // And a plain one cut in 3 chunks, in order.
    payloads.extend(gelf_chunks(
        43,
        big.replace(r#""host":"big""#, r#""host":"big2""#)
            .as_bytes(),
        8000,
    ));
    send_paced(&payloads, port, &stats.datagrams).await;
    let events = running.take(7, Duration::from_secs(10)).await;
    let by_host = |h: &str| {
        events
            .iter()
            .find(|e| e.get_str("host") == Some(h))
            .unwrap_or_else(|| panic!("no event from {h}"))
    };
    for i in 1..=3 {
        let e = by_host(&format!("app-{i}"));
        // remap: full_message wins; strip_leading_underscore; timestamp in seconds.
        assert_eq!(
            e.get_str("message"),
            Some(format!("full {i}\nwith a stack trace").as_str())
        );
        assert_eq!(
            e.get_str("short_message"),
            Some(format!("short {i}").as_str())
        );
        assert!(e.get_field("full_message").is_none());
        assert_eq!(e.get_field("user_id"), Some(&Value::Int(i as i64)));
        assert_eq!(e.get_str("request"), Some(format!("r-{i}").as_str()));
        assert!(e.get_field("_user_id").is_none());
        assert!(e.get_field("timestamp").is_none());
        assert_eq!(
            e.timestamp().unwrap().unix_millis(),
            1_700_000_000_000 + i as i64
        );
        assert_eq!(e.get_str("source_host"), Some("127.0.0.1"));
    }
    assert_eq!(by_host("s").get_str("message"), Some("only short"));
    assert!(by_host("s").get_field("short_message").is_none());
    let big_event = by_host("big");
    assert_eq!(big_event.get_str("message").map(str::len), Some(20_000));
    assert_eq!(
        big_event.timestamp().unwrap().unix_millis(),
        1_700_000_001_500
    );
    assert_eq!(
        by_host("big2").get_str("message").map(str::len),
        Some(20_000)
    );
    let failed = events
        .iter()
        .find(|e| e.has_tag("_jsonparsefailure"))
        .expect("the non-JSON payload is kept, tagged");
    assert_eq!(failed.get_str("message"), Some("not json at all"));
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    assert_eq!(stats.reassembly_bytes.load(Ordering::Relaxed), 0);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gelf_tcp_messages_are_null_framed() {
    let (running, stats) = start_gelf(
        "gelf-tcp",
        "host => '127.0.0.1' port => 0 use_tcp => true use_udp => false remap => false strip_leading_underscore => false",
    );
    let port = bound_port(&stats.bound_tcp_port);
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client
        .write_all(b"{\"short_message\":\"one\",\"_a\":1}\0{\"short_message\":\"two\"}\0{\"short_message\":\"three\"}")
        .unwrap();
    drop(client);
    let events = running.take(3, Duration::from_secs(10)).await;
    let shorts: Vec<_> = events
        .iter()
        .filter_map(|e| e.get_str("short_message"))
        .collect();
    assert_eq!(shorts, ["one", "two", "three"]);
    // remap and strip_leading_underscore off: the fields stay as sent.
    assert!(events[0].get_field("message").is_none());
    assert_eq!(events[0].get_field("_a"), Some(&Value::Int(1)));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gelf_chunks_that_never_complete_cost_bounded_memory_and_are_counted() {
    use sluice::inputs::gelf::{CHUNK_TIMEOUT, MAX_REASSEMBLY_BYTES};
    let (running, stats) = start_gelf("gelf-hostile", "host => '127.0.0.1' port => 0");
    let port = bound_port(&stats.bound_udp_port);
    // A hostile sender: first chunks of 2-chunk messages, 8 KiB each, never the second,
    // more of them than the reassembly buffer holds.
    let piece = vec![b'x'; 8192];
    let n = MAX_REASSEMBLY_BYTES / 8192 + 500;
    let datagrams: Vec<Vec<u8>> = (0..n as u64)
        .map(|id| {
            let mut d = vec![0x1e, 0x0f];
            d.extend_from_slice(&id.to_be_bytes());
            d.extend_from_slice(&[0, 2]);
            d.extend_from_slice(&piece);
            d
        })
        .collect();
    send_paced_by(&datagrams, port, &stats.datagrams, 8).await;
    let held = stats.reassembly_bytes.load(Ordering::Relaxed) as usize;
    assert!(held <= MAX_REASSEMBLY_BYTES, "{held} bytes held");
    let over = stats.chunk_memory_limit.load(Ordering::Relaxed);
    assert!(
        over >= 400,
        "only {over} chunks refused at the memory limit"
    );
    assert_eq!(exported_drops("gelf-hostile", "chunk_memory_limit"), over);
    // Plain messages still pass while the buffer is full.
    send_paced(
        &[br#"{"short_message":"still here"}"#.to_vec()],
        port,
        &stats.datagrams,
    )
    .await;
    let events = running.take(1, Duration::from_secs(10)).await;
    assert_eq!(events[0].get_str("message"), Some("still here"));
    // After the chunk timeout everything incomplete is dropped, counted, and freed.
    let deadline = Instant::now() + CHUNK_TIMEOUT + Duration::from_secs(10);
    while stats.reassembly_bytes.load(Ordering::Relaxed) != 0 {
        assert!(
            Instant::now() < deadline,
            "incomplete messages still held {:?} after their timeout",
            stats.reassembly_bytes
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let timed_out = stats.chunk_timeouts.load(Ordering::Relaxed);
    assert_eq!(timed_out + over, n as u64);
    assert_eq!(exported_drops("gelf-hostile", "chunk_timeout"), timed_out);
    // Malformed chunks (count 0, sequence past the count) are refused, counted.
    let mut bad = vec![0x1e, 0x0f];
    bad.extend_from_slice(&7u64.to_be_bytes());
    bad.extend_from_slice(&[5, 3, b'x']);
    send_paced(&[bad, vec![0x1e, 0x0f, 1, 2]], port, &stats.datagrams).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while exported_drops("gelf-hostile", "chunk_invalid") < 2 {
        assert!(Instant::now() < deadline, "invalid chunks not counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.stop().await;
}

#[test]
fn gelf_options_are_checked() {
    let build = |body: &str| sluice::inputs::gelf::GelfInput::build(&mut options("gelf", body));
    assert!(build("").is_ok(), "every option has a default (port 12201)");
    assert!(build("port => 70000").is_err());
    assert!(build("use_udp => false use_tcp => false").is_err());
    assert!(build("port_tcp => 12202 port_udp => 12203 use_tcp => true remap => false").is_ok());
}
