"""The relay's client protocol through the binding: requests are built,
signed and parsed by the same Rust code the relay uses (``sealpost-client``);
the HTTP and WebSocket stack is Python's own (``urllib``, ``websockets``).

The end-to-end test starts a real ``sealpost-relay`` process (its path in
``SEALPOST_RELAY``, set by bindings/test.sh) and has two users register
handles, publish bundles, and converse through it.
"""

import json
import os
import queue
import re
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request

import pytest
from websockets.sync.client import connect as websocket_connect

import sealpost
from sealpost import (
    Account,
    PushFrame,
    RelayError,
    RelayRequest,
    Session,
    ack_frame,
    default_policy,
    parse_ack,
    parse_claim_handle,
    parse_deposit,
    parse_fetch_bundle,
    parse_lookup_handle,
    parse_open_session,
    parse_publish_bundle,
    parse_pull,
    parse_push_frame,
    parse_upload_prekeys,
    parse_verify_handle,
    ws_auth_query,
)

T0 = 1_700_000_000
AUTH = re.compile(r"^Sealpost key=[A-Za-z0-9_-]{43},ts=(\d+),nonce=[A-Za-z0-9_-]{22},sig=[A-Za-z0-9_-]{86}$")


def test_requests_are_built_and_signed_without_io():
    signer = Account(now=T0).relay_signer()
    assert len(signer.account()) == 32
    req = RelayRequest.deposit([bytes(32)], b"sealed")
    assert (req.method(), req.path_and_query(), req.content_type()) == ("POST", "/v1/messages", "application/json")
    body = json.loads(req.body())
    assert body == {"recipients": ["A" * 43], "envelope": "c2VhbGVk"}
    auth = req.authorize(signer, now=T0, nonce=bytes(16))
    assert AUTH.match(auth).group(1) == str(T0)
    # The same time and nonce give the same value; a fresh nonce another.
    assert req.authorize(signer, now=T0, nonce=bytes(16)) == auth
    assert req.authorize(signer, now=T0) != auth
    get = RelayRequest.pull(5, 10)
    assert (get.method(), get.path_and_query(), get.content_type(), get.body()) == (
        "GET", "/v1/messages?after=5&limit=10", None, b"")
    assert RelayRequest.lookup_handle("+4915112345678").path_and_query() == "/v1/handles/%2B4915112345678"
    ws = RelayRequest.websocket().authorize(signer, now=T0)
    assert ws_auth_query(ws).startswith("/v1/ws?auth=Sealpost%20key%3D")
    with pytest.raises(RelayError.InvalidArgument):
        RelayRequest.fetch_bundle(b"short")
    with pytest.raises(RelayError.InvalidArgument):
        req.authorize(signer, now=T0, nonce=b"too short")
    with pytest.raises(RelayError.InvalidArgument):
        RelayRequest.upload_prekeys([b"not a prekey"])


def test_answers_parse_into_values_and_refusals_into_typed_errors():
    assert parse_deposit(201, None, b'{"ids":[41,42]}') == [41, 42]
    assert parse_ack(200, None, b'{"deleted":2}') == 2
    assert parse_upload_prekeys(200, None, b'{"one_time_prekeys":7}') == 7
    page = parse_pull(200, None, b'{"messages":[{"id":3,"sender":"' + b"A" * 43 + b'","envelope":"aGk","received_at":9}],"next_after":3}')
    assert page.next_after == 3
    assert (page.messages[0].id, page.messages[0].sender, page.messages[0].envelope) == (3, bytes(32), b"hi")
    # A refusal carries the relay's code, status and Retry-After.
    with pytest.raises(RelayError.Refused) as e:
        parse_deposit(429, "3", b'{"error":{"code":"rate_limited","message":"too many requests"}}')
    assert (e.value.code, e.value.status, e.value.retry_after) == ("rate_limited", 429, 3)
    with pytest.raises(RelayError.Refused) as e:
        parse_deposit(401, None, b'{"error":{"code":"session_expired","message":"open a new one"}}')
    assert e.value.code == "session_expired"
    # A missing field is refused, not defaulted.
    with pytest.raises(RelayError.Malformed):
        parse_deposit(201, None, b"{}")
    with pytest.raises(RelayError.Malformed):
        parse_pull(200, None, b'{"messages":[]}')
    with pytest.raises(RelayError.UnexpectedStatus) as e:
        parse_deposit(502, None, b"<html>")
    assert e.value.status == 502
    with pytest.raises(RelayError.UnknownErrorCode):
        parse_deposit(400, None, b'{"error":{"code":"from_the_future","message":""}}')
    # A code that does not go with its status.
    with pytest.raises(RelayError.UnexpectedStatus):
        parse_deposit(500, None, b'{"error":{"code":"bad_json","message":""}}')
    with pytest.raises(RelayError.Core) as e:
        parse_fetch_bundle(bytes(32), 200, None, b'{"bundle":"AAAA","one_time_prekeys_left":0}')
    # Three zero bytes: version 0.
    assert e.value.code == sealpost.ErrorCode.UNSUPPORTED_VERSION
    frame = parse_push_frame('{"type":"acked","deleted":4}')
    assert frame == PushFrame.ACKED(deleted=4)
    assert json.loads(ack_frame([1, 2])) == {"type": "ack", "ids": [1, 2]}
    with pytest.raises(RelayError.Malformed):
        parse_push_frame("not json")


# --- end to end through a real relay process ------------------------------


class Relay:
    """A sealpost-relay process on a loopback port it chose itself."""

    def __init__(self, binary, data_dir, extra=()):
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--data-dir", data_dir, "--log-format", "json", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.codes = queue.Queue()
        threading.Thread(target=self._read_codes, daemon=True).start()
        for line in self.proc.stderr:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            address = event.get("fields", {}).get("address")
            if address:
                self.base = "http://" + address
                break
        else:
            raise RuntimeError("the relay did not start")
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def _read_codes(self):
        # The default code sink prints "verification code for <handle>: <code>".
        for line in self.proc.stdout:
            m = re.match(r"verification code for (\S+): (\d{6})", line)
            if m:
                self.codes.put((m.group(1), m.group(2)))

    def send(self, req, authorization):
        headers = {"Authorization": authorization}
        if req.content_type():
            headers["Content-Type"] = req.content_type()
        body = req.body() if req.method() == "POST" else None
        http = urllib.request.Request(self.base + req.path_and_query(), data=body, headers=headers, method=req.method())
        try:
            with urllib.request.urlopen(http, timeout=10) as r:
                return r.status, r.headers.get("Retry-After"), r.read()
        except urllib.error.HTTPError as r:
            return r.code, r.headers.get("Retry-After"), r.read()

    def call(self, parse, req, signer, *args):
        return parse(*args, *self.send(req, req.authorize(signer)))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def relay_binary():
    binary = os.environ.get("SEALPOST_RELAY")
    if not binary:
        pytest.fail("SEALPOST_RELAY (the sealpost-relay binary) is not set; bindings/test.sh sets it")
    return binary


@pytest.fixture
def relay():
    with tempfile.TemporaryDirectory() as data:
        r = Relay(relay_binary(), data)
        try:
            yield r
        finally:
            r.stop()


def register(relay, handle):
    policy = default_policy()
    account = Account()
    signer = account.relay_signer()
    relay.call(parse_publish_bundle, RelayRequest.publish_bundle(account.bundle(policy)), signer)
    held = relay.call(parse_upload_prekeys, RelayRequest.upload_prekeys(account.generate_one_time_prekeys(2)), signer)
    assert held == 2
    claimed = relay.call(parse_claim_handle, RelayRequest.claim_handle(handle), signer)
    assert claimed.handle == handle
    sent_to, code = relay.codes.get(timeout=10)
    assert sent_to == handle
    with pytest.raises(RelayError.Refused) as e:
        wrong = "000000" if code != "000000" else "111111"
        relay.call(parse_verify_handle, RelayRequest.verify_handle(handle, wrong), signer)
    assert (e.value.code, e.value.status) == ("wrong_code", 403)
    bound = relay.call(parse_verify_handle, RelayRequest.verify_handle(handle, code), signer)
    assert bound.account == signer.account()
    return account, signer


def test_two_users_converse_through_a_real_relay(relay):
    policy = default_policy()
    alice, alice_signer = register(relay, "alice_py")
    bob, bob_signer = register(relay, "bob_py")

    # Alice finds Bob by handle and fetches his bundle (with a one-time prekey).
    found = relay.call(parse_lookup_handle, RelayRequest.lookup_handle("bob_py"), alice_signer)
    assert found.account == bob_signer.account() and found.identity == bob.identity()
    fetched = relay.call(parse_fetch_bundle, RelayRequest.fetch_bundle(found.account), alice_signer, found.account)
    assert fetched.bundle.has_one_time_prekey() and fetched.one_time_prekeys_left == 1
    session = Session.initiate(alice, fetched.bundle, policy)

    # She deposits under a relay session.
    opened = relay.call(parse_open_session, RelayRequest.open_session(), alice_signer)
    deposit = RelayRequest.deposit([bob_signer.account()], session.encrypt(b"hello Bob"))
    [first_id] = parse_deposit(*relay.send(deposit, deposit.authorize_session(opened.session)))

    # Bob is pushed the message over a WebSocket, accepts it and acknowledges it.
    ws_auth = RelayRequest.websocket().authorize(bob_signer)
    url = relay.base.replace("http://", "ws://") + ws_auth_query(ws_auth)
    with websocket_connect(url, open_timeout=10) as ws:
        frame = parse_push_frame(ws.recv(timeout=10))
        assert frame.is_message()
        message = frame.message
        assert (message.id, message.sender) == (first_id, alice_signer.account())
        accepted = bob.accept(policy, message.envelope)
        assert accepted.plaintext == b"hello Bob"
        ws.send(ack_frame([message.id]))
        assert parse_push_frame(ws.recv(timeout=10)) == PushFrame.ACKED(deleted=1)
    reply = accepted.session

    # Bob answers with a signed deposit; Alice pulls, reads and acknowledges.
    relay.call(parse_deposit, RelayRequest.deposit([alice_signer.account()], reply.encrypt(b"hi Alice")), bob_signer)
    page = relay.call(parse_pull, RelayRequest.pull(0, 10), alice_signer)
    [m] = page.messages
    assert session.decrypt(m.envelope) == b"hi Alice"
    assert relay.call(parse_ack, RelayRequest.ack([m.id]), alice_signer) == 1
    assert relay.call(parse_pull, RelayRequest.pull(0, 10), alice_signer).messages == []
    # A replayed request is refused with the relay's code.
    ack = RelayRequest.ack([m.id])
    auth = ack.authorize(alice_signer)
    assert parse_ack(*relay.send(ack, auth)) == 0
    with pytest.raises(RelayError.Refused) as e:
        parse_ack(*relay.send(ack, auth))
    assert (e.value.code, e.value.status) == ("replayed_request", 401)
