//! `tcp` input: a server that reads newline-delimited events from many clients at once.
//! Each connection is framed with a hard line cap and batches whatever is ready.
//! With `ssl_enabled => true` connections are TLS (see [`super::tls`]).

use super::tls::TlsServer;
use super::{Input, InputContext, InputError};
use crate::batch::{Ack, Batch};
use crate::codecs::line::{LineFramer, LINE_TOO_LONG};
use crate::codecs::Decoder;
use crate::config::Error;
use crate::event::{Event, Timestamp, Value};
use crate::plugin::Options;
use futures::{FutureExt, StreamExt};
use std::net::SocketAddr;
use tokio::io::AsyncRead;
use tokio_util::codec::FramedRead;

pub struct TcpInput {
    host: String,
    port: u16,
    decoder: Decoder,
    max_line_bytes: usize,
    batch_size: usize,
    tls: Option<TlsServer>,
}

impl TcpInput {
    pub fn build(opts: &mut Options) -> Result<TcpInput, Error> {
        let host = opts.string_or("host", "0.0.0.0")?;
        let pos = opts.value_pos("port");
        let port = opts
            .int("port")?
            .ok_or_else(|| opts.error("tcp input requires option `port`"))?;
        let port = u16::try_from(port)
            .map_err(|_| opts.option_error("port", &pos, format!("{port} is not a TCP port")))?;
        let mode = opts.string_or("mode", "server")?;
        if mode != "server" {
            let pos = opts.pos().clone();
            return Err(opts.option_error("mode", &pos, "only `server` mode is supported"));
        }
        let _ = opts.bool("tcp_keep_alive")?;
        let decoder = Decoder::build(opts.codec()?, "line")?;
        let max_line_bytes = opts.usize_or("max_line_bytes", 1024 * 1024)?;
        let batch_size = opts.context().batch_size.max(1);
        let tls = TlsServer::from_options(opts)?;
        Ok(TcpInput {
            host,
            port,
            decoder,
            max_line_bytes,
            batch_size,
            tls,
        })
    }
}

#[async_trait::async_trait]
impl Input for TcpInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        let addr = format!("{}:{}", self.host, self.port);
        let tls = self.tls.is_some();
        let this = std::sync::Arc::new(*self);
        super::listener::serve_connections("tcp", &addr, tls, &ctx, |stream, peer| {
            let this = this.clone();
            let ctx = ctx.clone();
            Some(async move {
                match &this.tls {
                    None => this.serve(stream, peer, ctx).await,
                    Some(tls) => match tls.accept(stream).await {
                        Ok(stream) => this.serve(stream, peer, ctx).await,
                        Err(e) => tracing::warn!(input = ctx.id(), peer = %peer, error = %e, "tls handshake failed"),
                    },
                }
            })
        })
        .await
    }
}

impl TcpInput {
    async fn serve<S: AsyncRead + Unpin>(&self, stream: S, peer: SocketAddr, ctx: InputContext) {
        tracing::debug!(input = ctx.id(), peer = %peer, "tcp connection opened");
        let mut frames = FramedRead::new(stream, LineFramer::new(self.max_line_bytes));
        let host = peer.ip().to_string();
        loop {
            let first = tokio::select! {
                _ = ctx.shutdown().cancelled() => break,
                f = frames.next() => f,
            };
            let Some(first) = first else { break };
            let now = Timestamp::now();
            let mut events: Vec<Event> = Vec::with_capacity(16);
            let mut bytes = 0;
            let mut next = Some(first);
            let mut closed = false;
            while let Some(frame) = next.take() {
                match frame {
                    Ok(line) => {
                        bytes += line.bytes.len();
                        let before = events.len();
                        self.decoder.decode(&line.bytes, now, &mut events);
                        for e in &mut events[before..] {
                            if line.truncated {
                                e.add_tag(LINE_TOO_LONG);
                            }
                            if e.get_field("host").is_none() {
                                e.insert_field("host", Value::String(host.clone()));
                            }
                            if e.get_field("port").is_none() {
                                e.insert_field("port", Value::Int(peer.port() as i64));
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(input = ctx.id(), peer = %peer, error = %e, "tcp read failed");
                        closed = true;
                        break;
                    }
                }
                if events.len() >= self.batch_size {
                    break;
                }
                // Take whatever else is already buffered, without waiting.
                match frames.next().now_or_never() {
                    Some(Some(f)) => next = Some(f),
                    Some(None) => closed = true,
                    None => {}
                }
            }
            if !events.is_empty()
                && ctx
                    .push(Batch::with_bytes(events, Ack::none(), bytes))
                    .await
                    .is_err()
            {
                break;
            }
            if closed {
                break;
            }
        }
        tracing::debug!(input = ctx.id(), peer = %peer, "tcp connection closed");
    }
}
