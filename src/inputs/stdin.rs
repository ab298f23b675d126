//! `stdin` input: reads lines from standard input until EOF.
//!
//! A dedicated thread does blocking reads in large chunks (tokio's stdin would hop to a
//! blocking thread for every read) and pushes one batch per chunk.
//!
//! A blocking read cannot be interrupted portably, so shutdown does not wait for it: when
//! the pipeline is asked to stop while the thread sits in `read` (stdin held open with
//! nothing to say), the input returns at once and leaves the thread parked; whatever it
//! reads afterwards finds the queue closed and is not pushed. A thread busy pushing a
//! chunk it already read is waited for, so lines read before the signal are drained.
//!
//! With the `multiline` codec the pending lines live in a decoder both sides share: the
//! input's task flushes them after `auto_flush_interval`, and when it stops while the
//! reader thread waits in `read`; the thread flushes them at end of file.
//!
//! Other codecs decode each line alone, and decoding (JSON above all) costs far more
//! than reading and framing: on one thread it capped a json_lines pipeline at what one
//! core decodes while the workers idled. So the reader only frames lines into blocks
//! (one per read) and [`DECODERS`] threads decode the blocks in parallel, each pushing
//! its batch when every earlier block has been pushed: batches reach the queue in the
//! order of the input, as from one thread.

use super::{Input, InputContext, InputError};
use crate::batch::{Ack, Batch};
use crate::codecs::line::{Line, LineFramer};
use crate::codecs::{Decoder, StreamCodec, StreamDecoder};
use crate::config::Error;
use crate::event::{Event, Timestamp};
use crate::plugin::Options;
use bytes::BytesMut;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use tokio_util::codec::Decoder as _;

const READ_CHUNK: usize = 256 * 1024;

/// Threads that decode blocks of lines, at most: one per core, up to this many.
const DECODERS: usize = 8;

pub struct StdinInput {
    codec: StreamCodec,
    max_line_bytes: usize,
}

impl StdinInput {
    pub fn build(opts: &mut Options) -> Result<StdinInput, Error> {
        let codec = StreamCodec::build(opts.codec()?, "line")?;
        let max_line_bytes = opts.usize_or("max_line_bytes", 1024 * 1024)?;
        Ok(StdinInput {
            codec,
            max_line_bytes,
        })
    }
}

#[async_trait::async_trait]
impl Input for StdinInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        let handle = tokio::runtime::Handle::current();
        let reader_ctx = ctx.clone();
        let reading = Arc::new(Idle::default());
        let reader_flag = reading.clone();
        let decoder = Arc::new(Mutex::new(self.codec.stream()));
        let reader_decoder = decoder.clone();
        // The reader thread logs in this task's span (pipeline and plugin ids).
        let span = tracing::Span::current();
        let thread = std::thread::Builder::new()
            .name("sluice-stdin".into())
            .spawn(move || {
                span.in_scope(|| {
                    read_loop(&self, &reader_ctx, &handle, &reader_flag, &reader_decoder)
                })
            })
            .map_err(|source| InputError::Io {
                context: "cannot start the stdin reader thread".into(),
                source,
            })?;
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = tx.send(thread.join());
        });
        let finished = |joined: Result<std::thread::Result<Result<(), InputError>>, _>| match joined
        {
            Ok(Ok(result)) => result,
            _ => Err(InputError::Other(
                "stdin reader thread stopped abnormally".into(),
            )),
        };
        loop {
            let due = lock(&decoder).flush_due();
            let flush_timer = async move {
                match due {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                }
            };
            tokio::select! {
                joined = &mut rx => return finished(joined),
                () = ctx.shutdown().cancelled() => break,
                () = flush_timer => {
                    // `auto_flush_interval`: pending multiline lines without a sequel.
                    let mut events = Vec::new();
                    lock(&decoder).flush_if_due(Timestamp::now(), &mut events);
                    if push_events(&ctx, events).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
        // Asked to stop: a reader blocked in `read` is left behind; one pushing a chunk
        // it already read finishes that push and then sees the shutdown.
        loop {
            if reading.is_idle() {
                tracing::debug!(
                    input = ctx.id(),
                    "stopping while stdin is blocked in a read"
                );
                // Lines a multiline event still waited for: never lost.
                let mut events = Vec::new();
                lock(&decoder).flush(Timestamp::now(), &mut events);
                let _ = push_events(&ctx, events).await;
                return Ok(());
            }
            tokio::select! {
                joined = &mut rx => return finished(joined),
                () = tokio::time::sleep(std::time::Duration::from_millis(5)) => {}
            }
        }
    }
}

/// The shared decoder; a panic elsewhere leaves it usable (its state is whole lines).
fn lock(decoder: &Mutex<StreamDecoder>) -> std::sync::MutexGuard<'_, StreamDecoder> {
    decoder.lock().unwrap_or_else(|p| p.into_inner())
}

async fn push_events(
    ctx: &InputContext,
    events: Vec<Event>,
) -> Result<(), crate::queue::QueueClosed> {
    if events.is_empty() {
        return Ok(());
    }
    let bytes = events
        .iter()
        .map(|e| e.get_str("message").map_or(0, str::len))
        .sum();
    ctx.push(Batch::with_bytes(events, Ack::none(), bytes))
        .await
}

/// Whether the reader thread waits in `read` with nothing read left to push: then
/// stopping loses nothing.
#[derive(Default)]
struct Idle {
    reading: AtomicBool,
    /// Blocks handed to the decoders and not yet pushed (or given up).
    in_flight: AtomicUsize,
}

impl Idle {
    fn is_idle(&self) -> bool {
        self.reading.load(Ordering::Acquire) && self.in_flight.load(Ordering::Acquire) == 0
    }
}

/// The lines of one read, numbered in the order they were read.
struct Block {
    seq: u64,
    lines: Vec<Line>,
    bytes: usize,
    now: Timestamp,
}

/// Whose turn it is to push: blocks are pushed in the order they were read.
struct Turns {
    /// The next block to push, and whether the queue closed (nobody pushes anymore).
    state: Mutex<(u64, bool)>,
    changed: Condvar,
}

impl Turns {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, bool)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until block `seq` may be pushed; false when the queue closed.
    fn wait(&self, seq: u64) -> bool {
        let mut state = self.lock();
        while state.0 != seq && !state.1 {
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        !state.1
    }

    /// Block `seq` is pushed (or the queue `closed`): the next one's turn.
    fn pass(&self, closed: bool) {
        let mut state = self.lock();
        state.0 += 1;
        state.1 |= closed;
        self.changed.notify_all();
    }

    fn closed(&self) -> bool {
        self.lock().1
    }
}

fn read_loop(
    input: &StdinInput,
    ctx: &InputContext,
    handle: &tokio::runtime::Handle,
    idle: &Idle,
    decoder: &Mutex<StreamDecoder>,
) -> Result<(), InputError> {
    let decoders = std::thread::available_parallelism().map_or(1, |n| n.get().min(DECODERS));
    // (A `let` of its own: the lock is released before `read_and_decode` takes it.)
    let line_decoder = match &*lock(decoder) {
        StreamDecoder::Lines(d) if decoders > 1 => Some(d.clone()),
        _ => None,
    };
    let Some(line_decoder) = line_decoder else {
        // One thread, or a codec whose lines depend on the lines before them.
        return read_and_decode(input, ctx, handle, idle, decoder);
    };
    let turns = Turns {
        state: Mutex::new((0, false)),
        changed: Condvar::new(),
    };
    // Blocks wait here for a decoder: with one block being decoded (or waiting for its
    // turn) per decoder, at most 2 × `decoders` blocks of `READ_CHUNK` bytes are held.
    let (blocks, queued) = sync_channel::<Block>(decoders);
    let queued = Mutex::new(queued);
    let span = tracing::Span::current();
    std::thread::scope(|scope| {
        for n in 0..decoders {
            let (turns, queued, line_decoder, span) = (&turns, &queued, &line_decoder, &span);
            let spawned = std::thread::Builder::new()
                .name(format!("sluice-stdin-{n}"))
                .spawn_scoped(scope, move || {
                    span.in_scope(|| decode_blocks(ctx, handle, idle, turns, queued, line_decoder))
                });
            if let Err(source) = spawned {
                if n == 0 {
                    return Err(InputError::Io {
                        context: "cannot start a stdin decoder thread".into(),
                        source,
                    });
                }
                tracing::warn!(error = %source, threads = n, "stdin decodes on fewer threads than cores");
                break;
            }
        }
        // Dropping the sender (in `read_blocks`) lets the decoders finish; the scope waits
        // for them, so this thread ends once every block read is pushed.
        read_blocks(input, ctx, idle, &turns, blocks)
    })
}

/// Reads and frames stdin into blocks for the decoders until end of file, a shutdown or
/// a closed queue.
fn read_blocks(
    input: &StdinInput,
    ctx: &InputContext,
    idle: &Idle,
    turns: &Turns,
    blocks: SyncSender<Block>,
) -> Result<(), InputError> {
    let mut stdin = std::io::stdin().lock();
    let mut framer = LineFramer::new(input.max_line_bytes);
    let mut buf = BytesMut::with_capacity(READ_CHUNK * 2);
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut seq = 0;
    loop {
        if ctx.is_shutting_down() || turns.closed() {
            return Ok(());
        }
        let Some(n) = read_some(&mut stdin, &mut chunk, idle)? else {
            continue;
        };
        let eof = n == 0;
        buf.extend_from_slice(&chunk[..n]);
        let mut lines = Vec::with_capacity(n / 128 + 1);
        let mut bytes = 0;
        loop {
            let next = if eof {
                framer.decode_eof(&mut buf)
            } else {
                framer.decode(&mut buf)
            };
            match next {
                Ok(Some(line)) => {
                    bytes += line.bytes.len();
                    lines.push(line);
                }
                Ok(None) => break,
                Err(source) => {
                    return Err(InputError::Io {
                        context: "framing stdin".into(),
                        source,
                    })
                }
            }
        }
        if !lines.is_empty() {
            idle.in_flight.fetch_add(1, Ordering::AcqRel);
            let block = Block {
                seq,
                lines,
                bytes,
                now: Timestamp::now(),
            };
            seq += 1;
            if blocks.send(block).is_err() {
                // Every decoder stopped: the queue closed.
                idle.in_flight.fetch_sub(1, Ordering::AcqRel);
                return Ok(());
            }
        }
        if eof {
            tracing::debug!(input = ctx.id(), "stdin reached end of file");
            return Ok(());
        }
    }
}

/// One decoder thread: takes blocks, decodes them, and pushes each in its turn.
fn decode_blocks(
    ctx: &InputContext,
    handle: &tokio::runtime::Handle,
    idle: &Idle,
    turns: &Turns,
    queued: &Mutex<Receiver<Block>>,
    decoder: &Decoder,
) {
    crate::recycle::make_home();
    loop {
        // Waiting for a block may take long (stdin is quiet): what came back is freed
        // now, and what comes back meanwhile by the sweeper (see `recycle`).
        crate::recycle::away();
        let next = queued.lock().unwrap_or_else(|p| p.into_inner()).recv();
        crate::recycle::back();
        let Ok(block) = next else {
            // The reader stopped and every block is taken.
            return;
        };
        let mut turn = Turn {
            turns,
            idle,
            closed: false,
        };
        let mut events = Vec::with_capacity(block.lines.len());
        for line in &block.lines {
            let before = events.len();
            decoder.decode(&line.bytes, block.now, &mut events);
            if line.truncated {
                for e in &mut events[before..] {
                    e.add_tag(crate::codecs::line::LINE_TOO_LONG);
                }
            }
        }
        drop(block.lines);
        if turns.wait(block.seq) && !events.is_empty() {
            let batch = Batch::with_bytes(events, Ack::none(), block.bytes);
            turn.closed = handle.block_on(ctx.push(batch)).is_err();
        }
    }
}

/// A decoder's turn with one block: passed on when it ends, also by a panic (which
/// stops the input rather than leave the next blocks waiting forever).
struct Turn<'a> {
    turns: &'a Turns,
    idle: &'a Idle,
    closed: bool,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.turns.pass(self.closed || std::thread::panicking());
        self.idle.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Reads, frames and decodes on this one thread.
fn read_and_decode(
    input: &StdinInput,
    ctx: &InputContext,
    handle: &tokio::runtime::Handle,
    idle: &Idle,
    decoder: &Mutex<StreamDecoder>,
) -> Result<(), InputError> {
    crate::recycle::make_home();
    let mut stdin = std::io::stdin().lock();
    let mut framer = LineFramer::new(input.max_line_bytes);
    let mut buf = BytesMut::with_capacity(READ_CHUNK * 2);
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        if ctx.is_shutting_down() {
            return Ok(());
        }
        let Some(n) = read_some(&mut stdin, &mut chunk, idle)? else {
            continue;
        };
        let eof = n == 0;
        buf.extend_from_slice(&chunk[..n]);
        let now = Timestamp::now();
        let mut events: Vec<Event> = Vec::with_capacity(n / 128 + 1);
        let mut bytes = 0;
        let mut decoder = lock(decoder);
        loop {
            let next = if eof {
                framer.decode_eof(&mut buf)
            } else {
                framer.decode(&mut buf)
            };
            let line = match next {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(source) => {
                    return Err(InputError::Io {
                        context: "framing stdin".into(),
                        source,
                    })
                }
            };
            bytes += line.bytes.len();
            decoder.line(&line.bytes, line.truncated, now, &mut events);
        }
        if eof {
            decoder.flush(now, &mut events);
        }
        drop(decoder);
        if !events.is_empty() {
            let batch = Batch::with_bytes(events, Ack::none(), bytes);
            if handle.block_on(ctx.push(batch)).is_err() {
                return Ok(());
            }
        }
        if eof {
            tracing::debug!(input = ctx.id(), "stdin reached end of file");
            return Ok(());
        }
    }
}

/// One read from stdin, with `idle` saying while it blocks (shutdown looks at it);
/// `None` when the read was interrupted by a signal and should be tried again.
fn read_some(
    stdin: &mut std::io::StdinLock<'_>,
    chunk: &mut [u8],
    idle: &Idle,
) -> Result<Option<usize>, InputError> {
    idle.reading.store(true, Ordering::Release);
    // A read may block for long: a decoding thread frees what came back to it now, and
    // the sweeper what comes back meanwhile (see `recycle`).
    crate::recycle::away();
    let read = stdin.read(chunk);
    crate::recycle::back();
    idle.reading.store(false, Ordering::Release);
    match read {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(None),
        Err(source) => Err(InputError::Io {
            context: "reading stdin".into(),
            source,
        }),
    }
}
