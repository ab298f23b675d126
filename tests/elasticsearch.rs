//! The `elasticsearch` output against a real OpenSearch-compatible server
//! (osmem-server, from the test venv), started and stopped here: delivery of 100,000
//! events, outages (a paused server, connections cut by a proxy, a server that starts
//! late), mapping conflicts going to the dead letter queue and replayed after the fix,
//! and failures a user must fix (wrong credentials, TLS against a plain server).

mod common;

use common::{free_port, sluice, spawn, wait_for_port, KillOnDrop};
use serde_json::{json, Value};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every test here runs a server and a pipeline; on a small machine they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The osmem-server binary: on the venv's PATH, or bundled in its Python package.
fn osmem_bin() -> PathBuf {
    let direct = common::venv().join("bin").join("osmem-server");
    if direct.exists() {
        return direct;
    }
    let python = common::venv_bin("python");
    let out = Command::new(python)
        .args([
            "-c",
            "import osmem_server; print(osmem_server.resolve_binary())",
        ])
        .output()
        .expect("cannot run the venv's python");
    assert!(
        out.status.success(),
        "osmem-server is not installed in the venv: run scripts/test.sh ({})",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

struct Server {
    child: KillOnDrop,
    port: u16,
}

impl Server {
    fn start_on(port: u16) -> Server {
        let mut cmd = Command::new(osmem_bin());
        cmd.args(["-addr", &format!("127.0.0.1:{port}"), "-no-stdin-watch"]);
        let child = spawn(cmd);
        assert!(
            wait_for_port(port, Duration::from_secs(20)),
            "osmem-server did not start"
        );
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

async fn count(server: &Server, index: &str) -> u64 {
    let (status, v) = http(
        reqwest::Method::GET,
        &server.url(&format!("/{index}/_count")),
        None,
    )
    .await;
    if status != 200 {
        return 0;
    }
    v["count"].as_u64().unwrap_or(0)
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
async fn hundred_thousand_events_arrive_exactly_once_with_a_document_id() {
    let _serial = SERIAL.lock().await;
    let server = Server::start();
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        r#"input {{ generator {{ count => 100000 message => "event" }} }}
        output {{ elasticsearch {{
            hosts => ["127.0.0.1:{port}"]
            index => "gen-%{{+yyyy.MM.dd}}"
            document_id => "%{{sequence}}"
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
    assert_eq!(total, 100_000);
    // Ids are the sequence numbers: 100,000 documents means each exactly once.
    let seqs = sequences(&server, "gen-*").await;
    assert_eq!(seqs.len(), 100_000);
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
        r#"input {{ generator {{ count => 100000 message => "event" }} }}
        output {{ elasticsearch {{
            hosts => ["127.0.0.1:{port}"]
            index => "outage"
            timeout => 2
            retry_initial_interval => 0.2
            retry_max_interval => 1
        }} }}"#,
        port = proxy.port
    );
    let mut child = start_sluice(&config, data.path());
    let pid = child.id();
    // Let some events through first.
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&server, "outage").await < 5_000 {
        assert!(Instant::now() < deadline, "nothing arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Pause the server for a while (requests time out), watching memory.
    signal(server.pid(), "STOP");
    let mut peak = 0;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss_kib(pid).unwrap_or(0));
    }
    signal(server.pid(), "CONT");
    // Cut every connection a few times while the run goes on.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.cut();
        peak = peak.max(rss_kib(pid).unwrap_or(0));
    }
    let log = wait_exit(&mut child, Duration::from_secs(300));
    assert!(
        log.contains("bulk request failed"),
        "the outage was not logged:\n{log}"
    );
    // Memory stayed bounded by the queue, not by the events held back.
    assert!(peak < 400 * 1024, "peak RSS {peak} KiB");
    let seqs = sequences(&server, "outage").await;
    let mut seen = vec![false; 100_000];
    for s in &seqs {
        seen[*s as usize] = true;
    }
    let missing = seen.iter().filter(|s| !**s).count();
    assert_eq!(missing, 0, "{missing} events lost");
    assert!(seqs.len() >= 100_000);
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
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        lines.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
        );
    }
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
