//! `http` output: sends events to any HTTP endpoint, as Logstash's `http` output does.
//!
//! `format => json` (default) and `message` send one request per event;
//! `json_batch` sends the events that render the same `url` as one JSON array. Each
//! response status becomes an outcome:
//!
//! - 2xx and `ignorable_codes`: delivered;
//! - `retryable_codes` (429, 500, 502, 503, 504): retry, honouring `Retry-After`
//!   (with `retry_failed => false`: reject instead);
//! - any other status: reject, to the dead letter queue with the status and the body.
//!
//! A connection that cannot be made is tried again at once up to `automatic_retries`
//! times for idempotent methods (any method with `retry_non_idempotent => true`), then
//! left to the delivery engine's back-off like every other failed exchange.

use super::http_client::{self, ClientOptions, Response, TransportError};
use super::{Outcome, Outcomes, Output, OutputError, Reason, Rejection, RetryPolicy};
use crate::config::Error;
use crate::event::sprintf::Template;
use crate::event::Event;
use crate::plugin::Options;
use reqwest::header::{HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::Method;
use tokio::sync::Semaphore;

/// How events become request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    JsonBatch,
    Message,
}

pub struct HttpOutput {
    client: reqwest::Client,
    url: Template,
    method: Method,
    /// Lowercase method, for dead letters.
    action: &'static str,
    format: Format,
    message: Option<Template>,
    content_type: HeaderValue,
    headers: Vec<(HeaderName, Template)>,
    mapping: Option<Vec<(String, Template)>>,
    retryable_codes: Vec<u16>,
    ignorable_codes: Vec<u16>,
    retry_failed: bool,
    retry_non_idempotent: bool,
    automatic_retries: usize,
    retry: RetryPolicy,
    /// `http_compression`: bodies are gzipped and sent with `Content-Encoding: gzip`.
    compression: bool,
    /// At most `pool_max` requests in flight.
    inflight: Semaphore,
}

fn codes(opts: &mut Options, name: &str, default: &[u16]) -> Result<Vec<u16>, Error> {
    let pos = opts.value_pos(name);
    let Some(list) = opts.string_list(name)? else {
        return Ok(default.to_vec());
    };
    list.iter()
        .map(|c| {
            c.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| {
                    opts.option_error(name, &pos, format!("`{c}` is not an HTTP status"))
                })
        })
        .collect()
}

fn template(
    opts: &Options,
    name: &str,
    pos: &crate::config::ast::Pos,
    text: &str,
) -> Result<Template, Error> {
    Template::parse(text).map_err(|e| opts.option_error(name, pos, e))
}

impl HttpOutput {
    pub fn build(opts: &mut Options) -> Result<HttpOutput, Error> {
        let url = opts
            .template("url")?
            .ok_or_else(|| opts.error("http output requires option `url`"))?;
        let method_pos = opts.value_pos("http_method");
        let method_text = opts.required_string("http_method")?;
        let (method, action) = match method_text.to_ascii_lowercase().as_str() {
            "put" => (Method::PUT, "put"),
            "post" => (Method::POST, "post"),
            "patch" => (Method::PATCH, "patch"),
            "delete" => (Method::DELETE, "delete"),
            "get" => (Method::GET, "get"),
            "head" => (Method::HEAD, "head"),
            _ => {
                return Err(opts.option_error(
                    "http_method",
                    &method_pos,
                    format!("expected put, post, patch, delete, get or head, got `{method_text}`"),
                ))
            }
        };
        let format_pos = opts.value_pos("format");
        let format = match opts.string_or("format", "json")?.as_str() {
            "json" => Format::Json,
            "json_batch" => Format::JsonBatch,
            "message" => Format::Message,
            "form" => {
                return Err(opts.option_error(
                    "format",
                    &format_pos,
                    "`form` is not supported; use json, json_batch or message",
                ))
            }
            other => {
                return Err(opts.option_error(
                    "format",
                    &format_pos,
                    format!("expected json, json_batch or message, got `{other}`"),
                ))
            }
        };
        let message = opts.template("message")?;
        if format == Format::Message && message.is_none() {
            return Err(opts.option_error(
                "format",
                &format_pos,
                "`format => message` needs the `message` option",
            ));
        }
        let ct_pos = opts.value_pos("content_type");
        let content_type = opts.string("content_type")?.unwrap_or_else(|| {
            match format {
                Format::Json | Format::JsonBatch => "application/json",
                Format::Message => "text/plain",
            }
            .to_string()
        });
        let content_type = HeaderValue::from_str(&content_type)
            .map_err(|_| opts.option_error("content_type", &ct_pos, "not a valid header value"))?;
        let headers_pos = opts.value_pos("headers");
        let mut headers = Vec::new();
        for (k, v) in opts.string_map("headers")?.unwrap_or_default() {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                opts.option_error(
                    "headers",
                    &headers_pos,
                    format!("`{k}` is not a header name"),
                )
            })?;
            headers.push((name, template(opts, "headers", &headers_pos, &v)?));
        }
        let mapping_pos = opts.value_pos("mapping");
        let mapping = match opts.string_map("mapping")? {
            None => None,
            Some(pairs) => Some(
                pairs
                    .into_iter()
                    .map(|(k, v)| Ok((k, template(opts, "mapping", &mapping_pos, &v)?)))
                    .collect::<Result<Vec<_>, Error>>()?,
            ),
        };
        let retryable_codes = codes(opts, "retryable_codes", &[429, 500, 502, 503, 504])?;
        let ignorable_codes = codes(opts, "ignorable_codes", &[])?;
        let retry_failed = opts.bool_or("retry_failed", true)?;
        let retry_non_idempotent = opts.bool_or("retry_non_idempotent", false)?;
        let automatic_retries = opts.usize_or("automatic_retries", 1)?;
        let retry = RetryPolicy::from_options(opts)?;
        let client_options = ClientOptions::from_options(opts)?;
        let compression = opts.bool_or("http_compression", false)?;
        let client = client_options
            .build()
            .map_err(|e| opts.error(format!("http output: {e}")))?;
        Ok(HttpOutput {
            client,
            compression,
            url,
            method,
            action,
            format,
            message,
            content_type,
            headers,
            mapping,
            retryable_codes,
            ignorable_codes,
            retry_failed,
            retry_non_idempotent,
            automatic_retries,
            retry,
            inflight: Semaphore::new(client_options.pool_max),
        })
    }

    /// Writes the JSON of one event (or of its `mapping`).
    fn write_json(&self, e: &Event, out: &mut Vec<u8>) {
        match &self.mapping {
            None => e.write_json(out),
            Some(mapping) => {
                let m: serde_json::Map<String, serde_json::Value> = mapping
                    .iter()
                    .map(|(k, t)| (k.clone(), t.render(e).into_owned().into()))
                    .collect();
                // Serializing a map of strings into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, &m);
            }
        }
    }

    fn body(&self, events: &[&Event]) -> Vec<u8> {
        let mut out = Vec::with_capacity(events.len() * 256);
        match self.format {
            Format::JsonBatch => {
                out.push(b'[');
                for (i, e) in events.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.write_json(e, &mut out);
                }
                out.push(b']');
            }
            Format::Json => {
                if let Some(e) = events.first() {
                    self.write_json(e, &mut out);
                }
            }
            Format::Message => {
                if let (Some(e), Some(m)) = (events.first(), &self.message) {
                    out.extend_from_slice(m.render(e).as_bytes());
                }
            }
        }
        out
    }

    fn idempotent(&self) -> bool {
        self.retry_non_idempotent || !matches!(self.method, Method::POST | Method::PATCH)
    }

    /// One request for `events` (all rendering `url`), its headers taken from the first.
    async fn request(&self, url: &str, events: &[&Event]) -> Outcome {
        let mut body = self.body(events);
        if self.compression {
            body = http_client::gzip(&body);
        }
        let mut tries = 0;
        let result = loop {
            let mut req = self
                .client
                .request(self.method.clone(), url)
                .header(CONTENT_TYPE, self.content_type.clone());
            if self.compression {
                req = req.header(CONTENT_ENCODING, "gzip");
            }
            if let Some(first) = events.first() {
                for (name, value) in &self.headers {
                    if let Ok(v) = HeaderValue::from_str(&value.render(first)) {
                        req = req.header(name.clone(), v);
                    }
                }
            }
            let result = {
                // Never closed, so acquiring cannot fail.
                let _permit = self.inflight.acquire().await;
                http_client::exchange(req.body(body.clone())).await
            };
            match result {
                Err(TransportError { connect: true, .. })
                    if tries < self.automatic_retries && self.idempotent() =>
                {
                    tries += 1;
                }
                other => break other,
            }
        };
        self.outcome(url, result)
    }

    /// The outcome of an exchange with `url`.
    fn outcome(&self, url: &str, result: Result<Response, TransportError>) -> Outcome {
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                let reason = Reason::new(
                    e.reason.code,
                    format!("request to {url} failed: {}", e.reason.message),
                );
                return Outcome::retry(reason);
            }
        };
        let status = resp.status;
        if (200..300).contains(&status) || self.ignorable_codes.contains(&status) {
            return Outcome::Delivered;
        }
        let reason = Reason::http(
            status,
            format!("{url} answered HTTP {status}: {}", resp.body_excerpt()),
        );
        if self.retry_failed && self.retryable_codes.contains(&status) {
            return Outcome::Retry {
                reason,
                after: resp.retry_after,
            };
        }
        Outcome::Reject(Rejection {
            reason,
            status,
            action: self.action,
            target: url.to_string(),
        })
    }
}

#[async_trait::async_trait]
impl Output for HttpOutput {
    async fn send(&self, events: &[&Event]) -> Result<Outcomes, OutputError> {
        let urls: Vec<String> = events
            .iter()
            .map(|e| self.url.render(e).into_owned())
            .collect();
        let outcomes: Vec<Outcome> = match self.format {
            Format::JsonBatch => {
                // One request per distinct url, in first-seen order.
                let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
                for (i, u) in urls.iter().enumerate() {
                    match groups.iter_mut().find(|(g, _)| *g == u.as_str()) {
                        Some((_, members)) => members.push(i),
                        None => groups.push((u, vec![i])),
                    }
                }
                let requests = groups.iter().map(|(url, members)| {
                    let batch: Vec<&Event> = members.iter().map(|&i| events[i]).collect();
                    async move { self.request(url, &batch).await }
                });
                let results = futures::future::join_all(requests).await;
                let mut outcomes = vec![Outcome::Delivered; events.len()];
                for ((_, members), outcome) in groups.iter().zip(results) {
                    for &i in members {
                        outcomes[i] = outcome.clone();
                    }
                }
                outcomes
            }
            Format::Json | Format::Message => {
                let requests = events
                    .iter()
                    .zip(urls.iter())
                    .map(|(e, url)| async move { self.request(url, &[*e]).await });
                futures::future::join_all(requests).await
            }
        };
        Ok(if outcomes.iter().all(|o| *o == Outcome::Delivered) {
            Outcomes::Delivered
        } else {
            Outcomes::Each(outcomes)
        })
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Value;

    fn output(body: &str) -> Result<HttpOutput, Error> {
        HttpOutput::build(&mut Options::from_text("http", "output", body)?)
    }

    fn response(status: u16) -> Result<Response, TransportError> {
        Ok(Response {
            status,
            retry_after: (status == 429).then(|| std::time::Duration::from_secs(3)),
            body: bytes::Bytes::from_static(b"nope"),
        })
    }

    #[test]
    fn statuses_become_outcomes() {
        let o =
            output(r#"url => "http://x/" http_method => "post" ignorable_codes => [404]"#).unwrap();
        assert_eq!(o.outcome("u", response(200)), Outcome::Delivered);
        assert_eq!(o.outcome("u", response(404)), Outcome::Delivered);
        assert!(matches!(
            o.outcome("u", response(429)),
            Outcome::Retry { after: Some(a), .. } if a.as_secs() == 3
        ));
        for s in [500, 502, 503, 504] {
            assert!(
                matches!(o.outcome("u", response(s)), Outcome::Retry { .. }),
                "{s}"
            );
        }
        let Outcome::Reject(r) = o.outcome("u", response(400)) else {
            panic!("400 is not a reject");
        };
        assert_eq!((r.status, r.action, r.target.as_str()), (400, "post", "u"));
        assert!(r.reason.message.contains("nope"));
        let o = output(r#"url => "http://x/" http_method => "put" retry_failed => false"#).unwrap();
        assert!(matches!(o.outcome("u", response(503)), Outcome::Reject(_)));
    }

    #[test]
    fn options_are_checked() {
        assert!(
            output(r#"url => "http://x/""#).is_err(),
            "http_method is required"
        );
        assert!(output(r#"url => "http://x/" http_method => "fetch""#).is_err());
        assert!(output(r#"url => "http://x/" http_method => "post" format => "message""#).is_err());
        assert!(
            output(r#"url => "http://x/" http_method => "post" retryable_codes => [700]"#).is_err()
        );
        let o =
            output(r#"url => "http://x/" http_method => "post" format => "json_batch""#).unwrap();
        assert_eq!(o.content_type, "application/json");
        assert!(!o.idempotent());
    }

    #[test]
    fn json_batch_is_an_array_and_mapping_replaces_the_event() {
        let o = output(
            r#"url => "http://x/" http_method => "post" format => "json_batch"
               mapping => { "msg" => "%{message}!" }"#,
        )
        .unwrap();
        let mut a = Event::new();
        a.insert_field("message", Value::from("a"));
        let mut b = Event::new();
        b.insert_field("message", Value::from("b"));
        let body = o.body(&[&a, &b]);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, serde_json::json!([{"msg": "a!"}, {"msg": "b!"}]));
    }
}
