//! Every hard limit of the protocol core in one place, each with the reason
//! for its value. Policy defaults that a caller may change live in
//! [`SessionPolicy`](crate::SessionPolicy); these caps hold whatever the
//! policy says, so hostile input cannot make state grow without bound.

/// How many of its own ratchet private keys a session keeps. The peer names
/// the key it combined with by epoch; keeping the last few lets messages
/// that were in flight across a couple of rotations still open. Older keys
/// are erased (forward secrecy).
pub const MAX_OWN_RATCHET_KEYS: usize = 4;

/// How many receiving chains a session keeps open at once. A chain stays
/// open until the peer's next epoch says how long it was; this bounds the
/// chains whose end was never announced.
pub const MAX_RECEIVING_CHAINS: usize = 5;

/// How many finished receiving chains are remembered (epoch, length) so
/// that a late duplicate is reported as a replay rather than "unknown".
pub const MAX_FINISHED_CHAINS: usize = 16;

/// Hard cap on skipped message keys per chain, whatever the policy says.
pub const MAX_SKIP_PER_CHAIN_CAP: u32 = 10_000;

/// Hard cap on skipped message keys in total, whatever the policy says.
pub const MAX_SKIPPED_TOTAL_CAP: u32 = 20_000;

/// How many initiator base keys one signed prekey remembers, to refuse a
/// replayed first message. The memory lives and dies with its signed
/// prekey and is never flushed: when it is full, the prekey refuses new
/// session starts that use no one-time prekey
/// ([`Error::PrekeyExhausted`](crate::Error::PrekeyExhausted)) and
/// [`Account::maintain`](crate::Account::maintain) rotates it. 8192 starts
/// a week is far above what a person receives; the memory of all kept
/// prekeys is at most 8 × 8192 × 32 bytes (2 MiB).
pub const MAX_BASE_KEYS_PER_PREKEY: usize = 8192;

/// How many signed prekeys an account keeps (the current one and retired
/// ones still answering late first messages). Weekly rotation with a
/// 30-day keep period needs 5; rotating faster evicts the oldest retired
/// one early. Bounds the account pickle whatever the rotation count.
pub const MAX_SIGNED_PREKEYS: usize = 8;

/// How many peers an account remembers the highest bundle version of
/// (downgrade protection against an old, version-1-only bundle). The peer
/// used least recently is forgotten first.
pub const MAX_PEER_VERSIONS: usize = 4096;

/// The most members a group session tracks. Sender keys make a message
/// cost one seal and one signature whatever the size; this bounds the
/// memory a pickle or a hostile peer can make a group view hold.
pub const MAX_GROUP_MEMBERS: usize = 1000;

/// How many sender chains of one member are kept: the current one and the
/// one before, so that messages sent just before a rotation still open.
pub const MAX_GROUP_CHAINS_PER_MEMBER: usize = 2;

/// The oldest signed prekey an initiator accepts in a bundle (90 days).
/// A relay could keep serving an old bundle whose prekey has since been
/// compromised; owners rotate weekly, so a much older prekey means the
/// bundle is stale (or the owner has been away for months).
pub const MAX_SIGNED_PREKEY_AGE: u64 = 90 * 24 * 3600;
