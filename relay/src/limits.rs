//! Rate limits: a token bucket per account and per client address.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

use crate::shards::{Shards, shards_for};

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One shard's buckets in two generations: a key is looked up in the
/// current one, then in the previous one (and moved to the current). When
/// the current generation holds half the shard's room, the previous one is
/// dropped whole and the current one takes its place: memory stays bounded
/// and making room costs no scan. A key dropped that way was idle for a
/// whole generation; it comes back with a full bucket.
struct Generations<K> {
    current: HashMap<K, Bucket>,
    previous: HashMap<K, Bucket>,
}

impl<K> Default for Generations<K> {
    fn default() -> Self {
        Self { current: HashMap::new(), previous: HashMap::new() }
    }
}

/// Token buckets keyed by `K`: `rate` tokens per second up to `burst`.
pub(crate) struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    /// Keys per generation per shard.
    generation: usize,
    shards: Shards<Generations<K>>,
}

/// Most keys tracked in all.
const MAX_KEYS: usize = 1_000_000;

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter allowing `rate` requests per second with bursts of `burst`.
    pub(crate) fn new(rate: f64, burst: f64) -> Self {
        Self::with_capacity(rate, burst, MAX_KEYS)
    }

    /// [`RateLimiter::new`] tracking at most `capacity` keys.
    fn with_capacity(rate: f64, burst: f64, capacity: usize) -> Self {
        let shards = Shards::new(shards_for(capacity));
        let generation = (capacity / shards.count() / 2).max(1);
        Self { rate, burst: burst.max(1.0), generation, shards }
    }

    /// Takes one token for `key`. On refusal, returns the whole seconds to
    /// wait before a token is available.
    pub(crate) fn check(&self, key: &K) -> Result<(), u64> {
        self.take(key, 1.0)
    }

    /// Takes `cost` tokens for `key` (a cost above the burst needs a full
    /// bucket and empties it). On refusal, takes nothing and returns the
    /// whole seconds to wait until enough are available.
    pub(crate) fn take(&self, key: &K, cost: f64) -> Result<(), u64> {
        let cost = cost.clamp(0.0, self.burst);
        let now = Instant::now();
        let Some(mut shard) = self.shards.lock_of(key) else { return Err(1) };
        let g = &mut *shard;
        if !g.current.contains_key(key) {
            let bucket = g.previous.remove(key).unwrap_or(Bucket { tokens: self.burst, at: now });
            if g.current.len() >= self.generation {
                g.previous = std::mem::take(&mut g.current);
            }
            g.current.insert(key.clone(), bucket);
        }
        let Some(b) = g.current.get_mut(key) else { return Err(1) };
        let elapsed = now.duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= cost {
            b.tokens -= cost;
            Ok(())
        } else {
            let wait = ((cost - b.tokens) / self.rate).ceil();
            // Saturating float-to-int conversion: `as` on f64 clamps.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::as_conversions)]
            Err((wait as u64).max(1))
        }
    }

    /// Returns `cost` tokens taken for `key` by a request that then did
    /// nothing (up to the burst).
    pub(crate) fn give_back(&self, key: &K, cost: f64) {
        if let Some(mut shard) = self.shards.lock_of(key)
            && let Some(b) = shard.current.get_mut(key)
        {
            b.tokens = (b.tokens + cost.max(0.0)).min(self.burst);
        }
    }

    /// Drops buckets that are full again (idle keys), one shard at a time.
    pub(crate) fn purge(&self) {
        let now = Instant::now();
        let (rate, burst) = (self.rate, self.burst);
        let busy = |b: &Bucket| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst;
        self.shards.for_each(|g| {
            g.current.retain(|_, b| busy(b));
            g.previous.retain(|_, b| busy(b));
        });
    }

    /// Keys tracked now.
    #[cfg(test)]
    fn len(&self) -> usize {
        let mut n = 0;
        self.shards.for_each(|g| n += g.current.len() + g.previous.len());
        n
    }
}

/// Open connections, in all and per peer address.
#[derive(Default)]
struct Open {
    total: usize,
    by_address: HashMap<std::net::IpAddr, usize>,
}

/// Caps on open connections: `max` in all, `per_address` per peer address.
pub(crate) struct ConnectionLimiter {
    max: usize,
    per_address: usize,
    open: std::sync::Arc<Mutex<Open>>,
}

/// One open connection's place; dropping it frees the place.
pub(crate) struct ConnectionSlot {
    open: std::sync::Arc<Mutex<Open>>,
    address: Option<std::net::IpAddr>,
}

impl ConnectionLimiter {
    /// A limiter for `max` connections in all and `per_address` per address.
    pub(crate) fn new(max: usize, per_address: usize) -> Self {
        Self { max, per_address, open: std::sync::Arc::default() }
    }

    /// Takes a place for a connection from `address` (not counted per
    /// address when `exempt`, e.g. a trusted proxy), or `None` when full.
    pub(crate) fn admit(&self, address: std::net::IpAddr, exempt: bool) -> Option<ConnectionSlot> {
        let mut open = self.open.lock().ok()?;
        if open.total >= self.max {
            return None;
        }
        if !exempt {
            let n = open.by_address.entry(address).or_insert(0);
            if *n >= self.per_address {
                return None;
            }
            *n = n.saturating_add(1);
        }
        open.total = open.total.saturating_add(1);
        Some(ConnectionSlot { open: std::sync::Arc::clone(&self.open), address: (!exempt).then_some(address) })
    }

    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.open.lock().map(|o| o.total).unwrap_or(0)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.lock() {
            open.total = open.total.saturating_sub(1);
            if let Some(a) = self.address
                && let Some(n) = open.by_address.get_mut(&a)
            {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.by_address.remove(&a);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_are_taken_whole_and_given_back_up_to_the_burst() {
        let limiter: RateLimiter<u8> = RateLimiter::new(0.001, 10.0);
        assert_eq!(limiter.take(&1, 6.0), Ok(()));
        assert!(limiter.take(&1, 6.0).is_err(), "only 4 left");
        limiter.give_back(&1, 6.0);
        assert_eq!(limiter.take(&1, 6.0), Ok(()), "the refund made room");
        limiter.give_back(&1, 100.0);
        assert_eq!(limiter.take(&1, 10.0), Ok(()), "refunds stop at the burst");
        assert!(limiter.take(&1, 1.0).is_err());
        // A cost above the burst needs a full bucket and empties it.
        assert_eq!(limiter.take(&2, 50.0), Ok(()));
        assert!(limiter.take(&2, 1.0).is_err());
    }

    #[test]
    fn burst_then_refusal_with_retry_after() {
        let l = RateLimiter::new(0.5, 3.0);
        for _ in 0..3 {
            assert_eq!(l.check(&1u8), Ok(()));
        }
        assert_eq!(l.check(&1u8), Err(2));
        // Another key has its own bucket.
        assert_eq!(l.check(&2u8), Ok(()));
    }

    #[test]
    fn memory_is_bounded_and_busy_keys_keep_their_state() {
        let l = RateLimiter::with_capacity(0.001, 2.0, 100);
        // The busy key spends its burst.
        assert_eq!((l.check(&0u32), l.check(&0u32)), (Ok(()), Ok(())));
        assert!(l.check(&0u32).is_err());
        for k in 1..10_000u32 {
            assert_eq!(l.check(&k), Ok(()));
            assert!(l.len() <= 100, "{} keys", l.len());
            // Touched now and then, it stays refused: churning through
            // fresh keys does not hand it a new burst.
            if k % 20 == 0 {
                assert!(l.check(&0u32).is_err(), "after {k} other keys");
            }
        }
        // Buckets that filled up again are swept; others stay.
        let l = RateLimiter::with_capacity(1000.0, 2.0, 100);
        for k in 0..10u32 {
            l.check(&k).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        let slow = RateLimiter::with_capacity(0.001, 2.0, 100);
        slow.check(&1u32).unwrap();
        l.purge();
        slow.purge();
        assert_eq!((l.len(), slow.len()), (0, 1));
    }
}
