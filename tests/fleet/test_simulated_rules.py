"""The emulator's rules on simulated time: a fleet on a VirtualTimeLoop serves its broker on
the same loop, so the CONNECT window, keepalive and the per-second throttle read the
fleet's clock, not the machine's."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airlab.aliyun import direct_mqtt_credentials
from airlab.cloud.broker import EmulatedBroker
from airlab.cloud.fixtures import (
    TUTORIAL_DEVICE_NAME,
    TUTORIAL_DEVICE_SECRET,
    TUTORIAL_PRODUCT_KEY,
    load_tutorial,
)
from airlab.cloud.model import ConnectionEvent
from airlab.cloud.registry import Registry
from airlab.cloud.service_support import ServiceRules
from airlab.fleet import Scenario, run_fleet
from airlab.fleet.clock import VirtualTimeLoop
from airlab.mqtt.codec import Connect, Publish, encode
from airlab.mqtt.loopthread import LoopThread


class _Recorder:
    """Rules that refuse nobody's socket and record every connection event."""

    def __init__(self) -> None:
        self.events: list[ConnectionEvent] = []

    def log_connection(self, event: ConnectionEvent, on_commit: object = None) -> None:
        self.events.append(event)
        if callable(on_commit):
            on_commit()


@pytest.fixture
def virtual() -> Iterator[LoopThread]:
    runner = LoopThread("test-virtual", VirtualTimeLoop).start()
    yield runner
    runner.stop()


def test_the_connect_window_closes_on_simulated_time(virtual: LoopThread) -> None:
    """A socket that sends no CONNECT is closed after the 5 s window of the loop's
    clock: the virtual clock jumps there at once (nothing else is scheduled)."""
    rules = _Recorder()
    with EmulatedBroker(rules, runner=virtual, connect_timeout=5.0) as broker:  # type: ignore[arg-type]
        assert virtual.loop is not None
        began_virtual, began_real = virtual.loop.time(), time.monotonic()
        with socket.create_connection(("127.0.0.1", broker.mqtt_port or 0), timeout=30) as s:
            assert s.recv(16) == b""  # closed by the broker, no CONNACK
        assert virtual.loop.time() - began_virtual >= 5.0
        assert time.monotonic() - began_real < 5.0  # the window passed in simulated time
    assert virtual.running  # the broker leaves a loop it was given running
    assert [e.event for e in rules.events] == ["timeout"]


def test_the_throttle_counts_simulated_seconds() -> None:
    """40 QoS 1 messages a second from each modem: the platform keeps 10 a second per
    device. On simulated time the emulator's windows are simulated seconds too, so the
    excess is dropped exactly as on real time (before, simulated runs turned it off)."""
    scenario = Scenario(modems=2, rate=40, duration=3, ramp=0, clock="simulated")
    result = run_fleet(scenario)
    s = result.summary
    assert s["published"] == s["acked"] == 240  # throttled uplinks are still PUBACKed
    # 40 in each second; the run may straddle one more one-second window per modem
    assert 2 * (3 * 40 - 4 * 10) <= s["throttled"] <= 2 * (3 * 40 - 3 * 10)
    assert s["logged_uplinks"] == 240 - s["throttled"]
    per_second = result.throttled_per_second()
    assert per_second.sum() == s["throttled"] and len(per_second) in (3, 4)
    refused = result.messages[~result.messages["accepted"].astype(bool)]
    assert len(refused) == s["throttled"]
    assert refused["reason"].str.startswith("Rate limit:10,current qps:").all()


def test_the_throttle_can_be_turned_off_on_simulated_time() -> None:
    scenario = Scenario(modems=1, rate=40, duration=1, ramp=0, clock="simulated")
    s = run_fleet(scenario, throttle=False).summary
    assert (s["published"], s["throttled"], s["logged_uplinks"]) == (40, 0, 40)


def test_a_silent_device_is_dropped_after_its_keepalive_in_simulated_time(
    virtual: LoopThread,
) -> None:
    """The tutorial device logs in with keepalive 30 and then says nothing: the platform
    drops it after 1.5 x 30 s of the loop's clock (``Keepalive timeout``)."""
    loop = virtual.loop
    assert loop is not None

    def wall() -> float:  # epoch seconds on the loop's clock
        return 1_700_000_000.0 + loop.time()

    registry = Registry(clock=wall)
    load_tutorial(registry)
    rules = ServiceRules(registry, clock=wall)
    cred = direct_mqtt_credentials(
        TUTORIAL_PRODUCT_KEY, TUTORIAL_DEVICE_NAME, TUTORIAL_DEVICE_SECRET
    )
    connect = Connect(cred.client_id, cred.username, cred.password.encode(), keepalive=30)
    logging_in = [True]
    unwatch = loop.watch(lambda: logging_in[0])  # this client's answer is awaited
    try:
        with (
            EmulatedBroker(rules, runner=virtual, wall=wall) as broker,
            socket.create_connection(("127.0.0.1", broker.mqtt_port or 0), 30) as s,
        ):
            s.sendall(encode(connect))
            assert s.recv(4) == b"\x20\x02\x00\x00"  # CONNACK 0
            logging_in[0] = False  # from now on the client is silent
            assert s.recv(16) == b""  # then closed by the broker
        registry.flush()
        log = {e.event: e for e in registry.connection_log()}
        assert log["keepalive"].reason.startswith("Keepalive timeout")
        assert 45.0 <= log["keepalive"].time - log["connect"].time < 46.0
    finally:
        unwatch()
        registry.close()


class _SlowDisk(ServiceRules):
    """The message log committed by a thread of its own that takes 0.2 s (a slow disk)."""

    def log_messages(self, records: Any, on_commit: Any = None) -> None:
        def commit_later() -> None:
            time.sleep(0.2)  # the disk's real latency (a peer, not a test wait)
            ServiceRules.log_messages(self, records, on_commit)

        threading.Thread(target=commit_later, daemon=True).start()


def test_a_commit_on_another_thread_holds_simulated_time(virtual: LoopThread) -> None:
    """A PUBACK goes out only once its record is committed. When a thread of its own
    commits (a slow disk here, an in-memory registry's writer), the broker on a
    simulated loop holds the clock until the commit is carried out; before, the clock
    jumped to the next timer meanwhile, the keepalive drop 45 s on, and the device got
    no PUBACK."""
    registry = Registry()
    load_tutorial(registry)
    rules = _SlowDisk(registry)
    cred = direct_mqtt_credentials(
        TUTORIAL_PRODUCT_KEY, TUTORIAL_DEVICE_NAME, TUTORIAL_DEVICE_SECRET
    )
    loop = virtual.loop
    assert loop is not None
    holding = [True]
    unwatch = loop.watch(lambda: holding[0])  # until the PUBLISH is on its way
    topic = f"/{TUTORIAL_PRODUCT_KEY}/{TUTORIAL_DEVICE_NAME}/user/update"
    try:
        with (
            EmulatedBroker(rules, runner=virtual) as broker,
            socket.create_connection(("127.0.0.1", broker.mqtt_port or 0), 30) as s,
        ):
            s.sendall(encode(Connect(cred.client_id, cred.username, cred.password.encode(),
                                     keepalive=30)))  # fmt: skip
            assert s.recv(4) == b"\x20\x02\x00\x00"
            s.sendall(encode(Publish(topic, b"21.5", 1, 7)))  # readable before it returns
            holding[0] = False  # from now on only the broker's pending commit holds
            assert s.recv(4) == b"\x40\x02\x00\x07"  # PUBACK of packet 7, no close
        registry.flush()
        assert [m.payload for m in registry.message_log()] == [b"21.5"]
    finally:
        unwatch()
        registry.close()
