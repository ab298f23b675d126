//! Queues between inputs and pipeline workers.

pub mod dlq;
pub mod memory;

pub use memory::{MemoryQueue, QueueClosed};
