//! Session policy and negotiation of the protocol version and cipher suite.
//!
//! Negotiation is a pure function of two signed lists. The initiator's list
//! travels in its first message; the responder's list is in its signed
//! prekey bundle. The chosen suite is the first suite in the initiator's
//! list that the responder's list also contains; each side then checks that
//! its own policy allows it (and fails rather than pick another). Both lists
//! and the choice are bound into the session's key derivation, so a list
//! edited in transit makes the session fail to open instead of silently
//! settling on a weaker suite.

use alloc::vec::Vec;

use crate::envelope::Padding;
use crate::error::{Error, Result};
use crate::suite::Suite;

/// The base protocol version: classical (X25519 only) session start, and
/// the version of group, RSA and reset envelopes.
pub const PROTOCOL_VERSION: u8 = 1;

/// The hybrid post-quantum version: the session start also uses an
/// ML-KEM-768 prekey.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const HYBRID_VERSION: u8 = 2;

/// The protocol versions this build can speak, newest first.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const SUPPORTED_VERSIONS: &[u8] = &[HYBRID_VERSION, PROTOCOL_VERSION];

/// What a party accepts and how it keeps its sessions fresh.
///
/// ```
/// use sealpost::{SessionPolicy, Suite};
/// let mut policy = SessionPolicy::default();
/// assert!(!policy.allows(Suite::Aes256CbcHmacSha256));
/// policy.suites.push(Suite::Aes256CbcHmacSha256); // opt in on purpose
/// assert!(policy.allows(Suite::Aes256CbcHmacSha256));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Allowed suites, most preferred first. The CBC suites are not in the
    /// default list and must be added on purpose.
    pub suites: Vec<Suite>,
    /// The lowest protocol version this party accepts. The default, 2,
    /// requires the hybrid post-quantum session start; 1 also allows
    /// classical sessions with peers whose bundles have no ML-KEM prekey.
    pub min_version: u8,
    /// A sender starts a fresh ratchet key after this many messages in one
    /// chain, even if the peer never answers (default 1000).
    pub max_messages_per_chain: u32,
    /// A sender starts a fresh ratchet key when its current one is older
    /// than this many seconds (default 3600).
    pub rotate_after: u64,
    /// A session idle for longer than this many seconds refuses to encrypt
    /// (default 86,400).
    pub expire_after: u64,
    /// How many message keys may be skipped (kept for late delivery) within
    /// one chain (default 1000).
    pub max_skip_per_chain: u32,
    /// How many skipped message keys a session keeps in total; the oldest
    /// are evicted first (default 2000).
    pub max_skipped_total: u32,
    /// Length-hiding padding of plaintexts before they are sealed.
    pub padding: Padding,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            suites: default_suites(),
            min_version: HYBRID_VERSION,
            max_messages_per_chain: 1000,
            rotate_after: 3600,
            expire_after: 24 * 3600,
            max_skip_per_chain: 1000,
            max_skipped_total: 2000,
            padding: Padding::Padme,
        }
    }
}

/// AES-256-GCM first where the CPU has AES and carry-less multiplication
/// instructions, ChaCha20-Poly1305 first elsewhere (it is faster and
/// constant time in software); XChaCha20-Poly1305 last.
fn default_suites() -> Vec<Suite> {
    if has_aes_instructions() {
        alloc::vec![Suite::Aes256Gcm, Suite::ChaCha20Poly1305, Suite::XChaCha20Poly1305]
    } else {
        alloc::vec![Suite::ChaCha20Poly1305, Suite::XChaCha20Poly1305, Suite::Aes256Gcm]
    }
}

/// Runtime detection with `std`; without it, what the build target
/// guarantees.
fn has_aes_instructions() -> bool {
    #[cfg(all(feature = "std", any(target_arch = "x86", target_arch = "x86_64")))]
    {
        std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(all(feature = "std", target_arch = "aarch64"))]
    {
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(not(all(feature = "std", any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64"))))]
    {
        cfg!(all(target_feature = "aes", any(target_feature = "pclmulqdq", target_arch = "aarch64")))
    }
}

impl SessionPolicy {
    /// Whether `suite` is allowed by this policy.
    pub fn allows(&self, suite: Suite) -> bool {
        self.suites.contains(&suite)
    }

    /// The suite list as wire ids, in preference order.
    pub fn suite_ids(&self) -> Vec<u8> {
        self.suites.iter().map(|s| s.id()).collect()
    }

    /// Checks the policy is usable: at least one suite, no duplicates, a
    /// supported minimum version, non-zero bounds.
    pub fn validate(&self) -> Result<()> {
        if self.suites.is_empty() {
            return Err(Error::NoCommonSuite);
        }
        for (i, s) in self.suites.iter().enumerate() {
            if self.suites.iter().skip(i.saturating_add(1)).any(|t| t == s) {
                return Err(Error::Malformed("policy suite list"));
            }
        }
        if !SUPPORTED_VERSIONS.iter().any(|v| *v >= self.min_version) {
            return Err(Error::UnsupportedVersion(self.min_version));
        }
        if self.max_messages_per_chain == 0
            || self.max_skipped_total == 0
            || self.rotate_after == 0
            || self.expire_after == 0
        {
            return Err(Error::WeakParameters);
        }
        Ok(())
    }

    /// Chooses the version to speak with a peer that offers `peer_versions`:
    /// the highest version both support that is at least `min_version`.
    pub fn choose_version(&self, peer_versions: &[u8]) -> Result<u8> {
        SUPPORTED_VERSIONS
            .iter()
            .copied()
            .filter(|v| *v >= self.min_version && peer_versions.contains(v))
            .max()
            .ok_or(Error::UnsupportedVersion(peer_versions.iter().copied().max().unwrap_or(0)))
    }

    /// Negotiates and checks against this policy: see [`negotiate_suite`].
    pub fn negotiate(&self, initiator: &[u8], responder: &[u8]) -> Result<Suite> {
        let suite = negotiate_suite(initiator, responder)?;
        if self.allows(suite) { Ok(suite) } else { Err(Error::SuiteNotAllowed(suite.id())) }
    }
}

/// The negotiation rule: the first suite in the `initiator`'s preference
/// list that this build implements and the `responder`'s list contains.
///
/// The function is pure so that both sides compute the same answer from the
/// same two lists; each side then checks the answer against its own policy.
///
/// ```
/// use sealpost::{negotiate_suite, Suite};
/// assert_eq!(negotiate_suite(&[2, 1], &[1, 2]), Ok(Suite::ChaCha20Poly1305));
/// assert_eq!(negotiate_suite(&[9, 1], &[1, 9]), Ok(Suite::Aes256Gcm)); // 9 is unknown here
/// assert!(negotiate_suite(&[1], &[2]).is_err());
/// ```
pub fn negotiate_suite(initiator: &[u8], responder: &[u8]) -> Result<Suite> {
    initiator
        .iter()
        .filter(|id| responder.contains(id))
        .find_map(|id| Suite::from_id(*id).ok())
        .ok_or(Error::NoCommonSuite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_valid_and_excludes_cbc() {
        let p = SessionPolicy::default();
        assert_eq!(p.validate(), Ok(()));
        assert!(!p.allows(Suite::Aes256CbcHmacSha256));
        assert!(!p.allows(Suite::Twofish256CbcHmacSha256));
        assert_eq!(p.max_messages_per_chain, 1000);
        assert_eq!(p.rotate_after, 3600);
        assert_eq!(p.expire_after, 86_400);
    }

    #[test]
    fn initiator_preference_wins() {
        assert_eq!(negotiate_suite(&[3, 2, 1], &[1, 2, 3]), Ok(Suite::XChaCha20Poly1305));
        assert_eq!(negotiate_suite(&[1, 2, 3], &[3, 2]), Ok(Suite::ChaCha20Poly1305));
        assert_eq!(negotiate_suite(&[], &[1]), Err(Error::NoCommonSuite));
        assert_eq!(negotiate_suite(&[200, 201], &[200, 201]), Err(Error::NoCommonSuite));
    }

    #[test]
    fn policy_refuses_rather_than_falls_back() {
        let p = SessionPolicy::default();
        // Both lists put CBC first; the policy must refuse, not pick GCM.
        assert_eq!(p.negotiate(&[4, 1], &[4, 1]), Err(Error::SuiteNotAllowed(4)));
        let mut q = p.clone();
        q.suites.push(Suite::Aes256CbcHmacSha256);
        assert_eq!(q.negotiate(&[4, 1], &[4, 1]), Ok(Suite::Aes256CbcHmacSha256));
    }

    #[test]
    fn invalid_policies_are_reported() {
        let mut p = SessionPolicy::default();
        p.suites.clear();
        assert_eq!(p.validate(), Err(Error::NoCommonSuite));
        let mut p = SessionPolicy::default();
        p.suites.push(Suite::Aes256Gcm);
        assert!(p.validate().is_err());
        let p = SessionPolicy { min_version: 3, ..SessionPolicy::default() };
        assert_eq!(p.validate(), Err(Error::UnsupportedVersion(3)));
    }

    #[test]
    fn version_choice_respects_minimum() {
        // The default requires the hybrid version 2.
        let p = SessionPolicy::default();
        assert_eq!(p.choose_version(&[2, 1]), Ok(2));
        assert_eq!(p.choose_version(&[1]), Err(Error::UnsupportedVersion(1)));
        assert_eq!(p.choose_version(&[7, 2]), Ok(2));
        assert_eq!(p.choose_version(&[]), Err(Error::UnsupportedVersion(0)));
        // Allowing classical sessions.
        let p = SessionPolicy { min_version: 1, ..SessionPolicy::default() };
        assert_eq!(p.choose_version(&[1]), Ok(1));
        assert_eq!(p.choose_version(&[2, 1]), Ok(2));
        assert_eq!(p.choose_version(&[7]), Err(Error::UnsupportedVersion(7)));
    }
}
