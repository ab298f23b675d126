//! `http` input: events from HTTP requests (webhooks, applications, other pipelines).
//!
//! A request's body is decoded with the codec its `Content-Type` names in
//! `additional_codecs` (`application/json` → `json` by default; a JSON array gives one
//! event per element), else with `codec` (`plain`: the body is `message`). A
//! `Content-Encoding: gzip` or `deflate` body is inflated first.
//!
//! Back-pressure is HTTP's: a request is answered only once its events are safe (their
//! batch's ack fired Delivered), with `response_code` and `response_headers`; a batch
//! that could not be made safe is answered 503 so the client sends it again. At most
//! `max_pending_requests` requests are in flight; while the pipeline queue is full they
//! wait for it, and any request beyond them is answered 429 at once, which tells the
//! client to back off, as Logstash does. A body longer than `max_content_length` is
//! answered 413 without being read; what bodies hold is counted in the input memory
//! budget before it is read (when the client announces its length).
//!
//! With `user` and `password`, requests need that HTTP Basic authorization (401
//! otherwise). With `ssl_enabled`, connections are TLS (options as the `tcp` input).
//!
//! Field names follow `ecs_compatibility`: legacy puts the peer address in `host` and
//! the request headers (lower case, `-` as `_`, `http_` before all but
//! `content_type`/`content_length`, plus `request_method`, `request_path`, `request_uri`,
//! `http_version`) in `headers`; ECS (the default) puts them in `[host][ip]` and
//! `[@metadata][input][http][request][headers]`, and adds `[http][method]`,
//! `[http][version]`, `[url][path]`, `[url][domain]`, `[url][port]`,
//! `[user_agent][original]`, `[http][request][mime_type]`, `[http][request][body][bytes]`.

use super::budget::{Holding, MemoryBudget};
use super::tls::TlsServer;
use super::{Input, InputContext, InputError};
use crate::batch::{Ack, AckStatus, Batch};
use crate::codecs::Decoder;
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{Event, Timestamp, Value};
use crate::plugin::ecs::Ecs;
use crate::plugin::{Options, Secret};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

/// At most this many connections at once (the `tcp` input's default).
const MAX_CONNECTIONS: usize = super::tcp::DEFAULT_MAX_CONNECTIONS;

/// The default `max_content_length`: 100 MiB, as Logstash.
pub const DEFAULT_MAX_CONTENT_LENGTH: usize = 100 * 1024 * 1024;

/// The body of a 429 answer (Logstash's words).
const BUSY: &str = "Server busy, please retry request later";

pub struct HttpInput {
    host: String,
    port: u16,
    decoder: Codec,
    additional_codecs: Vec<(String, Codec)>,
    /// The whole `Authorization` header expected, when `user` and `password` are set.
    authorization: Option<Secret>,
    tls: Option<TlsServer>,
    response_code: StatusCode,
    response_headers: Vec<(HeaderName, HeaderValue)>,
    max_pending_requests: usize,
    max_content_length: usize,
    ecs: bool,
    remote_host_target_field: FieldRef,
    request_headers_target_field: FieldRef,
    budget: Arc<MemoryBudget>,
    stats: Arc<HttpStats>,
}

/// A decoder and whether it splits the body into lines first.
#[derive(Debug, Clone)]
struct Codec {
    decoder: Decoder,
    lines: bool,
}

impl Codec {
    fn named(name: &str) -> Option<Codec> {
        let decoder = match name {
            "plain" | "line" => Decoder::Line,
            "json" | "json_lines" => Decoder::Json,
            _ => return None,
        };
        Some(Codec {
            decoder,
            lines: name == "line" || name == "json_lines",
        })
    }

    fn decode(&self, body: &[u8], now: Timestamp, out: &mut Vec<Event>) {
        if self.lines {
            let body = body.strip_suffix(b"\n").unwrap_or(body);
            for line in body.split(|b| *b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                self.decoder.decode(line, now, out);
            }
        } else {
            self.decoder.decode(body, now, out);
        }
    }
}

/// Counters of one http input.
#[derive(Debug, Default)]
pub struct HttpStats {
    pub requests: AtomicU64,
    /// Answered with `response_code`: their events are safe.
    pub accepted: AtomicU64,
    /// Answered 429: `max_pending_requests` were in flight.
    pub rejected_busy: AtomicU64,
    /// Answered 413: body over `max_content_length`.
    pub rejected_too_large: AtomicU64,
    /// Answered 401.
    pub unauthorized: AtomicU64,
    /// Answered 503: the events were not made safe (shutdown, failed delivery).
    pub not_delivered: AtomicU64,
    pub events: AtomicU64,
    /// The port bound (useful with `port => 0`).
    pub bound_port: AtomicU64,
}

impl HttpInput {
    pub fn build(opts: &mut Options) -> Result<HttpInput, Error> {
        let host = opts.string_or("host", "0.0.0.0")?;
        let pos = opts.value_pos("port");
        let port = opts.int_or("port", 8080)?;
        let port = u16::try_from(port)
            .map_err(|_| opts.option_error("port", &pos, format!("{port} is not a TCP port")))?;
        // Accepted for compatibility: requests run on the async runtime, not threads.
        let _ = opts.int("threads")?;
        let codec_spec = opts.codec()?;
        let default_name = codec_spec
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or_else(|| "plain".into());
        let decoder = Decoder::build(codec_spec, "plain")?;
        let decoder = Codec {
            decoder,
            lines: default_name == "line" || default_name == "json_lines",
        };
        let pos = opts.value_pos("additional_codecs");
        let additional_codecs = match opts.string_map("additional_codecs")? {
            None => vec![(
                "application/json".to_string(),
                Codec::named("json").ok_or_else(|| opts.error("built-in json codec"))?,
            )],
            Some(map) => {
                let mut out = Vec::new();
                for (mime, name) in map {
                    let codec = Codec::named(&name).ok_or_else(|| {
                        opts.option_error(
                            "additional_codecs",
                            &pos,
                            format!(
                                "unknown codec `{name}` (known: plain, line, json, json_lines)"
                            ),
                        )
                    })?;
                    out.push((mime.to_ascii_lowercase(), codec));
                }
                out
            }
        };
        let user = opts.string("user")?;
        let pass_pos = opts.value_pos("password");
        let password = opts.secret("password")?;
        let authorization = match (user, password) {
            (None, None) => None,
            (Some(u), Some(p)) => {
                use base64::Engine as _;
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{}", p.expose()));
                Some(Secret::new(format!("Basic {token}")))
            }
            _ => {
                return Err(opts.option_error(
                    "password",
                    &pass_pos,
                    "`user` and `password` go together",
                ))
            }
        };
        let tls = TlsServer::from_options(opts)?;
        let pos = opts.value_pos("response_code");
        let code = opts.int_or("response_code", 200)?;
        let response_code = match code {
            200 | 201 | 202 | 204 => StatusCode::from_u16(code as u16)
                .map_err(|e| opts.option_error("response_code", &pos, e))?,
            other => {
                return Err(opts.option_error(
                    "response_code",
                    &pos,
                    format!("{other} is not one of 200, 201, 202, 204"),
                ))
            }
        };
        let pos = opts.value_pos("response_headers");
        let headers = opts
            .string_map("response_headers")?
            .unwrap_or_else(|| vec![("Content-Type".into(), "text/plain".into())]);
        let mut response_headers = Vec::new();
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| opts.option_error("response_headers", &pos, format!("`{k}`: {e}")))?;
            let value = HeaderValue::from_str(&v)
                .map_err(|e| opts.option_error("response_headers", &pos, format!("`{k}`: {e}")))?;
            response_headers.push((name, value));
        }
        let pos = opts.value_pos("max_pending_requests");
        let max_pending_requests = opts.usize_or("max_pending_requests", 200)?;
        if max_pending_requests == 0 {
            return Err(opts.option_error("max_pending_requests", &pos, "must be at least 1"));
        }
        let pos = opts.value_pos("max_content_length");
        let max_content_length = opts.usize_or("max_content_length", DEFAULT_MAX_CONTENT_LENGTH)?;
        if max_content_length == 0 {
            return Err(opts.option_error("max_content_length", &pos, "must be at least 1"));
        }
        let ecs = Ecs::from_options(opts)?.enabled();
        let field = |opts: &mut Options, name: &str, legacy: &str, v1: &str| {
            opts.field_ref(name).and_then(|r| match r {
                Some(r) => Ok(r),
                None => FieldRef::parse(if ecs { v1 } else { legacy })
                    .map_err(|e| Error::Empty(format!("built-in field: {e}"))),
            })
        };
        let remote_host_target_field =
            field(opts, "remote_host_target_field", "host", "[host][ip]")?;
        let request_headers_target_field = field(
            opts,
            "request_headers_target_field",
            "headers",
            "[@metadata][input][http][request][headers]",
        )?;
        Ok(HttpInput {
            host,
            port,
            decoder,
            additional_codecs,
            authorization,
            tls,
            response_code,
            response_headers,
            max_pending_requests,
            max_content_length,
            ecs,
            remote_host_target_field,
            request_headers_target_field,
            budget: MemoryBudget::shared(opts.context()),
            stats: Arc::default(),
        })
    }

    /// This input's counters (shared with its running server).
    pub fn stats(&self) -> Arc<HttpStats> {
        self.stats.clone()
    }
}

#[async_trait::async_trait]
impl Input for HttpInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        // Bound here (not in the shared accept loop) to learn the port of `port => 0`.
        let addr = format!("{}:{}", self.host, self.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|source| InputError::Io {
                context: format!("http input cannot listen on {addr}"),
                source,
            })?;
        if let Ok(local) = listener.local_addr() {
            self.stats
                .bound_port
                .store(u64::from(local.port()), Ordering::Relaxed);
        }
        tracing::info!(input = ctx.id(), address = %addr, tls = self.tls.is_some(), "input listening");
        let this = Arc::new(*self);
        let pending = Arc::new(Semaphore::new(this.max_pending_requests));
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let (stream, peer) = tokio::select! {
                _ = ctx.shutdown().cancelled() => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(input = ctx.id(), error = %e, "http accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tracing::warn!(input = ctx.id(), peer = %peer, max_connections = MAX_CONNECTIONS, "http connection refused: too many connections");
                continue;
            };
            let (this, ctx, pending) = (this.clone(), ctx.clone(), pending.clone());
            connections.spawn(async move {
                match &this.tls {
                    None => this.clone().serve(stream, peer, ctx, pending).await,
                    Some(tls) => match tls.accept(stream).await {
                        Ok(stream) => this.clone().serve(stream, peer, ctx, pending).await,
                        Err(e) => tracing::warn!(input = ctx.id(), peer = %peer, error = %e, "tls handshake failed"),
                    },
                }
                drop(permit);
            });
        }
        // Requests in flight are answered (their batches are acked), then connections close.
        while connections.join_next().await.is_some() {}
        Ok(())
    }
}

type Body = Full<Bytes>;

fn answer(code: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = code;
    r
}

impl HttpInput {
    async fn serve<S>(
        self: Arc<Self>,
        stream: S,
        peer: SocketAddr,
        ctx: InputContext,
        pending: Arc<Semaphore>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service = {
            let ctx = ctx.clone();
            hyper::service::service_fn(move |req: Request<Incoming>| {
                let (this, ctx, pending) = (self.clone(), ctx.clone(), pending.clone());
                async move {
                    Ok::<_, std::convert::Infallible>(this.handle(req, peer, &ctx, &pending).await)
                }
            })
        };
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        tokio::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            _ = ctx.shutdown().cancelled() => {
                // Finish the request in flight, then close.
                conn.as_mut().graceful_shutdown();
                conn.as_mut().await
            }
        };
        if let Err(e) = result {
            tracing::debug!(input = ctx.id(), peer = %peer, error = %e, "http connection ended");
        }
    }

    async fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        ctx: &InputContext,
        pending: &Semaphore,
    ) -> Response<Body> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(expected) = &self.authorization {
            let given = req
                .headers()
                .get(hyper::header::AUTHORIZATION)
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            if !constant_time_eq(given, expected.expose().as_bytes()) {
                self.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
                let mut r = answer(StatusCode::UNAUTHORIZED, "Unauthorized");
                r.headers_mut().insert(
                    hyper::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"Logstash HTTP Input\""),
                );
                return r;
            }
        }
        let Ok(_slot) = pending.try_acquire() else {
            self.stats.rejected_busy.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(input = ctx.id(), peer = %peer, max_pending_requests = self.max_pending_requests, "http request refused: too many pending");
            return answer(StatusCode::TOO_MANY_REQUESTS, BUSY);
        };
        let announced = req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > self.max_content_length as u64) {
            return self.too_large(ctx, peer);
        }
        let mut memory = Holding::new(self.budget.clone());
        if let Some(n) = announced {
            if memory.grow(n as usize).await.is_err() {
                return self.cut_for_memory(ctx, peer);
            }
        }
        let (parts, body) = req.into_parts();
        let collected = tokio::select! {
            c = Limited::new(body, self.max_content_length).collect() => c,
            () = memory.cut_requested() => return self.cut_for_memory(ctx, peer),
        };
        let body = match collected {
            Ok(b) => b.to_bytes(),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return self.too_large(ctx, peer)
            }
            Err(e) => {
                tracing::debug!(input = ctx.id(), peer = %peer, error = %e, "http request body not read");
                return answer(StatusCode::BAD_REQUEST, "bad request body");
            }
        };
        memory.set_unchecked(memory.held().max(body.len()));
        let encoding = parts
            .headers
            .get(hyper::header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase());
        let body = match encoding.as_deref() {
            None | Some("") | Some("identity") => body,
            Some(kind @ ("gzip" | "deflate")) => match self.inflate(kind, &body) {
                Ok(Some(b)) => {
                    memory.set_unchecked(memory.held() + b.len());
                    b
                }
                Ok(None) => return self.too_large(ctx, peer),
                Err(e) => {
                    tracing::debug!(input = ctx.id(), peer = %peer, error = %e, "http request body not inflated");
                    return answer(StatusCode::BAD_REQUEST, "body cannot be decompressed");
                }
            },
            Some(_) => {
                return answer(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported content encoding",
                )
            }
        };
        let events = self.events(&parts, &body, peer);
        let count = events.len() as u64;
        if count == 0 {
            return self.ok();
        }
        let (ack, delivered) = Ack::channel();
        if memory
            .waiting_for_pipeline(ctx.push(Batch::with_bytes(events, ack, body.len())))
            .await
            .is_err()
        {
            self.stats.not_delivered.fetch_add(1, Ordering::Relaxed);
            return answer(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
        }
        drop(memory);
        match delivered.wait().await {
            AckStatus::Delivered => {
                self.stats.events.fetch_add(count, Ordering::Relaxed);
                self.ok()
            }
            AckStatus::Failed => {
                self.stats.not_delivered.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(input = ctx.id(), peer = %peer, events = count, "http request answered 503: its events were not delivered");
                answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "events not delivered, retry",
                )
            }
        }
    }

    fn ok(&self) -> Response<Body> {
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        let body = if self.response_code == StatusCode::NO_CONTENT {
            Bytes::new()
        } else {
            Bytes::from_static(b"ok")
        };
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = self.response_code;
        for (k, v) in &self.response_headers {
            r.headers_mut().insert(k.clone(), v.clone());
        }
        r
    }

    /// A request whose body waited for input memory while the budget was stuck, and
    /// was chosen to give it back (see `inputs::budget`): 429, as when busy; the
    /// client retries.
    fn cut_for_memory(&self, ctx: &InputContext, peer: SocketAddr) -> Response<Body> {
        self.stats.rejected_busy.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(input = ctx.id(), peer = %peer, "http request refused with 429 to give back input memory: the budget was spent on bodies and lines no peer finished");
        answer(StatusCode::TOO_MANY_REQUESTS, BUSY)
    }

    fn too_large(&self, ctx: &InputContext, peer: SocketAddr) -> Response<Body> {
        self.stats
            .rejected_too_large
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(input = ctx.id(), peer = %peer, max_content_length = self.max_content_length, "http request refused: body over max_content_length");
        answer(StatusCode::PAYLOAD_TOO_LARGE, "payload too large")
    }

    /// Inflates a body; `None` when it grows past `max_content_length`.
    fn inflate(&self, kind: &str, body: &[u8]) -> std::io::Result<Option<Bytes>> {
        let limit = self.max_content_length as u64 + 1;
        let mut out = Vec::new();
        if kind == "gzip" {
            flate2::read::MultiGzDecoder::new(body)
                .take(limit)
                .read_to_end(&mut out)?;
        } else {
            // `deflate` is zlib-wrapped by the HTTP spec; some clients send it raw.
            let zlib = flate2::read::ZlibDecoder::new(body)
                .take(limit)
                .read_to_end(&mut out);
            if zlib.is_err() {
                out.clear();
                flate2::read::DeflateDecoder::new(body)
                    .take(limit)
                    .read_to_end(&mut out)?;
            }
        }
        if out.len() as u64 >= limit {
            return Ok(None);
        }
        Ok(Some(Bytes::from(out)))
    }

    fn events(
        &self,
        parts: &hyper::http::request::Parts,
        body: &[u8],
        peer: SocketAddr,
    ) -> Vec<Event> {
        let mime = parts
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        let codec = mime
            .as_deref()
            .and_then(|m| self.additional_codecs.iter().find(|(k, _)| k == m))
            .map(|(_, c)| c)
            .unwrap_or(&self.decoder);
        let mut events = Vec::new();
        codec.decode(body, Timestamp::now(), &mut events);

        let mut headers = crate::event::new_map();
        for (name, value) in &parts.headers {
            let key = name.as_str().replace('-', "_");
            let key = if key == "content_type" || key == "content_length" {
                key
            } else {
                format!("http_{key}")
            };
            headers.insert(
                key,
                Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            );
        }
        let version = match parts.version {
            hyper::Version::HTTP_10 => "HTTP/1.0",
            hyper::Version::HTTP_2 => "HTTP/2.0",
            _ => "HTTP/1.1",
        };
        headers.insert(
            "request_method".into(),
            Value::String(parts.method.to_string()),
        );
        headers.insert(
            "request_path".into(),
            Value::String(parts.uri.path().to_string()),
        );
        headers.insert(
            "request_uri".into(),
            Value::String(
                parts
                    .uri
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
            ),
        );
        headers.insert("http_version".into(), Value::String(version.into()));
        let ip = Value::String(peer.ip().to_string());
        let host_header = parts
            .headers
            .get(hyper::header::HOST)
            .and_then(|v| v.to_str().ok());
        for e in &mut events {
            e.insert(&self.remote_host_target_field, ip.clone());
            e.insert(
                &self.request_headers_target_field,
                Value::Map(headers.clone()),
            );
            if self.ecs {
                self.ecs_fields(e, parts, version, host_header, mime.as_deref(), body.len());
            }
        }
        events
    }

    fn ecs_fields(
        &self,
        e: &mut Event,
        parts: &hyper::http::request::Parts,
        version: &str,
        host_header: Option<&str>,
        mime: Option<&str>,
        body_bytes: usize,
    ) {
        let mut set = |name: &str, v: Value| {
            if let Ok(r) = FieldRef::parse(name) {
                if e.get(&r).is_none() {
                    e.insert(&r, v);
                }
            }
        };
        set("[http][method]", Value::String(parts.method.to_string()));
        set(
            "[http][version]",
            Value::String(version.trim_start_matches("HTTP/").to_string()),
        );
        set("[url][path]", Value::String(parts.uri.path().to_string()));
        if let Some(host) = host_header {
            let (domain, port) = match host.rsplit_once(':') {
                Some((d, p)) if !d.ends_with(']') || host.starts_with('[') => {
                    match p.parse::<i64>() {
                        Ok(p) => (d, Some(p)),
                        Err(_) => (host, None),
                    }
                }
                _ => (host, None),
            };
            set("[url][domain]", Value::String(domain.to_string()));
            if let Some(p) = port {
                set("[url][port]", Value::Int(p));
            }
        }
        if let Some(ua) = parts
            .headers
            .get(hyper::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            set("[user_agent][original]", Value::String(ua.to_string()));
        }
        if let Some(m) = mime {
            set("[http][request][mime_type]", Value::String(m.to_string()));
        }
        set(
            "[http][request][body][bytes]",
            Value::Int(body_bytes as i64),
        );
    }
}

/// Compares without an early exit, so the time taken tells nothing about the password.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
