//! `gelf` input: Graylog Extended Log Format messages over UDP (and TCP with
//! `use_tcp`), as Logstash's namesake.
//!
//! Over UDP a datagram is one GELF message: JSON, zlib- or gzip-compressed JSON, or one
//! chunk of a larger message (magic `0x1e 0x0f`, an 8-byte message id, the chunk's
//! sequence number and the chunk count, at most [`MAX_CHUNKS`]). Chunks are put back
//! together in a reassembly buffer bounded in bytes ([`MAX_REASSEMBLY_BYTES`]); a
//! message whose chunks do not all arrive within [`CHUNK_TIMEOUT`] is dropped, and so is
//! one that would take the buffer past its bound, or whose chunks contradict each other.
//! A hostile or broken sender thus costs at most that much memory. Every drop is counted
//! (`sluice_input_datagrams_dropped_total{plugin_id, reason}`) and logged at most once
//! per [`DROP_LOG_EVERY`] per reason.
//!
//! Over TCP messages are uncompressed JSON, each ended by a null byte; a message longer
//! than [`MAX_MESSAGE_BYTES`] is dropped (counted). UDP, like the `udp` input, never
//! waits: complete messages go through a hand-off of [`HANDOFF_MESSAGES`] messages to
//! the decoding task, and what does not fit is dropped, counted (`queue_full`).
//!
//! Each message becomes one event: its fields as sent, `source_host` (the sender's
//! address), `@timestamp` from a numeric `timestamp` (float seconds). With `remap`
//! (default) `full_message` or else `short_message` becomes `message`; with
//! `strip_leading_underscore` (default) the additional fields lose their `_`. A payload
//! that is not JSON becomes an event with its text in `message`, tagged
//! `_jsonparsefailure` (the plugin's tag).

use super::{Input, InputContext, InputError};
use crate::batch::{Ack, Batch};
use crate::config::Error;
use crate::event::{Event, Map, Timestamp, Value};
use crate::metrics::plugin_reason;
use crate::plugin::Options;
use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// The plugin's tag for a payload that is not JSON.
pub const PARSE_FAILURE: &str = "_jsonparsefailure";
/// The plugin's tag when an underscored field could not be moved (`_@timestamp`).
pub const MOVE_FIELD_FAILURE: &str = "_gelf_move_field_failure";
/// The most chunks one message may have (the GELF specification's limit).
pub const MAX_CHUNKS: u8 = 128;
/// How long the chunks of one message may take to arrive (the GELF specification's).
pub const CHUNK_TIMEOUT: Duration = Duration::from_secs(5);
/// The most bytes of incomplete chunked messages held at once.
pub const MAX_REASSEMBLY_BYTES: usize = 32 << 20;
/// The longest message accepted, after decompression, or on a TCP connection.
pub const MAX_MESSAGE_BYTES: usize = 8 << 20;
/// Complete messages waiting for the decoding task.
pub const HANDOFF_MESSAGES: usize = 2000;
/// The most TCP connections served at once; more are refused.
pub const MAX_CONNECTIONS: usize = 10_000;
/// The least time between two log lines about drops of one reason.
pub const DROP_LOG_EVERY: Duration = Duration::from_secs(10);

const CHUNK_MAGIC: [u8; 2] = [0x1e, 0x0f];
const CHUNK_HEADER: usize = 12;
/// What one chunk's bookkeeping is charged against [`MAX_REASSEMBLY_BYTES`].
const CHUNK_OVERHEAD: usize = 64;
/// The largest UDP payload.
const DATAGRAM_BYTES: usize = 65_535;

pub struct GelfInput {
    host: String,
    port_udp: u16,
    port_tcp: u16,
    use_udp: bool,
    use_tcp: bool,
    remap: bool,
    strip_leading_underscore: bool,
    batch_size: usize,
    stats: Arc<GelfStats>,
}

/// Counters of one gelf input.
#[derive(Debug, Default)]
pub struct GelfStats {
    /// Datagrams read.
    pub datagrams: AtomicU64,
    /// Events pushed to the pipeline queue.
    pub events: AtomicU64,
    /// Messages (or chunks) dropped, all reasons together.
    pub dropped: AtomicU64,
    /// Chunked messages dropped because their chunks did not all arrive in time.
    pub chunk_timeouts: AtomicU64,
    /// Chunked messages dropped because the reassembly buffer was full.
    pub chunk_memory_limit: AtomicU64,
    /// Bytes of incomplete chunked messages held now.
    pub reassembly_bytes: AtomicU64,
    /// The UDP port bound (useful with `port => 0`).
    pub bound_udp_port: AtomicU64,
    /// The TCP port bound.
    pub bound_tcp_port: AtomicU64,
}

fn port(opts: &mut Options, name: &str, default: i64) -> Result<u16, Error> {
    let pos = opts.value_pos(name);
    let p = opts.int(name)?.unwrap_or(default);
    u16::try_from(p).map_err(|_| opts.option_error(name, &pos, format!("{p} is not a port")))
}

impl GelfInput {
    pub fn build(opts: &mut Options) -> Result<GelfInput, Error> {
        let host = opts.string_or("host", "0.0.0.0")?;
        let port_default = i64::from(port(opts, "port", 12201)?);
        let port_tcp = port(opts, "port_tcp", port_default)?;
        let port_udp = port(opts, "port_udp", port_default)?;
        let use_tcp = opts.bool_or("use_tcp", false)?;
        let use_udp = opts.bool_or("use_udp", true)?;
        if !use_tcp && !use_udp {
            return Err(opts.error("gelf input: use_udp and use_tcp are both false"));
        }
        let remap = opts.bool_or("remap", true)?;
        let strip_leading_underscore = opts.bool_or("strip_leading_underscore", true)?;
        // The plugin decodes GELF itself; `codec` is accepted as Logstash does (plain).
        let _ = opts.codec()?;
        Ok(GelfInput {
            host,
            port_udp,
            port_tcp,
            use_udp,
            use_tcp,
            remap,
            strip_leading_underscore,
            batch_size: opts.context().batch_size.max(1),
            stats: Arc::default(),
        })
    }

    /// This input's counters (shared with its running tasks).
    pub fn stats(&self) -> Arc<GelfStats> {
        self.stats.clone()
    }

    fn ip(&self) -> std::io::Result<IpAddr> {
        self.host.parse().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("`{}` is not an IP address", self.host),
            )
        })
    }
}

/// One complete message waiting to be decoded.
struct Message {
    payload: Bytes,
    from: IpAddr,
}

/// Drops by reason: the exported counter, the input's total, rate-limited logs.
struct Drops {
    input: Arc<str>,
    stats: Arc<GelfStats>,
    reasons: HashMap<&'static str, (Counter, Option<Instant>, u64)>,
}

impl Drops {
    fn new(ctx: &InputContext, stats: Arc<GelfStats>) -> Drops {
        Drops {
            input: Arc::from(ctx.id()),
            stats,
            reasons: HashMap::new(),
        }
    }

    fn count(&mut self, reason: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        self.stats.dropped.fetch_add(n, Ordering::Relaxed);
        let input = self.input.clone();
        let (counter, last_log, since) = self.reasons.entry(reason).or_insert_with(|| {
            let c = crate::metrics::get()
                .inputs
                .datagrams_dropped
                .get_or_create(&plugin_reason(&input, reason))
                .clone();
            (c, None, 0)
        });
        counter.inc_by(n);
        *since += n;
        if last_log.is_none_or(|t| t.elapsed() >= DROP_LOG_EVERY) {
            tracing::warn!(input = %input, reason, dropped = *since, "gelf messages dropped");
            *last_log = Some(Instant::now());
            *since = 0;
        }
    }
}

#[async_trait::async_trait]
impl Input for GelfInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        let ip = self.ip().map_err(|source| InputError::Io {
            context: "gelf input host".into(),
            source,
        })?;
        let this = Arc::new(*self);
        let (tx, rx) = mpsc::channel::<Message>(HANDOFF_MESSAGES);
        let mut tasks = tokio::task::JoinSet::new();
        if this.use_udp {
            let addr = SocketAddr::new(ip, this.port_udp);
            let socket = UdpSocket::bind(addr)
                .await
                .map_err(|source| InputError::Io {
                    context: format!("gelf input cannot listen on udp {addr}"),
                    source,
                })?;
            if let Ok(local) = socket.local_addr() {
                this.stats
                    .bound_udp_port
                    .store(u64::from(local.port()), Ordering::Relaxed);
            }
            tracing::info!(input = ctx.id(), address = %addr, "gelf input listening (udp)");
            let (this, tx, ctx) = (this.clone(), tx.clone(), ctx.clone());
            tasks.spawn(async move { this.receive_udp(socket, tx, ctx).await });
        }
        if this.use_tcp {
            let addr = SocketAddr::new(ip, this.port_tcp);
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| InputError::Io {
                    context: format!("gelf input cannot listen on tcp {addr}"),
                    source,
                })?;
            if let Ok(local) = listener.local_addr() {
                this.stats
                    .bound_tcp_port
                    .store(u64::from(local.port()), Ordering::Relaxed);
            }
            tracing::info!(input = ctx.id(), address = %addr, "gelf input listening (tcp)");
            let (this, tx, ctx) = (this.clone(), tx.clone(), ctx.clone());
            tasks.spawn(async move { this.accept_tcp(listener, tx, ctx).await });
        }
        drop(tx);
        // The decoder ends when every sender (the listeners, the connections) is gone.
        this.decode(rx, &ctx).await;
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

impl GelfInput {
    /// Reads datagrams until shutdown, reassembling chunks; never waits for the decoder.
    async fn receive_udp(&self, socket: UdpSocket, tx: mpsc::Sender<Message>, ctx: InputContext) {
        let mut buf = vec![0u8; DATAGRAM_BYTES];
        let mut chunks = Reassembly::default();
        let mut drops = Drops::new(&ctx, self.stats.clone());
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        loop {
            let received = tokio::select! {
                _ = ctx.shutdown().cancelled() => break,
                _ = sweep.tick() => {
                    drops.count("chunk_timeout", chunks.expire(Instant::now(), &self.stats));
                    continue;
                }
                r = socket.recv_from(&mut buf) => r,
            };
            let (n, from) = match received {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(input = ctx.id(), error = %e, "gelf udp receive failed");
                    continue;
                }
            };
            self.stats.datagrams.fetch_add(1, Ordering::Relaxed);
            let datagram = &buf[..n];
            let payload = if datagram.starts_with(&CHUNK_MAGIC) {
                drops.count("chunk_timeout", chunks.expire(Instant::now(), &self.stats));
                match chunks.add(datagram, Instant::now(), &self.stats) {
                    Ok(Some(whole)) => Bytes::from(whole),
                    Ok(None) => continue,
                    Err(reason) => {
                        drops.count(reason, 1);
                        continue;
                    }
                }
            } else {
                Bytes::copy_from_slice(datagram)
            };
            match tx.try_send(Message {
                payload,
                from: from.ip(),
            }) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => drops.count("queue_full", 1),
                Err(mpsc::error::TrySendError::Closed(_)) => break,
            }
        }
    }

    async fn accept_tcp(
        self: Arc<Self>,
        listener: TcpListener,
        tx: mpsc::Sender<Message>,
        ctx: InputContext,
    ) {
        let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = ctx.shutdown().cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let Ok(permit) = open.clone().try_acquire_owned() else {
                            tracing::warn!(input = ctx.id(), peer = %peer, max = MAX_CONNECTIONS, "gelf tcp connection refused: too many open");
                            continue;
                        };
                        let (this, tx, ctx) = (self.clone(), tx.clone(), ctx.clone());
                        connections.spawn(async move {
                            this.serve_tcp(stream, peer.ip(), tx, ctx).await;
                            drop(permit);
                        });
                    }
                    Err(e) => {
                        tracing::warn!(input = ctx.id(), error = %e, "gelf tcp accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        while connections.join_next().await.is_some() {}
    }

    /// Splits a connection's bytes on null bytes; waits while the decoder is behind
    /// (TCP has back-pressure).
    async fn serve_tcp(
        &self,
        mut stream: TcpStream,
        from: IpAddr,
        tx: mpsc::Sender<Message>,
        ctx: InputContext,
    ) {
        let mut drops = Drops::new(&ctx, self.stats.clone());
        let mut pending: Vec<u8> = Vec::new();
        let mut skipping = false;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = tokio::select! {
                _ = ctx.shutdown().cancelled() => break,
                r = stream.read(&mut buf) => match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                },
            };
            let mut data = &buf[..n];
            while let Some(i) = memchr::memchr(0, data) {
                if skipping {
                    skipping = false;
                } else {
                    pending.extend_from_slice(&data[..i]);
                    let payload = Bytes::from(std::mem::take(&mut pending));
                    if !payload.iter().all(u8::is_ascii_whitespace)
                        && tx.send(Message { payload, from }).await.is_err()
                    {
                        return;
                    }
                }
                data = &data[i + 1..];
            }
            if !skipping {
                pending.extend_from_slice(data);
                if pending.len() > MAX_MESSAGE_BYTES {
                    pending = Vec::new();
                    skipping = true;
                    drops.count("message_too_large", 1);
                }
            }
        }
        // The last message without its null byte, when the client leaves.
        if !skipping && !pending.iter().all(u8::is_ascii_whitespace) {
            let _ = tx
                .send(Message {
                    payload: Bytes::from(pending),
                    from,
                })
                .await;
        }
    }

    /// Turns messages into events and pushes them in batches.
    async fn decode(&self, mut rx: mpsc::Receiver<Message>, ctx: &InputContext) {
        let mut drops = Drops::new(ctx, self.stats.clone());
        let mut messages = Vec::with_capacity(self.batch_size);
        while rx.recv_many(&mut messages, self.batch_size).await > 0 {
            let now = Timestamp::now();
            let mut events = Vec::with_capacity(messages.len());
            let mut bytes = 0;
            for m in messages.drain(..) {
                bytes += m.payload.len();
                match self.event(&m.payload, m.from, now) {
                    Ok(e) => events.push(e),
                    Err(reason) => drops.count(reason, 1),
                }
            }
            let count = events.len() as u64;
            if count == 0 {
                continue;
            }
            if ctx
                .push(Batch::with_bytes(events, Ack::none(), bytes))
                .await
                .is_err()
            {
                return;
            }
            self.stats.events.fetch_add(count, Ordering::Relaxed);
        }
    }

    /// One message's event. Err (a drop reason) only when the payload is too large
    /// once inflated.
    pub fn event(
        &self,
        payload: &[u8],
        from: IpAddr,
        now: Timestamp,
    ) -> Result<Event, &'static str> {
        let json = inflate(payload)?;
        let mut event = match serde_json::from_slice::<Value>(&json) {
            Ok(Value::Map(map)) => self.gelf_event(map, now),
            Ok(_) | Err(_) => {
                tracing::debug!(bytes = json.len(), "gelf payload is not a JSON object");
                let mut e = Event::with_message(crate::codecs::lossy(&json), now);
                e.add_tag(PARSE_FAILURE);
                e
            }
        };
        event.insert_field("source_host", Value::String(from.to_string()));
        Ok(event)
    }

    fn gelf_event(&self, mut map: Map, now: Timestamp) -> Event {
        let ts = match map.get("timestamp") {
            Some(Value::Int(i)) => Timestamp::from_unix(*i, 0),
            Some(Value::Float(f)) => seconds_to_timestamp(*f),
            _ => None,
        };
        if ts.is_some() {
            map.shift_remove("timestamp");
        }
        if self.remap {
            remap(&mut map);
        }
        let mut failed = false;
        if self.strip_leading_underscore {
            let keys: Vec<String> = map.keys().filter(|k| k.starts_with('_')).cloned().collect();
            for key in keys {
                let Some(value) = map.shift_remove(&key) else {
                    continue;
                };
                let name = key[1..].to_string();
                if name == "@timestamp" {
                    let parsed = match &value {
                        Value::Int(i) => Timestamp::from_unix(*i, 0),
                        Value::Float(f) => seconds_to_timestamp(*f),
                        Value::String(s) => {
                            s.trim().parse::<f64>().ok().and_then(seconds_to_timestamp)
                        }
                        _ => None,
                    };
                    match parsed {
                        Some(t) => {
                            map.insert(name, Value::Timestamp(t));
                        }
                        None => {
                            map.insert(key, value);
                            failed = true;
                        }
                    }
                } else {
                    map.insert(name, value);
                }
            }
        }
        let mut event = Event::from_map(map, now);
        if let Some(ts) = ts {
            event.set_timestamp(ts);
        }
        if failed {
            event.add_tag(MOVE_FIELD_FAILURE);
        }
        event
    }
}

/// `full_message` (or else `short_message`) becomes `message`, as the plugin's `remap`.
fn remap(map: &mut Map) {
    let non_empty = |v: Option<&Value>| match v {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => true,
    };
    if non_empty(map.get("full_message")) {
        if let Some(full) = map.shift_remove("full_message") {
            if map.get("short_message") == Some(&full) {
                map.shift_remove("short_message");
            }
            map.insert("message".into(), full);
        }
    } else if non_empty(map.get("short_message")) {
        if let Some(short) = map.shift_remove("short_message") {
            map.insert("message".into(), short);
        }
    }
}

fn seconds_to_timestamp(s: f64) -> Option<Timestamp> {
    if !s.is_finite() {
        return None;
    }
    let millis = (s * 1000.0).round();
    if millis.abs() > 1e17 {
        return None;
    }
    Timestamp::from_unix_millis(millis as i64)
}

/// The JSON of a payload: zlib (`0x78`) and gzip (`0x1f 0x8b`) inflated, bounded by
/// [`MAX_MESSAGE_BYTES`]; anything else as it is.
fn inflate(payload: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, &'static str> {
    let mut out = Vec::new();
    let read = match payload {
        [0x1f, 0x8b, ..] => flate2::read::GzDecoder::new(payload)
            .take(MAX_MESSAGE_BYTES as u64 + 1)
            .read_to_end(&mut out),
        [0x78, ..] => flate2::read::ZlibDecoder::new(payload)
            .take(MAX_MESSAGE_BYTES as u64 + 1)
            .read_to_end(&mut out),
        _ => return Ok(std::borrow::Cow::Borrowed(payload)),
    };
    match read {
        Ok(_) if out.len() > MAX_MESSAGE_BYTES => Err("message_too_large"),
        Ok(_) => Ok(std::borrow::Cow::Owned(out)),
        // Not compressed after all: kept, and tagged if it is not JSON either.
        Err(_) => Ok(std::borrow::Cow::Borrowed(payload)),
    }
}

/// Chunked messages being put back together, bounded by [`MAX_REASSEMBLY_BYTES`].
#[derive(Default)]
struct Reassembly {
    pending: HashMap<[u8; 8], Pending>,
    /// Message ids by arrival of their first chunk, for expiry.
    order: VecDeque<([u8; 8], Instant)>,
    bytes: usize,
}

struct Pending {
    parts: Vec<Option<Vec<u8>>>,
    received: usize,
    bytes: usize,
    started: Instant,
}

impl Reassembly {
    /// Takes one chunk (the whole datagram); the message when it is complete. Err: the
    /// drop reason (the message's chunks so far are dropped with it).
    fn add(
        &mut self,
        datagram: &[u8],
        now: Instant,
        stats: &GelfStats,
    ) -> Result<Option<Vec<u8>>, &'static str> {
        if datagram.len() < CHUNK_HEADER {
            return Err("chunk_invalid");
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&datagram[2..10]);
        let (seq, count) = (datagram[10] as usize, datagram[11] as usize);
        let body = &datagram[CHUNK_HEADER..];
        if count == 0 || count > MAX_CHUNKS as usize || seq >= count {
            self.remove(&id, stats);
            return Err("chunk_invalid");
        }
        if count == 1 {
            return Ok(Some(body.to_vec()));
        }
        // Bookkeeping is charged too, so that empty chunks cannot grow the buffer
        // without bound.
        let is_new = !self.pending.contains_key(&id);
        let charge = body.len() + CHUNK_OVERHEAD + if is_new { count * CHUNK_OVERHEAD } else { 0 };
        if self.bytes + charge > MAX_REASSEMBLY_BYTES {
            self.remove(&id, stats);
            stats.chunk_memory_limit.fetch_add(1, Ordering::Relaxed);
            return Err("chunk_memory_limit");
        }
        if is_new {
            // Ids of completed messages are pruned once they outnumber pending ones.
            if self.order.len() > 2 * self.pending.len() + 1024 {
                let pending = &self.pending;
                self.order
                    .retain(|(id, at)| pending.get(id).is_some_and(|p| p.started == *at));
            }
            self.order.push_back((id, now));
            self.pending.insert(
                id,
                Pending {
                    parts: vec![None; count],
                    received: 0,
                    bytes: count * CHUNK_OVERHEAD,
                    started: now,
                },
            );
            self.bytes += count * CHUNK_OVERHEAD;
        }
        let Some(entry) = self.pending.get_mut(&id) else {
            return Err("chunk_invalid");
        };
        if entry.parts.len() != count {
            self.remove(&id, stats);
            return Err("chunk_invalid");
        }
        if entry.parts[seq].is_none() {
            entry.parts[seq] = Some(body.to_vec());
            entry.received += 1;
            entry.bytes += body.len() + CHUNK_OVERHEAD;
            self.bytes += body.len() + CHUNK_OVERHEAD;
        }
        let complete = entry.received == entry.parts.len();
        let whole = if complete {
            self.pending.remove(&id).map(|p| {
                self.bytes -= p.bytes;
                p.parts.into_iter().flatten().flatten().collect()
            })
        } else {
            None
        };
        stats
            .reassembly_bytes
            .store(self.bytes as u64, Ordering::Relaxed);
        Ok(whole)
    }

    fn remove(&mut self, id: &[u8; 8], stats: &GelfStats) {
        if let Some(p) = self.pending.remove(id) {
            self.bytes -= p.bytes;
            stats
                .reassembly_bytes
                .store(self.bytes as u64, Ordering::Relaxed);
        }
    }

    /// Drops messages older than [`CHUNK_TIMEOUT`]; returns how many.
    fn expire(&mut self, now: Instant, stats: &GelfStats) -> u64 {
        let mut expired = 0;
        while let Some(&(id, at)) = self.order.front() {
            if now.duration_since(at) < CHUNK_TIMEOUT {
                break;
            }
            self.order.pop_front();
            // Only if it is still the same message (ids may be reused after completion).
            if self.pending.get(&id).is_some_and(|p| p.started == at) {
                self.remove(&id, stats);
                expired += 1;
            }
        }
        stats.chunk_timeouts.fetch_add(expired, Ordering::Relaxed);
        expired
    }
}
