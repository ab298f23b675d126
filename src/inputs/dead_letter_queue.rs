//! `dead_letter_queue` input: replays the events an output dead-lettered, so that after
//! fixing the cause (a mapping, an index name) they can be sent again.
//!
//! Reads `<path>/<pipeline_id>/*.log` in order and follows the last segment while it
//! grows. Each event comes back as it was, with the entry's details under
//! `[@metadata][dead_letter_queue]` (`reason`, `status`, `index`, `action`, `plugin_type`,
//! `entry_time`). With `commit_offsets => true` (the default) the position is saved once
//! a batch is delivered and every batch before it was too, and a restart goes on from
//! there: an entry that was not delivered is read again by the next run.

use super::{Input, InputContext, InputError};
use crate::batch::{Ack, AckReceiver, AckStatus, Batch};
use crate::config::Error;
use crate::event::{Event, Timestamp, Value};
use crate::plugin::Options;
use crate::queue::{dlq, segment};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often the end of the queue is checked for new entries.
const POLL: Duration = Duration::from_millis(250);

pub struct DeadLetterQueueInput {
    dir: PathBuf,
    commit_file: Option<PathBuf>,
    batch_size: usize,
}

/// A position in the queue: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Position {
    segment: u64,
    offset: u64,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    plugin: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    index: Option<String>,
    #[serde(default)]
    status: Option<i64>,
    #[serde(default)]
    reason: Option<String>,
    event: Value,
}

impl DeadLetterQueueInput {
    pub fn build(opts: &mut Options) -> Result<DeadLetterQueueInput, Error> {
        let ctx = opts.context().clone();
        let path = opts
            .string("path")?
            .map(PathBuf::from)
            .unwrap_or_else(|| ctx.data_dir.join("dead_letter_queue"));
        let pipeline_id = opts.string_or("pipeline_id", dlq::DEFAULT_PIPELINE_ID)?;
        let commit = opts.bool_or("commit_offsets", true)?;
        let sincedb = opts.string("sincedb_path")?.map(PathBuf::from);
        let commit_file = commit.then(|| {
            sincedb.unwrap_or_else(|| {
                ctx.data_dir
                    .join("plugins")
                    .join("inputs")
                    .join("dead_letter_queue")
                    .join(&pipeline_id)
                    .join("last_commit")
            })
        });
        Ok(DeadLetterQueueInput {
            dir: path.join(&pipeline_id),
            commit_file,
            batch_size: ctx.batch_size.max(1),
        })
    }
}

fn read_commit(path: &Path) -> Option<Position> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut it = text.split_whitespace();
    Some(Position {
        segment: it.next()?.parse().ok()?,
        offset: it.next()?.parse().ok()?,
    })
}

/// Saves the position so that a crash leaves the old or the new one, never a mix.
fn write_commit(path: &Path, pos: Position) -> std::io::Result<()> {
    segment::write_atomic(path, format!("{} {}\n", pos.segment, pos.offset).as_bytes())
}

/// Turns one queue entry back into its event.
fn decode(line: &[u8], now: Timestamp) -> Result<Event, String> {
    let entry: Entry = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let Value::Map(fields) = entry.event else {
        return Err("`event` is not an object".into());
    };
    let mut event = Event::from_map(fields, now);
    let meta = event.metadata_mut();
    let mut info = crate::event::new_map();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            info.insert(k.to_string(), v);
        }
    };
    put("reason", entry.reason.map(Value::String));
    put("status", entry.status.map(Value::Int));
    put("index", entry.index.map(Value::String));
    put("action", entry.action.map(Value::String));
    put("plugin_type", entry.plugin.map(Value::String));
    put("entry_time", entry.time.map(Value::String));
    meta.insert("dead_letter_queue".to_string(), Value::Map(info));
    Ok(event)
}

impl DeadLetterQueueInput {
    /// The next segment after `n`, if any.
    fn next_segment(&self, n: u64) -> Option<u64> {
        dlq::list_segments(&self.dir)
            .ok()?
            .into_iter()
            .find(|&s| s > n)
    }

    /// Moves `pos` to the start of the segment after its own or, while there is none
    /// yet, waits a moment. True when the input is to stop.
    async fn advance_or_wait(&self, pos: &mut Position, ctx: &InputContext) -> bool {
        match self.next_segment(pos.segment) {
            Some(n) => {
                *pos = Position {
                    segment: n,
                    offset: 0,
                };
                false
            }
            None => sleep_or_stop(ctx).await,
        }
    }
}

#[async_trait::async_trait]
impl Input for DeadLetterQueueInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        let mut pos = self
            .commit_file
            .as_deref()
            .and_then(read_commit)
            .unwrap_or_default();
        tracing::info!(
            dir = %self.dir.display(),
            segment = pos.segment,
            offset = pos.offset,
            "reading the dead letter queue"
        );
        // Commits happen in order, each once its batch is delivered.
        let (commit_tx, mut commit_rx) =
            tokio::sync::mpsc::unbounded_channel::<(AckReceiver, Position)>();
        let commit_file = self.commit_file.clone();
        let committer = tokio::spawn(tracing::Instrument::in_current_span(async move {
            // The committed position is one below which every entry was delivered: once
            // a batch fails, no later position may be saved (a restart replays from the
            // last good one, so the failed entries come back; the later ones may come
            // twice).
            let mut held = false;
            while let Some((rx, p)) = commit_rx.recv().await {
                if rx.wait().await != AckStatus::Delivered {
                    if !held {
                        tracing::warn!(
                            segment = p.segment,
                            offset = p.offset,
                            "replayed dead letters were not delivered; the position stays before them until a restart"
                        );
                        held = true;
                    }
                    continue;
                }
                if held {
                    continue;
                }
                if let Some(path) = &commit_file {
                    if let Err(e) = write_commit(path, p) {
                        tracing::error!(path = %path.display(), error = %e, "cannot save the dead letter queue position");
                    }
                }
            }
        }));

        let mut data: Vec<u8> = Vec::new();
        'outer: while !ctx.is_shutting_down() {
            if pos.segment == 0 {
                match self.next_segment(0) {
                    Some(n) => {
                        pos = Position {
                            segment: n,
                            offset: 0,
                        }
                    }
                    None => {
                        if sleep_or_stop(&ctx).await {
                            break;
                        }
                        continue;
                    }
                }
            }
            let path = self.dir.join(dlq::segment_name(pos.segment));
            data.clear();
            match tokio::fs::read(&path).await {
                Ok(d) => data = d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Deleted by drop_older: go on with the next one.
                    if self.advance_or_wait(&mut pos, &ctx).await {
                        break;
                    }
                    continue;
                }
                Err(e) => {
                    return Err(InputError::Io {
                        context: format!("cannot read {}", path.display()),
                        source: e,
                    })
                }
            }
            let start = (pos.offset as usize).min(data.len());
            // Complete records only: the writer may be in the middle of one.
            let scan = segment::scan(&data, start);
            let later_segment = self.next_segment(pos.segment).is_some();
            for d in &scan.damaged {
                // A damaged tail of the segment being written is a write in progress;
                // anything else is damage: skipped, loudly.
                if d.end == data.len() && d.start == scan.valid_end && !later_segment {
                    continue;
                }
                tracing::error!(
                    segment = %path.display(),
                    offset = d.start,
                    bytes = d.end - d.start,
                    "skipping a damaged part of the dead letter queue"
                );
            }
            if scan.records.is_empty() {
                // Once a later segment exists this one is complete.
                if self.advance_or_wait(&mut pos, &ctx).await {
                    break;
                }
                continue;
            }
            let now = Timestamp::now();
            let mut events = Vec::with_capacity(self.batch_size);
            let last = scan.records.len() - 1;
            for (i, r) in scan.records.iter().enumerate() {
                match decode(&data[r.clone()], now) {
                    Ok(e) => events.push(e),
                    Err(e) => tracing::warn!(
                        segment = %path.display(),
                        offset = r.start - segment::HEADER,
                        error = %e,
                        "skipping an unreadable dead letter queue entry"
                    ),
                }
                if events.len() >= self.batch_size || i == last {
                    let at = Position {
                        segment: pos.segment,
                        offset: if i == last { scan.valid_end } else { r.end } as u64,
                    };
                    let (ack, rx) = Ack::channel();
                    let batch = Batch::new(std::mem::take(&mut events), ack);
                    if ctx.push(batch).await.is_err() {
                        break 'outer;
                    }
                    let _ = commit_tx.send((rx, at));
                    pos = at;
                }
            }
        }
        drop(commit_tx);
        let _ = committer.await;
        Ok(())
    }
}

/// Waits a poll interval; true when the pipeline is stopping.
async fn sleep_or_stop(ctx: &InputContext) -> bool {
    tokio::select! {
        _ = ctx.shutdown().cancelled() => true,
        _ = tokio::time::sleep(POLL) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_an_entry_with_its_metadata() {
        let line = br#"{"time":"2026-11-21T10:00:00.000Z","plugin":"elasticsearch","action":"index","index":"logs","status":400,"reason":"mapper_parsing_exception: bad","event":{"@timestamp":"2026-11-21T09:59:59.000Z","n":"x","message":"hi"}}"#;
        let e = decode(line, Timestamp::now()).unwrap();
        assert_eq!(e.get_str("message"), Some("hi"));
        assert_eq!(e.get_str("n"), Some("x"));
        assert_eq!(
            e.timestamp().unwrap().to_iso8601(),
            "2026-11-21T09:59:59.000Z"
        );
        let r = crate::event::field_ref::FieldRef::parse("[@metadata][dead_letter_queue][reason]")
            .unwrap();
        assert_eq!(
            e.get(&r).and_then(Value::as_str),
            Some("mapper_parsing_exception: bad")
        );
        assert!(decode(b"{}", Timestamp::now()).is_err());
    }

    use crate::queue::{MemoryQueue, Queue};
    use std::sync::Arc;
    use tokio_util::sync::CancellationToken;

    /// Writes entries numbered `from..to` (field `n`) to the queue in `dir`.
    fn dead_letter(dir: &Path, from: i64, to: i64) {
        let q =
            dlq::DeadLetterQueue::open(dir, dlq::DEFAULT_MAX_BYTES, Default::default()).unwrap();
        let events: Vec<Event> = (from..to)
            .map(|i| {
                let mut e = Event::new();
                e.insert_field("n", Value::Int(i));
                e
            })
            .collect();
        let entries: Vec<dlq::Entry> = events
            .iter()
            .map(|event| dlq::Entry {
                plugin: "elasticsearch",
                action: "index",
                index: "logs",
                status: 400,
                reason: "mapper_parsing_exception",
                event,
            })
            .collect();
        assert_eq!(q.write(&entries).unwrap(), entries.len());
        q.sync().unwrap();
    }

    /// One run of the input over `data`: one entry per batch; `verdict(n)` says whether
    /// the batch holding entry `n` is delivered. After `take` batches, the input is
    /// stopped and whatever else it pushed fails. Returns the numbers seen, in order.
    async fn one_run(data: &Path, take: usize, verdict: impl Fn(i64) -> bool) -> Vec<i64> {
        let input = Box::new(DeadLetterQueueInput {
            dir: data.join("dead_letter_queue").join("main"),
            commit_file: Some(data.join("last_commit")),
            batch_size: 1,
        });
        let queue = Arc::new(Queue::Memory(MemoryQueue::new(1, 1 << 20)));
        let shutdown = CancellationToken::new();
        let ctx = InputContext::new("dlq", queue.clone(), shutdown.clone(), Default::default());
        let task = tokio::spawn(input.run(ctx));
        let mut seen = Vec::new();
        let n_of = |b: &Batch| match b.events[0].get_field("n") {
            Some(Value::Int(n)) => *n,
            other => panic!("no number in {other:?}"),
        };
        let limit = Duration::from_secs(10);
        for _ in 0..take {
            let b = tokio::time::timeout(limit, queue.pop(1, Duration::ZERO))
                .await
                .expect("the input pushed nothing within 10 s")
                .unwrap();
            let n = n_of(&b);
            seen.push(n);
            if !verdict(n) {
                b.fail();
            }
        }
        shutdown.cancel();
        // Drain what the input pushed before it saw the signal: not delivered.
        while !task.is_finished() {
            if let Ok(Some(b)) =
                tokio::time::timeout(Duration::from_millis(50), queue.pop(1, Duration::ZERO)).await
            {
                b.fail();
            }
        }
        tokio::time::timeout(limit, task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_entry_is_not_committed_past_and_comes_back_on_restart() {
        let tmp = tempfile::tempdir().unwrap();
        dead_letter(&tmp.path().join("dead_letter_queue/main"), 0, 3);
        // Entry 0 fails, 1 and 2 are delivered after it.
        let first = one_run(tmp.path(), 3, |n| n != 0).await;
        assert_eq!(first, vec![0, 1, 2]);
        let second = one_run(tmp.path(), 1, |_| true).await;
        assert_eq!(second, vec![0], "the failed entry must be replayed first");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commit_offsets_resumes_after_the_last_delivered_entry() {
        let tmp = tempfile::tempdir().unwrap();
        dead_letter(&tmp.path().join("dead_letter_queue/main"), 0, 6);
        assert_eq!(one_run(tmp.path(), 2, |_| true).await, vec![0, 1]);
        assert_eq!(one_run(tmp.path(), 3, |_| true).await, vec![2, 3, 4]);
        // Entries written while nothing read them come after.
        dead_letter(&tmp.path().join("dead_letter_queue/main"), 6, 8);
        assert_eq!(one_run(tmp.path(), 3, |_| true).await, vec![5, 6, 7]);
    }

    #[test]
    fn commit_positions_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("a/b/last_commit");
        assert_eq!(read_commit(&f), None);
        let p = Position {
            segment: 3,
            offset: 1234,
        };
        write_commit(&f, p).unwrap();
        assert_eq!(read_commit(&f), Some(p));
    }
}
