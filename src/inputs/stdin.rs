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

use super::{Input, InputContext, InputError};
use crate::batch::{Ack, Batch};
use crate::codecs::line::{LineFramer, LINE_TOO_LONG};
use crate::codecs::Decoder;
use crate::config::Error;
use crate::event::{Event, Timestamp};
use crate::plugin::Options;
use bytes::BytesMut;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio_util::codec::Decoder as _;

const READ_CHUNK: usize = 256 * 1024;

pub struct StdinInput {
    decoder: Decoder,
    max_line_bytes: usize,
}

impl StdinInput {
    pub fn build(opts: &mut Options) -> Result<StdinInput, Error> {
        let decoder = Decoder::build(opts.codec()?, "line")?;
        let max_line_bytes = opts.usize_or("max_line_bytes", 1024 * 1024)?;
        Ok(StdinInput {
            decoder,
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
        // The reader thread logs in this task's span (pipeline and plugin ids).
        let span = tracing::Span::current();
        let thread = std::thread::Builder::new()
            .name("sluice-stdin".into())
            .spawn(move || span.in_scope(|| read_loop(&self, &reader_ctx, &handle, &reader_flag)))
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
        tokio::select! {
            joined = &mut rx => return finished(joined),
            () = ctx.shutdown().cancelled() => {}
        }
        // Asked to stop: a reader blocked in `read` is left behind; one pushing a chunk
        // it already read finishes that push and then sees the shutdown.
        loop {
            if reading.load(Ordering::Acquire) {
                tracing::debug!(
                    input = ctx.id(),
                    "stopping while stdin is blocked in a read"
                );
                return Ok(());
            }
            tokio::select! {
                joined = &mut rx => return finished(joined),
                () = tokio::time::sleep(std::time::Duration::from_millis(5)) => {}
            }
        }
    }
}

fn read_loop(
    input: &StdinInput,
    ctx: &InputContext,
    handle: &tokio::runtime::Handle,
    reading: &AtomicBool,
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
            let before = events.len();
            input.decoder.decode(&line.bytes, now, &mut events);
            if line.truncated {
                for e in &mut events[before..] {
                    e.add_tag(LINE_TOO_LONG);
                }
            }
        }
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
