//! Replays `test-vectors/conversation.json` byte for byte: every step draws
//! exactly the recorded random bytes, every envelope is reproduced, every
//! delivery opens to the recorded plaintext.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::VecDeque;

use sealpost::{Account, Envelope, PrekeyBundle, Session, SessionPolicy, Suite};
use serde_json::Value;

/// Hands out the recorded draws in order and checks each request's length.
struct ReplayRng {
    draws: VecDeque<Vec<u8>>,
}

impl ReplayRng {
    fn new(step: &Value) -> Self {
        let draws = step["draws"].as_array().unwrap().iter().map(|d| hex::decode(d.as_str().unwrap()).unwrap());
        Self { draws: draws.collect() }
    }

    fn finish(self) {
        assert!(self.draws.is_empty(), "step drew fewer random bytes than recorded");
    }
}

impl rand_core::TryRng for ReplayRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        let next = self.draws.pop_front().expect("step drew more random bytes than recorded");
        assert_eq!(next.len(), dst.len(), "draw of a different length than recorded");
        dst.copy_from_slice(&next);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for ReplayRng {}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn conversation_vector_replays_byte_for_byte() {
    let path = format!("{}/../test-vectors/conversation.json", env!("CARGO_MANIFEST_DIR"));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let suites: Vec<Suite> = doc["policy_suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Suite::from_id(s.as_u64().unwrap() as u8).unwrap())
        .collect();
    let policy = SessionPolicy { suites, ..SessionPolicy::default() };

    let mut bob: Option<Account> = None;
    let mut alice: Option<Account> = None;
    let mut bundle: Option<PrekeyBundle> = None;
    let mut to_bob: Option<Session> = None;
    let mut to_alice: Option<Session> = None;
    let mut envelopes: Vec<Vec<u8>> = Vec::new();
    let mut deliveries = 0;

    for step in doc["steps"].as_array().unwrap() {
        let time = step["time"].as_u64().unwrap();
        match step["step"].as_str().unwrap() {
            "bob_account" => {
                let mut rng = ReplayRng::new(step);
                let mut b = Account::new(&mut rng, time);
                let n = step["one_time_prekeys"].as_u64().unwrap() as usize;
                let otk = b.generate_one_time_prekeys(&mut rng, n)[0];
                rng.finish();
                let wire = b.bundle(&policy).unwrap().with_one_time_prekey(otk).unwrap().to_bytes();
                assert_eq!(wire, hx(&step["bundle"]));
                bundle = Some(PrekeyBundle::from_bytes(&wire).unwrap());
                bob = Some(b);
            }
            "alice_account" => {
                let mut rng = ReplayRng::new(step);
                let a = Account::new(&mut rng, time);
                rng.finish();
                assert_eq!(a.identity().to_bytes().to_vec(), hx(&step["identity"]));
                alice = Some(a);
            }
            "alice_initiates" => {
                let mut rng = ReplayRng::new(step);
                let s = Session::initiate(&mut rng, alice.as_mut().unwrap(), bundle.as_ref().unwrap(), &policy, time)
                    .unwrap();
                rng.finish();
                to_bob = Some(s);
            }
            "send" => {
                let mut rng = ReplayRng::new(step);
                let session = if step["from"] == "alice" { to_bob.as_mut() } else { to_alice.as_mut() }.unwrap();
                let envelope = session.encrypt(&mut rng, time, &hx(&step["plaintext"])).unwrap();
                rng.finish();
                assert_eq!(envelope, hx(&step["envelope"]), "envelope {}", step["index"]);
                assert_eq!(envelopes.len() as u64, step["index"].as_u64().unwrap());
                envelopes.push(envelope);
            }
            "accept" => {
                let index = step["index"].as_u64().unwrap() as usize;
                let Envelope::Prekey(m) = Envelope::from_bytes(&envelopes[index]).unwrap() else { panic!() };
                let (s, pt) = bob.as_mut().unwrap().accept(&policy, time, &m).unwrap();
                assert_eq!(pt, hx(&step["plaintext"]));
                to_alice = Some(s);
                deliveries += 1;
            }
            "deliver" => {
                let index = step["index"].as_u64().unwrap() as usize;
                let session = if step["to"] == "alice" { to_bob.as_mut() } else { to_alice.as_mut() }.unwrap();
                assert_eq!(session.decrypt(time, &envelopes[index]).unwrap(), hx(&step["plaintext"]));
                deliveries += 1;
            }
            other => panic!("unknown step {other}"),
        }
    }
    assert!(envelopes.len() >= 10 && deliveries == envelopes.len());
    let (a, b) = (to_bob.unwrap(), to_alice.unwrap());
    assert_eq!(a.safety_number().digits(), doc["safety_number"].as_str().unwrap());
    assert_eq!(b.safety_number(), a.safety_number());
    assert_eq!(a.id().to_vec(), hx(&doc["session_id"]));
}
