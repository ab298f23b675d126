//! The map of an event's fields: insertion-ordered, small and flat.
//!
//! Most maps in log events are small: a Filebeat document is about ten nested maps of
//! two to eight keys. A general hash map spends on each of them a second allocation (its
//! index), a hash per insert and per lookup, and 88 bytes inline, which made every
//! [`Value`] 96 bytes. Here a map is its entries in a vector, searched in order while it
//! has at most [`INDEXED_FROM`] - 1 keys; a hash index (keys hashed with per-process
//! random seeds, so crafted keys cannot be made to collide) is built only past that, so
//! a hostile document with thousands of keys stays linear. The map is 32 bytes inline.
//!
//! The API follows `indexmap`'s (the type this replaces), including its equality: two
//! maps are equal when they hold the same keys with equal values, in any order.

use super::Value;
use hashbrown::HashTable;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A map with this many keys or more is looked up through a hash index. Below it, a
/// scan of the keys (most differ in length, compared first) is faster than hashing.
pub const INDEXED_FROM: usize = 17;

/// Insertion-ordered map of field names to values.
#[derive(Clone, Default)]
pub struct Map {
    entries: Vec<(String, Value)>,
    /// Positions in `entries`, by key hash; `None` while the map is small.
    index: Option<Box<HashTable<usize>>>,
}

/// The hash of a key: seeds drawn at random once per process, then shared.
fn hash_key(key: &str) -> u64 {
    static STATE: std::sync::OnceLock<ahash::RandomState> = std::sync::OnceLock::new();
    STATE
        .get_or_init(|| {
            let s: [u64; 4] = rand::random();
            ahash::RandomState::with_seeds(s[0], s[1], s[2], s[3])
        })
        .hash_one(key)
}

impl Map {
    /// An empty map; allocates nothing.
    pub fn new() -> Map {
        Map::default()
    }

    /// An empty map with room for `n` fields.
    pub fn with_capacity(n: usize) -> Map {
        Map {
            entries: Vec::with_capacity(n),
            index: None,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
    }

    /// The position of `key`, if present.
    pub fn get_index_of(&self, key: &str) -> Option<usize> {
        match &self.index {
            None => self.entries.iter().position(|(k, _)| k == key),
            Some(table) => table
                .find(hash_key(key), |&i| self.entries[i].0 == key)
                .copied(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.get_index_of(key).map(|i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.get_index_of(key).map(|i| &mut self.entries[i].1)
    }

    pub fn get_key_value(&self, key: &str) -> Option<(&String, &Value)> {
        self.get_index_of(key).map(|i| {
            let (k, v) = &self.entries[i];
            (k, v)
        })
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get_index_of(key).is_some()
    }

    /// The entry at `index`, in insertion order.
    pub fn get_index(&self, index: usize) -> Option<(&String, &Value)> {
        self.entries.get(index).map(|(k, v)| (k, v))
    }

    pub fn get_index_mut(&mut self, index: usize) -> Option<(&String, &mut Value)> {
        self.entries.get_mut(index).map(|(k, v)| (&*k, v))
    }

    pub fn first(&self) -> Option<(&String, &Value)> {
        self.get_index(0)
    }

    pub fn last(&self) -> Option<(&String, &Value)> {
        self.entries.last().map(|(k, v)| (k, v))
    }

    /// Sets `key` to `value`. A key already present keeps its place and its old value
    /// is returned; a new key goes last.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        self.insert_full(key, value).1
    }

    /// [`Map::insert`], also returning the key's position.
    pub fn insert_full(&mut self, key: String, value: Value) -> (usize, Option<Value>) {
        match self.get_index_of(&key) {
            Some(i) => (i, Some(std::mem::replace(&mut self.entries[i].1, value))),
            None => (self.push_new(key, value), None),
        }
    }

    /// The value under `key`, inserted from `make` when missing; the key is copied only
    /// then.
    pub fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> Value) -> &mut Value {
        let i = match self.get_index_of(key) {
            Some(i) => i,
            None => self.push_new(key.to_owned(), make()),
        };
        &mut self.entries[i].1
    }

    /// Appends a key known to be absent; returns its position.
    fn push_new(&mut self, key: String, value: Value) -> usize {
        let i = self.entries.len();
        if let Some(table) = &mut self.index {
            let entries = &self.entries;
            table.insert_unique(hash_key(&key), i, |&j| {
                // Only the new key is not in `entries` yet; rehashing sees only old ones.
                hash_key(&entries[j].0)
            });
        }
        self.entries.push((key, value));
        if self.index.is_none() && self.entries.len() >= INDEXED_FROM {
            self.rebuild_index();
        }
        i
    }

    /// Builds the index anew from the entries (after a reorder, or once the map grew).
    fn rebuild_index(&mut self) {
        if self.entries.len() < INDEXED_FROM {
            self.index = None;
            return;
        }
        let mut table = HashTable::with_capacity(self.entries.len());
        for (i, (k, _)) in self.entries.iter().enumerate() {
            let entries = &self.entries;
            table.insert_unique(hash_key(k), i, |&j| hash_key(&entries[j].0));
        }
        self.index = Some(Box::new(table));
    }

    /// Removes `key`, keeping the order of the others (later ones move up by one).
    pub fn shift_remove(&mut self, key: &str) -> Option<Value> {
        self.shift_remove_entry(key).map(|(_, v)| v)
    }

    pub fn shift_remove_entry(&mut self, key: &str) -> Option<(String, Value)> {
        let i = self.get_index_of(key)?;
        self.shift_remove_index(i)
    }

    /// Removes the entry at `index`, keeping the order of the others.
    pub fn shift_remove_index(&mut self, index: usize) -> Option<(String, Value)> {
        if index >= self.entries.len() {
            return None;
        }
        if let Some(table) = &mut self.index {
            let hash = hash_key(&self.entries[index].0);
            if let Ok(slot) = table.find_entry(hash, |&j| j == index) {
                slot.remove();
            }
            for j in table.iter_mut() {
                if *j > index {
                    *j -= 1;
                }
            }
        }
        Some(self.entries.remove(index))
    }

    /// Removes `key`, moving the last entry into its place (cheaper, changes order).
    pub fn swap_remove(&mut self, key: &str) -> Option<Value> {
        let i = self.get_index_of(key)?;
        let last = self.entries.len() - 1;
        if let Some(table) = &mut self.index {
            let hash = hash_key(&self.entries[i].0);
            if let Ok(slot) = table.find_entry(hash, |&j| j == i) {
                slot.remove();
            }
            if i != last {
                let hash = hash_key(&self.entries[last].0);
                if let Some(j) = table.find_mut(hash, |&j| j == last) {
                    *j = i;
                }
            }
        }
        Some(self.entries.swap_remove(i).1)
    }

    /// Keeps the entries `keep` says yes to, in their order.
    pub fn retain(&mut self, mut keep: impl FnMut(&String, &mut Value) -> bool) {
        let before = self.entries.len();
        self.entries.retain_mut(|(k, v)| keep(k, v));
        if self.entries.len() != before && self.index.is_some() {
            self.rebuild_index();
        }
    }

    /// Moves the entry at `from` to `to`, shifting those in between.
    pub fn move_index(&mut self, from: usize, to: usize) {
        if from == to || from >= self.entries.len() || to >= self.entries.len() {
            return;
        }
        if from < to {
            self.entries[from..=to].rotate_left(1);
        } else {
            self.entries[to..=from].rotate_right(1);
        }
        if self.index.is_some() {
            self.rebuild_index();
        }
    }

    /// Orders the entries by key.
    pub fn sort_keys(&mut self) {
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
        if self.index.is_some() {
            self.rebuild_index();
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.index = None;
    }

    /// The entry of `key`, to read, change or fill it.
    pub fn entry(&mut self, key: String) -> Entry<'_> {
        match self.get_index_of(&key) {
            Some(index) => Entry::Occupied(OccupiedEntry { map: self, index }),
            None => Entry::Vacant(VacantEntry { map: self, key }),
        }
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter(self.entries.iter())
    }

    pub fn iter_mut(&mut self) -> IterMut<'_> {
        IterMut(self.entries.iter_mut())
    }

    pub fn keys(&self) -> Keys<'_> {
        Keys(self.entries.iter())
    }

    pub fn values(&self) -> Values<'_> {
        Values(self.entries.iter())
    }

    pub fn values_mut(&mut self) -> ValuesMut<'_> {
        ValuesMut(self.entries.iter_mut())
    }

    pub fn into_keys(self) -> impl Iterator<Item = String> {
        self.entries.into_iter().map(|(k, _)| k)
    }

    pub fn into_values(self) -> impl Iterator<Item = Value> {
        self.entries.into_iter().map(|(_, v)| v)
    }
}

/// A key's place in a [`Map`], from [`Map::entry`].
pub enum Entry<'a> {
    Occupied(OccupiedEntry<'a>),
    Vacant(VacantEntry<'a>),
}

impl<'a> Entry<'a> {
    pub fn key(&self) -> &str {
        match self {
            Entry::Occupied(o) => o.key(),
            Entry::Vacant(v) => v.key(),
        }
    }

    pub fn or_insert(self, value: Value) -> &'a mut Value {
        self.or_insert_with(|| value)
    }

    pub fn or_insert_with(self, make: impl FnOnce() -> Value) -> &'a mut Value {
        match self {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert(make()),
        }
    }

    pub fn or_default(self) -> &'a mut Value {
        self.or_insert_with(Value::default)
    }

    pub fn and_modify(mut self, change: impl FnOnce(&mut Value)) -> Self {
        if let Entry::Occupied(o) = &mut self {
            change(o.get_mut());
        }
        self
    }
}

/// A key present in the map.
pub struct OccupiedEntry<'a> {
    map: &'a mut Map,
    index: usize,
}

impl<'a> OccupiedEntry<'a> {
    pub fn key(&self) -> &str {
        &self.map.entries[self.index].0
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub fn get(&self) -> &Value {
        &self.map.entries[self.index].1
    }

    pub fn get_mut(&mut self) -> &mut Value {
        &mut self.map.entries[self.index].1
    }

    pub fn into_mut(self) -> &'a mut Value {
        &mut self.map.entries[self.index].1
    }

    /// Replaces the value, returning the old one.
    pub fn insert(&mut self, value: Value) -> Value {
        std::mem::replace(self.get_mut(), value)
    }

    /// Removes the entry, keeping the order of the others.
    pub fn shift_remove(self) -> Value {
        match self.map.shift_remove_index(self.index) {
            Some((_, v)) => v,
            // The index came from a lookup in this same map, borrowed since.
            None => Value::Null,
        }
    }
}

/// A key absent from the map.
pub struct VacantEntry<'a> {
    map: &'a mut Map,
    key: String,
}

impl<'a> VacantEntry<'a> {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn into_key(self) -> String {
        self.key
    }

    /// Adds the key, last, with `value`.
    pub fn insert(self, value: Value) -> &'a mut Value {
        let i = self.map.push_new(self.key, value);
        &mut self.map.entries[i].1
    }
}

/// Entries in order, by reference.
pub struct Iter<'a>(std::slice::Iter<'a, (String, Value)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a String, &'a Value);
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Entries in order, values mutable.
pub struct IterMut<'a>(std::slice::IterMut<'a, (String, Value)>);

impl<'a> Iterator for IterMut<'a> {
    type Item = (&'a String, &'a mut Value);
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (&*k, v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for IterMut<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (&*k, v))
    }
}

impl ExactSizeIterator for IterMut<'_> {}

/// Keys in order.
pub struct Keys<'a>(std::slice::Iter<'a, (String, Value)>);

impl<'a> Iterator for Keys<'a> {
    type Item = &'a String;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, _)| k)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Keys<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, _)| k)
    }
}

impl ExactSizeIterator for Keys<'_> {}

/// Values in order.
pub struct Values<'a>(std::slice::Iter<'a, (String, Value)>);

impl<'a> Iterator for Values<'a> {
    type Item = &'a Value;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(_, v)| v)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Values<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(_, v)| v)
    }
}

impl ExactSizeIterator for Values<'_> {}

/// Values in order, mutable.
pub struct ValuesMut<'a>(std::slice::IterMut<'a, (String, Value)>);

impl<'a> Iterator for ValuesMut<'a> {
    type Item = &'a mut Value;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(_, v)| v)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for ValuesMut<'_> {}

/// Entries in order, owned.
pub struct IntoIter(std::vec::IntoIter<(String, Value)>);

impl Iterator for IntoIter {
    type Item = (String, Value);
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for IntoIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back()
    }
}

impl ExactSizeIterator for IntoIter {}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = IntoIter;
    fn into_iter(self) -> IntoIter {
        IntoIter(self.entries.into_iter())
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = (&'a String, &'a Value);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Map {
    type Item = (&'a String, &'a mut Value);
    type IntoIter = IterMut<'a>;
    fn into_iter(self) -> IterMut<'a> {
        self.iter_mut()
    }
}

impl Extend<(String, Value)> for Map {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, items: I) {
        let items = items.into_iter();
        self.reserve(items.size_hint().0);
        for (k, v) in items {
            self.insert(k, v);
        }
    }
}

impl FromIterator<(String, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(items: I) -> Map {
        let mut map = Map::new();
        map.extend(items);
        map
    }
}

impl<const N: usize> From<[(String, Value); N]> for Map {
    fn from(items: [(String, Value); N]) -> Map {
        items.into_iter().collect()
    }
}

/// Equal when the same keys hold equal values, whatever their order (as `indexmap`).
impl PartialEq for Map {
    fn eq(&self, other: &Map) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl std::ops::Index<&str> for Map {
    type Output = Value;
    /// Panics when `key` is absent, as indexing a map does; for keys known present.
    fn index(&self, key: &str) -> &Value {
        match self.get(key) {
            Some(v) => v,
            None => panic!("no key `{key}` in the map"),
        }
    }
}

impl Serialize for Map {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Map {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Map, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = Map;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Map, A::Error> {
                let mut map = Map::with_capacity(access.size_hint().unwrap_or(8).min(64));
                while let Some((k, v)) = access.next_entry::<String, Value>()? {
                    map.insert(k, v);
                }
                Ok(map)
            }
        }
        d.deserialize_map(MapVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> String {
        format!("k{i}")
    }

    /// Every operation, on a small map and on one past the index threshold.
    #[test]
    fn small_and_indexed_maps_behave_alike() {
        for n in [5, INDEXED_FROM + 5, 200] {
            let mut m = Map::new();
            for i in 0..n {
                assert_eq!(m.insert(key(i), Value::Int(i as i64)), None);
            }
            assert_eq!(m.len(), n);
            assert_eq!(m.index.is_some(), n >= INDEXED_FROM);
            // A repeated key keeps its place and takes the new value.
            assert_eq!(m.insert(key(1), Value::Int(-1)), Some(Value::Int(1)));
            assert_eq!(m.get_index_of("k1"), Some(1));
            assert_eq!(m.get("k1"), Some(&Value::Int(-1)));
            assert_eq!(m.get("absent"), None);
            // shift_remove keeps the order; every later key is still found.
            assert_eq!(m.shift_remove("k0"), Some(Value::Int(0)));
            for i in 1..n {
                assert_eq!(m.get_index_of(&key(i)), Some(i - 1), "{n}: k{i}");
            }
            // swap_remove moves the last key into the hole.
            assert_eq!(m.swap_remove("k1"), Some(Value::Int(-1)));
            assert_eq!(m.get_index_of(&key(n - 1)), Some(0));
            for i in 2..n - 1 {
                assert_eq!(m.get(&key(i)), Some(&Value::Int(i as i64)));
            }
            m.retain(|k, _| k != "k2");
            assert!(!m.contains_key("k2"));
            assert!(m.contains_key(&key(n - 1)));
            m.move_index(0, m.len() - 1);
            assert_eq!(m.last().map(|(k, _)| k.clone()), Some(key(n - 1)));
            assert_eq!(m.get_index_of(&key(n - 1)), Some(m.len() - 1));
            let keys: Vec<&String> = m.keys().collect();
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(m.get_index_of(k), Some(i));
            }
        }
    }

    #[test]
    fn entries_fill_and_change_in_place() {
        let mut m = Map::new();
        *m.entry("a".into()).or_insert(Value::Int(0)) = Value::Int(1);
        match m.entry("a".into()) {
            Entry::Occupied(mut o) => {
                assert_eq!(o.insert(Value::Int(2)), Value::Int(1));
            }
            Entry::Vacant(_) => panic!("a is there"),
        }
        assert!(matches!(m.entry("b".into()), Entry::Vacant(_)));
        *m.get_or_insert_with("c", || Value::Int(3)) = Value::Int(4);
        assert_eq!(m.get("a"), Some(&Value::Int(2)));
        assert_eq!(m.get("c"), Some(&Value::Int(4)));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn equality_ignores_order_and_serialization_keeps_it() {
        let a: Map = [("x".into(), Value::Int(1)), ("y".into(), Value::Int(2))].into();
        let b: Map = [("y".into(), Value::Int(2)), ("x".into(), Value::Int(1))].into();
        assert_eq!(a, b);
        assert_eq!(
            serde_json::to_string(&a).ok().as_deref(),
            Some(r#"{"x":1,"y":2}"#)
        );
        assert_eq!(
            serde_json::to_string(&b).ok().as_deref(),
            Some(r#"{"y":2,"x":1}"#)
        );
        let back: Map = serde_json::from_str(r#"{"x":1,"y":2,"x":3}"#).unwrap_or_default();
        assert_eq!(back.get("x"), Some(&Value::Int(3)));
        assert_eq!(back.get_index_of("x"), Some(0));
    }

    #[test]
    fn a_value_is_small() {
        assert!(std::mem::size_of::<Map>() <= 32);
        assert!(std::mem::size_of::<Value>() <= 40);
    }
}
