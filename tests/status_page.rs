//! The status page in a real browser: headless Chromium (Debian `chromium`, installed by
//! scripts/test.sh) loads it from a running Sluice fed with the test events, and the
//! rendered DOM must show the services and counts the JSON API returns. A screenshot is
//! left in target/tmp/status-page.png.

mod api_support;
mod common;

use api_support::{events_from, get, now_millis, start, to_lines};
use std::path::Path;
use std::process::Command;

fn chromium() -> &'static str {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(name).arg("--version").output().is_ok() {
            return name;
        }
    }
    panic!("no chromium: run scripts/test.sh, which installs the Debian package `chromium`");
}

/// Runs headless Chromium on `url` with `args`; returns stdout.
fn browse(profile: &Path, url: &str, args: &[&str]) -> String {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `n` as the page prints counts (en-US grouping).
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn the_status_page_shows_what_the_api_returns() {
    let dir = tempfile::tempdir().unwrap();
    // 8,000 events over the last 8 hours: every panel has something to show.
    let events = events_from(now_millis() - 8 * 3_600_000, 3_600);
    let events = &events[..8_000];
    let sluice = start(
        r#"date { match => ["timestamp", "ISO8601"] } error_stats {}"#,
        &dir.path().join("data"),
        &[],
    );
    sluice.send(&to_lines(events));
    sluice.wait_counted(events.len() as u64);

    let url = format!("http://127.0.0.1:{}/", sluice.api_port);
    let dom = browse(&dir.path().join("profile"), &url, &["--dump-dom"]);
    assert!(
        dom.contains("data-loaded=\"true\""),
        "the page never finished a refresh: {dom}"
    );
    let error_line = regex::Regex::new(r#"<span id="error">([^<]*)</span>"#).unwrap();
    let errors = error_line
        .captures(&dom)
        .map(|c| c[1].to_string())
        .unwrap_or_default();
    assert!(errors.is_empty(), "the page reported errors: {errors}");

    // The health table: one row per service, with the API's numbers.
    let health = get(sluice.api_port, "/api/v1/services/health?hours=1", &[]).json();
    let services = health["services"].as_object().unwrap();
    assert!(services.len() >= 3, "{health}");
    for (service, h) in services {
        let row = format!(
            r#"<tr data-service="{service}"><td>{service}</td><td class="num">{}</td><td class="num">{}</td>"#,
            h["total_logs"], h["error_count"]
        );
        assert!(dom.contains(&row), "health row of {service} missing: {row}");
        let status = format!(
            r#"<td class="status-{0}">{0}</td>"#,
            h["status"].as_str().unwrap()
        );
        assert!(dom.contains(&status), "{service}: {status}");
    }

    // The top error messages with their counts.
    let summary = get(
        sluice.api_port,
        "/api/v1/errors/summary?hours=24&top=10",
        &[],
    )
    .json();
    let top = summary["top_errors"].as_array().unwrap();
    assert!(!top.is_empty());
    for t in top {
        let row = format!(
            r#"<td>{}</td><td class="msg">{}</td><td class="num">{}</td>"#,
            t["service"].as_str().unwrap(),
            html_escape(t["message"].as_str().unwrap()),
            t["count"]
        );
        assert!(dom.contains(&row), "top error missing: {row}");
    }
    let total = format!(
        "total errors: {}",
        grouped(summary["total_errors"].as_u64().unwrap())
    );
    assert!(dom.contains(&total), "{total}");

    // The chart's legend: errors per service over the 24 h of the trends answer.
    let trends = get(
        sluice.api_port,
        "/api/v1/errors/trends?hours=24&bucket=1h",
        &[],
    )
    .json();
    let mut per_service = std::collections::BTreeMap::<String, u64>::new();
    for b in trends["buckets"].as_array().unwrap() {
        for (s, c) in b["services"].as_object().unwrap() {
            *per_service.entry(s.clone()).or_default() += c["errors"].as_u64().unwrap();
        }
    }
    for (service, n) in &per_service {
        let legend = format!("{service} ({})", grouped(*n));
        assert!(dom.contains(&legend), "chart legend missing: {legend}");
    }
    let bars = dom.matches("<rect ").count();
    assert!(bars >= 8, "only {bars} bars drawn");
    // The pipeline's plugins are listed with their counts: every event went through the
    // date and error_stats filters, and the tcp input pushed them all.
    let stats = get(sluice.api_port, "/_node/stats", &[]).json();
    let plugins = &stats["pipelines"]["main"]["plugins"];
    let all = grouped(events.len() as u64);
    for (kind, name, shown_in, shown_out) in [
        ("inputs", "tcp", "0", all.as_str()),
        ("filters", "date", all.as_str(), all.as_str()),
        ("filters", "error_stats", all.as_str(), all.as_str()),
    ] {
        let id = plugins[kind]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["id"].as_str())
            .unwrap_or_else(|| panic!("no {name} in {stats}"));
        let row = regex::Regex::new(&format!(
            r#"<tr data-plugin="{0}"><td>{0}</td><td>{name}</td><td class="num">[^<]*</td><td class="num">[^<]*</td><td class="num">{shown_in}</td><td class="num">{shown_out}</td>"#,
            regex::escape(id)
        ))
        .unwrap();
        assert!(
            row.is_match(&dom),
            "plugin row of {name} ({id}) missing or wrong"
        );
    }

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &dir.path().join("profile"),
        &url,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,1000",
        ],
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot of {} bytes",
        png.len()
    );
}
