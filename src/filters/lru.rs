//! A least-recently-used cache kept per worker thread, for filters whose lookups are
//! costly and whose inputs repeat (IP addresses, user agents, host names). One cache
//! per thread means no lock is ever contended on the hot path; the price is that each
//! worker warms its own copy, bounded at `capacity` entries each.

use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use thread_local::ThreadLocal;

struct Shard<V> {
    entries: Mutex<LruCache<Box<str>, V>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Cache statistics summed over threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

impl CacheStats {
    /// Hits over lookups, 0 before the first lookup.
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

pub struct PerThreadLru<V: Send> {
    capacity: NonZeroUsize,
    shards: ThreadLocal<Shard<V>>,
}

impl<V: Clone + Send> PerThreadLru<V> {
    /// A cache of at most `capacity` entries per thread; 0 is taken as 1.
    pub fn new(capacity: usize) -> PerThreadLru<V> {
        PerThreadLru {
            capacity: NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            shards: ThreadLocal::new(),
        }
    }

    /// The cached value of `key`, or `compute(key)` stored and returned.
    pub fn get_or_insert_with(&self, key: &str, compute: impl FnOnce(&str) -> V) -> V {
        let shard = self.shards.get_or(|| Shard {
            entries: Mutex::new(LruCache::new(self.capacity)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        });
        // Only this thread ever locks its own shard (besides `stats`), so a poisoned
        // lock means an earlier panic on this thread; the cache content is still valid.
        let mut entries = shard.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = entries.get(key) {
            shard.hits.fetch_add(1, Ordering::Relaxed);
            return v.clone();
        }
        shard.misses.fetch_add(1, Ordering::Relaxed);
        let v = compute(key);
        entries.put(key.into(), v.clone());
        v
    }

    /// Drops every cached entry (e.g. after a dictionary reload).
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            shard
                .entries
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
    }

    pub fn stats(&self) -> CacheStats {
        self.shards
            .iter()
            .fold(CacheStats::default(), |acc, s| CacheStats {
                hits: acc.hits + s.hits.load(Ordering::Relaxed),
                misses: acc.misses + s.misses.load(Ordering::Relaxed),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_and_counts() {
        let cache = PerThreadLru::new(2);
        let mut computed = 0;
        for k in ["a", "b", "a", "c", "b"] {
            cache.get_or_insert_with(k, |k| {
                computed += 1;
                k.to_string()
            });
        }
        // a, b miss; a hits; c evicts b; b misses again.
        assert_eq!(computed, 4);
        assert_eq!(cache.stats(), CacheStats { hits: 1, misses: 4 });
    }
}
