//! Hostile peers against the release binary, with Sluice's memory measured from outside
//! (`/proc/PID/status`: VmRSS now, VmHWM the peak): what a peer sends must not decide
//! what Sluice holds, and well-behaved clients must keep being served meanwhile.
//!
//! These tests run `target/release/sluice` (build it first: `cargo build --release`, as
//! scripts/test.sh does): memory and CPU figures of a debug build mean little.

mod common;

use common::{free_port, venv_bin, wait_for_port, KillOnDrop};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;

/// `target/release/sluice`, or the binary `SLUICE_RELEASE_BINARY` names (to compare
/// builds).
fn release_binary() -> PathBuf {
    let path = std::env::var_os("SLUICE_RELEASE_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/sluice"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --release` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Starts the release binary on `config` with the open-file limit raised for many
/// connections.
fn start(config: &str, port: u16) -> KillOnDrop {
    start_with(config, port, &[])
}

/// [`start`] with more command-line flags.
fn start_with(config: &str, port: u16, flags: &[&str]) -> KillOnDrop {
    let child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 4096 2>/dev/null || true; exec \"$0\" \"$@\"")
        .arg(release_binary())
        .args(flags)
        .args(["--log.level", "error", "-w", "1", "-e", config])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start sluice");
    let sluice = KillOnDrop(child);
    assert!(
        wait_for_port(port, Duration::from_secs(30)),
        "sluice did not listen on {port}"
    );
    sluice
}

/// A field of /proc/PID/status in bytes (VmRSS, VmHWM).
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read the status of sluice: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Waits until VmRSS falls under `limit`, or fails with the figure.
fn assert_rss_falls_under(pid: u32, limit: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rss = status_bytes(pid, "VmRSS");
        if rss < limit {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: RSS stayed at {} MiB (limit {} MiB), {} descriptors open",
            rss / MIB,
            limit / MIB,
            std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn open_files_allowed() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn compressed(plain: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(plain).unwrap();
    let body = z.finish().unwrap();
    let mut frame = b"2C".to_vec();
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// A pylogbeat client sending `count` events in windows of `batch` while the test
/// goes on; it fails if any window is not ACKed within its 60 s timeout.
fn pylogbeat(port: u16, count: u64, batch: u64) -> std::process::Child {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scripts/pylogbeat_send.py"
    );
    Command::new(venv_bin("python"))
        .arg(script)
        .args([
            port.to_string(),
            "0".into(),
            count.to_string(),
            batch.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start pylogbeat")
}

fn assert_pylogbeat_ok(child: std::process::Child) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the well-behaved pylogbeat client was not served: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The case: a ~194 KB compressed frame that inflates to tens of millions of
/// 6-byte window frames. Parsed all at once that was gigabytes; read one frame at a
/// time the window rules close the connection at the second.
#[test]
fn a_compressed_frame_of_tiny_frames_stays_small() {
    let port = free_port();
    let sluice = start(
        &format!(
            "input {{ beats {{ host => \"127.0.0.1\" port => {port} }} }} output {{ null {{}} }}"
        ),
        port,
    );
    let pid = sluice.0.id();
    let plain: Vec<u8> = b"2W\x00\x00\x00\x01".repeat(120 * MIB as usize / 6);
    let bomb = compressed(&plain);
    drop(plain);
    assert!(
        bomb.len() > 100_000 && bomb.len() < 300_000,
        "{} bytes",
        bomb.len()
    );
    let good = pylogbeat(port, 2000, 100);
    let started = Instant::now();
    for _ in 0..2 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let _ = s.write_all(&bomb);
        // Closed without an ACK.
        let mut ack = [0u8; 6];
        let n = s.read(&mut ack).unwrap_or(0);
        assert_eq!(n, 0, "the bomb got an answer: {:?}", &ack[..n]);
    }
    let elapsed = started.elapsed();
    assert_pylogbeat_ok(good);
    let peak = status_bytes(pid, "VmHWM");
    assert!(peak < 300 * MIB, "peak RSS {} MiB", peak / MIB);
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert_rss_falls_under(pid, 100 * MIB, "after the bomb");
}

/// 200 connections each announcing a 32 MiB frame and sending 4 MiB of it, then
/// holding it open: Sluice may not reserve what headers announce, and what peers make
/// it hold is capped by the input budget (reads stop; TCP back-pressures the peers).
#[test]
fn two_hundred_hostile_beats_connections_stay_under_300_mb() {
    two_hundred_hostile_beats_connections(&[], 300 * MIB, false);
}

/// The same under a smaller input budget: 16 MiB in total (plus each connection's
/// 128 KiB) bounds what the 200 peers make Sluice hold to about 40 MiB (with the
/// defaults the peak is 150-220 MiB), and the well-behaved client is still served.
#[test]
fn a_smaller_input_budget_holds_against_two_hundred_hostile_peers() {
    two_hundred_hostile_beats_connections(&["--input.memory.max_bytes", "16mb"], 80 * MIB, false);
}

/// The same, then the memory must go back once the peers leave. mimalloc purges freed
/// pages only after a delay and when a thread allocates again, so idle runtime threads
/// would keep 160-220 MiB resident; a connection that drew on the input budget asks for
/// a release when it closes (at most one a second), which hands it back.
#[test]
fn two_hundred_hostile_beats_connections_release_their_memory() {
    two_hundred_hostile_beats_connections(&[], 300 * MIB, true);
}

fn two_hundred_hostile_beats_connections(flags: &[&str], peak_limit: u64, check_release: bool) {
    assert!(
        open_files_allowed() >= 1024,
        "raise the open-file limit (ulimit -n) to run this test"
    );
    let port = free_port();
    let sluice = start_with(
        &format!(
            "input {{ beats {{ host => \"127.0.0.1\" port => {port} }} }} output {{ null {{}} }}"
        ),
        port,
        flags,
    );
    let pid = sluice.0.id();
    let good = pylogbeat(port, 3000, 100);
    let mut header = b"2W\x00\x00\x00\x012J\x00\x00\x00\x01".to_vec();
    header.extend_from_slice(&(32 * MIB as u32).to_be_bytes());
    header.push(b'{');
    let chunk = vec![b' '; 64 * 1024];
    let peers: Vec<_> = (0..200)
        .map(|_| {
            let header = header.clone();
            let chunk = chunk.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
                s.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
                s.write_all(&header).ok()?;
                for _ in 0..64 {
                    if s.write_all(&chunk).is_err() {
                        break; // back-pressure: Sluice stopped reading
                    }
                }
                Some(s)
            })
        })
        .collect();
    let open: Vec<TcpStream> = peers
        .into_iter()
        .filter_map(|p| p.join().ok().flatten())
        .collect();
    assert!(open.len() >= 190, "only {} peers connected", open.len());
    assert_pylogbeat_ok(good);
    let peak = status_bytes(pid, "VmHWM");
    assert!(
        peak < peak_limit,
        "peak RSS {} MiB (limit {} MiB)",
        peak / MIB,
        peak_limit / MIB
    );
    drop(open);
    if check_release {
        assert_rss_falls_under(pid, 100 * MIB, "after the hostile peers left");
    }
}

/// 1,000 idle tcp connections cost little, and the 1,001st is refused with
/// `max_connections => 1000`.
#[test]
fn a_thousand_idle_tcp_connections_stay_under_150_mb() {
    assert!(
        open_files_allowed() >= 2100,
        "raise the open-file limit (ulimit -n) to 2100 or more to run this test"
    );
    let port = free_port();
    let sluice = start(
        &format!(
            "input {{ tcp {{ host => \"127.0.0.1\" port => {port} max_connections => 1000 }} }} output {{ null {{}} }}"
        ),
        port,
    );
    let pid = sluice.0.id();
    // wait_for_port's probe connection must be gone before counting.
    std::thread::sleep(Duration::from_millis(300));
    let mut conns = Vec::new();
    for i in 0..1000 {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        // A partial line each: held, not yet an event.
        s.write_all(b"partial line without its newline").unwrap();
        conns.push(s);
    }
    // Every one of them is served (reads what was sent) before the next comes.
    std::thread::sleep(Duration::from_secs(2));
    let mut extra = TcpStream::connect(("127.0.0.1", port)).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 1];
    let answer = extra.read(&mut byte);
    assert!(
        matches!(&answer, Ok(0))
            || matches!(&answer, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "the 1,001st connection was not refused: {answer:?}"
    );
    // The first ones are still open and served.
    conns[0].write_all(b"\n").unwrap();
    let peak = status_bytes(pid, "VmHWM");
    assert!(peak < 150 * MIB, "peak RSS {} MiB", peak / MIB);
}

/// A peer that fills the tcp input's memory budget with a line that never ends, then
/// leaves while its connection waits for more memory, gives the budget back: a client
/// whose line needs the budget is then served. Before, a waiting connection read
/// nothing, so it never saw its peer leave and kept what it drew until the budget freed
/// up, which it never did: the client below waited forever. Syslog waits for memory the
/// same way and watches its peer the same way.
#[test]
fn a_tcp_peer_that_leaves_while_waiting_for_memory_gives_the_budget_back() {
    let port = free_port();
    let _sluice = start_with(
        &format!(
            "input {{ tcp {{ host => \"127.0.0.1\" port => {port} }} }} output {{ null {{}} }}"
        ),
        port,
        &[
            "--input.memory.max_bytes",
            "16kb",
            "--input.memory.per_connection",
            "16kb",
        ],
    );
    // 30 KiB of one line: the read buffer fills its first 16 KiB (the allowance), grows
    // to 32 KiB with the whole budget, reads the rest, and then, with less than a read's
    // room left, waits for 32 KiB more that the budget does not have. Everything the
    // peer sent is read by then (or fits in what is read while waiting), so its close
    // is the next thing on the socket.
    let mut hostile = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    hostile
        .set_write_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    hostile
        .write_all(&[b'x'; 30 * 1024])
        .expect("the hostile peer's line was not read");
    std::thread::sleep(Duration::from_millis(500));
    drop(hostile);

    // 20 KiB needs a 32 KiB buffer, 16 KiB of it from the budget.
    let answer = send_line_and_close(port, b'y', 20 * 1024, Duration::from_secs(20));
    assert!(
        answer.is_ok(),
        "the client was not served: {answer:?} (the budget was not given back)"
    );
}

/// Sends one line of `len` bytes of `fill` to the tcp input, half-closes, and waits
/// for the input's orderly close, which comes only once the line is queued.
fn send_line_and_close(port: u16, fill: u8, len: usize, limit: Duration) -> std::io::Result<()> {
    let mut client = TcpStream::connect(("127.0.0.1", port))?;
    client.set_read_timeout(Some(limit))?;
    client.set_write_timeout(Some(limit))?;
    let mut line = vec![fill; len];
    line.push(b'\n');
    client.write_all(&line)?;
    client.shutdown(std::net::Shutdown::Write)?;
    client.read_to_end(&mut Vec::new()).map(|_| ())
}

/// Peers that never finish their lines hold the whole input budget: one sends a long
/// line and stops, the other sends one and waits for memory to read the rest. Neither
/// will ever give anything back, so after a second without any byte coming back the
/// connection holding the most is cut: its line's head becomes an event tagged
/// `_linetoolong`, the rest of that line is skipped, and the connection goes on. A
/// client whose line needs the budget is then served, and so are both peers' next
/// lines. Before, the client waited for ever.
#[test]
fn peers_that_never_finish_their_lines_cannot_hold_the_budget_for_ever() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let port = free_port();
    let _sluice = start_with(
        &format!(
            "input {{ tcp {{ host => \"127.0.0.1\" port => {port} }} }} output {{ file {{ path => \"{}\" codec => json_lines }} }}",
            out.display()
        ),
        port,
        &[
            "--input.memory.max_bytes",
            "64kb",
            "--input.memory.per_connection",
            "16kb",
        ],
    );
    let peer = |fill: u8| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_write_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        // 40 KiB: a 64 KiB read buffer, 48 KiB of it drawn from the budget.
        s.write_all(&vec![fill; 40 * 1024])
            .expect("the line was not read");
        std::thread::sleep(Duration::from_millis(300));
        s
    };
    let mut first = peer(b'a');
    let mut second = peer(b'b');

    // 40 KiB again: this client's buffer needs 48 KiB of the budget too.
    let answer = send_line_and_close(port, b'c', 40 * 1024, Duration::from_secs(30));
    assert!(
        answer.is_ok(),
        "the client was not served: {answer:?} (the budget stayed held)"
    );
    // The peers go on: the rest of a cut line is skipped, the next line kept.
    for (s, name) in [(&mut first, "first"), (&mut second, "second")] {
        s.write_all(format!("{REST}\n{name} after the cut\n").as_bytes())
            .expect("a cut peer's connection was closed");
    }
    drop((first, second));

    let deadline = Instant::now() + Duration::from_secs(30);
    let events = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let events: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let after = events
            .iter()
            .filter(|e| {
                e["message"]
                    .as_str()
                    .is_some_and(|m| m.ends_with("after the cut"))
            })
            .count();
        if after == 2 || Instant::now() > deadline {
            break events;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let summary: Vec<(usize, char, bool)> = events
        .iter()
        .map(|e| {
            let m = e["message"].as_str().unwrap_or("");
            let tagged = e["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "_linetoolong"));
            (m.len(), m.chars().next().unwrap_or(' '), tagged)
        })
        .collect();
    assert!(
        summary.contains(&(40 * 1024, 'c', false)),
        "the client's line is missing or cut: {summary:?}"
    );
    // The first peer's line is cut once the budget is stuck. Whether the second's is
    // too depends on who gets the memory given back first: if the client does, its
    // line is queued and gives the memory back to the second peer, whose line then
    // completes whole.
    let line_of = |fill: char| -> Vec<(usize, bool)> {
        summary
            .iter()
            .filter(|(_, c, _)| *c == fill)
            .map(|(len, _, tagged)| (*len, *tagged))
            .collect()
    };
    assert!(
        matches!(line_of('a')[..], [(len, true)] if len > 0 && len <= 40 * 1024),
        "the first peer's line was not cut to its head tagged _linetoolong: {summary:?}"
    );
    assert!(
        matches!(line_of('b')[..], [(len, true)] if len > 0 && len <= 40 * 1024)
            || line_of('b') == [(40 * 1024 + REST.len(), false)],
        "the second peer's line is neither cut nor whole: {summary:?}"
    );
    for name in ["first after the cut", "second after the cut"] {
        assert!(
            events.iter().any(|e| e["message"] == name),
            "{name:?} is missing: {summary:?}"
        );
    }
    assert!(
        !events.iter().any(|e| e["message"] == REST),
        "the rest of a cut line was kept as a line of its own"
    );
}

/// What the peers of the test above send to end the line they started.
const REST: &str = "rest of the line";
