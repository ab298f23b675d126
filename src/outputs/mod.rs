//! Outputs and the contract they share with the delivery engine.
//!
//! # The output contract
//!
//! An output does one thing: it turns events into requests for its destination and
//! says, for each event, what became of it. It makes **one attempt** per call to
//! [`Output::send`] and reports one [`Outcome`] per event:
//!
//! - [`Outcome::Delivered`]: the destination has it (or already had it: a `create` that
//!   answers 409 is delivered).
//! - [`Outcome::Retry`]: not delivered this time, may succeed later (HTTP 429 and 5xx,
//!   a refused connection, a timeout). It may carry a hint of when to try again
//!   (HTTP `Retry-After`).
//! - [`Outcome::Reject`]: will never be delivered as is (HTTP 400, a mapping conflict,
//!   an update without an id). It goes to the dead letter queue with its reason.
//!
//! A request that failed as a whole is reported as [`Outcomes::RetryAll`], a request
//! that succeeded as a whole as [`Outcomes::Delivered`]; only outputs with per-event
//! verdicts (Elasticsearch's bulk items, Kafka delivery reports) need
//! [`Outcomes::Each`].
//!
//! Everything else belongs to the delivery engine (`pipeline::deliver`), written once for
//! every output: retrying only the events that need it, with exponential back-off,
//! jitter and a cap ([`RetryPolicy`], from `retry_initial_interval` and
//! `retry_max_interval` for outputs that offer them); honouring a retry hint; writing
//! rejects to the dead letter queue with their reason; per-output counters; logging
//! state changes (first failure, recovery, a reminder while failing) instead of every
//! attempt; and the shutdown deadline. An output therefore never sleeps, never loops
//! on failures and never writes the dead letter queue itself.
//!
//! `send` must be cancel-safe: at the shutdown deadline the engine drops the future in
//! the middle of a request, and the events are then counted as not delivered.
//!
//! An [`OutputError`] is for what no retry can fix (a file that cannot be written, a
//! closed stdout): the batch fails at once and its inputs do not confirm it.
//!
//! Transport details stay in the output: Elasticsearch's bulk encoding, per-item
//! verdicts and 413 splitting. The HTTP client that HTTP-based outputs share (options,
//! TLS, auth, classification of exchanges) is [`http_client`].

pub mod elasticsearch;
pub mod file;
pub mod http;
pub mod http_client;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod null;
pub mod pipeline;
pub mod sentinel;
pub mod splunk_hec;
pub mod stdout;

use crate::config::Error;
use crate::event::Event;
use crate::plugin::{Options, Registry};
use std::borrow::Cow;
use std::time::Duration;

/// Why an event was not delivered: a short, stable `code` for metrics labels (`http_503`,
/// `connect`, `timeout`, `mapping`, ...) and a `message` for logs and the dead letter
/// queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// Low-cardinality label: a handful of words or `http_<status>`.
    pub code: Cow<'static, str>,
    /// What a user reads: the server's error, the failing host, a hint.
    pub message: String,
}

impl Reason {
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Reason {
        Reason {
            code: code.into(),
            message: message.into(),
        }
    }

    /// A reason for HTTP status `status`: code `http_<status>`.
    pub fn http(status: u16, message: impl Into<String>) -> Reason {
        Reason::new(format!("http_{status}"), message)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What became of one event in one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Try again later; `after` is the destination's hint (HTTP `Retry-After`).
    Retry {
        reason: Reason,
        after: Option<Duration>,
    },
    /// Never deliverable as is: to the dead letter queue.
    Reject(Rejection),
}

/// A permanent failure, with what the dead letter queue records about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    /// The destination's status (HTTP status), 0 when there is none.
    pub status: u16,
    /// What was attempted: a bulk action (`index`), an HTTP method (`post`), `produce`.
    pub action: &'static str,
    /// Where it was going: an index, a URL, a topic.
    pub target: String,
}

impl Outcome {
    pub fn retry(reason: Reason) -> Outcome {
        Outcome::Retry {
            reason,
            after: None,
        }
    }
}

/// The outcomes of one attempt at a list of events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcomes {
    /// Every event was delivered.
    Delivered,
    /// The request failed as a whole; every event may be retried.
    RetryAll {
        reason: Reason,
        after: Option<Duration>,
    },
    /// One outcome per event, in the order of the events given to `send`.
    Each(Vec<Outcome>),
}

impl Outcomes {
    /// Folds per-event slots into outcomes: a slot never filled was delivered, and
    /// all-delivered collapses to [`Outcomes::Delivered`].
    pub fn from_slots(slots: Vec<Option<Outcome>>) -> Outcomes {
        let outcomes: Vec<Outcome> = slots
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Delivered))
            .collect();
        if outcomes.iter().all(|o| *o == Outcome::Delivered) {
            Outcomes::Delivered
        } else {
            Outcomes::Each(outcomes)
        }
    }

    pub fn retry_all(reason: Reason) -> Outcomes {
        Outcomes::RetryAll {
            reason,
            after: None,
        }
    }
}

/// Back-off between attempts: exponential from `initial`, capped at `max`, with
/// "equal jitter" (between half and all of the interval) so that many workers retrying
/// the same server do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    /// Logstash's elasticsearch output defaults: 2 s, doubling up to 64 s.
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(64),
        }
    }
}

impl RetryPolicy {
    /// Reads `retry_initial_interval` and `retry_max_interval` (seconds, fractions
    /// allowed), Logstash's names.
    pub fn from_options(opts: &mut Options) -> Result<RetryPolicy, Error> {
        let d = RetryPolicy::default();
        let initial = seconds(opts, "retry_initial_interval", d.initial)?;
        let max = seconds(opts, "retry_max_interval", d.max)?;
        Ok(RetryPolicy {
            initial,
            max: max.max(initial),
        })
    }

    /// The wait before retry number `attempt` (0-based), jittered.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.backoff_with(attempt, rand::random())
    }

    /// The wait before retry `attempt` for a jitter draw `jitter` in [0, 1).
    pub fn backoff_with(&self, attempt: u32, jitter: f64) -> Duration {
        let base = self.initial.as_secs_f64();
        let cap = self.max.as_secs_f64();
        let interval = (base * 2f64.powi(attempt.min(30) as i32)).min(cap);
        Duration::from_secs_f64(interval * (0.5 + 0.5 * jitter.clamp(0.0, 1.0)))
    }
}

/// A duration option given in seconds (fractions allowed), at least 0.
pub fn seconds(opts: &mut Options, name: &str, default: Duration) -> Result<Duration, Error> {
    let pos = opts.value_pos(name);
    let Some(v) = opts.float(name)? else {
        return Ok(default);
    };
    if !(v.is_finite() && (0.0..=1e9).contains(&v)) {
        return Err(opts.option_error(name, &pos, "expected a number of seconds >= 0"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// Why an output could not attempt a batch at all. No retry can fix these.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Fatal(String),
    /// The destination went away for good (stdout closed by the reader): the pipeline
    /// stops its inputs instead of failing batch after batch.
    #[error("{0}")]
    Closed(String),
}

/// A running output, shared by every pipeline worker.
#[async_trait::async_trait]
pub trait Output: Send + Sync {
    /// Makes one attempt at delivering `events` and reports each one's outcome (see the
    /// module documentation). Never retries, never sleeps; must be cancel-safe.
    async fn send(&self, events: &[&Event]) -> Result<Outcomes, OutputError>;

    /// How the engine backs off between attempts for this output.
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::default()
    }

    /// Where this output's rejects go, when it overrides the pipeline's dead letter
    /// queue directory.
    fn dead_letter_dir(&self) -> Option<&std::path::Path> {
        None
    }

    /// Flushes and releases resources at shutdown, after the last `send`.
    async fn close(&self) -> Result<(), OutputError> {
        Ok(())
    }
}

/// Every output plugin: name → constructor.
pub static REGISTRY: Registry<Box<dyn Output>> = Registry {
    kind: "output",
    entries: &[
        ("elasticsearch", |o| {
            Ok(Box::new(elasticsearch::ElasticsearchOutput::build(o)?))
        }),
        ("file", |o| Ok(Box::new(file::FileOutput::build(o)?))),
        ("http", |o| Ok(Box::new(http::HttpOutput::build(o)?))),
        #[cfg(feature = "kafka")]
        ("kafka", |o| Ok(Box::new(kafka::KafkaOutput::build(o)?))),
        #[cfg(not(feature = "kafka"))]
        ("kafka", |o| Err(crate::plugin::without_kafka(o))),
        ("null", |o| Ok(Box::new(null::NullOutput::build(o)?))),
        ("pipeline", |o| {
            Ok(Box::new(pipeline::PipelineOutput::build(o)?))
        }),
        ("sentinel", |o| {
            Ok(Box::new(sentinel::SentinelOutput::build(o)?))
        }),
        ("splunk_hec", |o| {
            Ok(Box::new(splunk_hec::SplunkHecOutput::build(o)?))
        }),
        ("stdout", |o| Ok(Box::new(stdout::StdoutOutput::build(o)?))),
    ],
};

/// Builds the output plugin `name` from its options.
pub fn build(name: &str, opts: &mut Options) -> Result<Box<dyn Output>, Error> {
    REGISTRY.build(name, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let p = RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(8),
        };
        assert_eq!(p.backoff_with(0, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff_with(0, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff_with(2, 1.0), Duration::from_secs(4));
        assert_eq!(p.backoff_with(10, 1.0), Duration::from_secs(8));
        assert_eq!(p.backoff_with(u32::MAX, 0.0), Duration::from_secs(4));
    }

    #[test]
    fn retry_options_use_logstash_names_and_defaults() {
        let mut o = Options::from_text("x", "output", "retry_initial_interval => 0.5").unwrap();
        let p = RetryPolicy::from_options(&mut o).unwrap();
        assert_eq!(p.initial, Duration::from_millis(500));
        assert_eq!(p.max, Duration::from_secs(64));
        let mut o = Options::from_text("x", "output", "retry_max_interval => -1").unwrap();
        assert!(RetryPolicy::from_options(&mut o).is_err());
    }
}
