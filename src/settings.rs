//! Run settings, from Logstash-style command-line flags and the settings directory
//! (`logstash.yml`, `pipelines.yml`).

mod files;

pub use files::{apply_logstash_yml, read_pipelines_yml, SettingsError};

use crate::config::Source;
use std::path::PathBuf;
use std::time::Duration;

/// Sluice's own log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Plain,
    Json,
}

/// `--queue.type`: where batches wait between inputs and workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueType {
    /// In memory, bounded; an input is acked once its events were delivered.
    #[default]
    Memory,
    /// On disk (pages with a checksum per record); an input is acked once its events
    /// were written, and they survive a crash.
    Persisted,
}

impl QueueType {
    pub fn parse(text: &str) -> Option<QueueType> {
        match text {
            "memory" => Some(QueueType::Memory),
            "persisted" => Some(QueueType::Persisted),
            _ => None,
        }
    }
}

/// `pipeline.ordered`: whether events leave the outputs in the order they entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ordered {
    /// Ordered when the pipeline has one worker (Logstash's default).
    #[default]
    Auto,
    /// Ordered; a pipeline with more than one worker refuses to start.
    True,
    /// Not ordered: a batch whose events take different `if` branches leaves grouped
    /// by branch, which saves filter calls.
    False,
}

impl Ordered {
    pub fn parse(text: &str) -> Option<Ordered> {
        match text {
            "auto" => Some(Ordered::Auto),
            "true" => Some(Ordered::True),
            "false" => Some(Ordered::False),
            _ => None,
        }
    }

    /// Whether a pipeline with `workers` workers runs ordered; `true` with more than
    /// one worker is an error, as in Logstash (ordering needs one worker).
    pub fn resolve(self, workers: usize) -> Result<bool, String> {
        match self {
            Ordered::Auto => Ok(workers <= 1),
            Ordered::False => Ok(false),
            Ordered::True if workers <= 1 => Ok(true),
            Ordered::True => Err(format!(
                "pipeline.ordered is true but pipeline.workers is {workers}: ordered execution needs a single worker (set -w 1, or pipeline.ordered to auto or false)"
            )),
        }
    }
}

/// A secret setting (the API token): its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Everything `sluice::run` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub source: Source,
    /// `pipeline.id` [default: `main`].
    pub pipeline_id: String,
    /// `pipeline.ordered` [default: `auto`].
    pub ordered: Ordered,
    /// `-t`: check the configuration and exit.
    pub test_and_exit: bool,
    /// `-w`: pipeline workers.
    pub workers: usize,
    /// `-b`: events per batch.
    pub batch_size: usize,
    /// `--pipeline.batch.delay`.
    pub batch_delay: Duration,
    /// `--path.data`.
    pub data_dir: PathBuf,
    /// `--api.enabled`: serve the HTTP API.
    pub api_enabled: bool,
    pub api_host: String,
    /// `--api.http.port`: the first port of the range the API tries, in order.
    pub api_port: u16,
    /// The last port of that range (equal to `api_port` for a single port).
    pub api_port_end: u16,
    /// `--api.auth.token` (or `SLUICE_API_TOKEN`): the bearer token the API requires.
    pub api_token: Option<Secret>,
    /// `--api.allow_insecure`: serve a non-loopback address without a token.
    pub api_allow_insecure: bool,
    pub support_escapes: bool,
    /// `--queue.max_events`: the in-memory queue's bound in events.
    pub queue_max_events: usize,
    /// `--queue.max_bytes`: the in-memory queue's bound in (approximate) bytes.
    pub queue_max_bytes: usize,
    /// `--queue.type`.
    pub queue_type: QueueType,
    /// `--path.queue`: the persisted queue's directory [default: `<path.data>/queue`].
    pub queue_path: Option<PathBuf>,
    /// `--queue.page_capacity`: size of one persisted queue page.
    pub queue_page_capacity: u64,
    /// `--queue.max_bytes` with the persisted queue: bytes of pages on disk.
    pub queue_disk_max_bytes: u64,
    /// `--queue.checkpoint.writes`: sync the persisted queue after this many writes.
    pub queue_checkpoint_writes: usize,
    /// `--queue.checkpoint.interval`: sync the persisted queue at least this often.
    pub queue_checkpoint_interval: Duration,
    /// `--queue.memory_window`: unread persisted records also kept in memory, in bytes
    /// [default: the smaller of 64 MiB and a quarter of the disk bound].
    pub queue_memory_window: Option<u64>,
    /// `--dead_letter_queue.max_bytes`.
    pub dlq_max_bytes: u64,
    /// `--dead_letter_queue.storage_policy`.
    pub dlq_storage_policy: crate::queue::dlq::StoragePolicy,
    /// `--shutdown.timeout`: how long a shutdown waits for outputs to deliver what is in
    /// flight before failing it; `None` waits for ever (Logstash's behaviour).
    pub shutdown_timeout: Option<Duration>,
    /// `--input.memory.max_bytes`: the process-wide budget of bytes network inputs hold
    /// outside the queue (read buffers, partial frames, decoded events waiting for it).
    pub input_memory_max_bytes: usize,
    /// `--input.memory.per_connection`: bytes each connection may hold without drawing
    /// on that budget.
    pub input_memory_per_connection: usize,
}

/// Logstash's default pipeline id.
pub const DEFAULT_PIPELINE_ID: &str = "main";

/// `--input.memory.max_bytes`'s default.
pub const DEFAULT_INPUT_MEMORY_MAX_BYTES: usize = 128 * 1024 * 1024;
/// `--input.memory.per_connection`'s default.
pub const DEFAULT_INPUT_MEMORY_PER_CONNECTION: usize = 128 * 1024;

impl Settings {
    pub fn new(source: Source) -> Settings {
        Settings {
            source,
            pipeline_id: DEFAULT_PIPELINE_ID.into(),
            ordered: Ordered::Auto,
            test_and_exit: false,
            workers: default_workers(),
            batch_size: 125,
            batch_delay: Duration::from_millis(50),
            data_dir: PathBuf::from("data"),
            api_enabled: true,
            api_host: "127.0.0.1".into(),
            api_port: 9600,
            api_port_end: 9700,
            api_token: None,
            api_allow_insecure: false,
            support_escapes: false,
            queue_max_events: 1024,
            queue_max_bytes: 64 * 1024 * 1024,
            queue_type: QueueType::Memory,
            queue_path: None,
            queue_page_capacity: 64 << 20,
            queue_disk_max_bytes: 1 << 30,
            queue_checkpoint_writes: 1024,
            queue_checkpoint_interval: Duration::from_secs(1),
            queue_memory_window: None,
            dlq_max_bytes: crate::queue::dlq::DEFAULT_MAX_BYTES,
            dlq_storage_policy: crate::queue::dlq::StoragePolicy::DropNewer,
            shutdown_timeout: Some(Duration::from_secs(60)),
            input_memory_max_bytes: DEFAULT_INPUT_MEMORY_MAX_BYTES,
            input_memory_per_connection: DEFAULT_INPUT_MEMORY_PER_CONNECTION,
        }
    }
}

impl Settings {
    /// Checks the settings that depend on one another (`pipeline.ordered` and the
    /// worker count); a message a user can act on when they do not fit.
    pub fn validate(&self) -> Result<(), String> {
        self.ordered.resolve(self.workers).map(|_| ())
    }

    /// Whether this pipeline runs ordered (see [`Ordered`]).
    pub fn is_ordered(&self) -> bool {
        self.ordered.resolve(self.workers).unwrap_or(true)
    }
}

impl Default for Settings {
    /// Default settings with an empty configuration string.
    fn default() -> Self {
        Settings::new(Source::Text(String::new()))
    }
}

/// One worker per core, as Logstash does.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Parses a port or an inclusive range of ports: `9600` or `9600-9700`.
pub fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let port = |t: &str| {
        t.trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("invalid port `{t}`"))
    };
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(text)?, port(text)?),
    };
    if first > last {
        return Err(format!("port range `{text}` is empty"));
    }
    Ok((first, last))
}

/// Parses sizes like `64mb`, `1gb`, `512kb`, `1024` (bytes).
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("invalid size `{text}`"))?;
    let mult = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}` in `{text}`")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size `{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("64mb"), Ok(64 << 20));
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("2 GiB"), Ok(2 << 30));
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn ordered_follows_the_worker_count_unless_set() {
        assert_eq!(Ordered::Auto.resolve(1), Ok(true));
        assert_eq!(Ordered::Auto.resolve(4), Ok(false));
        assert_eq!(Ordered::False.resolve(1), Ok(false));
        assert_eq!(Ordered::True.resolve(1), Ok(true));
        assert!(Ordered::True
            .resolve(2)
            .unwrap_err()
            .contains("single worker"));
        assert_eq!(Ordered::parse("auto"), Some(Ordered::Auto));
        assert_eq!(Ordered::parse("yes"), None);
    }

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("9600-9700"), Ok((9600, 9700)));
        assert_eq!(parse_port_range("9601"), Ok((9601, 9601)));
        assert!(parse_port_range("9700-9600").is_err());
        assert!(parse_port_range("0").is_err());
        assert!(parse_port_range("http").is_err());
    }
}
