//! Pipeline workers: dedicated OS threads that pop batches, run the filters and hand the
//! batches to the outputs (Logstash's model).
//!
//! Filters are synchronous and CPU-bound. Run as tasks on the async runtime they would
//! hold its threads: a slow filter (`sleep`, an expensive grok) would starve listeners,
//! connections and the signal watcher, and the scheduler would not spread the workers
//! over the cores (two worker tasks can end up on one runtime thread while another
//! idles). So each worker is an OS thread of its own, and `-w` threads use `-w` cores.
//!
//! The queue and the delivery engine are async. A worker waits on them with
//! [`Handle::block_on`], which parks the worker's thread while the runtime's reactor
//! drives sockets and timers; no runtime thread is held. An output's own CPU work
//! (encoding a request) therefore runs on the worker thread too, as in Logstash, where
//! workers call the outputs.
//!
//! At the shutdown deadline (or a second signal) the outputs give up at once, so
//! workers drain the queue quickly, each output counting what it did not deliver; a
//! worker stuck inside a filter is left behind after [`ABORT_GRACE`], its batch counted
//! as not delivered.

use super::deliver::{Delivery, DeliveryError};
use super::tree::{route, run_filters, FilterNode, OutputNode};
use crate::batch::{Ack, Batch};
use crate::event::Event;
use crate::queue::Queue;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// How long workers get, once the deadline passed, to give up on their batches and
/// report; a worker still busy after that is stuck in a filter and is left behind.
pub const ABORT_GRACE: Duration = Duration::from_secs(1);

/// What every worker shares: the filter tree and the outputs.
pub struct Stages {
    pub filters: Vec<FilterNode>,
    pub outputs: Vec<Delivery>,
    pub output_tree: Vec<OutputNode>,
    /// Cancelled when an output's destination is gone for good.
    pub shutdown: CancellationToken,
    /// Cancelled at the shutdown deadline: outputs give up.
    pub abort: CancellationToken,
    /// `pipeline.id`: names the worker threads.
    pub pipeline_id: String,
    /// `pipeline.ordered` as resolved for this pipeline's worker count.
    pub ordered: bool,
    /// Events that left this pipeline's filters (the process-wide counter adds up every
    /// pipeline's): the pipeline's `out` in node stats.
    pub events_out: prometheus_client::metrics::counter::Counter,
}

/// How workers take batches from the queue (`pipeline.batch.size`, `.delay`).
#[derive(Debug, Clone, Copy)]
pub struct BatchShape {
    pub size: usize,
    pub delay: Duration,
}

/// What did not get through a worker.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Undelivered {
    /// Batches that failed (output error, deadline, panic, stuck filter).
    pub batches: usize,
    /// Events no output was asked for: held by a worker stuck in a filter. (Events an
    /// output gave up on are counted by that output.)
    pub unsent_events: u64,
}

impl std::ops::AddAssign for Undelivered {
    fn add_assign(&mut self, other: Undelivered) {
        self.batches += other.batches;
        self.unsent_events += other.unsent_events;
    }
}

/// One running worker thread.
struct Worker {
    n: usize,
    /// Fires with the worker's tally when it has drained the queue.
    finished: oneshot::Receiver<Undelivered>,
    /// Events of the batch the worker holds now (0 between batches).
    holding: Arc<AtomicUsize>,
}

/// The running worker threads.
pub struct Workers(Vec<Worker>);

/// Starts `count` worker threads on `queue`; they run until the queue is closed and
/// drained. `runtime` is the runtime the queue, inputs and outputs live on.
pub fn start(
    count: usize,
    queue: Arc<Queue>,
    stages: Arc<Stages>,
    shape: BatchShape,
    runtime: Handle,
) -> std::io::Result<Workers> {
    let mut workers = Vec::with_capacity(count);
    for n in 0..count {
        let (tx, finished) = oneshot::channel();
        let holding = Arc::new(AtomicUsize::new(0));
        let thread = WorkerThread {
            n,
            queue: queue.clone(),
            stages: stages.clone(),
            shape,
            runtime: runtime.clone(),
            holding: holding.clone(),
            flow: crate::metrics::PipelineFlow::of(&stages.pipeline_id),
        };
        // The caller's span (the pipeline's), so a worker's log lines name the pipeline.
        let span = tracing::Span::current();
        // Logstash's thread name; Linux keeps 15 bytes of it.
        std::thread::Builder::new()
            .name(format!("[{}]>worker{n}", stages.pipeline_id))
            .spawn(move || {
                let _in_span = span.enter();
                let tally = thread.run();
                let _ = tx.send(tally);
            })?;
        workers.push(Worker {
            n,
            finished,
            holding,
        });
    }
    Ok(Workers(workers))
}

impl Workers {
    /// Waits until every worker has drained the (closed) queue. Once `abort` fires,
    /// waits at most [`ABORT_GRACE`] more, then leaves the workers still busy behind
    /// (stuck in a filter) and counts their batches as not delivered.
    pub async fn join(self, abort: &CancellationToken) -> Undelivered {
        let mut total = Undelivered::default();
        let mut grace: Option<tokio::time::Instant> = None;
        for mut worker in self.0 {
            let joined = loop {
                match grace {
                    None => tokio::select! {
                        r = &mut worker.finished => break Some(r),
                        () = abort.cancelled() => {
                            grace = Some(tokio::time::Instant::now() + ABORT_GRACE);
                        }
                    },
                    Some(at) => break tokio::time::timeout_at(at, &mut worker.finished).await.ok(),
                }
            };
            match joined {
                Some(Ok(tally)) => total += tally,
                Some(Err(_)) => {
                    tracing::error!(worker = worker.n, "pipeline worker thread panicked");
                    total.batches += 1;
                }
                None => {
                    let events = worker.holding.load(Ordering::Acquire);
                    tracing::error!(
                        worker = worker.n,
                        events,
                        "a worker was still busy with its batch after the deadline (stuck in a filter?); its events were not delivered"
                    );
                    total.batches += usize::from(events > 0);
                    total.unsent_events += events as u64;
                }
            }
        }
        total
    }
}

/// What one worker thread owns.
struct WorkerThread {
    n: usize,
    queue: Arc<Queue>,
    stages: Arc<Stages>,
    shape: BatchShape,
    runtime: Handle,
    holding: Arc<AtomicUsize>,
    /// The pipeline's exported metrics.
    flow: crate::metrics::PipelineFlow,
}

impl WorkerThread {
    /// Pops batches until the queue is closed and drained. A panic in a filter or an
    /// output costs only its batch, which is then not acknowledged (its input does not
    /// confirm it), and the worker carries on.
    fn run(self) -> Undelivered {
        // Plugins may look the runtime up (`Handle::current`) from a filter.
        let _runtime = self.runtime.enter();
        let m = &self.flow;
        let mut tally = Undelivered::default();
        let (size, delay) = (self.shape.size, self.shape.delay);
        while let Some(batch) = self.runtime.block_on(self.queue.pop(size, delay)) {
            let depth = self.queue.fill();
            m.queue_events.set(depth.events as i64);
            m.queue_bytes.set(depth.bytes as i64);
            m.filter_events_in.inc_by(batch.len() as u64);
            self.holding.store(batch.len(), Ordering::Release);
            let guard = FailUnlessDone(batch.acks().to_vec());
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.process(batch)));
            self.holding.store(0, Ordering::Release);
            match outcome {
                Ok(true) => guard.done(),
                Ok(false) => {
                    m.batches_failed.inc();
                    tally.batches += 1;
                }
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(worker = self.n, panic = %message, "a filter or output panicked; its batch is not acknowledged");
                    m.batches_failed.inc();
                    tally.batches += 1;
                }
            }
        }
        tally
    }

    /// Runs one batch through the filters and outputs; false when an output failed.
    fn process(&self, mut batch: Batch) -> bool {
        let allocations = crate::recycle::allocations();
        let delivered = self.filter_and_deliver(&mut batch);
        batch.note_spent(crate::recycle::allocations().wrapping_sub(allocations));
        delivered
    }

    fn filter_and_deliver(&self, batch: &mut Batch) -> bool {
        let stages = &*self.stages;
        run_filters(&stages.filters, &mut batch.events, stages.ordered);
        self.flow
            .filter_events_out
            .inc_by(batch.events.len() as u64);
        stages.events_out.inc_by(batch.events.len() as u64);
        if batch.events.is_empty() {
            return true;
        }
        let delivered = self
            .runtime
            .block_on(deliver(self.n, &batch.events, stages));
        if !delivered {
            batch.fail();
        }
        delivered
    }
}

/// Hands `events` to every output the output section routes them to, concurrently;
/// false when one of them did not make its events safe.
async fn deliver(n: usize, events: &[Event], stages: &Stages) -> bool {
    let refs: Vec<&Event> = events.iter().collect();
    let mut lists: Vec<Vec<&Event>> = stages.outputs.iter().map(|_| Vec::new()).collect();
    route(&stages.output_tree, &refs, &mut lists);
    let sends = stages
        .outputs
        .iter()
        .zip(lists.iter())
        .filter(|(_, list)| !list.is_empty())
        .map(|(out, list)| async move {
            out.deliver(list, &stages.abort)
                .await
                .map_err(|e| (out.id.clone(), e))
        });
    let results = futures::future::join_all(sends).await;
    let mut delivered = true;
    for r in results {
        match r {
            Ok(()) => {}
            Err((_, DeliveryError::Aborted { .. })) => delivered = false,
            Err((id, DeliveryError::Output(e @ crate::outputs::OutputError::Closed(_)))) => {
                if !stages.shutdown.is_cancelled() {
                    tracing::warn!(output = %id, error = %e, "output destination closed; stopping the pipeline");
                    stages.shutdown.cancel();
                }
                delivered = false;
            }
            Err((id, e)) => {
                tracing::error!(worker = n, output = %id, error = %e, "output could not deliver a batch");
                delivered = false;
            }
        }
    }
    delivered
}

/// Fails the acks of a batch unless the batch was delivered: a panic unwinding through
/// the worker must not read as delivery.
struct FailUnlessDone(Vec<Ack>);

impl FailUnlessDone {
    fn done(mut self) {
        self.0.clear();
    }
}

impl Drop for FailUnlessDone {
    fn drop(&mut self) {
        for ack in &self.0 {
            ack.fail();
        }
    }
}
