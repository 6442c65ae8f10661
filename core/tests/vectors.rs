//! Checks the code against `test-vectors/` byte for byte, recomputing every
//! output from the recorded inputs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use sealpost::hazmat::IdentityKeyPair;
use sealpost::hazmat::SuiteKeys;
use sealpost::hazmat::{Pbkdf2Params, hkdf_sha256};
use sealpost::{Envelope, GroupMessage, PrekeyMessage, RatchetHeader, RatchetMessage, SenderKeyDistribution};
use sealpost::{IdentityPublic, PrekeyBundle, SafetyNumber, Suite, SymmetricKey};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/../test-vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn a32(v: &Value) -> [u8; 32] {
    hx(v).try_into().unwrap()
}

fn a16(v: &Value) -> [u8; 16] {
    hx(v).try_into().unwrap()
}

fn u32v(v: &Value) -> u32 {
    u32::try_from(v.as_u64().unwrap()).unwrap()
}

fn bytes_list(v: &Value) -> Vec<u8> {
    v.as_array().unwrap().iter().map(|x| u8::try_from(x.as_u64().unwrap()).unwrap()).collect()
}

#[test]
fn suite_vectors() {
    let doc = load("suites.json");
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 5 * 8);
    for v in vectors {
        let suite = Suite::from_id(u8::try_from(v["suite"].as_u64().unwrap()).unwrap()).unwrap();
        let secret = SymmetricKey::from_bytes(a32(&v["secret"]));
        let salt = hx(&v["salt"]);
        let keys = SuiteKeys::derive(suite, &secret, &salt).unwrap();
        assert_eq!(keys.enc_key().to_vec(), hx(&v["enc_key"]));
        assert_eq!(keys.nonce().to_vec(), hx(&v["nonce"]));
        if suite.is_cbc() {
            assert_eq!(keys.mac_key().to_vec(), hx(&v["mac_key"]));
        }
        let (aad, pt, ct) = (hx(&v["aad"]), hx(&v["plaintext"]), hx(&v["ciphertext"]));
        assert_eq!(
            sealpost::hazmat::suite_seal(suite, &secret, &salt, &aad, &pt).unwrap(),
            ct,
            "{suite} len {}",
            pt.len()
        );
        assert_eq!(sealpost::hazmat::suite_open(suite, &secret, &salt, &aad, &ct).unwrap(), pt);
        assert_eq!(ct.len(), suite.ciphertext_len(pt.len()));
    }
}

#[test]
fn kdf_vectors() {
    let doc = load("kdf.json");
    let entries = doc["hkdf"].as_array().unwrap();
    let names: Vec<&str> = entries.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["suite-keys", "session-start", "ratchet-step", "pickle"]);
    for v in entries {
        let expected = hx(&v["okm"]);
        if v["name"] == "suite-keys" {
            // Expand only, through the suites' own derivation: info is
            // label || suite id || salt, okm is enc_key || nonce.
            let info = hx(&v["info"]);
            let ctx = info.strip_prefix(sealpost::hazmat::label::SUITE_KEYS).unwrap();
            let suite = Suite::from_id(ctx[0]).unwrap();
            let keys = SuiteKeys::derive(suite, &SymmetricKey::from_bytes(a32(&v["prk"])), &ctx[1..]).unwrap();
            assert_eq!([keys.enc_key(), keys.nonce()].concat(), expected, "suite-keys");
            continue;
        }
        let mut okm = vec![0u8; expected.len()];
        hkdf_sha256(&hx(&v["salt"]), &hx(&v["ikm"]), &[&hx(&v["info"])], &mut okm).unwrap();
        assert_eq!(okm, expected, "{}", v["name"]);
    }
    for v in doc["pbkdf2"].as_array().unwrap() {
        let params = Pbkdf2Params::new_allowing_weak(a16(&v["salt"]), u32v(&v["iterations"])).unwrap();
        let key = params.derive(v["passphrase"].as_str().unwrap().as_bytes());
        assert_eq!(key.as_bytes().to_vec(), hx(&v["key"]));
    }
}

#[test]
fn identity_vectors() {
    let doc = load("identities.json");
    let mut publics = Vec::new();
    for who in ["alice", "bob"] {
        let v = &doc[who];
        let id = IdentityKeyPair::from_secret_bytes(&a32(&v["signing_seed"]), &a32(&v["dh_secret"]));
        assert_eq!(id.public().to_bytes().to_vec(), hx(&v["public"]));
        assert_eq!(IdentityPublic::from_bytes(&hx(&v["public"])).unwrap(), *id.public());
        publics.push(*id.public());
    }
    let sn = SafetyNumber::new(&publics[0], &publics[1]);
    assert_eq!(sn.digits(), doc["safety_number"].as_str().unwrap());
}

#[test]
fn bundle_vectors() {
    let doc = load("bundles.json");
    let id = IdentityKeyPair::from_secret_bytes(&a32(&doc["identity_signing_seed"]), &a32(&doc["identity_dh_secret"]));
    assert_eq!(id.public().to_bytes().to_vec(), hx(&doc["identity_public"]));
    for (field, has_otk) in [("bundle_without_one_time_prekey", false), ("bundle_with_one_time_prekey", true)] {
        let wire = hx(&doc[field]);
        let bundle = PrekeyBundle::from_bytes(&wire).unwrap();
        assert_eq!(bundle.identity(), id.public());
        assert_eq!(bundle.versions(), &bytes_list(&doc["versions"])[..]);
        assert_eq!(bundle.suites(), &bytes_list(&doc["suites"])[..]);
        let spk = bundle.signed_prekey();
        assert_eq!(spk.id, u32v(&doc["signed_prekey"]["id"]));
        assert_eq!(spk.key.to_vec(), hx(&doc["signed_prekey"]["key"]));
        assert_eq!(spk.created_at, doc["signed_prekey"]["created_at"].as_u64().unwrap());
        assert_eq!(bundle.one_time_prekey().is_some(), has_otk);
        if let Some(otk) = bundle.one_time_prekey() {
            assert_eq!(otk.id, u32v(&doc["one_time_prekey"]["id"]));
            assert_eq!(otk.key.to_vec(), hx(&doc["one_time_prekey"]["key"]));
            assert_eq!(otk.signature.to_vec(), hx(&doc["one_time_prekey"]["signature"]));
        }
        assert_eq!(bundle.to_bytes(), wire);
        // Ed25519 is deterministic: the signature over the signed part is
        // reproduced from the identity secret.
        let body_len = wire.len() - 64 - 1 - if has_otk { 100 } else { 0 };
        assert_eq!(bundle.pq_prekey().map(hex::encode), doc["pq_prekey"].as_str().map(str::to_owned));
        let sig = id.sign(sealpost::SignatureContext::Bundle, &wire[..body_len]);
        assert_eq!(sig.to_vec(), wire[body_len..body_len + 64].to_vec());
    }
}

fn header(v: &Value) -> RatchetHeader {
    RatchetHeader {
        ratchet_key: a32(&v["ratchet_key"]),
        epoch: u32v(&v["epoch"]),
        peer_epoch: u32v(&v["peer_epoch"]),
        counter: u32v(&v["counter"]),
        prev_count: u32v(&v["prev_count"]),
        prev_ratchet_key: a32(&v["prev_ratchet_key"]),
        prev_peer_epoch: u32v(&v["prev_peer_epoch"]),
        salt: a16(&v["salt"]),
    }
}

fn suite_of(v: &Value) -> Suite {
    Suite::from_id(u8::try_from(v["suite"].as_u64().unwrap()).unwrap()).unwrap()
}

#[test]
fn envelope_vectors() {
    let doc = load("envelopes.json");

    let v = &doc["ratchet"];
    let m = RatchetMessage {
        version: 1,
        suite: suite_of(v),
        header: header(&v["header"]),
        ciphertext: hx(&v["ciphertext"]),
    };
    assert_eq!(m.header_bytes(), hx(&v["header_bytes"]));
    assert_eq!(m.to_bytes().unwrap(), hx(&v["encoding"]));
    assert_eq!(Envelope::from_bytes(&hx(&v["encoding"])).unwrap(), Envelope::Ratchet(m));

    for name in ["prekey", "prekey_without_one_time_prekey", "prekey_classical"] {
        let v = &doc[name];
        let m = PrekeyMessage {
            version: u8::try_from(v["version"].as_u64().unwrap()).unwrap(),
            suite: suite_of(v),
            identity: IdentityPublic::from_bytes(&hx(&v["identity"])).unwrap(),
            initiator_suites: bytes_list(&v["initiator_suites"]),
            signed_prekey_id: u32v(&v["signed_prekey_id"]),
            one_time_prekey_id: v["one_time_prekey_id"].as_u64().map(|x| u32::try_from(x).unwrap()),
            base_key: a32(&v["base_key"]),
            pq_ciphertext: v["pq_ciphertext"].as_str().map(|x| hex::decode(x).unwrap()),
            header: header(&v["header"]),
            ciphertext: hx(&v["ciphertext"]),
        };
        assert_eq!(m.header_bytes().unwrap(), hx(&v["header_bytes"]));
        assert_eq!(m.to_bytes().unwrap(), hx(&v["encoding"]));
        assert_eq!(Envelope::from_bytes(&hx(&v["encoding"])).unwrap(), Envelope::Prekey(m));
    }

    let v = &doc["group"];
    let m = GroupMessage {
        version: 1,
        suite: suite_of(v),
        group_id: hx(&v["group_id"]),
        sender_key: a32(&v["sender_key"]),
        iteration: u32v(&v["iteration"]),
        salt: a16(&v["salt"]),
        ciphertext: hx(&v["ciphertext"]),
        signature: hx(&v["signature"]).try_into().unwrap(),
    };
    assert_eq!(m.header_bytes().unwrap(), hx(&v["header_bytes"]));
    assert_eq!(m.signed_bytes().unwrap(), hx(&v["signed_bytes"]));
    assert_eq!(m.to_bytes().unwrap(), hx(&v["encoding"]));
    assert_eq!(Envelope::from_bytes(&hx(&v["encoding"])).unwrap(), Envelope::Group(m));

    let v = &doc["sender_key_distribution"];
    let m = SenderKeyDistribution {
        version: 1,
        suite: suite_of(v),
        group_id: hx(&v["group_id"]),
        sender_key: a32(&v["sender_key"]),
        iteration: u32v(&v["iteration"]),
        chain_key: SymmetricKey::from_bytes(a32(&v["chain_key"])),
        owner_signature: hx(&v["owner_signature"]).try_into().unwrap(),
        chain_signature: hx(&v["chain_signature"]).try_into().unwrap(),
    };
    assert_eq!(m.to_bytes().unwrap().to_vec(), hx(&v["encoding"]));
    assert_eq!(Envelope::from_bytes(&hx(&v["encoding"])).unwrap(), Envelope::SenderKeyDistribution(m));
}

#[test]
fn group_vector_opens_and_verifies() {
    use sealpost::GroupSession;
    let doc = load("group.json");
    let group_id = hx(&doc["group_id"]);
    let policy = sealpost::SessionPolicy {
        suites: vec![Suite::from_id(u8::try_from(doc["suite"].as_u64().unwrap()).unwrap()).unwrap()],
        ..sealpost::SessionPolicy::default()
    };
    let mut rng = sealpost::os_rng();
    // A fresh observer who knows the three members' chains (as a fourth member would).
    let observer = sealpost::Account::new(&mut rng, 0);
    let mut view = GroupSession::new(&mut rng, &group_id, &observer, &policy).unwrap();
    let mut names = std::collections::HashMap::new();
    let mut sent = 0;
    for step in doc["steps"].as_array().unwrap() {
        match step["step"].as_str().unwrap() {
            "member" => {
                let identity = IdentityPublic::from_bytes(&hx(&step["identity"])).unwrap();
                let Envelope::SenderKeyDistribution(skd) = Envelope::from_bytes(&hx(&step["distribution"])).unwrap()
                else {
                    panic!("not a distribution")
                };
                view.add_member(identity).unwrap();
                assert_eq!(view.process_distribution(&identity, &skd), Ok(()));
                names.insert(step["name"].as_str().unwrap().to_owned(), identity);
            }
            "send" => {
                let (from, pt) = view.decrypt(&hx(&step["envelope"])).unwrap();
                assert_eq!(from, names[step["from"].as_str().unwrap()]);
                assert_eq!(pt, hx(&step["plaintext"]));
                sent += 1;
            }
            other => panic!("unknown step {other}"),
        }
    }
    assert_eq!(sent, 4);
}

/// The session reset of 12B: identities rebuilt from their secrets, the
/// signing input of 12B.2 signed again (Ed25519 is deterministic), the
/// fields parsed, and the reset accepted by its recipient for its session.
#[test]
fn session_reset_vector() {
    use sealpost::hazmat::{SESSION_RESET_LEN, SessionReset};
    use sealpost::{HealEvent, Healer};
    let v = &load("envelopes.json")["session_reset"];
    let from = IdentityKeyPair::from_secret_bytes(&a32(&v["from_signing_seed"]), &a32(&v["from_dh_secret"]));
    let to = IdentityKeyPair::from_secret_bytes(&a32(&v["to_signing_seed"]), &a32(&v["to_dh_secret"]));
    assert_eq!(from.public().to_bytes().to_vec(), hx(&v["from"]));
    assert_eq!(to.public().to_bytes().to_vec(), hx(&v["to"]));
    let encoding = hx(&v["encoding"]);
    assert_eq!(encoding.len(), SESSION_RESET_LEN);
    let signed = hx(&v["signed_bytes"]);
    assert_eq!(from.sign(sealpost::SignatureContext::SessionReset, &signed).to_vec(), hx(&v["signature"]));
    assert_eq!([signed, hx(&v["signature"])].concat(), encoding);
    let reset = SessionReset::from_bytes(&encoding).unwrap();
    assert_eq!(reset.from, *from.public());
    assert_eq!(reset.to, *to.public());
    assert_eq!(reset.session_id, a32(&v["session_id"]));
    assert_eq!(reset.timestamp, v["timestamp"].as_u64().unwrap());
    assert_eq!(reset.nonce, a16(&v["nonce"]));
    let event =
        Healer::default().accept(&encoding, to.public(), from.public(), Some(reset.session_id), reset.timestamp);
    assert_eq!(event, Ok(HealEvent::Renewed { peer: *from.public(), crossed: false }));
}
