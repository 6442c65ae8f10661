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
use ed25519_dalek::{Signer, SigningKey};
use rand_chacha::ChaCha20Rng;
use sealpost::envelope::GroupMessage;
use sealpost::room::{Incoming, Room};
use sealpost::{
    Account, Envelope, Error, GroupSession, IdentityKeyPair, IdentityPublic, PickleKey, PrekeyBundle, Session,
    SessionPolicy, SymmetricKey,
};

struct Group {
    rng: ChaCha20Rng,
    ids: Vec<IdentityKeyPair>,
    views: Vec<GroupSession>,
}

/// `n` members who all know each other's chains.
fn group(n: usize, seed: u8, policy: &SessionPolicy) -> Group {
    let mut rng = rng(seed);
    let ids: Vec<_> = (0..n).map(|_| IdentityKeyPair::generate(&mut rng)).collect();
    let mut views: Vec<_> =
        ids.iter().map(|id| GroupSession::new(&mut rng, b"group-1", id.public(), policy).unwrap()).collect();
    for i in 0..n {
        for j in 0..n {
            if i != j {
                views[i].add_member(*ids[j].public()).unwrap();
            }
        }
    }
    for i in 0..n {
        let skd = views[i].distribution();
        for j in 0..n {
            if i != j {
                views[j].process_distribution(ids[i].public(), &skd).unwrap();
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
            assert_eq!(from, *g.ids[sender].public());
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
    let dave = IdentityKeyPair::generate(&mut g.rng);
    let mut dv = GroupSession::new(&mut g.rng, b"group-1", dave.public(), &policy).unwrap();
    dv.add_member(*g.ids[0].public()).unwrap();
    g.views[0].add_member(*dave.public()).unwrap();
    dv.process_distribution(g.ids[0].public(), &g.views[0].distribution()).unwrap();
    let after = g.views[0].encrypt(&mut g.rng, b"after dave").unwrap();
    assert_eq!(dv.decrypt(&before).err(), Some(Error::OutsideWindow));
    assert_eq!(dv.decrypt(&after).unwrap().1, b"after dave");
    assert_eq!(g.views[1].decrypt(&before).unwrap().1, b"before dave");
}

#[test]
fn a_removed_member_reads_nothing_sent_afterwards() {
    let mut g = group(3, 62, &SessionPolicy::default());
    let carol = *g.ids[2].public();
    let m = g.views[0].encrypt(&mut g.rng, b"all three").unwrap();
    assert!(g.views[2].decrypt(&m).is_ok());
    // Alice and Bob remove Carol: each rotates and sends the new chain to the other only.
    let skd_a = g.views[0].remove_member(&mut g.rng, &carol);
    let skd_b = g.views[1].remove_member(&mut g.rng, &carol);
    g.views[1].process_distribution(g.ids[0].public(), &skd_a).unwrap();
    g.views[0].process_distribution(g.ids[1].public(), &skd_b).unwrap();
    let a = g.views[0].encrypt(&mut g.rng, b"without carol").unwrap();
    let b = g.views[1].encrypt(&mut g.rng, b"still without carol").unwrap();
    assert_eq!(g.views[1].decrypt(&a).unwrap().1, b"without carol");
    assert_eq!(g.views[0].decrypt(&b).unwrap().1, b"still without carol");
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
    let mut signed = b"sealpost/v1/group-message".to_vec();
    signed.extend_from_slice(&forged.signed_bytes().unwrap());
    forged.signature = bob_signing.sign(&signed).to_bytes();
    assert_eq!(g.views[2].decrypt_message(&forged).err(), Some(Error::InvalidSignature));
    // Any bit of the genuine message changed: refused, and nothing consumed.
    for i in 0..genuine.len() {
        let mut t = genuine.clone();
        t[i] ^= 0x20;
        assert!(g.views[2].decrypt(&t).is_err(), "byte {i}");
    }
    assert_eq!(g.views[2].decrypt(&genuine).unwrap().1, b"pay bob 5");
}

#[test]
fn a_member_cannot_claim_another_members_sender_key() {
    // Mallory (member 1) knows Alice's chain (member 0) and tries to
    // register it with Carol (member 2) as her own before Alice's own
    // distribution arrives, to have Alice's messages shown as Mallory's.
    let policy = SessionPolicy::default();
    let mut rng = rng(68);
    let ids: Vec<_> = (0..3).map(|_| IdentityKeyPair::generate(&mut rng)).collect();
    let alice = GroupSession::new(&mut rng, b"group-1", ids[0].public(), &policy).unwrap();
    let mut carol = GroupSession::new(&mut rng, b"group-1", ids[2].public(), &policy).unwrap();
    carol.add_member(*ids[0].public()).unwrap();
    carol.add_member(*ids[1].public()).unwrap();
    let stolen = alice.distribution();
    assert_eq!(carol.process_distribution(ids[1].public(), &stolen).err(), Some(Error::InvalidSignature));
    // Alice's genuine distribution is still accepted, attributed to her.
    carol.process_distribution(ids[0].public(), &stolen).unwrap();
    let mut alice = alice;
    let m = alice.encrypt(&mut rng, b"from alice").unwrap();
    assert_eq!(carol.decrypt(&m).unwrap().0, *ids[0].public());
}

#[test]
fn a_non_member_learns_nothing() {
    let mut g = group(2, 64, &SessionPolicy::default());
    let eve = IdentityKeyPair::generate(&mut g.rng);
    let mut ev = GroupSession::new(&mut g.rng, b"group-1", eve.public(), &SessionPolicy::default()).unwrap();
    let m = g.views[0].encrypt(&mut g.rng, b"members only").unwrap();
    assert_eq!(ev.decrypt(&m).err(), Some(Error::UnknownSender));
    // Even claiming to be a member, she cannot inject a chain for Alice.
    ev.add_member(*g.ids[0].public()).unwrap();
    let fake = ev.distribution();
    assert_eq!(g.views[1].process_distribution(eve.public(), &fake).err(), Some(Error::UnknownSender));
}

#[test]
fn reordering_replay_and_gaps_follow_the_pairwise_rules() {
    let policy = SessionPolicy { max_skip_per_chain: 10, ..SessionPolicy::default() };
    let mut g = group(2, 65, &policy);
    let msgs: Vec<_> = (0..12u8).map(|i| g.views[0].encrypt(&mut g.rng, &[i]).unwrap()).collect();
    assert_eq!(g.views[1].decrypt(&msgs[11]).err(), Some(Error::TooManySkipped));
    for i in (0..11).rev() {
        assert_eq!(g.views[1].decrypt(&msgs[i]).unwrap().1, [i as u8]);
    }
    assert_eq!(g.views[1].decrypt(&msgs[11]).unwrap().1, [11]);
    for m in &msgs {
        assert_eq!(g.views[1].decrypt(m).err(), Some(Error::Replay));
    }
}

#[test]
fn messages_from_before_a_rotation_still_open() {
    let mut g = group(2, 66, &SessionPolicy::default());
    let old = g.views[0].encrypt(&mut g.rng, b"old chain").unwrap();
    let skd = g.views[0].rotate(&mut g.rng);
    g.views[1].process_distribution(g.ids[0].public(), &skd).unwrap();
    let new = g.views[0].encrypt(&mut g.rng, b"new chain").unwrap();
    assert_eq!(g.views[1].decrypt(&new).unwrap().1, b"new chain");
    assert_eq!(g.views[1].decrypt(&old).unwrap().1, b"old chain");
}

#[test]
fn group_sessions_survive_pickling() {
    let mut g = group(2, 67, &SessionPolicy::default());
    let key = PickleKey::Key(SymmetricKey::from_bytes([3; 32]));
    let m1 = g.views[0].encrypt(&mut g.rng, b"one").unwrap();
    let m2 = g.views[0].encrypt(&mut g.rng, b"two").unwrap();
    assert_eq!(g.views[1].decrypt(&m2).unwrap().1, b"two");
    let pa = g.views[0].pickle(&mut g.rng, &key).unwrap();
    let mut a = GroupSession::from_pickle(&mut g.rng, &pa, &key).unwrap();
    let pb = g.views[1].pickle(&mut g.rng, &key).unwrap();
    let mut b = GroupSession::from_pickle(&mut g.rng, &pb, &key).unwrap();
    // What b had received survives: late keys and replay state.
    assert_eq!(b.decrypt(&m1).unwrap().1, b"one");
    assert_eq!(b.decrypt(&m2).err(), Some(Error::Replay));
    // The restored a started a new chain (its old positions may have been
    // used after the pickle was taken) and must hand it out first.
    assert!(a.must_redistribute());
    assert_eq!(a.encrypt(&mut g.rng, b"too early").err(), Some(Error::RedistributionRequired));
    b.process_distribution(g.ids[0].public(), &a.distribution()).unwrap();
    a.mark_distributed();
    let m3 = a.encrypt(&mut g.rng, b"three").unwrap();
    assert_eq!(b.decrypt(&m3).unwrap().1, b"three");
    // The original (pre-restore) chain still opens at b too.
    let m4 = g.views[0].encrypt(&mut g.rng, b"four, from the lost state").unwrap();
    assert_eq!(b.decrypt(&m4).unwrap().1, b"four, from the lost state");
    for i in 0..pa.len() {
        let mut t = pa.clone();
        t[i] ^= 1;
        assert!(GroupSession::from_pickle(&mut g.rng, &t, &key).is_err());
    }
}

/// Three people in a room, each pair with a pairwise session.
fn room_of_three(seed: u8) -> (ChaCha20Rng, Vec<Account>, Vec<Room>) {
    let policy = SessionPolicy::default();
    let mut rng = rng(seed);
    let mut accounts: Vec<Account> = (0..3).map(|_| Account::new(&mut rng, T0)).collect();
    let mut rooms: Vec<Room> =
        accounts.iter().map(|a| Room::new(&mut rng, b"lobby", a.identity(), &policy).unwrap()).collect();
    for i in 0..3 {
        for j in (i + 1)..3 {
            // i starts a session with j from j's bundle; j accepts it.
            let bundle = PrekeyBundle::from_bytes(&accounts[j].bundle(&policy).unwrap().to_bytes()).unwrap();
            let s_ij = Session::initiate(&mut rng, &accounts[i], &bundle, &policy, T0).unwrap();
            let out = rooms[i].add_member(&mut rng, T0, s_ij).unwrap();
            let Envelope::Prekey(first) = Envelope::from_bytes(&out.envelope).unwrap() else { panic!() };
            let (s_ji, payload) = accounts[j].accept(&policy, T0, &first).unwrap();
            let back = rooms[j].add_member(&mut rng, T0, s_ji).unwrap();
            let from_i = *accounts[i].identity();
            let from_j = *accounts[j].identity();
            assert_eq!(rooms[j].handle_payload(&from_i, &payload).unwrap(), Incoming::KeyUpdate { from: from_i });
            assert_eq!(rooms[i].receive(T0, &from_j, &back.envelope).unwrap(), Incoming::KeyUpdate { from: from_j });
        }
    }
    (rng, accounts, rooms)
}

#[test]
fn room_offers_broadcast_and_direct_messages() {
    let (mut rng, accounts, mut rooms) = room_of_three(70);
    let ids: Vec<IdentityPublic> = accounts.iter().map(|a| *a.identity()).collect();
    // Broadcast: one envelope, everyone reads it.
    let b = rooms[0].broadcast(&mut rng, b"hi all").unwrap();
    assert_eq!(b.recipient, None);
    for r in 1..3 {
        assert_eq!(
            rooms[r].receive(T0, &ids[0], &b.envelope).unwrap(),
            Incoming::Broadcast { from: ids[0], text: b"hi all".to_vec() }
        );
    }
    // Direct: only Bob can read it; Carol cannot, even given the bytes.
    let d = rooms[0].direct(&mut rng, T0, &ids[1], b"@bob psst").unwrap();
    assert_eq!(d.recipient, Some(ids[1]));
    assert!(rooms[2].receive(T0, &ids[0], &d.envelope).is_err());
    assert_eq!(
        rooms[1].receive(T0, &ids[0], &d.envelope).unwrap(),
        Incoming::Direct { from: ids[0], text: b"@bob psst".to_vec() }
    );
    // Removal through the room: Alice and Bob drop Carol and re-key.
    let outs_a = rooms[0].remove_member(&mut rng, T0, &ids[2]).unwrap();
    let outs_b = rooms[1].remove_member(&mut rng, T0, &ids[2]).unwrap();
    assert_eq!(outs_a.len(), 1);
    assert_eq!(rooms[1].receive(T0, &ids[0], &outs_a[0].envelope).unwrap(), Incoming::KeyUpdate { from: ids[0] });
    assert_eq!(rooms[0].receive(T0, &ids[1], &outs_b[0].envelope).unwrap(), Incoming::KeyUpdate { from: ids[1] });
    let after = rooms[0].broadcast(&mut rng, b"just us").unwrap();
    assert!(matches!(rooms[1].receive(T0, &ids[0], &after.envelope).unwrap(), Incoming::Broadcast { .. }));
    assert_eq!(rooms[2].receive(T0, &ids[0], &after.envelope).err(), Some(Error::UnknownSender));
}
