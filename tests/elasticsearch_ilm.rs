//! Index lifecycle management against a local receiver that keeps Elasticsearch's
//! documented contract for the calls ILM setup makes (no Elasticsearch can run here, and
//! OpenSearch has no ILM API): `GET`/`PUT _ilm/policy/<name>`, `HEAD <alias>`, index
//! creation with date math names and write aliases, templates, and `_bulk` writes that
//! resolve a write alias to its index or auto-create a plain index, as Elasticsearch
//! does. The receiver answers 400 to anything else, so a stray request shows.

mod common;

use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Cluster {
    policies: BTreeMap<String, Value>,
    templates: BTreeMap<String, Value>,
    /// Index name → documents written to it.
    indices: BTreeMap<String, usize>,
    /// Alias → its write index.
    aliases: BTreeMap<String, String>,
    /// The settings an index was created with (from the template that matched).
    settings: BTreeMap<String, Value>,
}

impl Cluster {
    /// Elasticsearch's date math index names: `<name-{now/d}-000001>` with today's date
    /// in the default `yyyy.MM.dd` format.
    fn resolve_date_math(name: &str) -> Result<String, String> {
        let Some(inner) = name.strip_prefix('<').and_then(|n| n.strip_suffix('>')) else {
            return Ok(name.to_string());
        };
        let today = chrono::Utc::now().format("%Y.%m.%d").to_string();
        if inner.contains('{') && !inner.contains("{now/d}") {
            return Err(format!("unsupported date math in {name}"));
        }
        Ok(inner.replace("{now/d}", &today))
    }

    fn template_settings(&self, index: &str) -> Value {
        for body in self.templates.values() {
            let patterns = body["index_patterns"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let matches =
                patterns
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|p| match p.strip_suffix('*') {
                        Some(prefix) => index.starts_with(prefix),
                        None => index == p,
                    });
            if matches {
                let settings = body
                    .get("template")
                    .map_or(&body["settings"], |t| &t["settings"]);
                return settings.clone();
            }
        }
        Value::Null
    }

    fn handle(&mut self, method: &Method, path: &str, body: &[u8]) -> (StatusCode, Value) {
        let error = |status: StatusCode, kind: &str, reason: String| {
            (
                status,
                json!({"error": {"type": kind, "reason": reason}, "status": status.as_u16()}),
            )
        };
        let segments: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let parsed = || serde_json::from_slice::<Value>(body).ok();
        match (
            method.as_str(),
            segments
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice(),
        ) {
            ("GET", ["_ilm", "policy", name]) => match self.policies.get(*name) {
                Some(p) => (StatusCode::OK, json!({ *name: p })),
                None => error(
                    StatusCode::NOT_FOUND,
                    "resource_not_found_exception",
                    format!("Lifecycle policy not found: {name}"),
                ),
            },
            ("PUT", ["_ilm", "policy", name]) => match parsed() {
                Some(p) if p["policy"]["phases"].is_object() => {
                    self.policies.insert(name.to_string(), p["policy"].clone());
                    (StatusCode::OK, json!({"acknowledged": true}))
                }
                _ => error(
                    StatusCode::BAD_REQUEST,
                    "x_content_parse_exception",
                    "a policy needs policy.phases".into(),
                ),
            },
            ("PUT", ["_template" | "_index_template", name]) => match parsed() {
                Some(t) if t["index_patterns"].is_array() => {
                    self.templates.insert(name.to_string(), t);
                    (StatusCode::OK, json!({"acknowledged": true}))
                }
                _ => error(
                    StatusCode::BAD_REQUEST,
                    "action_request_validation_exception",
                    "index patterns are missing".into(),
                ),
            },
            ("HEAD", [name]) if !name.starts_with('_') => {
                if self.indices.contains_key(*name) || self.aliases.contains_key(*name) {
                    (StatusCode::OK, Value::Null)
                } else {
                    (StatusCode::NOT_FOUND, Value::Null)
                }
            }
            ("PUT", [name]) if !name.starts_with('_') => {
                let index = match Self::resolve_date_math(name) {
                    Ok(i) => i,
                    Err(e) => {
                        return error(StatusCode::BAD_REQUEST, "illegal_argument_exception", e)
                    }
                };
                if self.indices.contains_key(&index) || self.aliases.contains_key(&index) {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "resource_already_exists_exception",
                        format!("index [{index}] already exists"),
                    );
                }
                let spec = if body.is_empty() {
                    json!({})
                } else {
                    match parsed() {
                        Some(s) => s,
                        None => {
                            return error(
                                StatusCode::BAD_REQUEST,
                                "parse_exception",
                                "body is not JSON".into(),
                            )
                        }
                    }
                };
                for (alias, def) in spec["aliases"].as_object().cloned().unwrap_or_default() {
                    if self.indices.contains_key(&alias) {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "invalid_alias_name_exception",
                            format!("an index exists with the same name as the alias [{alias}]"),
                        );
                    }
                    if def["is_write_index"] == true {
                        self.aliases.insert(alias, index.clone());
                    }
                }
                self.settings
                    .insert(index.clone(), self.template_settings(&index));
                self.indices.insert(index.clone(), 0);
                (
                    StatusCode::OK,
                    json!({"acknowledged": true, "index": index}),
                )
            }
            ("POST", ["_bulk"]) => {
                let mut items = Vec::new();
                let mut lines = body.split(|b| *b == b'\n').filter(|l| !l.is_empty());
                while let Some(action) = lines.next() {
                    let Ok(action) = serde_json::from_slice::<Value>(action) else {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "parse_exception",
                            "bad action line".into(),
                        );
                    };
                    let _doc = lines.next();
                    let (op, meta) = match action.as_object().and_then(|o| o.iter().next()) {
                        Some((op, meta)) => (op.clone(), meta.clone()),
                        None => {
                            return error(
                                StatusCode::BAD_REQUEST,
                                "parse_exception",
                                "empty action".into(),
                            )
                        }
                    };
                    let target = meta["_index"].as_str().unwrap_or_default().to_string();
                    // A write alias resolves to its index; an unknown name is created as
                    // a plain index, as Elasticsearch's auto-create does.
                    let index = self.aliases.get(&target).cloned().unwrap_or(target);
                    let settings = self.template_settings(&index);
                    self.settings.entry(index.clone()).or_insert(settings);
                    *self.indices.entry(index.clone()).or_insert(0) += 1;
                    items
                        .push(json!({ op: {"_index": index, "status": 201, "result": "created"} }));
                }
                (
                    StatusCode::OK,
                    json!({"took": 1, "errors": false, "items": items}),
                )
            }
            _ => error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                format!("unexpected request {method} {path}"),
            ),
        }
    }
}

/// The receiver, on a thread of its own, until the test ends.
fn start_cluster() -> (u16, Arc<Mutex<Cluster>>) {
    let cluster = Arc::new(Mutex::new(Cluster::default()));
    let port = common::free_port();
    let shared = cluster.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
                let shared = shared.clone();
                async move {
                    let (status, value) = shared.lock().unwrap().handle(&method, uri.path(), &body);
                    let text = if value.is_null() {
                        String::new()
                    } else {
                        value.to_string()
                    };
                    (status, [("content-type", "application/json")], text)
                }
            });
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    assert!(
        common::wait_for_port(port, Duration::from_secs(10)),
        "the receiver did not listen"
    );
    (port, cluster)
}

fn run_sluice(port: u16, count: usize, extra: &str, data: &std::path::Path) -> std::process::Child {
    let config = format!(
        r#"input {{ generator {{ count => {count} lines => ['{{"n": 1}}'] codec => json }} }}
        output {{ elasticsearch {{
            hosts => ["127.0.0.1:{port}"]
            retry_initial_interval => 0.05
            retry_max_interval => 0.2
            {extra}
        }} }}"#
    );
    let mut cmd = common::sluice();
    cmd.args(["--api.enabled", "false", "-e", &config])
        .arg("--path.data")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_exit(mut child: std::process::Child, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn ilm_creates_the_default_policy_and_the_rollover_alias_and_writes_through_it() {
    let (port, cluster) = start_cluster();
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template.json");
    std::fs::write(
        &template,
        r#"{"index_patterns": ["whatever-*"], "template": {"settings": {"number_of_shards": 1}}}"#,
    )
    .unwrap();
    let child = run_sluice(
        port,
        100,
        &format!(
            r#"ilm_enabled => true ilm_rollover_alias => "app" template => "{}" template_name => "app""#,
            template.display()
        ),
        &dir.path().join("data"),
    );
    let log = wait_exit(child, Duration::from_secs(60));
    let c = cluster.lock().unwrap();
    let today = chrono::Utc::now().format("%Y.%m.%d").to_string();
    let first = format!("app-{today}-000001");
    assert_eq!(c.aliases.get("app"), Some(&first), "{log}");
    assert_eq!(
        c.indices.get(&first),
        Some(&100),
        "every event through the alias: {:?}\n{log}",
        c.indices
    );
    assert!(
        !c.indices.contains_key("app"),
        "no plain index named like the alias"
    );
    // Logstash's default policy: rollover at 25 GB or 30 days.
    assert_eq!(
        c.policies
            .get("logstash-policy")
            .map(|p| p["phases"]["hot"]["actions"]["rollover"].clone()),
        Some(json!({"max_size": "25gb", "max_age": "30d"}))
    );
    // The template matches the alias's indices and names policy and alias, so the
    // first index (and every one after a rollover) is managed.
    let t = &c.templates["app"];
    assert_eq!(t["index_patterns"], json!(["app-*"]));
    assert_eq!(t["template"]["settings"]["number_of_shards"], 1);
    let settings = &c.settings[&first];
    assert_eq!(
        settings["index.lifecycle.name"], "logstash-policy",
        "{settings}"
    );
    assert_eq!(settings["index.lifecycle.rollover_alias"], "app");
}

#[test]
fn an_existing_alias_is_kept_and_a_missing_custom_policy_holds_the_events_until_it_exists() {
    let (port, cluster) = start_cluster();
    {
        let mut c = cluster.lock().unwrap();
        c.indices.insert("logs-000007".into(), 0);
        c.aliases.insert("logs".into(), "logs-000007".into());
    }
    let dir = tempfile::tempdir().unwrap();
    let child = run_sluice(
        port,
        50,
        r#"ilm_rollover_alias => "logs" ilm_policy => "hot-warm""#,
        &dir.path().join("data"),
    );
    // Nothing is written while the policy is missing, and the log says why.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(cluster.lock().unwrap().indices.get("logs-000007"), Some(&0));
    cluster.lock().unwrap().policies.insert(
        "hot-warm".into(),
        json!({"phases": {"hot": {"actions": {}}}}),
    );
    let log = wait_exit(child, Duration::from_secs(60));
    assert!(log.contains("ILM policy hot-warm does not exist"), "{log}");
    let c = cluster.lock().unwrap();
    assert_eq!(
        c.indices.get("logs-000007"),
        Some(&50),
        "{:?}\n{log}",
        c.indices
    );
    assert_eq!(c.aliases.len(), 1, "no second alias or bootstrap index");
    assert_eq!(c.indices.len(), 1, "{:?}", c.indices);
    assert!(
        !c.policies.contains_key("logstash-policy"),
        "only the default policy is ever created"
    );
}
