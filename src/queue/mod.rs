//! Queues between inputs and pipeline workers.

pub mod dlq;
pub mod memory;
pub mod segment;

pub use memory::{MemoryQueue, QueueClosed};
