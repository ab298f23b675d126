//! The error statistics API against a running Sluice: every number of the summary,
//! health and trends answers is recomputed here, independently, from the same input.

mod api_support;
mod common;

use api_support::{events_from, get, now_millis, start, start_binary, to_lines};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

const HOUR: i64 = 3_600_000;

/// The level class the way the filter's documentation defines it.
fn level_class(level: Option<&Value>) -> &'static str {
    let text = match level {
        Some(Value::String(s)) => s.trim().to_lowercase(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return "other",
    };
    if let Ok(n) = text.parse::<i64>() {
        return match n {
            0..=3 => "error",
            4 => "warning",
            5 | 6 => "info",
            7 => "debug",
            _ => "other",
        };
    }
    match text.as_str() {
        "error" | "critical" | "fatal" | "err" | "crit" | "severe" | "emerg" | "emergency"
        | "alert" => "error",
        "warn" | "warning" => "warning",
        "info" | "information" | "informational" | "notice" => "info",
        "debug" | "trace" | "fine" | "finer" | "finest" | "verbose" => "debug",
        _ => "other",
    }
}

fn pattern_of(message: &str) -> &'static str {
    let m = message.to_lowercase();
    for (name, word) in [
        ("connection_error", "connection"),
        ("database_error", "database"),
        ("timeout_error", "timeout"),
        ("memory_error", "memory"),
        ("file_error", "file"),
    ] {
        if m.contains(word) {
            return name;
        }
    }
    "other"
}

/// Expected trend bucket: counts per level, and (logs, errors) per service.
type Bucket<'a> = (HashMap<&'static str, u64>, HashMap<&'a str, (u64, u64)>);

struct Seen {
    service: String,
    level: &'static str,
    millis: i64,
    message: String,
}

fn seen(events: &[Value]) -> Vec<Seen> {
    events
        .iter()
        .map(|e| Seen {
            service: e["service"].as_str().unwrap_or("unknown").to_string(),
            level: level_class(e.get("level")),
            millis: chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap())
                .unwrap()
                .timestamp_millis(),
            message: e["message"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(100)
                .collect(),
        })
        .collect()
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

fn close(a: &Value, b: f64, what: &str) {
    let a = a
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {a}"));
    assert!((a - b).abs() < 1e-9, "{what}: API says {a}, expected {b}");
}

/// Sorted by count descending, then by key, as the API documents.
fn ranked<K: Ord + Clone>(counts: &HashMap<K, u64>) -> Vec<(K, u64)> {
    let mut v: Vec<(K, u64)> = counts.iter().map(|(k, c)| (k.clone(), *c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

#[test]
fn summary_health_and_trends_match_an_independent_count() {
    let dir = tempfile::tempdir().unwrap();
    // 20,000 events spread over the last 20 hours, 3.6 s apart.
    let start_ms = now_millis() - 20 * HOUR;
    let events = events_from(start_ms, 3_600);
    let sluice = start(
        r#"date { match => ["timestamp", "ISO8601"] } error_stats { top_messages => 100 }"#,
        dir.path(),
        &[],
    );
    sluice.send(&to_lines(&events));
    sluice.wait_counted(events.len() as u64);
    let seen = seen(&events);
    let errors: Vec<&Seen> = seen.iter().filter(|s| s.level == "error").collect();
    assert!(errors.len() > 500, "the data set has errors to count");

    // Summary over 24 h.
    let summary = get(
        sluice.api_port,
        "/api/v1/errors/summary?hours=24&top=5",
        &[],
    )
    .json();
    assert_eq!(summary["period"]["hours"], 24);
    assert_eq!(summary["total_errors"], errors.len() as u64);
    let mut per_service: HashMap<String, u64> = HashMap::new();
    let mut per_message: HashMap<String, HashMap<String, u64>> = HashMap::new();
    let mut patterns: HashMap<&str, u64> = HashMap::new();
    for e in &errors {
        *per_service.entry(e.service.clone()).or_default() += 1;
        *per_message
            .entry(e.service.clone())
            .or_default()
            .entry(e.message.clone())
            .or_default() += 1;
        *patterns.entry(pattern_of(&e.message)).or_default() += 1;
    }
    let by_service = summary["errors_by_service"].as_object().unwrap();
    let api_order: Vec<&String> = by_service.keys().collect();
    let expected_order: Vec<String> = ranked(&per_service).into_iter().map(|(s, _)| s).collect();
    assert_eq!(api_order, expected_order.iter().collect::<Vec<_>>());
    for (service, count) in &per_service {
        let s = &by_service[service];
        assert_eq!(s["count"], *count, "{service} count");
        close(&s["rate_per_hour"], round(*count as f64 / 24.0, 2), service);
        let expected: Vec<Value> = ranked(&per_message[service])
            .into_iter()
            .take(5)
            .map(|(m, c)| serde_json::json!({"message": m, "count": c}))
            .collect();
        assert_eq!(
            s["top_messages"],
            Value::Array(expected),
            "{service} top messages"
        );
    }
    for name in [
        "connection_error",
        "database_error",
        "timeout_error",
        "memory_error",
        "file_error",
        "other",
    ] {
        assert_eq!(
            summary["error_patterns"][name],
            patterns.get(name).copied().unwrap_or(0),
            "pattern {name}"
        );
    }
    let mut all_messages: HashMap<(String, String), u64> = HashMap::new();
    for (service, messages) in &per_message {
        for (m, c) in messages {
            all_messages.insert((service.clone(), m.clone()), *c);
        }
    }
    let expected_top: Vec<Value> = ranked(&all_messages)
        .into_iter()
        .take(10)
        .map(|((s, m), c)| serde_json::json!({"service": s, "message": m, "count": c}))
        .collect();
    assert_eq!(summary["top_errors"], Value::Array(expected_top));

    // One service.
    let (one, one_count) = ranked(&per_service)[0].clone();
    let only = get(
        sluice.api_port,
        &format!("/api/v1/errors/summary?hours=24&service={one}"),
        &[],
    )
    .json();
    assert_eq!(only["total_errors"], one_count);
    assert_eq!(only["errors_by_service"].as_object().unwrap().len(), 1);

    // Health over 24 h (the default hour would see only the last of the 20).
    let health = get(sluice.api_port, "/api/v1/services/health?hours=24", &[]).json();
    let mut totals: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for s in &seen {
        let t = totals.entry(&s.service).or_default();
        t.0 += 1;
        t.1 += u64::from(s.level == "error");
    }
    let services = health["services"].as_object().unwrap();
    assert_eq!(services.len(), totals.len());
    for (service, (logs, errs)) in &totals {
        let h = &services[*service];
        let rate = *errs as f64 / *logs as f64;
        let score = round(100.0 - rate * 100.0, 2);
        assert_eq!(h["total_logs"], *logs, "{service} logs");
        assert_eq!(h["error_count"], *errs, "{service} errors");
        close(&h["error_rate"], round(rate, 4), service);
        close(&h["health_score"], score, service);
        let status = if score > 80.0 {
            "healthy"
        } else if score > 60.0 {
            "degraded"
        } else {
            "unhealthy"
        };
        assert_eq!(h["status"], status, "{service} status");
    }
    // The last hour holds only the events of the last hour.
    let recent = get(sluice.api_port, "/api/v1/services/health", &[]).json();
    let window_start = (now_millis() / 60_000 - 59) * 60_000;
    let recent_logs: u64 = recent["services"]
        .as_object()
        .unwrap()
        .values()
        .map(|h| h["total_logs"].as_u64().unwrap())
        .sum();
    let expected_recent = seen.iter().filter(|s| s.millis >= window_start).count() as u64;
    // The minute may turn between the two clocks: allow one minute of events.
    assert!(
        recent_logs.abs_diff(expected_recent) <= 17,
        "last hour: API {recent_logs}, expected about {expected_recent}"
    );

    // Trends: hourly buckets by level and by service.
    let trends = get(
        sluice.api_port,
        "/api/v1/errors/trends?hours=24&bucket=1h",
        &[],
    )
    .json();
    assert_eq!(trends["bucket_seconds"], 3600);
    let mut expected: BTreeMap<i64, Bucket> = BTreeMap::new();
    for s in &seen {
        let b = expected
            .entry(s.millis.div_euclid(HOUR) * HOUR)
            .or_default();
        *b.0.entry(s.level).or_default() += 1;
        let svc = b.1.entry(&s.service).or_default();
        svc.0 += 1;
        svc.1 += u64::from(s.level == "error");
    }
    let buckets = trends["buckets"].as_array().unwrap();
    assert!(
        buckets.len() >= 24 && buckets.len() <= 26,
        "{} buckets",
        buckets.len()
    );
    let mut matched = 0;
    for b in buckets {
        let start = chrono::DateTime::parse_from_rfc3339(b["start"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        let empty = Default::default();
        let (levels, services) = expected.get(&start).unwrap_or(&empty);
        for level in ["error", "warning", "info", "debug", "other"] {
            assert_eq!(
                b["levels"][level],
                levels.get(level).copied().unwrap_or(0),
                "bucket {} level {level}",
                b["start"]
            );
        }
        let api_services = b["services"].as_object().unwrap();
        assert_eq!(api_services.len(), services.len(), "bucket {}", b["start"]);
        for (svc, (logs, errs)) in services {
            assert_eq!(api_services[*svc]["logs"], *logs, "{svc} in {}", b["start"]);
            assert_eq!(
                api_services[*svc]["errors"], *errs,
                "{svc} in {}",
                b["start"]
            );
        }
        matched += usize::from(expected.contains_key(&start));
    }
    assert_eq!(
        matched,
        expected.len(),
        "every hour with events is a bucket"
    );
}

#[test]
fn bad_parameters_get_400_with_a_json_error() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = start("error_stats {}", dir.path(), &[]);
    for path in [
        "/api/v1/errors/summary?hours=0",
        "/api/v1/errors/summary?hours=abc",
        "/api/v1/errors/summary?hours=169",
        "/api/v1/errors/summary?top=0",
        "/api/v1/errors/summary?color=blue",
        "/api/v1/services/health?hours=-1",
        "/api/v1/errors/trends?bucket=2x",
        "/api/v1/errors/trends?hours=1&bucket=2h",
        "/api/v1/errors/trends?hours=168&bucket=1m",
    ] {
        let r = get(sluice.api_port, path, &[]);
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        let body = r.json();
        assert_eq!(body["error"]["status"], 400, "{path}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{path}: {body}"
        );
    }
    let r = get(sluice.api_port, "/api/v1/nothing", &[]);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["status"], 404);
    // Logstash's documents are there.
    let stats = get(sluice.api_port, "/_node/stats", &[]).json();
    let main = &stats["pipelines"]["main"];
    assert_eq!(main["plugins"]["filters"][0]["name"], "error_stats");
    assert_eq!(main["plugins"]["inputs"][0]["name"], "tcp");
    assert!(main["queue"]["events_count"].is_u64());
    assert_eq!(main["queue"]["type"], "memory");
    assert!(stats["process"]["open_file_descriptors"].as_u64().unwrap() > 0);
    let root = get(sluice.api_port, "/", &[("Accept", "application/json")]).json();
    assert_eq!(
        root["http_address"],
        format!("127.0.0.1:{}", sluice.api_port)
    );
}

/// Node stats name the queue a pipeline runs on, as Logstash's `queue.type`.
#[test]
fn node_stats_report_a_persisted_queue_as_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = start("", dir.path(), &["--queue.type", "persisted"]);
    let stats = get(sluice.api_port, "/_node/stats", &[]).json();
    assert_eq!(
        stats["pipelines"]["main"]["queue"]["type"], "persisted",
        "{stats}"
    );
}

#[test]
fn a_token_guards_every_data_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = start(
        "error_stats {}",
        dir.path(),
        &["--api.auth.token", "s3cret-token"],
    );
    for path in [
        "/api/v1/errors/summary",
        "/api/v1/services/health",
        "/api/v1/errors/trends",
        "/_node/stats",
        "/_node/stats/pipelines",
        "/metrics",
    ] {
        let r = get(sluice.api_port, path, &[]);
        assert_eq!(r.status, 401, "{path} without a token");
        assert!(r
            .headers
            .to_lowercase()
            .contains("www-authenticate: bearer"));
        let wrong = get(
            sluice.api_port,
            path,
            &[("Authorization", "Bearer s3cret-tokeN")],
        );
        assert_eq!(wrong.status, 401, "{path} with a wrong token");
        let ok = get(
            sluice.api_port,
            path,
            &[("Authorization", "Bearer s3cret-token")],
        );
        assert_eq!(ok.status, 200, "{path} with the token: {}", ok.body);
    }
    // The page (no data in it) loads; it sends the token itself.
    let page = get(sluice.api_port, "/", &[("Accept", "text/html")]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>Sluice status</title>"));
    assert_eq!(get(sluice.api_port, "/", &[]).status, 401);
}

#[test]
fn a_public_address_needs_a_token_or_allow_insecure() {
    let port = common::free_port();
    let config = "input { generator { count => 1 } } output { null {} }";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let refused = common::run(
        &[
            "-e",
            config,
            "--api.http.host",
            "0.0.0.0",
            "--api.http.port",
            &port.to_string(),
            "--path.data",
            data,
        ],
        b"",
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--api.auth.token"), "{stderr}");
    for extra in [["--api.allow_insecure", ""], ["--api.auth.token", "t"]] {
        let mut args = vec!["-e", config, "--api.http.host", "0.0.0.0"];
        args.extend(extra.iter().filter(|a| !a.is_empty()));
        let port = port.to_string();
        args.extend(["--api.http.port", &port, "--path.data", data]);
        let ok = common::run(&args, b"");
        assert!(
            ok.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }
}

#[test]
fn a_busy_port_moves_to_the_next_of_the_range_and_a_full_range_fails() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = busy.local_addr().unwrap().port();
    let next = p
        .checked_add(1)
        .filter(|n| std::net::TcpListener::bind(("127.0.0.1", *n)).is_ok());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let config = "input { generator { count => 1 } } output { null {} }";
    let full = common::run(
        &[
            "-e",
            config,
            "--api.http.port",
            &p.to_string(),
            "--path.data",
            data,
        ],
        b"",
    );
    assert!(!full.status.success(), "a busy single port must fail");
    assert!(String::from_utf8_lossy(&full.stderr).contains("cannot bind the HTTP API"));
    if let Some(next) = next {
        let config = format!(
            "input {{ tcp {{ port => {} host => \"127.0.0.1\" }} }} output {{ null {{}} }}",
            common::free_port()
        );
        let mut cmd = common::sluice();
        cmd.args([
            "-e",
            &config,
            "--api.http.port",
            &format!("{p}-{next}"),
            "--path.data",
            data,
        ]);
        let _sluice = common::spawn(cmd);
        assert!(
            common::wait_for_port(next, std::time::Duration::from_secs(30)),
            "the API did not move on to port {next}"
        );
        let r = get(next, "/_node", &[]);
        assert_eq!(r.json()["http_address"], format!("127.0.0.1:{next}"));
    }
}

#[test]
fn a_restart_remembers_the_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let events = events_from(now_millis() - HOUR, 100);
    let input = to_lines(&events[..2000]);
    let errors = events[..2000]
        .iter()
        .filter(|e| level_class(e.get("level")) == "error")
        .count() as u64;
    // A first run reads stdin to its end and stops, writing the snapshot.
    let api_port = common::free_port().to_string();
    let first = common::run(
        &[
            "-e",
            r#"input { stdin { codec => json_lines } } filter { date { match => ["timestamp", "ISO8601"] } error_stats {} } output { null {} }"#,
            "--path.data",
            data,
            "--api.http.port",
            &api_port,
        ],
        &input,
    );
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(dir.path().join("error_stats/snapshot.json").exists());
    // A second run starts with them.
    let sluice = start("error_stats {}", dir.path(), &[]);
    let summary = get(sluice.api_port, "/api/v1/errors/summary?hours=2", &[]).json();
    assert_eq!(summary["total_errors"], errors);
}

/// A field of /proc/PID/status in bytes (`VmRSS` now, `VmHWM` the peak).
fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The release binary when the suite built one (scripts/test.sh does, for the memory
/// tests), else the debug binary of this test run.
fn fastest_binary() -> std::process::Command {
    let release = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/sluice");
    if !release.exists() {
        eprintln!("{} not built: using the debug binary", release.display());
        return common::sluice();
    }
    let mut cmd = std::process::Command::new(release);
    cmd.args(["--log.level", "warn"]);
    cmd
}

/// The resident set of the running binary, read from /proc, stays flat while a million
/// distinct messages from ten thousand services pour in.
#[test]
fn memory_stays_flat_with_a_million_distinct_messages_and_ten_thousand_services() {
    const MIB: f64 = (1 << 20) as f64;
    let dir = tempfile::tempdir().unwrap();
    let sluice = start_binary(
        fastest_binary(),
        "error_stats {}",
        dir.path(),
        &["-b", "1000"],
    );
    let pid = sluice.child.0.id();
    let batch = |from: usize, to: usize| {
        let mut out = Vec::with_capacity((to - from) * 100);
        for i in from..to {
            out.extend_from_slice(
                format!(
                    "{{\"service\":\"svc-{}\",\"level\":\"ERROR\",\"message\":\"request {i} failed after {} ms\"}}\n",
                    i % 10_000,
                    i * 7
                )
                .as_bytes(),
            );
        }
        out
    };
    let started = std::time::Instant::now();
    // Every service seen, and the store's tables at their caps, before the first reading.
    let (warm, total, step) = (100_000, 1_000_000, 100_000);
    sluice.send(&batch(0, warm));
    sluice.wait_counted(warm as u64);
    let before = proc_status_bytes(pid, "VmRSS") as f64;
    for chunk in (warm..total).step_by(step) {
        sluice.send(&batch(chunk, chunk + step));
    }
    // A debug build on a busy machine needs more than the usual minute.
    sluice.wait_counted_within(total as u64, std::time::Duration::from_secs(300));
    let after = proc_status_bytes(pid, "VmRSS") as f64;
    let peak = proc_status_bytes(pid, "VmHWM") as f64;
    let summary = get(
        sluice.api_port,
        "/api/v1/errors/summary?hours=1&top=100",
        &[],
    )
    .json();
    assert_eq!(summary["total_errors"], total as u64);
    // 100 services of their own, the other 9,900 folded into one.
    let services = summary["errors_by_service"].as_object().unwrap();
    assert_eq!(services.len(), 101);
    assert_eq!(services["_other"]["count"], (total / 10_000 * 9_900) as u64);
    assert!(services["_other"]["top_messages"].as_array().unwrap().len() <= 100);
    let grown = (after - before) / MIB;
    eprintln!(
        "resident memory: {:.1} MiB after 100k events, {:.1} MiB after 1M (+{grown:.1} MiB), peak {:.1} MiB; {:.1} s",
        before / MIB,
        after / MIB,
        peak / MIB,
        started.elapsed().as_secs_f64()
    );
    assert!(
        grown < 16.0,
        "memory grew by {grown:.1} MiB for 900k more distinct messages"
    );
    assert!(
        peak < 256.0 * MIB,
        "peak resident memory {:.1} MiB",
        peak / MIB
    );
}

/// The value of the sample `series` (name and labels exactly as exported) in `/metrics`.
fn sample(api_port: u16, series: &str) -> Option<f64> {
    let body = get(api_port, "/metrics", &[]).body;
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Polls `probe` every 50 ms until it returns `want`; fails naming `what` after 60 s.
fn wait_for<T: PartialEq + std::fmt::Debug>(what: &str, want: T, mut probe: impl FnMut() -> T) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let got = probe();
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: still {got:?} after 60 s, expected {want:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Every plugin of pipeline `main` in `/_node/stats/pipelines`, by id.
fn plugins_by_id(api_port: u16) -> HashMap<String, Value> {
    let stats = get(api_port, "/_node/stats/pipelines", &[]).json();
    let mut out = HashMap::new();
    for kind in ["inputs", "filters", "outputs"] {
        for p in stats["pipelines"]["main"]["plugins"][kind]
            .as_array()
            .unwrap()
        {
            out.insert(p["id"].as_str().unwrap().to_string(), p.clone());
        }
    }
    out
}

#[test]
fn per_plugin_counts_and_grok_counters_agree_with_the_events_sent() {
    let dir = tempfile::tempdir().unwrap();
    let pattern = "%{WORD:user} %{INT:num}";
    let sluice = start(
        &format!(
            r#"grok {{ id => "parse" match => {{ "message" => "{pattern}" }} }}
               if "_grokparsefailure" in [tags] {{ drop {{ id => "drop_failed" }} }}
               error_stats {{ id => "stats" }}"#
        ),
        dir.path(),
        &[],
    );
    // 1,000 events: every third one does not match the pattern.
    let total = 1_000u64;
    let mut lines = Vec::new();
    let mut failed = 0u64;
    for i in 0..total {
        let message = if i % 3 == 0 {
            failed += 1;
            format!("-- {i}")
        } else {
            format!("user{i} {i}")
        };
        lines.extend_from_slice(format!("{{\"message\":\"{message}\"}}\n").as_bytes());
    }
    let matched = total - failed;
    sluice.send(&lines);
    sluice.wait_counted(matched);
    let output_id = {
        let stats = get(sluice.api_port, "/_node/stats/pipelines", &[]).json();
        stats["pipelines"]["main"]["plugins"]["outputs"][0]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    wait_for("events the null output settled", matched, || {
        plugins_by_id(sluice.api_port)[&output_id]["events"]["out"]
            .as_u64()
            .unwrap()
    });
    let plugins = plugins_by_id(sluice.api_port);
    let input = plugins
        .values()
        .find(|p| p["name"] == "tcp")
        .expect("the tcp input");
    assert_eq!(input["events"]["out"], total, "{input}");
    for (id, expected_in, expected_out) in [
        ("parse", total, total),
        ("drop_failed", failed, 0),
        ("stats", matched, matched),
        (output_id.as_str(), matched, matched),
    ] {
        let events = &plugins[id]["events"];
        assert_eq!(events["in"], expected_in, "{id} in: {events}");
        assert_eq!(events["out"], expected_out, "{id} out: {events}");
    }
    assert_eq!(plugins[&output_id]["state"], "ok");
    let pipeline = &get(sluice.api_port, "/_node/stats", &[]).json()["pipelines"]["main"];
    assert_eq!(pipeline["events"]["in"], total, "{pipeline}");
    assert_eq!(pipeline["events"]["out"], matched, "{pipeline}");

    // The same counters in Prometheus' format.
    let input_id = input["id"].as_str().unwrap();
    for (series, expected) in [
        (
            format!("sluice_input_events_total{{plugin_id=\"{input_id}\"}}"),
            total,
        ),
        (
            format!("sluice_grok_matches_total{{pattern=\"{pattern}\"}}"),
            matched,
        ),
        (
            format!("sluice_grok_failures_total{{pattern=\"{pattern}\"}}"),
            failed,
        ),
        (
            format!("sluice_grok_timeouts_total{{pattern=\"{pattern}\"}}"),
            0,
        ),
        (
            "sluice_plugin_events_in_total{plugin_id=\"drop_failed\"}".into(),
            failed,
        ),
        (
            "sluice_plugin_events_out_total{plugin_id=\"drop_failed\"}".into(),
            0,
        ),
        (
            "sluice_plugin_events_out_total{plugin_id=\"stats\"}".into(),
            matched,
        ),
        (
            format!("sluice_plugin_events_in_total{{plugin_id=\"{output_id}\"}}"),
            matched,
        ),
        (
            "sluice_pipeline_filter_events_in_total{pipeline=\"main\"}".into(),
            total,
        ),
        (
            "sluice_pipeline_filter_events_out_total{pipeline=\"main\"}".into(),
            matched,
        ),
    ] {
        assert_eq!(
            sample(sluice.api_port, &series),
            Some(expected as f64),
            "{series}"
        );
    }
}

/// Whether a socket listens on TCP `port` (IPv4), read from /proc/net/tcp.
fn listening(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!(":{port:04X}");
    table.lines().skip(1).any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.len() > 3 && cols[1].ends_with(&local) && cols[3] == "0A"
    })
}

#[test]
fn beats_connections_are_counted_open_accepted_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (api_port, beats_port) = (common::free_port(), common::free_port());
    let config = format!(
        "input {{ beats {{ host => \"127.0.0.1\" port => {beats_port} max_connections => 2 }} }} output {{ null {{}} }}"
    );
    let mut cmd = common::sluice();
    cmd.args(["-e", &config, "--api.http.port", &api_port.to_string()])
        .arg("--path.data")
        .arg(dir.path());
    let _sluice = common::spawn(cmd);
    assert!(
        common::wait_for_port(api_port, std::time::Duration::from_secs(30)),
        "the API did not listen within 30s"
    );
    let metric = |name: &str| sample(api_port, name).unwrap_or(-1.0);
    // Wait for the listener without a probe connection, which would be counted.
    wait_for("the beats listener", true, || listening(beats_port));
    let first = std::net::TcpStream::connect(("127.0.0.1", beats_port)).unwrap();
    let second = std::net::TcpStream::connect(("127.0.0.1", beats_port)).unwrap();
    wait_for("two open connections", 2.0, || {
        metric("sluice_beats_connections")
    });
    // A third is one too many: refused (closed at once) and counted.
    let mut third = std::net::TcpStream::connect(("127.0.0.1", beats_port)).unwrap();
    third
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(
        std::io::Read::read(&mut third, &mut buf).unwrap_or(0),
        0,
        "a refused connection is closed"
    );
    wait_for("one refused connection", 1.0, || {
        metric("sluice_beats_connections_refused_total")
    });
    drop(first);
    wait_for("one open connection", 1.0, || {
        metric("sluice_beats_connections")
    });
    drop(second);
    wait_for("no open connection", 0.0, || {
        metric("sluice_beats_connections")
    });
    assert_eq!(metric("sluice_beats_connections_accepted_total"), 2.0);
    assert_eq!(metric("sluice_beats_connections_refused_total"), 1.0);
}

/// Each pipeline of pipelines.yml has its own series of the pipeline metrics (label
/// `pipeline`): before, both added to one counter and set one queue gauge.
#[test]
fn pipeline_metrics_are_labelled_with_their_pipeline() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (api_port, port_a, port_b) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let yml = format!(
        "- pipeline.id: left\n  config.string: 'input {{ tcp {{ host => \"127.0.0.1\" port => {port_a} }} }} output {{ null {{}} }}'\n\
         - pipeline.id: right\n  config.string: 'input {{ tcp {{ host => \"127.0.0.1\" port => {port_b} }} }} output {{ null {{}} }}'\n"
    );
    std::fs::write(dir.path().join("pipelines.yml"), yml).unwrap();
    let mut cmd = common::sluice();
    cmd.args(["--api.http.port", &api_port.to_string()])
        .arg("--path.settings")
        .arg(dir.path())
        .arg("--path.data")
        .arg(dir.path().join("data"));
    let _sluice = common::spawn(cmd);
    for port in [api_port, port_a, port_b] {
        assert!(
            common::wait_for_port(port, std::time::Duration::from_secs(30)),
            "nothing listened on {port} within 30 s"
        );
    }
    for (port, lines) in [(port_a, 3), (port_b, 5)] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        for i in 0..lines {
            writeln!(s, "line {i}").unwrap();
        }
    }
    for (pipeline, events) in [("left", 3.0), ("right", 5.0)] {
        for name in [
            "sluice_pipeline_filter_events_in_total",
            "sluice_pipeline_filter_events_out_total",
        ] {
            let series = format!("{name}{{pipeline=\"{pipeline}\"}}");
            wait_for(&series, Some(events), || sample(api_port, &series));
        }
        let queue = format!("sluice_queue_events{{pipeline=\"{pipeline}\"}}");
        assert!(sample(api_port, &queue).is_some(), "no {queue} in /metrics");
    }
}
