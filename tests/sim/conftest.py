"""Shared helpers for the firmware tests: a Driver that feeds a Firmware and records
what it returns (host bytes, network requests, timers)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from airlab.sim.actions import (
    Action,
    CancelTimer,
    LinkOpened,
    MqttConnack,
    MqttConnect,
    MqttPuback,
    MqttPubcomp,
    MqttPublish,
    MqttPubrec,
    MqttSuback,
    MqttSubscribe,
    MqttUnsuback,
    MqttUnsubscribe,
    NetEvent,
    NetRequest,
    OpenLink,
    StartTimer,
    ToHost,
)
from airlab.sim.firmware import Firmware, FirmwareConfig

UTC = dt.UTC


def framed(data: bytes) -> bool:
    """Non-echo output: starts with CRLF and ends with CRLF (or is a prompt)."""
    return data.startswith(b"\r\n") and data.endswith(b"\r\n")


class Driver:
    """A Firmware plus bookkeeping; ``auto`` answers network requests like a happy network."""

    def __init__(self, config: FirmwareConfig | None = None, auto: bool = False, **kw: Any):
        self.fw = Firmware(config or FirmwareConfig(**kw))
        self.fw.strict = True
        self.out = bytearray()
        self.actions: list[Action] = []
        self.requests: list[NetRequest] = []
        self.timers: dict[str, float] = {}
        self.auto = auto
        self.check_framing = True
        self.http_reply: Callable[[Any], list[NetEvent]] | None = None

    def take(self, actions: Iterable[Action]) -> bytes:
        mark = len(self.out)
        pending: list[NetEvent] = []
        for a in actions:
            self.actions.append(a)
            if isinstance(a, ToHost):
                assert isinstance(a.data, bytes) and a.data
                if a.latency != "echo" and self.check_framing:
                    assert framed(a.data) or a.data.endswith(b">") or a.data.endswith(b"> "), a
                self.out += a.data
            elif isinstance(a, StartTimer):
                self.timers[a.name] = a.seconds
            elif isinstance(a, CancelTimer):
                self.timers.pop(a.name, None)
            elif isinstance(a, NetRequest):
                self.requests.append(a)
                if self.auto:
                    pending += self.respond(a)
        for ev in pending:
            self.take(self.fw.network(ev))
        return bytes(self.out[mark:])

    def respond(self, req: NetRequest) -> list[NetEvent]:
        if isinstance(req, OpenLink):
            return [LinkOpened(req.link)]
        if isinstance(req, MqttConnect):
            return [MqttConnack(0)]
        if isinstance(req, MqttSubscribe):
            return [MqttSuback(req.packet_id, (req.qos,))]
        if isinstance(req, MqttUnsubscribe):
            return [MqttUnsuback(req.packet_id)]
        if isinstance(req, MqttPublish) and req.qos == 1:
            return [MqttPuback(req.packet_id or 0)]
        if isinstance(req, MqttPublish) and req.qos == 2:
            return [MqttPubrec(req.packet_id or 0), MqttPubcomp(req.packet_id or 0)]
        if self.http_reply is not None:
            return self.http_reply(req)
        return []

    def send(self, data: bytes) -> bytes:
        return self.take(self.fw.receive(data))

    def net(self, *events: NetEvent) -> bytes:
        mark = len(self.out)
        for ev in events:
            self.take(self.fw.network(ev))
        return bytes(self.out[mark:])

    def fire(self, name: str, now: dt.datetime | None = None) -> bytes:
        self.timers.pop(name, None)
        return self.take(self.fw.timer(name, now))

    def fire_all(self, limit: int = 20) -> bytes:
        mark = len(self.out)
        for _ in range(limit):
            if not self.timers:
                break
            name = next(iter(self.timers))
            self.fire(name)
        return bytes(self.out[mark:])

    def last(self, kind: type) -> Any:
        for r in reversed(self.requests):
            if isinstance(r, kind):
                return r
        raise AssertionError(f"no {kind.__name__} request")

    def connect_mqtt(self) -> None:
        """Bring up a connected MQTT session (output discarded)."""
        auto, self.auto = self.auto, True
        self.send(b'AT+MCONFIG="cid","user","pass"\r\n')
        self.send(b'AT+MIPSTART="broker.example",1883\r\n')
        self.send(b"AT+MCONNECT=1,60\r\n")
        self.auto = auto
        assert self.fw.mqtt_state == "connected"


@pytest.fixture(autouse=True)
def _strict_firmware(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every firmware in these tests, including the ones inside a SimulatedModule, re-raises
    internal errors instead of answering ERROR: a bug fails the test, it is not hidden."""
    monkeypatch.setattr(Firmware, "strict", True)


@pytest.fixture
def make_driver() -> Callable[..., Driver]:
    return Driver


@pytest.fixture
def drv() -> Driver:
    return Driver()
