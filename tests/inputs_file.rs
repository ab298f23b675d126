//! The `file` input on real files in a temporary directory: rotation while writing,
//! copytruncate, a restart in the middle of a file, and many files in read mode.

mod common;

use sluice::batch::Batch;
use sluice::event::Event;
use sluice::inputs::{Input, InputContext};
use sluice::plugin::Options;
use sluice::queue::{MemoryQueue, Queue};
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

struct Running {
    queue: Arc<Queue>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), sluice::inputs::InputError>>,
}

fn start(body: &str, max_events: usize) -> Running {
    let mut opts = Options::from_text("file", "input", body).unwrap();
    let input = sluice::inputs::file::FileInput::build(&mut opts).unwrap();
    opts.finish().unwrap();
    let queue = Arc::new(Queue::Memory(MemoryQueue::new(max_events, 1 << 30)));
    let shutdown = CancellationToken::new();
    let ctx = InputContext::new("file", queue.clone(), shutdown.clone(), Default::default());
    let task = tokio::spawn(Box::new(input).run(ctx));
    Running {
        queue,
        shutdown,
        task,
    }
}

impl Running {
    async fn pop(&self, limit: Duration) -> Batch {
        tokio::time::timeout(limit, self.queue.pop(10_000, Duration::ZERO))
            .await
            .unwrap_or_else(|_| panic!("nothing read within {limit:?}"))
            .unwrap()
    }

    /// Takes (and acks) events until `n` arrived.
    async fn take(&self, n: usize, limit: Duration) -> Vec<Event> {
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "only {} of {n} events within {limit:?}",
                out.len()
            );
            if let Ok(Some(mut b)) =
                tokio::time::timeout(left, self.queue.pop(10_000, Duration::ZERO)).await
            {
                out.append(&mut b.events);
            }
        }
        out
    }

    /// Stops the input; whatever it still pushes is failed (not safe).
    async fn stop(self) {
        self.shutdown.cancel();
        let queue = self.queue.clone();
        let drainer = tokio::spawn(async move {
            while let Some(b) = queue.pop(10_000, Duration::ZERO).await {
                b.fail();
            }
        });
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the file input did not stop within 20 s")
            .unwrap()
            .unwrap();
        self.queue.close();
        drainer.abort();
    }
}

fn messages(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.get_str("message").unwrap().to_string())
        .collect()
}

/// Every line once: no loss, no duplicate.
fn assert_exactly(seen: &[String], expected: &[String]) {
    let set: HashSet<&String> = seen.iter().collect();
    assert_eq!(set.len(), seen.len(), "lines read twice");
    let want: HashSet<&String> = expected.iter().collect();
    let missing: Vec<_> = want.difference(&set).take(3).collect();
    assert!(missing.is_empty(), "lines lost, e.g. {missing:?}");
    assert_eq!(seen.len(), expected.len());
}

fn apache_lines(n: usize) -> Vec<String> {
    String::from_utf8(common::gunzip("tests/data/apache-2000.log.gz"))
        .unwrap()
        .lines()
        .take(n)
        .enumerate()
        // Numbered: the data repeats itself across files in these tests.
        .map(|(i, l)| format!("{i} {l}"))
        .collect()
}

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn opts(dir: &Path, extra: &str) -> String {
    format!(
        "path => ['{}/*.log'] sincedb_path => '{}/sincedb' stat_interval => 0.02 discover_interval => 1 \
         sincedb_write_interval => 0.1 {extra}",
        dir.display(),
        dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follows_rotation_by_rename_while_writing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lines = apache_lines(2000);
    append(&log, &lines[..100]);
    let running = start(&opts(dir.path(), "start_position => beginning"), 100_000);
    let writer = {
        let (log, lines) = (log.clone(), lines.clone());
        let rotated = dir.path().join("app.log.1");
        std::thread::spawn(move || {
            for (i, chunk) in lines[100..].chunks(50).enumerate() {
                append(&log, chunk);
                if i == 10 {
                    // Rotate as logrotate does: rename, then the writer opens a new file.
                    std::fs::rename(&log, &rotated).unwrap();
                }
                std::thread::sleep(Duration::from_millis(3));
            }
        })
    };
    let events = running.take(lines.len(), Duration::from_secs(30)).await;
    writer.join().unwrap();
    assert_exactly(&messages(&events), &lines);
    let field = sluice::event::field_ref::FieldRef::parse("[log][file][path]").unwrap();
    let paths: HashSet<String> = events
        .iter()
        .map(|e| {
            e.get(&field)
                .expect("no [log][file][path]")
                .to_display_string()
        })
        .collect();
    // Read under its name before and after the rotation (the old handle keeps its name).
    assert_eq!(paths, HashSet::from([log.display().to_string()]));
    // Nothing more comes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(running.queue.fill().events, 0);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_reads_again_after_copytruncate() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lines = apache_lines(1000);
    append(&log, &lines[..500]);
    let running = start(
        &opts(
            dir.path(),
            "start_position => beginning ecs_compatibility => disabled",
        ),
        100_000,
    );
    let first = running.take(500, Duration::from_secs(20)).await;
    assert_eq!(first[0].get_str("path"), Some(log.to_str().unwrap()));
    // copytruncate: the content is copied away, the file emptied in place.
    std::fs::copy(&log, dir.path().join("app.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    append(&log, &lines[500..]);
    let second = running.take(500, Duration::from_secs(20)).await;
    let mut all = messages(&first);
    all.extend(messages(&second));
    assert_exactly(&all, &lines);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_after_the_last_safe_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lines = apache_lines(2000);
    append(&log, &lines);
    let body = opts(dir.path(), "start_position => beginning");

    // First run: three batches are made safe, the fourth fails, then the input stops.
    let running = start(&body, 125);
    let mut safe = Vec::new();
    for _ in 0..3 {
        let b = running.pop(Duration::from_secs(20)).await;
        safe.extend(messages(&b.events));
    }
    let failed = running.pop(Duration::from_secs(20)).await;
    assert!(!failed.is_empty());
    failed.fail();
    drop(failed);
    running.stop().await;
    let sincedb = std::fs::read_to_string(dir.path().join("sincedb")).unwrap();
    let position: u64 = sincedb.split(' ').nth(3).unwrap().parse().unwrap();
    let safe_bytes: u64 = safe.iter().map(|l| l.len() as u64 + 1).sum();
    assert_eq!(
        position, safe_bytes,
        "the sincedb holds exactly what was made safe: {sincedb}"
    );

    // Second run: from the first line not made safe, to the end, once.
    let running = start(&body, 100_000);
    let rest = running
        .take(lines.len() - safe.len(), Duration::from_secs(20))
        .await;
    let rest = messages(&rest);
    assert_eq!(
        rest[0],
        lines[safe.len()],
        "resumed elsewhere than after the last safe line"
    );
    let mut all = safe.clone();
    all.extend(rest);
    assert_exactly(&all, &lines);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_mode_reads_ten_thousand_files_once_and_completes_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let n = 10_000;
    let mut expected = Vec::with_capacity(n);
    for i in 0..n {
        let line = format!("file {i} line");
        std::fs::write(data.join(format!("f{i:05}.log")), format!("{line}\n")).unwrap();
        expected.push(line);
    }
    std::fs::write(data.join("skip.log.gz"), "not read\n").unwrap();
    let done_log = dir.path().join("completed.txt");
    let running = start(
        &format!(
            "path => ['{}/*'] exclude => ['*.gz'] mode => read file_completed_action => log_and_delete \
             file_completed_log_path => '{}' sincedb_path => '{}/sincedb' stat_interval => 0.02 \
             discover_interval => 1 max_open_files => 64 exit_after_read => true",
            data.display(),
            done_log.display(),
            dir.path().display()
        ),
        100_000,
    );
    let events = running.take(n, Duration::from_secs(120)).await;
    assert_exactly(&messages(&events), &expected);
    tokio::time::timeout(Duration::from_secs(60), running.task)
        .await
        .expect("exit_after_read: the input did not end")
        .unwrap()
        .unwrap();
    let left: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        left.len(),
        1,
        "completed files are deleted, the excluded one stays: {left:?}"
    );
    let logged = std::fs::read_to_string(&done_log).unwrap();
    assert_eq!(logged.lines().count(), n);
}

/// Multiline records: a header line and `i % 4` continuation lines, as a Java stack trace.
fn stack_traces(n: usize, name: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut record = format!("{i} 2024-05-01T10:00:00Z ERROR {name} request failed");
            for j in 0..i % 4 {
                record.push_str(&format!(
                    "\n    at com.example.{name}.handler(App.java:{j})"
                ));
            }
            record
        })
        .collect()
}

const MULTILINE: &str = r#"codec => multiline { pattern => "^    at " what => "previous" }"#;

/// The file an event came from (ECS field name, the default).
fn file_path(e: &Event) -> Option<&str> {
    e.get(&sluice::event::field_ref::FieldRef::parse("[log][file][path]").unwrap())?
        .as_str()
}

/// The sincedb position of the only file in it; `None` when not written yet.
fn sincedb_position(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("sincedb")).ok()?;
    text.lines().next()?.split(' ').nth(3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiline_pending_lines_are_not_safe_until_emitted() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let records = stack_traces(100, "Orders");
    append(&log, &records);
    let body = opts(
        dir.path(),
        &format!("start_position => beginning {MULTILINE}"),
    );

    // First run: the last record waits for a line that would end it (no
    // auto_flush_interval), so 99 events arrive and the sincedb stops where it starts.
    let running = start(&body, 100_000);
    let events = running.take(99, Duration::from_secs(20)).await;
    assert_eq!(messages(&events), records[..99]);
    for (e, r) in events.iter().zip(&records) {
        assert_eq!(e.has_tag("multiline"), r.contains('\n'), "{r}");
        assert!(file_path(e).is_some_and(|p| p.ends_with("app.log")));
    }
    let safe: u64 = records[..99].iter().map(|r| r.len() as u64 + 1).sum();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sincedb_position(dir.path()) != Some(safe) {
        assert!(
            Instant::now() < deadline,
            "sincedb at {:?}, expected {safe} (the start of the pending record)",
            sincedb_position(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // At shutdown the pending record is pushed; it fails here, so it is not safe.
    running.stop().await;
    assert_eq!(sincedb_position(dir.path()), Some(safe));

    // Second run: the pending record is read again, whole, and goes out after
    // auto_flush_interval without a line after it.
    let body = body.replace(
        r#"what => "previous""#,
        r#"what => "previous" auto_flush_interval => 0.3"#,
    );
    let running = start(&body, 100_000);
    let events = running.take(1, Duration::from_secs(20)).await;
    assert_eq!(messages(&events), records[99..]);
    assert!(events[0].has_tag("multiline"));
    let more = tokio::time::timeout(
        Duration::from_millis(500),
        running.queue.pop(10_000, Duration::ZERO),
    )
    .await;
    assert!(more.is_err(), "read more than the unsafe tail again");
    let end: u64 = records.iter().map(|r| r.len() as u64 + 1).sum();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sincedb_position(dir.path()) != Some(end) {
        assert!(
            Instant::now() < deadline,
            "sincedb at {:?}, expected the end {end} once the flushed record is safe",
            sincedb_position(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiline_state_is_per_file_and_flushed_at_end_of_file_in_read_mode() {
    // No exit_after_read: the last records must go out at end of file, not at shutdown.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let a = stack_traces(300, "Orders");
    let b = stack_traces(301, "Billing");
    // Written in turns, a record to each file, so that their lines interleave in time.
    for (ra, rb) in a.iter().zip(&b) {
        append(&data.join("a.log"), std::slice::from_ref(ra));
        append(&data.join("b.log"), std::slice::from_ref(rb));
    }
    append(&data.join("b.log"), &b[300..]);
    let running = start(
        &format!(
            "path => ['{}/*.log'] mode => read file_completed_action => log \
             file_completed_log_path => '{}/done' sincedb_path => '{}/sincedb' \
             stat_interval => 0.02 discover_interval => 1 {MULTILINE}",
            data.display(),
            dir.path().display(),
            dir.path().display()
        ),
        100_000,
    );
    let events = running
        .take(a.len() + b.len(), Duration::from_secs(30))
        .await;
    let of = |name: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| file_path(e).is_some_and(|p| p.ends_with(name)))
            .map(|e| e.get_str("message").unwrap().to_string())
            .collect()
    };
    // Each file's records whole and in order, the last one (no line after it) too.
    let (got_a, got_b) = (of("a.log"), of("b.log"));
    assert_eq!((got_a.len(), got_b.len()), (a.len(), b.len()));
    assert!(got_a == a, "a.log's records mixed up");
    assert!(got_b == b, "b.log's records mixed up");
    // Both files completed once their last record was safe.
    let done = dir.path().join("done");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&done).map_or(0, |t| t.lines().count()) < 2 {
        assert!(Instant::now() < deadline, "files not completed within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.stop().await;
}
