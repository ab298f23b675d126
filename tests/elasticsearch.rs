//! The `elasticsearch` output against a real OpenSearch-compatible server
//! (osmem-server, from the test venv), started and stopped here: delivery of 20,000
//! events counted exactly once, outages (a paused server, connections cut by a proxy,
//! a server that starts late, one that hangs while memory is watched), mapping conflicts
//! going to the dead letter queue and replayed after the fix, and failures a user must
//! fix (wrong credentials, TLS against a plain server). Behaviours a real server will
//! not show on demand (per-item 429/5xx, 413, 403, 404 items, malformed responses, dead
//! and resurrected hosts, a killed server) run against a scripted server that follows
//! the `_bulk` contract.

mod common;

use common::{dead_letters, free_port, sluice, KillOnDrop};
use serde_json::{json, Value};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Peak RSS Sluice may reach while Elasticsearch is down, with the default queue bounds.
const PEAK_RSS_LIMIT_KIB: u64 = 64 * 1024;

/// Every test here runs a server and a pipeline; on a small machine they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Server {
    child: KillOnDrop,
    port: u16,
}

impl Server {
    fn start_on(port: u16) -> Server {
        let child = common::start_osmem(port);
        Server { child, port }
    }

    fn start() -> Server {
        Server::start_on(free_port())
    }

    fn pid(&self) -> u32 {
        self.child.0.id()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
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

async fn http(method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = client.request(method, url);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Documents in `index`; an index that does not exist holds none. Any other answer
/// fails the test: an error must never read as "nothing arrived".
async fn count(server: &Server, index: &str) -> u64 {
    let (status, v) = http(
        reqwest::Method::GET,
        &server.url(&format!("/{index}/_count")),
        None,
    )
    .await;
    match status {
        200 => v["count"]
            .as_u64()
            .unwrap_or_else(|| panic!("a _count answer without a count: {v}")),
        404 if v["error"]["type"] == "index_not_found_exception" => 0,
        _ => panic!("GET /{index}/_count answered {status}: {v}"),
    }
}

/// Every `sequence` value in `index`, paging with search_after.
async fn sequences(server: &Server, index: &str) -> Vec<i64> {
    let mut out = Vec::new();
    let mut after: Option<Value> = None;
    loop {
        let mut q = json!({"size": 10000, "sort": [{"sequence": "asc"}], "_source": ["sequence"]});
        if let Some(a) = &after {
            q["search_after"] = a.clone();
        }
        let (status, v) = http(
            reqwest::Method::POST,
            &server.url(&format!("/{index}/_search")),
            Some(q),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let hits = v["hits"]["hits"].as_array().unwrap().clone();
        if hits.is_empty() {
            return out;
        }
        for h in &hits {
            out.push(h["_source"]["sequence"].as_i64().unwrap());
        }
        after = Some(hits.last().unwrap()["sort"].clone());
    }
}

/// Runs sluice with `config` in the background; stderr is collected.
fn start_sluice(config: &str, data: &std::path::Path) -> Child {
    sluice()
        .arg("--path.data")
        .arg(data)
        .args(["-w", "2", "-e", config])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for sluice to exit on its own; fails the test with its log after `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let log = stderr_of(child);
            assert!(status.success(), "sluice failed: {status}\n{log}");
            return log;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sluice did not finish\n{}", stderr_of(child));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

/// Kills sluice and returns its log.
fn stop(mut child: Child) -> String {
    let _ = child.kill();
    let _ = child.wait();
    stderr_of(&mut child)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn today() -> String {
    chrono::Utc::now().format("%Y.%m.%d").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_events_are_indexed_exactly_once_in_a_calm_run() {
    let _serial = SERIAL.lock().await;
    let server = Server::start();
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        r#"input {{ generator {{ count => 20000 message => "event" }} }}
        output {{ elasticsearch {{
            hosts => ["127.0.0.1:{port}"]
            index => "gen-%{{+yyyy.MM.dd}}"
            http_compression => true
        }} }}"#,
        port = server.port
    );
    let before = today();
    let mut child = start_sluice(&config, data.path());
    wait_exit(&mut child, Duration::from_secs(300));
    // The sprintf names the index by the event's date (UTC).
    let mut total = count(&server, &format!("gen-{before}")).await;
    if today() != before {
        total += count(&server, &format!("gen-{}", today())).await;
    }
    assert_eq!(total, 20_000);
    // No document_id: the server makes a new document for every copy it receives, so
    // 20,000 documents holding each sequence once means no copy and no loss.
    let seqs = sequences(&server, "gen-*").await;
    assert_eq!(seqs.len(), 20_000);
    assert!(seqs.iter().enumerate().all(|(i, s)| *s == i as i64));
}

/// A TCP proxy that can cut every connection it carries.
struct Proxy {
    port: u16,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
    cuts: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(upstream: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, _) = tokio::sync::watch::channel(0u64);
        let tx = Arc::new(tx);
        let generation = tx.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cut = generation.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        // Dropping both sockets breaks the connection under the client.
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            port,
            generation: tx,
            cuts: Arc::new(AtomicU64::new(0)),
        }
    }

    fn cut(&self) {
        let n = self.cuts.fetch_add(1, Ordering::Relaxed) + 1;
        self.generation.send_replace(n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_is_lost_when_the_server_pauses_and_connections_are_cut() {
    let _serial = SERIAL.lock().await;
    let server = Server::start();
    let proxy = Proxy::start(server.port).await;
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        r#"input {{ generator {{ count => 20000 message => "event" }} }}
        output {{ elasticsearch {{
            hosts => ["127.0.0.1:{port}"]
            index => "outage"
            timeout => 2
            retry_initial_interval => 0.2
            retry_max_interval => 1
        }} }}"#,
        port = proxy.port,
    );
    let mut child = start_sluice(&config, data.path());
    // Let some events through first.
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&server, "outage").await < 1_000 {
        assert!(Instant::now() < deadline, "nothing arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Pause the server for a while (requests time out).
    signal(server.pid(), "STOP");
    tokio::time::sleep(Duration::from_secs(3)).await;
    signal(server.pid(), "CONT");
    // Cut every connection a few times while the run goes on.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.cut();
    }
    let log = wait_exit(&mut child, Duration::from_secs(300));
    assert!(
        log.contains("bulk request failed"),
        "the outage was not logged:\n{log}"
    );
    let seqs = sequences(&server, "outage").await;
    let mut seen = vec![false; 20_000];
    for s in &seqs {
        seen[*s as usize] = true;
    }
    let missing = seen.iter().filter(|s| !**s).count();
    assert_eq!(missing, 0, "{missing} events lost");
    assert!(seqs.len() >= 20_000);
    // Cut connections make resends: at-least-once, and the copies are counted here.
    eprintln!(
        "{} documents for 20000 events: {} duplicates",
        seqs.len(),
        seqs.len() - 20_000
    );
}

/// Sluice's peak RSS over 4 s while the server accepts connections and never answers,
/// with 20,000 events of 4 KiB each (about 80 MiB) waiting to be sent.
async fn peak_rss_while_the_server_hangs(queue_flags: &[&str]) -> u64 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            sockets.push(sock);
        }
    });
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        r#"input {{ generator {{ count => 20000 message => "{}" }} }}
        output {{ elasticsearch {{ hosts => ["127.0.0.1:{port}"] index => "hang" }} }}"#,
        "x".repeat(4096)
    );
    let child = sluice()
        .arg("--path.data")
        .arg(data.path())
        .args(queue_flags)
        .args(["-w", "2", "-e", &config])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    let mut peak = 0;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss_kib(child.0.id()).unwrap_or(0));
    }
    drop(child);
    held.abort();
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_within_the_default_queue_bounds_while_the_server_hangs() {
    let _serial = SERIAL.lock().await;
    // With the queue unbounded (`--queue.max_events 1000000 --queue.max_bytes 4gb`),
    // the generator piles all 80 MiB of events up, well past the limit.
    let peak = peak_rss_while_the_server_hangs(&[]).await;
    assert!(peak > 0, "no RSS reading");
    assert!(
        peak < PEAK_RSS_LIMIT_KIB,
        "peak RSS {peak} KiB with the default queue bounds"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_for_a_server_that_starts_late() {
    let _serial = SERIAL.lock().await;
    let port = free_port();
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        r#"input {{ generator {{ count => 5000 message => "late" }} }}
        output {{ elasticsearch {{
            hosts => ["127.0.0.1:{port}"]
            index => "late"
            document_id => "%{{sequence}}"
            retry_initial_interval => 0.2
            retry_max_interval => 1
        }} }}"#
    );
    let mut child = start_sluice(&config, data.path());
    // Connection refused for a while: sluice keeps the events and retries.
    std::thread::sleep(Duration::from_secs(3));
    assert!(child.try_wait().unwrap().is_none(), "sluice gave up");
    let server = Server::start_on(port);
    let log = wait_exit(&mut child, Duration::from_secs(120));
    assert!(log.contains("cannot connect"), "{log}");
    assert_eq!(count(&server, "late").await, 5000);
    // The document_id template names each document by its sequence.
    let (status, doc) = http(reqwest::Method::GET, &server.url("/late/_doc/4321"), None).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["_source"]["sequence"], 4321, "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_conflicts_go_to_the_dead_letter_queue_and_replay_after_the_fix() {
    let _serial = SERIAL.lock().await;
    let server = Server::start();
    let (status, v) = http(
        reqwest::Method::PUT,
        &server.url("/strict"),
        Some(json!({"mappings": {"dynamic": "strict", "properties": {
            "@timestamp": {"type": "date"}, "@version": {"type": "keyword"},
            "kind": {"type": "keyword"}, "sequence": {"type": "long"},
            "host": {"type": "keyword"}}}})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let data = tempfile::tempdir().unwrap();
    // 50 good and 50 bad events: the bad ones carry a field the mapping refuses.
    let config = format!(
        r#"input {{ generator {{
            count => 50
            lines => ['{{"kind":"good"}}', '{{"kind":"bad","extra":"x"}}']
            codec => json
        }} }}
        output {{ elasticsearch {{ hosts => ["127.0.0.1:{port}"] index => "strict" }} }}"#,
        port = server.port
    );
    let mut child = start_sluice(&config, data.path());
    // It finishes: dead letters are not retried.
    let log = wait_exit(&mut child, Duration::from_secs(120));
    assert!(log.contains("dead letter queue"), "{log}");
    assert_eq!(count(&server, "strict").await, 50);

    let dir = data.path().join("dead_letter_queue/main");
    let lines: Vec<Value> = sluice::queue::dlq::read_entries(&dir)
        .unwrap()
        .iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 50);
    for l in &lines {
        assert_eq!(l["status"], 400);
        assert_eq!(l["index"], "strict");
        assert_eq!(l["event"]["kind"], "bad");
        assert!(
            l["reason"].as_str().unwrap().contains("strict"),
            "{}",
            l["reason"]
        );
        assert!(l["time"].is_string());
    }

    // Fix the mapping, then replay the queue into the same index.
    let (status, v) = http(
        reqwest::Method::PUT,
        &server.url("/strict/_mapping"),
        Some(json!({"properties": {"extra": {"type": "keyword"}}})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let replay = format!(
        r#"input {{ dead_letter_queue {{ path => "{dlq}" commit_offsets => true }} }}
        output {{ elasticsearch {{ hosts => ["127.0.0.1:{port}"] index => "%{{[@metadata][dead_letter_queue][index]}}" }} }}"#,
        dlq = data.path().join("dead_letter_queue").display(),
        port = server.port
    );
    let replay_data = tempfile::tempdir().unwrap();
    let child = start_sluice(&replay, replay_data.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&server, "strict").await < 100 {
        assert!(
            Instant::now() < deadline,
            "replay did not index\n{}",
            stop(child)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Give a duplicate a chance to show, then stop the (tailing) replay.
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(child.id(), "TERM");
    let mut child = child;
    wait_exit(&mut child, Duration::from_secs(30));
    assert_eq!(count(&server, "strict").await, 100);
    let (_, v) = http(
        reqwest::Method::POST,
        &server.url("/strict/_count"),
        Some(json!({"query": {"term": {"extra": "x"}}})),
    )
    .await;
    assert_eq!(v["count"], 50, "{v}");
    // The position was committed: nothing is left to replay.
    let commit = replay_data
        .path()
        .join("plugins/inputs/dead_letter_queue/main/last_commit");
    assert!(commit.exists());
}

/// Answers every request with 401, as a server with security on does for bad credentials.
async fn unauthorized_server() -> (u16, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1 << 16];
                let mut seen = Vec::new();
                // Read the headers and the body, then answer.
                loop {
                    let Ok(n) = sock.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen).to_string();
                    let Some(head_end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len: usize = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if seen.len() < head_end + 4 + len {
                        continue;
                    }
                    seen.drain(..head_end + 4 + len);
                    counter.fetch_add(1, Ordering::Relaxed);
                    let body = r#"{"error":{"type":"security_exception","reason":"unable to authenticate user [elastic]"},"status":401}"#;
                    let resp = format!(
                        "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\nwww-authenticate: Basic realm=\"security\"\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_logged_and_retried_without_leaking_the_password() {
    let _serial = SERIAL.lock().await;
    let (port, hits) = unauthorized_server().await;
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        r#"input {{ generator {{ count => 10 }} }}
        output {{ elasticsearch {{
            hosts => ["127.0.0.1:{port}"]
            user => "elastic"
            password => "hunter2-secret"
            allow_insecure_auth => true
            retry_initial_interval => 0.1
            retry_max_interval => 0.2
        }} }}"#
    );
    let mut child = start_sluice(&config, data.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    while hits.load(Ordering::Relaxed) < 3 {
        assert!(Instant::now() < deadline, "no retries\n{}", stop(child));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Still running (retrying), not crashed.
    assert!(child.try_wait().unwrap().is_none());
    let log = stop(child);
    assert!(log.contains("HTTP 401"), "{log}");
    assert!(log.contains("check `user`/`password`"), "{log}");
    assert!(!log.contains("hunter2"), "the password leaked:\n{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_against_a_plain_server_is_logged_and_retried() {
    let _serial = SERIAL.lock().await;
    let server = Server::start();
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        r#"input {{ generator {{ count => 10 }} }}
        output {{ elasticsearch {{
            hosts => ["127.0.0.1:{port}"]
            ssl_enabled => true
            retry_initial_interval => 0.1
            retry_max_interval => 0.2
        }} }}"#,
        port = server.port
    );
    let mut child = start_sluice(&config, data.path());
    std::thread::sleep(Duration::from_secs(2));
    assert!(child.try_wait().unwrap().is_none(), "sluice stopped");
    let log = stop(child);
    assert!(log.contains("https://127.0.0.1"), "{log}");
    assert!(log.contains("bulk request failed"), "{log}");
    assert!(log.contains("ssl_enabled"), "no TLS hint:\n{log}");
    // Logged when the failure starts, not once per attempt.
    assert_eq!(log.matches("bulk request failed").count(), 1, "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(count(&server, "logs-*").await, 0);
}

/// A server that speaks Elasticsearch's `_bulk` contract with answers the test scripts,
/// for the failures a real server will not produce on demand (per-item 429/5xx, 413,
/// 403, 404 items, malformed or short responses, a host that dies). It parses each
/// NDJSON body into its items and answers in Elasticsearch's documented shapes:
/// `{"took","errors","items":[{"<action>":{"_index","_id","status",("result"|"error")}}]}`
/// with one item per action line, in order; a whole-request failure carries an
/// `{"error":{"type","reason"},"status"}` body.
mod scripted {
    use serde_json::{json, Value};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::sync::CancellationToken;

    /// One action of a bulk request, with its document.
    #[derive(Debug, Clone)]
    pub struct Item {
        pub action: String,
        pub index: String,
        pub source: Value,
    }

    impl Item {
        /// The generator's `sequence` of the document.
        pub fn seq(&self) -> i64 {
            self.source["sequence"].as_i64().unwrap_or(-1)
        }
    }

    /// How the server answers one bulk request.
    pub enum Answer {
        /// HTTP 200 with one status per item, in order; 2xx items are indexed.
        Items(Vec<u16>),
        /// The whole request fails with this status; nothing is indexed.
        Request(u16),
        /// HTTP 200 with this body, whatever it says; nothing is indexed.
        Raw(String),
    }

    pub type Script = dyn Fn(usize, &[Item]) -> Answer + Send + Sync;

    /// What the server saw and indexed.
    #[derive(Default)]
    pub struct Record {
        /// Every bulk request's items, in arrival order.
        pub requests: Vec<Vec<Item>>,
        /// The documents answered with a 2xx status.
        pub indexed: Vec<Item>,
        /// Connections accepted.
        pub connections: usize,
        /// Every request's head (request line and headers), in arrival order.
        pub heads: Vec<String>,
    }

    pub struct Server {
        pub port: u16,
        pub record: Arc<Mutex<Record>>,
        script: Arc<Script>,
        stop: CancellationToken,
    }

    impl Server {
        pub async fn start(
            script: impl Fn(usize, &[Item]) -> Answer + Send + Sync + 'static,
        ) -> Server {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = Server {
                port,
                record: Arc::default(),
                script: Arc::new(script),
                stop: CancellationToken::new(),
            };
            server.serve(listener);
            server
        }

        fn serve(&self, listener: tokio::net::TcpListener) {
            let (record, script, stop) =
                (self.record.clone(), self.script.clone(), self.stop.clone());
            tokio::spawn(async move {
                loop {
                    let sock = tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok((sock, _)) => sock,
                            Err(_) => return,
                        },
                        () = stop.cancelled() => return,
                    };
                    record.lock().unwrap().connections += 1;
                    let (record, script, stop) = (record.clone(), script.clone(), stop.clone());
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = connection(sock, record, script) => {}
                            // Dropping the socket mid-request, as a killed server does.
                            () = stop.cancelled() => {}
                        }
                    });
                }
            });
        }

        /// Stops at once, as a killed process: the port closes and every open
        /// connection is dropped, whatever it was doing.
        pub fn kill(&mut self) {
            self.stop.cancel();
        }

        /// Listens again on the same port with the same script and record.
        pub async fn restart(&mut self) {
            self.stop = CancellationToken::new();
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
                .await
                .unwrap();
            self.serve(listener);
        }

        pub fn requests(&self) -> Vec<Vec<Item>> {
            self.record.lock().unwrap().requests.clone()
        }

        pub fn indexed(&self) -> Vec<Item> {
            self.record.lock().unwrap().indexed.clone()
        }

        pub fn connections(&self) -> usize {
            self.record.lock().unwrap().connections
        }

        pub fn heads(&self) -> Vec<String> {
            self.record.lock().unwrap().heads.clone()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.cancel();
        }
    }

    async fn connection(
        mut sock: tokio::net::TcpStream,
        record: Arc<Mutex<Record>>,
        script: Arc<Script>,
    ) {
        let mut seen: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            // One request: headers, then content-length bytes of body.
            let (head, body) = loop {
                if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&seen[..end]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if seen.len() >= end + 4 + len {
                        let body = seen[end + 4..end + 4 + len].to_vec();
                        seen.drain(..end + 4 + len);
                        break (head, body);
                    }
                }
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            };
            record.lock().unwrap().heads.push(head.clone());
            let request_line = head.lines().next().unwrap_or("").to_string();
            let mut parts = request_line.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let gzip = head.lines().any(|l| {
                l.to_ascii_lowercase().starts_with("content-encoding:") && l.contains("gzip")
            });
            let body = if gzip {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)
                    .unwrap();
                out
            } else {
                body
            };
            let (status, text) = if method == "POST" && path.ends_with("/_bulk") {
                bulk(&body, &record, script.as_ref())
            } else if method == "GET" && path == "/" {
                (
                    200,
                    json!({"name": "scripted", "cluster_name": "test",
                           "version": {"number": "8.13.4"}, "tagline": "You Know, for Search"})
                    .to_string(),
                )
            } else if method == "HEAD" {
                (404, String::new())
            } else {
                (200, json!({"acknowledged": true}).to_string())
            };
            let reason = match status {
                200 => "OK",
                403 => "Forbidden",
                404 => "Not Found",
                413 => "Request Entity Too Large",
                429 => "Too Many Requests",
                500 => "Internal Server Error",
                503 => "Service Unavailable",
                _ => "Status",
            };
            let body = if method == "HEAD" {
                String::new()
            } else {
                text
            };
            let resp = format!(
                "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            if sock.write_all(resp.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    fn error_type(status: u16) -> &'static str {
        match status {
            400 => "mapper_parsing_exception",
            403 => "security_exception",
            404 => "index_not_found_exception",
            409 => "version_conflict_engine_exception",
            429 => "es_rejected_execution_exception",
            503 => "unavailable_shards_exception",
            _ => "internal_server_error",
        }
    }

    fn bulk(body: &[u8], record: &Mutex<Record>, script: &Script) -> (u16, String) {
        let text = String::from_utf8_lossy(body);
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let mut items = Vec::new();
        while let Some(line) = lines.next() {
            let meta: Value = serde_json::from_str(line).expect("a bulk action line is JSON");
            let (action, params) = meta
                .as_object()
                .and_then(|m| m.iter().next())
                .expect("a bulk action line names its action");
            let source = if action == "delete" {
                Value::Null
            } else {
                serde_json::from_str(lines.next().expect("a document follows its action"))
                    .expect("a bulk document is JSON")
            };
            items.push(Item {
                action: action.clone(),
                index: params["_index"].as_str().unwrap_or("").to_string(),
                source,
            });
        }
        let n = {
            let mut r = record.lock().unwrap();
            r.requests.push(items.clone());
            r.requests.len() - 1
        };
        match script(n, &items) {
            Answer::Request(status) => {
                let body = if status == 413 {
                    String::new()
                } else {
                    json!({"error": {"root_cause": [], "type": error_type(status),
                                     "reason": format!("scripted failure {status}")},
                           "status": status})
                    .to_string()
                };
                (status, body)
            }
            Answer::Raw(body) => (200, body),
            Answer::Items(statuses) => {
                assert_eq!(statuses.len(), items.len(), "the script answers every item");
                let mut out = Vec::new();
                let mut r = record.lock().unwrap();
                for (i, (item, status)) in items.iter().zip(&statuses).enumerate() {
                    let mut v =
                        json!({"_index": item.index, "_id": format!("{n}-{i}"), "status": status});
                    if (200..300).contains(status) {
                        v["result"] = json!("created");
                        v["_version"] = json!(1);
                        v["_shards"] = json!({"total": 1, "successful": 1, "failed": 0});
                        r.indexed.push(item.clone());
                    } else {
                        v["error"] = json!({"type": error_type(*status),
                                            "reason": format!("scripted item failure {status}")});
                    }
                    out.push(json!({ item.action.clone(): v }));
                }
                let errors = statuses.iter().any(|s| !(200..300).contains(s));
                (
                    200,
                    json!({"took": 1, "errors": errors, "items": out}).to_string(),
                )
            }
        }
    }
}

/// `generator → elasticsearch` against `hosts`, with quick retries.
fn scripted_config(hosts: &str, count: usize, extra: &str) -> String {
    format!(
        r#"input {{ generator {{ count => {count} message => "scripted" }} }}
        output {{ elasticsearch {{
            hosts => [{hosts}]
            index => "scripted"
            retry_initial_interval => 0.05
            retry_max_interval => 0.2
            {extra}
        }} }}"#
    )
}

/// How many times each sequence number appears in `items`.
fn per_sequence(items: &[scripted::Item]) -> std::collections::BTreeMap<i64, usize> {
    let mut m = std::collections::BTreeMap::new();
    for i in items {
        *m.entry(i.seq()).or_insert(0) += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_answered_429_or_503_are_retried_alone_and_indexed_once() {
    let _serial = SERIAL.lock().await;
    // The first time a document is seen, two in three fail (429, 503); the rest and
    // every retry are indexed.
    let first_sight = std::sync::Mutex::new(std::collections::HashSet::new());
    let server = scripted::Server::start(move |_, items| {
        let mut seen = first_sight.lock().unwrap();
        scripted::Answer::Items(
            items
                .iter()
                .map(|i| match (seen.insert(i.seq()), i.seq() % 3) {
                    (true, 0) => 429,
                    (true, 1) => 503,
                    _ => 201,
                })
                .collect(),
        )
    })
    .await;
    let data = tempfile::tempdir().unwrap();
    let config = scripted_config(&format!("\"127.0.0.1:{}\"", server.port), 300, "");
    let mut child = start_sluice(&config, data.path());
    wait_exit(&mut child, Duration::from_secs(60));
    let indexed = per_sequence(&server.indexed());
    assert_eq!(indexed.len(), 300, "every event indexed");
    assert!(
        indexed.values().all(|n| *n == 1),
        "an event was indexed twice"
    );
    let sent = per_sequence(&server.requests().concat());
    for (seq, n) in &sent {
        let expected = if seq % 3 == 2 { 1 } else { 2 };
        assert_eq!(*n, expected, "sequence {seq} was sent {n} times");
    }
    assert!(dead_letters(data.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_413_splits_the_request_and_a_single_oversized_document_is_dead_lettered() {
    let _serial = SERIAL.lock().await;
    // The server takes at most 4 documents per request, and never the "huge" one.
    let server = scripted::Server::start(|_, items| {
        if items.len() > 4 || items.iter().any(|i| i.source["message"] == "huge") {
            scripted::Answer::Request(413)
        } else {
            scripted::Answer::Items(vec![201; items.len()])
        }
    })
    .await;
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        r#"input {{ generator {{ count => 10 lines => ["a", "b", "huge", "c", "d"] }} }}
        output {{ elasticsearch {{
            hosts => ["127.0.0.1:{}"]
            index => "scripted"
            retry_initial_interval => 0.05
            retry_max_interval => 0.2
        }} }}"#,
        server.port
    );
    let mut child = start_sluice(&config, data.path());
    wait_exit(&mut child, Duration::from_secs(60));
    let indexed = server.indexed();
    assert_eq!(indexed.len(), 40, "every document but the huge ones");
    assert!(indexed.iter().all(|i| i.source["message"] != "huge"));
    let by_seq = per_sequence(&indexed);
    assert_eq!(by_seq.len(), 40);
    assert!(
        by_seq.values().all(|n| *n == 1),
        "a document was indexed twice"
    );
    assert!(
        server.requests().iter().any(|r| r.len() > 4),
        "the test never made the server refuse a large request"
    );
    let dead = dead_letters(data.path());
    assert_eq!(dead.len(), 10, "{dead:?}");
    for d in &dead {
        assert_eq!(d["status"], 413);
        assert_eq!(d["event"]["message"], "huge");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_or_mismatched_bulk_responses_are_retried_and_nothing_is_lost() {
    let _serial = SERIAL.lock().await;
    let server = scripted::Server::start(|n, items| match n {
        0 => scripted::Answer::Raw("this is not json".into()),
        1 => scripted::Answer::Raw(r#"{"took":1,"errors":false}"#.into()),
        2 => {
            // One item short: the items cannot be matched to the documents.
            let short: Vec<Value> = items[1..]
                .iter()
                .map(|_| json!({"index": {"_index": "scripted", "status": 201, "result": "created"}}))
                .collect();
            scripted::Answer::Raw(json!({"took": 1, "errors": false, "items": short}).to_string())
        }
        _ => scripted::Answer::Items(vec![201; items.len()]),
    })
    .await;
    let data = tempfile::tempdir().unwrap();
    let config = scripted_config(&format!("\"127.0.0.1:{}\"", server.port), 50, "");
    let mut child = start_sluice(&config, data.path());
    wait_exit(&mut child, Duration::from_secs(60));
    let requests = server.requests();
    assert!(requests.len() >= 4, "{} requests", requests.len());
    let indexed = per_sequence(&server.indexed());
    assert_eq!(indexed.len(), 50, "every event indexed");
    assert!(indexed.values().all(|n| *n == 1));
    assert!(dead_letters(data.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_is_retried_until_the_permission_is_granted() {
    let _serial = SERIAL.lock().await;
    let server = scripted::Server::start(|n, items| {
        if n < 3 {
            scripted::Answer::Request(403)
        } else {
            scripted::Answer::Items(vec![201; items.len()])
        }
    })
    .await;
    let data = tempfile::tempdir().unwrap();
    let config = scripted_config(&format!("\"127.0.0.1:{}\"", server.port), 20, "");
    let mut child = start_sluice(&config, data.path());
    let log = wait_exit(&mut child, Duration::from_secs(60));
    assert!(log.contains("403"), "the refusal was not logged:\n{log}");
    let indexed = per_sequence(&server.indexed());
    assert_eq!(indexed.len(), 20);
    assert!(indexed.values().all(|n| *n == 1));
    assert!(
        dead_letters(data.path()).is_empty(),
        "a 403 is not a dead letter"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_answered_404_go_to_the_dead_letter_queue_and_are_not_retried() {
    let _serial = SERIAL.lock().await;
    let server = scripted::Server::start(|_, items| {
        scripted::Answer::Items(
            items
                .iter()
                .map(|i| if i.seq() % 2 == 0 { 404 } else { 201 })
                .collect(),
        )
    })
    .await;
    let data = tempfile::tempdir().unwrap();
    let config = scripted_config(&format!("\"127.0.0.1:{}\"", server.port), 40, "");
    let mut child = start_sluice(&config, data.path());
    wait_exit(&mut child, Duration::from_secs(60));
    let indexed = per_sequence(&server.indexed());
    assert_eq!(
        indexed.keys().copied().collect::<Vec<_>>(),
        (1..40).step_by(2).collect::<Vec<_>>()
    );
    let sent = per_sequence(&server.requests().concat());
    assert!(
        sent.values().all(|n| *n == 1),
        "a 404 item was retried: {sent:?}"
    );
    let dead = dead_letters(data.path());
    let mut dead_seqs: Vec<i64> = dead
        .iter()
        .map(|d| {
            assert_eq!(d["status"], 404, "{d}");
            assert_eq!(d["index"], "scripted", "{d}");
            assert!(
                d["reason"].as_str().unwrap().contains("index_not_found"),
                "{d}"
            );
            d["event"]["sequence"].as_i64().unwrap()
        })
        .collect();
    dead_seqs.sort();
    assert_eq!(dead_seqs, (0..40).step_by(2).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dead_letter_queue_cap_drops_newer_or_older_entries_as_configured() {
    let _serial = SERIAL.lock().await;
    let server =
        scripted::Server::start(|_, items| scripted::Answer::Items(vec![400; items.len()])).await;
    let config = scripted_config(&format!("\"127.0.0.1:{}\"", server.port), 200, "");
    let mut kept = Vec::new();
    for policy in ["drop_newer", "drop_older"] {
        let data = tempfile::tempdir().unwrap();
        let mut child = sluice()
            .arg("--path.data")
            .arg(data.path())
            .args([
                "-w",
                "1",
                "--dead_letter_queue.max_bytes",
                "16kb",
                "--dead_letter_queue.storage_policy",
                policy,
                "-e",
                &config,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = wait_exit(&mut child, Duration::from_secs(60));
        assert!(
            log.contains("dead letter queue"),
            "{policy}: nothing logged\n{log}"
        );
        let dir = data.path().join("dead_letter_queue/main");
        let bytes: u64 = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(bytes <= 16 * 1024, "{policy}: {bytes} bytes on disk");
        let seqs: Vec<i64> = dead_letters(data.path())
            .iter()
            .map(|d| d["event"]["sequence"].as_i64().unwrap())
            .collect();
        assert!(
            !seqs.is_empty() && seqs.len() < 200,
            "{policy}: {} entries",
            seqs.len()
        );
        kept.push(seqs);
    }
    let (newer, older) = (&kept[0], &kept[1]);
    assert_eq!(
        newer.iter().min(),
        Some(&0),
        "drop_newer keeps the first entries"
    );
    assert!(
        *newer.iter().max().unwrap() < 199,
        "drop_newer dropped the last"
    );
    assert_eq!(
        older.iter().max(),
        Some(&199),
        "drop_older keeps the last entries"
    );
    assert!(
        *older.iter().min().unwrap() > 0,
        "drop_older deleted the first"
    );

    let out = sluice()
        .args([
            "--dead_letter_queue.storage_policy",
            "drop_all",
            "-e",
            &config,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("drop_newer or drop_older"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_host_is_skipped_and_tried_again_after_resurrect_delay() {
    let _serial = SERIAL.lock().await;
    // Host A answers 503 (unavailable: a dead host) until told to serve; host B always
    // serves.
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = healthy.clone();
    let a = scripted::Server::start(move |_, items| {
        if flag.load(Ordering::Relaxed) {
            scripted::Answer::Items(vec![201; items.len()])
        } else {
            scripted::Answer::Request(503)
        }
    })
    .await;
    let b =
        scripted::Server::start(|_, items| scripted::Answer::Items(vec![201; items.len()])).await;
    let data = tempfile::tempdir().unwrap();
    // An endless trickle: 5 events every ~100 ms.
    let config = format!(
        r#"input {{ generator {{ count => 0 message => "trickle" }} }}
        filter {{ sleep {{ time => 0.02 }} }}
        output {{ elasticsearch {{
            hosts => ["127.0.0.1:{}", "127.0.0.1:{}"]
            index => "scripted"
            resurrect_delay => 1.5
            retry_initial_interval => 0.05
            retry_max_interval => 0.1
        }} }}"#,
        a.port, b.port
    );
    let child = sluice()
        .arg("--path.data")
        .arg(data.path())
        .args([
            "-w",
            "1",
            "-b",
            "5",
            "--queue.max_events",
            "50",
            "-e",
            &config,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while b.requests().len() < 5 {
        assert!(Instant::now() < deadline, "host B got nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Over 3 s, B takes about 30 requests; A, dead, is tried once per resurrect_delay.
    let (a0, b0) = (a.requests().len(), b.requests().len());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (a1, b1) = (a.requests().len(), b.requests().len());
    assert!(b1 - b0 >= 10, "B took only {} requests", b1 - b0);
    assert!(
        a1 - a0 <= 4,
        "A was tried {} times in 3 s while dead (B: {})",
        a1 - a0,
        b1 - b0
    );
    assert!(a.indexed().is_empty());
    // A recovers: after resurrect_delay it takes its share again.
    healthy.store(true, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.indexed().len() < 20 {
        assert!(
            Instant::now() < deadline,
            "A was never tried again after it recovered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_and_restarted_mid_run_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let mut server =
        scripted::Server::start(|_, items| scripted::Answer::Items(vec![201; items.len()])).await;
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        r#"input {{ generator {{ count => 3000 message => "restart" }} }}
        filter {{ sleep {{ time => 0.001 }} }}
        output {{ elasticsearch {{
            hosts => ["127.0.0.1:{}"]
            index => "scripted"
            resurrect_delay => 0.2
            retry_initial_interval => 0.05
            retry_max_interval => 0.2
        }} }}"#,
        server.port
    );
    let mut child = start_sluice(&config, data.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.indexed().len() < 300 {
        assert!(
            Instant::now() < deadline,
            "nothing arrived\n{}",
            stop(child)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    let before = server.indexed().len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(child.try_wait().unwrap().is_none(), "sluice gave up");
    server.restart().await;
    let log = wait_exit(&mut child, Duration::from_secs(60));
    assert!(before < 3000, "the server died after the run ended");
    let indexed = per_sequence(&server.indexed());
    assert_eq!(indexed.len(), 3000, "every event indexed\n{log}");
    let duplicates: usize = indexed.values().map(|n| n - 1).sum();
    eprintln!("server killed after {before} documents; {duplicates} indexed twice");
    assert!(server.connections() >= 2, "sluice did not reconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_headers_go_with_every_request_and_never_into_the_log() {
    let _serial = SERIAL.lock().await;
    let server =
        scripted::Server::start(|_, items| scripted::Answer::Items(vec![201; items.len()])).await;
    let data = tempfile::tempdir().unwrap();
    let template = data.path().join("template.json");
    std::fs::write(&template, r#"{"index_patterns": ["scripted"]}"#).unwrap();
    let extra = format!(
        r#"custom_headers => {{ "X-Tenant" => "blue" "X-Api-Token" => "t0ken-never-logged" }}
           template => "{}" template_name => "scripted""#,
        template.display()
    );
    let config = scripted_config(&format!("\"127.0.0.1:{}\"", server.port), 20, &extra);
    let mut child = start_sluice(&config, data.path());
    let log = wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(server.indexed().len(), 20);
    let heads = server.heads();
    assert!(
        heads
            .iter()
            .any(|h| h.starts_with("PUT /_template/scripted")),
        "the template request is among those checked: {heads:?}"
    );
    assert!(heads.iter().any(|h| h.starts_with("POST /_bulk")));
    for head in &heads {
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("\r\nx-tenant: blue"), "{head}");
        assert!(
            lower.contains("\r\nx-api-token: t0ken-never-logged"),
            "{head}"
        );
    }
    assert!(
        !log.contains("t0ken"),
        "a header value reached the log:\n{log}"
    );
    let test = sluice().args(["-t", "-e", &config]).output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    assert!(test.status.success(), "{printed}");
    assert!(!printed.contains("t0ken"), "{printed}");
}

/// A document indexed straight into osmem-server with an external version.
async fn put_versioned(server: &Server, index: &str, id: &str, version: i64, body: Value) {
    let (status, v) = http(
        reqwest::Method::PUT,
        &server.url(&format!(
            "/{index}/_doc/{id}?version={version}&version_type=external&refresh=true"
        )),
        Some(body),
    )
    .await;
    assert!(status == 200 || status == 201, "{status} {v}");
}

/// Runs `generator { lines => ... } → elasticsearch { extra }` against `server`
/// and returns the log once it is done.
fn run_lines(server: &Server, data: &std::path::Path, lines: &[&str], extra: &str) -> String {
    let lines = lines
        .iter()
        .map(|l| format!("'{l}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let config = format!(
        r#"input {{ generator {{ count => 1 lines => [{lines}] codec => json }} }}
        output {{ elasticsearch {{
            hosts => ["127.0.0.1:{}"]
            retry_initial_interval => 0.05
            retry_max_interval => 0.2
            {extra}
        }} }}"#,
        server.port
    );
    let mut child = start_sluice(&config, data);
    wait_exit(&mut child, Duration::from_secs(60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_versions_keep_the_newest_document_and_stale_ones_are_not_retried() {
    let _serial = SERIAL.lock().await;
    let server = Server::start();
    put_versioned(&server, "versioned", "a", 5, json!({"n": "five"})).await;
    let data = tempfile::tempdir().unwrap();
    let log = run_lines(
        &server,
        data.path(),
        &[
            r#"{"id": "a", "v": 3, "n": "three"}"#,
            r#"{"id": "b", "v": 7, "n": "seven"}"#,
            r#"{"id": "c", "v": "x", "n": "no version"}"#,
        ],
        r#"index => "versioned" document_id => "%{id}" version => "%{v}" version_type => "external""#,
    );
    let (_, a) = http(reqwest::Method::GET, &server.url("/versioned/_doc/a"), None).await;
    assert_eq!(a["_version"], 5, "the stale version was written: {a}");
    assert_eq!(a["_source"]["n"], "five");
    let (_, b) = http(reqwest::Method::GET, &server.url("/versioned/_doc/b"), None).await;
    assert_eq!(b["_version"], 7, "{b}");
    assert_eq!(b["_source"]["n"], "seven");
    // The stale document is no dead letter; the one without a version is.
    let dead = dead_letters(data.path());
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["event"]["id"], "c");
    assert!(
        dead[0]["reason"].as_str().unwrap().contains("version"),
        "{}",
        dead[0]
    );
    assert!(
        log.contains("newer external version"),
        "the stale document is logged:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_updates_reach_the_server_as_scripts() {
    let _serial = SERIAL.lock().await;
    let server = Server::start();
    let data = tempfile::tempdir().unwrap();
    // osmem-server runs no scripts: it creates a missing document from the upsert and
    // refuses a script on an existing one (HTTP 400), which shows the script was sent.
    put_versioned(&server, "scripted-updates", "old", 1, json!({"n": 1})).await;
    run_lines(
        &server,
        data.path(),
        &[r#"{"id": "new", "n": 2}"#, r#"{"id": "old", "n": 3}"#],
        r#"index => "scripted-updates" action => update document_id => "%{id}"
           script => "ctx._source.n += params.event.n" doc_as_upsert => true"#,
    );
    let (_, new) = http(
        reqwest::Method::GET,
        &server.url("/scripted-updates/_doc/new"),
        None,
    )
    .await;
    assert_eq!(
        new["_source"]["n"], 2,
        "doc_as_upsert creates the event: {new}"
    );
    let dead = dead_letters(data.path());
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["event"]["id"], "old");
    assert_eq!(dead[0]["status"], 400);
    assert!(
        dead[0]["reason"].as_str().unwrap().contains("script"),
        "{}",
        dead[0]
    );
}

/// A throwaway CA with a server certificate for 127.0.0.1 and a client certificate,
/// as PEM files, and a TLS proxy that demands a client certificate from that CA before
/// it forwards a connection to osmem-server.
mod mutual_tls {
    use std::path::Path;
    use std::sync::Arc;

    pub struct Pki {
        pub files: crate::common::pki::Pki,
        server: rustls::ServerConfig,
    }

    impl std::ops::Deref for Pki {
        type Target = crate::common::pki::Pki;
        fn deref(&self) -> &Self::Target {
            &self.files
        }
    }

    /// The PKI, and the proxy's TLS configuration: its certificate, and client
    /// certificates required from the CA.
    pub fn pki(dir: &Path) -> Pki {
        let files = crate::common::pki::Pki::new(dir, "sluice");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(files.roots()),
            provider.clone(),
        )
        .build()
        .unwrap();
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![files.server_der.clone()], files.server_key_der())
            .unwrap();
        Pki { files, server }
    }

    /// Listens on a free port; each connection that completes the handshake (with a
    /// client certificate) is forwarded to `upstream`. Returns the port.
    pub async fn proxy(pki: &Pki, upstream: u16) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(pki.server.clone()));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut up) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                });
            }
        });
        port
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_opens_a_server_that_demands_one() {
    let _serial = SERIAL.lock().await;
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let pki = mutual_tls::pki(dir.path());
    let port = mutual_tls::proxy(&pki, server.port).await;
    let output = |with_cert: bool| {
        let cert = if with_cert {
            format!(
                r#"ssl_certificate => "{}" ssl_key => "{}""#,
                pki.client_cert.display(),
                pki.client_key.display()
            )
        } else {
            String::new()
        };
        format!(
            r#"input {{ generator {{ count => 50 message => "mtls" }} }}
            output {{ elasticsearch {{
                hosts => ["https://127.0.0.1:{port}"] index => "mtls"
                ssl_certificate_authorities => ["{}"] {cert}
                retry_initial_interval => 0.05 retry_max_interval => 0.2
            }} }}"#,
            pki.ca.display()
        )
    };
    // Without a certificate the handshake fails: nothing is indexed, and the failure
    // is logged and retried.
    let data = tempfile::tempdir().unwrap();
    let child = start_sluice(&output(false), data.path());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = stop(child);
    assert_eq!(count(&server, "mtls").await, 0);
    assert!(
        log.contains("bulk request failed"),
        "the handshake failure is logged:\n{log}"
    );
    // With it, every event arrives.
    let data = tempfile::tempdir().unwrap();
    let config = output(true);
    let mut child = start_sluice(&config, data.path());
    let log = wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(count(&server, "mtls").await, 50, "{log}");
    let key_body = pki
        .client_key_pem
        .lines()
        .nth(1)
        .expect("a PEM key has a body line");
    let test = sluice().args(["-t", "-e", &config]).output().unwrap();
    let printed = format!(
        "{log}{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    assert!(test.status.success(), "{printed}");
    assert!(
        !printed.contains(key_body),
        "the key reached a log:\n{printed}"
    );
}
