//! State split into independently locked shards, so that no request waits
//! behind a sweep of everything: a sweep (expired nonces, sessions, idle
//! rate-limit buckets) locks one shard at a time, and a request locks only
//! the shard of its key. Keys are placed by a hash keyed at random when
//! the process starts, so a client cannot pick keys (account ids are
//! public keys it can grind) that all land in one shard.

use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Mutex, MutexGuard};

/// Entries per shard the relay aims for when it sizes a set of shards.
const ENTRIES_PER_SHARD: usize = 16 * 1024;
/// Most shards of one set.
pub(crate) const MAX_SHARDS: usize = 64;

/// How many shards hold `capacity` entries: one per 16384, 1 to 64 (small
/// capacities, as in tests, keep one shard and exact global behaviour).
pub(crate) fn shards_for(capacity: usize) -> usize {
    (capacity / ENTRIES_PER_SHARD).clamp(1, MAX_SHARDS)
}

/// `n` values of `T`, each behind its own lock.
pub(crate) struct Shards<T> {
    hasher: RandomState,
    shards: Box<[Mutex<T>]>,
}

impl<T: Default> Shards<T> {
    /// `n` (at least 1) shards holding `T::default()`.
    pub(crate) fn new(n: usize) -> Self {
        Self { hasher: RandomState::new(), shards: (0..n.max(1)).map(|_| Mutex::default()).collect() }
    }
}

impl<T> Shards<T> {
    /// How many shards there are.
    pub(crate) fn count(&self) -> usize {
        self.shards.len()
    }

    /// The index of the shard holding `key`.
    pub(crate) fn index_of(&self, key: &impl Hash) -> usize {
        let n = u64::try_from(self.shards.len()).unwrap_or(1);
        usize::try_from(self.hasher.hash_one(key) % n).unwrap_or(0)
    }

    /// Locks shard `i` (`None` if there is no such shard or its lock is
    /// poisoned).
    pub(crate) fn lock(&self, i: usize) -> Option<MutexGuard<'_, T>> {
        self.shards.get(i)?.lock().ok()
    }

    /// Locks the shard holding `key`.
    pub(crate) fn lock_of(&self, key: &impl Hash) -> Option<MutexGuard<'_, T>> {
        self.lock(self.index_of(key))
    }

    /// Runs `f` on every shard, one lock at a time.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&mut T)) {
        for shard in self.shards.iter() {
            if let Ok(mut s) = shard.lock() {
                f(&mut s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_spread_over_the_shards_and_stay_put() {
        let shards: Shards<Vec<u32>> = Shards::new(16);
        for k in 0..16_000u32 {
            let i = shards.index_of(&k);
            assert_eq!(i, shards.index_of(&k));
            shards.lock(i).unwrap().push(k);
        }
        let mut sizes = Vec::new();
        shards.for_each(|s| sizes.push(s.len()));
        assert_eq!(sizes.iter().sum::<usize>(), 16_000);
        assert!(sizes.iter().all(|n| (700..1300).contains(n)), "{sizes:?}");
        assert!(shards.lock(16).is_none());
        assert_eq!((shards_for(100), shards_for(1_000_000), shards_for(usize::MAX)), (1, 61, 64));
    }
}
