//! Rate limits: a token bucket per account and per client address.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets keyed by `K`: `rate` tokens per second up to `burst`.
pub(crate) struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

/// Most keys tracked; idle ones are dropped first when full.
const MAX_KEYS: usize = 1_000_000;

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter allowing `rate` requests per second with bursts of `burst`.
    pub(crate) fn new(rate: f64, burst: f64) -> Self {
        Self { rate, burst: burst.max(1.0), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `key`. On refusal, returns the whole seconds to
    /// wait before a token is available.
    pub(crate) fn check(&self, key: &K) -> Result<(), u64> {
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else { return Err(1) };
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let b = buckets.entry(key.clone()).or_insert(Bucket { tokens: self.burst, at: now });
        let elapsed = now.duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - b.tokens) / self.rate).ceil();
            // Saturating float-to-int conversion: `as` on f64 clamps.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::as_conversions)]
            Err((wait as u64).max(1))
        }
    }

    /// Drops buckets that are full again (idle keys).
    pub(crate) fn purge(&self) {
        let now = Instant::now();
        let (rate, burst) = (self.rate, self.burst);
        if let Ok(mut buckets) = self.buckets.lock() {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
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
    fn burst_then_refusal_with_retry_after() {
        let l = RateLimiter::new(0.5, 3.0);
        for _ in 0..3 {
            assert_eq!(l.check(&1u8), Ok(()));
        }
        assert_eq!(l.check(&1u8), Err(2));
        // Another key has its own bucket.
        assert_eq!(l.check(&2u8), Ok(()));
    }
}
