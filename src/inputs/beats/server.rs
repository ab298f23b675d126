//! Connection handling for the beats input.
//!
//! Each connection runs two halves in one task:
//! - the reader decodes frames, checks the window rules, maps events, and when a window
//!   is complete hands its [`Ack`] receiver to the writer, then pushes the window into
//!   the pipeline as one batch (waiting while the queue is full);
//! - the writer waits for each window's ack in order and writes `ACK <highest seq>` once
//!   it fires delivered. While it waits it writes a keep-alive `ACK 0` every
//!   [`KEEPALIVE_INTERVAL`], so the client neither times out nor resends. An ack that
//!   fires failed closes the connection without ACK: the client resends (at-least-once).
//!
//! A protocol error, the inactivity timeout or a client gone mid-frame closes only that
//! connection, with a logged and counted reason.

use super::mapping::Peer;
use super::protocol::{
    frame_kind, BeatsCodec, CloseReason, Decoded, Frame, ProtocolError, WindowProgress,
    WindowTracker,
};
use super::{BeatsInput, BeatsStats, KEEPALIVE_INTERVAL};
use crate::batch::{Ack, AckReceiver, AckStatus, Batch};
use crate::event::{Event, Timestamp};
use crate::inputs::budget::{self, Cut, Holding, ReadBuffer, Watched};
use crate::inputs::{InputContext, InputError};
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::codec::Encoder;
use tokio_util::sync::CancellationToken;

/// Windows a connection may have read ahead of its ACKs (Filebeat pipelines 2).
const MAX_PENDING_WINDOWS: usize = 4;

/// Runs the listener until shutdown, then lets open connections finish.
pub async fn run(input: Arc<BeatsInput>, ctx: InputContext) -> Result<(), InputError> {
    let addr = format!("{}:{}", input.host, input.port);
    let slots = Arc::new(Semaphore::new(input.max_connections));
    let tls = input.tls.is_some();
    crate::inputs::listener::serve_connections("beats", &addr, tls, &ctx, |stream, peer| {
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            input.stats.connections_rejected.fetch_add(1, Ordering::Relaxed);
            crate::metrics::get().beats.connections_refused.inc();
            tracing::warn!(input = ctx.id(), peer = %peer, max_connections = input.max_connections, "beats connection refused: too many connections");
            return None;
        };
        let input = input.clone();
        let ctx = ctx.clone();
        Some(async move {
            accept(&input, stream, peer, &ctx).await;
            drop(permit);
        })
    })
    .await
}

async fn accept(input: &BeatsInput, stream: TcpStream, peer: SocketAddr, ctx: &InputContext) {
    let stats = &input.stats;
    stats.connections_accepted.fetch_add(1, Ordering::Relaxed);
    stats.connections_active.fetch_add(1, Ordering::Relaxed);
    let m = &crate::metrics::get().beats;
    m.connections_accepted.inc();
    m.connections.inc();
    // Counts the connection closed however this task ends, even by a panic.
    let _open = OpenConnection(&m.connections);
    let _ = stream.set_nodelay(true);
    tracing::debug!(input = ctx.id(), peer = %peer, "beats connection opened");
    let ip = peer.ip().to_canonical().to_string();
    let outcome = match &input.tls {
        None => serve(input, stream, Peer::new(&ip, None), ctx).await,
        Some(tls) => match tls.accept(stream).await {
            Ok(stream) => {
                let verified = stream.get_ref().1.peer_certificates().is_some();
                serve(input, stream, Peer::new(&ip, Some(verified)), ctx).await
            }
            Err(e) => Err((CloseReason::TlsHandshake, e.to_string())),
        },
    };
    match outcome {
        Ok(()) => tracing::debug!(input = ctx.id(), peer = %peer, "beats connection closed"),
        Err((reason, message)) => {
            stats.count_close(reason);
            tracing::warn!(input = ctx.id(), peer = %peer, reason = reason.as_str(), error = %message, "beats connection closed");
        }
    }
    stats.connections_active.fetch_sub(1, Ordering::Relaxed);
}

/// One connection in the open-connections gauge, taken out again when dropped.
struct OpenConnection(&'static prometheus_client::metrics::gauge::Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A window whose ACK is owed, in the order the windows arrived.
struct Owed {
    version: u8,
    /// The highest sequence number, set when the window is complete (before its ack
    /// can fire).
    seq: Arc<AtomicU32>,
    /// `None` for a window of 0, answered at once.
    ack: Option<AckReceiver>,
}

type Closed = (CloseReason, String);

/// The close of a connection cut to give back input memory (see `inputs::budget`).
fn cut_for_memory(buffered: usize) -> Closed {
    (
        CloseReason::MemoryBudget,
        format!(
            "cut to give back input memory: the budget was spent on frames no peer \
             finished, and this connection held the most ({buffered} bytes of a partial \
             frame buffered); its client resends what was not acknowledged"
        ),
    )
}

fn protocol(e: ProtocolError) -> Closed {
    (e.reason(), e.to_string())
}

/// Serves one connection until the client leaves, breaks the protocol, or shutdown.
async fn serve<S>(
    input: &BeatsInput,
    stream: S,
    peer: Peer,
    ctx: &InputContext,
) -> Result<(), Closed>
where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    let (read, write) = tokio::io::split(stream);
    let memory = Holding::new(input.budget.clone());
    let codec = BeatsCodec::with_memory(input.limits, memory);
    let (tx, rx) = mpsc::channel::<Owed>(MAX_PENDING_WINDOWS);
    let owed = AtomicUsize::new(0);
    let failed = CancellationToken::new();
    let reader_done = AtomicBool::new(false);
    let reader = async {
        let result = read_windows(input, read, codec, tx, &owed, &failed, peer, ctx).await;
        // Set before the writer is polled again: an ack failed by the reader leaving
        // in the middle of a window is not a delivery failure.
        reader_done.store(true, Ordering::Release);
        result
    };
    let writer = write_acks(write, rx, &owed, &failed, &reader_done, &input.stats);
    let (read_result, write_result) = tokio::join!(reader, writer);
    read_result.and(write_result)
}

/// Events a connection holds decoded, not queued, for the window being read: past this
/// many bytes, or past a pipeline batch (`-b`) of events, they are queued before the
/// window is complete (sharing its ack). A connection waiting for room in the queue so
/// holds at most one batch, however large the window: with 100 Filebeat connections
/// and windows of 2048, whole windows held that way were most of Sluice's memory.
pub const WINDOW_FLUSH_BYTES: usize = 1024 * 1024;

/// What one decoded event is counted as beyond its payload (the event's fields).
const EVENT_OVERHEAD_BYTES: usize = 256;

/// Waits for `fut` unless shutdown comes first or the writer failed: `None` then.
async fn unless_stopped<T>(
    fut: impl std::future::Future<Output = T>,
    ctx: &InputContext,
    failed: &CancellationToken,
) -> Option<T> {
    tokio::select! {
        v = fut => Some(v),
        _ = ctx.shutdown().cancelled() => None,
        _ = failed.cancelled() => None,
    }
}

/// Waits for `wait` (memory for this connection) while watching the peer
/// ([`budget::wait_watching_peer`]): what the peer sends meanwhile is kept in `early`.
/// `None`: stop, because of a shutdown, a failure, or the peer closing (a Beats client
/// resends what was not acknowledged).
async fn wait_watching_peer<T, R>(
    wait: impl std::future::Future<Output = T>,
    read: &mut R,
    early: &mut Vec<u8>,
    ctx: &InputContext,
    failed: &CancellationToken,
) -> Option<T>
where
    R: AsyncRead + Unpin,
{
    let stop = async {
        tokio::select! {
            _ = ctx.shutdown().cancelled() => {}
            _ = failed.cancelled() => {}
        }
    };
    match budget::wait_watching_peer(wait, read, early, stop).await {
        Watched::Ready(v) => Some(v),
        Watched::Stopped => None,
        Watched::PeerClosed => {
            tracing::debug!(
                input = ctx.id(),
                "beats peer left while its connection waited for memory"
            );
            None
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn read_windows<R>(
    input: &BeatsInput,
    mut read: R,
    mut codec: BeatsCodec,
    tx: mpsc::Sender<Owed>,
    owed: &AtomicUsize,
    failed: &CancellationToken,
    peer: Peer,
    ctx: &InputContext,
) -> Result<(), Closed>
where
    R: AsyncRead + Unpin,
{
    let mut tracker = WindowTracker::new(input.max_window);
    let mut buffer = ReadBuffer::default();
    let mut unqueued = Unqueued::default();
    // The window being read: its ack and the slot for its ACK sequence.
    let mut open: Option<(FailUnlessPushed, Arc<AtomicU32>)> = None;
    // Bytes read while waiting for memory, ahead of the socket.
    let mut early: Vec<u8> = Vec::new();
    // Counts `$n` more bytes in the connection's holding. When the budget lacks them,
    // the events held of the open window are queued first (which gives their bytes
    // back), and only then does the connection wait, watching its peer. Returns from
    // the reader when it must stop, or with the close when the connection is cut.
    macro_rules! grow_or_return {
        ($n:expr) => {{
            let n = $n;
            if !codec.memory().try_grow(n) {
                let next = (tracker.outstanding() as usize).min(input.flush_events);
                let queued = unqueued.queue(input, ctx, failed, codec.memory(), &open, next);
                if !queued.await {
                    return Ok(());
                }
                if !codec.memory().try_grow(n) {
                    input.stats.memory_waits.fetch_add(1, Ordering::Relaxed);
                    let grown = codec.memory().grow(n);
                    match wait_watching_peer(grown, &mut read, &mut early, ctx, failed).await {
                        None => return Ok(()),
                        Some(Err(Cut)) => return Err(cut_for_memory(buffer.buf.len())),
                        Some(Ok(())) => {}
                    }
                }
            }
        }};
    }
    loop {
        let decoded = codec.decode_next(&mut buffer.buf).map_err(protocol);
        buffer.recount(codec.memory());
        let frame = match decoded? {
            Decoded::Frame(frame) => frame,
            Decoded::NeedMemory(n) => {
                grow_or_return!(n);
                codec.prepaid(n);
                continue;
            }
            Decoded::NeedBytes => {
                if !buffer.try_make_room(codec.memory()) {
                    let next = (tracker.outstanding() as usize).min(input.flush_events);
                    let queued = unqueued.queue(input, ctx, failed, codec.memory(), &open, next);
                    if !queued.await {
                        return Ok(());
                    }
                    let room = buffer.make_room(codec.memory());
                    match wait_watching_peer(room, &mut read, &mut early, ctx, failed).await {
                        None => return Ok(()),
                        Some(Err(Cut)) => return Err(cut_for_memory(buffer.buf.len())),
                        Some(Ok(false)) => {
                            input.stats.memory_waits.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(Ok(true)) => {}
                    }
                }
                if !early.is_empty() {
                    // make_room left at least a read's room, EARLY_BYTES.
                    buffer.buf.extend_from_slice(&early);
                    early.clear();
                    continue;
                }
                let next = tokio::select! {
                    _ = failed.cancelled() => return Ok(()),
                    _ = ctx.shutdown().cancelled() => return Ok(()),
                    () = codec.memory().cut_requested() => {
                        return Err(cut_for_memory(buffer.buf.len()));
                    }
                    next = tokio::time::timeout(input.inactivity, read.read_buf(&mut buffer.buf)) => next,
                };
                match next {
                    // While an ACK for a complete window is owed the client waits for
                    // us, it is not idle (the window being read is owed too, but is
                    // not complete).
                    Err(_) if owed.load(Ordering::Acquire) > usize::from(open.is_some()) => {}
                    Err(_) => {
                        return Err((
                            CloseReason::InactivityTimeout,
                            format!(
                                "no data for {} s ({} bytes of a partial frame buffered)",
                                input.inactivity.as_secs(),
                                buffer.buf.len()
                            ),
                        ))
                    }
                    Ok(Err(e)) => return Err(protocol(ProtocolError::Io(e))),
                    Ok(Ok(0)) => {
                        if !buffer.buf.is_empty() {
                            return Err(protocol(ProtocolError::Truncated {
                                buffered: buffer.buf.len(),
                            }));
                        }
                        if tracker.outstanding() > 0 {
                            tracing::debug!(
                                input = ctx.id(),
                                missing = tracker.outstanding(),
                                "beats client left in the middle of a window"
                            );
                        }
                        return Ok(());
                    }
                    Ok(Ok(_)) => {}
                }
                continue;
            }
        };
        let progress = match &frame {
            Frame::Window { version, size } => {
                let p = tracker.window(*version, *size).map_err(protocol)?;
                if p == WindowProgress::Open {
                    // Owed from now on: the writer keeps the client waiting with
                    // keep-alives while the window is read, held for memory, or pushed.
                    let (ack, receiver) = Ack::channel();
                    let seq = Arc::new(AtomicU32::new(0));
                    owed.fetch_add(1, Ordering::AcqRel);
                    let entry = Owed {
                        version: *version,
                        seq: seq.clone(),
                        ack: Some(receiver),
                    };
                    // Waits while MAX_PENDING_WINDOWS ACKs are owed: for the pipeline,
                    // not the peer, so what the connection holds is not stuck.
                    if codec
                        .memory()
                        .waiting_for_pipeline(tx.send(entry))
                        .await
                        .is_err()
                    {
                        ack.fail();
                        return Ok(()); // the writer stopped: it reports why
                    }
                    unqueued
                        .events
                        .reserve_exact((*size as usize).min(input.flush_events));
                    open = Some((FailUnlessPushed(Some(ack)), seq));
                }
                p
            }
            Frame::Json { seq, payload } => {
                let p = tracker.event(*seq, frame_kind(&frame)).map_err(protocol)?;
                let event = input
                    .mapper
                    .json_event(*seq, payload, &peer, Timestamp::now())
                    .map_err(protocol)?;
                let cost = payload.len() + EVENT_OVERHEAD_BYTES;
                grow_or_return!(cost);
                unqueued.push(event, payload.len(), cost);
                p
            }
            Frame::Data { seq, pairs } => {
                let p = tracker.event(*seq, frame_kind(&frame)).map_err(protocol)?;
                let len = pairs.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
                let cost = len + EVENT_OVERHEAD_BYTES;
                let event = input.mapper.v1_event(pairs, &peer, Timestamp::now());
                grow_or_return!(cost);
                unqueued.push(event, len, cost);
                p
            }
            Frame::Ack { .. } => return Err(protocol(ProtocolError::Unexpected("ACK"))),
            Frame::Compressed(_) => return Err(protocol(ProtocolError::Unexpected("compressed"))),
        };
        drop(frame);
        let WindowProgress::Complete { version, seq } = progress else {
            if unqueued.held >= WINDOW_FLUSH_BYTES || unqueued.events.len() >= input.flush_events {
                // A large open window: queue what it has so far under the window's ack.
                let next = (tracker.outstanding() as usize).min(input.flush_events);
                let queued = unqueued.queue(input, ctx, failed, codec.memory(), &open, next);
                if !queued.await {
                    return Ok(()); // the guard fails the window's ack
                }
            }
            continue;
        };
        tracker.check_no_excess(&mut codec).map_err(protocol)?;
        let Some((mut guard, seq_slot)) = open.take() else {
            // A window of 0: ACK 0 at once, in order.
            owed.fetch_add(1, Ordering::AcqRel);
            let entry = Owed {
                version,
                seq: Arc::new(AtomicU32::new(0)),
                ack: None,
            };
            if codec
                .memory()
                .waiting_for_pipeline(tx.send(entry))
                .await
                .is_err()
            {
                return Ok(());
            }
            continue;
        };
        seq_slot.store(seq, Ordering::Release);
        let batch_events = std::mem::take(&mut unqueued.events);
        input.stats.windows.fetch_add(1, Ordering::Relaxed);
        input
            .stats
            .events
            .fetch_add(batch_events.len() as u64, Ordering::Relaxed);
        let Some(ack) = guard.0.take() else { continue };
        // The last piece carries the window's own ack: once it is queued nothing of the
        // window is left to fail.
        let bytes = std::mem::take(&mut unqueued.bytes);
        let batch = Batch::with_bytes(batch_events, ack.clone(), bytes);
        guard.0 = Some(ack);
        // Not waiting for the persisted queue's sync: the window's ack fires only once
        // its records are synced, and the next window is read meanwhile.
        let push = unless_stopped(ctx.push_pipelined(batch), ctx, failed);
        let pushed = codec.memory().waiting_for_pipeline(push).await;
        codec.memory().shrink(std::mem::take(&mut unqueued.held));
        if !matches!(pushed, Some(Ok(_))) {
            // Not queued: the guard fails the ack, so the client is not told these
            // events are safe.
            return Ok(());
        }
        guard.0 = None;
    }
}

/// The events of the window being read that are decoded but not queued yet.
#[derive(Default)]
struct Unqueued {
    events: Vec<Event>,
    /// Their payload bytes (for the queue's byte limit).
    bytes: usize,
    /// What they are counted as in the connection's holding.
    held: usize,
}

impl Unqueued {
    fn push(&mut self, event: Event, payload: usize, cost: usize) {
        self.events.push(event);
        self.bytes += payload;
        self.held += cost;
    }

    /// Queues the events of the open window read so far, under the window's ack, and
    /// gives back what they were counted as (`next`: room for the next piece). Done
    /// past [`WINDOW_FLUSH_BYTES`] or a batch of events, and before the connection waits
    /// for memory: only queueing them gives their bytes back, so connections that each
    /// hold part of a window and wait for more, or one whose window is larger than the
    /// whole budget, would otherwise wait for each other for ever. False: stop (the
    /// queue closed, shutdown, or the connection failed); the window's guard then fails
    /// its ack.
    async fn queue(
        &mut self,
        input: &BeatsInput,
        ctx: &InputContext,
        failed: &CancellationToken,
        memory: &mut Holding,
        open: &Option<(FailUnlessPushed, Arc<AtomicU32>)>,
        next: usize,
    ) -> bool {
        if self.events.is_empty() {
            return true;
        }
        let Some(ack) = open.as_ref().and_then(|(guard, _)| guard.0.clone()) else {
            return true;
        };
        input.stats.partial_windows.fetch_add(1, Ordering::Relaxed);
        let piece = std::mem::replace(&mut self.events, Vec::with_capacity(next));
        let batch = Batch::with_bytes(piece, ack, std::mem::take(&mut self.bytes));
        input
            .stats
            .events
            .fetch_add(batch.events.len() as u64, Ordering::Relaxed);
        let push = unless_stopped(ctx.push_pipelined(batch), ctx, failed);
        let pushed = memory.waiting_for_pipeline(push).await;
        memory.shrink(std::mem::take(&mut self.held));
        matches!(pushed, Some(Ok(_)))
    }
}

/// The ack of the window being read; fails it if the window never reaches the queue
/// (protocol error, client gone, shutdown), so it cannot fire delivered.
struct FailUnlessPushed(Option<Ack>);

impl Drop for FailUnlessPushed {
    fn drop(&mut self) {
        if let Some(ack) = self.0.take() {
            ack.fail();
        }
    }
}

async fn write_acks<W>(
    mut write: W,
    mut rx: mpsc::Receiver<Owed>,
    owed: &AtomicUsize,
    failed: &CancellationToken,
    reader_done: &AtomicBool,
    stats: &BeatsStats,
) -> Result<(), Closed>
where
    W: AsyncWrite + Unpin,
{
    let mut codec = BeatsCodec::default();
    let mut buf = BytesMut::with_capacity(64);
    let io = |e: std::io::Error| (CloseReason::Io, format!("cannot write ACK: {e}"));
    while let Some(window) = rx.recv().await {
        let status = match window.ack {
            None => AckStatus::Delivered,
            Some(receiver) => {
                let wait = receiver.wait();
                tokio::pin!(wait);
                let mut keepalive = tokio::time::interval_at(
                    tokio::time::Instant::now() + KEEPALIVE_INTERVAL,
                    KEEPALIVE_INTERVAL,
                );
                loop {
                    tokio::select! {
                        status = &mut wait => break status,
                        _ = keepalive.tick() => {
                            codec.encode(Frame::Ack { version: window.version, seq: 0 }, &mut buf).map_err(io)?;
                            write.write_all_buf(&mut buf).await.map_err(io)?;
                            write.flush().await.map_err(io)?;
                            stats.keepalives.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        };
        owed.fetch_sub(1, Ordering::AcqRel);
        if status == AckStatus::Failed {
            failed.cancel();
            if reader_done.load(Ordering::Acquire) {
                return Ok(()); // the reader already closed the connection, and said why
            }
            return Err((
                CloseReason::AckFailed,
                format!("events up to sequence {} were not delivered; closing without ACK so the client resends", window.seq.load(Ordering::Acquire)),
            ));
        }
        codec
            .encode(
                Frame::Ack {
                    version: window.version,
                    seq: window.seq.load(Ordering::Acquire),
                },
                &mut buf,
            )
            .map_err(io)?;
        write.write_all_buf(&mut buf).await.map_err(io)?;
        write.flush().await.map_err(io)?;
        stats.acks.fetch_add(1, Ordering::Relaxed);
    }
    let _ = write.shutdown().await;
    Ok(())
}
