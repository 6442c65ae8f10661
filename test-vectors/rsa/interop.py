#!/usr/bin/env python3
"""Cross-checks Sealpost's RSA interoperability (feature `rsa`) against an
independent implementation: Python's `cryptography` package.

  interop.py keys                 create the test keys (only if missing)
  interop.py make OUT.json        wrap and sign messages here, for Sealpost to open and verify
  interop.py check IN.json        open and verify what Sealpost wrapped and signed

Formats (docs/PROTOCOL.md, "RSA interoperability"):
  wrapped message = 0x01 || 0x05 || suite || u16(W) || OAEP(content key) || salt(16) || u32(C) || ciphertext
  OAEP: SHA-256, MGF1-SHA-256, label "sealpost/v1/rsa-wrap"; the content key is 32 random bytes
  suite keys: HKDF-SHA-256-Expand(PRK = content key, info = "sealpost/v1/suite-keys" || suite id || salt); AAD = header bytes
  PSS: SHA-256, MGF1-SHA-256, salt length 32, over "sealpost/v1/rsa-pss" || envelope
"""
import json
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

HERE = os.path.dirname(os.path.abspath(__file__))
OAEP_LABEL = b"sealpost/v1/rsa-wrap"
PSS_CONTEXT = b"sealpost/v1/rsa-pss"
KEYS = {"rsa2048": 2048, "rsa3072": 3072}


def oaep():
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=OAEP_LABEL)


def pss():
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def suite_keys(suite, secret, salt):
    okm = HKDFExpand(hashes.SHA256(), 44, b"sealpost/v1/suite-keys" + bytes([suite]) + salt).derive(secret)
    return okm[:32], okm[32:44]


def aead(suite, key):
    if suite == 1:
        return AESGCM(key)
    if suite == 2:
        return ChaCha20Poly1305(key)
    raise ValueError(f"suite {suite} not used in these vectors")


def padme(n):
    if n < 2:
        return n
    e = n.bit_length() - 1
    s = e.bit_length()
    mask = (1 << (e - s)) - 1
    return (n + mask) & ~mask


def pad(pt):
    total = padme(len(pt) + 1)
    return pt + b"\x80" + b"\x00" * (total - len(pt) - 1)


def unpad(padded):
    body = padded.rstrip(b"\x00")
    if not body.endswith(b"\x80"):
        raise ValueError("bad padding")
    return body[:-1]


def load_private(name):
    with open(os.path.join(HERE, f"{name}.pem"), "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def wrap(public, suite, plaintext):
    content_key = os.urandom(32)
    wrapped = public.encrypt(content_key, oaep())
    salt = os.urandom(16)
    header = bytes([1, 5, suite]) + struct.pack(">H", len(wrapped)) + wrapped + salt
    key, nonce = suite_keys(suite, content_key, salt)
    ct = aead(suite, key).encrypt(nonce, pad(plaintext), header)
    return header + struct.pack(">I", len(ct)) + ct


def unwrap(private, message):
    if message[0] != 1 or message[1] != 5:
        raise ValueError("not an RSA-wrapped message")
    suite = message[2]
    (w,) = struct.unpack(">H", message[3:5])
    wrapped = message[5 : 5 + w]
    salt = message[5 + w : 21 + w]
    header = message[: 21 + w]
    (c,) = struct.unpack(">I", message[21 + w : 25 + w])
    ct = message[25 + w :]
    if len(ct) != c:
        raise ValueError("length")
    content_key = private.decrypt(wrapped, oaep())
    key, nonce = suite_keys(suite, content_key, salt)
    return unpad(aead(suite, key).decrypt(nonce, ct, header))


def keys():
    for name, bits in KEYS.items():
        path = os.path.join(HERE, f"{name}.pem")
        if os.path.exists(path):
            continue
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        with open(path, "wb") as f:
            f.write(pem)
        pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        with open(os.path.join(HERE, f"{name}.pub.pem"), "wb") as f:
            f.write(pub)
    # A key that is too small, which Sealpost must refuse to import.
    path = os.path.join(HERE, "rsa1024-weak.pub.pem")
    if not os.path.exists(path):
        weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        with open(path, "wb") as f:
            f.write(weak.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def make(out):
    vectors = []
    for name in KEYS:
        public = load_private(name).public_key()
        for suite, text in [(1, b"wrapped by python, AES-256-GCM"), (2, b"wrapped by python, ChaCha20-Poly1305"), (1, b"")]:
            msg = wrap(public, suite, text)
            sig = load_private(name).sign(PSS_CONTEXT + msg, pss(), hashes.SHA256())
            vectors.append({"key": name, "suite": suite, "plaintext": text.hex(), "message": msg.hex(), "signature": sig.hex()})
    with open(out, "w") as f:
        json.dump({"description": "RSA-wrapped messages and PSS signatures made by Python's cryptography package", "vectors": vectors}, f, indent=2)
        f.write("\n")


def check(path):
    with open(path) as f:
        doc = json.load(f)
    passed = failed = 0
    for v in doc["vectors"]:
        private = load_private(v["key"])
        msg = bytes.fromhex(v["message"])
        try:
            assert unwrap(private, msg) == bytes.fromhex(v["plaintext"]), "plaintext differs"
            private.public_key().verify(bytes.fromhex(v["signature"]), PSS_CONTEXT + msg, pss(), hashes.SHA256())
            # Tampering must be detected by this side too.
            bad = bytearray(msg)
            bad[-1] ^= 1
            try:
                unwrap(private, bytes(bad))
                raise AssertionError("tampered message opened")
            except AssertionError:
                raise
            except Exception:
                pass
            passed += 1
        except Exception as e:  # noqa: BLE001 - report and count every failure
            print(f"FAIL {v['key']} suite {v['suite']}: {e!r}")
            failed += 1
    print(f"rsa-interop: {passed} passed, {failed} failed")
    return failed == 0 and passed > 0


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "keys":
        keys()
    elif cmd == "make":
        make(sys.argv[2])
    elif cmd == "check":
        sys.exit(0 if check(sys.argv[2]) else 1)
    else:
        print(__doc__)
        sys.exit(2)
