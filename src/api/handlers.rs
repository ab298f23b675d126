//! Routes, authentication and parameter checking of the HTTP API.

use super::State;
use crate::stats::{self, query::Window};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State as Shared};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// The status page: one file, no external assets.
const STATUS_PAGE: &str = include_str!("status.html");

/// Response bodies longer than this many buckets are refused (a bound on the answer).
const MAX_BUCKETS: i64 = 2016;

pub(crate) fn router(state: Arc<State>) -> Router {
    let protected = Router::new()
        .route("/api/v1/errors/summary", get(summary))
        .route("/api/v1/services/health", get(health))
        .route("/api/v1/errors/trends", get(trends))
        .route("/_node", get(super::node::info))
        .route("/_node/stats", get(super::node::stats))
        .route("/_node/stats/pipelines", get(super::node::pipelines))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    // The page itself holds no data: it reads the token from the URL fragment and sends
    // it with each request, so it is served to anyone. Programs asking for JSON at `/`
    // get Logstash's root document (behind the token).
    Router::new()
        .route("/", get(root))
        .merge(protected)
        .with_state(state)
}

/// A JSON error with a status code: `{"error": {"status": 400, "message": "..."}}`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({"error": {"status": status.as_u16(), "message": message.into()}});
    (status, Json(body)).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

/// Constant-time comparison, so response timing does not reveal a token prefix.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(state: &State, headers: &HeaderMap) -> bool {
    let Some(token) = &state.token else {
        return true;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same(given.trim().as_bytes(), token.0.as_bytes()))
}

async fn authenticate(Shared(state): Shared<Arc<State>>, req: Request, next: Next) -> Response {
    if authorized(&state, req.headers()) {
        return next.run(req).await;
    }
    let mut resp = error(
        StatusCode::UNAUTHORIZED,
        "missing or wrong bearer token (Authorization: Bearer <token>)",
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"sluice\""),
    );
    resp
}

async fn root(Shared(state): Shared<Arc<State>>, headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html {
        return (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            STATUS_PAGE,
        )
            .into_response();
    }
    if !authorized(&state, &headers) {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    super::node::info(Shared(state)).await.into_response()
}

/// A bad query parameter: answered with 400 and a JSON error.
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        error(StatusCode::BAD_REQUEST, self.0)
    }
}

/// Query parameters, checked: unknown names and bad values are 400s.
struct Params(HashMap<String, String>);

impl Params {
    fn new(
        query: Result<Query<HashMap<String, String>>, QueryRejection>,
        allowed: &[&str],
    ) -> Result<Params, BadRequest> {
        let Query(map) = query.map_err(|e| BadRequest(e.body_text()))?;
        if let Some(unknown) = map
            .keys()
            .find(|k| !allowed.contains(&k.as_str()) && *k != "pretty")
        {
            return Err(BadRequest(format!(
                "unknown parameter `{unknown}` (known: {})",
                allowed.join(", ")
            )));
        }
        Ok(Params(map))
    }

    /// `hours`: a whole number from 1 to the retention, in hours.
    fn hours(&self, default: u32) -> Result<u32, BadRequest> {
        let max = (stats::global().limits().retention_minutes / 60).max(1);
        let Some(text) = self.0.get("hours") else {
            return Ok(default.min(max as u32));
        };
        match text.trim().parse::<u32>() {
            Ok(h) if h >= 1 && i64::from(h) <= max => Ok(h),
            _ => Err(BadRequest(format!(
                "hours must be a whole number from 1 to {max}, not `{text}`"
            ))),
        }
    }

    fn top(&self) -> Result<usize, BadRequest> {
        let Some(text) = self.0.get("top") else {
            return Ok(5);
        };
        match text.trim().parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(BadRequest(format!(
                "top must be a whole number from 1 to 100, not `{text}`"
            ))),
        }
    }
}

/// `1m`, `15m`, `1h`, `1d`: a bucket width in minutes.
pub(crate) fn parse_bucket(text: &str) -> Option<i64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let n: i64 = t[..split].parse().ok()?;
    let unit = match &t[split..] {
        "m" => 1,
        "h" => 60,
        "d" => 24 * 60,
        _ => return None,
    };
    n.checked_mul(unit).filter(|m| *m > 0)
}

fn now_window(hours: u32) -> Window {
    Window::last_hours(stats::now_minute(), hours)
}

async fn summary(query: Result<Query<HashMap<String, String>>, QueryRejection>) -> Response {
    let params = match Params::new(query, &["hours", "service", "top"]) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let (hours, top) = match (params.hours(24), params.top()) {
        (Ok(h), Ok(t)) => (h, t),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    let service = params.0.get("service").map(String::as_str);
    Json(stats::global().summary(now_window(hours), service, top)).into_response()
}

async fn health(query: Result<Query<HashMap<String, String>>, QueryRejection>) -> Response {
    let params = match Params::new(query, &["hours"]) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    match params.hours(1) {
        Ok(h) => Json(stats::global().health(now_window(h))).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn trends(query: Result<Query<HashMap<String, String>>, QueryRejection>) -> Response {
    let params = match Params::new(query, &["hours", "bucket"]) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let hours = match params.hours(24) {
        Ok(h) => h,
        Err(r) => return r.into_response(),
    };
    let bucket_text = params.0.get("bucket").map_or("1h", String::as_str);
    let Some(bucket) = parse_bucket(bucket_text) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("bucket must be a width like 1m, 15m, 1h or 1d, not `{bucket_text}`"),
        );
    };
    let span = i64::from(hours) * 60;
    if bucket > span || span / bucket + 1 > MAX_BUCKETS {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "bucket `{bucket_text}` gives {} buckets over {hours}h; use from 1 to {MAX_BUCKETS} buckets no wider than the period",
                span / bucket
            ),
        );
    }
    Json(stats::global().trends(now_window(hours), bucket)).into_response()
}

async fn metrics() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        stats::metrics::exposition(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        assert_eq!(parse_bucket("1h"), Some(60));
        assert_eq!(parse_bucket("15m"), Some(15));
        assert_eq!(parse_bucket("1d"), Some(1440));
        assert_eq!(parse_bucket("0m"), None);
        assert_eq!(parse_bucket("60"), None);
        assert_eq!(parse_bucket("1w"), None);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secre"));
        assert!(!same(b"secret", b"secreT"));
    }
}
