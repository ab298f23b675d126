//! Batch and Ack: the unit that flows forward through the pipeline and the promise that
//! flows back to the input.
//!
//! An input creates an [`Ack`] for each batch it pushes. The ack is shared (cloned) by
//! every piece the batch is split into and every output that holds it; when the last
//! holder lets go, the ack fires once with the combined [`AckStatus`]. An output that
//! could not make its events safe marks the ack failed before letting go, so the input
//! does not confirm what was not delivered (a Beats client then resends).

use crate::event::Event;
use crate::recycle::{self, Home};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// How a batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckStatus {
    /// Every event was accepted by every output, dead-lettered, or dropped by a filter.
    Delivered,
    /// At least one event was not made safe (shutdown in the middle of a retry, ...).
    Failed,
}

type Callback = Box<dyn FnOnce(AckStatus) + Send>;

struct AckInner {
    failed: AtomicBool,
    callback: Mutex<Option<Callback>>,
}

impl Drop for AckInner {
    fn drop(&mut self) {
        let status = if *self.failed.get_mut() {
            AckStatus::Failed
        } else {
            AckStatus::Delivered
        };
        let callback = match self.callback.get_mut() {
            Ok(slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(cb) = callback {
            cb(status);
        }
    }
}

/// The promise that a batch's events are safe. Cheap to clone.
#[derive(Clone)]
pub struct Ack(Option<Arc<AckInner>>);

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Ack" } else { "Ack(none)" })
    }
}

impl Ack {
    /// An ack nobody waits for (inputs without a protocol-level acknowledgement).
    pub fn none() -> Ack {
        Ack(None)
    }

    /// An ack that calls `callback` once, when the last holder lets go.
    pub fn new(callback: impl FnOnce(AckStatus) + Send + 'static) -> Ack {
        Ack(Some(Arc::new(AckInner {
            failed: AtomicBool::new(false),
            callback: Mutex::new(Some(Box::new(callback))),
        })))
    }

    /// An ack and the receiver that resolves when it fires.
    pub fn channel() -> (Ack, AckReceiver) {
        let (tx, rx) = oneshot::channel();
        let ack = Ack::new(move |status| {
            let _ = tx.send(status);
        });
        (ack, AckReceiver(rx))
    }

    /// Marks the batch as not delivered; the ack will fire [`AckStatus::Failed`].
    pub fn fail(&self) {
        if let Some(inner) = &self.0 {
            inner.failed.store(true, Ordering::Release);
        }
    }
}

/// Resolves to the batch's [`AckStatus`] once every holder let go.
pub struct AckReceiver(oneshot::Receiver<AckStatus>);

impl AckReceiver {
    /// Waits for the ack. A sender dropped without firing counts as failed.
    pub async fn wait(self) -> AckStatus {
        self.0.await.unwrap_or(AckStatus::Failed)
    }
}

/// Events moving through the pipeline together, with the acks of the input batches
/// they came from.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<Event>,
    acks: Vec<Ack>,
    /// Approximate size in bytes, for the queue's byte limit.
    bytes: usize,
    /// Where the events were built, as runs in order (`None`: no home, or not known):
    /// a dropped batch hands each run back to be freed there (see [`crate::recycle`]).
    homes: Vec<(Option<Arc<Home>>, usize)>,
    /// Allocations the home threads made building these events, and those the worker
    /// made on them: the batch goes home only when the first is the larger.
    built: u64,
    spent: u64,
}

impl Batch {
    /// A batch whose size is estimated from its events.
    pub fn new(events: Vec<Event>, ack: Ack) -> Batch {
        let bytes = events.iter().map(Event::approx_size).sum();
        Batch::with_bytes(events, ack, bytes)
    }

    /// A batch whose size the input already knows (the bytes it read).
    pub fn with_bytes(events: Vec<Event>, ack: Ack, bytes: usize) -> Batch {
        let acks = if ack.0.is_some() {
            vec![ack]
        } else {
            Vec::new()
        };
        // A thread building a batch frees what came back to it first, so that its next
        // allocations reuse that memory.
        recycle::collect();
        let (homes, built) = match recycle::here() {
            Some(home) if !events.is_empty() => (
                vec![(Some(home), events.len())],
                recycle::allocations_since_last_batch(),
            ),
            _ => (Vec::new(), 0),
        };
        Batch {
            events,
            acks,
            bytes,
            homes,
            built,
            spent: 0,
        }
    }

    /// Takes the events out (they are then freed by whoever drops them).
    pub fn into_events(mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Moves `other`'s events and acks into this batch.
    pub fn merge(&mut self, mut other: Batch) {
        if !other.homes.is_empty() {
            let covered: usize = self.homes.iter().map(|(_, n)| n).sum();
            if covered < self.events.len() {
                self.homes.push((None, self.events.len() - covered));
            }
            self.homes.append(&mut other.homes);
        }
        self.events.append(&mut other.events);
        self.acks.append(&mut other.acks);
        self.bytes += other.bytes;
        self.built += other.built;
        self.spent += other.spent;
    }

    /// Splits off the first `n` events as a new batch that shares this batch's acks.
    pub fn split_front(&mut self, n: usize) -> Batch {
        if n >= self.events.len() {
            return std::mem::take(self);
        }
        let rest = self.events.split_off(n);
        let front = std::mem::replace(&mut self.events, rest);
        let total = (n + self.events.len()).max(1);
        let front_bytes = self.bytes * n / total;
        self.bytes -= front_bytes;
        let front_built = (self.built as u128 * n as u128 / total as u128) as u64;
        self.built -= front_built;
        Batch {
            events: front,
            acks: self.acks.clone(),
            bytes: front_bytes,
            homes: split_homes(&mut self.homes, n),
            built: front_built,
            spent: 0,
        }
    }

    /// Records allocations a worker made on this batch (filters, outputs): see
    /// [`crate::recycle`] for what they decide.
    pub fn note_spent(&mut self, allocations: u64) {
        self.spent = self.spent.saturating_add(allocations);
    }

    /// Marks every ack of this batch failed (its events were not made safe).
    pub fn fail(&self) {
        for ack in &self.acks {
            ack.fail();
        }
    }

    pub fn acks(&self) -> &[Ack] {
        &self.acks
    }
}

/// Splits the runs covering the first `n` events off `homes`.
fn split_homes(
    homes: &mut Vec<(Option<Arc<Home>>, usize)>,
    n: usize,
) -> Vec<(Option<Arc<Home>>, usize)> {
    let mut front = Vec::new();
    let mut want = n;
    while want > 0 && !homes.is_empty() {
        let (home, len) = &mut homes[0];
        if *len <= want {
            want -= *len;
            front.push(homes.remove(0));
        } else {
            *len -= want;
            front.push((home.clone(), want));
            want = 0;
        }
    }
    front
}

impl Drop for Batch {
    /// Hands the events back to the threads that built them (see [`crate::recycle`]).
    /// Filters may have dropped or added events since: the runs are then only close,
    /// which only changes where some memory is freed.
    fn drop(&mut self) {
        if self.homes.is_empty() || self.spent > self.built {
            return;
        }
        let mut events = std::mem::take(&mut self.events);
        let homes = std::mem::take(&mut self.homes);
        let last = homes.len() - 1;
        for (i, (home, len)) in homes.into_iter().enumerate() {
            if events.is_empty() {
                break;
            }
            let rest = if i == last || len >= events.len() {
                Vec::new()
            } else {
                events.split_off(len)
            };
            match home {
                Some(home) => recycle::give_back(&home, events),
                None => drop(events),
            }
            events = rest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fires_once_when_the_last_piece_is_dropped() {
        let (ack, rx) = Ack::channel();
        let mut batch = Batch::new((0..10).map(|_| Event::new()).collect(), ack);
        let front = batch.split_front(4);
        assert_eq!(front.len(), 4);
        assert_eq!(batch.len(), 6);
        drop(front);
        let mut merged = Batch::default();
        merged.merge(batch);
        drop(merged);
        assert_eq!(rx.wait().await, AckStatus::Delivered);
    }

    #[test]
    fn dropped_pieces_hand_their_events_back_to_the_thread_that_built_them() {
        // Built on a home thread (which stays alive, and is not the dropping one).
        let (built_tx, built_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let home_thread = std::thread::spawn(move || {
            recycle::make_home();
            let batch = Batch::new((0..10).map(|_| Event::new()).collect(), Ack::none());
            built_tx
                .send((batch, recycle::here().expect("a home")))
                .expect("send");
            done_rx.recv().expect("done");
        });
        let (mut batch, home) = built_rx.recv().expect("batch");
        // Merged after events built here (no home), then split across the seam.
        let mut merged = Batch::new((0..5).map(|_| Event::new()).collect(), Ack::none());
        merged.merge(std::mem::take(&mut batch));
        let front = merged.split_front(7);
        drop(front);
        assert_eq!(home.held(), 2, "the 2 home events of the first 7 went home");
        drop(merged);
        assert_eq!(home.held(), 10, "and the other 8 with the rest");
        // Worker-made allocations outweigh the home's: the batch is freed where it is.
        let mut heavy = Batch::new(vec![Event::new()], Ack::none());
        heavy.homes = vec![(Some(home.clone()), 1)];
        heavy.note_spent(heavy.built + 1);
        drop(heavy);
        assert_eq!(home.held(), 10);
        done_tx.send(()).expect("done");
        home_thread.join().expect("home thread");
    }

    #[tokio::test]
    async fn a_failed_piece_fails_the_whole_batch() {
        let (ack, rx) = Ack::channel();
        let mut batch = Batch::new((0..4).map(|_| Event::new()).collect(), ack);
        let front = batch.split_front(2);
        front.fail();
        drop(front);
        drop(batch);
        assert_eq!(rx.wait().await, AckStatus::Failed);
    }
}
