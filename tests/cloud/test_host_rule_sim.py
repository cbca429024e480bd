"""The host rule with real parts: the simulated Air780EP (``airsim://?profile=instant``)
dialling ``AT+SSLMIPSTART`` through the cloud emulator, which sees the host only as the
TLS server name the simulator sends.

Off (the default, as on the tutorial's fixture) the tutorial's method-1 capture logs in
through another product's host and succeeds; on, the module answers ``AT+MCONNECT``
with ``OK`` and then ``ERROR`` (CONNACK 5; the module never prints the code) and the
cloud's explanation names the host used and the host to use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import airlab  # noqa: F401  (registers airsim://)
from airlab.aliyun import direct_mqtt_credentials
from airlab.at.commands import mconfig, mconnect, mipstart
from airlab.at.events import FinalResult, Urc
from airlab.cloud import CloudEmulator
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK
from airlab.cloud.registry import Registry
from airlab.errors import CloudRejected
from airlab.session import ModemSession, recipes

CAPTURE_HOST = "a1qsHBbKtmc.iot-as-mqtt.cn-shanghai.aliyuncs.com"  # the capture's host
OWN_HOST = f"{PK}.iot-as-mqtt.cn-shanghai.aliyuncs.com"
DN = "869480000004242"  # this test's own device in the tutorial's product
WAIT = 10.0
# what the module shows for a refused CONNACK: the command's OK, then ERROR (the return
# code is never printed), then CLOSED as the server closes the link
FAILURE = b"AT+MCONNECT=1,120\r\n\r\nOK\r\n\r\nERROR\r\n\r\nCLOSED\r\n"


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[CloudEmulator]:
    with CloudEmulator(tmp_path / "lab.db", fixture="tutorial") as emulator:
        yield emulator


@pytest.fixture
def secret(cloud: CloudEmulator) -> str:
    return cloud.add_device(PK, DN)


@pytest.fixture
def module(cloud: CloudEmulator, tmp_path: Path) -> Iterator[ModemSession]:
    endpoints = cloud.write_endpoints(tmp_path / "endpoints.json")
    # raw (guards off): the module gets what is typed, whatever host it names
    with ModemSession(f"airsim://host?profile=instant&cloud={endpoints}", guards=False) as s:
        recipes.attach(s)
        yield s


def method1(module: ModemSession, secret: str, host: str) -> recipes.MqttLogin:
    """The tutorial's method 1: HTTPS auth, then MCONFIG/SSLMIPSTART/MCONNECT."""
    return recipes.http_auth_then_mqtt(
        module, product_key=PK, device_name=DN, device_secret=secret, host=host
    )


def received_since(module: ModemSession, start: int) -> bytes:
    return module.transcript.received()[start:]


def test_method1_through_another_products_host_rule_off_then_on(
    cloud: CloudEmulator, module: ModemSession, secret: str
) -> None:
    # off (default): the tutorial's capture, a1qsHBbKtmc's host, logs in
    assert cloud.product_settings(PK)["host_check"] is False
    login = method1(module, secret, CAPTURE_HOST)
    assert login.host == CAPTURE_HOST and login.tls
    assert [d.device_name for d in cloud.online_devices()] == [DN]
    recipes.disconnect(module)

    cloud.set_host_check(PK, True)
    reader = Registry(cloud.db)  # as another process: committed rows only
    try:
        start, mark = len(module.transcript.received()), module.mark()
        with pytest.raises(CloudRejected):
            method1(module, secret, CAPTURE_HOST)
        module.wait_for_urc("CLOSED", WAIT, since=mark)  # the server closes the link
        shown = received_since(module, start)
        assert shown.endswith(FAILURE)
        assert f'AT+SSLMIPSTART="{CAPTURE_HOST}",1883\r\n\r\nOK\r\n\r\nCONNECT OK'.encode() in shown
        # logged before the module saw ERROR
        last = [e for e in reader.connection_log() if not e.accepted][-1]
        assert (last.code, last.explanation.rule) == (5, "mqtt_host")
    finally:
        reader.close()
    why = cloud.explain_last_refusal((PK, DN))
    assert "CONNACK 5 (not authorized)" in why
    assert CAPTURE_HOST in why and f'AT+SSLMIPSTART="{OWN_HOST}",1883' in why
    assert secret not in why
    assert cloud.online_devices() == []

    # on, with the host that carries the product key: accepted
    login = method1(module, secret, OWN_HOST)
    assert login.host == OWN_HOST
    assert [d.device_name for d in cloud.online_devices()] == [DN]


def type_line(module: ModemSession, line: str) -> int:
    mark = module.send_text(line)
    module.wait_for_event(lambda e: isinstance(e, FinalResult), WAIT, since=mark)
    return mark


def test_typed_direct_login_with_the_wrong_host_shows_error(
    cloud: CloudEmulator, module: ModemSession, secret: str
) -> None:
    cloud.set_host_check(PK, True)
    cred = direct_mqtt_credentials(PK, DN, secret)
    type_line(module, mconfig(cred.client_id, cred.username, cred.password))
    mark = module.send_text(mipstart(CAPTURE_HOST, 1883, tls=True))
    module.wait_for_urc("CONNECT OK", WAIT, since=mark)
    start = len(module.transcript.received())
    mark = module.send_text(mconnect(1, 120))
    module.wait_for_urc("CLOSED", WAIT, since=mark)
    assert received_since(module, start) == FAILURE
    refusal = cloud.refusals((PK, DN)).iloc[-1]
    assert refusal["rule"] == "mqtt_host" and refusal["code"] == 5
    assert refusal["details"]["host_used"] == CAPTURE_HOST
    assert refusal["details"]["host_expected"] == OWN_HOST


def test_plain_tcp_carries_no_host_so_the_rule_cannot_apply(
    cloud: CloudEmulator, module: ModemSession, secret: str
) -> None:
    cloud.set_host_check(PK, True)
    login = recipes.direct_mqtt(
        module, product_key=PK, device_name=DN, device_secret=secret, tls=False,
        host=CAPTURE_HOST,
    )  # fmt: skip
    assert not login.tls
    assert any(isinstance(e, Urc) and e.name == "CONNACK OK" for e in module.events_since(0))
    assert [d.device_name for d in cloud.online_devices()] == [DN]


def test_a_lessons_own_product_isolates_the_switch(
    cloud: CloudEmulator, module: ModemSession, secret: str
) -> None:
    # the pattern docs/cloud.md recommends: flip the switch on a product of one's own
    cloud.add_product("pkHostLesson01", host_check=True)
    own_secret = cloud.add_device("pkHostLesson01", DN)
    with pytest.raises(CloudRejected):
        recipes.direct_mqtt(module, product_key="pkHostLesson01", device_name=DN,
                            device_secret=own_secret, host=OWN_HOST)  # fmt: skip
    assert cloud.refusals().iloc[-1]["details"]["host_expected"] == (
        "pkHostLesson01.iot-as-mqtt.cn-shanghai.aliyuncs.com"
    )
    recipes.direct_mqtt(
        module, product_key="pkHostLesson01", device_name=DN, device_secret=own_secret
    )  # the default host: its own
    recipes.disconnect(module)
    # the shared tutorial product is untouched: another product's host still logs in
    recipes.direct_mqtt(module, product_key=PK, device_name=DN, device_secret=secret,
                        host=CAPTURE_HOST)  # fmt: skip
