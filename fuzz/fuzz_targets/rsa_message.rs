//! The RSA-wrapped message parser and opener (feature `rsa`, PROTOCOL.md
//! 12A), with the test keys of `test-vectors/rsa/` (sender `rsa2048`,
//! recipient `rsa3072`). The first input byte picks the mode:
//!
//! * 0: any bytes opened as a message; typed errors only, and whatever
//!   opens re-opens to the same plaintext.
//! * 1: a genuine message mutated at fuzzer-chosen offsets (and possibly
//!   truncated): nothing altered opens.
//! * 2: any bytes as the unsigned part of a message, signed correctly by
//!   the sender with the `rsa` crate, so that the parser's layout, the
//!   implicit rejection and the AEAD see fuzzer-chosen wrapped keys and
//!   ciphertexts behind a valid signature: only the errors of 12A's
//!   opening steps, never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use sealpost::hazmat::PSS_CONTEXT;
use sealpost::{Error, SessionPolicy, Suite};
use sealpost::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;

const SENDER_PEM: &str = include_str!("../../test-vectors/rsa/rsa2048.pem");
const RECIPIENT_PEM: &str = include_str!("../../test-vectors/rsa/rsa3072.pem");

struct Fixture {
    sender: RsaPublicKey,
    recipient: RsaPrivateKey,
    signer: rsa::pss::SigningKey<Sha256>,
    binding: Vec<u8>,
    policy: SessionPolicy,
    genuine: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let sender_key = RsaPrivateKey::from_pkcs8_pem(SENDER_PEM).unwrap();
        let recipient = RsaPrivateKey::from_pkcs8_pem(RECIPIENT_PEM).unwrap();
        let sender = sender_key.public_key();
        let genuine = sender_key.seal_message(&mut rng, &recipient.public_key(), Suite::Aes256Gcm, b"genuine").unwrap();
        let signer = rsa::pss::SigningKey::<Sha256>::new_with_salt_len(
            rsa::RsaPrivateKey::from_pkcs8_pem(SENDER_PEM).unwrap(),
            32,
        );
        let mut binding = sender.fingerprint().to_vec();
        binding.extend_from_slice(&recipient.public_key().fingerprint());
        let policy = SessionPolicy { suites: Suite::ALL.to_vec(), ..SessionPolicy::default() };
        Fixture { sender, recipient, signer, binding, policy, genuine }
    })
}

fn open(f: &Fixture, msg: &[u8]) -> Result<Vec<u8>, Error> {
    f.recipient.open_message(&mut ChaCha20Rng::from_seed([9; 32]), &f.policy, &f.sender, msg)
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        0 => {
            if let Ok(pt) = open(f, rest) {
                assert_eq!(open(f, rest), Ok(pt), "opening is not repeatable");
            }
        }
        1 => {
            let mut msg = f.genuine.clone();
            for m in rest.chunks_exact(3) {
                let at = usize::from(u16::from_be_bytes([m[0], m[1]])) % msg.len();
                msg[at] ^= m[2];
            }
            if rest.len() % 3 == 1 {
                msg.truncate(usize::from(rest[rest.len() - 1]) % msg.len());
            }
            let r = open(f, &msg);
            if msg == f.genuine {
                assert_eq!(r, Ok(b"genuine".to_vec()));
            } else {
                assert!(r.is_err(), "an altered message opened");
            }
        }
        _ => {
            let mut input = PSS_CONTEXT.to_vec();
            input.extend_from_slice(&f.binding);
            input.extend_from_slice(rest);
            let mut msg = rest.to_vec();
            msg.extend_from_slice(&f.signer.sign_with_rng(&mut ChaCha20Rng::from_seed([7; 32]), &input).to_vec());
            match open(f, &msg) {
                // A wrapped key and ciphertext made for this recipient
                // (from a seed) legitimately open once the sender signed.
                Ok(_) => {}
                Err(
                    Error::Malformed(_)
                    | Error::UnsupportedVersion(_)
                    | Error::UnsupportedSuite(_)
                    | Error::InvalidSignature
                    | Error::AuthenticationFailed,
                ) => {}
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
    }
});
