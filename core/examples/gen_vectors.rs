//! Regenerates the JSON files in `test-vectors/` deterministically (a fixed
//! seed, fixed times). Run `bash scripts/regen-vectors.sh`.
//!
//! Each file lists inputs and expected outputs as lowercase hex, enough for
//! another implementation to check itself byte for byte.

#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sealpost::Healer;
use sealpost::hazmat::IdentityKeyPair;
use sealpost::hazmat::SALT_LEN;
use sealpost::hazmat::SessionReset;
use sealpost::hazmat::SuiteKeys;
use sealpost::hazmat::{Pbkdf2Params, hkdf_sha256, label};
use sealpost::{Account, SafetyNumber, SessionPolicy, Suite, SymmetricKey};
use sealpost::{GroupMessage, PrekeyMessage, RatchetHeader, RatchetMessage, SenderKeyDistribution};
use serde_json::{Value, json};

fn h(b: &[u8]) -> String {
    hex::encode(b)
}

fn bytes(rng: &mut ChaCha20Rng, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rng.fill_bytes(&mut v);
    v
}

fn arr<const N: usize>(rng: &mut ChaCha20Rng) -> [u8; N] {
    let mut v = [0u8; N];
    rng.fill_bytes(&mut v);
    v
}

fn suites(rng: &mut ChaCha20Rng) -> Result<Value, sealpost::Error> {
    let mut out = Vec::new();
    for suite in Suite::ALL {
        for (len, aad_len) in [(0usize, 0usize), (0, 13), (1, 0), (15, 7), (16, 0), (17, 32), (64, 5), (1000, 40)] {
            let secret = arr::<32>(rng);
            let salt = arr::<SALT_LEN>(rng);
            let aad = bytes(rng, aad_len);
            let plaintext = bytes(rng, len);
            let keys = SuiteKeys::derive(suite, &SymmetricKey::from_bytes(secret), &salt)?;
            let ciphertext = keys.seal(&aad, &plaintext)?;
            out.push(json!({
                "suite": suite.id(),
                "suite_name": suite.name(),
                "secret": h(&secret),
                "salt": h(&salt),
                "aad": h(&aad),
                "plaintext": h(&plaintext),
                "enc_key": h(keys.enc_key()),
                "mac_key": if suite.is_cbc() { h(keys.mac_key()) } else { String::new() },
                "nonce": h(keys.nonce()),
                "ciphertext": h(&ciphertext),
            }));
        }
    }
    Ok(json!({
        "description": "Suite seal: HKDF-SHA-256-Expand(PRK = secret, info = \"sealpost/v1/suite-keys\" || suite id || salt) gives enc_key || [mac_key] || nonce; ciphertext includes the tag.",
        "vectors": out,
    }))
}

fn kdf(rng: &mut ChaCha20Rng) -> Result<Value, sealpost::Error> {
    let mut hkdf = Vec::new();
    // suite-keys is HKDF-Expand only (no extract step): pinned through the
    // suite's own derivation, with PRK = the message secret and
    // info = label || suite id (AES-256-GCM here) || the 16-byte salt.
    let secret = arr::<32>(rng);
    let msg_salt = arr::<SALT_LEN>(rng);
    let keys = SuiteKeys::derive(Suite::Aes256Gcm, &SymmetricKey::from_bytes(secret), &msg_salt)?;
    hkdf.push(json!({
        "name": "suite-keys",
        "prk": h(&secret),
        "info": h(&[label::SUITE_KEYS, &[Suite::Aes256Gcm.id()], &msg_salt[..]].concat()),
        "okm": h(&[keys.enc_key(), keys.nonce()].concat()),
    }));
    for (name, lbl, ctx_len, len) in [
        ("session-start", label::SESSION_START, 32usize, 64usize),
        ("ratchet-step", label::RATCHET_STEP, 72, 64),
        ("pickle", label::PICKLE, 0, 32),
    ] {
        let salt = bytes(rng, 32);
        let ikm = bytes(rng, 32);
        let ctx = match name {
            "pickle" => vec![2u8], // kind: session
            _ => bytes(rng, ctx_len),
        };
        let mut okm = vec![0u8; len];
        hkdf_sha256(&salt, &ikm, &[lbl, &ctx], &mut okm)?;
        hkdf.push(json!({
            "name": name,
            "salt": h(&salt),
            "ikm": h(&ikm),
            "info": h(&[lbl, &ctx[..]].concat()),
            "okm": h(&okm),
        }));
    }
    let mut pbkdf2 = Vec::new();
    for (pass, iterations) in
        [("correct horse battery staple", sealpost::hazmat::DEFAULT_PBKDF2_ITERATIONS), ("", 1000)]
    {
        let salt = arr::<16>(rng);
        let params = if iterations >= sealpost::hazmat::DEFAULT_PBKDF2_ITERATIONS {
            Pbkdf2Params::new(salt, iterations)?
        } else {
            Pbkdf2Params::new_allowing_weak(salt, iterations)?
        };
        let key = params.derive(pass.as_bytes());
        pbkdf2.push(json!({
            "passphrase": pass,
            "salt": h(&salt),
            "iterations": iterations,
            "key": h(key.as_bytes()),
        }));
    }
    Ok(json!({
        "description": "HKDF-SHA-256 with Sealpost labels (info = label || context): suite-keys is HKDF-Expand only (prk, info, okm = enc_key || nonce of suite 1), the others extract then expand (salt, ikm, info, okm); and PBKDF2-HMAC-SHA-256 passphrase keys (32 bytes).",
        "hkdf": hkdf,
        "pbkdf2": pbkdf2,
    }))
}

fn identities(rng: &mut ChaCha20Rng) -> Result<Value, sealpost::Error> {
    let a_seed = arr::<32>(rng);
    let a_dh = arr::<32>(rng);
    let b_seed = arr::<32>(rng);
    let b_dh = arr::<32>(rng);
    let a = IdentityKeyPair::from_secret_bytes(&a_seed, &a_dh);
    let b = IdentityKeyPair::from_secret_bytes(&b_seed, &b_dh);
    let sn = SafetyNumber::new(a.public(), b.public());
    Ok(json!({
        "description": "Identity encoding (signing key || X25519 key || binding signature) and the safety number of two identities.",
        "alice": { "signing_seed": h(&a_seed), "dh_secret": h(&a_dh), "public": h(&a.public().to_bytes()) },
        "bob": { "signing_seed": h(&b_seed), "dh_secret": h(&b_dh), "public": h(&b.public().to_bytes()) },
        "safety_number": sn.digits(),
    }))
}

fn bundles(rng: &mut ChaCha20Rng) -> Result<Value, sealpost::Error> {
    // The account draws its keys from the seeded generator; record the
    // identity secrets so another implementation can re-sign.
    let mut account = Account::new(rng, 1_700_000_000);
    let otks = account.generate_one_time_prekeys(rng, 1);
    let policy = SessionPolicy {
        suites: vec![Suite::Aes256Gcm, Suite::ChaCha20Poly1305, Suite::XChaCha20Poly1305],
        ..SessionPolicy::default()
    };
    let bundle = account.bundle(&policy)?;
    let with_otk = bundle.clone().with_one_time_prekey(otks[0])?;
    let (seed, dh) = sealpost::hazmat::identity_secret_bytes(&account);
    Ok(json!({
        "description": "Prekey bundles: signed part || signature || 0, or || 1 || one-time prekey (id, key, signature).",
        "identity_signing_seed": h(&seed),
        "identity_dh_secret": h(&dh),
        "identity_public": h(&account.identity().to_bytes()),
        "versions": bundle.versions(),
        "suites": bundle.suites(),
        "signed_prekey": {
            "id": bundle.signed_prekey().id,
            "key": h(&bundle.signed_prekey().key),
            "created_at": bundle.signed_prekey().created_at,
        },
        "one_time_prekey": { "id": otks[0].id, "key": h(&otks[0].key), "signature": h(&otks[0].signature) },
        "bundle_without_one_time_prekey": h(&bundle.to_bytes()),
        "bundle_with_one_time_prekey": h(&with_otk.to_bytes()),
        "pq_prekey": bundle.pq_prekey().map(h),
    }))
}

fn envelopes(rng: &mut ChaCha20Rng) -> Result<Value, sealpost::Error> {
    let header = RatchetHeader {
        ratchet_key: arr(rng),
        epoch: 3,
        peer_epoch: 2,
        counter: 41,
        prev_count: 17,
        prev_ratchet_key: arr(rng),
        prev_peer_epoch: 1,
        salt: arr(rng),
    };
    let ratchet = RatchetMessage { version: 1, suite: Suite::ChaCha20Poly1305, header, ciphertext: bytes(rng, 33) };
    let identity = IdentityKeyPair::from_secret_bytes(&arr(rng), &arr(rng));
    let prekey = PrekeyMessage {
        version: 2,
        suite: Suite::Aes256Gcm,
        identity: *identity.public(),
        initiator_suites: vec![1, 2, 3],
        signed_prekey_id: 7,
        one_time_prekey_id: Some(9),
        base_key: arr(rng),
        pq_ciphertext: Some(bytes(rng, sealpost::hazmat::PQ_CIPHERTEXT_LEN)),
        header: RatchetHeader {
            counter: 0,
            prev_count: 0,
            epoch: 0,
            peer_epoch: 0,
            prev_ratchet_key: [0; 32],
            prev_peer_epoch: 0,
            ..header
        },
        ciphertext: bytes(rng, 17),
    };
    let prekey_no_otk = PrekeyMessage { one_time_prekey_id: None, ..prekey.clone() };
    let prekey_classical = PrekeyMessage { version: 1, pq_ciphertext: None, ..prekey.clone() };
    let group = GroupMessage {
        version: 1,
        suite: Suite::XChaCha20Poly1305,
        group_id: b"team-rocket".to_vec(),
        sender_key: arr(rng),
        iteration: 5,
        salt: arr(rng),
        ciphertext: bytes(rng, 24),
        signature: arr(rng),
    };
    let skd = SenderKeyDistribution {
        version: 1,
        suite: Suite::XChaCha20Poly1305,
        group_id: b"team-rocket".to_vec(),
        sender_key: group.sender_key,
        iteration: 0,
        chain_key: SymmetricKey::from_bytes(arr(rng)),
        owner_signature: {
            let mut sig = [0u8; 64];
            rng.fill_bytes(&mut sig);
            sig
        },
        chain_signature: {
            let mut sig = [0u8; 64];
            rng.fill_bytes(&mut sig);
            sig
        },
    };
    let r = |m: &RatchetHeader| {
        json!({
            "ratchet_key": h(&m.ratchet_key), "epoch": m.epoch, "peer_epoch": m.peer_epoch,
            "counter": m.counter, "prev_count": m.prev_count, "prev_ratchet_key": h(&m.prev_ratchet_key),
            "prev_peer_epoch": m.prev_peer_epoch, "salt": h(&m.salt),
        })
    };
    let p = |m: &PrekeyMessage| -> Result<Value, sealpost::Error> {
        Ok(json!({
            "type": 1, "version": m.version, "suite": m.suite.id(),
            "identity": h(&m.identity.to_bytes()), "initiator_suites": m.initiator_suites,
            "signed_prekey_id": m.signed_prekey_id, "one_time_prekey_id": m.one_time_prekey_id,
            "base_key": h(&m.base_key), "header": r(&m.header), "ciphertext": h(&m.ciphertext),
            "pq_ciphertext": m.pq_ciphertext.as_deref().map(h),
            "header_bytes": h(&m.header_bytes()?), "encoding": h(&m.to_bytes()?),
        }))
    };
    // Drawn last, so that the other entries keep their bytes.
    let (from_seed, from_dh, to_seed, to_dh) = (arr::<32>(rng), arr::<32>(rng), arr::<32>(rng), arr::<32>(rng));
    let asker = IdentityKeyPair::from_secret_bytes(&from_seed, &from_dh);
    // The account around it draws its prekey from a separate generator, so
    // that this one's stream (and the vectors) stay as they were.
    let asker = sealpost::hazmat::account_from_identity(&mut ChaCha20Rng::from_seed([0; 32]), asker, 0);
    let recipient = IdentityKeyPair::from_secret_bytes(&to_seed, &to_dh);
    let session_id = arr::<32>(rng);
    let reset_bytes = Healer::default()
        .on_decrypt_failure(
            rng,
            &asker,
            recipient.public(),
            Some(session_id),
            &sealpost::Error::AuthenticationFailed,
            1_700_000_000,
        )
        .expect("a reset");
    let reset = SessionReset::from_bytes(&reset_bytes)?;
    let (reset_signed, reset_signature) = reset_bytes.split_at(reset_bytes.len() - 64);
    Ok(json!({
        "description": "Envelope encodings. header_bytes is the associated data prefix; encoding is the full wire form.",
        "ratchet": {
            "type": 2, "version": ratchet.version, "suite": ratchet.suite.id(), "header": r(&ratchet.header),
            "ciphertext": h(&ratchet.ciphertext), "header_bytes": h(&ratchet.header_bytes()),
            "encoding": h(&ratchet.to_bytes()?),
        },
        "prekey": p(&prekey)?,
        "prekey_without_one_time_prekey": p(&prekey_no_otk)?,
        "prekey_classical": p(&prekey_classical)?,
        "group": {
            "type": 3, "version": group.version, "suite": group.suite.id(), "group_id": h(&group.group_id),
            "sender_key": h(&group.sender_key), "iteration": group.iteration, "salt": h(&group.salt),
            "ciphertext": h(&group.ciphertext), "signature": h(&group.signature),
            "header_bytes": h(&group.header_bytes()?), "signed_bytes": h(&group.signed_bytes()?),
            "encoding": h(&group.to_bytes()?),
        },
        "sender_key_distribution": {
            "type": 4, "version": skd.version, "suite": skd.suite.id(), "group_id": h(&skd.group_id),
            "sender_key": h(&skd.sender_key), "iteration": skd.iteration, "chain_key": h(skd.chain_key.as_bytes()), "owner_signature": h(&skd.owner_signature),
            "chain_signature": h(&skd.chain_signature), "encoding": h(&skd.to_bytes()?),
        },
        "session_reset": {
            "type": 6, "version": 1,
            "from_signing_seed": h(&from_seed), "from_dh_secret": h(&from_dh), "from": h(&reset.from.to_bytes()),
            "to_signing_seed": h(&to_seed), "to_dh_secret": h(&to_dh), "to": h(&reset.to.to_bytes()),
            "session_id": h(&reset.session_id), "timestamp": reset.timestamp, "nonce": h(&reset.nonce),
            "signed_bytes": h(reset_signed), "signature": h(reset_signature), "encoding": h(&reset_bytes),
        },
    }))
}

/// Wraps the seeded generator and records every draw, so that another
/// implementation can replay the exact randomness of each step.
struct Recorder<'a> {
    inner: &'a mut ChaCha20Rng,
    draws: Vec<String>,
}

impl rand_core::TryRng for Recorder<'_> {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.inner.fill_bytes(dst);
        self.draws.push(h(dst));
        Ok(())
    }
}

impl rand_core::TryCryptoRng for Recorder<'_> {}

fn recorder(rng: &mut ChaCha20Rng) -> Recorder<'_> {
    Recorder { inner: rng, draws: Vec::new() }
}

/// A complete deterministic conversation: set-up, session start, messages in
/// both directions with reordering, a turn and a time rotation.
fn conversation(rng: &mut ChaCha20Rng) -> Result<Value, sealpost::Error> {
    use sealpost::{Envelope, Session};
    let t0: u64 = 1_700_000_000;
    let policy = SessionPolicy {
        suites: vec![Suite::Aes256Gcm, Suite::ChaCha20Poly1305, Suite::XChaCha20Poly1305],
        ..SessionPolicy::default()
    };
    let mut steps = Vec::new();

    let mut rec = recorder(rng);
    let mut bob = Account::new(&mut rec, t0);
    let otk = bob.generate_one_time_prekeys(&mut rec, 1)[0];
    let bundle = bob.bundle(&policy)?.with_one_time_prekey(otk)?;
    steps.push(json!({ "step": "bob_account", "time": t0, "one_time_prekeys": 1, "draws": rec.draws,
        "bundle": h(&bundle.to_bytes()) }));

    let mut rec = recorder(rng);
    let mut alice = Account::new(&mut rec, t0);
    steps.push(json!({ "step": "alice_account", "time": t0, "draws": rec.draws,
        "identity": h(&alice.identity().to_bytes()) }));

    let mut rec = recorder(rng);
    let mut to_bob = Session::initiate(&mut rec, &mut alice, &bundle, &policy, t0)?;
    steps.push(json!({ "step": "alice_initiates", "time": t0, "draws": rec.draws }));

    // (sender, time, plaintext); then deliveries by message index.
    let mut sent: Vec<Vec<u8>> = Vec::new();
    let mut to_alice: Option<Session> = None;
    let plan: Vec<(&str, &str, u64, &str)> = vec![
        ("send", "alice", t0, "Hello Bob, this is Alice."),
        ("send", "alice", t0 + 1, "Are you there?"),
        ("accept", "bob", t0 + 50, "0"),
        ("deliver", "bob", t0 + 50, "1"),
        ("send", "bob", t0 + 60, "Yes, got both."),
        ("send", "bob", t0 + 61, "Long time no see."),
        ("send", "bob", t0 + 62, "How are you?"),
        ("deliver", "alice", t0 + 70, "4"),
        ("deliver", "alice", t0 + 70, "2"),
        ("deliver", "alice", t0 + 70, "3"),
        ("send", "alice", t0 + 120, "Great, thanks!"),
        ("send", "alice", t0 + 121, "Lunch on Friday?"),
        ("send", "alice", t0 + 121 + 3600, "Hello? (an hour later: a new epoch)"),
        ("deliver", "bob", t0 + 4000, "7"),
        ("deliver", "bob", t0 + 4000, "5"),
        ("deliver", "bob", t0 + 4000, "6"),
        ("send", "bob", t0 + 4010, "Friday works."),
        ("deliver", "alice", t0 + 4020, "8"),
        ("send", "alice", t0 + 4030, "See you then."),
        ("deliver", "bob", t0 + 4040, "9"),
        ("send", "bob", t0 + 4050, ""),
        ("deliver", "alice", t0 + 4060, "10"),
    ];
    for (kind, who, time, arg) in plan {
        match kind {
            "send" => {
                let mut rec = recorder(rng);
                let session = if who == "alice" {
                    &mut to_bob
                } else {
                    to_alice.as_mut().ok_or(sealpost::Error::SessionExpired)?
                };
                let envelope = session.encrypt(&mut rec, time, arg.as_bytes())?;
                let kind = match Envelope::from_bytes(&envelope)? {
                    Envelope::Prekey(_) => "prekey",
                    _ => "ratchet",
                };
                steps.push(json!({ "step": "send", "from": who, "time": time, "index": sent.len(),
                    "plaintext": h(arg.as_bytes()), "draws": rec.draws, "envelope": h(&envelope), "type": kind }));
                sent.push(envelope);
            }
            "accept" => {
                let index: usize = arg.parse().map_err(|_| sealpost::Error::TooLarge)?;
                let Envelope::Prekey(m) = Envelope::from_bytes(&sent[index])? else {
                    return Err(sealpost::Error::Malformed("expected a prekey message"));
                };
                let (session, pt) = bob.accept(&policy, time, &m)?;
                to_alice = Some(session);
                steps.push(json!({ "step": "accept", "to": who, "time": time, "index": index, "plaintext": h(&pt) }));
            }
            _ => {
                let index: usize = arg.parse().map_err(|_| sealpost::Error::TooLarge)?;
                let session = if who == "alice" {
                    &mut to_bob
                } else {
                    to_alice.as_mut().ok_or(sealpost::Error::SessionExpired)?
                };
                let pt = session.decrypt(time, &sent[index])?;
                steps.push(json!({ "step": "deliver", "to": who, "time": time, "index": index, "plaintext": h(&pt) }));
            }
        }
    }
    let b = to_alice.ok_or(sealpost::Error::SessionExpired)?;
    Ok(json!({
        "description": "A deterministic conversation. Each step lists the random bytes it drew, in order (\"draws\"); replaying them reproduces every envelope byte for byte. Times are Unix seconds.",
        "policy_suites": policy.suite_ids(),
        "steps": steps,
        "safety_number": b.safety_number().digits(),
        "session_id": h(&b.id()),
    }))
}

/// A deterministic group exchange: three members' distributions and
/// messages, with real sealing and signatures.
fn group(rng: &mut ChaCha20Rng) -> Result<Value, sealpost::Error> {
    use sealpost::GroupSession;
    let policy = SessionPolicy { suites: vec![Suite::ChaCha20Poly1305], ..SessionPolicy::default() };
    let mut steps = Vec::new();
    let mut members = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let mut rec = recorder(rng);
        let id = IdentityKeyPair::generate(&mut rec);
        // The account's prekey comes from a separate generator: the draws
        // recorded are the identity's and the sender chain's, as before.
        let id = sealpost::hazmat::account_from_identity(&mut ChaCha20Rng::from_seed([0; 32]), id, 0);
        let view = GroupSession::new(&mut rec, b"book-club", &id, &policy)?;
        let skd = view.distribution();
        steps.push(json!({
            "step": "member", "name": name, "draws": rec.draws,
            "identity": h(&id.identity().to_bytes()),
            "distribution": h(&skd.to_bytes()?),
        }));
        members.push((name, id, view));
    }
    // Everyone installs everyone's chain.
    let skds: Vec<_> = members.iter().map(|(_, _, v)| v.distribution()).collect();
    let ids: Vec<_> = members.iter().map(|(_, id, _)| *id.identity()).collect();
    for (i, (_, _, view)) in members.iter_mut().enumerate() {
        for (j, skd) in skds.iter().enumerate() {
            if i != j {
                view.add_member(ids[j])?;
                view.process_distribution(&ids[j], skd)?;
            }
        }
    }
    for (from, text) in [(0usize, "first book: Dune"), (1, "I'm in"), (0, "chapter 1 by Friday"), (2, "")] {
        let mut rec = recorder(rng);
        let envelope = members[from].2.encrypt(&mut rec, text.as_bytes())?;
        for (to, (_, _, view)) in members.iter_mut().enumerate() {
            if to != from {
                let (sender, pt) = view.decrypt(&envelope)?;
                if sender != ids[from] || pt != text.as_bytes() {
                    return Err(sealpost::Error::AuthenticationFailed);
                }
            }
        }
        steps.push(json!({
            "step": "send", "from": members[from].0, "draws": rec.draws,
            "plaintext": h(text.as_bytes()), "envelope": h(&envelope),
        }));
    }
    Ok(json!({
        "description": "A group of three with sender keys: each member's identity and distribution (draws: identity seed and X25519 secret, then the sender chain's signing seed and chain key; the distribution's owner_signature is by the member's identity key, its chain_signature by the sender key), then group messages with their draws (the salt), envelopes and plaintexts. Every member other than the sender opens each message.",
        "group_id": h(b"book-club"),
        "suite": Suite::ChaCha20Poly1305.id(),
        "steps": steps,
    }))
}

type Generator = fn(&mut ChaCha20Rng) -> Result<Value, sealpost::Error>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "test-vectors".into()));
    std::fs::create_dir_all(&dir)?;
    // One generator per file, so adding vectors to one file leaves the others unchanged.
    let files: [(&str, Generator); 7] = [
        ("suites.json", suites),
        ("kdf.json", kdf),
        ("identities.json", identities),
        ("bundles.json", bundles),
        ("envelopes.json", envelopes),
        ("conversation.json", conversation),
        ("group.json", group),
    ];
    for (i, (name, generate)) in files.iter().enumerate() {
        let mut seed = [0u8; 32];
        seed[0] = u8::try_from(i)?;
        seed[1..9].copy_from_slice(b"sealpost");
        let mut rng = ChaCha20Rng::from_seed(seed);
        let value = generate(&mut rng)?;
        let mut text = serde_json::to_string_pretty(&value)?;
        text.push('\n');
        std::fs::write(dir.join(name), text)?;
        println!("wrote {}", dir.join(name).display());
    }
    Ok(())
}
