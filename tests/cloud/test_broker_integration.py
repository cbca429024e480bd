"""EmulatedBroker with the real rules: Rules(Registry(":memory:")) + the tutorial fixture."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airlab.aliyun import direct_mqtt_credentials
from airlab.aliyun.dynreg import mqtt_register_credentials
from airlab.cloud import auth
from airlab.cloud.auth import Rules
from airlab.cloud.broker import EmulatedBroker
from airlab.cloud.fixtures import (
    TUTORIAL_DEVICE_NAME as DN,
)
from airlab.cloud.fixtures import (
    TUTORIAL_DEVICE_SECRET as SECRET,
)
from airlab.cloud.fixtures import (
    TUTORIAL_PRODUCT_KEY as PK,
)
from airlab.cloud.fixtures import (
    TUTORIAL_PRODUCT_SECRET,
    load_tutorial,
)
from airlab.cloud.model import ConnectionEvent, DeviceRef, MessageRecord
from airlab.cloud.registry import Registry
from airlab.cloud.tls import make_client_context, make_server_context
from tests.cloud.broker_helpers import WAIT, Client, Recorder

OTHER = "otherdevice01"
OTHER_SECRET = "0123456789abcdef0123456789abcdef"


class Recording:
    """The real rules, with the log calls also recorded for waiting in tests."""

    def __init__(self, rules: Rules) -> None:
        self._rules = rules
        self.rec = Recorder()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rules, name)

    def log_connection(self, event: ConnectionEvent, on_commit=None) -> None:
        self._rules.log_connection(event, on_commit)
        self.rec.log_connection(event)

    def log_message(self, record: MessageRecord, on_commit=None) -> None:
        self._rules.log_message(record, on_commit)
        self.rec.log_message(record)

    def log_messages(self, records: list[MessageRecord], on_commit=None) -> None:
        self._rules.log_messages(records, on_commit)
        for record in records:
            self.rec.log_message(record)


@pytest.fixture
def registry():
    reg = Registry(":memory:")
    load_tutorial(reg)
    reg.add_device(PK, OTHER, OTHER_SECRET)
    yield reg
    reg.close()


@pytest.fixture
def rules(registry) -> Recording:
    return Recording(Rules(registry))


@pytest.fixture(scope="module")
def tls_contexts():
    return make_server_context(), make_client_context()


@pytest.fixture
def broker(rules, tls_contexts):
    with EmulatedBroker(rules, ssl_context=tls_contexts[0]) as b:
        yield b


def device(
    clients: list[Client],
    port: int,
    dn: str = DN,
    secret: str = SECRET,
    keepalive: int = 120,
    **kw: Any,
) -> Client:
    cred = direct_mqtt_credentials(product_key=PK, device_name=dn, device_secret=secret, **kw)
    c = Client(
        port,
        client_id=cred.client_id,
        username=cred.username,
        password=cred.password,
        keepalive=keepalive,
    )
    clients.append(c)
    return c


def test_good_login(rules, broker, clients):
    c = device(clients, broker.mqtt_port)
    assert c.connect() == "Success"
    assert broker.online() == [(DeviceRef(PK, DN), c.c._client_id.decode())]
    rules.rec.event("connect", code=0)


def test_wrong_signature_gets_4(rules, broker, clients):
    c = device(clients, broker.mqtt_port, secret="0" * 32)
    assert c.connect() == "Bad user name or password"
    event = rules.rec.event("refused", code=4)
    assert event.explanation.rule == "signature"


def test_unknown_device_gets_5(rules, broker, clients):
    c = device(clients, broker.mqtt_port, dn="nosuchdevice")
    assert c.connect() == "Not authorized"
    rules.rec.event("refused", code=5)


def test_keepalive_out_of_range_gets_2(rules, broker, clients):
    c = device(clients, broker.mqtt_port, keepalive=10)
    assert c.connect() == "Client identifier not valid"
    assert rules.rec.event("refused", code=2).explanation.rule == "keepalive"


def test_devices_are_isolated(rules, broker, clients):
    a = device(clients, broker.mqtt_port)
    b = device(clients, broker.mqtt_port, dn=OTHER, secret=OTHER_SECRET)
    assert a.connect() == "Success" and b.connect() == "Success"
    assert a.subscribe(f"/{PK}/{DN}/user/get") == [1]
    assert b.subscribe(f"/{PK}/+/user/get", f"/{PK}/{DN}/user/get", "#") == [128, 128, 128]
    assert b.subscribe(f"/{PK}/{OTHER}/user/get") == [1]
    # b may not publish to a's topic: PUBACKed, not routed
    b.publish(f"/{PK}/{DN}/user/get", b"forged", 1)
    rec = rules.rec.message(payload=b"forged")
    assert rec.accepted is False
    broker.publish(f"/{PK}/{OTHER}/user/get", b"for b", 1)
    broker.publish(f"/{PK}/{DN}/user/get", b"for a", 1)
    assert a.get().payload == b"for a"
    assert b.get().payload == b"for b"
    assert a.nothing() and b.nothing()


def test_forbidden_topic_is_pubacked_not_routed(rules, broker, clients):
    a = device(clients, broker.mqtt_port)
    a.connect()
    a.subscribe(f"/{PK}/{DN}/user/get")
    a.publish(f"/{PK}/{DN}/user/get", b"to a sub-only topic", 1)  # sub permission only
    assert rules.rec.message(payload=b"to a sub-only topic").accepted is False
    a.publish(f"/{PK}/{DN}/user/update", b"fine", 1)
    assert rules.rec.message(payload=b"fine").accepted is True
    assert a.nothing()


def test_property_post_gets_reply(rules, broker, clients):
    post = f"/sys/{PK}/{DN}/thing/event/property/post"
    a = device(clients, broker.mqtt_port)
    a.connect()
    assert a.subscribe(post + "_reply") == [1]
    body = {"id": "7", "version": "1.0", "params": {"t": 1}, "method": "thing.event.property.post"}
    a.publish(post, json.dumps(body), 1)
    reply = a.get()
    assert reply.topic == post + "_reply"
    data = json.loads(reply.payload)
    assert (data["code"], data["id"]) == (200, "7")


def test_second_login_kicks_with_notify(rules, broker, clients):
    first = device(clients, broker.mqtt_port)
    assert first.connect() == "Success"
    second = device(clients, broker.mqtt_port, client_id="second")
    assert second.connect() == "Success"
    notice = first.get()
    assert notice.topic == "/ext/notify"
    assert json.loads(notice.payload) == {"title": "kick", "content": "Kicked by the same device"}
    assert first.closed.wait(WAIT)
    rules.rec.event("kicked")
    assert [cid for _, cid in broker.online()] == [second.c._client_id.decode()]


def test_dynamic_registration_over_tls(rules, broker, clients, tls_contexts, monkeypatch):
    assert auth.DYNREG_CLOSE_AFTER == 15  # the platform's value; shortened for the test
    monkeypatch.setattr(auth, "DYNREG_CLOSE_AFTER", 0.3)
    cred = mqtt_register_credentials(PK, DN, TUTORIAL_PRODUCT_SECRET, random="8Ygb7ULYh53B6OA")
    c = Client(
        broker.mqtts_port,
        client_id=cred.client_id,
        username=cred.username,
        password=cred.password,
        tls=tls_contexts[1],
    )
    clients.append(c)
    assert c.connect() == "Success"
    push = c.get()
    assert push.topic == "/ext/register"
    data = json.loads(push.payload)
    assert (data["productKey"], data["deviceName"]) == (PK, DN)
    assert len(data["deviceSecret"]) == 32
    assert c.closed.wait(WAIT)  # the server closes it close_after seconds after CONNACK
    assert "after CONNACK" in rules.rec.event("disconnect").reason


def test_dynamic_registration_over_plain_tcp_is_refused(rules, broker, clients):
    cred = mqtt_register_credentials(PK, DN, TUTORIAL_PRODUCT_SECRET, random="abc")
    c = Client(
        broker.mqtt_port, client_id=cred.client_id, username=cred.username, password=cred.password
    )
    clients.append(c)
    assert c.connect() == "Client identifier not valid"
