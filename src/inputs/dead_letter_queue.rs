//! `dead_letter_queue` input: replays the events an output dead-lettered, so that after
//! fixing the cause (a mapping, an index name) they can be sent again.
//!
//! Reads `<path>/<pipeline_id>/*.log` in order and follows the last segment while it
//! grows. Each event comes back as it was, with the entry's details under
//! `[@metadata][dead_letter_queue]` (`reason`, `status`, `index`, `action`, `plugin_type`,
//! `entry_time`). With `commit_offsets => true` (the default) the position is saved once
//! a batch is delivered, and a restart goes on from there.

use super::{Input, InputContext, InputError};
use crate::batch::{Ack, AckReceiver, AckStatus, Batch};
use crate::config::Error;
use crate::event::{Event, Timestamp, Value};
use crate::plugin::Options;
use crate::queue::dlq;
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

fn write_commit(path: &Path, pos: Position) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{} {}\n", pos.segment, pos.offset))?;
    std::fs::rename(&tmp, path)
}

/// Turns one queue line back into its event.
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
        let committer = tokio::spawn(async move {
            while let Some((rx, p)) = commit_rx.recv().await {
                if rx.wait().await != AckStatus::Delivered {
                    continue;
                }
                if let Some(path) = &commit_file {
                    if let Err(e) = write_commit(path, p) {
                        tracing::error!(path = %path.display(), error = %e, "cannot save the dead letter queue position");
                    }
                }
            }
        });

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
            // Only complete lines: the writer may be in the middle of one.
            let end = match memchr::memrchr(b'\n', &data[start..]) {
                Some(i) => start + i + 1,
                None => start,
            };
            if end == start {
                // Once a later segment exists this one is complete (a partial line left
                // by a crash is skipped).
                if self.advance_or_wait(&mut pos, &ctx).await {
                    break;
                }
                continue;
            }
            let now = Timestamp::now();
            let mut events = Vec::with_capacity(self.batch_size);
            let mut offset = start;
            for line in data[start..end].split_inclusive(|&b| b == b'\n') {
                offset += line.len();
                let text = line.strip_suffix(b"\n").unwrap_or(line);
                if !text.is_empty() {
                    match decode(text, now) {
                        Ok(e) => events.push(e),
                        Err(e) => tracing::warn!(
                            segment = %path.display(),
                            offset = offset - line.len(),
                            error = %e,
                            "skipping an unreadable dead letter queue entry"
                        ),
                    }
                }
                if events.len() >= self.batch_size || offset == end {
                    let at = Position {
                        segment: pos.segment,
                        offset: offset as u64,
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
