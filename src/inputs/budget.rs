//! The memory budget of inputs: bytes that network inputs hold outside the queue (read
//! buffers, partly decoded frames, decoded events waiting for the queue).
//!
//! Peers decide how much they send, so what a connection holds is counted *before* it is
//! allocated. Each connection has a small allowance of its own
//! (`--input.memory.per_connection`, [`CONNECTION_ALLOWANCE`] by default) so that a
//! well-behaved client with small messages always makes progress; everything beyond it
//! is drawn from one process-wide [`MemoryBudget`] (`--input.memory.max_bytes`). When the budget is spent, a
//! connection that needs more waits before it reads again: the peer is back-pressured
//! by TCP, exactly as when the queue is full.
//!
//! Waiting is safe only while someone will give bytes back. Bytes held by a connection
//! that waits on the pipeline (events on their way to the queue, acknowledgements owed)
//! come back once the pipeline moves; bytes drawn for a line or frame still being read
//! come back only when the peer finishes it. When the budget is spent, no connection
//! holding part of it waits on the pipeline, and nothing came back for [`STUCK_AFTER`],
//! every connection that holds part of the budget waits for a peer that may never
//! finish (peers that never end their lines, or honest ones whose lines together need
//! more than the budget). Then the connection that holds the most is cut ([`Cut`]): tcp
//! and syslog keep the head of the line they were reading, tagged `_linetoolong`, and
//! skip the rest; a Beats connection is closed, and its client resends what was not
//! acknowledged; an HTTP request is answered 429. Its bytes go back, and the others go
//! on.

use crate::plugin::PluginContext;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The default size of the process-wide budget (`--input.memory.max_bytes`). Together
/// with the per-connection allowances it bounds what hostile peers can make Sluice hold.
pub const DEFAULT_INPUT_BUDGET_BYTES: usize = crate::settings::DEFAULT_INPUT_MEMORY_MAX_BYTES;

/// Bytes every connection may hold without drawing on the shared budget by default
/// (`--input.memory.per_connection`): enough for a read buffer and a small window, so
/// small clients are never starved by large ones.
pub const CONNECTION_ALLOWANCE: usize = crate::settings::DEFAULT_INPUT_MEMORY_PER_CONNECTION;

/// A pool of bytes shared by connections. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    /// What each connection drawing on this budget may hold of its own.
    connection_allowance: usize,
    used: AtomicUsize,
    /// Times a connection had to wait for the budget.
    waits: AtomicU64,
    /// Connections cut because the budget was stuck.
    cuts: AtomicU64,
    freed: Notify,
    /// Connections that hold bytes drawn from the budget, by id: where a cut is chosen.
    holders: Mutex<HashMap<u64, Arc<Slot>>>,
    next_holder: AtomicU64,
    /// Bytes drawn by connections waiting on the pipeline right now (handing events to
    /// the queue, waiting for acknowledgements they owe): they come back without any
    /// peer's help.
    on_pipeline: AtomicUsize,
}

/// How long a connection waits for the budget without any byte coming back before it
/// checks whether the budget is stuck (see the module's doc). Long enough that peers
/// sending long lines at full speed finish them; short enough that the others barely
/// notice.
pub const STUCK_AFTER: Duration = Duration::from_secs(1);

/// The connection was chosen to give back what it holds: the budget was spent on lines
/// or frames that no peer finished, and it held the most of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut;

/// A connection's entry in its budget's registry while it holds drawn bytes.
#[derive(Debug, Default)]
struct Slot {
    drawn: AtomicUsize,
    /// Waiting on the pipeline ([`Holding::waiting_for_pipeline`]): not a candidate.
    on_pipeline: AtomicBool,
    /// Asked to give back what it holds.
    cut: AtomicBool,
    asked: Notify,
}

impl Slot {
    fn ask_cut(&self) {
        self.cut.store(true, Ordering::Release);
        self.asked.notify_one();
    }
}

/// The budget the inputs of the process share.
static SHARED: Mutex<Option<Arc<MemoryBudget>>> = Mutex::new(None);

impl MemoryBudget {
    /// A budget of `limit` bytes with the default per-connection allowance.
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget::with_connection_allowance(limit, CONNECTION_ALLOWANCE)
    }

    pub fn with_connection_allowance(limit: usize, connection_allowance: usize) -> MemoryBudget {
        MemoryBudget {
            limit,
            connection_allowance,
            used: AtomicUsize::new(0),
            waits: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
            freed: Notify::new(),
            holders: Mutex::new(HashMap::new()),
            next_holder: AtomicU64::new(0),
            on_pipeline: AtomicUsize::new(0),
        }
    }

    /// The budget every input of the process shares, sized by the run's settings
    /// (`--input.memory.max_bytes`, `--input.memory.per_connection`). Inputs built
    /// with the same settings get the same budget; other settings (another run in the
    /// same process) replace it, and connections still open keep the one they draw on.
    pub fn shared(ctx: &PluginContext) -> Arc<MemoryBudget> {
        let (limit, allowance) = (ctx.input_memory_max_bytes, ctx.input_memory_per_connection);
        let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Some(b) if b.limit == limit && b.connection_allowance == allowance => b.clone(),
            _ => {
                let b = Arc::new(MemoryBudget::with_connection_allowance(limit, allowance));
                *slot = Some(b.clone());
                b
            }
        }
    }

    /// A budget that never runs out (clients, tests, tools).
    pub fn unlimited() -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget::new(usize::MAX))
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// What each connection may hold without drawing on the budget.
    pub fn connection_allowance(&self) -> usize {
        self.connection_allowance
    }

    /// Bytes drawn right now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Times a connection waited because the budget was spent.
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    /// Connections cut because the budget was stuck.
    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::Relaxed)
    }

    fn holders(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        self.holders.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection to cut if the budget is stuck: none while any drawn byte waits on
    /// the pipeline; otherwise the holder of the most drawn bytes.
    fn stuck_victim(&self) -> Option<Arc<Slot>> {
        if self.on_pipeline.load(Ordering::Acquire) > 0 {
            return None;
        }
        self.holders()
            .values()
            .filter(|s| !s.on_pipeline.load(Ordering::Acquire))
            .max_by_key(|s| s.drawn.load(Ordering::Acquire))
            .filter(|s| s.drawn.load(Ordering::Acquire) > 0)
            .cloned()
    }

    /// Draws `n` bytes if they are free.
    pub fn try_draw(&self, n: usize) -> bool {
        if n == 0 {
            return true;
        }
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn try_draw_all(&self, n: usize) -> bool {
        self.used
            .compare_exchange(0, n, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Gives back `n` bytes drawn earlier.
    pub fn give_back(&self, n: usize) {
        if n == 0 {
            return;
        }
        self.used.fetch_sub(n, Ordering::AcqRel);
        self.freed.notify_waiters();
    }
}

/// Hands freed memory back to the operating system, at most once per interval.
///
/// The binary registers how for its allocator: mimalloc keeps freed pages for reuse and
/// purges them only when a thread allocates again, so after a burst of hostile peers the
/// idle IO threads would keep everything the peers made Sluice hold. Unset (the system
/// allocator, library users, tests): requests do nothing.
pub struct MemoryRelease {
    release: OnceLock<fn()>,
    interval: Duration,
    /// When the last release ran, and whether one is scheduled.
    state: Mutex<(Option<Instant>, bool)>,
}

/// The least time between two releases of [`MEMORY_RELEASE`]: a release walks the
/// allocator's pages, and purged pages cost page faults when they are used again.
pub const RELEASE_INTERVAL: Duration = Duration::from_secs(1);

/// The process's release, requested when a connection that drew on the input budget
/// closes.
pub static MEMORY_RELEASE: MemoryRelease = MemoryRelease::new(RELEASE_INTERVAL);

impl MemoryRelease {
    pub const fn new(interval: Duration) -> MemoryRelease {
        MemoryRelease {
            release: OnceLock::new(),
            interval,
            state: Mutex::new((None, false)),
        }
    }

    /// Registers how freed memory goes back to the operating system (the first call
    /// wins).
    pub fn set(&self, release: fn()) {
        let _ = self.release.set(release);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, (Option<Instant>, bool)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for freed memory to go back to the operating system. On the IO runtime the
    /// release runs in a task of its own, so after the caller's buffers are freed, and
    /// no sooner than the interval after the last one; every request made while one is
    /// pending is served by it.
    pub fn request(&'static self) {
        let Some(release) = self.release.get().copied() else {
            return;
        };
        let mut state = self.state();
        if state.1 {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            if state.0.is_some_and(|last| last.elapsed() < self.interval) {
                return;
            }
            state.0 = Some(Instant::now());
            drop(state);
            release();
            return;
        };
        state.1 = true;
        let at = state
            .0
            .map_or_else(Instant::now, |last| last + self.interval);
        drop(state);
        runtime.spawn(async move {
            let pending = PendingRelease(self);
            tokio::time::sleep_until(at.into()).await;
            self.state().0 = Some(Instant::now());
            // Requests from now on need a release of their own.
            drop(pending);
            let started = Instant::now();
            release();
            tracing::debug!(
                took_us = started.elapsed().as_micros() as u64,
                "freed input memory handed back to the operating system"
            );
        });
    }
}

/// A scheduled release: once it ran or was dropped (the runtime stopped), the next
/// request may schedule another.
struct PendingRelease(&'static MemoryRelease);

impl Drop for PendingRelease {
    fn drop(&mut self) {
        self.0.state().1 = false;
    }
}

/// What one connection holds: its allowance first, then bytes drawn from the budget.
/// Everything drawn goes back when the holding is dropped.
#[derive(Debug)]
pub struct Holding {
    budget: Arc<MemoryBudget>,
    allowance: usize,
    held: usize,
    drawn: usize,
    /// It drew on the budget at some point: once it is dropped, what it held is worth
    /// handing back to the operating system.
    drew: bool,
    id: u64,
    /// Registered in the budget's holders while `drawn` is above 0.
    slot: Arc<Slot>,
}

impl Holding {
    pub fn new(budget: Arc<MemoryBudget>) -> Holding {
        let allowance = budget.connection_allowance;
        Holding::with_allowance(budget, allowance)
    }

    pub fn with_allowance(budget: Arc<MemoryBudget>, allowance: usize) -> Holding {
        let id = budget.next_holder.fetch_add(1, Ordering::Relaxed);
        Holding {
            budget,
            allowance,
            held: 0,
            drawn: 0,
            drew: false,
            id,
            slot: Arc::default(),
        }
    }

    /// Sets the bytes drawn (already taken from or given back to the budget), keeping
    /// the registry of holders in step.
    fn set_drawn(&mut self, drawn: usize) {
        let was = self.drawn;
        self.drawn = drawn;
        self.drew |= drawn > 0;
        self.slot.drawn.store(drawn, Ordering::Release);
        if was == 0 && drawn > 0 {
            self.budget.holders().insert(self.id, self.slot.clone());
        } else if was > 0 && drawn == 0 {
            self.budget.holders().remove(&self.id);
        }
    }

    /// Bytes this connection holds (allowance included).
    pub fn held(&self) -> usize {
        self.held
    }

    /// Bytes that holding `n` more would draw from the budget.
    fn shortfall(&self, n: usize) -> usize {
        (self.held + n)
            .saturating_sub(self.allowance)
            .saturating_sub(self.drawn)
    }

    /// Counts `n` more bytes if the allowance or the budget has them.
    pub fn try_grow(&mut self, n: usize) -> bool {
        let need = self.shortfall(n);
        if !self.budget.try_draw(need) {
            return false;
        }
        self.set_drawn(self.drawn + need);
        self.held += n;
        true
    }

    /// Counts `n` more bytes, waiting for the budget if it is spent, unless this
    /// connection is cut meanwhile (see the module's doc): then it should give back
    /// what it holds. A request larger than the whole budget waits for the budget to be
    /// entirely free and then takes it all, so it cannot wait forever.
    pub async fn grow(&mut self, n: usize) -> Result<(), Cut> {
        let need = self.shortfall(n);
        let budget = self.budget.clone();
        let mut counted = false;
        loop {
            let freed = budget.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if budget.try_draw(need) || (need > budget.limit && budget.try_draw_all(need)) {
                self.set_drawn(self.drawn + need);
                self.held += n;
                // Served after all: a cut asked meanwhile is moot.
                self.slot.cut.store(false, Ordering::Release);
                return Ok(());
            }
            if self.take_cut() {
                return Err(Cut);
            }
            if !counted {
                counted = true;
                budget.waits.fetch_add(1, Ordering::Relaxed);
                crate::metrics::get().inputs.memory_waits.inc();
            }
            tokio::select! {
                () = &mut freed => {}
                () = self.slot.asked.notified() => {}
                () = tokio::time::sleep(STUCK_AFTER) => {
                    // Possibly this very connection: the next turn takes the request.
                    if let Some(victim) = budget.stuck_victim() {
                        victim.ask_cut();
                    }
                }
            }
        }
    }

    /// Whether this connection was asked to give back what it holds (and forgets the
    /// request, counting the cut it is about to make).
    pub fn take_cut(&self) -> bool {
        let cut = self.slot.cut.swap(false, Ordering::AcqRel);
        if cut {
            self.budget.cuts.fetch_add(1, Ordering::Relaxed);
            crate::metrics::get().inputs.memory_cuts.inc();
        }
        cut
    }

    /// Ready once this connection is asked to give back what it holds (a connection
    /// reading from a peer selects on it). The request is taken: the caller must cut.
    pub async fn cut_requested(&self) {
        loop {
            let asked = self.slot.asked.notified();
            tokio::pin!(asked);
            asked.as_mut().enable();
            if self.take_cut() {
                return;
            }
            asked.await;
        }
    }

    /// Runs `wait`, a wait on the pipeline rather than on the peer: handing events
    /// this connection holds to the queue, or waiting for acknowledgements it owes.
    /// Meanwhile its drawn bytes come back without any peer's help, so connections
    /// waiting for the budget wait for them rather than cut anyone.
    pub async fn waiting_for_pipeline<T>(&self, wait: impl std::future::Future<Output = T>) -> T {
        let _mark = OnPipeline::new(&self.budget, &self.slot, self.drawn);
        wait.await
    }

    /// Counts `n` bytes fewer; what falls back inside the allowance returns to the budget.
    pub fn shrink(&mut self, n: usize) {
        self.held = self.held.saturating_sub(n);
        let keep = self.held.saturating_sub(self.allowance);
        if self.drawn > keep {
            self.budget.give_back(self.drawn - keep);
            self.set_drawn(keep);
        }
    }

    /// Sets the count to `n`, growing without waiting (for sizes already allocated by
    /// code that cannot wait, e.g. a growth policy a few bytes above the request).
    pub fn set_unchecked(&mut self, n: usize) {
        if n < self.held {
            self.shrink(self.held - n);
        } else {
            let need = self.shortfall(n - self.held);
            // Counted even past the limit: the bytes exist.
            self.budget.used.fetch_add(need, Ordering::AcqRel);
            self.set_drawn(self.drawn + need);
            self.held = n;
        }
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        let drawn = self.drawn;
        self.set_drawn(0);
        self.budget.give_back(drawn);
        if self.drew {
            MEMORY_RELEASE.request();
        }
    }
}

/// Marks a connection's drawn bytes as waiting on the pipeline while it lives.
struct OnPipeline<'a> {
    budget: &'a MemoryBudget,
    slot: &'a Slot,
    drawn: usize,
}

impl<'a> OnPipeline<'a> {
    fn new(budget: &'a MemoryBudget, slot: &'a Slot, drawn: usize) -> OnPipeline<'a> {
        slot.on_pipeline.store(true, Ordering::Release);
        budget.on_pipeline.fetch_add(drawn, Ordering::AcqRel);
        OnPipeline {
            budget,
            slot,
            drawn,
        }
    }
}

impl Drop for OnPipeline<'_> {
    fn drop(&mut self) {
        self.budget
            .on_pipeline
            .fetch_sub(self.drawn, Ordering::AcqRel);
        self.slot.on_pipeline.store(false, Ordering::Release);
    }
}

/// A connection's read buffer: grown only as bytes arrive (never to the size a peer
/// announces), every byte of its capacity counted in the connection's [`Holding`] first.
#[derive(Debug, Default)]
pub struct ReadBuffer {
    pub buf: bytes::BytesMut,
    counted: usize,
}

/// The first size of a read buffer; it doubles while a frame or line needs more.
pub const FIRST_READ_BYTES: usize = 16 * 1024;
/// The least free room a read is given.
const MIN_READ_ROOM: usize = 4 * 1024;

impl ReadBuffer {
    /// Gives back what was split off the buffer, and the whole buffer once it is empty
    /// and grew past its first size (an idle connection holds nothing).
    pub fn recount(&mut self, memory: &mut Holding) {
        if self.buf.is_empty() && self.buf.capacity() > FIRST_READ_BYTES {
            self.buf = bytes::BytesMut::new();
        }
        let cap = self.buf.capacity();
        if cap < self.counted {
            memory.shrink(self.counted - cap);
            self.counted = cap;
        }
    }

    /// Appends the bytes [`wait_watching_peer`] read ahead of the socket and empties
    /// `early`. After a wait for room they fit in what was counted; when the peer closed
    /// during the wait they may not, and the few bytes ([`EARLY_BYTES`] at most) are
    /// counted past the budget, so that the close is handled, and what the connection
    /// holds given back, at once rather than after the budget frees up.
    pub fn take_early(&mut self, early: &mut Vec<u8>, memory: &mut Holding) {
        if early.is_empty() {
            return;
        }
        if self.buf.capacity() - self.buf.len() < early.len() {
            // Exactly what is needed: `reserve` could double the buffer.
            let mut grown = bytes::BytesMut::with_capacity(self.buf.len() + early.len());
            grown.extend_from_slice(&self.buf);
            self.buf = grown;
        }
        self.buf.extend_from_slice(early);
        early.clear();
        self.count_capacity(memory);
    }

    /// Makes what is counted the buffer's capacity: what it holds is what it allocated,
    /// whatever was asked for (the allocator rounds, a replaced buffer is smaller).
    fn count_capacity(&mut self, memory: &mut Holding) {
        let cap = self.buf.capacity();
        if cap > self.counted {
            memory.set_unchecked(memory.held() + cap - self.counted);
        } else {
            memory.shrink(self.counted - cap);
        }
        self.counted = cap;
    }

    /// The capacity the next read needs, and the bytes growing to it adds; `None` when
    /// the buffer has a read's room already.
    fn growth(&self) -> Option<(usize, usize)> {
        let (len, cap) = (self.buf.len(), self.buf.capacity());
        if cap - len >= MIN_READ_ROOM {
            return None;
        }
        let target = (cap * 2).max(len + MIN_READ_ROOM).max(FIRST_READ_BYTES);
        Some((target, target - cap))
    }

    /// Grows the buffer to `target`, its `more` bytes already counted in `memory`.
    fn grow_to(&mut self, target: usize, more: usize, memory: &mut Holding) {
        self.counted += more;
        self.buf.reserve(target - self.buf.len());
        self.count_capacity(memory);
    }

    /// Makes room for the next read if the allowance or the budget has it now; false
    /// when it would have to wait (the caller may give something back first).
    pub fn try_make_room(&mut self, memory: &mut Holding) -> bool {
        let Some((target, more)) = self.growth() else {
            return true;
        };
        if !memory.try_grow(more) {
            return false;
        }
        self.grow_to(target, more, memory);
        true
    }

    /// Makes room for the next read: counts the growth first, waiting for the budget
    /// if it is spent. `Ok(false)` if it had to wait (for the caller's counters);
    /// [`Cut`] if the connection was cut while it waited.
    pub async fn make_room(&mut self, memory: &mut Holding) -> Result<bool, Cut> {
        if self.try_make_room(memory) {
            return Ok(true);
        }
        let Some((target, more)) = self.growth() else {
            return Ok(true);
        };
        memory.grow(more).await?;
        self.grow_to(target, more, memory);
        Ok(false)
    }
}

/// Bytes read from a peer while its connection waits for memory: a constant per
/// connection, the room [`ReadBuffer::make_room`] leaves (so they always fit after it).
/// A connection waits when its buffer has less room than that, so a peer that sent
/// nothing more than what fits is read to its end and its close is seen.
pub const EARLY_BYTES: usize = MIN_READ_ROOM;

/// How a wait that watched the peer ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Watched<T> {
    /// What was waited for.
    Ready(T),
    /// The peer closed (or its connection failed); what it sent before is in `early`
    /// or was read already.
    PeerClosed,
    /// `stop` fired (shutdown, or the connection failed elsewhere).
    Stopped,
}

/// Waits for `wait` (memory for this connection) while watching the peer. A peer that
/// leaves while its connection waits for the budget would otherwise keep what the
/// connection drew until the budget frees up, which is never when every waiting
/// connection holds part of it. What the peer sends meanwhile, up to [`EARLY_BYTES`], is
/// kept in `early`, to be taken before the socket is read again; a peer that sends more
/// is back-pressured by TCP as before. Nothing read is lost: the caller handles the
/// close after what it holds.
pub async fn wait_watching_peer<T, R>(
    wait: impl std::future::Future<Output = T>,
    read: &mut R,
    early: &mut Vec<u8>,
    stop: impl std::future::Future<Output = ()>,
) -> Watched<T>
where
    R: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt as _;
    tokio::pin!(wait);
    // Ready at once, the common case: no probe buffer, nothing read ahead.
    if let Some(v) = futures::FutureExt::now_or_never(&mut wait) {
        return Watched::Ready(v);
    }
    tokio::pin!(stop);
    let mut probe = vec![0u8; EARLY_BYTES];
    loop {
        let room = EARLY_BYTES.saturating_sub(early.len());
        tokio::select! {
            // The wait first: when it is ready at once, nothing is read ahead.
            biased;
            v = &mut wait => return Watched::Ready(v),
            () = &mut stop => return Watched::Stopped,
            n = read.read(&mut probe[..room]), if room > 0 => match n {
                Ok(0) | Err(_) => return Watched::PeerClosed,
                Ok(k) => early.extend_from_slice(&probe[..k]),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_allowance_is_free_and_the_rest_is_drawn() {
        let budget = Arc::new(MemoryBudget::new(100));
        let mut a = Holding::with_allowance(budget.clone(), 10);
        assert!(a.try_grow(10));
        assert_eq!(budget.used(), 0);
        assert!(a.try_grow(60));
        assert_eq!(budget.used(), 60);
        let mut b = Holding::with_allowance(budget.clone(), 10);
        assert!(
            b.try_grow(10),
            "the allowance is there even when the budget is low"
        );
        assert!(!b.try_grow(50));
        assert!(b.try_grow(40));
        assert_eq!(budget.used(), 100);
        a.shrink(65);
        assert_eq!(a.held(), 5);
        assert_eq!(budget.used(), 40);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn a_spent_budget_makes_growth_wait_until_bytes_come_back() {
        let budget = Arc::new(MemoryBudget::new(100));
        let mut a = Holding::with_allowance(budget.clone(), 0);
        a.grow(100).await.unwrap();
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move {
                let mut b = Holding::with_allowance(budget, 0);
                b.grow(30).await.unwrap();
                b.held()
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "grew past a spent budget");
        a.shrink(50);
        let held = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter was not woken when bytes came back")
            .unwrap();
        assert_eq!(held, 30);
        assert_eq!(budget.waits(), 1);
    }

    #[test]
    fn inputs_of_a_run_share_the_budget_its_settings_size() {
        let ctx = PluginContext {
            input_memory_max_bytes: 1000,
            input_memory_per_connection: 10,
            ..PluginContext::default()
        };
        let a = MemoryBudget::shared(&ctx);
        let b = MemoryBudget::shared(&ctx);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.limit(), 1000);
        let mut held = Holding::new(a.clone());
        assert!(held.try_grow(10));
        assert_eq!(a.used(), 0, "the per-connection allowance is the setting's");
        assert!(held.try_grow(1));
        assert_eq!(a.used(), 1);
        let other = MemoryBudget::shared(&PluginContext {
            input_memory_max_bytes: 2000,
            ..ctx
        });
        assert_eq!(other.limit(), 2000);
        assert!(!Arc::ptr_eq(&a, &other));
    }

    static RELEASES_RUN: AtomicUsize = AtomicUsize::new(0);
    static RELEASE: MemoryRelease = MemoryRelease::new(Duration::from_millis(300));

    async fn releases_reach(n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while RELEASES_RUN.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "release {n} never ran");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn memory_releases_coalesce_and_keep_their_interval() {
        RELEASE.set(|| {
            RELEASES_RUN.fetch_add(1, Ordering::SeqCst);
        });
        for _ in 0..3 {
            RELEASE.request();
        }
        assert_eq!(
            RELEASES_RUN.load(Ordering::SeqCst),
            0,
            "the release ran before the requester's buffers were freed"
        );
        releases_reach(1).await;
        let first = Instant::now();
        RELEASE.request();
        RELEASE.request();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            RELEASES_RUN.load(Ordering::SeqCst),
            1,
            "released twice within the interval"
        );
        releases_reach(2).await;
        assert!(first.elapsed() >= Duration::from_millis(250));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            RELEASES_RUN.load(Ordering::SeqCst),
            2,
            "requests made while one was pending got a release of their own"
        );
    }

    /// Both hold part of a spent budget and wait for more that only the other could
    /// give back: after [`STUCK_AFTER`] the larger holder is cut, and once it gives
    /// back, the other is served.
    #[tokio::test]
    async fn holders_waiting_on_each_other_are_resolved_by_cutting_the_larger() {
        let budget = Arc::new(MemoryBudget::new(100));
        let mut small = Holding::with_allowance(budget.clone(), 0);
        let mut large = Holding::with_allowance(budget.clone(), 0);
        assert!(small.try_grow(40));
        assert!(large.try_grow(60));
        let large_task = tokio::spawn(async move {
            let cut = large.grow(30).await;
            (cut, large) // dropped by the test: what it held goes back
        });
        let started = Instant::now();
        let grown = tokio::time::timeout(Duration::from_secs(10), async {
            let (cut, large) = large_task.await.unwrap();
            assert_eq!(cut, Err(Cut), "the larger holder was not the one cut");
            drop(large);
            small.grow(30).await
        })
        .await
        .expect("the stuck budget was never resolved");
        assert_eq!(grown, Ok(()));
        assert!(started.elapsed() >= STUCK_AFTER);
        assert_eq!(budget.cuts(), 1);
        assert_eq!(budget.used(), 70);
    }

    /// A holder that is not waiting (its peer sends nothing) is asked to cut when a
    /// waiter finds the budget stuck.
    #[tokio::test]
    async fn an_idle_holder_of_a_stuck_budget_is_asked_to_cut() {
        let budget = Arc::new(MemoryBudget::new(100));
        let mut idle = Holding::with_allowance(budget.clone(), 0);
        assert!(idle.try_grow(100));
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { Holding::with_allowance(budget, 0).grow(10).await }
        });
        tokio::time::timeout(Duration::from_secs(10), idle.cut_requested())
            .await
            .expect("the idle holder was never asked to cut");
        idle.shrink(100);
        let grown = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter was not served after the cut");
        assert_eq!(grown.unwrap(), Ok(()));
    }

    /// While a holder hands its events to the queue, its bytes are coming back: a
    /// waiter waits for them, however long the queue takes, and nobody is cut.
    #[tokio::test]
    async fn bytes_on_their_way_to_the_queue_are_waited_for_not_cut() {
        let budget = Arc::new(MemoryBudget::new(100));
        let mut pushing = Holding::with_allowance(budget.clone(), 0);
        assert!(pushing.try_grow(100));
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { Holding::with_allowance(budget, 0).grow(10).await }
        });
        pushing
            .waiting_for_pipeline(tokio::time::sleep(STUCK_AFTER * 3))
            .await;
        assert!(
            !pushing.take_cut(),
            "a holder waiting on the pipeline was cut"
        );
        assert!(!waiter.is_finished());
        pushing.shrink(100);
        let grown = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter was not served once the queue took the events");
        assert_eq!(grown.unwrap(), Ok(()));
        assert_eq!(budget.cuts(), 0);
    }

    #[tokio::test]
    async fn a_request_larger_than_the_budget_takes_it_whole_once_free() {
        let budget = Arc::new(MemoryBudget::new(10));
        let mut a = Holding::with_allowance(budget.clone(), 0);
        tokio::time::timeout(Duration::from_secs(5), a.grow(50))
            .await
            .expect("an oversized request waited on an empty budget")
            .unwrap();
        assert_eq!(budget.used(), 50);
    }
}
