//! Queues between inputs and pipeline workers, and the dead letter queue.
//!
//! [`Queue`] is the one type inputs push to and workers pop from; it is the memory
//! queue (`--queue.type memory`, the default) or the persisted queue
//! (`--queue.type persisted`). An enum rather than a trait object, so the memory queue's
//! hot path stays a direct call.

pub mod dlq;
pub mod memory;
pub mod persisted;
pub mod record;
pub mod segment;

pub use memory::{MemoryQueue, QueueClosed};
pub use persisted::{PersistedConfig, PersistedError, PersistedQueue};

use crate::batch::Batch;
use std::time::Duration;
use tokio::sync::watch;

/// What a pipelined push leaves to wait for: the sync that makes its batch durable.
/// Waiting for the last one a producer got covers all its earlier ones (syncs cover
/// every record written before them).
#[must_use = "a producer that tells its client anything must wait for durability first"]
pub struct Durable(Option<(watch::Receiver<u64>, u64)>);

impl Durable {
    /// Already as safe as the queue makes it.
    pub fn now() -> Durable {
        Durable(None)
    }

    /// Durable once the queue's count of synced writes reaches `seq`.
    pub(crate) fn after(synced: watch::Receiver<u64>, seq: u64) -> Durable {
        Durable(Some((synced, seq)))
    }

    /// Waits for the sync. Err when the queue stopped before it.
    pub async fn wait(self) -> Result<(), QueueClosed> {
        match self.0 {
            None => Ok(()),
            Some((mut rx, seq)) => rx
                .wait_for(|&done| done >= seq)
                .await
                .map(|_| ())
                .map_err(|_| QueueClosed),
        }
    }
}

/// The persisted queue's configuration from the settings.
fn persisted_config(settings: &crate::settings::Settings) -> PersistedConfig {
    let dir = settings
        .queue_path
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("queue"));
    let mut cfg = PersistedConfig::new(dir);
    cfg.pipeline_id = settings.pipeline_id.clone();
    cfg.page_capacity = settings.queue_page_capacity.max(4096);
    cfg.max_bytes = settings.queue_disk_max_bytes.max(1);
    cfg.checkpoint_writes = settings.queue_checkpoint_writes.max(1);
    cfg.checkpoint_interval = settings.queue_checkpoint_interval;
    cfg.memory_window = settings
        .queue_memory_window
        .unwrap_or_else(|| PersistedConfig::default_memory_window(cfg.max_bytes));
    cfg
}

/// The queue between inputs and workers.
pub enum Queue {
    Memory(MemoryQueue),
    Persisted(PersistedQueue),
}

/// A snapshot of the queue's fill, for stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFill {
    /// Events waiting in memory.
    pub events: usize,
    /// Bytes waiting: in memory (memory queue) or pages on disk (persisted queue).
    pub bytes: u64,
}

impl Queue {
    /// The queue `settings` ask for. Opening a persisted queue recovers what an earlier
    /// run left and locks its directory against a second process.
    pub fn from_settings(settings: &crate::settings::Settings) -> Result<Queue, PersistedError> {
        use crate::settings::QueueType;
        Ok(match settings.queue_type {
            QueueType::Memory => Queue::Memory(MemoryQueue::new(
                settings.queue_max_events,
                settings.queue_max_bytes,
            )),
            QueueType::Persisted => {
                Queue::Persisted(PersistedQueue::open(persisted_config(settings))?)
            }
        })
    }

    /// Adds a batch, waiting while the queue is full. Once this returns Ok the queue
    /// answers for the events: the memory queue passes the batch's acks on to the
    /// outputs; the persisted queue fires them once the batch is written (and synced,
    /// per `queue.checkpoint.writes`).
    pub async fn push(&self, batch: Batch) -> Result<(), QueueClosed> {
        match self {
            Queue::Memory(q) => q.push(batch).await,
            Queue::Persisted(q) => q.push(batch).await,
        }
    }

    /// As [`Queue::push`], but returns once the batch is written, before it is synced
    /// (see [`PersistedQueue::push_pipelined`]); the batch's acks still fire only once
    /// it is durable.
    pub async fn push_pipelined(&self, batch: Batch) -> Result<Durable, QueueClosed> {
        match self {
            Queue::Memory(q) => q.push(batch).await.map(|()| Durable::now()),
            Queue::Persisted(q) => q.push_pipelined(batch).await,
        }
    }

    /// Takes up to `max` events, waiting for the first and up to `delay` for more.
    /// `None` once the queue is closed and drained.
    pub async fn pop(&self, max: usize, delay: Duration) -> Option<Batch> {
        match self {
            Queue::Memory(q) => q.pop(max, delay).await,
            Queue::Persisted(q) => q.pop(max, delay).await,
        }
    }

    /// Refuses further pushes; pops drain what is left, then end.
    pub fn close(&self) {
        match self {
            Queue::Memory(q) => q.close(),
            Queue::Persisted(q) => q.close(),
        }
    }

    pub fn fill(&self) -> QueueFill {
        match self {
            Queue::Memory(q) => {
                let s = q.stats();
                QueueFill {
                    events: s.events,
                    bytes: s.bytes as u64,
                }
            }
            Queue::Persisted(q) => {
                let s = q.stats();
                QueueFill {
                    events: s.memory_events,
                    bytes: s.disk_bytes,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    #[test]
    fn the_memory_window_is_a_quarter_of_the_disk_bound_at_most_16_mib_unless_set() {
        let mut s = Settings::default();
        assert_eq!(persisted_config(&s).memory_window, 16 << 20);
        s.queue_disk_max_bytes = 1 << 20;
        assert_eq!(persisted_config(&s).memory_window, 256 << 10);
        s.queue_memory_window = Some(5 << 20);
        assert_eq!(persisted_config(&s).memory_window, 5 << 20);
    }
}
