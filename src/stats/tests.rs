use super::query::Window;
use super::store::{Level, Limits, Observation, OTHER_SERVICE};
use super::Store;

const NOW: i64 = 29_000_000; // a Unix minute in 2025

fn obs<'a>(
    service: &'a str,
    level: Level,
    minute: i64,
    error: Option<(u32, &'a str)>,
) -> Observation<'a> {
    Observation {
        service,
        level,
        minute,
        error,
    }
}

#[test]
fn summary_health_and_trends_count_what_was_recorded() {
    let store = Store::new(Limits::default());
    let db = store.pattern("database_error");
    for i in 0..10 {
        store.record_at(&obs("api", Level::Info, NOW - i, None), NOW);
    }
    store.record_at(&obs("api", Level::Error, NOW, Some((db, "db down"))), NOW);
    // Top messages are kept per hour: this one is two hours back.
    store.record_at(&obs("api", Level::Error, NOW - 150, Some((0, "boom"))), NOW);
    store.record_at(&obs("web", Level::Warning, NOW, None), NOW);

    let s = store.summary(Window::last_hours(NOW, 24), None, 5);
    assert_eq!(s.total_errors, 2);
    let api = &s.errors_by_service["api"];
    assert_eq!(api.count, 2);
    assert_eq!(api.rate_per_hour, 0.08);
    assert_eq!(s.error_patterns["database_error"], 1);
    assert_eq!(s.error_patterns["other"], 1);
    assert!(!s.errors_by_service.contains_key("web"));

    let one_hour = store.summary(Window::last_hours(NOW, 1), None, 5);
    assert_eq!(one_hour.total_errors, 1);
    assert_eq!(one_hour.top_errors[0].message, "db down");

    let h = store.health(Window::last_hours(NOW, 1));
    assert_eq!(h.services["api"].total_logs, 11);
    assert_eq!(h.services["api"].error_count, 1);
    assert_eq!(h.services["api"].health_score, 90.91);
    assert_eq!(h.services["api"].status, "healthy");
    assert_eq!(h.services["web"].health_score, 100.0);

    let t = store.trends(Window::last_hours(NOW, 3), 60);
    let total: u64 = t.buckets.iter().map(|b| b.levels["error"]).sum();
    assert_eq!(total, 2);
    assert_eq!(t.bucket_seconds, 3600);
}

#[test]
fn events_older_than_the_retention_are_counted_but_not_kept() {
    let store = Store::new(Limits {
        retention_minutes: 60,
        ..Limits::default()
    });
    store.record_at(&obs("api", Level::Error, NOW - 60, Some((0, "old"))), NOW);
    store.record_at(&obs("api", Level::Error, NOW + 5, Some((0, "future"))), NOW);
    assert_eq!(store.lock().outside_retention, 1);
    let s = store.summary(Window::last_hours(NOW, 1), None, 5);
    assert_eq!(s.total_errors, 1, "a future event counts now");
    // Time passes: the minute falls out of the retention.
    store.record_at(&obs("api", Level::Info, NOW + 61, None), NOW + 61);
    assert_eq!(store.sizes().minute_buckets, 1);
}

#[test]
fn ten_thousand_services_fold_into_the_cap() {
    let store = Store::new(Limits {
        max_services: 100,
        ..Limits::default()
    });
    for i in 0..10_000 {
        let name = format!("service-{i}");
        store.record_at(&obs(&name, Level::Error, NOW, Some((0, "x"))), NOW);
    }
    let sizes = store.sizes();
    assert_eq!(sizes.services, 101);
    assert_eq!(sizes.minute_rows, 101);
    let s = store.summary(Window::last_hours(NOW, 1), None, 5);
    assert_eq!(s.total_errors, 10_000);
    assert_eq!(s.errors_by_service[OTHER_SERVICE].count, 9_900);
}

#[test]
fn a_million_distinct_messages_keep_a_bounded_table() {
    let store = Store::new(Limits {
        top_messages: 20,
        ..Limits::default()
    });
    for i in 0..1_000_000 {
        let message = format!("request {i} failed: connection reset");
        let minute = NOW - (i % 120);
        store.record_at(&obs("api", Level::Error, minute, Some((0, &message))), NOW);
    }
    let sizes = store.sizes();
    // Two hours touched, one service, at most 20 messages each.
    assert!(sizes.top_messages <= 3 * 20, "{sizes:?}");
    assert!(sizes.minute_rows <= 120, "{sizes:?}");
    assert!(sizes.message_bytes < 3 * 20 * 64, "{sizes:?}");
    let s = store.summary(Window::last_hours(NOW, 24), None, 5);
    assert_eq!(s.total_errors, 1_000_000);
}

#[test]
fn a_snapshot_reads_back_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = super::snapshot_path(dir.path());
    let now = super::now_minute();
    let a = Store::new(Limits::default());
    let p = a.pattern("timeout_error");
    a.record_at(
        &obs("api", Level::Error, now - 5, Some((p, "timeout"))),
        now,
    );
    a.record_at(&obs("api", Level::Info, now - 5, None), now);
    a.record_at(&obs("db", Level::Warning, now - 90, None), now);
    a.save(&path).unwrap();
    assert!(!a.is_dirty());

    // A store that registered other names first still maps the counts right.
    let b = Store::new(Limits::default());
    b.pattern("connection_error");
    b.record_at(&obs("zzz", Level::Info, now, None), now);
    assert!(b.load(&path).unwrap());
    let w = Window::last_hours(now, 24);
    let (sa, sb) = (a.summary(w, None, 5), b.summary(w, None, 5));
    assert_eq!(
        serde_json::to_value(&sa).unwrap(),
        serde_json::to_value(&sb)
            .unwrap()
            .as_object()
            .map(|o| {
                let mut o = o.clone();
                // b knows one more pattern (with no errors).
                o["error_patterns"]
                    .as_object_mut()
                    .unwrap()
                    .remove("connection_error");
                serde_json::Value::Object(o)
            })
            .unwrap()
    );
    assert_eq!(b.health(w).services["db"].total_logs, 1);

    std::fs::write(&path, b"{ not json").unwrap();
    assert!(b.load(&path).is_err());
    assert!(!Store::new(Limits::default())
        .load(&dir.path().join("absent.json"))
        .unwrap());
}
