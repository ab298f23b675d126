//! The pipeline bus: the process-wide table of virtual addresses that connects the
//! `pipeline` output of one pipeline to the `pipeline` input of another
//! (Logstash's pipeline-to-pipeline communication).
//!
//! It lives here, below the plugins, so that both plugins reach it through their
//! [`super::PluginContext`] without knowing the runtime. The runtime creates one bus per
//! process and hands it to every pipeline it builds.
//!
//! A `pipeline` input *listens* on one address ([`PipelineBus::listen`]); only one input
//! of the process may listen on an address. A `pipeline` output *writes* to addresses
//! ([`PipelineBus::writer`]); any number may, and they may register before the input
//! listens. Batches cross through a channel of [`CHANNEL_BATCHES`] batches per address
//! (the bound), and carry their [`crate::batch::Ack`] with them: the upstream output
//! learns that a batch is safe when the downstream pipeline's ack fires.
//!
//! The bus also counts the writers of each address, so a downstream input can tell when
//! every upstream pipeline that could send to it has finished (and so, at shutdown,
//! stop only after its upstreams drained into it).

use crate::batch::Batch;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, watch, Notify};

/// Batches an address buffers between a writer and its listener's queue. Small: the
/// listener's queue is the real buffer, and a writer waits for the ack anyway.
pub const CHANNEL_BATCHES: usize = 4;

/// Why an address cannot be listened on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("another pipeline input already listens on address `{0}`")]
pub struct AddressInUse(pub String);

/// Why a batch could not be handed over: nobody listens on the address (yet, or any
/// more). The batch comes back so the writer decides what becomes of it.
#[derive(Debug)]
pub struct NoListener(pub Batch);

#[derive(Default)]
struct Slot {
    listener: Option<(u64, mpsc::Sender<Batch>)>,
    /// The number of writers registered for this address, watched by the listener.
    writers: Option<watch::Sender<usize>>,
}

impl Slot {
    fn writers(&mut self) -> &watch::Sender<usize> {
        self.writers.get_or_insert_with(|| watch::channel(0).0)
    }
}

#[derive(Default)]
struct Table {
    slots: HashMap<String, Slot>,
    next_listener: u64,
}

#[derive(Default)]
struct Shared {
    table: Mutex<Table>,
    /// Woken whenever an input starts listening on an address.
    listening: Notify,
}

/// The table of addresses. Cheap to clone; clones share the table.
#[derive(Clone, Default)]
pub struct PipelineBus(Arc<Shared>);

impl std::fmt::Debug for PipelineBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let table = self.lock();
        f.debug_struct("PipelineBus")
            .field("addresses", &table.slots.len())
            .finish()
    }
}

impl PipelineBus {
    pub fn new() -> PipelineBus {
        PipelineBus::default()
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Every critical section is a few map updates: a poisoned table is consistent.
        self.0.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims `address` for one pipeline input. The claim ends when the returned
    /// listener is dropped.
    pub fn listen(&self, address: &str) -> Result<BusListener, AddressInUse> {
        let mut table = self.lock();
        table.next_listener += 1;
        let token = table.next_listener;
        let slot = table.slots.entry(address.to_string()).or_default();
        if slot.listener.is_some() {
            return Err(AddressInUse(address.to_string()));
        }
        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        slot.listener = Some((token, tx));
        let writers = slot.writers().subscribe();
        drop(table);
        self.0.listening.notify_waiters();
        Ok(BusListener {
            bus: self.clone(),
            address: address.to_string(),
            token,
            batches: rx,
            writers,
        })
    }

    /// Registers a writer of `address` (one pipeline output); dropping it unregisters.
    pub fn writer(&self, address: &str) -> BusWriter {
        let mut table = self.lock();
        let slot = table.slots.entry(address.to_string()).or_default();
        slot.writers().send_modify(|n| *n += 1);
        BusWriter {
            bus: self.clone(),
            address: address.to_string(),
        }
    }

    /// Whether a pipeline input listens on `address` now.
    pub fn is_listened(&self, address: &str) -> bool {
        self.lock()
            .slots
            .get(address)
            .is_some_and(|s| s.listener.is_some())
    }
}

/// One pipeline output's registration as a writer of one address.
#[derive(Debug)]
pub struct BusWriter {
    bus: PipelineBus,
    address: String,
}

impl BusWriter {
    pub fn address(&self) -> &str {
        &self.address
    }

    fn listener(&self) -> Option<mpsc::Sender<Batch>> {
        self.bus
            .lock()
            .slots
            .get(&self.address)
            .and_then(|s| s.listener.as_ref().map(|(_, tx)| tx.clone()))
    }

    /// Hands `batch` to the address's listener, waiting while its channel is full
    /// (back-pressure from the downstream queue). Cancel-safe: a send dropped midway
    /// drops the batch.
    pub async fn send(&self, batch: Batch) -> Result<(), NoListener> {
        match self.listener() {
            Some(tx) => tx.send(batch).await.map_err(|e| NoListener(e.0)),
            None => Err(NoListener(batch)),
        }
    }

    /// As [`BusWriter::send`], but while nobody listens on the address, waits until an
    /// input does (Logstash's `ensure_delivery`). `waiting` is called once if it has to
    /// wait, for the caller to say so.
    pub async fn send_when_listened(&self, mut batch: Batch, mut waiting: impl FnMut()) {
        let mut told = false;
        loop {
            let listened = self.bus.0.listening.notified();
            tokio::pin!(listened);
            listened.as_mut().enable();
            match self.send(batch).await {
                Ok(()) => return,
                Err(NoListener(back)) => batch = back,
            }
            if !told {
                told = true;
                waiting();
            }
            listened.await;
        }
    }
}

impl Drop for BusWriter {
    fn drop(&mut self) {
        let mut table = self.bus.lock();
        if let Some(slot) = table.slots.get_mut(&self.address) {
            slot.writers().send_modify(|n| *n = n.saturating_sub(1));
        }
    }
}

/// A pipeline input's claim on an address, and the batches written to it.
#[derive(Debug)]
pub struct BusListener {
    bus: PipelineBus,
    address: String,
    token: u64,
    batches: mpsc::Receiver<Batch>,
    writers: watch::Receiver<usize>,
}

impl BusListener {
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The next batch written to the address; `None` only once the listener's claim
    /// ended (never while it holds it, even without writers).
    pub async fn recv(&mut self) -> Option<Batch> {
        self.batches.recv().await
    }

    /// A batch already waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Batch> {
        self.batches.try_recv().ok()
    }

    /// Writers registered for the address now.
    pub fn writers(&self) -> usize {
        *self.writers.borrow()
    }

    /// A watch on the number of writers, usable while the listener receives.
    pub fn writer_count(&self) -> WriterCount {
        WriterCount(self.writers.clone())
    }

    /// Gives the address up: writers see it unlisted at once, and batches already in
    /// the channel stay readable with [`BusListener::try_recv`].
    pub fn close(&mut self) {
        self.release();
        self.batches.close();
    }

    fn release(&self) {
        let mut table = self.bus.lock();
        if let Some(slot) = table.slots.get_mut(&self.address) {
            if slot.listener.as_ref().map(|(t, _)| *t) == Some(self.token) {
                slot.listener = None;
            }
        }
    }
}

/// The number of writers registered for an address, watched.
#[derive(Debug, Clone)]
pub struct WriterCount(watch::Receiver<usize>);

impl WriterCount {
    pub fn get(&self) -> usize {
        *self.0.borrow()
    }

    /// Resolves once no writer is registered for the address.
    pub async fn none(&mut self) {
        let _ = self.0.wait_for(|n| *n == 0).await;
    }
}

impl Drop for BusListener {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Ack, AckStatus};
    use crate::event::Event;

    #[test]
    fn one_listener_per_address() {
        let bus = PipelineBus::new();
        let first = bus.listen("a").unwrap();
        assert_eq!(bus.listen("a").unwrap_err(), AddressInUse("a".into()));
        assert!(bus.listen("b").is_ok());
        drop(first);
        assert!(
            bus.listen("a").is_ok(),
            "a dropped listener frees its address"
        );
    }

    #[tokio::test]
    async fn batches_and_their_acks_cross_the_bus() {
        let bus = PipelineBus::new();
        let writer = bus.writer("a");
        let (ack, rx) = Ack::channel();
        let back = writer
            .send(Batch::new(vec![Event::new()], ack))
            .await
            .unwrap_err();
        assert_eq!(back.0.len(), 1, "no listener: the batch comes back");
        drop(back);
        assert_eq!(rx.wait().await, AckStatus::Delivered);

        let mut listener = bus.listen("a").unwrap();
        assert_eq!(listener.writers(), 1);
        let (ack, rx) = Ack::channel();
        writer
            .send(Batch::new(vec![Event::new(), Event::new()], ack))
            .await
            .unwrap();
        let got = listener.recv().await.unwrap();
        assert_eq!(got.len(), 2);
        got.fail();
        drop(got);
        assert_eq!(rx.wait().await, AckStatus::Failed);
        drop(writer);
        let mut count = listener.writer_count();
        tokio::time::timeout(std::time::Duration::from_secs(5), count.none())
            .await
            .expect("the writer count did not reach zero");
    }

    #[tokio::test]
    async fn a_writer_that_ensures_delivery_waits_for_a_listener() {
        let bus = PipelineBus::new();
        let writer = bus.writer("late");
        let waited = std::cell::Cell::new(0);
        let send = writer.send_when_listened(Batch::new(vec![Event::new()], Ack::none()), || {
            waited.set(waited.get() + 1)
        });
        tokio::pin!(send);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), send.as_mut())
                .await
                .is_err(),
            "the send must wait while nobody listens"
        );
        let mut listener = bus.listen("late").unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), send)
            .await
            .expect("the send did not go through once an input listened");
        assert_eq!(waited.get(), 1);
        assert_eq!(listener.recv().await.map(|b| b.len()), Some(1));
    }

    #[tokio::test]
    async fn a_closed_listener_keeps_what_was_written_before() {
        let bus = PipelineBus::new();
        let mut listener = bus.listen("a").unwrap();
        let writer = bus.writer("a");
        writer
            .send(Batch::new(vec![Event::new()], Ack::none()))
            .await
            .unwrap();
        listener.close();
        assert!(!bus.is_listened("a"));
        assert!(listener.try_recv().is_some());
        assert!(writer
            .send(Batch::new(vec![Event::new()], Ack::none()))
            .await
            .is_err());
    }
}
