"""CloudEmulator: the whole service with real clients (HTTPS, paho over TCP and TLS)."""

from __future__ import annotations

import http.client
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airlab.aliyun import direct_mqtt_credentials, mqtt_register_credentials
from airlab.cloud import CloudEmulator, DeviceRef, OnlineDevice
from airlab.cloud.fixtures import (
    TUTORIAL_DEVICE_NAME as DN,
)
from airlab.cloud.fixtures import (
    TUTORIAL_DEVICE_SECRET as SECRET,
)
from airlab.cloud.fixtures import (
    TUTORIAL_PRODUCT_KEY as PK,
)
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_SECRET
from airlab.cloud.model import ConnectionEvent, MessageRecord
from airlab.errors import UsageError
from tests.cloud.broker_helpers import Client, Recorder
from tests.cloud.conftest import FakeClock

AUTH_BODY = (
    b"productKey=k1hipglLdjU&sign=0f655b12adf519b9a7a2b0a990f398b6"
    b"&clientId=868488076506128&deviceName=868488076506128"
)
REGISTER_BODY = (
    b"productKey=k1hipglLdjU&deviceName=868488076506128&random=123456"
    b"&sign=20558baadb2a0b04847767980f0ee67b&signMethod=HmacMD5"
)
FORM = {"Content-type": "application/x-www-form-urlencoded"}
OTHER, OTHER_SECRET = "otherdevice01", "0123456789abcdef0123456789abcdef"
CONNACK_TEXT = {
    0: "Success",
    2: "Client identifier not valid",
    3: "Server unavailable",
    4: "Bad user name or password",
    5: "Not authorized",
}


def attach_recorder(cloud: CloudEmulator) -> Recorder:
    """Also record every log line of the running service, to wait on (no sleeps)."""
    rec = Recorder()
    rules = cloud.rules
    assert rules is not None
    log_connection, log_message = rules.log_connection, rules.log_message
    log_messages = rules.log_messages

    def on_connection(event: ConnectionEvent, on_commit=None) -> None:  # type: ignore[no-untyped-def]
        log_connection(event, on_commit)
        rec.log_connection(event)

    def on_message(record: MessageRecord, on_commit=None) -> None:  # type: ignore[no-untyped-def]
        log_message(record, on_commit)
        rec.log_message(record)

    def on_messages(records: list[MessageRecord], on_commit=None) -> None:  # type: ignore[no-untyped-def]
        log_messages(records, on_commit)
        for record in records:
            rec.log_message(record)

    rules.log_connection = on_connection  # type: ignore[method-assign]
    rules.log_message = on_message  # type: ignore[method-assign]
    rules.log_messages = on_messages  # type: ignore[method-assign]
    return rec


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cloud(clock: FakeClock) -> Iterator[CloudEmulator]:
    with CloudEmulator(clock=clock) as emulator:
        emulator.add_device(PK, OTHER, OTHER_SECRET)
        emulator.rec = attach_recorder(emulator)  # type: ignore[attr-defined]
        yield emulator


def mqtt_port(cloud: CloudEmulator, tls: bool = False) -> int:
    return int(cloud.endpoints["mqtts" if tls else "mqtt"].rsplit(":", 1)[1])


def client(clients: list[Client], cloud: CloudEmulator, *, tls: bool = False, **kw: Any) -> Client:
    c = Client(mqtt_port(cloud, tls), tls=cloud.ssl_client_context() if tls else None, **kw)
    clients.append(c)
    return c


def device(
    clients: list[Client],
    cloud: CloudEmulator,
    dn: str = DN,
    secret: str = SECRET,
    *,
    tls: bool = False,
    keepalive: int = 120,
    **kw: Any,
) -> Client:
    cred = direct_mqtt_credentials(PK, dn, secret, **kw)
    return client(
        clients,
        cloud,
        tls=tls,
        client_id=cred.client_id,
        username=cred.username,
        password=cred.password,
        keepalive=keepalive,
    )


def https_post(cloud: CloudEmulator, path: str, body: bytes) -> tuple[int, bytes]:
    port = int(cloud.endpoints["https"].rsplit(":", 1)[1])
    conn = http.client.HTTPSConnection(
        "127.0.0.1", port, timeout=10, context=cloud.ssl_client_context()
    )
    try:
        conn.request("POST", path, body=body, headers=FORM)
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


# -- lifecycle ------------------------------------------------------------------------------


def test_start_stop_twice_with_free_ports_and_endpoints(tmp_path: Path) -> None:
    cloud = CloudEmulator()
    for _ in range(2):
        cloud.start()
        try:
            ep = cloud.endpoints
            assert ep["http"].startswith("http://127.0.0.1:")
            assert ep["https"].startswith("https://127.0.0.1:")
            ports = [int(ep[k].rsplit(":", 1)[1]) for k in ("http", "https", "mqtt", "mqtts")]
            assert all(p > 0 for p in ports) and len(set(ports)) == 4
            assert ep["admin"]["url"] == ep["http"] + "/admin" and len(ep["admin"]["token"]) > 20
            assert ep["pid"] == os.getpid() and ep["db"] is None and ep["fixture"] == "tutorial"
            assert ep["ca"] == cloud.certificate and "BEGIN CERTIFICATE" in cloud.certificate
            device_row = cloud.registry.get_device(PK, DN)
            assert device_row is not None and device_row.device_secret == SECRET
            path = cloud.write_endpoints(tmp_path / "ep.json")
            data = json.loads(path.read_text())
            assert {k: v for k, v in data.items() if k != "ca_pem"} == {
                k: v for k, v in ep.items() if k != "ca_pem"
            }
            assert Path(data["ca_pem"]).read_text() == cloud.certificate
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert not list(tmp_path.glob(".*tmp"))  # written atomically, no leftovers
        finally:
            cloud.stop()
        assert not (tmp_path / "ep.json").exists() and not (tmp_path / "ep.ca.pem").exists()
        assert not cloud.running


def test_bad_arguments_name_the_field(tmp_path: Path) -> None:
    for kwargs, field in [
        ({"http_port": 70000}, "http_port"),
        ({"mqtt_port": -1}, "mqtt_port"),
        ({"fixture": "nope"}, "fixture"),
        ({"host": "not-an-ip"}, "host"),
        ({"db": tmp_path / "missing" / "x.db"}, "db"),
    ]:
        with pytest.raises(UsageError) as err:
            CloudEmulator(**kwargs)
        assert err.value.field == field
    with CloudEmulator(fixture=None) as first:
        busy = int(first.endpoints["mqtt"].rsplit(":", 1)[1])
        assert first.registry.products() == []
        with pytest.raises(UsageError) as err:
            CloudEmulator(mqtt_port=busy).start()
        assert err.value.field == "mqtt_port"


def test_every_interface_advertises_a_usable_address(tmp_path: Path) -> None:
    with CloudEmulator(host="0.0.0.0", advertise="127.0.0.1") as cloud:
        ep = cloud.endpoints
        assert (ep["bind"], ep["address"]) == ("0.0.0.0", "127.0.0.1")
        assert ep["https"].startswith("https://127.0.0.1:")
        status, body = https_post(cloud, "/auth/devicename", AUTH_BODY)
        assert status == 200 and len(body) == 124
    with CloudEmulator(host="0.0.0.0", fixture=None) as cloud:
        address = cloud.endpoints["address"]
        assert address not in ("0.0.0.0", "") and f"://{address}:" in cloud.endpoints["http"]
        port = int(cloud.endpoints["https"].rsplit(":", 1)[1])
        conn = http.client.HTTPSConnection(
            address, port, timeout=10, context=cloud.ssl_client_context()
        )
        conn.request("POST", "/auth/devicename", body=AUTH_BODY, headers=FORM)
        assert conn.getresponse().status == 200  # the certificate names the address
        conn.close()


def test_registry_and_logs_survive_a_restart(tmp_path: Path, clients: list[Client]) -> None:
    db = tmp_path / "lab.db"
    with CloudEmulator(db) as cloud:
        rec = attach_recorder(cloud)
        secret = cloud.add_device(PK, "restart01")
        assert device(clients, cloud, "restart01", "f" * 32).connect() == CONNACK_TEXT[4]
        rec.event("refused", code=4)
        assert cloud.endpoints["db"] == str(db.resolve())
    with CloudEmulator(db) as cloud:
        assert cloud.registry.get_device(PK, "restart01").device_secret == secret
        assert len(cloud.registry.devices(PK)) == 2  # the fixture did not duplicate anything
        refusals = cloud.refusals()
        assert list(refusals["rule"]) == ["signature"]
        assert device(clients, cloud, "restart01", secret).connect() == "Success"


# -- the tutorial's flows ---------------------------------------------------------------


def test_tutorial_https_auth_then_mqtt_over_tls_with_the_token(
    cloud: CloudEmulator, clients: list[Client]
) -> None:
    status, body = https_post(cloud, "/auth/devicename", AUTH_BODY)
    assert status == 200 and len(body) == 124
    data = json.loads(body)["data"]
    c = client(
        clients, cloud, tls=True, client_id=DN, username=data["iotId"], password=data["iotToken"],
        keepalive=120,
    )  # fmt: skip
    assert c.connect() == "Success"
    cloud.rec.event("connect", code=0)  # type: ignore[attr-defined]
    assert cloud.online_devices() == [OnlineDevice(PK, DN, DN)]
    assert cloud.online_devices()[0].ref == DeviceRef(PK, DN)


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_direct_mqtt_login(cloud: CloudEmulator, clients: list[Client], tls: bool) -> None:
    c = device(clients, cloud, tls=tls, secure_mode=2 if tls else 3)
    assert c.connect() == "Success"
    c.publish(f"/{PK}/{DN}/user/update", b"hello", 1)
    record = cloud.rec.message(payload=b"hello")  # type: ignore[attr-defined]
    assert record.accepted
    log = cloud.message_log(DeviceRef(PK, DN))
    assert list(log["text"]) == ["hello"] and log["direction"].iloc[0] == "up"


def test_https_dynamic_registration_after_reset(
    cloud: CloudEmulator, clients: list[Client]
) -> None:
    assert device(clients, cloud).connect() == "Success"  # the device is now activated
    cloud.rec.event("connect", code=0)  # type: ignore[attr-defined]
    status, body = https_post(cloud, "/auth/register/device", REGISTER_BODY)
    assert status == 200 and json.loads(body)["code"] == 460
    assert cloud.refusals().iloc[-1]["rule"] == "already_activated"
    assert "activated" in cloud.explain_last_refusal(f"{PK}/{DN}")
    cloud.reset_registration(PK, DN)
    status, body = https_post(cloud, "/auth/register/device", REGISTER_BODY)
    assert status == 200 and len(body) == 149
    assert json.loads(body)["data"]["deviceSecret"] == SECRET


def test_console_publish_reaches_the_subscribed_device(
    cloud: CloudEmulator, clients: list[Client]
) -> None:
    topic = f"/{PK}/{DN}/user/get"
    c = device(clients, cloud)
    assert c.connect() == "Success"
    assert c.subscribe(topic) == [1]
    assert cloud.publish(topic, '{"led":1}', qos=1) == 1
    msg = c.get()
    assert (msg.topic, msg.payload, msg.qos) == (topic, b'{"led":1}', 1)
    down = cloud.message_log()
    assert list(down["direction"]) == ["down"] and down["device"].iloc[0] == f"{PK}/{DN}"
    with pytest.raises(UsageError):
        cloud.publish("/k1hipglLdjU/+/user/get", "x")
    with pytest.raises(UsageError):
        cloud.publish(topic, "x", qos=2)


def test_refusals_show_a_wrong_signature(cloud: CloudEmulator, clients: list[Client]) -> None:
    assert cloud.explain_last_refusal().startswith("No refusal recorded")
    assert device(clients, cloud, secret="0" * 32).connect() == CONNACK_TEXT[4]
    cloud.rec.event("refused", code=4)  # type: ignore[attr-defined]
    frame = cloud.refusals()
    row = frame.iloc[-1]
    assert (row["protocol"], row["event"], row["code"], row["rule"]) == (
        "mqtt", "refused", 4, "signature",
    )  # fmt: skip
    assert row["meaning"] == "bad user name or password"
    details = row["details"]
    assert details["sign_content"] == f"clientId{DN}deviceName{DN}productKey{PK}"
    assert details["secret"] == "fe" + "*" * 28 + "21"
    assert details["algorithm"] == "hmacmd5"
    text = cloud.explain_last_refusal(DeviceRef(PK, DN))
    assert "CONNACK 4" in text and "sign_content: clientId" in text and SECRET not in text
    assert cloud.refusals(DeviceRef(PK, OTHER)).empty


# -- forged logins ------------------------------------------------------------------------


def _forged(name: str, cloud: CloudEmulator, clock: FakeClock) -> dict[str, Any]:
    good = direct_mqtt_credentials(PK, DN, SECRET)
    login = {"client_id": good.client_id, "username": good.username, "password": good.password}
    if name == "wrong_sign":
        login["password"] = direct_mqtt_credentials(PK, DN, "1" * 32).password
    elif name == "wrong_algorithm":
        sha1 = direct_mqtt_credentials(PK, DN, SECRET, sign_method="hmacsha1")
        login["password"] = sha1.password  # signed with SHA1, the client id says hmacmd5
    elif name == "swapped_username":
        login["username"] = f"{PK}&{DN}"
    elif name == "long_client_id":
        login["client_id"] = "x" * 65 + "|securemode=3,signmethod=hmacmd5|"
    elif name == "bad_extension_block":
        login["client_id"] = f"{DN}|securemode=3,signmethod=hmacmd5"
    elif name == "expired_token":
        _, body = https_post(cloud, "/auth/devicename", AUTH_BODY)
        data = json.loads(body)["data"]
        login = {"client_id": DN, "username": data["iotId"], "password": data["iotToken"]}
        clock.advance(8 * 24 * 3600)
    elif name == "keepalive_out_of_range":
        login["keepalive"] = 10
    elif name == "register_activated_device":
        cloud.registry.mark_activated(DeviceRef(PK, DN))
        reg = mqtt_register_credentials(PK, DN, TUTORIAL_PRODUCT_SECRET, random="8Ygb7ULYh53B6OA")
        login = {
            "client_id": reg.client_id,
            "username": reg.username,
            "password": reg.password,
            "tls": True,
        }
    return login


FORGED = [
    ("wrong_sign", 4, "signature"),
    ("wrong_algorithm", 4, "signature"),
    ("swapped_username", 5, "unknown_product"),
    ("long_client_id", 2, "client_id_format"),
    ("bad_extension_block", 2, "client_id_format"),
    ("expired_token", 3, "token_expired"),
    ("keepalive_out_of_range", 2, "keepalive"),
    ("register_activated_device", 5, "already_activated"),
]


@pytest.mark.parametrize(("name", "code", "rule"), FORGED, ids=[f[0] for f in FORGED])
def test_forged_logins_are_refused_and_explained(
    cloud: CloudEmulator, clients: list[Client], clock: FakeClock, name: str, code: int, rule: str
) -> None:
    login = _forged(name, cloud, clock)
    tls = bool(login.pop("tls", False))
    login.setdefault("keepalive", 120)
    c = client(clients, cloud, tls=tls, **login)
    assert c.connect() == CONNACK_TEXT[code]
    cloud.rec.event("refused", code=code)  # type: ignore[attr-defined]
    row = cloud.refusals().iloc[-1]
    assert (row["code"], row["rule"]) == (code, rule)
    assert row["message"]  # a human sentence
    assert f"CONNACK {code}" in cloud.explain_last_refusal()
    assert cloud.online_devices() == []


# -- isolation ------------------------------------------------------------------------------


def test_a_device_never_receives_another_devices_messages(
    cloud: CloudEmulator, clients: list[Client]
) -> None:
    a = device(clients, cloud)
    b = device(clients, cloud, OTHER, OTHER_SECRET)
    assert a.connect() == "Success" and b.connect() == "Success"
    assert a.subscribe(f"/{PK}/{DN}/user/get") == [1]
    stolen = [f"/{PK}/+/user/get", f"/{PK}/{DN}/#", "#", f"/{PK}/{DN}/user/get", "/+/+/user/get"]
    assert b.subscribe(*stolen) == [0x80] * len(stolen)
    assert b.subscribe(f"/{PK}/{OTHER}/user/get") == [1]
    assert cloud.publish(f"/{PK}/{DN}/user/get", "for A", 1) == 1
    b.publish(f"/{PK}/{DN}/user/get", b"forged by B", 1)  # refused: PUBACKed, not routed
    assert a.get().payload == b"for A"
    # a round trip to B proves nothing else was queued for it before
    assert cloud.publish(f"/{PK}/{OTHER}/user/get", "for B", 1) == 1
    assert b.get().payload == b"for B"
    assert a.nothing() and b.nothing()
    refused = cloud.refusals(DeviceRef(PK, OTHER))
    assert set(refused["event"]) == {"subscribe", "publish"}
    assert sorted(d.device_name for d in cloud.online_devices()) == sorted([DN, OTHER])


@pytest.mark.parametrize(
    "name",
    [
        "airlab.cloud.service",
        "airlab.cloud.console",
        "airlab.cloud.refusals",
        "airlab.cloud.service_support",
    ],
)
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
