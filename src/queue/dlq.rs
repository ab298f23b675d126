//! The dead letter queue: events an output could never deliver (an Elasticsearch
//! mapping conflict, a bad index name), kept on disk with the reason so that a user can
//! fix the cause and replay them with the `dead_letter_queue` input.
//!
//! Layout: `<path.data>/dead_letter_queue/<pipeline_id>/<NNNNNNNNNN>.log`, append-only
//! segments in the record format of [`super::segment`] (length and CRC32C per record),
//! one record per event, its payload a JSON object:
//!
//! ```text
//! {"time":"2026-11-21T10:00:00.000Z","plugin":"elasticsearch","action":"index",
//!  "index":"logs-2026.11.21","status":400,"reason":"failed to parse field [n] ...",
//!  "event":{"@timestamp":"...","message":"..."}}
//! ```
//!
//! The queue is capped at `dead_letter_queue.max_bytes`. When an entry does not fit,
//! `drop_newer` drops that entry and `drop_older` deletes the oldest segments; either way
//! each lost entry is counted and logged; an entry larger than the cap is refused under
//! either policy. Readers read complete records only, so they can follow a segment while
//! it is being written. At open, a torn last record (a crash in the middle of a write)
//! is cut off, so the next entry is never glued to a fragment; segment creation and
//! deletion are made durable with a sync of the directory, which a lock file keeps to
//! one process.

use super::segment::{self, DirLock, LockError};
use crate::event::{Event, Timestamp};
use crate::metrics;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Segments are closed and a new one started past this size (or a quarter of the cap).
const SEGMENT_BYTES: u64 = 16 << 20;
/// Logstash's default cap.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// The pipeline id used for the directory name; Sluice runs one pipeline per process.
pub const DEFAULT_PIPELINE_ID: &str = "main";

/// What to do when an entry does not fit under the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoragePolicy {
    /// Drop the entry being written (Logstash's default).
    #[default]
    DropNewer,
    /// Delete the oldest segments to make room.
    DropOlder,
}

impl StoragePolicy {
    pub fn parse(text: &str) -> Option<StoragePolicy> {
        match text {
            "drop_newer" => Some(StoragePolicy::DropNewer),
            "drop_older" => Some(StoragePolicy::DropOlder),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StoragePolicy::DropNewer => "drop_newer",
            StoragePolicy::DropOlder => "drop_older",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("dead letter queue {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] LockError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DlqError + '_ {
    move |source| DlqError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The directory of one pipeline's dead letter queue under `data_dir`.
pub fn queue_dir(data_dir: &Path, pipeline_id: &str) -> PathBuf {
    data_dir.join("dead_letter_queue").join(pipeline_id)
}

/// The file name of segment `n`.
pub fn segment_name(n: u64) -> String {
    format!("{n:010}.log")
}

/// Segment numbers in `dir`, ascending.
pub fn list_segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = name
            .strip_suffix(".log")
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The payloads (JSON entries) of every intact record in the queue in `dir`, oldest
/// first: for tools and tests that look at what was dead-lettered.
pub fn read_entries(dir: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for n in list_segments(dir)? {
        let bytes = std::fs::read(dir.join(segment_name(n)))?;
        for r in segment::scan(&bytes, 0).records {
            out.push(bytes[r].to_vec());
        }
    }
    Ok(out)
}

/// What is known about one undeliverable event.
pub struct Entry<'a> {
    pub plugin: &'a str,
    pub action: &'a str,
    pub index: &'a str,
    pub status: u16,
    pub reason: &'a str,
    pub event: &'a Event,
}

struct Writer {
    dir: PathBuf,
    /// The `pipeline` label of this queue's metrics.
    pipeline: String,
    max_bytes: u64,
    segment_bytes: u64,
    policy: StoragePolicy,
    /// (segment number, size) of every segment, oldest first; the last one is open.
    segments: Vec<(u64, u64)>,
    file: Option<File>,
    dirty: bool,
    counts: Counts,
}

/// A dead letter queue open for writing, shared by every output of the process that
/// writes to the same directory.
pub struct DeadLetterQueue {
    writer: Mutex<Writer>,
    metrics: QueueMetrics,
    _lock: DirLock,
}

/// The exported metrics of one queue, labelled with its pipeline (the directory's
/// name: `<path.data>/dead_letter_queue/<pipeline_id>`).
struct QueueMetrics {
    written: prometheus_client::metrics::counter::Counter,
    size: prometheus_client::metrics::gauge::Gauge,
}

/// The pipeline a queue directory belongs to, for metric labels.
fn pipeline_of(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// This queue's own counts (the process-wide metrics add up every queue).
#[derive(Default)]
struct Counts {
    written: u64,
    dropped: u64,
}

/// Open queues by directory, so two outputs never append to one segment at once.
static OPEN: OnceLock<Mutex<HashMap<PathBuf, Weak<DeadLetterQueue>>>> = OnceLock::new();

impl DeadLetterQueue {
    /// Opens (creating it if needed) the queue in `dir`; the same directory gives the
    /// same queue.
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        policy: StoragePolicy,
    ) -> Result<Arc<DeadLetterQueue>, DlqError> {
        let open = OPEN.get_or_init(|| Mutex::new(HashMap::new()));
        let mut open = open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(q) = open.get(dir).and_then(Weak::upgrade) {
            return Ok(q);
        }
        let lock = DirLock::acquire(dir)?;
        let mut segments = Vec::new();
        for n in list_segments(dir).map_err(io(dir))? {
            let path = dir.join(segment_name(n));
            let size = std::fs::metadata(&path).map_err(io(&path))?.len();
            segments.push((n, size));
        }
        // Appends go to the last segment: cut a torn tail off first.
        if let Some((n, size)) = segments.last_mut() {
            let path = dir.join(segment_name(*n));
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let scan = segment::scan(&bytes, 0);
            if scan.torn_tail(bytes.len()) {
                tracing::warn!(
                    segment = %path.display(),
                    at = scan.valid_end,
                    bytes = bytes.len() - scan.valid_end,
                    "dead letter queue: cutting off a torn last entry (the process stopped in the middle of a write)"
                );
                segment::truncate(&path, scan.valid_end as u64).map_err(io(&path))?;
                *size = scan.valid_end as u64;
            }
        }
        let q = Arc::new(DeadLetterQueue {
            writer: Mutex::new(Writer {
                dir: dir.to_path_buf(),
                pipeline: pipeline_of(dir),
                max_bytes: max_bytes.max(1),
                segment_bytes: SEGMENT_BYTES.min((max_bytes / 4).max(4096)),
                policy,
                segments,
                file: None,
                dirty: false,
                counts: Counts::default(),
            }),
            metrics: {
                let m = &metrics::get().dead_letter_queue;
                let labels = metrics::pipeline(&pipeline_of(dir));
                QueueMetrics {
                    written: m.written.get_or_create(&labels).clone(),
                    size: m.size.get_or_create(&labels).clone(),
                }
            },
            _lock: lock,
        });
        q.metrics.size.set(q.size_bytes() as i64);
        open.insert(dir.to_path_buf(), Arc::downgrade(&q));
        Ok(q)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Writer> {
        // Every critical section leaves the writer consistent between statements.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes on disk.
    pub fn size_bytes(&self) -> u64 {
        self.lock().segments.iter().map(|(_, s)| s).sum()
    }

    /// Appends entries; returns how many were written (the rest were dropped by
    /// `drop_newer`). Call [`DeadLetterQueue::sync`] before confirming the events.
    pub fn write(&self, entries: &[Entry<'_>]) -> Result<usize, DlqError> {
        let time = Timestamp::now().to_iso8601();
        let mut w = self.lock();
        let mut written = 0;
        let mut json = Vec::with_capacity(1024);
        let mut record = Vec::with_capacity(1024);
        for e in entries {
            json.clear();
            record.clear();
            encode(e, &time, &mut json);
            segment::frame(&json, &mut record);
            if w.append(&record)? {
                written += 1;
            }
        }
        w.counts.written += written as u64;
        self.metrics.written.inc_by(written as u64);
        self.metrics
            .size
            .set(w.segments.iter().map(|(_, s)| *s as i64).sum());
        Ok(written)
    }

    /// Entries this queue appended since it was opened.
    pub fn written_entries(&self) -> u64 {
        self.lock().counts.written
    }

    /// Entries this queue refused or deleted to stay under its cap since it was opened.
    pub fn dropped_entries(&self) -> u64 {
        self.lock().counts.dropped
    }

    /// Makes what was written durable.
    pub fn sync(&self) -> Result<(), DlqError> {
        let mut w = self.lock();
        if w.dirty {
            if let Some(f) = &w.file {
                let dir = w.dir.clone();
                f.sync_data().map_err(io(&dir))?;
            }
            w.dirty = false;
        }
        Ok(())
    }
}

fn encode(e: &Entry<'_>, time: &str, out: &mut Vec<u8>) {
    // Strings go through serde_json for escaping; the event is written straight from
    // its fields.
    let s = |v: &str, out: &mut Vec<u8>| {
        let _ = serde_json::to_writer(&mut *out, v);
    };
    out.extend_from_slice(b"{\"time\":");
    s(time, out);
    out.extend_from_slice(b",\"plugin\":");
    s(e.plugin, out);
    out.extend_from_slice(b",\"action\":");
    s(e.action, out);
    out.extend_from_slice(b",\"index\":");
    s(e.index, out);
    out.extend_from_slice(format!(",\"status\":{},\"reason\":", e.status).as_bytes());
    s(e.reason, out);
    out.extend_from_slice(b",\"event\":");
    e.event.write_json(out);
    out.push(b'}');
}

impl Writer {
    fn total(&self) -> u64 {
        self.segments.iter().map(|(_, s)| s).sum()
    }

    /// Appends one framed record, applying the cap. Returns false when it was dropped.
    fn append(&mut self, line: &[u8]) -> Result<bool, DlqError> {
        let len = line.len() as u64;
        if len > self.max_bytes {
            // No policy can make room for it: deleting older entries would lose them
            // for nothing (and, with one segment left, never end).
            self.dropped(1, "the entry is larger than the whole queue");
            return Ok(false);
        }
        if self.total() + len > self.max_bytes {
            match self.policy {
                StoragePolicy::DropNewer => {
                    self.dropped(1, "the queue is full");
                    return Ok(false);
                }
                StoragePolicy::DropOlder => {
                    // Ends: every turn deletes a segment, and a rotation only adds an
                    // empty one, after which the entry fits (len <= max_bytes).
                    while self.total() + len > self.max_bytes {
                        if self.segments.len() == 1 {
                            // Only the open segment is left: start a fresh one so the
                            // old one can go.
                            self.rotate()?;
                        }
                        if self.segments.len() < 2 {
                            break;
                        }
                        self.delete_oldest()?;
                    }
                }
            }
        }
        let needs_segment = match self.segments.last() {
            None => true,
            Some((_, size)) => self.file.is_none() || *size + len > self.segment_bytes,
        };
        if needs_segment {
            let reuse = self.file.is_none()
                && self
                    .segments
                    .last()
                    .is_some_and(|(_, size)| *size + len <= self.segment_bytes);
            if reuse {
                self.open_last()?;
            } else {
                self.rotate()?;
            }
        }
        let path = self.current_path();
        if let Some(f) = self.file.as_mut() {
            f.write_all(line).map_err(io(&path))?;
        }
        if let Some(last) = self.segments.last_mut() {
            last.1 += len;
        }
        self.dirty = true;
        Ok(true)
    }

    fn current_path(&self) -> PathBuf {
        let n = self.segments.last().map_or(0, |(n, _)| *n);
        self.dir.join(segment_name(n))
    }

    fn open_last(&mut self) -> Result<(), DlqError> {
        let path = self.current_path();
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        self.file = Some(f);
        Ok(())
    }

    /// Closes the open segment and starts the next one.
    fn rotate(&mut self) -> Result<(), DlqError> {
        if let Some(f) = self.file.take() {
            let dir = self.dir.clone();
            f.sync_data().map_err(io(&dir))?;
        }
        let next = self.segments.last().map_or(1, |(n, _)| n + 1);
        self.segments.push((next, 0));
        self.open_last()?;
        segment::sync_dir(&self.dir).map_err(io(&self.dir))
    }

    fn delete_oldest(&mut self) -> Result<(), DlqError> {
        if self.segments.len() < 2 {
            return Ok(());
        }
        let (n, size) = self.segments.remove(0);
        let path = self.dir.join(segment_name(n));
        // Count the entries lost, for the log and the metric.
        let lost = std::fs::read(&path)
            .map(|b| segment::scan(&b, 0).records.len())
            .unwrap_or(0);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path)(e)),
        }
        segment::sync_dir(&self.dir).map_err(io(&self.dir))?;
        tracing::warn!(
            segment = %path.display(),
            bytes = size,
            entries = lost,
            "dead letter queue is full: deleted its oldest segment (drop_older)"
        );
        metrics::get()
            .dead_letter_queue
            .dropped
            .get_or_create(&self.dropped_labels(StoragePolicy::DropOlder))
            .inc_by(lost as u64);
        self.counts.dropped += lost as u64;
        Ok(())
    }

    fn dropped_labels(&self, policy: StoragePolicy) -> metrics::Labels {
        vec![
            ("pipeline", self.pipeline.clone()),
            ("policy", policy.as_str().to_string()),
        ]
    }

    fn dropped(&mut self, n: u64, why: &str) {
        self.counts.dropped += n;
        tracing::warn!(
            dir = %self.dir.display(),
            max_bytes = self.max_bytes,
            reason = why,
            "dead letter queue entry dropped"
        );
        metrics::get()
            .dead_letter_queue
            .dropped
            .get_or_create(&self.dropped_labels(self.policy))
            .inc_by(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Value;

    fn event(i: i64) -> Event {
        let mut e = Event::new();
        e.insert_field("n", Value::Int(i));
        e.insert_field("message", Value::from("a \"quoted\" line"));
        e
    }

    fn entry(e: &Event) -> Entry<'_> {
        Entry {
            plugin: "elasticsearch",
            action: "index",
            index: "logs",
            status: 400,
            reason: "mapper_parsing_exception: failed to parse field [n]",
            event: e,
        }
    }

    fn lines(dir: &Path) -> Vec<serde_json::Value> {
        read_entries(dir)
            .unwrap()
            .iter()
            .map(|p| serde_json::from_slice(p).unwrap())
            .collect()
    }

    #[test]
    fn writes_one_json_line_per_event() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = queue_dir(tmp.path(), "main");
        let q = DeadLetterQueue::open(&dir, DEFAULT_MAX_BYTES, StoragePolicy::DropNewer).unwrap();
        let events: Vec<Event> = (0..3).map(event).collect();
        let entries: Vec<Entry> = events.iter().map(entry).collect();
        assert_eq!(q.write(&entries).unwrap(), 3);
        q.sync().unwrap();
        let got = lines(&dir);
        assert_eq!(got.len(), 3);
        assert_eq!(got[1]["event"]["n"], 1);
        assert_eq!(got[1]["status"], 400);
        assert_eq!(got[1]["index"], "logs");
        assert!(got[1]["reason"]
            .as_str()
            .unwrap()
            .contains("failed to parse"));
        assert!(got[1]["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(got[2]["event"]["message"], "a \"quoted\" line");
    }

    #[test]
    fn drop_newer_keeps_the_oldest() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = queue_dir(tmp.path(), "main");
        let q = DeadLetterQueue::open(&dir, 2000, StoragePolicy::DropNewer).unwrap();
        let events: Vec<Event> = (0..50).map(event).collect();
        let entries: Vec<Entry> = events.iter().map(entry).collect();
        let written = q.write(&entries).unwrap();
        assert!(written > 0 && written < 50, "{written}");
        assert!(q.size_bytes() <= 2000);
        let got = lines(&dir);
        assert_eq!(got.len(), written);
        assert_eq!(got[0]["event"]["n"], 0);
    }

    #[test]
    fn drop_older_keeps_the_newest() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = queue_dir(tmp.path(), "main");
        let q = DeadLetterQueue::open(&dir, 20_000, StoragePolicy::DropOlder).unwrap();
        let events: Vec<Event> = (0..500).map(event).collect();
        for e in &events {
            assert_eq!(q.write(&[entry(e)]).unwrap(), 1);
        }
        assert!(q.size_bytes() <= 20_000);
        let got = lines(&dir);
        assert!(got.len() < 500);
        assert_eq!(got.last().unwrap()["event"]["n"], 499);
        // What is left is a contiguous run of the newest entries.
        let first = got[0]["event"]["n"].as_i64().unwrap();
        assert_eq!(first as usize + got.len(), 500);
    }

    /// A cap smaller than one entry, under drop_older, with a segment already on disk:
    /// the entry is refused and counted, the older entries stay, and the call returns.
    #[test]
    fn drop_older_refuses_an_entry_larger_than_the_cap_without_looping() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = queue_dir(tmp.path(), "oversize");
        let q = DeadLetterQueue::open(&dir, 4096, StoragePolicy::DropOlder).unwrap();
        let small = event(1);
        assert_eq!(q.write(&[entry(&small)]).unwrap(), 1);
        let mut big = event(2);
        big.insert_field("blob", Value::from("x".repeat(10_000)));
        let (tx, rx) = std::sync::mpsc::channel();
        let q2 = q.clone();
        std::thread::spawn(move || {
            let _ = tx.send(q2.write(&[entry(&big)]).map_err(|e| e.to_string()));
        });
        let written = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("write of an oversize entry did not return (drop_older loops)");
        assert_eq!(written, Ok(0));
        assert_eq!(q.dropped_entries(), 1);
        assert_eq!(q.written_entries(), 1);
        // The entry already there is not sacrificed for one that can never fit.
        assert_eq!(lines(&dir).len(), 1);
    }

    /// What `write` returns is what is on disk; refusals are counted as dropped, never
    /// as written (callers count dead-lettered events from this number).
    #[test]
    fn write_returns_only_what_it_wrote() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = queue_dir(tmp.path(), "counts");
        let q = DeadLetterQueue::open(&dir, 1500, StoragePolicy::DropNewer).unwrap();
        let events: Vec<Event> = (0..40).map(event).collect();
        let entries: Vec<Entry> = events.iter().map(entry).collect();
        let first = q.write(&entries[..20]).unwrap();
        let second = q.write(&entries[20..]).unwrap();
        assert!(first > 0 && first < 20, "{first}");
        assert_eq!(second, 0);
        assert_eq!(lines(&dir).len(), first);
        assert_eq!(q.written_entries(), first as u64);
        assert_eq!(q.dropped_entries(), 40 - first as u64);
    }

    /// A crash in the middle of a write leaves part of an entry: the next open cuts it
    /// off, so the entry written next is whole (not glued to the fragment).
    #[test]
    fn a_torn_last_entry_is_cut_off_at_open() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = queue_dir(tmp.path(), "torn");
        let events: Vec<Event> = (0..3).map(event).collect();
        {
            let q =
                DeadLetterQueue::open(&dir, DEFAULT_MAX_BYTES, StoragePolicy::DropNewer).unwrap();
            let entries: Vec<Entry> = events.iter().map(entry).collect();
            q.write(&entries).unwrap();
            q.sync().unwrap();
        }
        let seg = dir.join(segment_name(list_segments(&dir).unwrap()[0]));
        let len = std::fs::metadata(&seg).unwrap().len();
        segment::truncate(&seg, len - 7).unwrap();
        let q = DeadLetterQueue::open(&dir, DEFAULT_MAX_BYTES, StoragePolicy::DropNewer).unwrap();
        q.write(&[entry(&event(3))]).unwrap();
        let got: Vec<i64> = lines(&dir)
            .iter()
            .map(|l| l["event"]["n"].as_i64().unwrap())
            .collect();
        assert_eq!(got, vec![0, 1, 3]);
    }

    #[test]
    fn reopening_appends_after_what_is_there() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = queue_dir(tmp.path(), "reopen");
        let e = event(1);
        {
            let q =
                DeadLetterQueue::open(&dir, DEFAULT_MAX_BYTES, StoragePolicy::DropNewer).unwrap();
            q.write(&[entry(&e)]).unwrap();
        }
        let q = DeadLetterQueue::open(&dir, DEFAULT_MAX_BYTES, StoragePolicy::DropNewer).unwrap();
        q.write(&[entry(&e)]).unwrap();
        assert_eq!(lines(&dir).len(), 2);
    }
}
