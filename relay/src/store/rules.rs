//! What a store decides, written once for every backend: whether a deposit
//! fits its recipients' mailboxes and its sender's quota, whether a handle
//! may be claimed, and what a code check concludes. A backend reads the
//! inputs inside its transaction, asks these functions, and writes what
//! they say, so SQLite and PostgreSQL cannot drift apart.

use subtle::ConstantTimeEq;

use super::{
    AccountId, DepositLimits, HANDLE_WINDOW, HandleCheck, HandleLimits, StoreError, StoreResult, account_name,
};

/// Refuses a deposit when a recipient's mailbox already holds
/// `limits.mailbox` messages (given as `(recipient, messages waiting)`), or
/// when `cost` more bytes would take the sender past its quota (it `held`
/// that many). Mailboxes are checked first, in the order given.
pub(crate) fn check_deposit<'a>(
    mailboxes: impl IntoIterator<Item = (&'a AccountId, u64)>,
    held: u64,
    cost: u64,
    limits: DepositLimits,
) -> StoreResult<()> {
    for (recipient, waiting) in mailboxes {
        if waiting >= limits.mailbox {
            return Err(StoreError::MailboxFull(account_name(recipient)));
        }
    }
    if held.saturating_add(cost) > limits.sender_quota {
        return Err(StoreError::SenderQuota(held, limits.sender_quota));
    }
    Ok(())
}

/// A handle's counting window: when it started, the codes sent and the
/// wrong codes tried in it (across accounts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    /// Unix seconds the window started.
    pub start: u64,
    /// Codes delivered in it.
    pub codes: u32,
    /// Wrong codes tried in it.
    pub wrong: u32,
}

impl Window {
    /// The stored window if it still runs at `now`, otherwise a fresh one.
    pub(crate) fn at(stored: Option<Window>, now: u64) -> Window {
        match stored {
            Some(w) if w.start.saturating_add(HANDLE_WINDOW) > now => w,
            _ => Window { start: now, codes: 0, wrong: 0 },
        }
    }

    /// Seconds until the window ends (at least 1).
    fn wait(&self, now: u64) -> u64 {
        self.start.saturating_add(HANDLE_WINDOW).saturating_sub(now).max(1)
    }
}

/// A stored claim of a handle by one account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Claim {
    /// When it was made (Unix seconds).
    pub claimed_at: u64,
    /// When its code expires.
    pub expires_at: u64,
    /// Wrong codes tried against it.
    pub attempts: u32,
}

/// What a new claim of a handle by an account finds in the store.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClaimContext {
    /// The handle is bound to another account.
    pub bound_elsewhere: bool,
    /// This account's earlier claim of the handle, if any.
    pub previous: Option<Claim>,
    /// Other accounts' unexpired claims of the handle.
    pub others: u64,
    /// The earliest expiry among those.
    pub first_other_expiry: Option<u64>,
    /// The handle's window at `now` ([`Window::at`]).
    pub window: Window,
}

/// Decides a claim: the wrong-attempt count the new claim carries and the
/// window to store (one more code), or why it is refused.
pub(crate) fn claim(found: ClaimContext, now: u64, limits: HandleLimits) -> StoreResult<(u32, Window)> {
    if found.bound_elsewhere {
        return Err(StoreError::HandleTaken);
    }
    let mut attempts = 0;
    if let Some(previous) = found.previous {
        let wait = previous.claimed_at.saturating_add(limits.cooldown).saturating_sub(now);
        if wait > 0 {
            return Err(StoreError::RetryLater(wait));
        }
        // Wrong guesses count across renewed claims while the old code lived.
        if previous.expires_at >= now {
            attempts = previous.attempts;
        }
    }
    // Across accounts: a handle has few pending claims and few codes an
    // hour, however many accounts ask.
    if found.others >= u64::from(limits.max_pending) {
        let first = found.first_other_expiry.unwrap_or(0);
        return Err(StoreError::RetryLater(first.saturating_add(1).saturating_sub(now).max(1)));
    }
    let window = found.window;
    if window.codes >= limits.codes_per_hour {
        return Err(StoreError::RetryLater(window.wait(now)));
    }
    Ok((attempts, Window { codes: window.codes.saturating_add(1), ..window }))
}

/// What a code check concludes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Answer this and change nothing.
    Answer(HandleCheck),
    /// The code matched: bind the handle (unless another account holds it)
    /// and drop its claims.
    Bind,
    /// A wrong code: store the window and the claim's attempts, then answer.
    Wrong {
        /// The window with one more wrong code.
        window: Window,
        /// The claim's wrong attempts, this one included.
        attempts: u32,
        /// What to answer.
        answer: HandleCheck,
    },
}

/// Checks `code_hash` against the account's claim (its stored hash and
/// state) in constant time, unless the claim is spent or expired or the
/// handle had too many wrong codes this window.
pub(crate) fn verify(
    claim: Option<(&[u8], Claim)>,
    window: Window,
    code_hash: &[u8; 32],
    now: u64,
    limits: HandleLimits,
) -> Verdict {
    let Some((stored, claim)) = claim else { return Verdict::Answer(HandleCheck::NoClaim) };
    if claim.attempts >= limits.max_attempts {
        return Verdict::Answer(HandleCheck::TooManyAttempts);
    }
    if claim.expires_at < now {
        return Verdict::Answer(HandleCheck::Expired);
    }
    if window.wrong >= limits.wrong_per_hour {
        return Verdict::Answer(HandleCheck::Locked(window.wait(now)));
    }
    if bool::from(stored.ct_eq(&code_hash[..])) {
        return Verdict::Bind;
    }
    let attempts = claim.attempts.saturating_add(1);
    let answer = if attempts >= limits.max_attempts {
        HandleCheck::TooManyAttempts
    } else {
        HandleCheck::WrongCode(limits.max_attempts.saturating_sub(attempts))
    };
    Verdict::Wrong { window: Window { wrong: window.wrong.saturating_add(1), ..window }, attempts, answer }
}
