//! `syslog` input: RFC 3164 (and RFC 5424) messages over TCP and UDP on the same port.
//!
//! Like Logstash's, it is a relay parser built from grok and date parsing: grok on
//! `syslog_field` (`grok_pattern`, by default `<%{POSINT:priority}>%{SYSLOGLINE}`, which
//! overwrites `message` with the text after the header) and a date filter on the parsed
//! `timestamp` (`MMM dd HH:mm:ss`, `MMM  d HH:mm:ss`, `MMM d HH:mm:ss`, `ISO8601`, with
//! `timezone` and `locale`). A line grok cannot parse keeps its text, is tagged
//! `_grokparsefailure_sysloginput` and gets priority 13 (user-level notice), as RFC 3164
//! says of unknown messages. The priority is split into facility and severity the way
//! the `syslog_pri` filter does, with this input's labels (Logstash's own lists).
//!
//! Logstash's default pattern only knows RFC 3164 headers (with an RFC 3164 or ISO 8601
//! timestamp). When `grok_pattern` is not set, Sluice also tries an RFC 5424 header after
//! it, writing the fields Logstash's `SYSLOG5424LINE` pattern names, so that both kinds
//! of senders can share one port.
//!
//! Field names follow `ecs_compatibility`: with `disabled`, `priority`, `severity`,
//! `facility`, `facility_label`, `severity_label`, `host`, `logsource`, `program`, `pid`;
//! with `v1`/`v8` (the default), `[log][syslog][priority]`, `[log][syslog][severity][code]`,
//! `[log][syslog][facility][code]`, their `[name]`s, `[host][ip]`, `[host][hostname]`,
//! `[process][name]`, `[process][pid]`, and the raw line in `[event][original]`.
//!
//! TCP is framed by newlines, each line at most [`MAX_LINE_BYTES`] (the rest is skipped,
//! the event tagged `_linetoolong`); a UDP datagram is one message. TCP peers are bounded
//! by the input memory budget as in the `tcp` input. UDP is read as fast as the pipeline
//! queue takes it; what the kernel drops meanwhile is counted by the kernel
//! (`netstat -su`), as with Logstash.

use super::budget::{wait_watching_peer, Cut, Holding, MemoryBudget, ReadBuffer, Watched};
use super::{Input, InputContext, InputError};
use crate::batch::{Ack, Batch};
use crate::codecs::line::{LineFramer, LINE_TOO_LONG};
use crate::codecs::Decoder;
use crate::config::Error;
use crate::event::date_parse::{DateParseError, DateParser, DATE_PARSE_FAILURE};
use crate::event::field_ref::FieldRef;
use crate::event::ruby_number::ruby_to_i;
use crate::event::{Event, Timestamp, Value};
use crate::grok::{Grok, GrokConfig, GrokError};
use crate::plugin::ecs::Ecs;
use crate::plugin::Options;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::codec::Decoder as _;

/// The tag of a line the grok pattern did not match.
pub const GROK_FAILURE: &str = "_grokparsefailure_sysloginput";

/// The longest TCP line kept whole; syslog lines are far shorter (RFC 5424 asks
/// receivers to take 2048 bytes, most take 8192 or 64 KiB).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// The largest UDP payload (65535 minus the IP and UDP headers).
const MAX_DATAGRAM: usize = 65507;

/// At most this many TCP connections at once (the `tcp` input's default).
const MAX_CONNECTIONS: usize = super::tcp::DEFAULT_MAX_CONNECTIONS;

/// What a decoded event is counted as beyond its line (its fields).
const EVENT_OVERHEAD_BYTES: usize = 512;

const FACILITY_LABELS: [&str; 24] = [
    "kernel",
    "user-level",
    "mail",
    "system",
    "security/authorization",
    "syslogd",
    "line printer",
    "network news",
    "UUCP",
    "clock",
    "security/authorization",
    "FTP",
    "NTP",
    "log audit",
    "log alert",
    "clock",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

const SEVERITY_LABELS: [&str; 8] = [
    "Emergency",
    "Alert",
    "Critical",
    "Error",
    "Warning",
    "Notice",
    "Informational",
    "Debug",
];

/// Logstash's ECS (`ecs-v1`) forms of the syslog patterns; Sluice's bundled library is
/// the legacy set, so the ECS forms are defined here for this input's own grok.
const ECS_PATTERNS: &[(&str, &str)] = &[
    (
        "SYSLOGPROG",
        r"%{PROG:[process][name]}(?:\[%{POSINT:[process][pid]:int}\])?",
    ),
    (
        "SYSLOGFACILITY",
        r"<%{NONNEGINT:[log][syslog][facility][code]:int}.%{NONNEGINT:[log][syslog][priority]:int}>",
    ),
    (
        "SYSLOGBASE2",
        r"(?:%{SYSLOGTIMESTAMP:timestamp}|%{TIMESTAMP_ISO8601:timestamp})(?: %{SYSLOGFACILITY})?(?: %{SYSLOGHOST:[host][hostname]})?(?: %{SYSLOGPROG}:)?",
    ),
    ("SYSLOGLINE", r"%{SYSLOGBASE2} %{GREEDYDATA:message}"),
];

/// The RFC 5424 header tried after the default pattern, with the fields of Logstash's
/// `SYSLOG5424BASE` (legacy names) and the timestamp where the date filter reads it.
const RFC5424_LEGACY: &str = r"<%{POSINT:priority}>%{NONNEGINT:syslog5424_ver} +(?:%{TIMESTAMP_ISO8601:timestamp}|-) +(?:%{IPORHOST:logsource}|-) +(?:-|%{SYSLOG5424PRINTASCII:program}) +(?:-|%{SYSLOG5424PRINTASCII:pid}) +(?:-|%{SYSLOG5424PRINTASCII:syslog5424_msgid}) +(?:%{SYSLOG5424SD:syslog5424_sd}|-|)(?: +%{GREEDYDATA:message}|$)";
/// The same with the ECS names of Logstash's `ecs-v1` `SYSLOG5424BASE`.
const RFC5424_ECS: &str = r"<%{POSINT:[log][syslog][priority]:int}>%{NONNEGINT:[system][syslog][version]} +(?:-|%{TIMESTAMP_ISO8601:timestamp}) +(?:-|%{IPORHOST:[host][hostname]}) +(?:-|%{SYSLOG5424PRINTASCII:[process][name]}) +(?:-|%{POSINT:[process][pid]:int}) +(?:-|%{SYSLOG5424PRINTASCII:[event][code]}) +(?:-|%{SYSLOG5424SD:[system][syslog][structured_data]})?(?: +%{GREEDYDATA:message}|$)";

/// Counters of one syslog input.
#[derive(Debug, Default)]
pub struct SyslogStats {
    /// Lines (TCP) and datagrams (UDP) received.
    pub messages_received: AtomicU64,
    /// Messages grok could not parse (tagged `_grokparsefailure_sysloginput`).
    pub unknown_messages: AtomicU64,
    pub connections: AtomicU64,
    /// TCP connections refused because too many were open.
    pub connections_rejected: AtomicU64,
    /// TCP lines cut at [`MAX_LINE_BYTES`].
    pub lines_truncated: AtomicU64,
    /// TCP lines cut short to give back input memory (see `inputs::budget`).
    pub lines_cut_for_memory: AtomicU64,
    /// The UDP port bound (useful with `port => 0`); TCP listens on the same number.
    pub bound_port: AtomicU64,
}

/// The parsing half of the input: turns one received event into a syslog event.
pub struct SyslogRelay {
    grok: Grok,
    date: DateParser,
    ecs: bool,
    syslog_field: FieldRef,
    use_labels: bool,
    facility_labels: Vec<String>,
    severity_labels: Vec<String>,
    priority_key: FieldRef,
    facility_key: FieldRef,
    severity_key: FieldRef,
    facility_label_key: FieldRef,
    severity_label_key: FieldRef,
    host_key: FieldRef,
    timestamp: FieldRef,
    timestamp8601: FieldRef,
    event_original: FieldRef,
}

fn field(name: &str) -> Result<FieldRef, Error> {
    FieldRef::parse(name).map_err(|e| Error::Empty(format!("built-in field `{name}`: {e}")))
}

impl SyslogRelay {
    pub fn build(opts: &mut Options) -> Result<SyslogRelay, Error> {
        let ecs = Ecs::from_options(opts)?.enabled();
        let pick = |legacy: &str, v1: &str| field(if ecs { v1 } else { legacy });
        let priority_key = pick("priority", "[log][syslog][priority]")?;
        let syslog_field_name = opts.string_or("syslog_field", "message")?;
        let syslog_field_pos = opts.value_pos("syslog_field");
        let syslog_field = FieldRef::parse(&syslog_field_name)
            .map_err(|e| opts.option_error("syslog_field", &syslog_field_pos, e))?;
        let pattern_pos = opts.value_pos("grok_pattern");
        let custom = opts.string("grok_pattern")?;
        let mut patterns = Vec::new();
        match &custom {
            Some(p) => patterns.push(p.clone()),
            None if ecs => {
                patterns.push("<%{POSINT:[log][syslog][priority]:int}>%{SYSLOGLINE}".into());
                patterns.push(RFC5424_ECS.into());
            }
            None => {
                patterns.push("<%{POSINT:priority}>%{SYSLOGLINE}".into());
                patterns.push(RFC5424_LEGACY.into());
            }
        }
        let mut config = GrokConfig::new(vec![(syslog_field_name.clone(), patterns)]);
        config.settings.overwrite = vec![syslog_field_name];
        config.tag_on_failure = vec![GROK_FAILURE.to_string()];
        if ecs {
            for (name, def) in ECS_PATTERNS {
                config.library.insert(name.to_string(), def.to_string());
            }
        }
        let grok = Grok::new(config).map_err(|e| match e {
            GrokError::Source { .. } => opts.option_error("syslog_field", &syslog_field_pos, e),
            GrokError::Pattern { .. } => opts.option_error("grok_pattern", &pattern_pos, e),
        })?;

        let tz_pos = opts.value_pos("timezone");
        let timezone = opts.string("timezone")?;
        let locale_pos = opts.value_pos("locale");
        let locale = opts.string("locale")?;
        let formats = [
            "MMM dd HH:mm:ss",
            "MMM  d HH:mm:ss",
            "MMM d HH:mm:ss",
            "ISO8601",
        ]
        .map(String::from);
        let date = DateParser::new(&formats, timezone.as_deref(), locale.as_deref()).map_err(
            |e| match e {
                DateParseError::Locale(_) => opts.option_error("locale", &locale_pos, e),
                _ => opts.option_error("timezone", &tz_pos, e),
            },
        )?;

        let labels = |opts: &mut Options, name: &str, default: &[&str]| {
            opts.string_list(name)
                .map(|l| l.unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect()))
        };
        Ok(SyslogRelay {
            grok,
            date,
            ecs,
            syslog_field,
            use_labels: opts.bool_or("use_labels", true)?,
            facility_labels: labels(opts, "facility_labels", &FACILITY_LABELS)?,
            severity_labels: labels(opts, "severity_labels", &SEVERITY_LABELS)?,
            priority_key,
            facility_key: pick("facility", "[log][syslog][facility][code]")?,
            severity_key: pick("severity", "[log][syslog][severity][code]")?,
            facility_label_key: pick("facility_label", "[log][syslog][facility][name]")?,
            severity_label_key: pick("severity_label", "[log][syslog][severity][name]")?,
            host_key: pick("host", "[host][ip]")?,
            timestamp: field("timestamp")?,
            timestamp8601: field("timestamp8601")?,
            event_original: field("[event][original]")?,
        })
    }

    /// Parses one event received from `ip`. True when grok parsed it.
    pub fn relay(&self, event: &mut Event, ip: &str) -> bool {
        event.insert(&self.host_key, Value::String(ip.to_string()));
        if self.ecs {
            if let Some(original) = event.get(&self.syslog_field).cloned() {
                event.insert(&self.event_original, original);
            }
        }
        let parsed = self.grok.apply(event);
        if parsed {
            let priority = match event.get(&self.priority_key) {
                Some(Value::Int(i)) => *i,
                Some(v) => ruby_to_i(&v.to_display_string()),
                None => 0,
            };
            self.set_priority(event, priority);
            if !self.ecs {
                if let Some(ts) = event.get(&self.timestamp8601).cloned() {
                    event.insert(&self.timestamp, ts);
                }
            }
            self.parse_date(event);
            if self.ecs {
                event.remove(&self.timestamp);
            }
        } else {
            tracing::debug!(message = ?event.get_str("message"), "un-matched syslog message");
            self.set_priority(event, 13);
        }
        if self.use_labels {
            self.set_labels(event);
        }
        parsed
    }

    /// `timestamp` into `@timestamp`, as the date filter inside Logstash's input does:
    /// tagged `_dateparsefailure` when no format reads it.
    fn parse_date(&self, event: &mut Event) {
        let Some(text) = event.get(&self.timestamp).map(Value::to_display_string) else {
            return;
        };
        match self.date.parse(&text, event, chrono::Utc::now()) {
            Some(ts) => event.set_timestamp(ts),
            None => {
                tracing::debug!(value = %text, "syslog timestamp could not be parsed");
                event.add_tag(DATE_PARSE_FAILURE);
            }
        }
    }

    fn set_priority(&self, event: &mut Event, priority: i64) {
        event.insert(&self.priority_key, Value::Int(priority));
        event.insert(&self.severity_key, Value::Int(priority & 7));
        event.insert(&self.facility_key, Value::Int(priority >> 3));
    }

    fn set_labels(&self, event: &mut Event) {
        let label = |key: &FieldRef, labels: &[String], event: &Event| match event.get(key) {
            Some(Value::Int(i)) => usize::try_from(*i)
                .ok()
                .and_then(|i| labels.get(i))
                .cloned(),
            _ => None,
        };
        if let Some(l) = label(&self.facility_key, &self.facility_labels, event) {
            event.insert(&self.facility_label_key, Value::String(l));
        }
        if let Some(l) = label(&self.severity_key, &self.severity_labels, event) {
            event.insert(&self.severity_label_key, Value::String(l));
        }
    }
}

pub struct SyslogInput {
    host: String,
    port: u16,
    proxy_protocol: bool,
    decoder: Decoder,
    relay: SyslogRelay,
    batch_size: usize,
    budget: Arc<MemoryBudget>,
    stats: Arc<SyslogStats>,
}

impl SyslogInput {
    pub fn build(opts: &mut Options) -> Result<SyslogInput, Error> {
        let host = opts.string_or("host", "0.0.0.0")?;
        let pos = opts.value_pos("port");
        let port = opts.int_or("port", 514)?;
        let port = u16::try_from(port)
            .map_err(|_| opts.option_error("port", &pos, format!("{port} is not a port")))?;
        let proxy_protocol = opts.bool_or("proxy_protocol", false)?;
        let decoder = Decoder::build(opts.codec()?, "plain")?;
        let relay = SyslogRelay::build(opts)?;
        Ok(SyslogInput {
            host,
            port,
            proxy_protocol,
            decoder,
            relay,
            batch_size: opts.context().batch_size.max(1),
            budget: MemoryBudget::shared(opts.context()),
            stats: Arc::default(),
        })
    }

    /// This input's counters (shared with its running listeners).
    pub fn stats(&self) -> Arc<SyslogStats> {
        self.stats.clone()
    }

    /// Decodes one message and relays each event it makes into `out`.
    fn add(&self, bytes: &[u8], ip: &str, out: &mut Vec<Event>) {
        self.stats.messages_received.fetch_add(1, Ordering::Relaxed);
        let before = out.len();
        self.decoder.decode(bytes, Timestamp::now(), out);
        for e in &mut out[before..] {
            if !self.relay.relay(e, ip) {
                self.stats.unknown_messages.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[async_trait::async_trait]
impl Input for SyslogInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        let ip: IpAddr = self.host.parse().map_err(|_| {
            InputError::Other(format!(
                "syslog input: host `{}` is not an IP address",
                self.host
            ))
        })?;
        let (tcp_listener, udp) = self.bind_pair(ip).await?;
        let port = udp.local_addr().map(|a| a.port()).unwrap_or(self.port);
        self.stats
            .bound_port
            .store(u64::from(port), Ordering::Relaxed);
        let this = Arc::new(*self);
        let udp_task = {
            let (this, ctx) = (this.clone(), ctx.clone());
            tokio::spawn(async move { this.serve_udp(udp, ctx).await })
        };
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let tcp = super::listener::serve_listener("syslog", tcp_listener, false, &ctx, |stream, peer| {
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                this.stats.connections_rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(input = ctx.id(), peer = %peer, max_connections = MAX_CONNECTIONS, "syslog connection refused: too many connections");
                return None;
            };
            this.stats.connections.fetch_add(1, Ordering::Relaxed);
            let (this, ctx) = (this.clone(), ctx.clone());
            Some(async move {
                this.serve_tcp(stream, peer, ctx).await;
                drop(permit);
            })
        })
        .await;
        if tcp.is_err() {
            // The UDP half cannot run alone: Logstash would keep retrying; a config
            // error (port taken) is better reported at once.
            ctx.shutdown().cancel();
        }
        let _ = udp_task.await;
        tcp
    }
}

impl SyslogInput {
    /// Binds the TCP and the UDP socket on one port. With `port => 0` the kernel picks a
    /// free TCP port, which may already be taken for UDP (or the other way round, by
    /// another process's outgoing traffic): then both are bound again on a new port, a
    /// few times, rather than failing on a race the user did not cause.
    async fn bind_pair(&self, ip: IpAddr) -> Result<(TcpListener, UdpSocket), InputError> {
        const ATTEMPTS_ON_PORT_ZERO: usize = 16;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tcp_addr = SocketAddr::new(ip, self.port).to_string();
            let tcp = super::listener::bind("syslog", &tcp_addr).await?;
            let port = tcp.local_addr().map(|a| a.port()).unwrap_or(self.port);
            match UdpSocket::bind(SocketAddr::new(ip, port)).await {
                Ok(udp) => return Ok((tcp, udp)),
                Err(e)
                    if self.port == 0
                        && e.kind() == std::io::ErrorKind::AddrInUse
                        && attempt < ATTEMPTS_ON_PORT_ZERO =>
                {
                    tracing::debug!(port, "syslog udp port taken, binding both again");
                }
                Err(source) => {
                    return Err(InputError::Io {
                        context: format!("syslog input cannot listen on udp {}:{port}", self.host),
                        source,
                    })
                }
            }
        }
    }

    async fn serve_udp(&self, socket: UdpSocket, ctx: InputContext) {
        tracing::info!(input = ctx.id(), address = ?socket.local_addr().ok(), "syslog udp listening");
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let received = tokio::select! {
                _ = ctx.shutdown().cancelled() => return,
                r = socket.recv_from(&mut buf) => r,
            };
            let mut events = Vec::new();
            let mut bytes = 0;
            let mut next = Some(received);
            // What already waits goes in the same batch, up to a batch.
            while let Some(r) = next.take() {
                match r {
                    Ok((n, from)) => {
                        bytes += n;
                        // Senders end datagrams with a newline; Logstash's grok (whose
                        // `.` stops at a newline) leaves it out of `message`, and so
                        // does this.
                        let payload = buf[..n].strip_suffix(b"\n").unwrap_or(&buf[..n]);
                        let payload = payload.strip_suffix(b"\r").unwrap_or(payload);
                        self.add(payload, &from.ip().to_string(), &mut events);
                    }
                    Err(e) => {
                        tracing::debug!(input = ctx.id(), error = %e, "syslog udp receive failed")
                    }
                }
                if events.len() < self.batch_size {
                    next = match socket.try_recv_from(&mut buf) {
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
                        r => Some(r),
                    };
                }
            }
            if !events.is_empty()
                && ctx
                    .push(Batch::with_bytes(events, Ack::none(), bytes))
                    .await
                    .is_err()
            {
                return;
            }
        }
    }

    async fn serve_tcp<S: AsyncRead + Unpin>(
        &self,
        mut stream: S,
        peer: SocketAddr,
        ctx: InputContext,
    ) {
        tracing::debug!(input = ctx.id(), peer = %peer, "syslog connection opened");
        let mut memory = Holding::new(self.budget.clone());
        let mut framer = LineFramer::new(MAX_LINE_BYTES);
        let mut buffer = ReadBuffer::default();
        // Bytes read while waiting for memory, ahead of the socket.
        let mut early: Vec<u8> = Vec::new();
        let mut ip = peer.ip().to_string();
        let mut first_line = self.proxy_protocol;
        let mut events: Vec<Event> = Vec::new();
        let mut bytes = 0;
        let mut held = 0;
        let mut eof = false;
        // A line cut short to give back input memory (see `inputs::budget`).
        let mut cut: Option<crate::codecs::line::Line> = None;
        loop {
            loop {
                let was_cut = cut.is_some();
                let next = match cut.take() {
                    Some(line) => Ok(Some(line)),
                    None if eof => framer.decode_eof(&mut buffer.buf),
                    None => framer.decode(&mut buffer.buf),
                };
                let line = match next {
                    Ok(Some(line)) => line,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(input = ctx.id(), peer = %peer, error = %e, "syslog read failed");
                        break;
                    }
                };
                if std::mem::take(&mut first_line) {
                    // PROXY TCP4 client proxy client-port proxy-port
                    let header = String::from_utf8_lossy(&line.bytes);
                    let parts: Vec<&str> = header.split_whitespace().collect();
                    if parts.first() != Some(&"PROXY") || parts.len() < 3 {
                        tracing::error!(input = ctx.id(), peer = %peer, header = %header, "invalid proxy protocol header; connection closed");
                        return;
                    }
                    ip = parts[2].to_string();
                    continue;
                }
                if was_cut {
                    self.stats
                        .lines_cut_for_memory
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(input = ctx.id(), peer = %peer, kept_bytes = line.bytes.len(), "syslog line cut short to give back input memory: the budget was spent on lines no peer finished and this connection held the most; its head is kept, tagged _linetoolong, and the rest skipped");
                } else if line.truncated {
                    self.stats.lines_truncated.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(input = ctx.id(), peer = %peer, max_line_bytes = MAX_LINE_BYTES, "syslog line too long; its head is kept, tagged _linetoolong");
                }
                let cost = line.bytes.len() + EVENT_OVERHEAD_BYTES;
                memory.set_unchecked(memory.held() + cost);
                held += cost;
                bytes += line.bytes.len();
                let before = events.len();
                self.add(&line.bytes, &ip, &mut events);
                if line.truncated {
                    for e in &mut events[before..] {
                        e.add_tag(LINE_TOO_LONG);
                    }
                }
                if events.len() >= self.batch_size {
                    break;
                }
            }
            buffer.recount(&mut memory);
            if !events.is_empty() {
                let batch = Batch::with_bytes(
                    std::mem::take(&mut events),
                    Ack::none(),
                    std::mem::take(&mut bytes),
                );
                let pushed = memory.waiting_for_pipeline(ctx.push(batch)).await.is_ok();
                memory.shrink(std::mem::take(&mut held));
                if !pushed {
                    return;
                }
                // More complete lines may wait in the buffer.
                continue;
            }
            if eof {
                break;
            }
            let waited = wait_watching_peer(
                buffer.make_room(&mut memory),
                &mut stream,
                &mut early,
                ctx.shutdown().cancelled(),
            )
            .await;
            match waited {
                Watched::Ready(Err(Cut)) => {
                    cut = framer.cut(&mut buffer.buf);
                    continue;
                }
                Watched::Ready(_) if early.is_empty() => {}
                Watched::Ready(_) => {
                    // Read while waiting: framed before the socket is read again.
                    buffer.take_early(&mut early, &mut memory);
                    continue;
                }
                Watched::Stopped => {
                    eof = true;
                    continue;
                }
                Watched::PeerClosed => {
                    tracing::debug!(input = ctx.id(), peer = %peer, "syslog peer closed while its connection waited for memory");
                    buffer.take_early(&mut early, &mut memory);
                    eof = true;
                    continue;
                }
            }
            let read = tokio::select! {
                _ = ctx.shutdown().cancelled() => { eof = true; continue; }
                () = memory.cut_requested() => {
                    cut = framer.cut(&mut buffer.buf);
                    continue;
                }
                r = stream.read_buf(&mut buffer.buf) => r,
            };
            match read {
                Ok(0) => eof = true,
                Ok(_) => {}
                Err(e) => {
                    tracing::info!(input = ctx.id(), peer = %peer, error = %e, "syslog connection error");
                    eof = true;
                }
            }
        }
        tracing::debug!(input = ctx.id(), peer = %peer, "syslog connection closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(body: &str) -> SyslogRelay {
        let mut opts = Options::from_text("syslog", "input", body).unwrap();
        let r = SyslogRelay::build(&mut opts).unwrap();
        opts.finish().unwrap();
        r
    }

    fn parse(r: &SyslogRelay, line: &str) -> Event {
        let mut e = Event::with_message(line.to_string(), Timestamp::now());
        r.relay(&mut e, "10.1.2.3");
        e
    }

    fn get<'a>(e: &'a Event, name: &str) -> Option<&'a Value> {
        e.get(&FieldRef::parse(name).unwrap())
    }

    #[test]
    fn rfc3164_legacy_fields() {
        let r = relay("ecs_compatibility => disabled timezone => 'UTC'");
        let e = parse(
            &r,
            "<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick on /dev/pts/8",
        );
        assert!(!e.has_tag(GROK_FAILURE), "{e:?}");
        assert_eq!(get(&e, "priority"), Some(&Value::Int(34)));
        assert_eq!(get(&e, "facility"), Some(&Value::Int(4)));
        assert_eq!(get(&e, "severity"), Some(&Value::Int(2)));
        assert_eq!(e.get_str("facility_label"), Some("security/authorization"));
        assert_eq!(e.get_str("severity_label"), Some("Critical"));
        assert_eq!(e.get_str("logsource"), Some("mymachine"));
        assert_eq!(e.get_str("program"), Some("su"));
        assert_eq!(e.get_str("pid"), Some("123"));
        assert_eq!(e.get_str("host"), Some("10.1.2.3"));
        assert_eq!(
            e.get_str("message"),
            Some("'su root' failed for lonvick on /dev/pts/8")
        );
        let ts = e.timestamp().unwrap().to_string();
        assert!(ts.contains("-10-11T22:14:15"), "{ts}");
    }

    #[test]
    fn rfc3164_ecs_fields_and_original() {
        let r = relay("timezone => 'UTC'");
        let line = "<13>Feb  5 17:32:18 10.0.0.99 myapp: Use the BFG!";
        let e = parse(&r, line);
        assert!(!e.has_tag(GROK_FAILURE), "{e:?}");
        assert_eq!(get(&e, "[log][syslog][priority]"), Some(&Value::Int(13)));
        assert_eq!(
            get(&e, "[log][syslog][facility][code]"),
            Some(&Value::Int(1))
        );
        assert_eq!(
            get(&e, "[log][syslog][severity][code]"),
            Some(&Value::Int(5))
        );
        assert_eq!(
            get(&e, "[log][syslog][facility][name]"),
            Some(&Value::String("user-level".into()))
        );
        assert_eq!(
            get(&e, "[log][syslog][severity][name]"),
            Some(&Value::String("Notice".into()))
        );
        assert_eq!(
            get(&e, "[host][ip]"),
            Some(&Value::String("10.1.2.3".into()))
        );
        assert_eq!(
            get(&e, "[host][hostname]"),
            Some(&Value::String("10.0.0.99".into()))
        );
        assert_eq!(
            get(&e, "[process][name]"),
            Some(&Value::String("myapp".into()))
        );
        assert_eq!(
            get(&e, "[event][original]"),
            Some(&Value::String(line.into()))
        );
        assert_eq!(e.get_str("message"), Some("Use the BFG!"));
        assert!(e.get_field("timestamp").is_none(), "ECS removes timestamp");
        assert!(e
            .timestamp()
            .unwrap()
            .to_string()
            .contains("-02-05T17:32:18"));
    }

    #[test]
    fn rfc5424_is_parsed_when_the_default_pattern_is_used() {
        let r = relay("ecs_compatibility => disabled");
        let e = parse(
            &r,
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\"] An application event",
        );
        assert!(!e.has_tag(GROK_FAILURE), "{e:?}");
        assert_eq!(get(&e, "priority"), Some(&Value::Int(165)));
        assert_eq!(e.get_str("facility_label"), Some("local4"));
        assert_eq!(e.get_str("severity_label"), Some("Notice"));
        assert_eq!(e.get_str("logsource"), Some("mymachine.example.com"));
        assert_eq!(e.get_str("program"), Some("evntslog"));
        assert_eq!(e.get_str("syslog5424_msgid"), Some("ID47"));
        assert_eq!(e.get_str("message"), Some("An application event"));
        assert_eq!(
            e.timestamp().unwrap().to_string(),
            "2003-10-11T22:14:15.003Z"
        );

        let r = relay("");
        let e = parse(
            &r,
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su 77 ID47 - 'su root' failed",
        );
        assert_eq!(get(&e, "[process][pid]"), Some(&Value::Int(77)));
        assert_eq!(
            get(&e, "[event][code]"),
            Some(&Value::String("ID47".into()))
        );
        assert_eq!(
            get(&e, "[system][syslog][version]"),
            Some(&Value::String("1".into()))
        );
        assert_eq!(e.get_str("message"), Some("'su root' failed"));
    }

    #[test]
    fn locale_reads_month_names_of_that_language() {
        let pattern = "grok_pattern => '<%{POSINT:priority}>(?<timestamp>%{NOTSPACE} +%{MONTHDAY} %{TIME}) %{GREEDYDATA:message}'";
        let line = "<34>Okt 11 22:14:15 su: failed";
        let r = relay(&format!(
            "ecs_compatibility => disabled timezone => 'UTC' locale => 'de-DE' {pattern}"
        ));
        let e = parse(&r, line);
        assert!(!e.has_tag(GROK_FAILURE), "{e:?}");
        let ts = e.timestamp().unwrap().to_string();
        assert!(ts.contains("-10-11T22:14:15"), "{ts}");

        let english = relay(&format!(
            "ecs_compatibility => disabled timezone => 'UTC' {pattern}"
        ));
        let ts = parse(&english, line).timestamp().unwrap().to_string();
        assert!(
            !ts.contains("-10-11T22:14:15"),
            "English does not read Okt: {ts}"
        );

        let mut opts = Options::from_text("syslog", "input", "locale => 'xx-YY'").unwrap();
        let err = SyslogRelay::build(&mut opts)
            .err()
            .expect("unknown locale refused");
        assert!(err.to_string().contains("`xx-YY`"), "{err}");
    }

    #[test]
    fn unparsed_lines_are_tagged_and_get_priority_13() {
        let r = relay("ecs_compatibility => disabled");
        let e = parse(&r, "not syslog at all");
        assert!(e.has_tag(GROK_FAILURE));
        assert_eq!(e.get_str("message"), Some("not syslog at all"));
        assert_eq!(get(&e, "priority"), Some(&Value::Int(13)));
        assert_eq!(get(&e, "facility"), Some(&Value::Int(1)));
        assert_eq!(get(&e, "severity"), Some(&Value::Int(5)));
        assert_eq!(e.get_str("severity_label"), Some("Notice"));
    }

    #[test]
    fn custom_pattern_field_and_labels() {
        let r = relay(
            "ecs_compatibility => disabled syslog_field => 'raw' grok_pattern => '<%{POSINT:priority}>%{GREEDYDATA:body}' \
             use_labels => true severity_labels => ['e','a','c','er','w','n','i','d']",
        );
        let mut e = Event::new();
        e.insert_field("raw", Value::String("<15>hello".into()));
        r.relay(&mut e, "::1");
        assert_eq!(e.get_str("body"), Some("hello"));
        assert_eq!(e.get_str("severity_label"), Some("d"));
        let r = relay("ecs_compatibility => disabled use_labels => false");
        let e = parse(&r, "<15>Oct 11 22:14:15 h p: x");
        assert!(e.get_field("severity_label").is_none());
    }
}
