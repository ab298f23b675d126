//! `elasticsearch` output: bulk indexing into Elasticsearch or OpenSearch that never
//! loses an event.
//!
//! Each batch becomes one `_bulk` request (split at `bulk_max_bytes` of NDJSON), written
//! straight from the events. Every item of the response is read:
//!
//! - 2xx, 409 on `create`, 404 on `delete`: delivered;
//! - 429, 5xx (and 401/403/408): retried with exponential back-off and jitter, only the
//!   failed items, for as long as it takes;
//! - 400, 404 and `dlq_custom_codes`: written to the dead letter queue with the reason.
//!
//! A request that fails as a whole (connection refused or reset, timeout, any status but
//! 200) is retried the same way, forever. `send` returns only once every event is
//! delivered or dead-lettered, so a server that is down holds the pipeline back
//! (back-pressure) instead of dropping events.

mod bulk;
mod client;

use super::{Output, OutputError};
use crate::config::Error;
use crate::event::sprintf::Template;
use crate::event::{new_map, Event, Value};
use crate::metrics;
use crate::plugin::Options;
use crate::queue::dlq::{self, DeadLetterQueue, Entry, StoragePolicy};
use bulk::{Action, Doc, Meta, Verdict};
pub use client::{Auth, Tls};
use client::{Client, RequestError};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OnceCell, Semaphore};

/// Logstash's target bulk size.
pub const DEFAULT_BULK_MAX_BYTES: usize = 20 << 20;

/// Data stream naming (`data_stream => true`).
#[derive(Debug, Clone)]
pub struct DataStream {
    pub kind: String,
    pub dataset: String,
    pub namespace: String,
    /// Take type/dataset/namespace from the event's `[data_stream]` fields when set.
    pub auto_routing: bool,
    /// Add the `[data_stream]` fields to documents that lack them.
    pub sync_fields: bool,
}

/// An index template to install at start.
#[derive(Debug, Clone)]
pub struct TemplateSpec {
    pub name: String,
    pub body: serde_json::Value,
    pub overwrite: bool,
}

/// Everything the output is configured with; [`ElasticsearchOutput::build`] fills it
/// from Logstash's options.
#[derive(Debug, Clone)]
pub struct Config {
    pub hosts: Vec<String>,
    pub index: Template,
    pub document_id: Option<Template>,
    pub action: Template,
    pub pipeline: Option<Template>,
    pub routing: Option<Template>,
    pub data_stream: Option<DataStream>,
    pub doc_as_upsert: bool,
    pub auth: Auth,
    pub tls: Tls,
    pub http_compression: bool,
    pub timeout: Duration,
    pub retry_initial_interval: Duration,
    pub retry_max_interval: Duration,
    pub resurrect_delay: Duration,
    pub template: Option<TemplateSpec>,
    pub dlq_custom_codes: Vec<u16>,
    pub max_inflight: usize,
    pub bulk_max_bytes: usize,
    pub dlq_dir: PathBuf,
    pub dlq_max_bytes: u64,
    pub dlq_policy: StoragePolicy,
}

impl Config {
    /// Defaults for `hosts` and the directory of the dead letter queue.
    pub fn new(hosts: Vec<String>, data_dir: &std::path::Path) -> Config {
        Config {
            hosts,
            index: parse_template("logs-%{+yyyy.MM.dd}"),
            document_id: None,
            action: parse_template("index"),
            pipeline: None,
            routing: None,
            data_stream: None,
            doc_as_upsert: false,
            auth: Auth::None,
            tls: Tls {
                enabled: None,
                certificate_authorities: Vec::new(),
                verify: true,
            },
            http_compression: false,
            timeout: Duration::from_secs(60),
            retry_initial_interval: Duration::from_secs(2),
            retry_max_interval: Duration::from_secs(64),
            resurrect_delay: Duration::from_secs(5),
            template: None,
            dlq_custom_codes: Vec::new(),
            max_inflight: 4,
            bulk_max_bytes: DEFAULT_BULK_MAX_BYTES,
            dlq_dir: dlq::queue_dir(data_dir, dlq::DEFAULT_PIPELINE_ID),
            dlq_max_bytes: dlq::DEFAULT_MAX_BYTES,
            dlq_policy: StoragePolicy::DropNewer,
        }
    }
}

/// An event that cannot be sent at all: (position, action, index, reason).
type Rejected = (usize, Action, String, String);

fn parse_template(s: &str) -> Template {
    // Only called with the constant defaults above, which parse.
    Template::parse(s).unwrap_or_else(|_| unreachable!("default template `{s}` parses"))
}

pub struct ElasticsearchOutput {
    cfg: Config,
    client: Client,
    inflight: Semaphore,
    template_installed: OnceCell<()>,
    dlq: Mutex<Option<Arc<DeadLetterQueue>>>,
}

/// A duration option given in seconds (fractions allowed).
fn seconds(opts: &mut Options, name: &str, default: f64) -> Result<Duration, Error> {
    let pos = opts.value_pos(name);
    let v = opts.float(name)?.unwrap_or(default);
    if !(v.is_finite() && v >= 0.0) {
        return Err(opts.option_error(name, &pos, "expected a number of seconds >= 0"));
    }
    Ok(Duration::from_secs_f64(v))
}

impl ElasticsearchOutput {
    pub fn build(opts: &mut Options) -> Result<ElasticsearchOutput, Error> {
        let ctx = opts.context().clone();
        let hosts = opts
            .string_list("hosts")?
            .unwrap_or_else(|| vec!["//127.0.0.1".to_string()]);
        if hosts.is_empty() {
            return Err(opts.error("elasticsearch output: `hosts` is empty"));
        }
        let mut cfg = Config::new(hosts, &ctx.data_dir);
        cfg.dlq_max_bytes = ctx.dlq_max_bytes;
        cfg.dlq_policy = ctx.dlq_storage_policy;
        let index_pos = opts.value_pos("index");
        let index = opts.template("index")?;
        cfg.document_id = opts.template("document_id")?;
        let action_pos = opts.value_pos("action");
        let action = opts.template("action")?;
        if let Some(a) = &action {
            if a.is_static() && Action::parse(a.source()).is_none() {
                return Err(opts.option_error(
                    "action",
                    &action_pos,
                    format!(
                        "expected index, create, update or delete, got `{}`",
                        a.source()
                    ),
                ));
            }
        }
        cfg.pipeline = opts.template("pipeline")?;
        cfg.routing = opts.template("routing")?;
        cfg.doc_as_upsert = opts.bool_or("doc_as_upsert", false)?;

        let ds_pos = opts.value_pos("data_stream");
        let data_stream = match opts.string("data_stream")?.as_deref() {
            None | Some("false") | Some("auto") => false,
            Some("true") => true,
            Some(other) => {
                return Err(opts.option_error(
                    "data_stream",
                    &ds_pos,
                    format!("expected true, false or auto, got `{other}`"),
                ))
            }
        };
        let ds = DataStream {
            kind: opts.string_or("data_stream_type", "logs")?,
            dataset: opts.string_or("data_stream_dataset", "generic")?,
            namespace: opts.string_or("data_stream_namespace", "default")?,
            auto_routing: opts.bool_or("data_stream_auto_routing", true)?,
            sync_fields: opts.bool_or("data_stream_sync_fields", true)?,
        };
        if data_stream {
            if index.is_some() {
                return Err(opts.option_error(
                    "index",
                    &index_pos,
                    "cannot be set together with `data_stream => true`",
                ));
            }
            if action.as_ref().is_some_and(|a| a.source() != "create") {
                return Err(opts.option_error(
                    "action",
                    &action_pos,
                    "data streams only accept `create`",
                ));
            }
            cfg.data_stream = Some(ds);
            cfg.action = parse_template("create");
        } else if let Some(a) = action {
            cfg.action = a;
        }
        if let Some(i) = index {
            cfg.index = i;
        }

        let user = opts.string("user")?;
        let password = opts.string("password")?;
        let api_key = opts.string("api_key")?;
        cfg.auth =
            match (user, password, api_key) {
                (None, None, None) => Auth::None,
                (Some(user), Some(password), None) => Auth::Basic { user, password },
                (None, None, Some(key)) => Auth::ApiKey(key),
                (Some(_), None, _) | (None, Some(_), _) => {
                    return Err(opts.error("elasticsearch output: give both `user` and `password`"))
                }
                (Some(_), Some(_), Some(_)) => return Err(opts.error(
                    "elasticsearch output: give either `user`/`password` or `api_key`, not both",
                )),
            };
        cfg.tls.enabled = opts.bool("ssl_enabled")?.or(opts.bool("ssl")?);
        cfg.tls.certificate_authorities = opts
            .string_list("ssl_certificate_authorities")?
            .unwrap_or_default()
            .into_iter()
            .map(PathBuf::from)
            .collect();
        let mode_pos = opts.value_pos("ssl_verification_mode");
        cfg.tls.verify = match opts.string_or("ssl_verification_mode", "full")?.as_str() {
            "full" => true,
            "none" => false,
            other => {
                return Err(opts.option_error(
                    "ssl_verification_mode",
                    &mode_pos,
                    format!("expected full or none, got `{other}`"),
                ))
            }
        };
        cfg.http_compression = opts.bool_or("http_compression", false)?;
        cfg.timeout = seconds(opts, "timeout", 60.0)?;
        cfg.retry_initial_interval = seconds(opts, "retry_initial_interval", 2.0)?;
        cfg.retry_max_interval = seconds(opts, "retry_max_interval", 64.0)?;
        cfg.resurrect_delay = seconds(opts, "resurrect_delay", 5.0)?;
        if cfg.retry_max_interval < cfg.retry_initial_interval {
            cfg.retry_max_interval = cfg.retry_initial_interval;
        }

        let manage = opts.bool_or("manage_template", true)?;
        let tpl_pos = opts.value_pos("template");
        let template_path = opts.string("template")?;
        let template_name = opts.string_or("template_name", "sluice")?;
        let overwrite = opts.bool_or("template_overwrite", false)?;
        if let (true, Some(path)) = (manage, template_path) {
            let text = std::fs::read(&path).map_err(|e| {
                opts.option_error("template", &tpl_pos, format!("cannot read {path}: {e}"))
            })?;
            let body: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
                opts.option_error("template", &tpl_pos, format!("{path} is not JSON: {e}"))
            })?;
            cfg.template = Some(TemplateSpec {
                name: template_name,
                body,
                overwrite,
            });
        }

        let codes_pos = opts.value_pos("dlq_custom_codes");
        for code in opts.string_list("dlq_custom_codes")?.unwrap_or_default() {
            let c: u16 = code
                .trim()
                .parse()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| {
                    opts.option_error(
                        "dlq_custom_codes",
                        &codes_pos,
                        format!("`{code}` is not an HTTP status"),
                    )
                })?;
            cfg.dlq_custom_codes.push(c);
        }
        cfg.max_inflight = opts.usize_or("max_inflight", 4)?.max(1);
        cfg.bulk_max_bytes = opts
            .usize_or("bulk_max_bytes", DEFAULT_BULK_MAX_BYTES)?
            .max(1);
        if let Some(path) = opts.string("dlq_path")? {
            cfg.dlq_dir = PathBuf::from(path);
        }
        ElasticsearchOutput::new(cfg).map_err(|e| opts.error(format!("elasticsearch output: {e}")))
    }

    /// An output from a ready configuration.
    pub fn new(cfg: Config) -> Result<ElasticsearchOutput, client::ClientError> {
        let client = Client::new(
            &cfg.hosts,
            &cfg.tls,
            &cfg.auth,
            cfg.http_compression,
            cfg.timeout,
            cfg.resurrect_delay,
        )?;
        Ok(ElasticsearchOutput {
            inflight: Semaphore::new(cfg.max_inflight),
            client,
            cfg,
            template_installed: OnceCell::new(),
            dlq: Mutex::new(None),
        })
    }

    /// The back-off before retry number `attempt` (0-based): exponential, capped, with
    /// "equal jitter" (between half and all of the interval).
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.cfg.retry_initial_interval.as_secs_f64();
        let cap = self.cfg.retry_max_interval.as_secs_f64();
        let interval = (base * 2f64.powi(attempt.min(30) as i32)).min(cap);
        let jitter: f64 = rand::random();
        Duration::from_secs_f64(interval * (0.5 + 0.5 * jitter))
    }

    fn dead_letter_queue(&self) -> Result<Arc<DeadLetterQueue>, OutputError> {
        let mut slot = self.dlq.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(q) = slot.as_ref() {
            return Ok(q.clone());
        }
        let q = DeadLetterQueue::open(
            &self.cfg.dlq_dir,
            self.cfg.dlq_max_bytes,
            self.cfg.dlq_policy,
        )
        .map_err(|e| OutputError::Fatal(e.to_string()))?;
        *slot = Some(q.clone());
        Ok(q)
    }

    /// Installs the index template, retrying until the server takes it.
    async fn install_template(&self) {
        let Some(t) = &self.cfg.template else { return };
        // Composable templates have a `template` key; legacy ones have mappings at the top.
        let endpoint = if t.body.get("template").is_some() {
            "_index_template"
        } else {
            "_template"
        };
        let path = format!("/{endpoint}/{}", t.name);
        let body = serde_json::to_vec(&t.body).unwrap_or_default();
        let mut attempt = 0;
        loop {
            if !t.overwrite {
                match self.client.json(reqwest::Method::HEAD, &path, None).await {
                    Ok(r) if r.status == 200 => {
                        tracing::info!(template = %t.name, "index template exists; not overwriting it");
                        return;
                    }
                    _ => {}
                }
            }
            match self
                .client
                .json(reqwest::Method::PUT, &path, Some(body.clone()))
                .await
            {
                Ok(r) if (200..300).contains(&r.status) => {
                    tracing::info!(template = %t.name, endpoint, "installed index template");
                    return;
                }
                Ok(r) => tracing::error!(
                    template = %t.name,
                    status = r.status,
                    body = %String::from_utf8_lossy(&r.body).chars().take(300).collect::<String>(),
                    "cannot install index template; retrying"
                ),
                Err(e) => {
                    tracing::error!(template = %t.name, error = %e, "cannot install index template; retrying")
                }
            }
            tokio::time::sleep(self.backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// Encodes every event; events that cannot be sent at all (an unknown action, an
    /// update without an id) come back as dead letters.
    fn encode(&self, events: &[&Event]) -> (Vec<u8>, Vec<Doc>, Vec<Rejected>) {
        let mut body = Vec::with_capacity(events.len() * 512);
        let mut docs = Vec::with_capacity(events.len());
        let mut rejected = Vec::new();
        let mut synced: Option<Event> = None;
        for (i, e) in events.iter().enumerate() {
            let action_text = self.cfg.action.render(e);
            let index = self.index_for(e);
            let Some(action) = Action::parse(&action_text) else {
                rejected.push((
                    i,
                    Action::Index,
                    index,
                    format!("unknown bulk action `{action_text}`"),
                ));
                continue;
            };
            let id = self.cfg.document_id.as_ref().map(|t| t.render(e));
            if id.is_none() && matches!(action, Action::Update | Action::Delete) {
                rejected.push((
                    i,
                    action,
                    index,
                    format!("action `{}` needs a document_id", action.as_str()),
                ));
                continue;
            }
            let routing = self.cfg.routing.as_ref().map(|t| t.render(e));
            let pipeline = self
                .cfg
                .pipeline
                .as_ref()
                .map(|t| t.render(e))
                .filter(|p| !p.is_empty());
            let start = body.len();
            bulk::write_action(
                &mut body,
                &Meta {
                    action,
                    index: &index,
                    id: id.as_deref(),
                    routing: routing.as_deref(),
                    pipeline: pipeline.as_deref(),
                },
            );
            let event: &Event = match &self.cfg.data_stream {
                Some(ds) if ds.sync_fields && e.get_field("data_stream").is_none() => {
                    synced.insert(with_data_stream(e, ds, &index))
                }
                _ => e,
            };
            match action {
                Action::Index | Action::Create => event.write_json(&mut body),
                Action::Update => {
                    body.extend_from_slice(b"{\"doc\":");
                    event.write_json(&mut body);
                    if self.cfg.doc_as_upsert {
                        body.extend_from_slice(b",\"doc_as_upsert\":true");
                    }
                    body.push(b'}');
                }
                Action::Delete => {}
            }
            if action != Action::Delete {
                body.push(b'\n');
            }
            docs.push(Doc {
                event: i,
                action,
                index,
                range: start..body.len(),
            });
        }
        (body, docs, rejected)
    }

    fn index_for(&self, e: &Event) -> String {
        match &self.cfg.data_stream {
            None => self.cfg.index.render(e).into_owned(),
            Some(ds) => {
                let field = |name: &str, default: &str| -> String {
                    if ds.auto_routing {
                        if let Some(Value::Map(m)) = e.get_field("data_stream") {
                            if let Some(s) = m.get(name).and_then(Value::as_str) {
                                return s.to_string();
                            }
                        }
                    }
                    default.to_string()
                };
                format!(
                    "{}-{}-{}",
                    field("type", &ds.kind),
                    field("dataset", &ds.dataset),
                    field("namespace", &ds.namespace)
                )
            }
        }
    }

    /// Sends `docs` (indices into `all`) until each is delivered or dead-lettered, and
    /// returns the dead letters as (doc index, status, reason).
    async fn deliver(
        &self,
        body: &[u8],
        all: &[Doc],
        docs: Vec<usize>,
    ) -> Vec<(usize, u16, String)> {
        let mut dead = Vec::new();
        // Groups still to send; a 413 splits a group in two.
        let mut groups = vec![docs];
        let mut attempt: u32 = 0;
        while let Some(pending) = groups.pop() {
            if pending.is_empty() {
                continue;
            }
            let mut buf = Vec::with_capacity(pending.iter().map(|&d| all[d].range.len()).sum());
            for &d in &pending {
                buf.extend_from_slice(&body[all[d].range.clone()]);
            }
            let result = {
                // A closed semaphore cannot happen: it is never closed.
                let _permit = self.inflight.acquire().await;
                self.client.bulk(&buf).await
            };
            let m = &metrics::get().elasticsearch;
            let retry: Vec<usize> = match result {
                Ok(resp) if resp.status == 413 && pending.len() > 1 => {
                    let half = pending.len() / 2;
                    tracing::warn!(
                        documents = pending.len(),
                        bytes = buf.len(),
                        "bulk request too large (HTTP 413): splitting it"
                    );
                    let mut first = pending;
                    let second = first.split_off(half);
                    groups.push(second);
                    groups.push(first);
                    continue;
                }
                Ok(resp) if resp.status == 413 => {
                    // A single document the server will never take.
                    m.items
                        .get_or_create(&metrics::label("status", "413"))
                        .inc();
                    dead.push((
                        pending[0],
                        413,
                        "document larger than the server accepts (HTTP 413)".to_string(),
                    ));
                    continue;
                }
                Ok(resp) => match bulk::parse_response(&resp.body) {
                    Ok(items) if items.len() == pending.len() => {
                        let mut retry = Vec::new();
                        let mut delivered = 0u64;
                        let mut retry_status = None;
                        for (&d, item) in pending.iter().zip(items.iter()) {
                            m.items
                                .get_or_create(&metrics::label("status", item.status.to_string()))
                                .inc();
                            match bulk::verdict(
                                all[d].action,
                                item.status,
                                item.error.as_ref(),
                                &self.cfg.dlq_custom_codes,
                            ) {
                                Verdict::Delivered => delivered += 1,
                                Verdict::Retry { status } => {
                                    retry_status.get_or_insert((
                                        status,
                                        item.error.as_ref().map(|e| e.describe()),
                                    ));
                                    retry.push(d);
                                }
                                Verdict::DeadLetter { status, reason } => {
                                    dead.push((d, status, reason))
                                }
                            }
                        }
                        m.documents_indexed.inc_by(delivered);
                        if let Some((status, reason)) = retry_status {
                            tracing::warn!(
                                documents = retry.len(),
                                status,
                                reason = reason.as_deref().unwrap_or(""),
                                attempt = attempt + 1,
                                "bulk items failed with a retryable status; retrying them"
                            );
                        }
                        retry
                    }
                    Ok(items) => {
                        tracing::error!(
                            sent = pending.len(),
                            received = items.len(),
                            "bulk response item count does not match the request; retrying the request"
                        );
                        m.request_failures
                            .get_or_create(&metrics::label("reason", "bad_response"))
                            .inc();
                        pending
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the bulk response; retrying the request");
                        m.request_failures
                            .get_or_create(&metrics::label("reason", "bad_response"))
                            .inc();
                        pending
                    }
                },
                Err(e) => {
                    self.log_request_error(&e, pending.len(), attempt);
                    m.request_failures
                        .get_or_create(&metrics::label("reason", e.reason()))
                        .inc();
                    pending
                }
            };
            if retry.is_empty() {
                attempt = 0;
                continue;
            }
            m.documents_retried.inc_by(retry.len() as u64);
            let delay = self.backoff(attempt);
            tracing::debug!(
                documents = retry.len(),
                ?delay,
                "backing off before retrying"
            );
            tokio::time::sleep(delay).await;
            attempt = attempt.saturating_add(1);
            groups.push(retry);
        }
        dead
    }

    fn log_request_error(&self, e: &RequestError, documents: usize, attempt: u32) {
        match e.hint() {
            Some(hint) => tracing::error!(
                error = %e,
                hint,
                documents,
                attempt = attempt + 1,
                "bulk request failed; retrying with back-off"
            ),
            None => tracing::error!(
                error = %e,
                documents,
                attempt = attempt + 1,
                "bulk request failed; retrying with back-off"
            ),
        }
    }
}

/// A copy of `e` with `[data_stream]` set, for data streams that want the fields synced.
fn with_data_stream(e: &Event, ds: &DataStream, index: &str) -> Event {
    let mut parts = index.splitn(3, '-');
    let kind = parts.next().unwrap_or(&ds.kind);
    let dataset = parts.next().unwrap_or(&ds.dataset);
    let namespace = parts.next().unwrap_or(&ds.namespace);
    let mut m = new_map();
    m.insert("type".into(), Value::from(kind));
    m.insert("dataset".into(), Value::from(dataset));
    m.insert("namespace".into(), Value::from(namespace));
    let mut copy = e.clone();
    copy.insert_field("data_stream", Value::Map(m));
    copy
}

#[async_trait::async_trait]
impl Output for ElasticsearchOutput {
    async fn send(&self, events: &[&Event]) -> Result<(), OutputError> {
        if events.is_empty() {
            return Ok(());
        }
        self.template_installed
            .get_or_init(|| self.install_template())
            .await;
        let (body, docs, rejected) = self.encode(events);

        // Split at the bulk size cap; a document larger than the cap goes alone.
        let mut chunks: Vec<Vec<usize>> = Vec::new();
        let mut size = 0;
        for (i, d) in docs.iter().enumerate() {
            let len = d.range.len();
            match chunks.last_mut() {
                Some(c) if size + len <= self.cfg.bulk_max_bytes => {
                    c.push(i);
                    size += len;
                }
                _ => {
                    chunks.push(vec![i]);
                    size = len;
                }
            }
        }
        let results =
            futures::future::join_all(chunks.into_iter().map(|c| self.deliver(&body, &docs, c)))
                .await;

        let mut dead: Vec<(usize, Action, &str, u16, String)> = rejected
            .iter()
            .map(|(i, a, index, reason)| (*i, *a, index.as_str(), 0u16, reason.clone()))
            .collect();
        for (d, status, reason) in results.into_iter().flatten() {
            let doc = &docs[d];
            dead.push((doc.event, doc.action, doc.index.as_str(), status, reason));
        }
        if dead.is_empty() {
            return Ok(());
        }
        let entries: Vec<Entry> = dead
            .iter()
            .map(|(i, action, index, status, reason)| Entry {
                plugin: "elasticsearch",
                action: action.as_str(),
                index,
                status: *status,
                reason,
                event: events[*i],
            })
            .collect();
        for e in entries.iter().take(3) {
            tracing::warn!(
                index = e.index,
                status = e.status,
                reason = e.reason,
                "document cannot be indexed; writing it to the dead letter queue"
            );
        }
        if entries.len() > 3 {
            tracing::warn!(
                documents = entries.len(),
                "documents cannot be indexed; writing them to the dead letter queue"
            );
        }
        let q = self.dead_letter_queue()?;
        // Entries refused by the cap are counted by the queue as dropped, not here.
        let written = q
            .write(&entries)
            .and_then(|n| q.sync().map(|()| n))
            .map_err(|e| OutputError::Fatal(e.to_string()))?;
        metrics::get()
            .elasticsearch
            .documents_dead_lettered
            .inc_by(written as u64);
        Ok(())
    }

    async fn close(&self) -> Result<(), OutputError> {
        let q = self.dlq.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(q) = q {
            q.sync().map_err(|e| OutputError::Fatal(e.to_string()))?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for ElasticsearchOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticsearchOutput")
            .field("hosts", &self.client.describe())
            .field("index", &self.cfg.index.source())
            .finish()
    }
}
