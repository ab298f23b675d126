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

use super::{Input, InputContext, InputError};
use crate::batch::{Ack, Batch};
use crate::codecs::line::LineFramer;
use crate::codecs::{StreamCodec, StreamDecoder};
use crate::config::Error;
use crate::event::{Event, Timestamp};
use crate::plugin::Options;
use bytes::BytesMut;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::codec::Decoder as _;

const READ_CHUNK: usize = 256 * 1024;

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
        let reading = Arc::new(AtomicBool::new(false));
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
            if reading.load(Ordering::Acquire) {
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

fn read_loop(
    input: &StdinInput,
    ctx: &InputContext,
    handle: &tokio::runtime::Handle,
    reading: &AtomicBool,
    decoder: &Mutex<StreamDecoder>,
) -> Result<(), InputError> {
    let mut stdin = std::io::stdin().lock();
    let mut framer = LineFramer::new(input.max_line_bytes);
    let mut buf = BytesMut::with_capacity(READ_CHUNK * 2);
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        if ctx.is_shutting_down() {
            return Ok(());
        }
        reading.store(true, Ordering::Release);
        let read = stdin.read(&mut chunk);
        reading.store(false, Ordering::Release);
        let n = match read {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(InputError::Io {
                    context: "reading stdin".into(),
                    source,
                })
            }
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
