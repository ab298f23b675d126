//! The `http` output against a local HTTP/1.1 receiver started here, which answers 503
//! (with `Retry-After: 0`) for its first requests, then 200, and 400 for chosen events:
//! every event arrives exactly once or is dead-lettered with its reason.

mod common;

use common::{dead_letters, sluice};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    /// How many times each accepted `sequence` arrived.
    accepted: Mutex<BTreeMap<i64, usize>>,
    /// Request paths of accepted requests.
    paths: Mutex<Vec<String>>,
    /// Requests that came with `Content-Encoding: gzip` (and were inflated).
    gzipped: AtomicUsize,
}

/// The receiver's rules.
#[derive(Clone, Copy)]
struct Rules {
    /// Requests answered 503 before any is accepted.
    unavailable_for: usize,
    /// Events whose `sequence % 10` is this get a 400.
    reject_digit: Option<i64>,
}

/// Starts the receiver on a free 127.0.0.1 port.
async fn receiver(rules: Rules) -> (u16, Arc<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let state = seen.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(connection(sock, rules, state.clone()));
        }
    });
    (port, seen)
}

/// Serves one keep-alive connection: reads each request (headers and content-length
/// body) and answers by the rules.
async fn connection(mut sock: tokio::net::TcpStream, rules: Rules, seen: Arc<Seen>) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        if buf.len() < head_end + 4 + len {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        }
        let mut body: Vec<u8> = buf[head_end + 4..head_end + 4 + len].to_vec();
        buf.drain(..head_end + 4 + len);
        let gzipped = head.lines().any(|l| {
            l.split_once(':').is_some_and(|(k, v)| {
                k.eq_ignore_ascii_case("content-encoding") && v.trim().eq_ignore_ascii_case("gzip")
            })
        });
        if gzipped {
            let mut inflated = Vec::new();
            let ok = std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(&body[..]),
                &mut inflated,
            )
            .is_ok();
            body = if ok { inflated } else { b"bad gzip".to_vec() };
            seen.gzipped.fetch_add(1, Ordering::SeqCst);
        }
        let path = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("")
            .to_string();
        let (status, text) = answer(&rules, &seen, &path, &body);
        let resp = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\nretry-after: 0\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        if sock.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn answer(rules: &Rules, seen: &Seen, path: &str, body: &[u8]) -> (u16, String) {
    let n = seen.requests.fetch_add(1, Ordering::SeqCst);
    if n < rules.unavailable_for {
        return (503, "warming up".into());
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (400, "not json".into());
    };
    let events = match v {
        Value::Array(items) => items,
        one => vec![one],
    };
    let seqs: Vec<i64> = events
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap_or(-1))
        .collect();
    if let Some(d) = rules.reject_digit {
        if let Some(bad) = seqs.iter().find(|s| *s % 10 == d) {
            return (400, format!("bad event {bad}"));
        }
    }
    let mut accepted = seen.accepted.lock().unwrap();
    for s in seqs {
        *accepted.entry(s).or_insert(0) += 1;
    }
    seen.paths.lock().unwrap().push(path.to_string());
    (200, "ok".into())
}

/// Runs sluice until its generator's events are all settled; returns its data dir.
async fn run(output: &str) -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let config = format!("input {{ generator {{ count => 200 message => \"m\" }} }} {output}");
    let dir = data.path().to_path_buf();
    let (status, log) = tokio::task::spawn_blocking(move || {
        let mut child = sluice()
            .arg("--path.data")
            .arg(&dir)
            .args(["-w", "2", "-b", "25", "-e", &config])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut log = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut log);
            log
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        (status, reader.join().unwrap())
    })
    .await
    .unwrap();
    let status = status.unwrap_or_else(|| panic!("sluice did not finish within 120 s\n{log}"));
    assert!(status.success(), "sluice failed: {status}\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_once_or_is_dead_lettered_with_its_reason() {
    let (port, seen) = receiver(Rules {
        unavailable_for: 30,
        reject_digit: Some(3),
    })
    .await;
    let data = run(&format!(
        r#"output {{ http {{
            url => "http://127.0.0.1:{port}/events/%{{sequence}}"
            http_method => "post"
            headers => {{ "X-Sequence" => "%{{sequence}}" }}
            retry_initial_interval => 0.05
            retry_max_interval => 0.2
        }} }}"#
    ))
    .await;
    let accepted = seen.accepted.lock().unwrap().clone();
    let dead = dead_letters(data.path());
    assert!(seen.requests.load(Ordering::SeqCst) >= 30 + 200);
    // Nothing duplicated: no fault was injected after a 200.
    assert!(accepted.values().all(|n| *n == 1), "{accepted:?}");
    let dead_seqs: Vec<i64> = dead
        .iter()
        .map(|d| d["event"]["sequence"].as_i64().unwrap())
        .collect();
    for d in &dead {
        let seq = d["event"]["sequence"].as_i64().unwrap();
        assert_eq!(d["status"], 400, "{d}");
        assert_eq!(d["plugin"], "http", "{d}");
        assert_eq!(d["action"], "post", "{d}");
        assert_eq!(d["index"], format!("http://127.0.0.1:{port}/events/{seq}"));
        assert!(
            d["reason"]
                .as_str()
                .unwrap()
                .contains(&format!("bad event {seq}")),
            "{d}"
        );
    }
    // Nothing lost: each event is in exactly one of the two.
    for seq in 0..200i64 {
        let arrived = accepted.contains_key(&seq);
        let dead_lettered = dead_seqs.iter().filter(|s| **s == seq).count();
        assert_eq!(
            (arrived, dead_lettered),
            if seq % 10 == 3 { (false, 1) } else { (true, 0) },
            "event {seq}"
        );
    }
    // The url is rendered per event.
    let paths = seen.paths.lock().unwrap();
    assert!(paths.contains(&"/events/0".to_string()), "{paths:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_batch_arrives_exactly_once_through_an_outage() {
    let (port, seen) = receiver(Rules {
        unavailable_for: 10,
        reject_digit: None,
    })
    .await;
    let data = run(&format!(
        r#"output {{ http {{
            url => "http://127.0.0.1:{port}/bulk"
            http_method => "put"
            format => "json_batch"
            retry_initial_interval => 0.05
            retry_max_interval => 0.2
        }} }}"#
    ))
    .await;
    let accepted = seen.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 200);
    assert!(accepted.values().all(|n| *n == 1), "{accepted:?}");
    assert!(dead_letters(data.path()).is_empty());
    // Batches, not one request per event.
    assert!(seen.paths.lock().unwrap().len() < 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_compression_gzips_bodies_with_their_content_encoding() {
    let (port, seen) = receiver(Rules {
        unavailable_for: 0,
        reject_digit: None,
    })
    .await;
    let data = run(&format!(
        r#"output {{ http {{
            url => "http://127.0.0.1:{port}/bulk"
            http_method => "post"
            format => "json_batch"
            http_compression => true
        }} }}"#
    ))
    .await;
    let accepted = seen.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 200);
    assert!(dead_letters(data.path()).is_empty());
    let requests = seen.requests.load(Ordering::SeqCst);
    assert_eq!(seen.gzipped.load(Ordering::SeqCst), requests);
}

/// The dead-lettered counter counts only the entries the dead letter queue kept: with a
/// small cap and `drop_newer`, the refused ones are counted as dropped instead. Runs the
/// pipeline in this process (no other test here does) to read its counters exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_lettered_counts_what_the_queue_kept_and_dropped_what_it_refused() {
    use sluice::metrics::{get, plugin};
    let (port, seen) = receiver(Rules {
        unavailable_for: 0,
        reject_digit: Some(3),
    })
    .await;
    let data = tempfile::tempdir().unwrap();
    let text = format!(
        r#"input {{ generator {{ count => 200 message => "m" }} }}
           output {{ http {{ id => "capped" url => "http://127.0.0.1:{port}/events/%{{sequence}}" http_method => "post" }} }}"#
    );
    let mut settings = sluice::settings::Settings::new(sluice::config::Source::Text(text));
    settings.data_dir = data.path().to_path_buf();
    settings.workers = 2;
    settings.batch_size = 25;
    // Room for some of the 20 rejects, not all.
    settings.dlq_max_bytes = 4096;
    settings.dlq_storage_policy = sluice::queue::dlq::StoragePolicy::DropNewer;
    let pipeline = sluice::pipeline::load(&settings).unwrap();
    tokio::time::timeout(
        Duration::from_secs(120),
        sluice::pipeline::run_pipeline(
            pipeline,
            &settings,
            tokio_util::sync::CancellationToken::new(),
        ),
    )
    .await
    .expect("the pipeline did not finish within 120 s")
    .unwrap();
    assert_eq!(seen.accepted.lock().unwrap().len(), 180);
    let kept = dead_letters(data.path()).len() as u64;
    let m = get();
    let rejected = m.outputs.rejected.get_or_create(&plugin("capped")).get();
    let dead_lettered = m
        .outputs
        .dead_lettered
        .get_or_create(&plugin("capped"))
        .get();
    let dropped = m
        .dead_letter_queue
        .dropped
        .get_or_create(&vec![
            ("pipeline", "main".to_string()),
            ("policy", "drop_newer".to_string()),
        ])
        .get();
    assert_eq!(rejected, 20);
    assert!(kept > 0 && kept < 20, "the cap kept {kept} of 20 entries");
    assert_eq!(dead_lettered, kept, "dead-lettered counts the entries kept");
    assert_eq!(
        dropped,
        rejected - kept,
        "dropped counts the entries refused"
    );
    assert_eq!(
        m.outputs
            .dead_letter_lost
            .get_or_create(&plugin("capped"))
            .get(),
        0
    );
}
