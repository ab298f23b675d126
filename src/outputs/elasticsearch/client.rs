//! The HTTP side: a pool of hosts used round-robin (a host that failed is skipped for
//! `resurrect_delay`, then tried again), authentication, TLS, gzip, and a classification
//! of every failure so the caller knows whether to retry.

use crate::metrics;
use crate::plugin::Secret;
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One Elasticsearch (or OpenSearch) node.
struct Host {
    /// `http://host:9200` or `https://host:9200/prefix`, without a trailing slash.
    base: String,
    dead_until: Mutex<Option<Instant>>,
}

/// TLS settings (Logstash's `ssl_*` options).
#[derive(Debug, Clone, Default)]
pub struct Tls {
    pub enabled: Option<bool>,
    pub certificate_authorities: Vec<PathBuf>,
    /// `full` (default) or `none`.
    pub verify: bool,
    /// `ssl_certificate` + `ssl_key`, for servers that ask for a client certificate.
    pub client_certificate: Option<ClientCertificate>,
}

/// The paths of a client certificate and its key. The key's contents are read only
/// to build the TLS client and never reach a message.
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

/// Credentials; never printed.
#[derive(Clone, Default)]
pub enum Auth {
    #[default]
    None,
    Basic {
        user: String,
        password: Secret,
    },
    ApiKey(Secret),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "none",
            Auth::Basic { .. } => "basic",
            Auth::ApiKey(_) => "api_key",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid host `{0}`: expected host, host:port or http(s)://host:port")]
    Host(String),
    #[error("cannot read certificate authority {path}: {message}")]
    Ca { path: PathBuf, message: String },
    #[error("client certificate {certificate} with key {key}: {message}")]
    ClientCertificate {
        certificate: PathBuf,
        key: PathBuf,
        message: String,
    },
    #[error("custom header `{0}` is not a valid HTTP header")]
    Header(String),
    #[error("cannot set up the HTTP client: {0}")]
    Build(String),
    #[error("invalid credentials: {0}")]
    Auth(String),
}

/// A bulk request that failed as a whole. Every one is retried.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("cannot connect to {host}: {message}")]
    Connect { host: String, message: String },
    #[error("request to {host} timed out after {timeout:?}")]
    Timeout { host: String, timeout: Duration },
    #[error("request to {host} failed: {message}")]
    Transport { host: String, message: String },
    #[error("{host} answered HTTP {status}: {body}")]
    Status {
        host: String,
        status: u16,
        body: String,
    },
}

impl RequestError {
    /// A short label for the failures metric.
    pub fn reason(&self) -> String {
        match self {
            RequestError::Connect { .. } => "connect".into(),
            RequestError::Timeout { .. } => "timeout".into(),
            RequestError::Transport { .. } => "transport".into(),
            RequestError::Status { status, .. } => format!("http_{status}"),
        }
    }

    /// A hint for the failures a user has to fix.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            RequestError::Status { status: 401, .. } => {
                Some("check `user`/`password` or `api_key`")
            }
            RequestError::Status { status: 403, .. } => {
                Some("the user lacks the privilege to write to this index")
            }
            // A TLS handshake failure surfaces as a connect error on an https host
            // (a bad certificate, or a server that does not speak TLS).
            RequestError::Connect { host, message }
                if message.contains("certificate")
                    || message.contains("TLS")
                    || (host.starts_with("https://")
                        && !message.contains("refused")
                        && !message.contains("dns")) =>
            {
                Some("check `ssl_enabled`, `ssl_certificate_authorities` and `ssl_verification_mode`")
            }
            _ => None,
        }
    }
}

/// A response read in full.
pub struct Response {
    pub status: u16,
    pub body: bytes::Bytes,
}

pub struct Client {
    http: reqwest::Client,
    hosts: Vec<Host>,
    next: AtomicUsize,
    compression: bool,
    timeout: Duration,
    resurrect_delay: Duration,
}

impl Client {
    pub fn new(
        hosts: &[String],
        tls: &Tls,
        auth: &Auth,
        custom_headers: &[(String, Secret)],
        compression: bool,
        timeout: Duration,
        resurrect_delay: Duration,
    ) -> Result<Client, ClientError> {
        let hosts = hosts
            .iter()
            .map(|h| {
                Ok(Host {
                    base: base_url(h, tls.enabled)?,
                    dead_until: Mutex::new(None),
                })
            })
            .collect::<Result<Vec<_>, ClientError>>()?;
        let mut headers = HeaderMap::new();
        match auth {
            Auth::None => {}
            Auth::Basic { user, password } => {
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{}", password.expose()));
                let mut v = HeaderValue::from_str(&format!("Basic {token}"))
                    .map_err(|_| ClientError::Auth("user or password has invalid bytes".into()))?;
                v.set_sensitive(true);
                headers.insert(AUTHORIZATION, v);
            }
            Auth::ApiKey(key) => {
                // Logstash takes `id:api_key` and encodes it; an encoded key is used as is.
                let key = key.expose();
                let token = if key.contains(':') {
                    base64::engine::general_purpose::STANDARD.encode(key)
                } else {
                    key.to_string()
                };
                let mut v = HeaderValue::from_str(&format!("ApiKey {token}"))
                    .map_err(|_| ClientError::Auth("api_key has invalid bytes".into()))?;
                v.set_sensitive(true);
                headers.insert(AUTHORIZATION, v);
            }
        }
        // After the credentials, as in Logstash: a custom `Authorization` replaces them.
        for (name, value) in custom_headers {
            let bad = || ClientError::Header(name.clone());
            let name =
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
            let mut value = HeaderValue::from_str(value.expose()).map_err(|_| bad())?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .no_proxy();
        for path in &tls.certificate_authorities {
            let pem = std::fs::read(path).map_err(|e| ClientError::Ca {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ClientError::Ca {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(ClientError::Ca {
                    path: path.clone(),
                    message: "no PEM certificate in the file".into(),
                });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(cc) = &tls.client_certificate {
            builder = builder.identity(identity(cc)?);
        }
        if !tls.verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))?;
        Ok(Client {
            http,
            hosts,
            next: AtomicUsize::new(0),
            compression,
            timeout,
            resurrect_delay,
        })
    }

    /// Picks the next live host round-robin; when every host is marked dead, the one
    /// that comes back first.
    fn pick(&self) -> &Host {
        let n = self.hosts.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut best: Option<(&Host, Instant)> = None;
        for i in 0..n {
            let h = &self.hosts[(start + i) % n];
            let dead = *h.dead_until.lock().unwrap_or_else(|p| p.into_inner());
            match dead {
                Some(until) if until > now => {
                    if best.is_none_or(|(_, b)| until < b) {
                        best = Some((h, until));
                    }
                }
                _ => return h,
            }
        }
        best.map_or(&self.hosts[start % n], |(h, _)| h)
    }

    fn mark(&self, host: &Host, dead: bool) {
        let mut slot = host.dead_until.lock().unwrap_or_else(|p| p.into_inner());
        if dead {
            if slot.is_none() {
                tracing::warn!(host = %host.base, retry_in = ?self.resurrect_delay, "marking host dead");
            }
            *slot = Some(Instant::now() + self.resurrect_delay);
        } else if slot.take().is_some() {
            tracing::info!(host = %host.base, "host is back");
        }
    }

    /// POSTs an NDJSON bulk body to `/_bulk`. Any status but 200 is an error, except
    /// 413 which the caller handles by splitting.
    pub async fn bulk(&self, body: &[u8]) -> Result<Response, RequestError> {
        let host = self.pick();
        let url = format!("{}/_bulk", host.base);
        let mut req = self
            .http
            .post(&url)
            .header(CONTENT_TYPE, "application/x-ndjson");
        let payload = if self.compression {
            req = req.header(CONTENT_ENCODING, "gzip");
            gzip(body)
        } else {
            body.to_vec()
        };
        let sent = payload.len() as u64;
        let started = Instant::now();
        let result = self.exchange(host, req.body(payload)).await;
        let m = &metrics::get().elasticsearch;
        m.bulk_duration.observe(started.elapsed().as_secs_f64());
        m.sent_bytes.inc_by(sent);
        let resp = result?;
        if resp.status == 200 || resp.status == 413 {
            return Ok(resp);
        }
        Err(self.status_error(host, resp))
    }

    /// Sends a JSON request to `path` (for templates); any 2xx is success.
    pub async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response, RequestError> {
        let host = self.pick();
        let mut req = self
            .http
            .request(method, format!("{}{path}", host.base))
            .header(CONTENT_TYPE, "application/json");
        if let Some(b) = body {
            req = req.body(b);
        }
        self.exchange(host, req).await
    }

    async fn exchange(
        &self,
        host: &Host,
        req: reqwest::RequestBuilder,
    ) -> Result<Response, RequestError> {
        let out = async {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>(Response { status, body })
        }
        .await;
        match out {
            Ok(resp) => {
                // A server that answers is alive, even with an error status, unless it
                // says it is unavailable.
                self.mark(host, matches!(resp.status, 502..=504));
                Ok(resp)
            }
            Err(e) => {
                self.mark(host, true);
                Err(self.transport_error(host, &e))
            }
        }
    }

    fn transport_error(&self, host: &Host, e: &reqwest::Error) -> RequestError {
        let host = host.base.clone();
        let message = error_chain(e);
        if e.is_timeout() {
            RequestError::Timeout {
                host,
                timeout: self.timeout,
            }
        } else if e.is_connect() {
            RequestError::Connect { host, message }
        } else {
            RequestError::Transport { host, message }
        }
    }

    fn status_error(&self, host: &Host, resp: Response) -> RequestError {
        let text = String::from_utf8_lossy(&resp.body);
        let body: String = text.chars().take(300).collect();
        RequestError::Status {
            host: host.base.clone(),
            status: resp.status,
            body,
        }
    }

    /// The hosts, for logs.
    pub fn describe(&self) -> String {
        self.hosts
            .iter()
            .map(|h| h.base.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The client certificate and key as one TLS identity. Messages name the files, never
/// their contents.
fn identity(cc: &ClientCertificate) -> Result<reqwest::Identity, ClientError> {
    let fail = |message: String| ClientError::ClientCertificate {
        certificate: cc.certificate.clone(),
        key: cc.key.clone(),
        message,
    };
    let mut pem = std::fs::read(&cc.certificate)
        .map_err(|e| fail(format!("cannot read ssl_certificate: {e}")))?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(fail("ssl_certificate holds no PEM certificate".into()));
    }
    let key = std::fs::read(&cc.key).map_err(|e| fail(format!("cannot read ssl_key: {e}")))?;
    if !key.windows(11).any(|w| w == b"PRIVATE KEY") {
        return Err(fail(
            "ssl_key holds no PEM private key (PKCS#8 `BEGIN PRIVATE KEY`, or PKCS#1/SEC1)".into(),
        ));
    }
    pem.push(b'\n');
    pem.extend_from_slice(&key);
    reqwest::Identity::from_pem(&pem).map_err(|e| fail(error_chain(&e)))
}

/// The error and its causes in one line: reqwest's own message alone hides the cause.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

/// `host`, `host:port`, `http://host:port/path` → a base URL without a trailing slash.
/// `ssl_enabled` picks the scheme when the host names none and must agree when it does.
pub fn base_url(host: &str, ssl: Option<bool>) -> Result<String, ClientError> {
    let h = host.trim().trim_end_matches('/');
    // The host may carry credentials: only its redacted form reaches a message.
    let bad = || ClientError::Host(crate::plugin::redact_url(host).into_owned());
    let (scheme, rest) = match h.split_once("://") {
        Some(("http", rest)) => (if ssl == Some(true) { "https" } else { "http" }, rest),
        Some(("https", rest)) => (if ssl == Some(false) { "http" } else { "https" }, rest),
        Some(_) => return Err(bad()),
        None => (
            if ssl == Some(true) { "https" } else { "http" },
            h.trim_start_matches("//"),
        ),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    let has_port = match authority.rsplit_once(':') {
        Some((_, port)) if !authority.ends_with(']') => {
            port.parse::<u16>().map_err(|_| bad())?;
            true
        }
        _ => false,
    };
    let authority = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:9200")
    };
    let url = format!("{scheme}://{authority}{path}");
    // What the HTTP client would refuse at the first request is refused at load time.
    reqwest::Url::parse(&url).map_err(|_| bad())?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_forms() {
        assert_eq!(
            base_url("es:9200", None).unwrap(),
            "http://es:9200".to_string()
        );
        assert_eq!(base_url("es", None).unwrap(), "http://es:9200");
        assert_eq!(
            base_url("//127.0.0.1", None).unwrap(),
            "http://127.0.0.1:9200"
        );
        assert_eq!(base_url("es", Some(true)).unwrap(), "https://es:9200");
        assert_eq!(
            base_url("https://es:443/prefix/", None).unwrap(),
            "https://es:443/prefix"
        );
        assert_eq!(base_url("[::1]:9201", None).unwrap(), "http://[::1]:9201");
        assert!(base_url("ftp://es", None).is_err());
        assert!(base_url("es:port", None).is_err());
        assert!(base_url("user:pw@es", None).is_err());
        assert!(base_url("https://bad host:9200", None).is_err());
    }

    #[test]
    fn custom_headers_are_checked_and_bad_files_are_named_not_printed() {
        let dir = std::env::temp_dir().join(format!("sluice-es-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("c.pem");
        let key = dir.join("k.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "s3cret-key-bytes").unwrap();
        let tls = Tls {
            client_certificate: Some(ClientCertificate {
                certificate: cert,
                key,
            }),
            ..Tls::default()
        };
        let hosts = ["http://127.0.0.1:9200".to_string()];
        let t = Duration::from_secs(1);
        let Err(err) = Client::new(&hosts, &tls, &Auth::None, &[], false, t, t) else {
            panic!("a file without a certificate is refused");
        };
        let text = err.to_string();
        assert!(text.contains("c.pem") && !text.contains("s3cret"), "{text}");
        let headers = [("X-Ok".to_string(), Secret::new("v"))];
        assert!(Client::new(&hosts, &Tls::default(), &Auth::None, &headers, false, t, t).is_ok());
        let headers = [("Bad Name".to_string(), Secret::new("v"))];
        assert!(Client::new(&hosts, &Tls::default(), &Auth::None, &headers, false, t, t).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn auth_is_never_printed() {
        let a = Auth::Basic {
            user: "elastic".into(),
            password: Secret::new("s3cret"),
        };
        assert!(!format!("{a:?}").contains("s3cret"));
        assert!(!format!("{:?}", Auth::ApiKey(Secret::new("k3y"))).contains("k3y"));
    }
}
