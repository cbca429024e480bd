"""The simulator's DNS: IPv4 pass-through, explicit entries, Aliyun patterns from endpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airlab.sim.hosts import HostNotFound, HostTable

ENDPOINTS = {
    "http": "http://127.0.0.1:18080",
    "https": "https://127.0.0.1:18443",
    "mqtt": "127.0.0.1:11883",
    "mqtts": "127.0.0.1:18883",
    "console": "http://127.0.0.1:19000",
}


@pytest.fixture
def table() -> HostTable:
    return HostTable.from_endpoints(ENDPOINTS)


@pytest.mark.parametrize(
    "name",
    [
        "k1hipglLdjU.iot-as-mqtt.cn-shanghai.aliyuncs.com",
        "a1qsHBbKtmc.iot-as-mqtt.cn-shanghai.aliyuncs.com",  # another product's host
        "a1B2c3D4e5F.iot-as-mqtt.ap-southeast-1.aliyuncs.com",
        "iot-06z00abcdefg.mqtt.iothub.aliyuncs.com",
        "K1HIPGLLDJU.IOT-AS-MQTT.CN-SHANGHAI.ALIYUNCS.COM.",
    ],
)
def test_mqtt_hosts_for_any_product_and_region(table: HostTable, name: str) -> None:
    assert table.resolve(name, 1883) == ("127.0.0.1", 11883)
    assert table.resolve(name, 1883, tls=True) == ("127.0.0.1", 18883)
    assert table.resolve(name, 8883, tls=True) == ("127.0.0.1", 18883)


@pytest.mark.parametrize("region", ["cn-shanghai", "cn-beijing", "us-west-1"])
def test_auth_host_by_scheme(table: HostTable, region: str) -> None:
    name = f"iot-auth.{region}.aliyuncs.com"
    assert table.resolve(name, 443, tls=True) == ("127.0.0.1", 18443)
    assert table.resolve(name, 80) == ("127.0.0.1", 18080)


def test_ipv4_passes_through_and_unknown_names_fail(table: HostTable) -> None:
    assert table.resolve("10.1.2.3", 1883, tls=True) == ("10.1.2.3", 1883)
    for name in (
        "example.com",
        "iot-as-mqtt.cn-shanghai.aliyuncs.com",
        "x.aliyuncs.com",
        "",
        "localhost",
    ):
        with pytest.raises(HostNotFound) as info:
            table.resolve(name, 1883)
        assert info.value.name == name
    assert "k1.iot-as-mqtt.cn-shanghai.aliyuncs.com" in table
    assert "example.com" not in table


def test_explicit_entries_keep_or_replace_the_port() -> None:
    table = HostTable()
    table.add("broker.emqx.io", "127.0.0.1")
    table.add("lbsmqtt.airm2m.com", "127.0.0.1", 2883)
    assert table.resolve("Broker.EMQX.io", 1883) == ("127.0.0.1", 1883)
    assert table.resolve("lbsmqtt.airm2m.com", 1884, tls=True) == ("127.0.0.1", 2883)
    with pytest.raises(ValueError, match="IPv4"):
        table.add("x", "not-an-ip")
    with pytest.raises(HostNotFound):
        table.resolve("k1.iot-as-mqtt.cn-shanghai.aliyuncs.com", 1883)  # no endpoints


def test_from_endpoints_file_and_missing_listener(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps({"mqtt": "127.0.0.1:1999", "http": "http://127.0.0.1:8000"}))
    table = HostTable.from_endpoints(path)
    assert table.resolve("pk.iot-as-mqtt.cn-shanghai.aliyuncs.com", 1883) == ("127.0.0.1", 1999)
    with pytest.raises(HostNotFound, match="no TLS listener"):
        table.resolve("pk.iot-as-mqtt.cn-shanghai.aliyuncs.com", 1883, tls=True)
    assert HostTable.from_endpoints(str(path)).resolve("iot-auth.cn-shanghai.aliyuncs.com", 80) == (
        "127.0.0.1",
        8000,
    )


def test_bad_endpoints() -> None:
    with pytest.raises(ValueError, match="endpoint"):
        HostTable.from_endpoints({"mqtt": "no-port-here"})
