//! The delivery engine: everything about getting events to an output that is not the
//! output's own transport, written once for every output (see the contract in
//! [`crate::outputs`]).
//!
//! For each list of events a worker hands over, [`Delivery::deliver`] asks the output
//! for one attempt, then:
//!
//! - delivered events are done;
//! - rejected events go to the dead letter queue with their reason;
//! - only the events that asked for a retry are sent again, after an exponential,
//!   jittered, capped back-off (or the destination's `Retry-After`, when longer);
//! - at the shutdown deadline (`abort`), whatever is still pending is given up and
//!   counted as not delivered; the caller fails the batch so its inputs do not confirm it.
//!
//! Logs follow the output's state, not its attempts: one line when it starts failing
//! (with the reason), one when the reason changes, a reminder every
//! [`REMINDER_INTERVAL`] while it keeps failing, and one when it recovers. Counters per
//! output id count every outcome.
//!
//! A dead letter queue that cannot be written after the destination answered does not
//! fail the batch: the delivered events would be sent again on a resend. The rejected
//! events are then lost, and that loss is logged and counted.

use crate::event::Event;
use crate::metrics;
use crate::outputs::{Outcome, Outcomes, Output, OutputError, Reason, Rejection, RetryPolicy};
use crate::queue::dlq::{DeadLetterQueue, Entry, StoragePolicy};
use prometheus_client::metrics::counter::Counter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often a failing output says it is still failing.
pub const REMINDER_INTERVAL: Duration = Duration::from_secs(300);

/// The longest `Retry-After` hint honoured: a server asking for more is asked again
/// sooner rather than holding the pipeline for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Where an output's rejects go.
#[derive(Debug, Clone)]
pub struct DeadLetterSettings {
    pub dir: PathBuf,
    pub max_bytes: u64,
    pub policy: StoragePolicy,
}

/// Why a list of events was not made safe.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The shutdown deadline passed with `events` still pending.
    #[error("{events} event(s) not delivered before the shutdown deadline")]
    Aborted { events: usize },
    /// The output could not attempt them at all.
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// The health of an output, shared by every worker sending to it.
#[derive(Debug, Default)]
struct Health {
    /// When the current run of failures started.
    failing_since: Option<Instant>,
    /// The reason code last logged, to log again when it changes.
    logged_code: Option<String>,
    last_log: Option<Instant>,
    /// Attempts that left events to retry since the run of failures started.
    failed_attempts: u64,
    /// `failing_since` on the wall clock, for the status the API shows.
    failing_since_wall: Option<std::time::SystemTime>,
}

/// How long an output retries before the API calls it `failing` rather than `retrying`.
pub const FAILING_AFTER: Duration = Duration::from_secs(60);

/// An output's state as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Its last attempt settled every event.
    Ok,
    /// It has been retrying for less than [`FAILING_AFTER`], since the given time.
    Retrying(std::time::SystemTime),
    /// It has been retrying for [`FAILING_AFTER`] or more, since the given time.
    Failing(std::time::SystemTime),
}

/// Counters of one output, looked up once.
struct Counters {
    delivered: Counter,
    rejected: Counter,
    retried: Counter,
    dead_lettered: Counter,
    dead_letter_lost: Counter,
    undelivered: Counter,
}

/// One output with its delivery state.
pub struct Delivery {
    pub id: String,
    pub name: String,
    output: Box<dyn Output>,
    policy: RetryPolicy,
    dead_letters: DeadLetterSettings,
    dlq: Mutex<Option<Arc<DeadLetterQueue>>>,
    health: Mutex<Health>,
    counters: Counters,
    /// Events handed over, settled, and the time spent in attempts.
    flow: metrics::PluginFlow,
    /// Its work runs in this span: its log lines name the pipeline and the output.
    span: tracing::Span,
    undelivered: AtomicU64,
}

impl Delivery {
    /// Wraps `output` of pipeline `pipeline_id`; its rejects go to `dead_letters` unless
    /// it names its own directory.
    pub fn new(
        pipeline_id: &str,
        id: String,
        name: String,
        output: Box<dyn Output>,
        mut dead_letters: DeadLetterSettings,
    ) -> Delivery {
        if let Some(dir) = output.dead_letter_dir() {
            dead_letters.dir = dir.to_path_buf();
        }
        let m = &metrics::get().outputs;
        let counter = |f: &metrics::CounterFamily| f.get_or_create(&metrics::plugin(&id)).clone();
        let counters = Counters {
            delivered: counter(&m.delivered),
            rejected: counter(&m.rejected),
            retried: counter(&m.retried),
            dead_lettered: counter(&m.dead_lettered),
            dead_letter_lost: counter(&m.dead_letter_lost),
            undelivered: counter(&m.undelivered),
        };
        let flow = metrics::PluginFlow::of(&id);
        let span = super::plugin_span(pipeline_id, &id, &name);
        Delivery {
            policy: output.retry_policy(),
            id,
            name,
            output,
            dead_letters,
            dlq: Mutex::new(None),
            health: Mutex::new(Health::default()),
            counters,
            span,
            flow,
            undelivered: AtomicU64::new(0),
        }
    }

    pub fn output(&self) -> &dyn Output {
        self.output.as_ref()
    }

    /// The output's state: retrying since the first attempt of the current run of
    /// failures, failing once that run is [`FAILING_AFTER`] old.
    pub fn state(&self) -> State {
        let h = self.health.lock().unwrap_or_else(|p| p.into_inner());
        match (h.failing_since, h.failing_since_wall) {
            (Some(since), Some(wall)) if since.elapsed() >= FAILING_AFTER => State::Failing(wall),
            (Some(_), Some(wall)) => State::Retrying(wall),
            _ => State::Ok,
        }
    }

    /// Events this output gave up on (deadline, output error), for the shutdown report.
    pub fn undelivered(&self) -> u64 {
        self.undelivered.load(Ordering::Relaxed)
    }

    /// Counts `n` events as not delivered (their batch fails).
    pub fn count_undelivered(&self, n: usize) {
        self.undelivered.fetch_add(n as u64, Ordering::Relaxed);
        self.counters.undelivered.inc_by(n as u64);
    }

    /// Delivers `events` until each is delivered or dead-lettered, or `abort` fires.
    pub async fn deliver(
        &self,
        events: &[&Event],
        abort: &CancellationToken,
    ) -> Result<(), DeliveryError> {
        use tracing::Instrument;
        self.deliver_in_span(events, abort)
            .instrument(self.span.clone())
            .await
    }

    async fn deliver_in_span(
        &self,
        events: &[&Event],
        abort: &CancellationToken,
    ) -> Result<(), DeliveryError> {
        self.flow.events_in.inc_by(events.len() as u64);
        let mut pending: Vec<&Event> = events.to_vec();
        let mut attempt: u32 = 0;
        loop {
            if abort.is_cancelled() {
                return Err(self.give_up(pending.len()));
            }
            let started = Instant::now();
            let outcomes = tokio::select! {
                biased;
                _ = abort.cancelled() => return Err(self.give_up(pending.len())),
                r = self.output.send(&pending) => r,
            };
            let took = started.elapsed();
            self.flow.duration.inc_by(took.as_secs_f64());
            metrics::get()
                .outputs
                .send_duration
                .get_or_create(&metrics::plugin(&self.id))
                .observe(took.as_secs_f64());
            let outcomes = match outcomes {
                Ok(o) => o,
                Err(e) => {
                    self.count_undelivered(pending.len());
                    return Err(e.into());
                }
            };
            let (retry, hint) = self.settle(&pending, outcomes);
            let Some((reason, after)) = hint else {
                self.recovered();
                return Ok(());
            };
            pending = retry;
            self.counters.retried.inc_by(pending.len() as u64);
            metrics::get()
                .outputs
                .retries
                .get_or_create(&metrics::plugin_reason(&self.id, &reason.code))
                .inc_by(pending.len() as u64);
            self.failed(&reason, pending.len());
            let wait = self
                .policy
                .backoff(attempt)
                .max(after.unwrap_or_default().min(MAX_RETRY_AFTER));
            tracing::debug!(output = %self.id, events = pending.len(), ?wait, "backing off before retrying");
            tokio::select! {
                biased;
                _ = abort.cancelled() => return Err(self.give_up(pending.len())),
                _ = tokio::time::sleep(wait) => {}
            }
            attempt = attempt.saturating_add(1);
        }
    }

    fn give_up(&self, pending: usize) -> DeliveryError {
        self.count_undelivered(pending);
        DeliveryError::Aborted { events: pending }
    }

    /// Applies one attempt's outcomes: counts deliveries, dead-letters rejects, and
    /// returns the events to retry with the first retry reason and the longest hint.
    #[allow(clippy::type_complexity)]
    fn settle<'e>(
        &self,
        pending: &[&'e Event],
        outcomes: Outcomes,
    ) -> (Vec<&'e Event>, Option<(Reason, Option<Duration>)>) {
        match outcomes {
            Outcomes::Delivered => {
                self.counters.delivered.inc_by(pending.len() as u64);
                self.flow.events_out.inc_by(pending.len() as u64);
                (Vec::new(), None)
            }
            Outcomes::RetryAll { reason, after } => (pending.to_vec(), Some((reason, after))),
            Outcomes::Each(list) => {
                let mut retry = Vec::new();
                let mut hint: Option<(Reason, Option<Duration>)> = None;
                let mut rejects: Vec<(&Event, Rejection)> = Vec::new();
                let mut delivered = 0u64;
                // An output that reports fewer outcomes than events leaves the rest
                // undecided: they are retried, never taken as delivered.
                let missing = pending.len().saturating_sub(list.len());
                let mut list = list.into_iter();
                for event in pending {
                    match list.next() {
                        Some(Outcome::Delivered) => delivered += 1,
                        Some(Outcome::Reject(r)) => rejects.push((event, r)),
                        Some(Outcome::Retry { reason, after }) => {
                            retry.push(*event);
                            match &mut hint {
                                None => hint = Some((reason, after)),
                                Some((_, longest)) => *longest = (*longest).max(after),
                            }
                        }
                        None => {
                            retry.push(*event);
                            hint.get_or_insert_with(|| {
                                (
                                    Reason::new(
                                        "missing_outcome",
                                        format!(
                                            "the output reported no outcome for {missing} event(s)"
                                        ),
                                    ),
                                    None,
                                )
                            });
                        }
                    }
                }
                self.counters.delivered.inc_by(delivered);
                self.flow
                    .events_out
                    .inc_by(delivered + rejects.len() as u64);
                if !rejects.is_empty() {
                    self.dead_letter(&rejects);
                }
                (retry, hint)
            }
        }
    }

    /// Writes rejects to the dead letter queue. Never fails the batch: see the module doc.
    fn dead_letter(&self, rejects: &[(&Event, Rejection)]) {
        self.counters.rejected.inc_by(rejects.len() as u64);
        let m = &metrics::get().outputs;
        for (_, r) in rejects {
            m.rejects
                .get_or_create(&metrics::plugin_reason(&self.id, &r.reason.code))
                .inc();
        }
        for (_, r) in rejects.iter().take(3) {
            tracing::warn!(
                output = %self.id,
                target = %r.target,
                status = r.status,
                reason = %r.reason,
                "event rejected; writing it to the dead letter queue"
            );
        }
        if rejects.len() > 3 {
            tracing::warn!(
                output = %self.id,
                events = rejects.len(),
                "events rejected; writing them to the dead letter queue"
            );
        }
        let entries: Vec<Entry> = rejects
            .iter()
            .map(|(event, r)| Entry {
                plugin: &self.name,
                action: r.action,
                index: &r.target,
                status: r.status,
                reason: &r.reason.message,
                event,
            })
            .collect();
        let written = self
            .dead_letter_queue()
            .and_then(|q| q.write(&entries).and_then(|n| q.sync().map(|()| n)));
        match written {
            Ok(n) => {
                self.counters.dead_lettered.inc_by(n as u64);
            }
            Err(e) => {
                self.counters.dead_letter_lost.inc_by(entries.len() as u64);
                tracing::error!(
                    output = %self.id,
                    events = entries.len(),
                    error = %e,
                    "cannot write rejected events to the dead letter queue; they are lost"
                );
            }
        }
    }

    fn dead_letter_queue(&self) -> Result<Arc<DeadLetterQueue>, crate::queue::dlq::DlqError> {
        let mut slot = self.dlq.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(q) = slot.as_ref() {
            return Ok(q.clone());
        }
        let d = &self.dead_letters;
        let q = DeadLetterQueue::open(&d.dir, d.max_bytes, d.policy)?;
        *slot = Some(q.clone());
        Ok(q)
    }

    /// Notes a failed attempt; logs when the output starts failing, when the reason
    /// changes, and every [`REMINDER_INTERVAL`].
    fn failed(&self, reason: &Reason, events: usize) {
        let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        h.failed_attempts += 1;
        let since = *h.failing_since.get_or_insert(now);
        h.failing_since_wall
            .get_or_insert_with(std::time::SystemTime::now);
        let changed = h.logged_code.as_deref() != Some(&*reason.code);
        let due = h
            .last_log
            .is_none_or(|t| now.duration_since(t) >= REMINDER_INTERVAL);
        if !(changed || due) {
            return;
        }
        let first = h.logged_code.is_none();
        h.logged_code = Some(reason.code.to_string());
        h.last_log = Some(now);
        let attempts = h.failed_attempts;
        drop(h);
        if first {
            tracing::error!(
                output = %self.id,
                reason = %reason.code,
                error = %reason.message,
                events,
                "output cannot deliver; retrying with back-off (logged again when the reason changes, every 5 minutes, and on recovery)"
            );
        } else {
            tracing::error!(
                output = %self.id,
                reason = %reason.code,
                error = %reason.message,
                events,
                attempts,
                failing_for = ?now.duration_since(since),
                "output still cannot deliver; retrying with back-off"
            );
        }
    }

    /// Notes a fully settled attempt; logs the recovery of a failing output.
    fn recovered(&self) {
        let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let Some(since) = h.failing_since.take() else {
            return;
        };
        h.failing_since_wall = None;
        let attempts = std::mem::take(&mut h.failed_attempts);
        let logged = h.logged_code.take().is_some();
        h.last_log = None;
        drop(h);
        if logged {
            tracing::info!(
                output = %self.id,
                failed_attempts = attempts,
                failing_for = ?since.elapsed(),
                "output recovered: delivering again"
            );
        }
    }

    /// Flushes the output and the dead letter queue at shutdown.
    pub async fn close(&self) -> Result<(), OutputError> {
        let q = self.dlq.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(q) = q {
            if let Err(e) = q.sync() {
                tracing::error!(output = %self.id, error = %e, "cannot sync the dead letter queue");
            }
        }
        self.output.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Value;
    use std::sync::atomic::AtomicUsize;

    /// An output whose verdicts a test scripts: each attempt pops the next function.
    struct Scripted {
        attempts: AtomicUsize,
        script: fn(usize, &[&Event]) -> Result<Outcomes, OutputError>,
        seen: Seen,
    }

    type Seen = Arc<Mutex<Vec<Vec<i64>>>>;

    #[async_trait::async_trait]
    impl Output for Scripted {
        async fn send(&self, events: &[&Event]) -> Result<Outcomes, OutputError> {
            let n = self.attempts.fetch_add(1, Ordering::SeqCst);
            self.seen
                .lock()
                .unwrap()
                .push(events.iter().map(|e| seq(e)).collect());
            (self.script)(n, events)
        }
        fn retry_policy(&self) -> RetryPolicy {
            RetryPolicy {
                initial: Duration::from_millis(1),
                max: Duration::from_millis(4),
            }
        }
    }

    fn seq(e: &Event) -> i64 {
        match e.get_field("n") {
            Some(Value::Int(n)) => *n,
            _ => -1,
        }
    }

    fn events(n: i64) -> Vec<Event> {
        (0..n)
            .map(|i| {
                let mut e = Event::new();
                e.insert_field("n", Value::Int(i));
                e
            })
            .collect()
    }

    fn delivery(
        script: fn(usize, &[&Event]) -> Result<Outcomes, OutputError>,
        dir: &std::path::Path,
    ) -> (Delivery, Seen) {
        // Counters are process-wide, by output id: each test has its own id.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let id = format!("test-out-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let seen = Seen::default();
        let d = Delivery::new(
            "main",
            id,
            "test".into(),
            Box::new(Scripted {
                attempts: AtomicUsize::new(0),
                script,
                seen: seen.clone(),
            }),
            DeadLetterSettings {
                dir: dir.to_path_buf(),
                max_bytes: 1 << 20,
                policy: StoragePolicy::DropNewer,
            },
        );
        (d, seen)
    }

    fn attempts(seen: &Seen) -> Vec<Vec<i64>> {
        seen.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn retries_only_the_events_that_need_it_and_dead_letters_rejects() {
        let dir = tempfile::tempdir().unwrap();
        let (d, sent) = delivery(
            |n, events| {
                Ok(Outcomes::Each(
                    events
                        .iter()
                        .map(|e| match (n, seq(e)) {
                            (_, 1) => Outcome::Reject(Rejection {
                                reason: Reason::http(400, "bad field"),
                                status: 400,
                                action: "index",
                                target: "logs".into(),
                            }),
                            (0, 2) | (0, 3) | (1, 3) => Outcome::retry(Reason::http(503, "busy")),
                            _ => Outcome::Delivered,
                        })
                        .collect(),
                ))
            },
            dir.path(),
        );
        let evs = events(5);
        let refs: Vec<&Event> = evs.iter().collect();
        d.deliver(&refs, &CancellationToken::new()).await.unwrap();
        assert_eq!(
            attempts(&sent),
            vec![vec![0, 1, 2, 3, 4], vec![2, 3], vec![3]]
        );
        let lines: Vec<serde_json::Value> = crate::queue::dlq::read_entries(dir.path())
            .unwrap()
            .iter()
            .map(|r| serde_json::from_slice(r).unwrap())
            .collect();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["reason"], "bad field");
        assert_eq!(lines[0]["status"], 400);
        assert_eq!(lines[0]["plugin"], "test");
        assert_eq!(lines[0]["event"]["n"], 1);
        assert_eq!(d.undelivered(), 0);
    }

    #[tokio::test]
    async fn a_short_report_retries_the_rest_instead_of_taking_it_as_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let (d, sent) = delivery(
            |n, _| {
                Ok(if n == 0 {
                    Outcomes::Each(vec![Outcome::Delivered])
                } else {
                    Outcomes::Delivered
                })
            },
            dir.path(),
        );
        let evs = events(3);
        let refs: Vec<&Event> = evs.iter().collect();
        d.deliver(&refs, &CancellationToken::new()).await.unwrap();
        assert_eq!(attempts(&sent), vec![vec![0, 1, 2], vec![1, 2]]);
    }

    #[tokio::test]
    async fn abort_gives_up_and_counts_what_was_pending() {
        let dir = tempfile::tempdir().unwrap();
        let (d, sent) = delivery(
            |_, _| Ok(Outcomes::retry_all(Reason::new("connect", "refused"))),
            dir.path(),
        );
        let evs = events(7);
        let refs: Vec<&Event> = evs.iter().collect();
        let abort = CancellationToken::new();
        let stop = abort.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            stop.cancel();
        });
        let r = tokio::time::timeout(Duration::from_secs(5), d.deliver(&refs, &abort))
            .await
            .expect("deliver ignored the abort");
        assert!(matches!(r, Err(DeliveryError::Aborted { events: 7 })));
        assert_eq!(d.undelivered(), 7);
        assert!(attempts(&sent).len() > 1, "it retried before the abort");
    }

    #[tokio::test]
    async fn a_retry_after_hint_is_honoured() {
        let dir = tempfile::tempdir().unwrap();
        let (d, sent) = delivery(
            |n, _| {
                Ok(if n == 0 {
                    Outcomes::RetryAll {
                        reason: Reason::http(429, "slow down"),
                        after: Some(Duration::from_millis(300)),
                    }
                } else {
                    Outcomes::Delivered
                })
            },
            dir.path(),
        );
        let evs = events(1);
        let refs: Vec<&Event> = evs.iter().collect();
        let started = Instant::now();
        d.deliver(&refs, &CancellationToken::new()).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(attempts(&sent).len(), 2);
    }

    #[tokio::test]
    async fn an_unwritable_dead_letter_queue_loses_only_the_rejects() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the queue's directory should be: it cannot be opened.
        let blocked = dir.path().join("blocked");
        std::fs::write(&blocked, b"").unwrap();
        let (d, sent) = delivery(
            |_, events| {
                Ok(Outcomes::Each(
                    events
                        .iter()
                        .map(|e| {
                            if seq(e) == 0 {
                                Outcome::Reject(Rejection {
                                    reason: Reason::http(400, "bad"),
                                    status: 400,
                                    action: "index",
                                    target: "logs".into(),
                                })
                            } else {
                                Outcome::Delivered
                            }
                        })
                        .collect(),
                ))
            },
            &blocked.join("dlq"),
        );
        let evs = events(3);
        let refs: Vec<&Event> = evs.iter().collect();
        // The batch is settled (not failed): its delivered events must not be resent.
        d.deliver(&refs, &CancellationToken::new()).await.unwrap();
        assert_eq!(d.counters.dead_letter_lost.get(), 1);
        assert_eq!(d.counters.delivered.get(), 2);
        assert_eq!(attempts(&sent).len(), 1);
    }
}
