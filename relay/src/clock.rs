//! The relay's clock, in Unix seconds: the system's, or a manual one that
//! tests set and advance. Everything that compares times in seconds reads
//! it: signed-request timestamps, relay-session lifetimes, handle-code
//! expiry and cooldown, message receipt times and their purge, the nonce
//! and session sweeps, and the WebSocket idle timeout and pings. (HTTP
//! connection timeouts are hyper's and run on tokio's timer.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// A handle on the relay's clock; clones share one clock.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<Manual>>,
}

#[derive(Debug)]
struct Manual {
    now: AtomicU64,
    changed: watch::Sender<u64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that stands at `now` until [`Clock::advance`] moves it.
    pub fn manual(now: u64) -> Self {
        let (changed, _) = watch::channel(now);
        Self { manual: Some(Arc::new(Manual { now: AtomicU64::new(now), changed })) }
    }

    /// The current Unix time in seconds.
    pub fn now(&self) -> u64 {
        match &self.manual {
            Some(m) => m.now.load(Ordering::SeqCst),
            None => SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        }
    }

    /// Moves a manual clock `secs` forward and wakes everything waiting on
    /// it; the system clock cannot be moved, so this does nothing there.
    pub fn advance(&self, secs: u64) {
        if let Some(m) = &self.manual {
            let now = m.now.fetch_add(secs, Ordering::SeqCst).saturating_add(secs);
            m.changed.send_replace(now);
        }
    }

    /// Resolves once the clock reads `deadline` or later: after a real
    /// sleep for the system clock, after enough [`Clock::advance`] calls
    /// for a manual one.
    pub(crate) async fn sleep_until(&self, deadline: u64) {
        match &self.manual {
            None => {
                let wait = deadline.saturating_sub(self.now());
                if wait > 0 {
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                }
            }
            Some(m) => {
                let mut rx = m.changed.subscribe();
                // Only fails when the sender is gone, which it never is
                // while `m` lives.
                let _ = rx.wait_for(|now| *now >= deadline).await;
            }
        }
    }

    /// A watch on a manual clock's moves (for loops that re-check
    /// deadlines in seconds when it moves); it never fires for the system
    /// clock, whose passing time such loops see through real timers.
    pub(crate) fn watch(&self) -> ClockWatch {
        ClockWatch(self.manual.as_ref().map(|m| m.changed.subscribe()))
    }
}

/// See [`Clock::watch`].
pub(crate) struct ClockWatch(Option<watch::Receiver<u64>>);

impl ClockWatch {
    /// Resolves when the manual clock moved since the last call.
    pub(crate) async fn changed(&mut self) {
        let moved = match &mut self.0 {
            Some(rx) => rx.changed().await.is_ok(),
            None => false,
        };
        if !moved {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_moves_only_when_advanced_and_wakes_its_sleepers() {
        let clock = Clock::manual(1000);
        assert_eq!(clock.now(), 1000);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(1010).await }
        });
        tokio::task::yield_now().await;
        clock.advance(9);
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "nine seconds are not ten");
        clock.advance(1);
        tokio::time::timeout(Duration::from_secs(5), sleeper).await.unwrap().unwrap();
        assert_eq!(clock.now(), 1010);
        let system = Clock::system();
        let before = system.now();
        system.advance(1_000_000);
        assert!(system.now() < before + 1000, "the system clock is not moved");
    }
}
