#!/usr/bin/env python3
"""Cross-checks Sealpost's RSA interoperability (feature `rsa`) against an
independent implementation: Python's `cryptography` package.

  interop.py keys                 create the test keys (only if missing)
  interop.py make OUT.json        wrap and sign messages here, for Sealpost to open and verify
  interop.py check IN.json        open and verify what Sealpost wrapped and signed

Formats (docs/PROTOCOL.md, 12A "RSA interoperability"); the sender's key signs, the
recipient's key unwraps:
  fingerprint(key) = SHA-256(SubjectPublicKeyInfo DER of key)
  binding = fingerprint(sender) || fingerprint(recipient)
  header = 0x02 || 0x05 || suite || u16(W) || OAEP(content key) || salt(16)
  message = header || u32(C) || ciphertext || u16(S) || PSS signature (S)
  OAEP: SHA-256, MGF1-SHA-256, label "sealpost/v1/rsa-wrap"; the content key is 32 random bytes
  suite keys: HKDF-SHA-256-Expand(PRK = content key, info = "sealpost/v1/suite-keys" || suite id || salt)
  AAD = binding || header
  PSS: SHA-256, MGF1-SHA-256, salt length 32, by the sender over
       "sealpost/v1/rsa-pss" || binding || every message byte before the signature
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
# Sender -> recipient pairs the vectors cover: both directions and to oneself.
PAIRS = [("rsa2048", "rsa3072"), ("rsa3072", "rsa2048"), ("rsa2048", "rsa2048")]
VERSION = 2


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


def fingerprint(public):
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _sha256(der)


def _sha256(data):
    h = hashes.Hash(hashes.SHA256())
    h.update(data)
    return h.finalize()


def binding(sender_public, recipient_public):
    return fingerprint(sender_public) + fingerprint(recipient_public)


def seal(sender, recipient_public, suite, plaintext):
    bind = binding(sender.public_key(), recipient_public)
    content_key = os.urandom(32)
    wrapped = recipient_public.encrypt(content_key, oaep())
    salt = os.urandom(16)
    header = bytes([VERSION, 5, suite]) + struct.pack(">H", len(wrapped)) + wrapped + salt
    key, nonce = suite_keys(suite, content_key, salt)
    ct = aead(suite, key).encrypt(nonce, pad(plaintext), bind + header)
    unsigned = header + struct.pack(">I", len(ct)) + ct + struct.pack(">H", (sender.key_size + 7) // 8)
    sig = sender.sign(PSS_CONTEXT + bind + unsigned, pss(), hashes.SHA256())
    assert len(sig) == struct.unpack(">H", unsigned[-2:])[0]
    return unsigned + sig


def open_message(recipient, sender_public, message):
    """Parses strictly, verifies the sender's signature, then decrypts."""
    if message[0] != VERSION or message[1] != 5:
        raise ValueError("not an RSA-wrapped message of version 2")
    suite = message[2]
    (w,) = struct.unpack(">H", message[3:5])
    salt = message[5 + w : 21 + w]
    wrapped = message[5 : 5 + w]
    header = message[: 21 + w]
    (c,) = struct.unpack(">I", message[21 + w : 25 + w])
    ct = message[25 + w : 25 + w + c]
    (s,) = struct.unpack(">H", message[25 + w + c : 27 + w + c])
    unsigned = message[: 27 + w + c]
    sig = message[27 + w + c :]
    if len(ct) != c or len(sig) != s or len(salt) != 16:
        raise ValueError("length")
    bind = binding(sender_public, recipient.public_key())
    sender_public.verify(sig, PSS_CONTEXT + bind + unsigned, pss(), hashes.SHA256())
    content_key = recipient.decrypt(wrapped, oaep())
    key, nonce = suite_keys(suite, content_key, salt)
    return unpad(aead(suite, key).decrypt(nonce, ct, bind + header))


def write_key(name, bits, private=True):
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    assert key.public_key().public_numbers().n.bit_length() == bits
    if private:
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        with open(os.path.join(HERE, f"{name}.pem"), "wb") as f:
            f.write(pem)
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with open(os.path.join(HERE, f"{name}.pub.pem"), "wb") as f:
        f.write(pub)


def keys():
    """Creates each missing test key: the two interop keys, a third party's key (for the
    signature-replacement test), and keys Sealpost must refuse to import: 1024 bits (too
    small), 2041 bits (a 256-byte modulus that is not 2048 bits) and 4096 bits (not 2048
    or 3072)."""
    wanted = [(name, bits, True) for name, bits in KEYS.items()]
    wanted += [("mallory2048", 2048, True), ("rsa2041", 2041, True)]
    wanted += [("rsa1024-weak", 1024, False), ("rsa4096", 4096, False)]
    for name, bits, private in wanted:
        if not os.path.exists(os.path.join(HERE, f"{name}.pub.pem")):
            write_key(name, bits, private)


def fingerprints():
    return {name: fingerprint(load_private(name).public_key()).hex() for name in KEYS}


def make(out):
    vectors = []
    for sender_name, recipient_name in PAIRS:
        sender = load_private(sender_name)
        recipient = load_private(recipient_name).public_key()
        for suite, text in [(1, b"sealed by python, AES-256-GCM"), (2, b"sealed by python, ChaCha20-Poly1305"), (1, b"")]:
            msg = seal(sender, recipient, suite, text)
            vectors.append({"sender": sender_name, "recipient": recipient_name, "suite": suite, "plaintext": text.hex(), "message": msg.hex()})
    doc = {
        "description": "RSA-wrapped messages (version 2, docs/PROTOCOL.md 12A) sealed and signed by Python's cryptography package",
        "fingerprints": fingerprints(),
        "vectors": vectors,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def must_fail(what, fn):
    try:
        fn()
    except Exception:  # noqa: BLE001 - any refusal counts
        return
    raise AssertionError(f"{what} was accepted")


def check(path):
    with open(path) as f:
        doc = json.load(f)
    passed = failed = 0
    for name, fp in doc.get("fingerprints", {}).items():
        if fingerprint(load_private(name).public_key()).hex() != fp:
            print(f"FAIL fingerprint of {name}")
            failed += 1
    names = sorted(KEYS)
    for v in doc["vectors"]:
        recipient = load_private(v["recipient"])
        sender_public = load_private(v["sender"]).public_key()
        msg = bytes.fromhex(v["message"])
        try:
            assert open_message(recipient, sender_public, msg) == bytes.fromhex(v["plaintext"]), "plaintext differs"
            # Tampering, a wrong claimed sender and a wrong recipient must be refused by this side too.
            bad = bytearray(msg)
            bad[30] ^= 1
            must_fail("a tampered message", lambda: open_message(recipient, sender_public, bytes(bad)))
            other = [n for n in names if n != v["sender"]][0]
            must_fail("a wrong sender", lambda: open_message(recipient, load_private(other).public_key(), msg))
            if v["recipient"] != v["sender"]:
                sender = load_private(v["sender"])
                must_fail("a wrong recipient", lambda: open_message(sender, sender_public, msg))
            passed += 1
        except Exception as e:  # noqa: BLE001 - report and count every failure
            print(f"FAIL {v['sender']} -> {v['recipient']} suite {v['suite']}: {e!r}")
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
