//! The runtime: starts inputs and workers, runs batches through filters and outputs,
//! and shuts down without losing what was accepted.
//!
//! Workers are OS threads ([`workers`]); the runtime `run` builds is for IO only:
//! inputs, output connections, timers and the signal watcher.
//!
//! Shutdown order: inputs stop (their source ended, or a signal asked), then the queue
//! closes, workers drain it through filters and outputs, outputs close, and `run`
//! returns.
//!
//! A shutdown that was asked for (a signal, a failed input, a closed output) has a
//! deadline, `--shutdown.timeout`: once it passes, or at a second signal, the delivery
//! engine gives up on whatever it has not delivered. Those batches fail (their inputs
//! do not confirm them: a Beats client resends), the count of events each output did
//! not deliver is logged, and `run` returns an error (a non-zero exit). Nothing is lost
//! without a count.

pub mod build;
pub mod condition;
pub mod deliver;
pub mod published;
pub mod tree;
pub mod workers;

use crate::config::{self, Error as ConfigError};
use crate::inputs::InputContext;
use crate::plugin::{PipelineBus, PluginContext};
use crate::queue::Queue;
use crate::settings::Settings;
use build::{compile, CompiledPipeline};
use deliver::{DeadLetterSettings, Delivery};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use workers::{BatchShape, Stages};

/// Why a pipeline could not run to completion.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Settings that do not fit together (`pipeline.ordered: true` with several workers).
    #[error("pipeline {id}: {message}")]
    Settings { id: String, message: String },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("input {id} failed: {message}")]
    Input { id: String, message: String },
    #[error("{events} event(s) in {batches} batch(es) were not delivered")]
    Undelivered { events: u64, batches: usize },
    #[error(transparent)]
    Queue(#[from] crate::queue::PersistedError),
    /// One pipeline of several failed (the others ran on).
    #[error("pipeline {id}: {source}")]
    Pipeline {
        id: String,
        #[source]
        source: Box<Error>,
    },
}

/// Loads, checks and compiles the configuration `settings` names.
pub fn load(settings: &Settings) -> Result<CompiledPipeline, ConfigError> {
    load_on(settings, &PipelineBus::new())
}

/// [`load`], with the pipeline's `pipeline` inputs and outputs on `bus` (every
/// pipeline of one run shares one).
pub fn load_on(settings: &Settings, bus: &PipelineBus) -> Result<CompiledPipeline, ConfigError> {
    let ast = config::load(&settings.source, settings.support_escapes)?;
    let mut context = PluginContext::from_settings(settings);
    context.bus = bus.clone();
    compile(&ast, Arc::new(context))
}

/// Checks and compiles every pipeline of a run on one bus (what `-t` checks and what
/// [`run_all`] starts). The error names the pipeline when there are several.
pub fn load_all(pipelines: &[Settings], bus: &PipelineBus) -> Result<Vec<CompiledPipeline>, Error> {
    let named = |id: &str, e: Error| {
        if pipelines.len() > 1 {
            Error::Pipeline {
                id: id.to_string(),
                source: Box::new(e),
            }
        } else {
            e
        }
    };
    let mut compiled: Vec<CompiledPipeline> = Vec::with_capacity(pipelines.len());
    for settings in pipelines {
        let id = &settings.pipeline_id;
        settings.validate().map_err(|message| Error::Settings {
            id: id.clone(),
            message,
        })?;
        let pipeline = pipeline_span(id)
            .in_scope(|| load_on(settings, bus))
            .map_err(|e| named(id, e.into()))?;
        for (other, earlier) in pipelines.iter().zip(&compiled) {
            let mut shared: Vec<&String> = pipeline.ids.intersection(&earlier.ids).collect();
            shared.sort();
            if !shared.is_empty() {
                tracing::warn!(
                    pipeline_id = %id,
                    other_pipeline_id = %other.pipeline_id,
                    plugin_ids = ?shared,
                    "plugin ids used in two pipelines: their metrics and node stats add up; give each plugin its own id"
                );
            }
        }
        compiled.push(pipeline);
    }
    Ok(compiled)
}

/// The span every log line of the pipeline is written in, so each line names it. Its
/// level is `error` only so that no `--log.level` filters it out: a span disabled by the
/// level would leave the lines inside it without their ids.
pub fn pipeline_span(pipeline_id: &str) -> tracing::Span {
    tracing::error_span!("pipeline", pipeline_id = pipeline_id)
}

/// The span of one plugin's work: its log lines name the pipeline and the plugin (at
/// level `error` for the reason [`pipeline_span`] gives).
pub fn plugin_span(pipeline_id: &str, id: &str, name: &str) -> tracing::Span {
    tracing::error_span!(
        "plugin",
        pipeline_id = pipeline_id,
        plugin_id = id,
        plugin = name
    )
}

/// Runs the pipeline `settings` describe until its inputs finish or a signal stops it.
pub fn run(settings: Settings) -> Result<(), Error> {
    run_all(vec![settings])
}

/// Runs every pipeline of a run (pipelines.yml) in one process, each with its own queue
/// and workers, until all have stopped. Their `pipeline` inputs and outputs share one
/// bus. A signal stops them all; a failing input stops only its own pipeline. The
/// result is the first failure (each is logged with its pipeline id).
pub fn run_all(pipelines: Vec<Settings>) -> Result<(), Error> {
    let bus = PipelineBus::new();
    let compiled = load_all(&pipelines, &bus)?;
    // IO only (filters run on the workers' own threads): tokio's default of one thread
    // per core, since inputs decode (JSON, Beats frames) on it; idle threads cost nothing.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("sluice-io")
        // Inputs build events on these threads: the events come back here to be freed
        // (see `recycle`) when a thread next builds a batch or parks.
        .on_thread_start(crate::recycle::make_home)
        .on_thread_park(crate::recycle::away)
        .on_thread_unpark(crate::recycle::back)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let several = pipelines.len() > 1;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let abort = CancellationToken::new();
        tokio::spawn(watch_signals(shutdown.clone(), abort.clone()));
        // Frees the events returned to input threads that went idle (see `recycle`).
        let sweeper = tokio::spawn(crate::recycle::sweep_forever());
        let mut running = tokio::task::JoinSet::new();
        for (pipeline, settings) in compiled.into_iter().zip(pipelines) {
            let span = pipeline_span(&settings.pipeline_id);
            let (shutdown, abort) = (shutdown.child_token(), abort.child_token());
            running.spawn(
                async move {
                    let outcome = run_pipeline_until(pipeline, &settings, shutdown, abort).await;
                    (settings.pipeline_id, outcome)
                }
                .instrument(span),
            );
        }
        let mut first = None;
        while let Some(joined) = running.join_next().await {
            let (id, outcome) = match joined {
                Ok(done) => done,
                Err(e) => (
                    "unknown".to_string(),
                    Err(Error::Input {
                        id: "pipeline".into(),
                        message: e.to_string(),
                    }),
                ),
            };
            if let Err(e) = outcome {
                if several {
                    tracing::error!(pipeline_id = %id, error = %e, "pipeline stopped with an error");
                    first.get_or_insert(Error::Pipeline {
                        id,
                        source: Box::new(e),
                    });
                } else {
                    first.get_or_insert(e);
                }
            }
        }
        sweeper.abort();
        first.map_or(Ok(()), Err)
    })
}

/// First signal: stop inputs and drain. Second: give up on undelivered events now (they
/// are counted and logged as at the deadline). Third: exit at once.
async fn watch_signals(shutdown: CancellationToken, abort: CancellationToken) {
    let mut count = 0;
    loop {
        if !wait_for_signal().await {
            return;
        }
        count += 1;
        match count {
            1 => {
                tracing::info!("signal received: stopping inputs and draining in-flight events");
                shutdown.cancel();
            }
            2 => {
                tracing::warn!("second signal received: failing the events not yet delivered");
                shutdown.cancel();
                abort.cancel();
            }
            _ => {
                tracing::error!("third signal received: exiting now without a delivery report");
                std::process::exit(1);
            }
        }
    }
}

/// Fires `abort` once `shutdown` has been asked for `timeout` ago.
async fn shutdown_deadline(
    shutdown: CancellationToken,
    abort: CancellationToken,
    timeout: Option<Duration>,
) {
    shutdown.cancelled().await;
    let Some(timeout) = timeout else { return };
    tokio::select! {
        _ = abort.cancelled() => {}
        _ = tokio::time::sleep(timeout) => {
            tracing::warn!(
                timeout_secs = timeout.as_secs_f64(),
                "shutdown timeout reached: failing the events not yet delivered"
            );
            abort.cancel();
        }
    }
}

#[cfg(unix)]
async fn wait_for_signal() -> bool {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers");
        return false;
    };
    tokio::select! {
        _ = term.recv() => true,
        _ = int.recv() => true,
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> bool {
    tokio::signal::ctrl_c().await.is_ok()
}

/// Runs a compiled pipeline on the current runtime until inputs finish or `shutdown`
/// fires, then drains (within `--shutdown.timeout` once `shutdown` fired).
pub async fn run_pipeline(
    pipeline: CompiledPipeline,
    settings: &Settings,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    run_pipeline_until(pipeline, settings, shutdown, CancellationToken::new()).await
}

/// [`run_pipeline`], where `abort` also gives up on undelivered events at once.
pub async fn run_pipeline_until(
    pipeline: CompiledPipeline,
    settings: &Settings,
    shutdown: CancellationToken,
    abort: CancellationToken,
) -> Result<(), Error> {
    let CompiledPipeline {
        ids: _,
        inputs,
        filters,
        outputs,
        output_tree,
    } = pipeline;
    let queue = Arc::new(Queue::from_settings(settings)?);
    let dead_letters = DeadLetterSettings {
        dir: crate::queue::dlq::queue_dir(&settings.data_dir, &settings.pipeline_id),
        max_bytes: settings.dlq_max_bytes,
        policy: settings.dlq_storage_policy,
    };
    let outputs = outputs
        .into_iter()
        .map(|o| {
            Delivery::new(
                &settings.pipeline_id,
                o.id,
                o.name,
                o.output,
                dead_letters.clone(),
            )
        })
        .collect();
    let stages = Arc::new(Stages {
        filters,
        outputs,
        output_tree,
        shutdown: shutdown.clone(),
        abort: abort.clone(),
        pipeline_id: settings.pipeline_id.clone(),
        ordered: settings.is_ordered(),
        events_out: Default::default(),
    });
    published::publish(&inputs, &stages, settings, queue.clone());
    // Whatever way this future ends (a caller may drop it), worker threads must not
    // wait on the queue forever.
    let _stop = StopOnDrop {
        queue: queue.clone(),
        abort: abort.clone(),
    };
    let shape = BatchShape {
        size: settings.batch_size.max(1),
        delay: settings.batch_delay,
    };
    let workers = workers::start(
        settings.workers.max(1),
        queue.clone(),
        stages.clone(),
        shape,
        tokio::runtime::Handle::current(),
    )
    .map_err(Error::Runtime)?;
    let deadline = tokio::spawn(
        shutdown_deadline(shutdown.clone(), abort.clone(), settings.shutdown_timeout)
            .in_current_span(),
    );

    let mut running = tokio::task::JoinSet::new();
    for input in inputs {
        let ctx = InputContext::new(&input.id, queue.clone(), shutdown.clone(), input.decorator);
        let id = input.id.clone();
        let span = plugin_span(&settings.pipeline_id, &id, &input.name);
        span.in_scope(|| tracing::info!(input = %id, plugin = %input.name, "starting input"));
        running.spawn(async move { (id, input.input.run(ctx).await) }.instrument(span));
    }
    let mut failure = None;
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok((id, Ok(()))) => tracing::debug!(input = %id, "input finished"),
            Ok((id, Err(e))) => {
                tracing::error!(input = %id, error = %e, "input failed; stopping the pipeline");
                failure.get_or_insert(Error::Input {
                    id,
                    message: e.to_string(),
                });
                shutdown.cancel();
            }
            Err(e) => {
                tracing::error!(error = %e, "input task panicked; stopping the pipeline");
                failure.get_or_insert(Error::Input {
                    id: "unknown".into(),
                    message: e.to_string(),
                });
                shutdown.cancel();
            }
        }
    }

    queue.close();
    let mut undelivered = workers.join(&abort).await;
    deadline.abort();
    if let Queue::Memory(q) = &*queue {
        // Left in memory behind a worker stuck in a filter (zero once the workers drained
        // it). What waits in a persisted queue stays on disk for the next run.
        let waiting = q.stats().events;
        if waiting > 0 {
            tracing::error!(
                events = waiting,
                "events left in the queue behind a stuck worker; their inputs were not told they were delivered"
            );
            undelivered.unsent_events += waiting as u64;
        }
    }
    let mut events = undelivered.unsent_events;
    for out in &stages.outputs {
        if let Err(e) = out.close().await {
            tracing::error!(output = %out.id, error = %e, "output failed to close");
        }
        let n = out.undelivered();
        if n > 0 {
            tracing::error!(
                output = %out.id,
                events = n,
                "events not delivered by this output; their inputs were not told they were (a client that resends will send them again)"
            );
            events += n;
        }
    }
    tracing::info!(pipeline_id = %settings.pipeline_id, "pipeline stopped");
    match failure {
        Some(e) => Err(e),
        None if undelivered.batches > 0 || events > 0 => Err(Error::Undelivered {
            events,
            batches: undelivered.batches,
        }),
        None => Ok(()),
    }
}

/// Closes the queue and gives up on delivery when the pipeline's future ends, however
/// it ends: worker threads then drain and stop instead of waiting forever.
struct StopOnDrop {
    queue: Arc<Queue>,
    abort: CancellationToken,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.queue.close();
        self.abort.cancel();
    }
}
