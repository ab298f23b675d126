//! The bounded in-memory queue. Bounded in events and in bytes: a full queue makes
//! `push` wait, which is how back-pressure reaches inputs (and through them, clients).
//!
//! A batch is admitted while the queue is below both bounds, so the queue holds at
//! most its bound plus one input batch (a Beats window can be larger than the bound and
//! must never wait for the queue to run completely dry).

use crate::batch::Batch;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// The queue was closed: the pipeline is shutting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("queue closed")]
pub struct QueueClosed;

#[derive(Default)]
struct State {
    batches: VecDeque<Batch>,
    events: usize,
    bytes: usize,
    closed: bool,
    /// Pushes waiting for room: while any wait, a worker does not hold out for a fuller
    /// batch, since nothing more can arrive until it takes some.
    blocked_writers: usize,
}

/// A multi-producer, multi-consumer queue of batches.
pub struct MemoryQueue {
    state: Mutex<State>,
    readable: Notify,
    writable: Notify,
    max_events: usize,
    max_bytes: usize,
}

/// Keeps `blocked_writers` right however a waiting push ends.
struct BlockedWriter<'a> {
    queue: &'a MemoryQueue,
    counted: bool,
}

impl Drop for BlockedWriter<'_> {
    fn drop(&mut self) {
        if self.counted {
            self.queue.lock().blocked_writers -= 1;
        }
    }
}

/// A snapshot of the queue's fill, for stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    pub events: usize,
    pub bytes: usize,
}

impl MemoryQueue {
    pub fn new(max_events: usize, max_bytes: usize) -> MemoryQueue {
        MemoryQueue {
            state: Mutex::new(State::default()),
            readable: Notify::new(),
            writable: Notify::new(),
            max_events: max_events.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the deque inconsistent (every
        // critical section is a few field updates), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a batch, waiting while the queue is at or over one of its bounds.
    pub async fn push(&self, batch: Batch) -> Result<(), QueueClosed> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut batch = Some(batch);
        // Counts this push as blocked until it returns or is dropped (cancelled).
        let mut blocked = BlockedWriter {
            queue: self,
            counted: false,
        };
        loop {
            let notified = self.writable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.lock();
                if s.closed {
                    return Err(QueueClosed);
                }
                let Some(b) = batch.take() else {
                    return Ok(());
                };
                if s.events < self.max_events && s.bytes < self.max_bytes {
                    s.events += b.len();
                    s.bytes += b.bytes();
                    s.batches.push_back(b);
                    drop(s);
                    self.readable.notify_one();
                    return Ok(());
                }
                if !blocked.counted {
                    blocked.counted = true;
                    s.blocked_writers += 1;
                    drop(s);
                    // A worker may be waiting out its batch delay: wake it.
                    self.readable.notify_waiters();
                }
                batch = Some(b);
            }
            notified.await;
        }
    }

    /// Takes up to `max` events. Waits for the first event; then, while fewer than `max`
    /// are at hand, waits up to `delay` for more (Logstash's `pipeline.batch.delay`).
    /// Returns `None` once the queue is closed and empty.
    pub async fn pop(&self, max: usize, delay: Duration) -> Option<Batch> {
        let mut out = self.pop_ready(max).await?;
        if out.len() < max && !delay.is_zero() {
            let deadline = tokio::time::Instant::now() + delay;
            while out.len() < max {
                let notified = self.readable.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(more) = self.try_take(max - out.len()) {
                    out.merge(more);
                    continue;
                }
                {
                    let s = self.lock();
                    if s.closed || s.blocked_writers > 0 {
                        break;
                    }
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    break;
                }
            }
        }
        Some(out)
    }

    async fn pop_ready(&self, max: usize) -> Option<Batch> {
        loop {
            let notified = self.readable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(b) = self.try_take(max) {
                return Some(b);
            }
            if self.lock().closed {
                return None;
            }
            notified.await;
        }
    }

    /// Takes up to `max` events without waiting.
    fn try_take(&self, max: usize) -> Option<Batch> {
        let mut s = self.lock();
        let mut out: Option<Batch> = None;
        while out.as_ref().map_or(0, Batch::len) < max {
            let Some(front) = s.batches.front_mut() else {
                break;
            };
            let want = max - out.as_ref().map_or(0, Batch::len);
            let piece = if front.len() <= want {
                match s.batches.pop_front() {
                    Some(b) => b,
                    None => break,
                }
            } else {
                front.split_front(want)
            };
            s.events -= piece.len();
            s.bytes = s.bytes.saturating_sub(piece.bytes());
            match out.as_mut() {
                Some(o) => o.merge(piece),
                None => out = Some(piece),
            }
        }
        let more_left = !s.batches.is_empty();
        drop(s);
        if out.is_some() {
            self.writable.notify_waiters();
            if more_left {
                // Another worker may take the rest.
                self.readable.notify_one();
            }
        }
        out
    }

    /// Closes the queue: pushes fail, pops drain what is left and then return `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.readable.notify_waiters();
        self.writable.notify_waiters();
    }

    pub fn stats(&self) -> QueueStats {
        let s = self.lock();
        QueueStats {
            events: s.events,
            bytes: s.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Ack;
    use crate::event::Event;
    use std::sync::Arc;

    fn batch(n: usize) -> Batch {
        Batch::with_bytes((0..n).map(|_| Event::new()).collect(), Ack::none(), n * 10)
    }

    #[tokio::test]
    async fn pops_in_order_and_splits_large_batches() {
        let q = MemoryQueue::new(1000, 1 << 20);
        q.push(batch(300)).await.unwrap();
        let b = q.pop(125, Duration::ZERO).await.unwrap();
        assert_eq!(b.len(), 125);
        assert_eq!(q.stats().events, 175);
        q.close();
        assert_eq!(q.pop(125, Duration::ZERO).await.unwrap().len(), 125);
        assert_eq!(q.pop(125, Duration::ZERO).await.unwrap().len(), 50);
        assert!(q.pop(125, Duration::ZERO).await.is_none());
        assert_eq!(q.push(batch(1)).await, Err(QueueClosed));
    }

    #[tokio::test]
    async fn a_full_queue_makes_push_wait() {
        let q = Arc::new(MemoryQueue::new(10, 1 << 20));
        q.push(batch(10)).await.unwrap();
        let q2 = q.clone();
        let pusher = tokio::spawn(async move { q2.push(batch(5)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !pusher.is_finished(),
            "push must wait while the queue is full"
        );
        assert_eq!(q.pop(10, Duration::ZERO).await.unwrap().len(), 10);
        pusher.await.unwrap().unwrap();
        assert_eq!(q.stats().events, 5);
    }

    #[tokio::test]
    async fn byte_limit_also_applies() {
        let q = Arc::new(MemoryQueue::new(1000, 100));
        q.push(batch(10)).await.unwrap(); // 100 bytes
        let q2 = q.clone();
        let pusher = tokio::spawn(async move { q2.push(batch(1)).await });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!pusher.is_finished());
        q.pop(1000, Duration::ZERO).await.unwrap();
        pusher.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_large_batch_enters_while_there_is_room_and_cancelled_pushes_unblock() {
        let q = Arc::new(MemoryQueue::new(100, 1 << 20));
        q.push(batch(60)).await.unwrap();
        // Below the bound: a batch larger than the room left still enters.
        q.push(batch(2048)).await.unwrap();
        assert_eq!(q.stats().events, 2108);
        // At the bound: the next push waits; cancelling it must not leave it counted.
        let waiting = tokio::time::timeout(Duration::from_millis(20), q.push(batch(1))).await;
        assert!(waiting.is_err());
        assert_eq!(q.lock().blocked_writers, 0);
    }

    #[tokio::test]
    async fn a_blocked_writer_cuts_the_batch_delay_short() {
        let q = Arc::new(MemoryQueue::new(10, 1 << 20));
        q.push(batch(10)).await.unwrap();
        let q2 = q.clone();
        let pusher = tokio::spawn(async move { q2.push(batch(10)).await });
        while q.lock().blocked_writers == 0 {
            tokio::task::yield_now().await;
        }
        // Asks for more than is there with an hour of delay: returns what is there,
        // because the writer cannot add anything until this pop makes room.
        let got = q.pop(100, Duration::from_secs(3600)).await.unwrap();
        assert_eq!(got.len(), 10);
        pusher.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn delay_gathers_a_fuller_batch() {
        let q = Arc::new(MemoryQueue::new(1000, 1 << 20));
        q.push(batch(3)).await.unwrap();
        let q2 = q.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            q2.push(batch(4)).await.unwrap();
        });
        let b = q.pop(7, Duration::from_millis(500)).await.unwrap();
        assert_eq!(b.len(), 7);
    }
}
