//! `kafka` input: reads topics as a member of a consumer group.
//!
//! Each of `consumer_threads` consumers runs on its own OS thread (librdkafka's poll
//! loop is blocking, and rebalance callbacks run inside it). A consumer polls up to
//! `max_poll_records` messages, decodes them with the codec, and pushes them as one
//! batch whose ack records, per partition, that the batch is safe ([`offsets`]).
//!
//! **Offsets are committed only after the batch's ack fired Delivered**: auto-commit is
//! off, and the consumer commits what [`offsets::Tracker`] says is safe every
//! `auto_commit_interval_ms` (or after every batch when `enable_auto_commit => false`),
//! when partitions are revoked, and at shutdown. A crash therefore replays, never
//! skips: at-least-once.
//!
//! **Rebalances**: before giving up partitions, the consumer waits (up to
//! `REVOKE_WAIT`) for the in-flight batches of those partitions to be acknowledged and
//! commits their offsets, so the next owner starts after them instead of reading them
//! again. Messages polled but not yet pushed are discarded at a rebalance: they were
//! never committed, so whoever owns the partition next reads them.
//!
//! **Back-pressure**: while the pipeline queue is full, the consumer pauses its
//! partitions and keeps polling, so it keeps its group membership (heartbeats,
//! `max_poll_interval_ms`) without reading more.

pub mod offsets;

use super::{Input, InputContext, InputError};
use crate::batch::{Ack, AckStatus, Batch};
use crate::codecs::Decoder;
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{Event, Timestamp, Value};
use crate::kafka::{self, ClientProperties};
use crate::plugin::Options;
use offsets::{PartitionKey, Tracker};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a consumer waits for the queue to take a batch before it pauses its
/// partitions and polls on (for its heartbeats and rebalances) while it waits. Far
/// below `max_poll_interval_ms`, and above a push into a queue with room.
const PUSH_GRACE: Duration = Duration::from_millis(250);
/// How long a revocation waits for in-flight batches of the revoked partitions.
const REVOKE_WAIT: Duration = Duration::from_secs(30);
/// How long shutdown waits for in-flight batches before the last commit.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decorate {
    None,
    Basic,
    Extended,
}

pub struct KafkaInput {
    props: ClientProperties,
    client_id: String,
    group_id: String,
    group_instance_id: Option<String>,
    subscription: Vec<String>,
    threads: usize,
    decoder: Decoder,
    decorate: Decorate,
    max_records: usize,
    poll_timeout: Duration,
    commit_interval: Option<Duration>,
}

impl KafkaInput {
    pub fn build(opts: &mut Options) -> Result<KafkaInput, Error> {
        let mut props = kafka::common_properties(opts)?;
        let client_id = opts.string_or("client_id", "logstash")?;
        let group_id = opts.string_or("group_id", "logstash")?;
        let group_instance_id = opts.string("group_instance_id")?;
        let topics = opts.string_list("topics")?;
        let pattern_pos = opts.value_pos("topics_pattern");
        let pattern = opts.string("topics_pattern")?;
        let subscription = match pattern {
            // librdkafka treats a topic that starts with ^ as a regular expression;
            // Kafka's pattern subscription matches whole names, hence the anchors.
            Some(p) => {
                if p.is_empty() {
                    return Err(opts.option_error("topics_pattern", &pattern_pos, "is empty"));
                }
                vec![format!(
                    "^({})$",
                    p.trim_start_matches('^').trim_end_matches('$')
                )]
            }
            None => topics.unwrap_or_else(|| vec!["logstash".to_string()]),
        };
        if subscription.is_empty() {
            return Err(opts.error("kafka input: `topics` is empty"));
        }
        let threads_pos = opts.value_pos("consumer_threads");
        let threads = opts.usize_or("consumer_threads", 1)?;
        if threads == 0 {
            return Err(opts.option_error("consumer_threads", &threads_pos, "must be at least 1"));
        }
        if let Some(reset) = opts.string("auto_offset_reset")? {
            let value = match reset.as_str() {
                "earliest" | "latest" => reset.clone(),
                // Kafka's `none` (fail without a committed offset) is librdkafka's `error`.
                "none" => "error".to_string(),
                other => {
                    let pos = opts.value_pos("auto_offset_reset");
                    return Err(opts.option_error(
                        "auto_offset_reset",
                        &pos,
                        format!("`{other}` is not one of earliest, latest, none"),
                    ));
                }
            };
            props.set("auto.offset.reset", value);
        }
        let decorate = match kafka::choice(
            opts,
            "decorate_events",
            &["none", "basic", "extended", "false", "true"],
            "none",
        )?
        .as_str()
        {
            "basic" | "true" => Decorate::Basic,
            "extended" => Decorate::Extended,
            _ => Decorate::None,
        };
        let enable_auto_commit = opts.bool_or("enable_auto_commit", true)?;
        let interval_pos = opts.value_pos("auto_commit_interval_ms");
        let interval = opts.int_or("auto_commit_interval_ms", 5000)?;
        if interval < 0 {
            return Err(opts.option_error(
                "auto_commit_interval_ms",
                &interval_pos,
                "must not be negative",
            ));
        }
        let commit_interval = enable_auto_commit.then(|| Duration::from_millis(interval as u64));
        let max_records_pos = opts.value_pos("max_poll_records");
        let max_records = opts.usize_or("max_poll_records", 500)?;
        if max_records == 0 {
            return Err(opts.option_error(
                "max_poll_records",
                &max_records_pos,
                "must be at least 1",
            ));
        }
        let poll_timeout = Duration::from_millis(opts.usize_or("poll_timeout_ms", 100)? as u64);

        let int = kafka::int_property;
        int(
            opts,
            &mut props,
            "session_timeout_ms",
            "session.timeout.ms",
            1,
        )?;
        int(
            opts,
            &mut props,
            "heartbeat_interval_ms",
            "heartbeat.interval.ms",
            1,
        )?;
        int(
            opts,
            &mut props,
            "max_poll_interval_ms",
            "max.poll.interval.ms",
            1,
        )?;
        int(opts, &mut props, "fetch_max_bytes", "fetch.max.bytes", 1)?;
        int(
            opts,
            &mut props,
            "fetch_max_wait_ms",
            "fetch.wait.max.ms",
            0,
        )?;
        int(opts, &mut props, "fetch_min_bytes", "fetch.min.bytes", 1)?;
        int(
            opts,
            &mut props,
            "max_partition_fetch_bytes",
            "max.partition.fetch.bytes",
            1,
        )?;
        if let Some(crc) = opts.bool("check_crcs")? {
            props.set("check.crcs", crc.to_string());
        }
        if let Some(create) = opts.bool("auto_create_topics")? {
            props.set("allow.auto.create.topics", create.to_string());
        }
        if let Some(rack) = opts.string("client_rack")? {
            props.set("client.rack", rack);
        }
        let isolation = kafka::choice(
            opts,
            "isolation_level",
            &["read_uncommitted", "read_committed"],
            "read_uncommitted",
        )?;
        props.set("isolation.level", isolation);
        if opts.has("partition_assignment_strategy") {
            let strategy = kafka::choice(
                opts,
                "partition_assignment_strategy",
                &["range", "round_robin", "cooperative_sticky"],
                "range",
            )?;
            let value = match strategy.as_str() {
                "round_robin" => "roundrobin",
                "cooperative_sticky" => "cooperative-sticky",
                _ => "range",
            };
            props.set("partition.assignment.strategy", value);
        }

        props.set("group.id", group_id.clone());
        props.set("client.id", client_id.clone());
        // The guarantee: nothing is committed that the pipeline has not made safe.
        props.set("enable.auto.commit", "false");
        props.set("enable.auto.offset.store", "false");
        kafka::pass_through(
            opts,
            "consumer_config",
            &mut props,
            &[
                "enable.auto.commit",
                "enable.auto.offset.store",
                "enable.partition.eof",
            ],
        )?;
        let decoder = Decoder::build(opts.codec()?, "plain")?;
        kafka::validate(opts, &props, false)?;
        Ok(KafkaInput {
            props,
            client_id,
            group_id,
            group_instance_id,
            subscription,
            threads,
            decoder,
            decorate,
            max_records,
            poll_timeout,
            commit_interval,
        })
    }
}

#[async_trait::async_trait]
impl Input for KafkaInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        let this = Arc::new(*self);
        let runtime = tokio::runtime::Handle::current();
        let mut done = Vec::new();
        for i in 0..this.threads {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let this = this.clone();
            let ctx = ctx.clone();
            let runtime = runtime.clone();
            std::thread::Builder::new()
                .name(format!("kafka-input-{i}"))
                .spawn(move || {
                    let _ = tx.send(this.consume(i, &ctx, &runtime));
                })
                .map_err(|e| InputError::Io {
                    context: "cannot start a kafka consumer thread".to_string(),
                    source: e,
                })?;
            done.push(rx);
        }
        let mut result = Ok(());
        for rx in done {
            match rx.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err(InputError::Other("kafka consumer thread ended".into())),
            }
        }
        result
    }
}

/// librdkafka's callbacks: logs into `tracing`, and the rebalance protocol.
struct GroupContext {
    tracker: Arc<Tracker>,
    /// Bumped at every rebalance, so a paused consumer pauses its new partitions too.
    generation: AtomicU64,
    /// Partitions revoked since the poll loop last looked.
    revoked: std::sync::Mutex<Vec<PartitionKey>>,
    input_id: String,
}

impl ClientContext for GroupContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!(input = %self.input_id, facility = fac, "librdkafka: {message}")
            }
            L::Warning => {
                tracing::warn!(input = %self.input_id, facility = fac, "librdkafka: {message}")
            }
            _ => tracing::debug!(input = %self.input_id, facility = fac, "librdkafka: {message}"),
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::warn!(input = %self.input_id, error = %error, "kafka consumer: {reason}");
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let revoked: Vec<PartitionKey> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        let deadline = Instant::now() + REVOKE_WAIT;
        while self.tracker.in_flight(Some(&revoked)) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let left = self.tracker.in_flight(Some(&revoked));
        if left > 0 {
            tracing::warn!(
                input = %self.input_id,
                batches = left,
                "partitions revoked while batches were still in flight; their events will be read again by the next owner"
            );
        }
        commit(consumer, &self.tracker, CommitMode::Sync, &self.input_id);
        self.tracker.release(&revoked);
        self.revoked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(revoked.iter().cloned());
        tracing::info!(input = %self.input_id, partitions = revoked.len(), "kafka partitions revoked");
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            tracing::info!(input = %self.input_id, partitions = tpl.count(), "kafka partitions assigned");
        }
    }
}

/// Commits whatever the tracker says is safe; failures are logged and retried at the
/// next commit (the offsets stay ready).
fn commit(consumer: &BaseConsumer<GroupContext>, tracker: &Tracker, mode: CommitMode, id: &str) {
    let ready = tracker.ready();
    if ready.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in &ready {
        if let Err(e) = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
            tracing::warn!(input = %id, error = %e, "cannot list an offset to commit");
        }
    }
    match consumer.commit(&tpl, mode) {
        Ok(()) => tracker.committed(&ready),
        Err(e) => {
            tracing::warn!(input = %id, error = %e, "kafka offset commit failed; retrying at the next commit")
        }
    }
}

/// Messages polled and decoded but not yet pushed, per partition (in offset order
/// within each).
#[derive(Default)]
struct Pending {
    parts: HashMap<PartitionKey, PendingPart>,
}

#[derive(Default)]
struct PendingPart {
    events: Vec<Event>,
    /// The offset after the last message.
    next: i64,
    bytes: usize,
}

impl Pending {
    /// Drops what was read from partitions revoked since: never pushed, never
    /// committed, so their next owner reads them from the committed offset.
    fn drop_revoked(&mut self, context: &GroupContext) {
        let revoked =
            std::mem::take(&mut *context.revoked.lock().unwrap_or_else(|p| p.into_inner()));
        for key in revoked {
            self.parts.remove(&key);
        }
    }

    /// The events of every partition, the offsets they reach and their size.
    fn take(&mut self) -> (Vec<Event>, Vec<(PartitionKey, i64)>, usize) {
        let count = self.parts.values().map(|p| p.events.len()).sum();
        let mut events = Vec::with_capacity(count);
        let mut offsets = Vec::with_capacity(self.parts.len());
        let mut bytes = 0;
        for (key, mut part) in self.parts.drain() {
            events.append(&mut part.events);
            offsets.push((key, part.next));
            bytes += part.bytes;
        }
        (events, offsets, bytes)
    }
}

/// Pre-parsed `[@metadata][kafka][...]` references.
struct MetadataRefs {
    topic: FieldRef,
    consumer_group: FieldRef,
    partition: FieldRef,
    offset: FieldRef,
    key: FieldRef,
    timestamp: FieldRef,
}

impl MetadataRefs {
    fn new() -> Result<MetadataRefs, InputError> {
        let r = |name: &str| {
            FieldRef::parse(&format!("[@metadata][kafka][{name}]"))
                .map_err(|e| InputError::Other(format!("metadata field {name}: {e}")))
        };
        Ok(MetadataRefs {
            topic: r("topic")?,
            consumer_group: r("consumer_group")?,
            partition: r("partition")?,
            offset: r("offset")?,
            key: r("key")?,
            timestamp: r("timestamp")?,
        })
    }
}

impl KafkaInput {
    /// One consumer's life: create, subscribe, poll and push until shutdown, then wait
    /// for the last acks and commit.
    fn consume(
        &self,
        index: usize,
        ctx: &InputContext,
        runtime: &tokio::runtime::Handle,
    ) -> Result<(), InputError> {
        let tracker = Arc::new(Tracker::default());
        let context = GroupContext {
            tracker: tracker.clone(),
            generation: AtomicU64::new(0),
            revoked: std::sync::Mutex::new(Vec::new()),
            input_id: ctx.id().to_string(),
        };
        let mut props = self.props.clone();
        props.set("client.id", format!("{}-{index}", self.client_id));
        if let Some(g) = &self.group_instance_id {
            let g = if self.threads > 1 {
                format!("{g}-{index}")
            } else {
                g.clone()
            };
            props.set("group.instance.id", g);
        }
        let consumer: BaseConsumer<GroupContext> = props
            .to_client_config()
            .create_with_context(context)
            .map_err(|e| InputError::Other(format!("cannot create kafka consumer: {e}")))?;
        let topics: Vec<&str> = self.subscription.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| InputError::Other(format!("cannot subscribe to {topics:?}: {e}")))?;
        tracing::info!(input = %ctx.id(), group = %self.group_id, topics = ?topics, "kafka consumer started");

        let refs = MetadataRefs::new()?;
        let mut last_commit = Instant::now();
        let mut last_error: Option<(String, Instant)> = None;
        let mut pending = Pending::default();
        let mut generation = consumer.context().generation.load(Ordering::Acquire);

        'outer: while !ctx.is_shutting_down() {
            // Gather up to max_records messages, or what one poll timeout brings.
            let mut messages = 0usize;
            while messages < self.max_records {
                let timeout = if messages == 0 {
                    self.poll_timeout
                } else {
                    Duration::ZERO
                };
                let polled = consumer.poll(timeout);
                pending.drop_revoked(consumer.context());
                match polled {
                    None => break,
                    Some(Ok(m)) => {
                        messages += 1;
                        self.decode_into(&m, &refs, &mut pending);
                    }
                    Some(Err(e)) => {
                        let text = e.to_string();
                        let repeat = matches!(&last_error, Some((t, at)) if *t == text && at.elapsed() < Duration::from_secs(60));
                        if !repeat {
                            tracing::warn!(input = %ctx.id(), error = %text, "kafka consumer poll failed");
                            last_error = Some((text, Instant::now()));
                        }
                        break;
                    }
                }
                if ctx.is_shutting_down() {
                    break;
                }
            }
            if self
                .commit_interval
                .is_none_or(|i| last_commit.elapsed() >= i)
            {
                commit(&consumer, &tracker, CommitMode::Async, ctx.id());
                last_commit = Instant::now();
            }
            if pending.parts.is_empty() {
                continue;
            }

            let (events, offsets, bytes) = pending.take();
            let keys: Vec<PartitionKey> = offsets.iter().map(|(k, _)| k.clone()).collect();
            let id = tracker.begin(&offsets);
            let ack_tracker = tracker.clone();
            let ack = Ack::new(move |status| {
                ack_tracker.complete(id, &keys, status == AckStatus::Delivered)
            });
            let batch = Batch::with_bytes(events, ack, bytes);
            let push_ctx = ctx.clone();
            let mut push = runtime.spawn(async move { push_ctx.push(batch).await });
            // A queue with room takes the batch at once: wait for that before pausing.
            // Pausing drops what librdkafka prefetched for the partitions, so pausing
            // for every batch (a push has not run yet right after the spawn) would fetch
            // everything twice and sleep a poll per batch.
            let quick =
                runtime.block_on(async { tokio::time::timeout(PUSH_GRACE, &mut push).await.ok() });

            // While the queue is full: partitions paused, polling on for the group.
            let mut paused = false;
            let pushed = match quick {
                Some(done) => done,
                None => loop {
                    if push.is_finished() {
                        break runtime.block_on(&mut push);
                    }
                    let gen_now = consumer.context().generation.load(Ordering::Acquire);
                    if !paused || gen_now != generation {
                        generation = gen_now;
                        if let Ok(assignment) = consumer.assignment() {
                            if let Err(e) = consumer.pause(&assignment) {
                                tracing::debug!(error = %e, "cannot pause kafka partitions");
                            }
                            paused = true;
                        }
                    }
                    let polled = consumer.poll(Duration::from_millis(50));
                    pending.drop_revoked(consumer.context());
                    if let Some(Ok(m)) = polled {
                        // Fetched before the pause took effect: kept for the next batch.
                        self.decode_into(&m, &refs, &mut pending);
                    }
                    if self
                        .commit_interval
                        .is_none_or(|i| last_commit.elapsed() >= i)
                    {
                        commit(&consumer, &tracker, CommitMode::Async, ctx.id());
                        last_commit = Instant::now();
                    }
                },
            };
            if paused {
                if let Ok(assignment) = consumer.assignment() {
                    if let Err(e) = consumer.resume(&assignment) {
                        tracing::warn!(input = %ctx.id(), error = %e, "cannot resume kafka partitions");
                    }
                }
            }
            match pushed {
                Ok(Ok(())) => {}
                // The queue closed: the pipeline is stopping.
                Ok(Err(_)) | Err(_) => break 'outer,
            }
        }

        // Shutdown: let the pipeline finish what it holds, commit it, leave the group.
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        while tracker.in_flight(None) > 0 && Instant::now() < deadline {
            let _ = consumer.poll(Duration::from_millis(20));
        }
        commit(&consumer, &tracker, CommitMode::Sync, ctx.id());
        let left = tracker.in_flight(None);
        if left > 0 {
            tracing::warn!(input = %ctx.id(), batches = left, "kafka input stopped with batches in flight; they will be read again");
        }
        consumer.unsubscribe();
        tracing::info!(input = %ctx.id(), "kafka consumer stopped");
        Ok(())
    }

    /// Decodes one message into the pending events of its partition.
    fn decode_into(&self, m: &impl Message, refs: &MetadataRefs, pending: &mut Pending) {
        let part = pending
            .parts
            .entry((m.topic().to_string(), m.partition()))
            .or_default();
        part.next = m.offset() + 1;
        part.bytes += m.payload().map_or(0, <[u8]>::len);
        self.decode(m, refs, &mut part.events);
    }

    /// Decodes one message's value into events, decorated as `decorate_events` says.
    fn decode(&self, m: &impl Message, refs: &MetadataRefs, out: &mut Vec<Event>) {
        let before = out.len();
        let now = Timestamp::now();
        self.decoder
            .decode(m.payload().unwrap_or_default(), now, out);
        if self.decorate == Decorate::None {
            return;
        }
        for e in &mut out[before..] {
            e.insert(&refs.topic, Value::String(m.topic().to_string()));
            e.insert(&refs.consumer_group, Value::String(self.group_id.clone()));
            e.insert(&refs.partition, Value::Int(m.partition() as i64));
            e.insert(&refs.offset, Value::Int(m.offset()));
            let key = m
                .key()
                .map(|k| Value::String(crate::codecs::lossy(k)))
                .unwrap_or(Value::Null);
            e.insert(&refs.key, key);
            let ts = m
                .timestamp()
                .to_millis()
                .map(Value::Int)
                .unwrap_or(Value::Null);
            e.insert(&refs.timestamp, ts);
            if self.decorate == Decorate::Extended {
                if let Some(headers) = m.headers() {
                    for h in headers.iter() {
                        let Some(Ok(text)) = h.value.map(std::str::from_utf8) else {
                            continue;
                        };
                        if let Ok(r) =
                            FieldRef::parse(&format!("[@metadata][kafka][headers][{}]", h.key))
                        {
                            e.insert(&r, Value::String(text.to_string()));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(body: &str) -> Result<KafkaInput, Error> {
        let mut o = Options::from_text("kafka", "input", body)?;
        let input = KafkaInput::build(&mut o)?;
        o.finish()?;
        Ok(input)
    }

    #[test]
    fn defaults_are_logstash_s() {
        let i = build("").unwrap();
        assert_eq!(i.group_id, "logstash");
        assert_eq!(i.client_id, "logstash");
        assert_eq!(i.subscription, vec!["logstash"]);
        assert_eq!(i.decoder, Decoder::Line);
        assert_eq!(i.decorate, Decorate::None);
        assert_eq!(i.props.get("enable.auto.commit"), Some("false"));
        assert_eq!(i.commit_interval, Some(Duration::from_secs(5)));
    }

    #[test]
    fn options_map_to_librdkafka() {
        let i = build(
            r#"topics_pattern => "logs-.*" auto_offset_reset => "earliest" codec => json
               decorate_events => "extended" consumer_threads => 2
               consumer_config => { "fetch.queue.backoff.ms" => "10" }"#,
        )
        .unwrap();
        assert_eq!(i.subscription, vec!["^(logs-.*)$"]);
        assert_eq!(i.props.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(i.props.get("fetch.queue.backoff.ms"), Some("10"));
        assert_eq!(i.decoder, Decoder::Json);
        assert_eq!(i.decorate, Decorate::Extended);
        assert_eq!(i.threads, 2);
    }

    #[test]
    fn refuses_what_would_break_the_guarantee_or_librdkafka() {
        let e = build(r#"consumer_config => { "enable.auto.commit" => "true" }"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("managed by Sluice"), "{e}");
        let e = build(r#"consumer_config => { "no.such.property" => "1" }"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("no.such.property"), "{e}");
        let e = build(r#"auto_offset_reset => "smallest""#).err().unwrap();
        assert!(e.to_string().contains("earliest"), "{e}");
        let e = build(r#"decorate_events => "all""#).err().unwrap();
        assert!(e.to_string().contains("extended"), "{e}");
    }
}
