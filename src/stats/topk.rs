//! The most frequent messages of a stream in bounded memory: the Space-Saving sketch
//! (Metwally, Agrawal, El Abbadi 2005).
//!
//! It keeps at most `capacity` counters. A message already counted is incremented; a new
//! one takes a free counter, or replaces the smallest, inheriting its count (+1) and
//! recording that count as its possible over-estimate. Every message whose true count
//! exceeds `total / capacity` is guaranteed to be in the table, and each reported count
//! is at most `error` above the truth; while fewer than `capacity` distinct messages
//! arrive, counts are exact.

use serde::{Deserialize, Serialize};

/// One tracked message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    pub message: Box<str>,
    /// Upper bound of the true count.
    pub count: u64,
    /// How much of `count` may be inherited from an evicted message.
    pub error: u64,
}

/// A Space-Saving table of at most `capacity` messages.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SpaceSaving {
    capacity: usize,
    entries: Vec<Counted>,
}

impl SpaceSaving {
    pub fn new(capacity: usize) -> SpaceSaving {
        SpaceSaving {
            capacity: capacity.max(1),
            entries: Vec::new(),
        }
    }

    /// Counts `n` occurrences of `message`.
    pub fn add(&mut self, message: &str, n: u64) {
        if let Some(e) = self.entries.iter_mut().find(|e| &*e.message == message) {
            e.count += n;
            return;
        }
        if self.entries.len() < self.capacity {
            self.entries.push(Counted {
                message: message.into(),
                count: n,
                error: 0,
            });
            return;
        }
        // Full: the smallest counter gives its slot to the newcomer.
        if let Some(min) = self.entries.iter_mut().min_by_key(|e| e.count) {
            let inherited = min.count;
            *min = Counted {
                message: message.into(),
                count: inherited + n,
                error: inherited,
            };
        }
    }

    pub fn entries(&self) -> &[Counted] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Raises the capacity (never lowers it: tracked messages are not thrown away).
    pub fn grow_to(&mut self, capacity: usize) {
        self.capacity = self.capacity.max(capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_capacity() {
        let mut s = SpaceSaving::new(4);
        for m in ["a", "b", "a", "c", "a", "b"] {
            s.add(m, 1);
        }
        let get = |m: &str| s.entries().iter().find(|e| &*e.message == m).unwrap().count;
        assert_eq!((get("a"), get("b"), get("c")), (3, 2, 1));
        assert!(s.entries().iter().all(|e| e.error == 0));
    }

    #[test]
    fn keeps_the_heavy_hitter_among_a_million_distinct_messages() {
        let mut s = SpaceSaving::new(16);
        for i in 0..1_000_000u32 {
            s.add(&format!("noise {i}"), 1);
            if i % 10 == 0 {
                s.add("the real problem", 1);
            }
        }
        assert_eq!(s.len(), 16);
        let hit = s
            .entries()
            .iter()
            .find(|e| &*e.message == "the real problem")
            .expect("heavy hitter kept");
        // Over-estimate bounded by its recorded error.
        assert!(hit.count >= 100_000 && hit.count - hit.error <= 100_000);
    }
}
