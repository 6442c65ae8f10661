//! RSA interoperability (feature `rsa`), for systems whose identities are
//! RSA keys.
//!
//! * **Key wrapping**: a fresh 32-byte content key is wrapped with
//!   RSA-OAEP (SHA-256, MGF1-SHA-256, label `"sealpost/v1/rsa-wrap"`) and
//!   then seals the message with a Sealpost suite, exactly as a pairwise
//!   message secret would (random salt, padded plaintext, header bytes as
//!   associated data).
//! * **Signatures**: RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt
//!   over `"sealpost/v1/rsa-pss" || envelope bytes`.
//! * **Keys**: PKCS#8 (private) and SubjectPublicKeyInfo (public), in DER or
//!   PEM. Moduli of 2048, 3072 or 4096 bits.
//!
//! ```text
//! RSA-wrapped message (envelope type 5):
//!   version (1) || 0x05 || suite (1) || u16(W) || wrapped key (W) || salt (16)   = header bytes
//!   || u32(C) || ciphertext (C)
//! ```
//!
//! Decryption uses blinding, but pure-software RSA is not constant time:
//! see `docs/SECURITY.md`. Prefer the X25519 sessions wherever both sides
//! can use them.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Verifier};
use rsa::traits::PublicKeyParts;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::codec::{Reader, put_bytes_u32};
use crate::envelope::{Padding, SALT_LEN, unpad};
use crate::error::{Error, Result};
use crate::policy::PROTOCOL_VERSION;
use crate::secret::SymmetricKey;
use crate::suite::Suite;

/// The envelope type byte of an RSA-wrapped message.
pub const RSA_WRAPPED_TYPE: u8 = 5;
/// The OAEP label.
pub const OAEP_LABEL: &[u8] = b"sealpost/v1/rsa-wrap";
/// The context prefixed to an envelope before it is PSS-signed.
pub const PSS_CONTEXT: &[u8] = b"sealpost/v1/rsa-pss";
const PSS_SALT_LEN: usize = 32;

fn check_bits(bits: usize) -> Result<()> {
    if matches!(bits, 2048 | 3072 | 4096) { Ok(()) } else { Err(Error::WeakParameters) }
}

/// An RSA private key. Zeroized on drop; `Debug` shows only its size.
#[derive(Clone)]
pub struct RsaPrivateKey(rsa::RsaPrivateKey);

/// An RSA public key.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey(rsa::RsaPublicKey);

impl RsaPrivateKey {
    /// Generates a key of `bits` (2048, 3072 or 4096).
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R, bits: usize) -> Result<Self> {
        check_bits(bits)?;
        rsa::RsaPrivateKey::new(rng, bits).map(Self).map_err(|_| Error::Rng)
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
        check_bits(key.size().saturating_mul(8))?;
        key.validate().map_err(|_| Error::InvalidKey)?;
        Ok(Self(key))
    }

    /// PKCS#8 DER, in memory that is wiped on drop.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        let doc = self.0.to_pkcs8_der().map_err(|_| Error::TooLarge)?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// PKCS#8 PEM, in memory that is wiped on drop.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>> {
        let pem = self.0.to_pkcs8_pem(LineEnding::LF).map_err(|_| Error::TooLarge)?;
        Ok(Zeroizing::new(String::from(pem.as_str())))
    }

    /// The public half.
    pub fn public_key(&self) -> RsaPublicKey {
        RsaPublicKey(self.0.to_public_key())
    }

    /// Opens an RSA-wrapped message whose suite `policy` allows. Every
    /// failure to open (wrong key, altered wrapped key, altered ciphertext
    /// or header) is [`Error::AuthenticationFailed`].
    ///
    /// When OAEP decoding fails, decryption goes on with a random content
    /// key (implicit rejection), so that an attacker timing the answers
    /// cannot tell a malformed wrapped key from a wrong ciphertext.
    pub fn unwrap_message<R: rand_core::CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        policy: &crate::SessionPolicy,
        message: &[u8],
    ) -> Result<Vec<u8>> {
        let parsed = WrappedMessage::parse(message)?;
        if !policy.allows(parsed.suite) {
            return Err(Error::SuiteNotAllowed(parsed.suite.id()));
        }
        let padding = rsa::Oaep::<Sha256>::new_with_label(OAEP_LABEL);
        let decoded = self.0.decrypt_blinded(rng, padding, parsed.wrapped_key).map(Zeroizing::new);
        let key = match decoded.as_ref().map(|k| <[u8; 32]>::try_from(k.as_slice())) {
            Ok(Ok(k)) => SymmetricKey::from_bytes(k),
            _ => SymmetricKey::random(rng),
        };
        let padded = Zeroizing::new(parsed.suite.open(&key, &parsed.salt, parsed.header, parsed.ciphertext)?);
        Ok(unpad(&padded)?.to_vec())
    }

    /// Signs an envelope with RSA-PSS-SHA-256 (32-byte salt).
    pub fn sign<R: rand_core::CryptoRng + ?Sized>(&self, rng: &mut R, envelope: &[u8]) -> Vec<u8> {
        let key = rsa::pss::SigningKey::<Sha256>::new_with_salt_len(self.0.clone(), PSS_SALT_LEN);
        key.sign_with_rng(rng, &pss_input(envelope)).to_vec()
    }
}

impl RsaPublicKey {
    /// Parses a SubjectPublicKeyInfo DER public key.
    pub fn from_public_key_der(der: &[u8]) -> Result<Self> {
        let key = rsa::RsaPublicKey::from_public_key_der(der).map_err(|_| Error::Malformed("rsa public key"))?;
        check_bits(key.size().saturating_mul(8))?;
        Ok(Self(key))
    }

    /// Parses a SubjectPublicKeyInfo PEM public key (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_public_key_pem(pem: &str) -> Result<Self> {
        let key = rsa::RsaPublicKey::from_public_key_pem(pem).map_err(|_| Error::Malformed("rsa public key"))?;
        check_bits(key.size().saturating_mul(8))?;
        Ok(Self(key))
    }

    /// SubjectPublicKeyInfo DER.
    pub fn to_public_key_der(&self) -> Result<Vec<u8>> {
        Ok(self.0.to_public_key_der().map_err(|_| Error::TooLarge)?.as_bytes().to_vec())
    }

    /// SubjectPublicKeyInfo PEM.
    pub fn to_public_key_pem(&self) -> Result<String> {
        self.0.to_public_key_pem(LineEnding::LF).map_err(|_| Error::TooLarge)
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.0.size().saturating_mul(8)
    }

    /// Wraps a fresh content key for this key's owner and seals `plaintext`
    /// with `suite` under it.
    pub fn wrap_message<R: rand_core::CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        suite: Suite,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        let key = SymmetricKey::random(rng);
        let padding = rsa::Oaep::<Sha256>::new_with_label(OAEP_LABEL);
        let wrapped = self.0.encrypt(rng, padding, key.as_bytes()).map_err(|_| Error::TooLarge)?;
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let mut out = Vec::with_capacity(wrapped.len().saturating_add(plaintext.len()).saturating_add(64));
        out.extend_from_slice(&[PROTOCOL_VERSION, RSA_WRAPPED_TYPE, suite.id()]);
        out.extend_from_slice(&u16::try_from(wrapped.len()).map_err(|_| Error::TooLarge)?.to_be_bytes());
        out.extend_from_slice(&wrapped);
        out.extend_from_slice(&salt);
        let sealed = suite.seal(&key, &salt, &out, &Padding::Padme.pad(plaintext))?;
        put_bytes_u32(&mut out, &sealed)?;
        Ok(out)
    }

    /// Verifies an RSA-PSS-SHA-256 signature over an envelope.
    pub fn verify(&self, envelope: &[u8], signature: &[u8]) -> Result<()> {
        let key = rsa::pss::VerifyingKey::<Sha256>::new(self.0.clone());
        let sig = rsa::pss::Signature::try_from(signature).map_err(|_| Error::InvalidSignature)?;
        key.verify(&pss_input(envelope), &sig).map_err(|_| Error::InvalidSignature)
    }
}

fn pss_input(envelope: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(PSS_CONTEXT.len().saturating_add(envelope.len()));
    m.extend_from_slice(PSS_CONTEXT);
    m.extend_from_slice(envelope);
    m
}

/// A parsed RSA-wrapped message, borrowing from the input.
struct WrappedMessage<'a> {
    suite: Suite,
    wrapped_key: &'a [u8],
    salt: [u8; SALT_LEN],
    header: &'a [u8],
    ciphertext: &'a [u8],
}

impl<'a> WrappedMessage<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "rsa message");
        let version = r.u8()?;
        if version != PROTOCOL_VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        if r.u8()? != RSA_WRAPPED_TYPE {
            return Err(Error::Malformed("envelope type"));
        }
        let suite = Suite::from_id(r.u8()?)?;
        let w = usize::from(u16::from_be_bytes(r.array()?));
        let wrapped_key = r.take(w)?;
        let salt = r.array()?;
        let header_len = bytes.len().saturating_sub(r.remaining());
        let header = bytes.get(..header_len).ok_or(Error::Malformed("rsa message"))?;
        let ciphertext = r.bytes_u32(usize::MAX)?;
        r.finish()?;
        Ok(Self { suite, wrapped_key, salt, header, ciphertext })
    }
}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPrivateKey({} bits, <redacted>)", self.0.size().saturating_mul(8))
    }
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPublicKey({} bits)", self.bits())
    }
}
