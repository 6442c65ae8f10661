#!/usr/bin/env python3
"""Prints criterion results (median and its 95% interval) and the ratios
docs/PERFORMANCE.md reports. Run after `cargo bench -p sealpost-benches`."""
import json
import os
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "target", "criterion")


def load():
    out = {}
    for dirpath, _, files in os.walk(ROOT):
        if os.path.basename(dirpath) == "new" and "estimates.json" in files and "benchmark.json" in files:
            with open(os.path.join(dirpath, "benchmark.json")) as f:
                bench = json.load(f)
            with open(os.path.join(dirpath, "estimates.json")) as f:
                est = json.load(f)
            m = est["median"]
            out[bench["full_id"]] = (m["point_estimate"], m["confidence_interval"]["lower_bound"], m["confidence_interval"]["upper_bound"])
    return out


def fmt(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


r = load()
if not r:
    sys.exit("no criterion results under " + ROOT)
print("| benchmark | median | 95% interval |")
print("|---|---|---|")
for k in sorted(r):
    m, lo, hi = r[k]
    print(f"| {k} | {fmt(m)} | {fmt(lo)} – {fmt(hi)} |")


def ratio(name, num, den, goal=None):
    """den / num: how many times faster `num` (Sealpost) is than `den`."""
    if num in r and den in r:
        value = r[den][0] / r[num][0]
        verdict = "" if goal is None else (f" (goal >= {goal}x: {'met' if value >= goal else 'NOT met'})")
        print(f"| {name} | {value:.2f}x{verdict} |")


print()
print("| ratio (how many times faster Sealpost is; above 1 is better) | value |")
print("|---|---|")
S, V = "session_start/", "session_start/vodozemac/"
for version, prefix, goal in [("classical v1", "sealpost-classical", 1.0), ("hybrid v2", "sealpost", 0.8)]:
    ratio(f"session creation, initiator and first 1 KiB message, {version}, vs vodozemac", f"{S}{prefix}/initiator, first message", f"{V}initiator, first message", goal)
    ratio(f"session creation, responder (accepts and opens the first 1 KiB message), {version}, vs vodozemac", f"{S}{prefix}/responder", f"{V}responder", goal)
    ratio(f"session creation, initiator alone (no message), {version}, vs vodozemac", f"{S}{prefix}/initiator", f"{V}initiator")
ratio("steady 1 KiB round trip vs vodozemac", "round_trip_1k/sealpost/steady", "round_trip_1k/vodozemac/steady", 5.0)
ratio("alternating 1 KiB round trip vs vodozemac", "round_trip_1k/sealpost/alternating", "round_trip_1k/vodozemac/alternating", 1.3)
ratio("AES-256-GCM seal 16 KiB, RustCrypto raw vs ring", "raw/rustcrypto/aes-256-gcm seal/16384", "raw/ring/aes-256-gcm seal/16384")
ratio("ChaCha20-Poly1305 seal 1 KiB, RustCrypto raw vs ring", "raw/rustcrypto/chacha20-poly1305 seal/1024", "raw/ring/chacha20-poly1305 seal/1024")
ratio("AES-256-GCM suite seal 16 KiB vs ring", "suite/AES-256-GCM/seal/16384", "raw/ring/aes-256-gcm seal/16384")
ratio("ChaCha20-Poly1305 suite seal 1 KiB vs ring", "suite/ChaCha20-Poly1305/seal/1024", "raw/ring/chacha20-poly1305 seal/1024")
ratio("pickle restore vs vodozemac", "pickle/sealpost/session restore", "pickle/vodozemac/session restore")
ratio("pickle vs vodozemac", "pickle/sealpost/session pickle", "pickle/vodozemac/session pickle")


def overhead(name, num, den):
    """num / den: how many times `den` (the floor or the raw primitive) `num` costs."""
    if num in r and den in r:
        print(f"| {name} | {r[num][0] / r[den][0]:.2f}x (lower is better) |")


FLOOR = "x25519/round-trip floor"
overhead("Sealpost alternating round trip / X25519 floor (2 key generations, 4 Diffie-Hellmans)", "round_trip_1k/sealpost/alternating", FLOOR)
overhead("vodozemac alternating round trip / X25519 floor", "round_trip_1k/vodozemac/alternating", FLOOR)
overhead("X25519 Diffie-Hellman / key generation", "x25519/diffie-hellman", "x25519/key generation")
overhead("protocol overhead at 16 KiB: AES-256-GCM suite seal / ring raw seal", "suite/AES-256-GCM/seal/16384", "raw/ring/aes-256-gcm seal/16384")
overhead("protocol overhead at 16 KiB: ChaCha20-Poly1305 suite seal / ring raw seal", "suite/ChaCha20-Poly1305/seal/16384", "raw/ring/chacha20-poly1305 seal/16384")
overhead("protocol overhead at 16 KiB, portable: XChaCha20-Poly1305 suite seal / RustCrypto ChaCha20-Poly1305 raw", "suite/XChaCha20-Poly1305/seal/16384", "raw/rustcrypto/chacha20-poly1305 seal/16384")
for size in (64, 1024, 16384):
    for op in ("seal", "open"):
        tw = r.get(f"suite/Twofish-256-CBC-HMAC-SHA-256/{op}/{size}")
        if tw:
            print(f"| Twofish suite {op} at {size} B | {fmt(tw[0])}, {size / tw[0] * 1e3:.0f} MB/s |")
