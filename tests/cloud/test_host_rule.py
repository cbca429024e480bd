"""The host rule (issue 9): a per-product emulator setting, off by default, under which an
MQTT login over TLS must name ``<productKey>.iot-as-mqtt.<region>.aliyuncs.com`` of its
own product as the TLS server name (SNI, the host of ``AT+SSLMIPSTART``).

The rules are checked on a real registry; the broker part uses a real TLS socket that
sends the server name, as the simulator and a module do."""

from __future__ import annotations

import socket
import sqlite3
import ssl
from pathlib import Path

import pytest

from airlab.aliyun import direct_mqtt_credentials, http_auth_request, mqtt_register_credentials
from airlab.cloud import CloudEmulator
from airlab.cloud.auth import HOST_REFUSAL_CODE, Rules, host_carries_product_key
from airlab.cloud.fixtures import TUTORIAL_DEVICE_NAME as DN
from airlab.cloud.fixtures import TUTORIAL_DEVICE_SECRET as DS
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_SECRET as PS
from airlab.cloud.model import ConnectRequest
from airlab.cloud.registry import Registry
from airlab.errors import UsageError
from tests.cloud.broker_helpers import connect_packet, read_until_eof

OWN_HOST = f"{PK}.iot-as-mqtt.cn-shanghai.aliyuncs.com"
CAPTURE_HOST = "a1qsHBbKtmc.iot-as-mqtt.cn-shanghai.aliyuncs.com"  # the tutorial's method 1


def direct(server_name: str | None, *, tls: bool = True, secret: str = DS) -> ConnectRequest:
    cred = direct_mqtt_credentials(PK, DN, secret)
    return ConnectRequest(
        cred.client_id,
        cred.username,
        cred.password.encode(),
        120,
        tls=tls,
        remote="127.0.0.1:5000",
        server_name=server_name,
    )


def test_off_by_default_another_products_host_is_accepted(rules: Rules) -> None:
    # as in the tutorial's own capture: a1qsHBbKtmc's host, product k1hipglLdjU, success
    assert rules.registry.get_product(PK).host_check is False
    assert rules.decide_connect(direct(CAPTURE_HOST)).return_code == 0


def test_on_another_products_host_gets_connack_5_naming_both_hosts(rules: Rules) -> None:
    rules.registry.set_host_check(PK, True)
    decision = rules.decide_connect(direct(CAPTURE_HOST))
    assert decision.return_code == HOST_REFUSAL_CODE == 5
    assert decision.device is None  # nothing was authenticated
    explanation = decision.explanation
    assert explanation is not None and explanation.rule == "mqtt_host"
    assert CAPTURE_HOST in explanation.message and OWN_HOST in explanation.message
    assert "a1qsHBbKtmc" in explanation.message and "SSLMIPSTART" in explanation.message
    assert explanation.details["host_used"] == CAPTURE_HOST
    assert explanation.details["host_expected"] == OWN_HOST
    assert explanation.details["device"] == f"{PK}/{DN}"
    text = repr(explanation.as_dict())
    assert DS not in text and PS not in text  # no secret, no signature
    assert direct_mqtt_credentials(PK, DN, DS).password not in text


def test_on_the_own_host_passes_in_any_letter_case_and_region(rules: Rules) -> None:
    rules.registry.set_host_check(PK, True)
    for host in (
        OWN_HOST,
        OWN_HOST.upper(),  # DNS names carry no case
        OWN_HOST + ".",
        f"{PK}.iot-as-mqtt.cn-beijing.aliyuncs.com",  # region not checked
    ):
        assert rules.decide_connect(direct(host)).return_code == 0, host


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "iot-06z00abc.mqtt.iothub.aliyuncs.com",
        f"{PK}.example.com",
        f"x{PK}.iot-as-mqtt.cn-shanghai.aliyuncs.com",
    ],
)
def test_on_any_other_server_name_is_refused(rules: Rules, host: str) -> None:
    rules.registry.set_host_check(PK, True)
    decision = rules.decide_connect(direct(host))
    assert decision.return_code == 5 and decision.explanation.rule == "mqtt_host"
    assert host in decision.explanation.message


def test_plain_tcp_and_tls_without_a_server_name_carry_no_host_and_pass(rules: Rules) -> None:
    rules.registry.set_host_check(PK, True)
    assert rules.decide_connect(direct(None, tls=False)).return_code == 0  # AT+MIPSTART
    # plain TCP cannot carry a name even if a caller made one up
    assert rules.decide_connect(direct(CAPTURE_HOST, tls=False)).return_code == 0
    assert rules.decide_connect(direct(None, tls=True)).return_code == 0  # host was an IP


def test_the_host_is_checked_before_the_signature(rules: Rules) -> None:
    rules.registry.set_host_check(PK, True)
    decision = rules.decide_connect(direct(CAPTURE_HOST, secret="0" * 32))
    assert decision.explanation.rule == "mqtt_host"
    assert rules.decide_connect(direct(OWN_HOST, secret="0" * 32)).explanation.rule == "signature"


def test_other_products_are_not_affected(rules: Rules) -> None:
    registry = rules.registry
    registry.add_product("a1qsHBbKtmc", "s" * 16)
    secret = registry.add_device("a1qsHBbKtmc", "dev-1").device_secret
    registry.set_host_check(PK, True)
    cred = direct_mqtt_credentials("a1qsHBbKtmc", "dev-1", secret)
    request = ConnectRequest(cred.client_id, cred.username, cred.password.encode(), 120,
                             tls=True, server_name=OWN_HOST)  # fmt: skip
    assert rules.decide_connect(request).return_code == 0


def test_token_login_and_dynamic_registration_are_checked_too(rules: Rules) -> None:
    registry = rules.registry
    registry.set_host_check(PK, True)
    form = dict(http_auth_request(PK, DN, DS).fields)
    reply = rules.auth_devicename(form)
    token = reply.json["data"]
    for host, code in ((CAPTURE_HOST, 5), (OWN_HOST, 0)):
        request = ConnectRequest(DN, token["iotId"], token["iotToken"].encode(), 120,
                                 tls=True, server_name=host)  # fmt: skip
        assert rules.decide_connect(request).return_code == code, host
    registry.add_device(PK, "869480000000777")
    cred = mqtt_register_credentials(PK, "869480000000777", PS, random="42")
    for host, code in ((CAPTURE_HOST, 5), (OWN_HOST, 0)):
        request = ConnectRequest(cred.client_id, cred.username, cred.password.encode(), 60,
                                 tls=True, server_name=host)  # fmt: skip
        decision = rules.decide_connect(request)
        assert decision.return_code == code, (host, decision.explanation)
        if code:
            assert decision.explanation.details["device"] == f"{PK}/869480000000777"


def test_host_carries_product_key() -> None:
    assert host_carries_product_key(OWN_HOST, PK)
    assert host_carries_product_key(OWN_HOST.lower(), PK)
    assert not host_carries_product_key(CAPTURE_HOST, PK)
    assert not host_carries_product_key(PK, PK)


# -- the registry: setting and migration ----------------------------------------------


def test_set_host_check_needs_a_product_and_a_bool(registry: Registry) -> None:
    with pytest.raises(UsageError, match="no product"):
        registry.set_host_check("nope", True)
    registry.add_product("pk1")
    with pytest.raises(UsageError, match="True or False"):
        registry.set_host_check("pk1", 1)  # type: ignore[arg-type]
    assert registry.add_product("pk2", host_check=True).host_check is True
    assert registry.get_product("pk2").host_check is True
    assert [p.host_check for p in registry.products()] == [False, True]


OLD_PRODUCTS = """CREATE TABLE products (
    product_key TEXT PRIMARY KEY,
    product_secret TEXT NOT NULL,
    region TEXT NOT NULL,
    dynamic_registration INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
)"""


def test_an_older_registry_gets_the_column_and_keeps_its_products(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as old:  # a registry written before the host rule existed
        old.execute(OLD_PRODUCTS)
        old.execute(
            "INSERT INTO products VALUES ('oldpk', 'ssssssssssssssss', 'cn-shanghai', 1, 1.0)"
        )
    first, second = Registry(db), Registry(db)  # two processes opening it: no clash
    try:
        product = first.get_product("oldpk")
        assert product.dynamic_registration is True and product.host_check is False
        first.set_host_check("oldpk", True)
        assert second.get_product("oldpk").host_check is True
        assert second.add_product("newpk").host_check is False
    finally:
        first.close()
        second.close()
    with sqlite3.connect(db) as check:
        columns = [r[1] for r in check.execute("PRAGMA table_info(products)")]
    assert columns.count("host_check") == 1


# -- the broker: the server name of a real TLS connection ------------------------------


def tls_connack(cloud: CloudEmulator, server_name: str | None) -> bytes:
    """CONNECT over TLS to the emulator's MQTT port, sending ``server_name`` as SNI."""
    port = int(cloud.endpoints["mqtts"].rsplit(":", 1)[1])
    context = ssl.create_default_context(cadata=cloud.certificate)
    if server_name is None:
        context.check_hostname = False
    cred = direct_mqtt_credentials(PK, DN, DS)
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with context.wrap_socket(raw, server_hostname=server_name) as sock:
        sock.sendall(connect_packet(cred.client_id, cred.username, cred.password.encode(), 120))
        sock.settimeout(5)
        answer = sock.recv(4)
        if answer[3:4] != b"\x00":
            answer += read_until_eof(sock)  # a refusal closes the connection
        return answer


def test_the_broker_reads_the_server_name_and_logs_the_refusal_first(tmp_path: Path) -> None:
    with CloudEmulator(tmp_path / "lab.db", fixture="tutorial") as cloud:
        reader = Registry(cloud.db)  # another connection: sees committed rows only
        try:
            assert tls_connack(cloud, CAPTURE_HOST) == b"\x20\x02\x00\x00"  # rule off
            cloud.set_host_check(PK, True)  # the running service: applies at once
            assert tls_connack(cloud, CAPTURE_HOST) == b"\x20\x02\x00\x05"
            refused = [e for e in reader.connection_log() if not e.accepted]
            assert refused[-1].explanation.rule == "mqtt_host"  # committed before CONNACK
            assert refused[-1].code == 5
            assert tls_connack(cloud, OWN_HOST) == b"\x20\x02\x00\x00"
            assert tls_connack(cloud, None) == b"\x20\x02\x00\x00"  # no SNI: not checked
            cloud.set_host_check(PK, False)
            assert tls_connack(cloud, CAPTURE_HOST) == b"\x20\x02\x00\x00"
            text = cloud.explain_last_refusal((PK, DN))
            assert "CONNACK 5" in text and CAPTURE_HOST in text and OWN_HOST in text
        finally:
            reader.close()
