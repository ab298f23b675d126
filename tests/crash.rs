//! Crash safety of the persisted queue, against the sluice binary on loopback: SIGKILL
//! under load over tcp and Beats, damaged pages at start, a queue smaller than the
//! input, an output down, and a full disk (a small tmpfs the test mounts when it runs as
//! root). Each test is bounded (every wait has a deadline and a message).
//!
//! What "acked" means per input:
//! - Beats: the client got the window's ACK.
//! - tcp has no acknowledgement in its protocol. The client sends a chunk, half-closes,
//!   and counts the chunk acked when the server then closes the connection in order:
//!   sluice closes a connection only after pushing everything read from it into the
//!   queue. A kill also closes the socket, so a close is only believed when no kill
//!   happened since the chunk was sent (the killer holds a lock around kill + reap).

#[path = "beats_client/mod.rs"]
mod beats_client;
mod common;

use common::{free_port, sluice, wait_for_port};
use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A sluice process on a persisted queue, restartable on the same data directory.
struct Sluice {
    data: PathBuf,
    config: String,
    extra: Vec<String>,
    child: Option<Child>,
    log: PathBuf,
    starts: usize,
    /// Its HTTP API, for the stats a failure message shows.
    api_port: u16,
}

impl Sluice {
    fn new(data: &Path, config: String, extra: &[&str]) -> Sluice {
        Sluice {
            data: data.to_path_buf(),
            config,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
            log: data.join("sluice.log"),
            starts: 0,
            api_port: free_port(),
        }
    }

    fn start(&mut self) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        // At info level, unlike other tests: when a run fails here, the log should say
        // what the process did (signals, stops, connections timed out), not only warnings.
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args([
                "--log.level",
                "info",
                "-w",
                "2",
                "--queue.type",
                "persisted",
            ])
            .args(["--api.http.port", &self.api_port.to_string()])
            .arg("--path.data")
            .arg(&self.data)
            .args(&self.extra)
            .args(["-e", &self.config])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cannot start sluice");
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the exit.
    fn stop(&mut self, limit: Duration) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + limit;
        while c.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("sluice did not stop within {limit:?}\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// How the process ended, if it did (reaping it then).
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// What a failure message shows: whether the process still runs, its pipeline and
    /// queue stats from the API, and its log.
    fn diagnosis(&mut self) -> String {
        let state = match self.exited() {
            Some(status) => format!("sluice exited: {status}"),
            None if self.child.is_some() => "sluice still running".to_string(),
            None => "sluice not started".to_string(),
        };
        let stats = get_json(self.api_port, "/_node/stats/pipelines");
        format!("{state}\nstats: {stats}\nlog:\n{}", self.log_text())
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Counts of each `(src, id)` in the json_lines output file; unparsable lines (a
/// write cut by a kill) are counted apart.
fn read_output(path: &Path) -> (HashMap<(String, u64), usize>, usize) {
    let mut seen = HashMap::new();
    let mut torn = 0;
    let text = std::fs::read(path).unwrap_or_default();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(v) => {
                let src = v["message"].as_str().unwrap_or("?").to_string();
                if let Some(id) = v["id"].as_u64() {
                    *seen.entry((src, id)).or_insert(0) += 1;
                }
            }
            Err(_) => torn += 1,
        }
    }
    (seen, torn)
}

/// How long the clients spread their events over at the least: the kills must land
/// while events flow, however fast Sluice takes them.
const CLIENT_PACE: Duration = Duration::from_secs(15);

/// Waits until `done` of `n` events are due, when `n` events are spread over `pace`
/// from `start`.
fn pace_to(start: Instant, pace: Duration, done: u64, n: u64) {
    let due = start + pace.mul_f64(done as f64 / n.max(1) as f64);
    if let Some(wait) = due.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
}

/// Sends tcp events `0..n` in chunks, each acked by an orderly close (see the module
/// doc); a chunk that was not acked is sent again. Chunks are spread over
/// [`CLIENT_PACE`]. Returns the acked ids.
fn tcp_client(
    port: u16,
    n: u64,
    chunk: u64,
    kills: Arc<Mutex<u64>>,
    deadline: Instant,
) -> Vec<u64> {
    let mut acked = Vec::new();
    let mut next = 0;
    let start = Instant::now();
    while next < n {
        pace_to(start, CLIENT_PACE, next, n);
        assert!(
            Instant::now() < deadline,
            "tcp client: out of time at {next}/{n}"
        );
        let generation = *kills.lock().unwrap();
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let end = (next + chunk).min(n);
        let mut body = Vec::new();
        for id in next..end {
            body.extend_from_slice(format!("{{\"message\":\"tcp\",\"id\":{id}}}\n").as_bytes());
        }
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        let sent = s.write_all(&body).is_ok() && s.shutdown(Shutdown::Write).is_ok();
        let mut rest = Vec::new();
        let closed_in_order = sent && matches!(s.read_to_end(&mut rest), Ok(0));
        // The close counts only if no kill happened since the chunk was sent.
        if closed_in_order && *kills.lock().unwrap() == generation {
            acked.extend(next..end);
            next = end;
        }
    }
    acked
}

/// Sends Beats events `0..n` in windows, spread over [`CLIENT_PACE`]; a window is
/// acked by its ACK. Returns the acked ids.
fn beats_client(port: u16, n: u64, window: u64, deadline: Instant) -> Vec<u64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut acked = Vec::new();
        let mut next = 0;
        let start = Instant::now();
        while next < n {
            assert!(
                Instant::now() < deadline,
                "beats client: out of time at {next}/{n}"
            );
            let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let mut client = beats_client::Client::new(stream);
            while next < n {
                let due = start + CLIENT_PACE.mul_f64(next as f64 / n.max(1) as f64);
                tokio::time::sleep_until(due.into()).await;
                let end = (next + window).min(n);
                let docs: Vec<Vec<u8>> = (next..end)
                    .map(|id| beats_client::document(id, "beats"))
                    .collect();
                let bytes = beats_client::window(&docs, true);
                if client.send(&bytes).await.is_err() {
                    break;
                }
                let got = tokio::time::timeout(Duration::from_secs(30), async {
                    loop {
                        match client.ack().await {
                            Some(0) => continue,
                            other => return other,
                        }
                    }
                })
                .await;
                match got {
                    Ok(Some(seq)) if seq as u64 == end - next => {
                        acked.extend(next..end);
                        next = end;
                    }
                    _ => break,
                }
            }
        }
        acked
    })
}

#[test]
fn every_acked_event_survives_repeated_kill_9() {
    const TCP_EVENTS: u64 = 30_000;
    const BEATS_EVENTS: u64 = 30_000;
    const KILLS: usize = 6;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.log");
    let (tcp_port, beats_port) = (free_port(), free_port());
    let config = format!(
        r#"input {{
            tcp {{ host => "127.0.0.1" port => {tcp_port} codec => json_lines }}
            beats {{ host => "127.0.0.1" port => {beats_port} }}
        }}
        output {{ file {{ path => "{}" codec => json_lines }} }}"#,
        out.display()
    );
    let mut sluice = Sluice::new(tmp.path(), config, &[]);
    sluice.start();
    assert!(
        wait_for_port(tcp_port, Duration::from_secs(30)),
        "sluice did not listen\n{}",
        sluice.diagnosis()
    );

    let deadline = Instant::now() + Duration::from_secs(120);
    let kills = Arc::new(Mutex::new(0u64));
    let tcp = {
        let kills = kills.clone();
        std::thread::spawn(move || tcp_client(tcp_port, TCP_EVENTS, 500, kills, deadline))
    };
    let beats = std::thread::spawn(move || beats_client(beats_port, BEATS_EVENTS, 250, deadline));

    let mut rng = rand::thread_rng();
    let clients_done = || tcp.is_finished() && beats.is_finished();
    let mut killed = 0;
    while killed < KILLS {
        std::thread::sleep(Duration::from_millis(rng.gen_range(200..1200)));
        {
            let mut generation = kills.lock().unwrap();
            sluice.kill9();
            *generation += 1;
        }
        killed += 1;
        sluice.start();
        assert!(
            wait_for_port(tcp_port, Duration::from_secs(30)),
            "sluice did not restart\n{}",
            sluice.diagnosis()
        );
        if clients_done() {
            break;
        }
    }
    let tcp_acked = tcp.join().expect("tcp client failed");
    let beats_acked = beats.join().expect("beats client failed");
    assert_eq!(tcp_acked.len() as u64, TCP_EVENTS);
    assert_eq!(beats_acked.len() as u64, BEATS_EVENTS);

    // Everything acked reaches the output; wait for it, then stop in order.
    let wanted: HashSet<(String, u64)> = tcp_acked
        .iter()
        .map(|&i| ("tcp".to_string(), i))
        .chain(beats_acked.iter().map(|&i| ("beats".to_string(), i)))
        .collect();
    let wait_until = Instant::now() + Duration::from_secs(60);
    let (seen, torn) = loop {
        let (seen, torn) = read_output(&out);
        let missing = wanted.iter().filter(|k| !seen.contains_key(*k)).count();
        if missing == 0 {
            break (seen, torn);
        }
        assert!(
            Instant::now() < wait_until,
            "{missing} acked events never reached the output after {killed} kills\n{}",
            sluice.diagnosis()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    sluice.stop(Duration::from_secs(30));
    let duplicates: usize = seen.values().map(|&c| c - 1).sum();
    eprintln!(
        "kill -9 x{killed}: {} tcp + {} beats events acked, all delivered; {duplicates} duplicates, {torn} output lines cut by a kill",
        tcp_acked.len(),
        beats_acked.len()
    );
    assert!(
        killed >= 5,
        "only {killed} kills happened before the clients finished"
    );
}

/// Writes `n` one-event records (ids 0..n) into a persisted queue in `dir` with the
/// library, acknowledging none, as a run killed before delivery would leave them.
fn fill_queue(dir: &Path, n: u64) {
    use sluice::batch::{Ack, Batch};
    use sluice::event::{Event, Value};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut cfg = sluice::queue::PersistedConfig::new(dir.to_path_buf());
        cfg.page_capacity = 64 * 1024;
        let q = sluice::queue::PersistedQueue::open(cfg).unwrap();
        for id in 0..n {
            let mut e = Event::new();
            e.insert_field("message", Value::from("disk"));
            e.insert_field("id", Value::Int(id as i64));
            q.push(Batch::new(vec![e], Ack::none())).await.unwrap();
        }
    });
}

/// The ids of the intact records of the pages in `dir`.
fn intact_ids(dir: &Path) -> HashSet<u64> {
    let mut ids = HashSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "page") {
            let bytes = std::fs::read(&path).unwrap();
            for r in sluice::queue::segment::scan(&bytes, 0).records {
                let mut events = Vec::new();
                sluice::queue::persisted::decode_events(&bytes[r], &mut events).unwrap();
                for e in events {
                    if let Some(sluice::event::Value::Int(id)) = e.get_field("id") {
                        ids.insert(*id as u64);
                    }
                }
            }
        }
    }
    ids
}

/// Runs sluice over an existing queue with an input that ends at once, so it replays
/// and drains the queue and exits; returns its log.
fn replay(data: &Path, out: &Path) -> String {
    let config = format!(
        r#"input {{ stdin {{ }} }} output {{ file {{ path => "{}" codec => json_lines }} }}"#,
        out.display()
    );
    let mut sluice = Sluice::new(data, config, &[]);
    sluice.start();
    let mut child = sluice.child.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "replay did not finish\n{}",
            sluice.diagnosis()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sluice.diagnosis()
}

#[test]
fn a_torn_or_bit_flipped_page_is_reported_and_every_intact_record_delivered() {
    let mut rng = rand::thread_rng();
    for damage in ["truncate", "flip"] {
        let tmp = tempfile::tempdir().unwrap();
        let qdir = tmp.path().join("queue");
        fill_queue(&qdir, 3000);
        let mut pages: Vec<PathBuf> = std::fs::read_dir(&qdir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "page"))
            .collect();
        pages.sort();
        assert!(pages.len() >= 3, "expected several pages: {pages:?}");
        let all = intact_ids(&qdir);
        assert_eq!(all.len(), 3000);
        // Damage the last page (a crash mid-write) or one in the middle (bit rot).
        let victim = match damage {
            "truncate" => pages.last().unwrap().clone(),
            _ => pages[pages.len() / 2].clone(),
        };
        let mut bytes = std::fs::read(&victim).unwrap();
        let at = rng.gen_range(1..bytes.len());
        match damage {
            "truncate" => bytes.truncate(at),
            _ => bytes[at] ^= 1 << rng.gen_range(0..8),
        }
        std::fs::write(&victim, &bytes).unwrap();
        let expected = intact_ids(&qdir);
        // A cut exactly between two records leaves nothing to report.
        let clean_cut = sluice::queue::segment::scan(&bytes, 0).damaged.is_empty();

        let out = tmp.path().join("out.log");
        let log = replay(tmp.path(), &out);
        let (seen, _) = read_output(&out);
        let got: HashSet<u64> = seen.keys().map(|(_, id)| *id).collect();
        assert_eq!(
            got.len(),
            expected.len(),
            "{damage} at byte {at} of {}: every intact record must be delivered\n{log}",
            victim.display()
        );
        assert!(expected.is_subset(&got));
        let reported = match damage {
            "truncate" => clean_cut || log.contains("torn last record"),
            _ => log.contains("damaged"),
        };
        assert!(reported, "{damage} at byte {at} was not reported\n{log}");
        eprintln!(
            "{damage} at byte {at}: {} of 3000 records intact and delivered",
            expected.len()
        );
    }
}

#[test]
fn a_queue_smaller_than_the_input_holds_inputs_back_and_loses_nothing() {
    const EVENTS: u64 = 20_000;
    const CAP: u64 = 256 * 1024;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.log");
    let port = free_port();
    // A slow output (sleep filter) so the queue fills up.
    let config = format!(
        r#"input {{ tcp {{ host => "127.0.0.1" port => {port} codec => json_lines }} }}
        filter {{ sleep {{ time => 0.01 every => 100 }} }}
        output {{ file {{ path => "{}" codec => json_lines }} }}"#,
        out.display()
    );
    let mut sluice = Sluice::new(
        tmp.path(),
        config,
        &[
            "--queue.max_bytes",
            "256kb",
            "--queue.max_events",
            "200",
            "-b",
            "50",
        ],
    );
    sluice.start();
    assert!(
        wait_for_port(port, Duration::from_secs(30)),
        "{}",
        sluice.diagnosis()
    );
    // The sender reports how far it got rather than panicking, so that a failure says
    // what the client saw next to what sluice did.
    let sender = std::thread::spawn(move || -> Result<(), String> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
        for id in 0..EVENTS {
            s.write_all(
                format!(
                    "{{\"message\":\"tcp\",\"id\":{id},\"pad\":\"{}\"}}\n",
                    "x".repeat(100)
                )
                .as_bytes(),
            )
            .map_err(|e| format!("write of event {id} failed: {e}"))?;
        }
        Ok(())
    });
    let qdir = tmp.path().join("queue");
    let mut peak = 0u64;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        peak = peak.max(dir_bytes(&qdir));
        let (seen, _) = read_output(&out);
        if seen.len() as u64 == EVENTS {
            break;
        }
        let failure = if sluice.exited().is_some() {
            Some("sluice stopped")
        } else if Instant::now() >= deadline {
            Some("deadline passed")
        } else {
            None
        };
        if let Some(why) = failure {
            let client = if sender.is_finished() {
                match sender.join() {
                    Ok(Ok(())) => "sent everything".to_string(),
                    Ok(Err(e)) => e,
                    Err(_) => "client panicked".to_string(),
                }
            } else {
                "still sending".to_string()
            };
            panic!(
                "{why}: only {} of {EVENTS} delivered; client: {client}\n{}",
                seen.len(),
                sluice.diagnosis()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    sender
        .join()
        .expect("client panicked")
        .expect("client failed after everything was delivered");
    sluice.stop(Duration::from_secs(30));
    let (seen, _) = read_output(&out);
    assert!(seen.values().all(|&c| c == 1), "duplicates without a fault");
    // The cap holds, give or take one input batch; and the queue did fill (the input
    // really was held back).
    assert!(
        peak <= CAP + 64 * 1024,
        "queue grew to {peak} bytes past its {CAP} cap"
    );
    assert!(
        peak >= CAP / 2,
        "the queue never filled ({peak} bytes): the test shows nothing"
    );
    eprintln!("queue.max_bytes {CAP}: peak {peak} bytes on disk, {EVENTS} events delivered once");
}

/// A GET over plain HTTP/1.0 on loopback; the body as JSON (Null when not JSON).
fn get_json(port: u16, path: &str) -> serde_json::Value {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return serde_json::Value::Null;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let body = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(&resp[..0], |i| &resp[i + 4..]);
    serde_json::from_slice(body).unwrap_or_default()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "page"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn an_output_down_fills_the_disk_queue_to_its_cap_then_everything_is_delivered() {
    // Far more than the queue and the socket buffers hold; big batches, because each
    // bulk request to the test server takes about a second.
    const EVENTS: u64 = 20_000;
    const CAP: u64 = 1024 * 1024;
    let tmp = tempfile::tempdir().unwrap();
    let (port, es_port) = (free_port(), free_port());
    let config = format!(
        r#"input {{ tcp {{ host => "127.0.0.1" port => {port} codec => json_lines }} }}
        output {{ elasticsearch {{ hosts => ["127.0.0.1:{es_port}"] index => "down" retry_max_interval => 1 }} }}"#
    );
    let mut sluice = Sluice::new(
        tmp.path(),
        config,
        &["--queue.max_bytes", "1mb", "-b", "1000"],
    );
    sluice.start();
    assert!(
        wait_for_port(port, Duration::from_secs(30)),
        "{}",
        sluice.diagnosis()
    );
    let sender = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        for id in 0..EVENTS {
            let line = format!(
                "{{\"message\":\"tcp\",\"id\":{id},\"pad\":\"{}\"}}\n",
                "x".repeat(200)
            );
            s.write_all(line.as_bytes()).unwrap();
        }
    });
    // The output is down: the queue fills to its cap, then the input waits.
    let qdir = tmp.path().join("queue");
    let deadline = Instant::now() + Duration::from_secs(60);
    while dir_bytes(&qdir) < CAP {
        assert!(
            Instant::now() < deadline,
            "the queue never filled: {} bytes",
            dir_bytes(&qdir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = sluice.child.as_ref().unwrap().id();
    let rss_full = rss_kib(pid);
    std::thread::sleep(Duration::from_secs(5));
    let (size, rss_later) = (dir_bytes(&qdir), rss_kib(pid));
    assert!(!sender.is_finished(), "the input was not held back");
    // One input batch (1000 events) may enter past the cap.
    assert!(
        size <= CAP + 300 * 1024,
        "the queue grew past its cap: {size} bytes"
    );
    assert!(
        rss_later < rss_full + 16 * 1024,
        "memory grew while the output was down: {rss_full} KiB -> {rss_later} KiB"
    );
    // The output comes back: everything arrives.
    let _server = common::start_osmem(es_port);
    sender.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let v = get_json(es_port, "/down/_count");
        if v["count"].as_u64() == Some(EVENTS) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all delivered: {v}\n{}",
            sluice.diagnosis()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    sluice.stop(Duration::from_secs(30));
    eprintln!(
        "output down: queue at {size} bytes (cap {CAP}), RSS {rss_full} -> {rss_later} KiB, then {EVENTS} delivered"
    );
}

/// A small filesystem for the queue: a tmpfs mounted by the test (root only), unmounted
/// when dropped.
struct SmallFs {
    dir: PathBuf,
}

impl SmallFs {
    /// `None` when this process may not mount (not root, or no tmpfs here).
    fn mount(dir: &Path, size: &str) -> Option<SmallFs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallFs {
            dir: dir.to_path_buf(),
        })
    }

    fn grow(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .expect("cannot run mount");
        assert!(status.success(), "cannot grow the tmpfs to {size}");
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// The value of the Prometheus sample whose name ends with `suffix` (0 when absent).
fn metric(api_port: u16, suffix: &str) -> f64 {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", api_port)) else {
        return 0.0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(s, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .find(|(name, _)| name.ends_with(suffix))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_full_disk_holds_inputs_back_reports_it_and_delivers_everything_once_space_returns() {
    // About 30 MiB of events into an 8 MiB filesystem; the output (sluice's stdout, a
    // pipe this test reads only at the end) holds everything in the queue meanwhile.
    const EVENTS: u64 = 30_000;
    let tmp = tempfile::tempdir().unwrap();
    let qdir = tmp.path().join("queue-fs");
    let fs = SmallFs::mount(&qdir, "8m");
    let mut extra = vec![
        "--path.queue".to_string(),
        qdir.display().to_string(),
        "--queue.page_capacity".into(),
        "1mb".into(),
    ];
    match &fs {
        Some(_) => eprintln!("disk full: the queue is on an 8 MiB tmpfs"),
        None => {
            // Without a small filesystem the disk cannot fill: a cap below the input
            // shows the back-pressure and the delivery, not the write error.
            eprintln!(
                "disk full: cannot mount a tmpfs (not root?); falling back to \
                 --queue.max_bytes 4mb below the input size: the write-error path is NOT tested"
            );
            extra.extend(["--queue.max_bytes".into(), "4mb".into()]);
        }
    }
    let (port, api_port) = (free_port(), free_port());
    let log = tmp.path().join("sluice.log");
    let mut child = sluice()
        .args(["-w", "2", "-b", "100", "--queue.type", "persisted"])
        .arg("--path.data")
        .arg(tmp.path())
        .args(["--api.http.port", &api_port.to_string()])
        .args(&extra)
        .args([
            "-e",
            &format!(
                r#"input {{ tcp {{ host => "127.0.0.1" port => {port} codec => json_lines }} }}
                output {{ stdout {{ codec => json_lines }} }}"#
            ),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("cannot start sluice");
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_for_port(port, Duration::from_secs(30)),
        "{}",
        log_text()
    );
    let sent = Arc::new(Mutex::new(0u64));
    let sender = {
        let sent = sent.clone();
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let pad = "x".repeat(1000);
            for id in 0..EVENTS {
                let line = format!("{{\"message\":\"tcp\",\"id\":{id},\"pad\":\"{pad}\"}}\n");
                s.write_all(line.as_bytes()).unwrap();
                *sent.lock().unwrap() = id + 1;
            }
            // An orderly close: sluice answers it only once everything is queued.
            s.shutdown(Shutdown::Write).unwrap();
            let _ = s.read_to_end(&mut Vec::new());
        })
    };

    // The disk fills: the write error is logged and counted, and the input waits.
    let deadline = Instant::now() + Duration::from_secs(60);
    if fs.is_some() {
        while metric(api_port, "queue_write_errors_total{pipeline=\"main\"}") < 1.0 {
            assert!(
                Instant::now() < deadline,
                "no write error counted after 60 s ({} of {EVENTS} sent, {} bytes queued)\n{}",
                sent.lock().unwrap(),
                dir_bytes(&qdir),
                log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let logged = log_text();
        assert!(
            logged.contains("persisted queue: cannot write"),
            "the write error is not in the log\n{logged}"
        );
    } else {
        while dir_bytes(&qdir) < 3 * 1024 * 1024 {
            assert!(Instant::now() < deadline, "the queue never filled");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let held_at = *sent.lock().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let still = *sent.lock().unwrap();
    assert!(
        !sender.is_finished() && still < EVENTS,
        "the input was not held back: {still} of {EVENTS} sent"
    );
    eprintln!(
        "disk full after {held_at} events sent ({} bytes of pages); {still} sent 3 s later; {} write errors counted",
        dir_bytes(&qdir),
        metric(api_port, "queue_write_errors_total{pipeline=\"main\"}")
    );

    // Space returns: everything arrives, each event once.
    if let Some(fs) = &fs {
        fs.grow("256m");
    }
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while !sender.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the input was not released once space returned ({} of {EVENTS} sent)\n{}",
            sent.lock().unwrap(),
            log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sender.join().unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "sluice did not stop\n{}",
            log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = reader.join().unwrap();
    let mut seen = HashMap::new();
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_slice(line).expect("a json line");
        *seen.entry(v["id"].as_u64().expect("an id")).or_insert(0u32) += 1;
    }
    let missing = (0..EVENTS).filter(|id| !seen.contains_key(id)).count();
    assert_eq!(missing, 0, "{missing} events lost\n{}", log_text());
    assert!(seen.values().all(|&c| c == 1), "duplicates without a crash");
    eprintln!("disk full: all {EVENTS} events delivered once after space returned");
}
