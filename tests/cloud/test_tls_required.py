"""The product setting "TLS required": the platform refuses MQTT over plain TCP for
accounts created since 2022-08-02 (spec §1.1, [D-TCP-EN 2023]). Off by default (the
tutorial's product predates it and logs in with ``AT+MIPSTART`` in its direct capture);
on, a device, token or connwl login over plain TCP gets CONNACK 2 (rule
``tls_required``) with an explanation that says to use ``AT+SSLMIPSTART``."""

from __future__ import annotations

import json
import socket
import sqlite3
import ssl
from pathlib import Path

import pytest

from airlab.aliyun import direct_mqtt_credentials, http_auth_request
from airlab.cli import main
from airlab.cloud import CloudEmulator
from airlab.cloud.auth import TLS_REFUSAL_CODE, Rules
from airlab.cloud.discovery import RemoteCloud, load_endpoints
from airlab.cloud.fixtures import TUTORIAL_DEVICE_NAME as DN
from airlab.cloud.fixtures import TUTORIAL_DEVICE_SECRET as DS
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK
from airlab.cloud.model import ConnectRequest
from airlab.cloud.registry import Registry
from tests.cloud.broker_helpers import connect_packet, read_until_eof


def direct(*, tls: bool) -> ConnectRequest:
    cred = direct_mqtt_credentials(PK, DN, DS)  # securemode=3, as the tutorial
    return ConnectRequest(cred.client_id, cred.username, cred.password.encode(), 120, tls=tls)


def test_off_by_default_plain_tcp_is_accepted(rules: Rules) -> None:
    assert rules.registry.get_product(PK).tls_required is False
    assert rules.decide_connect(direct(tls=False)).return_code == 0


def test_on_plain_tcp_gets_connack_2_saying_use_sslmipstart(rules: Rules) -> None:
    rules.registry.set_tls_required(PK, True)
    decision = rules.decide_connect(direct(tls=False))
    assert decision.return_code == TLS_REFUSAL_CODE == 2
    assert decision.device is None  # refused before anything was authenticated
    explanation = decision.explanation
    assert explanation is not None and explanation.rule == "tls_required"
    assert "AT+SSLMIPSTART" in explanation.message and "TLS" in explanation.message
    assert explanation.details["transport"] == "plain TCP"
    assert rules.decide_connect(direct(tls=True)).return_code == 0


def test_on_token_logins_are_checked_too_and_other_products_are_not(rules: Rules) -> None:
    registry = rules.registry
    registry.set_tls_required(PK, True)
    token = rules.auth_devicename(dict(http_auth_request(PK, DN, DS).fields)).json["data"]
    for tls, code in ((False, 2), (True, 0)):
        request = ConnectRequest(DN, token["iotId"], token["iotToken"].encode(), 120, tls=tls)
        assert rules.decide_connect(request).return_code == code, tls
    registry.add_product("a1otherPrdK")
    secret = registry.add_device("a1otherPrdK", "869480000000888").device_secret
    cred = direct_mqtt_credentials("a1otherPrdK", "869480000000888", secret)
    request = ConnectRequest(cred.client_id, cred.username, cred.password.encode(), 120)
    assert rules.decide_connect(request).return_code == 0


def test_an_older_registry_gets_the_column(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as old:  # products as written before host_check/tls_required
        old.execute(
            "CREATE TABLE products (product_key TEXT PRIMARY KEY, product_secret TEXT NOT "
            "NULL, region TEXT NOT NULL, dynamic_registration INTEGER NOT NULL DEFAULT 0, "
            "created REAL NOT NULL)"
        )
        old.execute(
            "INSERT INTO products VALUES ('oldpk', 'ssssssssssssssss', 'cn-shanghai', 1, 1.0)"
        )
    old.close()
    with Registry(db) as registry:
        assert registry.get_product("oldpk").tls_required is False
        registry.set_tls_required("oldpk", True)
        assert registry.get_product("oldpk").tls_required is True
        assert registry.add_product("newpk", tls_required=True).tls_required is True


def connack(cloud: CloudEmulator, *, tls: bool) -> bytes:
    """CONNACK of the tutorial's direct login on the emulator's MQTT port (it takes TLS
    and plain TCP, like the platform's 1883)."""
    port = int(cloud.endpoints["mqtt"].rsplit(":", 1)[1])
    cred = direct_mqtt_credentials(PK, DN, DS)
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock: socket.socket = raw
    if tls:
        context = ssl.create_default_context(cadata=cloud.certificate)
        sock = context.wrap_socket(
            raw, server_hostname=f"{PK}.iot-as-mqtt.cn-shanghai.aliyuncs.com"
        )
    with sock:
        sock.sendall(connect_packet(cred.client_id, cred.username, cred.password.encode(), 120))
        sock.settimeout(5)
        answer = sock.recv(4)
        if answer[3:4] != b"\x00":
            answer += read_until_eof(sock)  # a refusal closes the connection
        return answer


def test_the_broker_knows_the_transport(tmp_path: Path) -> None:
    """The broker fills ConnectRequest.tls: plain TCP refused, TLS accepted, on one port."""
    with CloudEmulator(tmp_path / "lab.db", fixture="tutorial") as cloud:
        assert connack(cloud, tls=False) == b"\x20\x02\x00\x00"  # off: the tutorial's way
        cloud.set_tls_required(PK, True)
        assert connack(cloud, tls=False) == b"\x20\x02\x00\x02"
        assert connack(cloud, tls=True) == b"\x20\x02\x00\x00"
        text = cloud.explain_last_refusal((PK, DN))
        assert "CONNACK 2" in text and "tls_required" in text and "SSLMIPSTART" in text


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith("{") else {}


def test_cli_and_admin_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "lab.db")
    code, shown = run(
        capsys, "cloud", "add-product", "--db", db, "--product-key", "a1tlsPrdKey",
        "--tls-required", "on",
    )  # fmt: skip
    assert code == 0 and shown["tls_required"] == "on"
    code, shown = run(capsys, "cloud", "product", "--db", db, "--product-key", "a1tlsPrdKey")
    assert code == 0 and shown["tls_required"] == "on"
    code, shown = run(
        capsys, "cloud", "product", "--db", db, "--product-key", "a1tlsPrdKey",
        "--tls-required", "off",
    )  # fmt: skip
    assert shown["tls_required"] == "off"
    assert run(capsys, "cloud", "product", "--db", db, "--product-key", "a1tlsPrdKey",
               "--tls-required", "maybe")[0] == 2  # fmt: skip
    with CloudEmulator(tmp_path / "served.db", fixture="tutorial") as cloud:
        endpoints = cloud.write_endpoints(tmp_path / "endpoints.json")
        code, shown = run(
            capsys, "cloud", "product", "--endpoints-file", str(endpoints),
            "--product-key", PK, "--tls-required", "on",
        )  # fmt: skip
        assert code == 0 and shown["tls_required"] == "on"
        assert cloud.product_settings(PK)["tls_required"] is True
        remote = RemoteCloud(load_endpoints(str(endpoints)))
        try:
            assert remote.set_tls_required(PK, False)["tls_required"] is False
            assert remote.add_product("a1remPrdKey", tls_required=True).tls_required is True
        finally:
            remote.close()
        assert connack(cloud, tls=False) == b"\x20\x02\x00\x00"
