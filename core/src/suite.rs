//! Cipher suites: one byte on the wire, one seal/open interface.
//!
//! A suite never sees a long-term key. Each message has its own 32-byte
//! secret (from a ratchet chain or a sender chain, itself an HKDF output and
//! so a uniformly random key) and a random per-message salt;
//! [`SuiteKeys::derive`] expands the secret with HKDF-SHA-256-Expand, the salt
//! in the info, into exactly the keys and nonce or IV the suite needs. A key and nonce are therefore
//! used for one message only, and the salt keeps them unique even when the
//! same chain position is used twice (a session restored from an old pickle).
//!
//! | id | suite | key material (HKDF output, in order) | overhead |
//! |----|-------|--------------------------------------|----------|
//! | 1 | AES-256-GCM | key 32, nonce 12 | tag 16 |
//! | 2 | ChaCha20-Poly1305 | key 32, nonce 12 | tag 16 |
//! | 3 | XChaCha20-Poly1305 | key 32, nonce 24 | tag 16 |
//! | 4 | AES-256-CBC + HMAC-SHA-256 | enc key 32, MAC key 32, IV 16 | PKCS#7 1–16, tag 32 |
//! | 5 | Twofish-256-CBC + HMAC-SHA-256 | enc key 32, MAC key 32, IV 16 | PKCS#7 1–16, tag 32 |
//!
//! The CBC suites are encrypt-then-MAC: the tag is HMAC-SHA-256 under its own
//! key over the suite id, the length-prefixed associated data, the IV and the
//! length-prefixed ciphertext. It is checked in constant time before any
//! block is decrypted, and every failure (length, tag, padding) is the same
//! [`Error::AuthenticationFailed`], so there is no padding oracle.

use alloc::vec::Vec;
use core::fmt;

use aes_gcm::aead::{AeadInOut, KeyInit};
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit, block_padding::Pkcs7};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};
use crate::kdf::{hkdf_expand_sha256, label};
use crate::secret::SymmetricKey;

/// A cipher suite, identified on the wire by [`Suite::id`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Suite {
    /// AES-256-GCM (id 1): fastest where the CPU has AES instructions.
    Aes256Gcm,
    /// ChaCha20-Poly1305 (id 2, RFC 8439): fast everywhere in software.
    ChaCha20Poly1305,
    /// XChaCha20-Poly1305 (id 3): 24-byte nonces.
    XChaCha20Poly1305,
    /// AES-256-CBC with HMAC-SHA-256, encrypt-then-MAC (id 4). Off by default.
    Aes256CbcHmacSha256,
    /// Twofish-256-CBC with HMAC-SHA-256, encrypt-then-MAC (id 5). Off by default.
    Twofish256CbcHmacSha256,
}

/// Length of an AEAD tag (suites 1–3).
pub(crate) const AEAD_TAG_LEN: usize = 16;
/// Length of the HMAC-SHA-256 tag of the CBC suites (4, 5).
pub(crate) const CBC_TAG_LEN: usize = 32;
const BLOCK: usize = 16;
const CBC_MAC_KEY_LEN: usize = 32;
const MAX_KEY_MATERIAL: usize = 32 + 32 + 24;

impl Suite {
    /// Every suite this build implements, in the default order of preference.
    pub const ALL: [Suite; 5] = [
        Suite::Aes256Gcm,
        Suite::ChaCha20Poly1305,
        Suite::XChaCha20Poly1305,
        Suite::Aes256CbcHmacSha256,
        Suite::Twofish256CbcHmacSha256,
    ];

    /// The one-byte wire identifier.
    pub const fn id(self) -> u8 {
        match self {
            Suite::Aes256Gcm => 1,
            Suite::ChaCha20Poly1305 => 2,
            Suite::XChaCha20Poly1305 => 3,
            Suite::Aes256CbcHmacSha256 => 4,
            Suite::Twofish256CbcHmacSha256 => 5,
        }
    }

    /// Parses a wire identifier.
    ///
    /// ```
    /// use sealpost::{Error, Suite};
    /// assert_eq!(Suite::from_id(2), Ok(Suite::ChaCha20Poly1305));
    /// assert_eq!(Suite::from_id(9), Err(Error::UnsupportedSuite(9)));
    /// ```
    pub const fn from_id(id: u8) -> Result<Suite> {
        match id {
            1 => Ok(Suite::Aes256Gcm),
            2 => Ok(Suite::ChaCha20Poly1305),
            3 => Ok(Suite::XChaCha20Poly1305),
            4 => Ok(Suite::Aes256CbcHmacSha256),
            5 => Ok(Suite::Twofish256CbcHmacSha256),
            other => Err(Error::UnsupportedSuite(other)),
        }
    }

    /// A stable human-readable name.
    pub const fn name(self) -> &'static str {
        match self {
            Suite::Aes256Gcm => "AES-256-GCM",
            Suite::ChaCha20Poly1305 => "ChaCha20-Poly1305",
            Suite::XChaCha20Poly1305 => "XChaCha20-Poly1305",
            Suite::Aes256CbcHmacSha256 => "AES-256-CBC-HMAC-SHA-256",
            Suite::Twofish256CbcHmacSha256 => "Twofish-256-CBC-HMAC-SHA-256",
        }
    }

    /// Whether this is one of the CBC + HMAC suites (off by default in a policy).
    pub const fn is_cbc(self) -> bool {
        matches!(self, Suite::Aes256CbcHmacSha256 | Suite::Twofish256CbcHmacSha256)
    }

    const fn nonce_len(self) -> usize {
        match self {
            Suite::Aes256Gcm | Suite::ChaCha20Poly1305 => 12,
            Suite::XChaCha20Poly1305 => 24,
            Suite::Aes256CbcHmacSha256 | Suite::Twofish256CbcHmacSha256 => BLOCK,
        }
    }

    const fn key_material_len(self) -> usize {
        if self.is_cbc() { 32 + CBC_MAC_KEY_LEN + BLOCK } else { 32usize.saturating_add(self.nonce_len()) }
    }

    /// The length of the ciphertext for a plaintext of `plaintext_len` bytes.
    pub const fn ciphertext_len(self, plaintext_len: usize) -> usize {
        if self.is_cbc() {
            let blocks = (plaintext_len / BLOCK).saturating_add(1);
            blocks.saturating_mul(BLOCK).saturating_add(CBC_TAG_LEN)
        } else {
            plaintext_len.saturating_add(AEAD_TAG_LEN)
        }
    }

    /// Encrypts `plaintext` with keys derived from a single-use message
    /// `secret` and per-message `salt`, authenticating `aad` as well.
    /// Crate-private: a repeated (secret, salt) pair repeats the key and
    /// nonce, so only the protocol's own callers, which never repeat one,
    /// may use it (conformance tests reach it through `hazmat::suite_seal`).
    pub(crate) fn seal(self, secret: &SymmetricKey, salt: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        SuiteKeys::derive(self, secret, salt)?.seal(aad, plaintext)
    }

    /// Decrypts and authenticates what `Suite::seal` produced. Any change
    /// to the ciphertext, the associated data, the secret or the salt gives
    /// [`Error::AuthenticationFailed`].
    pub(crate) fn open(self, secret: &SymmetricKey, salt: &[u8], aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
        SuiteKeys::derive(self, secret, salt)?.open(aad, ciphertext)
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The expanded keys of one message under one suite: encryption key, MAC
/// key (CBC suites only) and nonce or IV.
///
/// Applications never handle it: sessions and groups seal their messages
/// themselves. It is public only with the `hazmat` feature, for test
/// vectors and conformance work.
#[derive(Zeroize, ZeroizeOnDrop)]
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub, dead_code))]
pub struct SuiteKeys {
    #[zeroize(skip)]
    suite: Suite,
    enc_key: [u8; 32],
    mac_key: [u8; CBC_MAC_KEY_LEN],
    nonce: [u8; 24],
}

#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub, dead_code))]
impl SuiteKeys {
    /// HKDF-SHA-256-Expand with PRK `secret` and info
    /// `"sealpost/v1/suite-keys" || suite id || salt`, split as the module
    /// table says. (The secret is already a uniformly random key, so the
    /// extract step is not needed.)
    pub fn derive(suite: Suite, secret: &SymmetricKey, salt: &[u8]) -> Result<Self> {
        let mut okm = Zeroizing::new([0u8; MAX_KEY_MATERIAL]);
        let len = suite.key_material_len();
        let out = okm.get_mut(..len).ok_or(Error::TooLarge)?;
        hkdf_expand_sha256(secret.as_bytes(), &[label::SUITE_KEYS, &[suite.id()], salt], out)?;
        let mut keys = Self { suite, enc_key: [0; 32], mac_key: [0; CBC_MAC_KEY_LEN], nonce: [0; 24] };
        let (enc, rest) = out.split_at(32);
        keys.enc_key.copy_from_slice(enc);
        let rest = if suite.is_cbc() {
            let (mac, iv) = rest.split_at(CBC_MAC_KEY_LEN);
            keys.mac_key.copy_from_slice(mac);
            iv
        } else {
            rest
        };
        keys.nonce.get_mut(..rest.len()).ok_or(Error::TooLarge)?.copy_from_slice(rest);
        Ok(keys)
    }

    /// Builds keys from explicit parts (for published known-answer tests).
    /// `mac_key` is ignored by the AEAD suites; `nonce` must have the suite's
    /// nonce or IV length.
    pub fn from_parts(suite: Suite, enc_key: [u8; 32], mac_key: [u8; 32], nonce: &[u8]) -> Result<Self> {
        if nonce.len() != suite.nonce_len() {
            return Err(Error::Malformed("nonce"));
        }
        let mut keys = Self { suite, enc_key, mac_key, nonce: [0; 24] };
        keys.nonce.get_mut(..nonce.len()).ok_or(Error::TooLarge)?.copy_from_slice(nonce);
        Ok(keys)
    }

    /// The suite these keys are for.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The encryption key.
    pub fn enc_key(&self) -> &[u8; 32] {
        &self.enc_key
    }

    /// The MAC key (all zero for AEAD suites, which have none).
    pub fn mac_key(&self) -> &[u8; 32] {
        &self.mac_key
    }

    /// The nonce (AEAD suites) or IV (CBC suites).
    pub fn nonce(&self) -> &[u8] {
        self.nonce.get(..self.suite.nonce_len()).unwrap_or(&[])
    }

    /// Seals `buf[start..]` in place, authenticating `aad`: afterwards
    /// `buf[start..]` is the ciphertext with its tag. No copy of the
    /// plaintext is left behind.
    pub fn seal_in_place(&self, aad: &[u8], buf: &mut Vec<u8>, start: usize) -> Result<()> {
        if start > buf.len() {
            return Err(Error::TooLarge);
        }
        let tag = match self.suite {
            #[cfg(all(feature = "ring", not(target_arch = "wasm32")))]
            Suite::Aes256Gcm => {
                ring_provider::seal(&ring::aead::AES_256_GCM, &self.enc_key, self.nonce(), aad, buf, start)?
            }
            #[cfg(all(feature = "ring", not(target_arch = "wasm32")))]
            Suite::ChaCha20Poly1305 => {
                ring_provider::seal(&ring::aead::CHACHA20_POLY1305, &self.enc_key, self.nonce(), aad, buf, start)?
            }
            #[cfg(not(all(feature = "ring", not(target_arch = "wasm32"))))]
            Suite::Aes256Gcm => {
                aead_seal_in_place(&aes_gcm::Aes256Gcm::new(&self.enc_key.into()), self.nonce(), aad, buf, start)?
            }
            #[cfg(not(all(feature = "ring", not(target_arch = "wasm32"))))]
            Suite::ChaCha20Poly1305 => aead_seal_in_place(
                &chacha20poly1305::ChaCha20Poly1305::new(&self.enc_key.into()),
                self.nonce(),
                aad,
                buf,
                start,
            )?,
            Suite::XChaCha20Poly1305 => aead_seal_in_place(
                &chacha20poly1305::XChaCha20Poly1305::new(&self.enc_key.into()),
                self.nonce(),
                aad,
                buf,
                start,
            )?,
            Suite::Aes256CbcHmacSha256 | Suite::Twofish256CbcHmacSha256 => {
                let sealed = match self.suite {
                    Suite::Aes256CbcHmacSha256 => {
                        self.cbc_seal::<aes::Aes256>(aad, buf.get(start..).ok_or(Error::TooLarge)?)?
                    }
                    _ => self.twofish_seal(aad, buf.get(start..).ok_or(Error::TooLarge)?)?,
                };
                buf.zeroize_tail(start);
                buf.extend_from_slice(&sealed);
                return Ok(());
            }
        };
        buf.extend_from_slice(&tag);
        Ok(())
    }

    /// Opens `buf` (ciphertext with tag) in place; afterwards `buf` is the
    /// plaintext. On failure `buf` is wiped and the error is
    /// [`Error::AuthenticationFailed`].
    pub fn open_in_place(&self, aad: &[u8], buf: &mut Vec<u8>) -> Result<()> {
        let result = match self.suite {
            #[cfg(all(feature = "ring", not(target_arch = "wasm32")))]
            Suite::Aes256Gcm => ring_provider::open(&ring::aead::AES_256_GCM, &self.enc_key, self.nonce(), aad, buf),
            #[cfg(all(feature = "ring", not(target_arch = "wasm32")))]
            Suite::ChaCha20Poly1305 => {
                ring_provider::open(&ring::aead::CHACHA20_POLY1305, &self.enc_key, self.nonce(), aad, buf)
            }
            #[cfg(not(all(feature = "ring", not(target_arch = "wasm32"))))]
            Suite::Aes256Gcm => {
                aead_open_in_place(&aes_gcm::Aes256Gcm::new(&self.enc_key.into()), self.nonce(), aad, buf)
            }
            #[cfg(not(all(feature = "ring", not(target_arch = "wasm32"))))]
            Suite::ChaCha20Poly1305 => aead_open_in_place(
                &chacha20poly1305::ChaCha20Poly1305::new(&self.enc_key.into()),
                self.nonce(),
                aad,
                buf,
            ),
            Suite::XChaCha20Poly1305 => aead_open_in_place(
                &chacha20poly1305::XChaCha20Poly1305::new(&self.enc_key.into()),
                self.nonce(),
                aad,
                buf,
            ),
            Suite::Aes256CbcHmacSha256 => self.cbc_open::<aes::Aes256>(aad, buf).map(|pt| {
                buf.zeroize();
                *buf = pt;
            }),
            Suite::Twofish256CbcHmacSha256 => self.twofish_open(aad, buf).map(|pt| {
                buf.zeroize();
                *buf = pt;
            }),
        };
        if result.is_err() {
            buf.zeroize();
            buf.clear();
        }
        result
    }

    /// Seals `plaintext`, authenticating `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        match self.suite {
            Suite::Aes256CbcHmacSha256 => self.cbc_seal::<aes::Aes256>(aad, plaintext),
            Suite::Twofish256CbcHmacSha256 => self.twofish_seal(aad, plaintext),
            _ => {
                let mut buf = Vec::with_capacity(plaintext.len().saturating_add(AEAD_TAG_LEN));
                buf.extend_from_slice(plaintext);
                self.seal_in_place(aad, &mut buf, 0)?;
                Ok(buf)
            }
        }
    }

    /// Opens `ciphertext`; every failure is [`Error::AuthenticationFailed`].
    pub fn open(&self, aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
        match self.suite {
            Suite::Aes256CbcHmacSha256 => self.cbc_open::<aes::Aes256>(aad, ciphertext),
            Suite::Twofish256CbcHmacSha256 => self.twofish_open(aad, ciphertext),
            _ => {
                let mut buf = ciphertext.to_vec();
                self.open_in_place(aad, &mut buf)?;
                Ok(buf)
            }
        }
    }

    fn iv(&self) -> Result<[u8; BLOCK]> {
        self.nonce().try_into().map_err(|_| Error::AuthenticationFailed)
    }

    /// Twofish-256-CBC with PKCS#7, then the same MAC as the AES suite.
    fn twofish_seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let padded_len = self.suite.ciphertext_len(plaintext.len()).checked_sub(CBC_TAG_LEN).ok_or(Error::TooLarge)?;
        let pad = padded_len.checked_sub(plaintext.len()).ok_or(Error::TooLarge)?;
        let mut out = Vec::with_capacity(padded_len.saturating_add(CBC_TAG_LEN));
        out.extend_from_slice(plaintext);
        out.resize(padded_len, u8::try_from(pad).map_err(|_| Error::TooLarge)?);
        crate::twofish::cbc_encrypt(&self.enc_key, &self.iv()?, &mut out);
        let tag = self.cbc_mac(aad, &out)?.finalize().into_bytes();
        out.extend_from_slice(&tag);
        Ok(out)
    }

    fn twofish_open(&self, aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
        let body_len = ciphertext.len().checked_sub(CBC_TAG_LEN).ok_or(Error::AuthenticationFailed)?;
        let (body, tag) = ciphertext.split_at(body_len);
        // The tag is checked first and in constant time; the padding only after.
        self.cbc_mac(aad, body)?.verify_slice(tag).map_err(|_| Error::AuthenticationFailed)?;
        if body.is_empty() || body.len() % BLOCK != 0 {
            return Err(Error::AuthenticationFailed);
        }
        let mut buf = body.to_vec();
        crate::twofish::cbc_decrypt(&self.enc_key, &self.iv()?, &mut buf);
        let pad = buf.last().copied().map(usize::from).unwrap_or(0);
        let ok = (1..=BLOCK).contains(&pad)
            && buf.len() >= pad
            && buf.iter().rev().take(pad).all(|b| usize::from(*b) == pad);
        if !ok {
            buf.zeroize();
            return Err(Error::AuthenticationFailed);
        }
        buf.truncate(buf.len().saturating_sub(pad));
        Ok(buf)
    }

    fn cbc_mac(&self, aad: &[u8], ciphertext: &[u8]) -> Result<Hmac<Sha256>> {
        let aad_len = u64::try_from(aad.len()).map_err(|_| Error::TooLarge)?.to_be_bytes();
        let ct_len = u64::try_from(ciphertext.len()).map_err(|_| Error::TooLarge)?.to_be_bytes();
        hmac_sha256(&self.mac_key, &[&[self.suite.id()], &aad_len, aad, self.nonce(), &ct_len, ciphertext])
    }

    fn cbc_seal<C>(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>>
    where
        C: cbc::cipher::BlockCipherEncrypt + KeyInit,
        cbc::Encryptor<C>: KeyIvInit,
    {
        let padded_len = self.suite.ciphertext_len(plaintext.len()).checked_sub(CBC_TAG_LEN).ok_or(Error::TooLarge)?;
        let mut out = Vec::with_capacity(padded_len.checked_add(CBC_TAG_LEN).ok_or(Error::TooLarge)?);
        out.extend_from_slice(plaintext);
        out.resize(padded_len, 0);
        let enc = cbc::Encryptor::<C>::new_from_slices(&self.enc_key, self.nonce()).map_err(|_| Error::TooLarge)?;
        let ct_len = enc.encrypt_padded::<Pkcs7>(&mut out, plaintext.len()).map_err(|_| Error::TooLarge)?.len();
        out.truncate(ct_len);
        let tag = self.cbc_mac(aad, &out)?.finalize().into_bytes();
        out.extend_from_slice(&tag);
        Ok(out)
    }

    fn cbc_open<C>(&self, aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>>
    where
        C: cbc::cipher::BlockCipherDecrypt + KeyInit,
        cbc::Decryptor<C>: KeyIvInit,
    {
        let body_len = ciphertext.len().checked_sub(CBC_TAG_LEN).ok_or(Error::AuthenticationFailed)?;
        let (body, tag) = ciphertext.split_at(body_len);
        // The tag is checked first and in constant time; nothing about the
        // padding is looked at unless it is valid.
        self.cbc_mac(aad, body)?.verify_slice(tag).map_err(|_| Error::AuthenticationFailed)?;
        if body.is_empty() || body.len() % BLOCK != 0 {
            return Err(Error::AuthenticationFailed);
        }
        let mut buf = Zeroizing::new(body.to_vec());
        let dec = cbc::Decryptor::<C>::new_from_slices(&self.enc_key, self.nonce())
            .map_err(|_| Error::AuthenticationFailed)?;
        let pt_len = dec.decrypt_padded::<Pkcs7>(&mut buf).map_err(|_| Error::AuthenticationFailed)?.len();
        Ok(buf.get(..pt_len).ok_or(Error::AuthenticationFailed)?.to_vec())
    }
}

impl fmt::Debug for SuiteKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SuiteKeys").field("suite", &self.suite).finish_non_exhaustive()
    }
}

/// Wipes `buf[start..]` and truncates it to `start`.
trait ZeroizeTail {
    fn zeroize_tail(&mut self, start: usize);
}

impl ZeroizeTail for Vec<u8> {
    fn zeroize_tail(&mut self, start: usize) {
        if let Some(tail) = self.get_mut(start..) {
            tail.zeroize();
        }
        self.truncate(start);
    }
}

fn aead_seal_in_place<A: AeadInOut>(
    cipher: &A,
    nonce: &[u8],
    aad: &[u8],
    buf: &mut [u8],
    start: usize,
) -> Result<[u8; AEAD_TAG_LEN]> {
    let nonce = nonce.try_into().map_err(|_| Error::Malformed("nonce"))?;
    let body = buf.get_mut(start..).ok_or(Error::TooLarge)?;
    let tag = cipher.encrypt_inout_detached(nonce, aad, body.into()).map_err(|_| Error::TooLarge)?;
    tag.as_slice().try_into().map_err(|_| Error::TooLarge)
}

fn aead_open_in_place<A: AeadInOut>(cipher: &A, nonce: &[u8], aad: &[u8], buf: &mut Vec<u8>) -> Result<()> {
    let nonce = nonce.try_into().map_err(|_| Error::AuthenticationFailed)?;
    let body_len = buf.len().checked_sub(AEAD_TAG_LEN).ok_or(Error::AuthenticationFailed)?;
    let (body, tag) = buf.split_at_mut(body_len);
    let tag: [u8; AEAD_TAG_LEN] = (&*tag).try_into().map_err(|_| Error::AuthenticationFailed)?;
    let tag = (&tag[..]).try_into().map_err(|_| Error::AuthenticationFailed)?;
    cipher.decrypt_inout_detached(nonce, aad, body.into(), tag).map_err(|_| Error::AuthenticationFailed)?;
    buf.truncate(body_len);
    Ok(())
}

/// HMAC-SHA-256 (RFC 2104) keyed with `key` over the concatenation of
/// `parts`, returned unfinished so that a caller checking a tag can use the
/// constant-time `verify_slice`. The CBC suites' MAC (2.5) goes through
/// here, and so does the RFC 4231 known-answer test.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Result<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(|_| Error::TooLarge)?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac)
}

/// The `ring` provider for AES-256-GCM and ChaCha20-Poly1305 (feature
/// `ring`, native targets). It computes exactly what the RustCrypto code
/// does; the suite vectors and known-answer tests run against whichever
/// provider the build uses.
#[cfg(all(feature = "ring", not(target_arch = "wasm32")))]
mod ring_provider {
    use alloc::vec::Vec;

    use ring::aead::{Aad, Algorithm, LessSafeKey, Nonce, UnboundKey};
    use zeroize::Zeroize;

    use super::AEAD_TAG_LEN;
    use crate::error::{Error, Result};

    fn key(alg: &'static Algorithm, key: &[u8; 32]) -> Result<LessSafeKey> {
        Ok(LessSafeKey::new(UnboundKey::new(alg, key).map_err(|_| Error::TooLarge)?))
    }

    fn nonce(n: &[u8]) -> Result<Nonce> {
        Nonce::try_assume_unique_for_key(n).map_err(|_| Error::Malformed("nonce"))
    }

    pub(super) fn seal(
        alg: &'static Algorithm,
        k: &[u8; 32],
        n: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        start: usize,
    ) -> Result<[u8; AEAD_TAG_LEN]> {
        let body = buf.get_mut(start..).ok_or(Error::TooLarge)?;
        let tag =
            key(alg, k)?.seal_in_place_separate_tag(nonce(n)?, Aad::from(aad), body).map_err(|_| Error::TooLarge)?;
        tag.as_ref().try_into().map_err(|_| Error::TooLarge)
    }

    pub(super) fn open(alg: &'static Algorithm, k: &[u8; 32], n: &[u8], aad: &[u8], buf: &mut Vec<u8>) -> Result<()> {
        if buf.len() < AEAD_TAG_LEN {
            return Err(Error::AuthenticationFailed);
        }
        let n = nonce(n).map_err(|_| Error::AuthenticationFailed)?;
        match key(alg, k)?.open_in_place(n, Aad::from(aad), buf.as_mut_slice()) {
            Ok(plain) => {
                let len = plain.len();
                buf.truncate(len);
                Ok(())
            }
            Err(_) => {
                buf.zeroize();
                Err(Error::AuthenticationFailed)
            }
        }
    }
}
