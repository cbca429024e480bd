"""The same session code over a real pyserial socket:// port to a TcpBridge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airlab.session import ModemSession, PortClosed, recipes
from airlab.sim.bridges import TcpBridge
from airlab.sim.device import SimulatedModule
from airlab.sim.hosts import HostTable
from tests.session.helpers import DN, DS, GET_TOPIC, PK, UPDATE_TOPIC


@pytest.fixture
def bridge(cloud: tuple[Any, Path]) -> Iterator[TcpBridge]:
    module = SimulatedModule(profile="instant", hosts=HostTable.from_endpoints(cloud[1]))
    b = TcpBridge(module)
    b.start()
    try:
        yield b
    finally:
        b.close()
        module.close()


def test_socket_port_runs_the_recipes(bridge: TcpBridge, cloud: tuple[Any, Path]) -> None:
    emu = cloud[0]
    assert bridge.url.startswith("socket://")
    with ModemSession(bridge.url) as s:
        assert s.probe().ok
        recipes.attach(s)
        login = recipes.http_auth_then_mqtt(s, product_key=PK, device_name=DN, device_secret=DS)
        assert login.step("MCONNECT").urc == "CONNACK OK"
        recipes.subscribe(s, GET_TOPIC)
        emu.publish(GET_TOPIC, b"over tcp")
        assert s.messages.get(5).payload == b"over tcp"
        assert recipes.publish(s, UPDATE_TOPIC, "hi", qos=1).ack_latency is not None
        recipes.disconnect(s)
        events = s.events
    assert s.transcript.events()[: len(events)] == events[: len(s.transcript.events())]


def test_port_going_away_is_reported(bridge: TcpBridge) -> None:
    with ModemSession(bridge.url) as s:
        assert s.command("AT").ok
        bridge.close()  # the other end disappears
        s.reader_thread.join(5)  # the reader notices on its next read and stops
        assert not s.reader_thread.is_alive() and not s.is_open
        with pytest.raises(PortClosed, match="serial port failed"):
            s.command("AT", timeout=0.2)
