//! What every HTTP-based output shares (http, and the Sentinel and Splunk HEC outputs):
//! a client built from Logstash's connection options (timeouts, pool, TLS, basic auth)
//! and a classification of each exchange into a response or a [`Reason`] to retry, so
//! that such an output only builds requests and maps statuses to outcomes.

use super::Reason;
use crate::config::Error;
use crate::plugin::Options;
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use std::path::PathBuf;
use std::time::Duration;

/// Connection options, with Logstash's names and defaults.
#[derive(Clone)]
pub struct ClientOptions {
    /// `connect_timeout` (10 s).
    pub connect_timeout: Duration,
    /// `request_timeout` (60 s): the whole exchange.
    pub request_timeout: Duration,
    /// `pool_max` (50): connections kept open.
    pub pool_max: usize,
    /// `ssl_certificate_authorities` (or the older `cacert`).
    pub certificate_authorities: Vec<PathBuf>,
    /// `ssl_verification_mode`: `full` (default) or `none`.
    pub verify: bool,
    /// `ssl_certificate` and `ssl_key`: a client certificate (PEM).
    pub client_certificate: Option<(PathBuf, PathBuf)>,
    /// `user` and `password`: basic authentication.
    pub basic_auth: Option<(String, crate::plugin::Secret)>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("pool_max", &self.pool_max)
            .field("verify", &self.verify)
            .field(
                "basic_auth",
                &self.basic_auth.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl ClientOptions {
    /// Reads the connection options of a plugin.
    pub fn from_options(opts: &mut Options) -> Result<ClientOptions, Error> {
        let connect_timeout = super::seconds(opts, "connect_timeout", Duration::from_secs(10))?;
        let request_timeout = super::seconds(opts, "request_timeout", Duration::from_secs(60))?;
        let pool_max = opts.usize_or("pool_max", 50)?.max(1);
        let mut certificate_authorities: Vec<PathBuf> = opts
            .string_list("ssl_certificate_authorities")?
            .unwrap_or_default()
            .into_iter()
            .map(PathBuf::from)
            .collect();
        if let Some(ca) = opts.string("cacert")? {
            certificate_authorities.push(PathBuf::from(ca));
        }
        let mode_pos = opts.value_pos("ssl_verification_mode");
        let verify = match opts.string_or("ssl_verification_mode", "full")?.as_str() {
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
        let client_certificate = match (opts.string("ssl_certificate")?, opts.string("ssl_key")?) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
            _ => {
                return Err(opts.error(format!(
                    "{} output: give both `ssl_certificate` and `ssl_key`",
                    opts.plugin_name()
                )))
            }
        };
        let basic_auth = match (opts.string("user")?, opts.secret("password")?) {
            (None, None) => None,
            (Some(u), Some(p)) => Some((u, p)),
            _ => {
                return Err(opts.error(format!(
                    "{} output: give both `user` and `password`",
                    opts.plugin_name()
                )))
            }
        };
        Ok(ClientOptions {
            connect_timeout,
            request_timeout,
            pool_max,
            certificate_authorities,
            verify,
            client_certificate,
            basic_auth,
        })
    }

    /// The client these options describe. Errors name the file or option at fault.
    pub fn build(&self) -> Result<reqwest::Client, String> {
        let mut headers = HeaderMap::new();
        if let Some((user, password)) = &self.basic_auth {
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", password.expose()));
            let mut v = HeaderValue::from_str(&format!("Basic {token}"))
                .map_err(|_| "`user` or `password` has invalid bytes".to_string())?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .pool_max_idle_per_host(self.pool_max)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .no_proxy();
        for path in &self.certificate_authorities {
            let pem = std::fs::read(path).map_err(|e| {
                format!("cannot read certificate authority {}: {e}", path.display())
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("certificate authority {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("no PEM certificate in {}", path.display()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some((cert, key)) = &self.client_certificate {
            let mut pem = std::fs::read(cert)
                .map_err(|e| format!("cannot read ssl_certificate {}: {e}", cert.display()))?;
            pem.push(b'\n');
            pem.extend(
                std::fs::read(key)
                    .map_err(|e| format!("cannot read ssl_key {}: {e}", key.display()))?,
            );
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| format!("ssl_certificate/ssl_key: {e}"))?;
            builder = builder.identity(identity);
        }
        if !self.verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        builder
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))
    }
}

/// A response read in full.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// The `Retry-After` header, when the server sent one in seconds.
    pub retry_after: Option<Duration>,
    pub body: bytes::Bytes,
}

impl Response {
    /// The start of the body, for messages.
    pub fn body_excerpt(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(300)
            .collect()
    }
}

/// A failed exchange: whether it is worth trying again right away (the request may
/// not have reached the server), and the reason.
#[derive(Debug)]
pub struct TransportError {
    /// The connection could not be made: the server never saw the request.
    pub connect: bool,
    pub reason: Reason,
}

/// Sends `req` and reads the whole response.
pub async fn exchange(req: reqwest::RequestBuilder) -> Result<Response, TransportError> {
    let result = async {
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers());
        let body = resp.bytes().await?;
        Ok::<_, reqwest::Error>(Response {
            status,
            retry_after,
            body,
        })
    }
    .await;
    result.map_err(|e| {
        let message = error_chain(&e);
        let (code, connect) = if e.is_timeout() {
            ("timeout", false)
        } else if e.is_connect() {
            ("connect", true)
        } else {
            ("transport", false)
        };
        TransportError {
            connect,
            reason: Reason::new(code, message),
        }
    })
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs and read as absent).
/// A request body gzipped at the fast level: these bodies are compressed once per
/// request on the IO runtime, where a slower level costs more than the bytes it saves.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The error and its causes in one line: reqwest's own message alone hides the cause.
pub fn error_chain(e: &dyn std::error::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn options_have_logstash_defaults_and_hide_the_password() {
        let mut o =
            Options::from_text("http", "output", r#"user => "u" password => "s3cret""#).unwrap();
        let c = ClientOptions::from_options(&mut o).unwrap();
        assert_eq!(c.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.request_timeout, Duration::from_secs(60));
        assert_eq!(c.pool_max, 50);
        assert!(c.verify);
        assert!(!format!("{c:?}").contains("s3cret"));
        let mut o = Options::from_text("http", "output", r#"user => "u""#).unwrap();
        assert!(ClientOptions::from_options(&mut o).is_err());
    }
}
