//! The persisted queue: input batches are appended to pages on disk before their input
//! is told they are safe, and removed only once the outputs acknowledged them, so an
//! event a client was told is received survives a crash of the process.
//!
//! Layout under `--path.queue`: pages `NNNNNNNNNN.page` in the record format of
//! [`segment`] (one record per input batch, its events encoded as
//! [`super::record`] describes), a `checkpoint` file holding the position (page, byte
//! offset) below which every record was acknowledged, and `.lock`. Pages wholly below the checkpoint are deleted.
//!
//! Writes: a push frames its batch and appends it to the head page under a lock. A
//! syncer thread makes pages durable: after every `checkpoint.writes` writes, every
//! `checkpoint.interval`, or at once when `checkpoint.writes` is 1.
//!
//! Group commit (`checkpoint.writes` 1): the syncer runs one fsync at a time, and every
//! record appended while one runs is covered by the next, however many producers wrote
//! them. The batch's acks are held by the queue until the sync that covers its record
//! (so a client is never told of an event that is not on disk), and a producer may go
//! on appending meanwhile ([`PersistedQueue::push_pipelined`]): a single connection
//! then shares one fsync among all the batches it appended during the previous one,
//! instead of paying one per batch. [`PersistedQueue::push`] waits for the sync too.
//! With `checkpoint.writes` above 1 the acks fire once the record is written, as in
//! Logstash (a crash of the machine, not of the process, can lose what was not synced).
//!
//! Reads: a record normally reaches the workers without touching the disk again: it is
//! also kept in memory, up to the memory window (`queue.memory_window`, in bytes of
//! records). When more is unread than fits, records stay on disk only ("spilled") and
//! the workers read them back from the pages, each decoding its records outside the
//! state lock; a restart reads everything past the checkpoint this way.
//!
//! Acks: each record handed to a worker carries a queue ack; the checkpoint moves over
//! records in order as their acks fire Delivered. A record whose ack fails (shutdown
//! before delivery) holds the checkpoint, so the next start replays it.

pub use super::record::{decode_events, encode_events};
use super::segment::{self, DirLock, LockError};
use super::{Durable, QueueClosed};
use crate::batch::{Ack, AckStatus, Batch};
use crate::event::Event;
use crate::metrics;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// How often the checkpoint is rewritten at most while acks move it (a crash replays at
/// most this much of what was already delivered).
const CHECKPOINT_GAP: Duration = Duration::from_millis(100);
/// How long a push waits before retrying a write the disk refused (full, I/O error).
const WRITE_RETRY: Duration = Duration::from_secs(1);

/// Settings of a persisted queue.
#[derive(Debug, Clone)]
pub struct PersistedConfig {
    /// `--path.queue`.
    pub dir: PathBuf,
    /// `--queue.page_capacity`: a page is closed and the next started past this size.
    pub page_capacity: u64,
    /// `--queue.max_bytes`: pages on disk, at most (plus one batch); full means pushes
    /// wait.
    pub max_bytes: u64,
    /// `--queue.checkpoint.writes`: sync after this many writes (1: every write, and a
    /// push waits for it).
    pub checkpoint_writes: usize,
    /// `--queue.checkpoint.interval`: sync at least this often while writes are pending.
    pub checkpoint_interval: Duration,
    /// `--queue.memory_window`: unread records kept in memory as well as on disk, at
    /// most, in bytes of their on-disk records (their events take a few times more).
    /// Workers take these without reading the pages back; past it, records wait on disk
    /// only until the workers catch up. Sized in bytes rather than events so that under
    /// a normal load (workers keeping up, bursts of many connections) nothing has to
    /// be read back and decoded.
    pub memory_window: u64,
    /// The pipeline this queue serves: the `pipeline` label of its metrics.
    pub pipeline_id: String,
}

impl PersistedConfig {
    pub fn new(dir: PathBuf) -> PersistedConfig {
        PersistedConfig {
            pipeline_id: crate::settings::DEFAULT_PIPELINE_ID.to_string(),
            dir,
            page_capacity: 64 << 20,
            max_bytes: 1 << 30,
            checkpoint_writes: 1024,
            checkpoint_interval: Duration::from_secs(1),
            memory_window: PersistedConfig::default_memory_window(1 << 30),
        }
    }

    /// The memory window when none is set: a quarter of `queue.max_bytes`, at most
    /// 16 MiB, so a small queue keeps a small window. Events take about 4.5 times their
    /// on-disk size in memory: with a backlog, a 64 MiB window made a json pipeline peak
    /// at 291 MiB, 16 MiB at 93 MiB. Workers that keep up never fill even 16 MiB (json
    /// and Beats at 100 connections ran as fast, and as small, at 16 as at 64).
    pub fn default_memory_window(max_bytes: u64) -> u64 {
        (max_bytes / 4).min(16 << 20)
    }
}

/// Why the queue could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum PersistedError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("persisted queue {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PersistedError + '_ {
    move |source| PersistedError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A place in the queue: a page and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
struct Pos {
    page: u64,
    offset: u64,
}

fn page_name(n: u64) -> String {
    format!("{n:010}.page")
}

fn list_pages(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".page"))
            .and_then(|n| n.parse().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn read_checkpoint(path: &Path) -> Option<Pos> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut it = text.split_whitespace();
    Some(Pos {
        page: it.next()?.parse().ok()?,
        offset: it.next()?.parse().ok()?,
    })
}

/// A record kept in memory for the workers, where it ends on disk, and its size there
/// (what it counts against the memory window).
struct Ready {
    batch: Batch,
    end: Pos,
    record_len: u64,
}

/// The next record for a worker, with its queue ack.
enum Next {
    InMemory(Batch),
    OnDisk(OnDisk),
}

/// A record read back from disk, still to be decoded (outside the state lock).
struct OnDisk {
    /// The framed record, header included.
    record: Vec<u8>,
    /// Where it starts, for the log line if it does not decode.
    at: Pos,
    ack: Ack,
}

/// A record handed to a worker and not yet acknowledged.
struct InFlight {
    end: Pos,
    acked: bool,
}

struct State {
    /// Pages on disk, oldest first, with their sizes; the last one is the head.
    pages: VecDeque<(u64, u64)>,
    head: Arc<File>,
    disk_bytes: u64,
    /// Records written so far; the syncer publishes how many are durable.
    written: u64,
    unsynced_writes: usize,
    /// `checkpoint.writes` 1: the acks of written records (batches without their
    /// events), with the record's write number, fired once a sync covers it. At most
    /// one per record on disk, so bounded by `queue.max_bytes`.
    unsynced_acks: VecDeque<(u64, Batch)>,
    /// The next record a worker has not started.
    read_pos: Pos,
    /// The rest of records a worker took only part of, oldest first; served first.
    partial: VecDeque<Batch>,
    /// Records in memory, in order, all at or after `read_pos`.
    memory: VecDeque<Ready>,
    memory_events: usize,
    /// Bytes of the records in `memory` (their on-disk size), at most the window.
    memory_bytes: u64,
    /// Records past the memory ones exist only on disk: read them from `read_pos`
    /// once `memory` is empty.
    spilled: bool,
    read_file: Option<(u64, File)>,
    /// Handed-out records, in order; `first_id` is the id of the front one.
    in_flight: VecDeque<InFlight>,
    first_id: u64,
    /// Below this every record was acknowledged.
    ack_pos: Pos,
    checkpoint_dirty: bool,
    closed: bool,
    stopping: bool,
    blocked_writers: usize,
}

impl State {
    fn head_end(&self) -> Pos {
        let (page, size) = self.pages.back().copied().unwrap_or((1, 0));
        Pos { page, offset: size }
    }
}

struct Inner {
    cfg: PersistedConfig,
    metrics: QueueMetrics,
    state: Mutex<State>,
    readable: Notify,
    writable: Notify,
    /// Records made durable so far.
    synced: watch::Sender<u64>,
    /// Wakes the syncer.
    wake: Condvar,
    counters: Mutex<Counters>,
}

/// The queue's exported metrics, labelled with its pipeline, looked up once.
struct QueueMetrics {
    damaged_records: prometheus_client::metrics::counter::Counter,
    write_errors: prometheus_client::metrics::counter::Counter,
    size: prometheus_client::metrics::gauge::Gauge,
}

impl QueueMetrics {
    fn of(pipeline_id: &str) -> QueueMetrics {
        let m = &metrics::get().persisted_queue;
        let labels = metrics::pipeline(pipeline_id);
        QueueMetrics {
            damaged_records: m.damaged_records.get_or_create(&labels).clone(),
            write_errors: m.write_errors.get_or_create(&labels).clone(),
            size: m.size.get_or_create(&labels).clone(),
        }
    }
}

/// What the queue went through, for stats and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records found damaged at start or while reading (never delivered).
    pub damaged_records: u64,
    pub damaged_bytes: u64,
    /// Torn last records cut off at start.
    pub torn_tails: u64,
    /// Records replayed at start (written by an earlier run, not acknowledged).
    pub recovered_records: u64,
    /// Writes the disk refused (each retried).
    pub write_errors: u64,
}

/// A snapshot of the queue, for stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersistedStats {
    pub disk_bytes: u64,
    pub memory_events: usize,
}

/// The queue. Dropping it syncs the pages and writes the checkpoint.
pub struct PersistedQueue {
    inner: Arc<Inner>,
    syncer: Option<std::thread::JoinHandle<()>>,
    _lock: DirLock,
}

impl PersistedQueue {
    /// Opens the queue in `cfg.dir`, recovering what an earlier run left: pages past the
    /// checkpoint are checked record by record; a torn last record is cut off, a damaged
    /// page is moved aside to `corrupt/` (its intact records are kept) and counted.
    pub fn open(cfg: PersistedConfig) -> Result<PersistedQueue, PersistedError> {
        let dir = cfg.dir.clone();
        let lock = DirLock::acquire(&dir)?;
        let mut counters = Counters::default();
        let checkpoint_path = dir.join("checkpoint");
        let mut pages: Vec<u64> = list_pages(&dir).map_err(io(&dir))?;
        let mut ack_pos = read_checkpoint(&checkpoint_path).unwrap_or(Pos {
            page: pages.first().copied().unwrap_or(1),
            offset: 0,
        });
        // Pages wholly acknowledged before a crash could delete them.
        let mut deleted = false;
        while pages.first().is_some_and(|&p| p < ack_pos.page) {
            let p = pages.remove(0);
            let path = dir.join(page_name(p));
            std::fs::remove_file(&path).map_err(io(&path))?;
            deleted = true;
        }
        if pages.first().is_some_and(|&p| p > ack_pos.page) {
            ack_pos = Pos {
                page: pages[0],
                offset: 0,
            };
        }
        let mut sized = VecDeque::new();
        let last = pages.last().copied();
        for p in pages {
            let path = dir.join(page_name(p));
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let start = if p == ack_pos.page {
                (ack_pos.offset as usize).min(bytes.len())
            } else {
                0
            };
            let scan = segment::scan(&bytes, start);
            counters.recovered_records += scan.records.len() as u64;
            let mut size = bytes.len() as u64;
            if scan.damaged.is_empty() {
                // Intact.
            } else if Some(p) == last && scan.torn_tail(bytes.len()) {
                tracing::warn!(
                    page = %path.display(),
                    at = scan.valid_end,
                    bytes = bytes.len() - scan.valid_end,
                    "persisted queue: cutting off a torn last record (the process stopped in the middle of a write)"
                );
                segment::truncate(&path, scan.valid_end as u64).map_err(io(&path))?;
                size = scan.valid_end as u64;
                counters.torn_tails += 1;
            } else {
                // Keep the damaged original for inspection and rewrite the page with
                // its intact records only.
                let aside_dir = dir.join("corrupt");
                std::fs::create_dir_all(&aside_dir).map_err(io(&aside_dir))?;
                let aside = aside_dir.join(format!("{}.{}", page_name(p), std::process::id()));
                let mut kept = Vec::with_capacity(bytes.len());
                for r in &scan.records {
                    segment::frame(&bytes[r.clone()], &mut kept);
                }
                std::fs::write(&aside, &bytes).map_err(io(&aside))?;
                segment::sync_dir(&aside_dir).map_err(io(&aside_dir))?;
                segment::write_atomic(&path, &kept).map_err(io(&path))?;
                let lost = scan.damaged.len() as u64;
                counters.damaged_records += lost;
                counters.damaged_bytes += scan.damaged_bytes() as u64;
                tracing::error!(
                    page = %path.display(),
                    moved_to = %aside.display(),
                    damaged_ranges = lost,
                    damaged_bytes = scan.damaged_bytes(),
                    intact_records = scan.records.len(),
                    "persisted queue: damaged page; its intact records are kept and replayed, the damaged bytes are lost"
                );
                if p == ack_pos.page {
                    ack_pos.offset = 0;
                }
                size = kept.len() as u64;
            }
            if p == ack_pos.page {
                ack_pos.offset = ack_pos.offset.min(size);
            }
            sized.push_back((p, size));
        }
        if sized.is_empty() {
            let p = ack_pos.page.max(1);
            sized.push_back((p, 0));
            ack_pos = Pos { page: p, offset: 0 };
        }
        let (head_no, head_size) = sized.back().copied().unwrap_or((1, 0));
        let head_path = dir.join(page_name(head_no));
        let head = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&head_path)
            .map_err(io(&head_path))?;
        if deleted || head_size == 0 {
            segment::sync_dir(&dir).map_err(io(&dir))?;
        }
        if counters.recovered_records > 0 {
            tracing::info!(
                dir = %dir.display(),
                records = counters.recovered_records,
                "persisted queue: replaying records not acknowledged before the last stop"
            );
        }
        let disk_bytes = sized.iter().map(|(_, s)| s).sum();
        let spilled = ack_pos
            != (Pos {
                page: head_no,
                offset: head_size,
            });
        let state = State {
            pages: sized,
            head: Arc::new(head),
            disk_bytes,
            written: 0,
            unsynced_writes: 0,
            unsynced_acks: VecDeque::new(),
            read_pos: ack_pos,
            partial: VecDeque::new(),
            memory: VecDeque::new(),
            memory_events: 0,
            memory_bytes: 0,
            spilled,
            read_file: None,
            in_flight: VecDeque::new(),
            first_id: 0,
            ack_pos,
            // Recovery may have moved it (a rewritten page): write it once.
            checkpoint_dirty: true,
            closed: false,
            stopping: false,
            blocked_writers: 0,
        };
        let m = QueueMetrics::of(&cfg.pipeline_id);
        m.damaged_records.inc_by(counters.damaged_records);
        m.size.set(disk_bytes as i64);
        let inner = Arc::new(Inner {
            cfg,
            metrics: m,
            state: Mutex::new(state),
            readable: Notify::new(),
            writable: Notify::new(),
            synced: watch::Sender::new(0),
            wake: Condvar::new(),
            counters: Mutex::new(counters),
        });
        let weak = Arc::downgrade(&inner);
        let syncer = std::thread::Builder::new()
            .name("sluice-queue-sync".into())
            .spawn(move || sync_loop(weak))
            .map_err(io(&dir))?;
        Ok(PersistedQueue {
            inner,
            syncer: Some(syncer),
            _lock: lock,
        })
    }

    /// Writes the batch to the queue, waiting while the queue is at `max_bytes` (and,
    /// with `checkpoint.writes` 1, until the write is durable). When it returns Ok the
    /// batch's acks have fired Delivered: the events are the queue's to keep.
    pub async fn push(&self, batch: Batch) -> Result<(), QueueClosed> {
        self.push_pipelined(batch).await?.wait().await
    }

    /// Writes the batch to the queue, waiting while the queue is at `max_bytes`, but not
    /// for the sync: with `checkpoint.writes` 1 the batch's acks fire Delivered when the
    /// sync covering its record is done (the returned [`Durable`] waits for that sync),
    /// otherwise as soon as this returns. Lets one producer append its next batches
    /// while a sync runs, so they share the next one.
    pub async fn push_pipelined(&self, mut batch: Batch) -> Result<Durable, QueueClosed> {
        if batch.is_empty() {
            return Ok(Durable::now());
        }
        // Encoded in place after room for the header: no copy of the payload.
        let mut record = Vec::with_capacity(segment::HEADER + batch.bytes() + 64);
        record.resize(segment::HEADER, 0);
        encode_events(&batch.events, &mut record);
        segment::seal(&mut record);
        let inner = &self.inner;
        let mut blocked = false;
        let seq = loop {
            let notified = inner.writable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let failure = {
                let mut s = inner.lock();
                if s.closed {
                    if blocked {
                        s.blocked_writers -= 1;
                    }
                    drop(s);
                    batch.fail();
                    return Err(QueueClosed);
                }
                if s.disk_bytes >= inner.cfg.max_bytes {
                    if !blocked {
                        blocked = true;
                        s.blocked_writers += 1;
                        drop(s);
                        inner.readable.notify_waiters();
                    }
                    None
                } else {
                    if blocked {
                        s.blocked_writers -= 1;
                        blocked = false;
                    }
                    match inner.append(&mut s, &record) {
                        Ok(end) => {
                            let events = std::mem::take(&mut batch.events);
                            inner.place(&mut s, events, batch.bytes(), &record, end);
                            s.written += 1;
                            s.unsynced_writes += 1;
                            let seq = s.written;
                            let sync_each = inner.cfg.checkpoint_writes <= 1;
                            if sync_each {
                                // In the same critical section as the write: the
                                // syncer's next snapshot of `written` covers both.
                                let acks = std::mem::replace(
                                    &mut batch,
                                    Batch::new(Vec::new(), Ack::none()),
                                );
                                s.unsynced_acks.push_back((seq, acks));
                            }
                            let wake =
                                sync_each || s.unsynced_writes >= inner.cfg.checkpoint_writes;
                            drop(s);
                            inner.readable.notify_one();
                            if wake {
                                inner.wake.notify_one();
                            }
                            break seq;
                        }
                        Err(e) => Some(e),
                    }
                }
            };
            match failure {
                None => notified.await,
                Some(e) => {
                    inner.counters().write_errors += 1;
                    inner.metrics.write_errors.inc();
                    tracing::error!(
                        dir = %inner.cfg.dir.display(),
                        error = %e,
                        "persisted queue: cannot write; the input waits and the write is retried"
                    );
                    tokio::time::sleep(WRITE_RETRY).await;
                }
            }
        };
        if inner.cfg.checkpoint_writes <= 1 {
            return Ok(Durable::after(inner.synced.subscribe(), seq));
        }
        // `batch` (its acks, no events) drops here: the input learns its events are safe.
        Ok(Durable::now())
    }

    /// Takes up to `max` events: waits for the first, then up to `delay` for more
    /// (`pipeline.batch.delay`). `None` once the queue is closed and nothing is left.
    pub async fn pop(&self, max: usize, delay: Duration) -> Option<Batch> {
        let inner = &self.inner;
        let mut out = loop {
            let notified = inner.readable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(b) = inner.take(max) {
                break b;
            }
            if inner.lock().closed {
                return None;
            }
            notified.await;
        };
        if out.len() < max && !delay.is_zero() {
            let deadline = tokio::time::Instant::now() + delay;
            while out.len() < max {
                let notified = inner.readable.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(more) = inner.take(max - out.len()) {
                    out.merge(more);
                    continue;
                }
                {
                    let s = inner.lock();
                    if s.closed || s.blocked_writers > 0 {
                        break;
                    }
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    break;
                }
            }
        }
        Some(out)
    }

    /// Refuses further pushes; pops drain what is left (memory and disk), then end.
    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.inner.readable.notify_waiters();
        self.inner.writable.notify_waiters();
    }

    pub fn stats(&self) -> PersistedStats {
        let s = self.inner.lock();
        PersistedStats {
            disk_bytes: s.disk_bytes,
            memory_events: s.memory_events,
        }
    }

    pub fn counters(&self) -> Counters {
        self.inner.counters().clone()
    }
}

impl Drop for PersistedQueue {
    fn drop(&mut self) {
        self.inner.lock().stopping = true;
        self.inner.wake.notify_one();
        if let Some(t) = self.syncer.take() {
            let _ = t.join();
        }
        // What the last sync did not cover is not known to be on disk: its producers
        // must not be told it is safe.
        let unsynced = std::mem::take(&mut self.inner.lock().unsynced_acks);
        for (_, acks) in unsynced {
            acks.fail();
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section leaves the state consistent between statements.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a framed record to the head page, starting a new page when the head is
    /// full. Returns where the record ends. On error the head is cut back to where it
    /// was, so a refused write never leaves a fragment.
    fn append(&self, s: &mut State, record: &[u8]) -> std::io::Result<Pos> {
        let (mut page, mut size) = s.pages.back().copied().unwrap_or((1, 0));
        let capacity = self
            .cfg
            .page_capacity
            .min((self.cfg.max_bytes / 4).max(4096));
        if size > 0 && size + record.len() as u64 > capacity {
            s.head.sync_data()?;
            let next = page + 1;
            let path = self.cfg.dir.join(page_name(next));
            let f = OpenOptions::new().create(true).append(true).open(&path)?;
            segment::sync_dir(&self.cfg.dir)?;
            s.head = Arc::new(f);
            s.pages.push_back((next, 0));
            (page, size) = (next, 0);
        }
        if let Err(e) = (&*s.head).write_all(record) {
            let _ = s.head.set_len(size);
            return Err(e);
        }
        size += record.len() as u64;
        if let Some(back) = s.pages.back_mut() {
            back.1 = size;
        }
        s.disk_bytes += record.len() as u64;
        self.metrics.size.set(s.disk_bytes as i64);
        Ok(Pos { page, offset: size })
    }

    /// Keeps a written record in memory for the workers when it fits in the window and
    /// nothing is spilled before it; otherwise the workers will read it from disk.
    fn place(&self, s: &mut State, events: Vec<Event>, bytes: usize, record: &[u8], end: Pos) {
        let record_len = record.len() as u64;
        if !s.spilled && s.memory_bytes + record_len <= self.cfg.memory_window {
            s.memory_events += events.len();
            s.memory_bytes += record_len;
            s.memory.push_back(Ready {
                batch: Batch::with_bytes(events, Ack::none(), bytes),
                end,
                record_len,
            });
        } else {
            s.spilled = true;
        }
    }

    /// Takes up to `max` events without waiting: the rest of a partly taken record,
    /// then records in memory, then records on disk.
    ///
    /// A record read back from disk is decoded after the state lock is released, so
    /// workers decode in parallel and never hold up writers while they do.
    fn take(self: &Arc<Self>, max: usize) -> Option<Batch> {
        let mut out: Option<Batch> = None;
        loop {
            let mut s = self.lock();
            let mut raw = None;
            loop {
                let have = out.as_ref().map_or(0, Batch::len);
                if have >= max {
                    break;
                }
                let want = max - have;
                let mut piece = match s.partial.pop_front() {
                    Some(p) => p,
                    None => match self.next_record(&mut s) {
                        Some(Next::InMemory(b)) => b,
                        // Its event count is known only once decoded.
                        Some(Next::OnDisk(r)) => {
                            raw = Some(r);
                            break;
                        }
                        None => break,
                    },
                };
                if piece.len() > want {
                    let front = piece.split_front(want);
                    s.partial.push_front(piece);
                    piece = front;
                }
                match out.as_mut() {
                    Some(o) => o.merge(piece),
                    None => out = Some(piece),
                }
            }
            let more = !s.partial.is_empty() || !s.memory.is_empty() || s.spilled;
            drop(s);
            let Some(raw) = raw else {
                if out.is_some() && more {
                    self.readable.notify_one();
                }
                return out;
            };
            let have = out.as_ref().map_or(0, Batch::len);
            let mut piece = self.decode(raw);
            if piece.len() > max - have {
                let front = piece.split_front(max - have);
                // Older than anything not yet taken: served next.
                self.lock().partial.push_front(piece);
                piece = front;
            }
            // Dropped here if empty: a record with nothing to deliver is acked at once.
            if !piece.is_empty() {
                match out.as_mut() {
                    Some(o) => o.merge(piece),
                    None => out = Some(piece),
                }
            }
            // Room left: go on with the next records.
        }
    }

    /// Decodes a record read back from disk into a batch carrying its queue ack. A
    /// record that does not decode is logged and counted, and gives an empty batch.
    fn decode(&self, raw: OnDisk) -> Batch {
        let mut events = Vec::new();
        if let Err(e) = decode_events(&raw.record[segment::HEADER..], &mut events) {
            let path = self.cfg.dir.join(page_name(raw.at.page));
            self.damaged(&path, raw.at.offset, &e);
            events.clear();
        }
        Batch::with_bytes(events, raw.ack, raw.record.len())
    }

    /// Starts the next unread record: gives it an ack that moves the checkpoint.
    fn next_record(self: &Arc<Self>, s: &mut State) -> Option<Next> {
        loop {
            let (source, end) = if let Some(r) = s.memory.pop_front() {
                s.memory_events -= r.batch.len();
                s.memory_bytes -= r.record_len;
                (Ok(r.batch), r.end)
            } else if s.spilled {
                match self.read_from_disk(s) {
                    Some(Ok((record, at, end))) => (Err((record, at)), end),
                    Some(Err(())) => continue,
                    None => return None,
                }
            } else {
                return None;
            };
            s.read_pos = end;
            if source.as_ref().is_ok_and(Batch::is_empty) {
                // Nothing to deliver: acked at once.
                s.in_flight.push_back(InFlight { end, acked: true });
                let id = s.first_id + s.in_flight.len() as u64 - 1;
                self.acked(s, id, AckStatus::Delivered);
                continue;
            }
            s.in_flight.push_back(InFlight { end, acked: false });
            let id = s.first_id + s.in_flight.len() as u64 - 1;
            let weak: Weak<Inner> = Arc::downgrade(self);
            let ack = Ack::new(move |status| {
                if let Some(inner) = weak.upgrade() {
                    let mut s = inner.lock();
                    inner.acked(&mut s, id, status);
                }
            });
            return Some(match source {
                Ok(mut batch) => {
                    let bytes = batch.bytes();
                    Next::InMemory(Batch::with_bytes(
                        std::mem::take(&mut batch.events),
                        ack,
                        bytes,
                    ))
                }
                Err((record, at)) => Next::OnDisk(OnDisk { record, at, ack }),
            });
        }
    }

    /// Reads the record at `read_pos` from its page (checked, not decoded): the record
    /// with its header, where it starts and where it ends. `None` when the reader
    /// caught up with the writer (then nothing is spilled any more); `Err` when a
    /// damaged record made it skip (already logged and counted).
    #[allow(clippy::type_complexity)]
    fn read_from_disk(&self, s: &mut State) -> Option<Result<(Vec<u8>, Pos, Pos), ()>> {
        loop {
            let head = s.head_end();
            if s.read_pos >= head {
                s.spilled = false;
                return None;
            }
            let page_size = s
                .pages
                .iter()
                .find(|(p, _)| *p == s.read_pos.page)
                .map(|(_, size)| *size);
            match page_size {
                Some(size) if s.read_pos.offset < size => {}
                _ => {
                    // End of this page (or a page that is gone): the next one.
                    let next = s
                        .pages
                        .iter()
                        .map(|(p, _)| *p)
                        .find(|&p| p > s.read_pos.page);
                    match next {
                        Some(p) => s.read_pos = Pos { page: p, offset: 0 },
                        None => {
                            s.read_pos = head;
                            s.spilled = false;
                            return None;
                        }
                    }
                    continue;
                }
            }
            let pos = s.read_pos;
            let page_end = page_size.unwrap_or(0);
            let path = self.cfg.dir.join(page_name(pos.page));
            if s.read_file.as_ref().is_none_or(|(p, _)| *p != pos.page) {
                match File::open(&path) {
                    Ok(f) => s.read_file = Some((pos.page, f)),
                    Err(e) => {
                        tracing::error!(page = %path.display(), error = %e, "persisted queue: cannot open a page; skipping it");
                        s.read_pos = Pos {
                            page: pos.page,
                            offset: u64::MAX,
                        };
                        return Some(Err(()));
                    }
                }
            }
            let f = &s.read_file.as_ref()?.1;
            let mut header = [0u8; segment::HEADER];
            let read = f.read_exact_at(&mut header, pos.offset).and_then(|()| {
                let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
                // A damaged length must not become a huge allocation.
                if pos.offset + (segment::HEADER as u64) + u64::from(len) > page_end {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "record runs past the end of its page",
                    ));
                }
                let mut record = header.to_vec();
                record.resize(segment::HEADER + len as usize, 0);
                f.read_exact_at(
                    &mut record[segment::HEADER..],
                    pos.offset + segment::HEADER as u64,
                )?;
                Ok(record)
            });
            let record = match read {
                Ok(r) if segment::record_at(&r, 0).is_some() => r,
                other => {
                    let why = match other {
                        Err(e) => e.to_string(),
                        Ok(_) => "length or CRC does not match".to_string(),
                    };
                    self.damaged(&path, pos.offset, &why);
                    // The rest of the page cannot be framed: go on with the next one.
                    s.read_pos = Pos {
                        page: pos.page,
                        offset: u64::MAX,
                    };
                    return Some(Err(()));
                }
            };
            let end = Pos {
                page: pos.page,
                offset: pos.offset + record.len() as u64,
            };
            return Some(Ok((record, pos, end)));
        }
    }

    fn damaged(&self, path: &Path, offset: u64, why: &str) {
        tracing::error!(
            page = %path.display(),
            offset,
            error = why,
            "persisted queue: damaged record skipped"
        );
        self.counters().damaged_records += 1;
        self.metrics.damaged_records.inc();
    }

    /// Marks record `id` acknowledged and moves the checkpoint over every acknowledged
    /// record at the front; deletes pages left wholly behind it.
    fn acked(&self, s: &mut State, id: u64, status: AckStatus) {
        if status != AckStatus::Delivered {
            // Stays unacknowledged: the checkpoint stops before it, and the next start
            // replays it.
            return;
        }
        let Some(i) = id.checked_sub(s.first_id) else {
            return;
        };
        if let Some(r) = s.in_flight.get_mut(i as usize) {
            r.acked = true;
        }
        let mut moved = false;
        while s.in_flight.front().is_some_and(|r| r.acked) {
            if let Some(r) = s.in_flight.pop_front() {
                s.ack_pos = r.end;
                s.first_id += 1;
                moved = true;
            }
        }
        if !moved {
            return;
        }
        s.checkpoint_dirty = true;
        let mut freed = false;
        while s.pages.len() > 1 && s.pages.front().is_some_and(|(p, _)| *p < s.ack_pos.page) {
            if let Some((p, size)) = s.pages.pop_front() {
                let path = self.cfg.dir.join(page_name(p));
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(page = %path.display(), error = %e, "persisted queue: cannot delete an acknowledged page");
                }
                s.disk_bytes -= size;
                freed = true;
            }
        }
        if freed {
            if let Err(e) = segment::sync_dir(&self.cfg.dir) {
                tracing::warn!(dir = %self.cfg.dir.display(), error = %e, "persisted queue: cannot sync the directory");
            }
            self.metrics.size.set(s.disk_bytes as i64);
            self.writable.notify_waiters();
        }
    }
}

/// The syncer thread: fsyncs the head page when writes call for it, and rewrites the
/// checkpoint when acks moved it. Ends (after a last sync and checkpoint) when the queue
/// is dropped.
fn sync_loop(inner: Weak<Inner>) {
    let mut last_sync = Instant::now();
    let mut last_checkpoint = Instant::now();
    loop {
        let Some(q) = inner.upgrade() else { return };
        let interval = q.cfg.checkpoint_interval.max(Duration::from_millis(1));
        let mut s = q.lock();
        // Wait for work: enough writes, the interval, a checkpoint to write, or stop.
        loop {
            let writes_due = s.unsynced_writes > 0
                && (s.unsynced_writes >= q.cfg.checkpoint_writes.max(1)
                    || last_sync.elapsed() >= interval);
            let checkpoint_due = s.checkpoint_dirty && last_checkpoint.elapsed() >= CHECKPOINT_GAP;
            if s.stopping || writes_due || checkpoint_due {
                break;
            }
            let wait = if s.unsynced_writes > 0 {
                interval.saturating_sub(last_sync.elapsed())
            } else if s.checkpoint_dirty {
                CHECKPOINT_GAP.saturating_sub(last_checkpoint.elapsed())
            } else {
                interval
            };
            s = q
                .wake
                .wait_timeout(s, wait.max(Duration::from_millis(1)))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        let stopping = s.stopping;
        let sync = (s.unsynced_writes > 0).then(|| (s.head.clone(), s.written));
        s.unsynced_writes = 0;
        let checkpoint = (s.checkpoint_dirty
            && (stopping || last_checkpoint.elapsed() >= CHECKPOINT_GAP))
            .then_some(s.ack_pos);
        if checkpoint.is_some() {
            s.checkpoint_dirty = false;
        }
        drop(s);
        if let Some((file, upto)) = sync {
            match file.sync_data() {
                Ok(()) => {
                    q.synced.send_replace(upto);
                    let mut covered = Vec::new();
                    {
                        let mut s = q.lock();
                        while s.unsynced_acks.front().is_some_and(|(seq, _)| *seq <= upto) {
                            covered.extend(s.unsynced_acks.pop_front());
                        }
                    }
                    // Dropped outside the lock: an ack's callback may take it.
                    drop(covered);
                }
                Err(e) => {
                    tracing::error!(dir = %q.cfg.dir.display(), error = %e, "persisted queue: cannot sync a page");
                    // Try again next turn.
                    q.lock().unsynced_writes += 1;
                }
            }
            last_sync = Instant::now();
        }
        if let Some(pos) = checkpoint {
            let path = q.cfg.dir.join("checkpoint");
            if let Err(e) =
                segment::write_atomic(&path, format!("{} {}\n", pos.page, pos.offset).as_bytes())
            {
                tracing::error!(path = %path.display(), error = %e, "persisted queue: cannot write the checkpoint");
                q.lock().checkpoint_dirty = true;
            }
            last_checkpoint = Instant::now();
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
