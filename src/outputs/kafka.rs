//! `kafka` output: produces each event as one message to `topic_id`, keyed by
//! `message_key`, and reports each message's fate from librdkafka's delivery reports.
//!
//! One call to `send` is one attempt: every event is handed to librdkafka, then the
//! call waits for the delivery report of each. librdkafka itself retries transient
//! broker errors within `message.timeout.ms` (and, with idempotence, keeps the order of
//! a partition while doing so); what still fails comes back to the delivery engine as
//! `Retry` (broker down, timeouts, a full local queue) or `Reject` (too large, not
//! authorized, no such topic), which the engine retries with back-off or dead-letters.
//!
//! No loss by default: `acks => "all"` (Logstash's default is `1`) and idempotence on,
//! so a batch is acknowledged only once every in-sync replica has every message.
//! Ordering per key: messages of one key go to one partition (the Java client's
//! murmur2 partitioner, so Sluice and Logstash producers agree), and once one event of
//! a batch cannot be queued, the events after it are not queued either, so a retry
//! never overtakes them.

use super::{Outcome, Outcomes, Output, OutputError, Reason, Rejection};
use crate::codecs::Encoder;
use crate::config::Error;
use crate::event::sprintf::Template;
use crate::event::Event;
use crate::kafka::{self, ClientProperties};
use crate::plugin::Options;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientContext;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How long `close` waits for messages still queued in librdkafka.
const CLOSE_FLUSH: Duration = Duration::from_secs(30);

pub struct KafkaOutput {
    props: ClientProperties,
    topic: Template,
    key: Option<Template>,
    headers: Vec<(String, Template)>,
    encoder: Encoder,
    /// Replaced when librdkafka reports a fatal error (idempotence broken): such a
    /// producer refuses everything from then on.
    producer: RwLock<Arc<FutureProducer<ProducerLog>>>,
}

/// Routes librdkafka's logs and errors into `tracing`.
pub struct ProducerLog;

impl ClientContext for ProducerLog {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!(facility = fac, "librdkafka: {message}")
            }
            L::Warning => tracing::warn!(facility = fac, "librdkafka: {message}"),
            _ => tracing::debug!(facility = fac, "librdkafka: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, "kafka producer: {reason}");
    }
}

impl KafkaOutput {
    pub fn build(opts: &mut Options) -> Result<KafkaOutput, Error> {
        let mut props = kafka::common_properties(opts)?;
        let topic = opts
            .template("topic_id")?
            .ok_or_else(|| opts.error("kafka output requires option `topic_id`"))?;
        let key = opts.template("message_key")?;
        let mut headers = Vec::new();
        let headers_pos = opts.value_pos("message_headers");
        for (k, v) in opts.string_map("message_headers")?.unwrap_or_default() {
            let t = Template::parse(&v)
                .map_err(|e| opts.option_error("message_headers", &headers_pos, e))?;
            headers.push((k, t));
        }
        if let Some(id) = opts.string("client_id")? {
            props.set("client.id", id);
        }
        let compression = kafka::choice(
            opts,
            "compression_type",
            &["none", "gzip", "snappy", "lz4", "zstd"],
            "none",
        )?;
        props.set("compression.type", compression);
        let acks = kafka::choice(opts, "acks", &["0", "1", "all"], "all")?;
        props.set("acks", acks.clone());
        // Idempotence needs acks=all; with fewer acks a user asked for less safety.
        let idempotence = opts.bool_or("enable_idempotence", acks == "all")?;
        if idempotence && acks != "all" {
            let pos = opts.value_pos("enable_idempotence");
            return Err(opts.option_error("enable_idempotence", &pos, "needs acks => \"all\""));
        }
        props.set("enable.idempotence", idempotence.to_string());
        let int = kafka::int_property;
        int(opts, &mut props, "batch_size", "batch.size", 1)?;
        int(opts, &mut props, "linger_ms", "linger.ms", 0)?;
        int(
            opts,
            &mut props,
            "max_request_size",
            "message.max.bytes",
            1000,
        )?;
        int(opts, &mut props, "retries", "retries", 0)?;
        int(
            opts,
            &mut props,
            "max_in_flight_requests_per_connection",
            "max.in.flight.requests.per.connection",
            1,
        )?;
        int(
            opts,
            &mut props,
            "request_timeout_ms",
            "request.timeout.ms",
            1,
        )?;
        let memory_pos = opts.value_pos("buffer_memory");
        if let Some(bytes) = opts.int("buffer_memory")? {
            if bytes < 1024 {
                return Err(opts.option_error(
                    "buffer_memory",
                    &memory_pos,
                    "must be at least 1024",
                ));
            }
            props.set("queue.buffering.max.kbytes", (bytes / 1024).to_string());
        }
        // The Java client's partitioner: murmur2 of the key, spread when there is none.
        let partitioner_pos = opts.value_pos("partitioner");
        match opts.string("partitioner")?.as_deref() {
            None | Some("default") | Some("uniform_sticky") => {
                props.set("partitioner", "murmur2_random")
            }
            Some(other) => {
                return Err(opts.option_error(
                    "partitioner",
                    &partitioner_pos,
                    format!("`{other}` is not available; use default or uniform_sticky"),
                ))
            }
        }
        for option in ["key_serializer", "value_serializer"] {
            let pos = opts.value_pos(option);
            if let Some(s) = opts.string(option)? {
                // Both write the codec's bytes as they are.
                if !matches!(
                    s.as_str(),
                    "org.apache.kafka.common.serialization.StringSerializer"
                        | "org.apache.kafka.common.serialization.ByteArraySerializer"
                ) {
                    return Err(opts.option_error(
                        option,
                        &pos,
                        "only StringSerializer and ByteArraySerializer are supported",
                    ));
                }
            }
        }
        kafka::pass_through(opts, "producer_config", &mut props, &[])?;
        let encoder = Encoder::build(opts.codec()?, "plain")?;
        kafka::validate(opts, &props, true)?;
        let producer = create(&props).map_err(|e| opts.error(format!("kafka output: {e}")))?;
        Ok(KafkaOutput {
            props,
            topic,
            key,
            headers,
            encoder,
            producer: RwLock::new(Arc::new(producer)),
        })
    }

    fn producer(&self) -> Arc<FutureProducer<ProducerLog>> {
        self.producer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A producer in a fatal state refuses every message; a fresh one starts a new
    /// idempotent session. Returns whether it was replaced.
    fn replace_if_fatal(&self, current: &Arc<FutureProducer<ProducerLog>>) -> bool {
        let Some((code, reason)) = current.client().fatal_error() else {
            return false;
        };
        tracing::error!(error = %code, reason = %reason, "kafka producer hit a fatal error; starting a new one");
        match create(&self.props) {
            Ok(fresh) => {
                let mut slot = self.producer.write().unwrap_or_else(|p| p.into_inner());
                if Arc::ptr_eq(&slot, current) {
                    *slot = Arc::new(fresh);
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot create a new kafka producer");
                false
            }
        }
    }
}

fn create(props: &ClientProperties) -> Result<FutureProducer<ProducerLog>, KafkaError> {
    props.to_client_config().create_with_context(ProducerLog)
}

/// What a failed message becomes: permanent errors go to the dead letter queue with
/// their reason, anything else is retried.
fn outcome(error: &KafkaError, topic: &str) -> Outcome {
    let code = error.rdkafka_error_code();
    let reject = |code: &'static str| {
        Outcome::Reject(Rejection {
            reason: Reason::new(
                code,
                format!("kafka refused the message for topic {topic}: {error}"),
            ),
            status: 0,
            action: "produce",
            target: topic.to_string(),
        })
    };
    use RDKafkaErrorCode as C;
    match code {
        Some(C::MessageSizeTooLarge | C::InvalidMessageSize | C::MessageBatchTooLarge) => {
            reject("message_too_large")
        }
        Some(C::TopicAuthorizationFailed | C::ClusterAuthorizationFailed) => {
            reject("authorization")
        }
        Some(
            C::UnknownTopic | C::UnknownTopicOrPartition | C::UnknownPartition | C::InvalidTopic,
        ) => reject("unknown_topic"),
        Some(
            C::InvalidMessage
            | C::InvalidRecord
            | C::PolicyViolation
            | C::UnsupportedForMessageFormat,
        ) => reject("invalid_record"),
        Some(C::MessageTimedOut) => {
            Outcome::retry(Reason::new("timeout", format!("kafka: {error}")))
        }
        Some(C::QueueFull) => Outcome::retry(Reason::new(
            "queue_full",
            "kafka producer queue is full (buffer_memory); waiting for the broker",
        )),
        _ => Outcome::retry(Reason::new("kafka", format!("kafka: {error}"))),
    }
}

#[async_trait::async_trait]
impl Output for KafkaOutput {
    async fn send(&self, events: &[&Event]) -> Result<Outcomes, OutputError> {
        let producer = self.producer();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; events.len()];
        let mut waiting = Vec::with_capacity(events.len());
        let mut payload = Vec::with_capacity(512);
        let mut blocked: Option<Outcome> = None;
        for (i, event) in events.iter().enumerate() {
            if let Some(o) = &blocked {
                // Keep per-key order: nothing may overtake an event that must wait.
                outcomes[i] = Some(o.clone());
                continue;
            }
            payload.clear();
            self.encoder.encode(event, &mut payload);
            if payload.last() == Some(&b'\n') {
                payload.pop();
            }
            let topic = self.topic.render(event);
            let key = self.key.as_ref().map(|k| k.render(event));
            let mut record = FutureRecord::to(&topic).payload(payload.as_slice());
            if let Some(k) = &key {
                record = record.key(k.as_bytes());
            }
            if !self.headers.is_empty() {
                let mut h = OwnedHeaders::new_with_capacity(self.headers.len());
                for (name, value) in &self.headers {
                    let value = value.render(event);
                    h = h.insert(Header {
                        key: name,
                        value: Some(value.as_bytes()),
                    });
                }
                record = record.headers(h);
            }
            match producer.send_result(record) {
                Ok(delivery) => waiting.push((i, delivery)),
                Err((error, _)) => {
                    let o = outcome(&error, &topic);
                    if matches!(o, Outcome::Retry { .. }) {
                        blocked = Some(o.clone());
                    }
                    outcomes[i] = Some(o);
                }
            }
        }
        let reports = futures::future::join_all(
            waiting
                .into_iter()
                .map(|(i, d)| async move { (i, d.await) }),
        )
        .await;
        for (i, report) in reports {
            outcomes[i] = Some(match report {
                Ok(Ok(_)) => Outcome::Delivered,
                Ok(Err((error, _))) => outcome(&error, &self.topic.render(events[i])),
                Err(_) => Outcome::retry(Reason::new("closed", "kafka producer was replaced")),
            });
        }
        if self.replace_if_fatal(&producer) {
            return Ok(Outcomes::retry_all(Reason::new(
                "fatal",
                "kafka producer hit a fatal error and was replaced",
            )));
        }
        let outcomes: Vec<Outcome> = outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Delivered))
            .collect();
        if outcomes.iter().all(|o| *o == Outcome::Delivered) {
            Ok(Outcomes::Delivered)
        } else {
            Ok(Outcomes::Each(outcomes))
        }
    }

    async fn close(&self) -> Result<(), OutputError> {
        let producer = self.producer();
        let flushed = tokio::task::spawn_blocking(move || producer.flush(CLOSE_FLUSH))
            .await
            .map_err(|e| OutputError::Fatal(format!("kafka flush task: {e}")))?;
        flushed.map_err(|e| OutputError::Fatal(format!("kafka producer flush at shutdown: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(body: &str) -> Result<KafkaOutput, Error> {
        let mut o = Options::from_text("kafka", "output", body)?;
        let out = KafkaOutput::build(&mut o)?;
        o.finish()?;
        Ok(out)
    }

    #[test]
    fn no_loss_defaults() {
        let o = build(r#"topic_id => "t""#).unwrap();
        assert_eq!(o.props.get("acks"), Some("all"));
        assert_eq!(o.props.get("enable.idempotence"), Some("true"));
        assert_eq!(o.props.get("compression.type"), Some("none"));
        assert_eq!(o.props.get("partitioner"), Some("murmur2_random"));
        assert!(matches!(o.encoder, Encoder::Line(_)));
    }

    #[test]
    fn logstash_options_map_to_librdkafka() {
        let o = build(
            r#"topic_id => "logs-%{service}" message_key => "%{host}" codec => json
               compression_type => "lz4" acks => "1" batch_size => 65536 linger_ms => 5
               max_request_size => 2097152 retries => 3 retry_backoff_ms => 250
               max_in_flight_requests_per_connection => 5 client_dns_lookup => "use_all_dns_ips"
               producer_config => { "queue.buffering.max.messages" => "5000" }"#,
        )
        .unwrap();
        let p = &o.props;
        assert_eq!(p.get("compression.type"), Some("lz4"));
        assert_eq!(p.get("acks"), Some("1"));
        assert_eq!(p.get("enable.idempotence"), Some("false"));
        assert_eq!(p.get("batch.size"), Some("65536"));
        assert_eq!(p.get("linger.ms"), Some("5"));
        assert_eq!(p.get("message.max.bytes"), Some("2097152"));
        assert_eq!(p.get("retries"), Some("3"));
        assert_eq!(p.get("retry.backoff.ms"), Some("250"));
        assert_eq!(p.get("max.in.flight.requests.per.connection"), Some("5"));
        assert_eq!(p.get("queue.buffering.max.messages"), Some("5000"));
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(build("").is_err());
        let e = build(r#"topic_id => "t" compression_type => "brotli""#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("zstd"), "{e}");
        let e = build(r#"topic_id => "t" acks => "1" enable_idempotence => true"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("acks"), "{e}");
        let e = build(r#"topic_id => "t" producer_config => { "bogus.key" => "1" }"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("bogus.key"), "{e}");
        let e = build(r#"topic_id => "t" retries => -1"#).err().unwrap();
        assert!(e.to_string().contains("retries"), "{e}");
    }

    #[test]
    fn permanent_errors_are_rejected_transient_ones_retried() {
        let too_large = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        match outcome(&too_large, "t") {
            Outcome::Reject(r) => {
                assert_eq!(r.reason.code, "message_too_large");
                assert_eq!(r.target, "t");
                assert_eq!(r.action, "produce");
            }
            other => panic!("{other:?}"),
        }
        let auth = KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed);
        assert!(matches!(outcome(&auth, "t"), Outcome::Reject(_)));
        let timeout = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        assert!(matches!(outcome(&timeout, "t"), Outcome::Retry { .. }));
        let down = KafkaError::MessageProduction(RDKafkaErrorCode::AllBrokersDown);
        assert!(matches!(outcome(&down, "t"), Outcome::Retry { .. }));
    }

    /// librdkafka's mock cluster: quick fault injection next to the real-broker tests.
    mod mock_cluster {
        use super::*;
        use rdkafka::mocking::MockCluster;
        use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

        fn output(
            cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
            extra: &str,
        ) -> KafkaOutput {
            build(&format!(
                r#"topic_id => "t" codec => json bootstrap_servers => "{}" {extra}"#,
                cluster.bootstrap_servers()
            ))
            .unwrap()
        }

        fn event(message: &str) -> Event {
            Event::with_message(message.to_string(), crate::event::Timestamp::now())
        }

        #[tokio::test]
        async fn delivered_too_large_rejected_and_broker_errors() {
            let cluster = MockCluster::new(1).unwrap();
            cluster.create_topic("t", 1, 1).unwrap();
            let out = output(&cluster, "max_request_size => 2000");
            let small = event("hello");
            let huge = event(&"x".repeat(5000));
            assert_eq!(
                out.send(&[&small, &small]).await.unwrap(),
                Outcomes::Delivered
            );

            match out.send(&[&small, &huge, &small]).await.unwrap() {
                Outcomes::Each(o) => {
                    assert_eq!(o[0], Outcome::Delivered);
                    assert!(
                        matches!(&o[1], Outcome::Reject(r) if r.reason.code == "message_too_large"),
                        "{:?}",
                        o[1]
                    );
                    assert_eq!(o[2], Outcome::Delivered);
                }
                other => panic!("{other:?}"),
            }

            cluster.request_errors(
                RDKafkaApiKey::Produce,
                &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
            );
            match out.send(&[&small]).await.unwrap() {
                Outcomes::Each(o) => assert!(
                    matches!(&o[0], Outcome::Reject(r) if r.reason.code == "authorization"),
                    "{o:?}"
                ),
                other => panic!("{other:?}"),
            }
            out.close().await.unwrap();
        }

        #[tokio::test]
        async fn a_broker_down_is_retried_and_recovers() {
            let cluster = MockCluster::new(1).unwrap();
            cluster.create_topic("t", 1, 1).unwrap();
            let out = output(
                &cluster,
                r#"producer_config => { "message.timeout.ms" => "1500" }"#,
            );
            let e = event("hello");
            assert_eq!(out.send(&[&e]).await.unwrap(), Outcomes::Delivered);
            cluster.broker_down(1).unwrap();
            match out.send(&[&e, &e]).await.unwrap() {
                Outcomes::Each(o) => {
                    assert!(
                        o.iter().all(|o| matches!(o, Outcome::Retry { .. })),
                        "{o:?}"
                    )
                }
                Outcomes::RetryAll { .. } => {}
                other => panic!("{other:?}"),
            }
            cluster.broker_up(1).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                if out.send(&[&e]).await.unwrap() == Outcomes::Delivered {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "no recovery within 20 s"
                );
            }
        }
    }
}
