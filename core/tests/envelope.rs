//! Envelopes and bundles: encode/decode round trips over arbitrary field
//! values, and arbitrary or mutated bytes rejected with a typed error,
//! never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use proptest::prelude::*;
use sealpost::hazmat::IdentityKeyPair;
use sealpost::{Account, PrekeyBundle, SessionPolicy, Suite, SymmetricKey};
use sealpost::{Envelope, GroupMessage, PrekeyMessage, RatchetHeader, RatchetMessage, SenderKeyDistribution};

fn suite() -> impl Strategy<Value = Suite> {
    prop::sample::select(Suite::ALL.to_vec())
}

fn header() -> impl Strategy<Value = RatchetHeader> {
    (any::<[u8; 32]>(), any::<[u32; 4]>(), any::<[u8; 32]>(), any::<u32>(), any::<[u8; 16]>()).prop_map(
        |(ratchet_key, [epoch, peer_epoch, counter, prev_count], prev_ratchet_key, prev_peer_epoch, salt)| {
            RatchetHeader {
                ratchet_key,
                epoch,
                peer_epoch,
                counter,
                prev_count,
                prev_ratchet_key,
                prev_peer_epoch,
                salt,
            }
        },
    )
}

fn identity() -> impl Strategy<Value = sealpost::IdentityPublic> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(s, d)| *IdentityKeyPair::from_secret_bytes(&s, &d).public())
}

fn suite_list() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::subsequence(vec![1u8, 2, 3, 4, 5, 9, 200], 1..=7).prop_shuffle()
}

fn envelope() -> impl Strategy<Value = Envelope> {
    let ct = prop::collection::vec(any::<u8>(), 0..300);
    let gid = prop::collection::vec(any::<u8>(), 1..=64);
    prop_oneof![
        (suite(), header(), ct.clone()).prop_map(|(suite, header, ciphertext)| Envelope::Ratchet(RatchetMessage {
            version: 1,
            suite,
            header,
            ciphertext
        })),
        (
            suite(),
            identity(),
            suite_list(),
            any::<u32>(),
            any::<Option<u32>>(),
            any::<[u8; 32]>(),
            header(),
            ct.clone(),
            any::<bool>()
        )
            .prop_map(|(suite, identity, initiator_suites, spk, otk, base_key, header, ciphertext, hybrid)| {
                Envelope::Prekey(PrekeyMessage {
                    version: if hybrid { 2 } else { 1 },
                    pq_ciphertext: hybrid.then(|| vec![0x42; sealpost::hazmat::PQ_CIPHERTEXT_LEN]),
                    suite,
                    identity,
                    initiator_suites,
                    signed_prekey_id: spk,
                    one_time_prekey_id: otk,
                    base_key,
                    header,
                    ciphertext,
                })
            }),
        (suite(), gid.clone(), any::<[u8; 32]>(), any::<u32>(), any::<[u8; 16]>(), ct, any::<[[u8; 32]; 2]>())
            .prop_map(|(suite, group_id, sender_key, iteration, salt, ciphertext, sig)| {
                let mut signature = [0u8; 64];
                signature[..32].copy_from_slice(&sig[0]);
                signature[32..].copy_from_slice(&sig[1]);
                Envelope::Group(GroupMessage {
                    version: 1,
                    suite,
                    group_id,
                    sender_key,
                    iteration,
                    salt,
                    ciphertext,
                    signature,
                })
            }),
        (suite(), gid, any::<[u8; 32]>(), any::<u32>(), any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(
            |(suite, group_id, sender_key, iteration, ck, sig)| {
                let mut owner_signature = [0u8; 64];
                owner_signature[..32].copy_from_slice(&sig);
                Envelope::SenderKeyDistribution(SenderKeyDistribution {
                    version: 1,
                    suite,
                    group_id,
                    sender_key,
                    iteration,
                    chain_key: SymmetricKey::from_bytes(ck),
                    owner_signature,
                    chain_signature: {
                        let mut c = owner_signature;
                        c.reverse();
                        c
                    },
                })
            }
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn every_envelope_type_round_trips(env in envelope()) {
        let bytes = env.to_bytes().unwrap();
        prop_assert_eq!(Envelope::from_bytes(&bytes).unwrap(), env);
    }

    #[test]
    fn truncated_or_extended_envelopes_are_rejected(env in envelope(), cut in any::<prop::sample::Index>(), extra in 1usize..4) {
        let bytes = env.to_bytes().unwrap();
        let n = cut.index(bytes.len());
        prop_assert!(Envelope::from_bytes(&bytes[..n]).is_err());
        let mut longer = bytes.clone();
        longer.extend(std::iter::repeat_n(0u8, extra));
        prop_assert!(Envelope::from_bytes(&longer).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Envelope::from_bytes(&bytes);
        let _ = PrekeyBundle::from_bytes(&bytes);
        let _ = sealpost::IdentityPublic::from_bytes(&bytes);
        let _ = sealpost::OneTimePrekey::from_bytes(&bytes);
    }

    #[test]
    fn mutated_envelopes_never_panic(env in envelope(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = env.to_bytes().unwrap();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(parsed) = Envelope::from_bytes(&bytes) {
            // Whatever parses re-encodes to the same bytes (the format is canonical).
            prop_assert_eq!(parsed.to_bytes().unwrap(), bytes);
        }
    }
}

#[test]
fn any_changed_bundle_byte_is_rejected() {
    let mut rng = common::rng(40);
    let mut account = Account::new(&mut rng, common::T0);
    let otk = account.generate_one_time_prekeys(&mut rng, 1)[0];
    let bundle = account.bundle(&SessionPolicy::default()).unwrap().with_one_time_prekey(otk).unwrap();
    let wire = bundle.to_bytes();
    assert_eq!(PrekeyBundle::from_bytes(&wire).unwrap(), bundle);
    for i in 0..wire.len() {
        for bit in [0x01u8, 0x10, 0x80] {
            let mut t = wire.clone();
            t[i] ^= bit;
            assert!(PrekeyBundle::from_bytes(&t).is_err(), "bundle byte {i} bit {bit:#x} accepted");
        }
    }
}

#[test]
fn one_time_prekey_from_another_identity_is_refused() {
    let mut rng = common::rng(41);
    let mut a = Account::new(&mut rng, common::T0);
    let mut b = Account::new(&mut rng, common::T0);
    let otk_b = b.generate_one_time_prekeys(&mut rng, 1)[0];
    let _ = a.generate_one_time_prekeys(&mut rng, 1);
    let bundle = a.bundle(&SessionPolicy::default()).unwrap();
    assert_eq!(bundle.with_one_time_prekey(otk_b).err(), Some(sealpost::Error::InvalidSignature));
}
