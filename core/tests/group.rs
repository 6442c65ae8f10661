//! Group sessions (sender keys) and rooms (broadcast + direct): membership,
//! authenticity, reordering, replay, pickles.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::needless_range_loop
)]

mod common;

use common::{T0, rng};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_chacha::ChaCha20Rng;
use sealpost::hazmat::identity_secret_bytes;
use sealpost::{
    Account, Envelope, Error, GroupSession, IdentityPublic, PickleKey, PrekeyBundle, Session, SessionPolicy, Suite,
    SymmetricKey,
};
use sealpost::{GroupMessage, SenderKeyDistribution};
use sealpost::{Incoming, Room};

/// What an Ed25519 signature under a context starts with (PROTOCOL.md 2.1):
/// `u8(len(label)) || label`.
fn context_prefix(label: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::try_from(label.len()).unwrap()];
    out.extend_from_slice(label);
    out
}

/// A distribution made by hand from PROTOCOL.md 7.6: sender key `chain`,
/// `owner_signature` by the identity `signer`, and `chain_signature` by
/// `chain` naming `owner` (which need not be `signer`).
fn hand_made_distribution(
    group_id: &[u8],
    chain: &SigningKey,
    signer: &Account,
    owner: &IdentityPublic,
) -> SenderKeyDistribution {
    let sender_key = chain.verifying_key().to_bytes();
    let mut owned = context_prefix(b"sealpost/v1/sender-key-owner");
    owned.push(group_id.len() as u8);
    owned.extend_from_slice(group_id);
    owned.extend_from_slice(&sender_key);
    let identity_key = SigningKey::from_bytes(&identity_secret_bytes(signer).0);
    let mut skd = SenderKeyDistribution {
        version: 1,
        suite: SessionPolicy::default().suites[0],
        group_id: group_id.to_vec(),
        sender_key,
        iteration: 0,
        chain_key: SymmetricKey::from_bytes([5; 32]),
        owner_signature: identity_key.sign(&owned).to_bytes(),
        chain_signature: [0; 64],
    };
    let bytes = skd.to_bytes().unwrap();
    let mut signed = context_prefix(b"sealpost/v1/sender-key-distribution");
    signed.extend_from_slice(owner.signing_key());
    signed.extend_from_slice(&bytes[..bytes.len() - 64]);
    skd.chain_signature = chain.sign(&signed).to_bytes();
    skd
}

struct Group {
    rng: ChaCha20Rng,
    ids: Vec<Account>,
    views: Vec<GroupSession>,
}

/// `n` members who all know each other's chains.
fn group(n: usize, seed: u8, policy: &SessionPolicy) -> Group {
    let mut rng = rng(seed);
    let ids: Vec<_> = (0..n).map(|_| Account::new(&mut rng, 0)).collect();
    let mut views: Vec<_> = ids.iter().map(|id| GroupSession::new(&mut rng, b"group-1", id, policy).unwrap()).collect();
    for i in 0..n {
        for j in 0..n {
            if i != j {
                views[i].add_member(*ids[j].identity()).unwrap();
            }
        }
    }
    for i in 0..n {
        let skd = views[i].distribution();
        for j in 0..n {
            if i != j {
                views[j].process_distribution(ids[i].identity(), &skd).unwrap();
            }
        }
    }
    Group { rng, ids, views }
}

#[test]
fn every_member_reads_every_broadcast_once() {
    let mut g = group(4, 60, &SessionPolicy::default());
    for sender in 0..4 {
        let text = format!("from {sender}");
        let m = g.views[sender].encrypt(&mut g.rng, text.as_bytes()).unwrap();
        for reader in 0..4 {
            if reader == sender {
                continue;
            }
            let (from, pt) = g.views[reader].decrypt(&m).unwrap();
            assert_eq!(from, *g.ids[sender].identity());
            assert_eq!(pt, text.as_bytes());
            assert_eq!(g.views[reader].decrypt(&m).err(), Some(Error::Replay));
        }
    }
}

#[test]
fn a_member_added_later_reads_from_then_on_only() {
    let policy = SessionPolicy::default();
    let mut g = group(2, 61, &policy);
    let before = g.views[0].encrypt(&mut g.rng, b"before dave").unwrap();
    let dave = Account::new(&mut g.rng, 0);
    let mut dv = GroupSession::new(&mut g.rng, b"group-1", &dave, &policy).unwrap();
    dv.add_member(*g.ids[0].identity()).unwrap();
    g.views[0].add_member(*dave.identity()).unwrap();
    dv.process_distribution(g.ids[0].identity(), &g.views[0].distribution()).unwrap();
    let after = g.views[0].encrypt(&mut g.rng, b"after dave").unwrap();
    assert_eq!(dv.decrypt(&before).err(), Some(Error::OutsideWindow));
    assert_eq!(dv.decrypt(&after), Ok((*g.ids[0].identity(), b"after dave".to_vec())));
    assert_eq!(g.views[1].decrypt(&before).unwrap().1, b"before dave");
}

#[test]
fn a_removed_member_reads_nothing_sent_afterwards() {
    let mut g = group(3, 62, &SessionPolicy::default());
    let carol = *g.ids[2].identity();
    let m = g.views[0].encrypt(&mut g.rng, b"all three").unwrap();
    assert_eq!(g.views[2].decrypt(&m), Ok((*g.ids[0].identity(), b"all three".to_vec())));
    // Alice and Bob remove Carol: each rotates and sends the new chain to the other only.
    assert_eq!(g.views[0].remove_member(&mut g.rng, &g.ids[1], &carol).err(), Some(Error::InvalidKey));
    assert!(g.views[0].is_member(&carol), "a refused removal changes nothing");
    let skd_a = g.views[0].remove_member(&mut g.rng, &g.ids[0], &carol).unwrap();
    let skd_b = g.views[1].remove_member(&mut g.rng, &g.ids[1], &carol).unwrap();
    g.views[1].process_distribution(g.ids[0].identity(), &skd_a).unwrap();
    g.views[0].process_distribution(g.ids[1].identity(), &skd_b).unwrap();
    let a = g.views[0].encrypt(&mut g.rng, b"without carol").unwrap();
    let b = g.views[1].encrypt(&mut g.rng, b"still without carol").unwrap();
    assert_eq!(g.views[1].decrypt(&a), Ok((*g.ids[0].identity(), b"without carol".to_vec())));
    assert_eq!(g.views[0].decrypt(&b), Ok((*g.ids[1].identity(), b"still without carol".to_vec())));
    assert_eq!(g.views[2].decrypt(&a).err(), Some(Error::UnknownSender));
    assert_eq!(g.views[2].decrypt(&b).err(), Some(Error::UnknownSender));
    // Carol's own distributions are no longer accepted by the others.
    let skd_c = g.views[2].distribution();
    assert_eq!(g.views[0].process_distribution(&carol, &skd_c).err(), Some(Error::UnknownSender));
    let c = g.views[2].encrypt(&mut g.rng, b"hello?").unwrap();
    assert_eq!(g.views[0].decrypt(&c).err(), Some(Error::UnknownSender));
}

#[test]
fn a_member_cannot_forge_a_message_as_another() {
    let mut g = group(3, 63, &SessionPolicy::default());
    let genuine = g.views[0].encrypt(&mut g.rng, b"pay bob 5").unwrap();
    let Envelope::Group(msg) = Envelope::from_bytes(&genuine).unwrap() else { panic!() };
    // Bob holds Alice's chain key, so the ciphertext is "valid"; he re-signs
    // it (or an edited header) with a key of his own.
    let bob_signing = SigningKey::from_bytes(&[7; 32]);
    let mut forged: GroupMessage = msg.clone();
    let mut signed = context_prefix(b"sealpost/v1/group-message");
    signed.extend_from_slice(&forged.signed_bytes().unwrap());
    forged.signature = bob_signing.sign(&signed).to_bytes();
    assert_eq!(g.views[2].decrypt_message(&forged).err(), Some(Error::InvalidSignature));
    // Any bit of the genuine message changed: refused with the error of
    // the first check that fails (7.1, 7.5, 12.3), and nothing consumed.
    let l = msg.group_id.len();
    let c = msg.ciphertext.len();
    for i in 0..genuine.len() {
        let mut t = genuine.clone();
        t[i] ^= 0x20;
        let want = match i {
            0 => Error::UnsupportedVersion(t[0]),
            1 => Error::Malformed("envelope type"),
            2 => Error::UnsupportedSuite(t[2]),
            // The group id length, the ciphertext length: framing.
            3 => Error::Malformed("envelope"),
            _ if (56 + l..60 + l).contains(&i) => Error::Malformed("envelope"),
            _ if (4..4 + l).contains(&i) => Error::Malformed("group id"),
            _ if (4 + l..36 + l).contains(&i) => Error::UnknownSender,
            // Position, salt, ciphertext, signature: the signature fails first.
            _ => Error::InvalidSignature,
        };
        assert_eq!(g.views[2].decrypt(&t), Err(want), "byte {i} of {}", 124 + l + c);
    }
    assert_eq!(g.views[2].decrypt(&genuine), Ok((*g.ids[0].identity(), b"pay bob 5".to_vec())));
}

#[test]
fn a_member_cannot_claim_another_members_sender_key() {
    // Mallory (member 1) knows Alice's chain (member 0) and tries to
    // register it with Carol (member 2) as her own before Alice's own
    // distribution arrives, to have Alice's messages shown as Mallory's.
    let policy = SessionPolicy::default();
    let mut rng = rng(68);
    let ids: Vec<_> = (0..3).map(|_| Account::new(&mut rng, 0)).collect();
    let alice = GroupSession::new(&mut rng, b"group-1", &ids[0], &policy).unwrap();
    let mut carol = GroupSession::new(&mut rng, b"group-1", &ids[2], &policy).unwrap();
    carol.add_member(*ids[0].identity()).unwrap();
    carol.add_member(*ids[1].identity()).unwrap();
    let stolen = alice.distribution();
    // As it is: Alice's identity signed it, not Mallory's.
    assert_eq!(carol.process_distribution(ids[1].identity(), &stolen), Err(Error::InvalidSignature));
    // With Mallory's own identity signature over Alice's sender key: the
    // sender key's signature names Alice, so it is still refused.
    let mut owned = context_prefix(b"sealpost/v1/sender-key-owner");
    owned.push(7);
    owned.extend_from_slice(b"group-1");
    owned.extend_from_slice(&stolen.sender_key);
    let mallory_key = SigningKey::from_bytes(&identity_secret_bytes(&ids[1]).0);
    let claimed = SenderKeyDistribution { owner_signature: mallory_key.sign(&owned).to_bytes(), ..stolen.clone() };
    assert_eq!(carol.process_distribution(ids[1].identity(), &claimed), Err(Error::InvalidSignature));
    // Alice's genuine distribution is still accepted, attributed to her.
    assert_eq!(carol.process_distribution(ids[0].identity(), &stolen), Ok(()));
    let mut alice = alice;
    let m = alice.encrypt(&mut rng, b"from alice").unwrap();
    assert_eq!(carol.decrypt(&m), Ok((*ids[0].identity(), b"from alice".to_vec())));
}

#[test]
fn a_non_member_learns_nothing() {
    let mut g = group(2, 64, &SessionPolicy::default());
    let eve = Account::new(&mut g.rng, 0);
    let mut ev = GroupSession::new(&mut g.rng, b"group-1", &eve, &SessionPolicy::default()).unwrap();
    let m = g.views[0].encrypt(&mut g.rng, b"members only").unwrap();
    assert_eq!(ev.decrypt(&m).err(), Some(Error::UnknownSender));
    // Even claiming to be a member, she cannot inject a chain for Alice.
    ev.add_member(*g.ids[0].identity()).unwrap();
    let fake = ev.distribution();
    assert_eq!(g.views[1].process_distribution(eve.identity(), &fake).err(), Some(Error::UnknownSender));
}

#[test]
fn reordering_replay_and_gaps_follow_the_pairwise_rules() {
    let policy = SessionPolicy { max_skip_per_chain: 10, ..SessionPolicy::default() };
    let mut g = group(2, 65, &policy);
    let msgs: Vec<_> = (0..12u8).map(|i| g.views[0].encrypt(&mut g.rng, &[i]).unwrap()).collect();
    assert_eq!(g.views[1].decrypt(&msgs[11]).err(), Some(Error::TooManySkipped));
    let alice = *g.ids[0].identity();
    for i in (0..11).rev() {
        assert_eq!(g.views[1].decrypt(&msgs[i]), Ok((alice, vec![i as u8])));
    }
    assert_eq!(g.views[1].decrypt(&msgs[11]), Ok((alice, vec![11])));
    for m in &msgs {
        assert_eq!(g.views[1].decrypt(m).err(), Some(Error::Replay));
    }
}

#[test]
fn messages_from_before_a_rotation_still_open() {
    let mut g = group(2, 66, &SessionPolicy::default());
    let old = g.views[0].encrypt(&mut g.rng, b"old chain").unwrap();
    assert_eq!(g.views[0].rotate(&mut g.rng, &g.ids[1]).err(), Some(Error::InvalidKey));
    let skd = g.views[0].rotate(&mut g.rng, &g.ids[0]).unwrap();
    g.views[1].process_distribution(g.ids[0].identity(), &skd).unwrap();
    let new = g.views[0].encrypt(&mut g.rng, b"new chain").unwrap();
    let alice = *g.ids[0].identity();
    assert_eq!(g.views[1].decrypt(&new), Ok((alice, b"new chain".to_vec())));
    assert_eq!(g.views[1].decrypt(&old), Ok((alice, b"old chain".to_vec())));
}

#[test]
fn group_sessions_survive_pickling() {
    let mut g = group(2, 67, &SessionPolicy::default());
    let key = PickleKey::Key(SymmetricKey::from_bytes([3; 32]));
    let alice = *g.ids[0].identity();
    let m1 = g.views[0].encrypt(&mut g.rng, b"one").unwrap();
    let m2 = g.views[0].encrypt(&mut g.rng, b"two").unwrap();
    assert_eq!(g.views[1].decrypt(&m2), Ok((alice, b"two".to_vec())));
    let pa = g.views[0].pickle(&mut g.rng, &key, b"").unwrap();
    // Only its own identity can restore it (the new chain needs its signature).
    assert_eq!(GroupSession::from_pickle(&mut g.rng, &pa, &key, b"", &g.ids[1]).err(), Some(Error::InvalidKey));
    let mut a = GroupSession::from_pickle(&mut g.rng, &pa, &key, b"", &g.ids[0]).unwrap();
    let pb = g.views[1].pickle(&mut g.rng, &key, b"").unwrap();
    let mut b = GroupSession::from_pickle(&mut g.rng, &pb, &key, b"", &g.ids[1]).unwrap();
    // What b had received survives: late keys and replay state.
    assert_eq!(b.decrypt(&m1), Ok((alice, b"one".to_vec())));
    assert_eq!(b.decrypt(&m2).err(), Some(Error::Replay));
    // The restored a started a new chain (its old positions may have been
    // used after the pickle was taken) and must hand it out first.
    assert!(a.must_redistribute());
    assert_eq!(a.encrypt(&mut g.rng, b"too early").err(), Some(Error::RedistributionRequired));
    b.process_distribution(g.ids[0].identity(), &a.distribution()).unwrap();
    a.mark_distributed();
    let m3 = a.encrypt(&mut g.rng, b"three").unwrap();
    assert_eq!(b.decrypt(&m3), Ok((alice, b"three".to_vec())));
    // The original (pre-restore) chain still opens at b too.
    let m4 = g.views[0].encrypt(&mut g.rng, b"four, from the lost state").unwrap();
    assert_eq!(b.decrypt(&m4), Ok((alice, b"four, from the lost state".to_vec())));
    for i in 0..pa.len() {
        let mut t = pa.clone();
        t[i] ^= 1;
        let want = match i {
            0 => Error::UnsupportedVersion(t[0]),
            1 => Error::Malformed("pickle kind"),
            2 => Error::Malformed("pickle"),
            _ => Error::AuthenticationFailed,
        };
        assert_eq!(GroupSession::from_pickle(&mut g.rng, &t, &key, b"", &g.ids[0]).err(), Some(want), "byte {i}");
    }
}

/// Three people in a room, each pair with a pairwise session.
fn room_of_three(seed: u8) -> (ChaCha20Rng, Vec<Account>, Vec<Room>) {
    let policy = SessionPolicy::default();
    let mut rng = rng(seed);
    let mut accounts: Vec<Account> = (0..3).map(|_| Account::new(&mut rng, T0)).collect();
    let mut rooms: Vec<Room> = accounts.iter().map(|a| Room::new(&mut rng, b"lobby", a, &policy).unwrap()).collect();
    for i in 0..3 {
        for j in (i + 1)..3 {
            // i starts a session with j from j's bundle; j accepts it.
            let bundle = PrekeyBundle::from_bytes(&accounts[j].bundle(&policy).unwrap().to_bytes()).unwrap();
            let s_ij = Session::initiate(&mut rng, &mut accounts[i], &bundle, &policy, T0).unwrap();
            let out = rooms[i].add_member(&mut rng, T0, s_ij).unwrap();
            let Envelope::Prekey(first) = Envelope::from_bytes(&out.envelope).unwrap() else { panic!() };
            let (update, back) = rooms[j].accept(&mut rng, T0, &mut accounts[j], &policy, &first).unwrap();
            let from_i = *accounts[i].identity();
            let from_j = *accounts[j].identity();
            assert_eq!(update, Incoming::KeyUpdate { from: from_i });
            assert_eq!(
                rooms[i].receive(T0, from_j.signing_key(), &back.envelope),
                Ok(Incoming::KeyUpdate { from: from_j })
            );
        }
    }
    (rng, accounts, rooms)
}

#[test]
fn room_offers_broadcast_and_direct_messages() {
    let (mut rng, accounts, mut rooms) = room_of_three(70);
    let ids: Vec<IdentityPublic> = accounts.iter().map(|a| *a.identity()).collect();
    let via: Vec<[u8; 32]> = ids.iter().map(|id| *id.signing_key()).collect();
    // Broadcast: one envelope, everyone reads it.
    let b = rooms[0].broadcast(&mut rng, b"hi all").unwrap();
    assert_eq!(b.recipient, None);
    for r in 1..3 {
        assert_eq!(
            rooms[r].receive(T0, &via[0], &b.envelope),
            Ok(Incoming::Broadcast { from: ids[0], text: b"hi all".to_vec() })
        );
    }
    // Direct: only Bob can read it; Carol cannot, even given the bytes.
    let d = rooms[0].direct(&mut rng, T0, &ids[1], b"@bob psst").unwrap();
    assert_eq!(d.recipient, Some(ids[1]));
    assert_eq!(rooms[2].receive(T0, &via[0], &d.envelope), Err(Error::AuthenticationFailed));
    assert_eq!(
        rooms[1].receive(T0, &via[0], &d.envelope),
        Ok(Incoming::Direct { from: ids[0], text: b"@bob psst".to_vec() })
    );
    // Removal through the room: Alice and Bob drop Carol and re-key.
    assert_eq!(rooms[0].remove_member(&mut rng, T0, &accounts[1], &ids[2]).err(), Some(Error::InvalidKey));
    let outs_a = rooms[0].remove_member(&mut rng, T0, &accounts[0], &ids[2]).unwrap();
    let outs_b = rooms[1].remove_member(&mut rng, T0, &accounts[1], &ids[2]).unwrap();
    assert_eq!(outs_a.len(), 1);
    assert_eq!(rooms[1].receive(T0, &via[0], &outs_a[0].envelope), Ok(Incoming::KeyUpdate { from: ids[0] }));
    assert_eq!(rooms[0].receive(T0, &via[1], &outs_b[0].envelope), Ok(Incoming::KeyUpdate { from: ids[1] }));
    let after = rooms[0].broadcast(&mut rng, b"just us").unwrap();
    assert_eq!(
        rooms[1].receive(T0, &via[0], &after.envelope),
        Ok(Incoming::Broadcast { from: ids[0], text: b"just us".to_vec() })
    );
    assert_eq!(rooms[2].receive(T0, &via[0], &after.envelope), Err(Error::UnknownSender));
}

#[test]
fn rooms_survive_pickling() {
    let (mut rng, accounts, mut rooms) = room_of_three(71);
    let ids: Vec<IdentityPublic> = accounts.iter().map(|a| *a.identity()).collect();
    let via: Vec<[u8; 32]> = ids.iter().map(|id| *id.signing_key()).collect();
    let key = PickleKey::passphrase(b"correct horse");
    // Alice's chain is known to Bob before the pickle; one late broadcast
    // of hers is still in flight when Bob restores.
    let early = rooms[0].broadcast(&mut rng, b"before").unwrap();
    assert!(matches!(rooms[1].receive(T0, &via[0], &early.envelope), Ok(Incoming::Broadcast { .. })));
    let late = rooms[0].broadcast(&mut rng, b"in flight").unwrap();
    let pickle = rooms[1].pickle(&mut rng, &key, b"room lobby").unwrap();

    // Wrong associated data, wrong key, another member's account, a
    // truncation at every length: typed errors, never a panic.
    assert_eq!(
        Room::from_pickle(&mut rng, &pickle, &key, b"room other", &accounts[1]).err(),
        Some(Error::AuthenticationFailed)
    );
    assert_eq!(
        Room::from_pickle(&mut rng, &pickle, &PickleKey::passphrase(b"wrong"), b"room lobby", &accounts[1]).err(),
        Some(Error::AuthenticationFailed)
    );
    assert_eq!(Room::from_pickle(&mut rng, &pickle, &key, b"room lobby", &accounts[2]).err(), Some(Error::InvalidKey));
    let group_pickle = rooms[1].group().pickle(&mut rng, &key, b"room lobby").unwrap();
    assert_eq!(
        Room::from_pickle(&mut rng, &group_pickle, &key, b"room lobby", &accounts[1]).err(),
        Some(Error::Malformed("pickle kind"))
    );
    for cut in [0, 1, 3, 20, pickle.len() / 2, pickle.len() - 1] {
        assert!(Room::from_pickle(&mut rng, &pickle[..cut], &key, b"room lobby", &accounts[1]).is_err(), "cut {cut}");
    }

    let mut bob = Room::from_pickle(&mut rng, &pickle, &key, b"room lobby", &accounts[1]).unwrap();
    assert_eq!(bob.members().copied().collect::<Vec<_>>(), vec![ids[0], ids[2]]);
    // What was sent before the restore still opens, once.
    assert_eq!(
        bob.receive(T0, &via[0], &late.envelope),
        Ok(Incoming::Broadcast { from: ids[0], text: b"in flight".to_vec() })
    );
    assert_eq!(bob.receive(T0, &via[0], &early.envelope), Err(Error::Replay));
    // The restored chain must reach the members before Bob broadcasts.
    assert_eq!(bob.broadcast(&mut rng, b"too soon").err(), Some(Error::RedistributionRequired));
    let outs = bob.redistribute(&mut rng, T0).unwrap();
    assert_eq!(outs.iter().map(|o| o.recipient).collect::<Vec<_>>(), vec![Some(ids[0]), Some(ids[2])]);
    assert!(bob.redistribute(&mut rng, T0).unwrap().is_empty(), "redistributed once");
    assert_eq!(rooms[0].receive(T0, &via[1], &outs[0].envelope), Ok(Incoming::KeyUpdate { from: ids[1] }));
    assert_eq!(rooms[2].receive(T0, &via[1], &outs[1].envelope), Ok(Incoming::KeyUpdate { from: ids[1] }));
    let hello = bob.broadcast(&mut rng, b"back").unwrap();
    for r in [0, 2] {
        assert_eq!(
            rooms[r].receive(T0, &via[1], &hello.envelope),
            Ok(Incoming::Broadcast { from: ids[1], text: b"back".to_vec() })
        );
    }
    // Direct messages go on both ways over the restored pairwise sessions.
    let d = bob.direct(&mut rng, T0, &ids[2], b"@carol hi").unwrap();
    assert_eq!(
        rooms[2].receive(T0, &via[1], &d.envelope),
        Ok(Incoming::Direct { from: ids[1], text: b"@carol hi".to_vec() })
    );
    let d = rooms[2].direct(&mut rng, T0, &ids[1], b"@bob hi").unwrap();
    assert_eq!(bob.receive(T0, &via[2], &d.envelope), Ok(Incoming::Direct { from: ids[2], text: b"@bob hi".to_vec() }));
}

#[test]
fn a_stranger_cannot_plant_a_sender_key_labelled_as_another_members() {
    // Mallory is no member; she knows Alice's public identity only. She
    // hands Bob a sender key labelled as Alice's, as if Alice had sent it
    // (an application that believed a wrong sender, say).
    let policy = SessionPolicy::default();
    let mut rng = rng(71);
    let alice = Account::new(&mut rng, 0);
    let bob = Account::new(&mut rng, 0);
    let mallory = Account::new(&mut rng, 0);
    let mut bv = GroupSession::new(&mut rng, b"group-1", &bob, &policy).unwrap();
    bv.add_member(*alice.identity()).unwrap();
    let chain = SigningKey::from_bytes(&[9; 32]);
    // Everything is right except the identity that vouches for the key.
    let planted = hand_made_distribution(b"group-1", &chain, &mallory, alice.identity());
    assert_eq!(bv.process_distribution(alice.identity(), &planted), Err(Error::InvalidSignature));
    // Mallory's own genuine distribution, claimed to be Alice's.
    let mallorys = GroupSession::new(&mut rng, b"group-1", &mallory, &policy).unwrap().distribution();
    assert_eq!(bv.process_distribution(alice.identity(), &mallorys), Err(Error::InvalidSignature));
    // So a message under the planted key is not Alice's: nobody's.
    let forged = signed_by_chain(b"group-1", &chain, policy.suites[0]);
    assert_eq!(bv.decrypt_message(&forged), Err(Error::UnknownSender));
    // Made by hand by Alice herself, the same layout is accepted: the test
    // above fails for the signer alone.
    let genuine = hand_made_distribution(b"group-1", &chain, &alice, alice.identity());
    assert_eq!(bv.process_distribution(alice.identity(), &genuine), Ok(()));
}

/// A group message (garbage ciphertext) correctly signed by `chain`: what
/// anyone holding a planted sender key can send.
fn signed_by_chain(group_id: &[u8], chain: &SigningKey, suite: Suite) -> GroupMessage {
    let mut forged = GroupMessage {
        version: 1,
        suite,
        group_id: group_id.to_vec(),
        sender_key: chain.verifying_key().to_bytes(),
        iteration: 0,
        salt: [1; 16],
        ciphertext: vec![0; 40],
        signature: [0; 64],
    };
    let mut signed = context_prefix(b"sealpost/v1/group-message");
    signed.extend_from_slice(&forged.signed_bytes().unwrap());
    forged.signature = chain.sign(&signed).to_bytes();
    forged
}

/// A room payload (12.5) holding a distribution.
fn sender_key_payload(group_id: &[u8], skd: &SenderKeyDistribution) -> Vec<u8> {
    let mut p = vec![2, group_id.len() as u8];
    p.extend_from_slice(group_id);
    p.extend_from_slice(&skd.to_bytes().unwrap());
    p
}

#[test]
fn a_broadcast_forged_from_a_member_by_another_party_is_refused() {
    // Mallory, a stranger, starts a pairwise session with Bob and tries to
    // have her broadcasts shown as Alice's.
    let (mut rng, mut accounts, mut rooms) = room_of_three(72);
    let policy = SessionPolicy::default();
    let alice = *accounts[0].identity();
    let mut mallory = Account::new(&mut rng, T0);
    let bundle = PrekeyBundle::from_bytes(&accounts[1].bundle(&policy).unwrap().to_bytes()).unwrap();
    let chain = SigningKey::from_bytes(&[9; 32]);
    let mallory_keys = &mallory;

    // 1. Her first message carries a sender key labelled as Alice's.
    let labelled = hand_made_distribution(b"lobby", &chain, mallory_keys, &alice);
    let mut to_bob = Session::initiate(&mut rng, &mut mallory, &bundle, &policy, T0).unwrap();
    let first = to_bob.encrypt(&mut rng, T0, &sender_key_payload(b"lobby", &labelled)).unwrap();
    // Delivered "from Alice": no session of Bob's room is this one.
    assert_eq!(rooms[1].receive(T0, alice.signing_key(), &first), Err(Error::UnknownSender));
    // Accepted as what it is, a session with Mallory: the key does not
    // vouch for her, and the room is unchanged.
    let Envelope::Prekey(m) = Envelope::from_bytes(&first).unwrap() else { panic!() };
    assert_eq!(rooms[1].accept(&mut rng, T0, &mut accounts[1], &policy, &m).err(), Some(Error::InvalidSignature));
    assert_eq!(rooms[1].members().count(), 2);
    assert!(!rooms[1].group().is_member(mallory.identity()));

    // 2. A broadcast under that key, delivered "from Alice": refused.
    let forged = signed_by_chain(b"lobby", &chain, policy.suites[0]);
    assert_eq!(rooms[1].receive(T0, alice.signing_key(), &forged.to_bytes().unwrap()), Err(Error::UnknownSender));

    // 3. If Bob admits her with her own key, her broadcasts are hers, whatever
    // the transport claims.
    let mut mallory_room = Room::new(&mut rng, b"lobby", &mallory, &policy).unwrap();
    let bundle = PrekeyBundle::from_bytes(&accounts[1].bundle(&policy).unwrap().to_bytes()).unwrap();
    let session = Session::initiate(&mut rng, &mut mallory, &bundle, &policy, T0).unwrap();
    let out = mallory_room.add_member(&mut rng, T0, session).unwrap();
    let Envelope::Prekey(m) = Envelope::from_bytes(&out.envelope).unwrap() else { panic!() };
    let (update, back) = rooms[1].accept(&mut rng, T0, &mut accounts[1], &policy, &m).unwrap();
    assert_eq!(update, Incoming::KeyUpdate { from: *mallory.identity() });
    let hers = mallory_room.broadcast(&mut rng, b"alice says: wire the money").unwrap();
    assert_eq!(
        rooms[1].receive(T0, alice.signing_key(), &hers.envelope),
        Ok(Incoming::Broadcast { from: *mallory.identity(), text: b"alice says: wire the money".to_vec() })
    );
    // Her session's next message is still a prekey message (Bob has not
    // answered yet): it goes to her session whatever the hint says.
    let direct = mallory_room.direct(&mut rng, T0, accounts[1].identity(), b"it's alice").unwrap();
    assert_eq!(
        rooms[1].receive(T0, alice.signing_key(), &direct.envelope),
        Ok(Incoming::Direct { from: *mallory.identity(), text: b"it's alice".to_vec() })
    );
    // Once Bob has answered, she sends ratchet messages. One delivered
    // "from Alice" is tried against Alice's session and does not open.
    assert_eq!(
        mallory_room.receive(T0, accounts[1].identity().signing_key(), &back.envelope),
        Ok(Incoming::KeyUpdate { from: *accounts[1].identity() })
    );
    let direct = mallory_room.direct(&mut rng, T0, accounts[1].identity(), b"really alice").unwrap();
    assert_eq!(Envelope::from_bytes(&direct.envelope).unwrap().kind(), sealpost::EnvelopeType::Ratchet);
    assert_eq!(rooms[1].receive(T0, alice.signing_key(), &direct.envelope), Err(Error::AuthenticationFailed));
    // Through her own session it is hers.
    assert_eq!(
        rooms[1].receive(T0, mallory.identity().signing_key(), &direct.envelope),
        Ok(Incoming::Direct { from: *mallory.identity(), text: b"really alice".to_vec() })
    );
}

#[test]
fn group_message_checks_run_in_the_documented_order() {
    // PROTOCOL.md 12.3: group id, version, suite, sender key, signature,
    // position, ciphertext. Each case breaks several checks; the first wins.
    let mut g = group(2, 73, &SessionPolicy::default());
    let first = g.views[0].encrypt(&mut g.rng, b"one").unwrap();
    let Envelope::Group(genuine) = Envelope::from_bytes(&first).unwrap() else { panic!() };
    assert_eq!(g.views[1].decrypt_message(&genuine), Ok((*g.ids[0].identity(), b"one".to_vec())));
    let other_suite = if genuine.suite == Suite::Aes256Gcm { Suite::ChaCha20Poly1305 } else { Suite::Aes256Gcm };
    let unknown_key = SigningKey::from_bytes(&[3; 32]).verifying_key().to_bytes();
    let cases = [
        (
            GroupMessage {
                group_id: b"group-2".to_vec(),
                version: 2,
                suite: other_suite,
                sender_key: unknown_key,
                ..genuine.clone()
            },
            Error::Malformed("group id"),
        ),
        (GroupMessage { version: 2, suite: other_suite, sender_key: unknown_key, ..genuine.clone() }, Error::Downgrade),
        (GroupMessage { version: 2, sender_key: unknown_key, ..genuine.clone() }, Error::Downgrade),
        (GroupMessage { suite: other_suite, sender_key: unknown_key, ..genuine.clone() }, Error::Downgrade),
        // An unknown sender key with a signature that cannot verify.
        (GroupMessage { sender_key: unknown_key, signature: [0; 64], ..genuine.clone() }, Error::UnknownSender),
        // A bad signature on a replayed position.
        (GroupMessage { signature: [0; 64], ..genuine.clone() }, Error::InvalidSignature),
        // A bad signature (the position is signed) far beyond the skip limit.
        (GroupMessage { iteration: 1_000_000, ..genuine.clone() }, Error::InvalidSignature),
        // Correctly signed and a replay: the position check.
        (genuine.clone(), Error::Replay),
    ];
    for (i, (msg, want)) in cases.iter().enumerate() {
        assert_eq!(g.views[1].decrypt_message(msg), Err(*want), "case {i}");
    }
}

#[test]
fn distribution_checks_run_in_the_documented_order() {
    // PROTOCOL.md 12.4: group id, version, suite, membership, sender key,
    // owner signature, chain signature, sender key of another member.
    let policy = SessionPolicy::default();
    let mut g = group(3, 74, &policy);
    let eve = Account::new(&mut g.rng, 0);
    let (alice, bob) = (*g.ids[0].identity(), *g.ids[1].identity());
    let genuine = g.views[0].rotate(&mut g.rng, &g.ids[0]).unwrap();
    let other_suite = if genuine.suite == Suite::Aes256Gcm { Suite::ChaCha20Poly1305 } else { Suite::Aes256Gcm };
    let undecodable = (0u8..=255)
        .map(|b| {
            let mut k = [0xee; 32];
            k[0] = b;
            k
        })
        .find(|k| VerifyingKey::from_bytes(k).is_err())
        .unwrap();
    let bad_sig = [0u8; 64];
    // Bob's current sender key, which Carol knows as Bob's.
    let bobs_key = g.views[1].distribution().sender_key;
    let cases = [
        (
            eve.identity(),
            SenderKeyDistribution {
                group_id: b"group-2".to_vec(),
                version: 2,
                suite: other_suite,
                owner_signature: bad_sig,
                ..genuine.clone()
            },
            Error::Malformed("group id"),
        ),
        (
            eve.identity(),
            SenderKeyDistribution { version: 2, owner_signature: bad_sig, ..genuine.clone() },
            Error::Downgrade,
        ),
        (
            eve.identity(),
            SenderKeyDistribution { suite: other_suite, owner_signature: bad_sig, ..genuine.clone() },
            Error::Downgrade,
        ),
        (
            eve.identity(),
            SenderKeyDistribution { sender_key: undecodable, owner_signature: bad_sig, ..genuine.clone() },
            Error::UnknownSender,
        ),
        (
            &alice,
            SenderKeyDistribution { sender_key: undecodable, owner_signature: bad_sig, ..genuine.clone() },
            Error::InvalidKey,
        ),
        (&alice, SenderKeyDistribution { sender_key: bobs_key, ..genuine.clone() }, Error::InvalidSignature),
        (&alice, SenderKeyDistribution { chain_signature: bad_sig, ..genuine.clone() }, Error::InvalidSignature),
        (&alice, SenderKeyDistribution { iteration: 5, ..genuine.clone() }, Error::InvalidSignature),
        (&bob, genuine.clone(), Error::InvalidSignature),
    ];
    for (i, (from, skd, want)) in cases.iter().enumerate() {
        assert_eq!(g.views[2].process_distribution(from, skd), Err(*want), "case {i}");
    }
    assert_eq!(g.views[2].process_distribution(&alice, &genuine), Ok(()));
    // A sender key already registered for another member (Bob) is refused
    // even when everything else about the claim is right.
    let shared = SigningKey::from_bytes(&[8; 32]);
    let for_bob = hand_made_distribution(b"group-1", &shared, &g.ids[1], &bob);
    assert_eq!(g.views[2].process_distribution(&bob, &for_bob), Ok(()));
    let for_alice = hand_made_distribution(b"group-1", &shared, &g.ids[0], &alice);
    assert_eq!(g.views[2].process_distribution(&alice, &for_alice), Err(Error::InvalidKey));
}
