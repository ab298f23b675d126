//! The `sentinel` and `splunk_hec` outputs against local HTTPS receivers that enforce
//! what the real services document (no Azure or Splunk can be reached from a test):
//!
//! - Entra ID's token endpoint issues expiring tokens for the right client secret only;
//! - the Logs Ingestion endpoint rejects missing or expired tokens with 401, bodies over
//!   1 MiB (uncompressed) with 413, non-array bodies with 400, and throttles a share of
//!   requests with 429 and `Retry-After`;
//! - the Data Collector endpoint recomputes the SharedKey signature (HMAC-SHA256 over
//!   the documented string, byte length) and answers 403 to a wrong one;
//! - Splunk HEC checks the token, requires a channel with indexer acknowledgement,
//!   answers with ack ids, and reports them indexed after a few polls.
//!
//! Every receiver records what it accepted, so the tests check each event arrived, once
//! without faults, and that no limit, token or signature rule was broken.

mod common;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use common::{free_port, sluice, wait_for_port, KillOnDrop};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENT_SECRET: &str = "cs-9f8e7d6c5b4a-very-secret";
const SHARED_KEY: &str =
    "h2Mtv6W6j+h5+D1iKEG715erjgV0hXQWVlbs4KlTjsM2iUtqEDqNH4Wxya7j/lGYU/EUC36PSWTiRN24Q1UexQ==";
const HEC_TOKEN: &str = "11111111-2222-3333-4444-555555555555";

/// A self-signed certificate for 127.0.0.1 and its PEM file, for the receivers.
struct Pki {
    _dir: tempfile::TempDir,
    ca_path: String,
    config: Arc<rustls::ServerConfig>,
}

fn pki() -> Pki {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, cert.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    Pki {
        _dir: dir,
        ca_path: ca_path.display().to_string(),
        config: Arc::new(config),
    }
}

/// Serves `app` over HTTPS on a free port of 127.0.0.1, for the rest of the test.
async fn serve_tls(app: Router, pki: &Pki) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.config.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    port
}

fn gunzip_if(headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    if headers
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes() == b"gzip")
    {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        body.to_vec()
    }
}

// ---------------------------------------------------------------------------------
// Entra ID + Logs Ingestion API receiver

#[derive(Default)]
struct Azure {
    /// Token → expiry.
    tokens: HashMap<String, Instant>,
    tokens_issued: usize,
    token_lifetime_s: u64,
    /// Records accepted, by their `seq`.
    accepted: BTreeMap<i64, usize>,
    records: Vec<Value>,
    requests: usize,
    unauthorized: usize,
    expired_token_uses: usize,
    over_limit: usize,
    /// Every Nth ingestion request is throttled (0: never).
    throttle_every: usize,
    retry_after_s: u64,
    /// `seq` of records in a throttled request → when it was throttled.
    throttled_at: HashMap<i64, Instant>,
    /// Retries of throttled records that came before `Retry-After` had passed.
    early_retries: usize,
    /// Records with this `seq % 100` are refused with 400.
    poison_digit: Option<i64>,
    rejected_400: usize,
}

type AzureState = Arc<Mutex<Azure>>;

async fn token_endpoint(
    State(state): State<AzureState>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = url_form(&body);
    let ok = tenant == "tenant-1"
        && form.get("client_id").map(String::as_str) == Some("client-1")
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
        && form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form
            .get("scope")
            .is_some_and(|s| s.starts_with("https://monitor.azure.com/"));
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let mut s = state.lock().unwrap();
    s.tokens_issued += 1;
    let token = format!("token-{}-{}", s.tokens_issued, uuid_like());
    let lifetime = s.token_lifetime_s;
    s.tokens.insert(
        token.clone(),
        Instant::now() + Duration::from_secs(lifetime),
    );
    axum::Json(json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "access_token": token,
    }))
    .into_response()
}

fn uuid_like() -> String {
    format!("{:x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish()
}

fn url_form(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((decode(k), decode(v)))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn ingest(
    State(state): State<AzureState>,
    Path((dcr, stream)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = state.lock().unwrap();
    s.requests += 1;
    if dcr != "dcr-1" || stream != "Custom-SluiceSecurity_CL" {
        return StatusCode::NOT_FOUND.into_response();
    }
    if q.get("api-version").map(String::as_str) != Some("2023-01-01") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(token) = auth.strip_prefix("Bearer ") else {
        s.unauthorized += 1;
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match s.tokens.get(token) {
        None => {
            s.unauthorized += 1;
            return StatusCode::UNAUTHORIZED.into_response();
        }
        Some(exp) if Instant::now() >= *exp => {
            s.expired_token_uses += 1;
            return StatusCode::UNAUTHORIZED.into_response();
        }
        Some(_) => {}
    }
    let raw = gunzip_if(&headers, &body);
    if raw.len() > 1 << 20 {
        s.over_limit += 1;
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    let Ok(Value::Array(records)) = serde_json::from_slice::<Value>(&raw) else {
        return (StatusCode::BAD_REQUEST, "body must be a JSON array").into_response();
    };
    let seqs: Vec<i64> = records.iter().filter_map(|r| r["seq"].as_i64()).collect();
    let now = Instant::now();
    let wait = Duration::from_secs(s.retry_after_s);
    for q in &seqs {
        if let Some(at) = s.throttled_at.remove(q) {
            if now.duration_since(at) + Duration::from_millis(50) < wait {
                s.early_retries += 1;
            }
        }
    }
    if s.throttle_every > 0 && s.requests % s.throttle_every == 0 {
        for q in &seqs {
            s.throttled_at.insert(*q, now);
        }
        let after = s.retry_after_s.to_string();
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", after)]).into_response();
    }
    if let Some(d) = s.poison_digit {
        if seqs.iter().any(|q| q % 100 == d) {
            s.rejected_400 += 1;
            return (StatusCode::BAD_REQUEST, "InvalidStreamData: bad record").into_response();
        }
    }
    for r in records {
        if let Some(q) = r["seq"].as_i64() {
            *s.accepted.entry(q).or_default() += 1;
        }
        s.records.push(r);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn azure(pki: &Pki, setup: impl FnOnce(&mut Azure)) -> (u16, AzureState) {
    let mut a = Azure {
        token_lifetime_s: 3600,
        retry_after_s: 1,
        ..Default::default()
    };
    setup(&mut a);
    let state = Arc::new(Mutex::new(a));
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_endpoint))
        .route("/dataCollectionRules/{dcr}/streams/{stream}", post(ingest))
        .with_state(state.clone());
    (serve_tls(app, pki).await, state)
}

fn logs_ingestion_output(port: u16, ca: &str, extra: &str) -> String {
    format!(
        r#"sentinel {{
            dce_endpoint => "https://127.0.0.1:{port}"
            dcr_immutable_id => "dcr-1"
            stream_name => "Custom-SluiceSecurity_CL"
            tenant_id => "tenant-1"
            client_id => "client-1"
            client_secret => "{CLIENT_SECRET}"
            authority_host => "https://127.0.0.1:{port}"
            ssl_certificate_authorities => ["{ca}"]
            retry_initial_interval => 0.1
            retry_max_interval => 0.5
            {extra}
        }}"#
    )
}

/// Runs sluice on `config` with tcp json_lines input on a free port, sends `lines` in
/// `pieces` pieces `pause` apart, and returns the running process.
async fn run_tcp(
    config_output: &str,
    lines: Vec<String>,
    pieces: usize,
    pause: Duration,
) -> KillOnDrop {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "input {{ tcp {{ port => {port} host => \"127.0.0.1\" codec => json_lines }} }} output {{ {config_output} }}"
    );
    let child = KillOnDrop(
        sluice()
            .args(["--shutdown.timeout", "2", "--path.data"])
            .arg(dir.path())
            .args(["-e", &config])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_for_port(port, Duration::from_secs(20)),
        "sluice did not listen on {port}"
    );
    let chunk = lines.len().div_ceil(pieces.max(1)).max(1);
    let pieces: Vec<String> = lines.chunks(chunk).map(|c| c.join("\n") + "\n").collect();
    tokio::task::spawn_blocking(move || {
        let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        for p in pieces {
            sock.write_all(p.as_bytes()).unwrap();
            std::thread::sleep(pause);
        }
    })
    .await
    .unwrap();
    child
}

/// Waits until `done` holds (checked every 50 ms), failing the test with `what` after
/// `timeout`.
async fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stops sluice with SIGTERM and returns its stderr.
fn stop(mut child: KillOnDrop) -> String {
    unsafe_kill_term(child.0.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "sluice did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

fn unsafe_kill_term(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

fn numbered(n: i64, extra: impl Fn(i64) -> Value) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut v = json!({"seq": i, "message": format!("event {i}"), "level": "WARN"});
            if let (Value::Object(m), Value::Object(x)) = (&mut v, extra(i)) {
                m.extend(x);
            }
            v.to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_ingestion_delivers_every_event_once_with_fresh_tokens_and_honours_retry_after() {
    let pki = pki();
    let (port, state) = azure(&pki, |a| {
        // Short-lived tokens: Sluice must renew them before they expire.
        a.token_lifetime_s = 2;
        a.throttle_every = 4;
        a.retry_after_s = 1;
    })
    .await;
    let n = 3000;
    let child = run_tcp(
        &logs_ingestion_output(port, &pki.ca_path, ""),
        numbered(n, |_| json!({})),
        6,
        Duration::from_millis(700),
    )
    .await;
    wait_until(Duration::from_secs(60), "every record to arrive", || {
        state.lock().unwrap().accepted.len() == n as usize
    })
    .await;
    let err = stop(child);
    let s = state.lock().unwrap();
    let dups: usize = s.accepted.values().map(|c| c - 1).sum();
    assert_eq!(dups, 0, "records accepted twice without an injected fault");
    assert_eq!(s.over_limit, 0, "a request exceeded 1 MiB");
    assert_eq!(s.unauthorized, 0, "a request came without a valid token");
    assert_eq!(s.expired_token_uses, 0, "a token was used after it expired");
    assert!(
        s.tokens_issued >= 2,
        "the token was never renewed ({} issued)",
        s.tokens_issued
    );
    assert!(
        !s.throttled_at.is_empty() || s.requests >= 4,
        "no request was throttled"
    );
    assert_eq!(
        s.early_retries, 0,
        "throttled records came back before Retry-After"
    );
    let r = &s.records[0];
    assert!(
        r["TimeGenerated"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{r}"
    );
    assert!(
        r.get("@timestamp").is_none() && r.get("@version").is_none(),
        "{r}"
    );
    assert!(
        !err.contains(CLIENT_SECRET),
        "the client secret reached the log"
    );
    assert!(!err.contains("token-1-"), "a bearer token reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_records_are_dead_lettered_and_bodies_stay_under_the_limit() {
    let pki = pki();
    let (port, state) = azure(&pki, |a| a.poison_digit = Some(7)).await;
    let n = 1000;
    // Records of ~3 KB: a 125-event batch is ~375 KB, so the 1 MiB limit is not what
    // splits here; a smaller max_request_bytes makes several bodies per batch.
    let padding = "p".repeat(3000);
    let child = run_tcp(
        &logs_ingestion_output(port, &pki.ca_path, "max_request_bytes => 100000"),
        numbered(n, |_| json!({"padding": padding})),
        1,
        Duration::ZERO,
    )
    .await;
    wait_until(
        Duration::from_secs(60),
        "the good records to arrive",
        || state.lock().unwrap().accepted.len() == 990,
    )
    .await;
    let err = stop(child);
    let s = state.lock().unwrap();
    assert!(s.accepted.keys().all(|q| q % 100 != 7));
    assert!(s.accepted.values().all(|c| *c == 1));
    assert!(s.rejected_400 >= 10, "{}", s.rejected_400);
    assert_eq!(s.over_limit, 0);
    let _ = err;
}

// ---------------------------------------------------------------------------------
// Data Collector API receiver

#[derive(Default)]
struct Collector {
    accepted: BTreeMap<i64, usize>,
    bad_signatures: usize,
    bad_headers: usize,
    time_fields: Vec<String>,
}

type CollectorState = Arc<Mutex<Collector>>;

/// The signature the service computes, written independently of Sluice's.
fn expected_signature(key_b64: &str, len: usize, date: &str) -> String {
    use hmac::{Mac, SimpleHmac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_b64)
        .unwrap();
    let mut mac = SimpleHmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("POST\n{len}\napplication/json\nx-ms-date:{date}\n/api/logs").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn data_collector(
    State(state): State<CollectorState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = state.lock().unwrap();
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if q.get("api-version").map(String::as_str) != Some("2016-04-01")
        || h("content-type") != "application/json"
        || h("log-type") != "SluiceAudit"
        || h("x-ms-date").is_empty()
    {
        s.bad_headers += 1;
        return StatusCode::BAD_REQUEST.into_response();
    }
    let want = format!(
        "SharedKey ws-1:{}",
        expected_signature(SHARED_KEY, body.len(), h("x-ms-date"))
    );
    if h("authorization") != want {
        s.bad_signatures += 1;
        return StatusCode::FORBIDDEN.into_response();
    }
    s.time_fields.push(h("time-generated-field").to_string());
    let Ok(Value::Array(records)) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    for r in records {
        if let Some(q) = r["seq"].as_i64() {
            *s.accepted.entry(q).or_default() += 1;
        }
    }
    StatusCode::OK.into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_collector_requests_carry_a_valid_shared_key_signature() {
    let pki = pki();
    let state: CollectorState = Arc::default();
    let app = Router::new()
        .route("/api/logs", post(data_collector))
        .with_state(state.clone());
    let port = serve_tls(app, &pki).await;
    let n = 500;
    let output = format!(
        r#"sentinel {{
            api => "data_collector"
            workspace_id => "ws-1"
            shared_key => "{SHARED_KEY}"
            log_type => "SluiceAudit"
            endpoint => "https://127.0.0.1:{port}"
            ssl_certificate_authorities => ["{}"]
        }}"#,
        pki.ca_path
    );
    // Non-ASCII text: the signed length must be the byte length.
    let child = run_tcp(
        &output,
        numbered(
            n,
            |i| json!({"user": format!("José {i}"), "city": "Zürich — ok"}),
        ),
        1,
        Duration::ZERO,
    )
    .await;
    wait_until(Duration::from_secs(60), "every record to arrive", || {
        state.lock().unwrap().accepted.len() == n as usize
    })
    .await;
    let err = stop(child);
    let s = state.lock().unwrap();
    assert_eq!(s.bad_signatures, 0);
    assert_eq!(s.bad_headers, 0);
    assert!(s.accepted.values().all(|c| *c == 1));
    assert!(s.time_fields.iter().all(|f| f == "TimeGenerated"));
    assert!(!err.contains(SHARED_KEY), "the shared key reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_shared_key_is_retried_not_lost() {
    let pki = pki();
    let state: CollectorState = Arc::default();
    let app = Router::new()
        .route("/api/logs", post(data_collector))
        .with_state(state.clone());
    let port = serve_tls(app, &pki).await;
    let wrong = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
    let output = format!(
        r#"sentinel {{
            api => "data_collector" workspace_id => "ws-1" shared_key => "{wrong}"
            log_type => "SluiceAudit" endpoint => "https://127.0.0.1:{port}"
            ssl_certificate_authorities => ["{}"]
            retry_initial_interval => 0.1 retry_max_interval => 0.2
        }}"#,
        pki.ca_path
    );
    let child = run_tcp(&output, numbered(10, |_| json!({})), 1, Duration::ZERO).await;
    wait_until(Duration::from_secs(30), "repeated 403s", || {
        state.lock().unwrap().bad_signatures >= 3
    })
    .await;
    let err = stop(child);
    assert!(state.lock().unwrap().accepted.is_empty());
    assert!(err.contains("403"), "the failure is not logged: {err}");
    assert!(!err.contains(&wrong), "the shared key reached the log");
}

// ---------------------------------------------------------------------------------
// Splunk HEC receiver

#[derive(Default)]
struct Hec {
    accepted: BTreeMap<i64, usize>,
    envelopes: Vec<Value>,
    next_ack: u64,
    /// ackId → polls left before it is reported indexed.
    pending: HashMap<u64, u32>,
    polls: usize,
    missing_channel: usize,
    bad_token: usize,
    busy_every: usize,
    requests: usize,
}

type HecState = Arc<Mutex<Hec>>;

fn hec_auth(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Splunk {HEC_TOKEN}"))
}

async fn hec_event(State(state): State<HecState>, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = state.lock().unwrap();
    s.requests += 1;
    if !hec_auth(&headers) {
        s.bad_token += 1;
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"text": "Invalid token", "code": 4})),
        )
            .into_response();
    }
    if headers.get("x-splunk-request-channel").is_none() {
        s.missing_channel += 1;
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"text": "Data channel is missing", "code": 10})),
        )
            .into_response();
    }
    if s.busy_every > 0 && s.requests % s.busy_every == 0 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"text": "Server is busy", "code": 9})),
        )
            .into_response();
    }
    let raw = gunzip_if(&headers, &body);
    let mut batch = Vec::new();
    for v in serde_json::Deserializer::from_slice(&raw).into_iter::<Value>() {
        match v {
            Ok(v) if v.get("event").is_some() => batch.push(v),
            _ => {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"text": "Invalid data format", "code": 6})),
                )
                    .into_response()
            }
        }
    }
    for v in batch {
        if let Some(q) = v["event"]["seq"].as_i64() {
            *s.accepted.entry(q).or_default() += 1;
        }
        s.envelopes.push(v);
    }
    let id = s.next_ack;
    s.next_ack += 1;
    s.pending.insert(id, 2);
    axum::Json(json!({"text": "Success", "code": 0, "ackId": id})).into_response()
}

async fn hec_ack(State(state): State<HecState>, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = state.lock().unwrap();
    if !hec_auth(&headers) || headers.get("x-splunk-request-channel").is_none() {
        return StatusCode::BAD_REQUEST.into_response();
    }
    s.polls += 1;
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut acks = serde_json::Map::new();
    for id in req["acks"].as_array().cloned().unwrap_or_default() {
        let Some(id) = id.as_u64() else { continue };
        let done = match s.pending.get_mut(&id) {
            Some(0) => {
                s.pending.remove(&id);
                true
            }
            Some(left) => {
                *left -= 1;
                false
            }
            None => false,
        };
        acks.insert(id.to_string(), Value::Bool(done));
    }
    axum::Json(json!({ "acks": acks })).into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splunk_hec_with_indexer_acknowledgement_delivers_every_event() {
    let pki = pki();
    let state: HecState = Arc::new(Mutex::new(Hec {
        busy_every: 5,
        ..Default::default()
    }));
    let app = Router::new()
        .route("/services/collector/event", post(hec_event))
        .route("/services/collector/ack", post(hec_ack))
        .with_state(state.clone());
    let port = serve_tls(app, &pki).await;
    let n = 2000;
    let output = format!(
        r#"splunk_hec {{
            url => "https://127.0.0.1:{port}/services/collector/event"
            token => "{HEC_TOKEN}"
            index => "security"
            sourcetype => "_json"
            host => "%{{host}}"
            use_ack => true
            ack_poll_interval => 0.05
            ssl_certificate_authorities => ["{}"]
            retry_initial_interval => 0.1
            retry_max_interval => 0.5
        }}"#,
        pki.ca_path
    );
    let child = run_tcp(
        &output,
        numbered(n, |i| json!({"host": format!("web-{}", i % 3)})),
        1,
        Duration::ZERO,
    )
    .await;
    wait_until(Duration::from_secs(60), "every event to be indexed", || {
        state.lock().unwrap().accepted.len() == n as usize
    })
    .await;
    let err = stop(child);
    let s = state.lock().unwrap();
    assert!(
        s.accepted.values().all(|c| *c == 1),
        "duplicates without a fault"
    );
    assert_eq!(s.missing_channel, 0);
    assert_eq!(s.bad_token, 0);
    assert!(s.polls > 0, "acks were never polled");
    assert!(s.pending.is_empty(), "some acks were never awaited");
    let e = &s.envelopes[0];
    assert_eq!(e["index"], "security");
    assert_eq!(e["sourcetype"], "_json");
    assert!(e["host"].as_str().is_some_and(|h| h.starts_with("web-")));
    assert!(e["time"].as_f64().is_some_and(|t| t > 1.7e9), "{e}");
    assert!(!err.contains(HEC_TOKEN), "the HEC token reached the log");
}

// ---------------------------------------------------------------------------------
// The security pipeline, through Beats, as Filebeat would send it.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_pipeline_routes_the_seed_events_to_sentinel_with_time_generated() {
    let pki = pki();
    let (azure_port, state) = azure(&pki, |_| {}).await;
    let beats_port = free_port();
    // The receiver's certificate is self-signed: add its CA to the shipped pipeline.
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/pipelines/security-sentinel.conf"
    ))
    .unwrap();
    let config = shipped.replacen(
        "sentinel {",
        &format!(
            "sentinel {{\n      ssl_certificate_authorities => [\"{}\"]",
            pki.ca_path
        ),
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("security.conf");
    std::fs::write(&conf, config).unwrap();
    let es_port = free_port();
    let child = KillOnDrop(
        sluice()
            .args(["--shutdown.timeout", "1", "--path.data"])
            .arg(dir.path().join("data"))
            .arg("-f")
            .arg(&conf)
            .env("BEATS_PORT", beats_port.to_string())
            .env(
                "SENTINEL_DCE_ENDPOINT",
                format!("https://127.0.0.1:{azure_port}"),
            )
            .env("SENTINEL_DCR_ID", "dcr-1")
            .env("AZURE_TENANT_ID", "tenant-1")
            .env("AZURE_CLIENT_ID", "client-1")
            .env("AZURE_CLIENT_SECRET", CLIENT_SECRET)
            .env(
                "AZURE_AUTHORITY_HOST",
                format!("https://127.0.0.1:{azure_port}"),
            )
            .env("ELASTICSEARCH_HOSTS", format!("http://127.0.0.1:{es_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_for_port(beats_port, Duration::from_secs(20)),
        "sluice did not listen for beats"
    );
    // The seed application's security events (its JSON log lines, as Filebeat ships
    // them in `message`), and ordinary events that must not reach Sentinel.
    let script = format!(
        r#"
import json
from pylogbeat import PyLogBeatClient
docs = [
  {{"timestamp": "2026-11-21T10:30:00.123Z", "logger": "cab.approvals", "event_type": "CabApproval",
    "correlation_id": "c-1", "deployment_id": "d-42", "decision": "approved",
    "approved_by": "ana@example.com", "risk_score": "7", "message": "CAB approved d-42"}},
  {{"timestamp": "2026-11-21T10:31:00.000Z", "logger": "auth", "event_type": "LoginFailed",
    "correlation_id": "c-2", "deployment_id": "d-42", "decision": "denied",
    "approved_by": "", "risk_score": 9, "message": "bad password", "event": {{"category": "security"}}}},
  {{"timestamp": "2026-11-21T10:32:00.000Z", "logger": "api", "message": "GET /health 200"}},
]
c = PyLogBeatClient("127.0.0.1", {beats_port}, timeout=30)
c.connect()
c.send([{{"@metadata": {{"beat": "filebeat", "version": "8.15.0"}}, "message": json.dumps(d)}} for d in docs])
c.close()
"#
    );
    // The Elasticsearch host is down in this test: the ordinary event is retried, so
    // Beats' window is not ACKed and pylogbeat waits; what matters here is Sentinel.
    let mut client = Command::new(common::venv_bin("python"));
    client.args(["-c", &script]);
    let _client = common::spawn(client);
    wait_until(Duration::from_secs(60), "both security events", || {
        state.lock().unwrap().records.len() >= 2
    })
    .await;
    let err = stop(child);
    let s = state.lock().unwrap();
    assert_eq!(s.records.len(), 2, "{:?}", s.records);
    let cab = s
        .records
        .iter()
        .find(|r| r["EventType"] == "CabApproval")
        .expect("the CAB approval");
    assert_eq!(cab["CorrelationId"], "c-1");
    assert_eq!(cab["DeploymentId"], "d-42");
    assert_eq!(cab["Decision"], "approved");
    assert_eq!(cab["ApprovedBy"], "ana@example.com");
    assert_eq!(cab["RiskScore"], 7);
    assert_eq!(cab["TimeGenerated"], "2026-11-21T10:30:00.123Z");
    assert!(cab.get("message").is_none());
    let login = s
        .records
        .iter()
        .find(|r| r["EventType"] == "LoginFailed")
        .expect("the failed login");
    assert_eq!(login["RiskScore"], 9);
    assert!(!err.contains(CLIENT_SECRET));
}
