//! Run settings, from Logstash-style command-line flags.

use crate::config::Source;
use std::path::PathBuf;
use std::time::Duration;

/// Sluice's own log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Plain,
    Json,
}

/// Everything `sluice::run` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub source: Source,
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
    pub api_host: String,
    pub api_port: u16,
    pub support_escapes: bool,
    /// `--queue.max_events`: the in-memory queue's bound in events.
    pub queue_max_events: usize,
    /// `--queue.max_bytes`: the in-memory queue's bound in (approximate) bytes.
    pub queue_max_bytes: usize,
    /// `--dead_letter_queue.max_bytes`.
    pub dlq_max_bytes: u64,
    /// `--dead_letter_queue.storage_policy`.
    pub dlq_storage_policy: crate::queue::dlq::StoragePolicy,
    /// `--shutdown.timeout`: how long a shutdown waits for outputs to deliver what is in
    /// flight before failing it; `None` waits for ever (Logstash's behaviour).
    pub shutdown_timeout: Option<Duration>,
}

impl Settings {
    pub fn new(source: Source) -> Settings {
        Settings {
            source,
            test_and_exit: false,
            workers: default_workers(),
            batch_size: 125,
            batch_delay: Duration::from_millis(50),
            data_dir: PathBuf::from("data"),
            api_host: "127.0.0.1".into(),
            api_port: 9600,
            support_escapes: false,
            queue_max_events: 1024,
            queue_max_bytes: 64 * 1024 * 1024,
            dlq_max_bytes: crate::queue::dlq::DEFAULT_MAX_BYTES,
            dlq_storage_policy: crate::queue::dlq::StoragePolicy::DropNewer,
            shutdown_timeout: Some(Duration::from_secs(60)),
        }
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
}
