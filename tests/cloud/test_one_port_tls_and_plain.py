"""The emulator's plain MQTT port also takes TLS (the first byte decides), like the
platform's 1883 where the tutorial sends ``AT+SSLMIPSTART="<pk>.iot-as-mqtt…",1883``;
the TLS-only port keeps working."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest

import airlab
from airlab.cloud import CloudEmulator
from airlab.cloud.fixtures import (
    TUTORIAL_DEVICE_NAME,
    TUTORIAL_DEVICE_SECRET,
    TUTORIAL_PRODUCT_KEY,
)
from airlab.lesson import open_lesson
from airlab.session import recipes


@pytest.fixture(scope="module")
def emu() -> Iterator[CloudEmulator]:
    with CloudEmulator(fixture="tutorial") as cloud:
        yield cloud


def _port(emu: CloudEmulator, key: str) -> int:
    return int(str(emu.endpoints[key]).rsplit(":", 1)[1])


def _paho_connects(emu: CloudEmulator, port: int, tls: bool) -> int:
    creds = airlab.direct_mqtt_credentials(
        TUTORIAL_PRODUCT_KEY, TUTORIAL_DEVICE_NAME, TUTORIAL_DEVICE_SECRET
    )
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=creds.client_id)
    client.username_pw_set(creds.username, creds.password)
    if tls:
        ctx = ssl.create_default_context(cadata=emu.certificate)
        ctx.check_hostname = False  # the name is the platform's, the address ours
        client.tls_set_context(ctx)
    done = threading.Event()
    codes: list[int] = []

    def on_connect(_c, _u, _f, reason, _p) -> None:  # type: ignore[no-untyped-def]
        codes.append(reason.value)
        done.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    try:
        assert done.wait(10), "no CONNACK"
        return codes[0]
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
def test_paho_on_the_plain_port(emu: CloudEmulator, tls: bool) -> None:
    assert _paho_connects(emu, _port(emu, "mqtt"), tls) == 0


def test_the_tls_port_still_takes_tls(emu: CloudEmulator) -> None:
    assert _paho_connects(emu, _port(emu, "mqtts"), tls=True) == 0


def test_sslmipstart_to_the_plain_port_as_the_tutorial_does(emu: CloudEmulator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    endpoints = emu.write_endpoints(tmp_path / "ep.json")
    with open_lesson(cloud=str(endpoints)) as lab:
        recipes.attach(lab.session)
        plain = _port(emu, "mqtt")
        login = recipes.direct_mqtt(
            lab.session, **lab.identity.device(), host="127.0.0.1", port=plain, tls=True
        )
        # CONNECT OK after a TLS handshake with the plain port (a plain-only port made it fail)
        assert login.step("SSLMIPSTART").urc == "CONNECT OK" and login.tls
        assert login.step("MCONNECT").urc == "CONNACK OK"
        recipes.disconnect(lab.session)
        login = recipes.direct_mqtt(
            lab.session, **lab.identity.device(), host="127.0.0.1", port=plain, tls=False
        )
        assert login.step("MCONNECT").urc == "CONNACK OK"
        recipes.disconnect(lab.session)


def test_a_silent_client_on_the_sniffing_port_is_dropped(emu: CloudEmulator) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", _port(emu, "mqtt")), timeout=15) as s:
        host, port = s.getsockname()[:2]
        mine = f"{host}:{port}"
        assert s.recv(1) == b""  # closed after the CONNECT window, nothing sent
    emu.flush()
    log = emu.connection_log()
    assert (log[log.remote == mine].event == "timeout").any()  # and logged, as before
