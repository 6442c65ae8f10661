//! Every hard limit of the protocol core in one place, each with the reason
//! for its value. Policy defaults that a caller may change live in
//! [`SessionPolicy`](crate::SessionPolicy); these caps hold whatever the
//! policy says, so hostile input cannot make state grow without bound.

/// How many of its own ratchet private keys a session keeps. The peer names
/// the key it combined with by epoch; keeping the last few lets messages
/// that were in flight across a couple of rotations still open. Older keys
/// are erased (forward secrecy).
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const MAX_OWN_RATCHET_KEYS: usize = 4;

/// How many receiving chains a session keeps open at once. A chain stays
/// open until the peer's next epoch says how long it was; this bounds the
/// chains whose end was never announced.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const MAX_RECEIVING_CHAINS: usize = 5;

/// How many finished receiving chains are remembered (epoch, length) so
/// that a late duplicate is reported as a replay rather than "unknown".
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
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
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const MAX_BASE_KEYS_PER_PREKEY: usize = 8192;

/// How many signed prekeys an account keeps (the current one and retired
/// ones still answering late first messages). Weekly rotation with a
/// 30-day keep period needs 5; rotating faster evicts the oldest retired
/// one early. Bounds the account pickle whatever the rotation count.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const MAX_SIGNED_PREKEYS: usize = 8;

/// How many peers an account remembers the highest bundle version of
/// (downgrade protection against an old, version-1-only bundle). The peer
/// used least recently is forgotten first.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const MAX_PEER_VERSIONS: usize = 4096;

/// The most members a group session tracks. Sender keys make a message
/// cost one seal and one signature whatever the size; this bounds the
/// memory a pickle or a hostile peer can make a group view hold.
pub const MAX_GROUP_MEMBERS: usize = 1000;

/// How many sender chains of one member are kept: the current one and the
/// one before, so that messages sent just before a rotation still open.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const MAX_GROUP_CHAINS_PER_MEMBER: usize = 2;

/// The oldest signed prekey an initiator accepts in a bundle (90 days).
/// A relay could keep serving an old bundle whose prekey has since been
/// compromised; owners rotate weekly, so a much older prekey means the
/// bundle is stale (or the owner has been away for months).
pub const MAX_SIGNED_PREKEY_AGE: u64 = 90 * 24 * 3600;

/// How long a signed prekey is used before a new one is made (7 days).
pub const SIGNED_PREKEY_ROTATE_AFTER: u64 = 7 * 24 * 3600;

/// How long a replaced signed prekey is kept, for first messages still in
/// flight that were made from an older bundle (30 days).
pub const SIGNED_PREKEY_KEEP_FOR: u64 = 30 * 24 * 3600;

/// The most unused one-time prekeys an account holds.
pub const MAX_ONE_TIME_PREKEYS: usize = 1000;

/// Oldest (or furthest in the future) a session reset request may be, in
/// seconds: long enough for a slow relay, short enough that a captured
/// request soon stops working.
pub const RESET_MAX_AGE: u64 = 600;

/// Default seconds between two session resets with the same peer (each
/// direction), so forged undecryptable messages cannot force a stream of
/// new sessions.
pub const RESET_MIN_INTERVAL: u64 = 3600;

/// How many session-reset nonces a [`Healer`](crate::heal::Healer)
/// remembers. Entries leave once they are older than the freshness window
/// ([`RESET_MAX_AGE`]), when a replay would be
/// refused as stale anyway; if more than this many are fresh, the oldest
/// is dropped and its timestamp becomes the healer's horizon: every reset
/// not newer than the horizon is refused, so eviction never reopens a
/// replay.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const MAX_RESET_NONCES: usize = 1024;

/// How many peers a [`Healer`](crate::heal::Healer) keeps send and accept
/// times for (each map). Entries leave once they no longer limit anything;
/// beyond this cap the oldest go first, which only relaxes a rate limit
/// (replays are refused by the nonce memory).
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const MAX_HEAL_PEERS: usize = 4096;

/// How long [`PeerSessions`](crate::heal::PeerSessions) keeps trying the
/// previous session with a peer after a new one replaced it, so that
/// messages sent before the renewal still open: one day, the default idle
/// expiry of a session ([`SessionPolicy`](crate::SessionPolicy)), after
/// which the replaced session could open nothing anyway. Then the previous
/// session is dropped (its keys erased).
pub const PREVIOUS_SESSION_LIFETIME: u64 = 24 * 3600;

/// Longest group id: ids are names an application picks, and every group
/// message carries one.
pub const MAX_GROUP_ID_LEN: usize = 64;

/// Longest suite list in a prekey message: there are far fewer suites, and
/// a bound keeps a hostile list from costing anything.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const MAX_SUITE_LIST: usize = 32;

/// Longest version or suite list in a prekey bundle (the same reasoning as
/// [`MAX_SUITE_LIST`]).
pub(crate) const MAX_BUNDLE_LIST: usize = 32;

/// The most PBKDF2 iterations a stored parameter set may ask for, so that a
/// hostile pickle cannot make a restore run for hours.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const MAX_PBKDF2_ITERATIONS: u32 = 20_000_000;
