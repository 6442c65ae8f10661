//! Ordered maps and sets kept as one sorted vector.
//!
//! The core's replay memories (an account's seen base keys, the healer's
//! peers and nonces) are bounded to a few thousand entries and iterated in
//! key order when pickled. A sorted `Vec` gives the same order and the same
//! lookups in logarithmic time, with a fraction of `BTreeMap`'s code: each
//! key type instantiates a B-tree's node balancing afresh, which was about
//! 39 KiB of the WebAssembly module (docs/PERFORMANCE.md). Insertion moves
//! at most the whole vector, a few hundred KiB at the caps, once per
//! accepted session start or reset.

use alloc::vec::Vec;

/// A map from `K` to `V` in ascending key order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SortedMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        Self { entries: Vec::new() }
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    /// An empty map.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn find(&self, key: &K) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.cmp(key))
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let i = self.find(key).ok()?;
        self.entries.get(i).map(|(_, v)| v)
    }

    /// Whether `key` is present.
    pub(crate) fn contains_key(&self, key: &K) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`; the previous value, if there was one.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => self.entries.get_mut(i).map(|(_, v)| core::mem::replace(v, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes `key`; its value, if it was present.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.find(key).ok()?;
        Some(self.entries.remove(i).1)
    }

    /// Keeps only the entries for which `keep` is true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }

    /// The entries in ascending key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Appends an entry whose key is greater than every key present, in
    /// constant time (decoding a pickle, which lists keys in order); false,
    /// and nothing added, if it is not.
    pub(crate) fn push_greatest(&mut self, key: K, value: V) -> bool {
        if self.entries.last().is_some_and(|(last, _)| *last >= key) {
            return false;
        }
        self.entries.push((key, value));
        true
    }

    /// The values in ascending key order.
    #[cfg(test)]
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The first entry, the one with the smallest key.
    pub(crate) fn first(&self) -> Option<(&K, &V)> {
        self.entries.first().map(|(k, v)| (k, v))
    }

    /// The last entry, the one with the greatest key.
    #[cfg(test)]
    pub(crate) fn last(&self) -> Option<(&K, &V)> {
        self.entries.last().map(|(k, v)| (k, v))
    }
}

/// A set of `K` in ascending order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SortedSet<K> {
    map: SortedMap<K, ()>,
}

impl<K> Default for SortedSet<K> {
    fn default() -> Self {
        Self { map: SortedMap::default() }
    }
}

impl<K: Ord> SortedSet<K> {
    /// An empty set.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The number of elements.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether `key` is in the set.
    pub(crate) fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    /// Adds `key`; false if it was already there.
    pub(crate) fn insert(&mut self, key: K) -> bool {
        self.map.insert(key, ()).is_none()
    }

    /// Removes `key`; false if it was not there.
    pub(crate) fn remove(&mut self, key: &K) -> bool {
        self.map.remove(key).is_some()
    }

    /// Appends an element greater than every element present, in
    /// constant time; false, and nothing added, if it is not.
    pub(crate) fn push_greatest(&mut self, key: K) -> bool {
        self.map.push_greatest(key, ())
    }

    /// The smallest element.
    pub(crate) fn first(&self) -> Option<&K> {
        self.map.first().map(|(k, _)| k)
    }

    /// The greatest element.
    #[cfg(test)]
    pub(crate) fn last(&self) -> Option<&K> {
        self.map.last().map(|(k, _)| k)
    }

    /// The elements in ascending order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &K> {
        self.map.iter().map(|(k, _)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::{BTreeMap, BTreeSet};
    use proptest::prelude::*;

    proptest! {
        /// Any sequence of inserts, removes and retains leaves the map
        /// equal to a `BTreeMap` that saw the same operations, with the
        /// same answers on the way.
        #[test]
        fn behaves_like_a_btree_map(ops in proptest::collection::vec((0u8..4, 0u8..32, any::<u16>()), 0..200)) {
            let mut ours = SortedMap::new();
            let mut reference = BTreeMap::new();
            for (op, key, value) in ops {
                match op {
                    0 => prop_assert_eq!(ours.insert(key, value), reference.insert(key, value)),
                    1 => prop_assert_eq!(ours.remove(&key), reference.remove(&key)),
                    2 => {
                        ours.retain(|k, v| !(*k ^ *v as u8).is_multiple_of(3));
                        reference.retain(|k, v| !(*k ^ *v as u8).is_multiple_of(3));
                    }
                    _ => {
                        prop_assert_eq!(ours.get(&key), reference.get(&key));
                        prop_assert_eq!(ours.contains_key(&key), reference.contains_key(&key));
                    }
                }
                prop_assert_eq!(ours.len(), reference.len());
                prop_assert_eq!(ours.first(), reference.first_key_value());
                prop_assert_eq!(ours.last(), reference.last_key_value());
            }
            prop_assert!(ours.iter().eq(reference.iter()));
        }

        /// The same for the set against a `BTreeSet`.
        #[test]
        fn behaves_like_a_btree_set(ops in proptest::collection::vec((any::<bool>(), 0u8..32), 0..200)) {
            let mut ours = SortedSet::new();
            let mut reference = BTreeSet::new();
            for (insert, key) in ops {
                if insert {
                    prop_assert_eq!(ours.insert(key), reference.insert(key));
                } else {
                    prop_assert_eq!(ours.remove(&key), reference.remove(&key));
                }
                prop_assert_eq!(ours.contains(&key), reference.contains(&key));
                // Appending succeeds exactly for a key above the greatest.
                let above = reference.last().is_none_or(|last| key.wrapping_add(7) > *last);
                let mut copy = ours.clone();
                prop_assert_eq!(copy.push_greatest(key.wrapping_add(7)), above);
                prop_assert_eq!(copy.len(), ours.len() + usize::from(above));
                prop_assert_eq!(ours.first(), reference.first());
                prop_assert_eq!(ours.last(), reference.last());
            }
            prop_assert_eq!(ours.len(), reference.len());
            prop_assert!(ours.iter().eq(reference.iter()));
        }
    }
}
