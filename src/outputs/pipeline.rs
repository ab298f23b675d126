//! `pipeline` output: sends events to the `pipeline` inputs of other pipelines of this
//! process that listen on the addresses in `send_to` (Logstash's pipeline-to-pipeline
//! communication: distributor, output isolator, forked path patterns).
//!
//! Each address gets its own copy of every event, so what a downstream pipeline changes
//! does not leak into another one (or back upstream). An attempt is delivered once every
//! downstream pipeline made its copy safe: the copy crosses with an ack of its own, which
//! fires when the downstream pipeline is done with it (persisted queue: written; memory
//! queue: delivered by its outputs). Only then does this output report the events
//! delivered, so the upstream batch, and the client behind it (a Beats window), is acked
//! only when every downstream made it safe. A downstream that failed its copy makes the
//! attempt retried, with every address (at least once, as in Logstash: an address that
//! had its copy receives it again).
//!
//! An address nobody listens on: with `ensure_delivery => true` (the default) the output
//! waits for a pipeline to listen, which holds its batch and back-pressures the
//! pipeline, as Logstash does; with `false` the copy for that address is dropped,
//! logged and counted (`sluice_pipeline_output_events_dropped_total`).

use super::{Outcomes, Output, OutputError, Reason};
use crate::batch::{Ack, AckStatus, Batch};
use crate::config::Error;
use crate::event::Event;
use crate::plugin::bus::{BusWriter, NoListener};
use crate::plugin::Options;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct PipelineOutput {
    /// One registration per address; emptied by `close`, which tells downstream inputs
    /// that this writer is gone.
    writers: Mutex<Vec<Arc<Address>>>,
    ensure_delivery: bool,
}

struct Address {
    writer: BusWriter,
    /// Whether the last copy for this address was dropped (no listener), to log the
    /// change rather than every batch.
    dropping: AtomicBool,
    dropped: prometheus_client::metrics::counter::Counter,
}

impl PipelineOutput {
    pub fn build(opts: &mut Options) -> Result<PipelineOutput, Error> {
        let pos = opts.value_pos("send_to");
        let Some(send_to) = opts.string_list_spanned("send_to")? else {
            return Err(opts.error("pipeline output requires option `send_to`"));
        };
        if send_to.is_empty() {
            return Err(opts.option_error("send_to", &pos, "give at least one address"));
        }
        let ensure_delivery = opts.bool_or("ensure_delivery", true)?;
        // Accepted as Logstash accepts them; events cross as events, never encoded.
        let _ = opts.codec()?;
        let mut addresses: Vec<String> = Vec::with_capacity(send_to.len());
        for a in &send_to {
            if a.is_empty() {
                return Err(opts.option_error("send_to", &a.pos, "an address must not be empty"));
            }
            if a.contains("%{") {
                return Err(opts.option_error(
                    "send_to",
                    &a.pos,
                    format!("`{}`: addresses are fixed strings; field references (%{{...}}) are not supported, as in Logstash (use conditionals around several pipeline outputs)", a.value),
                ));
            }
            if !addresses.contains(&a.value) {
                addresses.push(a.value.clone());
            }
        }
        let bus = &opts.context().bus;
        let m = &crate::metrics::get().outputs;
        let writers = addresses
            .iter()
            .map(|a| {
                Arc::new(Address {
                    writer: bus.writer(a),
                    dropping: AtomicBool::new(false),
                    dropped: m
                        .pipeline_dropped
                        .get_or_create(&crate::metrics::label("address", a.as_str()))
                        .clone(),
                })
            })
            .collect();
        Ok(PipelineOutput {
            writers: Mutex::new(writers),
            ensure_delivery,
        })
    }

    /// Sends a copy of `events` to one address; false when the downstream pipeline did
    /// not make it safe.
    async fn send_to(&self, address: &Address, events: &[&Event]) -> bool {
        let copies: Vec<Event> = events.iter().map(|e| (*e).clone()).collect();
        let (ack, safe) = Ack::channel();
        let batch = Batch::new(copies, ack);
        let name = address.writer.address();
        if self.ensure_delivery {
            address
                .writer
                .send_when_listened(batch, || {
                    tracing::warn!(
                        address = %name,
                        "no pipeline listens on this address; waiting for one (ensure_delivery => true)"
                    )
                })
                .await;
        } else {
            match address.writer.send(batch).await {
                Ok(()) => {
                    if address.dropping.swap(false, Ordering::Relaxed) {
                        tracing::info!(address = %name, "a pipeline listens on this address again");
                    }
                }
                Err(NoListener(batch)) => {
                    address.dropped.inc_by(batch.len() as u64);
                    if !address.dropping.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            address = %name,
                            events = batch.len(),
                            "no pipeline listens on this address; dropping its events (ensure_delivery => false)"
                        );
                    }
                    return true;
                }
            }
        }
        safe.wait().await == AckStatus::Delivered
    }
}

#[async_trait::async_trait]
impl Output for PipelineOutput {
    async fn send(&self, events: &[&Event]) -> Result<Outcomes, OutputError> {
        let writers: Vec<Arc<Address>> = self
            .writers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if writers.is_empty() {
            return Err(OutputError::Fatal("the pipeline output is closed".into()));
        }
        let sends = writers.iter().map(|a| self.send_to(a, events));
        let safe = futures::future::join_all(sends).await;
        let failed: Vec<&str> = writers
            .iter()
            .zip(&safe)
            .filter(|(_, ok)| !**ok)
            .map(|(a, _)| a.writer.address())
            .collect();
        if failed.is_empty() {
            return Ok(Outcomes::Delivered);
        }
        Ok(Outcomes::retry_all(Reason::new(
            "downstream_failed",
            format!(
                "the pipeline(s) listening on {} did not make the events safe",
                failed.join(", ")
            ),
        )))
    }

    async fn close(&self) -> Result<(), OutputError> {
        self.writers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Value;
    use crate::plugin::{PipelineBus, PluginContext};
    use std::time::Duration;

    fn output(body: &str, bus: &PipelineBus) -> Result<PipelineOutput, Error> {
        let text = format!("output {{ pipeline {{ {body} }} }}");
        let cfg = crate::config::parse(&text, "test", false).unwrap();
        let Some(crate::config::ast::Item::Plugin(p)) = cfg.sections[0].items.first() else {
            panic!("no plugin");
        };
        let context = PluginContext {
            bus: bus.clone(),
            ..PluginContext::default()
        };
        let mut opts = Options::new(p, "output", Arc::new(context));
        let out = PipelineOutput::build(&mut opts)?;
        opts.finish()?;
        Ok(out)
    }

    fn event(message: &str) -> Event {
        let mut e = Event::new();
        e.insert_field("message", Value::String(message.into()));
        e
    }

    #[test]
    fn send_to_takes_fixed_addresses() {
        let bus = PipelineBus::new();
        let err = |body| {
            output(body, &bus)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err("").contains("requires option `send_to`"));
        assert!(err("send_to => []").contains("at least one address"));
        assert!(err(r#"send_to => ["%{[service]}"]"#).contains("fixed strings"));
        assert!(err(r#"send_to => ["a"] ensure_delivery => maybe"#).contains("true or false"));
        let out = output(
            r#"send_to => ["aa", "bb", "aa"] ensure_delivery => false"#,
            &bus,
        )
        .unwrap();
        assert_eq!(
            out.writers.lock().unwrap().len(),
            2,
            "an address listed twice gets one copy"
        );
        assert!(!out.ensure_delivery);
    }

    /// The attempt completes only once every downstream batch's ack fired; each address
    /// gets a copy of its own; a downstream failure asks for a retry.
    #[tokio::test]
    async fn an_attempt_is_delivered_when_every_downstream_ack_fired() {
        let bus = PipelineBus::new();
        let out = output(r#"send_to => ["left", "right"]"#, &bus).unwrap();
        let mut left = bus.listen("left").unwrap();
        let mut right = bus.listen("right").unwrap();
        let events = [event("one"), event("two")];
        let refs: Vec<&Event> = events.iter().collect();
        let send = out.send(&refs);
        tokio::pin!(send);
        let mut from_left = tokio::select! {
            b = left.recv() => b.unwrap(),
            _ = &mut send => panic!("the attempt ended before any downstream had the events"),
        };
        let from_right = tokio::select! {
            b = right.recv() => b.unwrap(),
            _ = &mut send => panic!("the attempt ended before the right pipeline had the events"),
        };
        from_left.events[0].insert_field("message", Value::String("changed".into()));
        assert_eq!(
            from_right.events[0].get_field("message"),
            Some(&Value::String("one".into())),
            "a downstream change leaked into another's copy"
        );
        drop(from_left);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), &mut send)
                .await
                .is_err(),
            "delivered while the right pipeline still held its copy"
        );
        drop(from_right);
        let outcome = tokio::time::timeout(Duration::from_secs(5), &mut send)
            .await
            .expect("the attempt did not end once both downstream acks fired")
            .unwrap();
        assert_eq!(outcome, Outcomes::Delivered);

        let send = out.send(&refs);
        tokio::pin!(send);
        let failed = tokio::select! {
            b = left.recv() => b.unwrap(),
            _ = &mut send => panic!("ended early"),
        };
        failed.fail();
        drop(failed);
        drop(right.recv().await);
        let outcome = send.await.unwrap();
        assert!(
            matches!(&outcome, Outcomes::RetryAll { reason, .. } if reason.code == "downstream_failed" && reason.message.contains("left")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn without_ensure_delivery_an_unlistened_address_is_dropped_and_counted() {
        let bus = PipelineBus::new();
        let out = output(
            r#"send_to => ["nobody-here"] ensure_delivery => false"#,
            &bus,
        )
        .unwrap();
        let counter = crate::metrics::get()
            .outputs
            .pipeline_dropped
            .get_or_create(&crate::metrics::label("address", "nobody-here"))
            .clone();
        let before = counter.get();
        let events = [event("one"), event("two")];
        let refs: Vec<&Event> = events.iter().collect();
        let outcome = tokio::time::timeout(Duration::from_secs(5), out.send(&refs))
            .await
            .expect("a send without ensure_delivery waited")
            .unwrap();
        assert_eq!(outcome, Outcomes::Delivered);
        assert_eq!(counter.get() - before, 2);
        out.close().await.unwrap();
        assert!(
            out.send(&refs).await.is_err(),
            "a closed output refuses to send"
        );
    }
}
