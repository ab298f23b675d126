//! Handing events back to the thread that allocated them, to be freed there.
//!
//! Inputs build events on their own threads (IO runtime threads, stdin decoders) and
//! workers drop them. With mimalloc, a block freed by another thread than its owner goes
//! on an atomic list that the owner must later collect: in profiles of the Beats and
//! JSON pipelines that remote path (`mi_free` + `_mi_page_free_collect`) took a quarter
//! of all CPU. A thread that builds events in bulk makes itself a [`Home`]; batches
//! remember the home of their events, and a worker done with a batch hands its events
//! back there instead of freeing them. The home thread frees them, on its own heap and
//! in cache for its next allocations, when it next builds a batch or goes idle.
//!
//! That only pays when the home built most of the batch's memory. When filters build
//! more than the input did (a raw line that grok or a json filter takes apart), freeing
//! on the home thread would make those blocks the remote ones instead, and both threads
//! would pay for it. So each side counts its allocations ([`note_allocation`], called by
//! the binary's global allocator): a batch records what its home spent building it, the
//! worker what it spent on it, and the batch goes home only when the home's share is
//! the larger. Without counts (a library user's allocator, tests) both are zero and
//! batches go home.
//!
//! Bounds: a home holds at most [`MAX_HELD`] returned events; past that, or when its
//! thread has ended, events are freed where they are, as before. Nothing here changes
//! what happens to an event, only which thread frees its memory.

use crate::event::Event;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The most returned events a home holds; returns past it are freed by the returner.
/// About two full queues of default batches (see `queue.max_events`); at a few hundred
/// bytes to a few KiB an event, a few MiB per home at most.
pub const MAX_HELD: usize = 8192;

/// Where the events built on one thread go back to be freed.
#[derive(Debug, Default)]
pub struct Home {
    state: Mutex<State>,
    /// Events in `state.returned`, read without the lock to skip empty collections.
    held: AtomicUsize,
}

#[derive(Debug, Default)]
struct State {
    /// Returned event vectors, freed at the thread's next [`collect`].
    returned: Vec<Vec<Event>>,
    /// Since when the thread waits for work: it does not collect then, so [`sweep`]
    /// frees what it holds once it has waited [`AWAY_LIMIT`].
    away_since: Option<Instant>,
    /// The thread has ended: returns are freed by the returner.
    ended: bool,
}

impl Home {
    /// Returned events waiting to be freed here.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes what was returned.
    fn take(&self, state: &mut State) -> Vec<Vec<Event>> {
        self.held.store(0, Ordering::Relaxed);
        std::mem::take(&mut state.returned)
    }
}

/// How long a home may wait for work holding returned events before [`sweep`] frees
/// them: an idle pipeline gives its memory back within about this much time.
pub const AWAY_LIMIT: Duration = Duration::from_millis(500);

/// Every home, to be swept.
static HOMES: Mutex<Vec<Weak<Home>>> = Mutex::new(Vec::new());

thread_local! {
    static HERE: RefCell<Option<HomeGuard>> = const { RefCell::new(None) };
    /// Allocations made by this thread so far (see [`note_allocation`]).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    /// [`ALLOCATIONS`] when this thread last built a batch.
    static LAST_BUILT: Cell<u64> = const { Cell::new(0) };
}

/// Counts one allocation on the calling thread. The binary's global allocator calls it;
/// it must not allocate, and does not (a const thread-local `Cell`, no destructor).
#[inline]
pub fn note_allocation() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get().wrapping_add(1)));
}

/// Allocations made by the calling thread so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.try_with(Cell::get).unwrap_or(0)
}

/// Allocations the calling thread made since it last built a batch: what building the
/// current one cost, as near as one thread serving several connections can tell.
pub fn allocations_since_last_batch() -> u64 {
    let now = allocations();
    LAST_BUILT
        .try_with(|last| now.wrapping_sub(last.replace(now)))
        .unwrap_or(0)
}

/// Ends the home with its thread: what it still holds is freed, and later returns are
/// freed by whoever returns them.
#[derive(Debug)]
struct HomeGuard(Arc<Home>);

impl Drop for HomeGuard {
    fn drop(&mut self) {
        let held = {
            let mut state = self.0.state();
            state.ended = true;
            self.0.take(&mut state)
        };
        drop(held);
    }
}

/// Makes the calling thread a home for the events it builds from now on. Meant for
/// threads that build events in bulk and live long: IO runtime threads, decoders. The
/// thread must call [`collect`] now and then (building a batch does) and [`away`]
/// before it blocks for long, or returns wait for it.
pub fn make_home() {
    // A thread being torn down has no thread-locals left: it simply stays no home.
    let _ = HERE.try_with(|here| {
        let mut here = here.borrow_mut();
        if here.is_none() {
            let home = Arc::new(Home::default());
            let mut homes = HOMES.lock().unwrap_or_else(|p| p.into_inner());
            homes.retain(|h| h.strong_count() > 0);
            homes.push(Arc::downgrade(&home));
            *here = Some(HomeGuard(home));
        }
    });
}

/// The calling thread's home, if it made itself one.
pub fn here() -> Option<Arc<Home>> {
    HERE.try_with(|here| here.borrow().as_ref().map(|g| g.0.clone()))
        .ok()
        .flatten()
}

fn with_here(f: impl FnOnce(&Arc<Home>)) {
    if let Some(home) = here() {
        f(&home);
    }
}

fn is_here(home: &Arc<Home>) -> bool {
    HERE.try_with(|here| {
        here.borrow()
            .as_ref()
            .is_some_and(|g| Arc::ptr_eq(&g.0, home))
    })
    .unwrap_or(false)
}

/// Hands `events` back to `home`, or frees them here when this is the home thread, the
/// home is full or ended.
pub fn give_back(home: &Arc<Home>, events: Vec<Event>) {
    if events.capacity() == 0 {
        return;
    }
    let n = events.len().max(1);
    if is_here(home) || home.held.load(Ordering::Relaxed) + n > MAX_HELD {
        drop(events);
        return;
    }
    let mut state = home.state();
    if state.ended {
        drop(state);
        drop(events);
        return;
    }
    home.held.fetch_add(n, Ordering::Relaxed);
    state.returned.push(events);
}

/// Frees what was handed back to the calling thread's home. Cheap when there is
/// nothing: one thread-local and one atomic read.
pub fn collect() {
    with_here(|home| {
        if home.held.load(Ordering::Relaxed) > 0 {
            let held = home.take(&mut home.state());
            drop(held);
        }
    });
}

/// The calling thread is about to wait for work: frees what came back so far. What
/// comes back while it waits is held for it, until [`sweep`] frees it.
pub fn away() {
    with_here(|home| {
        let held = {
            let mut state = home.state();
            state.away_since = Some(Instant::now());
            home.take(&mut state)
        };
        drop(held);
    });
}

/// The calling thread is working again.
pub fn back() {
    with_here(|home| home.state().away_since = None);
}

/// Frees what homes that have waited for work longer than [`AWAY_LIMIT`] hold, on the
/// calling thread: the bound in time on memory held for idle threads.
pub fn sweep() {
    let homes: Vec<Arc<Home>> = {
        let mut homes = HOMES.lock().unwrap_or_else(|p| p.into_inner());
        homes.retain(|h| h.strong_count() > 0);
        homes.iter().filter_map(Weak::upgrade).collect()
    };
    for home in homes {
        if home.held.load(Ordering::Relaxed) == 0 {
            continue;
        }
        let held = {
            let mut state = home.state();
            match state.away_since {
                Some(since) if since.elapsed() >= AWAY_LIMIT => home.take(&mut state),
                _ => Vec::new(),
            }
        };
        drop(held);
    }
}

/// Runs [`sweep`] every [`AWAY_LIMIT`] until the task is dropped.
pub async fn sweep_forever() {
    let mut every = tokio::time::interval(AWAY_LIMIT);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        sweep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_go_back_to_their_home_and_are_freed_there() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (back_tx, back_rx) = std::sync::mpsc::channel::<()>();
        let producer = std::thread::spawn(move || {
            make_home();
            let home = here().expect("a home");
            tx.send((home.clone(), vec![Event::new(), Event::new()]))
                .expect("send");
            back_rx.recv().expect("returned");
            assert_eq!(home.held.load(Ordering::Relaxed), 2);
            collect();
            assert_eq!(home.held.load(Ordering::Relaxed), 0);
            home
        });
        let (home, events) = rx.recv().expect("events");
        give_back(&home, events);
        back_tx.send(()).expect("signal");
        let home = producer.join().expect("producer");
        // The thread ended: returns are now freed by the returner, not held.
        give_back(&home, vec![Event::new()]);
        assert_eq!(home.held.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_sweep_frees_what_a_home_away_for_long_holds() {
        let (home_tx, home_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let producer = std::thread::spawn(move || {
            make_home();
            away();
            home_tx.send(here().expect("a home")).expect("send");
            go_rx.recv().expect("done");
        });
        let home = home_rx.recv().expect("home");
        give_back(&home, vec![Event::new()]);
        assert_eq!(home.held.load(Ordering::Relaxed), 1);
        home.state().away_since = Some(Instant::now());
        sweep();
        assert_eq!(
            home.held.load(Ordering::Relaxed),
            1,
            "away only briefly: kept"
        );
        home.state().away_since = Instant::now().checked_sub(AWAY_LIMIT);
        sweep();
        assert_eq!(home.held.load(Ordering::Relaxed), 0, "away for long: freed");
        go_tx.send(()).expect("go");
        producer.join().expect("producer");
    }

    #[test]
    fn a_full_home_holds_no_more() {
        make_home();
        let home = here().expect("a home");
        let other = std::thread::spawn(move || {
            for _ in 0..(MAX_HELD / 64 + 4) {
                give_back(&home, (0..64).map(|_| Event::new()).collect());
            }
            home
        })
        .join()
        .expect("returner");
        assert!(other.held.load(Ordering::Relaxed) <= MAX_HELD);
        collect();
        assert_eq!(other.held.load(Ordering::Relaxed), 0);
    }
}
