"""Issue 8 item 1: a device name is a name, never a pattern.

Reproduces the attack: with only the tutorial's (public) ProductSecret, MQTT ``regnwl``
registration asked for a device ``${x}``, which then logged in and was granted other
devices' topics because the permission check read the name as a placeholder.
"""

from __future__ import annotations

import sqlite3

import pytest

from airlab.aliyun import (
    DEFAULT_TOPIC_CLASSES,
    check_topic_access,
    class_covers,
    direct_mqtt_credentials,
    validate_platform_device_name,
)
from airlab.aliyun.dynreg import mqtt_register_credentials
from airlab.aliyun.topics import instantiate_topic
from airlab.cloud.auth import Rules
from airlab.cloud.broker import EmulatedBroker
from airlab.cloud.fixtures import (
    TUTORIAL_DEVICE_NAME as DN,
)
from airlab.cloud.fixtures import (
    TUTORIAL_PRODUCT_KEY as PK,
)
from airlab.cloud.fixtures import (
    TUTORIAL_PRODUCT_SECRET,
    load_tutorial,
)
from airlab.cloud.registry import Registry
from airlab.cloud.tls import make_client_context, make_server_context
from airlab.errors import UsageError
from tests.cloud.broker_helpers import Client

HOSTILE_NAMES = ["${x}", "${deviceName}", "${productKey}", "+", "#", "a/b/c", "dev+", "de#v"]
SECRET = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("name", [*HOSTILE_NAMES, "x1", "a" * 33, "dev ice", "dév1", "a&bcd"])
def test_platform_rejects_names_outside_its_character_rules(name: str) -> None:
    with pytest.raises(UsageError):
        validate_platform_device_name(name)
    reg = Registry()
    reg.add_product(PK)
    with pytest.raises(UsageError, match="not a valid DeviceName"):
        reg.add_device(PK, name)
    assert reg.devices() == []
    reg.close()


@pytest.mark.parametrize("name", ["868488076506128", "dev1", "a-b_c@d.e:f", "Z" * 32])
def test_platform_accepts_its_own_names(name: str) -> None:
    assert validate_platform_device_name(name) == name


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("action", ["pub", "sub"])
def test_permission_substitutes_the_name_literally(name: str, action: str) -> None:
    victims = [
        f"/{PK}/victim01/user/get",
        f"/{PK}/victim01/user/update",
        f"/sys/{PK}/victim01/thing/event/property/post",
        f"/sys/{PK}/victim01/thing/service/property/set",
        f"/shadow/get/{PK}/victim01",
        f"/ext/rrpc/123/{PK}/victim01/user/get",
    ]
    if action == "sub":
        victims += [f"/{PK}/+/user/get", f"/{PK}/#", f"/sys/{PK}/+/thing/service/+", "#"]
    for topic in victims:
        access = check_topic_access(PK, name, topic, action, DEFAULT_TOPIC_CLASSES)
        assert not access.allowed, (name, topic)


def test_a_name_is_covered_only_by_itself() -> None:
    get = DEFAULT_TOPIC_CLASSES[2]
    assert class_covers(get, PK, "${x}", f"/{PK}/${{x}}/user/get")
    assert not class_covers(get, PK, "${x}", f"/{PK}/other/user/get")
    assert not class_covers(get, PK, "+", f"/{PK}/+/user/get")
    # one pass: a key that looks like a placeholder is not expanded again
    assert instantiate_topic("/${productKey}/${deviceName}", "${deviceName}", "d") == (
        "/${deviceName}/d"
    )


@pytest.fixture
def registry():
    reg = Registry(":memory:")
    load_tutorial(reg)
    reg.set_dynamic_registration(PK, True)
    yield reg
    reg.close()


@pytest.fixture
def broker(registry):
    with EmulatedBroker(Rules(registry), ssl_context=make_server_context()) as b:
        yield b


def test_regnwl_cannot_create_a_placeholder_device(registry, broker, clients) -> None:
    cred = mqtt_register_credentials(
        PK, "${x}", TUTORIAL_PRODUCT_SECRET, random="r1", auth_type="regnwl"
    )
    c = Client(
        broker.mqtts_port,
        client_id=cred.client_id,
        username=cred.username,
        password=cred.password,
        tls=make_client_context(),
    )
    clients.append(c)
    assert c.connect() == "Client identifier not valid"
    assert registry.get_device(PK, "${x}") is None


def test_a_placeholder_device_from_an_old_registry_sees_only_itself(
    registry, broker, clients
) -> None:
    # A registry written before the name rule may still hold such a device.
    registry.add_device(PK, "victim01", SECRET)
    with registry._lock:  # simulate a row created by an older airlab
        registry._conn.execute(
            "INSERT INTO devices (product_key, device_name, device_secret, enabled, "
            "activated, created, iot_id) VALUES (?, ?, ?, 1, 1, 0, ?)",
            (PK, "${x}", SECRET, "legacyid"),
        )
    victim_cred = direct_mqtt_credentials(
        product_key=PK, device_name="victim01", device_secret=SECRET
    )
    victim = Client(
        broker.mqtt_port,
        client_id=victim_cred.client_id,
        username=victim_cred.username,
        password=victim_cred.password,
        keepalive=120,
    )
    cred = direct_mqtt_credentials(product_key=PK, device_name="${x}", device_secret=SECRET)
    attacker = Client(
        broker.mqtt_port,
        client_id=cred.client_id,
        username=cred.username,
        password=cred.password,
        keepalive=120,
    )
    clients.extend([victim, attacker])
    assert victim.connect() == "Success" and attacker.connect() == "Success"
    filters = [
        f"/{PK}/victim01/user/get",
        f"/{PK}/{DN}/user/get",
        f"/{PK}/+/user/get",
        f"/sys/{PK}/victim01/thing/service/property/set",
        f"/sys/{PK}/+/thing/service/property/set",
        f"/shadow/get/{PK}/victim01",
        f"/ota/device/upgrade/{PK}/victim01",
        f"/{PK}/#",
    ]
    assert attacker.subscribe(*filters) == [128] * len(filters)
    assert victim.subscribe(f"/{PK}/victim01/user/update") == [128]  # pub-only class
    assert victim.subscribe(f"/{PK}/victim01/user/get") == [1]
    attacker.publish(f"/{PK}/victim01/user/get", b"forged", 1)
    broker.publish(f"/{PK}/victim01/user/get", b"console", 1)
    assert victim.get().payload == b"console"  # the forged one never arrives
    assert victim.nothing() and attacker.nothing()
    forged = [r for r in registry.message_log() if r.payload == b"forged"]
    assert [r.accepted for r in forged] == [False]


def test_cli_style_add_device_refuses_placeholders(tmp_path) -> None:
    reg = Registry(tmp_path / "r.db")
    reg.add_product(PK)
    with pytest.raises(UsageError):
        reg.add_device(PK, "${x}")
    reg.close()
    rows = sqlite3.connect(tmp_path / "r.db").execute("SELECT count(*) FROM devices").fetchone()
    assert rows == (0,)
