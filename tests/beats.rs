//! The beats input against a client that speaks what Filebeat speaks (window 2048,
//! compressed, pipelined windows), run in-process so the input's counters can be read:
//! every event exactly once in the output, ACKs only once events are safe, keep-alive
//! ACKs under back-pressure, resends after a dropped connection, hostile clients closed
//! while others carry on, TLS with and without client certificates, and a
//! failed delivery closing the connection without ACK.

mod beats_client;
mod common;

use beats_client::{document, send_pipelined, window, Client};
use bytes::{BufMut, BytesMut};
use sluice::config::Source;
use sluice::inputs::beats::{BeatsInput, BeatsStats, CloseReason};
use sluice::pipeline::build::compile;
use sluice::pipeline::run_pipeline;
use sluice::plugin::{Options, PluginContext};
use sluice::settings::Settings;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// A pipeline `beats → <rest>` running in this process.
struct Running {
    port: u16,
    stats: Arc<BeatsStats>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), sluice::pipeline::Error>>,
}

async fn start(beats_options: &str, rest: &str, tweak: impl FnOnce(&mut Settings)) -> Running {
    let port = common::free_port();
    let body = format!("host => \"127.0.0.1\" port => {port} {beats_options}");
    let text = format!("input {{ beats {{ {body} }} }} {rest}");
    let mut settings = Settings::new(Source::Text(text.clone()));
    settings.workers = 1;
    tweak(&mut settings);
    // Plugins see the settings as a run gives them (batch size, input memory budget).
    let context = Arc::new(PluginContext::from_settings(&settings));
    let ast = sluice::config::parse(&text, "test", false).unwrap();
    let mut pipeline = compile(&ast, context.clone()).unwrap();
    // The same input, built here so the test holds its counters.
    let Some(sluice::config::ast::Item::Plugin(plugin)) = ast.sections[0].items.first() else {
        panic!("no beats input in {text}");
    };
    let mut opts = Options::new(plugin, "input", context);
    let input = BeatsInput::build(&mut opts).unwrap();
    opts.finish().unwrap();
    let stats = input.stats();
    pipeline.inputs[0].input = Box::new(input);
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let task = tokio::spawn(async move { run_pipeline(pipeline, &settings, token).await });
    let mut listening = false;
    for _ in 0..800 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            listening = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        listening,
        "the beats input did not listen on {port} within 20 s"
    );
    Running {
        port,
        stats,
        shutdown,
        task,
    }
}

impl Running {
    async fn connect(&self) -> Client<TcpStream> {
        Client::new(TcpStream::connect(("127.0.0.1", self.port)).await.unwrap())
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// How long any single wait in these tests may take before it fails the test.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Polls `done` every 10 ms; fails the test naming `what` if it is not true in time.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Runs `fut` to completion; fails the test naming `what` if it takes too long.
async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {DEADLINE:?} waiting for {what}"))
}

fn file_output(path: &Path) -> String {
    format!(
        "output {{ file {{ path => \"{}\" codec => json_lines }} }}",
        path.display()
    )
}

/// Counts each `id` in the json_lines file.
fn ids_in(path: &Path) -> HashMap<u64, usize> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut counts = HashMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        *counts.entry(v["id"].as_u64().unwrap()).or_insert(0) += 1;
    }
    counts
}

fn docs(first: u64, n: u64) -> Vec<Vec<u8>> {
    (first..first + n)
        .map(|id| document(id, &format!("event {id}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelined_filebeat_windows_arrive_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    // The file name proves the Logstash metadata mapping: beat and version.
    let pattern = dir
        .path()
        .join("%{[@metadata][beat]}-%{[@metadata][version]}.log");
    let sluice = start("", &file_output(&pattern), |_| {}).await;
    let mut clients = Vec::new();
    for c in 0..3u64 {
        let mut client = sluice.connect().await;
        clients.push(tokio::spawn(async move {
            let windows: Vec<_> = (0..4u64)
                .map(|w| {
                    let first = c * 1_000_000 + w * 2048;
                    (window(&docs(first, 2048), true), 2048)
                })
                .collect();
            within(
                "the windows' ACKs",
                send_pipelined(&mut client, &windows, 2),
            )
            .await
        }));
    }
    for c in clients {
        assert!(c.await.unwrap().is_some(), "a client lost its connection");
    }
    let ids = ids_in(&dir.path().join("filebeat-8.13.4.log"));
    assert_eq!(ids.len(), 3 * 4 * 2048);
    assert!(ids.values().all(|n| *n == 1), "an event arrived twice");
    let line = std::fs::read_to_string(dir.path().join("filebeat-8.13.4.log")).unwrap();
    let first: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!(first["@timestamp"], "2024-01-02T03:04:05.678Z");
    assert_eq!(first["host"]["name"], "web-01");
    assert_eq!(first["tags"][0], "beats_input_codec_plain_applied");
    assert!(first.get("@metadata").is_none());
    assert_eq!(sluice.stats.acks.load(Ordering::Relaxed), 12);
    assert_eq!(sluice.stats.events.load(Ordering::Relaxed), 3 * 4 * 2048);
    sluice.stop().await;
}

/// Connections that each hold part of a window, decoded, and need memory for more do not
/// wait for each other: before waiting, a connection queues what it holds (under the
/// window's ack), which gives its bytes back. Before, four clients whose windows
/// together needed more than the input budget each held a share of it and waited for
/// more, for ever; a single window larger than the whole budget did the same alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn windows_larger_than_the_input_budget_are_read_whole_and_acked() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let sluice = start("", &file_output(&out), |s| {
        s.input_memory_max_bytes = 256 * 1024;
        s.input_memory_per_connection = 16 * 1024;
        // Larger than the windows: a window is queued early only for memory.
        s.batch_size = 1000;
    })
    .await;
    let padding = "p".repeat(2000);
    let mut clients = Vec::new();
    for c in 0..4u64 {
        let mut client = sluice.connect().await;
        let docs: Vec<_> = (c * 1000..c * 1000 + 300)
            .map(|id| document(id, &format!("event {id} {padding}")))
            .collect();
        // 300 events of 2 KiB: about 680 KiB counted per window, uncompressed.
        clients.push(tokio::spawn(async move {
            let windows = [(window(&docs, false), 300)];
            within(
                "the ACK of a window larger than the budget",
                send_pipelined(&mut client, &windows, 1),
            )
            .await
        }));
    }
    for c in clients {
        assert!(c.await.unwrap().is_some(), "a client lost its connection");
    }
    let ids = ids_in(&out);
    assert_eq!(ids.len(), 4 * 300);
    assert!(ids.values().all(|n| *n == 1), "an event arrived twice");
    assert!(
        sluice.stats.partial_windows.load(Ordering::Relaxed) >= 4,
        "the windows were not queued in pieces"
    );
    sluice.stop().await;
}

/// A peer that sends part of a large frame and then nothing holds input memory it will
/// never give back. When a client needs that memory and nothing comes back for a
/// second, the connection holding the most is closed (counted as `memory_budget`; a
/// real Beats client would resend its unacknowledged window) and the client is served.
/// Before, the client waited for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_that_never_finishes_its_frame_is_closed_when_others_need_the_memory() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let sluice = start("", &file_output(&out), |s| {
        s.input_memory_max_bytes = 64 * 1024;
        s.input_memory_per_connection = 16 * 1024;
    })
    .await;
    // A window of one event whose frame announces 1 MiB, of which 60 KiB come: a
    // 64 KiB read buffer, 48 KiB of it drawn from the budget.
    let mut hostile = TcpStream::connect(("127.0.0.1", sluice.port))
        .await
        .unwrap();
    let mut partial = b"2W\x00\x00\x00\x012J\x00\x00\x00\x01".to_vec();
    partial.extend_from_slice(&(1024u32 * 1024).to_be_bytes());
    partial.extend_from_slice(&vec![b' '; 60 * 1024]);
    hostile.write_all(&partial).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // One 40 KiB event: its frame needs 48 KiB of the budget, which has 16 KiB.
    let mut client = sluice.connect().await;
    let doc = document(7, &"x".repeat(40 * 1024));
    client.send(&window(&[doc], false)).await.unwrap();
    assert!(
        within("the ACK of the client's window", client.await_ack(1))
            .await
            .is_some(),
        "the client's connection was closed"
    );
    let mut byte = [0u8; 1];
    let closed = within("the hostile peer's close", hostile.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(0) | Err(_)),
        "the hostile peer was answered: {closed:?}"
    );
    wait_until("the close to be counted", || {
        sluice.stats.closed(CloseReason::MemoryBudget) == 1
    })
    .await;
    assert_eq!(ids_in(&out).len(), 1);
    sluice.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uncompressed_windows_and_counting_sequences_ack_the_highest_number() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let sluice = start("", &file_output(&out), |_| {}).await;
    let mut client = sluice.connect().await;
    // pylogbeat-style numbering: the second window goes on from 3.
    let mut bytes = window(&docs(0, 2), false);
    bytes.put_slice(b"2W\x00\x00\x00\x02");
    for (seq, id) in [(3u32, 2u64), (4, 3)] {
        let doc = document(id, "x");
        bytes.put_slice(b"2J");
        bytes.put_u32(seq);
        bytes.put_u32(doc.len() as u32);
        bytes.put_slice(&doc);
    }
    // A window of 0 is answered with ACK 0, in order.
    bytes.put_slice(b"2W\x00\x00\x00\x00");
    client.send(&bytes).await.unwrap();
    assert_eq!(within("an ACK or a close", client.ack()).await, Some(2));
    assert_eq!(within("an ACK or a close", client.ack()).await, Some(4));
    assert_eq!(within("an ACK or a close", client.ack()).await, Some(0));
    assert_eq!(ids_in(&out).len(), 4);
    sluice.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_pipeline_gets_keepalive_acks_and_then_the_real_ack() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    // 800 events at 10 ms each through one worker: the window is held up for about
    // 8 s, well past the 5 s keep-alive interval; the small queue makes the second
    // window wait to be pushed.
    let rest = format!(
        "filter {{ sleep {{ time => 0.01 }} }} {}",
        file_output(&out)
    );
    let sluice = start("", &rest, |s| {
        s.queue_max_events = 100;
        s.workers = 1;
    })
    .await;
    let mut client = sluice.connect().await;
    let windows = vec![
        (window(&docs(0, 800), true), 800),
        (window(&docs(800, 50), true), 50),
    ];
    let keepalives = within(
        "the windows' ACKs",
        send_pipelined(&mut client, &windows, 2),
    )
    .await;
    assert!(
        keepalives.unwrap() >= 1,
        "no keep-alive ACK 0 while the window was held up"
    );
    assert!(sluice.stats.keepalives.load(Ordering::Relaxed) >= 1);
    let ids = ids_in(&out);
    assert_eq!(ids.len(), 850);
    assert!(ids.values().all(|n| *n == 1));
    sluice.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_drops_before_the_ack_resends_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let sluice = start("", &file_output(&out), |_| {}).await;
    let first = window(&docs(0, 2048), true);
    {
        let mut client = sluice.connect().await;
        client.send(&first).await.unwrap();
        // Gone before any ACK could come.
    }
    // Filebeat reconnects and resends everything after the last ACK.
    let mut client = sluice.connect().await;
    let windows = vec![(first, 2048), (window(&docs(2048, 100), true), 100)];
    assert!(within(
        "the windows' ACKs",
        send_pipelined(&mut client, &windows, 2)
    )
    .await
    .is_some());
    let ids = ids_in(&out);
    assert_eq!(ids.len(), 2148, "every event at least once");
    assert!(ids.values().all(|n| *n <= 2));
    sluice.stop().await;
}

async fn assert_closed_without_ack(client: &mut Client<TcpStream>) {
    assert_eq!(
        within("an ACK or a close", client.ack()).await,
        None,
        "expected a close, not an ACK"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_clients_are_closed_and_counted_while_others_carry_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let sluice = start(
        "client_inactivity_timeout => 1 max_frame_bytes => 8388608 max_decompressed_bytes => 4194304",
        &file_output(&out),
        |_| {},
    )
    .await;
    // A well-behaved client keeps sending through all of it.
    // Its windows are compressed before it connects: on a loaded machine that takes
    // longer than the inactivity timeout.
    let windows: Vec<_> = (0..10u64)
        .map(|w| (window(&docs(w * 500, 500), true), 500))
        .collect();
    let mut good = sluice.connect().await;
    let good_task = tokio::spawn(async move {
        within("the windows' ACKs", send_pipelined(&mut good, &windows, 2)).await
    });

    // Frames inside a compressed frame are read one at a time, so a bomb only reaches
    // the inflated-size cap with a frame that is valid up to there: one JSON frame
    // within max_frame_bytes but past max_decompressed_bytes.
    let mut bomb = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut bomb, b"2J\x00\x00\x00\x01\x00\x4c\x4b\x40").unwrap();
    std::io::Write::write_all(&mut bomb, &vec![b'2'; 5_000_000]).unwrap();
    let bomb = bomb.finish().unwrap();
    let mut bomb_frame = BytesMut::from(&b"2W\x00\x00\x00\x01"[..]);
    bomb_frame.put_slice(b"2C");
    bomb_frame.put_u32(bomb.len() as u32);
    bomb_frame.put_slice(&bomb);

    let cases: Vec<(Vec<u8>, CloseReason)> = vec![
        (b"3W\x00\x00\x00\x01".to_vec(), CloseReason::BadVersion),
        (
            b"2W\x00\x00\x00\x012X".to_vec(),
            CloseReason::UnknownFrameType,
        ),
        (
            b"2W\x00\x00\x00\x012J\x00\x00\x00\x01\xff\xff\xff\xff".to_vec(),
            CloseReason::FrameTooLarge,
        ),
        (bomb_frame.to_vec(), CloseReason::DecompressedTooLarge),
        (
            b"2W\x00\x00\x00\x012J\x00\x00\x00\x01\x00\x00\x00\x07{'a':1}".to_vec(),
            CloseReason::InvalidJson,
        ),
        (
            b"2W\x00\x00\x00\x012C\x00\x00\x00\x04abcd".to_vec(),
            CloseReason::BadZlib,
        ),
        (
            b"2J\x00\x00\x00\x01\x00\x00\x00\x02{}".to_vec(),
            CloseReason::WindowViolation,
        ),
        // Stops in the middle of a frame: closed by the inactivity timeout.
        (
            b"2W\x00\x00\x00\x012J\x00\x00\x00\x01\x00\x00\x00\x40{\"a\":".to_vec(),
            CloseReason::InactivityTimeout,
        ),
    ];
    for (bytes, reason) in &cases {
        let before = sluice.stats.closed(*reason);
        let mut client = sluice.connect().await;
        client.send(bytes).await.unwrap();
        assert_closed_without_ack(&mut client).await;
        // The count is taken right after the close.
        wait_until(&format!("the {reason:?} close to be counted"), || {
            sluice.stats.closed(*reason) > before
        })
        .await;
    }
    assert!(
        good_task.await.unwrap().is_some(),
        "the good client was disturbed: {:?}",
        sluice.stats.closed_by_reason()
    );
    assert_eq!(ids_in(&out).len(), 5000);
    assert_eq!(sluice.stats.connections_active.load(Ordering::Relaxed), 0);
    sluice.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_delivery_closes_the_connection_without_ack() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the output wants a directory: every write fails.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let sluice = start("", &file_output(&blocker.join("out.log")), |_| {}).await;
    let mut client = sluice.connect().await;
    client.send(&window(&docs(0, 10), true)).await.unwrap();
    assert_closed_without_ack(&mut client).await;
    // Counted right after the close.
    wait_until("the failed ACK to be counted", || {
        sluice.stats.closed(CloseReason::AckFailed) > 0
    })
    .await;
    assert_eq!(sluice.stats.acks.load(Ordering::Relaxed), 0);
    sluice.shutdown.cancel();
    // The pipeline reports the batch it could not deliver.
    assert!(sluice.task.await.unwrap().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_past_max_connections_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let sluice = start("max_connections => 1", &file_output(&out), |_| {}).await;
    // start() probed the port with a connection of its own; wait until it has been
    // accepted and is gone, or it may still hold the one slot.
    wait_until("the probe connection to be accepted and closed", || {
        sluice.stats.connections_accepted.load(Ordering::Relaxed) >= 1
            && sluice.stats.connections_active.load(Ordering::Relaxed) == 0
    })
    .await;
    let mut first = sluice.connect().await;
    first.send(&window(&docs(0, 1), true)).await.unwrap();
    assert_eq!(within("an ACK or a close", first.ack()).await, Some(1));
    let mut second = sluice.connect().await;
    let _ = second.send(&window(&docs(1, 1), true)).await;
    assert_closed_without_ack(&mut second).await;
    assert!(sluice.stats.connections_rejected.load(Ordering::Relaxed) >= 1);
    sluice.stop().await;
}

mod tls {
    use super::*;
    pub use crate::common::pki::Pki;
    use rustls::pki_types::ServerName;
    use tokio_rustls::TlsConnector;

    /// A throwaway CA, a server certificate for 127.0.0.1 and a client certificate,
    /// written as PEM files into `dir`.
    pub fn pki(dir: &Path) -> Pki {
        Pki::new(dir, "beat-client")
    }

    fn connector(pki: &Pki, with_client_cert: bool) -> TlsConnector {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(pki.roots());
        let config = if with_client_cert {
            builder
                .with_client_auth_cert(vec![pki.client_der.clone()], pki.client_key_der())
                .unwrap()
        } else {
            builder.with_no_client_auth()
        };
        TlsConnector::from(Arc::new(config))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn mutual_tls_requires_a_client_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki(dir.path());
        let out = dir.path().join("out.log");
        let options = format!(
            "ssl_enabled => true ssl_certificate => \"{}\" ssl_key => \"{}\" \
             ssl_certificate_authorities => [\"{}\"] ssl_client_authentication => required \
             enrich => all",
            pki.cert.display(),
            pki.key.display(),
            pki.ca.display()
        );
        let sluice = start(&options, &file_output(&out), |_| {}).await;
        let name = ServerName::try_from("127.0.0.1").unwrap();

        let tcp = TcpStream::connect(("127.0.0.1", sluice.port))
            .await
            .unwrap();
        let stream = connector(&pki, true)
            .connect(name.clone(), tcp)
            .await
            .unwrap();
        let mut client = Client::new(stream);
        let windows = vec![
            (window(&docs(0, 2048), true), 2048),
            (window(&docs(2048, 10), true), 10),
        ];
        assert!(within(
            "the windows' ACKs",
            send_pipelined(&mut client, &windows, 2)
        )
        .await
        .is_some());
        let ids = ids_in(&out);
        assert_eq!(ids.len(), 2058);

        // Without a certificate the handshake (or the first read) fails: no ACK.
        let tcp = TcpStream::connect(("127.0.0.1", sluice.port))
            .await
            .unwrap();
        if let Ok(stream) = connector(&pki, false).connect(name, tcp).await {
            let mut client = Client::new(stream);
            let _ = client.send(&window(&docs(5000, 1), true)).await;
            assert_eq!(within("an ACK or a close", client.ack()).await, None);
        }
        wait_until("the failed handshake to be counted", || {
            sluice.stats.closed(CloseReason::TlsHandshake) > 0
        })
        .await;
        assert_eq!(ids_in(&out).len(), 2058);
        sluice.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_tcp_input_speaks_tls_too() {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki(dir.path());
        let out = dir.path().join("out.log");
        let port = common::free_port();
        let text = format!(
            "input {{ tcp {{ host => \"127.0.0.1\" port => {port} codec => json_lines \
             ssl_enabled => true ssl_certificate => \"{}\" ssl_key => \"{}\" }} }} {}",
            pki.cert.display(),
            pki.key.display(),
            file_output(&out)
        );
        let ast = sluice::config::parse(&text, "test", false).unwrap();
        let pipeline = compile(&ast, Arc::new(PluginContext::default())).unwrap();
        let mut settings = Settings::new(Source::Text(text));
        settings.workers = 1;
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move { run_pipeline(pipeline, &settings, token).await });
        let tcp = within("the tcp input to listen", async {
            loop {
                match TcpStream::connect(("127.0.0.1", port)).await {
                    Ok(s) => break s,
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(25)).await,
                }
            }
        })
        .await;
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut stream = connector(&pki, false).connect(name, tcp).await.unwrap();
        let mut lines = String::new();
        for id in 0..100 {
            lines.push_str(&format!("{{\"id\":{id}}}\n"));
        }
        tokio::io::AsyncWriteExt::write_all(&mut stream, lines.as_bytes())
            .await
            .unwrap();
        tokio::io::AsyncWriteExt::shutdown(&mut stream)
            .await
            .unwrap();
        drop(stream);
        // The tcp input has no ACK: wait for the lines, then stop and drain.
        wait_until("100 lines in the output", || ids_in(&out).len() >= 100).await;
        shutdown.cancel();
        task.await.unwrap().unwrap();
        let ids = ids_in(&out);
        assert_eq!(ids.len(), 100);
        assert!(ids.values().all(|n| *n == 1));
    }
}

/// pylogbeat, a Beats client written by others, against the `sluice` binary.
mod pylogbeat {
    use super::*;
    use common::{sluice, spawn, venv_bin, wait_for_port};
    use std::process::Command;
    use std::time::Duration;

    fn send(port: u16, first: u64, count: u64, batch: u64, tls: Option<&tls::Pki>) {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/scripts/pylogbeat_send.py"
        );
        let mut cmd = Command::new(venv_bin("python"));
        cmd.arg(script).args([
            port.to_string(),
            first.to_string(),
            count.to_string(),
            batch.to_string(),
        ]);
        if let Some(pki) = tls {
            cmd.args([&pki.ca, &pki.client_cert, &pki.client_key]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "pylogbeat failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn run(ssl_options: &str, tls: Option<&tls::Pki>, dir: &Path) {
        let port = common::free_port();
        let pattern = dir.join("%{[@metadata][beat]}.log");
        let config = format!(
            "input {{ beats {{ host => \"127.0.0.1\" port => {port} {ssl_options} }} }} {}",
            file_output(&pattern)
        );
        let _server = spawn({
            let mut cmd = sluice();
            cmd.args(["-w", "1", "-e", &config]);
            cmd
        });
        assert!(
            wait_for_port(port, Duration::from_secs(20)),
            "sluice did not listen"
        );
        // Two connections, each numbering on across its windows as pylogbeat does.
        let a = std::thread::spawn(move || send(port, 0, 1000, 100, None));
        send(port, 100_000, 777, 250, tls);
        if tls.is_none() {
            a.join().unwrap();
        } else {
            // The first sender spoke plain TCP to a TLS server: it must have failed.
            assert!(a.join().is_err());
        }
        let ids = ids_in(&dir.join("pylogbeat.log"));
        let expected = if tls.is_none() { 1777 } else { 777 };
        assert_eq!(ids.len(), expected);
        assert!(ids.values().all(|n| *n == 1), "an event arrived twice");
    }

    #[test]
    fn large_compressed_windows_arrive_exactly_once() {
        // pylogbeat compresses every window (zlib's default level); 6000 events per
        // window is three times Filebeat's default bulk_max_size.
        let dir = tempfile::tempdir().unwrap();
        let port = common::free_port();
        let config = format!(
            "input {{ beats {{ host => \"127.0.0.1\" port => {port} }} }} {}",
            file_output(&dir.path().join("%{[@metadata][beat]}.log"))
        );
        let _server = spawn({
            let mut cmd = sluice();
            cmd.args(["-w", "2", "-e", &config]);
            cmd
        });
        assert!(
            wait_for_port(port, Duration::from_secs(20)),
            "sluice did not listen"
        );
        send(port, 0, 12_000, 6_000, None);
        let ids = ids_in(&dir.path().join("pylogbeat.log"));
        assert_eq!(ids.len(), 12_000);
        assert!(ids.values().all(|n| *n == 1), "an event arrived twice");
    }

    #[test]
    fn every_event_arrives_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        run("", None, dir.path());
    }

    #[test]
    fn every_event_arrives_exactly_once_over_mutual_tls() {
        let dir = tempfile::tempdir().unwrap();
        let pki = tls::pki(dir.path());
        let options = format!(
            "ssl_enabled => true ssl_certificate => \"{}\" ssl_key => \"{}\" \
             ssl_certificate_authorities => [\"{}\"] ssl_client_authentication => required",
            pki.cert.display(),
            pki.key.display(),
            pki.ca.display()
        );
        run(&options, Some(&pki), dir.path());
    }
}

/// Lumberjack v2 written out byte by byte from the protocol description, not with
/// Sluice's encoder, against the `sluice` binary: a frame is the version byte `2`, a
/// type letter and big-endian u32 fields. `W`: window size; `J`: sequence, payload
/// length, JSON payload; `C`: payload length, zlib stream of further frames. The server
/// answers `2A` with the sequence number of the last event of a window once it is safe.
mod by_the_spec {
    use super::*;
    use common::{sluice, spawn, wait_for_port, KillOnDrop};
    use std::io::{Read, Write};
    use std::net::TcpStream as StdStream;
    use std::time::Duration;

    fn window_frame(size: u32) -> Vec<u8> {
        let mut f = vec![b'2', b'W'];
        f.extend_from_slice(&size.to_be_bytes());
        f
    }

    fn json_frame(seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![b'2', b'J'];
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn compressed_frame(inner: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
        z.write_all(inner).unwrap();
        let z = z.finish().unwrap();
        let mut f = vec![b'2', b'C'];
        f.extend_from_slice(&(z.len() as u32).to_be_bytes());
        f.extend_from_slice(&z);
        f
    }

    fn payload(id: u64) -> Vec<u8> {
        format!(
            r#"{{"@metadata":{{"beat":"handmade","version":"1.0.0"}},"@timestamp":"2026-01-02T03:04:05.000Z","message":"hand {id}","id":{id}}}"#
        )
        .into_bytes()
    }

    /// The next ACK's sequence number, skipping keep-alive `ACK 0`s; None on close.
    fn read_ack(stream: &mut StdStream) -> Option<u32> {
        loop {
            let mut frame = [0u8; 6];
            match stream.read_exact(&mut frame) {
                Ok(()) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    panic!("no ACK and no close within the read timeout")
                }
                Err(_) => return None,
            }
            assert_eq!(&frame[..2], b"2A", "not a v2 ACK frame: {frame:?}");
            let seq = u32::from_be_bytes([frame[2], frame[3], frame[4], frame[5]]);
            if seq != 0 {
                return Some(seq);
            }
        }
    }

    fn start(outputs: &str) -> (KillOnDrop, u16) {
        let port = common::free_port();
        let config = format!(
            "input {{ beats {{ host => \"127.0.0.1\" port => {port} }} }} output {{ {outputs} }}"
        );
        let child = spawn({
            let mut cmd = sluice();
            cmd.args(["-w", "2", "-e", &config]);
            cmd
        });
        assert!(
            wait_for_port(port, Duration::from_secs(20)),
            "sluice did not listen"
        );
        (child, port)
    }

    fn connect(port: u16) -> StdStream {
        let s = StdStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    }

    fn file(path: &Path) -> String {
        format!(
            "file {{ path => \"{}\" codec => json_lines }}",
            path.display()
        )
    }

    #[test]
    fn hand_built_frames_arrive_exactly_once_and_are_acked_by_window() {
        let dir = tempfile::tempdir().unwrap();
        let (_sluice, port) = start(&file(&dir.path().join("%{[@metadata][beat]}.log")));
        let mut s = connect(port);

        // A window of three bare J frames.
        let mut bytes = window_frame(3);
        for seq in 1..=3u32 {
            bytes.extend(json_frame(seq, &payload(seq as u64)));
        }
        s.write_all(&bytes).unwrap();
        assert_eq!(read_ack(&mut s), Some(3));

        // A large window: 5000 J frames in one C frame, written in odd-sized pieces.
        let inner: Vec<u8> = (1..=5000u32)
            .flat_map(|seq| json_frame(seq, &payload(100 + seq as u64)))
            .collect();
        let mut bytes = window_frame(5000);
        bytes.extend(compressed_frame(&inner));
        for piece in bytes.chunks(4093) {
            s.write_all(piece).unwrap();
        }
        assert_eq!(read_ack(&mut s), Some(5000));

        // A window split between a C frame and a bare J frame.
        let mut bytes = window_frame(2);
        bytes.extend(compressed_frame(&json_frame(1, &payload(10_001))));
        bytes.extend(json_frame(2, &payload(10_002)));
        s.write_all(&bytes).unwrap();
        assert_eq!(read_ack(&mut s), Some(2));

        let ids = ids_in(&dir.path().join("handmade.log"));
        assert_eq!(ids.len(), 3 + 5000 + 2);
        assert!(ids.values().all(|n| *n == 1), "an event arrived twice");
        let text = std::fs::read_to_string(dir.path().join("handmade.log")).unwrap();
        let e: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(e["@timestamp"], "2026-01-02T03:04:05.000Z");
        assert!(e["message"].as_str().unwrap().starts_with("hand "));
    }

    /// Sends a window of `n` events and returns what the server answered.
    fn send_window(port: u16, n: u32) -> Option<u32> {
        let mut s = connect(port);
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut bytes = window_frame(n);
        for seq in 1..=n {
            bytes.extend(json_frame(seq, &payload(seq as u64)));
        }
        s.write_all(&bytes).unwrap();
        let mut frame = [0u8; 6];
        loop {
            match s.read_exact(&mut frame) {
                Ok(()) => {
                    let seq = u32::from_be_bytes([frame[2], frame[3], frame[4], frame[5]]);
                    if seq != 0 {
                        return Some(seq);
                    }
                }
                // Closed, or silent past the timeout: no ACK either way.
                Err(_) => return None,
            }
        }
    }

    #[test]
    fn a_window_is_acked_only_when_every_output_accepted_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        let (sluice, port) = start(&format!("{} {}", file(&a), file(&b)));
        assert_eq!(send_window(port, 10), Some(10));
        assert_eq!(ids_in(&a).len(), 10);
        assert_eq!(ids_in(&b).len(), 10);
        drop(sluice);

        // The second output cannot write (its directory is a file): the first output
        // has the events, but the window is not acknowledged.
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, b"").unwrap();
        let good = dir.path().join("good.log");
        let (_sluice, port) = start(&format!("{} {}", file(&good), file(&blocker.join("b.log"))));
        assert_eq!(
            send_window(port, 10),
            None,
            "ACK with an output that failed"
        );
        assert_eq!(ids_in(&good).len(), 10, "the first output took the events");
    }
}
