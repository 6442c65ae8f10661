"""The Python binding in its own runtime: the flows an app goes through.

Every call gets the time explicitly (``now=``) so the tests do not depend on
the clock; apps leave it out and the system clock is read.
"""

import os
import re
import threading

import pytest

import sealpost
from sealpost import (
    Account,
    EnvelopeKind,
    ErrorCode,
    Healer,
    Incoming,
    PickleKey,
    PrekeyBundle,
    Room,
    SafetyNumber,
    SealpostError,
    Session,
    default_policy,
    envelope_kind,
    is_session_reset,
)

T0 = 1_700_000_000


def start(now=T0):
    """Bob publishes a bundle with a one-time prekey; Alice starts a session
    from the wire bytes; Bob accepts her first message."""
    policy = default_policy()
    alice, bob = Account(now=now), Account(now=now)
    [otk] = bob.generate_one_time_prekeys(1)
    wire = bob.bundle(policy).with_one_time_prekey(otk).to_bytes()
    bundle = PrekeyBundle.from_bytes(wire)
    assert bundle.has_one_time_prekey()
    a = Session.initiate(alice, bundle, policy, now=now)
    first = a.encrypt(b"hello Bob", now=now)
    assert envelope_kind(first) == EnvelopeKind.PREKEY
    accepted = bob.accept(policy, first, now=now)
    assert accepted.plaintext == b"hello Bob"
    return alice, bob, a, accepted.session


# --- snippet: README "Python" (keep in sync) -------------------------------
def test_readme_snippet():
    policy = sealpost.default_policy()
    alice, bob = sealpost.Account(), sealpost.Account()
    bundle = sealpost.PrekeyBundle.from_bytes(bob.bundle(policy).to_bytes())
    session = sealpost.Session.initiate(alice, bundle, policy)
    envelope = session.encrypt(b"hi Bob")
    reply_session = bob.accept(policy, envelope).session
    assert reply_session.decrypt(session.encrypt(b"second")) == b"second"
    assert session.decrypt(reply_session.encrypt(b"hi Alice")) == b"hi Alice"
# --- end snippet ------------------------------------------------------------


def test_two_parties_converse_both_ways():
    alice, bob, a, b = start()
    assert a.id() == b.id()
    assert a.peer_identity() == bob.identity() and b.peer_identity() == alice.identity()
    assert a.safety_number().matches(b.safety_number())
    assert a.safety_number().digits() == SafetyNumber(alice.identity(), bob.identity()).digits()
    assert len(a.safety_number().digits()) == 60
    assert a.is_awaiting_reply()
    for i in range(5):
        r = b.encrypt(f"reply {i}".encode(), now=T0 + i)
        assert envelope_kind(r) == EnvelopeKind.RATCHET
        assert a.decrypt(r, now=T0 + i) == f"reply {i}".encode()
        m = a.encrypt(f"msg {i}".encode(), now=T0 + i)
        assert b.decrypt(m, now=T0 + i) == f"msg {i}".encode()
    assert not a.is_awaiting_reply()
    # The one-time prekey was used up by the session start.
    assert bob.one_time_prekey_count() == 0


def test_out_of_order_delivery():
    _, _, a, b = start()
    b.decrypt(a.encrypt(b"warm up", now=T0), now=T0)
    envelopes = [a.encrypt(f"m{i}".encode(), now=T0 + 1) for i in range(6)]
    for i in [3, 0, 5, 1, 4, 2]:
        assert b.decrypt(envelopes[i], now=T0 + 2) == f"m{i}".encode()


def test_tampered_envelope_raises_authentication_failed_and_replay_raises_replay():
    _, _, a, b = start()
    r = b.encrypt(b"answer", now=T0)
    assert a.decrypt(r, now=T0) == b"answer"
    m = a.encrypt(b"authentic", now=T0 + 1)
    tampered = bytearray(m)
    tampered[-1] ^= 0x01
    with pytest.raises(SealpostError.AuthenticationFailed):
        b.decrypt(bytes(tampered), now=T0 + 1)
    # The forgery changed nothing: the real one still opens, once.
    assert b.decrypt(m, now=T0 + 1) == b"authentic"
    with pytest.raises(SealpostError.Replay):
        b.decrypt(m, now=T0 + 1)
    with pytest.raises(SealpostError.Malformed):
        b.decrypt(b"", now=T0 + 1)


def test_pickles_round_trip_with_a_passphrase_and_with_a_key():
    alice, bob, a, b = start()
    by_key = PickleKey.from_key(os.urandom(32))
    by_phrase = PickleKey.from_passphrase("correct horse battery staple")
    for key in (by_key, by_phrase):
        restored = Account.from_pickle(alice.pickle(key, b"alice"), key, b"alice")
        assert restored.identity() == alice.identity()
    ad = b"session with " + bob.identity()
    restored = Session.from_pickle(b.pickle(by_phrase, ad), by_phrase, ad)
    assert restored.id() == b.id()
    m = a.encrypt(b"after restore", now=T0 + 1)
    assert restored.decrypt(m, now=T0 + 1) == b"after restore"
    # A wrong passphrase, a wrong key or other associated data is refused.
    pickle = alice.pickle(by_phrase, b"alice")
    with pytest.raises(SealpostError.AuthenticationFailed):
        Account.from_pickle(pickle, PickleKey.from_passphrase("wrong"), b"alice")
    with pytest.raises(SealpostError.AuthenticationFailed):
        Account.from_pickle(alice.pickle(by_key, b""), PickleKey.from_key(os.urandom(32)), b"")
    with pytest.raises(SealpostError.AuthenticationFailed):
        Account.from_pickle(pickle, by_phrase, b"bob")
    with pytest.raises(SealpostError.InvalidArgument):
        PickleKey.from_key(b"short")


def room_of_three():
    policy = default_policy()
    accounts = [Account(now=T0) for _ in range(3)]
    rooms = [Room(b"lobby", acc, policy) for acc in accounts]
    ids = [acc.identity() for acc in accounts]
    for i in range(3):
        for j in range(i + 1, 3):
            bundle = PrekeyBundle.from_bytes(accounts[j].bundle(policy).to_bytes())
            s = Session.initiate(accounts[i], bundle, policy, now=T0)
            out = rooms[i].add_member(s, now=T0)
            assert out.recipient == ids[j]
            got = rooms[j].accept(accounts[j], policy, out.envelope, now=T0)
            assert got.incoming == Incoming.KEY_UPDATE(ids[i])
            back = rooms[i].receive(ids[j], got.outgoing.envelope, now=T0)
            assert back == Incoming.KEY_UPDATE(ids[j])
    return accounts, rooms, ids


def test_a_group_of_three_broadcasts_and_directs_and_a_removed_member_cannot_read():
    accounts, rooms, ids = room_of_three()
    assert sorted(rooms[0].members()) == sorted([ids[1], ids[2]])
    b = rooms[0].broadcast(b"hi all")
    assert b.recipient is None
    assert envelope_kind(b.envelope) == EnvelopeKind.GROUP
    for r in (1, 2):
        assert rooms[r].receive(ids[0], b.envelope, now=T0) == Incoming.BROADCAST(ids[0], b"hi all")
    d = rooms[0].direct(ids[1], b"@bob psst", now=T0)
    assert d.recipient == ids[1]
    with pytest.raises(SealpostError.AuthenticationFailed):
        rooms[2].receive(ids[0], d.envelope, now=T0)
    assert rooms[1].receive(ids[0], d.envelope, now=T0) == Incoming.DIRECT(ids[0], b"@bob psst")
    # Alice and Bob remove Carol and re-key.
    outs_a = rooms[0].remove_member(accounts[0], ids[2], now=T0)
    outs_b = rooms[1].remove_member(accounts[1], ids[2], now=T0)
    assert [o.recipient for o in outs_a] == [ids[1]]
    assert rooms[1].receive(ids[0], outs_a[0].envelope, now=T0) == Incoming.KEY_UPDATE(ids[0])
    assert rooms[0].receive(ids[1], outs_b[0].envelope, now=T0) == Incoming.KEY_UPDATE(ids[1])
    after = rooms[0].broadcast(b"just us")
    assert rooms[1].receive(ids[0], after.envelope, now=T0) == Incoming.BROADCAST(ids[0], b"just us")
    with pytest.raises(SealpostError.UnknownSender):
        rooms[2].receive(ids[0], after.envelope, now=T0)


def test_rooms_and_healers_survive_pickling():
    accounts, rooms, ids = room_of_three()
    key = PickleKey.from_passphrase("room passphrase")
    late = rooms[0].broadcast(b"in flight")
    pickle = rooms[1].pickle(key, b"lobby")
    with pytest.raises(SealpostError.AuthenticationFailed):
        Room.from_pickle(pickle, key, b"other", accounts[1])
    with pytest.raises(SealpostError.InvalidKey):
        Room.from_pickle(pickle, key, b"lobby", accounts[2])
    bob = Room.from_pickle(pickle, key, b"lobby", accounts[1])
    assert bob.members() == [ids[0], ids[2]]
    assert bob.receive(ids[0], late.envelope, now=T0) == Incoming.BROADCAST(ids[0], b"in flight")
    with pytest.raises(SealpostError.RedistributionRequired):
        bob.broadcast(b"too soon")
    outs = bob.redistribute(now=T0)
    assert [o.recipient for o in outs] == [ids[0], ids[2]]
    assert bob.redistribute(now=T0) == []
    for out, r in zip(outs, (0, 2)):
        assert rooms[r].receive(ids[1], out.envelope, now=T0) == Incoming.KEY_UPDATE(ids[1])
    back = bob.broadcast(b"back")
    for r in (0, 2):
        assert rooms[r].receive(ids[1], back.envelope, now=T0) == Incoming.BROADCAST(ids[1], b"back")

    # A healer restored from its pickle still refuses a reset it accepted.
    alice, bob_acc, a, b = start()
    request = Healer().on_decrypt_failure(alice, bob_acc.identity(), a.id(), ErrorCode.AUTHENTICATION_FAILED, now=T0)
    healer = Healer()
    assert healer.accept(request, bob_acc, alice.identity(), b.id(), now=T0 + 1).renew
    saved = healer.pickle(key, b"healer")
    with pytest.raises(SealpostError.AuthenticationFailed):
        Healer.from_pickle(saved, key, b"other")
    with pytest.raises(SealpostError.Replay):
        Healer.from_pickle(saved, key, b"healer").accept(request, bob_acc, alice.identity(), b.id(), now=T0 + 2)


def test_a_session_reset_heals_a_rolled_back_session():
    alice, bob, a, b = start()
    key = PickleKey.from_key(bytes(range(32)))
    a.decrypt(b.encrypt(b"before the backup", now=T0 + 1), now=T0 + 1)
    backup = b.pickle(key, b"bob-alice")
    b.decrypt(a.encrypt(b"turn", now=T0 + 2), now=T0 + 2)
    a.decrypt(b.encrypt(b"new epoch, then lost", now=T0 + 3), now=T0 + 3)
    # Bob's device rolls back to the backup.
    b = Session.from_pickle(backup, key, b"bob-alice")
    stale = b.encrypt(b"from the restored device", now=T0 + 4)
    with pytest.raises(SealpostError) as failure:
        a.decrypt(stale, now=T0 + 4)
    code = ErrorCode[re.sub(r"(?<!^)(?=[A-Z])", "_", type(failure.value).__name__).upper()]
    assert sealpost.suggests_divergence(code)
    alice_healer, bob_healer = Healer(), Healer()
    request = alice_healer.on_decrypt_failure(alice, bob.identity(), a.id(), code, now=T0 + 4)
    assert request is not None and is_session_reset(request)
    # Only one request per peer per interval.
    assert alice_healer.on_decrypt_failure(alice, bob.identity(), a.id(), code, now=T0 + 5) is None
    # A benign error never asks.
    assert Healer().on_decrypt_failure(alice, bob.identity(), None, ErrorCode.REPLAY, now=T0) is None
    # Bob checks it came from Alice and starts again from her bundle.
    # A reset for Bob's session with Alice is refused by anyone else.
    carol = Account()
    with pytest.raises(SealpostError.Misdirected):
        Healer().accept(request, carol, alice.identity(), None, now=T0 + 5)
    outcome = bob_healer.accept(request, bob, alice.identity(), b.id(), now=T0 + 5)
    assert outcome.peer == alice.identity() and outcome.renew and not outcome.crossed
    with pytest.raises(SealpostError.Replay):
        bob_healer.accept(request, bob, alice.identity(), b.id(), now=T0 + 6)
    policy = default_policy()
    b2 = Session.initiate(bob, PrekeyBundle.from_bytes(alice.bundle(policy).to_bytes()), policy, now=T0 + 5)
    a2 = alice.accept(policy, b2.encrypt(b"fresh session", now=T0 + 6), now=T0 + 6)
    assert a2.plaintext == b"fresh session"
    assert b2.decrypt(a2.session.encrypt(b"welcome back", now=T0 + 7), now=T0 + 7) == b"welcome back"
    assert a2.session.id() != a.id()


def test_objects_are_usable_from_several_threads():
    alice, bob, a, b = start()
    b.decrypt(a.encrypt(b"warm up", now=T0), now=T0)
    envelopes, errors = [], []
    lock = threading.Lock()

    def send(t):
        try:
            for i in range(20):
                e = a.encrypt(f"{t}-{i}".encode(), now=T0 + 1)
                with lock:
                    envelopes.append((f"{t}-{i}".encode(), e))
            bob.generate_one_time_prekeys(2)
            alice.pickle(PickleKey.from_key(bytes(32)), b"")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert bob.one_time_prekey_count() == 8
    assert len(envelopes) == 80

    # Decrypt concurrently too, in whatever order the threads get there.
    results = []

    def receive(chunk):
        for text, e in chunk:
            results.append((text, b.decrypt(e, now=T0 + 2)))

    chunks = [envelopes[i::4] for i in range(4)]
    threads = [threading.Thread(target=receive, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted((t, t) for t, _ in envelopes)


def test_every_error_code_has_its_own_exception_class():
    names = [c.name for c in ErrorCode]
    assert len(set(names)) == len(names)
    for code in ErrorCode:
        cls_name = "".join(part.capitalize() for part in code.name.split("_"))
        cls = getattr(SealpostError, cls_name)
        assert issubclass(cls, SealpostError)
    subclasses = {n for n in dir(SealpostError) if not n.startswith("_") and isinstance(getattr(SealpostError, n), type)}
    assert len(subclasses) == len(names)
