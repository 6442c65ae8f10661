#!/usr/bin/env python3
"""Independent check of the Sealpost v1 test vectors against docs/PROTOCOL.md.

Written from the specification alone (no reference to the Rust sources).
Needs Python 3.11 and the `cryptography` package.  Run from anywhere:

    python3 test-vectors/verify.py [VECTOR_DIR]

VECTOR_DIR defaults to the folder of this script. Prints one line per check
group and a final "verify.py: N passed, M failed" line. The exit status is
non-zero if any check failed, if an expected vector file is missing, if a
group ran no check, or if no check ran at all. Every check compares a value
computed here with the value the vectors (or the spec) expect.
"""

import hashlib
import hmac
import json
import os
import struct
import re
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey, Ed25519PublicKey)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey, X25519PublicKey)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import (
    AESGCM, ChaCha20Poly1305)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mlkem

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = HERE  # set from the command line in main()
# Every file this script checks; a missing one is a failure, never a skip.
EXPECTED_FILES = ("suites.json", "kdf.json", "identities.json", "bundles.json",
                  "envelopes.json", "conversation.json")
TWOFISH_KAT = os.path.join(HERE, "..", "core", "tests", "kat", "twofish.json")
RAW = serialization.Encoding.Raw
RAWPUB = serialization.PublicFormat.Raw


def load(name):
    with open(os.path.join(VECTORS, name)) as f:
        return json.load(f)


def h(s):
    return bytes.fromhex(s)


# --------------------------------------------------------------------------
# check bookkeeping

class Checker:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.group_fail = []
        self.group_n = 0

    def check(self, cond, what):
        if not isinstance(cond, bool) or not what:
            raise TypeError("check() takes a computed bool and a description")
        self.group_n += 1
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            self.group_fail.append(what)
        return cond

    def eq(self, got, want, what):
        ok = got == want
        if not ok:
            g = got.hex() if isinstance(got, (bytes, bytearray)) else got
            w = want.hex() if isinstance(want, (bytes, bytearray)) else want
            what = "%s: got %s, want %s" % (what, str(g)[:140], str(w)[:140])
        return self.check(ok, what)

    def fail(self, what):
        """Records a failure: something that had to work did not."""
        return self.check(False, what)

    def raises(self, fn, want, what):
        """Runs fn and compares the error it raised (its text, or its class
        name when it has none) with want; no error at all is a mismatch."""
        try:
            fn()
            got = "no error"
        except Exception as e:  # the error is the computed value
            got = str(e) or type(e).__name__
        return self.eq(got, want, what)

    def group(self, name, fn):
        self.group_fail = []
        self.group_n = 0
        try:
            fn(self)
        except Exception as e:  # an exception is a failure of the group
            import traceback
            traceback.print_exc()
            self.failed += 1
            self.group_n += 1
            self.group_fail.append("exception: %r" % (e,))
        if self.group_n == 0:
            self.failed += 1
            self.group_n += 1
            self.group_fail.append("the group ran no check")
        status = "ok" if not self.group_fail else "FAIL"
        print("%-14s %-4s %d checks, %d failed" % (
            name, status, self.group_n, len(self.group_fail)))
        for f in self.group_fail[:20]:
            print("    - " + f)


# --------------------------------------------------------------------------
# encodings

def u8(x):
    return struct.pack(">B", x)


def u32(x):
    return struct.pack(">I", x)


def u64(x):
    return struct.pack(">Q", x)


def vec8(b):
    assert len(b) <= 255
    return u8(len(b)) + bytes(b)


class Reader:
    def __init__(self, data, what="envelope"):
        self.d = bytes(data)
        self.i = 0
        self.what = what

    def take(self, n):
        if self.i + n > len(self.d):
            raise ValueError("Malformed(%s): truncated" % self.what)
        b = self.d[self.i:self.i + n]
        self.i += n
        return b

    def u8(self):
        return self.take(1)[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def presence(self):
        p = self.u8()
        if p not in (0, 1):
            raise ValueError("Malformed(%s): presence byte" % self.what)
        return p == 1

    def end(self):
        if self.i != len(self.d):
            raise ValueError("Malformed(%s): trailing bytes" % self.what)


# --------------------------------------------------------------------------
# KDFs (RFC 5869, RFC 8018), written out

def hmac256(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


def hkdf_extract(salt, ikm):
    return hmac256(salt, ikm)  # an empty salt equals HashLen zero bytes in HMAC


def hkdf_expand(prk, info, length):
    out, t, c = b"", b"", 1
    while len(out) < length:
        t = hmac256(prk, t + info + bytes([c]))
        out += t
        c += 1
    return out[:length]


def hkdf(salt, ikm, info, length):
    return hkdf_expand(hkdf_extract(salt, ikm), info, length)


def pbkdf2(password, salt, iterations, dklen=32):
    # RFC 8018 5.2, one block is enough for dkLen = 32
    out = b""
    block = 1
    while len(out) < dklen:
        mac = hmac.new(password, None, hashlib.sha256)

        def prf(m):
            c = mac.copy()
            c.update(m)
            return c.digest()
        u = prf(salt + struct.pack(">I", block))
        acc = int.from_bytes(u, "big")
        for _ in range(iterations - 1):
            u = prf(u)
            acc ^= int.from_bytes(u, "big")
        out += acc.to_bytes(32, "big")
        block += 1
    return out[:dklen]


LABEL = {
    "suite-keys": b"sealpost/v1/suite-keys",
    "session-start": b"sealpost/v1/session-start",
    "ratchet-step": b"sealpost/v1/ratchet-step",
    "chain-step": b"sealpost/v1/chain-step",
    "group-chain-step": b"sealpost/v1/group-chain-step",
    "pickle": b"sealpost/v1/pickle",
}
# 3.1: derivations with no extract step (the PRK is already a uniform key)
EXPAND_ONLY = ("suite-keys", "chain-step", "group-chain-step")
LABEL_HEX = {  # section 3.2
    "suite-keys": "7365616c706f73742f76312f73756974652d6b657973",
    "session-start": "7365616c706f73742f76312f73657373696f6e2d7374617274",
    "ratchet-step": "7365616c706f73742f76312f726174636865742d73746570",
    "chain-step": "7365616c706f73742f76312f636861696e2d73746570",
    "group-chain-step":
        "7365616c706f73742f76312f67726f75702d636861696e2d73746570",
    "pickle": "7365616c706f73742f76312f7069636b6c65",
}

# --------------------------------------------------------------------------
# HChaCha20 (draft-irtf-cfrg-xchacha section 2.2)

M32 = 0xFFFFFFFF


def _rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & M32


def _qr(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & M32
    s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & M32
    s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & M32
    s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & M32
    s[b] = _rotl(s[b] ^ s[c], 7)


def hchacha20(key, nonce16):
    assert len(key) == 32 and len(nonce16) == 16
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    s += list(struct.unpack("<8I", key))
    s += list(struct.unpack("<4I", nonce16))
    for _ in range(10):
        _qr(s, 0, 4, 8, 12)
        _qr(s, 1, 5, 9, 13)
        _qr(s, 2, 6, 10, 14)
        _qr(s, 3, 7, 11, 15)
        _qr(s, 0, 5, 10, 15)
        _qr(s, 1, 6, 11, 12)
        _qr(s, 2, 7, 8, 13)
        _qr(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha20poly1305_encrypt(key, nonce24, pt, aad):
    sub = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(sub).encrypt(b"\0\0\0\0" + nonce24[16:24], pt, aad)


def xchacha20poly1305_decrypt(key, nonce24, ct, aad):
    sub = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(sub).decrypt(b"\0\0\0\0" + nonce24[16:24], ct, aad)


# --------------------------------------------------------------------------
# Twofish (Schneier et al., "Twofish: A 128-Bit Block Cipher", 1998),
# encryption and decryption with a 256-bit key, written from the paper.

def _mk_q(t0, t1, t2, t3):
    def ror4(x, n):
        return ((x >> n) | (x << (4 - n))) & 0xF
    q = []
    for x in range(256):
        a0, b0 = x >> 4, x & 0xF
        a1 = a0 ^ b0
        b1 = a0 ^ ror4(b0, 1) ^ ((8 * a0) & 0xF)
        a2, b2 = t0[a1], t1[b1]
        a3 = a2 ^ b2
        b3 = a2 ^ ror4(b2, 1) ^ ((8 * a2) & 0xF)
        a4, b4 = t2[a3], t3[b3]
        q.append((b4 << 4) | a4)
    return q


TF_Q0 = _mk_q([0x8, 0x1, 0x7, 0xD, 0x6, 0xF, 0x3, 0x2, 0x0, 0xB, 0x5, 0x9, 0xE, 0xC, 0xA, 0x4],
              [0xE, 0xC, 0xB, 0x8, 0x1, 0x2, 0x3, 0x5, 0xF, 0x4, 0xA, 0x6, 0x7, 0x0, 0x9, 0xD],
              [0xB, 0xA, 0x5, 0xE, 0x6, 0xD, 0x9, 0x0, 0xC, 0x8, 0xF, 0x3, 0x2, 0x4, 0x7, 0x1],
              [0xD, 0x7, 0xF, 0x4, 0x1, 0x2, 0x6, 0xE, 0x9, 0xB, 0x3, 0x0, 0x8, 0x5, 0xC, 0xA])
TF_Q1 = _mk_q([0x2, 0x8, 0xB, 0xD, 0xF, 0x7, 0x6, 0xE, 0x3, 0x1, 0x9, 0x4, 0x0, 0xA, 0xC, 0x5],
              [0x1, 0xE, 0x2, 0xB, 0x4, 0xC, 0x3, 0x7, 0x6, 0xD, 0xA, 0x5, 0xF, 0x9, 0x0, 0x8],
              [0x4, 0xC, 0x7, 0x5, 0x1, 0x6, 0x9, 0xA, 0x0, 0xE, 0xD, 0x8, 0x2, 0xB, 0x3, 0xF],
              [0xB, 0x9, 0x5, 0x1, 0xC, 0x3, 0xD, 0xE, 0x6, 0x4, 0x7, 0xF, 0x2, 0x0, 0x8, 0xA])


def _gf_mul(a, b, poly):
    r = 0
    while b:
        if b & 1:
            r ^= a
        a <<= 1
        if a & 0x100:
            a ^= poly
        b >>= 1
    return r


TF_MDS = [[0x01, 0xEF, 0x5B, 0x5B],
          [0x5B, 0xEF, 0xEF, 0x01],
          [0xEF, 0x5B, 0x01, 0xEF],
          [0xEF, 0x01, 0xEF, 0x5B]]
TF_RS = [[0x01, 0xA4, 0x55, 0x87, 0x5A, 0x58, 0xDB, 0x9E],
         [0xA4, 0x56, 0x82, 0xF3, 0x1E, 0xC6, 0x68, 0xE5],
         [0x02, 0xA1, 0xFC, 0xC1, 0x47, 0xAE, 0x3D, 0x19],
         [0xA4, 0x55, 0x87, 0x5A, 0x58, 0xDB, 0x9E, 0x03]]


def _rol32(x, n):
    return ((x << n) | (x >> (32 - n))) & M32


def _ror32(x, n):
    return ((x >> n) | (x << (32 - n))) & M32


class Twofish256:
    def __init__(self, key):
        assert len(key) == 32
        k = 4
        M = list(struct.unpack("<8I", key))
        Me = [M[2 * i] for i in range(k)]
        Mo = [M[2 * i + 1] for i in range(k)]
        S = []
        for i in range(k):
            m = key[8 * i:8 * i + 8]
            s = [0, 0, 0, 0]
            for r in range(4):
                acc = 0
                for c in range(8):
                    acc ^= _gf_mul(TF_RS[r][c], m[c], 0x14D)
                s[r] = acc
            S.append(s[0] | (s[1] << 8) | (s[2] << 16) | (s[3] << 24))
        self.S = list(reversed(S))  # (S_{k-1}, ..., S_0)
        rho = 0x01010101
        self.K = []
        for i in range(20):
            A = self._h((2 * i * rho) & M32, Me)
            B = _rol32(self._h(((2 * i + 1) * rho) & M32, Mo), 8)
            self.K.append((A + B) & M32)
            self.K.append(_rol32((A + 2 * B) & M32, 9))
        # g is h(X, S); precompute nothing (speed is fine for the vectors)

    @staticmethod
    def _h(X, L):
        q0, q1 = TF_Q0, TF_Q1
        y = [(X >> (8 * j)) & 0xFF for j in range(4)]
        lb = [[(w >> (8 * j)) & 0xFF for j in range(4)] for w in L]
        # k = 4
        y = [q1[y[0]] ^ lb[3][0], q0[y[1]] ^ lb[3][1],
             q0[y[2]] ^ lb[3][2], q1[y[3]] ^ lb[3][3]]
        y = [q1[y[0]] ^ lb[2][0], q1[y[1]] ^ lb[2][1],
             q0[y[2]] ^ lb[2][2], q0[y[3]] ^ lb[2][3]]
        y = [q1[q0[q0[y[0]] ^ lb[1][0]] ^ lb[0][0]],
             q0[q0[q1[y[1]] ^ lb[1][1]] ^ lb[0][1]],
             q1[q1[q0[y[2]] ^ lb[1][2]] ^ lb[0][2]],
             q0[q1[q1[y[3]] ^ lb[1][3]] ^ lb[0][3]]]
        z = 0
        for r in range(4):
            acc = 0
            for c in range(4):
                acc ^= _gf_mul(TF_MDS[r][c], y[c], 0x169)
            z |= acc << (8 * r)
        return z

    def _g(self, X):
        return self._h(X, self.S)

    def _F(self, r0, r1, rnd):
        t0 = self._g(r0)
        t1 = self._g(_rol32(r1, 8))
        f0 = (t0 + t1 + self.K[2 * rnd + 8]) & M32
        f1 = (t0 + 2 * t1 + self.K[2 * rnd + 9]) & M32
        return f0, f1

    def encrypt_block(self, blk):
        P = struct.unpack("<4I", blk)
        R = [P[i] ^ self.K[i] for i in range(4)]
        for rnd in range(16):
            f0, f1 = self._F(R[0], R[1], rnd)
            R = [_ror32(R[2] ^ f0, 1), _rol32(R[3], 1) ^ f1, R[0], R[1]]
        C = [R[(i + 2) % 4] ^ self.K[i + 4] for i in range(4)]
        return struct.pack("<4I", *C)

    def decrypt_block(self, blk):
        C = struct.unpack("<4I", blk)
        R = [0, 0, 0, 0]
        for i in range(4):
            R[(i + 2) % 4] = C[i] ^ self.K[i + 4]
        for rnd in range(15, -1, -1):
            # R is the state after round rnd; undo it
            r0, r1 = R[2], R[3]
            f0, f1 = self._F(r0, r1, rnd)
            r2 = _rol32(R[0], 1) ^ f0
            r3 = _ror32(R[1] ^ f1, 1)
            R = [r0, r1, r2, r3]
        return struct.pack("<4I", *[R[i] ^ self.K[i] for i in range(4)])


# --------------------------------------------------------------------------
# suites (sections 2.2 to 2.5)

SUITE_TOTAL = {1: 44, 2: 44, 3: 56, 4: 80, 5: 80}
SUITE_NONCE = {1: 12, 2: 12, 3: 24}


def suite_keys(suite, secret, salt):
    # HKDF-Expand only: the secret is already a uniform key; the salt is in the info.
    okm = hkdf_expand(secret, LABEL["suite-keys"] + u8(suite) + salt, SUITE_TOTAL[suite])
    if suite in (1, 2, 3):
        return okm[:32], b"", okm[32:32 + SUITE_NONCE[suite]]
    return okm[:32], okm[32:64], okm[64:80]


def cbc_mac_input(suite, aad, iv, body):
    return u8(suite) + u64(len(aad)) + aad + iv + u64(len(body)) + body


def _pkcs7(data):
    p = 16 - (len(data) % 16)
    return data + bytes([p]) * p


def _cbc_encrypt_twofish(key, iv, data):
    tf = Twofish256(key)
    out, prev = b"", iv
    for i in range(0, len(data), 16):
        blk = bytes(a ^ b for a, b in zip(data[i:i + 16], prev))
        prev = tf.encrypt_block(blk)
        out += prev
    return out


def _cbc_decrypt_twofish(key, iv, data):
    tf = Twofish256(key)
    out, prev = b"", iv
    for i in range(0, len(data), 16):
        c = data[i:i + 16]
        out += bytes(a ^ b for a, b in zip(tf.decrypt_block(c), prev))
        prev = c
    return out


def seal(suite, secret, salt, aad, pt):
    ek, mk, nonce = suite_keys(suite, secret, salt)
    if suite == 1:
        return AESGCM(ek).encrypt(nonce, pt, aad)
    if suite == 2:
        return ChaCha20Poly1305(ek).encrypt(nonce, pt, aad)
    if suite == 3:
        return xchacha20poly1305_encrypt(ek, nonce, pt, aad)
    padded = _pkcs7(pt)
    if suite == 4:
        e = Cipher(algorithms.AES(ek), modes.CBC(nonce)).encryptor()
        body = e.update(padded) + e.finalize()
    else:
        body = _cbc_encrypt_twofish(ek, nonce, padded)
    return body + hmac256(mk, cbc_mac_input(suite, aad, nonce, body))


class AuthFailed(Exception):
    pass


def open_(suite, secret, salt, aad, ct):
    ek, mk, nonce = suite_keys(suite, secret, salt)
    try:
        if suite == 1:
            return AESGCM(ek).decrypt(nonce, ct, aad)
        if suite == 2:
            return ChaCha20Poly1305(ek).decrypt(nonce, ct, aad)
        if suite == 3:
            return xchacha20poly1305_decrypt(ek, nonce, ct, aad)
    except Exception:
        raise AuthFailed()
    if len(ct) < 32:
        raise AuthFailed()
    body, tag = ct[:-32], ct[-32:]
    if not hmac.compare_digest(hmac256(mk, cbc_mac_input(suite, aad, nonce, body)), tag):
        raise AuthFailed()
    if not body or len(body) % 16:
        raise AuthFailed()
    if suite == 4:
        d = Cipher(algorithms.AES(ek), modes.CBC(nonce)).decryptor()
        padded = d.update(body) + d.finalize()
    else:
        padded = _cbc_decrypt_twofish(ek, nonce, body)
    p = padded[-1]
    if not 1 <= p <= 16 or padded[-p:] != bytes([p]) * p:
        raise AuthFailed()
    return padded[:-p]


# --------------------------------------------------------------------------
# padding (7.7)

def padme(L):
    if L < 2:
        return L
    E = L.bit_length() - 1
    S = E.bit_length()
    z = E - S
    mask = (1 << z) - 1
    return (L + mask) & ~mask


def pad_plaintext(pt):
    m = len(pt) + 1
    return pt + b"\x80" + b"\x00" * (padme(m) - m)


def unpad_plaintext(p):
    i = len(p) - 1
    while i >= 0 and p[i] == 0:
        i -= 1
    if i < 0 or p[i] != 0x80:
        raise ValueError("Malformed(padding)")
    return p[:i]


# --------------------------------------------------------------------------
# keys and identities (2.1, 4)

def x25519_pub(secret):
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(RAW, RAWPUB)


def x25519(secret, pub):
    out = X25519PrivateKey.from_private_bytes(secret).exchange(
        X25519PublicKey.from_public_bytes(pub))
    if out == bytes(32):
        raise ValueError("InvalidKey")
    return out


def ed_pub(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(RAW, RAWPUB)


def ed_sign(seed, msg):
    return Ed25519PrivateKey.from_private_bytes(seed).sign(msg)


def ed_verify(pub, sig, msg):
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
        return True
    except (InvalidSignature, ValueError):
        return False


# 2.1: every Ed25519 signature signs vec8(context label) || message, so the
# CTX_* values here are the whole prefix, length byte included.
CTX_BINDING = vec8(b"sealpost/v1/identity-binding")
CTX_BUNDLE = vec8(b"sealpost/v1/bundle")
CTX_OTK = vec8(b"sealpost/v1/one-time-prekey")
CTX_OWNER = vec8(b"sealpost/v1/sender-key-owner")              # identity key (7.6)
CTX_DISTRIBUTION = vec8(b"sealpost/v1/sender-key-distribution")  # sender key (7.6)
CTX_GROUP = vec8(b"sealpost/v1/group-message")                  # sender key (12.2)
CTX_RESET = vec8(b"sealpost/v1/session-reset")                  # identity key (12B.2)

P25519 = 2**255 - 19


def x25519_low_order(u):
    """4.1: a received X25519 key is refused when X25519 with it gives the
    all-zero output for every private key (a point of order 1, 2, 4 or 8,
    bit 255 ignored). Clamped scalars are multiples of 8, so one fixed scalar
    decides it; OpenSSL refuses an all-zero output."""
    try:
        X25519PrivateKey.from_private_bytes(bytes([0x42] * 32)).exchange(X25519PublicKey.from_public_bytes(u))
        return False
    except ValueError:
        return True


def mlkem_ek_ok(ek):
    """8.2: FIPS 203 7.2 modulus check: every 12-bit coefficient of the
    first 1152 bytes is below q = 3329."""
    if len(ek) != 1184:
        return False
    for i in range(0, 1152, 3):
        b0, b1, b2 = ek[i], ek[i + 1], ek[i + 2]
        if (b0 | (b1 & 0x0F) << 8) >= 3329 or (b1 >> 4 | b2 << 4) >= 3329:
            return False
    return True


def ed25519_key_ok(k):
    """4.1: an Ed25519 public key must be a canonical encoding (y < p, and
    not x = 0 with the sign bit set) of a point that is not of small order."""
    y = int.from_bytes(k, "little") & ((1 << 255) - 1)
    if y >= P25519:
        return False
    d = (-121665 * pow(121666, P25519 - 2, P25519)) % P25519
    x2 = (y * y - 1) * pow(d * y * y + 1, P25519 - 2, P25519) % P25519
    x = pow(x2, (P25519 + 3) // 8, P25519)
    if (x * x - x2) % P25519 != 0:
        x = x * pow(2, (P25519 - 1) // 4, P25519) % P25519
    if (x * x - x2) % P25519 != 0:
        return False
    if x == 0 and k[31] >> 7:
        return False
    # small order: [8]P is the neutral element (0, 1)
    return not ed_small_order(x if (x & 1) == (k[31] >> 7) else P25519 - x, y, d)


def ed_small_order(x, y, d):
    p = P25519
    for _ in range(3):  # three doublings (affine twisted Edwards, a = -1)
        x, y = (2 * x * y * pow(y * y - x * x, p - 2, p)) % p, \
               ((y * y + x * x) * pow(2 - y * y + x * x, p - 2, p)) % p
    return x == 0 and y == 1


def identity_encode(signing_seed, dh_secret):
    S = ed_pub(signing_seed)
    D = x25519_pub(dh_secret)
    return S + D + ed_sign(signing_seed, CTX_BINDING + S + D)


def identity_decode(b):
    if len(b) != 128:
        raise ValueError("Malformed(identity)")
    S, D, sig = b[:32], b[32:64], b[64:]
    if not ed25519_key_ok(S) or x25519_low_order(D):  # 4.1: keys before the binding
        raise ValueError("InvalidKey(identity)")
    if not ed_verify(S, sig, CTX_BINDING + S + D):
        raise ValueError("InvalidSignature(identity binding)")
    return S, D


def fingerprint(S, D):
    x = hashlib.sha512(b"sealpost/v1/fingerprint" + b"\x00\x01" + S + D).digest()
    for _ in range(5199):
        x = hashlib.sha512(x + S + D).digest()
    return "".join("%05d" % (int.from_bytes(x[5 * i:5 * i + 5], "big") % 100000)
                   for i in range(6))


def safety_number(id_a, id_b):
    fa = fingerprint(id_a[:32], id_a[32:64])
    fb = fingerprint(id_b[:32], id_b[32:64])
    pa, pb = (fa, bytes(id_a)), (fb, bytes(id_b))
    first, second = (pa, pb) if pa <= pb else (pb, pa)
    return first[0] + second[0]


# --------------------------------------------------------------------------
# bundles (5)

def bundle_decode(b):
    r = Reader(b, "prekey bundle")
    fmt = r.u8()
    if fmt != 1:
        raise ValueError("UnsupportedVersion(%d)" % fmt)
    ident = r.take(128)
    S, D = identity_decode(ident)
    versions = list(r.take(r.u8()))
    suites = list(r.take(r.u8()))
    spk_id = r.u32()
    spk_key = r.take(32)
    created = r.u64()
    pq_prekey = r.take(1184) if r.presence() else None  # 5.1: ML-KEM-768 key, signed
    if (2 in versions) != (pq_prekey is not None):
        raise ValueError("Malformed(prekey bundle): version 2 needs the ML-KEM prekey")
    signed_end = r.i
    sig = r.take(64)
    otk = None
    if r.presence():
        o = Reader(r.take(100), "one-time prekey")
        otk = {"id": o.u32(), "key": o.take(32), "signature": o.take(64)}
    r.end()
    for lst in (versions, suites):
        if not 1 <= len(lst) <= 32 or len(set(lst)) != len(lst):
            raise ValueError("Malformed(prekey bundle): list")
    # 5.4: every key before any signature
    if x25519_low_order(spk_key) or (otk is not None and x25519_low_order(otk["key"])):
        raise ValueError("InvalidKey(prekey bundle)")
    if pq_prekey is not None and not mlkem_ek_ok(pq_prekey):
        raise ValueError("InvalidKey(ML-KEM prekey)")
    if not ed_verify(S, sig, CTX_BUNDLE + b[:signed_end]):
        raise ValueError("InvalidSignature(bundle)")
    if otk is not None:
        if not ed_verify(S, otk["signature"], CTX_OTK + S + u32(otk["id"]) + otk["key"]):
            raise ValueError("InvalidSignature(one-time prekey)")
    return {"identity": ident, "versions": versions, "suites": suites,
            "spk_id": spk_id, "spk_key": spk_key, "spk_created_at": created, "pq_prekey": pq_prekey,
            "signature": sig, "otk": otk, "signed_part": b[:signed_end]}


def bundle_encode(seed, ident, versions, suites, spk_id, spk_key, created, otk, pq_prekey=None):
    signed = u8(1) + ident + vec8(bytes(versions)) + vec8(bytes(suites)) + \
        u32(spk_id) + spk_key + u64(created) + (u8(1) + pq_prekey if pq_prekey else u8(0))
    out = signed + ed_sign(seed, CTX_BUNDLE + signed)
    if otk is None:
        return out + b"\x00"
    oid, okey = otk
    osig = ed_sign(seed, CTX_OTK + ident[:32] + u32(oid) + okey)
    return out + b"\x01" + u32(oid) + okey + osig


# --------------------------------------------------------------------------
# envelopes (7)

RATCHET_HEADER_LEN = 100  # 7.2


def parse_ratchet_header(r):
    return {"ratchet_key": r.take(32), "epoch": r.u32(), "peer_epoch": r.u32(),
            "counter": r.u32(), "prev_count": r.u32(), "prev_ratchet_key": r.take(32),
            "prev_peer_epoch": r.u32(), "salt": r.take(16)}


def encode_ratchet_header(hd):
    out = hd["ratchet_key"] + u32(hd["epoch"]) + u32(hd["peer_epoch"]) + \
        u32(hd["counter"]) + u32(hd["prev_count"]) + hd["prev_ratchet_key"] + \
        u32(hd["prev_peer_epoch"]) + hd["salt"]
    assert len(out) == RATCHET_HEADER_LEN
    return out


def envelope_decode(b):
    r = Reader(b, "envelope")
    e = {"version": r.u8()}
    if e["version"] not in (1, 2):
        raise ValueError("UnsupportedVersion")
    e["type"] = r.u8()
    if e["type"] not in (1, 2, 3, 4):
        raise ValueError("Malformed(envelope type)")
    e["suite"] = r.u8()
    if e["suite"] not in (1, 2, 3, 4, 5):
        raise ValueError("UnsupportedSuite")
    t = e["type"]
    if t == 1:
        e["identity"] = r.take(128)
        identity_decode(e["identity"])
        n = r.u8()
        if not 1 <= n <= 32:
            raise ValueError("Malformed(prekey message)")
        e["initiator_suites"] = list(r.take(n))
        e["signed_prekey_id"] = r.u32()
        p = r.u8()
        if p not in (0, 1):
            raise ValueError("Malformed(prekey message)")
        e["one_time_prekey_id"] = r.u32() if p else None
        e["base_key"] = r.take(32)
        e["pq_ciphertext"] = r.take(1088) if e["version"] >= 2 else None  # 7.3
        e["header"] = parse_ratchet_header(r)
    elif t == 2:
        e["header"] = parse_ratchet_header(r)
    elif t in (3, 4):
        L = r.u8()
        if not 1 <= L <= 64:
            raise ValueError("Malformed(group id)")
        e["group_id"] = r.take(L)
        e["sender_key"] = r.take(32)
        e["iteration"] = r.u32()
        if t == 4:
            e["chain_key"] = r.take(32)
            e["owner_signature"] = r.take(64)
            e["chain_signed"] = b[:r.i]
            e["chain_signature"] = r.take(64)
            r.end()
            return e
        e["salt"] = r.take(16)
    e["header_bytes"] = b[:r.i]
    C = r.u32()
    e["ciphertext"] = r.take(C)
    if t == 3:
        e["signed_bytes"] = b[:r.i]
        e["signature"] = r.take(64)
    r.end()
    return e


def encode_prekey_header(suite, ident, suites_a, spk_id, otk_id, base_key, hd, version=1, pq_ct=None):
    return u8(version) + u8(1) + u8(suite) + ident + vec8(bytes(suites_a)) + u32(spk_id) + \
        (u8(1) + u32(otk_id) if otk_id is not None else u8(0)) + base_key + \
        (pq_ct if pq_ct else b"") + encode_ratchet_header(hd)


def encode_ratchet_env_header(suite, hd, version=1):
    return u8(version) + u8(2) + u8(suite) + encode_ratchet_header(hd)


# ==========================================================================
# check groups

def check_suites(c):
    d = load("suites.json")
    c.eq(len(d["vectors"]), 40, "vector count")
    for n, v in enumerate(d["vectors"]):
        s = v["suite"]
        tag = "suite %d vector %d" % (s, n)
        secret, salt, aad, pt = h(v["secret"]), h(v["salt"]), h(v["aad"]), h(v["plaintext"])
        ek, mk, nonce = suite_keys(s, secret, salt)
        c.eq(ek, h(v["enc_key"]), tag + " enc_key")
        c.eq(mk, h(v["mac_key"]), tag + " mac_key")
        c.eq(nonce, h(v["nonce"]), tag + " nonce")
        ct = h(v["ciphertext"])
        n_ = len(pt)
        want_len = n_ + 16 if s <= 3 else 16 * (n_ // 16 + 1) + 32
        c.eq(len(ct), want_len, tag + " ciphertext length")
        if s == 5:
            # tag over the stated MAC input, independent of the block cipher
            body = ct[:-32]
            c.eq(hmac256(mk, cbc_mac_input(s, aad, nonce, body)), ct[-32:], tag + " HMAC tag")
        c.eq(seal(s, secret, salt, aad, pt), ct, tag + " seal")
        try:
            c.eq(open_(s, secret, salt, aad, ct), pt, tag + " open")
        except AuthFailed:
            c.fail(tag + " open failed")
        # longer AAD, a flipped ciphertext bit: both must fail to open
        c.raises(lambda: open_(s, secret, salt, aad + b"x", ct), "AuthFailed",
                 tag + " open with wrong aad")
        flipped = ct[:-1] + bytes([ct[-1] ^ 1])
        c.raises(lambda: open_(s, secret, salt, aad, flipped), "AuthFailed",
                 tag + " open with a flipped tag bit")

    # our own primitives against published answers (a missing file fails)
    with open(TWOFISH_KAT) as f:
        tf_kats = json.load(f)["vectors"]
    c.check(len(tf_kats) > 0, "Twofish KAT file has vectors")
    for v in tf_kats:
        tf = Twofish256(h(v["key"]))
        c.eq(tf.encrypt_block(h(v["plaintext"])), h(v["ciphertext"]), "Twofish KAT " + v["name"])
        c.eq(tf.decrypt_block(h(v["ciphertext"])), h(v["plaintext"]), "Twofish KAT dec " + v["name"])
    # HChaCha20 test vector, draft-irtf-cfrg-xchacha-03 section 2.2.1
    c.eq(hchacha20(bytes(range(32)), h("000000090000004a0000000031415927")),
         h("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"), "HChaCha20 KAT")
    # XChaCha20-Poly1305, draft A.3.1
    xk = h("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
    xn = h("404142434445464748494a4b4c4d4e4f5051525354555657")
    xa = h("50515253c0c1c2c3c4c5c6c7")
    xp = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."
    xc = xchacha20poly1305_encrypt(xk, xn, xp, xa)
    c.eq(xc[-16:], h("c0875924c1c7987947deafd8780acf49"), "XChaCha20-Poly1305 KAT tag")


def check_kdf(c):
    d = load("kdf.json")
    for name, hx in LABEL_HEX.items():
        c.eq(LABEL[name].hex(), hx, "label bytes " + name)
    names = [v["name"] for v in d["hkdf"]]
    c.eq(names, ["suite-keys", "session-start", "ratchet-step", "pickle"], "hkdf entries")
    for v in d["hkdf"]:
        info = h(v["info"])
        c.check(info.startswith(LABEL[v["name"]]), "hkdf %s: info starts with label" % v["name"])
        okm = h(v["okm"])
        if v["name"] in EXPAND_ONLY:
            # 3.1: no extract step; the entry gives the PRK itself
            c.eq(sorted(v), ["info", "name", "okm", "prk"], "hkdf %s fields (Expand only)" % v["name"])
            c.eq(hkdf_expand(h(v["prk"]), info, len(okm)), okm, "hkdf-expand " + v["name"])
        else:
            c.eq(hkdf(h(v["salt"]), h(v["ikm"]), info, len(okm)), okm, "hkdf " + v["name"])
        if v["name"] == "suite-keys":  # 2.3: info = label || u8(suite) || salt
            ctx = info[len(LABEL["suite-keys"]):]
            suite, salt = ctx[0], ctx[1:]
            c.eq(len(salt), 16, "suite-keys salt length")
            ek, _mk, nonce = suite_keys(suite, h(v["prk"]), salt)
            c.eq(ek + nonce, okm, "suite-keys okm = enc_key || nonce (2.3)")
        if v["name"] == "ratchet-step":  # 9.2: u32 n, u32 m, two keys; CK(n,0) || R(n+1)
            c.eq(len(info) - len(LABEL["ratchet-step"]), 72, "ratchet-step context length")
            c.eq(len(okm), 64, "ratchet-step output length")
    for v in d["pbkdf2"]:
        salt = h(v["salt"])
        c.eq(len(salt), 16, "pbkdf2 salt length")
        key = pbkdf2(v["passphrase"].encode(), salt, v["iterations"])
        c.eq(key, h(v["key"]), "pbkdf2 %r" % v["passphrase"])
        c.eq(hashlib.pbkdf2_hmac("sha256", v["passphrase"].encode(), salt, v["iterations"], 32),
             h(v["key"]), "pbkdf2 (hashlib) %r" % v["passphrase"])


def check_identities(c):
    d = load("identities.json")
    encs = {}
    for who in ("alice", "bob"):
        v = d[who]
        seed, dh = h(v["signing_seed"]), h(v["dh_secret"])
        pub = h(v["public"])
        c.eq(len(pub), 128, who + " length")
        c.eq(pub[:32], ed_pub(seed), who + " signing_key")
        c.eq(pub[32:64], x25519_pub(dh), who + " dh_key")
        c.eq(identity_encode(seed, dh), pub, who + " encoding incl. binding signature")
        try:
            c.eq(identity_decode(pub), (pub[:32], pub[32:64]), who + " decode")
        except ValueError as e:
            c.fail("%s decode: %s" % (who, e))
        bad = bytearray(pub)
        bad[40] ^= 1
        c.raises(lambda: identity_decode(bytes(bad)), "InvalidSignature(identity binding)",
                 who + " decode with a changed dh_key")
        encs[who] = pub
    sn = safety_number(encs["alice"], encs["bob"])
    c.eq(sn, d["safety_number"], "safety number")
    c.eq(safety_number(encs["bob"], encs["alice"]), d["safety_number"], "safety number (swapped)")
    c.eq(len(sn), 60, "safety number length")


def check_bundles(c):
    d = load("bundles.json")
    seed, dh = h(d["identity_signing_seed"]), h(d["identity_dh_secret"])
    ident = h(d["identity_public"])
    c.eq(identity_encode(seed, dh), ident, "bundle identity encoding")
    spk = d["signed_prekey"]
    otk = d["one_time_prekey"]
    P = 1184 if d.get("pq_prekey") else 0
    for key, with_otk, length in (("bundle_without_one_time_prekey", False, 245 + P),
                                  ("bundle_with_one_time_prekey", True, 345 + P)):
        b = h(d[key])
        c.eq(len(b), length, key + " length")
        try:
            p = bundle_decode(b)
        except ValueError as e:
            c.fail("%s decode: %s" % (key, e))
            continue
        c.eq(p["identity"], ident, key + " identity")
        c.eq(p["versions"], d["versions"], key + " versions")
        c.eq(p["suites"], d["suites"], key + " suites")
        c.eq(p["spk_id"], spk["id"], key + " spk_id")
        c.eq(p["spk_key"], h(spk["key"]), key + " spk_key")
        c.eq(p["spk_created_at"], spk["created_at"], key + " spk_created_at")
        c.eq(len(p["signed_part"]), 175 + 1 + 3 + 1 + P, key + " signed part length")
        c.eq(p["signature"], ed_sign(seed, CTX_BUNDLE + p["signed_part"]), key + " signature bytes")
        if with_otk:
            c.check(p["otk"] is not None, key + " otk present")
            c.eq(p["otk"]["id"], otk["id"], key + " otk id")
            c.eq(p["otk"]["key"], h(otk["key"]), key + " otk key")
            c.eq(p["otk"]["signature"], h(otk["signature"]), key + " otk signature")
            c.eq(ed_sign(seed, CTX_OTK + ident[:32] + u32(otk["id"]) + h(otk["key"])),
                 h(otk["signature"]), key + " otk signature bytes")
        else:
            c.check(p["otk"] is None, key + " otk absent")
        pq = h(d["pq_prekey"]) if d.get("pq_prekey") else None
        c.eq(p["pq_prekey"], pq, key + " pq_prekey")
        enc = bundle_encode(seed, ident, d["versions"], d["suites"], spk["id"], h(spk["key"]),
                            spk["created_at"], (otk["id"], h(otk["key"])) if with_otk else None, pq)
        c.eq(enc, b, key + " re-encoding")
        # the bundle signature must not verify under another context
        c.check(not ed_verify(ident[:32], p["signature"], CTX_OTK + p["signed_part"]),
                key + " signature verified under a wrong context")
        # 2.1: nor under the old unprefixed rule (label directly followed by the body)
        c.check(not ed_verify(ident[:32], p["signature"], b"sealpost/v1/bundle" + p["signed_part"]),
                key + " signature verified without the context's length byte")
    # 4.1 / 5.4 / 8.2: a low-order signed prekey, a low-order identity key and
    # an ML-KEM key with a coefficient >= q are refused before any signature.
    wire = h(d["bundle_without_one_time_prekey"])
    spk_at = 1 + 128 + 1 + wire[129] + 1 + wire[130 + wire[129]] + 4
    for low in (bytes(32), bytes([1]) + bytes(31)):
        bad = wire[:spk_at] + low + wire[spk_at + 32:]
        c.eq(decode_error(bundle_decode, bad), "InvalidKey", "bundle with low-order signed prekey refused")
        bad = wire[:33] + low + wire[65:]
        c.eq(decode_error(bundle_decode, bad), "InvalidKey", "bundle with low-order identity key refused")
    pq_at = spk_at + 32 + 8 + 1
    c.eq(wire[pq_at - 1], 1, "bundle carries an ML-KEM prekey")
    bad = wire[:pq_at] + b"\xff\xff" + wire[pq_at + 2:]
    c.eq(decode_error(bundle_decode, bad), "InvalidKey", "bundle with ML-KEM coefficient >= q refused")


def decode_error(f, b):
    """The error kind ("InvalidKey", ...) a decoder raises, or None."""
    try:
        f(b)
        return None
    except ValueError as e:
        return str(e).split("(")[0]


def check_envelopes(c):
    d = load("envelopes.json")
    hdr_fields = ("ratchet_key", "prev_ratchet_key", "salt")
    for name, v in d.items():
        if name in ("description", "session_reset"):  # type 6: check_session_reset
            continue
        enc = h(v["encoding"])
        try:
            e = envelope_decode(enc)
        except ValueError as ex:
            c.fail("%s decode: %s" % (name, ex))
            continue
        for f in ("version", "type", "suite"):
            c.eq(e[f], v[f], "%s %s" % (name, f))
        for f in ("ciphertext", "identity", "base_key", "group_id", "sender_key", "chain_key",
                  "owner_signature", "chain_signature", "signature", "salt", "header_bytes",
                  "signed_bytes"):
            if f in v:
                c.eq(e.get(f), h(v[f]), "%s %s" % (name, f))
        for f in ("initiator_suites", "signed_prekey_id", "one_time_prekey_id", "iteration"):
            if f in v:
                c.eq(e.get(f), v[f], "%s %s" % (name, f))
        if "header" in v:
            for f, want in v["header"].items():
                got = e["header"][f]
                c.eq(got, h(want) if f in hdr_fields else want, "%s header.%s" % (name, f))
        # re-encode from the JSON fields and compare
        t = v["type"]
        if t == 1:
            pq_ct = h(v["pq_ciphertext"]) if v.get("pq_ciphertext") else None
            c.eq(e.get("pq_ciphertext"), pq_ct, name + " pq_ciphertext")
            hb = encode_prekey_header(v["suite"], h(v["identity"]), v["initiator_suites"],
                                      v["signed_prekey_id"], v["one_time_prekey_id"],
                                      h(v["base_key"]),
                                      {k: (h(x) if k in hdr_fields else x) for k, x in v["header"].items()},
                                      v["version"], pq_ct)
            N = len(v["initiator_suites"])
            K = 4 if v["one_time_prekey_id"] is not None else 0
            P = 1088 if pq_ct else 0
            c.eq(len(hb), 269 + N + K + P, name + " header length")
            c.eq(len(enc), 273 + N + K + P + len(h(v["ciphertext"])), name + " total length")
        elif t == 2:
            hb = encode_ratchet_env_header(v["suite"], {k: (h(x) if k in hdr_fields else x)
                                                        for k, x in v["header"].items()})
            c.eq(len(hb), 103, name + " header length")
            c.eq(len(enc), 107 + len(h(v["ciphertext"])), name + " total length")
        elif t == 3:
            gid = h(v["group_id"])
            hb = u8(1) + u8(3) + u8(v["suite"]) + vec8(gid) + h(v["sender_key"]) + \
                u32(v["iteration"]) + h(v["salt"])
            c.eq(len(hb), 56 + len(gid), name + " header length")
        else:
            gid = h(v["group_id"])
            re = u8(1) + u8(4) + u8(v["suite"]) + vec8(gid) + h(v["sender_key"]) + \
                u32(v["iteration"]) + h(v["chain_key"]) + h(v["owner_signature"]) + \
                h(v["chain_signature"])
            c.eq(re, enc, name + " re-encoding")
            c.eq(len(enc), 200 + len(gid), name + " length")
            continue
        c.eq(hb, h(v["header_bytes"]), name + " header_bytes re-encoded")
        ct = h(v["ciphertext"])
        full = hb + u32(len(ct)) + ct
        if t == 3:
            c.eq(full, h(v["signed_bytes"]), name + " signed_bytes re-encoded")
            full += h(v["signature"])
        c.eq(full, enc, name + " re-encoding")
    # Padme table of 7.7 (P for plaintext length n)
    table = {0: 1, 1: 2, 7: 8, 8: 10, 15: 16, 16: 18, 99: 104, 255: 256, 999: 1024,
             1024: 1088, 4096: 4352, 65535: 65536}
    for n, P in table.items():
        c.eq(len(pad_plaintext(bytes(n))), P, "Padme P for n=%d" % n)
        c.eq(unpad_plaintext(pad_plaintext(b"\x01" * n)), b"\x01" * n, "unpad n=%d" % n)
    # strict parsing spot checks
    rat = h(d["ratchet"]["encoding"])
    for bad, why, want in ((rat + b"\0", "trailing byte", "Malformed(envelope): trailing bytes"),
                           (rat[:-1], "truncated", "Malformed(envelope): truncated"),
                           (b"\x03" + rat[1:], "version 3", "UnsupportedVersion"),
                           (b"\x00" + rat[1:], "version 0", "UnsupportedVersion"),
                           (rat[:1] + b"\x05" + rat[2:], "type 5", "Malformed(envelope type)"),
                           (rat[:2] + b"\x06" + rat[3:], "suite 6", "UnsupportedSuite"),
                           (b"", "empty", "Malformed(envelope): truncated")):
        c.raises(lambda: envelope_decode(bad), want, "envelope with " + why)


RESET_MAX_AGE = 600


def session_reset_decode(b):
    """Parses and verifies a session reset (12B.1, 12B.2)."""
    r = Reader(b, "session reset")
    version, typ, zero = r.u8(), r.u8(), r.u8()
    if version != 1:
        raise ValueError("UnsupportedVersion")
    if typ != 6 or zero != 0:
        raise ValueError("Malformed(session reset)")
    frm, to = r.take(128), r.take(128)
    identity_decode(frm)
    identity_decode(to)
    sid, ts, nonce, sig = r.take(32), r.u64(), r.take(16), r.take(64)
    r.end()
    if not ed_verify(frm[:32], sig, CTX_RESET + b[:-64]):
        raise ValueError("InvalidSignature")
    return {"from": frm, "to": to, "session_id": sid, "timestamp": ts, "nonce": nonce,
            "signature": sig}


def session_reset_accept(b, own, peer, current, now):
    """The checks of 12B.3 steps 1 to 4 and 6 (steps 5 and 7 need memory)."""
    e = session_reset_decode(b)
    if e["from"] != peer:
        raise ValueError("InvalidSignature")
    if e["to"] != own:
        raise ValueError("Misdirected")
    if abs(e["timestamp"] - now) > RESET_MAX_AGE:
        raise ValueError("OutsideWindow")
    if e["session_id"] != bytes(32) and e["session_id"] != current:
        raise ValueError("Misdirected")
    return e


def check_session_reset(c):
    v = load("envelopes.json")["session_reset"]
    enc = h(v["encoding"])
    frm = identity_encode(h(v["from_signing_seed"]), h(v["from_dh_secret"]))
    to = identity_encode(h(v["to_signing_seed"]), h(v["to_dh_secret"]))
    c.eq(frm, h(v["from"]), "from identity from its secrets")
    c.eq(to, h(v["to"]), "to identity from its secrets")
    body = u8(1) + u8(6) + u8(0) + frm + to + h(v["session_id"]) + u64(v["timestamp"]) + h(v["nonce"])
    c.eq(body, h(v["signed_bytes"]), "signed bytes re-encoded")
    # Ed25519 is deterministic: the signature is reproduced from the seed.
    sig = ed_sign(h(v["from_signing_seed"]), CTX_RESET + body)
    c.eq(sig, h(v["signature"]), "signature reproduced")
    c.eq(body + sig, enc, "re-encoding")
    c.eq(len(enc), 379, "length")
    try:
        e = session_reset_decode(enc)
        for f in ("from", "to", "session_id", "nonce", "signature"):
            c.eq(e[f], h(v[f]), "decoded " + f)
        c.eq(e["timestamp"], v["timestamp"], "decoded timestamp")
    except ValueError as ex:
        c.fail("decode: %s" % ex)
    t, sid = v["timestamp"], h(v["session_id"])
    try:
        accepted = session_reset_accept(enc, to, frm, sid, t + RESET_MAX_AGE)
        c.eq((accepted["from"], accepted["to"], accepted["session_id"], accepted["nonce"]),
             (frm, to, sid, h(v["nonce"])), "accepted by its recipient for its session")
    except ValueError as ex:
        c.fail("accept: %s" % ex)
    other = identity_encode(bytes(range(32)), bytes(range(1, 33)))
    other_sid = bytes(32 - 1) + b"\x01"
    for args, want, why in (((enc, other, frm, sid, t), "Misdirected", "another recipient"),
                            ((enc, to, other, sid, t), "InvalidSignature", "another sender"),
                            ((enc, to, frm, other_sid, t), "Misdirected", "another session"),
                            ((enc, to, frm, None, t), "Misdirected", "no session"),
                            ((enc, to, frm, sid, t + RESET_MAX_AGE + 1), "OutsideWindow", "too late"),
                            ((enc, to, frm, sid, t - RESET_MAX_AGE - 1), "OutsideWindow", "too early"),
                            ((enc + b"\0", to, frm, sid, t), "Malformed(session reset): trailing bytes",
                             "trailing byte"),
                            ((enc[:-1], to, frm, sid, t), "Malformed(session reset): truncated", "truncated"),
                            ((b"\x02" + enc[1:], to, frm, sid, t), "UnsupportedVersion", "version 2")):
        c.raises(lambda a=args: session_reset_accept(*a), want, "reset refused: " + why)
    # Any flipped byte after the prefix breaks a signature (an identity's
    # binding or the reset's own).
    for i in range(3, len(enc)):
        bad = enc[:i] + bytes([enc[i] ^ 1]) + enc[i + 1:]
        want = "InvalidSignature(identity binding)" if i < 3 + 2 * 128 else "InvalidSignature"
        at = (i - 3) % 128
        if i < 3 + 2 * 128 and at < 32:
            # A changed signing key may stop being a valid Ed25519 key (4.1),
            # which is refused before any signature is looked at.
            start = i - at
            if not ed25519_key_ok(bad[start:start + 32]):
                want = "InvalidKey(identity)"
        c.raises(lambda b=bad: session_reset_decode(b), want, "reset with byte %d flipped" % i)


# --------------------------------------------------------------------------
# sessions (8, 9, 10) -- enough of the state machine to replay the
# conversation vector on both sides

class Draws:
    def __init__(self, items):
        self.items = [h(x) for x in items]
        self.i = 0

    def take(self, n):
        b = self.items[self.i]
        if len(b) != n:
            raise ValueError("draw %d has %d bytes, expected %d" % (self.i, len(b), n))
        self.i += 1
        return b

    def done(self):
        return self.i == len(self.items)


MAX_MESSAGES_PER_CHAIN = 1000
ROTATE_AFTER = 3600
MAX_SKIP_PER_CHAIN = 1000
ZERO32 = bytes(32)


class Refused(ValueError):
    """A session error of section 9/10 (Replay, OutsideWindow, TooManySkipped)."""


def ratchet_step(root, own_secret, peer_pub, n, m, sender_pub, receiver_pub, ikm=None):
    """9.2: one HKDF gives CK(n, 0) || R(n+1). The IKM is X25519(own, peer),
    except for the initiator's epoch 0, whose IKM is DH3 (8.5)."""
    if ikm is None:
        ikm = x25519(own_secret, peer_pub)
    okm = hkdf(root, ikm,
               LABEL["ratchet-step"] + u32(n) + u32(m) + sender_pub + receiver_pub, 64)
    return okm[:32], okm[32:]


def chain_step(ck):
    o = hkdf_expand(ck, LABEL["chain-step"], 64)
    return o[:32], o[32:]


def transcript(version, suite, id_a, id_b, suites_a, suites_b, spk_id, spk_pub, otk, base_key,
               pq=None):
    t = b"sealpost/v1/transcript" + u8(version) + u8(suite) + id_a + id_b + \
        vec8(bytes(suites_a)) + vec8(bytes(suites_b)) + u32(spk_id) + spk_pub
    t += (u8(1) + u32(otk[0]) + otk[1]) if otk is not None else u8(0)
    t += base_key
    if pq is not None:  # version 2: the ML-KEM encapsulation key, then the ciphertext
        t += pq[0] + pq[1]
    return hashlib.sha256(t).digest()


def mlkem_public(seed):
    """The ML-KEM-768 encapsulation key of a 64-byte seed (d || z, FIPS 203)."""
    key = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def mlkem_decapsulate(seed, ct):
    return mlkem.MLKEM768PrivateKey.from_seed_bytes(seed).decapsulate(ct)


def negotiate(ini, resp):
    for s in ini:
        if s in resp and 1 <= s <= 5:
            return s
    raise ValueError("NoCommonSuite")


class Session:
    """One party's view of a pairwise session (sections 8.5, 9)."""

    def __init__(self, role, suite, T, send_root, send_epoch, recv_root, recv_epoch,
                 own_secrets, peer_epoch, peer_key, pending=None, version=1, dh3=None):
        self.role = role
        # DH3 of the session start: the IKM of the initiator's epoch 0 (8.5)
        self.dh3 = dh3
        self.version = version
        self.suite = suite
        self.T = T
        self.next_send_root = send_root
        self.next_send_epoch = send_epoch
        self.sending = None   # dict epoch, peer_epoch, ck, counter, started_at, pub
        # the previous sending epoch: (message count, ratchet public, peer epoch)
        self.prev = (0, ZERO32, 0)
        self.own = dict(own_secrets)     # epoch -> secret (last 4 kept)
        self.peer_epoch = peer_epoch     # newest peer epoch
        self.peer_key = peer_key
        self.next_recv_root = recv_root
        self.next_recv_epoch = recv_epoch
        self.open = {}                   # epoch -> dict key, ck, next
        self.closed = {}                 # epoch -> end (one past the last counter)
        self.skipped = {}                # (epoch, counter) -> (peer key, secret)
        self.pending = pending           # initiator's prekey fields until a reply opens

    # ---- sending (9.3, 9.4)
    def _new_epoch(self, draws, now, ikm=None):
        secret = draws.take(32)
        n = self.next_send_epoch
        pub = x25519_pub(secret)
        ck, next_root = ratchet_step(self.next_send_root, secret, self.peer_key, n,
                                     self.peer_epoch, pub, self.peer_key, ikm)
        if self.sending is not None:
            s = self.sending
            self.prev = (s["counter"], s["pub"], s["peer_epoch"])
        self.sending = {"epoch": n, "peer_epoch": self.peer_epoch, "ck": ck, "counter": 0,
                        "started_at": now, "pub": pub}
        self.own[n] = secret
        for e in sorted(self.own)[:-4]:
            del self.own[e]
        self.next_send_root = next_root
        self.next_send_epoch = n + 1

    def encrypt(self, pt, draws, now):
        s = self.sending
        if (s is None or self.peer_epoch != s["peer_epoch"]
                or s["counter"] >= MAX_MESSAGES_PER_CHAIN
                or now - s["started_at"] >= ROTATE_AFTER):
            self._new_epoch(draws, now)
            s = self.sending
        secret, s["ck"] = chain_step(s["ck"])
        salt = draws.take(16)
        pc, pk, pe = self.prev
        hd = {"ratchet_key": s["pub"], "epoch": s["epoch"], "peer_epoch": s["peer_epoch"],
              "counter": s["counter"], "prev_count": pc, "prev_ratchet_key": pk,
              "prev_peer_epoch": pe, "salt": salt}
        s["counter"] += 1
        if self.pending is not None:
            p = self.pending
            hb = encode_prekey_header(self.suite, p["identity"], p["suites_a"], p["spk_id"],
                                      p["otk_id"], p["base_key"], hd, self.version, p.get("pq_ct"))
        else:
            hb = encode_ratchet_env_header(self.suite, hd, self.version)
        ct = seal(self.suite, secret, salt, self.T + hb, pad_plaintext(pt))
        return hb + u32(len(ct)) + ct

    def _own(self, epoch):
        if epoch not in self.own:
            raise Refused("OutsideWindow")
        own = self.own[epoch]
        return own, x25519_pub(own)

    def _epoch_ikm(self, epoch):
        """8.5: the responder derives the initiator's epoch 0 from DH3."""
        return self.dh3 if (epoch == 0 and self.role == "responder") else None

    # ---- receiving (9.5); state changes only after a successful open
    def decrypt(self, env):
        if env["suite"] != self.suite:
            raise AuthFailed()
        hd = env["header"]
        P, n, m, i, k = hd["ratchet_key"], hd["epoch"], hd["peer_epoch"], hd["counter"], hd["prev_count"]
        changes = {"skipped_add": {}, "skipped_del": None, "closed_add": {}}
        e = self.next_recv_epoch
        if (n, i) in self.skipped:                       # step 1
            key, secret = self.skipped[(n, i)]
            if key != P:
                raise AuthFailed()
            changes["skipped_del"] = (n, i)
            chain = None
        else:
            if n in self.open:                           # step 2
                ch = dict(self.open[n])
                if ch["key"] != P:
                    raise AuthFailed()
                if i < ch["next"]:
                    raise Refused("Replay")
            elif n == e or n == e + 1:                   # step 3
                root = self.next_recv_root
                if n == e + 1:
                    # the sender's whole epoch e was missed: derive it from the
                    # header's prev_* fields and keep its prev_count keys
                    PK, pm = hd["prev_ratchet_key"], hd["prev_peer_epoch"]
                    if PK == ZERO32:
                        raise AuthFailed()
                    own, own_pub = self._own(pm)
                    ck_e, root = ratchet_step(root, own, PK, e, pm, PK, own_pub, self._epoch_ikm(e))
                    # at most max_skip_per_chain keys are kept (a cap, not an error)
                    for j in range(min(k, MAX_SKIP_PER_CHAIN)):
                        sk, ck_e = chain_step(ck_e)
                        changes["skipped_add"][(e, j)] = (PK, sk)
                    changes["closed_add"][e] = k
                own, own_pub = self._own(m)
                ck, next_root = ratchet_step(root, own, P, n, m, P, own_pub, self._epoch_ikm(n))
                ch = {"key": P, "ck": ck, "next": 0}
                changes["new_epoch"] = (n + 1, next_root)
            elif n > e + 1:
                raise Refused("TooManySkipped")
            elif n in self.closed and i < self.closed[n]:
                raise Refused("Replay")
            else:
                raise Refused("OutsideWindow")
            if i - ch["next"] > MAX_SKIP_PER_CHAIN:
                raise Refused("TooManySkipped")
            ck = ch["ck"]
            for j in range(ch["next"], i):
                sk, ck = chain_step(ck)
                changes["skipped_add"][(n, j)] = (P, sk)
            secret, ck = chain_step(ck)
            chain = {"key": P, "ck": ck, "next": i + 1}
        aad = self.T + env["header_bytes"]
        padded = open_(self.suite, secret, hd["salt"], aad, env["ciphertext"])
        pt = unpad_plaintext(padded)
        # ---- apply
        if changes["skipped_del"] is not None:
            del self.skipped[changes["skipped_del"]]
        self.skipped.update(changes["skipped_add"])
        self.closed.update(changes["closed_add"])
        if chain is not None:
            self.open[n] = chain
        if "new_epoch" in changes:
            self.next_recv_epoch, self.next_recv_root = changes["new_epoch"]
        if n >= self.peer_epoch and (n > self.peer_epoch or self.peer_key != P):
            self.peer_epoch, self.peer_key = n, P
        if (n - 1) in self.open and n >= 1:
            prev = self.open.pop(n - 1)
            ck = prev["ck"]
            for j in range(prev["next"], min(k, prev["next"] + MAX_SKIP_PER_CHAIN)):
                sk, ck = chain_step(ck)
                self.skipped[(n - 1, j)] = (prev["key"], sk)
            self.closed[n - 1] = max(min(k, prev["next"] + MAX_SKIP_PER_CHAIN), prev["next"])
        if self.role == "initiator":
            self.pending = None
        return pt


def check_conversation(c):
    d = load("conversation.json")
    policy = d["policy_suites"]
    steps = d["steps"]
    st = {s["step"]: s for s in steps if s["step"] in ("bob_account", "alice_account", "alice_initiates")}

    # --- Bob's account. Draw order (not stated by the spec, our reading):
    # signing seed, X25519 identity secret, signed prekey secret, then one
    # secret per one-time prekey. Each signed prekey is an X25519 secret
    # followed by a 64-byte ML-KEM-768 seed.
    bob = Draws(st["bob_account"]["draws"])
    b_seed, b_dh, b_spk, b_pq = bob.take(32), bob.take(32), bob.take(32), bob.take(64)
    b_otks = [bob.take(32) for _ in range(st["bob_account"]["one_time_prekeys"])]
    c.check(bob.done(), "bob_account: unused draws")
    b_ident = identity_encode(b_seed, b_dh)
    bundle_bytes = h(st["bob_account"]["bundle"])
    bundle = bundle_decode(bundle_bytes)
    c.eq(bundle["identity"], b_ident, "bob identity from draws")
    c.eq(bundle["spk_key"], x25519_pub(b_spk), "bob signed prekey from draws")
    c.eq(bundle["spk_id"], 1, "signed prekey id = 1 (first counter value)")
    c.eq(bundle["spk_created_at"], st["bob_account"]["time"], "signed prekey created_at = time")
    c.check(bundle["otk"] is not None, "bundle carries a one-time prekey")
    c.eq(bundle["otk"]["key"], x25519_pub(b_otks[0]), "bob one-time prekey from draws")
    c.eq(bundle["otk"]["id"], 2, "one-time prekey id = 2 (counter)")
    c.eq(bundle["suites"], policy, "bundle suites = policy")
    b_pq_pub = mlkem_public(b_pq) if 2 in bundle["versions"] else None
    c.eq(bundle["pq_prekey"], b_pq_pub, "bob ML-KEM prekey from draws")
    c.eq(bundle_encode(b_seed, b_ident, bundle["versions"], bundle["suites"], 1,
                       x25519_pub(b_spk), bundle["spk_created_at"],
                       (2, x25519_pub(b_otks[0])), b_pq_pub), bundle_bytes,
         "bundle re-encoded from draws")

    # --- Alice's account: seed, X25519 identity secret, signed prekey
    # (her account makes one even though this conversation never uses it).
    al = Draws(st["alice_account"]["draws"])
    a_seed, a_dh, a_spk, _a_pq = al.take(32), al.take(32), al.take(32), al.take(64)
    a_ident = identity_encode(a_seed, a_dh)
    c.eq(a_ident, h(st["alice_account"]["identity"]), "alice identity from draws")
    c.check(al.done(), "alice_account: unused draws")

    # --- Alice initiates (8.2 to 8.5): EK_A, in version 2 the ML-KEM
    # randomness m, then her epoch-0 ratchet secret RK_0 (8.8).
    ini = Draws(st["alice_initiates"]["draws"])
    ek = ini.take(32)
    base_key = x25519_pub(ek)
    version = max(v for v in bundle["versions"] if v in (1, 2))
    suite = negotiate(policy, bundle["suites"])
    otk = (bundle["otk"]["id"], bundle["otk"]["key"])
    dh1 = x25519(a_dh, bundle["spk_key"])
    dh2 = x25519(ek, b_ident[32:64])
    dh3 = x25519(ek, bundle["spk_key"])
    dh4 = x25519(ek, otk[1])
    pq, ss = None, b""
    if version == 2:
        # 8.2: the second draw is the ML-KEM encapsulation randomness m. The
        # ciphertext cannot be recomputed without an ML-KEM implementation
        # that takes m (OpenSSL does not), so it is taken from the first
        # prekey message; the shared secret must then be both what Bob's
        # seed decapsulates and K of FIPS 203 (K, r) = G(m || H(ek)).
        m = ini.take(32)
        first = next(s for s in steps if s["step"] == "send" and s["type"] == "prekey")
        pq_ct = envelope_decode(h(first["envelope"]))["pq_ciphertext"]
        ss = mlkem_decapsulate(b_pq, pq_ct)
        g = hashlib.sha3_512(m + hashlib.sha3_256(bundle["pq_prekey"]).digest()).digest()
        c.eq(g[:32], ss, "ML-KEM shared secret from m (FIPS 203 G) = decapsulated")
        pq = (bundle["pq_prekey"], pq_ct)
    T_a = transcript(version, suite, a_ident, b_ident, policy, bundle["suites"],
                     bundle["spk_id"], bundle["spk_key"], otk, base_key, pq)
    okm = hkdf(bytes(32), b"\xff" * 32 + dh1 + dh2 + dh3 + dh4 + ss,
               LABEL["session-start"] + T_a, 64)
    r_ab0, r_ba0 = okm[:32], okm[32:]
    alice = Session("initiator", suite, T_a, send_root=r_ab0, send_epoch=0,
                    recv_root=r_ba0, recv_epoch=1, own_secrets={},
                    peer_epoch=0, peer_key=bundle["spk_key"],
                    pending={"identity": a_ident, "suites_a": policy, "spk_id": bundle["spk_id"],
                             "otk_id": otk[0], "base_key": base_key,
                             "pq_ct": pq[1] if pq else None},
                    version=version)
    # 8.5: the start itself begins Alice's epoch 0 with a fresh RK_0, IKM = DH3.
    alice._new_epoch(ini, st["alice_initiates"]["time"], ikm=dh3)
    c.eq(alice.next_send_epoch, 1, "the start begins the initiator's epoch 0")
    c.check(ini.done(), "alice_initiates: unused draws")

    sess = {"alice": alice, "bob": None}
    missed_epoch_path = [0]
    envs = {}
    plains = {}
    for s in steps:
        kind = s["step"]
        if kind == "send":
            who, idx = s["from"], s["index"]
            env = h(s["envelope"])
            envs[idx] = env
            plains[idx] = h(s["plaintext"])
            e = envelope_decode(env)
            c.eq(e["type"], 1 if s["type"] == "prekey" else 2, "msg %d type" % idx)
            # re-seal with keys reconstructed from the draws
            dr = Draws(s["draws"])
            try:
                out = sess[who].encrypt(h(s["plaintext"]), dr, s["time"])
                c.eq(out, env, "msg %d (%s) re-encrypted envelope" % (idx, who))
                c.check(dr.done(), "msg %d: unused draws" % idx)
            except Exception as ex:
                c.fail("msg %d encrypt: %r" % (idx, ex))
        elif kind == "accept":
            # --- Bob accepts the prekey message (8.6)
            idx = s["index"]
            e = envelope_decode(envs[idx])
            c.eq(e["identity"], a_ident, "prekey identity")
            c.eq(e["base_key"], base_key, "prekey base_key")
            b_suite = negotiate(e["initiator_suites"], policy)
            c.eq(b_suite, e["suite"], "responder negotiation = envelope suite")
            c.eq(e["signed_prekey_id"], 1, "prekey spk id")
            c.eq(e["one_time_prekey_id"], 2, "prekey otk id")
            ia_dh = e["identity"][32:64]
            d1 = x25519(b_spk, ia_dh)
            d2 = x25519(b_dh, e["base_key"])
            d3 = x25519(b_spk, e["base_key"])
            d4 = x25519(b_otks[0], e["base_key"])
            c.eq((d1, d2, d3, d4), (dh1, dh2, dh3, dh4), "DH outputs agree")
            pq_b, ss_b = None, b""
            if e["version"] == 2:
                ss_b = mlkem_decapsulate(b_pq, e["pq_ciphertext"])
                pq_b = (mlkem_public(b_pq), e["pq_ciphertext"])
            c.eq(e["version"], version, "prekey message version = negotiated")
            T_b = transcript(e["version"], e["suite"], e["identity"], b_ident,
                             e["initiator_suites"], policy, e["signed_prekey_id"],
                             x25519_pub(b_spk), (e["one_time_prekey_id"], x25519_pub(b_otks[0])),
                             e["base_key"], pq_b)
            c.eq(T_b, T_a, "transcript hash agrees")
            okm_b = hkdf(bytes(32), b"\xff" * 32 + d1 + d2 + d3 + d4 + ss_b,
                         LABEL["session-start"] + T_b, 64)
            bob_s = Session("responder", e["suite"], T_b, send_root=okm_b[32:],
                            send_epoch=1, recv_root=okm_b[:32], recv_epoch=0,
                            own_secrets={0: b_spk}, peer_epoch=0, peer_key=None,
                            version=e["version"], dh3=d3)
            try:
                pt = bob_s.decrypt(e)
                c.eq(pt, h(s["plaintext"]), "msg %d accepted and decrypted by bob" % idx)
                c.eq(pt, plains[idx], "msg %d plaintext = sent" % idx)
                sess["bob"] = bob_s
            except Exception as ex:
                c.fail("msg %d accept: %r" % (idx, ex))
        elif kind == "deliver":
            idx, to = s["index"], s["to"]
            e = envelope_decode(envs[idx])
            hd = e["header"]
            if hd["epoch"] == sess[to].next_recv_epoch + 1:
                missed_epoch_path[0] += 1
                # an all-zero prev_ratchet_key, or one epoch further, is refused
                # before anything is derived, and leaves the session unchanged
                for field, val, want in (("prev_ratchet_key", ZERO32, "AuthFailed"),
                                         ("epoch", hd["epoch"] + 1, "TooManySkipped")):
                    bad = dict(e, header=dict(hd, **{field: val}))
                    c.raises(lambda: sess[to].decrypt(bad), want,
                             "msg %d with %s=%r" % (idx, field, val))
            try:
                pt = sess[to].decrypt(e)
                c.eq(pt, h(s["plaintext"]), "msg %d decrypted by %s" % (idx, to))
                c.eq(pt, plains[idx], "msg %d plaintext = sent" % idx)
            except Exception as ex:
                c.fail("msg %d deliver to %s: %r" % (idx, to, ex))
            # a second delivery must not open: Replay (9.5, 10)
            c.raises(lambda: sess[to].decrypt(e), "Replay", "msg %d second delivery" % idx)
    c.eq(sorted(envs), list(range(11)), "11 messages")
    c.check(missed_epoch_path[0] >= 1, "conversation exercises the missed-epoch path (9.5 step 3)")
    c.eq(safety_number(a_ident, b_ident), d["safety_number"], "conversation safety number")
    # session_id: not defined in PROTOCOL.md; our best guess is T.
    c.eq(T_a, h(d["session_id"]), "session_id (assumed = transcript hash T)")


def group_chain_step(ck):
    """12.1: secret_i || CK_{i+1} = HKDF-Expand(CK_i, group-chain-step, 64)."""
    o = hkdf_expand(ck, LABEL["group-chain-step"], 64)
    return o[:32], o[32:]


def check_group(c):
    d = load("group.json")
    gid, suite = h(d["group_id"]), d["suite"]
    members = {}  # name -> identity signing key, sender key, chain key, next position
    by_sender_key = {}
    sends = 0
    for s in d["steps"]:
        if s["step"] == "member":
            name, draws = s["name"], [h(x) for x in s["draws"]]
            c.eq(len(draws), 4, name + " draws: identity seed, X25519 secret, chain seed, chain key")
            ident = h(s["identity"])
            c.eq(identity_encode(draws[0], draws[1]), ident, name + " identity from its draws")
            S, _ = identity_decode(ident)
            raw = h(s["distribution"])
            e = envelope_decode(raw)
            c.eq((e["version"], e["type"], e["suite"]), (1, 4, suite), name + " distribution prefix")
            c.eq(e["group_id"], gid, name + " distribution group id")
            c.eq(len(raw), 200 + len(gid), name + " distribution length (7.6)")
            c.eq(e["sender_key"], ed_pub(draws[2]), name + " sender key from its chain seed")
            c.eq(e["chain_key"], draws[3], name + " chain key from its draws")
            c.eq(e["iteration"], 0, name + " distribution at position 0")
            owned = CTX_OWNER + vec8(gid) + e["sender_key"]
            c.check(ed_verify(S, e["owner_signature"], owned),
                    name + " owner_signature verifies under the identity key (7.6)")
            c.eq(e["owner_signature"], ed_sign(draws[0], owned),
                 name + " owner_signature = Ed25519(identity seed) (deterministic)")
            chained = CTX_DISTRIBUTION + S + e["chain_signed"]
            c.eq(len(e["chain_signed"]), 136 + len(gid), name + " chain-signed bytes [0, 136+L)")
            c.check(ed_verify(e["sender_key"], e["chain_signature"], chained),
                    name + " chain_signature verifies under the sender key (7.6)")
            c.eq(e["chain_signature"], ed_sign(draws[2], chained),
                 name + " chain_signature = Ed25519(chain seed) (deterministic)")
            # the owner signature is the identity's, not the sender key's
            c.check(not ed_verify(e["sender_key"], e["owner_signature"], owned),
                    name + " owner_signature does not verify under the sender key")
            for other, m in members.items():
                c.check(not ed_verify(m["S"], e["owner_signature"], owned),
                        "%s owner_signature does not verify for %s" % (name, other))
                c.check(not ed_verify(e["sender_key"], e["chain_signature"],
                                      CTX_DISTRIBUTION + m["S"] + e["chain_signed"]),
                        "%s chain_signature does not name %s" % (name, other))
            members[name] = {"S": S, "sender_key": e["sender_key"], "ck": e["chain_key"], "next": 0}
            by_sender_key[e["sender_key"]] = name
        elif s["step"] == "send":
            raw = h(s["envelope"])
            e = envelope_decode(raw)
            c.eq((e["version"], e["type"], e["suite"]), (1, 3, suite), "send prefix")
            c.eq(e["group_id"], gid, "send group id")
            who = by_sender_key.get(e["sender_key"])
            c.eq(who, s["from"], "message's sender key is its sender's chain")
            if who is None:
                continue
            m = members[who]
            c.check(ed_verify(e["sender_key"], e["signature"], CTX_GROUP + e["signed_bytes"]),
                    "message %d signature (12.2)" % sends)
            c.check(not ed_verify(e["sender_key"], e["signature"], e["signed_bytes"]),
                    "message %d signature needs its context" % sends)
            c.eq(e["iteration"], m["next"], "message %d position" % sends)
            c.eq(e["salt"], h(s["draws"][0]), "message %d salt is its draw" % sends)
            secret, m["ck"] = group_chain_step(m["ck"])
            m["next"] += 1
            pt = unpad_plaintext(open_(suite, secret, e["salt"], e["header_bytes"], e["ciphertext"]))
            c.eq(pt, h(s["plaintext"]), "message %d decrypts (12.1, 2.3, 7.7)" % sends)
            c.eq(seal(suite, secret, e["salt"], e["header_bytes"], pad_plaintext(pt)), e["ciphertext"],
                 "message %d re-seals byte for byte (Padme)" % sends)
            bad = bytearray(e["ciphertext"])
            bad[0] ^= 1
            try:
                open_(suite, secret, e["salt"], e["header_bytes"], bytes(bad))
                refused = False
            except AuthFailed:
                refused = True
            c.check(refused, "message %d refused with a changed ciphertext" % sends)
            sends += 1
        else:
            c.check(False, "unknown group step %r" % s["step"])
    c.eq(len(members), 3, "group members")
    c.eq(sends, 4, "group messages")


def main():
    global VECTORS
    if len(sys.argv) > 2:
        sys.exit("usage: verify.py [VECTOR_DIR]")
    if len(sys.argv) == 2:
        VECTORS = os.path.abspath(sys.argv[1])
    missing = [n for n in EXPECTED_FILES if not os.path.isfile(os.path.join(VECTORS, n))]
    if not os.path.isfile(TWOFISH_KAT):
        missing.append(TWOFISH_KAT)
    for n in missing:
        print("missing vector file: %s" % n)
    # A check of a constant proves nothing: none may be counted.
    placeholder = re.compile(r"\bc\.check\(\s*(True|1)\s*,")
    with open(os.path.abspath(__file__)) as f:
        placeholders = [i for i, line in enumerate(f, 1) if placeholder.search(line)]
    if placeholders:
        sys.exit("verify.py: checks of a constant at lines %s" % placeholders)
    c = Checker()
    c.group("suites.json", check_suites)
    c.group("kdf.json", check_kdf)
    c.group("identities", check_identities)
    c.group("bundles.json", check_bundles)
    c.group("envelopes", check_envelopes)
    c.group("session reset", check_session_reset)
    c.group("conversation", check_conversation)
    c.group("group.json", check_group)
    c.failed += len(missing)
    if c.passed + c.failed == 0:
        print("verify.py ran no check")
        c.failed += 1
    print("verify.py: %d passed, %d failed" % (c.passed, c.failed))
    sys.exit(1 if c.failed else 0)


if __name__ == "__main__":
    main()
