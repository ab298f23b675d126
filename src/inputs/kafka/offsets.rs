//! Which offsets the `kafka` input may commit: the end of the longest run of batches,
//! from the oldest, whose acks fired Delivered, per partition.
//!
//! Batches of one partition can be acknowledged out of order (several pipeline
//! workers), so committing a batch's own offset when its ack fires could skip an
//! earlier batch still in flight; after a crash that batch would be lost. Each
//! partition keeps its batches in the order they were read and only the front of that
//! line moves the committable offset. A batch that failed (shutdown deadline) stops its
//! partition's line for good: nothing after it is committed, so a restart replays it.
//!
//! Bound: one entry per in-flight batch and partition, and in-flight batches are
//! bounded by the pipeline queue plus the batches the workers hold.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// A topic and partition.
pub type PartitionKey = (String, i32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    InFlight,
    Delivered,
    Failed,
}

#[derive(Debug, Default)]
struct Partition {
    /// (batch id, offset to commit once this batch is safe, state), oldest first.
    line: VecDeque<(u64, i64, State)>,
    /// The highest offset safe to commit (the next one to read).
    committable: Option<i64>,
    /// The offset last committed to the group.
    committed: Option<i64>,
    /// Set once when a batch failed, so the warning is logged once.
    stuck: bool,
}

/// Shared between the consumer thread (which registers batches and commits) and the
/// acks (which fire on pipeline worker threads).
#[derive(Debug, Default)]
pub struct Tracker {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    partitions: HashMap<PartitionKey, Partition>,
    next_batch: u64,
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data, still consistent enough to
        // decide what to commit.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a batch that read up to `next_offsets` (the offset after its last
    /// message) in each partition; returns its id for [`Tracker::complete`].
    pub fn begin(&self, next_offsets: &[(PartitionKey, i64)]) -> u64 {
        let mut inner = self.lock();
        let id = inner.next_batch;
        inner.next_batch += 1;
        for (key, next) in next_offsets {
            inner
                .partitions
                .entry(key.clone())
                .or_default()
                .line
                .push_back((id, *next, State::InFlight));
        }
        id
    }

    /// Records the end of batch `id` in `partitions`. Acks of partitions released
    /// since (rebalance) are ignored: their batch is no longer in any line.
    pub fn complete(&self, id: u64, partitions: &[PartitionKey], delivered: bool) {
        let mut inner = self.lock();
        for key in partitions {
            let Some(p) = inner.partitions.get_mut(key) else {
                continue;
            };
            if let Some(entry) = p.line.iter_mut().find(|(b, _, _)| *b == id) {
                entry.2 = if delivered {
                    State::Delivered
                } else {
                    State::Failed
                };
            }
            while let Some((_, next, State::Delivered)) = p.line.front().copied() {
                p.committable = Some(next);
                p.line.pop_front();
            }
            if matches!(p.line.front(), Some((_, _, State::Failed))) && !p.stuck {
                p.stuck = true;
                tracing::warn!(
                    topic = %key.0,
                    partition = key.1,
                    "a batch was not delivered; offsets of this partition are no longer \
                     committed, so its events are read again after a restart or rebalance"
                );
            }
        }
    }

    /// Offsets that are safe and not yet committed.
    pub fn ready(&self) -> Vec<(PartitionKey, i64)> {
        let inner = self.lock();
        inner
            .partitions
            .iter()
            .filter_map(|(k, p)| match (p.committable, p.committed) {
                (Some(c), Some(done)) if c <= done => None,
                (Some(c), _) => Some((k.clone(), c)),
                _ => None,
            })
            .collect()
    }

    /// Remembers that `offsets` were committed.
    pub fn committed(&self, offsets: &[(PartitionKey, i64)]) {
        let mut inner = self.lock();
        for (k, off) in offsets {
            if let Some(p) = inner.partitions.get_mut(k) {
                p.committed = Some(p.committed.map_or(*off, |c| c.max(*off)));
            }
        }
    }

    /// Batches still in flight in `partitions` (all partitions when `None`).
    pub fn in_flight(&self, partitions: Option<&[PartitionKey]>) -> usize {
        let inner = self.lock();
        let count = |p: &Partition| p.line.iter().filter(|e| e.2 == State::InFlight).count();
        match partitions {
            Some(keys) => keys
                .iter()
                .filter_map(|k| inner.partitions.get(k))
                .map(count)
                .sum(),
            None => inner.partitions.values().map(count).sum(),
        }
    }

    /// Forgets `partitions` (revoked): late acks for them change nothing.
    pub fn release(&self, partitions: &[PartitionKey]) {
        let mut inner = self.lock();
        for k in partitions {
            inner.partitions.remove(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: i32) -> PartitionKey {
        ("t".to_string(), p)
    }

    #[test]
    fn commits_only_the_acknowledged_prefix_of_each_partition() {
        let t = Tracker::default();
        let a = t.begin(&[(key(0), 10), (key(1), 5)]);
        let b = t.begin(&[(key(0), 20)]);
        let c = t.begin(&[(key(0), 30), (key(1), 9)]);
        // The middle batch first: nothing of partition 0 may be committed yet.
        t.complete(b, &[key(0)], true);
        assert!(t.ready().is_empty());
        t.complete(a, &[key(0), key(1)], true);
        let mut r = t.ready();
        r.sort();
        assert_eq!(r, vec![(key(0), 20), (key(1), 5)]);
        t.committed(&r);
        assert!(t.ready().is_empty());
        assert_eq!(t.in_flight(None), 2);
        assert_eq!(t.in_flight(Some(&[key(1)])), 1);
        t.complete(c, &[key(0), key(1)], true);
        let mut r = t.ready();
        r.sort();
        assert_eq!(r, vec![(key(0), 30), (key(1), 9)]);
    }

    #[test]
    fn a_failed_batch_stops_its_partition() {
        let t = Tracker::default();
        let a = t.begin(&[(key(0), 10)]);
        let b = t.begin(&[(key(0), 20)]);
        t.complete(a, &[key(0)], false);
        t.complete(b, &[key(0)], true);
        assert!(t.ready().is_empty());
    }

    #[test]
    fn late_acks_of_released_partitions_are_ignored() {
        let t = Tracker::default();
        let a = t.begin(&[(key(0), 10)]);
        t.release(&[key(0)]);
        let b = t.begin(&[(key(0), 40)]);
        t.complete(a, &[key(0)], true);
        assert!(t.ready().is_empty());
        t.complete(b, &[key(0)], true);
        assert_eq!(t.ready(), vec![(key(0), 40)]);
    }
}
