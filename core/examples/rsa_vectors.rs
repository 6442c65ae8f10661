//! Seals and signs messages with Sealpost's RSA interop (feature `rsa`)
//! between the test keys in `test-vectors/rsa/`, for Python's
//! `cryptography` to verify and open: `cargo run -p sealpost --features rsa
//! --example rsa_vectors -- OUT.json`, then
//! `python3 test-vectors/rsa/interop.py check OUT.json`.

use sealpost::RsaPrivateKey;
use sealpost::Suite;
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args().nth(1).ok_or("usage: rsa_vectors OUT.json")?;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors/rsa");
    let load = |name: &str| -> Result<RsaPrivateKey, Box<dyn std::error::Error>> {
        Ok(RsaPrivateKey::from_pkcs8_pem(&std::fs::read_to_string(format!("{dir}/{name}.pem"))?)?)
    };
    let mut rng = sealpost::os_rng();
    let mut vectors = Vec::new();
    let mut fingerprints = serde_json::Map::new();
    for name in ["rsa2048", "rsa3072"] {
        fingerprints.insert(name.into(), hex::encode(load(name)?.public_key().fingerprint()).into());
    }
    for (from, to) in [("rsa2048", "rsa3072"), ("rsa3072", "rsa2048"), ("rsa3072", "rsa3072")] {
        let (sender, recipient) = (load(from)?, load(to)?.public_key());
        for (suite, text) in [
            (Suite::Aes256Gcm, &b"sealed by sealpost, AES-256-GCM"[..]),
            (Suite::ChaCha20Poly1305, &b"sealed by sealpost, ChaCha20-Poly1305"[..]),
            (Suite::Aes256Gcm, &b""[..]),
        ] {
            let message = sender.seal_message(&mut rng, &recipient, suite, text)?;
            vectors.push(json!({
                "sender": from, "recipient": to, "suite": suite.id(),
                "plaintext": hex::encode(text), "message": hex::encode(&message),
            }));
        }
    }
    let doc = json!({
        "description": "RSA-wrapped messages (version 2, docs/PROTOCOL.md 12A) sealed and signed by Sealpost",
        "fingerprints": fingerprints,
        "vectors": vectors,
    });
    std::fs::write(out, serde_json::to_string_pretty(&doc)? + "\n")?;
    Ok(())
}
