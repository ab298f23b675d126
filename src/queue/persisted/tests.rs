use super::*;
use crate::batch::AckReceiver;
use crate::event::Value;

fn config(dir: &Path) -> PersistedConfig {
    let mut c = PersistedConfig::new(dir.to_path_buf());
    c.checkpoint_interval = Duration::from_millis(20);
    c
}

/// A batch of events numbered `from..to` (field `n`), with an ack to watch.
fn numbered(from: i64, to: i64) -> (Batch, AckReceiver) {
    let events = (from..to)
        .map(|i| {
            let mut e = Event::new();
            e.insert_field("n", Value::Int(i));
            e.metadata_mut().insert("kept".into(), Value::Int(i));
            e
        })
        .collect();
    let (ack, rx) = Ack::channel();
    (Batch::new(events, ack), rx)
}

fn numbers(b: &Batch) -> Vec<i64> {
    b.events
        .iter()
        .map(|e| match e.get_field("n") {
            Some(Value::Int(n)) => *n,
            other => panic!("no number: {other:?}"),
        })
        .collect()
}

/// Pops everything there is (no waiting past `limit` for the next batch).
async fn drain(q: &PersistedQueue, max: usize, deliver: bool) -> Vec<i64> {
    let mut out = Vec::new();
    while let Ok(Some(b)) =
        tokio::time::timeout(Duration::from_millis(300), q.pop(max, Duration::ZERO)).await
    {
        out.extend(numbers(&b));
        if !deliver {
            b.fail();
        }
    }
    out
}

#[tokio::test]
async fn events_and_metadata_come_back_in_order_and_the_input_is_acked() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.checkpoint_writes = 1;
    let q = PersistedQueue::open(cfg).unwrap();
    let (b, rx) = numbered(0, 5);
    q.push(b).await.unwrap();
    assert_eq!(rx.wait().await, AckStatus::Delivered);
    let (b, _) = numbered(5, 8);
    q.push(b).await.unwrap();
    let got = q.pop(6, Duration::ZERO).await.unwrap();
    assert_eq!(numbers(&got), vec![0, 1, 2, 3, 4, 5]);
    let meta = got.events[2].metadata().unwrap();
    assert_eq!(meta.get("kept"), Some(&Value::Int(2)));
    drop(got);
    assert_eq!(drain(&q, 100, true).await, vec![6, 7]);
}

#[tokio::test]
async fn a_restart_replays_exactly_what_was_not_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let q = PersistedQueue::open(config(tmp.path())).unwrap();
        for i in 0..10 {
            q.push(numbered(i * 10, i * 10 + 10).0).await.unwrap();
        }
        // Records 0..3 delivered, record 3 fails, 4 and 5 delivered, the rest never read.
        for i in 0..6 {
            let b = q.pop(10, Duration::ZERO).await.unwrap();
            assert_eq!(numbers(&b)[0], i * 10);
            if i == 3 {
                b.fail();
            }
        }
    }
    let q = PersistedQueue::open(config(tmp.path())).unwrap();
    let got = drain(&q, 1000, true).await;
    let expected: Vec<i64> = (30..100).collect();
    assert_eq!(
        got, expected,
        "replay starts at the first unacknowledged record"
    );
    assert_eq!(q.counters().recovered_records, 7);
    drop(q);
    // Everything acknowledged now: nothing comes back.
    let q = PersistedQueue::open(config(tmp.path())).unwrap();
    assert!(drain(&q, 1000, true).await.is_empty());
}

#[tokio::test]
async fn more_than_memory_holds_spills_to_disk_and_reads_back_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    // About two records of 7 events.
    cfg.memory_window = 1024;
    cfg.page_capacity = 4096;
    let q = PersistedQueue::open(cfg).unwrap();
    for i in 0..50 {
        q.push(numbered(i * 7, i * 7 + 7).0).await.unwrap();
    }
    let in_memory = q.stats().memory_events;
    assert!(
        (1..=14).contains(&in_memory),
        "{in_memory} events in memory"
    );
    let got = drain(&q, 33, true).await;
    assert_eq!(got, (0..350).collect::<Vec<i64>>());
    // Acknowledged pages are deleted; the head stays.
    let pages = list_pages(tmp.path()).unwrap();
    assert_eq!(pages.len(), 1, "{pages:?}");
}

#[tokio::test]
async fn a_full_queue_makes_push_wait_until_acks_free_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.max_bytes = 16 * 1024;
    cfg.memory_window = 512;
    let q = Arc::new(PersistedQueue::open(cfg).unwrap());
    let mut pushed = 0;
    loop {
        let (b, _) = numbered(pushed, pushed + 10);
        match tokio::time::timeout(Duration::from_millis(200), q.push(b)).await {
            Ok(r) => r.unwrap(),
            Err(_) => break,
        }
        pushed += 10;
        assert!(pushed < 10_000, "push never waited");
    }
    assert!(q.stats().disk_bytes >= 16 * 1024);
    let q2 = q.clone();
    let last = tokio::spawn(async move { q2.push(numbered(100_000, 100_001).0).await });
    let got = drain(&q, 64, true).await;
    last.await.unwrap().unwrap();
    let mut got = got;
    got.extend(drain(&q, 64, true).await);
    // The batch cancelled by the timeout above never entered; everything else did.
    let mut expected: Vec<i64> = (0..pushed).collect();
    expected.push(100_000);
    assert_eq!(got, expected);
}

/// Writes records 0..n (one event each) and drops the queue without acking anything.
async fn write_unacked(dir: &Path, n: i64) {
    let mut cfg = config(dir);
    cfg.checkpoint_writes = 1;
    let q = PersistedQueue::open(cfg).unwrap();
    for i in 0..n {
        q.push(numbered(i, i + 1).0).await.unwrap();
    }
}

#[tokio::test]
async fn a_torn_last_record_is_cut_off_and_the_rest_replayed() {
    let tmp = tempfile::tempdir().unwrap();
    write_unacked(tmp.path(), 20).await;
    let page = tmp.path().join(page_name(1));
    let len = std::fs::metadata(&page).unwrap().len();
    segment::truncate(&page, len - 5).unwrap();
    let q = PersistedQueue::open(config(tmp.path())).unwrap();
    assert_eq!(q.counters().torn_tails, 1);
    assert_eq!(drain(&q, 100, true).await, (0..19).collect::<Vec<i64>>());
    // A write after the cut is not glued to the fragment: the next start reads it.
    q.push(numbered(19, 20).0).await.unwrap();
    drop(q);
    let q = PersistedQueue::open(config(tmp.path())).unwrap();
    assert_eq!(drain(&q, 100, true).await, vec![19]);
    assert_eq!(
        q.counters(),
        Counters {
            recovered_records: 1,
            ..Counters::default()
        }
    );
}

#[tokio::test]
async fn a_damaged_record_is_counted_moved_aside_and_the_others_delivered() {
    let tmp = tempfile::tempdir().unwrap();
    write_unacked(tmp.path(), 20).await;
    let page = tmp.path().join(page_name(1));
    let mut bytes = std::fs::read(&page).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&page, &bytes).unwrap();
    let q = PersistedQueue::open(config(tmp.path())).unwrap();
    let c = q.counters();
    assert_eq!(c.damaged_records, 1, "{c:?}");
    let got = drain(&q, 100, true).await;
    assert_eq!(got.len(), 19, "{got:?}");
    assert!(std::fs::read_dir(tmp.path().join("corrupt"))
        .unwrap()
        .next()
        .is_some());
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let _q = PersistedQueue::open(config(tmp.path())).unwrap();
    assert!(matches!(
        PersistedQueue::open(config(tmp.path())),
        Err(PersistedError::Lock(LockError::Busy { .. }))
    ));
}

#[tokio::test]
async fn pipelined_pushes_are_acked_only_after_the_sync_that_covers_them() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.checkpoint_writes = 1;
    let q = PersistedQueue::open(cfg).unwrap();
    // Each ack records its write number and how many writes were synced when it fired.
    let fired = Arc::new(Mutex::new(Vec::new()));
    let mut last = None;
    for i in 0..200u64 {
        let (mut b, _) = numbered(i as i64, i as i64 + 1);
        let synced = q.inner.synced.subscribe();
        let fired = fired.clone();
        let ack = Ack::new(move |status| {
            let done = *synced.borrow();
            fired.lock().unwrap().push((i + 1, done, status));
        });
        b = Batch::new(std::mem::take(&mut b.events), ack);
        last = Some(q.push_pipelined(b).await.unwrap());
    }
    last.unwrap().wait().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fired.lock().unwrap().len() < 200 {
        assert!(
            Instant::now() < deadline,
            "acks did not fire after the sync"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for &(seq, synced, status) in fired.lock().unwrap().iter() {
        assert_eq!(status, AckStatus::Delivered);
        assert!(
            synced >= seq,
            "write {seq} acked when only {synced} were synced"
        );
    }
    assert_eq!(drain(&q, 1000, true).await, (0..200).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_stop_syncs_pipelined_writes_and_fires_their_acks() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.checkpoint_writes = 1;
    let q = PersistedQueue::open(cfg).unwrap();
    let (b, rx) = numbered(0, 3);
    let durable = q.push_pipelined(b).await.unwrap();
    drop(q);
    // The last sync at stop covers it: delivered, and the wait ends.
    assert_eq!(rx.wait().await, AckStatus::Delivered);
    assert!(durable.wait().await.is_ok());
}

#[tokio::test]
async fn records_within_the_memory_window_are_never_read_back_from_disk() {
    let tmp = tempfile::tempdir().unwrap();
    // The default window: far more than these 3,000 events (30 records).
    let q = PersistedQueue::open(config(tmp.path())).unwrap();
    for i in 0..30 {
        q.push(numbered(i * 100, i * 100 + 100).0).await.unwrap();
    }
    // Workers that read the page back would find only zeros there.
    let page = tmp.path().join(page_name(1));
    let len = std::fs::metadata(&page).unwrap().len() as usize;
    std::fs::write(&page, vec![0u8; len]).unwrap();
    assert_eq!(q.stats().memory_events, 3000);
    assert_eq!(drain(&q, 125, true).await, (0..3000).collect::<Vec<i64>>());
    assert_eq!(q.counters().damaged_records, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_reading_spilled_records_at_once_get_each_event_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    // Nearly everything spills: the workers decode records read back from disk.
    cfg.memory_window = 1024;
    cfg.page_capacity = 8192;
    let q = Arc::new(PersistedQueue::open(cfg).unwrap());
    for i in 0..200 {
        q.push(numbered(i * 9, i * 9 + 9).0).await.unwrap();
    }
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let q = q.clone();
            // Batches of 4: records of 9 are split between takes, and their rest
            // must come back exactly once.
            tokio::spawn(async move { drain(&q, 4, true).await })
        })
        .collect();
    let mut got = Vec::new();
    for w in workers {
        got.extend(w.await.unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, (0..1800).collect::<Vec<i64>>());
    assert_eq!(q.counters().damaged_records, 0);
}

#[tokio::test]
async fn one_pop_gathers_several_records_read_back_from_disk() {
    let tmp = tempfile::tempdir().unwrap();
    write_unacked(tmp.path(), 10).await;
    // Reopened: every record is on disk only.
    let q = PersistedQueue::open(config(tmp.path())).unwrap();
    let got = q.pop(100, Duration::ZERO).await.unwrap();
    assert_eq!(numbers(&got), (0..10).collect::<Vec<i64>>());
}

#[tokio::test]
async fn a_page_written_in_json_lines_by_an_earlier_version_replays() {
    let tmp = tempfile::tempdir().unwrap();
    // What earlier versions wrote: one record per batch, a JSON line per event, and
    // `[fields, metadata]` for an event with metadata.
    let mut page = Vec::new();
    segment::frame(
        concat!(
            r#"{"@timestamp":"2026-11-21T10:30:00.000Z","@version":"1","n":0}"#,
            "\n",
            r#"[{"@timestamp":"2026-11-21T10:30:00.000Z","@version":"1","n":1},{"kept":1}]"#,
            "\n"
        )
        .as_bytes(),
        &mut page,
    );
    segment::frame(
        br#"{"@timestamp":"2026-11-21T10:30:01.000Z","@version":"1","n":2}"#,
        &mut page,
    );
    std::fs::write(tmp.path().join(page_name(1)), &page).unwrap();
    let q = PersistedQueue::open(config(tmp.path())).unwrap();
    assert_eq!(q.counters().recovered_records, 2);
    // New writes (binary) go after the old ones on the same page.
    q.push(numbered(3, 5).0).await.unwrap();
    let got = q.pop(10, Duration::ZERO).await.unwrap();
    assert_eq!(numbers(&got), vec![0, 1, 2, 3, 4]);
    assert_eq!(
        got.events[1].metadata().and_then(|m| m.get("kept")),
        Some(&Value::Int(1))
    );
    assert_eq!(q.counters().damaged_records, 0);
}
