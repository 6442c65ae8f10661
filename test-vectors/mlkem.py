#!/usr/bin/env python3
"""Writes test-vectors/mlkem.json: ML-KEM-768 keys from fixed seeds and
encapsulations to them, made by OpenSSL through Python's `cryptography`
(an implementation independent of the Rust `ml-kem` crate Sealpost uses).
`core/tests/hybrid.rs` checks that Sealpost derives the same keys and
decapsulates to the same secrets.

OpenSSL's encapsulation draws its own randomness, so a new run writes new
ciphertexts and the file cannot be compared byte for byte with a fresh
run. Instead,

    python3 test-vectors/mlkem.py --check [FILE]

checks everything that is deterministic: the vector count, each seed
against the fixed seed list, each encapsulation key against the one derived
from its seed, and each ciphertext decapsulating to the recorded shared
secret; the exit status is non-zero on any difference.
`scripts/regen-vectors.sh --check` runs it."""
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mlkem

COUNT = 4
DESCRIPTION = ("ML-KEM-768 (FIPS 203): seed (d || z, 64 bytes) -> encapsulation key; "
               "a ciphertext made by OpenSSL and its shared secret")
PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mlkem.json")


def seed(i):
    return hashlib.sha512(b"sealpost ml-kem vector %d" % i).digest()


def public(key):
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def write(path):
    out = []
    for i in range(COUNT):
        key = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed(i))
        ss, ct = key.public_key().encapsulate()
        assert key.decapsulate(ct) == ss
        out.append({"seed": seed(i).hex(), "encapsulation_key": public(key).hex(),
                    "ciphertext": ct.hex(), "shared_secret": ss.hex()})
    with open(path, "w") as f:
        json.dump({"description": DESCRIPTION, "vectors": out}, f, indent=2)
        f.write("\n")


def check(path):
    with open(path) as f:
        doc = json.load(f)
    problems = []
    if doc.get("description") != DESCRIPTION:
        problems.append("description differs")
    vectors = doc.get("vectors", [])
    if len(vectors) != COUNT:
        problems.append("%d vectors, want %d" % (len(vectors), COUNT))
    for i, v in enumerate(vectors):
        if sorted(v) != ["ciphertext", "encapsulation_key", "seed", "shared_secret"]:
            problems.append("vector %d: fields %s" % (i, sorted(v)))
            continue
        if bytes.fromhex(v["seed"]) != seed(i):
            problems.append("vector %d: seed is not the fixed seed %d" % (i, i))
        key = mlkem.MLKEM768PrivateKey.from_seed_bytes(bytes.fromhex(v["seed"]))
        if public(key).hex() != v["encapsulation_key"]:
            problems.append("vector %d: encapsulation key differs from the seed's" % i)
        if key.decapsulate(bytes.fromhex(v["ciphertext"])).hex() != v["shared_secret"]:
            problems.append("vector %d: ciphertext does not decapsulate to shared_secret" % i)
    for p in problems:
        print("%s: %s" % (path, p), file=sys.stderr)
    print("mlkem.py --check: %s" % ("ok" if not problems else "%d problems" % len(problems)))
    return not problems


if __name__ == "__main__":
    if sys.argv[1:2] == ["--check"]:
        sys.exit(0 if check(sys.argv[2] if len(sys.argv) > 2 else PATH) else 1)
    if len(sys.argv) > 1:
        sys.exit("usage: mlkem.py [--check [FILE]]")
    write(PATH)
