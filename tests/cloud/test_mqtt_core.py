"""The sans-IO broker core, transition by transition: no sockets, no threads, a fake clock.

A client is just the codec: its packets are encoded, fed to the core, and the core's
actions (bytes to send, closes, timers, log records with what follows their commit) are
checked, like mqttproto's client/broker pair tests.
"""

from __future__ import annotations

import doctest
import importlib
from dataclasses import dataclass, field

import pytest

from airlab.cloud.model import (
    ConnectDecision,
    ConnectKind,
    ConnectRequest,
    DeviceRef,
    Explanation,
    Permission,
    Push,
)
from airlab.cloud.mqtt_core import (
    CLOSE_EVENTS,
    KICK_PAYLOAD,
    MAX_PAYLOAD,
    TRANSITIONS,
    BrokerCore,
    BrokerStateError,
    Close,
    CloseReason,
    ConnInput,
    ConnState,
    LogConnection,
    LogMessage,
    Send,
    StartTimer,
    Timer,
    topic_matches,
)
from airlab.mqtt import codec as c

PK = "pk1"


@dataclass
class FakeRules:
    """Every device ``dev-*`` may log in with password ``pw``; it owns ``/pk1/<dn>/...``."""

    requests: list[ConnectRequest] = field(default_factory=list)
    activated: list[DeviceRef] = field(default_factory=list)
    decisions: dict[str, ConnectDecision] = field(default_factory=dict)
    replies: dict[str, list[Push]] = field(default_factory=dict)

    def decide_connect(self, request: ConnectRequest) -> ConnectDecision:
        self.requests.append(request)
        if request.client_id in self.decisions:
            return self.decisions[request.client_id]
        if request.password != b"pw":
            return ConnectDecision.refuse(4, rule="signature", message="wrong password")
        device = DeviceRef(PK, request.username or "")
        return ConnectDecision(0, device=device, kind=ConnectKind.DEVICE)

    def may_subscribe(self, device: DeviceRef, topic_filter: str) -> Permission:
        if topic_filter.startswith((f"/{PK}/{device.device_name}/", "/shared/")):
            return Permission(True)
        return Permission(False, Explanation("topic_permission", f"not yours: {topic_filter}"))

    def may_publish(self, device: DeviceRef, topic: str, qos: int) -> Permission:
        if topic.startswith(f"/{PK}/{device.device_name}/") or topic.startswith("/shared/"):
            return Permission(True)
        return Permission(False, Explanation("topic_permission", f"may not publish {topic}"))

    def replies_to(self, device: DeviceRef, topic: str, payload: bytes) -> list[Push]:
        return self.replies.get(topic, [])

    def connected(self, device: DeviceRef, kind: ConnectKind) -> None:
        self.activated.append(device)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rules() -> FakeRules:
    return FakeRules()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def core(rules: FakeRules, clock: Clock) -> BrokerCore:
    return BrokerCore(rules, clock=clock, wall=lambda: 5.0, connect_timeout=5.0)


def login(core: BrokerCore, dn: str, *, clean: bool = True, remote: str = "10.0.0.1:1") -> int:
    cid, _ = core.open(remote)
    acts = core.receive(cid, c.encode(c.Connect(f"cid-{dn}", dn, b"pw", 60, clean)))
    assert isinstance(acts[0], Send) and acts[0].data[:2] == b"\x20\x02", acts
    assert acts[0].data[3] == 0
    return cid


def sent(acts: list, cid: int) -> list[c.Packet]:
    """The packets the actions send to ``cid`` (not those waiting for a commit)."""
    data = b"".join(a.data for a in acts if isinstance(a, Send) and a.conn == cid)
    return c.PacketReader().feed(data)


def logs(acts: list, kind: type = LogConnection) -> list:
    return [a for a in acts if isinstance(a, kind)]


# ---- the transition table ------------------------------------------------------------


def test_the_table_allows_only_its_moves(core: BrokerCore) -> None:
    assert TRANSITIONS[ConnState.AWAIT_CONNECT][ConnInput.ACCEPT] is ConnState.CONNECTED
    assert TRANSITIONS[ConnState.CLOSED] == {}
    cid = login(core, "dev-a")
    conn = core._conns[cid]  # the record behind the id: tests may look inside the core
    with pytest.raises(BrokerStateError, match="ACCEPT in CONNECTED"):
        conn.move(ConnInput.ACCEPT)
    assert {r.value[0] for r in CloseReason} == {"disconnect", "kicked", "keepalive"}
    assert CLOSE_EVENTS[CloseReason.KICKED] == ("kicked", False, "Kicked by the same device")


# ---- before CONNACK ------------------------------------------------------------------


def test_open_starts_the_connect_window_and_its_expiry_is_logged_before_the_close(
    core: BrokerCore,
) -> None:
    cid, acts = core.open("10.0.0.9:7")
    assert acts == [StartTimer(cid, Timer.CONNECT, 5.0)]
    assert core.state_of(cid) is ConnState.AWAIT_CONNECT
    acts = core.timer(cid, Timer.CONNECT)
    (log,) = acts
    assert log.event.event == "timeout" and log.event.reason == "no CONNECT within 5 s: closed"
    assert log.then == (Close(cid, abort=True),)  # closed only once logged
    assert core.state_of(cid) is ConnState.REFUSING
    assert core.receive(cid, b"\x10") == []  # input is ignored now
    assert core.connection_lost(cid) == []
    assert core.state_of(cid) is None


def test_a_bare_probe_logs_nothing_a_half_connect_does(core: BrokerCore) -> None:
    cid, _ = core.open("p:1")
    assert core.connection_lost(cid) == []
    cid, _ = core.open("p:2")
    assert core.receive(cid, c.encode(c.Connect("x"))[:5]) == []
    (log,) = core.connection_lost(cid)
    assert (log.event.event, log.event.reason) == ("refused", "closed inside CONNECT")


@pytest.mark.parametrize(
    ("first", "why"),
    [
        (b"\x16\x03\x01", "a TLS handshake arrived on the plain-TCP MQTT port"),
        (b"\x30\x00", "first packet is not CONNECT (byte 0x30)"),
        (b"\x10\x04\x00\x04MQ", "CONNECT protocol name: length field beyond"),
        (b"\x10\xff\xff\x04", "packet of 81919 bytes exceeds 65536"),
    ],
)
def test_garbage_before_connect_is_refused_and_aborted(
    core: BrokerCore, first: bytes, why: str
) -> None:
    cid, _ = core.open("g:1")
    (log,) = core.receive(cid, first)
    assert log.event.event == "refused" and why in log.event.reason
    assert log.event.code is None and log.then == (Close(cid, abort=True),)


def test_mqtt5_gets_connack_1_after_its_log(core: BrokerCore) -> None:
    cid, _ = core.open("g:1")
    (log,) = core.receive(cid, c.encode(c.Connect("x", protocol_level=5)))
    assert log.event.code == 1 and log.event.explanation.rule == "protocol_version"
    assert log.then == (Send(cid, b"\x20\x02\x00\x01"), Close(cid))


def test_a_refused_connect_is_answered_only_after_its_log(
    core: BrokerCore, rules: FakeRules
) -> None:
    live = login(core, "dev-a")
    cid, _ = core.open("10.0.0.2:2")
    (log,) = core.receive(cid, c.encode(c.Connect("cid-dev-a", "dev-a", b"bad")))
    assert (log.event.event, log.event.code, log.event.client_id) == ("refused", 4, "cid-dev-a")
    assert log.event.explanation.rule == "signature"
    assert log.then == (Send(cid, b"\x20\x02\x00\x04"), Close(cid))
    assert core.state_of(live) is ConnState.CONNECTED  # the live session is untouched
    assert core.online() == [(DeviceRef(PK, "dev-a"), "cid-dev-a")]


def test_broken_rules_refuse_with_code_3(core: BrokerCore, rules: FakeRules) -> None:
    rules.decisions["odd"] = ConnectDecision(0)  # accepted without a device
    cid, _ = core.open("g:1")
    (log,) = core.receive(cid, c.encode(c.Connect("odd")))
    assert log.event.code == 3 and log.event.explanation.rule == "internal_error"


def test_the_host_rule_sees_the_sni_only_over_tls(core: BrokerCore, rules: FakeRules) -> None:
    cid, _ = core.open("t:1", tls=True, server_name="pk1.iot-as-mqtt.cn-shanghai.aliyuncs.com")
    core.receive(cid, c.encode(c.Connect("a", "dev-a", b"pw")))
    cid, _ = core.open("t:2")
    core.secured(cid, "late.example")  # a sniffing port found a ClientHello
    core.receive(cid, c.encode(c.Connect("b", "dev-b", b"pw")))
    cid, _ = core.open("t:3")
    core.receive(cid, c.encode(c.Connect("c", "dev-c", b"pw")))
    got = [(r.tls, r.server_name) for r in rules.requests]
    assert got == [
        (True, "pk1.iot-as-mqtt.cn-shanghai.aliyuncs.com"),
        (True, "late.example"),
        (False, None),
    ]


# ---- CONNACK and what follows ----------------------------------------------------------


def test_accept_activates_then_connacks_then_logs(core: BrokerCore, rules: FakeRules) -> None:
    cid, _ = core.open("10.0.0.1:1")
    acts = core.receive(cid, c.encode(c.Connect("cid-a", "dev-a", b"pw")))
    assert rules.activated == [DeviceRef(PK, "dev-a")]
    assert acts[0] == Send(cid, b"\x20\x02\x00\x00")
    assert acts[1].event.event == "connect" and acts[1].then is None
    assert core.state_of(cid) is ConnState.CONNECTED


def test_pipelined_packets_after_connect_are_handled(core: BrokerCore) -> None:
    cid, _ = core.open("10.0.0.1:1")
    wire = c.encode(c.Connect("cid-a", "dev-a", b"pw")) + c.encode(c.PINGREQ)
    assert sent(core.receive(cid, wire), cid) == [c.Connack(0), c.PINGRESP]


def test_keepalive_on_the_clock(core: BrokerCore, rules: FakeRules, clock: Clock) -> None:
    rules.decisions["k"] = ConnectDecision(0, device=DeviceRef(PK, "k"), keepalive_limit=90.0)
    cid, _ = core.open("k:1")
    acts = core.receive(cid, c.encode(c.Connect("k")))
    assert StartTimer(cid, Timer.KEEPALIVE, 90.0) in acts
    clock.now += 60
    core.receive(cid, c.encode(c.PINGREQ))  # resets the idle time
    clock.now += 30
    assert core.timer(cid, Timer.KEEPALIVE) == [StartTimer(cid, Timer.KEEPALIVE, 60.0)]
    clock.now += 60
    acts = core.timer(cid, Timer.KEEPALIVE)
    assert acts[0] == Close(cid)
    assert acts[1].event.event == "keepalive"
    assert acts[1].event.reason == "Keepalive timeout: no packet for 90.0 s (limit 90 s)"
    assert core.timer(cid, Timer.KEEPALIVE) == []  # a stale timer does nothing


def test_pushes_then_close_after(core: BrokerCore, rules: FakeRules) -> None:
    rules.decisions["r"] = ConnectDecision(
        0, device=DeviceRef(PK, "r"), pushes=(Push("/ext/register", b"secret"),), close_after=15
    )
    cid, _ = core.open("r:1")
    acts = core.receive(cid, c.encode(c.Connect("r")))
    assert sent(acts, cid) == [c.Connack(0), c.Publish("/ext/register", b"secret")]
    assert StartTimer(cid, Timer.CLOSE_AFTER, 15) in acts
    acts = core.timer(cid, Timer.CLOSE_AFTER)
    assert acts[0] == Close(cid) and acts[1].event.reason.endswith("closed 15 s after CONNACK")


def test_the_newer_login_kicks_the_older_with_notify_first(core: BrokerCore) -> None:
    old = login(core, "dev-a")
    new, _ = core.open("10.0.0.2:2")
    acts = core.receive(new, c.encode(c.Connect("cid-2", "dev-a", b"pw")))
    kinds = [(type(a).__name__, getattr(a, "conn", None)) for a in acts]
    assert kinds[:4] == [("Send", old), ("LogMessage", None), ("Close", old),
                         ("LogConnection", None)]  # fmt: skip
    assert sent(acts, old) == [c.Publish("/ext/notify", KICK_PAYLOAD)]
    assert acts[3].event.event == "kicked" and "client id 'cid-2'" in acts[3].event.reason
    assert sent(acts, new) == [c.Connack(0)]
    assert core.online() == [(DeviceRef(PK, "dev-a"), "cid-2")]
    assert core.connection_lost(old) == []  # already logged as kicked


# ---- PUBLISH ---------------------------------------------------------------------------


def test_qos1_uplink_is_routed_at_once_and_pubacked_after_its_log(core: BrokerCore) -> None:
    a = login(core, "dev-a")
    b = login(core, "dev-b")
    core.receive(b, c.encode(c.Subscribe(1, (("/shared/#", 0),))))
    acts = core.receive(a, c.encode(c.Publish("/shared/x", b"hi", 1, 9)))
    assert sent(acts, b) == [c.Publish("/shared/x", b"hi", 1, 1)]  # the publisher's QoS
    (log,) = logs(acts, LogMessage)
    assert (log.record.direction, log.record.accepted) == ("up", True)
    assert sent(acts, a) == []
    assert log.then == (Send(a, b"\x40\x02\x00\x09"),)
    assert core._sessions[f"{PK}/dev-b"].inflight  # until dev-b's PUBACK
    core.receive(b, c.encode(c.Puback(1)))
    assert not core._sessions[f"{PK}/dev-b"].inflight


@pytest.mark.parametrize(
    ("topic", "payload", "why"),
    [
        ("/pk1/dev-b/user/x", b"x", "topic_permission: may not publish /pk1/dev-b/user/x"),
        ("/pk1/dev-a/user/x", b"x" * (MAX_PAYLOAD + 1), "exceeds 256 KB: discarded"),
    ],
)
def test_refused_uplinks_are_logged_not_routed_and_still_pubacked(
    core: BrokerCore, topic: str, payload: bytes, why: str
) -> None:
    a = login(core, "dev-a")
    b = login(core, "dev-b")
    core.receive(b, c.encode(c.Subscribe(1, (("/pk1/#", 0),))))  # refused: not dev-b's
    acts = core.receive(a, c.encode(c.Publish(topic, payload, 1, 3)))
    (log,) = logs(acts, LogMessage)
    assert not log.record.accepted and why in log.record.reason
    assert log.then == (Send(a, b"\x40\x02\x00\x03"),)
    assert sent(acts, b) == []


def test_the_uplink_throttle_counts_per_second(rules: FakeRules, clock: Clock) -> None:
    core = BrokerCore(rules, clock=clock, uplink_limits=(2, 1))
    a = login(core, "dev-a")
    reasons = []
    for i in range(4):
        acts = core.receive(a, c.encode(c.Publish("/pk1/dev-a/user/u", b"%d" % i)))
        reasons.append(logs(acts, LogMessage)[0].record.reason)
    assert reasons == [None, None, "Rate limit:2,current qps:3", "Rate limit:2,current qps:4"]
    clock.now += 1
    acts = core.receive(a, c.encode(c.Publish("/pk1/dev-a/user/u", b"q1", 1, 1)))
    assert logs(acts, LogMessage)[0].record.accepted
    acts = core.receive(a, c.encode(c.Publish("/pk1/dev-a/user/u", b"q1", 1, 2)))
    (log,) = logs(acts, LogMessage)
    assert log.record.reason == "Rate limit:1,current qps:2" and log.then  # still PUBACKed


def test_replies_follow_the_uplink_log(core: BrokerCore, rules: FakeRules) -> None:
    a = login(core, "dev-a")
    core.receive(a, c.encode(c.Subscribe(1, (("/pk1/dev-a/user/#", 1),))))
    rules.replies["/pk1/dev-a/user/post"] = [Push("/pk1/dev-a/user/post_reply", b"ok", 1)]
    acts = core.receive(a, c.encode(c.Publish("/pk1/dev-a/user/post", b"{}", 0)))
    up, down = logs(acts, LogMessage)
    assert (up.record.direction, down.record.direction) == ("up", "down")
    assert c.Publish("/pk1/dev-a/user/post_reply", b"ok", 1, 1) in sent(acts, a)


def test_qos2_uplink_closes_the_connection(core: BrokerCore) -> None:
    a = login(core, "dev-a")
    acts = core.receive(a, c.encode(c.Publish("/pk1/dev-a/user/x", b"x", 2, 1)))
    assert logs(acts, LogMessage)[0].record.reason.startswith("QoS 2 is not supported")
    assert Close(a) in acts
    assert logs(acts)[0].event.reason.startswith("Protocol error: QoS 2 PUBLISH")


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (c.encode(c.Connect("again")), "second CONNECT on one connection"),
        (c.encode(c.Pubrel(1)), "unexpected PUBREL from a client"),
        (b"\x00\x05hello", "reserved packet type 0"),
        (b"\x30\x05\x00\x03a/+", "invalid topic name 'a/+' in PUBLISH"),
    ],
)
def test_protocol_errors_close_with_the_reason(core: BrokerCore, wire: bytes, why: str) -> None:
    a = login(core, "dev-a")
    acts = core.receive(a, c.encode(c.PINGREQ) + wire)
    assert sent(acts, a) == [c.PINGRESP]  # what came before the mistake is handled
    assert Close(a) in acts
    assert logs(acts)[0].event.reason == f"Protocol error: {why}"


def test_disconnect_and_eof_are_logged_with_the_platforms_words(core: BrokerCore) -> None:
    a = login(core, "dev-a")
    acts = core.receive(a, c.encode(c.DISCONNECT))
    assert logs(acts)[0].event.reason == "Device disconnect" and logs(acts)[0].event.accepted
    b = login(core, "dev-b")
    assert logs(core.connection_lost(b))[0].event.reason == "Connection reset by peer"


# ---- SUBSCRIBE -------------------------------------------------------------------------


def test_suback_waits_for_the_last_refusal_and_grants_are_logged(core: BrokerCore) -> None:
    a = login(core, "dev-a")
    topics = (("/pk1/dev-a/user/get", 2), ("/pk1/dev-b/user/get", 1), ("/pk1/dev-a/a/#/b", 0))
    acts = core.receive(a, c.encode(c.Subscribe(7, topics)))
    granted, refused1, refused2 = logs(acts)
    assert granted.event.accepted and granted.event.code == 1  # QoS capped at 1
    assert refused1.then is None and refused1.event.code == 0x80
    assert "topic_permission" in refused1.event.reason
    assert refused2.event.reason.endswith("invalid topic filter")
    assert refused2.then == (Send(a, c.encode(c.Suback(7, (1, 0x80, 0x80)))),)
    assert sent(acts, a) == []
    assert core.subscriptions(DeviceRef(PK, "dev-a")) == {"/pk1/dev-a/user/get": 1}


def test_subscription_limits(core: BrokerCore) -> None:
    a = login(core, "dev-a")
    many = tuple((f"/pk1/dev-a/user/{i}", 0) for i in range(9))
    acts = core.receive(a, c.encode(c.Subscribe(1, many)))
    assert "more than 8 topic filters" in logs(acts)[-1].event.reason
    for n in range(1, 14):
        batch = tuple((f"/pk1/dev-a/more/{n}/{i}", 0) for i in range(8))
        acts = core.receive(a, c.encode(c.Subscribe(n + 1, batch)))
    assert len(core.subscriptions(DeviceRef(PK, "dev-a"))) == 100
    assert "already has 100 subscriptions" in logs(acts)[-1].event.reason


def test_unsubscribe_stops_delivery(core: BrokerCore) -> None:
    a = login(core, "dev-a")
    core.receive(a, c.encode(c.Subscribe(1, (("/pk1/dev-a/+/get", 0),))))
    assert core.publish("/pk1/dev-a/user/get", b"1", 0)[0] == 1
    acts = core.receive(a, c.encode(c.Unsubscribe(2, ("/pk1/dev-a/+/get",))))
    assert sent(acts, a) == [c.Unsuback(2)]
    count, acts = core.publish("/pk1/dev-a/user/get", b"2", 0)
    assert count == 0 and logs(acts, LogMessage)[0].record.reason == "no subscriber online"


# ---- sessions --------------------------------------------------------------------------


def test_a_persistent_session_keeps_subscriptions_inflight_and_queued(
    core: BrokerCore,
) -> None:
    a = login(core, "dev-a", clean=False)
    core.receive(a, c.encode(c.Subscribe(1, (("/pk1/dev-a/user/get", 1),))))
    n, acts = core.publish("/pk1/dev-a/user/get", b"first", 1)
    assert sent(acts, a) == [c.Publish("/pk1/dev-a/user/get", b"first", 1, 1)]  # never acked
    core.connection_lost(a)
    n, _ = core.publish("/pk1/dev-a/user/get", b"offline", 1)
    assert n == 0
    core.publish("/pk1/dev-a/user/get", b"qos0 is not kept", 0)
    again, _ = core.open("10.0.0.1:2")
    acts = core.receive(again, c.encode(c.Connect("cid-dev-a", "dev-a", b"pw", 60, False)))
    assert sent(acts, again) == [
        c.Connack(0, session_present=True),
        c.Publish("/pk1/dev-a/user/get", b"first", 1, 1, dup=True),
        c.Publish("/pk1/dev-a/user/get", b"offline", 1, 2),
    ]


def test_a_clean_session_forgets(core: BrokerCore) -> None:
    a = login(core, "dev-a", clean=False)
    core.receive(a, c.encode(c.Subscribe(1, (("/pk1/dev-a/user/get", 1),))))
    core.connection_lost(a)
    again, _ = core.open("10.0.0.1:2")
    acts = core.receive(again, c.encode(c.Connect("cid-dev-a", "dev-a", b"pw", 60, True)))
    assert sent(acts, again) == [c.Connack(0, session_present=False)]
    assert core.subscriptions(DeviceRef(PK, "dev-a")) == {}


def test_same_client_id_different_devices_do_not_collide(core: BrokerCore) -> None:
    cid1, _ = core.open("x:1")
    core.receive(cid1, c.encode(c.Connect("same", "dev-a", b"pw")))
    cid2, _ = core.open("x:2")
    core.receive(cid2, c.encode(c.Connect("same", "dev-b", b"pw")))
    assert len(core.online()) == 2


# ---- console ---------------------------------------------------------------------------


def test_console_disconnect_and_shutdown(core: BrokerCore) -> None:
    a = login(core, "dev-a")
    b = login(core, "dev-b")
    waiting, _ = core.open("w:1")
    done, acts = core.disconnect(DeviceRef(PK, "dev-a"))
    assert done and Close(a) in acts
    assert logs(acts)[0].event.reason == "Closed from the console"
    assert core.disconnect(DeviceRef(PK, "dev-a"))[0] is False
    acts = core.shutdown()
    assert Close(b) in acts and Close(waiting, abort=True) in acts
    assert [e.event.reason for e in logs(acts)] == ["Emulator stopped"]


@pytest.mark.parametrize(
    ("topic", "filt", "match"),
    [
        ("a/b", "a/b", True),
        ("a/b", "a/+", True),
        ("a/b/c", "a/+", False),
        ("a/b/c", "a/#", True),
        ("a", "a/#", True),
        ("/pk/dn/get", "/pk/+/get", True),
        ("/pk/dn/get", "+/pk/dn/get", True),
        ("$SYS/x", "+/x", False),
    ],
)
def test_topic_matching(topic: str, filt: str, match: bool) -> None:
    assert topic_matches(topic, filt) is match


@pytest.mark.parametrize(
    "name",
    [
        "airlab.cloud.mqtt_core",
        "airlab.cloud.mqtt_states",
        "airlab.cloud.mqtt_routing",
        "airlab.cloud.mqtt_server",
        "airlab.cloud.broker",
    ],
)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
