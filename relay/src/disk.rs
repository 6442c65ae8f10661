//! The free-disk guard: requests that grow the store are refused with 507
//! (`storage_full`) while the data directory's file system has less free
//! space than `min_free_disk_bytes`, so the database never fills the disk
//! and breaks the writes already under way. Pulls and acknowledgements,
//! which free space, are never refused by it.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{ApiError, ErrorCode};

/// How long one reading of the free space is trusted.
const FRESH: Duration = Duration::from_secs(1);

/// Watches the free space of one directory's file system.
pub(crate) struct DiskGuard {
    dir: PathBuf,
    min_free: u64,
    last: Mutex<Option<(Instant, u64)>>,
}

impl DiskGuard {
    /// A guard keeping `min_free` bytes free where `dir` lives (0: off).
    pub(crate) fn new(dir: PathBuf, min_free: u64) -> Self {
        Self { dir, min_free, last: Mutex::new(None) }
    }

    /// Bytes an unprivileged process may still write there, read at most
    /// once a second.
    fn free_bytes(&self) -> Result<u64, ApiError> {
        let mut last = self.last.lock().map_err(|_| crate::error::internal("disk guard poisoned"))?;
        if let Some((at, free)) = *last
            && at.elapsed() < FRESH
        {
            return Ok(free);
        }
        let free = available(&self.dir).map_err(|e| crate::error::internal(format!("statvfs: {e}")))?;
        *last = Some((Instant::now(), free));
        Ok(free)
    }

    /// Refuses with 507 when less than the minimum is free.
    pub(crate) fn check(&self) -> Result<(), ApiError> {
        if self.min_free == 0 {
            return Ok(());
        }
        let free = self.free_bytes()?;
        if free < self.min_free {
            tracing::warn!(
                free,
                min = self.min_free,
                "free disk below the minimum; refusing writes that grow the store"
            );
            return Err(ApiError::new(
                ErrorCode::StorageFull,
                "the relay is low on disk space; nothing was stored (pulling and acknowledging still work)",
            ));
        }
        Ok(())
    }
}

#[cfg(unix)]
fn available(dir: &std::path::Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(not(unix))]
fn available(_dir: &std::path::Path) -> std::io::Result<u64> {
    Ok(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_below_the_minimum_and_passes_above() {
        let dir = tempfile::tempdir().unwrap();
        let free = available(dir.path()).unwrap();
        assert!(free > 0);
        assert!(DiskGuard::new(dir.path().into(), 1).check().is_ok());
        assert!(DiskGuard::new(dir.path().into(), 0).check().is_ok(), "0 turns the guard off");
        let e = DiskGuard::new(dir.path().into(), free.saturating_mul(2).max(u64::MAX / 2)).check().unwrap_err();
        assert_eq!((e.code, e.code.status()), (ErrorCode::StorageFull, 507));
    }
}
