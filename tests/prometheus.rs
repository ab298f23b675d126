//! `/metrics` as Prometheus sees it: parsed by a Prometheus text parser, scraped by a
//! real Prometheus, and checked against every metric name the deploy/ rules and Grafana
//! dashboard use. `promtool` (Debian package `prometheus`, installed by scripts/test.sh)
//! validates deploy/.

mod api_support;
mod common;

use api_support::{events_from, get, now_millis, start, to_lines};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A Prometheus tool from the system; fails with the fix when absent.
fn tool(name: &str) -> Command {
    let found = Command::new(name).arg("--version").output().is_ok();
    assert!(
        found,
        "`{name}` is missing: run scripts/test.sh, which installs the Debian package `prometheus`"
    );
    Command::new(name)
}

fn level_of(level: &str) -> &'static str {
    match level.to_ascii_lowercase().as_str() {
        "error" | "critical" | "fatal" => "error",
        "warn" | "warning" => "warning",
        "info" => "info",
        "debug" => "debug",
        _ => "other",
    }
}

/// A Sluice that has counted the first 3,000 test events; returns it and the expected
/// count per (service, level).
fn fed_sluice(dir: &Path) -> (api_support::Running, HashMap<(String, String), u64>) {
    let events = events_from(now_millis() - 3_600_000, 1_000);
    let events = &events[..3_000];
    let sluice = start("error_stats {}", dir, &[]);
    sluice.send(&to_lines(events));
    sluice.wait_counted(events.len() as u64);
    let mut expected = HashMap::new();
    for e in events {
        let service = e["service"].as_str().unwrap_or("unknown").to_string();
        let level = level_of(e["level"].as_str().unwrap_or("")).to_string();
        *expected.entry((service, level)).or_default() += 1;
    }
    (sluice, expected)
}

#[test]
fn metrics_parse_and_counters_agree_with_the_events_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (sluice, expected) = fed_sluice(dir.path());
    let r = get(sluice.api_port, "/metrics", &[]);
    assert_eq!(r.status, 200);
    assert!(r.headers.contains("application/openmetrics-text"));
    let lines = r.body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("a valid exposition");
    let mut seen: HashMap<(String, String), u64> = HashMap::new();
    let mut patterns_total = 0.0;
    let mut value_of = HashMap::new();
    let stats = get(sluice.api_port, "/_node/stats", &[]).json();
    let plugins = &stats["pipelines"]["main"]["plugins"];
    let filter_id = plugins["filters"][0]["id"].as_str().unwrap().to_string();
    let input_id = plugins["inputs"][0]["id"].as_str().unwrap().to_string();
    let sent: u64 = expected.values().sum();
    let mut per_plugin = HashMap::new();
    for s in &scrape.samples {
        let v = match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => continue,
        };
        match s.metric.as_str() {
            "sluice_error_stats_events_total" => {
                let key = (
                    s.labels.get("service").unwrap_or_default().to_string(),
                    s.labels.get("level").unwrap_or_default().to_string(),
                );
                *seen.entry(key).or_default() += v as u64;
            }
            "sluice_error_stats_errors_total" => patterns_total += v,
            "sluice_input_events_total"
            | "sluice_plugin_events_in_total"
            | "sluice_plugin_events_out_total" => {
                let id = s.labels.get("plugin_id").unwrap_or_default().to_string();
                per_plugin.insert((s.metric.clone(), id), v as u64);
            }
            _ => {}
        }
        value_of.insert(s.metric.clone(), v);
    }
    assert_eq!(seen, expected);
    let errors: u64 = expected
        .iter()
        .filter(|((_, l), _)| l == "error")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(patterns_total as u64, errors, "errors by pattern add up");
    // Per-plugin flow: what the input pushed, the error_stats filter took in and passed on.
    for (metric, id) in [
        ("sluice_input_events_total", &input_id),
        ("sluice_plugin_events_in_total", &filter_id),
        ("sluice_plugin_events_out_total", &filter_id),
    ] {
        assert_eq!(
            per_plugin.get(&(metric.to_string(), id.clone())),
            Some(&sent),
            "{metric}{{plugin_id={id}}}"
        );
    }
    assert!(value_of["process_resident_memory_bytes"] > 1e6);
    assert!(value_of["process_open_fds"] >= 3.0);
    assert!(value_of["process_cpu_seconds_total"] > 0.0);
    assert_eq!(
        value_of["sluice_error_stats_services"] as usize,
        expected
            .keys()
            .map(|(s, _)| s)
            .collect::<BTreeSet<_>>()
            .len()
    );
}

#[test]
fn promtool_accepts_the_deploy_config_and_rules() {
    for args in [
        ["check", "config", "deploy/prometheus.yml"],
        ["check", "rules", "deploy/alerts.yml"],
    ] {
        let out = tool("promtool")
            .args(args)
            .current_dir(repo(""))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every metric name `text` mentions.
fn metric_names(text: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\b(?:sluice|process)_[a-z0-9_]+").unwrap();
    re.find_iter(text).map(|m| m.as_str().to_string()).collect()
}

/// The sample names an exposition has or would have once its families have samples.
fn exported_names(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            for s in suffixes {
                names.insert(format!("{name}{s}"));
            }
        } else if !line.starts_with('#') {
            if let Some(name) = line.split(['{', ' ']).next() {
                names.insert(name.to_string());
            }
        }
    }
    names
}

#[test]
fn every_metric_the_dashboard_and_rules_use_is_exported() {
    let dir = tempfile::tempdir().unwrap();
    let (sluice, _) = fed_sluice(dir.path());
    let exported = exported_names(&get(sluice.api_port, "/metrics", &[]).body);
    let dashboard = std::fs::read_to_string(repo("deploy/grafana/dashboards/sluice.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard JSON");
    let mut exprs = String::new();
    fn collect(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    if k == "expr" {
                        out.push_str(v.as_str().unwrap_or_default());
                        out.push('\n');
                    } else {
                        collect(v, out);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    collect(&dashboard, &mut exprs);
    let rules = std::fs::read_to_string(repo("deploy/alerts.yml")).unwrap();
    for (what, text) in [("dashboard", &exprs), ("alert rules", &rules)] {
        let used = metric_names(text);
        assert!(used.len() >= 5, "{what} uses metrics: {used:?}");
        let missing: Vec<_> = used.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "{what} uses metrics Sluice does not export: {missing:?}"
        );
    }
}

#[test]
fn a_real_prometheus_scrapes_sluice_and_loads_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (sluice, expected) = fed_sluice(&dir.path().join("sluice"));
    let total: u64 = expected.values().sum();
    let prom_port = common::free_port();
    std::fs::copy(repo("deploy/alerts.yml"), dir.path().join("alerts.yml")).unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
             rule_files: [alerts.yml]\n\
             scrape_configs:\n  - job_name: sluice\n    static_configs: [{{ targets: ['127.0.0.1:{}'] }}]\n",
            sluice.api_port
        ),
    )
    .unwrap();
    let mut cmd = tool("prometheus");
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"));
    let _prometheus = common::spawn(cmd);
    assert!(
        common::wait_for_port(prom_port, Duration::from_secs(30)),
        "prometheus did not listen within 30s"
    );
    let ready_by = Instant::now() + Duration::from_secs(60);
    while get(prom_port, "/-/ready", &[]).status != 200 {
        assert!(Instant::now() < ready_by, "prometheus not ready within 60s");
        std::thread::sleep(Duration::from_millis(200));
    }
    let query = |q: &str| {
        let path = format!("/api/v1/query?query={}", q.replace(' ', "%20"));
        get(prom_port, &path, &[]).json()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let last = query("sum(sluice_error_stats_events_total)");
        let value = last["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok());
        if value == Some(total as f64) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus did not scrape {total} events within 60s: {last}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // The pipeline's own counters, scraped too.
    let pushed = query("sum(sluice_input_events_total)");
    assert_eq!(
        pushed["data"]["result"][0]["value"][1],
        total.to_string(),
        "{pushed}"
    );
    let up = query("up{job=\"sluice\"}");
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
    // The rules loaded without errors.
    let rules = get(prom_port, "/api/v1/rules", &[]).json();
    let group = &rules["data"]["groups"][0];
    assert_eq!(group["name"], "sluice");
    for rule in group["rules"].as_array().unwrap() {
        assert_ne!(rule["health"], "err", "{rule}");
    }
}
