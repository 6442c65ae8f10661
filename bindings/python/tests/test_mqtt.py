"""The relay's API over MQTT through the binding: the same requests and
parsers as over HTTP (``RelayRequest.mqtt_properties``,
``mqtt_answer_status``), carried by an ordinary Python MQTT 5 client
(paho-mqtt), against a real Mosquitto broker (scripts/mqtt-broker.sh) and a
real ``sealpost-relay`` process bridged to it (docs/RELAY.md section 14).
"""

import base64
import os
import pathlib
import queue
import subprocess
import tempfile
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sealpost import (
    MqttProperty,
    RelayError,
    RelayRequest,
    Session,
    default_policy,
    mqtt_answer_status,
    parse_ack,
    parse_deposit,
    parse_enrol_mqtt,
    parse_fetch_bundle,
    parse_pull,
    parse_push_frame,
)
from test_relay import Relay, register, relay_binary

SCRIPT = pathlib.Path(__file__).resolve().parents[3] / "scripts" / "mqtt-broker.sh"


def test_mqtt_framing_without_io():
    signer_request = RelayRequest.ack([1, 2])
    props = signer_request.mqtt_properties("Sealpost key=x")
    assert [(p.name, p.value) for p in props] == [
        ("method", "POST"), ("path", "/v1/messages/ack"), ("authorization", "Sealpost key=x")]
    status = mqtt_answer_status([MqttProperty(name="status", value="429"), MqttProperty(name="retry-after", value="3")])
    assert (status.status, status.retry_after) == (429, "3")
    with pytest.raises(RelayError.Malformed):
        mqtt_answer_status([])
    assert RelayRequest.enrol_mqtt().path_and_query() == "/v1/mqtt"


@pytest.fixture
def broker():
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run(["bash", str(SCRIPT), "start", d + "/b"], check=True, capture_output=True, text=True)
        env = dict(l[len("export "):].split("=", 1) for l in out.stdout.splitlines() if l.startswith("export "))
        try:
            yield env
        finally:
            subprocess.run(["bash", str(SCRIPT), "stop", d + "/b"], check=False)


@pytest.fixture
def bridged(broker):
    extra = ["--mqtt-url", "mqtt://127.0.0.1:" + broker["SEALPOST_TEST_MQTT_PORT"],
             "--mqtt-username", "sealpost-relay",
             "--mqtt-password-file", broker["SEALPOST_TEST_MQTT_RELAY_PASSWORD_FILE"]]
    with tempfile.TemporaryDirectory() as data:
        r = Relay(relay_binary(), data, extra)
        try:
            yield r, int(broker["SEALPOST_TEST_MQTT_PORT"])
        finally:
            r.stop()


class Device:
    """An MQTT 5 client for one enrolled mailbox."""

    def __init__(self, enrolment, port):
        self.enrolment = enrolment
        self.answers = {}
        self.pushes = queue.Queue()
        ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=enrolment.client_id(),
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(enrolment.username(), enrolment.password())
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: ready.set()

        def on_connect(client, userdata, flags, reason, properties):
            assert not reason.is_failure, reason
            client.subscribe([(enrolment.mailbox(), 1), (enrolment.responses() + "#", 1)])

        self.client.on_connect = on_connect
        connect = Properties(PacketTypes.CONNECT)
        connect.SessionExpiryInterval = 600
        self.client.connect("127.0.0.1", port, clean_start=False, properties=connect)
        self.client.loop_start()
        assert ready.wait(10), "not subscribed"

    def _on_message(self, client, userdata, message):
        if message.topic == self.enrolment.mailbox():
            self.pushes.put(message.payload.decode())
            return
        waiting = self.answers.pop(bytes(message.properties.CorrelationData), None)
        if waiting is not None:
            waiting.put((message.properties.UserProperty, message.payload))

    def send(self, req, authorization, wait=5):
        """Publishes one request; its answer's (status, retry_after, body), or None."""
        correlation = os.urandom(8)
        answer = queue.Queue()
        self.answers[correlation] = answer
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.enrolment.responses() + "py"
        props.CorrelationData = correlation
        if req.content_type():
            props.ContentType = req.content_type()
        props.UserProperty = [(p.name, p.value) for p in req.mqtt_properties(authorization)]
        self.client.publish(self.enrolment.requests(), req.body(), qos=1, properties=props)
        try:
            user_properties, body = answer.get(timeout=wait)
        except queue.Empty:
            return None
        status = mqtt_answer_status([MqttProperty(name=n, value=v) for n, v in user_properties])
        return status.status, status.retry_after, body

    def call(self, parse, req, signer, *args):
        # Sent again, signed anew, when no answer comes (docs/RELAY.md 14).
        for _ in range(3):
            answer = self.send(req, req.authorize(signer))
            if answer is not None:
                return parse(*args, *answer)
        raise AssertionError("no answer to " + req.path_and_query())

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()


def test_a_python_device_talks_over_mqtt_with_a_user_on_http(bridged):
    relay, port = bridged
    policy = default_policy()
    alice, alice_signer = register(relay, "alice_mq")
    bob, bob_signer = register(relay, "bob_mq")
    # Enrolment over HTTP, once the relay's bridge is connected.
    deadline = time.monotonic() + 20
    while True:
        try:
            enrolment = relay.call(parse_enrol_mqtt, RelayRequest.enrol_mqtt(), alice_signer)
            break
        except RelayError.Refused as e:
            assert e.code == "broker_unavailable" and time.monotonic() < deadline, e
            time.sleep(0.1)
    account = base64.urlsafe_b64encode(alice_signer.account()).decode().rstrip("=")
    assert account not in enrolment.mailbox() and account not in enrolment.username()
    assert enrolment.password() not in repr(enrolment)
    device = Device(enrolment, port)
    try:
        # Alice, on MQTT only, fetches Bob's bundle and writes to him.
        fetched = device.call(parse_fetch_bundle, RelayRequest.fetch_bundle(bob_signer.account()), alice_signer,
                              bob_signer.account())
        session = Session.initiate(alice, fetched.bundle, policy)
        deposit = RelayRequest.deposit([bob_signer.account()], session.encrypt(b"hello from MQTT"))
        [sent] = device.call(parse_deposit, deposit, alice_signer)
        # Bob, on HTTP, reads it and answers.
        [m] = relay.call(parse_pull, RelayRequest.pull(0, 10), bob_signer).messages
        assert m.id == sent
        accepted = bob.accept(policy, m.envelope)
        assert accepted.plaintext == b"hello from MQTT"
        relay.call(parse_deposit, RelayRequest.deposit([alice_signer.account()], accepted.session.encrypt(b"hi device")),
                   bob_signer)
        # The answer is pushed to Alice's mailbox topic; she acknowledges over MQTT.
        frame = parse_push_frame(device.pushes.get(timeout=10))
        assert frame.is_message()
        assert session.decrypt(frame.message.envelope) == b"hi device"
        ack = RelayRequest.ack([frame.message.id])
        auth = ack.authorize(alice_signer)
        assert parse_ack(*device.send(ack, auth)) == 1
        # The same signed request again: the relay's refusal, typed as over HTTP.
        with pytest.raises(RelayError.Refused) as e:
            parse_ack(*device.send(ack, auth))
        assert (e.value.code, e.value.status) == ("replayed_request", 401)
        # A request through Alice's mailbox signed by Bob is refused.
        with pytest.raises(RelayError.Refused) as e:
            device.call(parse_pull, RelayRequest.pull(0, 10), bob_signer)
        assert (e.value.code, e.value.status) == ("not_your_mailbox", 403)
        assert device.call(parse_pull, RelayRequest.pull(0, 10), alice_signer).messages == []
    finally:
        device.stop()
