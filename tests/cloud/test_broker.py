"""EmulatedBroker mechanics with an allow-list rules object and real paho clients."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import threading

import paho.mqtt.client as mqtt
import pytest

from airlab.cloud.broker import EmulatedBroker
from airlab.cloud.model import ConnectDecision, DeviceRef, Push
from airlab.cloud.tls import make_client_context, make_server_context
from tests.cloud.broker_helpers import (
    PK,
    WAIT,
    AllowRules,
    Client,
    connect_packet,
    raw_connect,
    read_until_eof,
    topic,
)


@pytest.fixture
def rules() -> AllowRules:
    r = AllowRules()
    for name in ("a", "b"):
        r.add(name)
    return r


@pytest.fixture
def broker(rules: AllowRules):
    with EmulatedBroker(rules, connect_timeout=0.3) as b:
        yield b


def new(clients: list[Client], port: int, *args, **kw) -> Client:
    c = Client(port, *args, **kw)
    clients.append(c)
    return c


# ---- CONNECT / CONNACK ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (1, "Unsupported protocol version"),
        (2, "Client identifier not valid"),
        (3, "Server unavailable"),
        (4, "Bad user name or password"),
        (5, "Not authorized"),
    ],
)
def test_every_refusal_code_reaches_paho(rules, broker, clients, code, name):
    rules.forced[f"c{code}"] = ConnectDecision.refuse(code, rule="r", message=f"code {code}")
    # paho answers CONNACK 1 to a 3.1.1 CONNECT by retrying in MQTT 3.1 (needs reconnect on)
    c = new(
        clients,
        broker.mqtt_port,
        client_id=f"c{code}",
        username="u",
        password="p",
        reconnect=code == 1,
    )
    assert c.connect() == name
    assert c.closed.wait(WAIT)
    event = rules.event("refused", client_id=f"c{code}")
    assert event.code == code and event.explanation.message == f"code {code}"
    assert broker.online() == []


def test_accepted_connect_and_request_fields(rules, broker, clients):
    c = new(clients, broker.mqtt_port, "a", client_id="cid|securemode=3|", keepalive=90)
    assert c.connect() == "Success"
    req = rules.requests[-1]
    assert (req.client_id, req.username, req.password) == ("cid|securemode=3|", "a", b"pw-a")
    assert (req.keepalive, req.protocol_level, req.clean_session, req.tls) == (90, 4, True, False)
    assert req.remote.startswith("127.0.0.1:")
    assert broker.online() == [(DeviceRef(PK, "a"), "cid|securemode=3|")]
    assert rules.connects == [(DeviceRef(PK, "a"), rules.accounts["a"][1].kind)]
    rules.event("connect", client_id="cid|securemode=3|", code=0)


def test_mqtt31_is_accepted(rules, broker, clients):
    c = new(clients, broker.mqtt_port, "a", protocol=mqtt.MQTTv31)
    assert c.connect() == "Success"
    assert rules.requests[-1].protocol_level == 3
    assert c.subscribe(topic("a")) == [1]
    broker.publish(topic("a"), b"hi", 1)
    assert c.get().payload == b"hi"


def test_mqtt5_gets_connack_1(rules, broker, clients):
    c = new(clients, broker.mqtt_port, "a", protocol=mqtt.MQTTv5)
    assert c.connect() == "Unsupported protocol version"
    assert rules.event("refused", code=1).explanation.rule == "protocol_version"
    assert rules.requests == []  # never reached the rules


def test_unknown_protocol_level_raw(broker):
    with raw_connect(broker.mqtt_port) as s:
        s.sendall(connect_packet("x", level=6))
        assert read_until_eof(s) == b"\x20\x02\x00\x01"


def test_refused_connect_closes_after_connack_raw(rules, broker):
    with raw_connect(broker.mqtt_port) as s:
        s.sendall(connect_packet("x", "a", b"wrong"))
        assert read_until_eof(s) == b"\x20\x02\x00\x04"


def test_session_wipe_regression(rules, broker, clients):
    """A refused CONNECT reusing a live client's id must not touch the live session."""
    live = new(clients, broker.mqtt_port, "a", client_id="shared")
    assert live.connect() == "Success"
    assert live.subscribe(topic("a")) == [1]
    forged = new(clients, broker.mqtt_port, "a", client_id="shared", password="forged")
    assert forged.connect() == "Bad user name or password"
    rules.event("refused", client_id="shared")
    assert broker.publish(topic("a"), b"still here", 1) == 1
    assert live.get().payload == b"still here"
    assert broker.online() == [(DeviceRef(PK, "a"), "shared")]


def test_same_client_id_different_devices_do_not_collide(rules, broker, clients):
    a = new(clients, broker.mqtt_port, "a", client_id="12345|securemode=3|")
    b = new(clients, broker.mqtt_port, "b", client_id="12345|securemode=3|")
    assert a.connect() == "Success" and b.connect() == "Success"
    assert a.subscribe(topic("a")) == [1] and b.subscribe(topic("b")) == [1]
    assert len(broker.online()) == 2
    broker.publish(topic("b"), b"for b")
    assert b.get().payload == b"for b"
    assert a.nothing()


# ---- connect timeout, malformed input --------------------------------------------------


def test_connect_timeout_closes_idle_socket(rules, broker):
    with raw_connect(broker.mqtt_port) as s:
        assert read_until_eof(s, timeout=WAIT) == b""
    event = rules.event("timeout")
    assert "no CONNECT within 0.3 s" in event.reason


def test_malformed_first_packet_closes_and_broker_keeps_serving(rules, broker, clients):
    with raw_connect(broker.mqtt_port) as s:
        s.sendall(os.urandom(64).replace(b"\x10", b"\x11").replace(b"\x16", b"\x17"))
        assert read_until_eof(s) == b""
    assert "not CONNECT" in rules.event("refused", code=None).reason
    c = new(clients, broker.mqtt_port, "a")
    assert c.connect() == "Success"


def test_tls_client_on_plain_port_is_explained(rules, broker):
    with raw_connect(broker.mqtt_port) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        assert read_until_eof(s) == b""
    assert "TLS handshake" in rules.event("refused").reason


def test_malformed_packet_after_connect_closes_that_connection(rules, broker, clients):
    other = new(clients, broker.mqtt_port, "b")
    assert other.connect() == "Success"
    other.subscribe(topic("b"))
    with raw_connect(broker.mqtt_port) as s:
        s.sendall(connect_packet("raw", "a", b"pw-a"))
        assert s.recv(4) == b"\x20\x02\x00\x00"
        s.sendall(b"\x00\x05hello")  # reserved packet type 0
        assert read_until_eof(s) == b""
    assert rules.event("disconnect", client_id="raw").reason.startswith("Protocol error")
    broker.publish(topic("b"), b"alive")
    assert other.get().payload == b"alive"


# ---- keepalive, kick, pushes -----------------------------------------------------------


def test_keepalive_limit_drops_idle_connection(rules, broker):
    rules.add("k", keepalive_limit=0.3)
    with raw_connect(broker.mqtt_port) as s:
        s.sendall(connect_packet("k", "k", b"pw-k"))
        assert read_until_eof(s) == b"\x20\x02\x00\x00"
    assert rules.event("keepalive", client_id="k").reason.startswith("Keepalive timeout")


def test_pingreq_resets_keepalive(rules, broker):
    rules.add("k", keepalive_limit=0.5)
    with raw_connect(broker.mqtt_port) as s:
        s.sendall(connect_packet("k", "k", b"pw-k"))
        assert s.recv(4) == b"\x20\x02\x00\x00"
        for _ in range(4):  # 4 x 0.2 s > 0.5 s of connection time, never 0.5 s idle
            s.settimeout(0.2)
            with pytest.raises(TimeoutError):
                s.recv(1)
            s.sendall(b"\xc0\x00")
            s.settimeout(WAIT)
            assert s.recv(2) == b"\xd0\x00"
    rules.event("disconnect", client_id="k")


def test_second_login_kicks_first_with_notify(rules, broker, clients):
    first = new(clients, broker.mqtt_port, "a", client_id="one")
    assert first.connect() == "Success"
    second = new(clients, broker.mqtt_port, "a", client_id="two")
    assert second.connect() == "Success"
    notice = first.get()
    assert notice.topic == "/ext/notify" and notice.qos == 0
    assert notice.payload == b'{"title":"kick","content":"Kicked by the same device"}'
    assert first.closed.wait(WAIT)
    assert rules.event("kicked", client_id="one").reason.startswith("Kicked by the same device")
    assert broker.online() == [(DeviceRef(PK, "a"), "two")]


def test_pushes_after_connack_then_close_after(rules, broker, clients):
    rules.add("r", pushes=(Push("/ext/register", b'{"deviceSecret":"s"}'),), close_after=0.3)
    c = new(clients, broker.mqtt_port, "r")
    assert c.connect() == "Success"
    msg = c.get()
    assert (msg.topic, msg.payload) == ("/ext/register", b'{"deviceSecret":"s"}')
    assert c.closed.wait(WAIT)
    assert "after CONNACK" in rules.event("disconnect", client_id="r").reason
    rules.message(direction="down", topic="/ext/register")


def test_console_disconnect(rules, broker, clients):
    c = new(clients, broker.mqtt_port, "a")
    c.connect()
    assert broker.disconnect(DeviceRef(PK, "a")) is True
    assert c.closed.wait(WAIT)
    assert broker.disconnect(DeviceRef(PK, "a")) is False


# ---- SUBSCRIBE ---------------------------------------------------------------------------


def test_suback_acl_and_qos_cap(rules, broker, clients):
    c = new(clients, broker.mqtt_port, "a")
    c.connect()
    assert c.subscribe((topic("a"), 2), (topic("b"), 1), (f"/{PK}/+/user/get", 0)) == [1, 128, 128]
    refused = rules.event("subscribe", accepted=False)
    assert refused.code == 0x80 and refused.explanation.rule == "topic_permission"


def test_suback_at_most_8_filters_per_packet(rules, broker, clients):
    c = new(clients, broker.mqtt_port, "a")
    c.connect()
    codes = c.subscribe(*[(topic("a", f"user/t{i}"), 0) for i in range(10)])
    assert codes == [0] * 8 + [128, 128]


def test_suback_at_most_100_subscriptions(rules, broker, clients):
    c = new(clients, broker.mqtt_port, "a")
    c.connect()
    codes: list[int] = []
    for start in range(0, 104, 8):
        codes += c.subscribe(*[(topic("a", f"user/t{i}"), 0) for i in range(start, start + 8)])
    assert codes == [0] * 100 + [128] * 4
    assert c.subscribe((topic("a", "user/t5"), 1)) == [1]  # re-subscribing is not a new one


# ---- PUBLISH -------------------------------------------------------------------------------


def test_devices_are_isolated_and_delivery_uses_the_publishers_qos(rules, broker, clients):
    a = new(clients, broker.mqtt_port, "a")
    b = new(clients, broker.mqtt_port, "b")
    a.connect(), b.connect()
    assert a.subscribe((topic("a", "user/#"), 0)) == [0]
    assert b.subscribe(topic("b", "user/#")) == [1]
    b.publish(topic("b", "user/update"), b"from b", 1)
    assert b.get().qos == 1
    a.publish(topic("a", "user/update"), b"from a", 1)
    got = a.get()
    # the platform ignores subscription QoS: a QoS1 publish reaches a QoS0 subscriber at QoS1
    assert (got.payload, got.qos) == (b"from a", 1)
    a.publish(topic("a", "user/x"), b"q0", 0)
    assert a.get().payload == b"q0"
    assert b.nothing()
    rules.message(direction="up", payload=b"from b", accepted=True)


def test_forbidden_publish_is_pubacked_not_routed(rules, broker, clients):
    rules.forbidden_pub.add(topic("a", "user/secret"))
    a = new(clients, broker.mqtt_port, "a")
    a.connect()
    a.subscribe(topic("a", "user/#"))
    a.publish(topic("a", "user/secret"), b"nope", 1)  # waits for the PUBACK
    rec = rules.message(payload=b"nope")
    assert rec.accepted is False and "topic_permission" in rec.reason
    a.publish(topic("a", "user/ok"), b"sync", 1)
    assert a.get().payload == b"sync"  # the forbidden one never arrived before it


def test_replies_are_published(rules, broker, clients):
    post = topic("a", "thing/event/property/post")
    rules.replies[post] = [Push(post + "_reply", b'{"code":200}')]
    a = new(clients, broker.mqtt_port, "a")
    a.connect()
    a.subscribe(post + "_reply")
    a.publish(post, b'{"id":"1"}', 1)
    assert a.get().payload == b'{"code":200}'
    rules.message(direction="down", topic=post + "_reply")


def test_retain_is_ignored_and_big_payload_dropped(rules, broker, clients):
    a = new(clients, broker.mqtt_port, "a")
    a.connect()
    a.publish(topic("a", "user/r"), b"retained?", 1, retain=True)
    a.publish(topic("a", "user/big"), b"x" * (256 * 1024 + 1), 1)
    assert "256 KB" in rules.message(topic=topic("a", "user/big")).reason
    a.subscribe(topic("a", "user/#"))
    a.publish(topic("a", "user/r2"), b"after", 1)
    assert a.get().payload == b"after"  # no retained message was replayed


def test_qos2_publish_closes(rules, broker, clients):
    a = new(clients, broker.mqtt_port, "a")
    a.connect()
    a.c.publish(topic("a", "user/update"), b"q2", 2)
    assert a.closed.wait(WAIT)
    assert "QoS 2" in rules.event("disconnect", client_id="a").reason
    assert rules.message(qos=2).accepted is False


def test_console_publish_counts_recipients(rules, broker, clients):
    assert broker.publish(topic("a"), "nobody") == 0
    assert rules.message(payload=b"nobody").reason == "no subscriber online"


# ---- clean session 0 ----------------------------------------------------------------------


def test_persistent_session_keeps_subscriptions(rules, broker, clients):
    a = new(clients, broker.mqtt_port, "a", clean=False)
    a.connect()
    assert a.subscribe(topic("a")) == [1]
    a.stop()
    rules.event("disconnect", client_id="a")
    assert broker.publish(topic("a"), b"while offline", 1) == 0
    again = new(clients, broker.mqtt_port, "a", clean=False)
    again.connect()
    assert again.session_present is True
    assert again.get().payload == b"while offline"


# ---- TLS, lifecycle, third-party clients ---------------------------------------------------


def test_tls_listener(rules, clients):
    server_ctx, client_ctx = make_server_context(), make_client_context()
    with EmulatedBroker(rules, ssl_context=server_ctx) as b:
        assert b.mqtts_port and b.mqtts_port != b.mqtt_port
        c = new(clients, b.mqtts_port, "a", tls=client_ctx)
        assert c.connect() == "Success"
        assert rules.requests[-1].tls is True
        c.subscribe(topic("a"))
        b.publish(topic("a"), b"secure")
        assert c.get().payload == b"secure"
        c.stop()


def test_start_stop_leaks_nothing_and_ports_rebind(rules):
    before = set(threading.enumerate())
    port = None
    for _ in range(5):
        with EmulatedBroker(rules, mqtt_port=port or 0) as b:
            port = b.mqtt_port
            c = Client(port, "a")
            assert c.connect() == "Success"
        assert c.closed.wait(WAIT)
        c.stop()
    assert set(threading.enumerate()) == before
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
    b = EmulatedBroker(rules)
    b.stop()  # stopping a never-started broker is a no-op
    with pytest.raises(RuntimeError):
        b.online()


@pytest.mark.skipif(
    shutil.which("mosquitto_pub") is None,
    reason="mosquitto-clients (mosquitto_pub/mosquitto_sub) not installed",
)
def test_mosquitto_clients(rules, broker):
    base = ["-h", "127.0.0.1", "-p", str(broker.mqtt_port), "-V", "mqttv311"]
    ok = subprocess.run(
        [
            "mosquitto_pub",
            *base,
            "-i",
            "mosq",
            "-u",
            "b",
            "-P",
            "pw-b",
            "-t",
            topic("b", "user/update"),
            "-m",
            "from mosquitto",
            "-q",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert ok.returncode == 0, ok.stderr  # QoS 1: exits 0 only after its PUBACK
    rec = rules.message(client_id="mosq")
    assert (rec.direction, rec.accepted, rec.payload) == ("up", True, b"from mosquitto")
    rules.event("disconnect", client_id="mosq", reason="Device disconnect")
    bad = subprocess.run(
        [
            "mosquitto_sub",
            *base,
            "-i",
            "mosq2",
            "-u",
            "b",
            "-P",
            "wrong",
            "-t",
            topic("b"),
            "-C",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert bad.returncode != 0
    assert "bad user name or password" in bad.stderr.lower(), bad.stderr
    rules.event("refused", client_id="mosq2", code=4)


def test_port_in_use_raises_and_leaves_no_thread(rules):
    before = set(threading.enumerate())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(Exception, match=r"in use|address"):
            EmulatedBroker(rules, mqtt_port=s.getsockname()[1]).start()
    assert set(threading.enumerate()) == before


def test_bare_tcp_probe_logs_nothing(rules, caplog):
    with caplog.at_level(logging.DEBUG, logger="airlab.cloud.broker"), EmulatedBroker(rules) as b:
        for _ in range(3):
            raw_connect(b.mqtt_port).close()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert rules.connections == []  # a port probe is not a connection attempt


def test_failed_tls_bind_releases_the_plain_port(rules):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        plain = EmulatedBroker(rules).start()
        free = plain.mqtt_port
        plain.stop()
        broken = EmulatedBroker(
            rules, mqtt_port=free, mqtts_port=s.getsockname()[1], ssl_context=make_server_context()
        )
        with pytest.raises(Exception, match=r"in use|address"):
            broken.start()
    with EmulatedBroker(rules, mqtt_port=free) as again:  # the plain port was released
        assert again.mqtt_port == free


def test_uplinks_beyond_the_platform_rate_are_dropped_silently(rules, clients):
    with EmulatedBroker(rules, connect_timeout=0.3, uplink_limits=(2, 2)) as broker:
        a = new(clients, broker.mqtt_port, "a")
        a.connect()
        a.subscribe(topic("a", "user/#"))
        for i in range(5):  # 5 in a burst: whatever second boundary falls inside, one is over 2/s
            a.publish(topic("a", "user/update"), f"m{i}".encode(), 1)  # each still PUBACKed
        dropped = rules.message(accepted=False)
        assert dropped.reason.startswith("Rate limit:2,current qps:")
        assert EmulatedBroker(rules).uplink_limits == (30, 10)  # the platform's default
