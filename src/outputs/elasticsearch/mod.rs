//! `elasticsearch` output: bulk indexing into Elasticsearch or OpenSearch.
//!
//! Each attempt turns the events into one `_bulk` request (split at `bulk_max_bytes` of
//! NDJSON, and in halves when the server answers 413), written straight from the
//! events, and reads every item of the response into an outcome (see [`bulk::outcome`]):
//!
//! - 2xx, 409 on `create`, 404 on `delete`: delivered;
//! - 429, 5xx, 401, 403, 408: retry;
//! - 400, 404 and `dlq_custom_codes`: reject, to the dead letter queue with the reason.
//!
//! A request that fails as a whole (connection refused or reset, timeout, any status but
//! 200) retries every document in it. Retrying, back-off (`retry_initial_interval`,
//! `retry_max_interval`) and dead letters belong to the delivery engine.

mod bulk;
mod client;
mod config;

use super::{Outcome, Outcomes, Output, OutputError, Reason, Rejection, RetryPolicy};
use crate::config::Error;
use crate::event::{new_map, Event, Value};
use crate::metrics;
use crate::plugin::Options;
pub use bulk::VersionType;
use bulk::{Action, Doc, Meta};
pub use client::ClientCertificate;
pub use client::{Auth, Tls};
use client::{Client, RequestError};
pub use config::{
    Config, DataStream, ScriptKind, ScriptSpec, TemplateApi, TemplateSpec, DEFAULT_BULK_MAX_BYTES,
};
use tokio::sync::{OnceCell, Semaphore};

type Rejected = (usize, Rejection);

/// A setup answer other than 2xx as a reason to retry, with the start of its body.
fn check(r: &client::Response, what: &str, name: &str) -> Result<(), Reason> {
    if (200..300).contains(&r.status) {
        return Ok(());
    }
    Err(Reason::http(
        r.status,
        format!(
            "cannot {what} {name}: HTTP {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
                .chars()
                .take(300)
                .collect::<String>()
        ),
    ))
}

/// A name as one URL path segment: date math such as `<logs-{now/d}-000001>` holds
/// characters (`<`, `{`, `/`) that must be escaped, as Logstash escapes them.
fn encode_path_segment(name: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(name, SEGMENT).to_string()
}

pub struct ElasticsearchOutput {
    cfg: Config,
    client: Client,
    inflight: Semaphore,
    template_installed: OnceCell<()>,
}

impl ElasticsearchOutput {
    pub fn build(opts: &mut Options) -> Result<ElasticsearchOutput, Error> {
        let cfg = Config::from_options(opts)?;
        ElasticsearchOutput::new(cfg).map_err(|e| opts.error(format!("elasticsearch output: {e}")))
    }

    /// An output from a ready configuration.
    pub fn new(cfg: Config) -> Result<ElasticsearchOutput, client::ClientError> {
        let client = Client::new(
            &cfg.hosts,
            &cfg.tls,
            &cfg.auth,
            &cfg.custom_headers,
            cfg.http_compression,
            cfg.timeout,
            cfg.resurrect_delay,
        )?;
        Ok(ElasticsearchOutput {
            inflight: Semaphore::new(cfg.max_inflight),
            client,
            cfg,
            template_installed: OnceCell::new(),
        })
    }

    /// What the cluster needs before the first write, in Logstash's order: the
    /// template, then ILM's policy and alias. An error is a reason to retry the batch
    /// later (and to try the setup again then).
    async fn prepare(&self) -> Result<(), Reason> {
        self.install_template().await?;
        if let Some(ilm) = &self.cfg.ilm {
            self.setup_ilm(ilm).await?;
        }
        Ok(())
    }

    /// Creates the default ILM policy when missing (a policy of another name must
    /// exist already), then the rollover alias's first index when the alias is
    /// missing, as Logstash's elasticsearch output does.
    async fn setup_ilm(&self, ilm: &config::Ilm) -> Result<(), Reason> {
        use reqwest::Method;
        let policy_path = format!("/_ilm/policy/{}", encode_path_segment(&ilm.policy));
        let found = self
            .request(Method::GET, &policy_path, None, "read ILM policy")
            .await?;
        match found.status {
            200..=299 => {}
            404 if ilm.policy == config::DEFAULT_ILM_POLICY => {
                let body = serde_json::to_vec(&config::Ilm::default_policy()).unwrap_or_default();
                let r = self
                    .request(Method::PUT, &policy_path, Some(body), "create ILM policy")
                    .await?;
                check(&r, "create ILM policy", &ilm.policy)?;
                tracing::info!(ilm_policy = %ilm.policy, "created the default ILM policy");
            }
            404 => {
                return Err(Reason::http(
                    404,
                    format!(
                        "the ILM policy {} does not exist in the cluster: create it (only the default {} is created by the output)",
                        ilm.policy,
                        config::DEFAULT_ILM_POLICY
                    ),
                ))
            }
            _ => check(&found, "read ILM policy", &ilm.policy)?,
        }
        let alias_path = format!("/{}", encode_path_segment(&ilm.rollover_alias));
        let exists = self
            .request(
                Method::HEAD,
                &alias_path,
                None,
                "look up the rollover alias",
            )
            .await?;
        if exists.status == 200 {
            return Ok(());
        }
        let target = ilm.bootstrap_index();
        let body = serde_json::json!({"aliases": {&ilm.rollover_alias: {"is_write_index": true}}});
        let r = self
            .request(
                Method::PUT,
                &format!("/{}", encode_path_segment(&target)),
                Some(serde_json::to_vec(&body).unwrap_or_default()),
                "create the rollover alias",
            )
            .await?;
        if r.status == 400
            && String::from_utf8_lossy(&r.body).contains("resource_already_exists_exception")
        {
            // Another writer created it between the lookup and here.
            return Ok(());
        }
        check(&r, "create the rollover alias", &ilm.rollover_alias)?;
        tracing::info!(rollover_alias = %ilm.rollover_alias, index = %target, "created the rollover alias and its first index");
        Ok(())
    }

    /// One setup request; a transport failure is a reason to retry.
    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        what: &str,
    ) -> Result<client::Response, Reason> {
        self.client
            .json(method, path, body)
            .await
            .map_err(|e| Reason::new(e.reason(), format!("cannot {what}: {e}")))
    }

    /// Installs the index template; an error is a reason to retry the batch later.
    async fn install_template(&self) -> Result<(), Reason> {
        let Some(t) = &self.cfg.template else {
            return Ok(());
        };
        let endpoint = t.endpoint();
        let path = format!("/{endpoint}/{}", t.name);
        if !t.overwrite {
            if let Ok(r) = self.client.json(reqwest::Method::HEAD, &path, None).await {
                if r.status == 200 {
                    tracing::info!(template = %t.name, "index template exists; not overwriting it");
                    return Ok(());
                }
            }
        }
        let body = serde_json::to_vec(&t.body).unwrap_or_default();
        match self
            .client
            .json(reqwest::Method::PUT, &path, Some(body))
            .await
        {
            Ok(r) if (200..300).contains(&r.status) => {
                tracing::info!(template = %t.name, endpoint, "installed index template");
                Ok(())
            }
            Ok(r) => Err(Reason::http(
                r.status,
                format!(
                    "cannot install index template {}: HTTP {}: {}",
                    t.name,
                    r.status,
                    String::from_utf8_lossy(&r.body)
                        .chars()
                        .take(300)
                        .collect::<String>()
                ),
            )),
            Err(e) => Err(Reason::new(
                e.reason(),
                format!("cannot install index template {}: {e}", t.name),
            )),
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
            let invalid =
                |action: Action, index: String, code: &'static str, message: String| Rejection {
                    reason: Reason::new(code, message),
                    status: 0,
                    action: action.as_str(),
                    target: index,
                };
            let Some(action) = Action::parse(&action_text) else {
                let message = format!("unknown bulk action `{action_text}`");
                rejected.push((i, invalid(Action::Index, index, "invalid_action", message)));
                continue;
            };
            let id = self.cfg.document_id.as_ref().map(|t| t.render(e));
            if id.is_none() && matches!(action, Action::Update | Action::Delete) {
                let message = format!("action `{}` needs a document_id", action.as_str());
                rejected.push((i, invalid(action, index, "invalid_action", message)));
                continue;
            }
            let routing = self.cfg.routing.as_ref().map(|t| t.render(e));
            let pipeline = self
                .cfg
                .pipeline
                .as_ref()
                .map(|t| t.render(e))
                .filter(|p| !p.is_empty());
            let version = match &self.cfg.version {
                None => None,
                Some(t) => {
                    let text = t.render(e);
                    match text.trim().parse::<i64>() {
                        Ok(v) if v >= 0 => Some(v),
                        _ => {
                            let message = format!(
                                "version `{text}` (from `{}`) is not a non-negative integer",
                                t.source()
                            );
                            rejected.push((i, invalid(action, index, "invalid_version", message)));
                            continue;
                        }
                    }
                }
            };
            // An update's body: the event as a partial document, or as the script's
            // parameter; `upsert` rendered per event.
            let upsert = match (&self.cfg.upsert, action) {
                (Some(t), Action::Update) => {
                    let text = t.render(e);
                    match serde_json::from_str::<serde_json::Value>(&text) {
                        Ok(v) if v.is_object() => Some(text.into_owned()),
                        _ => {
                            let message =
                                format!("upsert `{}` does not render to a JSON object", t.source());
                            rejected.push((i, invalid(action, index, "invalid_upsert", message)));
                            continue;
                        }
                    }
                }
                _ => None,
            };
            let start = body.len();
            bulk::write_action(
                &mut body,
                &Meta {
                    action,
                    index: &index,
                    id: id.as_deref(),
                    routing: routing.as_deref(),
                    pipeline: pipeline.as_deref(),
                    version,
                    version_type: self.cfg.version_type,
                    retry_on_conflict: Some(self.cfg.retry_on_conflict),
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
                Action::Update => self.write_update(&mut body, event, upsert.as_deref()),
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
                external_version: version.is_some()
                    && self.cfg.version_type.is_some_and(VersionType::is_external),
            });
        }
        (body, docs, rejected)
    }

    /// An update's source line, as Logstash builds it: `{"doc": event}` (with
    /// `doc_as_upsert` or `upsert`), or with a `script`, the event as the script's
    /// `params.<script_var_name>` and the upsert the script options ask for.
    fn write_update(&self, body: &mut Vec<u8>, event: &Event, upsert: Option<&str>) {
        let Some(script) = &self.cfg.script else {
            body.extend_from_slice(b"{\"doc\":");
            event.write_json(body);
            if self.cfg.doc_as_upsert {
                body.extend_from_slice(b",\"doc_as_upsert\":true");
            } else if let Some(u) = upsert {
                body.extend_from_slice(b",\"upsert\":");
                body.extend_from_slice(u.as_bytes());
            }
            body.push(b'}');
            return;
        };
        let json = |body: &mut Vec<u8>, s: &str| {
            // Serializing a &str into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *body, s);
        };
        body.extend_from_slice(b"{\"script\":{\"params\":{");
        json(body, &script.var_name);
        body.push(b':');
        event.write_json(body);
        body.push(b'}');
        let text = script.script.render(event);
        match script.kind {
            // Elasticsearch 6 renamed `inline` to `source`; OpenSearch knows only that.
            ScriptKind::Inline => body.extend_from_slice(b",\"source\":"),
            ScriptKind::Indexed => body.extend_from_slice(b",\"id\":"),
        }
        json(body, &text);
        // A stored script has its language already; the cluster refuses one given.
        if let (Some(lang), ScriptKind::Inline) = (&script.lang, script.kind) {
            body.extend_from_slice(b",\"lang\":");
            json(body, lang);
        }
        body.push(b'}');
        if script.scripted_upsert {
            body.extend_from_slice(b",\"scripted_upsert\":true,\"upsert\":{}");
        } else if self.cfg.doc_as_upsert {
            body.extend_from_slice(b",\"upsert\":");
            event.write_json(body);
        } else if let Some(u) = upsert {
            body.extend_from_slice(b",\"upsert\":");
            body.extend_from_slice(u.as_bytes());
        }
        body.push(b'}');
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

    /// One attempt at the documents `docs` (indices into `all`): their outcomes, by doc
    /// index. A 413 splits the request in two and both halves are sent at once: it is
    /// the server's size limit, not a failure to retry.
    async fn attempt(&self, body: &[u8], all: &[Doc], docs: Vec<usize>) -> Vec<(usize, Outcome)> {
        let mut out = Vec::with_capacity(docs.len());
        let mut groups = vec![docs];
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
            let retry_all = |reason: Reason, out: &mut Vec<(usize, Outcome)>| {
                out.extend(pending.iter().map(|&d| (d, Outcome::retry(reason.clone()))));
            };
            match result {
                Ok(resp) if resp.status == 413 && pending.len() > 1 => {
                    tracing::warn!(
                        documents = pending.len(),
                        bytes = buf.len(),
                        "bulk request too large (HTTP 413): splitting it"
                    );
                    let mut first = pending;
                    let second = first.split_off(first.len() / 2);
                    groups.push(second);
                    groups.push(first);
                }
                Ok(resp) if resp.status == 413 => {
                    m.items
                        .get_or_create(&metrics::label("status", "413"))
                        .inc();
                    let doc = &all[pending[0]];
                    out.push((pending[0], too_large(doc)));
                }
                Ok(resp) => match bulk::parse_response(&resp.body) {
                    Ok(items) if items.len() == pending.len() => {
                        let mut superseded = 0usize;
                        for (&d, item) in pending.iter().zip(items.iter()) {
                            m.items
                                .get_or_create(&metrics::label("status", item.status.to_string()))
                                .inc();
                            let doc = &all[d];
                            superseded += usize::from(doc.external_version && item.status == 409);
                            out.push((d, bulk::outcome(doc, item, &self.cfg.dlq_custom_codes)));
                        }
                        if superseded > 0 {
                            // Counted under the items metric with status 409; a
                            // warning as in Logstash, but one per response.
                            tracing::warn!(
                                documents = superseded,
                                "elasticsearch output: documents not written: the cluster holds the same or a newer external version (HTTP 409)"
                            );
                        }
                    }
                    Ok(items) => {
                        m.request_failures
                            .get_or_create(&metrics::label("reason", "bad_response"))
                            .inc();
                        let message = format!(
                            "bulk response has {} items for {} documents",
                            items.len(),
                            pending.len()
                        );
                        retry_all(Reason::new("bad_response", message), &mut out);
                    }
                    Err(e) => {
                        m.request_failures
                            .get_or_create(&metrics::label("reason", "bad_response"))
                            .inc();
                        let message = format!("cannot read the bulk response: {e}");
                        retry_all(Reason::new("bad_response", message), &mut out);
                    }
                },
                Err(e) => {
                    m.request_failures
                        .get_or_create(&metrics::label("reason", e.reason()))
                        .inc();
                    retry_all(request_failed(&e), &mut out);
                }
            }
        }
        out
    }
}

/// The reason of a bulk request that failed as a whole, with a hint when the user has
/// something to fix.
fn request_failed(e: &RequestError) -> Reason {
    let message = match e.hint() {
        Some(hint) => format!("bulk request failed: {e} ({hint})"),
        None => format!("bulk request failed: {e}"),
    };
    Reason::new(e.reason(), message)
}

/// A single document the server will never take (HTTP 413 on its own).
fn too_large(doc: &Doc) -> Outcome {
    Outcome::Reject(Rejection {
        reason: Reason::http(413, "document larger than the server accepts (HTTP 413)"),
        status: 413,
        action: doc.action.as_str(),
        target: doc.index.clone(),
    })
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
    async fn send(&self, events: &[&Event]) -> Result<Outcomes, OutputError> {
        if events.is_empty() {
            return Ok(Outcomes::Delivered);
        }
        if let Err(reason) = self
            .template_installed
            .get_or_try_init(|| self.prepare())
            .await
        {
            return Ok(Outcomes::retry_all(reason));
        }
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
        let attempts = chunks.into_iter().map(|c| self.attempt(&body, &docs, c));
        let results = futures::future::join_all(attempts).await;

        let mut outcomes = vec![Outcome::Delivered; events.len()];
        let mut all_delivered = rejected.is_empty();
        for (i, rejection) in rejected {
            outcomes[i] = Outcome::Reject(rejection);
        }
        for (d, outcome) in results.into_iter().flatten() {
            all_delivered &= outcome == Outcome::Delivered;
            outcomes[docs[d].event] = outcome;
        }
        Ok(if all_delivered {
            Outcomes::Delivered
        } else {
            Outcomes::Each(outcomes)
        })
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.cfg.retry
    }

    fn dead_letter_dir(&self) -> Option<&std::path::Path> {
        self.cfg.dlq_dir.as_deref()
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value as Json};

    fn output(body: &str) -> ElasticsearchOutput {
        let mut opts = Options::from_text("elasticsearch", "output", body).unwrap();
        let out = ElasticsearchOutput::build(&mut opts).unwrap();
        opts.finish().unwrap();
        out
    }

    fn event(fields: &[(&str, Value)]) -> Event {
        let mut e = Event::new();
        for (k, v) in fields {
            e.insert_field(*k, v.clone());
        }
        e
    }

    /// The action line and source line of each encoded document.
    fn encoded(out: &ElasticsearchOutput, events: &[Event]) -> (Vec<Json>, Vec<Rejected>) {
        let refs: Vec<&Event> = events.iter().collect();
        let (body, _, rejected) = out.encode(&refs);
        let text = String::from_utf8(body).unwrap();
        let lines = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (lines, rejected)
    }

    #[test]
    fn scripted_updates_carry_the_event_as_a_script_parameter() {
        let out = output(
            r#"action => update document_id => "%{id}" script => "ctx._source.n += params.%{var}.n"
               script_var_name => "e" scripted_upsert => true retry_on_conflict => 3"#,
        );
        let e = event(&[
            ("id", Value::from("a1")),
            ("var", Value::from("e")),
            ("n", Value::Int(2)),
        ]);
        let (lines, rejected) = encoded(&out, &[e]);
        assert!(rejected.is_empty());
        assert_eq!(lines[0]["update"]["_id"], "a1");
        assert_eq!(lines[0]["update"]["retry_on_conflict"], 3);
        let src = &lines[1];
        assert_eq!(src["script"]["source"], "ctx._source.n += params.e.n");
        assert_eq!(src["script"]["lang"], "painless");
        assert_eq!(src["script"]["params"]["e"]["n"], 2);
        assert_eq!(src["scripted_upsert"], true);
        assert_eq!(src["upsert"], json!({}));
        assert!(src.get("doc").is_none());
    }

    #[test]
    fn indexed_scripts_name_the_stored_script_and_upserts_follow_the_options() {
        let e = event(&[("id", Value::from("a1")), ("n", Value::Int(2))]);
        let out = output(
            r#"action => update document_id => "%{id}" script => "bump" script_type => indexed
               doc_as_upsert => true"#,
        );
        let (lines, _) = encoded(&out, std::slice::from_ref(&e));
        assert_eq!(lines[1]["script"]["id"], "bump");
        assert!(lines[1]["script"].get("lang").is_none());
        assert_eq!(lines[1]["upsert"]["n"], 2, "doc_as_upsert: the event");
        let out = output(
            r#"action => update document_id => "%{id}" script => "x" script_lang => ""
               upsert => '{"n": %{n}, "first": true}'"#,
        );
        let (lines, _) = encoded(&out, std::slice::from_ref(&e));
        assert!(lines[1]["script"].get("lang").is_none());
        assert_eq!(lines[1]["upsert"], json!({"n": 2, "first": true}));
        // Without a script: the event is the partial document, `upsert` the new one.
        let out = output(r#"action => update document_id => "%{id}" upsert => '{"n": 0}'"#);
        let (lines, _) = encoded(&out, std::slice::from_ref(&e));
        assert_eq!(lines[1]["doc"]["n"], 2);
        assert_eq!(lines[1]["upsert"], json!({"n": 0}));
        // An upsert that does not render to JSON is a dead letter, not a broken request.
        let out = output(r#"action => update document_id => "%{id}" upsert => '{"n": %{n}'"#);
        let (lines, rejected) = encoded(&out, std::slice::from_ref(&e));
        assert!(lines.is_empty());
        assert_eq!(rejected[0].1.reason.code, "invalid_upsert");
    }

    #[test]
    fn external_versions_are_rendered_per_event_and_checked() {
        let out = output(r#"document_id => "%{id}" version => "%{[v]}" version_type => external"#);
        let good = event(&[("id", Value::from("a")), ("v", Value::Int(17))]);
        let bad = event(&[("id", Value::from("b")), ("v", Value::from("seventeen"))]);
        let missing = event(&[("id", Value::from("c"))]);
        let (lines, rejected) = encoded(&out, &[good, bad, missing]);
        assert_eq!(lines.len(), 2, "one document encoded");
        assert_eq!(lines[0]["index"]["version"], 17);
        assert_eq!(lines[0]["index"]["version_type"], "external");
        assert_eq!(rejected.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 2]);
        assert!(rejected
            .iter()
            .all(|(_, r)| r.reason.code == "invalid_version"));
    }
}
