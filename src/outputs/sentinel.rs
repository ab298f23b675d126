//! `sentinel` output: events into a Microsoft Sentinel (Log Analytics) workspace table.
//!
//! Two APIs, chosen with `api`:
//!
//! - `logs_ingestion` (default): the Logs Ingestion API. `POST {dce_endpoint}/
//!   dataCollectionRules/{dcr_immutable_id}/streams/{stream_name}?api-version=2023-01-01`
//!   with a bearer token obtained from Entra ID by the OAuth2 client-credentials flow
//!   (a client secret, or a certificate whose key signs a client assertion). The token is
//!   cached and renewed before it expires. Bodies are JSON arrays of at most 1 MiB before
//!   compression (the API's limit per call, as Microsoft's SDK counts it), gzipped unless
//!   `compress_data => false`.
//! - `data_collector`: the legacy HTTP Data Collector API (retired by Microsoft in
//!   September 2026, still found in deployments being migrated). `POST
//!   {endpoint}/api/logs?api-version=2016-04-01` signed with the workspace's shared key
//!   (`Authorization: SharedKey {workspace}:{HMAC-SHA256 over the documented string}`);
//!   bodies of at most 30 MB.
//!
//! Records: the event's fields (`fields` keeps only those, `exclude_fields` removes
//! some), `@timestamp` as `TimeGenerated`, and nothing whose name starts with `@`
//! (`@metadata` included): such names cannot be table columns.
//!
//! Outcomes: 2xx delivered; 429, 5xx and transport failures retried (the engine honours
//! `Retry-After`); 401 drops the cached token and retries with a new one; 403 is retried
//! too (an app's role assignment takes up to 30 minutes to apply, and a wrong key is
//! fixed by the operator, not by dead-lettering every event meanwhile); 400 and 413 are
//! narrowed down to the records at fault (each record of a refused body is sent alone)
//! and those are rejected to the dead letter queue with the service's answer.

use super::http_client::{self, ClientOptions, Response};
use super::{Outcome, Outcomes, Output, OutputError, Reason, Rejection, RetryPolicy};
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::Event;
use crate::plugin::Options;
use base64::Engine as _;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

/// The Logs Ingestion API's limit per call, counted on the uncompressed JSON.
pub const LOGS_INGESTION_MAX_BYTES: usize = 1 << 20;
/// The Data Collector API's limit per post.
pub const DATA_COLLECTOR_MAX_BYTES: usize = 30 * 1000 * 1000;
/// The scope a Logs Ingestion token is asked for (Microsoft's samples spell it with two
/// slashes).
pub const MONITOR_SCOPE: &str = "https://monitor.azure.com//.default";
/// The column Log Analytics reads the record's time from.
pub const TIME_GENERATED: &str = "TimeGenerated";

/// A secret option value: never printed.
#[derive(Clone)]
struct Hidden(String);

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the app proves who it is to Entra ID.
#[derive(Clone)]
enum Credential {
    Secret(Hidden),
    /// A client assertion (JWT, RS256) signed with the certificate's key.
    Certificate {
        key: Box<jsonwebtoken::EncodingKey>,
        /// Base64url SHA-1 of the certificate (DER): the `x5t` header Entra ID matches.
        thumbprint: String,
    },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Secret(_) => f.write_str("Secret(<redacted>)"),
            Credential::Certificate { thumbprint, .. } => {
                write!(f, "Certificate(x5t={thumbprint}, key=<redacted>)")
            }
        }
    }
}

/// A bearer token and when to stop using it.
struct Token {
    value: String,
    renew_at: Instant,
}

struct LogsIngestion {
    url: String,
    token_url: String,
    client_id: String,
    credential: Credential,
    token: Mutex<Option<Token>>,
    gzip: bool,
}

struct DataCollector {
    url: String,
    workspace_id: String,
    key: Vec<u8>,
    log_type: String,
    time_generated_field: String,
    azure_resource_id: Option<String>,
}

enum Api {
    LogsIngestion(Box<LogsIngestion>),
    DataCollector(DataCollector),
}

pub struct SentinelOutput {
    client: reqwest::Client,
    api: Api,
    fields: Option<Vec<FieldRef>>,
    exclude_fields: Vec<FieldRef>,
    max_bytes: usize,
    retry: RetryPolicy,
    inflight: Semaphore,
}

impl std::fmt::Debug for SentinelOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = match &self.api {
            Api::LogsIngestion(a) => &a.url,
            Api::DataCollector(a) => &a.url,
        };
        f.debug_struct("SentinelOutput").field("url", url).finish()
    }
}

/// Takes the first of `names` that is set: Sluice's name first, then the names of
/// Microsoft's own Logstash plugins, so their configurations carry over.
fn string_alias(opts: &mut Options, names: &[&str]) -> Result<Option<String>, Error> {
    let mut found = None;
    for name in names {
        if let Some(v) = opts.string(name)? {
            found.get_or_insert(v);
        }
    }
    Ok(found)
}

fn required_alias(opts: &mut Options, names: &[&str], api: &str) -> Result<String, Error> {
    string_alias(opts, names)?
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            opts.error(format!(
                "sentinel output: `{}` is required with api => {api}",
                names[0]
            ))
        })
}

fn field_refs(opts: &mut Options, names: &[&str]) -> Result<Option<Vec<FieldRef>>, Error> {
    let mut list: Option<Vec<String>> = None;
    let mut pos = opts.pos().clone();
    for name in names {
        if opts.has(name) {
            pos = opts.value_pos(name);
        }
        if let Some(v) = opts.string_list(name)? {
            list.get_or_insert(v);
        }
    }
    let Some(list) = list else { return Ok(None) };
    list.iter()
        .map(|f| FieldRef::parse(f).map_err(|e| opts.option_error(names[0], &pos, e)))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Log-Type: letters, digits and underscores, at most 100 characters.
pub fn valid_log_type(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn endpoint_url(opts: &Options, name: &str, url: &str) -> Result<String, Error> {
    // The value is not quoted back: it may hold credentials.
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| opts.error(format!("sentinel output: `{name}` is not a URL ({e})")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(opts.error(format!(
            "sentinel output: `{name}` must not hold credentials"
        )));
    }
    Ok(url.trim_end_matches('/').to_string())
}

impl SentinelOutput {
    pub fn build(opts: &mut Options) -> Result<SentinelOutput, Error> {
        let retry = RetryPolicy::from_options(opts)?;
        let api_pos = opts.value_pos("api");
        let api_name = opts.string_or("api", "logs_ingestion")?;
        let fields = field_refs(opts, &["fields", "key_names"])?;
        let exclude_fields = field_refs(opts, &["exclude_fields"])?.unwrap_or_default();
        let (api, max_bytes) = match api_name.as_str() {
            "logs_ingestion" => (
                Api::LogsIngestion(Box::new(Self::logs_ingestion(opts)?)),
                LOGS_INGESTION_MAX_BYTES,
            ),
            "data_collector" => (
                Api::DataCollector(Self::data_collector(opts)?),
                DATA_COLLECTOR_MAX_BYTES,
            ),
            other => {
                return Err(opts.option_error(
                    "api",
                    &api_pos,
                    format!("expected logs_ingestion or data_collector, got `{other}`"),
                ))
            }
        };
        let max_pos = opts.value_pos("max_request_bytes");
        let max_bytes = match opts.int("max_request_bytes")? {
            None => max_bytes,
            Some(n) if n >= 1024 && n as usize <= max_bytes => n as usize,
            Some(_) => {
                return Err(opts.option_error(
                    "max_request_bytes",
                    &max_pos,
                    format!("expected 1024 to {max_bytes}, the API's limit"),
                ))
            }
        };
        let client_options = ClientOptions::from_options(opts)?;
        let client = client_options
            .build()
            .map_err(|e| opts.error(format!("sentinel output: {e}")))?;
        let inflight = Semaphore::new(client_options.pool_max.min(16));
        Ok(SentinelOutput {
            client,
            api,
            fields,
            exclude_fields,
            max_bytes,
            retry,
            inflight,
        })
    }

    fn logs_ingestion(opts: &mut Options) -> Result<LogsIngestion, Error> {
        const API: &str = "logs_ingestion";
        let endpoint = required_alias(opts, &["dce_endpoint", "data_collection_endpoint"], API)?;
        let endpoint = endpoint_url(opts, "dce_endpoint", &endpoint)?;
        let dcr = required_alias(opts, &["dcr_immutable_id"], API)?;
        let stream = required_alias(opts, &["stream_name", "dcr_stream_name"], API)?;
        let tenant = required_alias(opts, &["tenant_id"], API)?;
        let client_id = required_alias(opts, &["client_id", "client_app_Id"], API)?;
        let secret = string_alias(opts, &["client_secret", "client_app_secret"])?;
        let cert_pos = opts.value_pos("client_certificate");
        let certificate = opts.string("client_certificate")?;
        let key_path = opts.string("client_certificate_key")?;
        let authority = opts.string_or("authority_host", "https://login.microsoftonline.com")?;
        let authority = endpoint_url(opts, "authority_host", &authority)?;
        let gzip = match opts.bool("compress_data")? {
            Some(v) => v,
            None => opts.bool_or("http_compression", true)?,
        };
        let credential = match (secret, certificate) {
            (Some(s), None) => Credential::Secret(Hidden(s)),
            (None, Some(cert)) => {
                let cert_pem = std::fs::read(&cert).map_err(|e| {
                    opts.option_error(
                        "client_certificate",
                        &cert_pos,
                        format!("cannot read {cert}: {e}"),
                    )
                })?;
                let key_pem = match &key_path {
                    Some(k) => std::fs::read(k).map_err(|e| {
                        opts.option_error(
                            "client_certificate_key",
                            &cert_pos,
                            format!("cannot read {k}: {e}"),
                        )
                    })?,
                    None => cert_pem.clone(),
                };
                certificate_credential(&cert_pem, &key_pem)
                    .map_err(|e| opts.option_error("client_certificate", &cert_pos, e))?
            }
            (None, None) => {
                return Err(opts.error(
                    "sentinel output: give `client_secret` or `client_certificate` with api => logs_ingestion",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(opts.error(
                    "sentinel output: give either `client_secret` or `client_certificate`, not both",
                ))
            }
        };
        Ok(LogsIngestion {
            url: format!(
                "{endpoint}/dataCollectionRules/{dcr}/streams/{stream}?api-version=2023-01-01"
            ),
            token_url: format!("{authority}/{tenant}/oauth2/v2.0/token"),
            client_id,
            credential,
            token: Mutex::new(None),
            gzip,
        })
    }

    fn data_collector(opts: &mut Options) -> Result<DataCollector, Error> {
        const API: &str = "data_collector";
        let workspace_id = required_alias(opts, &["workspace_id"], API)?;
        let key_pos = opts.value_pos("shared_key");
        let key_text = required_alias(opts, &["shared_key", "workspace_key"], API)?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(key_text.trim())
            .map_err(|_| opts.option_error("shared_key", &key_pos, "is not valid base64"))?;
        let type_pos = opts.value_pos("log_type");
        let log_type = required_alias(opts, &["log_type", "custom_log_table_name"], API)?;
        if !valid_log_type(&log_type) {
            return Err(opts.option_error(
                "log_type",
                &type_pos,
                format!(
                    "`{log_type}`: use letters, digits and underscores, at most 100 characters"
                ),
            ));
        }
        let time_generated_field = opts.string_or("time_generated_field", TIME_GENERATED)?;
        let azure_resource_id = opts.string("azure_resource_id")?;
        let endpoint = match opts.string("endpoint")? {
            Some(e) => endpoint_url(opts, "endpoint", &e)?,
            None => format!("https://{workspace_id}.ods.opinsights.azure.com"),
        };
        Ok(DataCollector {
            url: format!("{endpoint}/api/logs?api-version=2016-04-01"),
            workspace_id,
            key,
            log_type,
            time_generated_field,
            azure_resource_id,
        })
    }

    /// The record sent for `e`: shaped by `fields`/`exclude_fields`, `@timestamp` as
    /// the time column, no `@` names.
    fn record(&self, e: &Event) -> serde_json::Map<String, serde_json::Value> {
        let time_column = match &self.api {
            Api::LogsIngestion(_) => TIME_GENERATED,
            Api::DataCollector(d) => d.time_generated_field.as_str(),
        };
        let mut shaped;
        let source = match &self.fields {
            None => e,
            Some(keep) => {
                shaped = Event::default();
                for r in keep {
                    if let Some(v) = e.get(r) {
                        shaped.insert(r, v.clone());
                    }
                }
                if let Some(ts) = e.timestamp() {
                    shaped.set_timestamp(ts);
                }
                &shaped
            }
        };
        let mut out = serde_json::Map::new();
        let excluded = |name: &str| {
            self.exclude_fields
                .iter()
                .any(|r| r.to_string().trim_matches(['[', ']']) == name)
        };
        for (k, v) in source.fields() {
            if k.starts_with('@') || excluded(k) {
                continue;
            }
            let mut value = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
            if let serde_json::Value::Object(m) = &mut value {
                for r in &self.exclude_fields {
                    remove_nested(m, k, r);
                }
            }
            out.insert(k.clone(), value);
        }
        if !out.contains_key(time_column) {
            if let Some(ts) = e.timestamp() {
                out.insert(
                    time_column.to_string(),
                    serde_json::Value::String(ts.to_iso8601()),
                );
            }
        }
        out
    }

    /// Encodes every event; a record larger than a whole request is rejected here.
    fn encode(&self, events: &[&Event]) -> (Vec<Vec<u8>>, Vec<Option<Outcome>>) {
        let mut records = Vec::with_capacity(events.len());
        let mut outcomes = vec![None; events.len()];
        for (i, e) in events.iter().enumerate() {
            let bytes = serde_json::to_vec(&self.record(e)).unwrap_or_default();
            if bytes.len() + 2 > self.max_bytes {
                outcomes[i] = Some(Outcome::Reject(self.rejection(
                    413,
                    format!(
                        "record of {} bytes is larger than the API accepts in one call ({} bytes)",
                        bytes.len(),
                        self.max_bytes
                    ),
                )));
            }
            records.push(bytes);
        }
        (records, outcomes)
    }

    fn rejection(&self, status: u16, message: String) -> Rejection {
        let (action, target) = match &self.api {
            Api::LogsIngestion(a) => ("logs_ingestion", a.url.clone()),
            Api::DataCollector(d) => ("data_collector", d.log_type.clone()),
        };
        Rejection {
            reason: Reason::http(status, message),
            status,
            action,
            target,
        }
    }

    /// Groups record indexes into request bodies under the size limit.
    fn chunks(&self, records: &[Vec<u8>], skip: &[Option<Outcome>]) -> Vec<Vec<usize>> {
        let mut chunks: Vec<Vec<usize>> = Vec::new();
        let mut size = 0;
        for (i, r) in records.iter().enumerate() {
            if skip[i].is_some() {
                continue;
            }
            let len = r.len() + 1;
            match chunks.last_mut() {
                Some(c) if size + len < self.max_bytes => {
                    c.push(i);
                    size += len;
                }
                _ => {
                    chunks.push(vec![i]);
                    size = len + 1;
                }
            }
        }
        chunks
    }

    /// One attempt at a chunk; on 400/413 for several records, each is tried alone so
    /// that only the records at fault are rejected.
    async fn send_chunk(&self, records: &[Vec<u8>], chunk: &[usize]) -> Vec<(usize, Outcome)> {
        let outcome = self.post(records, chunk).await;
        match outcome {
            Posted::Refused { .. } if chunk.len() > 1 => {
                let mut out = Vec::with_capacity(chunk.len());
                for &i in chunk {
                    let o = match self.post(records, &[i]).await {
                        Posted::Refused { status, message } => {
                            Outcome::Reject(self.rejection(status, message))
                        }
                        Posted::Done(o) => o,
                    };
                    out.push((i, o));
                }
                out
            }
            Posted::Refused { status, message } => chunk
                .iter()
                .map(|&i| (i, Outcome::Reject(self.rejection(status, message.clone()))))
                .collect(),
            Posted::Done(o) => chunk.iter().map(|&i| (i, o.clone())).collect(),
        }
    }

    async fn post(&self, records: &[Vec<u8>], chunk: &[usize]) -> Posted {
        let mut body = Vec::with_capacity(chunk.iter().map(|&i| records[i].len() + 1).sum());
        body.push(b'[');
        for (n, &i) in chunk.iter().enumerate() {
            if n > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&records[i]);
        }
        body.push(b']');
        // A closed semaphore cannot happen: it is never closed.
        let _permit = self.inflight.acquire().await;
        let request = match &self.api {
            Api::LogsIngestion(a) => {
                let token = match a.token(&self.client).await {
                    Ok(t) => t,
                    Err(reason) => return Posted::Done(Outcome::retry(reason)),
                };
                let mut req = self
                    .client
                    .post(&a.url)
                    .header(CONTENT_TYPE, "application/json")
                    .header(AUTHORIZATION, bearer(&token));
                if a.gzip {
                    body = http_client::gzip(&body);
                    req = req.header(CONTENT_ENCODING, "gzip");
                }
                req.body(body)
            }
            Api::DataCollector(d) => {
                let date = httpdate::fmt_http_date(std::time::SystemTime::now());
                let signature = shared_key_signature(&d.key, body.len(), &date);
                let mut req = self
                    .client
                    .post(&d.url)
                    .header(CONTENT_TYPE, "application/json")
                    .header("Log-Type", &d.log_type)
                    .header("x-ms-date", &date)
                    .header(
                        AUTHORIZATION,
                        sensitive(&format!("SharedKey {}:{signature}", d.workspace_id)),
                    )
                    .header("time-generated-field", &d.time_generated_field);
                if let Some(id) = &d.azure_resource_id {
                    req = req.header("x-ms-AzureResourceId", id);
                }
                req.body(body)
            }
        };
        match http_client::exchange(request).await {
            Err(e) => Posted::Done(Outcome::retry(e.reason)),
            Ok(resp) => self.classify(resp).await,
        }
    }

    async fn classify(&self, resp: Response) -> Posted {
        let status = resp.status;
        let message = || format!("HTTP {status}: {}", resp.body_excerpt());
        match status {
            200..=299 => Posted::Done(Outcome::Delivered),
            400 | 413 => Posted::Refused {
                status,
                message: message(),
            },
            401 => {
                if let Api::LogsIngestion(a) = &self.api {
                    // The token expired or was revoked early: fetch a new one next time.
                    *a.token.lock().await = None;
                }
                Posted::Done(Outcome::retry(Reason::http(status, message())))
            }
            403 => Posted::Done(Outcome::retry(Reason::http(
                status,
                format!(
                    "{} (check the app's Monitoring Metrics Publisher role on the data collection rule, or the workspace key)",
                    message()
                ),
            ))),
            _ => Posted::Done(Outcome::Retry {
                reason: Reason::http(status, message()),
                after: resp.retry_after,
            }),
        }
    }
}

/// What one request came to.
enum Posted {
    Done(Outcome),
    /// 400 or 413: the body's records are at fault.
    Refused {
        status: u16,
        message: String,
    },
}

fn sensitive(value: &str) -> HeaderValue {
    let mut v = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

fn bearer(token: &str) -> HeaderValue {
    sensitive(&format!("Bearer {token}"))
}

/// Removes `r` from a record when it points inside the top-level field `top`.
fn remove_nested(m: &mut serde_json::Map<String, serde_json::Value>, top: &str, r: &FieldRef) {
    let path = r.to_string();
    let parts: Vec<&str> = path
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split("][")
        .collect();
    if parts.len() < 2 || parts[0] != top {
        return;
    }
    let mut cur = m;
    for p in &parts[1..parts.len() - 1] {
        match cur.get_mut(*p) {
            Some(serde_json::Value::Object(next)) => cur = next,
            _ => return,
        }
    }
    cur.remove(parts[parts.len() - 1]);
}

/// The Data Collector API's signature: Base64(HMAC-SHA256(key, "POST\n{length}\n
/// application/json\nx-ms-date:{date}\n/api/logs")), the length in bytes of the body.
pub fn shared_key_signature(key: &[u8], content_length: usize, date: &str) -> String {
    use hmac::{Mac, SimpleHmac};
    let text = format!("POST\n{content_length}\napplication/json\nx-ms-date:{date}\n/api/logs");
    // HMAC accepts keys of any length.
    let mut mac = match SimpleHmac::<sha2::Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn certificate_credential(cert_pem: &[u8], key_pem: &[u8]) -> Result<Credential, String> {
    use sha1::Digest as _;
    let certs = pem::parse_many(cert_pem).map_err(|e| format!("not PEM: {e}"))?;
    let cert = certs
        .iter()
        .find(|p| p.tag() == "CERTIFICATE")
        .ok_or("no CERTIFICATE block")?;
    let thumbprint = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha1::Sha1::digest(cert.contents()));
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem)
        .map_err(|e| format!("no usable RSA private key: {e}"))?;
    Ok(Credential::Certificate {
        key: Box::new(key),
        thumbprint,
    })
}

impl LogsIngestion {
    /// A valid token: the cached one, or a new one from Entra ID.
    async fn token(&self, client: &reqwest::Client) -> Result<String, Reason> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref() {
            if Instant::now() < t.renew_at {
                return Ok(t.value.clone());
            }
        }
        let mut form: Vec<(&str, String)> = vec![
            ("client_id", self.client_id.clone()),
            ("grant_type", "client_credentials".into()),
            ("scope", MONITOR_SCOPE.into()),
        ];
        match &self.credential {
            Credential::Secret(s) => form.push(("client_secret", s.0.clone())),
            Credential::Certificate { key, thumbprint } => {
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push((
                    "client_assertion",
                    self.assertion(key, thumbprint)
                        .map_err(|e| Reason::new("token", e))?,
                ));
            }
        }
        let req = client.post(&self.token_url).form(&form);
        let resp = http_client::exchange(req).await.map_err(|e| {
            Reason::new(
                "token",
                format!("token request to {} failed: {}", self.token_url, e.reason),
            )
        })?;
        if !(200..300).contains(&resp.status) {
            return Err(Reason::new(
                "token",
                format!(
                    "token request to {} answered HTTP {}: {}",
                    self.token_url,
                    resp.status,
                    resp.body_excerpt()
                ),
            ));
        }
        let parsed: TokenResponse = serde_json::from_slice(&resp.body).map_err(|e| {
            Reason::new(
                "token",
                format!("token response from {} is not JSON: {e}", self.token_url),
            )
        })?;
        let lifetime = Duration::from_secs(parsed.expires_in.seconds().clamp(1, 86_400 * 7));
        // Renew with 5 minutes to spare, or halfway through a short-lived token.
        let margin = Duration::from_secs(300).min(lifetime / 2);
        tracing::debug!(
            lifetime_s = lifetime.as_secs(),
            "obtained an ingestion token"
        );
        *slot = Some(Token {
            value: parsed.access_token.clone(),
            renew_at: Instant::now() + lifetime - margin,
        });
        Ok(parsed.access_token)
    }

    fn assertion(
        &self,
        key: &jsonwebtoken::EncodingKey,
        thumbprint: &str,
    ) -> Result<String, String> {
        let now = chrono::Utc::now().timestamp();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.x5t = Some(thumbprint.to_string());
        let claims = serde_json::json!({
            "aud": self.token_url,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + 600,
        });
        jsonwebtoken::encode(&header, &claims, key).map_err(|e| format!("cannot sign: {e}"))
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: ExpiresIn,
}

/// Entra ID sends `expires_in` as a number; some proxies send a string.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ExpiresIn {
    Number(u64),
    Text(String),
}

impl Default for ExpiresIn {
    fn default() -> Self {
        ExpiresIn::Number(3600)
    }
}

impl ExpiresIn {
    fn seconds(&self) -> u64 {
        match self {
            ExpiresIn::Number(n) => *n,
            ExpiresIn::Text(t) => t.trim().parse().unwrap_or(3600),
        }
    }
}

#[async_trait::async_trait]
impl Output for SentinelOutput {
    async fn send(&self, events: &[&Event]) -> Result<Outcomes, OutputError> {
        let (records, mut outcomes) = self.encode(events);
        let chunks = self.chunks(&records, &outcomes);
        let results =
            futures::future::join_all(chunks.iter().map(|c| self.send_chunk(&records, c))).await;
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
    use crate::event::Value;

    fn api_debug(out: &SentinelOutput) -> String {
        match &out.api {
            Api::LogsIngestion(a) => format!("{:?} {:?}", a.credential, a.url),
            Api::DataCollector(d) => format!("{:?}", d.url),
        }
    }

    /// The worked examples of the API facts: the length signed is the UTF-8 byte length.
    #[test]
    fn shared_key_signatures_match_the_worked_examples() {
        let cases = [
            (
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
                "Mon, 04 Apr 2016 08:00:00 GMT",
                r#"[{"DemoField1":"DemoValue1","DemoField2":"DemoValue2"},{"DemoField3":"DemoValue3","DemoField4":"DemoValue4"}]"#,
                "qqtGsdZjaCbotz1ivBRpzI159u1W8uACkZzWsGw3AhU=",
            ),
            (
                "h2Mtv6W6j+h5+D1iKEG715erjgV0hXQWVlbs4KlTjsM2iUtqEDqNH4Wxya7j/lGYU/EUC36PSWTiRN24Q1UexQ==",
                "Tue, 02 Jan 2024 03:04:05 GMT",
                r#"[{"TimeGenerated":"2024-01-02T03:04:05Z","Computer":"web-01","EventID":4625,"Account":"root","SrcIp":"203.0.113.7","Success":false}]"#,
                "G60V4hQq7oNim4Xiyw8Km704OTenQegBoKY8Wzi03Zc=",
            ),
            (
                "RDiyD+MllCuq1Gn858RDjYtp5GA6Q8mAhzUaGU8Umw3eBnMJAvFZW154vFCJSfmWquKYv7ZtxahgaG2OiA7h6A==",
                "Mon, 14 Sep 2026 00:00:00 GMT",
                r#"[{"user":"José","msg":"Zürich — ok"}]"#,
                "TOPIve0eD6yOD9TVdGF5+OK6XvbtehVScpuzKMaJvvM=",
            ),
        ];
        for (key, date, body, want) in cases {
            let key = base64::engine::general_purpose::STANDARD
                .decode(key)
                .unwrap();
            assert_eq!(shared_key_signature(&key, body.len(), date), want, "{body}");
        }
        // Signing the character count instead of the byte count gives another value.
        let key = base64::engine::general_purpose::STANDARD
            .decode("RDiyD+MllCuq1Gn858RDjYtp5GA6Q8mAhzUaGU8Umw3eBnMJAvFZW154vFCJSfmWquKYv7ZtxahgaG2OiA7h6A==")
            .unwrap();
        assert_eq!(
            shared_key_signature(&key, 37, "Mon, 14 Sep 2026 00:00:00 GMT"),
            "b3FZdxEzR8uiTzkeKu1PCJJGfIr/1cnlbxNKoT/CFfc="
        );
    }

    #[test]
    fn log_types_are_letters_digits_underscores_up_to_100() {
        assert!(valid_log_type("SluiceSecurity"));
        assert!(valid_log_type("cab_approvals_2"));
        assert!(!valid_log_type("bad-name"));
        assert!(!valid_log_type(""));
        assert!(!valid_log_type(&"a".repeat(101)));
    }

    fn output(body: &str) -> Result<SentinelOutput, Error> {
        let mut o = Options::from_text("sentinel", "output", body)?;
        let out = SentinelOutput::build(&mut o)?;
        o.finish()?;
        Ok(out)
    }

    const LOGS: &str = r#"dce_endpoint => "https://dce.example" dcr_immutable_id => "dcr-1"
        stream_name => "Custom-SluiceSecurity_CL" tenant_id => "t" client_id => "c"
        client_secret => "s3cr3t-value""#;

    #[test]
    fn records_map_the_timestamp_and_drop_at_names() {
        let out = output(&format!(
            r#"{LOGS} exclude_fields => ["password", "[user][token]"]"#
        ))
        .unwrap();
        let mut e = Event::new();
        e.insert_field("EventType", "login");
        e.insert_field("password", "x");
        e.metadata_mut().insert("secret".into(), Value::from("m"));
        let mut user = crate::event::new_map();
        user.insert("name".into(), Value::from("ana"));
        user.insert("token".into(), Value::from("t"));
        e.insert_field("user", Value::Map(user));
        let r = out.record(&e);
        assert_eq!(r["EventType"], "login");
        assert!(r.get("password").is_none());
        assert!(r.get("@timestamp").is_none() && r.get("@version").is_none());
        assert!(r.get("@metadata").is_none());
        assert_eq!(r["user"], serde_json::json!({"name": "ana"}));
        assert_eq!(
            r[TIME_GENERATED].as_str(),
            Some(e.timestamp().unwrap().to_iso8601().as_str())
        );
        let only = output(&format!(r#"{LOGS} fields => ["EventType"]"#)).unwrap();
        let r = only.record(&e);
        assert_eq!(r.len(), 2, "{r:?}");
    }

    #[test]
    fn options_are_checked_at_load() {
        assert!(output(LOGS).is_ok());
        let err = output(r#"api => "data_collector" workspace_id => "w" shared_key => "AAAA" log_type => "bad-name""#)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("log_type"), "{err}");
        let err = output(r#"api => "data_collector" workspace_id => "w" shared_key => "not base64!" log_type => "T""#)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("base64") && !err.contains("not base64!"),
            "{err}"
        );
        let err = output(r#"dce_endpoint => "https://dce.example""#)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("dcr_immutable_id"), "{err}");
        let err = output(&format!("{LOGS} nonsense => 1"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("nonsense"), "{err}");
        let dbg = api_debug(&output(LOGS).unwrap());
        assert!(!dbg.contains("s3cr3t-value"), "{dbg}");
    }

    #[test]
    fn bodies_stay_under_the_limit() {
        let out = output(&format!("{LOGS} max_request_bytes => 2048")).unwrap();
        let events: Vec<Event> = (0..50)
            .map(|i| {
                let mut e = Event::new();
                e.insert_field("message", format!("{i:03} {}", "x".repeat(100)));
                e
            })
            .collect();
        let mut big = Event::new();
        big.insert_field("message", "y".repeat(5000));
        let mut refs: Vec<&Event> = events.iter().collect();
        refs.push(&big);
        let (records, skip) = out.encode(&refs);
        assert!(matches!(skip[50], Some(Outcome::Reject(_))));
        let chunks = out.chunks(&records, &skip);
        let mut seen = 0;
        for c in &chunks {
            let size: usize = 2 + c.iter().map(|&i| records[i].len() + 1).sum::<usize>();
            assert!(size <= 2048 + 1, "{size}");
            seen += c.len();
        }
        assert_eq!(seen, 50);
    }
}
