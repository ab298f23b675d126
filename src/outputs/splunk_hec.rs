//! `splunk_hec` output: events into Splunk through the HTTP Event Collector.
//!
//! Each event becomes an envelope `{"time": <epoch seconds>, "host", "source",
//! "sourcetype", "index", "event": {...}}`; a request is the envelopes concatenated
//! (Splunk's batch format), at most `max_request_bytes`, gzipped unless
//! `http_compression => false`. Events whose `url` renders differently go in separate
//! requests.
//!
//! With `use_ack => true` (indexer acknowledgement) every request carries the output's
//! `X-Splunk-Request-Channel`, the response's `ackId` is polled at
//! `/services/collector/ack`, and the events count as delivered only once Splunk says
//! they are indexed: a batch's ack then means "searchable", not "received". An ack
//! that does not come within `ack_timeout` makes the events retried (they may then be
//! indexed twice: at-least-once).
//!
//! Outcomes: 2xx delivered; 429, 5xx (503 is HEC's "server busy") and transport failures
//! retried; 401/403 (token missing, invalid or disabled) retried with back-off, since
//! fixing the token must not cost the events; 400 and 413 narrowed down to the events at
//! fault (each event of a refused request is sent alone) and those rejected to the dead
//! letter queue with HEC's answer (`Invalid data format`, `Incorrect index`, ...).

use super::http_client::{self, ClientOptions};
use super::{Outcome, Outcomes, Output, OutputError, Reason, Rejection, RetryPolicy};
use crate::config::Error;
use crate::event::sprintf::Template;
use crate::event::Event;
use crate::plugin::Options;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// HEC's default `max_content_length` in older Splunk versions; safe everywhere.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1 << 20;
const CHANNEL_HEADER: &str = "X-Splunk-Request-Channel";

pub struct SplunkHecOutput {
    client: reqwest::Client,
    url: Template,
    token: HeaderValue,
    index: Option<Template>,
    source: Option<Template>,
    sourcetype: Option<Template>,
    host: Option<Template>,
    gzip: bool,
    max_bytes: usize,
    /// With indexer acknowledgement: the channel, and how to poll.
    ack: Option<AckSettings>,
    retry: RetryPolicy,
    inflight: Semaphore,
}

#[derive(Debug, Clone)]
struct AckSettings {
    channel: String,
    poll_interval: Duration,
    timeout: Duration,
}

impl std::fmt::Debug for SplunkHecOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SplunkHecOutput")
            .field("url", &self.url.source())
            .field("token", &"<redacted>")
            .finish()
    }
}

impl SplunkHecOutput {
    pub fn build(opts: &mut Options) -> Result<SplunkHecOutput, Error> {
        let retry = RetryPolicy::from_options(opts)?;
        let url_pos = opts.value_pos("url");
        let url = opts
            .template("url")?
            .ok_or_else(|| opts.error("splunk_hec output: `url` is required"))?;
        if url.is_static() {
            let parsed = reqwest::Url::parse(url.source())
                .map_err(|e| opts.option_error("url", &url_pos, format!("is not a URL ({e})")))?;
            if !parsed.username().is_empty() || parsed.password().is_some() {
                return Err(opts.option_error(
                    "url",
                    &url_pos,
                    "must not hold credentials: give the HEC token in `token`",
                ));
            }
        }
        let token_text = opts
            .string("token")?
            .filter(|t| !t.is_empty())
            .ok_or_else(|| opts.error("splunk_hec output: `token` is required"))?;
        let mut token = HeaderValue::from_str(&format!("Splunk {token_text}"))
            .map_err(|_| opts.error("splunk_hec output: `token` has invalid characters"))?;
        token.set_sensitive(true);
        let index = opts.template("index")?;
        let source = opts.template("source")?;
        let sourcetype = opts.template("sourcetype")?;
        let host = opts.template("host")?;
        let gzip = opts.bool_or("http_compression", true)?;
        let max_bytes = opts
            .usize_or("max_request_bytes", DEFAULT_MAX_REQUEST_BYTES)?
            .max(1024);
        let use_ack = opts.bool_or("use_ack", false)?;
        let poll_interval = super::seconds(opts, "ack_poll_interval", Duration::from_secs(10))?
            .max(Duration::from_millis(10));
        let ack_timeout = super::seconds(opts, "ack_timeout", Duration::from_secs(300))?;
        let channel = opts
            .string("channel")?
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let client_options = ClientOptions::from_options(opts)?;
        let client = client_options
            .build()
            .map_err(|e| opts.error(format!("splunk_hec output: {e}")))?;
        Ok(SplunkHecOutput {
            client,
            url,
            token,
            index,
            source,
            sourcetype,
            host,
            gzip,
            max_bytes,
            ack: use_ack.then_some(AckSettings {
                channel,
                poll_interval,
                timeout: ack_timeout,
            }),
            retry,
            inflight: Semaphore::new(client_options.pool_max.min(16)),
        })
    }

    /// The envelope of one event.
    pub fn envelope(&self, e: &Event) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(b"{\"time\":");
        let time = e
            .timestamp()
            .map(|t| t.datetime().timestamp_millis() as f64 / 1000.0)
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis() as f64 / 1000.0);
        out.extend_from_slice(format!("{time:.3}").as_bytes());
        for (name, template) in [
            ("host", &self.host),
            ("source", &self.source),
            ("sourcetype", &self.sourcetype),
            ("index", &self.index),
        ] {
            if let Some(t) = template {
                let v = t.render(e);
                if !v.is_empty() {
                    out.extend_from_slice(b",\"");
                    out.extend_from_slice(name.as_bytes());
                    out.extend_from_slice(b"\":");
                    // Serializing a string into a Vec cannot fail.
                    let _ = serde_json::to_writer(&mut out, v.as_ref());
                }
            }
        }
        out.extend_from_slice(b",\"event\":");
        e.write_json(&mut out);
        out.push(b'}');
        out
    }

    fn rejection(&self, url: &str, status: u16, message: String) -> Rejection {
        Rejection {
            reason: Reason::http(status, message),
            status,
            action: "post",
            target: url.to_string(),
        }
    }

    /// One attempt at the events `idx` (indexes into `envelopes`) to `url`; a refused
    /// request of several events is narrowed down event by event.
    async fn send_group(
        &self,
        url: &str,
        envelopes: &[Vec<u8>],
        idx: &[usize],
    ) -> Vec<(usize, Outcome)> {
        match self.post(url, envelopes, idx).await {
            Posted::Refused { .. } if idx.len() > 1 => {
                let mut out = Vec::with_capacity(idx.len());
                for &i in idx {
                    let o = match self.post(url, envelopes, &[i]).await {
                        Posted::Refused { status, message } => {
                            Outcome::Reject(self.rejection(url, status, message))
                        }
                        Posted::Done(o) => o,
                    };
                    out.push((i, o));
                }
                out
            }
            Posted::Refused { status, message } => idx
                .iter()
                .map(|&i| {
                    (
                        i,
                        Outcome::Reject(self.rejection(url, status, message.clone())),
                    )
                })
                .collect(),
            Posted::Done(o) => idx.iter().map(|&i| (i, o.clone())).collect(),
        }
    }

    async fn post(&self, url: &str, envelopes: &[Vec<u8>], idx: &[usize]) -> Posted {
        let mut body = Vec::with_capacity(idx.iter().map(|&i| envelopes[i].len()).sum());
        for &i in idx {
            body.extend_from_slice(&envelopes[i]);
        }
        // A closed semaphore cannot happen: it is never closed.
        let permit = self.inflight.acquire().await;
        let mut req = self
            .client
            .post(url)
            .header(AUTHORIZATION, self.token.clone())
            .header(CONTENT_TYPE, "application/json");
        if let Some(ack) = &self.ack {
            req = req.header(CHANNEL_HEADER, &ack.channel);
        }
        if self.gzip {
            body = http_client::gzip(&body);
            req = req.header(CONTENT_ENCODING, "gzip");
        }
        let resp = match http_client::exchange(req.body(body)).await {
            Ok(r) => r,
            Err(e) => return Posted::Done(Outcome::retry(e.reason)),
        };
        drop(permit);
        let status = resp.status;
        let message = || format!("HTTP {status}: {}", resp.body_excerpt());
        match status {
            200..=299 => {
                let Some(ack) = &self.ack else {
                    return Posted::Done(Outcome::Delivered);
                };
                let reply: HecReply = serde_json::from_slice(&resp.body).unwrap_or_default();
                match reply.ack_id {
                    Some(id) => Posted::Done(self.wait_for_ack(url, ack, id).await),
                    None => Posted::Done(Outcome::retry(Reason::new(
                        "no_ack_id",
                        format!(
                            "HEC accepted the request but sent no ackId although use_ack is on (is indexer acknowledgement enabled for the token?): {}",
                            resp.body_excerpt()
                        ),
                    ))),
                }
            }
            400 | 413 => Posted::Refused {
                status,
                message: message(),
            },
            401 | 403 => Posted::Done(Outcome::retry(Reason::http(
                status,
                format!("{} (check the HEC token)", message()),
            ))),
            _ => Posted::Done(Outcome::Retry {
                reason: Reason::http(status, message()),
                after: resp.retry_after,
            }),
        }
    }

    /// Polls `/services/collector/ack` until Splunk reports `id` indexed.
    async fn wait_for_ack(&self, url: &str, ack: &AckSettings, id: u64) -> Outcome {
        let ack_url = match reqwest::Url::parse(url).and_then(|u| u.join("/services/collector/ack"))
        {
            Ok(u) => u,
            Err(e) => return Outcome::retry(Reason::new("ack", format!("ack URL: {e}"))),
        };
        let deadline = Instant::now() + ack.timeout;
        let body = serde_json::json!({ "acks": [id] }).to_string();
        loop {
            tokio::time::sleep(
                ack.poll_interval
                    .min(deadline.saturating_duration_since(Instant::now())),
            )
            .await;
            let req = self
                .client
                .post(ack_url.clone())
                .header(AUTHORIZATION, self.token.clone())
                .header(CHANNEL_HEADER, &ack.channel)
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
            match http_client::exchange(req).await {
                Ok(r) if r.status == 200 => {
                    let reply: AckReply = serde_json::from_slice(&r.body).unwrap_or_default();
                    if reply.acks.get(&id.to_string()).copied().unwrap_or(false) {
                        return Outcome::Delivered;
                    }
                }
                Ok(r) => {
                    tracing::debug!(status = r.status, "ack poll refused");
                }
                Err(e) => tracing::debug!(error = %e.reason, "ack poll failed"),
            }
            if Instant::now() >= deadline {
                return Outcome::retry(Reason::new(
                    "ack_timeout",
                    format!(
                        "Splunk did not acknowledge ackId {id} within {:?}; sending the events again",
                        ack.timeout
                    ),
                ));
            }
        }
    }
}

/// What one request came to.
enum Posted {
    Done(Outcome),
    /// 400 or 413: the request's events are at fault.
    Refused {
        status: u16,
        message: String,
    },
}

#[derive(serde::Deserialize, Default)]
struct HecReply {
    #[serde(rename = "ackId")]
    ack_id: Option<u64>,
}

#[derive(serde::Deserialize, Default)]
struct AckReply {
    #[serde(default)]
    acks: BTreeMap<String, bool>,
}

#[async_trait::async_trait]
impl Output for SplunkHecOutput {
    async fn send(&self, events: &[&Event]) -> Result<Outcomes, OutputError> {
        let envelopes: Vec<Vec<u8>> = events.iter().map(|e| self.envelope(e)).collect();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; events.len()];
        // Group by URL, then cut each group at the size limit.
        let mut by_url: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, e) in events.iter().enumerate() {
            by_url
                .entry(self.url.render(e).into_owned())
                .or_default()
                .push(i);
        }
        let mut requests: Vec<(String, Vec<usize>)> = Vec::new();
        for (url, idx) in by_url {
            let mut size = 0;
            let mut current: Vec<usize> = Vec::new();
            for i in idx {
                let len = envelopes[i].len();
                if len > self.max_bytes {
                    outcomes[i] = Some(Outcome::Reject(self.rejection(
                        &url,
                        413,
                        format!(
                            "event of {len} bytes is larger than max_request_bytes ({})",
                            self.max_bytes
                        ),
                    )));
                    continue;
                }
                if !current.is_empty() && size + len > self.max_bytes {
                    requests.push((url.clone(), std::mem::take(&mut current)));
                    size = 0;
                }
                size += len;
                current.push(i);
            }
            if !current.is_empty() {
                requests.push((url, current));
            }
        }
        let results = futures::future::join_all(
            requests
                .iter()
                .map(|(url, idx)| self.send_group(url, &envelopes, idx)),
        )
        .await;
        for (i, o) in results.into_iter().flatten() {
            outcomes[i] = Some(o);
        }
        Ok(Outcomes::from_slots(outcomes))
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(body: &str) -> Result<SplunkHecOutput, Error> {
        let mut o = Options::from_text("splunk_hec", "output", body)?;
        let out = SplunkHecOutput::build(&mut o)?;
        o.finish()?;
        Ok(out)
    }

    #[test]
    fn envelopes_carry_epoch_time_and_rendered_metadata() {
        let out = output(
            r#"url => "https://splunk:8088/services/collector/event" token => "abc"
               index => "sec" sourcetype => "_json" host => "%{host}" source => "%{missing}""#,
        )
        .unwrap();
        let mut e =
            Event::at(crate::event::Timestamp::from_unix(1_700_000_000, 250_000_000).unwrap());
        e.insert_field("host", "web-1");
        e.insert_field("message", "hi");
        e.metadata_mut()
            .insert("secret".into(), crate::event::Value::from("no"));
        let v: serde_json::Value = serde_json::from_slice(&out.envelope(&e)).unwrap();
        assert_eq!(v["time"].as_f64(), Some(1_700_000_000.25));
        assert_eq!(v["index"], "sec");
        assert_eq!(v["host"], "web-1");
        assert_eq!(v["sourcetype"], "_json");
        assert_eq!(v["event"]["message"], "hi");
        assert!(v["event"].get("@metadata").is_none());
        // A template whose field is missing renders as written, as Logstash does.
        assert_eq!(v["source"], "%{missing}");
    }

    #[test]
    fn token_is_required_and_never_printed() {
        let err = output(r#"url => "https://s:8088/services/collector/event""#)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("token"), "{err}");
        let out = output(r#"url => "https://s:8088/services/collector/event" token => "tok-123""#)
            .unwrap();
        assert!(!format!("{out:?}").contains("tok-123"));
        let err = output(r#"url => "https://u:pw@s:8088/services/collector" token => "t""#)
            .err()
            .unwrap()
            .to_string();
        assert!(!err.contains("pw@"), "{err}");
    }
}
