//! RSA interoperability (feature `rsa`), for systems whose identities are
//! RSA keys. The layout and every derivation are in docs/PROTOCOL.md,
//! section 12A.
//!
//! A message goes from a sender's RSA key pair to a recipient's, and is
//! always both encrypted and signed:
//!
//! * **Key wrapping**: a fresh 32-byte content key is wrapped for the
//!   recipient with RSA-OAEP (SHA-256, MGF1-SHA-256, label
//!   `"sealpost/v1/rsa-wrap"`) and seals the message with a Sealpost suite,
//!   exactly as a pairwise message secret would (random salt, padded
//!   plaintext). The associated data is both keys' fingerprints followed by
//!   the header bytes.
//! * **Signature**: the sender's RSA key signs with RSA-PSS (SHA-256,
//!   MGF1-SHA-256, 32-byte salt) over `"sealpost/v1/rsa-pss"`, both
//!   fingerprints and every byte before the signature. Replacing the
//!   signature with someone else's makes the message fail to open, and a
//!   message for one recipient does not verify for another.
//! * **Keys**: PKCS#8 (private) and SubjectPublicKeyInfo (public), in DER or
//!   PEM, with a modulus of exactly 2048 or 3072 bits.
//!
//! ```text
//! RSA-wrapped message (envelope type 5, version 2):
//!   0x02 || 0x05 || suite (1) || u16(W) || wrapped key (W) || salt (16)   = header bytes
//!   || u32(C) || ciphertext (C) || u16(S) || signature (S)
//! fingerprint(key) = SHA-256(SubjectPublicKeyInfo DER of key)
//! ```
//!
//! Decryption uses blinding and implicit rejection, but pure-software RSA is
//! not constant time: see `docs/SECURITY.md`. Prefer the X25519 sessions
//! wherever both sides can use them.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Verifier};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroizing;

use crate::codec::{Reader, put_bytes_u32};
use crate::envelope::{Padding, SALT_LEN, unpad};
use crate::error::{Error, Result};
use crate::secret::SymmetricKey;
use crate::suite::Suite;

/// The envelope type byte of an RSA-wrapped message.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const RSA_WRAPPED_TYPE: u8 = 5;
/// The version byte of an RSA-wrapped message: 2, the signed format bound
/// to both parties' keys. Version 1 (unsigned, unbound) is refused.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const RSA_MESSAGE_VERSION: u8 = 2;
/// The OAEP label.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const OAEP_LABEL: &[u8] = crate::context::RSA_WRAP;
/// The context that starts the bytes the sender PSS-signs.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const PSS_CONTEXT: &[u8] = crate::context::RSA_PSS;
/// The PSS salt length (the SHA-256 output length).
const PSS_SALT_LEN: usize = 32;
/// The content key length.
const CONTENT_KEY_LEN: usize = 32;

/// The modulus sizes accepted, in bits: exactly these, no others.
fn check_bits(bits: u32) -> Result<()> {
    if matches!(bits, 2048 | 3072) { Ok(()) } else { Err(Error::WeakParameters) }
}

/// An RSA private key. Zeroized on drop; `Debug` shows only its size.
#[derive(Clone)]
pub struct RsaPrivateKey {
    key: rsa::RsaPrivateKey,
    public: RsaPublicKey,
}

/// An RSA public key, with its fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    key: rsa::RsaPublicKey,
    fingerprint: [u8; 32],
}

impl RsaPrivateKey {
    /// Generates a key of `bits` (2048 or 3072; others are
    /// [`Error::WeakParameters`]).
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R, bits: usize) -> Result<Self> {
        check_bits(u32::try_from(bits).map_err(|_| Error::WeakParameters)?)?;
        let key = rsa::RsaPrivateKey::new(rng, bits).map_err(|_| Error::Rng)?;
        Self::checked(key)
    }

    /// Parses a PKCS#8 DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let key = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|_| Error::Malformed("rsa private key"))?;
        Self::checked(key)
    }

    /// Parses a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).map_err(|_| Error::Malformed("rsa private key"))?;
        Self::checked(key)
    }

    fn checked(key: rsa::RsaPrivateKey) -> Result<Self> {
        check_bits(key.n().bits())?;
        key.validate().map_err(|_| Error::InvalidKey)?;
        let public = RsaPublicKey::checked(key.to_public_key())?;
        Ok(Self { key, public })
    }

    /// PKCS#8 DER, in memory that is wiped on drop.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        let doc = self.key.to_pkcs8_der().map_err(|_| Error::TooLarge)?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// PKCS#8 PEM, in memory that is wiped on drop.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>> {
        let pem = self.key.to_pkcs8_pem(LineEnding::LF).map_err(|_| Error::TooLarge)?;
        Ok(Zeroizing::new(String::from(pem.as_str())))
    }

    /// The public half.
    pub fn public_key(&self) -> RsaPublicKey {
        self.public.clone()
    }

    /// Seals `plaintext` from this key's owner (the sender, who signs) to
    /// `recipient`, under `suite`: wraps a fresh content key for
    /// `recipient`, encrypts with both fingerprints in the associated data
    /// and signs the result with this key (docs/PROTOCOL.md, 12A).
    pub fn seal_message<R: rand_core::CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        recipient: &RsaPublicKey,
        suite: Suite,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        let binding = Binding::new(&self.public, recipient);
        let key = SymmetricKey::random(rng);
        let padding = rsa::Oaep::<Sha256>::new_with_label(OAEP_LABEL);
        let wrapped = recipient.key.encrypt(rng, padding, key.as_bytes()).map_err(|_| Error::TooLarge)?;
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let signature_len = u16::try_from(self.key.size()).map_err(|_| Error::TooLarge)?;
        let mut out = Vec::with_capacity(
            wrapped.len().saturating_add(plaintext.len()).saturating_add(usize::from(signature_len)).saturating_add(96),
        );
        out.extend_from_slice(&[RSA_MESSAGE_VERSION, RSA_WRAPPED_TYPE, suite.id()]);
        out.extend_from_slice(&u16::try_from(wrapped.len()).map_err(|_| Error::TooLarge)?.to_be_bytes());
        out.extend_from_slice(&wrapped);
        out.extend_from_slice(&salt);
        let sealed = suite.seal(&key, &salt, &binding.associated_data(&out), &Padding::Padme.pad(plaintext))?;
        put_bytes_u32(&mut out, &sealed)?;
        out.extend_from_slice(&signature_len.to_be_bytes());
        let signer = rsa::pss::SigningKey::<Sha256>::new_with_salt_len(self.key.clone(), PSS_SALT_LEN);
        let signature = signer.sign_with_rng(rng, &binding.signed_bytes(&out)).to_vec();
        if signature.len() != usize::from(signature_len) {
            return Err(Error::InvalidKey);
        }
        out.extend_from_slice(&signature);
        Ok(out)
    }

    /// Opens a message that `sender` sealed to this key's owner, if its
    /// suite is one `policy` allows.
    ///
    /// Checks, in this order: the layout ([`Error::Malformed`],
    /// [`Error::UnsupportedVersion`], [`Error::UnsupportedSuite`]), the
    /// policy ([`Error::SuiteNotAllowed`]), the sender's signature over
    /// both fingerprints ([`Error::InvalidSignature`]: not from `sender`,
    /// or not for this key), then decryption: every failure to open
    /// (altered wrapped key or ciphertext, a signature replaced by someone
    /// else's) is [`Error::AuthenticationFailed`].
    ///
    /// Implicit rejection: a random fallback content key is drawn before
    /// every decryption, and the key used is chosen between it and the
    /// OAEP output in constant time, so an OAEP failure takes the same
    /// steps (and draws the same random bytes) as a wrong ciphertext.
    pub fn open_message<R: rand_core::CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        policy: &crate::SessionPolicy,
        sender: &RsaPublicKey,
        message: &[u8],
    ) -> Result<Vec<u8>> {
        let parsed = WrappedMessage::parse(message)?;
        if !policy.allows(parsed.suite) {
            return Err(Error::SuiteNotAllowed(parsed.suite.id()));
        }
        let binding = Binding::new(sender, &self.public);
        sender.verify(&binding.signed_bytes(parsed.signed), parsed.signature)?;
        let key = self.unwrap_content_key(rng, parsed.wrapped_key);
        let padded = Zeroizing::new(parsed.suite.open(
            &key,
            &parsed.salt,
            &binding.associated_data(parsed.header),
            parsed.ciphertext,
        )?);
        Ok(unpad(&padded)?.to_vec())
    }

    /// RSA-OAEP decryption with implicit rejection: the real content key if
    /// OAEP decoding succeeds with exactly 32 bytes, the random fallback
    /// otherwise, selected without a branch on which it is.
    fn unwrap_content_key<R: rand_core::CryptoRng + ?Sized>(&self, rng: &mut R, wrapped: &[u8]) -> SymmetricKey {
        let mut fallback = Zeroizing::new([0u8; CONTENT_KEY_LEN]);
        rng.fill_bytes(fallback.as_mut_slice());
        let padding = rsa::Oaep::<Sha256>::new_with_label(OAEP_LABEL);
        // The `rsa` crate checks the OAEP padding in constant time but
        // reports the outcome as a `Result`; turn it into a `Choice` at once.
        let (decoded, decoded_ok) = match self.key.decrypt_blinded(rng, padding, wrapped) {
            Ok(bytes) => (Zeroizing::new(bytes), subtle::Choice::from(1)),
            Err(_) => (Zeroizing::new(Vec::new()), subtle::Choice::from(0)),
        };
        let ok = decoded_ok & decoded.len().ct_eq(&CONTENT_KEY_LEN);
        let mut candidate = Zeroizing::new([0u8; CONTENT_KEY_LEN]);
        for (c, d) in candidate.iter_mut().zip(decoded.iter()) {
            *c = *d;
        }
        let mut chosen = Zeroizing::new([0u8; CONTENT_KEY_LEN]);
        for ((out, real), fake) in chosen.iter_mut().zip(candidate.iter()).zip(fallback.iter()) {
            *out = u8::conditional_select(fake, real, ok);
        }
        SymmetricKey::from_bytes(*chosen)
    }
}

impl RsaPublicKey {
    fn checked(key: rsa::RsaPublicKey) -> Result<Self> {
        check_bits(key.n().bits())?;
        let der = key.to_public_key_der().map_err(|_| Error::Malformed("rsa public key"))?;
        let fingerprint = Sha256::digest(der.as_bytes()).into();
        Ok(Self { key, fingerprint })
    }

    /// Parses a SubjectPublicKeyInfo DER public key.
    pub fn from_public_key_der(der: &[u8]) -> Result<Self> {
        Self::checked(rsa::RsaPublicKey::from_public_key_der(der).map_err(|_| Error::Malformed("rsa public key"))?)
    }

    /// Parses a SubjectPublicKeyInfo PEM public key (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_public_key_pem(pem: &str) -> Result<Self> {
        Self::checked(rsa::RsaPublicKey::from_public_key_pem(pem).map_err(|_| Error::Malformed("rsa public key"))?)
    }

    /// SubjectPublicKeyInfo DER.
    pub fn to_public_key_der(&self) -> Result<Vec<u8>> {
        Ok(self.key.to_public_key_der().map_err(|_| Error::TooLarge)?.as_bytes().to_vec())
    }

    /// SubjectPublicKeyInfo PEM.
    pub fn to_public_key_pem(&self) -> Result<String> {
        self.key.to_public_key_pem(LineEnding::LF).map_err(|_| Error::TooLarge)
    }

    /// The modulus size in bits (the position of its highest set bit).
    pub fn bits(&self) -> usize {
        usize::try_from(self.key.n().bits()).unwrap_or(usize::MAX)
    }

    /// SHA-256 of the SubjectPublicKeyInfo DER: the identity that RSA
    /// messages bind, and what people compare out of band (the same value
    /// as `openssl pkey -pubin -outform DER | sha256sum`).
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    fn verify(&self, signed: &[u8], signature: &[u8]) -> Result<()> {
        let key = rsa::pss::VerifyingKey::<Sha256>::new_with_salt_len(self.key.clone(), PSS_SALT_LEN);
        let sig = rsa::pss::Signature::try_from(signature).map_err(|_| Error::InvalidSignature)?;
        key.verify(signed, &sig).map_err(|_| Error::InvalidSignature)
    }
}

/// Who a message is from and to: the sender's and the recipient's
/// fingerprints, which enter both the signed bytes and the associated data.
struct Binding {
    sender: [u8; 32],
    recipient: [u8; 32],
}

impl Binding {
    fn new(sender: &RsaPublicKey, recipient: &RsaPublicKey) -> Self {
        Self { sender: sender.fingerprint, recipient: recipient.fingerprint }
    }

    fn with_prefix(&self, prefix: &[u8], bytes: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(prefix.len().saturating_add(64).saturating_add(bytes.len()));
        m.extend_from_slice(prefix);
        m.extend_from_slice(&self.sender);
        m.extend_from_slice(&self.recipient);
        m.extend_from_slice(bytes);
        m
    }

    /// `fingerprint(sender) || fingerprint(recipient) || header bytes`.
    fn associated_data(&self, header: &[u8]) -> Vec<u8> {
        self.with_prefix(&[], header)
    }

    /// `PSS_CONTEXT || fingerprint(sender) || fingerprint(recipient) || every byte before the signature`.
    fn signed_bytes(&self, unsigned: &[u8]) -> Vec<u8> {
        self.with_prefix(PSS_CONTEXT, unsigned)
    }
}

/// A parsed RSA-wrapped message, borrowing from the input.
struct WrappedMessage<'a> {
    suite: Suite,
    wrapped_key: &'a [u8],
    salt: [u8; SALT_LEN],
    /// Every byte before `C`.
    header: &'a [u8],
    ciphertext: &'a [u8],
    /// Every byte before the signature.
    signed: &'a [u8],
    signature: &'a [u8],
}

impl<'a> WrappedMessage<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "rsa message");
        let version = r.u8()?;
        if version != RSA_MESSAGE_VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        if r.u8()? != RSA_WRAPPED_TYPE {
            return Err(Error::Malformed("envelope type"));
        }
        let suite = Suite::from_id(r.u8()?)?;
        let w = usize::from(u16::from_be_bytes(r.array()?));
        let wrapped_key = r.take(w)?;
        let salt = r.array()?;
        let consumed = |r: &Reader<'a>| bytes.get(..bytes.len().saturating_sub(r.remaining()));
        let header = consumed(&r).ok_or(Error::Malformed("rsa message"))?;
        let ciphertext = r.bytes_u32(usize::MAX)?;
        let s = usize::from(u16::from_be_bytes(r.array()?));
        let signed = consumed(&r).ok_or(Error::Malformed("rsa message"))?;
        let signature = r.take(s)?;
        r.finish()?;
        Ok(Self { suite, wrapped_key, salt, header, ciphertext, signed, signature })
    }
}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPrivateKey({} bits, <redacted>)", self.public.bits())
    }
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPublicKey({} bits)", self.bits())
    }
}
