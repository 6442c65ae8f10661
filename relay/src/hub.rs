//! Who is connected for push: a wake-up channel per open WebSocket.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::store::AccountId;

/// The wake-up senders of one account's connections, by connection id.
type Wakers = Vec<(u64, mpsc::Sender<()>)>;

/// Connected WebSocket clients by account.
#[derive(Default)]
pub(crate) struct Hub {
    next: AtomicU64,
    clients: Arc<Mutex<HashMap<AccountId, Wakers>>>,
}

/// A registration; dropping it unregisters.
pub(crate) struct Registration {
    clients: Arc<Mutex<HashMap<AccountId, Wakers>>>,
    account: AccountId,
    id: u64,
    /// Wakes when new messages may be waiting.
    pub wake: mpsc::Receiver<()>,
}

impl Hub {
    /// Registers a connection of `account`, unless it already has `max`.
    pub(crate) fn register(&self, account: AccountId, max: usize) -> Option<Registration> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(1);
        let mut c = self.clients.lock().ok()?;
        let list = c.entry(account).or_default();
        if list.len() >= max {
            return None;
        }
        list.push((id, tx));
        Some(Registration { clients: Arc::clone(&self.clients), account, id, wake: rx })
    }

    /// Wakes every connection of `account` (coalesced: at most one pending).
    pub(crate) fn notify(&self, account: &AccountId) {
        if let Ok(c) = self.clients.lock() {
            for (_, tx) in c.get(account).into_iter().flatten() {
                let _ = tx.try_send(());
            }
        }
    }

    /// Wakes every connection (after wake-ups may have been missed).
    pub(crate) fn notify_all(&self) {
        if let Ok(c) = self.clients.lock() {
            for (_, tx) in c.values().flatten() {
                let _ = tx.try_send(());
            }
        }
    }

    /// How many connections are open.
    pub(crate) fn connections(&self) -> usize {
        self.clients.lock().map(|c| c.values().map(Vec::len).sum()).unwrap_or(0)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut c) = self.clients.lock()
            && let Some(list) = c.get_mut(&self.account)
        {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                c.remove(&self.account);
            }
        }
    }
}
