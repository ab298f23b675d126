//! The elasticsearch output takes real Logstash configurations: the seed deployment's
//! own `logstash.conf` passes `sluice -t` unchanged and runs against an
//! OpenSearch-compatible server (osmem-server, from the test venv), and every option of
//! Logstash's elasticsearch output is either accepted or refused with the reason.

mod beats_client;
mod common;

use beats_client::{window, Client};
use common::{free_port, sluice, wait_for_port, KillOnDrop};
use serde_json::{json, Value};
use sluice::outputs::elasticsearch::Config;
use sluice::plugin::Options;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/seed")
}

fn start_osmem() -> (KillOnDrop, u16) {
    let port = free_port();
    let child = common::start_osmem(port);
    (child, port)
}

async fn get(port: u16, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .expect("osmem-server answers");
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap_or_default();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[test]
fn the_seed_logstash_conf_passes_the_config_test_unchanged() {
    let out = sluice()
        .current_dir(seed_dir())
        .args(["-t", "-f", "logstash.conf"])
        .output()
        .unwrap();
    let log =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("Configuration OK"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_logstash_conf_runs_against_osmem_server() {
    let (_server, es_port) = start_osmem();
    let beats_port = free_port();
    let data = tempdir();
    let child = sluice()
        .current_dir(seed_dir())
        .args([
            "-f",
            "logstash.conf",
            "--api.enabled",
            "false",
            "--path.data",
        ])
        .arg(&data)
        .env("BEATS_PORT", beats_port.to_string())
        .env("ELASTICSEARCH_HOSTS", format!("127.0.0.1:{es_port}"))
        .env("ENVIRONMENT", "staging")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    assert!(
        wait_for_port(beats_port, Duration::from_secs(20)),
        "sluice's beats input did not open"
    );

    const API: u64 = 30;
    const DEVICE: u64 = 20;
    let docs: Vec<Vec<u8>> = (0..API + DEVICE)
        .map(|id| {
            let line = if id < API {
                json!({"timestamp": "2026-11-21T10:00:00.123Z", "service": "valtronics-api", "level": "INFO",
                       "message": format!("GET /api/devices/{id} 200 12.5ms")})
            } else {
                json!({"timestamp": "2026-11-21T10:00:01.000Z", "service": "valtronics-device", "level": "WARN",
                       "message": format!("device=d-{id} rebooted")})
            };
            beats_client::document(id, &line.to_string())
        })
        .collect();
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", beats_port))
        .await
        .unwrap();
    let mut client = Client::new(stream);
    client.send(&window(&docs, true)).await.unwrap();
    let acked =
        tokio::time::timeout(Duration::from_secs(60), client.await_ack(docs.len() as u32)).await;
    assert!(
        matches!(acked, Ok(Some(_))),
        "the window was not acknowledged within 60 s"
    );

    // Acknowledged means indexed: the documents are there, under the template.
    let deadline = Instant::now() + Duration::from_secs(20);
    let index = "valtronics-logs-2026.11.21";
    loop {
        let _ = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{es_port}/{index}/_refresh"))
            .send()
            .await;
        let (_, count) = get(es_port, &format!("/{index}/_count")).await;
        if count["count"] == json!(API + DEVICE) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected {} documents in {index}, got {count}",
            API + DEVICE
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, template) = get(es_port, "/_template/valtronics-logs").await;
    assert_eq!(status, 200, "{template}");
    assert_eq!(
        template["valtronics-logs"]["index_patterns"],
        json!(["valtronics-logs-*"]),
        "template_pattern becomes the template's index_patterns"
    );
    let (_, mapping) = get(es_port, &format!("/{index}/_mapping")).await;
    assert_eq!(
        mapping[index]["mappings"]["properties"]["http_status"]["type"],
        json!("integer"),
        "{mapping}"
    );
    let (_, hits) = get(
        es_port,
        &format!("/{index}/_search?q=service:valtronics-api&size=1"),
    )
    .await;
    let doc = &hits["hits"]["hits"][0]["_source"];
    assert_eq!(doc["http_method"], json!("GET"), "{doc}");
    assert_eq!(doc["http_status"], json!(200), "{doc}");
    assert_eq!(doc["environment"], json!("staging"), "{doc}");
    assert_eq!(
        doc["@timestamp"],
        json!("2026-11-21T10:00:00.123Z"),
        "{doc}"
    );

    let _ = child.0.kill();
    let _ = child.0.wait();
    let mut log = String::new();
    if let Some(mut e) = child.0.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut log);
    }
    let _ = std::fs::remove_dir_all(&data);
    assert!(
        log.contains("document_type is ignored"),
        "document_type is accepted with a warning: {log}"
    );
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sluice-es-compat-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(body: &str) -> Result<Config, String> {
    let mut opts =
        Options::from_text("elasticsearch", "output", body).map_err(|e| e.to_string())?;
    let cfg = Config::from_options(&mut opts).map_err(|e| e.to_string())?;
    opts.finish().map_err(|e| e.to_string())?;
    Ok(cfg)
}

#[test]
fn options_real_configs_use_are_accepted() {
    for body in [
        r#"document_type => "%{[@metadata][type]}""#,
        r#"ilm_enabled => false"#,
        r#"ilm_enabled => "auto" ilm_policy => "hot-warm""#,
        r#"ssl_certificate_verification => false hosts => ["https://es:9200"]"#,
        r#"user => "elastic""#,
        r#"template_api => "legacy" compression_level => 3"#,
        r#"sniffing => false pool_max => 50 pool_max_per_route => 10 validate_after_inactivity => 5000 healthcheck_path => "/""#,
        r#"failure_type_logging_whitelist => ["version_conflict_engine_exception"] silence_errors_in_log => ["x"]"#,
        r#"dlq_on_failed_indexname_interpolation => true proxy => "" path => "/" bulk_path => "/_bulk" retry_on_conflict => 1"#,
        r#"ssl_supported_protocols => ["TLSv1.3", "TLSv1.2"] ecs_compatibility => disabled template_pattern => "logs-*""#,
    ] {
        config(body).unwrap_or_else(|e| panic!("`{body}` was refused: {e}"));
    }
}

#[test]
fn headers_versions_client_certificates_and_scripts_are_read_with_logstash_defaults() {
    use sluice::outputs::elasticsearch::{ScriptKind, VersionType};
    let cfg = config(
        r#"custom_headers => { "X-Tenant" => "blue" "Authorization" => "Bearer t0ken" }
           version => "%{[@metadata][v]}" version_type => "external_gte"
           ssl_certificate => "/etc/c.pem" ssl_key => "/etc/c.key""#,
    )
    .unwrap();
    assert_eq!(cfg.custom_headers.len(), 2);
    assert_eq!(cfg.custom_headers[1].1.expose(), "Bearer t0ken");
    assert!(
        !format!("{cfg:?}").contains("t0ken"),
        "header values are never printed"
    );
    assert_eq!(cfg.version.as_ref().unwrap().source(), "%{[@metadata][v]}");
    assert_eq!(cfg.version_type, Some(VersionType::ExternalGte));
    let cc = cfg.tls.client_certificate.as_ref().unwrap();
    assert_eq!(cc.certificate, PathBuf::from("/etc/c.pem"));
    assert_eq!(cc.key, PathBuf::from("/etc/c.key"));
    assert_eq!(cfg.retry_on_conflict, 1);
    assert!(cfg.script.is_none());

    let cfg = config(
        r#"action => update document_id => "%{id}" script => "ctx._source.n += 1"
           retry_on_conflict => 5"#,
    )
    .unwrap();
    let s = cfg.script.unwrap();
    assert_eq!(s.kind, ScriptKind::Inline);
    assert_eq!(s.lang.as_deref(), Some("painless"));
    assert_eq!(s.var_name, "event");
    assert!(!s.scripted_upsert);
    assert_eq!(cfg.retry_on_conflict, 5);
    let s = config(
        r#"action => update document_id => "%{id}" script => "bump" script_type => ["indexed"]
           script_lang => "" script_var_name => "doc" scripted_upsert => true"#,
    )
    .unwrap()
    .script
    .unwrap();
    assert_eq!(s.kind, ScriptKind::Indexed);
    assert_eq!(s.lang, None);
    assert_eq!(s.var_name, "doc");
    assert!(s.scripted_upsert);
}

#[test]
fn old_and_new_names_and_credentials() {
    let cfg =
        config(r#"ssl_certificate_verification => false hosts => ["https://es:9200"]"#).unwrap();
    assert!(!cfg.tls.verify);
    let cfg = config(r#"ssl_verification_mode => full"#).unwrap();
    assert!(cfg.tls.verify);
    let err = config(r#"ssl_certificate_verification => false ssl_verification_mode => full"#)
        .unwrap_err();
    assert!(err.contains("old name"), "{err}");
    // Logstash sends Basic credentials only with both; a user alone sends none.
    let cfg = config(r#"user => "elastic""#).unwrap();
    assert!(matches!(
        cfg.auth,
        sluice::outputs::elasticsearch::Auth::None
    ));
    assert!(config(r#"compression_level => 0 http_compression => true"#)
        .is_ok_and(|c| !c.http_compression));
}

#[test]
fn ilm_writes_to_the_rollover_alias_as_logstash() {
    let cfg = config(
        r#"ilm_enabled => true ilm_rollover_alias => "seed-logs" index => "ignored-%{+yyyy}""#,
    )
    .unwrap();
    assert_eq!(cfg.index.source(), "seed-logs");
    let ilm = cfg.ilm.expect("ILM is set up before the first write");
    assert_eq!(ilm.bootstrap_index(), "<seed-logs-{now/d}-000001>");
    assert_eq!(ilm.policy, "logstash-policy");
    let cfg = config(r#"ilm_rollover_alias => "logs" ilm_pattern => "000001" ilm_policy => "p""#)
        .unwrap();
    let ilm = cfg.ilm.expect("auto with an alias");
    assert_eq!(
        (ilm.bootstrap_index().as_str(), ilm.policy.as_str()),
        ("<logs-000001>", "p")
    );
    let cfg = config(r#"ilm_rollover_alias => "seed-logs""#).unwrap();
    assert_eq!(
        cfg.index.source(),
        "seed-logs",
        "auto with an alias uses it"
    );
    let cfg = config(r#"ilm_enabled => true"#).unwrap();
    assert_eq!(
        cfg.index.source(),
        "ecs-logstash",
        "Logstash 8's default alias (ECS)"
    );
    let cfg = config(r#"ilm_enabled => true ecs_compatibility => disabled"#).unwrap();
    assert_eq!(cfg.index.source(), "logstash");
    let cfg = config(r#"ilm_enabled => true index => "mine""#).unwrap();
    assert_eq!(
        cfg.index.source(),
        "mine",
        "a custom index without an alias keeps ILM off"
    );
    assert!(cfg.ilm.is_none());
    let cfg = config(r#"ilm_enabled => false ilm_rollover_alias => "seed-logs" index => "mine""#)
        .unwrap();
    assert_eq!(cfg.index.source(), "mine");
    let cfg =
        config(r#"ilm_enabled => true ilm_rollover_alias => "seed-logs" data_stream => true"#)
            .unwrap();
    assert!(cfg.data_stream.is_some());
    assert!(config(r#"ilm_enabled => maybe"#)
        .unwrap_err()
        .contains("ilm_enabled"));
    assert!(config(r#"ilm_rollover_alias => "a-%{x}""#)
        .unwrap_err()
        .contains("%{field}"));
}

#[test]
fn templates_get_index_patterns_from_template_pattern_or_the_old_template_key() {
    let dir = tempdir();
    let legacy = dir.join("legacy.json");
    std::fs::write(&legacy, r#"{"settings": {"number_of_shards": 1}}"#).unwrap();
    let es5 = dir.join("es5.json");
    std::fs::write(&es5, r#"{"template": "old-*", "settings": {}}"#).unwrap();
    let own = dir.join("own.json");
    std::fs::write(
        &own,
        r#"{"index_patterns": ["own-*"], "template": {"settings": {}}}"#,
    )
    .unwrap();
    let t = |path: &std::path::Path, extra: &str| {
        config(&format!(
            r#"template => "{}" template_name => "t" {extra}"#,
            path.display()
        ))
        .unwrap()
        .template
        .expect("a template")
    };
    let spec = t(&legacy, r#"template_pattern => "seed-*""#);
    assert_eq!(spec.body["index_patterns"], json!(["seed-*"]));
    assert_eq!(spec.endpoint(), "_template");
    let spec = t(&es5, r#"template_pattern => "seed-*""#);
    assert_eq!(spec.body["index_patterns"], json!(["old-*"]));
    assert!(spec.body.get("template").is_none());
    let spec = t(&own, r#"template_pattern => "seed-*""#);
    assert_eq!(spec.body["index_patterns"], json!(["own-*"]));
    assert_eq!(spec.endpoint(), "_index_template");
    assert_eq!(
        t(&legacy, r#"template_api => composable"#).endpoint(),
        "_index_template"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn options_that_cannot_be_honoured_are_refused_with_why() {
    for (body, why) in [
        (r#"cloud_id => "x""#, "Elastic Cloud"),
        (r#"cloud_auth => "u:p""#, "Elastic Cloud"),
        (r#"ssl_keystore_path => "/k.p12""#, "ssl_certificate"),
        (r#"ssl_certificate => "/c.pem""#, "needs `ssl_key`"),
        (r#"ssl_key => "/k.pem""#, "needs `ssl_certificate`"),
        (r#"custom_headers => { "Bad Name" => "b" }"#, "header name"),
        (
            "custom_headers => { \"X-A\" => \"two\nlines\" }",
            "header value",
        ),
        (
            r#"version => "seven" version_type => external"#,
            "non-negative integer",
        ),
        (r#"version_type => "force""#, "removed"),
        (r#"version_type => "newest""#, "external_gte"),
        (r#"version => "%{v}" data_stream => true"#, "data_stream"),
        (r#"upsert => "not json""#, "JSON object"),
        (r#"script => "x" script_type => "file""#, "indexed"),
        (r#"script => "x" data_stream => true"#, "data_stream"),
        (r#"retry_on_conflict => -1"#, "positive"),
        (
            r#"ssl_truststore_path => "/t.jks""#,
            "ssl_certificate_authorities",
        ),
        (
            r#"ssl_cipher_suites => ["TLS_AES_128_GCM_SHA256"]"#,
            "cipher",
        ),
        (r#"cacert => "/ca.pem""#, "obsolete"),
        (r#"truststore => "/t.jks""#, "obsolete"),
        (r#"keystore => "/k.jks""#, "obsolete"),
        (r#"parameters => { "a" => "b" }"#, "query parameters"),
        (r#"parent => "%{p}""#, "parent/child"),
        (r#"join_field => "j""#, "parent/child"),
        (r#"drop_error_types => ["x"]"#, "dead letter queue"),
        (r#"sniffing => true"#, "hosts"),
        (
            r#"dlq_on_failed_indexname_interpolation => false"#,
            "dead letter queue",
        ),
        (r#"proxy => "http://proxy:3128""#, "not supported"),
        (r#"path => "/es""#, "not supported"),
        (r#"ssl_supported_protocols => ["TLSv1.1"]"#, "TLSv1.2"),
        (r#"compression_level => 11"#, "0 (off) to 9"),
        (r#"template_api => "newest""#, "legacy"),
    ] {
        let err = config(body)
            .err()
            .unwrap_or_else(|| panic!("`{body}` was accepted"));
        assert!(err.contains(why), "`{body}`: {err}");
    }
}
