//! Load client for the beats input: N connections, each sending windows of 2048
//! compressed events (the bundled json logs as Filebeat documents) with 2 windows in
//! flight, as Filebeat does. Windows are encoded once and re-sent, so the client spends
//! its CPU on the socket, not on zlib. Prints events/s once every window is ACKed.
//!
//!   PORT=5044 CONNS=4 EVENTS=2000000 cargo bench --bench beats_load
//! (benches/beats.sh starts sluice and measures its peak RSS around this.)

#[path = "../tests/beats_client/mod.rs"]
mod beats_client;

use beats_client::{send_pipelined, window, Client};
use std::io::Read;
use std::time::Instant;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo test --all-targets` runs bench binaries too; this one is a load client
    // that needs a running server, started by benches/beats.sh through `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("beats_load: a load client; run benches/beats.sh");
        return;
    }
    let port = env("PORT", 5044) as u16;
    let conns = env("CONNS", 4).max(1);
    let total = env("EVENTS", 2_000_000);
    let size = env("WINDOW", 2048) as usize;
    let mut lines = String::new();
    let file = std::fs::File::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/json-20000.log.gz"
    ))
    .unwrap();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut lines)
        .unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    // A handful of distinct windows per connection, re-sent in turn.
    let distinct: Vec<(bytes::BytesMut, u32)> = (0..8)
        .map(|w| {
            let docs: Vec<Vec<u8>> = (0..size)
                .map(|i| {
                    let n = (w * size + i) % lines.len();
                    beats_client::document(n as u64, lines[n])
                })
                .collect();
            (window(&docs, true), size as u32)
        })
        .collect();
    let per_conn = (total / conns / size as u64).max(1) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let elapsed = runtime.block_on(async move {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..conns as usize {
            let windows: Vec<_> = (0..per_conn)
                .map(|w| distinct[(c + w) % distinct.len()].clone())
                .collect();
            tasks.push(tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                let _ = stream.set_nodelay(true);
                let mut client = Client::new(stream);
                send_pipelined(&mut client, &windows, 2)
                    .await
                    .expect("connection lost")
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        start.elapsed()
    });
    let events = per_conn as u64 * conns * size as u64;
    let secs = elapsed.as_secs_f64();
    println!(
        "beats  {events} events over {conns} connections in {secs:.2}s: {:.0} events/s",
        events as f64 / secs
    );
}
