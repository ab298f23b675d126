//! `file` input: reads lines from files named by globs, in `tail` mode (follow what is
//! appended, across rotation) or `read` mode (read each file once, then act on it).
//!
//! Files are known by device and inode, not by name, so a rotated file (renamed, a new
//! one created under the old name) is read to its end under its old handle while the new
//! one is read from its start; a file that shrinks below what was read (copytruncate) is
//! read again from 0. Where reading stands is kept in the sincedb (`sincedb_path`, one
//! line per file: inode, device major and minor, position, last activity, path), written
//! atomically every `sincedb_write_interval` seconds and at shutdown. A position enters
//! the sincedb only once every line before it was made safe (its batch's ack fired
//! Delivered), in file order even when batches are acked out of order, so a restart
//! reads again at most what was not yet safe and loses nothing.
//!
//! The loop is synchronous (files are local) and runs on a blocking thread; it stats
//! the watched files every `stat_interval` seconds and looks for new ones every
//! `discover_interval` stat rounds, as Logstash's filewatch does. At most
//! `max_open_files` files are open at once; the others wait their turn. What one file
//! holds in memory is its unterminated last line (capped at [`MAX_LINE_BYTES`], then cut
//! and tagged `_linetoolong`) and one read chunk.
//!
//! With `codec => multiline {...}` each file has its own multiline state, as Logstash
//! keeps one codec per file: lines of two files never join. Lines waiting in that state
//! are not safe yet, so a batch's position stops at the start of the first line still
//! pending: a restart reads them again. Pending lines are emitted after
//! `auto_flush_interval`, when a file is read to its end in read mode, when a file is
//! closed (rotated away, `close_older`) and at shutdown.

use super::{Input, InputContext, InputError};
use crate::batch::{Ack, AckStatus, Batch};
use crate::codecs::{StreamCodec, StreamDecoder};
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{Timestamp, Value};
use crate::plugin::ecs::Ecs;
use crate::plugin::Options;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The longest line kept whole.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Bytes read from one file per round (Logstash's `file_chunk_size`).
const CHUNK_BYTES: usize = 32 * 1024;

/// A file's identity: device and inode.
type Key = (u64, u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Tail,
    Read,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Completed {
    Delete,
    Log,
    LogAndDelete,
}

pub struct FileInput {
    patterns: Vec<String>,
    exclude: Vec<glob::Pattern>,
    mode: Mode,
    from_beginning: bool,
    sincedb_path: PathBuf,
    sincedb_write_interval: Duration,
    stat_interval: Duration,
    discover_every: u64,
    delimiter: Vec<u8>,
    close_older: Option<Duration>,
    ignore_older: Option<Duration>,
    max_open_files: usize,
    completed_action: Completed,
    completed_log_path: Option<PathBuf>,
    exit_after_read: bool,
    codec: StreamCodec,
    path_field: FieldRef,
    host_field: FieldRef,
    batch_size: usize,
}

fn seconds(
    opts: &mut Options,
    name: &str,
    default: Option<f64>,
) -> Result<Option<Duration>, Error> {
    let pos = opts.value_pos(name);
    match opts.float(name)?.or(default) {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(_) => Err(opts.option_error(name, &pos, "must be a number of seconds")),
    }
}

impl FileInput {
    pub fn build(opts: &mut Options) -> Result<FileInput, Error> {
        let pos = opts.value_pos("path");
        let patterns = opts
            .string_list("path")?
            .ok_or_else(|| opts.error("file input requires option `path`"))?;
        if let Some(p) = patterns.iter().find(|p| !Path::new(p).is_absolute()) {
            return Err(opts.option_error("path", &pos, format!("`{p}` is not an absolute path")));
        }
        let pos = opts.value_pos("exclude");
        let mut exclude = Vec::new();
        for e in opts.string_list("exclude")?.unwrap_or_default() {
            exclude.push(
                glob::Pattern::new(&e).map_err(|err| opts.option_error("exclude", &pos, err))?,
            );
        }
        let pos = opts.value_pos("mode");
        let mode = match opts.string_or("mode", "tail")?.as_str() {
            "tail" => Mode::Tail,
            "read" => Mode::Read,
            other => {
                return Err(opts.option_error(
                    "mode",
                    &pos,
                    format!("`{other}` is not tail or read"),
                ))
            }
        };
        let pos = opts.value_pos("start_position");
        let from_beginning = match opts.string_or("start_position", "end")?.as_str() {
            "end" => false,
            "beginning" => true,
            other => {
                return Err(opts.option_error(
                    "start_position",
                    &pos,
                    format!("`{other}` is not beginning or end"),
                ))
            }
        };
        let sincedb_path = match opts.string("sincedb_path")? {
            Some(p) => PathBuf::from(p),
            None => {
                use md5::Digest as _;
                let mut sorted = patterns.clone();
                sorted.sort();
                let digest = md5::Md5::digest(sorted.join(",").as_bytes());
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                opts.context()
                    .data_dir
                    .join("plugins/inputs/file")
                    .join(format!(".sincedb_{hex}"))
            }
        };
        let sincedb_write_interval =
            seconds(opts, "sincedb_write_interval", Some(15.0))?.unwrap_or_default();
        let stat_interval = seconds(opts, "stat_interval", Some(1.0))?
            .unwrap_or_default()
            .max(Duration::from_millis(10));
        let pos = opts.value_pos("discover_interval");
        let discover_every = opts.int_or("discover_interval", 15)?;
        let discover_every = u64::try_from(discover_every)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| opts.option_error("discover_interval", &pos, "must be at least 1"))?;
        let pos = opts.value_pos("delimiter");
        let delimiter = opts.string_or("delimiter", "\n")?.into_bytes();
        if delimiter.is_empty() {
            return Err(opts.option_error("delimiter", &pos, "must not be empty"));
        }
        let close_older = seconds(opts, "close_older", (mode == Mode::Tail).then_some(3600.0))?
            .filter(|d| !d.is_zero());
        let ignore_older = seconds(opts, "ignore_older", None)?.filter(|d| !d.is_zero());
        let pos = opts.value_pos("max_open_files");
        let max_open_files = opts.usize_or("max_open_files", 4095)?;
        if max_open_files == 0 {
            return Err(opts.option_error("max_open_files", &pos, "must be at least 1"));
        }
        let pos = opts.value_pos("file_completed_action");
        let completed_action = match opts.string_or("file_completed_action", "delete")?.as_str() {
            "delete" => Completed::Delete,
            "log" => Completed::Log,
            "log_and_delete" => Completed::LogAndDelete,
            other => {
                return Err(opts.option_error(
                    "file_completed_action",
                    &pos,
                    format!("`{other}` is not delete, log or log_and_delete"),
                ))
            }
        };
        let completed_log_path = opts.string("file_completed_log_path")?.map(PathBuf::from);
        if completed_action != Completed::Delete
            && completed_log_path.is_none()
            && mode == Mode::Read
        {
            return Err(opts.option_error(
                "file_completed_log_path",
                &pos,
                "file_completed_action log needs file_completed_log_path",
            ));
        }
        let exit_after_read = opts.bool_or("exit_after_read", false)?;
        let codec = StreamCodec::build(opts.codec()?, "plain")?;
        let ecs = Ecs::from_options(opts)?.enabled();
        let field = |name: &str| {
            FieldRef::parse(name).map_err(|e| Error::Empty(format!("built-in field: {e}")))
        };
        Ok(FileInput {
            patterns,
            exclude,
            mode,
            from_beginning,
            sincedb_path,
            sincedb_write_interval,
            stat_interval,
            discover_every,
            delimiter,
            close_older,
            ignore_older,
            max_open_files,
            completed_action,
            completed_log_path,
            exit_after_read,
            codec,
            path_field: field(if ecs { "[log][file][path]" } else { "path" })?,
            host_field: field(if ecs { "[host][name]" } else { "host" })?,
            batch_size: opts.context().batch_size.max(1),
        })
    }
}

/// Where a file stands in the sincedb: what was made safe.
#[derive(Debug, Clone)]
struct Saved {
    position: u64,
    last_active: f64,
    path: String,
}

/// The positions made safe, per file, fed by the acks of batches.
#[derive(Default)]
struct Progress {
    files: HashMap<Key, FileProgress>,
    dirty: bool,
}

#[derive(Default)]
struct FileProgress {
    saved: Option<Saved>,
    next_batch: u64,
    /// Batches pushed and not yet acked (or acked after one still pending): batch →
    /// (end offset, acked Delivered). A failed batch stays, so nothing after it counts.
    in_flight: BTreeMap<u64, (u64, bool)>,
}

impl Progress {
    fn acked(&mut self, key: Key, batch: u64, status: AckStatus) {
        let Some(f) = self.files.get_mut(&key) else {
            return;
        };
        if status == AckStatus::Delivered {
            if let Some(slot) = f.in_flight.get_mut(&batch) {
                slot.1 = true;
            }
        }
        while let Some((&first, &(end, done))) = f.in_flight.iter().next() {
            if !done {
                break;
            }
            f.in_flight.remove(&first);
            if let Some(saved) = f.saved.as_mut() {
                saved.position = end;
                saved.last_active = now_secs();
            }
            self.dirty = true;
        }
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn major(dev: u64) -> u64 {
    ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)
}

fn minor(dev: u64) -> u64 {
    (dev & 0xff) | ((dev >> 12) & !0xff)
}

fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xfff) << 8) | ((major & !0xfff) << 32) | (minor & 0xff) | ((minor & !0xff) << 12)
}

/// Reads a sincedb; lines that do not parse are skipped (logged).
fn read_sincedb(path: &Path) -> HashMap<Key, Saved> {
    let mut out = HashMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    for line in text.lines() {
        let mut parts = line.splitn(6, ' ');
        let mut num = || parts.next().and_then(|p| p.parse::<u64>().ok());
        let (Some(ino), Some(maj), Some(min), Some(pos)) = (num(), num(), num(), num()) else {
            tracing::warn!(sincedb = %path.display(), line, "sincedb line not understood; skipped");
            continue;
        };
        let last_active = parts
            .next()
            .and_then(|p| p.parse::<f64>().ok())
            .unwrap_or(0.0);
        let file = parts.next().unwrap_or("").to_string();
        out.insert(
            (makedev(maj, min), ino),
            Saved {
                position: pos,
                last_active,
                path: file,
            },
        );
    }
    out
}

fn write_sincedb(path: &Path, progress: &Mutex<Progress>) {
    let text = {
        let Ok(mut p) = progress.lock() else { return };
        if !p.dirty {
            return;
        }
        p.dirty = false;
        let mut text = String::new();
        for ((dev, ino), f) in &p.files {
            if let Some(s) = &f.saved {
                text.push_str(&format!(
                    "{ino} {} {} {} {:.6} {}\n",
                    major(*dev),
                    minor(*dev),
                    s.position,
                    s.last_active,
                    s.path
                ));
            }
        }
        text
    };
    if let Err(e) = crate::queue::segment::write_atomic(path, text.as_bytes()) {
        tracing::warn!(sincedb = %path.display(), error = %e, "sincedb not written");
        if let Ok(mut p) = progress.lock() {
            p.dirty = true;
        }
    }
}

/// One file being read.
struct Watched {
    key: Key,
    path: PathBuf,
    file: Option<File>,
    /// Bytes read (and framed or held in `partial`).
    read: u64,
    /// Where the line being framed (in `partial`, or skipped) starts in the file.
    line_start: u64,
    partial: Vec<u8>,
    /// This file's codec state (multiline: the lines waiting for the rest of their event).
    decoder: StreamDecoder,
    /// The start offset of each line the decoder holds pending, oldest first: nothing
    /// from the first of them on is safe until the decoder emits it.
    pending_starts: VecDeque<u64>,
    /// The tail of an over-long line is being skipped.
    skipping: bool,
    last_growth: Instant,
    /// The name no longer leads to this file (rotated away).
    renamed: bool,
    /// Read mode: read to the end, waiting for its acks.
    finished: bool,
}

#[async_trait::async_trait]
impl Input for FileInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || self.run_blocking(&ctx, &handle))
            .await
            .map_err(|e| InputError::Other(format!("file input stopped: {e}")))?
    }
}

impl FileInput {
    fn run_blocking(
        &self,
        ctx: &InputContext,
        rt: &tokio::runtime::Handle,
    ) -> Result<(), InputError> {
        let host = hostname();
        let saved = read_sincedb(&self.sincedb_path);
        let progress = Arc::new(Mutex::new(Progress::default()));
        let mut watched: Vec<Watched> = Vec::new();
        let mut round: u64 = 0;
        let mut last_write = Instant::now();
        tracing::info!(input = ctx.id(), sincedb = %self.sincedb_path.display(), paths = ?self.patterns, "file input started");
        loop {
            if ctx.is_shutting_down() {
                break;
            }
            if round.is_multiple_of(self.discover_every) {
                self.discover(&mut watched, &saved, &progress, ctx, round == 0);
            }
            round += 1;
            let mut open = watched.iter().filter(|w| w.file.is_some()).count();
            let mut pushed_any = false;
            for w in watched.iter_mut() {
                if ctx.is_shutting_down() {
                    break;
                }
                if w.file.is_none() && open >= self.max_open_files {
                    continue;
                }
                match self.read_some(w, &host, &progress, ctx, rt, &mut open) {
                    Ok(pushed) => pushed_any |= pushed,
                    Err(()) => return Ok(()),
                }
            }
            if self
                .flush_codecs(&mut watched, Flush::Due, &host, &progress, ctx, rt)
                .is_err()
            {
                return Ok(());
            }
            self.finish_files(&mut watched, &progress, ctx);
            if last_write.elapsed() >= self.sincedb_write_interval {
                write_sincedb(&self.sincedb_path, &progress);
                last_write = Instant::now();
            }
            if self.mode == Mode::Read
                && self.exit_after_read
                && round > 1
                && watched.iter().all(|w| w.finished)
                && progress
                    .lock()
                    .map(|p| p.files.values().all(|f| f.in_flight.is_empty()))
                    .unwrap_or(true)
            {
                break;
            }
            if !pushed_any {
                // Woken early when a codec's `auto_flush_interval` falls due.
                let now = Instant::now();
                let wait = watched
                    .iter()
                    .filter_map(|w| w.decoder.flush_due())
                    .map(|due| due.saturating_duration_since(now))
                    .fold(self.stat_interval, Duration::min);
                // Idle: events handed back to this thread are freed now, and meanwhile
                // by the sweeper (see `recycle`).
                crate::recycle::away();
                let stop = rt.block_on(async {
                    tokio::select! {
                        _ = ctx.shutdown().cancelled() => true,
                        _ = tokio::time::sleep(wait) => false,
                    }
                });
                crate::recycle::back();
                if stop {
                    break;
                }
            }
        }
        // Lines the codecs hold are emitted: the pipeline drains before it stops.
        if self
            .flush_codecs(&mut watched, Flush::All, &host, &progress, ctx, rt)
            .is_err()
        {
            tracing::warn!(input = ctx.id(), "queue closed before the multiline codec's pending lines were pushed; they are read again at the next start");
        }
        // Batches already pushed may still be acked while the pipeline drains.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && !progress
                .lock()
                .map(|p| p.files.values().all(|f| f.in_flight.is_empty()))
                .unwrap_or(true)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        write_sincedb(&self.sincedb_path, &progress);
        Ok(())
    }

    fn discover(
        &self,
        watched: &mut Vec<Watched>,
        saved: &HashMap<Key, Saved>,
        progress: &Arc<Mutex<Progress>>,
        ctx: &InputContext,
        first: bool,
    ) {
        let mut seen: HashMap<PathBuf, Key> = HashMap::new();
        let mut watching: std::collections::HashSet<Key> = watched.iter().map(|w| w.key).collect();
        for pattern in &self.patterns {
            let paths = match glob::glob(pattern) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(input = ctx.id(), pattern, error = %e, "file path pattern invalid");
                    continue;
                }
            };
            for path in paths.flatten() {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if self.exclude.iter().any(|e| e.matches(&name)) {
                    continue;
                }
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                let key = (meta.dev(), meta.ino());
                seen.insert(path.clone(), key);
                if !watching.insert(key) {
                    continue;
                }
                let known = progress
                    .lock()
                    .map(|p| p.files.contains_key(&key))
                    .unwrap_or(false);
                if known {
                    // Finished in read mode, or closed: its sincedb entry stays.
                    continue;
                }
                let old = meta
                    .modified()
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| self.ignore_older.is_some_and(|limit| age > limit));
                let start = match saved.get(&key) {
                    Some(s) if s.position <= meta.len() => s.position,
                    // A smaller file under a known inode: a new file (inode reused).
                    Some(_) => 0,
                    None if old => meta.len(),
                    None if self.mode == Mode::Read || self.from_beginning => 0,
                    None => meta.len(),
                };
                // A file that appears after the first look (a rotated log's successor)
                // is new: read from its start, whatever `start_position` says.
                let start = if saved.get(&key).is_none() && !old && !first {
                    0
                } else {
                    start
                };
                tracing::debug!(input = ctx.id(), path = %path.display(), start, "file discovered");
                if let Ok(mut p) = progress.lock() {
                    p.files.insert(
                        key,
                        FileProgress {
                            saved: Some(Saved {
                                position: start,
                                last_active: now_secs(),
                                path: path.display().to_string(),
                            }),
                            ..Default::default()
                        },
                    );
                    p.dirty = true;
                }
                watched.push(Watched {
                    key,
                    path,
                    file: None,
                    read: start,
                    line_start: start,
                    partial: Vec::new(),
                    decoder: self.codec.stream(),
                    pending_starts: VecDeque::new(),
                    skipping: false,
                    last_growth: Instant::now(),
                    renamed: false,
                    finished: false,
                });
            }
        }
        for w in watched.iter_mut() {
            if seen.get(&w.path) != Some(&w.key) {
                w.renamed = true;
            }
        }
    }

    /// Reads what one file has; pushes its events. Err when the queue closed.
    #[allow(clippy::too_many_arguments)]
    fn read_some(
        &self,
        w: &mut Watched,
        host: &str,
        progress: &Arc<Mutex<Progress>>,
        ctx: &InputContext,
        rt: &tokio::runtime::Handle,
        open: &mut usize,
    ) -> Result<bool, ()> {
        if w.finished {
            return Ok(false);
        }
        if w.file.is_none() {
            if w.renamed {
                // Rotated away while closed: its name leads elsewhere; nothing to reopen.
                return Ok(false);
            }
            let file = match File::open(&w.path) {
                Ok(f) => f,
                Err(_) => return Ok(false),
            };
            match file.metadata() {
                Ok(m) if (m.dev(), m.ino()) == w.key => {}
                _ => return Ok(false),
            }
            w.file = Some(file);
            *open += 1;
        }
        let size = match w.file.as_ref() {
            Some(file) => file.metadata().map(|m| m.len()).unwrap_or(w.read),
            None => return Ok(false),
        };
        if size < w.read {
            tracing::info!(input = ctx.id(), path = %w.path.display(), size, read = w.read, "file truncated; reading it again from the start");
            // Lines pending in the codec were read: they go out as they are (their
            // position no longer exists, so they move nothing in the sincedb).
            w.pending_starts.clear();
            w.read = 0;
            w.line_start = 0;
            w.partial.clear();
            w.skipping = false;
            if let Ok(mut p) = progress.lock() {
                if let Some(f) = p.files.get_mut(&w.key) {
                    f.in_flight.clear();
                    if let Some(s) = f.saved.as_mut() {
                        s.position = 0;
                    }
                }
                p.dirty = true;
            }
            self.push(w, Vec::new(), Flush::All, host, progress, ctx, rt)?;
        }
        if size == w.read {
            let idle = w.last_growth.elapsed();
            let at_end_for_good = w.renamed || self.close_older.is_some_and(|c| idle >= c);
            if self.mode == Mode::Read || (w.renamed && idle >= self.stat_interval * 2) {
                // The last line without a delimiter: read mode takes it; a rotated file
                // will not grow any more.
                if !w.partial.is_empty() || pending(w) > 0 {
                    self.end_of_file(w, host, progress, ctx, rt)?;
                    return Ok(true);
                }
                if self.mode == Mode::Read {
                    w.finished = true;
                }
            }
            if at_end_for_good || w.finished {
                // Closed: what its codec holds goes out now (Logstash flushes a
                // file's codec when it closes the file).
                if pending(w) > 0 {
                    self.push(w, Vec::new(), Flush::All, host, progress, ctx, rt)?;
                }
                w.file = None;
                *open = open.saturating_sub(1);
            }
            return Ok(false);
        }
        w.last_growth = Instant::now();
        let Some(file) = w.file.as_mut() else {
            return Ok(false);
        };
        if file.seek(SeekFrom::Start(w.read)).is_err() {
            return Ok(false);
        }
        let mut chunk = vec![0u8; CHUNK_BYTES];
        let mut lines: Vec<FramedLine> = Vec::new();
        let mut pushed = false;
        while lines.len() < self.batch_size {
            let n = match file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(input = ctx.id(), path = %w.path.display(), error = %e, "file read failed");
                    break;
                }
            };
            // The file offset of `data[0]`.
            let mut offset = w.read;
            w.read += n as u64;
            let mut data = &chunk[..n];
            while let Some(i) = find(data, &self.delimiter) {
                let piece = &data[..i];
                let next = offset + (i + self.delimiter.len()) as u64;
                if w.skipping {
                    w.skipping = false;
                } else {
                    w.partial.extend_from_slice(piece);
                    let truncated = w.partial.len() > MAX_LINE_BYTES;
                    let mut line = std::mem::take(&mut w.partial);
                    line.truncate(MAX_LINE_BYTES);
                    lines.push(FramedLine {
                        bytes: line,
                        truncated,
                        start: w.line_start,
                    });
                }
                w.line_start = next;
                offset = next;
                data = &data[i + self.delimiter.len()..];
            }
            if !w.skipping {
                w.partial.extend_from_slice(data);
                if w.partial.len() > MAX_LINE_BYTES {
                    // Kept: the head, emitted at the delimiter; the rest skipped.
                    let mut head = std::mem::take(&mut w.partial);
                    head.truncate(MAX_LINE_BYTES);
                    lines.push(FramedLine {
                        bytes: head,
                        truncated: true,
                        start: w.line_start,
                    });
                    w.skipping = true;
                }
            }
            if lines.len() >= self.batch_size {
                break;
            }
        }
        if !lines.is_empty() {
            self.push(w, lines, Flush::No, host, progress, ctx, rt)?;
            pushed = true;
        }
        if self.mode == Mode::Read && w.read >= size {
            // Read to its end: the last line without a delimiter and what the codec
            // holds, then closed at once, so the next file can take its place.
            self.end_of_file(w, host, progress, ctx, rt)?;
            pushed = true;
            w.finished = true;
            w.file = None;
            *open = open.saturating_sub(1);
        }
        Ok(pushed)
    }

    /// A file that will not grow (read mode at its end, rotated away): its last line
    /// without a delimiter and every line its codec holds become events.
    fn end_of_file(
        &self,
        w: &mut Watched,
        host: &str,
        progress: &Arc<Mutex<Progress>>,
        ctx: &InputContext,
        rt: &tokio::runtime::Handle,
    ) -> Result<(), ()> {
        let mut lines = Vec::new();
        if !w.partial.is_empty() {
            lines.push(FramedLine {
                bytes: std::mem::take(&mut w.partial),
                truncated: false,
                start: w.line_start,
            });
            w.line_start = w.read;
        }
        self.push(w, lines, Flush::All, host, progress, ctx, rt)
    }

    /// Emits what the codecs hold once `auto_flush_interval` passed (`Flush::Due`), or
    /// all of it (`Flush::All`, at shutdown). Err when the queue closed.
    #[allow(clippy::too_many_arguments)]
    fn flush_codecs(
        &self,
        watched: &mut [Watched],
        flush: Flush,
        host: &str,
        progress: &Arc<Mutex<Progress>>,
        ctx: &InputContext,
        rt: &tokio::runtime::Handle,
    ) -> Result<(), ()> {
        let now = Instant::now();
        for w in watched.iter_mut() {
            let due = match flush {
                Flush::All => pending(w) > 0,
                _ => w.decoder.flush_due().is_some_and(|d| d <= now),
            };
            if due {
                self.push(w, Vec::new(), flush, host, progress, ctx, rt)?;
            }
        }
        Ok(())
    }

    /// Decodes `lines` (then flushes the codec as `flush` says) and pushes the events
    /// as one batch whose ack advances the file's safe position: to the start of the
    /// first line the codec still holds, or past everything framed when it holds none.
    #[allow(clippy::too_many_arguments)]
    fn push(
        &self,
        w: &mut Watched,
        lines: Vec<FramedLine>,
        flush: Flush,
        host: &str,
        progress: &Arc<Mutex<Progress>>,
        ctx: &InputContext,
        rt: &tokio::runtime::Handle,
    ) -> Result<(), ()> {
        let now = Timestamp::now();
        let mut events = Vec::with_capacity(lines.len());
        let mut bytes = 0;
        for line in &lines {
            bytes += line.bytes.len();
            let text = line
                .bytes
                .strip_suffix(b"\r")
                .filter(|_| self.delimiter == b"\n")
                .unwrap_or(&line.bytes);
            w.pending_starts.push_back(line.start);
            w.decoder.line(text, line.truncated, now, &mut events);
            let held = pending(w);
            while w.pending_starts.len() > held {
                w.pending_starts.pop_front();
            }
        }
        match flush {
            Flush::No => {}
            Flush::Due => w.decoder.flush_if_due(now, &mut events),
            Flush::All => w.decoder.flush(now, &mut events),
        }
        let held = pending(w);
        while w.pending_starts.len() > held {
            w.pending_starts.pop_front();
        }
        if events.is_empty() {
            // Every line is still pending (or made no event): nothing became safe.
            return Ok(());
        }
        let path = Value::String(w.path.display().to_string());
        for e in &mut events {
            if e.get(&self.path_field).is_none() {
                e.insert(&self.path_field, path.clone());
            }
            if e.get(&self.host_field).is_none() {
                e.insert(&self.host_field, Value::String(host.to_string()));
            }
        }
        let framed_end = if w.skipping { w.read } else { w.line_start };
        let end = w.pending_starts.front().copied().unwrap_or(framed_end);
        let key = w.key;
        let batch_no = match progress.lock() {
            Ok(mut p) => {
                let f = p.files.entry(key).or_default();
                let n = f.next_batch;
                f.next_batch += 1;
                f.in_flight.insert(n, (end, false));
                n
            }
            Err(_) => return Err(()),
        };
        let progress = progress.clone();
        let ack = Ack::new(move |status| {
            if let Ok(mut p) = progress.lock() {
                p.acked(key, batch_no, status);
            }
        });
        rt.block_on(ctx.push(Batch::with_bytes(events, ack, bytes)))
            .map_err(|_| ())
    }

    /// Read mode: a file read to its end and all of whose lines are safe gets its
    /// `file_completed_action`.
    fn finish_files(
        &self,
        watched: &mut Vec<Watched>,
        progress: &Arc<Mutex<Progress>>,
        ctx: &InputContext,
    ) {
        if self.mode != Mode::Read {
            // Tail mode forgets rotated files once read and closed.
            watched.retain(|w| !(w.renamed && w.file.is_none()));
            return;
        }
        for w in watched
            .iter_mut()
            .filter(|w| w.finished && w.file.is_none())
        {
            let safe = progress
                .lock()
                .map(|p| p.files.get(&w.key).is_some_and(|f| f.in_flight.is_empty()))
                .unwrap_or(false);
            if !safe || w.renamed {
                continue;
            }
            if matches!(
                self.completed_action,
                Completed::Log | Completed::LogAndDelete
            ) {
                if let Some(log) = &self.completed_log_path {
                    use std::io::Write as _;
                    let written = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(log)
                        .and_then(|mut f| writeln!(f, "{}", w.path.display()));
                    if let Err(e) = written {
                        tracing::warn!(input = ctx.id(), log = %log.display(), error = %e, "file_completed_log_path not written");
                    }
                }
            }
            if matches!(
                self.completed_action,
                Completed::Delete | Completed::LogAndDelete
            ) {
                if let Err(e) = std::fs::remove_file(&w.path) {
                    tracing::warn!(input = ctx.id(), path = %w.path.display(), error = %e, "completed file not deleted");
                }
            }
            tracing::debug!(input = ctx.id(), path = %w.path.display(), "file completed");
            // Marked so the action runs once; the sincedb keeps it from being read again.
            w.renamed = true;
        }
    }
}

/// One line framed from a file, without its delimiter.
struct FramedLine {
    bytes: Vec<u8>,
    /// Cut at [`MAX_LINE_BYTES`].
    truncated: bool,
    /// Its offset in the file.
    start: u64,
}

/// What to flush of a file's codec after its new lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flush {
    No,
    /// What waited `auto_flush_interval`.
    Due,
    /// Everything (the file ends, is closed, or the pipeline stops).
    All,
}

/// Lines a file's codec holds waiting for the rest of their event.
fn pending(w: &Watched) -> usize {
    match &w.decoder {
        StreamDecoder::Multiline(m) => m.pending_lines(),
        StreamDecoder::Lines(_) => 0,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        memchr::memchr(needle[0], hay)
    } else {
        memchr::memmem::find(hay, needle)
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}
