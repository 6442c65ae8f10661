#!/usr/bin/env python3
"""Writes test-vectors/mlkem.json: ML-KEM-768 keys from fixed seeds and
encapsulations to them, made by OpenSSL through Python's `cryptography`
(an implementation independent of the Rust `ml-kem` crate Sealpost uses).
`core/tests/hybrid.rs` checks that Sealpost derives the same keys and
decapsulates to the same secrets."""
import hashlib
import json
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mlkem

out = []
for i in range(4):
    seed = hashlib.sha512(b"sealpost ml-kem vector %d" % i).digest()
    key = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
    ek = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ss, ct = key.public_key().encapsulate()
    assert key.decapsulate(ct) == ss
    out.append({"seed": seed.hex(), "encapsulation_key": ek.hex(), "ciphertext": ct.hex(), "shared_secret": ss.hex()})
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mlkem.json")
with open(path, "w") as f:
    json.dump({"description": "ML-KEM-768 (FIPS 203): seed (d || z, 64 bytes) -> encapsulation key; a ciphertext made by OpenSSL and its shared secret", "vectors": out}, f, indent=2)
    f.write("\n")
