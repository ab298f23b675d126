//! `pipeline` input: receives what `pipeline` outputs of other pipelines of this process
//! send to its `address` (Logstash's pipeline-to-pipeline communication).
//!
//! The address is claimed when the input is built, so two inputs of one run cannot
//! listen on the same address (a load-time error, also under `-t`). Batches arrive with
//! their upstream ack: pushed into this pipeline's queue, they are acked the way every
//! batch of this pipeline is (persisted queue: once written; memory queue: once this
//! pipeline's outputs delivered them), and only then does the upstream output learn
//! they are safe.
//!
//! When it stops: once every upstream output that names the address has gone (their
//! pipelines finished), or, at a shutdown, once they have (so upstream pipelines drain
//! into this one before it closes its queue). An input nobody writes to stops at the
//! shutdown.

use super::{Input, InputContext, InputError};
use crate::config::Error;
use crate::plugin::bus::BusListener;
use crate::plugin::Options;

pub struct PipelineInput {
    listener: BusListener,
}

impl PipelineInput {
    pub fn build(opts: &mut Options) -> Result<PipelineInput, Error> {
        let pos = opts.value_pos("address");
        let address = opts.required_string("address")?;
        if address.is_empty() {
            return Err(opts.option_error("address", &pos, "must not be empty"));
        }
        // Accepted as Logstash accepts them; events cross as events, never encoded.
        let _ = opts.codec()?;
        let listener = opts
            .context()
            .bus
            .listen(&address)
            .map_err(|e| opts.option_error("address", &pos, e))?;
        Ok(PipelineInput { listener })
    }
}

#[async_trait::async_trait]
impl Input for PipelineInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        let mut listener = self.listener;
        let mut writers = listener.writer_count();
        let had_writers = writers.get() > 0;
        tracing::info!(address = %listener.address(), writers = writers.get(), "listening on pipeline address");
        let mut stopping = false;
        loop {
            tokio::select! {
                biased;
                batch = listener.recv() => match batch {
                    Some(batch) => {
                        if !push(&ctx, batch).await {
                            break;
                        }
                    }
                    None => break,
                },
                () = ctx.shutdown().cancelled(), if !stopping => {
                    stopping = true;
                    if writers.get() > 0 {
                        tracing::info!(address = %listener.address(), writers = writers.get(), "waiting for upstream pipelines to drain before stopping");
                    }
                }
                () = writers.none(), if stopping || had_writers => break,
            }
        }
        // Nothing can be written any more; what already crossed is pushed.
        listener.close();
        while let Some(batch) = listener.try_recv() {
            if !push(&ctx, batch).await {
                break;
            }
        }
        Ok(())
    }
}

/// Pushes one batch from upstream; false when this pipeline's queue has closed. The
/// batch then fails, so its upstream output does not take it as safe.
async fn push(ctx: &InputContext, batch: crate::batch::Batch) -> bool {
    let acks = batch.acks().to_vec();
    let pushed = ctx.push(batch).await.is_ok();
    if !pushed {
        tracing::warn!("queue closed: a batch from an upstream pipeline is failed back to it");
        for ack in &acks {
            ack.fail();
        }
    }
    pushed
}
