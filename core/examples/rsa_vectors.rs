//! Wraps and signs messages with Sealpost's RSA interop (feature `rsa`)
//! under the test keys in `test-vectors/rsa/`, for Python's `cryptography`
//! to open and verify: `cargo run -p sealpost --features rsa --example
//! rsa_vectors -- OUT.json`, then `python3 test-vectors/rsa/interop.py check OUT.json`.

use sealpost::Suite;
use sealpost::legacy::RsaPrivateKey;
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args().nth(1).ok_or("usage: rsa_vectors OUT.json")?;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors/rsa");
    let mut rng = sealpost::os_rng();
    let mut vectors = Vec::new();
    for name in ["rsa2048", "rsa3072"] {
        let key = RsaPrivateKey::from_pkcs8_pem(&std::fs::read_to_string(format!("{dir}/{name}.pem"))?)?;
        let public = key.public_key();
        for (suite, text) in [
            (Suite::Aes256Gcm, &b"wrapped by sealpost, AES-256-GCM"[..]),
            (Suite::ChaCha20Poly1305, &b"wrapped by sealpost, ChaCha20-Poly1305"[..]),
            (Suite::Aes256Gcm, &b""[..]),
        ] {
            let message = public.wrap_message(&mut rng, suite, text)?;
            let signature = key.sign(&mut rng, &message);
            vectors.push(json!({
                "key": name, "suite": suite.id(), "plaintext": hex::encode(text),
                "message": hex::encode(&message), "signature": hex::encode(&signature),
            }));
        }
    }
    let doc = json!({ "description": "RSA-wrapped messages and PSS signatures made by Sealpost", "vectors": vectors });
    std::fs::write(out, serde_json::to_string_pretty(&doc)? + "\n")?;
    Ok(())
}
