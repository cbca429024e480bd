"""Acceptance: the tutorial's captures replayed into the simulator + cloud emulator.

The host side of each capture is written to a simulated Air780EP (``airsim://``) whose
host names resolve to a local cloud emulator loaded with the tutorial's identities.
Everything the module prints must equal the capture's received bytes exactly, timing
aside.  The only values allowed to differ are the iotId/iotToken the emulator issues
(same lengths): the replay substitutes them in the later MCONFIG, as a user would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

import airlab  # noqa: F401  (registers airsim://)
from airlab.at import Direction, read_capture

CAPTURES = Path(__file__).resolve().parents[2] / "data" / "captures"
TUTORIAL_IOT_ID = "2BGmgWFvoXlbi1Er9sk4k1hip0"
TUTORIAL_TOKEN = "137eb0759ca248b79383a60c0b0e0f80"
CONNECT_FIRST = (
    b'AT+MCONFIG="868488076506128|securemode=3,signmethod=hmacmd5|",'
    b'"868488076506128&k1hipglLdjU","0f655b12adf519b9a7a2b0a990f398b6"\r\n',
    b'AT+SSLMIPSTART="k1hipglLdjU.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883\r\n',
    b"AT+MCONNECT=1,120\r\n",
)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, Path]]:
    from airlab.cloud import CloudEmulator

    with CloudEmulator(fixture="tutorial") as emu:
        path = tmp_path_factory.mktemp("cloud") / "endpoints.json"
        emu.write_endpoints(path)
        yield emu, path


def _steps(capture: Path) -> list[tuple[bytes, bytes]]:
    """(bytes the host sent, bytes the module answered until the host's next write)."""
    steps: list[tuple[bytes, bytes]] = []
    for rec in read_capture(capture, date="2024-07-22").records:
        if not rec.is_data:
            continue
        if rec.direction is Direction.SENT:
            steps.append((rec.data, b""))
        elif steps:
            sent, got = steps[-1]
            steps[-1] = (sent, got + rec.data)
    return steps


def _read_exactly(port: serial.Serial, n: int, deadline: float) -> bytes:
    out = b""
    while len(out) < n and time.monotonic() < deadline:
        out += port.read(n - len(out))
    return out


def _open(endpoints: Path) -> serial.Serial:
    return serial.serial_for_url(
        f"airsim://replay?profile=instant&cloud={endpoints}&imei=868488076506128", timeout=0.2
    )


def _connect_silently(port: serial.Serial) -> None:
    for line in CONNECT_FIRST:
        port.write(line)
        expected = b"CONNACK OK\r\n" if line.startswith(b"AT+MCONNECT") else b"OK\r\n"
        if line.startswith(b"AT+SSLMIPSTART"):
            expected = b"CONNECT OK\r\n"
        got = port.read_until(expected)
        assert got.endswith(expected), got


def _replay(port: serial.Serial, capture: Path) -> tuple[bytes, bytes]:
    issued: dict[str, str] = {}
    expected_all, actual_all = b"", b""
    for sent, expected in _steps(capture):
        for theirs, ours in ((TUTORIAL_IOT_ID, "iot_id"), (TUTORIAL_TOKEN, "token")):
            if ours in issued:
                sent = sent.replace(theirs.encode(), issued[ours].encode())
        port.write(sent)
        actual = _read_exactly(port, len(expected), time.monotonic() + 10)
        if b"+HTTPREAD:" in actual and b"iotToken" in actual:
            body = json.loads(actual[actual.index(b"{") : actual.rindex(b"}") + 1])
            issued = {"iot_id": body["data"]["iotId"], "token": body["data"]["iotToken"]}
        for theirs, ours in ((TUTORIAL_IOT_ID, "iot_id"), (TUTORIAL_TOKEN, "token")):
            if ours in issued:
                actual = actual.replace(issued[ours].encode(), theirs.encode())
        expected_all += expected
        actual_all += actual
    assert not port.read(1), "the module printed more than the capture shows"
    return expected_all, actual_all


@pytest.mark.parametrize(
    "name",
    ["seed_http_auth_then_mqtt.log", "seed_direct_mqtt.log", "seed_dynamic_register.log"],
)
def test_replay_reproduces_the_capture(cloud: tuple[object, Path], name: str) -> None:
    emu, endpoints = cloud
    if name == "seed_dynamic_register.log":
        # the tutorial registers a device that had already come online: ResetThing first
        emu.reset_registration("k1hipglLdjU", "868488076506128")
    port = _open(endpoints)
    try:
        expected, actual = _replay(port, CAPTURES / name)
    finally:
        port.close()
    assert actual == expected


def test_replay_publish_subscribe(cloud: tuple[object, Path]) -> None:
    _, endpoints = cloud
    port = _open(endpoints)
    try:
        _connect_silently(port)  # the capture starts on an established session
        expected, actual = _replay(port, CAPTURES / "seed_publish_subscribe.log")
    finally:
        port.close()
    assert actual == expected
