#!/usr/bin/env python3
"""Seeds each fuzz target's corpus from test-vectors/ (idempotent).

  python3 fuzz/make_seeds.py [CORPUS_DIR]   (default fuzz/corpus)
"""
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "test-vectors")
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")


def load(name):
    with open(os.path.join(VECTORS, name)) as f:
        return json.load(f)


def put(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


envelopes = load("envelopes.json")
for name, v in envelopes.items():
    if isinstance(v, dict) and "encoding" in v:
        put("envelope_decode", bytes.fromhex(v["encoding"]))
        put("session_decrypt", bytes.fromhex(v["encoding"]))
        put("group_decrypt", bytes.fromhex(v["encoding"]))
for step in load("conversation.json")["steps"]:
    if "envelope" in step:
        e = bytes.fromhex(step["envelope"])
        put("envelope_decode", e)
        put("session_decrypt", e)
        put("session_decrypt", bytes([len(e) % 4]) + bytes(6))
for step in load("group.json")["steps"]:
    for field in ("envelope", "distribution"):
        if field in step:
            e = bytes.fromhex(step[field])
            put("envelope_decode", e)
            put("group_decrypt", e)
# session_reset: the reset vector as is (any-bytes path), and short
# (index, xor) lists for the mutation path.
reset = bytes.fromhex(envelopes["session_reset"]["encoding"])
put("session_reset", reset)
put("session_reset", reset[:-1])
put("session_reset", b"\x00\x05\x01")
put("session_reset", b"\x01\x7b\x00")
put("session_reset", b"\x01\x7a\x80\x00\x40\x02")
# room_payload: a mode byte (see the target), then a room payload (12.5),
# edits, or an envelope. The room is "lobby".
room = b"\x05lobby"
put("room_payload", b"\x00\x01" + room + b"hello")
put("room_payload", b"\x03\x01" + room + b"hello")
put("room_payload", b"\x01")
put("room_payload", b"\x01\x00\x05\x01")
put("room_payload", b"\x00\x03" + room)
for step in load("group.json")["steps"]:
    for field in ("envelope", "distribution"):
        if field in step:
            e = bytes.fromhex(step[field])
            put("room_payload", b"\x02" + e)
            if field == "distribution":
                put("room_payload", b"\x00\x02" + room + e)
                put("room_payload", b"\x03\x02" + room + e)
skd = bytes.fromhex(envelopes["sender_key_distribution"]["encoding"])
put("room_payload", b"\x00\x02" + room + skd)
bundles = load("bundles.json")
for field in ("bundle_without_one_time_prekey", "bundle_with_one_time_prekey", "identity_public"):
    put("bundle_decode", bytes.fromhex(bundles[field]))
for v in load("suites.json")["vectors"][:10]:
    put("suite_differential", bytes.fromhex(v["secret"]) + bytes([v["suite"] - 1, 5]) + bytes.fromhex(v["plaintext"]))
put("pickle_restore", b"\x01\x02\x01" + bytes(64))
for route, body in [
    (0, {"bundle": "AQ"}),
    (1, {"prekeys": ["AAAA"]}),
    (2, {"recipients": ["A" * 43], "envelope": "AQID"}),
    (3, {"ids": [1, 2]}),
    (4, {"handle": "alice"}),
    (5, {"handle": "+4930123456", "code": "123456"}),
    (6, {}),
]:
    put("relay_request", bytes([route]) + json.dumps(body).encode())
put("relay_request", b"\x00Sealpost key=AAAA,ts=1,nonce=AAAA,sig=AAAA")
put("relay_request", b"\x02SealpostSession id=AAAAAAAAAAAAAAAAAAAAAA,seq=1,mac=" + b"A" * 43)
for name in ("from_python.json", "from_sealpost.json"):
    for v in load(os.path.join("rsa", name))["vectors"]:
        m = bytes.fromhex(v["message"])
        w = int.from_bytes(m[3:5], "big")
        c = int.from_bytes(m[21 + w : 25 + w], "big")
        unsigned = m[: 27 + w + c]
        put("rsa_message", b"\x00" + m)
        put("rsa_message", b"\x02" + unsigned)
put("rsa_message", b"\x01")
put("rsa_message", b"\x01\x00\x10\x01\x01\x20\x80")
