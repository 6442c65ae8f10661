"""The Python side of the binding benchmark (bindings/bench/run.sh): 1 KiB
encrypt + decrypt round trips on an established session through the wheel,
and the cheapest exported call (``is_session_reset`` on an empty buffer),
timed like the Rust and Kotlin programs next to it (median of 7 rounds).
Prints one JSON object."""

import json
import statistics
import sys
import time

from sealpost import Account, PrekeyBundle, Session, default_policy, is_session_reset

T0 = 1_700_000_000
ROUNDS = 7


def per_call(n, f):
    """Nanoseconds per call of ``f``: the median of ROUNDS rounds of n calls."""
    for _ in range(n // 10):
        f()
    rounds = []
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        for _ in range(n):
            f()
        rounds.append((time.perf_counter_ns() - start) / n)
    return statistics.median(rounds)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    message = b"\x5a" * 1024
    policy = default_policy()
    alice, bob = Account(now=T0), Account(now=T0)
    a = Session.initiate(alice, PrekeyBundle.from_bytes(bob.bundle(policy).to_bytes()), policy, now=T0)
    b = bob.accept(policy, a.encrypt(b"hi", now=T0), now=T0).session
    a.decrypt(b.encrypt(b"back", now=T0), now=T0)

    def round_trip():
        if b.decrypt(a.encrypt(message, now=T0), now=T0) != message:
            raise AssertionError("round trip changed the message")

    rt = per_call(n, round_trip)
    call = per_call(n * 50, lambda: is_session_reset(b""))
    print(json.dumps({"language": "python", "round_trip_ns": round(rt), "call_ns": round(call, 1)}))


if __name__ == "__main__":
    main()
